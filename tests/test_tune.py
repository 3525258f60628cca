"""Tuning: the search space, the tuning services' specs from the same flags,
and the evaluations reported as Vertex AI's and Katib's collectors read them.

The study on this machine (Optuna's runner, the live study) is in
tests/test_tune_study.py.
"""

import datetime
import json
import os
import re
import subprocess
import sys

from google.cloud import aiplatform_v1
import hypertune
import optuna
import pytest
import yaml

from cluster import study as study_lib
from cluster import tuning
from cluster.engines import katib
from cluster.engines import search_space
from tests import launcher
from trainer import task
from trainer.config import cli
from trainer.training import metric_report

SPACE = """\
learning_rate: {type: double, min: 0.0001, max: 0.3, scale: log}
hidden_units: {type: categorical, values: ['', '64', '64,32']}
batch_size: {type: integer, min: 16, max: 128}
dropout: {type: discrete, values: [0.3, 0.0, 0.1]}
"""
# What the trainer needs besides a value under check.
BASE = ["--module_handle=/m", "--train_files=/t", "--n_classes=3",
        "--model_dir=/tmp/x"]


def test_space_parses_in_order_with_its_types():
  space = search_space.parse(SPACE)
  assert [p.name for p in space] == ["learning_rate", "hidden_units",
                                     "batch_size", "dropout"]
  assert space[0] == search_space.Param("learning_rate", "double", 0.0001,
                                        0.3, "log")
  assert space[1].values == ("", "64", "64,32")
  assert (space[2].low, space[2].high) == (16, 128)
  assert space[3].values == (0.0, 0.1, 0.3)  # Sorted, as Vertex wants.


@pytest.mark.parametrize("text, message", [
    ("[1, 2]", "must map trainer flags to their ranges"),
    ("a: {type: double", "is not YAML"),
    ("learning_rate: 0.1", "learning_rate: give a mapping with a `type`"),
    ("learning_rate: {type: float, min: 0, max: 1}",
     "type 'float' is not one of double, integer, categorical, discrete"),
    ("learning_rate: {type: double, min: 0.3, max: 0.1}",
     "`min` (0.3) must be below `max` (0.1)"),
    ("learning_rate: {type: double, min: 0, max: 0.1, scale: log}",
     "a log scale needs `min` > 0"),
    ("learning_rate: {type: double, min: 0.1}", "needs `min` and `max`"),
    ("batch_size: {type: integer, min: 1.5, max: 8}", "not a whole number"),
    ("learning_rate: {type: double, min: 0.1, max: 1, step: 2}",
     "step is not a key of a double parameter"),
    ("hidden_units: {type: categorical, values: [64]}",
     "categorical values are strings"),
    ("dropout: {type: discrete, values: []}", "needs `values`, a non-empty"),
    ("dropout: {type: discrete, values: [0.1, 0.1]}", "repeat a value"),
    ("learning_rate: {type: double, min: 0.1, max: 1, scale: ln}",
     "scale 'ln' is not one of linear, log"),
])
def test_bad_spaces_are_one_line_naming_the_problem(text, message):
  with pytest.raises(search_space.SpaceError) as e:
    search_space.parse(text)
  assert message in str(e.value)
  assert "\n" not in str(e.value)


@pytest.mark.parametrize("text, message", [
    ("learning_rat: {type: double, min: 0.1, max: 0.2}",
     "learning_rat is not a trainer flag"),
    ("model_dir: {type: categorical, values: ['/a', '/b']}",
     "model_dir is set for each trial by the tuner"),
    ("learning_rate: {type: double, min: -1, max: 0.2}",
     "the trainer refuses --learning_rate=-1.0"),
    ("batch_size: {type: integer, min: 0, max: 8}",
     "the trainer refuses --batch_size=0"),
    ("optimizer: {type: categorical, values: ['adam', 'lion']}",
     "the trainer refuses --optimizer=lion"),
])
def test_space_is_checked_against_the_trainer(text, message):
  with pytest.raises(search_space.SpaceError) as e:
    tuning.check_space(search_space.parse(text), BASE)
  assert message in str(e.value), str(e.value)


def test_a_good_space_passes_the_trainers_checks():
  tuning.check_space(search_space.parse(SPACE.replace(
      "dropout: {type: discrete, values: [0.3, 0.0, 0.1]}",
      "train_steps: {type: discrete, values: [100, 200]}")), BASE)


