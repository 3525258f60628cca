"""Every job proves its own export (trainer.training.export_check): the
comparison itself, and whole jobs whose export was broken on purpose
between its writing and its check (its variables reset to the untrained
model's; a serving function that drops a column), which must fail with one
line and keep the export aside. That every job the other tests train
passes the check is shown by their summaries: a failed check fails the
job."""

import json
import os

import numpy as np
import pytest

from tests import backend_jobs
from tests import served
from trainer import task
from trainer.config import cli
from trainer.training import export_check

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS = 6


def _outputs(probabilities):
  probabilities = np.asarray(probabilities, np.float32)
  return {"probabilities": probabilities,
          "classes": np.argmax(probabilities, axis=1).astype(np.int64)}


def _rows(classes):
  return np.eye(3, dtype=np.float32)[classes] * 0.8 + 0.1


def test_the_same_outputs_verify():
  trained = _outputs(_rows([0, 1, 2, 0, 1, 2]))
  served_outputs = {k: v.copy() for k, v in trained.items()}
  served_outputs["probabilities"][0, 0] += 2**-20  # Rounding, not a change.
  served_outputs["extra"] = np.zeros([ROWS])  # Compared by shared names.
  verdict = export_check.compare(served_outputs, trained, ROWS)
  assert verdict.ok and verdict.compared == ("classes", "probabilities")
  assert verdict.agreed == ROWS
  assert verdict.largest == 2**-20
  assert verdict.describe().startswith(
      "Export check: verified on 6 evaluation row(s), served as a server "
      "would: outputs classes, probabilities; largest difference 9.54e-07 "
      "(probabilities); all outputs agree on 6/6 rows")


def test_a_changed_probability_or_class_fails_naming_it():
  trained = _outputs(_rows([0, 1, 2, 0, 1, 2]))
  verdict = export_check.compare(_outputs(_rows([0, 1, 2, 0, 1, 0])),
                                 trained, ROWS)
  assert not verdict.ok
  assert verdict.failures == ("probabilities differs by up to 0.8",
                              "only 5 of 6 rows agree on classes")
  assert "FAILED" in verdict.describe()


def test_nothing_to_compare_is_never_verified():
  verdict = export_check.compare({"scores": np.zeros([2])},
                                 {"logits": np.zeros([2])}, 2)
  assert not verdict.ok and verdict.why_not.startswith(
      "the export's outputs (scores) share no name with the trained "
      "model's predictions (logits)")
  assert verdict.describe().startswith("Export check: not done: ")
  assert export_check.skipped(0, True).describe() == (
      "Export check: not done: off (--verify_export_rows=0).")
  assert export_check.skipped(5, False).describe() == (
      "Export check: not done: no evaluation data (--eval_files) to serve "
      "it.")
  assert export_check.skipped(5, True) is None


def _args(assets, model_dir, backend, *more):
  return ["--module_handle=" + assets.digits_model,
          "--train_files=" + assets.data("digits_train.tfrecord"),
          "--eval_files=" + assets.data("digits_eval.tfrecord"),
          "--n_classes=5", "--train_steps=40", "--save_checkpoints_steps=20",
          "--log_every_steps=20", "--learning_rate=0.05",
          "--model_dir=" + str(model_dir), "--backend=" + backend] + list(more)


