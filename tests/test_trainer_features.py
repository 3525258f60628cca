"""Warm start, best export, the NaN guard, early stopping, TensorBoard.

Each feature as a user meets it: real training runs of the example models,
checked through what they leave behind (checkpoints, event files, exports,
the command line's output) and, for TensorBoard, through the real
`tensorboard` server's HTTP API.
"""

import os
import re
import subprocess
import sys
import urllib.request

import numpy as np
import portpicker
import pytest
import tensorflow as tf

from harness import errors
from tests import backend_jobs
from tests import flagged
from tests import http_json
from tests import launcher
from tests import processes
from trainer.config import job as job_lib
from trainer.training import best_export
from trainer.training import early_stopping
from trainer.training import eval_events
from trainer.training import warm_start

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOSS = re.compile(r"^step (\d+)/\d+  loss ([\d.]+)")


def _job(assets, model_dir, n_classes=5, data=None, **run):
  run.setdefault("train_steps", 60)
  run.setdefault("log_every_steps", 1)
  run.setdefault("random_seed", 0)
  run.setdefault("steps_per_execution", 1)  # Keras: a line after each step.
  return job_lib.JobConfig(
      model=job_lib.ModelOptions(assets.digits_model, trainable=True),
      head=job_lib.HeadConfig(n_classes=n_classes),
      data=data or job_lib.DataOptions(
          train_files=[assets.data("digits_train.tfrecord")],
          eval_files=[assets.data("digits_eval.tfrecord")]),
      run=job_lib.RunOptions(**run), model_dir=str(model_dir))


def _losses(job):
  """(step, loss) of every progress line of a run."""
  lines = []
  backend_jobs.run(backend_jobs.check(job, log=lambda line: None),
                   log=lines.append)
  return [(int(m.group(1)), float(m.group(2)))
          for m in map(LOSS.match, lines) if m]


# Warm start.


@pytest.mark.parametrize("first_backend,backend", [
    pytest.param("estimator", "estimator", marks=pytest.mark.estimator),
    pytest.param("keras", "keras", marks=pytest.mark.keras),
    # The bridge both ways, where both backends run (TF 2.15).
    pytest.param("estimator", "keras", marks=pytest.mark.estimator),
    pytest.param("keras", "estimator", marks=pytest.mark.estimator)])
@pytest.mark.slow
def test_a_warm_start_begins_where_the_other_run_ended(assets, tmp_path,
                                                       first_backend,
                                                       backend):
  finished = _losses(_job(assets, tmp_path / "first", backend=first_backend))
  warm = _losses(_job(assets, tmp_path / "warm", train_steps=10,
                      warm_start_from=str(tmp_path / "first"),
                      backend=backend))
  fresh = _losses(_job(assets, tmp_path / "fresh", train_steps=10,
                       backend=backend))
  last = np.mean([loss for _, loss in finished[-5:]])
  print("last losses of the finished run %.3f; first: warm %.3f, fresh %.3f"
        % (last, warm[0][1], fresh[0][1]))
  # Both first lines come after the first step (the Estimator's hook reads
  # the global step the step began at, 1; the Keras loop the one it ends
  # at, 2).
  assert warm[0][0] == fresh[0][0] in (1, 2)
  assert abs(warm[0][1] - last) < 0.25 * abs(fresh[0][1] - last)
  # The global step was not taken: the warm run trained its own 10 steps.
  assert warm_start.global_step(str(tmp_path / "warm")) == 10


@pytest.mark.slow
@pytest.mark.parametrize("backend", backend_jobs.BACKENDS)
def test_another_head_warm_starts_everything_but_the_head(assets, tmp_path,
                                                          backend):
  _losses(_job(assets, tmp_path / "first", train_steps=20, backend=backend))
  first = str(tmp_path / "first")
  six = dict(n_classes=6, train_steps=1, warm_start_from=first,
             backend=backend)
  with flagged.raises(errors.FlagError, match=re.escape(
      "--warm_start_from: variable logits/bias has shape [5] in %s but [6] "
      "in this model; leave it out with --warm_start_vars (e.g. "
      "'^(?!logits)')." % tf.train.latest_checkpoint(first))):
    backend_jobs.check(_job(assets, tmp_path / "six", **six))
  plan = backend_jobs.check(_job(assets, tmp_path / "six",
                                 warm_start_vars="^(?!logits)", **six))
  assert "logits/kernel" not in plan.warm_start[1]
  assert "dense1/kernel" in plan.warm_start[1]
  backend_jobs.run(plan, log=lambda line: None)
  started = str(tmp_path / "six" / "model.ckpt-0")
  np.testing.assert_array_equal(
      warm_start.read(started, "dense1/kernel"),
      warm_start.read(tf.train.latest_checkpoint(first), "dense1/kernel"))
  assert warm_start.read(started, "logits/kernel").shape == (32, 6)


