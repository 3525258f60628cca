"""Live multi-process clusters: python -m cluster.local, end to end.

Each test starts a real parameter-server cluster (one process per task,
TF's gRPC runtime between them) through the launcher, as a user would.
"""

import gzip
import json
import os
import re
import signal
import socket
import subprocess

from google.protobuf import text_format
import numpy as np
import pytest
import tensorflow as tf

from cluster import local
from cluster.launcher import leftovers
from cluster.launcher import netns
from cluster.launcher import ports as ports_lib
from cluster.launcher import restart
from harness import tf_notices
from tests import launcher
from tests import processes
from trainer.config import backends
from trainer.plan import launch
from trainer.training import eval_events
from trainer.training import metric_report
from trainer.training import warm_start

pytestmark = pytest.mark.cluster
DEADLINE_SECS = 300


def _launch(cwd, trainer_args=(), env=None, **cluster_settings):
  """Runs the demo cluster (in `cwd`, see demo_cwd) with a short budget."""
  run_dir = str(cwd / "run")
  proc = launcher.run(cwd, run_dir, [
      "--save_checkpoints_steps=30", "--log_every_steps=20",
      "--train_steps=60"] + list(trainer_args), env=env,
                      deadline_secs=DEADLINE_SECS,
                      timeout_secs=DEADLINE_SECS + 60, **cluster_settings)
  assert not leftovers.pids_mentioning(run_dir), "tasks outlived the launcher"
  return proc, run_dir


def _device_of(model_dir, node_name):
  """"/job:ps/task:N" of a variable: from the Estimator's graph, or the
  Keras backend's placement record."""
  placement = os.path.join(model_dir, "placement.json")
  if os.path.exists(placement):
    with open(placement) as f:
      device = tf.DeviceSpec.from_string(json.load(f)[node_name])
    return "/job:%s/task:%d" % (device.job, device.task)
  graph = tf.compat.v1.GraphDef()
  with open(os.path.join(model_dir, "graph.pbtxt")) as f:
    text_format.Parse(f.read(), graph)
  return {n.name: n.device for n in graph.node}[node_name]


def _check_finished(proc, run_dir, hub_variable, train_steps=60):
  assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
  model_dir = os.path.join(run_dir, "model")
  assert _device_of(model_dir, hub_variable).startswith("/job:ps/task:")
  step = warm_start.global_step(model_dir)
  assert step >= train_steps
  assert "Cluster finished in" in proc.stdout
  return model_dir, step


def test_tf2_digits_model_fine_tunes_on_a_cluster(demo_cwd):
  # Every task gets the variable, as on Vertex AI; only the chief writes.
  metric_file = str(demo_cwd / "hypertune" / "output.metrics")
  proc, run_dir = _launch(demo_cwd, num_workers=2, num_ps=1, evaluator=True,
                          env={metric_report.METRIC_FILE_ENV: metric_file,
                               metric_report.TRIAL_ID_ENV: "3"})
  model_dir, step = _check_finished(proc, run_dir, "dense1/kernel")
  out = proc.stdout
  for name in ("chief-0", "worker-0", "worker-1", "ps-0", "evaluator-0"):
    assert "[%s] " % name in out
    assert os.path.getsize(os.path.join(run_dir, "logs", name + ".log")) > 0
  # TF's start-up notices, the launcher's own and its tasks', are not shown
  # (harness.tf_notices); the tasks' logs keep them.
  notices = tf_notices.StartupNotices(tf_notices.has_gpu())
  shown = [re.sub(r"^\[[a-z]+-\d\] ", "", line)
           for line in (out + proc.stderr).splitlines()]
  assert not [line for line in shown if notices(line)], shown
  why_not = netns.why_not_available()
  if why_not is None:  # Root, or user namespaces: this machine and CI.
    assert "Isolated: the cluster runs in a private network namespace" in out
  else:
    assert "warning: NOT isolated: no private network namespace here (%s)" % (
        why_not) in out
  # The evaluator evaluated the final checkpoint.
  metrics = eval_events.last(os.path.join(model_dir, "eval"))
  assert metrics["global_step"] == step
  assert "[evaluator-0] Eval on " in out
  # Whatever evaluations the chief saw before it ended, it reported: on
  # stdout (Katib's StdOut collector) and in the hypertune file (Vertex
  # AI), the same values as the event files. (This launcher's chief is not
  # told of the evaluator, so it need not wait for the final evaluation;
  # on Vertex AI it is, and does: tests/test_vertex.py.)
  reported = re.findall(r"\[chief-0\] \S+ Evaluation at global_step=(\d+): "
                        r"accuracy=([\d.]+) ", out)
  evaluations = dict(eval_events.evaluations(os.path.join(model_dir,
                                                          "eval")))
  for reported_step, accuracy in reported:
    assert abs(float(accuracy) -
               evaluations[int(reported_step)]["accuracy"]) < 1e-5
  if reported:
    with open(metric_file) as f:
      entries = [json.loads(line) for line in f if "accuracy" in line]
    assert entries[-1]["global_step"] == reported[-1][0]
    assert entries[-1]["trial"] == "3"
  # The chief's export loads and predicts probabilities.
  exported = tf.saved_model.load(os.path.join(model_dir, "export"))
  probabilities = exported.signatures["serving_default"](
      inputs=tf.zeros([3, 64]))["probabilities"].numpy()
  np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def _gzipped_shards(path, directory, count):
  """The CSV file `path` cut into `count` gzipped shards; their glob."""
  with open(path) as f:
    header, *rows = f.read().splitlines()
  os.makedirs(directory)
  for i in range(count):
    with gzip.open(os.path.join(directory, "part-%d.csv.gz" % i), "wt") as f:
      f.write("\n".join([header] + rows[i::count]) + "\n")
  return os.path.join(directory, "part-*")


