"""python -m cluster.vertex, proven without Vertex AI, three ways.

1. The spec: every generated CustomJobSpec parses with Google's own type,
   `google.cloud.aiplatform_v1.types.CustomJobSpec.from_json` (unknown
   fields and bad enum names fail), plus what that type does not check
   (pool 0 with one replica, an image and a machine type per pool, no
   empty pool for gcloud).
2. Each replica's environment, computed here as Vertex AI writes it
   (TF_CONFIG with "chief" or "master", CLUSTER_SPEC, the AIP_* directories),
   passes the trainer's own pre-flight (--check_only) with the spec's
   container command, and the plan shows the directories chosen.
3. Live: every replica as a process in its own network namespace, named as
   Vertex names its hosts (cmle-training-workerpoolN-<id>-<i>), on port
   2222, running exactly the spec's container command with that
   environment, the AIP_* directories on a shared local path standing in
   for the bucket: the job trains to the end, the evaluator evaluates the
   final checkpoint, the ps and workers end, the export loads.

Vertex AI's rules (docs/engines.md) are written here independently of
cluster/vertex.py.
"""

import json
import os
import subprocess
import sys

from google.cloud import aiplatform_v1
import pytest
import yaml

from cluster.launcher import leftovers
from harness import errors
from harness import tf_config
from tests import netns_hosts
from tests import processes
from trainer.training import eval_events

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=REPO)
for _name in ("TF_CONFIG", "CLUSTER_SPEC", "AIP_CHECKPOINT_DIR",
              "AIP_MODEL_DIR", "AIP_TENSORBOARD_LOG_DIR"):
  ENV.pop(_name, None)
JOB_ID = "8123456789"
BASE = "gs://bucket/runs/digits"
POOL_ROLES = ("chief", "worker", "ps", "evaluator")


def generate(args, trainer_args):
  return subprocess.run(
      [sys.executable, "-m", "cluster.vertex"] + list(args) + ["--"] +
      list(trainer_args), capture_output=True, text=True, env=ENV,
      timeout=120, check=False)


def _trainer_args(assets, extra=()):
  return ["--module_handle=" + assets.digits_model, "--trainable",
          "--train_files=" + assets.data("digits_train.tfrecord"),
          "--eval_files=" + assets.data("digits_eval.tfrecord"),
          "--input_map=inputs=pixels", "--n_classes=5"] + list(extra)


CLUSTER_ARGS = ["--image=us-docker.pkg.dev/p/r/harness:1",
                "--machine_type=n1-standard-4", "--num_workers=2",
                "--num_ps=1", "--evaluator", "--base_output_dir=" + BASE,
                "--deadline_secs=7200"]


def _spec(assets, args=(), extra=()):
  proc = generate(CLUSTER_ARGS + ["--python=" + sys.executable] + list(args),
                  _trainer_args(assets, extra))
  assert proc.returncode == 0, proc.stderr
  assert proc.stderr == ""
  return yaml.safe_load(proc.stdout)


def vertex_problems(spec: dict) -> list:
  """What CustomJobSpec.from_json does not check, and gcloud or Vertex
  refuse: pool 0 with exactly one replica, an image and a machine type in
  every pool, no empty pool before a filled one."""
  problems = []
  pools = spec.get("workerPoolSpecs", [])
  if not pools or pools[0].get("replicaCount") != 1:
    problems.append("pool 0 must have replicaCount 1")
  for i, pool in enumerate(pools):
    if not pool:
      problems.append("pool %d is empty" % i)
      continue
    if not pool.get("machineSpec", {}).get("machineType"):
      problems.append("pool %d has no machine type" % i)
    if not pool.get("containerSpec", {}).get("imageUri"):
      problems.append("pool %d has no image" % i)
  return problems


