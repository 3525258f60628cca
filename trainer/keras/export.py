"""The Keras backend's serving export, as the Estimator's.

The signature `serving_default` takes each model input raw, under its own
name, dtype and shape (as `data.serving_input_receiver_fn` does for the
Estimator; for a model of the user's own, the raw columns it takes), and
returns the same predictions: classes, probabilities and
logits, or a regression's predictions. It is exported from a checkpoint,
by a model built in this process alone (variables on the ps tasks cannot
be saved as they are placed), written next to the target and renamed, so
a failed export leaves nothing half-written.
"""

import uuid
from typing import Callable, Mapping, Optional

import tensorflow as tf

from trainer.config import job as job_lib
from trainer.hub_model import model_spec as model_spec_lib
from trainer.hub_model import user_model as user_model_lib
from trainer.inputs import data
from trainer.keras import model as model_lib
from trainer.keras import state as state_lib
from trainer.training import export_check


class Serving(tf.Module):
  """The model and its serving function."""

  def __init__(self, model: model_lib.Model,
               inputs: Mapping[str, tf.TensorSpec], n_classes: int):
    super().__init__()
    self.model = model
    names = list(inputs)

    def serve(*tensors):
      logits = self.model(dict(zip(names, tensors)), training=False)
      return model_lib.predictions(logits, n_classes)
    self.serve = tf.function(serve, input_signature=[
        tf.TensorSpec(s.shape, s.dtype, name=name)
        for name, s in inputs.items()])


def export(spec: model_spec_lib.ModelSpec, head: job_lib.HeadConfig,
           checkpoint: str, export_dir: str,
           user: Optional[user_model_lib.UserModel] = None,
           before_publishing: Optional[Callable[[str], None]] = None) -> str:
  """Exports the model of `checkpoint` to exactly `export_dir`;
  `before_publishing(staged)` runs on the written export before it is
  renamed there (the export check)."""
  local = state_lib.create(spec, head, with_optimizer=False, user=user)
  state_lib.restore(local, checkpoint)
  module = Serving(local.model,
                   user.serving_inputs if user else spec.inputs,
                   head.n_classes)
  staging = "%s.staging-%s" % (export_dir.rstrip("/"), uuid.uuid4().hex[:8])
  try:
    tf.saved_model.save(module, staging,
                        signatures={"serving_default": module.serve})
    if before_publishing:
      before_publishing(staging)
    tf.io.gfile.rename(staging, export_dir)
  finally:
    if tf.io.gfile.exists(staging):
      tf.io.gfile.rmtree(staging)
  return export_dir


def verify(p, staged: str, model: model_lib.Model,
           log: Callable[[str], None]) -> export_check.Verdict:
  """The export check (trainer.training.export_check) against `model`, the
  model this task trained (on a cluster, its variables on the ps), on the
  first rows of the evaluation data; `staged`: the export, written and not
  yet renamed to the job's export directory."""

  def predict(features, labels):
    del labels  # Predictions only.
    logits = model({name: tf.constant(value)
                    for name, value in features.items()}, training=False)
    return {name: value.numpy() for name, value in model_lib.predictions(
        logits, p.job.head.n_classes).items()}
  return export_check.verify(p.job.resolved_export_dir, staged,
                             p.job.run.verify_export_rows,
                             data.rows_reader(p.eval_files, p.eval_inputs),
                             predict, log)


def export_checked(p, checkpoint: str, model: model_lib.Model,
                   log: Callable[[str], None]):
  """The job's final export, checked against `model` before it is renamed
  into place: (its directory, the check's verdict)."""
  return export_check.checked_export(
      lambda before_publishing: export(
          p.spec, p.job.head, checkpoint, p.job.resolved_export_dir,
          user=p.user_model, before_publishing=before_publishing),
      lambda staged: verify(p, staged, model, log))
