"""trainer.config.backends: which backend runs a job, and why, on which TF; the
refusal of the Estimator where TF has none, from the command line; and the
tasks that only serve."""

import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest

from cluster.launcher import ports
from harness import errors
from harness import tf_config
from tests import backend_jobs
from tests import processes
from trainer.config import backends

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("requested,tf_version,installed,name,why", [
    ("auto", "2.15.1", True, "estimator", "auto: TF 2.15.1 has tf.estimator"),
    ("auto", "2.21.0", False, "keras",
     "auto: TF 2.21.0 has no tf.estimator (removed in TF 2.16)"),
    # tensorflow-estimator 2.15 left beside a newer TF: still none.
    ("auto", "2.16.1", True, "keras",
     "auto: TF 2.16.1 has no tf.estimator (removed in TF 2.16)"),
    ("auto", "2.15.0", False, "keras",
     "auto: TF 2.15.0 has no tf.estimator (removed in TF 2.16)"),
    ("keras", "2.15.1", True, "keras", "asked for; TF 2.15.1"),
    ("estimator", "2.15.0rc1", True, "estimator",
     "asked for; TF 2.15.0rc1 has tf.estimator"),
])
def test_the_choice_and_its_reason(requested, tf_version, installed, name,
                                   why):
  choice = backends.choose(requested, tf_version=tf_version,
                           estimator_installed=installed)
  assert (choice.name, choice.why) == (name, why)
  assert choice.describe() == "Backend: %s (%s)." % (name, why)


def test_the_estimator_where_tf_has_none_names_what_to_use():
  with pytest.raises(errors.FlagError) as raised:
    backends.choose("estimator", tf_version="2.21.0",
                    estimator_installed=False, python="3.12")
  assert str(raised.value) == (
      "`backend`=estimator needs tf.estimator, which TF 2.21.0 on Python "
      "3.12 does not have (removed in TF 2.16): run it with TF 2.15 on "
      "Python 3.9-3.11, or use `backend`=keras (or auto).")


def test_no_tensorflow_names_the_extras():
  with pytest.raises(errors.FlagError, match=r"TensorFlow is not installed: "
                     r"install the harness with the `cpu` or the `gpu` "
                     r"extra"):
    backends.choose("auto", tf_version=None, estimator_installed=False)


def test_the_installed_tf_is_read_without_importing_it():
  proc = subprocess.run(
      [sys.executable, "-c", "import sys; from trainer.config import backends; "
       "c = backends.choose_here('auto'); "
       "print(c.name, 'tensorflow' in sys.modules)"],
      cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
  expected = "estimator" if backend_jobs.ESTIMATOR_HERE else "keras"
  assert proc.stdout.split() == [expected, "False"]


@pytest.mark.keras
@pytest.mark.skipif(backend_jobs.ESTIMATOR_HERE, reason=(
    "this TF has tf.estimator; the refusal runs where it has none (CI's "
    "Python 3.12 environment)"))
def test_asking_for_the_estimator_where_tf_has_none_writes_nothing(
    demo_cwd):
  proc = subprocess.run(
      [sys.executable, "-m", "trainer.task", "--backend=estimator",
       "--model_dir=" + str(demo_cwd / "model")],
      cwd=str(demo_cwd), env=dict(os.environ, PYTHONPATH=REPO),
      capture_output=True, text=True, timeout=120, check=False)
  assert proc.returncode == 1
  lines = processes.our_lines(proc.stderr)
  assert len(lines) == 1, lines
  assert lines[0].startswith(
      "error: --backend=estimator needs tf.estimator, which TF 2.")
  assert not os.path.exists(demo_cwd / "model")
  assert not os.path.exists(demo_cwd / "runs")


def test_a_keras_cluster_needs_a_worker():
  keras = backends.Choice(backends.KERAS, "asked for")
  with pytest.raises(errors.FlagError, match=re.escape(
      "`num_workers` (0): the Keras backend trains on workers (its chief "
      "only coordinates them); give its cluster at least one worker, or use "
      "`backend`=estimator, whose chief trains too.")):
    backends.check_workers(keras, 0)
  backends.check_workers(keras, 1)
  backends.check_workers(backends.Choice(backends.ESTIMATOR, "auto"), 0)


@pytest.mark.parametrize("name,task_type,serves", [
    ("keras", "ps", True), ("keras", "worker", True),
    ("keras", "chief", False), ("keras", "evaluator", False),
    ("estimator", "ps", True), ("estimator", "worker", False),
    ("estimator", "chief", False), ("estimator", "evaluator", False)])
def test_which_tasks_only_serve(name, task_type, serves):
  choice = backends.Choice(name, "asked for")
  assert backends.only_serves(choice, tf_config.Task(task_type, 0)) == serves
  assert not backends.only_serves(choice, None)  # One process does it all.


# The backends this TF has, each with the tasks that only serve on it.
SERVERS = [("keras", "ps"), ("keras", "worker")] + (
    [("estimator", "ps")] if backends.has_estimator(
        backends.installed_tf_version(),
        importlib.util.find_spec("tensorflow_estimator") is not None) else [])


@pytest.mark.slow
@pytest.mark.parametrize("name,task_type", SERVERS)
def test_a_task_that_only_serves_loads_no_model_and_reads_no_data(
    assets, tmp_path, name, task_type):
  # No chief comes, and the train files do not exist: the task serves
  # anyway, without the model's code, until its deadline; the chief is the
  # one that checks the model and the data.
  chief, worker, ps = ("localhost:%d" % p for p in ports.pick_ports(3))
  environ = dict(os.environ, PYTHONPATH=REPO, TF_CONFIG=json.dumps({
      "cluster": {"chief": [chief], "worker": [worker], "ps": [ps]},
      "task": {"type": task_type, "index": 0}}))
  proc = subprocess.run(
      [sys.executable, "-X", "importtime", "-m", "trainer.task",
       "--backend=" + name, "--module_handle=" + assets.digits_model,
       "--train_files=" + str(tmp_path / "no-such-file-*.tfrecord"),
       "--input_map=inputs=pixels", "--n_classes=5",
       "--model_dir=" + str(tmp_path / "model"), "--serve_timeout_secs=1"],
      env=environ, cwd=tmp_path, capture_output=True, text=True, timeout=120,
      check=False)
  imported = set(re.findall(r"^import time:.*\| +(\S+)$", proc.stderr,
                            re.MULTILINE))
  assert "tensorflow" in imported  # The import times were read.
  assert not imported & {"tf_keras", "tensorflow_hub",
                         "trainer.plan.preflight",
                         "trainer.hub_model.model_spec",
                         "trainer.inputs.validate"}
  lines = [line for line in processes.our_lines(proc.stderr)
           if not line.startswith("import time:")]
  assert proc.returncode == 1, lines
  assert re.search(r"\] Task: %s-0: " % task_type, proc.stderr)
  assert lines[-1].startswith("error: No final export at %s after 1 s of "
                              "serving" % (tmp_path / "model" / "export"))
