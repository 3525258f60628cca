"""A JobSet pod's TF_CONFIG, built from what Kubernetes gives the pod.

A JobSet (and a Kubeflow Trainer v2 TrainJob, which runs one) writes no
TF_CONFIG, and a TF_CONFIG written per pod would need a template per pod.
Every pod of the generated JobSet (cluster/engines/jobset.py) gets instead:

* CLUSTER_ENV (`HARNESS_JOBSET_CLUSTER`), the same in every pod: the tasks
  of each role and TF's port, as JSON, e.g. {"chief": 1, "worker": 2,
  "ps": 1, "evaluator": 1, "port": 2222};
* through the downward API, the labels JobSet puts on its pods: the
  JobSet's name (NAME_LABEL), the replicated job's (REPLICATED_JOB_LABEL,
  one replicated job per role, named after it) and the Job's index within
  it (JOB_INDEX_LABEL, always 0 here: one Job per role);
* from Kubernetes itself, for an Indexed Job's pod, JOB_COMPLETION_INDEX:
  the task's index within its role.

JobSet gives each pod the DNS name `<jobset>-<replicated job>-<job
index>-<pod index>.<subdomain>` (the subdomain is the JobSet's name unless
`network.subdomain` says otherwise; CLUSTER_ENV's "subdomain" then), so the
cluster's addresses follow from the names alone. `from_environ` returns the
TF_CONFIG dict those stand for (the evaluator listed in the cluster, as a
TFJob lists it; harness.tf_config takes it out), None where the pod is not
a JobSet pod of ours, and refuses a mix in one line that names the variable.
"""

import json
from typing import Mapping, Optional

from harness import errors

CLUSTER_ENV = "HARNESS_JOBSET_CLUSTER"
NAME_ENV = "JOBSET_NAME"
REPLICATED_JOB_ENV = "JOBSET_REPLICATED_JOB"
JOB_INDEX_ENV = "JOBSET_JOB_INDEX"
INDEX_ENV = "JOB_COMPLETION_INDEX"  # Kubernetes' own, for Indexed Jobs.
# JobSet's pod labels (jobset.sigs.k8s.io/v1alpha2), read through the
# downward API into the variables above.
NAME_LABEL = "jobset.sigs.k8s.io/jobset-name"
REPLICATED_JOB_LABEL = "jobset.sigs.k8s.io/replicatedjob-name"
JOB_INDEX_LABEL = "jobset.sigs.k8s.io/job-index"
LABEL_ENVS = ((NAME_ENV, NAME_LABEL), (REPLICATED_JOB_ENV,
                                       REPLICATED_JOB_LABEL),
              (JOB_INDEX_ENV, JOB_INDEX_LABEL))
ROLES = ("chief", "worker", "ps", "evaluator")
SOURCE = ("JobSet's pod labels (%s, %s, %s) and %s, with %s" % (
    NAME_ENV, REPLICATED_JOB_ENV, JOB_INDEX_ENV, INDEX_ENV, CLUSTER_ENV))


def host(jobset: str, role: str, index: int, subdomain: str = "") -> str:
  """The DNS name JobSet gives the pod of `role`'s task `index` (one Job
  per replicated job, so its job index is 0)."""
  return "%s-%s-0-%d.%s" % (jobset, role, index, subdomain or jobset)


def cluster_value(counts: Mapping[str, int], port: int) -> str:
  """CLUSTER_ENV's value: each role's tasks, and the port."""
  return json.dumps(dict({r: counts[r] for r in ROLES if counts.get(r)},
                         port=port), separators=(",", ":"))


def _shape(text: str) -> dict:
  try:
    shape = json.loads(text)
  except ValueError as e:
    raise errors.ClusterError("%s is not JSON (%s): %r" % (
        CLUSTER_ENV, e, text[:200])) from e
  if not isinstance(shape, dict):
    raise errors.ClusterError("%s must be a JSON object; it is %r." % (
        CLUSTER_ENV, text[:200]))
  unknown = sorted(set(shape) - set(ROLES) - {"port", "subdomain"})
  if unknown:
    raise errors.ClusterError(
        "%s names %s; it may name roles %s, port and subdomain." % (
            CLUSTER_ENV, ", ".join(unknown), ", ".join(ROLES)))
  for key in ROLES + ("port",):
    value = shape.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
      raise errors.ClusterError("%s's %s must be a whole number >= 0; it "
                                "is %r." % (CLUSTER_ENV, key, value))
  if shape.get("chief") != 1 or not shape.get("ps") or not shape.get("port"):
    raise errors.ClusterError(
        "%s must give one chief, at least one ps and the port; it is %s." %
        (CLUSTER_ENV, text))
  return shape


def _index(environ: Mapping[str, str], name: str) -> int:
  text = environ.get(name, "")
  if not text.isdigit():
    raise errors.ClusterError(
        "%s=%r is not an index (a whole number >= 0): a JobSet pod of this "
        "harness gets it from %s." % (
            name, text, "Kubernetes (an Indexed Job)" if name == INDEX_ENV
            else "its pod labels"))
  return int(text)


def from_environ(environ: Mapping[str, str]) -> Optional[dict]:
  """The TF_CONFIG dict a JobSet pod's environment stands for; None where
  none of its variables is set."""
  names = [CLUSTER_ENV] + [env for env, _ in LABEL_ENVS]
  present = [name for name in names if environ.get(name, "").strip()]
  if not present:
    return None
  missing = [name for name in names + [INDEX_ENV] if name not in environ]
  if missing:
    raise errors.ClusterError(
        "This pod has %s but not %s: a JobSet pod of this harness gets "
        "them all (python -m cluster.jobset writes them); set them all, or "
        "give TF_CONFIG instead." % (", ".join(present), ", ".join(missing)))
  shape = _shape(environ[CLUSTER_ENV])
  jobset, role = environ[NAME_ENV], environ[REPLICATED_JOB_ENV]
  if role not in ROLES or not shape.get(role):
    raise errors.ClusterError(
        "%s=%r is not a role of this job (%s): the replicated jobs are "
        "named after the roles." % (
            REPLICATED_JOB_ENV, role, ", ".join(
                r for r in ROLES if shape.get(r))))
  if _index(environ, JOB_INDEX_ENV) != 0:
    raise errors.ClusterError(
        "%s=%s: each role is one Job (replicas: 1), so its job index is 0; "
        "this JobSet was not written by python -m cluster.jobset." % (
            JOB_INDEX_ENV, environ[JOB_INDEX_ENV]))
  index = _index(environ, INDEX_ENV)
  if index >= shape[role]:
    raise errors.ClusterError(
        "%s=%d but %s says the %s role has %d task(s)." % (
            INDEX_ENV, index, CLUSTER_ENV, role, shape[role]))
  subdomain = shape.get("subdomain", "")
  cluster = {
      r: ["%s:%d" % (host(jobset, r, i, subdomain), shape["port"])
          for i in range(shape[r])]
      for r in ROLES if shape.get(r)}
  return {"cluster": cluster, "task": {"type": role, "index": index}}
