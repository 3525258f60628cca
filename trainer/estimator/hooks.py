"""The Estimator backend's SessionRunHooks, over the shared logic.

* `ProgressHook`: trainer.training.progress, fed the global step and the loss
  that the model_fn names `LOSS_NAME`, fetched with every step;
* `NonFiniteLossHook`: trainer.training.nan_guard;
* `StopWhenNotImproving` (chief) and `StopWhenMarked` (workers):
  trainer.training.early_stopping;
* `PreemptionHook` (chief): trainer.training.preemption: stops on SIGTERM
  (Estimator's CheckpointSaverHook then saves at the last step, in its
  `end`), and saves at once when a preempted ps asks;
* `ProfileHook`: `--profile_steps=A,B`, a TF profile of global steps A to
  B under MODEL_DIR/plugins/profile/, where TensorBoard's profile plugin
  lists it.
"""

import os
from typing import Callable, Optional

import tensorflow as tf

from trainer.training import early_stopping
from trainer.training import nan_guard
from trainer.training import preemption
from trainer.training import progress

# The model_fn names its total loss so; see trainer.estimator.model.
LOSS_NAME = "total_loss"


class StepAndLossHook(tf.estimator.SessionRunHook):
  """Fetches the global step and the model_fn's named loss with every step:
  `run_values.results["step"]` and `["loss"]` in `after_run`."""

  def __init__(self, loss_name: str = LOSS_NAME):
    self._loss_name = loss_name

  def begin(self):
    self._global_step = tf.compat.v1.train.get_global_step()
    self._loss = tf.compat.v1.get_default_graph().get_tensor_by_name(
        self._loss_name + ":0")

  def before_run(self, run_context):
    return tf.estimator.SessionRunArgs({"step": self._global_step,
                                        "loss": self._loss})


def _summary_writer(summary_dir: str):
  def write(tag: str, value: float, step: int) -> None:
    summary = tf.compat.v1.Summary(value=[tf.compat.v1.Summary.Value(
        tag=tag, simple_value=value)])
    tf.compat.v1.summary.FileWriterCache.get(summary_dir).add_summary(
        summary, step)
  return write


class ProgressHook(StepAndLossHook):
  """trainer.training.progress.Progress after every step. With a `summary_dir`
  (the chief's model directory) examples/sec is written there, for TensorBoard
  (Estimator writes the loss and global_step/sec itself)."""

  def __init__(self, *, loss_name: str = LOSS_NAME, batch_size: int,
               every_n_steps: int, max_steps: Optional[int] = None,
               log: Callable[[str], None] = print, clock=None,
               summary_dir: Optional[str] = None):
    super().__init__(loss_name)
    kwargs = {"clock": clock} if clock else {}
    self._progress = progress.Progress(
        batch_size=batch_size, every_n_steps=every_n_steps,
        max_steps=max_steps, log=log,
        write_scalar=_summary_writer(summary_dir) if summary_dir else None,
        **kwargs)

  def after_run(self, run_context, run_values):
    self._progress.update(int(run_values.results["step"]),
                          float(run_values.results["loss"]))

  def end(self, session):
    self._progress.end()


class NonFiniteLossHook(StepAndLossHook):
  """Raises nan_guard.Diverged after the first step whose loss is not
  finite."""

  def __init__(self, *, learning_rate: float, optimizer: str,
               loss_name: str = LOSS_NAME):
    super().__init__(loss_name)
    self._learning_rate = learning_rate
    self._optimizer = optimizer

  def after_run(self, run_context, run_values):
    nan_guard.check(float(run_values.results["loss"]),
                    int(run_values.results["step"]),
                    learning_rate=self._learning_rate,
                    optimizer=self._optimizer)


