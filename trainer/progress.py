"""A SessionRunHook that reports training progress.

After this task's first step it says so (the end of start-up); then every
`every_n_steps` global steps it logs one line: the step, the loss, steps
per second and examples per second (of this task), measured over the steps
since the last line. With a `summary_dir` (the chief's model directory) it
also writes examples/sec there, for TensorBoard (Estimator writes the loss
and global_step/sec itself).
"""

import time
from typing import Callable, Optional

import tensorflow as tf

# The model_fn names its total loss so; see trainer.model.
LOSS_NAME = "total_loss"
# Starts the line logged after this task's first training step.
FIRST_STEP = "first training step done"


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


class ProgressHook(StepAndLossHook):
  """Logs step, loss, steps/s and examples/s every `every_n_steps` steps."""

  def __init__(self, *, loss_name: str = LOSS_NAME, batch_size: int,
               every_n_steps: int, max_steps: Optional[int] = None,
               log: Callable[[str], None] = print,
               clock: Callable[[], float] = time.monotonic,
               summary_dir: Optional[str] = None):
    if every_n_steps <= 0:
      raise ValueError("every_n_steps (%d) must be positive." % every_n_steps)
    super().__init__(loss_name)
    self._batch_size = batch_size
    self._every = every_n_steps
    self._max_steps = max_steps
    self._log = log
    self._clock = clock
    self._last = None  # (global step, time, local steps) of the last report.
    self._latest = None  # The same and the loss, after the latest step.
    self._local_steps = 0
    self._summary_dir = summary_dir

  def after_run(self, run_context, run_values):
    step = int(run_values.results["step"])
    self._local_steps += 1
    self._latest = (step, self._clock(), self._local_steps,
                    float(run_values.results["loss"]))
    if self._last is None:
      self._last = self._latest[:3]
      self._log("%s at global step %d" % (FIRST_STEP, step))
    elif step - self._last[0] >= self._every:
      self._report()

  def end(self, session):
    if self._last is not None and self._latest[0] > self._last[0]:
      self._report()

  def _report(self):
    step, now, local_steps, loss = self._latest
    last_step, last_time, last_local = self._last
    elapsed = max(now - last_time, 1e-9)
    total = "/%d" % self._max_steps if self._max_steps else ""
    examples_per_sec = (local_steps - last_local) * self._batch_size / elapsed
    self._log("step %d%s  loss %.4f  %.1f steps/s  %.0f examples/s" % (
        step, total, loss, (step - last_step) / elapsed, examples_per_sec))
    self._last = (step, now, local_steps)
    if self._summary_dir:
      summary = tf.compat.v1.Summary(value=[tf.compat.v1.Summary.Value(
          tag="examples/sec", simple_value=examples_per_sec)])
      tf.compat.v1.summary.FileWriterCache.get(self._summary_dir).add_summary(
          summary, step)
