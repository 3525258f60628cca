"""The job as a Kubeflow TFJob and the NetworkPolicy that guards it (pure).

Built from a JobSpec and the trainer's flags, as data, written with
PyYAML; `python -m cluster.tfjob` (cluster/tfjob.py) is the command.

What maps where (facts of training-operator v1.9.0, docs/engines.md):
* one replica spec per role: Chief 1, Worker N, PS M, Evaluator 0 or 1;
  each a container named `tensorflow` running `python -m trainer.task` with
  the trainer flags, on port 2222 named `tfjob-port`; the operator writes
  each pod's TF_CONFIG, and the trainer accepts it as it is;
* restarts: `restartPolicy: ExitCode` for every role, the local launcher's
  default rule (exit codes 128-255, kills and preemptions, are retried;
  1-127, errors, are not); `runPolicy.backoffLimit` = --max_restarts (for
  the whole job), `activeDeadlineSeconds` = --deadline_secs;
* the end: the job succeeds when the chief does, and `cleanPodPolicy:
  Running` deletes the pods still running then. The ps end by themselves once
  the chief's export exists, and the chief waits for the evaluator's final
  evaluation before it exits (trainer/training/job_end.py), so nothing is cut
  off;
* resources: --ROLE_resources=cpu=C,memory=M,gpu=G per role (chief,
  worker, ps, evaluator): requests = limits of cpu and memory, and
  `nvidia.com/gpu` limits (cluster/engines/resources.py);
* storage: every pod writes the model directory (the ps run the save ops),
  so --model_dir (and --export_dir) must be on a volume mounted in every pod
  (--volume=CLAIM:PATH) or a remote file system (gs://, s3://, hdfs://);
* security: TF's gRPC port has no authentication; the NetworkPolicy admits
  traffic to the job's pods on that port only from the job's own pods.
"""

import dataclasses
import os
import re
from typing import Dict, Optional, Sequence, Tuple

import yaml

from cluster.engines import resources as resources_lib
from cluster.engines import spec as spec_lib
from harness import errors
from harness import hub_cache
from harness import tf_config

API_VERSION = "kubeflow.org/v1"
PORT = 2222
PORT_NAME = "tfjob-port"
CONTAINER = "tensorflow"  # The operator requires this name.
JOB_LABEL = "training.kubeflow.org/job-name"
TYPE_LABEL = "training.kubeflow.org/replica-type"
SPOT_NODE_LABEL = "cloud.google.com/gke-spot"
# TFJob's replica types, by our task types.
REPLICA_TYPES = {tf_config.CHIEF: "Chief", tf_config.WORKER: "Worker",
                 tf_config.PS: "PS", tf_config.EVALUATOR: "Evaluator"}
# A DNS-1035 label: what the operator's webhook accepts as a job name.
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS_1035_MAX = 63
_REMOTE = re.compile(r"^[a-z][a-z0-9+.-]*://")
# Where a pod fetches a URL or archive hub handle: its own cache (an
# emptyDir), so the pods never race for one directory.
HUB_CACHE = "/var/cache/tfhub"
# What a pod can be given (cluster/engines/resources.py), and the GPU's name.
SUPPORTED = ("cpu", "memory", "gpu")
GPU_RESOURCE = "nvidia.com/gpu"


@dataclasses.dataclass(frozen=True)
class Volume:
  """A persistent volume claim mounted at the same path in every pod."""
  claim: str
  mount_path: str


@dataclasses.dataclass(frozen=True)
class JobSpec:
  """What the TFJob is made of, besides the trainer's flags."""
  name: str
  image: str
  namespace: str = "default"
  shape: spec_lib.Shape = spec_lib.Shape()
  max_restarts: int = 3
  deadline_secs: Optional[int] = None
  volumes: Tuple[Volume, ...] = ()
  python: str = "python"
  resources: Dict[str, resources_lib.Resources] = dataclasses.field(
      default_factory=dict)
  fetches_handle: bool = False
  spot: bool = False  # On GKE's Spot VMs (SPOT_NODE_LABEL).


def parse_volume(text: str) -> Volume:
  claim, sep, path = text.partition(":")
  if not sep or not claim or not path.startswith("/"):
    raise errors.FlagError(
        "`volume`=%s is not CLAIM:/MOUNT/PATH, e.g. "
        "`volume`=training-data:/mnt/shared." % text)
  return Volume(claim, path.rstrip("/") or "/")


def check(spec: JobSpec, kind: str = "TFJob") -> None:
  """The rules our flags can break (the webhook's, and ours) for a `kind`
  (TFJob, JobSet, TrainJob) built from `spec`."""
  if not (DNS_1035.match(spec.name) and len(spec.name) <= _DNS_1035_MAX):
    raise errors.FlagError(
        "`name`=%r is not a DNS-1035 label (lower-case letters, digits and "
        "'-', starting with a letter, not ending with '-', at most %d "
        "characters), which Kubernetes requires of a %s's name." %
        (spec.name, _DNS_1035_MAX, kind))
  if not DNS_1035.match(spec.namespace):
    raise errors.FlagError("`namespace`=%r is not a DNS-1035 label." %
                           spec.namespace)
  if not spec.image:
    raise errors.FlagError("`image` is required: the container image with "
                           "this project and its Python environment.")
  spec.shape.check(min_workers=1, engine="Kubernetes")
  resources_lib.for_engine(spec.resources, "Kubernetes", SUPPORTED,
                           [role for role, _ in spec.shape.present()])