def test_metric_and_goal():
  tuning.check_metric("accuracy", 5)
  tuning.check_metric("rmse", 0)
  with pytest.raises(tuning.errors.FlagError, match="a classification head "
                     "reports accuracy, loss, data_loss"):
    tuning.check_metric("rmse", 5)
  assert tuning.goal("accuracy", None) == tuning.MAXIMIZE
  assert tuning.goal("loss", None) == tuning.MINIMIZE
  assert tuning.goal("loss", tuning.MAXIMIZE) == tuning.MAXIMIZE


def test_drawn_values_are_written_as_the_flags_take_them():
  assert search_space.flag_args({"learning_rate": 0.01, "hidden_units": "",
                                 "batch_size": 32, "dropout": 0.0}) == [
      "--learning_rate=0.01", "--hidden_units=", "--batch_size=32",
      "--dropout=0.0"]
  # Each parses back to the drawn value through the trainer's own flags.
  fv = cli.new_flag_values(search_space.flag_args(
      {"learning_rate": 1e-05, "hidden_units": "64,32"}))
  assert fv.learning_rate == 1e-05 and fv.hidden_units == ["64", "32"]


def test_optuna_distributions_follow_the_space():
  dists = study_lib.distributions(search_space.parse(SPACE))
  assert dists["learning_rate"] == optuna.distributions.FloatDistribution(
      0.0001, 0.3, log=True)
  assert dists["batch_size"] == optuna.distributions.IntDistribution(16, 128)
  assert dists["hidden_units"].choices == ("", "64", "64,32")
  assert dists["dropout"].choices == (0.0, 0.1, 0.3)


def test_trial_flags_replace_the_base_ones_they_tune():
  assert search_space.without(
      ["--learning_rate=0.1", "--trainable", "--hidden_units=",
       "--batch_size=3", "--notrainable_extra"],
      ["learning_rate", "trainable", "hidden_units"]) == [
          "--batch_size=3", "--notrainable_extra"]


# Vertex AI's tuning reads cloudml-hypertune's file.

def test_hypertune_target_comes_from_vertex_ais_environment():
  assert metric_report.hypertune_target({}) is None
  assert metric_report.hypertune_target(
      {"CLOUD_ML_HP_METRIC_FILE": "/x/m"}) == ("/x/m", "0")
  assert metric_report.hypertune_target({"CLOUD_ML_TRIAL_ID": "4"}) == (
      metric_report.DEFAULT_METRIC_FILE, "4")
  spec = {"cluster": {}, "task": {"type": "workerpool0", "index": 0,
                                  "trial": "12"}}
  assert metric_report.hypertune_target(
      {"CLUSTER_SPEC": json.dumps(spec)}) == (
          metric_report.DEFAULT_METRIC_FILE, "12")
  spec["task"]["trial"] = ""  # Not a tuning job.
  assert metric_report.hypertune_target(
      {"CLUSTER_SPEC": json.dumps(spec)}) is None


def test_hypertune_file_is_what_the_library_writes(tmp_path, monkeypatch):
  ours = metric_report.HypertuneFile(str(tmp_path / "ours" / "m"), "7")
  ours.report(200, {"accuracy": 0.875, "loss": 0.25}, now=1234.5)
  monkeypatch.setenv("CLOUD_ML_HP_METRIC_FILE", str(tmp_path / "lib" / "m"))
  monkeypatch.setenv("CLOUD_ML_TRIAL_ID", "7")
  library = hypertune.HyperTune()
  for name, value in (("accuracy", 0.875), ("loss", 0.25)):
    library.report_hyperparameter_tuning_metric(
        hyperparameter_metric_tag=name, metric_value=value, global_step=200)
  def read(path):
    with open(path) as f:
      return [dict(json.loads(line), timestamp=None) for line in f]
  assert read(ours.path) == read(library.metric_path)
  assert len(read(ours.path)) == 2


def test_hypertune_file_keeps_the_last_hundred(tmp_path):
  ours = metric_report.HypertuneFile(str(tmp_path / "m"), "0")
  for step in range(1, 61):
    ours.report(step, {"accuracy": step / 100, "loss": 1.0})
  with open(ours.path) as f:
    lines = [json.loads(line) for line in f]
  assert len(lines) == metric_report.MAX_ENTRIES
  assert lines[-2] == dict(lines[-2], accuracy="0.6", global_step="60")


