"""Cluster descriptions and TF_CONFIG, as pure functions (no processes).

A training cluster has one chief, N workers and M parameter servers; an
evaluator, when there is one, is not part of it (as Estimator expects): its
TF_CONFIG names the training cluster and itself as task `evaluator`.

  cluster = build_cluster(num_workers=2, num_ps=1, ports=iter(range(2222,
                          2230)))
  tf_config(cluster, Task("worker", 1))
  -> {"cluster": {"chief": [...], "worker": [...], "ps": [...]},
      "task": {"type": "worker", "index": 1}}

`parse_tf_config` checks a TF_CONFIG string and says what is wrong with it.
"""

import dataclasses
import json
from typing import Dict, Iterator, List, Mapping, Tuple

from trainer import errors

CHIEF, WORKER, PS, EVALUATOR = "chief", "worker", "ps", "evaluator"
CLUSTER_JOBS = (CHIEF, WORKER, PS)
TASK_TYPES = CLUSTER_JOBS + (EVALUATOR,)

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


def check_shape(*, num_workers: int, num_ps: int) -> None:
  """Raises ClusterError unless workers >= 0 and ps >= 1."""
  if num_workers < 0:
    raise errors.ClusterError("num_workers (%d) must be >= 0." % num_workers)
  if num_ps < 1:
    raise errors.ClusterError(
        "num_ps (%d) must be >= 1: parameter-server training keeps its "
        "variables on ps tasks." % num_ps)


def build_cluster(*, num_workers: int, num_ps: int, ports: Iterator[int],
                  host: str = "localhost") -> ClusterDict:
  """A chief, `num_workers` workers and `num_ps` ps tasks on `host`."""
  check_shape(num_workers=num_workers, num_ps=num_ps)
  sizes = {CHIEF: 1, WORKER: num_workers, PS: num_ps}
  cluster = {job: ["%s:%d" % (host, next(ports)) for _ in range(n)]
             for job, n in sizes.items() if n}
  return validate_cluster(cluster)


def tasks(cluster: ClusterDict, evaluator: bool = False) -> List[Task]:
  """Every task of the cluster (ps first), plus the evaluator if asked."""
  order = (PS, CHIEF, WORKER)
  found = [Task(job, i) for job in order
           for i in range(len(cluster.get(job, [])))]
  return found + ([Task(EVALUATOR, 0)] if evaluator else [])


def tf_config(cluster: ClusterDict, task: Task) -> dict:
  """The TF_CONFIG dict of one task."""
  validate_task(cluster, task)
  return {"cluster": cluster, "task": {"type": task.type,
                                       "index": task.index}}


def parse_tf_config(text: str) -> Tuple[ClusterDict, Task]:
  """Checks a TF_CONFIG string; returns (cluster, task)."""
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
  return cluster, validate_task(cluster, Task(task["type"],
                                              task.get("index", 0)))


def parse_cluster_flag(text: str) -> ClusterDict:
  """'chief=h1:2222;worker=h2:2222,h3:2222;ps=h4:2222' -> cluster dict."""
  cluster = {}
  for part in filter(None, (p.strip() for p in text.split(";"))):
    job, sep, addresses = part.partition("=")
    if not sep:
      raise errors.ClusterError(
          "Cluster part %r is not JOB=HOST:PORT[,HOST:PORT...]; e.g. "
          "chief=h1:2222;worker=h2:2222;ps=h3:2222." % part)
    cluster[job.strip()] = [a.strip() for a in addresses.split(",")
                            if a.strip()]
  return validate_cluster(cluster)


def parse_task_flag(text: str) -> Task:
  """'worker:1' -> Task('worker', 1)."""
  kind, _, index = text.partition(":")
  if not index.isdigit():
    raise errors.ClusterError(
        "Task %r is not TYPE:INDEX, e.g. worker:1 (types: %s)." %
        (text, ", ".join(TASK_TYPES)))
  return Task(kind, int(index))


def load_cluster_file(path: str) -> ClusterDict:
  """A JSON file holding a cluster dict, or a whole TF_CONFIG."""
  try:
    with open(path) as f:
      content = json.load(f)
  except OSError as e:
    raise errors.ClusterError("Cannot read cluster file %s: %s" %
                              (path, e.strerror)) from e
  except ValueError as e:
    raise errors.ClusterError("Cluster file %s is not valid JSON: %s" %
                              (path, e)) from e
  if isinstance(content, dict) and "cluster" in content:
    content = content["cluster"]
  return validate_cluster(content)
