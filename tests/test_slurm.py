"""python -m cluster.slurm: the batch script (pure), bad input, and the job
on a real 3-node Slurm cluster that the tests start and tear down, and on
a one-node Slurm in this machine's own network.

The cluster (tests/slurm_cluster.py) is Debian's Slurm, installed with
apt-get where missing; each daemon runs in its own network namespace with
its own address and host name, or, where namespaces cannot be made, one
node on 127.0.0.1. Where Slurm cannot be installed, the live tests skip
with the reason.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

from absl import flags
import numpy as np
import pytest
import tensorflow as tf

from cluster import slurm_submit
from cluster import slurm_task
from cluster.engines import slurm
from cluster.engines import spec
from cluster.launcher import leftovers
from harness import errors
from tests import doc_commands
from tests import flagged
from tests import processes
from tests import slurm_cluster
from trainer.training import eval_events
from trainer.training import warm_start

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=REPO)
DEMO = ["--train_steps=100", "--save_checkpoints_steps=50",
        "--log_every_steps=25"]


def _spec(**overrides):
  shape = {name: overrides.pop(name) for name in ("num_workers", "num_ps",
                                                  "evaluator")
           if name in overrides}
  settings = dict(run_dir="/shared/run", workdir="/home/me/project",
                  nodes=3, shape=spec.Shape(**shape), time_limit="15",
                  python="/opt/venv/bin/python")
  settings.update(overrides)
  return slurm.JobSpec(**settings)


def test_batch_script_lines_and_step():
  script = slurm.batch_script(
      _spec(partition="gpu"), ["--flagfile=/shared/run/trainer_flags.txt"],
      ["python", "-m", "cluster.slurm", "--nodes=3"])
  lines = script.splitlines()
  assert lines[0] == "#!/bin/bash"
  assert lines[1] == "# Written by: python -m cluster.slurm --nodes=3"
  assert [l for l in lines if l.startswith("#SBATCH")] == [
      "#SBATCH --job-name=hub-harness", "#SBATCH --nodes=3",
      "#SBATCH --ntasks=5", "#SBATCH --output=/shared/run/slurm-%j.out",
      "#SBATCH --time=15", "#SBATCH --partition=gpu"]
  assert "cd /home/me/project" in lines
  step = script.split("exec ", 1)[1].replace("\\\n", " ").split()
  assert step == [
      "srun", "--kill-on-bad-exit=1", "--distribution=block", "--nodes=3",
      "--ntasks=5", "/opt/venv/bin/python", "-m", "cluster.slurm_task",
      "--num_workers=2", "--num_ps=1", "--evaluator", "--max_restarts=3",
      "--restart_policy=exit_code", "--restart_window_secs=600",
      "--port_base=8888",
      "--run_dir=/shared/run", "--deadline_secs=900", "--",
      "--flagfile=/shared/run/trainer_flags.txt"]
  # The step is wrapped to be read: no line of it is over 79 characters.
  assert max(len(l) for l in lines if not l.startswith("# Written")) <= 79


def _every_role(value):
  return ["--%s_resources=%s" % (role, value)
          for role in ("chief", "worker", "ps", "evaluator")]


def test_resources_become_sbatch_options_for_every_task(tmp_path):
  proc = _cli(["--run_dir=%s" % (tmp_path / "run")] + _every_role(
      "cpu=2,memory=3Gi,gpu=1,gpu_type=a100"), TRAINER)
  assert proc.returncode == 0, proc.stderr
  options = [l for l in proc.stdout.splitlines() if l.startswith("#SBATCH")]
  assert options[-3:] == ["#SBATCH --cpus-per-task=2",
                          "#SBATCH --mem-per-cpu=1536M",
                          "#SBATCH --gpus-per-task=a100:1"]


@pytest.mark.parametrize("args,message", [
    (["--worker_resources=gpu=1"], "Slurm runs every task of the job in one "
     "srun step, so every role gets the same resources; give "
     "--chief_resources, --worker_resources, --ps_resources, "
     "--evaluator_resources the same (asked: chief nothing; worker gpu=1; "
     "ps nothing; evaluator nothing)"),
    (_every_role("cpu=0.5"), "--chief_resources: cpu=0.5: Slurm gives whole "
     "CPUs"),
    (_every_role("machine_type=n1"), "--chief_resources: Slurm has no term "
     "for machine_type"),
])
def test_resources_slurm_cannot_give_are_one_line(tmp_path, args, message):
  proc = _cli(["--run_dir=%s" % (tmp_path / "run")] + args, TRAINER)
  assert proc.returncode == 1 and proc.stdout == ""
  lines = processes.our_lines(proc.stderr)
  assert len(lines) == 1 and message in lines[0], lines


def test_arguments_with_spaces_are_quoted():
  script = slurm.batch_script(_spec(), ["--label_key=my label"], ["x"])
  assert "'--label_key=my label'" in script


@pytest.mark.parametrize("flag,deadline,expected", [
    ("1:30:00", None, "1:30:00"), ("", 900, "15"), ("", 901, "16"),
    ("", None, ""), ("2-12", None, "2-12")])
def test_time_limit(flag, deadline, expected):
  assert slurm.time_limit(flag, deadline) == expected


@pytest.mark.parametrize("limit,seconds", [
    ("15", 900), ("15:30", 930), ("1:00:00", 3600), ("2-12", 216000),
    ("1-00:30", 88200), ("1-00:00:05", 86405), ("", None)])
def test_time_limit_in_seconds(limit, seconds):
  assert slurm.time_limit_secs(limit) == seconds


@pytest.mark.parametrize("overrides,message", [
    (dict(nodes=0), "--nodes (0) must be >= 1"),
    (dict(num_workers=0), "--num_workers (0) must be >= 1 on Slurm"),
    (dict(nodes=6), "--nodes=6 is more than the job's 5 tasks"),
])
def test_bad_shape(overrides, message):
  with flagged.raises(errors.FlagError, match=re.escape(message)):
    slurm.check(_spec(**overrides))


def _cli(args, trainer_args=(), cwd=None, env=None, timeout=300):
  return subprocess.run(
      [sys.executable, "-m", "cluster.slurm"] + list(args) + ["--"] +
      list(trainer_args), capture_output=True, text=True, cwd=cwd,
      env=env or ENV, timeout=timeout, check=False)


TRAINER = ["--module_handle=/m", "--train_files=/t", "--eval_files=/e",
           "--n_classes=5", "--model_dir=/shared/m"]


def test_the_model_directory_defaults_to_run_dir_model(tmp_path):
  """As with --submit and the local launcher: a job without --model_dir
  writes RUN_DIR/model (docs/clusters.md's command gives none)."""
  run_dir = str(tmp_path / "run")
  generated = _cli(["--nodes=3", "--run_dir=" + run_dir],
                   [t for t in TRAINER if not t.startswith("--model_dir")])
  assert generated.returncode == 0, generated.stderr
  assert "--model_dir=%s/model " % run_dir in generated.stdout
  given = _cli(["--nodes=3", "--run_dir=" + run_dir], TRAINER)
  assert "--model_dir=/shared/m " in given.stdout
  assert "%s/model" % run_dir not in given.stdout


@pytest.mark.parametrize("args,trainer_args,env,message", [
    (["--nodes=0"], TRAINER, {}, "--nodes (0) must be >= 1"),
    (["--num_workers=0"], TRAINER, {}, "--num_workers (0) must be >= 1"),
    (["--time=soon"], TRAINER, {}, "--time=soon is not a Slurm time limit"),
    ([], TRAINER + ["--bogus=1"], {},
     "Unknown command line flag 'bogus'"),
    ([], TRAINER[1:], {}, "--module_handle is missing: --train_files"),
    (["--submit"], TRAINER, {"PATH": "/nonexistent"},
     "--submit needs Slurm's sbatch, which is not on PATH"),
    # Needs sbatch on PATH, as a user would have it: installed here the way
    # the live tests install it, so `slow` (the fast lane installs nothing).
    pytest.param(["--submit"], TRAINER, {"SLURM_CONF": ""},
                 "--submit: SLURM_CONF is not set", marks=pytest.mark.slow),
])
def test_bad_input_is_one_line(tmp_path, args, trainer_args, env, message):
  if "SLURM_CONF" in env and os.path.exists(slurm_submit.DEFAULT_SLURM_CONF):
    pytest.skip("this machine has %s" % slurm_submit.DEFAULT_SLURM_CONF)
  environ = dict(ENV, **env)
  if env.get("SLURM_CONF") == "":  # Unset, with sbatch on PATH.
    reason = slurm_cluster.install_or_why_not()
    if reason:
      pytest.skip("no Slurm here: %s" % reason)
    del environ["SLURM_CONF"]
  proc = _cli(["--run_dir=%s" % (tmp_path / "run")] + args, trainer_args,
              env=environ)
  assert proc.returncode == 1, proc.stderr
  assert proc.stdout == ""
  lines = [l for l in processes.our_lines(proc.stderr)
           if not re.match(r"[IWEF]\d{4} \d", l)]
  assert len(lines) == 1 and lines[0].startswith("error: "), lines
  assert message in lines[0], lines
  assert not os.path.exists(tmp_path / "run")


# The live tests: one Slurm cluster for all of them.


def _running_slurm(nodes, isolated=None):
  """A Slurm for the tests; afterwards, nothing of it is left."""
  reason = slurm_cluster.install_or_why_not()
  if reason:
    pytest.skip("no Slurm here: %s" % reason)
  # Not under pytest's temporary folder: munged runs as user munge, which
  # cannot enter it.
  root = tempfile.mkdtemp(prefix="harness-slurm-")
  try:
    started = slurm_cluster.SlurmCluster.start(root, nodes=nodes,
                                               isolated=isolated)
    yield started
    started.stop()
  finally:
    shutil.rmtree(root, ignore_errors=True)
  # Nothing of it is left: daemons, job processes, namespaces, bridge.
  assert not leftovers.pids_mentioning(root)
  assert not slurm_cluster.pids_in_environment(
      "SLURM_CONF=" + started.env["SLURM_CONF"])
  namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True,
                              text=True, check=False).stdout
  assert not [ns for ns in started.namespaces if ns in namespaces]
  if started.isolated:
    assert subprocess.run(["ip", "link", "show", started.bridge],
                          capture_output=True, check=False).returncode != 0


