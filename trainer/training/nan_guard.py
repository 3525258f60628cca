"""Stop at once when the loss is no longer a number.

`check` raises `Diverged` when the loss is NaN or infinite: one line naming
the global step, the loss and what to change. Each backend calls it after
its steps (trainer.estimator.hooks.NonFiniteLossHook after every step; the
Keras backend after every run of `steps_per_execution` steps). The task
exits 1, which every restart policy of the launchers treats as final (a
restart would diverge again), so a cluster stops at once and names the
task. (Estimator's own NanTensorHook only says "NaN loss during training.",
and misses infinity.)
"""

import math

from harness import errors


class Diverged(errors.HarnessError):
  """Training diverged: the loss became NaN or infinite."""


def check(loss: float, step: int, *, learning_rate: float,
          optimizer: str) -> None:
  """Raises Diverged where `loss`, at global step `step`, is not finite."""
  if math.isfinite(loss):
    return
  raise Diverged(
      "The loss became %s at global step %d (`optimizer`=%s, "
      "`learning_rate`=%g): training stopped. Lower `learning_rate` "
      "(e.g. to %g), or check the data for extreme values." % (
          loss, step, optimizer, learning_rate, learning_rate / 10))