# Katib's StdOut collector: its text parser, as in kubeflow/katib
# pkg/metricscollector/v1beta1/file-metricscollector (parseLogsInTextFormat):
# lines that contain a metric's name; a leading RFC 3339 time stamp; every
# match of the default filter, kept where its name is a metric's.
KATIB_FILTER = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"


def _katib_parse(lines, metrics):
  found = []
  for line in lines:
    if not any(m in line for m in metrics):
      continue
    stamp = None
    first = line.split(" ", 1)[0]
    try:
      stamp = datetime.datetime.fromisoformat(first.replace("Z", "+00:00"))
    except ValueError:
      pass
    for name, value, *_ in re.findall(KATIB_FILTER, line):
      if name in metrics:
        found.append((stamp, name, float(value)))
  return found


def test_evaluation_line_is_what_katibs_stdout_collector_reads():
  line = metric_report.stdout_line(
      1000, {"accuracy": 0.875, "loss": 0.3125, "data_loss": 1.5e-7},
      now=1796400000.25)
  found = _katib_parse(["I1204 unrelated accuracy line", line],
                       ["accuracy", "loss"])
  stamps = {stamp for stamp, _, _ in found}
  assert stamps == {datetime.datetime.fromtimestamp(
      1796400000.25, datetime.timezone.utc)}
  assert [(n, v) for _, n, v in found] == [("accuracy", 0.875),
                                           ("loss", 0.3125)]


@pytest.mark.slow
def test_trainer_reports_each_evaluation_for_the_tuning_services(
    assets, tmp_path, capsys):
  """A single process (no TF_CONFIG) in a Vertex AI trial's environment:
  the file holds the final evaluation last, and stdout has its line."""
  metric_file = str(tmp_path / "hp" / "output.metrics")
  fv = cli.new_flag_values([
      "--flagfile=" + os.path.join(launcher.REPO, "configs", "digits.cfg"),
      "--module_handle=" + assets.digits_model,
      "--train_files=" + assets.data("digits_train.tfrecord"),
      "--eval_files=" + assets.data("digits_eval.tfrecord"),
      "--model_dir=" + str(tmp_path / "model"), "--train_steps=20"])
  assert task.run(fv, environ={"CLOUD_ML_HP_METRIC_FILE": metric_file,
                               "CLOUD_ML_TRIAL_ID": "5"}) == 0
  with open(metric_file) as f:
    entries = [json.loads(line) for line in f]
  # No evaluation of the untrained model (step 0), on either backend.
  assert {e["global_step"] for e in entries} == {"20"}
  assert entries[-1]["global_step"] == "20"
  assert {e["trial"] for e in entries} == {"5"}
  assert {name for e in entries for name in e} >= {"accuracy", "loss"}
  out = capsys.readouterr().out
  found = _katib_parse(out.splitlines(), ["accuracy"])
  assert found and all(stamp is not None for stamp, _, _ in found)
  accuracy = [e for e in entries if "accuracy" in e][-1]["accuracy"]
  assert found[-1][2] == pytest.approx(float(accuracy), rel=1e-5)


