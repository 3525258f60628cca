"""The evaluator task's loop: evaluate each new checkpoint, to the last.

Estimator's own loop ends only at a checkpoint of --train_steps, so after
an early stop it would wait forever; it also dies when the chief deletes
(keep_checkpoint_max) a checkpoint it chose but had not restored yet. This
loop evaluates the latest checkpoint whenever there is a new one (at most
every `throttle_secs`), runs the exporters after each evaluation (the best
export), and ends after evaluating the chief's final checkpoint: one of
--train_steps, or, after an early stop (trainer.early_stopping), the latest
once the chief's export exists. It waits as long as the job runs: the
job's deadline is the engine's.
"""

import os
import time
from typing import Callable, Optional, Sequence

import tensorflow as tf

from trainer import early_stopping

POLL_SECS = 1.0


def _step_of(checkpoint: str) -> int:
  return int(tf.train.load_variable(checkpoint, "global_step"))


def _final(checkpoint: str, step: int, final_step: int, model_dir: str,
           export_dir: str) -> bool:
  if step >= final_step:
    return True
  return bool(early_stopping.marker(model_dir) and
              tf.io.gfile.exists(export_dir) and
              tf.train.latest_checkpoint(model_dir) == checkpoint)


def evaluate_continuously(estimator, eval_input, *, eval_steps: Optional[int],
                          final_step: int, throttle_secs: float,
                          export_dir: str, exporters: Sequence = (),
                          start_delay_secs: float = 0,
                          log: Callable[[str], None] = print,
                          clock=time.monotonic, sleep=time.sleep) -> dict:
  """Returns the metrics of the final evaluation. `start_delay_secs` is the
  deliberate delay before the first (--eval_start_delay_secs)."""
  model_dir = estimator.model_dir
  if start_delay_secs:
    sleep(start_delay_secs)
  evaluated, evaluated_step, metrics, next_allowed = None, None, None, 0.0
  while True:
    checkpoint = tf.train.latest_checkpoint(model_dir)
    if checkpoint and checkpoint != evaluated and clock() >= next_allowed:
      next_allowed = clock() + throttle_secs
      try:
        step = _step_of(checkpoint)
        metrics = estimator.evaluate(eval_input, steps=eval_steps,
                                     checkpoint_path=checkpoint)
      except (tf.errors.NotFoundError, ValueError) as e:
        # The chief deleted it (keep_checkpoint_max) before we restored it.
        log("Checkpoint %s was deleted before it was evaluated (%s); "
            "evaluating the latest one." % (checkpoint, str(e).splitlines()[
                0][:200]))
        continue
      evaluated, evaluated_step = checkpoint, step
      final = _final(checkpoint, step, final_step, model_dir, export_dir)
      for exporter in exporters:
        exporter.export(estimator, os.path.join(model_dir, "export",
                                                exporter.name),
                        checkpoint, metrics, final)
      if final:
        return metrics
    elif evaluated and _final(evaluated, evaluated_step, final_step,
                              model_dir, export_dir):
      return metrics  # Early stop: the last checkpoint was evaluated.
    sleep(POLL_SECS)
