"""python -m cluster.jobset and python -m cluster.trainjob, proven without
a Kubernetes cluster, as the TFJob is (tests/test_tfjob.py):

1. Schema: the JobSet, the TrainJob and both runtimes validate against
   their projects' CRD schemas (tests/data/k8s), with the rules the schemas
   cannot say: Job rules (a pod failure policy needs restartPolicy Never;
   exit codes 1-255, at most 255 of them), host names that are DNS labels,
   the runtime a TrainJob names and the ConfigMap it mounts exist, the
   replicated jobs it patches exist, their names are at most 20 characters.
2. The pods' environment, computed as Kubernetes gives it (JobSet's pod
   labels through the downward API, JOB_COMPLETION_INDEX of an Indexed Job,
   the TrainJob's ConfigMap as the flag file), passes each pod's
   `python -m trainer.task --check_only`.
3. Live: every pod runs in its own network namespace under JobSet's host
   name, running the manifest's container command with that environment;
   the job trains to the end and the export loads.

What JobSet and Kubernetes give a pod is written here independently of
cluster/engines/jobset.py and harness/jobset_env.py.
"""

import functools
import json
import os
import re
import subprocess
import sys

import jsonschema
import pytest
import yaml

from harness import errors
from harness import jobset_env
from harness import tf_config
from tests import doc_commands
from tests import netns_hosts
from tests import processes
from tests.test_tfjob import NETWORK_POLICY_SCHEMA
# The TFJob tests' shared "volume" and demo flags: the same job here.
from tests.test_tfjob import _trainer_args
from tests.test_tfjob import shared  # pylint: disable=unused-import

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRDS = os.path.join(REPO, "tests", "data", "k8s")
ENV = dict(os.environ, PYTHONPATH=REPO)
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
ROLES = {"chief": 1, "worker": 2, "ps": 1, "evaluator": 1}


@functools.lru_cache(maxsize=None)
def schema(kind: str) -> dict:
  """The CRD's schema of `kind` (read once: they are large)."""
  name = {"JobSet": "jobset.x-k8s.io_jobsets.yaml",
          "TrainJob": "trainer.kubeflow.org_trainjobs.yaml",
          "TrainingRuntime": "trainer.kubeflow.org_trainingruntimes.yaml",
          "ClusterTrainingRuntime":
              "trainer.kubeflow.org_clustertrainingruntimes.yaml"}[kind]
  with open(os.path.join(CRDS, name)) as f:
    crd = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
  assert crd["spec"]["names"]["kind"] == kind
  return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def job_problems(jobset_name: str, spec: dict) -> list:
  """The rules of Kubernetes' Job and JobSet's webhook our objects could
  break, which the CRD's schema does not hold."""
  problems = []
  names = [rjob["name"] for rjob in spec["replicatedJobs"]]
  if len(set(names)) != len(names):
    problems.append("replicated job names repeat: %s" % names)
  for target in spec.get("successPolicy", {}).get("targetReplicatedJobs",
                                                  []):
    if target not in names:
      problems.append("successPolicy targets unknown %s" % target)
  for rjob in spec["replicatedJobs"]:
    job = rjob["template"]["spec"]
    pod = job["template"]["spec"]
    for index in range(job.get("parallelism", 1)):
      host = "%s-%s-%d-%d" % (jobset_name, rjob["name"],
                              rjob.get("replicas", 1) - 1, index)
      if len(host) > 63 or not DNS_LABEL.match(host):
        problems.append("host name %s is not a DNS label" % host)
    if "podFailurePolicy" in job:
      if pod.get("restartPolicy") != "Never":
        problems.append("%s: a podFailurePolicy needs restartPolicy Never" %
                        rjob["name"])
      for rule in job["podFailurePolicy"]["rules"]:
        codes = rule.get("onExitCodes")
        if codes:
          values = codes["values"]
          if len(values) > 255 or not all(0 < v < 256 for v in values):
            problems.append("%s: exit codes %s" % (rjob["name"], values))
          if codes.get("containerName") not in [
              c["name"] for c in pod["containers"]]:
            problems.append("%s: no container %s" % (
                rjob["name"], codes.get("containerName")))
    if job.get("completionMode") == "Indexed" and job.get(
        "completions") != job.get("parallelism"):
      problems.append("%s: completions != parallelism" % rjob["name"])
  return problems


