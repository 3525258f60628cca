"""The best export: a serving SavedModel of the best evaluation so far.

`--export_best=METRIC` keeps, besides the final export, one export of the
checkpoint whose evaluation had the best METRIC: higher is better for
accuracy, lower for loss, data_loss, rmse and mae. It is Estimator's own
`BestExporter`, run after every evaluation, with its event-file pattern set
(`eval/*.tfevents.*`) so that an evaluator that restarts reads the best so
far back from the event files instead of forgetting it. It writes to
MODEL_DIR/export_best/<timestamp> (one kept), and records which evaluation
that was in MODEL_DIR/export_best/best.json, for the summary.
"""

import json
import os
from typing import Optional

import tensorflow as tf

EVENT_FILE_PATTERN = "eval/*.tfevents.*"
DIRECTORY = "export_best"
RECORD = "best.json"
# Of the metrics the heads report (trainer.job.metrics); the others are
# losses and errors, lower is better.
HIGHER_IS_BETTER = ("accuracy",)


def better(metric: str, current: float, best: float) -> bool:
  if metric in HIGHER_IS_BETTER:
    return current > best
  return current < best


def directory(model_dir: str) -> str:
  return os.path.join(model_dir, DIRECTORY)


class BestExport(tf.estimator.BestExporter):
  """BestExporter that exports to `directory(model_dir)` and records which
  evaluation its export is."""

  def __init__(self, metric: str, model_dir: str, serving_input_fn):
    self._metric, self._base = metric, directory(model_dir)

    def compare(best_eval_result, current_eval_result):
      return better(metric, current_eval_result[metric],
                    best_eval_result[metric])
    super().__init__(
        name="best", serving_input_receiver_fn=serving_input_fn,
        event_file_pattern=EVENT_FILE_PATTERN, compare_fn=compare,
        exports_to_keep=1)

  def export(self, estimator, export_path, checkpoint_path, eval_result,
             is_the_final_export):
    del export_path  # Estimator's MODEL_DIR/export/best: ours instead.
    written = super().export(estimator, self._base, checkpoint_path,
                             eval_result, is_the_final_export)
    if written:
      if isinstance(written, bytes):
        written = written.decode()
      with tf.io.gfile.GFile(os.path.join(self._base, RECORD), "w") as f:
        json.dump({"metric": self._metric,
                   "value": float(eval_result[self._metric]),
                   "global_step": int(eval_result["global_step"]),
                   "path": written}, f)
    return written


def record(model_dir: str) -> Optional[dict]:
  """What best.json says: metric, value, global_step, path; or None."""
  path = os.path.join(directory(model_dir), RECORD)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def describe(model_dir: str) -> Optional[str]:
  best = record(model_dir)
  if not best:
    return None
  return "Best export (%s %.4f at step %d): %s" % (
      best["metric"], best["value"], best["global_step"], best["path"])
