"""The Keras backend's training loop: one process, or the chief of a
parameter-server cluster scheduling steps on its workers.

A call of the step function runs `steps_per_execution` steps (fewer for
the last) and returns the last step's loss and the global step. In one
process it runs here (`LocalSteps`); on a cluster the chief schedules it
on the workers through TF's `ClusterCoordinator` (`ClusterSteps`): a
worker that dies has its calls rescheduled on the others and rejoins when
it is back, and a lost ps or a lost chief raises an error here that the
entry point turns into a restart (trainer.training.peer_errors).

`train` keeps a few calls in flight per worker; as each one's result comes
back it runs what the Estimator's hooks do: the NaN guard, the progress
line, TensorBoard scalars, checkpoints on the step or seconds cadence,
early stopping, the profile, and (in one process) evaluations.
"""

import collections
import dataclasses
import time
from typing import Callable, Optional, Tuple

import tensorflow as tf

from trainer.config import job as job_lib
from trainer.keras import model as model_lib
from trainer.keras import state as state_lib
from trainer.keras import summaries
from trainer.training import early_stopping
from trainer.training import nan_guard
from trainer.training import preemption
from trainer.training import progress


def make_step_fn(state: state_lib.State, head: job_lib.HeadConfig,
                 strategy=None):
  """tf.function (iterator, n) -> (loss of the last step, global step)."""
  model, optimizer = state.model, state.optimizer

  def step(features, labels):
    with tf.GradientTape() as tape:
      logits = model(features, training=True)
      loss, _ = model_lib.losses(model, logits, labels, head)
    variables = model.trainable_variables
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    return loss

  # Without AutoGraph: the loop is TF's own while_loop, and the harness's
  # code and TF's it calls (the strategy, the optimizer's update) are
  # traced as written; tf_keras still converts each layer's `call` (a
  # model's own Python control flow works as in Keras). Converting them all
  # cost the chief 6-7 s before its first step (digits, in-process
  # cluster: scheduling the first call took 6.7-7.0 s; now 0.4 s).
  @tf.function(autograph=False)
  def steps(iterator, n):
    def body(i, loss):
      del loss  # The last step's is returned.
      features, labels = next(iterator)
      return i + 1, (strategy.run(step, args=(features, labels))
                     if strategy else step(features, labels))
    _, loss = tf.while_loop(lambda i, _: i < n, body,
                            (tf.constant(0, tf.int64), tf.constant(0.0)))
    return loss, optimizer.iterations.read_value()
  return steps


class LocalSteps:
  """Runs calls of the step function in this process."""

  in_flight = 1

  def __init__(self, state, head, dataset_fn):
    self._steps = make_step_fn(state, head)
    self._iterator = iter(dataset_fn())

  def schedule(self, n: int):
    return self._steps(self._iterator, tf.constant(n, tf.int64))

  @staticmethod
  def fetch(handle) -> Tuple[float, int]:
    loss, step = handle
    return float(loss), int(step)

  def join(self):
    pass


class ClusterSteps:
  """Schedules calls of the step function on the cluster's workers."""

  def __init__(self, state, head, dataset_fn, strategy, coordinator,
               num_workers: int, in_flight_per_worker: int = 2):
    self._steps = make_step_fn(state, head, strategy)
    self._coordinator = coordinator
    # Traced once here, without AutoGraph (as `steps` is): the input_fn
    # only builds a tf.data pipeline, whose Python branches are on settings,
    # not tensors. Converting it and all it calls took about a third of a
    # second of the chief's start (digits, a local cluster of 2 workers:
    # from the chief's data line to its first step 1.28 -> 0.92 s, medians
    # of 8 rounds; docs/performance.md).
    self._iterator = iter(coordinator.create_per_worker_dataset(
        tf.function(dataset_fn, autograph=False)))
    self.in_flight = in_flight_per_worker * max(num_workers, 1)

  def schedule(self, n: int):
    return self._coordinator.schedule(
        self._steps, args=(self._iterator, tf.constant(n, tf.int64)))

  @staticmethod
  def fetch(handle) -> Tuple[float, int]:
    loss, step = handle.fetch()
    return float(loss), int(step)

  def join(self):
    self._coordinator.join()


@dataclasses.dataclass
class Cadence:
  """When to checkpoint: every `steps`, or every `secs`."""
  steps: Optional[int]
  secs: Optional[float]
  clock: Callable[[], float] = time.monotonic

  def __post_init__(self):
    self._step, self._time = None, self.clock()

  def start(self, step: int):
    self._step, self._time = step, self.clock()

  def due(self, step: int) -> bool:
    if self.steps:
      return step >= self._step + self.steps
    return self.clock() >= self._time + self.secs


