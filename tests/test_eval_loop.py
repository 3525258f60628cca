"""trainer.training.eval_loop: the evaluator's loop, on real checkpoints.

The chief's side (new checkpoints, old ones deleted, the export) is played
by the loop's own `sleep`, so each scenario runs without waiting; the
checkpoints are real ones (tf.train.CheckpointManager), read by TF as the
evaluator reads the chief's.
"""

import os

import pytest
import tensorflow as tf

from trainer.training import eval_loop


class Chief:
  """Saves checkpoints into a model directory, keeping `keep` of them, and
  exports; each `sleep` of the loop runs the next of `script`."""

  def __init__(self, model_dir, keep=5, script=(), global_step=False):
    self.model_dir = str(model_dir)
    self.export_dir = os.path.join(self.model_dir, "export")
    self._step = tf.Variable(0, dtype=tf.int64)
    # With `global_step`, where the Keras backend's checkpoints keep it.
    tracked = (tf.train.Checkpoint(optimizer=tf.train.Checkpoint(
        iter=self._step)) if global_step else
               tf.train.Checkpoint(step=self._step))
    self._manager = tf.train.CheckpointManager(
        tracked, self.model_dir, max_to_keep=keep)
    self.script = list(script)
    self.sleeps = 0

  def save(self, step):
    self._step.assign(step)
    return self._manager.save(checkpoint_number=step)

  def export(self):
    os.makedirs(self.export_dir)

  def sleep(self, secs):
    del secs
    self.sleeps += 1
    assert self.script, "the loop waited on after the chief was done"
    self.script.pop(0)()

  def loop(self, evaluate, throttle_secs=0, **kwargs):
    return eval_loop.evaluate_continuously(
        evaluate, model_dir=self.model_dir, throttle_secs=throttle_secs,
        export_dir=self.export_dir, sleep=self.sleep, clock=lambda: 0.0,
        **kwargs)


def metrics_of(checkpoint):
  return {"global_step": int(checkpoint.rsplit("-", 1)[1])}


def test_it_ends_with_the_chief_s_last_checkpoint(tmp_path):
  """Not at a checkpoint of --train_steps: the workers step on while the
  chief stops, and its last save comes later (a CI run evaluated 62 of 60
  and missed the final 63). The end is the export, after the last save."""
  chief = Chief(tmp_path)
  evaluated, finals = [], []
  chief.save(62)
  chief.script = [lambda: chief.save(63), chief.export]

  def evaluate(checkpoint):
    evaluated.append(checkpoint)
    return metrics_of(checkpoint)
  metrics = chief.loop(evaluate, after=lambda c, m, final: finals.append(final))
  assert [c.rsplit("-", 1)[1] for c in evaluated] == ["62", "63"]
  assert metrics == {"global_step": 63}
  assert finals == [False, False]  # The export came after 63's evaluation.


def test_the_evaluation_after_the_export_is_the_final_one(tmp_path):
  chief = Chief(tmp_path)
  chief.save(60)
  chief.export()
  finals = []
  metrics = chief.loop(metrics_of,
                       after=lambda c, m, final: finals.append(final))
  assert metrics == {"global_step": 60} and finals == [True]
  assert chief.sleeps == 0


def test_the_throttle_does_not_hold_back_the_final_evaluation(tmp_path):
  """The clock stands still, so a throttled loop would wait on past the
  script's end (Chief.sleep fails): once the export exists, the final
  checkpoint is evaluated at once."""
  chief = Chief(tmp_path)
  chief.save(100)
  chief.script = [lambda: (chief.save(300), chief.export())]
  evaluated = []

  def evaluate(checkpoint):
    evaluated.append(checkpoint.rsplit("-", 1)[1])
    return metrics_of(checkpoint)
  metrics = chief.loop(evaluate, throttle_secs=600)
  assert evaluated == ["100", "300"] and metrics == {"global_step": 300}


def test_the_throttle_paces_evaluations_while_the_chief_trains(tmp_path):
  chief = Chief(tmp_path)
  chief.save(100)
  chief.script = [lambda: chief.save(200), lambda: None]
  evaluated = []

  def evaluate(checkpoint):
    evaluated.append(checkpoint.rsplit("-", 1)[1])
    return metrics_of(checkpoint)
  with pytest.raises(AssertionError, match="waited on"):
    chief.loop(evaluate, throttle_secs=600)
  assert evaluated == ["100"]  # 200 came within the throttle's 600 s.