def generate(module, args, trainer_args):
  return subprocess.run(
      [sys.executable, "-m", module] + list(args) + ["--"] +
      list(trainer_args), capture_output=True, text=True, env=ENV,
      timeout=120, check=False)


CLUSTER = ["--name=digits", "--image=registry.example/harness:1",
           "--num_workers=2", "--num_ps=1", "--evaluator", "--max_restarts=4",
           "--deadline_secs=3600", "--python=" + sys.executable]


def _documents(module, shared, args=(), extra=()):
  proc = generate(module, CLUSTER + ["--volume=training:%s" % shared] +
                  list(args), _trainer_args(shared, extra))
  assert proc.returncode == 0, proc.stderr
  assert proc.stderr == ""
  return list(yaml.safe_load_all(proc.stdout))


def pod_env(container: dict, labels: dict, index: int) -> dict:
  """The container's environment as Kubernetes sets it: literal values,
  the downward API's pod labels, and an Indexed Job's completion index."""
  env = {"JOB_COMPLETION_INDEX": str(index)}
  for var in container.get("env", []):
    if "value" in var:
      env[var["name"]] = var["value"]
    else:
      path = var["valueFrom"]["fieldRef"]["fieldPath"]
      label = re.fullmatch(r"metadata\.labels\['([^']+)'\]", path).group(1)
      env[var["name"]] = labels[label]
  return env


def pods(jobset_name: str, spec: dict):
  """(host name, task, container, env) of every pod JobSet makes of
  `spec`: JobSet labels each pod with its JobSet, replicated job and job
  index, and names it <jobset>-<replicated job>-<job index>-<pod index>."""
  for rjob in spec["replicatedJobs"]:
    job = rjob["template"]["spec"]
    for job_index in range(rjob.get("replicas", 1)):
      for index in range(job["parallelism"]):
        labels = {"jobset.sigs.k8s.io/jobset-name": jobset_name,
                  "jobset.sigs.k8s.io/replicatedjob-name": rjob["name"],
                  "jobset.sigs.k8s.io/job-index": str(job_index)}
        container, = job["template"]["spec"]["containers"]
        host = "%s-%s-%d-%d.%s" % (jobset_name, rjob["name"], job_index,
                                   index, jobset_name)
        yield (host, tf_config.Task(rjob["name"], index), container,
               pod_env(container, labels, index))


# 1. Schemas and rules.

def test_jobset_passes_its_crd_and_the_job_rules(shared):
  jobset, policy = _documents("cluster.jobset", shared)
  jsonschema.validate(jobset, schema("JobSet"))
  jsonschema.validate(policy, NETWORK_POLICY_SCHEMA)
  spec = jobset["spec"]
  assert job_problems("digits", spec) == []
  assert spec["network"]["enableDNSHostnames"] is True
  assert spec["successPolicy"] == {"operator": "All",
                                   "targetReplicatedJobs": ["chief"]}
  assert spec["failurePolicy"] == {"maxRestarts": 0}
  got = {r["name"]: r["template"]["spec"]["parallelism"]
         for r in spec["replicatedJobs"]}
  assert got == ROLES
  for rjob in spec["replicatedJobs"]:
    job = rjob["template"]["spec"]
    assert rjob["replicas"] == 1 and job["completionMode"] == "Indexed"
    assert job["backoffLimit"] == 4 and job["activeDeadlineSeconds"] == 3600
    ignore, fail = job["podFailurePolicy"]["rules"]
    assert ignore["action"] == "Ignore"  # A preempted node: not counted.
    assert fail["action"] == "FailJob"
    assert fail["onExitCodes"]["values"] == list(range(1, 128))
    container, = job["template"]["spec"]["containers"]
    assert container["command"] == [sys.executable, "-m", "trainer.task"]
    assert "--model_dir=%s" % (shared / "runs" / "digits") in container[
        "args"]
    assert "TF_CONFIG" not in {e["name"] for e in container["env"]}
  own = {"matchLabels": {"jobset.sigs.k8s.io/jobset-name": "digits"}}
  assert policy["spec"]["podSelector"] == own
  assert policy["spec"]["ingress"] == [{
      "from": [{"podSelector": own}],
      "ports": [{"protocol": "TCP", "port": 2222}]}]


