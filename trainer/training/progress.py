"""Training progress as one line every N steps, the same on every backend.

After this task's first step it says so (the end of start-up; benchmarks
and tests look for `FIRST_STEP`); then at each multiple of `every_n_steps`
global steps (or the first update past it) it logs one line: the step, the
loss, steps per second and examples per second (of this task), measured
over the steps since the last line. With `write_scalar` (the chief's) it
also records examples/sec for TensorBoard. The backends feed it:
trainer.estimator.hooks (a SessionRunHook) and trainer.keras.loop (after
each scheduled run of steps).
"""

import time
from typing import Callable, Optional

# Starts the line logged after this task's first training step.
FIRST_STEP = "first training step done"
EXAMPLES_PER_SEC = "examples/sec"


class Progress:
  """Logs step, loss, steps/s and examples/s every `every_n_steps` steps."""

  def __init__(self, *, batch_size: int, every_n_steps: int,
               max_steps: Optional[int] = None,
               log: Callable[[str], None] = print,
               clock: Callable[[], float] = time.monotonic,
               write_scalar: Optional[Callable[[str, float, int],
                                               None]] = None):
    if every_n_steps <= 0:
      raise ValueError("every_n_steps (%d) must be positive." % every_n_steps)
    self._batch_size = batch_size
    self._every = every_n_steps
    self._max_steps = max_steps
    self._log = log
    self._clock = clock
    self._write_scalar = write_scalar
    self._last = None  # (global step, time, local steps) of the last report.
    self._latest = None  # The same and the loss, after the latest step.
    self._local_steps = 0

  def update(self, step: int, loss: float, local_steps: int = 1) -> None:
    """After `local_steps` steps of this task, at global step `step`."""
    self._local_steps += local_steps
    self._latest = (step, self._clock(), self._local_steps, loss)
    if self._last is None:
      self._last = self._latest[:3]
      self._log("%s at global step %d" % (FIRST_STEP, step))
    elif step // self._every > self._last[0] // self._every:
      self._report()  # The first update at or past a multiple of N.

  def end(self) -> None:
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
    if self._write_scalar:
      self._write_scalar(EXAMPLES_PER_SEC, examples_per_sec, step)