def _reset_to_untrained(backend, monkeypatch):
  """The export, once written and before its check, replaced by one of the
  checkpoint of step 0: as if its variables were reset."""
  if backend == "keras":
    from trainer.keras import export as export_lib  # pylint: disable=g-import-not-at-top
    real = export_lib.export

    def export(spec, head, checkpoint, export_dir, user=None,
               before_publishing=None):
      def reset_then_check(staged):
        untrained = export_dir + ".untrained"
        real(spec, head, checkpoint.rsplit("-", 1)[0] + "-0", untrained,
             user=user)
        _replace(untrained, staged)
        before_publishing(staged)
      return real(spec, head, checkpoint, export_dir, user=user,
                  before_publishing=reset_then_check)
    monkeypatch.setattr(export_lib, "export", export)
  else:
    from trainer.estimator import train as train_lib  # pylint: disable=g-import-not-at-top
    real = train_lib.export

    def export(estimator, p, export_dir, before_publishing=None):
      def reset_then_check(staged):
        written = estimator.export_saved_model(
            export_dir + ".untrained",
            train_lib.serving_input_receiver_fn(p.serving_inputs),
            checkpoint_path=os.path.join(p.job.model_dir, "model.ckpt-0"))
        _replace(written.decode() if isinstance(written, bytes) else written,
                 staged)
        before_publishing(staged)
      return real(estimator, p, export_dir,
                  before_publishing=reset_then_check)
    monkeypatch.setattr(train_lib, "export", export)


def _replace(source, target):
  import shutil  # pylint: disable=g-import-not-at-top
  shutil.rmtree(target)
  os.rename(source, target)


@pytest.mark.slow
@pytest.mark.parametrize("backend", backend_jobs.BACKENDS)
def test_an_export_reset_after_it_was_written_fails_the_job(
    backend, assets, tmp_path, monkeypatch, capsys):
  """The one line names the largest difference and where the export and
  its record are; the export is kept aside, none is left to serve."""
  _reset_to_untrained(backend, monkeypatch)
  model_dir = tmp_path / "model"
  assert task.run(cli.new_flag_values(_args(assets, model_dir, backend)),
                  environ={}) == 1
  err = capsys.readouterr().err.strip().splitlines()[-1]
  export = str(model_dir / "export")
  assert err.startswith(
      "error: The export does not serve what the trained model predicts on "
      "256 evaluation rows: "), err
  assert err.endswith(
      "it is kept for inspection as %s.failed-check (%s.check.json says "
      "more)." % (export, export)), err
  assert "differs by up to" in err
  assert not os.path.exists(export)
  with open(export + ".check.json") as f:
    record = json.load(f)
  assert not record["ok"] and record["rows"] == 256 and record["failures"]
  assert served.inputs(export + ".failed-check") == ["inputs"]


@pytest.mark.slow
@pytest.mark.keras
def test_a_serving_function_that_drops_a_column_fails_the_job(
    assets, tmp_path, monkeypatch, capsys):
  """Your model reads two columns; an export that feeds zeros for one of
  them instead of what it is given is not the model trained."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from trainer.keras import export as export_lib  # pylint: disable=g-import-not-at-top
  from trainer.keras import model as model_lib  # pylint: disable=g-import-not-at-top

  class DropsShift(export_lib.Serving):

    def __init__(self, model, inputs, n_classes):
      super().__init__(model, inputs, n_classes)
      names = list(inputs)

      def serve(*tensors):
        features = dict(zip(names, tensors))
        features["shift"] = tf.zeros_like(features["shift"])
        return model_lib.predictions(self.model(features, training=False),
                                     n_classes)
      self.serve = tf.function(serve, input_signature=[
          tf.TensorSpec(s.shape, s.dtype, name=name)
          for name, s in inputs.items()])
  monkeypatch.setattr(export_lib, "Serving", DropsShift)
  model_dir = tmp_path / "model"
  args = ["--flagfile=" + os.path.join(REPO, "configs",
                                       "your_model.cfg"),
          "--module_handle=" + assets.digits_model,
          "--train_files=" + assets.data("shifted_train.tfrecord"),
          "--eval_files=" + assets.data("shifted_eval.tfrecord"),
          "--train_steps=300", "--save_checkpoints_steps=300",
          "--model_dir=" + str(model_dir), "--backend=keras"]
  assert task.run(cli.new_flag_values(args), environ={}) == 1
  err = capsys.readouterr().err.strip().splitlines()[-1]
  assert "rows agree on classes" in err and "differs by up to" in err, err
  assert os.path.exists(str(model_dir / "export") + ".failed-check")
