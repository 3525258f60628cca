"""python -m cluster.tfjob, proven without a Kubernetes cluster, three ways.

1. Schema: the TFJob validates against the operator's own CRD schema
   (tests/data/k8s, training-operator v1.9.0) and the admission webhook's
   rules the schema cannot express; the NetworkPolicy against its shape.
2. TF_CONFIG: each replica's TF_CONFIG, computed as the operator does, passes
   the trainer's own pre-flight (python -m trainer.task --check_only) with
   the manifest's container command.
3. Live: every replica runs as a "pod" in its own network namespace, with
   its own address on a bridge and the service names in its /etc/hosts,
   running exactly the manifest's container command with the operator's
   TF_CONFIG on port 2222; the job trains to the end, the evaluator
   evaluates the final checkpoint, the ps stop on their own.

The operator's rules (docs/engines.md) are written here independently of
cluster/tfjob.py, so that the tests check the generator against them.
"""

import json
import os
import re
import subprocess
import sys

import jsonschema
import pytest
import yaml

from harness import tf_config
from tests import netns_hosts
from tests import processes

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRD = os.path.join(REPO, "tests", "data", "k8s", "kubeflow.org_tfjobs.yaml")
ENV = dict(os.environ, PYTHONPATH=REPO)

# The NetworkPolicy v1 fields the generator may use, with their types
# (Kubernetes API reference, networking.k8s.io/v1); anything else is a typo.
_LABEL_SELECTOR = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "matchLabels": {"type": "object",
                        "additionalProperties": {"type": "string"}},
        "matchExpressions": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["key", "operator"],
            "properties": {
                "key": {"type": "string"},
                "operator": {"enum": ["In", "NotIn", "Exists",
                                      "DoesNotExist"]},
                "values": {"type": "array", "items": {"type": "string"}}}}},
    }}
NETWORK_POLICY_SCHEMA = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "networking.k8s.io/v1"},
        "kind": {"const": "NetworkPolicy"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object", "additionalProperties": False,
            "required": ["podSelector"],
            "properties": {
                "podSelector": _LABEL_SELECTOR,
                "policyTypes": {"type": "array",
                                "items": {"enum": ["Ingress", "Egress"]}},
                "ingress": {"type": "array", "items": {
                    "type": "object", "additionalProperties": False,
                    "properties": {
                        "from": {"type": "array", "items": {
                            "type": "object", "additionalProperties": False,
                            "properties": {
                                "podSelector": _LABEL_SELECTOR,
                                "namespaceSelector": _LABEL_SELECTOR}}},
                        "ports": {"type": "array", "items": {
                            "type": "object", "additionalProperties": False,
                            "properties": {
                                "protocol": {"enum": ["TCP", "UDP", "SCTP"]},
                                "port": {"type": ["integer", "string"]},
                                "endPort": {"type": "integer"}}}}}}},
            }},
    }}
REPLICA_TYPES = ("PS", "Worker", "Chief", "Master", "Evaluator")
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def tfjob_schema():
  with open(CRD) as f:
    crd = yaml.safe_load(f)
  return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def webhook_problems(job: dict) -> list:
  """The rules of the operator's admission webhook (tfjob_webhook.go)."""
  problems = []
  name = job["metadata"]["name"]
  if not DNS_1035.match(name) or len(name) > 63:
    problems.append("name %r is not a DNS-1035 label" % name)
  specs = job["spec"]["tfReplicaSpecs"]
  chiefs = 0
  for kind, replica in specs.items():
    if kind not in REPLICA_TYPES:
      problems.append("unknown replica type %s" % kind)
    containers = replica["template"]["spec"].get("containers", [])
    if not containers:
      problems.append("%s has no container" % kind)
    if any(not c.get("image") for c in containers):
      problems.append("%s has a container without an image" % kind)
    if not any(c.get("name") == "tensorflow" for c in containers):
      problems.append("%s has no container named tensorflow" % kind)
    if kind in ("Chief", "Master"):
      chiefs += replica.get("replicas", 1)
  if chiefs > 1:
    problems.append("%d Chief/Master replicas" % chiefs)
  return problems


