"""Whole jobs, in process, on the example models and data, on each backend
(the Estimator's where this TF has it: tests/conftest.py)."""

import dataclasses
import os

import numpy as np
import pytest
import tensorflow as tf

from example_kit import datasets
from tests import backend_jobs
from trainer.config import job as job_lib
from trainer.training import warm_start

# Every test here runs on each backend (`backend` below), except where it
# says otherwise.


@pytest.fixture(params=backend_jobs.BACKENDS)
def backend(request):
  return request.param


def _job(assets, tmp_path, handle=None, model=None, head=None, backend="auto",
         **overrides):
  """A job on the digits model; `overrides` are settings of its parts."""
  data = dict(train_files=[assets.data("digits_train.tfrecord")],
              eval_files=[assets.data("digits_eval.tfrecord")])
  run = dict(train_steps=30, log_every_steps=10, random_seed=0,
             backend=backend)
  for name, value in overrides.items():
    (data if name in {f.name for f in dataclasses.fields(
        job_lib.DataOptions)} else run)[name] = value
  return job_lib.JobConfig(
      model=model or job_lib.ModelOptions(handle or assets.digits_model,
                                          trainable=True),
      head=head or job_lib.HeadConfig(n_classes=5),
      data=job_lib.DataOptions(**data), run=job_lib.RunOptions(**run),
      model_dir=str(tmp_path / "model"))


def _run(job, log=lambda line: None):
  return backend_jobs.run(backend_jobs.check(job), log=log)


def _accuracy(job):
  return _run(job).metrics["accuracy"]


@pytest.mark.slow
def test_pretrained_model_beats_training_from_scratch(
    assets, scratch_digits_model, tmp_path, backend):
  """Two labelled images per digit, 30 steps, 3 seeds each; the runs differ
  only in where the hub model's weights start. Measured on 2 cores: about
  0.88 fine-tuned, 0.90 frozen, 0.80 from scratch (docs/transfer.md)."""
  few, rest = datasets.few_shot(
      datasets.digits(datasets.TRANSFER_CLASSES, datasets.TRANSFER_HALF), 2)
  train_file = datasets.write_tfrecord(few, str(tmp_path / "few.tfrecord"))
  eval_file = datasets.write_tfrecord(rest, str(tmp_path / "rest.tfrecord"))
  runs = {"fine-tuned": (assets.digits_model, True),
          "frozen": (assets.digits_model, False),
          "scratch": (scratch_digits_model, True)}
  accuracy = {}
  for name, (handle, trainable) in runs.items():
    accuracy[name] = np.mean([_accuracy(_job(
        assets, tmp_path / ("%s-%d" % (name, seed)),
        model=job_lib.ModelOptions(handle, trainable=trainable),
        train_files=[train_file], eval_files=[eval_file], batch_size=16,
        random_seed=seed, backend=backend)) for seed in range(3)])
  print("held-out accuracy after 30 steps:", accuracy)
  assert accuracy["fine-tuned"] > accuracy["scratch"] + 0.03
  assert accuracy["frozen"] > accuracy["scratch"] + 0.03


@pytest.mark.slow
@pytest.mark.estimator
def test_export_predicts_what_the_estimator_predicts(assets, tmp_path):
  from trainer.estimator import train  # pylint: disable=g-import-not-at-top
  job = _job(assets, tmp_path, backend="estimator")
  plan = backend_jobs.check(job)
  result = train.run(plan, log=lambda line: None)
  assert result.export_dir == os.path.join(job.model_dir, "export")
  assert result.checkpoint.endswith("model.ckpt-30")
  estimator = train.estimator_for(plan)
  _, eval_input = train.input_fns(plan)
  expected = [p["probabilities"] for p in estimator.predict(eval_input)]
  features, _ = next(iter(eval_input()))
  exported = tf.saved_model.load(result.export_dir)
  got = exported.signatures["serving_default"](
      inputs=features["inputs"])["probabilities"].numpy()
  np.testing.assert_allclose(got, np.array(expected[:len(got)]), atol=1e-5)


@pytest.mark.keras
@pytest.mark.slow  # 10 s of training and export: the slow tier.
def test_keras_export_predicts_what_the_trained_model_predicts(assets,
                                                              tmp_path):
  """The serving signature takes the raw input and returns what the model
  restored from the final checkpoint returns."""
  from trainer.keras import model as model_lib  # pylint: disable=g-import-not-at-top
  from trainer.keras import state as state_lib  # pylint: disable=g-import-not-at-top
  job = _job(assets, tmp_path, backend="keras")
  plan = backend_jobs.check(job)
  result = backend_jobs.run(plan, log=lambda line: None)
  assert result.export_dir == os.path.join(job.model_dir, "export")
  assert result.checkpoint.endswith("model.ckpt-30")
  trained = state_lib.create(plan.spec, job.head, with_optimizer=False)
  state_lib.restore(trained, result.checkpoint)
  eval_dataset = tf.data.TFRecordDataset(list(plan.eval_files))
  batch = next(iter(eval_dataset.batch(64).map(
      __import__("trainer.inputs.data", fromlist=["parser"]).parser(
          plan.eval_files, plan.inputs))))[0]
  expected = model_lib.predictions(trained.model(batch), 5)
  exported = tf.saved_model.load(result.export_dir)
  signature = exported.signatures["serving_default"]
  assert set(signature.structured_input_signature[1]) == {"inputs"}
  got = signature(inputs=batch["inputs"])
  np.testing.assert_allclose(got["probabilities"].numpy(),
                             expected["probabilities"].numpy(), atol=1e-6)
  np.testing.assert_array_equal(got["classes"].numpy(),
                                expected["classes"].numpy())


