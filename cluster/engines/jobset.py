"""The job as a JobSet and the NetworkPolicy that guards it (pure).

Built from the TFJob's JobSpec (cluster/engines/tfjob.py: the same flags)
and the trainer's flags, as data, written with PyYAML; `python -m
cluster.jobset` (cluster/jobset.py) is the command, and Kubeflow Trainer
v2's runtime (cluster/engines/trainjob.py) takes this JobSet as its template.

What maps where (jobset.x-k8s.io/v1alpha2; docs/engines.md):
* a replicated job per role, named after it (chief, worker, ps,
  evaluator), each one Indexed Job (`replicas: 1`) of as many pods as the
  role has tasks; `network.enableDNSHostnames` gives each pod the name
  `<jobset>-<role>-0-<index>.<jobset>`, and `publishNotReadyAddresses` lets
  the tasks find each other before they are ready;
* each pod's TF_CONFIG: none is written; the pod reads its role and index
  from JobSet's labels (the downward API) and JOB_COMPLETION_INDEX, and the
  cluster's shape from one variable the same in every pod
  (harness/jobset_env.py), and the trainer says so in its log;
* restarts by exit code, the local launcher's rule: a pod that exits 1-127
  (an error) fails its Job at once (`podFailurePolicy` FailJob), and a
  failed Job fails the JobSet (`failurePolicy.maxRestarts: 0`); a pod that
  exits 128-255 (killed, preempted) is replaced, same name and index, up to
  --max_restarts per role (`backoffLimit`); a pod evicted for a node's
  disruption (a Spot VM's preemption, a drain: condition DisruptionTarget)
  is replaced without counting;
* the end: the JobSet succeeds when the chief's Job does (`successPolicy`),
  and JobSet then deletes the Jobs still running; the ps end by themselves
  once the chief's export exists, and the chief waits for the evaluator's
  final evaluation, as under a TFJob (trainer/training/job_end.py);
* --deadline_secs: each Job's `activeDeadlineSeconds` (JobSet has none of
  its own); resources, volumes, the hub cache and --spot as for the TFJob.
"""

from typing import Dict, List, Optional, Sequence

import yaml

from cluster.engines import resources as resources_lib
from cluster.engines import tfjob as tfjob_lib
from harness import errors
from harness import hub_cache
from harness import jobset_env

API_VERSION = "jobset.x-k8s.io/v1alpha2"
PORT = 2222
PORT_NAME = "tf-grpc"
# Kubeflow Trainer v2's name for the training container: the same JobSet
# is then its runtime's template, unchanged.
CONTAINER = "node"
# Pod host names are DNS labels: `<jobset>-<role>-0-<index>`.
_DNS_LABEL_MAX = 63
# An error's exit codes (the local launcher's rule, harness/exit_codes.py):
# the Job fails at once, whatever its backoffLimit.
ERROR_EXIT_CODES = list(range(1, 128))


def longest_host(spec: tfjob_lib.JobSpec) -> str:
  """The longest pod host name (without the subdomain) this JobSet gives."""
  return max((jobset_env.host(spec.name, role, count - 1).split(".")[0]
              for role, count in spec.shape.present()), key=len)


def check(spec: tfjob_lib.JobSpec) -> None:
  """The TFJob's rules, and the length of the pods' host names."""
  tfjob_lib.check(spec, kind="JobSet")
  name = longest_host(spec)
  if len(name) > _DNS_LABEL_MAX:
    raise errors.FlagError(
        "`name`=%s is too long for a JobSet: its pods' host names (e.g. %s, "
        "%d characters) must be DNS labels of at most %d; use a name of at "
        "most %d characters." % (
            spec.name, name, len(name), _DNS_LABEL_MAX,
            _DNS_LABEL_MAX - (len(name) - len(spec.name))))


def _env(spec: tfjob_lib.JobSpec) -> List[dict]:
  counts = dict(spec.shape.present())
  env = [{"name": "PYTHONUNBUFFERED", "value": "1"},
         {"name": jobset_env.CLUSTER_ENV,
          "value": jobset_env.cluster_value(counts, PORT)}]
  env += [{"name": name, "valueFrom": {"fieldRef": {
      "fieldPath": "metadata.labels['%s']" % label}}}
          for name, label in jobset_env.LABEL_ENVS]
  return env