def test_a_restarted_chief_does_not_report_earlier_evaluations_as_new(
    tmp_path):
  """The evaluations of an earlier start are said in one plain line, not
  printed again in the tuning services' format; the hypertune file, which
  a restart begins anew, gets them back; new ones follow as before."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  eval_dir = str(tmp_path / "eval")

  def evaluation(step, accuracy):  # As the evaluators write them.
    os.makedirs(eval_dir, exist_ok=True)
    event = tf.compat.v1.Event(step=step, summary=tf.compat.v1.Summary(
        value=[tf.compat.v1.Summary.Value(tag="accuracy",
                                          simple_value=accuracy)]))
    with tf.io.TFRecordWriter(os.path.join(
        eval_dir, "events.out.tfevents.%d" % step)) as writer:
      writer.write(event.SerializeToString())
  for step in (100, 200):
    evaluation(step, 0.5)
  lines = []
  hypertune = metric_report.HypertuneFile(str(tmp_path / "hp"), "1")
  reporter = metric_report.Reporter(eval_dir, print_line=lines.append,
                                    hypertune=hypertune, poll_secs=60)
  reporter.start()
  assert lines == ["2 evaluation(s) of an earlier start of this job are in "
                   "%s (the latest after step 200); only new ones are "
                   "shown." % eval_dir]
  with open(hypertune.path) as f:
    assert [json.loads(line)["global_step"] for line in f] == ["100", "200"]
  evaluation(300, 0.75)
  reporter.stop()
  assert len(lines) == 2 and "Evaluation at global_step=300: " \
      "accuracy=0.75" in lines[1], lines


# The tuning services' specs, from the same flags.

SPACE_FILE = os.path.join(launcher.REPO, "configs", "tuning", "digits.yaml")
SERVICE_TRAINER = ["--module_handle=gs://b/models/digits",
                   "--train_files=gs://b/data/train-*",
                   "--eval_files=gs://b/data/eval-*", "--n_classes=5",
                   "--learning_rate=0.05"]


def _generate(module, cluster_flags, trainer_flags):
  return subprocess.run(
      [sys.executable, "-m", module] + cluster_flags + ["--"] +
      trainer_flags, env=launcher.ENV, capture_output=True, text=True,
      timeout=120, check=False)


def test_vertex_hptune_job_is_a_valid_hyperparameter_tuning_job():
  proc = _generate("cluster.vertex", [
      "--image=us-docker.pkg.dev/p/r/harness:1",
      "--machine_type=n1-standard-8", "--num_workers=2", "--num_ps=1",
      "--evaluator", "--base_output_dir=gs://b/runs/tune", "--hptune",
      "--space=" + SPACE_FILE, "--trials=12", "--parallel=3",
      "--metric=loss"], SERVICE_TRAINER)
  assert proc.returncode == 0, proc.stderr
  doc = yaml.safe_load(proc.stdout)
  # proto-plus refuses unknown fields, two members of a oneof, bad enums.
  job = aiplatform_v1.types.HyperparameterTuningJob.from_json(
      json.dumps(doc))
  assert (job.max_trial_count, job.parallel_trial_count) == (12, 3)
  metric = job.study_spec.metrics[0]
  assert metric.metric_id == "loss"  # The tag the trainer's file carries.
  assert metric.goal == metric.GoalType.MINIMIZE
  params = {p.parameter_id: p for p in job.study_spec.parameters}
  assert params["learning_rate"].double_value_spec.min_value == 0.001
  assert (params["learning_rate"].scale_type ==
          params["learning_rate"].ScaleType.UNIT_LOG_SCALE)
  assert params["batch_size"].integer_value_spec.max_value == 64
  assert list(params["hidden_units"].categorical_value_spec.values) == [
      "", "32", "64,32"]
  pools = job.trial_job_spec.worker_pool_specs
  assert [p.replica_count for p in pools] == [1, 2, 1, 1]
  args = list(pools[0].container_spec.args)
  # The flags the space sets are Vertex AI's to append, per trial.
  assert not [a for a in args if a.startswith("--learning_rate")]
  assert "--n_classes=5" in args
  assert job.trial_job_spec.base_output_directory.output_uri_prefix == (
      "gs://b/runs/tune")


@pytest.mark.parametrize("extra, message", [
    (["--space=" + SPACE_FILE, "--metric=rmse"],
     "--metric=rmse is not an evaluation metric"),
    (["--space="], "--space is required"),
])
def test_vertex_hptune_refuses_a_bad_study(extra, message):
  proc = _generate("cluster.vertex", [
      "--image=i", "--machine_type=n1-standard-8",
      "--base_output_dir=gs://b/r", "--hptune"] + extra, SERVICE_TRAINER)
  assert proc.returncode == 1 and message in proc.stderr, proc.stderr


def test_vertex_hptune_refuses_one_model_dir_for_every_trial():
  proc = _generate("cluster.vertex", [
      "--image=i", "--machine_type=n1-standard-8", "--hptune",
      "--space=" + SPACE_FILE], SERVICE_TRAINER + ["--model_dir=gs://b/m"])
  assert proc.returncode == 1
  assert "every trial would write there" in proc.stderr


KATIB_MODELS = os.path.join(launcher.REPO, "tests", "data", "katib",
                            "v1beta1_models.json")


def _check_model(value, kind, models, where="Experiment"):
  """`value` is what Katib's SDK model `kind` (its openapi_types) allows:
  no unknown field, each field of its type."""
  if kind in ("object",) or (kind.startswith("V1") and
                             not kind.startswith("V1beta1")):
    assert isinstance(value, dict), where  # Kubernetes' own, or any.
    return
  if kind.startswith("list["):
    assert isinstance(value, list), where
    for i, item in enumerate(value):
      _check_model(item, kind[5:-1], models, "%s[%d]" % (where, i))
    return
  if kind.startswith("dict("):
    assert isinstance(value, dict) and all(
        isinstance(v, str) for v in value.values()), where
    return
  scalar = {"str": str, "int": int, "float": (int, float), "bool": bool}
  if kind in scalar:
    assert isinstance(value, scalar[kind]), (where, value)
    return
  model = models[kind]
  assert isinstance(value, dict), where
  unknown = set(value) - set(model["fields"])
  assert not unknown, "%s: %s not in Katib's %s" % (where, unknown, kind)
  for name, item in value.items():
    _check_model(item, model["fields"][name], models, where + "." + name)


def test_katib_experiment_fits_katibs_models_and_its_rules():
  proc = _generate("cluster.tfjob", [
      "--name=digits-tune", "--image=registry.example/harness:1",
      "--num_workers=2", "--evaluator", "--volume=training:/mnt/shared",
      "--katib", "--space=" + SPACE_FILE, "--trials=8", "--parallel=2"], [
          "--module_handle=/mnt/shared/models/digits",
          "--train_files=/mnt/shared/data/train.tfrecord",
          "--eval_files=/mnt/shared/data/eval.tfrecord", "--n_classes=5",
          "--model_dir=/mnt/shared/runs/tune", "--learning_rate=0.05"])
  assert proc.returncode == 0, proc.stderr
  experiment = yaml.safe_load(proc.stdout)
  with open(KATIB_MODELS) as f:
    models = json.load(f)["models"]
  _check_model(experiment, "V1beta1Experiment", models)
  spec = experiment["spec"]
  # What Katib's webhook checks besides the fields.
  assert experiment["apiVersion"] == katib.API_VERSION
  assert spec["objective"]["type"] in ("maximize", "minimize")
  assert spec["metricsCollectorSpec"]["collector"]["kind"] == "StdOut"
  assert {p["parameterType"] for p in spec["parameters"]} <= {
      "double", "int", "categorical", "discrete"}
  template = spec["trialTemplate"]
  trial_params = {p["name"]: p["reference"]
                  for p in template["trialParameters"]}
  parameters = {p["name"] for p in spec["parameters"]}
  # Each trial parameter refers to a parameter or to the trial itself, and
  # is used in the trial's job; the job uses no other.
  assert set(trial_params.values()) - parameters == {"${trialSpec.Name}"}
  used = katib.placeholders(json.dumps(template["trialSpec"]))
  assert used == set(trial_params)
  # The trial's TFJob is cluster.tfjob's, named by Katib; the metric comes
  # from the chief's container.
  job = template["trialSpec"]
  assert job["kind"] == "TFJob" and "metadata" not in job
  chief = job["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]
  container = chief["containers"][0]
  assert container["name"] == template["primaryContainerName"]
  assert template["primaryPodLabels"] == {
      "training.kubeflow.org/replica-type": "chief"}
  args = container["args"]
  assert "--model_dir=/mnt/shared/runs/tune/${trialParameters.trialName}" in (
      args)
  assert "--learning_rate=${trialParameters.learningRate}" in args
  assert "--learning_rate=0.05" not in args
  assert job["spec"]["tfReplicaSpecs"]["Worker"]["replicas"] == 2


def test_katib_models_are_vendored_from_the_sdk():
  with open(KATIB_MODELS) as f:
    vendored = json.load(f)
  assert vendored["source"].startswith("kubeflow-katib 0.19.0")
  fields = vendored["models"]["V1beta1TrialTemplate"]["fields"]
  assert fields["trialParameters"] == "list[V1beta1TrialParameterSpec]"
  # A typo is caught.
  with pytest.raises(AssertionError, match="not in Katib's"):
    _check_model({"spec": {"objectve": {}}}, "V1beta1Experiment",
                 vendored["models"])
