"""Early stopping that ends a whole cluster, as a normal end does.

`--early_stopping_metric=M --early_stopping_patience=N`: the chief stops
training once M has not improved for N evaluations (higher is better for
accuracy, lower for the losses; trainer.training.metric_goal). Estimator's own
hooks stop the chief but leave a distributed evaluator waiting forever for
the final step, so here:

* the chief (`stop_if_not_improving`) reads the evaluations from the event
  files, and when it stops writes MODEL_DIR/early_stopped.json (the step,
  the metric, the best value and its step), then saves, exports and ends
  as usual;
* workers stop when that file appears, and finish as
  usual (trainer.training.job_end);
* the evaluator ends after evaluating the chief's final
  checkpoint, and the ps end once the export exists: the same end as
  reaching --train_steps.
"""

import json
import os
import time
from typing import Callable, Optional

import tensorflow as tf

from harness import files
from trainer.training import eval_events
from trainer.training import metric_goal

MARKER = "early_stopped.json"
CHECK_EVERY_SECS = 1.0


def marker(model_dir: str) -> Optional[dict]:
  path = os.path.join(model_dir, MARKER)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def clear(model_dir: str) -> None:
  """The chief, starting: this run has not stopped early (yet)."""
  path = os.path.join(model_dir, MARKER)
  if tf.io.gfile.exists(path):
    tf.io.gfile.remove(path)


def no_improvement(evaluations, metric: str, patience: int) -> Optional[dict]:
  """Why to stop: the last `patience` evaluations did not beat the best
  before them; None while they do (or there are too few)."""
  values = [(step, metrics[metric]) for step, metrics in evaluations
            if metric in metrics]
  if len(values) <= patience:
    return None
  best_step, best = values[0]
  for step, value in values[1:-patience]:
    if metric_goal.better(metric, value, best):
      best_step, best = step, value
  recent = values[-patience:]
  if any(metric_goal.better(metric, value, best) for _, value in recent):
    return None
  return {"metric": metric, "best": best, "best_step": best_step,
          "patience": patience, "evaluations": len(values)}


def describe(model_dir: str) -> Optional[str]:
  stopped = marker(model_dir)
  if not stopped:
    return None
  return ("Stopped early at step %d: %s has not improved for %d "
          "evaluations (best %.4f, at step %d)." % (
              stopped["global_step"], stopped["metric"],
              stopped["patience"], stopped["best"], stopped["best_step"]))


def stop_if_not_improving(model_dir: str, eval_dir: str, metric: str,
                          patience: int, step: int) -> Optional[str]:
  """The chief's check: where `metric` has not improved for `patience`
  evaluations, writes the marker (at global step `step`) and returns why;
  else None."""
  why = no_improvement(eval_events.evaluations(eval_dir), metric, patience)
  if not why:
    return None
  why["global_step"] = int(step)
  files.write_text(os.path.join(model_dir, MARKER), json.dumps(why),
                   tf.io.gfile)
  return describe(model_dir)


class Throttle:
  """True at most once every `secs`: the checks above read files."""

  def __init__(self, secs: float = CHECK_EVERY_SECS,
               clock: Callable[[], float] = time.monotonic):
    self._secs, self._clock = secs, clock
    self._next = 0.0

  def __call__(self) -> bool:
    if self._clock() < self._next:
      return False
    self._next = self._clock() + self._secs
    return True