def container(spec: tfjob_lib.JobSpec, args: Sequence[str],
              role: str) -> dict:
  """The training container of `role`'s pods."""
  found = {
      "name": CONTAINER,
      "image": spec.image,
      "command": [spec.python, "-m", "trainer.task"],
      "args": list(args),
      "ports": [{"name": PORT_NAME, "containerPort": PORT}],
      "env": _env(spec),
  }
  mounts = [{"name": "volume-%d" % i, "mountPath": v.mount_path}
            for i, v in enumerate(spec.volumes)]
  if spec.fetches_handle:
    found["env"].append({"name": hub_cache.CACHE_ENV,
                         "value": tfjob_lib.HUB_CACHE})
    mounts.append({"name": "hub-cache", "mountPath": tfjob_lib.HUB_CACHE})
  if mounts:
    found["volumeMounts"] = mounts
  wanted = tfjob_lib.container_resources(spec.resources.get(
      role, resources_lib.Resources()))
  if wanted:
    found["resources"] = wanted
  return found


def pod_spec(spec: tfjob_lib.JobSpec, args: Sequence[str],
             role: str) -> dict:
  pod = tfjob_lib.pod_spec(spec, [container(spec, args, role)])
  pod["restartPolicy"] = "Never"  # The Job replaces a failed pod.
  return pod


def job_spec(spec: tfjob_lib.JobSpec, args: Sequence[str], role: str,
             count: int) -> dict:
  """The Indexed Job of `role`'s `count` tasks."""
  job = {
      "parallelism": count,
      "completions": count,
      "completionMode": "Indexed",
      "backoffLimit": spec.max_restarts,
      "podFailurePolicy": {"rules": [
          {"action": "Ignore",
           "onPodConditions": [{"type": "DisruptionTarget",
                                "status": "True"}]},
          {"action": "FailJob",
           "onExitCodes": {"containerName": CONTAINER, "operator": "In",
                           "values": ERROR_EXIT_CODES}},
      ]},
      "template": {"spec": pod_spec(spec, args, role)},
  }
  if spec.deadline_secs:
    job["activeDeadlineSeconds"] = spec.deadline_secs
  return job


def jobset_spec(spec: tfjob_lib.JobSpec, args: Sequence[str],
                job_labels: Optional[Dict[str, Dict[str, str]]] = None) -> dict:
  """The JobSet's spec; `job_labels` adds labels to a role's Job template
  (Trainer v2's trainer step)."""
  replicated = []
  for role, count in spec.shape.present():
    template = {"spec": job_spec(spec, args, role, count)}
    if job_labels and role in job_labels:
      template["metadata"] = {"labels": dict(job_labels[role])}
    replicated.append({"name": role, "replicas": 1, "template": template})
  return {
      "network": {"enableDNSHostnames": True,
                  "publishNotReadyAddresses": True},
      "successPolicy": {"operator": "All",
                        "targetReplicatedJobs": ["chief"]},
      "failurePolicy": {"maxRestarts": 0},
      "replicatedJobs": replicated,
  }


def jobset(spec: tfjob_lib.JobSpec, args: Sequence[str]) -> dict:
  """The JobSet object, as data."""
  return {
      "apiVersion": API_VERSION,
      "kind": "JobSet",
      "metadata": {"name": spec.name, "namespace": spec.namespace},
      "spec": jobset_spec(spec, args),
  }


def network_policy(spec: tfjob_lib.JobSpec) -> dict:
  """Only the job's own pods reach its pods, and only on TF's port."""
  own = {"matchLabels": {jobset_env.NAME_LABEL: spec.name}}
  return {
      "apiVersion": "networking.k8s.io/v1",
      "kind": "NetworkPolicy",
      "metadata": {"name": spec.name + "-grpc", "namespace": spec.namespace},
      "spec": {
          "podSelector": own,
          "policyTypes": ["Ingress"],
          "ingress": [{"from": [{"podSelector": own}],
                       "ports": [{"protocol": "TCP", "port": PORT}]}],
      },
  }


class _Dumper(yaml.SafeDumper):
  """YAML as kubectl users read it: no anchors for repeated values, a list
  of numbers (the exit codes) in a few lines, not one per number, and a
  text of several lines as it reads."""

  def ignore_aliases(self, data):
    return True


def _list(dumper: yaml.SafeDumper, data: list):
  numbers = bool(data) and all(type(x) is int for x in data)  # pylint: disable=unidiomatic-typecheck
  return dumper.represent_sequence("tag:yaml.org,2002:seq", data,
                                   flow_style=numbers)


def _str(dumper: yaml.SafeDumper, data: str):
  """A text of several lines (a flag file) as a literal block."""
  return dumper.represent_scalar("tag:yaml.org,2002:str", data,
                                 style="|" if "\n" in data else None)


_Dumper.add_representer(list, _list)
_Dumper.add_representer(str, _str)


def yaml_text(documents: Sequence[dict]) -> str:
  """`documents` as one multi-document YAML."""
  return yaml.dump_all(list(documents), Dumper=_Dumper, sort_keys=False)


def manifest(spec: tfjob_lib.JobSpec, args: Sequence[str]) -> str:
  """The JobSet and the NetworkPolicy, as one multi-document YAML."""
  return yaml_text([jobset(spec, args), network_policy(spec)])
