"""The job on Kubeflow Trainer v2: a runtime for TF parameter-server jobs,
and a TrainJob that uses it (pure).

Trainer v2 (trainer.kubeflow.org/v1alpha1) ships no TensorFlow runtime
(kubeflow/trainer#2699); its maintainers' route is a runtime of one's own
with TF_CONFIG built per pod. Here:

* the runtime (a TrainingRuntime in a namespace, or a ClusterTrainingRuntime
  for the whole cluster) is the JobSet of cluster/engines/jobset.py as its
  template: the cluster's shape, the image, volumes, resources, restarts and
  Spot VMs. No `mlPolicy` source (Trainer's PlainML plugin), `numNodes: 1`,
  and the chief's replicated job is the trainer step (the label
  `trainer.kubeflow.org/trainjob-ancestor-step: trainer`), so Trainer's own
  changes reach only the chief. Each container runs the trainer with
  `--flagfile=FLAGS_PATH`. A team installs it once per cluster shape.
* each TrainJob names the runtime (`runtimeRef`) and brings its own trainer
  flags: a ConfigMap `<trainjob>-flags` holding the flag file, mounted at
  FLAGS_DIR in every role's container by the TrainJob's `runtimePatches`
  (Trainer applies a TrainJob's `trainer` fields to the trainer step only;
  its patches reach every replicated job). `activeDeadlineSeconds` is the
  TrainJob's.
* Trainer names the JobSet after the TrainJob, so the pods' host names and
  the NetworkPolicy follow from the TrainJob's name (harness/jobset_env.py).
* Replicated job names are at most 20 characters (Trainer v2.4's rule):
  chief, worker, ps, evaluator.
"""

import dataclasses
from typing import List, Sequence

from cluster.engines import jobset as jobset_lib
from cluster.engines import tfjob as tfjob_lib
from harness import errors

API_VERSION = "trainer.kubeflow.org/v1alpha1"
GROUP = "trainer.kubeflow.org"
KINDS = ("TrainingRuntime", "ClusterTrainingRuntime")
ANCESTOR_LABEL = "trainer.kubeflow.org/trainjob-ancestor-step"
FRAMEWORK_LABEL = "trainer.kubeflow.org/framework"
TRAINER_STEP = "chief"
FLAGS_DIR = "/etc/harness"
FLAGS_FILE = "trainer.flags"
FLAGS_PATH = FLAGS_DIR + "/" + FLAGS_FILE
FLAGS_VOLUME = "trainer-flags"
PATCH_MANAGER = "harness.cluster.trainjob"
# Trainer v2.4 refuses longer replicated job names in a runtime.
MAX_REPLICATED_JOB_NAME = 20


def check_runtime_name(name: str) -> None:
  if not (tfjob_lib.DNS_1035.match(name) and len(name) <= 63):
    raise errors.FlagError(
        "`runtime`=%r is not a DNS-1035 label (lower-case letters, digits "
        "and '-', starting with a letter, at most 63 characters)." % name)


def runtime(spec: tfjob_lib.JobSpec, name: str, kind: str) -> dict:
  """The runtime `name` of `kind` (TrainingRuntime, ClusterTrainingRuntime):
  the JobSet, each container reading its flags from FLAGS_PATH. `spec.name`
  is not used: each TrainJob names its own JobSet."""
  if kind not in KINDS:
    raise errors.FlagError("The runtime's kind %r is not one of %s." % (
        kind, ", ".join(KINDS)))
  # Any TrainJob may fetch its handle: every pod gets its own hub cache.
  spec = dataclasses.replace(spec, fetches_handle=True)
  metadata = {"name": name, "labels": {FRAMEWORK_LABEL: "tensorflow"}}
  if kind == "TrainingRuntime":
    metadata["namespace"] = spec.namespace
  template = jobset_lib.jobset_spec(
      spec, ["--flagfile=" + FLAGS_PATH],
      job_labels={TRAINER_STEP: {ANCESTOR_LABEL: "trainer"}})
  long_names = [job["name"] for job in template["replicatedJobs"]
                if len(job["name"]) > MAX_REPLICATED_JOB_NAME]
  if long_names:
    raise errors.ClusterError(
        "Replicated job name(s) %s are longer than Trainer v2.4 takes (%d "
        "characters)." % (", ".join(long_names), MAX_REPLICATED_JOB_NAME))
  return {
      "apiVersion": API_VERSION,
      "kind": kind,
      "metadata": metadata,
      "spec": {"mlPolicy": {"numNodes": 1}, "template": {"spec": template}},
  }


def flags_config_map(spec: tfjob_lib.JobSpec, args: Sequence[str]) -> dict:
  """The TrainJob's trainer flags, as the flag file every pod reads."""
  return {
      "apiVersion": "v1",
      "kind": "ConfigMap",
      "metadata": {"name": config_map_name(spec.name),
                   "namespace": spec.namespace},
      "data": {FLAGS_FILE: "".join(arg + "\n" for arg in args)},
  }


def config_map_name(trainjob_name: str) -> str:
  return trainjob_name + "-flags"


def _patches(spec: tfjob_lib.JobSpec) -> List[dict]:
  """Every role's pods mount the TrainJob's flag file."""
  jobs = [{
      "name": role,
      "template": {"spec": {"template": {"spec": {
          "volumes": [{"name": FLAGS_VOLUME, "configMap": {
              "name": config_map_name(spec.name)}}],
          "containers": [{"name": jobset_lib.CONTAINER, "volumeMounts": [
              {"name": FLAGS_VOLUME, "mountPath": FLAGS_DIR,
               "readOnly": True}]}],
      }}}},
  } for role, _ in spec.shape.present()]
  return [{"manager": PATCH_MANAGER, "trainingRuntimeSpec": {
      "template": {"spec": {"replicatedJobs": jobs}}}}]


def trainjob(spec: tfjob_lib.JobSpec, runtime_name: str,
             runtime_kind: str) -> dict:
  """The TrainJob `spec.name` on the runtime."""
  body = {
      "runtimeRef": {"name": runtime_name, "apiGroup": GROUP,
                     "kind": runtime_kind},
      "runtimePatches": _patches(spec),
  }
  if spec.deadline_secs:
    body["activeDeadlineSeconds"] = spec.deadline_secs
  return {
      "apiVersion": API_VERSION,
      "kind": "TrainJob",
      "metadata": {"name": spec.name, "namespace": spec.namespace},
      "spec": body,
  }


def documents(spec: tfjob_lib.JobSpec, args: Sequence[str],
              runtime_name: str, runtime_kind: str,
              emit: str = "all") -> List[dict]:
  """What `emit` asks for: the runtime ("runtime"), the job's ConfigMap,
  TrainJob and NetworkPolicy ("trainjob"), or all of them ("all")."""
  found = []
  if emit in ("all", "runtime"):
    found.append(runtime(spec, runtime_name, runtime_kind))
  if emit in ("all", "trainjob"):
    found += [flags_config_map(spec, args),
              trainjob(spec, runtime_name, runtime_kind),
              jobset_lib.network_policy(spec)]
  return found


def manifest(spec: tfjob_lib.JobSpec, args: Sequence[str],
             runtime_name: str, runtime_kind: str, emit: str = "all") -> str:
  return jobset_lib.yaml_text(
      documents(spec, args, runtime_name, runtime_kind, emit))
