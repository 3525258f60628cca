"""The evaluator task's loop, the same on both backends: evaluate each new
checkpoint, to the last.

Estimator's own loop ends only at a checkpoint of --train_steps, so after
an early stop it would wait forever; it also dies when the chief deletes
(keep_checkpoint_max) a checkpoint it chose but had not restored yet. This
loop evaluates the latest checkpoint whenever there is a new one (at most
every `throttle_secs`), and ends after evaluating the chief's final
checkpoint: the latest once the chief's export exists (the chief exports
after its last save). A checkpoint of --train_steps is not enough: the
workers step on while the chief stops, and its final save can come a step
or two later (a CI run evaluated step 62 of 60 and missed the final 63).
It waits as long as the job runs: the job's deadline is the engine's.

The backend evaluates one checkpoint (`evaluate`) and raises
`CheckpointGone` where the chief deleted it first: that checkpoint is
skipped for the latest. Every other error ends the task, with its own
message (never retried back to back).
"""

import time
from typing import Callable, Dict, Optional

import tensorflow as tf

POLL_SECS = 1.0


class CheckpointGone(Exception):
  """The checkpoint chosen for evaluation was deleted before it was read."""


def _final(checkpoint: str, model_dir: str, export_dir: str) -> bool:
  """Whether `checkpoint` is the chief's last: its export exists, written
  after its last save, and no checkpoint is newer."""
  return bool(tf.io.gfile.exists(export_dir) and
              tf.train.latest_checkpoint(model_dir) == checkpoint)


def evaluate_continuously(
    evaluate: Callable[[str], Dict[str, float]], *,
    model_dir: str, throttle_secs: float, export_dir: str,
    after: Callable[[str, Dict[str, float], bool], None] = (
        lambda checkpoint, metrics, final: None),
    start_delay_secs: float = 0, log: Callable[[str], None] = print,
    clock=time.monotonic, sleep=time.sleep) -> Optional[dict]:
  """Returns the metrics of the final evaluation.

  Args:
    evaluate: checkpoint -> its metrics; raises CheckpointGone where it
      was deleted first.
    after: runs after each evaluation (the best export), with whether it
      was the final one.
    start_delay_secs: the deliberate delay before the first
      (--eval_start_delay_secs).
  """
  if start_delay_secs:
    sleep(start_delay_secs)
  evaluated, metrics, next_allowed = None, None, 0.0
  while True:
    checkpoint = tf.train.latest_checkpoint(model_dir)
    if checkpoint and checkpoint != evaluated and clock() >= next_allowed:
      next_allowed = clock() + throttle_secs
      try:
        metrics = evaluate(checkpoint)
      except CheckpointGone as e:
        log("Checkpoint %s was deleted before it was evaluated (%s); "
            "evaluating the latest one." % (checkpoint, str(e).splitlines()[
                0][:200]))
        continue
      evaluated = checkpoint
      final = _final(checkpoint, model_dir, export_dir)
      after(checkpoint, metrics, final)
      if final:
        return metrics
    elif evaluated and _final(evaluated, model_dir, export_dir):
      return metrics  # The chief exported after the one last evaluated.
    sleep(POLL_SECS)
