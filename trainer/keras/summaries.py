"""Scalars for TensorBoard, under the Estimator backend's tags.

Written as `Summary` protos with `simple_value` (as Estimator writes them), so
that TensorBoard shows both backends' runs alike and
trainer.training.eval_events reads either back: MODEL_DIR for training ("loss",
"global_step/sec", "examples/sec", "regularization_loss", "learning_rate"),
MODEL_DIR/eval for evaluations ("accuracy", "loss", "data_loss", ...).
"""

from typing import Mapping

import tensorflow as tf


class ScalarWriter:
  """Writes {tag: value} at a global step to one event directory."""

  def __init__(self, logdir: str):
    self._writer = tf.summary.create_file_writer(logdir)

  def write(self, values: Mapping[str, float], step: int) -> None:
    summary = tf.compat.v1.Summary(value=[
        tf.compat.v1.Summary.Value(tag=tag, simple_value=float(value))
        for tag, value in sorted(values.items())])
    with self._writer.as_default():
      tf.summary.experimental.write_raw_pb(summary.SerializeToString(),
                                           step=int(step))
    self._writer.flush()

  def close(self) -> None:
    self._writer.close()
