"""The commands docs/clusters.md and docs/vertex.md show, run as written
(tests/test_docs.py says what that means, and checks that every command is
listed). HOW: which test runs each here, or why none can."""

import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from cluster.engines import spec
from cluster.launcher import leftovers
from tests import doc_commands
from tests import netns_hosts
from trainer.training import warm_start

REPO = doc_commands.REPO

# (page, first words) -> the test that runs the command, or why it cannot
# run here.
HOW = {
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
    ("docs/vertex.md", "python -m cluster.vertex"): "test_the_vertex_commands",
    ("docs/vertex.md", "gcloud ai custom-jobs create"):
        "why not: gcloud and Vertex AI need a Google Cloud project and the "
        "network; tests/test_vertex.py runs the spec's replicas as Vertex "
        "would, in network namespaces",
}


@pytest.mark.slow
def test_the_tfjob_command(workdir):
  """The manifest, without `| kubectl apply -f -` (no Kubernetes here): it
  validates against the operator's CRD (tests/data/k8s), as kubectl's
  server-side check would."""
  jsonschema = pytest.importorskip("jsonschema")
  command = doc_commands.find("docs/clusters.md", "python -m cluster.tfjob")
  text, piped = command.text.split(" | ")
  assert piped == "kubectl apply -f -"
  result = doc_commands.ok(doc_commands.run(text, workdir, timeout=120))
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
  result = doc_commands.ok(doc_commands.run(text, workdir, timeout=120))
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
  doc_commands.ok(doc_commands.run(command.text, workdir, timeout=120))
  with open(workdir / "job.sbatch") as f:
    written = f.read()
  doc_commands.ok(subprocess.run(
      ["bash", "-n", str(workdir / "job.sbatch")], capture_output=True,
      text=True, timeout=30, check=False))
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
  doc_commands.ok(doc_commands.run(command.text, workdir, timeout=120))
  with open(workdir / "job.yaml") as f:
    spec = yaml.safe_load(f)
  parsed = aiplatform_v1.types.CustomJobSpec.from_json(json.dumps(spec))
  pools = parsed.worker_pool_specs
  assert [p.replica_count for p in pools] == [1, 2, 1, 1]
  assert pools[1].machine_spec.accelerator_count == 1


@pytest.mark.cluster
def test_the_local_cluster_command(workdir):
  command = doc_commands.find("docs/clusters.md", "python -m cluster.local")
  result = doc_commands.ok(doc_commands.run(command.text, workdir,
                                            timeout=600))
  step = int(re.search(r"^Final evaluation \(step (\d+)\)", result.stdout,
                       re.M).group(1))
  assert step >= 500
  assert not leftovers.pids_mentioning(str(workdir))


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

