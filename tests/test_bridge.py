"""The bridge: an Estimator run's checkpoint (written by TF 2.15) continues
on the Keras backend, on whatever TF is installed (TF 2.21 in CI's second
environment). tests/data/estimator_checkpoint/README.md says how the
checkpoint was written."""

import os
import re

import numpy as np
import pytest
import tensorflow as tf

from harness import errors
from tests import backend_jobs
from tests import flagged
from trainer.config import job as job_lib
from trainer.training import warm_start

pytestmark = pytest.mark.keras
CHECKPOINT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          "data", "estimator_checkpoint")


def _job(assets, model_dir, **run):
  return job_lib.JobConfig(
      model=job_lib.ModelOptions(assets.digits_model, trainable=True),
      head=job_lib.HeadConfig(n_classes=5),
      data=job_lib.DataOptions(
          train_files=[assets.data("digits_train.tfrecord")],
          eval_files=[assets.data("digits_eval.tfrecord")]),
      run=job_lib.RunOptions(backend="keras", warm_start_from=CHECKPOINT,
                             train_steps=40, log_every_steps=10,
                             save_checkpoints_steps=20, **run),
      model_dir=str(model_dir))


def test_the_vendored_checkpoint_is_an_estimators():
  saved = dict(tf.train.list_variables(CHECKPOINT))
  assert saved["global_step"] == [] and "dense1/kernel/LazyAdam" in saved
  assert warm_start.global_step(CHECKPOINT) == 50


@pytest.mark.slow
def test_an_estimator_checkpoint_continues_on_the_keras_backend(assets,
                                                                tmp_path):
  plan = backend_jobs.check(_job(assets, tmp_path / "model"))
  assert plan.backend.name == "keras"
  assert set(plan.warm_start[1]) == {
      "batch_norm/beta", "batch_norm/gamma", "batch_norm/moving_mean",
      "batch_norm/moving_variance", "dense1/bias", "dense1/kernel",
      "dense2/bias", "dense2/kernel", "logits/bias", "logits/kernel"}
  result = backend_jobs.run(plan, log=lambda line: None)
  # Before its first step the run holds exactly the Estimator's weights,
  # the hub model's and the head's; its own global step starts at 0.
  started = str(tmp_path / "model" / "model.ckpt-0")
  estimator = os.path.join(CHECKPOINT, "model.ckpt-50")
  for name in plan.warm_start[1]:
    np.testing.assert_array_equal(warm_start.read(started, name),
                                  warm_start.read(estimator, name))
  assert warm_start.global_step(str(tmp_path / "model")) == 40
  # It goes on from where the Estimator left it: trained, not from scratch.
  assert result.metrics["accuracy"] > 0.85


def test_a_mismatched_head_is_one_line_naming_both_shapes(assets, tmp_path):
  job = _job(assets, tmp_path / "model")
  job = job.__class__(**dict(job.__dict__, head=job_lib.HeadConfig(
      n_classes=7)))
  with flagged.raises(errors.FlagError, match=re.escape(
      "--warm_start_from: variable logits/bias has shape [5] in %s but [7] "
      "in this model; leave it out with --warm_start_vars (e.g. "
      "'^(?!logits)')." % os.path.join(CHECKPOINT, "model.ckpt-50"))):
    backend_jobs.check(job)
