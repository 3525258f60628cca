"""Task types, and TF_CONFIG parsed and checked.

Estimator's task types are spelled as in TF_CONFIG. A training cluster has
one chief, workers and parameter servers; an evaluator, when there is one,
is not part of it (as Estimator expects): its TF_CONFIG names the training
cluster and itself as task `evaluator`.

`parse(text)` checks a TF_CONFIG string and says what is wrong with it;
`from_environ(environ)` does the same for the TF_CONFIG of an environment,
and returns None where there is none (a single process). Both return a
`TfConfig`, whose `for_estimator()` is what Estimator's RunConfig reads.
"""

import dataclasses
import json
from typing import Dict, List, Mapping, Optional, Tuple

from harness import errors

CHIEF, MASTER, WORKER, PS, EVALUATOR = (
    "chief", "master", "worker", "ps", "evaluator")
CLUSTER_JOBS = (CHIEF, WORKER, PS)
TASK_TYPES = CLUSTER_JOBS + (EVALUATOR,)
ENV = "TF_CONFIG"

ClusterDict = Dict[str, List[str]]


@dataclasses.dataclass(frozen=True, order=True)
class Task:
  """One task: its type and index within the type."""
  type: str
  index: int = 0

  @property
  def name(self) -> str:
    """'worker-1': the prefix of its output and the name of its log."""
    return "%s-%d" % (self.type, self.index)

  def __str__(self):
    return self.name


def parse_address(address: str) -> Tuple[str, int]:
  """'host:port' -> (host, port); errors say which part is wrong."""
  host, sep, port = str(address).rpartition(":")
  if not sep or not host:
    raise errors.ClusterError(
        "Address %r is not of the form HOST:PORT, e.g. 10.0.0.2:2222." %
        (address,))
  if not port.isdigit() or not 0 < int(port) < 65536:
    raise errors.ClusterError(
        "Port %r of address %r is not a number from 1 to 65535." %
        (port, address))
  return host, int(port)


def validate_cluster(cluster: Mapping[str, List[str]]) -> ClusterDict:
  """Checks a training cluster's shape; returns it as a plain dict."""
  if not isinstance(cluster, Mapping):
    raise errors.ClusterError(
        "The cluster must map job names (%s) to lists of HOST:PORT; got %r." %
        (", ".join(CLUSTER_JOBS), cluster))
  for job, addresses in cluster.items():
    if job not in CLUSTER_JOBS:
      hint = (" (the evaluator is not part of the training cluster; give it "
              "only as the task)" if job == EVALUATOR else "")
      raise errors.ClusterError(
          "Unknown job %r in the cluster; jobs are: %s%s." %
          (job, ", ".join(CLUSTER_JOBS), hint))
    if not isinstance(addresses, list) or not addresses:
      raise errors.ClusterError(
          "Job %r must list at least one HOST:PORT; got %r." %
          (job, addresses))
    for address in addresses:
      parse_address(address)
  if CHIEF not in cluster:
    raise errors.ClusterError(
        "The cluster has no chief; add \"chief\": [\"HOST:PORT\"].")
  if len(cluster[CHIEF]) != 1:
    raise errors.ClusterError(
        "The cluster has %d chiefs (%s); it needs exactly one." %
        (len(cluster[CHIEF]), ", ".join(cluster[CHIEF])))
  seen = {}
  for job, addresses in cluster.items():
    for index, address in enumerate(addresses):
      task = Task(job, index)
      if address in seen:
        raise errors.ClusterError("%s and %s both use %s." %
                                  (seen[address], task, address))
      seen[address] = task
  return {job: list(cluster[job]) for job in CLUSTER_JOBS if job in cluster}


def validate_task(cluster: ClusterDict, task: Task) -> Task:
  """Checks that `task` is one of `cluster` (or its evaluator)."""
  if task.type not in TASK_TYPES:
    raise errors.ClusterError("Unknown task type %r; task types are: %s." %
                              (task.type, ", ".join(TASK_TYPES)))
  if not isinstance(task.index, int) or task.index < 0:
    raise errors.ClusterError("Task index %r must be an integer >= 0." %
                              (task.index,))
  if task.type == EVALUATOR:
    if task.index != 0:
      raise errors.ClusterError(
          "Task index %d is out of range: there is one evaluator, index 0." %
          task.index)
  elif task.index >= len(cluster.get(task.type, [])):
    raise errors.ClusterError(
        "Task index %d is out of range: the cluster has %d %s task(s), "
        "indices 0 to %d." % (task.index, len(cluster.get(task.type, [])),
                               task.type,
                               len(cluster.get(task.type, [])) - 1))
  return task


def is_chief(task: Optional[Task]) -> bool:
  """Whether `task` writes the run's outputs (flags.txt, the export): the
  chief, or a single process (no task)."""
  return task is None or task.type in (CHIEF, MASTER)


def make(cluster: ClusterDict, task: Task) -> dict:
  """The TF_CONFIG dict of one task of `cluster`."""
  validate_task(cluster, task)
  return {"cluster": cluster, "task": {"type": task.type,
                                       "index": task.index}}


@dataclasses.dataclass(frozen=True)
class TfConfig:
  """A checked TF_CONFIG.

  Attributes:
    cluster: the training cluster (chief, workers, ps).
    task: this process's task.
    extra: the other top-level keys, as given (e.g. "environment").
  """
  cluster: ClusterDict
  task: Task
  extra: Mapping[str, object] = dataclasses.field(default_factory=dict)

  def for_estimator(self) -> dict:
    """The TF_CONFIG dict Estimator's RunConfig is given."""
    return dict(self.extra, cluster=self.cluster,
                task={"type": self.task.type, "index": self.task.index})


def parse(text: str) -> TfConfig:
  """Checks a TF_CONFIG string."""
  try:
    config = json.loads(text)
  except ValueError as e:
    raise errors.ClusterError("TF_CONFIG is not valid JSON (%s): %r" %
                              (e, text[:200])) from e
  if not isinstance(config, dict) or "cluster" not in config:
    raise errors.ClusterError(
        "TF_CONFIG needs \"cluster\" and \"task\" keys; got %r." % text[:200])
  cluster = validate_cluster(config["cluster"])
  task = config.get("task")
  if not isinstance(task, dict) or "type" not in task:
    raise errors.ClusterError(
        "TF_CONFIG's \"task\" must be {\"type\": ..., \"index\": ...}; got "
        "%r." % (task,))
  task = validate_task(cluster, Task(task["type"], task.get("index", 0)))
  extra = {k: v for k, v in config.items() if k not in ("cluster", "task")}
  return TfConfig(cluster, task, extra)


def from_environ(environ: Mapping[str, str]) -> Optional[TfConfig]:
  """The environment's TF_CONFIG, checked; None without one."""
  text = environ.get(ENV, "").strip()
  return parse(text) if text else None