@pytest.mark.slow  # Two generator processes.
def test_the_jobset_checks_can_fail(shared):
  jobset, _ = _documents("cluster.jobset", shared, ["--spot"])
  jsonschema.validate(jobset, schema("JobSet"))
  pod = jobset["spec"]["replicatedJobs"][0]["template"]["spec"]["template"][
      "spec"]
  assert pod["nodeSelector"] == {"cloud.google.com/gke-spot": "true"}
  broken = json.loads(json.dumps(jobset))
  broken["spec"]["successPolicy"]["operator"] = "Most"
  with pytest.raises(jsonschema.ValidationError):
    jsonschema.validate(broken, schema("JobSet"))
  broken = json.loads(json.dumps(jobset))
  job = broken["spec"]["replicatedJobs"][1]["template"]["spec"]
  job["template"]["spec"]["restartPolicy"] = "OnFailure"
  job["podFailurePolicy"]["rules"][1]["onExitCodes"]["values"].append(0)
  assert job_problems("x" * 52, broken["spec"]) == [
      "worker: a podFailurePolicy needs restartPolicy Never",
      "worker: exit codes %s" % (list(range(1, 128)) + [0]),
      "host name %s-evaluator-0-0 is not a DNS label" % ("x" * 52)]


def _cross_object_problems(documents) -> list:
  """What the Trainer's webhook and controller need across objects."""
  by_kind = {}
  for document in documents:
    by_kind.setdefault(document["kind"], []).append(document)
  problems = []
  trainjob, = by_kind["TrainJob"]
  ref = trainjob["spec"]["runtimeRef"]
  runtimes = [r for kind in ("TrainingRuntime", "ClusterTrainingRuntime")
              for r in by_kind.get(kind, [])]
  named = [r for r in runtimes if r["metadata"]["name"] == ref["name"] and
           r["kind"] == ref["kind"]]
  if len(named) != 1:
    problems.append("runtime %s %s not found" % (ref["kind"], ref["name"]))
    return problems
  runtime, = named
  if runtime["kind"] == "TrainingRuntime" and runtime["metadata"][
      "namespace"] != trainjob["metadata"]["namespace"]:
    problems.append("the TrainingRuntime is in another namespace")
  template = runtime["spec"]["template"]["spec"]
  rjobs = {r["name"]: r for r in template["replicatedJobs"]}
  for name in rjobs:
    if len(name) > 20:
      problems.append("replicated job name %s is over 20 characters" % name)
  ancestors = [name for name, r in rjobs.items() if r["template"].get(
      "metadata", {}).get("labels", {}).get(
          "trainer.kubeflow.org/trainjob-ancestor-step") == "trainer"]
  if len(ancestors) != 1:
    problems.append("trainer steps: %s" % ancestors)
  maps = {m["metadata"]["name"] for m in by_kind.get("ConfigMap", [])}
  for patch in trainjob["spec"].get("runtimePatches", []):
    for rjob in patch["trainingRuntimeSpec"]["template"]["spec"][
        "replicatedJobs"]:
      if rjob["name"] not in rjobs:
        problems.append("patch of unknown replicated job %s" % rjob["name"])
        continue
      pod = rjob["template"]["spec"]["template"]["spec"]
      for volume in pod.get("volumes", []):
        if volume.get("configMap", {}).get("name") not in maps:
          problems.append("ConfigMap %s not found" % volume["configMap"])
      runtime_containers = {c["name"] for c in rjobs[rjob["name"]][
          "template"]["spec"]["template"]["spec"]["containers"]}
      for container in pod.get("containers", []):
        if container["name"] not in runtime_containers:
          problems.append("no container %s in %s" % (container["name"],
                                                     rjob["name"]))
  problems += job_problems(trainjob["metadata"]["name"], template)
  return problems