@pytest.fixture(scope="module")
def cluster():
  yield from _running_slurm(nodes=3)


@pytest.fixture
def one_node_cluster():
  """The stand-in where network namespaces cannot be made: one node on
  127.0.0.1, daemons in this machine's own network."""
  yield from _running_slurm(nodes=3, isolated=False)


@pytest.fixture
def workdir(cluster, demo_cwd):
  """Where the submit runs: the demo's assets, and the job's RUN_DIR."""
  del cluster  # Started first.
  return demo_cwd


def _submit(cluster, workdir, args=(), trainer_args=DEMO, background=None):
  command = [sys.executable, "-m", "cluster.slurm",
             "--nodes=%d" % len(cluster.node_names),
             "--submit", "--run_dir=%s" % (workdir / "run"), "--time=10",
             "--port_base=%d" % (9000 + os.getpid() % 500)] + list(args) + [
                 "--"] + list(trainer_args)
  env = dict(cluster.env, PYTHONPATH=REPO)
  if background:
    return subprocess.Popen(command, cwd=str(workdir), env=env,
                            stdout=background, stderr=subprocess.STDOUT)
  return subprocess.run(command, cwd=str(workdir), env=env,
                        capture_output=True, text=True, timeout=400,
                        check=False)


def _job_id(output):
  return re.search(r"slurm: submitted job (\d+)", output).group(1)