def test_text_model_fine_tunes_on_a_cluster(demo_cwd, assets):
  # Gzipped CSV shards, one per training task of the Estimator (chief and
  # two workers): each reads its own; on the Keras backend the tf.data
  # service (the default) hands them out to the workers' tf.data workers.
  shards = _gzipped_shards(assets.data("text_train.csv"),
                           str(demo_cwd / "text_train"), 3)
  proc, run_dir = _launch(
      demo_cwd, ["--module_handle=" + assets.text_model, "--trainable",
                 "--train_files=" + shards,
                 "--eval_files=" + assets.data("text_eval.csv"),
                 "--input_map=inputs=text", "--n_classes=5"],
      num_workers=2, num_ps=1, evaluator=True)
  model_dir, step = _check_finished(proc, run_dir, "embeddings")
  if re.search(r"\] Backend: keras", proc.stdout):
    assert re.search(r"\[chief-0\] .*\] Data: the tf.data service's "
                     r"dispatcher serves at", proc.stdout), proc.stdout
    for name in ("worker-0", "worker-1"):
      assert re.search(r"\[%s\] .*\] Data: a tf.data service worker "
                       r"serves at" % name, proc.stdout), proc.stdout
  else:
    for index, name in enumerate(("chief-0", "worker-0", "worker-1")):
      assert re.search(
          r"\[%s\] .*\] Data: %s \(training task %d of 3\) reads its own "
          r"1 of the 3 files \(file %d\)" % (name, name, index + 1,
                                             index + 1),
          proc.stdout), proc.stdout[-3000:]
  metrics = eval_events.last(os.path.join(model_dir, "eval"))
  assert metrics["global_step"] == step
  # The export takes raw strings and classifies them into the 5 classes.
  exported = tf.saved_model.load(os.path.join(model_dir, "export"))
  outputs = exported.signatures["serving_default"](inputs=tf.constant(
      ["Compute the eigenvalues of a square matrix.",
       "Return the discrete Fourier transform."]))
  np.testing.assert_allclose(outputs["probabilities"].numpy().sum(axis=1),
                             1.0, rtol=1e-5)
  assert set(outputs["classes"].numpy()) <= set(range(5))


@pytest.mark.estimator  # The trap of TF1 sessions; the Keras backend has none.
def test_without_share_cluster_devices_the_cluster_fails_fast(demo_cwd):
  """The smallest cluster that shows it: a chief, a worker and a ps."""
  proc, _ = _launch(demo_cwd, ["--noshare_cluster_devices"], num_workers=1,
                    num_ps=1, evaluator=False)
  assert proc.returncode == 1
  error = proc.stderr[re.search(r"(?m)^error: ", proc.stderr).start():]
  first_line = error.splitlines()[0]
  assert "exited with code 1" in first_line, first_line
  assert ("Assigned device '/job:ps/replica:0/task:0/device:CPU:0' does not "
          "match any device" in error)
  assert "did not finish within" not in proc.stderr  # Not the deadline.