@pytest.mark.parametrize("args", [
    [],
    ["--accelerator=NVIDIA_TESLA_T4:1"],
    ["--noevaluator", "--num_workers=1"],
    ["--worker_resources=gpu=2,gpu_type=NVIDIA_L4,machine_type=g2-standard-24",
     "--ps_resources=machine_type=n1-highmem-8",
     "--evaluator_resources=machine_type=n1-standard-2"],
])
def test_spec_parses_as_googles_own_type(assets, args):
  spec = _spec(assets, args)
  parsed = aiplatform_v1.types.CustomJobSpec.from_json(json.dumps(spec))
  assert vertex_problems(spec) == []
  pools = parsed.worker_pool_specs
  roles = [role for role, count in zip(POOL_ROLES, (1, 2, 1, 1))
           if not (role == "evaluator" and "--noevaluator" in args)]
  assert len(pools) == len(roles)
  for pool in pools:
    assert pool.container_spec.image_uri == (
        "us-docker.pkg.dev/p/r/harness:1")
    assert list(pool.container_spec.command) == [sys.executable, "-m",
                                                 "trainer.task"]
    assert "--n_classes=5" in pool.container_spec.args
    assert not any(a.startswith("--model_dir=")
                   for a in pool.container_spec.args)
  assert parsed.base_output_directory.output_uri_prefix == BASE
  assert parsed.scheduling.timeout.total_seconds() == 7200
  if "--accelerator=NVIDIA_TESLA_T4:1" in args:
    assert [p.machine_spec.accelerator_count for p in pools] == [1, 1, 0, 0]
    assert pools[1].machine_spec.accelerator_type == (
        aiplatform_v1.types.AcceleratorType.NVIDIA_TESLA_T4)
  if any(a.startswith("--worker_resources") for a in args):
    assert [p.machine_spec.machine_type for p in pools] == [
        "n1-standard-4", "g2-standard-24", "n1-highmem-8", "n1-standard-2"]
    assert pools[1].machine_spec.accelerator_count == 2
    assert pools[0].machine_spec.accelerator_count == 0


def test_googles_type_catches_what_it_should(assets):
  """The proof is only as good as the type: a typo and a bad enum fail."""
  spec = _spec(assets)
  typo = json.loads(json.dumps(spec))
  typo["workerPoolSpecs"][0]["replicaCounts"] = 1
  with pytest.raises(Exception, match="replicaCounts"):
    aiplatform_v1.types.CustomJobSpec.from_json(json.dumps(typo))
  bad_enum = json.loads(json.dumps(spec))
  bad_enum["workerPoolSpecs"][1]["machineSpec"]["acceleratorType"] = "T4"
  with pytest.raises(Exception):
    aiplatform_v1.types.CustomJobSpec.from_json(json.dumps(bad_enum))
  empty = json.loads(json.dumps(spec))
  empty["workerPoolSpecs"][1] = {}
  assert "pool 1 is empty" in vertex_problems(empty)


BAD = [
    (["--image="], [], "--image is required"),
    (["--machine_type="], [], "--machine_type is required"),
    (["--accelerator=T4"], [], "--accelerator=T4 is not TYPE:COUNT"),
    (["--accelerator=NVIDIA_TESLA_T4:0"], [], "is not TYPE:COUNT"),
    (["--num_workers=0"], [], "Worker pool 1 (worker) would be empty before "
     "pool 3 (evaluator): gcloud refuses an empty pool in the middle"),
    (["--num_ps=0"], [], "--num_ps (0) must be >= 1"),
    (["--worker_resources=cpu=8"], [], "--worker_resources: Vertex AI has no "
     "term for cpu; on Vertex AI give gpu, gpu_type, machine_type"),
    (["--ps_resources=gpu=1"], [], "--ps_resources: gpu=1 needs gpu_type="),
    (["--worker_resources=gpus=1"], [], "unknown key 'gpus'"),
    (["--base_output_dir=/tmp/out"], [],
     "--base_output_dir=/tmp/out must be a gs://BUCKET/PATH"),
    (["--base_output_dir="], [], "--model_dir is unset and there is no "
     "--base_output_dir"),
    ([], ["--model_dir=runs/digits"], "--model_dir=runs/digits is relative"),
    ([], ["--model_dir=/tmp/run"], "--model_dir=/tmp/run is on one "
     "replica's disk"),
    ([], ["--eval_files="], "--eval_files is empty, so an evaluator"),
    ([], ["--batch_size=0"], "--batch_size (0) must be a positive integer"),
    ([], ["--no_such_flag=1"], "Unknown command line flag 'no_such_flag'"),
]


@pytest.mark.parametrize("args,trainer_args,message", BAD)
def test_bad_input_is_one_line_and_nothing_on_stdout(assets, args,
                                                     trainer_args, message):
  proc = generate(CLUSTER_ARGS + args, _trainer_args(assets, trainer_args))
  assert proc.returncode == 1, proc.stderr
  assert proc.stdout == ""
  lines = processes.our_lines(proc.stderr)
  assert len(lines) == 1 and lines[0].startswith("error: "), lines
  assert message in lines[0], lines