def operator_tf_config(job: dict, kind: str, index: int) -> dict:
  """TF_CONFIG as the operator writes it into a pod (genTFConfigJSONStr)."""
  name, namespace = job["metadata"]["name"], job["metadata"]["namespace"]
  cluster = {}
  for replica_type, replica in job["spec"]["tfReplicaSpecs"].items():
    container, = [c for c in replica["template"]["spec"]["containers"]
                  if c["name"] == "tensorflow"]
    port, = [p["containerPort"] for p in container["ports"]
             if p["name"] == "tfjob-port"]
    low = replica_type.lower()
    cluster[low] = ["%s-%s-%d.%s.svc:%d" % (name, low, i, namespace, port)
                    for i in range(replica.get("replicas", 1))]
  return {"cluster": cluster, "task": {"type": kind.lower(), "index": index},
          "environment": "cloud"}


def generate(args, trainer_args):
  return subprocess.run(
      [sys.executable, "-m", "cluster.tfjob"] + list(args) + ["--"] +
      list(trainer_args), capture_output=True, text=True, env=ENV,
      timeout=120, check=False)


@pytest.fixture
def shared(tmp_path, assets):
  """A "volume": the models and data under it, and the model directory."""
  root = tmp_path / "shared"
  root.mkdir()
  os.symlink(assets.root, str(root / "assets"))
  return root


def _trainer_args(shared, extra=()):
  assets = shared / "assets"
  return ["--module_handle=%s" % (assets / "models" / "digits"), "--trainable",
          "--train_files=%s" % (assets / "data" / "digits_train.tfrecord"),
          "--eval_files=%s" % (assets / "data" / "digits_eval.tfrecord"),
          "--input_map=inputs=pixels", "--n_classes=5",
          "--model_dir=%s" % (shared / "runs" / "digits")] + list(extra)


def _manifest(shared, args=(), extra=()):
  proc = generate(["--name=digits", "--image=registry.example/harness:1",
                   "--volume=training:%s" % shared, "--num_workers=2",
                   "--num_ps=1", "--evaluator", "--max_restarts=4",
                   "--deadline_secs=3600", "--python=" + sys.executable] +
                  list(args), _trainer_args(shared, extra))
  assert proc.returncode == 0, proc.stderr
  assert proc.stderr == ""
  documents = list(yaml.safe_load_all(proc.stdout))
  assert [d["kind"] for d in documents] == ["TFJob", "NetworkPolicy"]
  return documents


@pytest.mark.slow
def test_resources_per_role_pass_the_crd(shared):
  job, _ = _manifest(shared, args=[
      "--worker_resources=cpu=8,memory=32Gi,gpu=1",
      "--ps_resources=cpu=4,memory=16Gi", "--chief_resources=cpu=500m"])
  jsonschema.validate(job, tfjob_schema())
  specs = job["spec"]["tfReplicaSpecs"]
  got = {kind: spec["template"]["spec"]["containers"][0].get("resources")
         for kind, spec in specs.items()}
  assert got == {
      "Worker": {"requests": {"cpu": "8", "memory": "32Gi"},
                 "limits": {"cpu": "8", "memory": "32Gi",
                            "nvidia.com/gpu": 1}},
      "PS": {"requests": {"cpu": "4", "memory": "16Gi"},
             "limits": {"cpu": "4", "memory": "16Gi"}},
      "Chief": {"requests": {"cpu": "500m"}, "limits": {"cpu": "500m"}},
      "Evaluator": None}
  # The CRD checks the quantities' form: one it refuses, it refuses.
  bad = json.loads(json.dumps(job))
  bad["spec"]["tfReplicaSpecs"]["PS"]["template"]["spec"]["containers"][0][
      "resources"]["limits"]["cpu"] = [4]
  with pytest.raises(jsonschema.ValidationError):
    jsonschema.validate(bad, tfjob_schema())