# The live tests share one Slurm cluster: one xdist worker runs them all
# (pytest.ini: --dist loadgroup).
@pytest.mark.cluster
@pytest.mark.xdist_group("slurm")
def test_the_demo_trains_on_three_nodes(cluster, workdir):
  _check_the_demo_job(cluster, workdir, _submit(cluster, workdir))


@pytest.mark.cluster
@pytest.mark.xdist_group("slurm")
def test_the_demo_trains_on_one_node_without_namespaces(one_node_cluster,
                                                       demo_cwd):
  assert len(one_node_cluster.node_names) == 1
  _check_the_demo_job(one_node_cluster, demo_cwd,
                      _submit(one_node_cluster, demo_cwd))


def _check_the_demo_job(cluster, workdir, proc):
  out = proc.stdout
  assert proc.returncode == 0, out[-4000:] + proc.stderr[-2000:]
  job_id = _job_id(out)
  assert "slurm: job %s COMPLETED" % job_id in out
  # Every role ran, on the nodes Slurm gave it.
  for name in ("chief-0", "worker-0", "worker-1", "ps-0", "evaluator-0"):
    assert "[%s] slurm_task: TF_CONFIG=" % name in out
  if cluster.isolated:
    assert re.search(r'"worker": \["node\d:\d+", "node\d:\d+"\]', out)
  model_dir = str(workdir / "run" / "model")
  step = warm_start.global_step(model_dir)
  assert step >= 100
  metrics = eval_events.last(os.path.join(model_dir, "eval"))
  assert metrics["global_step"] >= 100  # The final checkpoint's evaluation.
  assert "Final evaluation (step %d)" % metrics["global_step"] in out
  exported = tf.saved_model.load(os.path.join(model_dir, "export"))
  probabilities = exported.signatures["serving_default"](
      inputs=tf.zeros([2, 64]))["probabilities"].numpy()
  np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
  assert cluster.queue() == []
  state = cluster.job_state(job_id)
  assert state.get("JobState", "COMPLETED") == "COMPLETED"


