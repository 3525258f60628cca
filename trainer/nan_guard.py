"""Stop at once when the loss is no longer a number.

`NonFiniteLossHook` reads the loss after every step and, when it is NaN or
infinite, raises `Diverged`: one line naming the global step, the loss and
what to change. The task exits 1, which every restart policy of the
launchers treats as final (a restart would diverge again), so a cluster
stops at once and names the task. (Estimator's own NanTensorHook only says
"NaN loss during training.", and misses infinity.)
"""

import math

import tensorflow as tf

from harness import errors
from trainer import progress


class Diverged(errors.HarnessError):
  """Training diverged: the loss became NaN or infinite."""


class NonFiniteLossHook(tf.estimator.SessionRunHook):
  """Raises Diverged after the first step whose loss is not finite."""

  def __init__(self, *, learning_rate: float, optimizer: str,
               loss_name: str = progress.LOSS_NAME):
    self._learning_rate = learning_rate
    self._optimizer = optimizer
    self._loss_name = loss_name

  def begin(self):
    self._step = tf.compat.v1.train.get_global_step()
    self._loss = tf.compat.v1.get_default_graph().get_tensor_by_name(
        self._loss_name + ":0")

  def before_run(self, run_context):
    return tf.estimator.SessionRunArgs({"step": self._step,
                                        "loss": self._loss})

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