def test_tfjob_passes_the_operators_schema_and_webhook_rules(shared):
  job, _ = _manifest(shared)
  jsonschema.validate(job, tfjob_schema())
  assert webhook_problems(job) == []
  specs = job["spec"]["tfReplicaSpecs"]
  assert {k: v["replicas"] for k, v in specs.items()} == {
      "Chief": 1, "Worker": 2, "PS": 1, "Evaluator": 1}
  assert {v["restartPolicy"] for v in specs.values()} == {"ExitCode"}
  assert job["spec"]["runPolicy"] == {
      "cleanPodPolicy": "Running", "backoffLimit": 4,
      "activeDeadlineSeconds": 3600}
  for replica in specs.values():
    pod = replica["template"]["spec"]
    container, = pod["containers"]
    assert container["name"] == "tensorflow"
    assert container["command"] == [sys.executable, "-m", "trainer.task"]
    assert container["ports"] == [{"name": "tfjob-port",
                                   "containerPort": 2222}]
    assert container["volumeMounts"] == [{"name": "volume-0",
                                          "mountPath": str(shared)}]
    assert pod["volumes"] == [{"name": "volume-0", "persistentVolumeClaim":
                               {"claimName": "training"}}]
    assert "--model_dir=%s" % (shared / "runs" / "digits") in container[
        "args"]


@pytest.mark.slow
def test_the_checks_above_can_fail(shared):
  """Broken TFJobs: the schema and the webhook rules catch them."""
  job, _ = _manifest(shared)
  broken = json.loads(json.dumps(job))
  broken["spec"]["tfReplicaSpecs"]["Worker"]["replicas"] = "two"
  with pytest.raises(jsonschema.ValidationError):
    jsonschema.validate(broken, tfjob_schema())
  del broken["spec"]["tfReplicaSpecs"]
  with pytest.raises(jsonschema.ValidationError, match="tfReplicaSpecs"):
    jsonschema.validate(broken, tfjob_schema())
  renamed = json.loads(json.dumps(job))
  renamed["spec"]["tfReplicaSpecs"]["PS"]["template"]["spec"]["containers"][
      0]["name"] = "tf"
  renamed["spec"]["tfReplicaSpecs"]["Chief"]["replicas"] = 2
  assert webhook_problems(renamed) == [
      "PS has no container named tensorflow", "2 Chief/Master replicas"]


def test_network_policy_admits_only_the_jobs_pods_on_the_grpc_port(shared):
  _, policy = _manifest(shared)
  jsonschema.validate(policy, NETWORK_POLICY_SCHEMA)
  spec = policy["spec"]
  job_label = {"training.kubeflow.org/job-name": "digits"}
  assert spec["podSelector"] == {"matchLabels": job_label}
  assert spec["policyTypes"] == ["Ingress"]  # All other ingress: denied.
  rule, = spec["ingress"]
  assert rule["ports"] == [{"protocol": "TCP", "port": 2222}]
  peer, = rule["from"]
  assert set(peer) == {"podSelector"}  # No namespaceSelector, no ipBlock.
  assert peer["podSelector"]["matchLabels"] == job_label
  assert peer["podSelector"]["matchExpressions"] == [{
      "key": "training.kubeflow.org/replica-type", "operator": "In",
      "values": ["chief", "evaluator", "ps", "worker"]}]
  with pytest.raises(jsonschema.ValidationError):
    jsonschema.validate(dict(policy, spec=dict(spec, podSelecter={})),
                        NETWORK_POLICY_SCHEMA)


BAD = [
    (["--name=Digits"], [], "--name='Digits' is not a DNS-1035 label"),
    (["--name=digits_1"], [], "is not a DNS-1035 label"),
    (["--image="], [], "--image is required"),
    (["--num_workers=0"], [], "--num_workers (0) must be >= 1"),
    (["--num_ps=0"], [], "--num_ps (0) must be >= 1"),
    (["--max_restarts=-1"], [], "--max_restarts (-1) must be >= 0"),
    (["--volume=training"], [], "--volume=training is not CLAIM:/MOUNT/PATH"),
    ([], ["--no_such_flag=1"], "Unknown command line flag 'no_such_flag'"),
    ([], ["--save_checkpoints_steps=5", "--save_checkpoints_secs=5"],
     "not both"),
    ([], ["--batch_size=0"], "--batch_size (0) must be a positive integer"),
    ([], ["--model_dir=runs/digits"], "--model_dir=runs/digits is relative"),
    ([], ["--model_dir=/tmp/local-run"],
     "--model_dir=/tmp/local-run is local to each pod"),
    ([], ["--eval_files="], "--eval_files is empty, so an evaluator"),
    ([], ["--module_handle="], "--module_handle is missing: --train_files"),
    (["--worker_resources=machine_type=n1-standard-8"], [],
     "--worker_resources: Kubernetes has no term for machine_type; on "
     "Kubernetes give cpu, memory, gpu"),
    (["--ps_resources=memory=lots"], [], "--ps_resources: memory=lots is "
     "not an amount of memory"),
    (["--worker_resources=cpu"], [], "--worker_resources=cpu: 'cpu' is not "
     "KEY=VALUE"),
]


