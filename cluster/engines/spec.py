"""Cluster descriptions, built as pure functions (no processes).

  cluster = build_cluster(num_workers=2, num_ps=1, ports=iter(range(2222,
                          2230)))
  harness.tf_config.make(cluster, Task("worker", 1))
  -> {"cluster": {"chief": [...], "worker": [...], "ps": [...]},
      "task": {"type": "worker", "index": 1}}

Task types, TF_CONFIG and its checks are in harness.tf_config (shared with
the trainer); this module builds clusters for the launchers, and parses the
ways a user writes one on the command line (--cluster, --cluster_file,
--task).
"""

import dataclasses
import json
from typing import Iterator, List, Tuple

from harness import errors
from harness import tf_config
from harness.tf_config import ClusterDict
from harness.tf_config import Task


def check_shape(*, num_workers: int, num_ps: int) -> None:
  """Raises ClusterError unless workers >= 0 and ps >= 1."""
  if num_workers < 0:
    raise errors.ClusterError("`num_workers` (%d) must be >= 0." %
                              num_workers)
  if num_ps < 1:
    raise errors.ClusterError(
        "`num_ps` (%d) must be >= 1: parameter-server training keeps its "
        "variables on ps tasks." % num_ps)


@dataclasses.dataclass(frozen=True)
class Shape:
  """A job's cluster, the same on every engine: the chief, `num_workers`
  workers, `num_ps` ps and, with `evaluator`, an evaluator
  (cluster.job_flags: --num_workers, --num_ps, --evaluator)."""
  num_workers: int = 2
  num_ps: int = 1
  evaluator: bool = True

  def roles(self) -> List[Tuple[str, int]]:
    """(task type, count) of the chief, workers, ps and evaluator, in that
    order (Vertex AI's worker pools', by position); a count may be 0."""
    return [(tf_config.CHIEF, 1), (tf_config.WORKER, self.num_workers),
            (tf_config.PS, self.num_ps),
            (tf_config.EVALUATOR, int(self.evaluator))]

  def present(self) -> List[Tuple[str, int]]:
    """`roles` that have tasks."""
    return [(role, count) for role, count in self.roles() if count]

  @property
  def num_tasks(self) -> int:
    return sum(count for _, count in self.roles())

  def check(self, *, min_workers: int = 0, engine: str = "") -> None:
    """Raises FlagError (workers) or ClusterError (ps) for a shape `engine`
    (named in the message) cannot run."""
    if self.num_workers < min_workers:
      raise errors.FlagError("`num_workers` (%d) must be >= %d%s." % (
          self.num_workers, min_workers, " on " + engine if engine else ""))
    check_shape(num_workers=self.num_workers, num_ps=self.num_ps)


def build_cluster(*, num_workers: int, num_ps: int, ports: Iterator[int],
                  host: str = "localhost") -> ClusterDict:
  """A chief, `num_workers` workers and `num_ps` ps tasks on `host`."""
  check_shape(num_workers=num_workers, num_ps=num_ps)
  sizes = {tf_config.CHIEF: 1, tf_config.WORKER: num_workers,
           tf_config.PS: num_ps}
  cluster = {job: ["%s:%d" % (host, next(ports)) for _ in range(n)]
             for job, n in sizes.items() if n}
  return tf_config.validate_cluster(cluster)


def tasks(cluster: ClusterDict, evaluator: bool = False) -> List[Task]:
  """Every task of the cluster (ps first), plus the evaluator if asked."""
  order = (tf_config.PS, tf_config.CHIEF, tf_config.WORKER)
  found = [Task(job, i) for job in order
           for i in range(len(cluster.get(job, [])))]
  return found + ([Task(tf_config.EVALUATOR, 0)] if evaluator else [])


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
  return tf_config.validate_cluster(cluster)


def parse_task_flag(text: str) -> Task:
  """'worker:1' -> Task('worker', 1)."""
  kind, _, index = text.partition(":")
  if not index.isdigit():
    raise errors.ClusterError(
        "Task %r is not TYPE:INDEX, e.g. worker:1 (types: %s)." %
        (text, ", ".join(tf_config.TASK_TYPES)))
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
  return tf_config.validate_cluster(content)