@pytest.mark.cluster
@pytest.mark.xdist_group("slurm")
def test_a_killed_task_is_restarted_and_the_job_succeeds(cluster, workdir):
  output_path = workdir / "submit.out"
  with open(output_path, "w") as output:
    submitter = _submit(cluster, workdir,
                        trainer_args=["--train_steps=4000",
                                      "--save_checkpoints_steps=200",
                                      "--log_every_steps=200"],
                        background=output)
    try:
      pid_file = workdir / "run" / "logs" / "worker-1.pid"
      # The chief logs progress on both backends (Keras workers only run
      # the steps it schedules).
      log = workdir / "run" / "logs" / "chief-0.log"
      assert processes.wait_until(
          lambda: log.exists() and "first training step" in log.read_text()
          or submitter.poll() is not None, 240)
      assert submitter.poll() is None, output_path.read_text()[-3000:]
      os.kill(int(pid_file.read_text()), signal.SIGKILL)
      submitter.wait(400)
    finally:
      submitter.kill()
  out = output_path.read_text()
  assert submitter.returncode == 0, out[-4000:]
  assert re.search(r"\[worker-1\] slurm_task: worker-1 was killed by SIGKILL "
                   r"\(exit code 137\); restarting it \(restart 1 of at "
                   r"most 3 in 600 s\)", out), out[-4000:]
  assert warm_start.global_step(str(workdir / "run" / "model")) >= 4000
  assert cluster.queue() == []


@pytest.mark.cluster
@pytest.mark.xdist_group("slurm")
def test_a_bad_trainer_flag_fails_before_anything_is_queued(cluster,
                                                            workdir):
  def job_ids():
    listing = subprocess.run(["scontrol", "show", "jobs", "-o"],
                             env=cluster.env, capture_output=True, text=True,
                             check=False).stdout
    return set(re.findall(r"^JobId=(\d+) ", listing, re.MULTILINE))
  before = job_ids()
  proc = _submit(cluster, workdir, trainer_args=DEMO + ["--n_classes=3"])
  assert proc.returncode == 1
  lines = [l for l in processes.our_lines(proc.stderr)
           if l.startswith("error: ")]
  assert lines == ["error: %s: record 1: label 4 is outside [0, 3) "
                   "(--n_classes=3); labels must be the integers 0 to 2." %
                   os.path.join(str(workdir), "demo_assets", "data",
                                "digits_train.tfrecord")], proc.stderr
  assert "submitted job" not in proc.stdout
  # No job was added (an earlier test's finished job may age out meanwhile).
  assert job_ids() <= before and cluster.queue() == []