@pytest.mark.parametrize("setting,message", [
    (dict(warm_start_from="/no/such/run"), "--warm_start_from=/no/such/run "
     "is neither a model directory nor a checkpoint"),
    (dict(warm_start_from="{empty}"), "holds no checkpoint"),
    (dict(warm_start_from="{first}", warm_start_vars="("),
     "--warm_start_vars=( is not a regular expression"),
    (dict(warm_start_from="{first}", warm_start_vars="nothing"),
     "--warm_start_vars=nothing matches none of the model's variables"),
    (dict(export_best="precision"), "--export_best=precision is not a "
     "metric this head reports; it reports: accuracy, loss, data_loss"),
    (dict(early_stopping_metric="loss", early_stopping_patience=0),
     "--early_stopping_patience (0) must be >= 1"),
    (dict(profile_steps=(9, 3)), "--profile_steps=9,3 must be two global "
     "steps FIRST,LAST"),
])
@pytest.mark.slow
def test_bad_feature_settings_are_named(assets, tmp_path, setting, message):
  (tmp_path / "empty").mkdir()
  first = tmp_path / "first"
  if "{first}" in str(setting.get("warm_start_from")):
    _losses(_job(assets, first, train_steps=2))
  setting = {k: v.format(empty=tmp_path / "empty", first=first)
             if isinstance(v, str) else v for k, v in setting.items()}
  with flagged.raises(errors.FlagError, match=re.escape(message)):
    backend_jobs.check(_job(assets, tmp_path / "run", **setting))


def test_features_that_need_evaluations_say_so(assets, tmp_path):
  no_eval = job_lib.DataOptions(
      train_files=[assets.data("digits_train.tfrecord")])
  with flagged.raises(errors.FlagError, match=re.escape(
      "--early_stopping_metric needs evaluations, and --eval_files is "
      "empty.")):
    backend_jobs.check(_job(assets, tmp_path, data=no_eval,
                         early_stopping_metric="accuracy"))


# Best export.


@pytest.mark.slow
@pytest.mark.parametrize("backend", backend_jobs.BACKENDS)
def test_the_best_export_is_the_best_evaluation(assets, tmp_path, backend):
  job = _job(assets, tmp_path / "run", train_steps=120, log_every_steps=20,
             save_checkpoints_steps=20, eval_throttle_secs=0,
             export_best="loss", backend=backend)
  result = backend_jobs.run(backend_jobs.check(job, log=lambda line: None),
                            log=lambda line: None)
  evaluations = eval_events.evaluations(str(tmp_path / "run" / "eval"))
  assert len(evaluations) >= 4
  best_step, best = min(evaluations, key=lambda e: (e[1]["loss"], e[0]))
  record = best_export.record(str(tmp_path / "run"))
  assert record["global_step"] == best_step
  assert record["value"] == pytest.approx(best["loss"], rel=1e-6)
  exported = record["path"]
  assert os.path.dirname(exported) == str(tmp_path / "run" / "export_best")
  if backend == "estimator":  # Its export keeps the global step.
    assert tf.train.load_variable(os.path.join(exported, "variables",
                                               "variables"),
                                  "global_step") == best_step
  assert "serving_default" in tf.saved_model.load(exported).signatures
  assert result.export_dir  # The final export too, as always.
  print("evaluations:", [(s, round(m["loss"], 4)) for s, m in evaluations])


# The NaN guard.


@pytest.mark.slow
@pytest.mark.parametrize("backend", backend_jobs.BACKENDS)
def test_a_diverging_run_stops_at_once_with_one_line(demo_cwd, backend):
  proc = subprocess.run(
      [sys.executable, "-m", "trainer.task", "--optimizer=sgd",
       "--learning_rate=1e12", "--train_steps=1000",
       "--backend=" + backend,
       "--model_dir=%s" % (demo_cwd / "model")],
      cwd=str(demo_cwd), env=dict(os.environ, PYTHONPATH=REPO),
      capture_output=True, text=True, timeout=300, check=False)
  assert proc.returncode == 1
  assert "Traceback" not in proc.stderr
  errors_ = [l for l in proc.stderr.splitlines() if l.startswith("error: ")]
  assert len(errors_) == 1, proc.stderr[-2000:]
  assert re.match(r"error: The loss became (nan|inf) at global step (\d+) "
                  r"\(--optimizer=sgd, --learning_rate=1e\+12\): training "
                  r"stopped\. Lower --learning_rate \(e\.g\. to 1e\+11\)",
                  errors_[0]), errors_
  step = int(re.search(r"global step (\d+)", errors_[0]).group(1))
  assert step < 50  # Stopped at once, not at --train_steps.


@pytest.mark.cluster
@pytest.mark.parametrize("backend", backend_jobs.BACKENDS)
def test_a_diverging_cluster_stops_every_task(demo_cwd, backend):
  proc = launcher.run(demo_cwd, str(demo_cwd / "run"),
                      ["--optimizer=sgd", "--learning_rate=1e12",
                       "--train_steps=100000", "--backend=" + backend],
                      num_workers=1,
                      evaluator=False, deadline_secs=300)
  assert proc.returncode == 1
  first = re.search(r"(?m)^error: ", proc.stderr).start()
  error = proc.stderr[first:].splitlines()[0]
  assert re.match(r"error: (chief|worker)-0 exited with code 1; not "
                  r"restarted: exit code 1 means an error", error), error
  assert "The loss became" in proc.stderr