def test_legacy_tf1_model_trains_frozen_on_two_ps(demo_cwd, assets):
  proc, run_dir = _launch(
      demo_cwd, ["--module_handle=" + assets.tf1_hub_model, "--notrainable",
                 "--train_files=" + assets.data("digits_train.csv"),
                 "--eval_files=" + assets.data("digits_eval.csv"),
                 "--n_classes=5", "--tags=foo,bar", "--signature=sig",
                 "--output_key=features", "--input_map=x1=pixels,x2=pixels",
                 # Keras: every worker reads every file, as asked; the
                 # Estimator ignores it.
                 "--nodata_service"],
      num_workers=1, num_ps=2, evaluator=False)
  keras = backends.choose_here("auto").name == "keras"
  if keras:
    assert re.search(r"\[chief-0\] .*\] Data: each of the 1 worker\(s\) "
                     r"reads all 1 file\(s\)", proc.stdout), proc.stdout
    assert "dispatcher serves at" not in proc.stdout
  # On the Keras backend a TF1 Hub format model's variables are loaded on
  # the chief (TF's legacy loading does not go through the strategy); the
  # head's are on the ps tasks. The Estimator places everything on the ps.
  model_dir, _ = _check_finished(proc, run_dir, "logits/kernel" if keras
                                 else "dense1/kernel")
  if keras:
    assert _device_of(model_dir, "dense1/kernel") == "/job:chief/task:0"
    assert {_device_of(model_dir, "logits/kernel"),
            _device_of(model_dir, "logits/bias")} == {"/job:ps/task:0",
                                                      "/job:ps/task:1"}
  else:  # Placed by size: the two largest variables on different ps tasks.
    assert {_device_of(model_dir, "dense1/kernel"),
            _device_of(model_dir, "dense2/kernel")} == {"/job:ps/task:0",
                                                       "/job:ps/task:1"}


def test_port_taken_before_binding_is_retried(demo_cwd, monkeypatch):
  """The chief's port is taken between picking and binding: the launcher
  starts the cluster again on fresh ports instead of failing or hanging."""
  squatter = socket.socket()
  squatter.bind(("", 0))
  squatter.listen()
  picks = []
  real_pick = ports_lib.pick_ports

  def pick(count):
    ports = real_pick(count)
    if not picks:
      ports[0] = squatter.getsockname()[1]  # The chief's port.
    picks.append(ports)
    return ports
  monkeypatch.setattr(local.ports_lib, "pick_ports", pick)
  monkeypatch.setenv("PYTHONPATH", launcher.REPO)
  monkeypatch.chdir(demo_cwd)
  run_dir = str(demo_cwd / "run")
  try:
    flagfile, _ = launch.prepare_tasks(
        ["--train_steps=20", "--save_checkpoints_steps=10"], run_dir,
        evaluator=False, log=lambda line: None)
    events = []
    codes = local.run_cluster(
        num_workers=1, num_ps=1, evaluator=False, flagfile=flagfile,
        # No deadline: the launcher's default.
        log_dir=os.path.join(run_dir, "logs"), deadline_secs=None,
        policies=restart.parse_policies([], 3), printer=lambda line: None,
        log=events.append)
  finally:
    squatter.close()
  assert len(picks) == 2
  assert any("chief-0 could not bind its port" in e for e in events), events
  assert codes["chief-0"] == 0
  assert not leftovers.pids_mentioning(run_dir)


@pytest.mark.parametrize("signum,name", [(signal.SIGTERM, "SIGTERM"),
                                         (signal.SIGINT, "Ctrl-C")])
def test_signal_to_the_launcher_stops_every_task(demo_cwd, signum, name):
  del name  # For the test id only.
  run_dir = str(demo_cwd / "run")
  launched = subprocess.Popen(
      launcher.command(run_dir, ["--train_steps=100000"], num_workers=1,
                       evaluator=False), cwd=str(demo_cwd), text=True,
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=launcher.ENV)
  try:
    chief_log = os.path.join(run_dir, "logs", "chief-0.log")
    assert processes.wait_until(
        lambda: os.path.exists(chief_log) and
        "first training step" in open(chief_log).read(), 240)
    assert leftovers.pids_mentioning(run_dir)
    launched.send_signal(signum)
    _, err = launched.communicate(timeout=60)
  finally:
    launched.kill()
  assert launched.returncode == 130
  assert "launcher: interrupted; every task was stopped." in err
  assert not leftovers.pids_mentioning(run_dir)
