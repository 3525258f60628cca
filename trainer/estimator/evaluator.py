"""The Estimator's evaluator task: trainer.training.eval_loop with Estimator's
`evaluate` and its exporters (the best export)."""

import os
from typing import Callable, Optional, Sequence

import tensorflow as tf

from trainer.training import eval_loop


def evaluate_continuously(estimator, eval_input, *, eval_steps: Optional[int],
                          throttle_secs: float,
                          export_dir: str, exporters: Sequence = (),
                          start_delay_secs: float = 0,
                          untrained: bool = False,
                          log: Callable[[str], None] = print,
                          clock=None, sleep=None) -> dict:
  """Returns the metrics of the final evaluation
  (trainer.training.eval_loop)."""
  model_dir = estimator.model_dir

  def evaluate(checkpoint):
    try:
      return estimator.evaluate(eval_input, steps=eval_steps,
                                checkpoint_path=checkpoint)
    except (tf.errors.NotFoundError, ValueError) as e:
      # Estimator says ValueError for a checkpoint it cannot find: gone only
      # when its files are; any other ValueError is a real one.
      if tf.io.gfile.exists(checkpoint + ".index"):
        raise
      raise eval_loop.CheckpointGone(str(e)) from e

  def after(checkpoint, metrics, final):
    for exporter in exporters:
      exporter.export(estimator, os.path.join(model_dir, "export",
                                              exporter.name),
                      checkpoint, metrics, final)
  timing = {k: v for k, v in (("clock", clock), ("sleep", sleep)) if v}
  return eval_loop.evaluate_continuously(
      evaluate, model_dir=model_dir,
      throttle_secs=throttle_secs, export_dir=export_dir, after=after,
      start_delay_secs=start_delay_secs, untrained=untrained, log=log,
      **timing)