def test_progress_is_reported(assets, tmp_path, backend):
  lines = []
  _run(_job(assets, tmp_path, backend=backend), log=lines.append)
  assert any(line.startswith("step 20/30  loss ") and "examples/s" in line
             for line in lines), lines


@pytest.mark.slow
def test_regression_head(assets, tmp_path, backend):
  job = _job(assets, tmp_path, head=job_lib.HeadConfig(n_classes=0),
             backend=backend)
  metrics = _run(job).metrics
  assert {"rmse", "mae", "loss"} <= set(metrics)
  assert all(np.isfinite(value) for value in metrics.values())


def test_text_model_fine_tunes_on_csv_text(assets, tmp_path, backend):
  job = _job(assets, tmp_path, handle=assets.text_model, backend=backend,
             train_files=[assets.data("text_train.csv")],
             eval_files=[assets.data("text_eval.csv")],
             input_map={"inputs": "text"}, train_steps=100)
  accuracy = _accuracy(job)
  assert accuracy > 1 / 5 + 0.1  # Well above chance with 5 classes.


@pytest.mark.parametrize("options", [
    job_lib.ModelOptions("", tags=["foo", "bar"], signature="sig",
                         output_key="features"),
    job_lib.ModelOptions("", tags=["foo", "bar"], signature="sig",
                         signature_outputs_as_dict=True),
    job_lib.ModelOptions(""),  # TF1 Hub defaults: tags {}, signature default.
])
@pytest.mark.slow
def test_tf1_hub_model_trains_frozen(assets, tmp_path, options, backend):
  options = dataclasses.replace(options, module_handle=assets.tf1_hub_model)
  input_map = ({"x": "pixels"} if options.signature is None
               else {"x1": "pixels", "x2": "pixels"})
  job = _job(assets, tmp_path, model=options, input_map=input_map,
             train_steps=60, backend=backend)
  assert _accuracy(job) > 0.5


@pytest.mark.slow
def test_lazy_adam_learns_the_text_task_as_well_as_adam(assets, tmp_path,
                                                       backend):
  """The text model's embedding gets sparse gradients: lazy Adam updates
  only their rows. Held-out accuracy, 3 seeds each, 300 steps: the same
  within noise (5 seeds of 1000 steps: docs/performance.md)."""
  accuracy = {}
  for optimizer in ("adam", "lazy_adam"):
    accuracy[optimizer] = np.mean([_accuracy(_job(
        assets, tmp_path / ("%s-%d" % (optimizer, seed)),
        handle=assets.text_model,
        head=job_lib.HeadConfig(n_classes=5, hidden_units=(32,),
                                optimizer=optimizer),
        train_files=[assets.data("text_train.csv")],
        eval_files=[assets.data("text_eval.csv")],
        input_map={"inputs": "text"}, train_steps=300, random_seed=seed,
        backend=backend)) for seed in range(3)])
  print("held-out accuracy, mean of 3 seeds:", accuracy)
  assert accuracy["lazy_adam"] > 0.6 and accuracy["adam"] > 0.6
  assert abs(accuracy["lazy_adam"] - accuracy["adam"]) < 0.05


@pytest.mark.slow
@pytest.mark.estimator
def test_a_training_step_is_one_session_run(assets, tmp_path, monkeypatch):
  """With a step cadence for checkpoints, TF's CheckpointSaverHook would run
  the session a second time every step (trainer/estimator/checkpoints.py)."""
  # pylint: disable=g-import-not-at-top
  from tensorflow.python.client import session
  from trainer.estimator import train
  # pylint: enable=g-import-not-at-top
  runs = []
  real = session.tf_session.TF_SessionRun_wrapper
  monkeypatch.setattr(session.tf_session, "TF_SessionRun_wrapper",
                      lambda *args: runs.append(1) or real(*args))
  plan = backend_jobs.check(_job(assets, tmp_path, train_steps=400,
                                 save_checkpoints_steps=100,
                                 log_every_steps=100, backend="estimator"))
  estimator = train.estimator_for(plan)
  train_input, _ = train.input_fns(plan)
  estimator.train(train_input, max_steps=100)  # Start-up runs: not counted.
  runs.clear()
  estimator.train(train_input, max_steps=400)
  # 300 steps, one run each; a few more to start, restore, save 3 times and
  # write 3 summaries (a summary hook reads the global step again).
  assert 300 <= len(runs) < 300 + 50, len(runs)
  assert tf.train.latest_checkpoint(plan.job.model_dir).endswith("-400")


@pytest.mark.slow
def test_a_restarted_run_resumes_from_its_latest_checkpoint(assets, tmp_path,
                                                           backend):
  """What a restarted chief does: the same model directory, a larger
  budget; training goes on from the latest checkpoint, never earlier."""
  lines = []
  _run(_job(assets, tmp_path, train_steps=40, save_checkpoints_steps=20,
            backend=backend))
  assert warm_start.global_step(str(tmp_path / "model")) == 40
  _run(dataclasses.replace(_job(
      assets, tmp_path, train_steps=80, save_checkpoints_steps=20,
      backend=backend), export_dir=str(tmp_path / "second_export")),
       log=lines.append)
  first = [line for line in lines if line.startswith(
      "first training step done")]
  assert first and int(first[0].split()[-1]) in range(40, 52), lines
  assert warm_start.global_step(str(tmp_path / "model")) == 80


@pytest.mark.slow
def test_checkpoints_follow_the_cadence_and_the_limit(assets, tmp_path,
                                                      backend):
  _run(_job(assets, tmp_path, train_steps=60, save_checkpoints_steps=10,
            keep_checkpoint_max=3, backend=backend))
  state = tf.train.get_checkpoint_state(str(tmp_path / "model"))
  kept = [int(path.rsplit("-", 1)[1])
          for path in state.all_model_checkpoint_paths]
  assert kept == [40, 50, 60]