@pytest.mark.cluster
@pytest.mark.xdist_group("slurm")
@pytest.mark.parametrize("args,message", [
    (["--num_workers=12"], "The job's 15 tasks do not fit on {nodes} node(s) "
     "of the default partition: they hold {cpus} tasks"),
    (["--partition=nope"], "sbatch refused the job: sbatch: error: invalid "
     "partition specified: nope; sbatch: error: Batch job submission "
     "failed: Invalid partition name specified"),
    # Resources the test cluster does not have: Slurm's own refusal.
    (_every_role("gpu=1"), "sbatch refused the job: sbatch: error: Invalid "
     "generic resource (gres) specification"),
    (_every_role("memory=900Gi"), "sbatch refused the job: sbatch: error: "
     "Memory specification can not be satisfied"),
    (_every_role("cpu=64"), "The job's 5 tasks do not fit on {nodes} "
     "node(s) of the default partition: they hold 0 tasks (64 CPUs each)"),
])
def test_what_slurm_cannot_run_is_one_line(cluster, workdir, args, message):
  nodes = len(cluster.node_names)
  message = message.format(nodes=nodes,
                           cpus=nodes * slurm_cluster.NODE_CPUS)
  proc = _submit(cluster, workdir, args=args)
  assert proc.returncode == 1, proc.stdout[-3000:]
  lines = [l for l in processes.our_lines(proc.stderr)
           if l.startswith("error: ")]
  assert len(lines) == 1 and message in lines[0], proc.stderr
  assert cluster.queue() == []


def test_a_task_has_no_deadline_of_its_own_but_the_jobs_time_limit():
  """The step's supervisor ends with the job's time limit (passed by the
  batch script), never the local launcher's 15-minute default."""
  fv = flags.FlagValues()
  slurm_task.define_flags(fv)
  fv(["slurm_task"])
  assert fv.deadline_secs is None
  step = slurm.step_command(_spec(time_limit="1-00:00:00"), [])
  assert "--deadline_secs=86400" in step
  assert not any(a.startswith("--deadline_secs")
                 for a in slurm.step_command(_spec(time_limit=""), []))


@pytest.mark.cluster
@pytest.mark.xdist_group("slurm")
def test_the_docs_slurm_commands(cluster, workdir, assets):
  """docs/clusters.md's batch script and sbatch, as written, on the live
  3-node Slurm; /shared/ is a folder laid out as the page names it (the
  demo's model and data under models/ and data/)."""
  shared = workdir / "shared"
  for name, target in (("models/digits", assets.digits_model),
                       ("data/train.tfrecord",
                        assets.data("digits_train.tfrecord")),
                       ("data/eval.tfrecord",
                        assets.data("digits_eval.tfrecord"))):
    os.makedirs(os.path.dirname(shared / name), exist_ok=True)
    os.symlink(target, shared / name)
  env = doc_commands.environment({"SLURM_CONF": cluster.env["SLURM_CONF"]})
  written, submitted = (doc_commands.find("docs/clusters.md", start).text
                        .replace("/shared/", str(shared) + "/")
                        for start in (
      "python -m cluster.slurm --nodes=3 --num_workers=2 --num_ps=1 "
      "--evaluator --run_dir=/shared/runs/digits-1 --time=1:00:00 -- "
      "--module_handle", "mkdir -p /shared/runs/digits-1 && sbatch"))
  for text in (written, submitted):
    result = doc_commands.run(text, workdir, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
  job_id = re.search(r"Submitted batch job (\d+)", result.stdout).group(1)
  ended = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL",
           "OUT_OF_MEMORY")
  try:
    assert processes.wait_until(
        lambda: cluster.job_state(job_id).get("JobState") in ended, 600,
        poll_secs=1)
  finally:
    subprocess.run(["scancel", job_id], env=env, check=False,
                   capture_output=True, timeout=60)
  run_dir = shared / "runs" / "digits-1"
  with open(run_dir / ("slurm-%s.out" % job_id)) as f:
    output = f.read()
  assert cluster.job_state(job_id)["JobState"] == "COMPLETED", output[-4000:]
  assert warm_start.global_step(str(run_dir / "model")) >= 1000
  assert os.path.isdir(run_dir / "model" / "export")
  assert re.search(r"\[evaluator-0\].*after step \d+", output)
  assert cluster.queue() == []


def test_spot_asks_slurm_to_requeue_a_preempted_job():
  script = slurm.batch_script(_spec(spot=True), ["--n_classes=5"], ["x"])
  assert "#SBATCH --requeue\n#SBATCH --open-mode=append\n" in script
  assert "--requeue" not in slurm.batch_script(_spec(), ["--n_classes=5"],
                                               ["x"])
