"""Stop at once when the loss is no longer a number.

`NonFiniteLossHook` reads the loss after every step and, when it is NaN or
infinite, raises `Diverged`: one line naming the global step, the loss and
what to change. The task exits 1, which every restart policy of the
launchers treats as final (a restart would diverge again), so a cluster
stops at once and names the task. (Estimator's own NanTensorHook only says
"NaN loss during training.", and misses infinity.)
"""

import math

from harness import errors
from trainer import progress


class Diverged(errors.HarnessError):
  """Training diverged: the loss became NaN or infinite."""


class NonFiniteLossHook(progress.StepAndLossHook):
  """Raises Diverged after the first step whose loss is not finite."""

  def __init__(self, *, learning_rate: float, optimizer: str,
               loss_name: str = progress.LOSS_NAME):
    super().__init__(loss_name)
    self._learning_rate = learning_rate
    self._optimizer = optimizer

  def after_run(self, run_context, run_values):
    loss = float(run_values.results["loss"])
    if math.isfinite(loss):
      return
    raise Diverged(
        "The loss became %s at global step %d (`optimizer`=%s, "
        "`learning_rate`=%g): training stopped. Lower `learning_rate` "
        "(e.g. to %g), or check the data for extreme values." % (
            loss, int(run_values.results["step"]), self._optimizer,
            self._learning_rate, self._learning_rate / 10))