def vertex_environment(spec: dict, pool: int, index: int, base: str,
                       chief_name: str = "chief",
                       tf_config_too: bool = True) -> dict:
  """The variables Vertex AI sets in one replica (docs/engines.md): its
  TF_CONFIG (no evaluator in the cluster; extra keys), CLUSTER_SPEC and,
  with baseOutputDirectory, the AIP_* directories under `base`."""
  hosts = {}
  for p, pool_spec in enumerate(spec["workerPoolSpecs"]):
    hosts["workerpool%d" % p] = [
        "cmle-training-workerpool%d-%s-%d:2222" % (p, JOB_ID, i)
        for i in range(pool_spec["replicaCount"])]
  job = {"worker_pool_specs": spec["workerPoolSpecs"]}
  cluster_spec = {"cluster": hosts,
                  "task": {"type": "workerpool%d" % pool, "index": index,
                           "trial": ""},
                  "environment": "cloud", "job": job}
  env = {"CLUSTER_SPEC": json.dumps(cluster_spec),
         "AIP_CHECKPOINT_DIR": base + "/checkpoints/",
         "AIP_MODEL_DIR": base + "/model/",
         "AIP_TENSORBOARD_LOG_DIR": base + "/logs/"}
  if tf_config_too:
    names = {"workerpool0": chief_name, "workerpool1": "worker",
             "workerpool2": "ps"}
    role = (chief_name, "worker", "ps", "evaluator")[pool]
    env["TF_CONFIG"] = json.dumps({
        "cluster": {names[p]: h for p, h in hosts.items() if p in names},
        "task": {"type": role, "index": index, "trial": "",
                 "cloud": "cmle-training-%s" % JOB_ID},
        "environment": "cloud", "job": job})
  return env


def _replicas(spec):
  for pool, pool_spec in enumerate(spec["workerPoolSpecs"]):
    for index in range(pool_spec["replicaCount"]):
      yield pool, index, pool_spec["containerSpec"]


@pytest.mark.parametrize("chief_name,tf_config_too", [
    ("chief", True), ("master", True), ("chief", False)])