@dataclasses.dataclass
class Settings:
  """What the loop needs from the job (trainer.config.job.RunOptions & co.)."""
  train_steps: int
  steps_per_execution: int
  batch_size: int
  log_every_steps: int
  learning_rate: float
  optimizer: str
  cadence: Cadence
  model_dir: str
  early_stopping_metric: str = ""
  early_stopping_patience: int = 3
  profile_steps: Tuple[int, ...] = ()


class _Profile:
  """--profile_steps on the chief: TF's profiler from A to B."""

  def __init__(self, steps, logdir, log):
    self._steps, self._logdir, self._log = steps, logdir, log
    self._running = self._done = False

  def after(self, step: int):
    if not self._steps or self._done:
      return
    first, last = self._steps
    if not self._running and step >= first:
      tf.profiler.experimental.start(self._logdir)
      self._running = True
    elif self._running and step > last:
      self.stop()

  def stop(self):
    if self._running:
      tf.profiler.experimental.stop()
      self._running, self._done = False, True
      self._log("Profile of steps %d-%d written under %s/plugins/profile." %
                (self._steps[0], self._steps[1], self._logdir))


def train(state: state_lib.State, runner, manager: tf.train.CheckpointManager,
          s: Settings, *, log: Callable[[str], None] = print,
          on_checkpoint: Callable[[str, int], None] = lambda path, step: None,
          eval_dir: str = "",
          watch: Optional[preemption.ChiefWatch] = None) -> int:
  """Trains to `s.train_steps` (or an early stop); checkpoints as it goes
  and at the end. Returns the final global step. With a `watch`: on SIGTERM
  it stops scheduling, saves where it is and raises Preempted; a preempted
  ps's request is a checkpoint at once.

  Raises:
    nan_guard.Diverged: the loss became NaN or infinite.
    preemption.Preempted: SIGTERM; the checkpoint is written.
  """
  step = int(state.step.numpy())
  writer = summaries.ScalarWriter(s.model_dir)
  report = progress.Progress(
      batch_size=s.batch_size, every_n_steps=s.log_every_steps,
      max_steps=s.train_steps, log=log,
      write_scalar=lambda tag, value, at: writer.write({tag: value}, at))
  saved = None

  def save(at: int):
    nonlocal saved
    on_checkpoint(manager.save(checkpoint_number=at), at)
    saved = at
    s.cadence.start(at)

  if manager.latest_checkpoint is None:
    save(step)
  s.cadence.start(step)
  profile = _Profile(s.profile_steps, s.model_dir, log)
  early_check = early_stopping.Throttle()
  in_flight, scheduled, stopping = collections.deque(), step, False
  # A checkpoint due waits for the calls in flight: with none running, the
  # global step it holds is the step its name says (model.ckpt-N holds
  # step N), and its variables are those of exactly N steps.
  save_due, asked = False, False
  last_summary = (step, time.monotonic())
  while True:
    while (not stopping and not save_due and scheduled < s.train_steps and
           len(in_flight) < runner.in_flight):
      n = min(s.steps_per_execution, s.train_steps - scheduled)
      in_flight.append((runner.schedule(n), n))
      scheduled += n
    if not in_flight:
      if not save_due:
        break
      step = int(state.step.numpy())
      save(step)
      if asked:
        watch.checkpoint_written(step)
      save_due = asked = False
      continue
    handle, n = in_flight.popleft()
    loss, step = runner.fetch(handle)
    nan_guard.check(loss, step, learning_rate=s.learning_rate,
                    optimizer=s.optimizer)
    report.update(step, loss, n)
    profile.after(step)
    if step >= last_summary[0] + s.log_every_steps:
      now = time.monotonic()
      writer.write({
          "loss": loss,
          "global_step/sec": (step - last_summary[0]) / max(
              now - last_summary[1], 1e-9),
          "regularization_loss": float(model_lib.regularization(
              state.model)),
          "learning_rate": s.learning_rate}, step)
      last_summary = (step, now)
    if watch and not stopping and watch.stop_now(step):
      stopping = True
    if not save_due and s.cadence.due(step):
      save_due = True
    elif not save_due and watch and not stopping and (
        watch.checkpoint_wanted()):
      save_due = asked = True
    if (s.early_stopping_metric and not stopping and early_check() and
        eval_dir):
      why = early_stopping.stop_if_not_improving(
          s.model_dir, eval_dir, s.early_stopping_metric,
          s.early_stopping_patience, step)
      if why:
        log(why)
        stopping = True
  runner.join()
  profile.stop()
  report.end()
  step = int(state.step.numpy())
  if saved != step:
    save(step)
  writer.close()
  if watch and watch.preempted:
    raise preemption.Preempted(
        "The chief stopped on SIGTERM at step %d and saved it in %s; "
        "exiting %d for a restart." % (step, manager.latest_checkpoint,
                                       preemption.EXIT_CODE))
  return step