class StopWhenNotImproving(tf.estimator.SessionRunHook):
  """The chief's hook: stops training, and says why, on no improvement."""

  def __init__(self, model_dir: str, eval_dir: str, metric: str,
               patience: int, log: Callable[[str], None], clock=None):
    self._model_dir, self._eval_dir = model_dir, eval_dir
    self._metric, self._patience = metric, patience
    self._log = log
    self._due = early_stopping.Throttle(**({"clock": clock} if clock
                                           else {}))

  def begin(self):
    self._step = tf.compat.v1.train.get_global_step()

  def before_run(self, run_context):
    return tf.estimator.SessionRunArgs(self._step)

  def after_run(self, run_context, run_values):
    if not self._due():
      return
    why = early_stopping.stop_if_not_improving(
        self._model_dir, self._eval_dir, self._metric, self._patience,
        int(run_values.results))
    if why:
      self._log(why)
      run_context.request_stop()


class StopWhenMarked(tf.estimator.SessionRunHook):
  """A worker's hook: stops when the chief has stopped early."""

  def __init__(self, model_dir: str, clock=None):
    self._model_dir = model_dir
    self._due = early_stopping.Throttle(**({"clock": clock} if clock
                                           else {}))

  def after_run(self, run_context, run_values):
    if self._due() and early_stopping.marker(self._model_dir):
      run_context.request_stop()


class PreemptionHook(tf.estimator.SessionRunHook):
  """The chief's hook for trainer.training.preemption.ChiefWatch."""

  def __init__(self, watch: preemption.ChiefWatch, model_dir: str):
    self._watch, self._model_dir = watch, model_dir

  def begin(self):
    self._step = tf.compat.v1.train.get_global_step()

  def before_run(self, run_context):
    return tf.estimator.SessionRunArgs(self._step)

  def after_create_session(self, session, coord):
    # The checkpoint is restored: paused workers go on.
    preemption.clear_chief_away(self._model_dir)

  def after_run(self, run_context, run_values):
    step = int(run_values.results)
    if self._watch.stop_now(step):
      # MonitoredSession's close runs the hooks' `end`: Estimator's
      # CheckpointSaverHook saves the last step there.
      self._watch.leaving(step)
      run_context.request_stop()
    elif self._watch.checkpoint_wanted():
      # The Scaffold's saver, which the CheckpointSaverHook uses too.
      saver, = tf.compat.v1.get_collection(
          tf.compat.v1.GraphKeys.SAVERS)
      saver.save(run_context.session,
                 os.path.join(self._model_dir, "model.ckpt"),
                 global_step=self._step)
      self._watch.checkpoint_written(step)


class PauseWhileChiefAway(tf.estimator.SessionRunHook):
  """A worker's hook: pauses while the chief is away after a preemption
  notice (looked for at most every second)."""

  def __init__(self, model_dir: str, log: Callable[[str], None],
               clock=None):
    self._model_dir, self._log = model_dir, log
    self._due = early_stopping.Throttle(**({"clock": clock} if clock
                                           else {}))

  def after_run(self, run_context, run_values):
    if self._due() and preemption.chief_away(self._model_dir):
      paused = preemption.wait_while_chief_away(self._model_dir, self._log)
      self._log("The chief is back: going on after %.1f s." % paused)


class ProfileHook(tf.estimator.SessionRunHook):
  """Profiles the steps from `first` to `last` (global steps)."""

  def __init__(self, first: int, last: int, logdir: str,
               log: Callable[[str], None] = print):
    self._first, self._last, self._logdir = first, last, logdir
    self._log = log
    self._step = None  # The global step the next run will take.
    self._running = False
    self._done = False

  def begin(self):
    self._global_step = tf.compat.v1.train.get_global_step()

  def after_create_session(self, session, coord):
    self._step = int(session.run(self._global_step))

  def before_run(self, run_context):
    if not self._running and not self._done and self._step >= self._first:
      tf.profiler.experimental.start(self._logdir)
      self._running = True
    return tf.estimator.SessionRunArgs(self._global_step)

  def after_run(self, run_context, run_values):
    self._step = int(run_values.results) + 1
    if self._running and self._step > self._last:
      self._stop()

  def end(self, session):
    if self._running:
      self._stop()

  def _stop(self):
    tf.profiler.experimental.stop()
    self._running, self._done = False, True
    self._log("Profile of steps %d-%d written under %s/plugins/profile." %
              (self._first, self._last, self._logdir))
