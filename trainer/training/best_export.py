"""The best export: a serving SavedModel of the best evaluation so far.

`--export_best=METRIC` keeps, besides the final export, one export of the
checkpoint whose evaluation had the best METRIC: higher is better for
accuracy, lower for loss, data_loss, rmse and mae. The evaluator of each
backend decides after every evaluation, reading the best so far back from
the event files (`eval/*.tfevents.*`) so that an evaluator that restarts
does not forget it (trainer.estimator.exporters: Estimator's own
`BestExporter`; trainer.keras.evaluation). It writes to
MODEL_DIR/export_best/<timestamp> (one kept), and records which evaluation
that was in MODEL_DIR/export_best/best.json, for the summary.
"""

import json
import os
from typing import Optional

import tensorflow as tf

from harness import files

EVENT_FILE_PATTERN = "eval/*.tfevents.*"
DIRECTORY = "export_best"
RECORD = "best.json"
def directory(model_dir: str) -> str:
  return os.path.join(model_dir, DIRECTORY)


def write_record(model_dir: str, metric: str, value: float, step: int,
                 path: str) -> None:
  """Records which evaluation the best export is (best.json)."""
  files.write_text(os.path.join(directory(model_dir), RECORD), json.dumps(
      {"metric": metric, "value": float(value), "global_step": int(step),
       "path": path}), tf.io.gfile)


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