@pytest.mark.slow  # Two generator processes and two large CRDs.
@pytest.mark.parametrize("cluster_runtime", [False, True])
def test_trainjob_and_runtime_pass_their_crds_and_each_other(
    shared, cluster_runtime):
  documents = _documents(
      "cluster.trainjob", shared,
      ["--runtime=tf-ps-2w"] + (["--cluster_runtime"] if cluster_runtime
                                else []))
  kinds = [d["kind"] for d in documents]
  runtime_kind = ("ClusterTrainingRuntime" if cluster_runtime else
                  "TrainingRuntime")
  assert kinds == [runtime_kind, "ConfigMap", "TrainJob", "NetworkPolicy"]
  runtime, config_map, trainjob, policy = documents
  jsonschema.validate(runtime, schema(runtime_kind))
  jsonschema.validate(trainjob, schema("TrainJob"))
  jsonschema.validate(policy, NETWORK_POLICY_SCHEMA)
  assert _cross_object_problems(documents) == []
  assert ("namespace" in runtime["metadata"]) == (not cluster_runtime)
  assert trainjob["spec"]["runtimeRef"] == {
      "name": "tf-ps-2w", "apiGroup": "trainer.kubeflow.org",
      "kind": runtime_kind}
  assert trainjob["spec"]["activeDeadlineSeconds"] == 3600
  flags_text = config_map["data"]["trainer.flags"]
  assert "--model_dir=%s\n" % (shared / "runs" / "digits") in flags_text
  # The runtime holds no job's flags; the job, no cluster.
  assert "runs/digits" not in yaml.safe_dump(runtime)
  # The checks can fail: a TrainJob naming another runtime, a long name.
  other = json.loads(json.dumps(documents))
  other[2]["spec"]["runtimeRef"]["name"] = "tf-ps-4w"
  other[0]["spec"]["template"]["spec"]["replicatedJobs"][1][
      "name"] = "worker-on-big-machines"
  assert _cross_object_problems(other) == [
      "runtime %s tf-ps-4w not found" % runtime_kind]
  other[2]["spec"]["runtimeRef"]["name"] = "tf-ps-2w"
  assert _cross_object_problems(other) == [
      "replicated job name worker-on-big-machines is over 20 characters",
      "patch of unknown replicated job worker"]


@pytest.mark.slow  # Two generator processes.
def test_the_runtime_alone_and_the_job_alone(shared):
  runtime, = _documents("cluster.trainjob", shared, ["--emit=runtime"])
  job = _documents("cluster.trainjob", shared, ["--emit=trainjob"])
  assert runtime["kind"] == "TrainingRuntime"
  assert [d["kind"] for d in job] == ["ConfigMap", "TrainJob",
                                      "NetworkPolicy"]
  assert _cross_object_problems([runtime] + job) == []


BAD = [
    ("cluster.jobset", ["--name=" + "d" * 52], [],
     "is too long for a JobSet: its pods' host names (e.g. %s-evaluator-0-0"
     % ("d" * 52)),
    ("cluster.jobset", ["--name=Digits"], [],
     "--name='Digits' is not a DNS-1035 label"),
    ("cluster.jobset", ["--num_ps=0"], [], "--num_ps (0) must be >= 1"),
    ("cluster.jobset", [], ["--model_dir=/tmp/local-run"],
     "--model_dir=/tmp/local-run is local to each pod"),
    ("cluster.trainjob", ["--runtime=TF"], [],
     "--runtime='TF' is not a DNS-1035 label"),
]


