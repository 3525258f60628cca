"""The evaluations a model directory's event files hold.

The evaluator (or a single process) writes each evaluation's metrics as
scalars to MODEL_DIR/eval/events.*; this reads them back, in step order.
Used for the summaries, by early stopping (inside a training session, whose
graph is finalized: so it reads records with TF's record iterator, which
adds no ops to a graph), and by the chief waiting for the final evaluation.
"""

import os
from typing import Dict, List, Optional, Tuple

import tensorflow as tf


def evaluations(eval_dir: str) -> List[Tuple[int, Dict[str, float]]]:
  """(global step, {metric: value}) of every evaluation, by step."""
  found = {}
  for path in sorted(tf.io.gfile.glob(os.path.join(eval_dir, "events.*"))):
    try:
      for record in tf.compat.v1.io.tf_record_iterator(path):
        event = tf.compat.v1.Event.FromString(record)
        values = {v.tag: v.simple_value for v in event.summary.value
                  if v.HasField("simple_value")}
        if values:
          found.setdefault(int(event.step), {}).update(values)
    except tf.errors.DataLossError:
      continue  # An event file being written: its complete records count.
  return sorted(found.items())


def last_step(eval_dir: str) -> Optional[int]:
  """The global step of the latest evaluation, or None before the first."""
  metrics = last(eval_dir)
  return int(metrics["global_step"]) if metrics else None


def last(eval_dir: str) -> Optional[Dict[str, float]]:
  """The metrics of the latest evaluation, with its global_step."""
  found = evaluations(eval_dir)
  if not found:
    return None
  step, metrics = found[-1]
  return dict(metrics, global_step=float(step))