@pytest.mark.parametrize("args,trainer_args,message", BAD)
def test_bad_input_is_one_line_and_nothing_on_stdout(shared, args,
                                                     trainer_args, message):
  proc = generate(["--name=digits", "--image=x", "--volume=training:%s" %
                   shared] + args, _trainer_args(shared, trainer_args))
  assert proc.returncode == 1, proc.stderr
  assert proc.stdout == ""
  lines = processes.our_lines(proc.stderr)
  assert len(lines) == 1 and lines[0].startswith("error: "), lines
  assert message in lines[0], lines


def _replicas(job):
  for kind, replica in job["spec"]["tfReplicaSpecs"].items():
    for index in range(replica["replicas"]):
      container, = replica["template"]["spec"]["containers"]
      yield kind, index, container


@pytest.mark.slow
def test_every_replica_passes_the_pre_flight_with_the_operators_tf_config(
    shared):
  job, _ = _manifest(shared)
  runs = {}
  for kind, index, container in _replicas(job):
    env = dict(ENV, TF_CONFIG=json.dumps(operator_tf_config(job, kind,
                                                            index)))
    runs[(kind, index)] = subprocess.Popen(
        container["command"] + container["args"] + ["--check_only"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  assert len(runs) == 5
  for (kind, index), proc in runs.items():
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, (kind, index, err[-2000:])
    assert out.startswith("Pre-flight passed; nothing was written.")
    task = "%s-%d" % (kind.lower(), index)
    assert "Task: %s:" % task in out
    assert ("Cluster: chief (1), worker (2), ps (1) + evaluator "
            "digits-evaluator-0.default.svc:2222") in out
  assert not os.path.exists(shared / "runs")  # Nothing was written.


@pytest.mark.cluster
def test_the_tfjob_trains_as_pods_in_network_namespaces(shared, tmp_path):
  reason = netns_hosts.why_not()
  if reason:
    pytest.skip("no network namespaces here: %s" % reason)
  job, _ = _manifest(shared, extra=[
      "--train_steps=60", "--save_checkpoints_steps=30",
      "--log_every_steps=20", "--eval_throttle_secs=1"])
  replicas = [netns_hosts.container_replica(
      "digits-%s-%d.default.svc" % (kind.lower(), index),
      tf_config.Task(kind.lower(), index), container,
      dict(ENV, TF_CONFIG=json.dumps(operator_tf_config(job, kind, index))))
               for kind, index, container in _replicas(job)]
  # The ps ends by itself too (on the Keras backend after the chief's
  # process, whose last calls reach it): waited for, not stopped.
  codes, lines = netns_hosts.run_as_hosts(
      replicas, log_dir=str(tmp_path / "logs"), deadline_secs=400)
  model_dir = str(shared / "runs" / "digits")
  output = netns_hosts.check_the_demo_job(
      codes, lines, model_dir, os.path.join(model_dir, "export"), steps=60)
  assert "[ps-0] " in output and "The job is done" in output


@pytest.mark.slow  # Two generator processes.
def test_spot_schedules_every_pod_on_spot_nodes(shared):
  job, _ = _manifest(shared, ["--spot"])
  jsonschema.validate(job, tfjob_schema())
  for replica in job["spec"]["tfReplicaSpecs"].values():
    pod = replica["template"]["spec"]
    assert pod["nodeSelector"] == {"cloud.google.com/gke-spot": "true"}
    assert pod["tolerations"] == [{
        "key": "cloud.google.com/gke-spot", "operator": "Equal",
        "value": "true", "effect": "NoSchedule"}]
  plain, _ = _manifest(shared)
  assert "nodeSelector" not in plain["spec"]["tfReplicaSpecs"]["Chief"][
      "template"]["spec"]