def test_a_deleted_checkpoint_is_skipped_for_the_latest(tmp_path):
  """keep_checkpoint_max: the chief deletes the checkpoint the evaluator
  chose before it was read; the loop says so and evaluates the latest."""
  chief = Chief(tmp_path, keep=1)
  chief.save(10)
  logged, evaluated = [], []

  def evaluate(checkpoint):
    evaluated.append(checkpoint)
    if checkpoint.endswith("-10"):
      chief.save(20)  # Deletes ckpt-10 (keep=1).
      chief.export()
      assert not tf.io.gfile.exists(checkpoint + ".index")
      raise eval_loop.CheckpointGone("NotFoundError: " + checkpoint)
    return metrics_of(checkpoint)
  metrics = chief.loop(evaluate, log=logged.append)
  assert metrics == {"global_step": 20}
  assert [c.rsplit("-", 1)[1] for c in evaluated] == ["10", "20"]
  assert logged[0] == ("Checkpoint %s was deleted before it was evaluated "
                       "(NotFoundError: %s); evaluating the latest one." % (
                           evaluated[0], evaluated[0]))
  # From then on it reads a pinned copy, removed when the loop ends.
  pinned = os.path.join(chief.model_dir, eval_loop.PINNED)
  assert evaluated[1] == os.path.join(pinned, "ckpt-20")
  assert pinned in logged[1] and len(logged) == 2
  assert not os.path.exists(pinned)


def test_a_chief_that_deletes_each_checkpoint_first_does_not_starve_it(
    tmp_path):
  """Fast steps and frequent saves on a loaded machine: the chief saves
  (keep=1) while the evaluator restores, so each checkpoint it chose is
  gone before its read (a CI run evaluated none in 300 s). After the first
  miss, each is pinned before the read, and its evaluations go on."""
  chief = Chief(tmp_path, keep=1, script=[lambda: None] * 3)
  chief.save(10)
  reads, calls = [], []

  def evaluate(checkpoint):
    calls.append(checkpoint)
    assert len(calls) < 20, "starved: no checkpoint was read in 20 tries"
    step = metrics_of(checkpoint)["global_step"]
    if not os.path.exists(chief.export_dir):
      chief.save(step + 10)  # The chief's next save, before the read.
    try:
      reader = tf.train.load_checkpoint(checkpoint)
    except (tf.errors.NotFoundError, ValueError) as e:
      raise eval_loop.CheckpointGone(str(e)) from e
    reads.append(int(reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE")))
    if len(reads) == 3:
      chief.export()
    return {"global_step": reads[-1]}
  assert chief.loop(evaluate, log=lambda line: None) == {"global_step": 50}
  # ckpt-10 was gone; 20, 30 and 40 were read from their pinned copies
  # though the chief had deleted each of them (keep=1); then its last, 50.
  assert reads == [20, 30, 40, 50]


def test_any_other_error_ends_the_loop_at_once(tmp_path):
  """A real error (a bug in the input pipeline, a missing model) is not
  retried: it ends the evaluator, with its own message."""
  chief = Chief(tmp_path)
  chief.save(10)
  calls = []

  def evaluate(checkpoint):
    calls.append(checkpoint)
    raise ValueError("a bug in the input pipeline")
  with pytest.raises(ValueError, match="a bug in the input pipeline"):
    chief.loop(evaluate)
  assert len(calls) == 1 and chief.sleeps == 0


@pytest.mark.parametrize("untrained", [False, True])
def test_the_untrained_checkpoint_is_evaluated_only_when_asked(
    tmp_path, untrained):
  """The chief's checkpoint of step 0, the model before its first step, is
  left unevaluated (said once) unless --eval_untrained asks for it."""
  chief = Chief(tmp_path, global_step=True)
  chief.script = [lambda: chief.save(20), chief.export]
  chief.save(0)
  evaluated, lines = [], []
  chief.loop(lambda c: evaluated.append(c) or metrics_of(c),
             untrained=untrained, log=lines.append)
  steps = [int(path.rsplit("-", 1)[1]) for path in evaluated]
  assert steps == ([0, 20] if untrained else [20])
  assert any("Not evaluating" in line and line.endswith(
      "the model before its first step (--eval_untrained evaluates it).")
             for line in lines) != untrained