def check_shared(path: str, setting: str, volumes: Sequence[Volume]) -> None:
  """Refuses a path that not every pod sees: it must be on a mounted
  volume or a remote file system."""
  if _REMOTE.match(path):
    return
  if not os.path.isabs(path):
    raise errors.FlagError(
        "`%s`=%s is relative: every pod writes there (the ps tasks run the "
        "save ops), so it must be on shared storage: a path under a "
        "`volume` mount, or gs://..." % (setting, path))
  for volume in volumes:
    if path == volume.mount_path or path.startswith(
        volume.mount_path.rstrip("/") + "/"):
      return
  mounts = ", ".join(v.mount_path for v in volumes) or "none"
  raise errors.FlagError(
      "`%s`=%s is local to each pod: every pod writes there (the ps tasks "
      "run the save ops), so it must be under a `volume` mount (mounted: "
      "%s) or on a remote file system such as gs://." %
      (setting, path, mounts))


def container_resources(wanted: resources_lib.Resources) -> Optional[dict]:
  """A container's `resources`: requests = limits (Kubernetes' Guaranteed
  class, the last evicted); GPUs, which Kubernetes takes in limits only,
  as nvidia.com/gpu."""
  amounts = {k: v for k, v in (("cpu", wanted.cpu),
                               ("memory", wanted.memory)) if v}
  limits = dict(amounts)
  if wanted.gpu:
    limits[GPU_RESOURCE] = wanted.gpu
  if not limits:
    return None
  return dict({"requests": amounts} if amounts else {}, limits=limits)


def _container(spec: JobSpec, trainer_args: Sequence[str],
               role: str) -> dict:
  container = {
      "name": CONTAINER,
      "image": spec.image,
      "command": [spec.python, "-m", "trainer.task"],
      "args": list(trainer_args),
      "ports": [{"name": PORT_NAME, "containerPort": PORT}],
      "env": [{"name": "PYTHONUNBUFFERED", "value": "1"}],
  }
  mounts = [{"name": "volume-%d" % i, "mountPath": v.mount_path}
            for i, v in enumerate(spec.volumes)]
  if spec.fetches_handle:
    container["env"].append({"name": hub_cache.CACHE_ENV, "value": HUB_CACHE})
    mounts.append({"name": "hub-cache", "mountPath": HUB_CACHE})
  if mounts:
    container["volumeMounts"] = mounts
  wanted = container_resources(spec.resources.get(
      role, resources_lib.Resources()))
  if wanted:
    container["resources"] = wanted
  return container


def _pod(spec: JobSpec, trainer_args: Sequence[str], role: str) -> dict:
  return pod_spec(spec, [_container(spec, trainer_args, role)])


def pod_spec(spec: JobSpec, containers: Sequence[dict]) -> dict:
  """A pod of the job: `containers`, the volumes they mount, and Spot VM
  nodes where asked (the JobSet's pods too)."""
  pod = {"containers": list(containers)}
  volumes = [{"name": "volume-%d" % i,
              "persistentVolumeClaim": {"claimName": v.claim}}
             for i, v in enumerate(spec.volumes)]
  if spec.fetches_handle:
    volumes.append({"name": "hub-cache", "emptyDir": {}})
  if volumes:
    pod["volumes"] = volumes
  if spec.spot:
    # GKE labels its Spot VM nodes so; a pool may also taint them.
    pod["nodeSelector"] = {SPOT_NODE_LABEL: "true"}
    pod["tolerations"] = [{"key": SPOT_NODE_LABEL, "operator": "Equal",
                           "value": "true", "effect": "NoSchedule"}]
  return pod


def tfjob(spec: JobSpec, trainer_args: Sequence[str]) -> dict:
  """The TFJob object, as data."""
  run_policy = {"cleanPodPolicy": "Running",
                "backoffLimit": spec.max_restarts}
  if spec.deadline_secs:
    run_policy["activeDeadlineSeconds"] = spec.deadline_secs
  return {
      "apiVersion": API_VERSION,
      "kind": "TFJob",
      "metadata": {"name": spec.name, "namespace": spec.namespace},
      "spec": {
          "runPolicy": run_policy,
          "tfReplicaSpecs": {
              REPLICA_TYPES[kind]: {
                  "replicas": count,
                  "restartPolicy": "ExitCode",
                  "template": {"spec": _pod(spec, trainer_args, kind)},
              } for kind, count in spec.shape.present()},
      },
  }


def network_policy(spec: JobSpec) -> dict:
  """Only the job's own pods reach its pods, and only on the gRPC port."""
  own_pods = {
      "matchLabels": {JOB_LABEL: spec.name},
      "matchExpressions": [{
          "key": TYPE_LABEL, "operator": "In",
          "values": sorted(kind for kind, _ in spec.shape.present())}],
  }
  return {
      "apiVersion": "networking.k8s.io/v1",
      "kind": "NetworkPolicy",
      "metadata": {"name": spec.name + "-grpc", "namespace": spec.namespace},
      "spec": {
          "podSelector": {"matchLabels": {JOB_LABEL: spec.name}},
          "policyTypes": ["Ingress"],
          "ingress": [{"from": [{"podSelector": own_pods}],
                       "ports": [{"protocol": "TCP", "port": PORT}]}],
      },
  }


def manifest(spec: JobSpec, trainer_args: Sequence[str]) -> str:
  """The TFJob and the NetworkPolicy, as one multi-document YAML."""
  return yaml.safe_dump_all([tfjob(spec, trainer_args),
                             network_policy(spec)], sort_keys=False)