# Early stopping.


def test_no_improvement_rule():
  rule = early_stopping.no_improvement
  evals = lambda *values: [(10 * (i + 1), {"accuracy": v, "loss": -v})
                           for i, v in enumerate(values)]
  assert rule(evals(0.5, 0.6, 0.6, 0.59), "accuracy", 2) == {
      "metric": "accuracy", "best": 0.6, "best_step": 20, "patience": 2,
      "evaluations": 4}
  assert rule(evals(0.5, 0.6, 0.61, 0.59), "accuracy", 2) is None
  assert rule(evals(0.5, 0.6), "accuracy", 2) is None  # Too few yet.
  # Lower is better for a loss: losses -0.7, -0.6, -0.5, -0.55 got worse.
  assert rule(evals(0.7, 0.6, 0.5, 0.55), "loss", 2)["best"] == -0.7
  assert rule(evals(0.5, 0.6, 0.7, 0.7), "loss", 2) is None


@pytest.mark.cluster
@pytest.mark.parametrize("backend", backend_jobs.BACKENDS)
def test_early_stopping_ends_a_local_cluster(demo_cwd, backend):
  run_dir = demo_cwd / "run"
  proc = launcher.run(demo_cwd, str(run_dir), [
      "--backend=" + backend,
      "--train_steps=1000000", "--save_checkpoints_steps=25",
      "--eval_throttle_secs=0", "--log_every_steps=25",
      # A learning rate that changes nothing: accuracy cannot improve, so
      # the run stops after patience + 1 evaluations, however fast the
      # model would have learned (a real rate took 60-170 s here).
      "--learning_rate=1e-12",
      "--early_stopping_metric=accuracy", "--early_stopping_patience=2"],
                      num_workers=1, evaluator=True, deadline_secs=300)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  model_dir = str(run_dir / "model")
  stopped = early_stopping.marker(model_dir)
  assert stopped and stopped["metric"] == "accuracy"
  final = warm_start.global_step(model_dir)
  assert final < 1000000
  # The evaluator evaluated the final checkpoint, then ended by itself.
  assert eval_events.last(os.path.join(model_dir, "eval"))[
      "global_step"] == final
  assert "Stopped early at step %d: accuracy has not improved for 2 " \
         "evaluations" % stopped["global_step"] in proc.stdout
  assert os.path.isdir(os.path.join(model_dir, "export"))


# TensorBoard.


@pytest.fixture
def tensorboard_on():
  """Starts the real tensorboard on a model directory, on loopback."""
  started = []

  def start(logdir):
    port = portpicker.pick_unused_port()
    process = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "tensorboard"),
         "--logdir=" + logdir, "--host=127.0.0.1", "--port=%d" % port,
         "--load_fast=false"], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    started.append(process)
    url = "http://127.0.0.1:%d" % port

    def answers():
      if process.poll() is not None:
        raise RuntimeError("tensorboard exited with %d" % process.returncode)
      try:
        http_json.get(url + "/data/runs")
        return True
      except OSError:
        return False
    if not processes.wait_until(answers, 120, poll_secs=0.2):
      raise RuntimeError("tensorboard did not answer within 120 s")
    return url
  yield start
  for process in started:
    process.terminate()
    process.wait(30)


@pytest.mark.cluster
@pytest.mark.parametrize("backend", backend_jobs.BACKENDS)
def test_tensorboard_shows_the_run(assets, tmp_path, tensorboard_on,
                                   backend):
  model_dir = tmp_path / "run"
  job = _job(assets, model_dir, train_steps=60, log_every_steps=10,
             save_checkpoints_steps=20, eval_throttle_secs=0,
             profile_steps=(5, 8), backend=backend)
  backend_jobs.run(backend_jobs.check(job, log=lambda line: None),
                   log=lambda line: None)
  url = tensorboard_on(str(model_dir))
  tags = http_json.get(url + "/data/plugin/scalars/tags")
  assert {"loss", "regularization_loss", "learning_rate", "global_step/sec",
          "examples/sec"} <= set(tags["."])
  assert {"accuracy", "loss", "data_loss"} <= set(tags["eval"])
  for run, tag in ((".", "loss"), (".", "learning_rate"),
                   (".", "examples/sec"), ("eval", "accuracy")):
    points = http_json.get(
        url + "/data/plugin/scalars/scalars?run=%s&tag=%s" % (
            run, urllib.request.quote(tag, safe="")))
    steps = [step for _, step, _ in points]
    assert steps and max(steps) >= 50, (run, tag, steps)
    assert all(np.isfinite(value) for _, _, value in points)
  learning_rates = http_json.get(
      url + "/data/plugin/scalars/scalars?run=.&tag=learning_rate")
  assert all(value == pytest.approx(0.01) for _, _, value in learning_rates)
  profiles = http_json.get(url + "/data/plugin/profile/runs")
  assert profiles, "the profile plugin lists no profile"