@pytest.mark.slow
def test_every_replica_passes_the_pre_flight_with_vertexs_environment(
    assets, tmp_path, chief_name, tf_config_too):
  spec = _spec(assets)
  base = str(tmp_path / "bucket")
  runs = {}
  for pool, index, container in _replicas(spec):
    env = dict(ENV, **vertex_environment(spec, pool, index, base, chief_name,
                                         tf_config_too))
    runs[(pool, index)] = subprocess.Popen(
        container["command"] + container["args"] + ["--check_only"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  assert len(runs) == 5
  source = ("CLUSTER_SPEC (Vertex AI's worker pools)" if not tf_config_too
            else "TF_CONFIG%s, the evaluator from CLUSTER_SPEC" % (
                " (its \"master\" read as the chief)"
                if chief_name == "master" else ""))
  for (pool, index), proc in runs.items():
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, (pool, index, err[-2000:])
    assert out.startswith("Pre-flight passed; nothing was written.")
    assert "Task: %s-%d:" % (POOL_ROLES[pool], index) in out
    assert ("Cluster: chief (1), worker (2), ps (1) + evaluator "
            "cmle-training-workerpool3-%s-0:2222, outside the training "
            "cluster; from %s." % (JOB_ID, source)) in out, out
    assert "Model directory: %s/checkpoints:" % base in out
    assert ("`model_dir` from AIP_CHECKPOINT_DIR (Vertex AI's "
            "baseOutputDirectory): %s/checkpoints." % base) in out
    if pool == 0:
      assert "Export: %s/model." % base in out
  assert not os.path.exists(base)  # Nothing was written.


def test_tf_config_as_vertex_writes_it():
  hosts = {"master": ["m:2222"], "worker": ["w0:2222", "w1:2222"],
           "ps": ["p:2222"]}
  config = tf_config.parse(json.dumps({
      "cluster": hosts, "task": {"type": "master", "index": 0, "trial": "1",
                                 "cloud": "x"},
      "environment": "cloud", "job": {"a": 1}}))
  assert config.task == tf_config.Task("chief", 0)
  assert config.cluster["chief"] == ["m:2222"] and "master" not in (
      config.cluster)
  assert config.for_estimator()["task"] == {"type": "chief", "index": 0,
                                            "trial": "1", "cloud": "x"}
  assert config.for_estimator()["job"] == {"a": 1}
  assert "master" in config.source
  with pytest.raises(errors.ClusterError, match="both a chief and a master"):
    tf_config.parse(json.dumps({"cluster": dict(hosts, chief=["c:1"]),
                                "task": {"type": "worker", "index": 0}}))


def test_cluster_spec_alone_and_beside_tf_config():
  spec = {"cluster": {"workerpool0": ["c:2222"], "workerpool1": ["w:2222"],
                      "workerpool2": ["p:2222"], "workerpool3": ["e:2222"]},
          "task": {"type": "workerpool3", "index": 0}, "environment": "cloud"}
  config = tf_config.from_environ({"CLUSTER_SPEC": json.dumps(spec)})
  assert config.task == tf_config.Task("evaluator", 0)
  assert config.evaluator == "e:2222"
  assert config.cluster == {"chief": ["c:2222"], "worker": ["w:2222"],
                            "ps": ["p:2222"]}
  beside = tf_config.from_environ({
      "CLUSTER_SPEC": json.dumps(spec), "TF_CONFIG": json.dumps({
          "cluster": {"chief": ["c:2222"], "worker": ["w:2222"],
                      "ps": ["p:2222"]},
          "task": {"type": "chief", "index": 0}})})
  assert beside.task == tf_config.Task("chief", 0)
  assert beside.evaluator == "e:2222"  # Only CLUSTER_SPEC says where.
  with pytest.raises(errors.ClusterError, match="worker pool.* workerpool9"):
    tf_config.from_environ({"CLUSTER_SPEC": json.dumps(dict(
        spec, cluster={"workerpool9": ["x:1"]}))})


@pytest.mark.cluster
def test_the_job_trains_as_vertex_replicas_in_network_namespaces(
    assets, tmp_path):
  reason = netns_hosts.why_not()
  if reason:
    pytest.skip("no network namespaces here: %s" % reason)
  spec = _spec(assets, extra=[
      "--train_steps=60", "--save_checkpoints_steps=30",
      "--log_every_steps=20", "--eval_throttle_secs=1"])
  base = str(tmp_path / "bucket")  # Stands in for gs://bucket/runs/digits.
  replicas = [netns_hosts.container_replica(
      "cmle-training-workerpool%d-%s-%d" % (pool, JOB_ID, index),
      tf_config.Task(POOL_ROLES[pool], index), container,
      dict(ENV, **vertex_environment(spec, pool, index, base),
           # As a tuning trial's replicas have it, each on its own VM.
           CLOUD_ML_HP_METRIC_FILE=str(tmp_path / "hp" / (
               "%d-%d" % (pool, index))), CLOUD_ML_TRIAL_ID="2"))
               for pool, index, container in _replicas(spec)]
  codes, lines = netns_hosts.run_as_hosts(
      replicas, log_dir=str(tmp_path / "logs"), deadline_secs=400)
  # The chief learned where the evaluator is from CLUSTER_SPEC.
  model_dir = os.path.join(base, "checkpoints")
  netns_hosts.check_the_demo_job(codes, lines, model_dir,
                                 os.path.join(base, "model"), steps=60)
  with open(os.path.join(model_dir, "flags.txt")) as f:
    recorded = f.read()
  assert "--model_dir=%s/checkpoints\n" % base in recorded
  assert "--export_dir=%s/model\n" % base in recorded
  assert "# `model_dir` from AIP_CHECKPOINT_DIR" in recorded
  # Vertex AI's tuning reads pool 0's metric file only: the chief wrote the
  # evaluator's evaluations there, the final one last; no other replica
  # wrote one.
  assert os.listdir(tmp_path / "hp") == ["0-0"]
  with open(tmp_path / "hp" / "0-0") as f:
    entries = [json.loads(line) for line in f]
  final = eval_events.last(os.path.join(model_dir, "eval"))
  last = [e for e in entries if "accuracy" in e][-1]
  assert last["global_step"] == str(int(final["global_step"]))
  assert float(last["accuracy"]) == pytest.approx(final["accuracy"])
  assert last["trial"] == "2"
  assert not leftovers.pids_mentioning(base)


@pytest.mark.slow
def test_spot_sets_the_spot_strategy(assets):
  spec = _spec(assets, ["--spot"])
  parsed = aiplatform_v1.types.CustomJobSpec.from_json(json.dumps(spec))
  assert parsed.scheduling.strategy == parsed.scheduling.Strategy.SPOT
  assert "scheduling" not in _spec(assets) or (
      "strategy" not in _spec(assets)["scheduling"])