@pytest.mark.parametrize("module,args,trainer_args,message", BAD)
def test_bad_input_is_one_line_and_nothing_on_stdout(
    shared, module, args, trainer_args, message):
  proc = generate(module, ["--name=digits", "--image=x",
                           "--volume=training:%s" % shared] + args,
                  _trainer_args(shared, trainer_args))
  assert proc.returncode == 1, proc.stderr
  assert proc.stdout == ""
  lines = processes.our_lines(proc.stderr)
  assert len(lines) == 1 and lines[0].startswith("error: "), lines
  assert message in lines[0], lines


@pytest.mark.slow  # Three generator processes.
def test_the_pages_jobset_and_trainjob_commands(tmp_path):
  """docs/clusters.md's commands, without `| kubectl apply -f -` (no
  Kubernetes here): what they print passes the CRDs and the rules above;
  the runtime installed once and the job submitted later fit each other."""
  printed = []
  for start in ("python -m cluster.jobset",
                "python -m cluster.trainjob --emit=runtime",
                "python -m cluster.trainjob --emit=trainjob"):
    text, piped = doc_commands.find("docs/clusters.md", start).text.split(
        " | ")
    assert piped == "kubectl apply -f -"
    result = doc_commands.run(text, tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    printed.append(list(yaml.safe_load_all(result.stdout)))
  (jobset, _), (runtime,), job = printed
  jsonschema.validate(jobset, schema("JobSet"))
  assert job_problems("digits", jobset["spec"]) == []
  jsonschema.validate(runtime, schema("TrainingRuntime"))
  jsonschema.validate(job[1], schema("TrainJob"))
  assert _cross_object_problems([runtime] + job) == []


# 2. Each pod's environment.

def test_each_pods_environment_stands_for_its_tf_config(shared):
  jobset, _ = _documents("cluster.jobset", shared)
  found = list(pods("digits", jobset["spec"]))
  assert len(found) == 5
  hosts = {task.name: host for host, task, _, _ in found}
  for host, task, _, env in found:
    config = tf_config.from_environ(env)
    assert config.task == task
    assert config.cluster == {
        "chief": [hosts["chief-0"] + ":2222"],
        "worker": [hosts["worker-0"] + ":2222", hosts["worker-1"] + ":2222"],
        "ps": [hosts["ps-0"] + ":2222"]}
    assert config.evaluator == hosts["evaluator-0"] + ":2222"
    assert config.source.startswith("JobSet's pod labels")
  assert hosts["worker-1"] == "digits-worker-0-1.digits"


BAD_ENV = [
    ({jobset_env.INDEX_ENV: None}, "but not JOB_COMPLETION_INDEX"),
    ({jobset_env.REPLICATED_JOB_ENV: "workers"},
     "JOBSET_REPLICATED_JOB='workers' is not a role of this job (chief, "
     "worker, ps, evaluator)"),
    ({jobset_env.INDEX_ENV: "2"}, "JOB_COMPLETION_INDEX=2 but "
     "HARNESS_JOBSET_CLUSTER says the worker role has 2 task(s)"),
    ({jobset_env.JOB_INDEX_ENV: "1"}, "JOBSET_JOB_INDEX=1: each role is one "
     "Job"),
    ({jobset_env.INDEX_ENV: "one"}, "JOB_COMPLETION_INDEX='one' is not an "
     "index"),
    ({jobset_env.CLUSTER_ENV: '{"chief": 1, "worker": 2}'},
     "must give one chief, at least one ps and the port"),
    ({jobset_env.CLUSTER_ENV: '{"chief": 1, "ps": 1, "port": 2222, '
                              '"gpu": 1}'}, "names gpu; it may name roles"),
    ({jobset_env.CLUSTER_ENV: "chief=1"}, "HARNESS_JOBSET_CLUSTER is not "
     "JSON"),
]


@pytest.mark.parametrize("change,message", BAD_ENV)
def test_an_inconsistent_pod_environment_is_one_line(change, message):
  env = {jobset_env.CLUSTER_ENV: jobset_env.cluster_value(ROLES, 2222),
         jobset_env.NAME_ENV: "digits", jobset_env.REPLICATED_JOB_ENV:
             "worker", jobset_env.JOB_INDEX_ENV: "0",
         jobset_env.INDEX_ENV: "1"}
  for name, value in change.items():
    if value is None:
      del env[name]
    else:
      env[name] = value
  with pytest.raises(errors.ClusterError) as raised:
    tf_config.from_environ(env)
  assert message in str(raised.value) and "\n" not in str(raised.value)


def test_other_environments_are_not_read_as_a_jobset():
  assert jobset_env.from_environ({"JOB_COMPLETION_INDEX": "3"}) is None
  config = tf_config.from_environ({
      "TF_CONFIG": json.dumps({"cluster": {"chief": ["a:1"], "ps": ["b:1"]},
                               "task": {"type": "ps", "index": 0}}),
      jobset_env.NAME_ENV: "digits"})
  assert config.source == "TF_CONFIG"  # A TF_CONFIG given wins.


@pytest.mark.slow
def test_every_pod_passes_the_pre_flight_with_its_environment(shared):
  """JobSet's pods and the TrainJob's (whose flags are the ConfigMap's file
  at the path the runtime's containers read, here a file of the test's)."""
  jobset, _ = _documents("cluster.jobset", shared)
  documents = _documents("cluster.trainjob", shared, ["--emit=all"])
  runtime, config_map = documents[:2]
  flag_file = shared / "trainer.flags"
  flag_file.write_text(config_map["data"]["trainer.flags"])
  runs = {}
  for source, spec in (("jobset", jobset["spec"]),
                       ("trainjob", runtime["spec"]["template"]["spec"])):
    for _, task, container, env in pods("digits", spec):
      args = [a.replace("/etc/harness/trainer.flags", str(flag_file))
              for a in container["args"]]
      runs[(source, task.name)] = subprocess.Popen(
          container["command"] + args + ["--check_only"],
          env=dict(ENV, **env), stdout=subprocess.PIPE,
          stderr=subprocess.PIPE, text=True)
  assert len(runs) == 10
  for (source, task), proc in runs.items():
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, (source, task, err[-2000:])
    assert out.startswith("Pre-flight passed; nothing was written.")
    assert "Task: %s:" % task in out
    assert ("Cluster: chief (1), worker (2), ps (1) + evaluator "
            "digits-evaluator-0-0.digits:2222") in out
  assert not os.path.exists(shared / "runs")  # Nothing was written.


# 3. Live.

@pytest.mark.cluster
def test_the_jobset_trains_as_pods_in_network_namespaces(shared, tmp_path):
  reason = netns_hosts.why_not()
  if reason:
    pytest.skip("no network namespaces here: %s" % reason)
  jobset, _ = _documents("cluster.jobset", shared, extra=[
      "--train_steps=60", "--save_checkpoints_steps=30",
      "--log_every_steps=20", "--eval_throttle_secs=1"])
  replicas = [netns_hosts.container_replica(
      host, task, dict(container, env=[]), dict(ENV, **env))
              for host, task, container, env in pods("digits",
                                                     jobset["spec"])]
  codes, lines = netns_hosts.run_as_hosts(
      replicas, log_dir=str(tmp_path / "logs"), deadline_secs=400)
  model_dir = str(shared / "runs" / "digits")
  output = netns_hosts.check_the_demo_job(
      codes, lines, model_dir, os.path.join(model_dir, "export"), steps=60)
  assert "Cluster: from JobSet's pod labels" in output
