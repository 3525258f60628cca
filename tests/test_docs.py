"""Every command the README and docs/ show runs as written, or says why not.

The commands are read from the pages (tests/doc_commands.py), not copied
here. HOW lists each one, by page and first words: the test that runs it,
or why it cannot run on this machine (and what runs instead). A command
added to a page and not listed fails `test_every_command_is_listed`, as does
a listed one the pages no longer show.

Run "as written" means: the page's text, through bash, with `python` and the
commands the package installs being this checkout's (doc_commands.run), in
a folder laid out as the page assumes (configs/, demo_assets/). Where a page
names a folder this machine has no business writing (/shared, /runs), the
test says which temporary folder stands for it; where it writes `...` for
the flags a reader adds, the test says what it adds.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from cluster.engines import spec
from cluster.launcher import leftovers
from tests import doc_commands
from tests import netns_hosts
from trainer.config import backends
from trainer.training import eval_events
from trainer.training import warm_start

REPO = doc_commands.REPO
HAS_ESTIMATOR = backends.choose_here("auto").name == backends.ESTIMATOR

# (page, first words) -> the test that runs the command, or why it cannot
# run here.
HOW = {
    ("README.md", "python3 -m venv .venv && .venv/bin/pip install -e "
                  "'.[cpu,examples]'"): "test_the_readme_demo_and_tensorboard",
    ("README.md", "python3 -m venv .venv && .venv/bin/pip install -e "
                  "'.[cpu,test]'"):
        "why not: it is this suite; .ci/run runs exactly it, in a fresh "
        "clone, on each supported Python",
    ("README.md", ".venv/bin/python -m pytest -n 2 -m"):
        "why not: a part of this suite (its fast lane); .ci/run runs all of "
        "it",
    ("docs/backends.md", "python -m trainer.task --backend=estimator"):
        "test_asking_for_the_estimator_where_tf_has_none",
    ("docs/backends.md", "python -m trainer.task --flagfile=configs/digits.cfg "
                         "--backend=estimator"): "test_the_bridge_commands",
    ("docs/backends.md", "python -m trainer.task --flagfile=configs/digits.cfg "
                         "--warm_start_from"): "test_the_bridge_commands",
    ("docs/clusters.md", "python -m cluster.local"):
        "test_the_local_cluster_command",
    ("docs/clusters.md", "CLUSTER="): "test_the_host_commands",
    ("docs/clusters.md", "python -m cluster.hosts --cluster=\"$CLUSTER\" "
                         "--task=ps:0"): "test_the_host_commands",
    ("docs/clusters.md", "python -m cluster.hosts --cluster=\"$CLUSTER\" "
                         "--task=worker:0"): "test_the_host_commands",
    ("docs/clusters.md", "python -m cluster.hosts --cluster=\"$CLUSTER\" "
                         "--task=chief:0"): "test_the_host_commands",
    ("docs/clusters.md", "python -m cluster.tfjob"):
        "test_the_tfjob_command",
    ("docs/clusters.md", "TF_CONFIG="): "test_the_tf_config_check",
    ("docs/clusters.md", "python -m cluster.jobset"):
        "test_the_pages_jobset_and_trainjob_commands (tests/test_jobset.py)",
    ("docs/clusters.md", "python -m cluster.trainjob --emit=runtime"):
        "test_the_pages_jobset_and_trainjob_commands (tests/test_jobset.py)",
    ("docs/clusters.md", "python -m cluster.trainjob --emit=trainjob"):
        "test_the_pages_jobset_and_trainjob_commands (tests/test_jobset.py)",
    ("docs/clusters.md", "python -m cluster.slurm --nodes=3 --num_workers=2 "
                         "--num_ps=1 --evaluator --run_dir=/shared/runs/"
                         "digits-1 --time=1:00:00 -- --module_handle"):
        "test_the_slurm_script_command (and tests/test_slurm.py's "
        "test_the_docs_slurm_commands, on a live Slurm)",
    ("docs/clusters.md", "mkdir -p /shared/runs/digits-1 && sbatch"):
        "tests/test_slurm.py: test_the_docs_slurm_commands",
    ("docs/clusters.md", "python -m cluster.slurm --nodes=3 --num_workers=2 "
                         "--num_ps=1 --evaluator --run_dir=/shared/runs/"
                         "digits-1 --time=1:00:00 --submit -- ..."):
        "why not: '...' is the trainer flags of the command above it, whose "
        "job tests/test_slurm.py runs on a live Slurm; its live tests run "
        "--submit with the demo's flags",
    ("docs/clusters.md", "python -m cluster.vertex"):
        "test_the_vertex_commands",
    ("docs/clusters.md", "gcloud ai custom-jobs create"):
        "why not: gcloud and Vertex AI need a Google Cloud project and the "
        "network; tests/test_vertex.py runs the spec's replicas as Vertex "
        "would, in network namespaces",
    ("docs/migrating.md", "hub-migrate my_project/"):
        "test_the_migration_commands",
    ("docs/migrating.md", "hub-migrate my_project/ --write"):
        "test_the_migration_commands",
    ("docs/migrating.md", "hub-migrate model.py"):
        "test_the_migration_commands",
    ("docs/performance.md", "pip install -e '.[bench]'"):
        "why not: installing is .ci/run's own step, from the package index; "
        "the extra adds only matplotlib (tests/test_benchmark.py checks the "
        "one-line refusal of --plot without it)",
    ("docs/performance.md", "python -m scripts.benchmark --quick"):
        "why not: a --quick run takes 13 minutes on 2 cores (771 s, "
        "measured); tests/test_benchmark.py runs every part of it in its "
        "--smoke mode and checks its JSON and figures",
    ("docs/training.md", "python -m example_kit --out=demo_assets"):
        "test_the_tf1_hub_commands",
    ("docs/training.md", "python -m trainer.task --flagfile=configs/"
                         "tf1_hub.cfg"): "test_the_tf1_hub_commands",
    ("docs/training.md", "python -m trainer.task --flagfile=configs/"
                         "your_model.cfg"): "test_the_your_model_command",
    ("docs/training.md", "python -m trainer.task --module_handle=https://"
                         "tfhub.dev"):
        "why not: no tfhub.dev here (no network beyond package registries); "
        "tests/test_handles.py serves a hub archive over HTTP the same way",
    ("docs/training.md", "python -m trainer.task --module_handle=gs://my-"
                         "bucket/models/digits ..."):
        "why not: no Cloud Storage here; tests/test_handles.py reads a model "
        "in place on TF's ram:// file system, through the same tf.io.gfile",
    ("docs/training.md", "python -m trainer.task --module_handle=gs://my-"
                         "bucket/models/digits.tar.gz"):
        "why not: no Cloud Storage here; tests/test_handles.py fetches an "
        "archive from ram:// the same way",
    ("docs/training.md", "TFHUB_CACHE_DIR=/shared/hub_cache"):
        "why not: 'https://...' stands for a hub URL, and there is no hub "
        "here; tests/test_handles.py fetches into TFHUB_CACHE_DIR from a "
        "local HTTP server",
    ("docs/training.md", "python -m trainer.task --module_handle=demo_assets/"
                         "models/tf1_hub --tags=baz"):
        "test_the_bad_tags_transcript",
    ("docs/training.md", "tensorboard --logdir=runs/cluster-<time>/model"):
        "test_the_readme_demo_and_tensorboard",
    ("docs/tuning.md", "python -m cluster.tune"):
        "test_a_study_runs_resumes_and_its_best_reruns (tests/"
        "test_tune_study.py runs it, then the same study resumed, "
        "interrupted and rerun)",
    ("docs/tuning.md", "python -m cluster.vertex"):
        "test_the_tuning_service_commands",
    ("docs/tuning.md", "gcloud ai hp-tuning-jobs create"):
        "why not: gcloud and Vertex AI need a Google Cloud project and the "
        "network; test_the_tuning_service_commands parses the file with "
        "Vertex AI's own HyperparameterTuningJob type",
    ("docs/tuning.md", "python -m cluster.tfjob"):
        "test_the_tuning_service_commands",
    ("docs/vertex.md", "python -m cluster.vertex"): "test_the_vertex_commands",
    ("docs/vertex.md", "gcloud ai custom-jobs create"):
        "why not: gcloud and Vertex AI need a Google Cloud project and the "
        "network; tests/test_vertex.py runs the spec's replicas as Vertex "
        "would, in network namespaces",
}


def test_every_command_is_listed():
  commands = doc_commands.commands()
  assert len(commands) >= 30  # The reader finds them.
  for command in commands:
    listed = [how for (page, start), how in HOW.items()
              if doc_commands.matches(command, page, start, commands)]
    assert len(listed) == 1, "not listed once in HOW: %s" % command
  for (page, start), how in HOW.items():
    named = [c for c in commands
             if doc_commands.matches(c, page, start, commands)]
    assert len(named) == 1, "%s: %r names %d commands" % (page, start,
                                                         len(named))
    if not how.startswith("why not: "):
      named = re.findall(r"\btest_\w+(?=[ ,)]|$)", how)
      assert named and set(named) <= _tests_defined(), how


def _tests_defined():
  """The names of the tests in tests/."""
  names = set()
  for path in glob.glob(os.path.join(REPO, "tests", "test_*.py")):
    with open(path) as f:
      names.update(re.findall(r"^def (test_\w+)\(", f.read(), re.M))
  return names


def test_the_reader_finds_continuations_hosts_and_transcripts():
  hosts = [c for c in doc_commands.commands(["docs/clusters.md"])
           if c.host]
  assert [c.host for c in hosts] == ["10.0.0.3", "10.0.0.2", "10.0.0.1"]
  assert all(c.text.endswith("--model_dir=/shared/run1") for c in hosts)
  refusal = doc_commands.find("docs/backends.md",
                              "python -m trainer.task --backend=estimator")
  assert refusal.text == "python -m trainer.task --backend=estimator"
  assert refusal.output.startswith("error: --backend=estimator needs")


# The folders the pages assume.


@pytest.fixture
def workdir(tmp_path, assets):
  """A checkout's folder as the pages assume it: configs/ and the demo's
  demo_assets/."""
  work = tmp_path / "project"
  work.mkdir()
  os.symlink(os.path.join(REPO, "configs"), work / "configs")
  os.symlink(assets.root, work / "demo_assets")
  return work


def _ok(result):
  assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
  return result


def _error_line(result):
  lines = [line for line in result.stderr.splitlines()
           if line.startswith("error: ")]
  assert result.returncode == 1 and len(lines) == 1, result.stderr[-3000:]
  return lines[0]


# Generators and checks (a TF import, where they start the trainer, makes
# some slow).


@pytest.mark.slow
def test_the_tfjob_command(workdir):
  """The manifest, without `| kubectl apply -f -` (no Kubernetes here): it
  validates against the operator's CRD (tests/data/k8s), as kubectl's
  server-side check would."""
  jsonschema = pytest.importorskip("jsonschema")
  command = doc_commands.find("docs/clusters.md", "python -m cluster.tfjob")
  text, piped = command.text.split(" | ")
  assert piped == "kubectl apply -f -"
  result = _ok(doc_commands.run(text, workdir, timeout=120))
  documents = {d["kind"]: d for d in yaml.safe_load_all(result.stdout)}
  assert set(documents) == {"TFJob", "NetworkPolicy"}
  job = documents["TFJob"]
  with open(os.path.join(REPO, "tests", "data", "k8s",
                         "kubeflow.org_tfjobs.yaml")) as f:
    crd = yaml.safe_load(f)
  jsonschema.validate(job, crd["spec"]["versions"][0]["schema"][
      "openAPIV3Schema"])
  replicas = job["spec"]["tfReplicaSpecs"]
  assert {name: spec["replicas"] for name, spec in replicas.items()} == {
      "Chief": 1, "Worker": 2, "PS": 1, "Evaluator": 1}


@pytest.mark.slow
def test_the_tf_config_check(workdir):
  """`--flagfile=...` is the job's flags: here the demo's."""
  command = doc_commands.find("docs/clusters.md", "TF_CONFIG=")
  assert command.text.endswith("--flagfile=...")
  text = command.text.replace("--flagfile=...", "--flagfile=configs/digits.cfg")
  result = _ok(doc_commands.run(text, workdir, timeout=120))
  assert "Pre-flight passed; nothing was written." in result.stdout
  assert "Task: worker-0: " in result.stdout
  assert not os.path.exists(workdir / "runs")


def test_the_slurm_script_command(workdir):
  """The batch script, written as the page says; it is the one the page
  shows (run from /home/me/project), and bash reads it."""
  command = doc_commands.find(
      "docs/clusters.md", "python -m cluster.slurm --nodes=3 --num_workers=2 "
      "--num_ps=1 --evaluator --run_dir=/shared/runs/digits-1 --time=1:00:00 "
      "-- --module_handle")
  assert command.text.endswith("> job.sbatch")
  _ok(doc_commands.run(command.text, workdir, timeout=120))
  with open(workdir / "job.sbatch") as f:
    written = f.read()
  _ok(subprocess.run(["bash", "-n", str(workdir / "job.sbatch")],
                     capture_output=True, text=True, timeout=30, check=False))
  with open(os.path.join(REPO, "docs", "clusters.md")) as f:
    page = f.read()
  shown = re.search(r"```text\n(#!/bin/bash\n.*?)```", page, re.S).group(1)
  as_here = shown.replace("/home/me/project/.venv/bin/python",
                          sys.executable).replace(
                              "cd /home/me/project", "cd %s" % workdir)
  unwrapped = lambda script: re.sub(r" \\\n +", " ", script)
  # (Lines wrap where this python's path makes them.)
  assert unwrapped(written) == unwrapped(as_here)
  assert not os.path.exists("/shared/runs/digits-1")  # Nothing made there.


@pytest.mark.parametrize("page", ["docs/clusters.md", "docs/vertex.md"])
def test_the_vertex_commands(workdir, page):
  """The CustomJobSpec, as gcloud would read it: Vertex AI's own types
  (google-cloud-aiplatform, a test extra) parse it."""
  aiplatform_v1 = pytest.importorskip("google.cloud.aiplatform_v1")
  command = doc_commands.find(page, "python -m cluster.vertex")
  assert command.text.endswith("> job.yaml")
  _ok(doc_commands.run(command.text, workdir, timeout=120))
  with open(workdir / "job.yaml") as f:
    spec = yaml.safe_load(f)
  parsed = aiplatform_v1.types.CustomJobSpec.from_json(json.dumps(spec))
  pools = parsed.worker_pool_specs
  assert [p.replica_count for p in pools] == [1, 2, 1, 1]
  assert pools[1].machine_spec.accelerator_count == 1


def test_the_tuning_service_commands(workdir):
  """docs/tuning.md's HyperparameterTuningJob, as gcloud would read it
  (Vertex AI's own type parses it), and its Katib Experiment, without
  `| kubectl apply -f -` (no Kubernetes here; tests/test_tune.py checks
  the Experiment against Katib's models)."""
  aiplatform_v1 = pytest.importorskip("google.cloud.aiplatform_v1")
  command = doc_commands.find("docs/tuning.md", "python -m cluster.vertex")
  assert command.text.endswith("> hptune.yaml")
  _ok(doc_commands.run(command.text, workdir, timeout=120))
  with open(workdir / "hptune.yaml") as f:
    job = aiplatform_v1.types.HyperparameterTuningJob.from_json(
        json.dumps(yaml.safe_load(f)))
  assert (job.max_trial_count, job.parallel_trial_count) == (16, 4)
  assert [p.parameter_id for p in job.study_spec.parameters] == [
      "learning_rate", "hidden_units", "batch_size"]
  command = doc_commands.find("docs/tuning.md", "python -m cluster.tfjob")
  text, piped = command.text.split(" | ")
  assert piped == "kubectl apply -f -"
  experiment = yaml.safe_load(_ok(doc_commands.run(text, workdir,
                                                   timeout=120)).stdout)
  assert experiment["kind"] == "Experiment"
  assert experiment["spec"]["maxTrialCount"] == 16


def test_the_migration_commands(tmp_path):
  """my_project/ is the TF1 corpus (tests/data/tf1_corpus), model.py its
  legacy_digits.py; the first command's diff holds the page's before and
  after."""
  shutil.copytree(os.path.join(REPO, "tests", "data", "tf1_corpus"),
                  tmp_path / "my_project")
  shutil.copy(tmp_path / "my_project" / "legacy_digits.py",
              tmp_path / "model.py")
  first, write, target = (
      doc_commands.find("docs/migrating.md", start) for start in (
          "hub-migrate my_project/", "hub-migrate my_project/ --write",
          "hub-migrate model.py"))
  report = doc_commands.run(first.text, tmp_path, timeout=120)
  # The corpus has problems only a person can fix: errors, exit status 1.
  assert report.returncode == 1, report.stderr
  with open(os.path.join(REPO, "docs", "migrating.md")) as f:
    page = f.read()
  diff = re.search(r"```diff\n(.*?)```", page, re.S).group(1)
  changed = [line for line in diff.splitlines() if line[:1] in "+-"]
  assert changed and all(line in report.stdout.splitlines()
                         for line in changed), report.stdout
  assert doc_commands.run(write.text, tmp_path, timeout=120).returncode == 1
  for name in os.listdir(tmp_path / "my_project"):
    if name.endswith(".py"):
      with open(tmp_path / "my_project" / name) as f:
        assert "hub.Module(" not in f.read(), name
  older = _ok(doc_commands.run(target.text, tmp_path, timeout=120))
  assert ("+    config.session_config.experimental."
          "share_cluster_devices_in_session = True") in older.stdout, (
              older.stdout)


@pytest.mark.slow
def test_asking_for_the_estimator_where_tf_has_none(workdir):
  """The page's transcript: the line it prints, with this TF's version."""
  if HAS_ESTIMATOR:
    pytest.skip("this TF has tf.estimator, so the command trains; the page "
                "shows TF 2.21, where the second CI stage runs this test")
  command = doc_commands.find("docs/backends.md",
                              "python -m trainer.task --backend=estimator")
  result = doc_commands.run(command.text, workdir, timeout=120)
  expected = re.sub(r"TF 2\.21\.0 on Python 3\.12", "TF %s on Python %d.%d" % (
      (backends.installed_tf_version(),) + sys.version_info[:2]),
                    command.output)
  assert _error_line(result) == expected
  assert not os.path.exists(workdir / "runs")


@pytest.mark.slow
def test_the_bad_tags_transcript(workdir):
  """`...` is the rest of a job (a required flag left out would be said
  first): the data, the classes and a model directory."""
  command = doc_commands.find("docs/training.md",
                              "python -m trainer.task --module_handle="
                              "demo_assets/models/tf1_hub --tags=baz")
  assert command.text.endswith(" ...")
  text = command.text.replace(
      " ...", " --train_files=demo_assets/data/digits_train.csv "
      "--n_classes=5 --model_dir=runs/tags")
  result = doc_commands.run(text, workdir, timeout=120)
  assert _error_line(result) == command.output
  assert not os.path.exists(workdir / "runs")


# Slow: they train.


@pytest.mark.slow
def test_the_tf1_hub_commands(tmp_path):
  """From a folder with only configs/: the kit builds demo_assets/, then the
  TF1 Hub format job trains 200 steps."""
  os.symlink(os.path.join(REPO, "configs"), tmp_path / "configs")
  for start in ("python -m example_kit --out=demo_assets",
                "python -m trainer.task --flagfile=configs/tf1_hub.cfg"):
    command = doc_commands.find("docs/training.md", start)
    _ok(doc_commands.run(command.text, tmp_path, timeout=600))
  assert warm_start.global_step(str(tmp_path / "runs" / "tf1_hub")) == 200


@pytest.mark.slow
def test_the_your_model_command(demo_cwd):
  """The worked example of a model of one's own, as the page runs it, from a
  folder with configs/ and demo_assets/: far above the 0.2 either column
  alone gets."""
  os.symlink(os.path.join(REPO, "configs"), demo_cwd / "configs")
  command = doc_commands.find(
      "docs/training.md",
      "python -m trainer.task --flagfile=configs/your_model.cfg")
  _ok(doc_commands.run(command.text, demo_cwd, timeout=600))
  model_dir = str(demo_cwd / "runs" / "your_model")
  assert warm_start.global_step(model_dir) == 600
  assert eval_events.last(os.path.join(model_dir, "eval"))["accuracy"] > 0.9


@pytest.mark.slow
def test_the_bridge_commands(workdir, tmp_path):
  """/runs/ is a temporary folder. Where TF has the Estimator both run, the
  second from the first's checkpoint; where it has none (the page's second
  stack), the first is refused and the second starts from the Estimator
  checkpoint TF 2.15 wrote (tests/data/estimator_checkpoint: this job's)."""
  runs = tmp_path / "runs"
  first, second = (
      doc_commands.find("docs/backends.md", start).text.replace(
          "/runs/", str(runs) + "/") for start in (
              "python -m trainer.task --flagfile=configs/digits.cfg "
              "--backend=estimator",
              "python -m trainer.task --flagfile=configs/digits.cfg "
              "--warm_start_from"))
  if HAS_ESTIMATOR:
    _ok(doc_commands.run(first, workdir, timeout=600))
    assert warm_start.global_step(str(runs / "est")) == 300
  else:
    assert "needs tf.estimator" in _error_line(
        doc_commands.run(first, workdir, timeout=120))
    shutil.copytree(os.path.join(REPO, "tests", "data",
                                 "estimator_checkpoint"), runs / "est")
    with open(runs / "est" / "checkpoint", "w") as f:
      f.write('model_checkpoint_path: "model.ckpt-50"\n')
  result = _ok(doc_commands.run(second, workdir, timeout=600))
  assert warm_start.global_step(str(runs / "keras")) == 300
  taken = re.search(r"Warm start: (\d+) variable\(s\) matching --"
                    r"warm_start_vars=\.\* from (\S+);", result.stderr)
  assert taken, result.stderr[-3000:]
  assert int(taken.group(1)) >= 4  # The hub model's layers and the head.
  assert taken.group(2).startswith(str(runs / "est" / "model.ckpt-"))


@pytest.mark.cluster
def test_the_local_cluster_command(workdir):
  command = doc_commands.find("docs/clusters.md", "python -m cluster.local")
  result = _ok(doc_commands.run(command.text, workdir, timeout=600))
  step = int(re.search(r"^Final evaluation \(step (\d+)\)", result.stdout,
                       re.M).group(1))
  assert step >= 500
  assert not leftovers.pids_mentioning(str(workdir))


@pytest.mark.cluster
def test_the_readme_demo_and_tensorboard(workdir):
  """The README's demo, after its install (CI's own first step: .ci/run
  makes the venv and installs `.[cpu,test]`, which holds `examples`): its
  summary has the lines the README shows. Then docs/training.md's
  tensorboard command on that run (<time>: the run's), which serves it."""
  command = doc_commands.find("README.md", "python3 -m venv .venv && "
                              ".venv/bin/pip install -e '.[cpu,examples]'")
  *install, demo = command.text.split(" && ")
  assert install == ["python3 -m venv .venv",
                     ".venv/bin/pip install -e '.[cpu,examples]'"]
  assert demo == ".venv/bin/python -m cluster.local"
  result = _ok(doc_commands.run(demo.replace(".venv/bin/python", "python"),
                                workdir, timeout=600))
  with open(os.path.join(REPO, "README.md")) as f:
    shown = re.search(r"\n```\n(\[chief-0\] Export:.*?)```", f.read(),
                      re.S).group(1)
  for line in shown.splitlines():
    if not line.startswith(("[", "launcher:")):
      prefix = re.split(r"[\d.]+|\.\.\.", line)[0]
      assert any(l.startswith(prefix) for l in result.stdout.splitlines()), (
          prefix, result.stdout[-2000:])
  run_dir, = os.listdir(workdir / "runs")
  assert re.fullmatch(r"cluster-\d{8}-\d{6}", run_dir)
  board = doc_commands.find("docs/training.md", "tensorboard --logdir=")
  text = board.text.replace("runs/cluster-<time>", "runs/" + run_dir)
  served = doc_commands.serve(text, workdir, path="/data/plugin/scalars/tags",
                              timeout=120)
  assert "loss" in served["."] and "accuracy" in served["eval"], served


@pytest.mark.cluster
def test_the_host_commands(workdir, tmp_path):
  """Each command on its host: three network namespaces with the page's
  addresses (10.0.0.1-3, on a bridge of their own: the machine's network is
  untouched), CLUSTER set as the page sets it. /shared/ is a temporary
  folder."""
  reason = netns_hosts.why_not()
  if reason:
    pytest.skip("no network namespaces here: %s" % reason)
  assignment = doc_commands.find("docs/clusters.md", "CLUSTER=").text
  # Host i of the namespaces is 10.0.0.i+1: the commands in that order.
  commands = sorted((c for c in doc_commands.commands(["docs/clusters.md"])
                     if c.host), key=lambda c: int(c.host.rsplit(".", 1)[1]))
  assert [c.host for c in commands] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
  shared = tmp_path / "shared"
  replicas = [(
      command.host,
      spec.parse_task_flag(re.search(r"--task=(\S+)", command.text).group(1)),
      ["bash", "-c", "cd %s && %s; %s" % (workdir, assignment,
                                         command.text.replace(
                                             "/shared/", str(shared) + "/"))],
      doc_commands.environment()) for command in commands]
  codes, lines = netns_hosts.run_as_hosts(
      replicas, log_dir=str(tmp_path / "logs"), deadline_secs=600,
      subnet="10.0.0")
  assert set(codes.values()) == {0}, "\n".join(lines[-60:])
  assert warm_start.global_step(str(shared / "run1")) >= 300
  assert os.path.isdir(shared / "run1" / "export")
  assert not leftovers.pids_mentioning(str(shared))
