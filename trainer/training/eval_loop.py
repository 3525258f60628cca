"""The evaluator task's loop, the same on both backends: evaluate each new
checkpoint, to the last.

Estimator's own loop ends only at a checkpoint of --train_steps, so after
an early stop it would wait forever; it also dies when the chief deletes
(keep_checkpoint_max) a checkpoint it chose but had not restored yet. This
loop evaluates the latest checkpoint whenever there is a new one (at most
every `throttle_secs`), and ends after evaluating the chief's final
checkpoint: the latest once the chief's export exists (the chief exports
after its last save). The throttle does not hold back that final
evaluation: once the export exists there is nothing left to pace, and the
job's result waits on it (a 300-step demo ended up to 10 s later). A
checkpoint of --train_steps is not enough: the workers step on while the
chief stops, and its final save can come a step or two later (a CI run
evaluated step 62 of 60 and missed the final 63).
It waits as long as the job runs: the job's deadline is the engine's.
The checkpoint of global step 0, the model before its first step, is not
evaluated unless asked (`untrained`, --eval_untrained): its figures say
nothing of the training, and a tuner must never judge a trial by them.

The backend evaluates one checkpoint (`evaluate`) and raises
`CheckpointGone` where the chief deleted it first: that checkpoint is
skipped for the latest. Where that happens the chief may be saving faster
than this task restores (frequent saves, fast steps, a loaded machine: a CI
run deleted every checkpoint before it was read, for 300 s), so from then
on each checkpoint is pinned first: its files linked (copied where links
cannot be made, e.g. on gs://) into MODEL_DIR/evaluator-pinned/, which the
chief's deletions do not touch, and evaluated there. Every other error ends
the task, with its own message (never retried back to back).
"""

import os
import time
from typing import Callable, Dict, Optional

import tensorflow as tf

from trainer.training import warm_start as warm_start_lib

POLL_SECS = 1.0
PINNED = "evaluator-pinned"


class CheckpointGone(Exception):
  """The checkpoint chosen for evaluation was deleted before it was read."""


def pin(checkpoint: str, pinned_dir: str) -> str:
  """Links (or copies) `checkpoint`'s files into `pinned_dir`, in place of
  the last pinned one, and returns the pinned checkpoint's path. Raises
  CheckpointGone where the chief deleted a file first."""
  if tf.io.gfile.exists(pinned_dir):
    tf.io.gfile.rmtree(pinned_dir)
  tf.io.gfile.makedirs(pinned_dir)
  sources = tf.io.gfile.glob(checkpoint + ".*")
  if not any(source.endswith(".index") for source in sources):
    raise CheckpointGone("%s.index is gone" % checkpoint)
  for source in sources:
    target = os.path.join(pinned_dir, os.path.basename(source))
    try:
      try:
        os.link(source, target)  # Instant, and the chief cannot delete it.
      except OSError:
        tf.io.gfile.copy(source, target, overwrite=True)
    except (OSError, tf.errors.NotFoundError) as e:
      raise CheckpointGone("%s: %s" % (source, e)) from e
  return os.path.join(pinned_dir, os.path.basename(checkpoint))


def is_untrained(checkpoint: str) -> bool:
  """Whether `checkpoint` is of global step 0 (False where it is gone)."""
  try:
    return warm_start_lib.global_step(checkpoint) == 0
  except (tf.errors.NotFoundError, ValueError):
    return False


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
    start_delay_secs: float = 0, untrained: bool = False,
    log: Callable[[str], None] = print,
    clock=time.monotonic, sleep=time.sleep) -> Optional[dict]:
  """Returns the metrics of the final evaluation.

  Args:
    evaluate: checkpoint -> its metrics; raises CheckpointGone where it
      was deleted first.
    after: runs after each evaluation (the best export), with whether it
      was the final one.
    start_delay_secs: the deliberate delay before the first
      (--eval_start_delay_secs).
    untrained: evaluate the checkpoint of global step 0 too.
  """
  if start_delay_secs:
    sleep(start_delay_secs)
  evaluated, metrics, next_allowed = None, None, 0.0
  pinned_dir = None  # Set once the chief has deleted one before its read.
  skipped = None  # The untrained checkpoint, left unevaluated.
  while True:
    checkpoint = tf.train.latest_checkpoint(model_dir)
    if (checkpoint and checkpoint not in (evaluated, skipped) and
        not untrained and is_untrained(checkpoint)):
      skipped = checkpoint
      log("Not evaluating %s, the model before its first step "
          "(--eval_untrained evaluates it)." % checkpoint)
    elif checkpoint and checkpoint not in (evaluated, skipped) and (
        clock() >= next_allowed or tf.io.gfile.exists(export_dir)):
      next_allowed = clock() + throttle_secs
      try:
        read = pin(checkpoint, pinned_dir) if pinned_dir else checkpoint
        metrics = evaluate(read)
      except CheckpointGone as e:
        log("Checkpoint %s was deleted before it was evaluated (%s); "
            "evaluating the latest one." % (checkpoint, str(e).splitlines()[
                0][:200]))
        if not pinned_dir:
          pinned_dir = os.path.join(model_dir, PINNED)
          log("The chief deletes checkpoints (--keep_checkpoint_max) "
              "faster than this evaluator reads them: from now on each is "
              "first linked or copied into %s." % pinned_dir)
        continue
      evaluated = checkpoint
      final = _final(checkpoint, model_dir, export_dir)
      after(read, metrics, final)
      if final:
        break
    elif evaluated and _final(evaluated, model_dir, export_dir):
      break  # The chief exported after the one last evaluated.
    sleep(POLL_SECS)
  if pinned_dir and tf.io.gfile.exists(pinned_dir):
    tf.io.gfile.rmtree(pinned_dir)
  return metrics
