"""Task types, and TF_CONFIG parsed and checked.

Estimator's task types are spelled as in TF_CONFIG. A training cluster has
one chief, workers and parameter servers; an evaluator, when there is one,
is not part of it (as Estimator expects): its TF_CONFIG names the training
cluster and itself as task `evaluator`.

TF_CONFIG is accepted as the engines write it (../ENGINES facts, in
docs/engines.md): Kubeflow's TFJob lists the evaluator inside "cluster" for
every task and adds "environment": "cloud"; Vertex AI (and AI Platform
before it) may call the chief "master", never lists the evaluator, and adds
"job", "environment" and a task's "trial" and "cloud"; hosts are DNS names.
A "master" is read as the chief (every task of the job reads it so, so the
cluster's job names agree); the evaluator is taken out of the cluster (kept
as `TfConfig.evaluator`), every other key is kept, and `for_estimator()` is
the TF_CONFIG Estimator is given. Where there is no TF_CONFIG, Vertex's
CLUSTER_SPEC (worker pools 0-3: chief, workers, ps, evaluator) is read
instead; where there are both, CLUSTER_SPEC still says where the evaluator
is, which Vertex's TF_CONFIG leaves out. Where there is neither, a JobSet
pod's labels and JOB_COMPLETION_INDEX stand for it (harness.jobset_env).

`parse(text)` checks a TF_CONFIG string and says what is wrong with it;
`from_environ(environ)` does the same for the TF_CONFIG of an environment,
and returns None where there is none (a single process). Both return a
`TfConfig`, whose `for_estimator()` is what Estimator's RunConfig reads.
"""

import dataclasses
import json
from typing import Dict, List, Mapping, Optional, Tuple

from harness import errors
from harness import jobset_env

CHIEF, MASTER, WORKER, PS, EVALUATOR = (
    "chief", "master", "worker", "ps", "evaluator")
CLUSTER_JOBS = (CHIEF, WORKER, PS)
TASK_TYPES = CLUSTER_JOBS + (EVALUATOR,)
ENV = "TF_CONFIG"
CLUSTER_SPEC_ENV = "CLUSTER_SPEC"
# Vertex AI's worker pools, by position (CLUSTER_SPEC).
WORKER_POOLS = {"workerpool0": CHIEF, "workerpool1": WORKER,
                "workerpool2": PS, "workerpool3": EVALUATOR}

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


def _jobs(cluster: Mapping[str, List[str]]) -> str:
  return ", ".join("%s (%d)" % (job, len(addresses))
                   for job, addresses in cluster.items())


def validate_task(cluster: ClusterDict, task: Task,
                  evaluators: int = 1) -> Task:
  """Checks that TF_CONFIG's `task` is one of `cluster`, or an evaluator
  (of which there are `evaluators`, outside the cluster)."""
  if task.type not in TASK_TYPES:
    raise errors.ClusterError(
        "TF_CONFIG names task type %r; task types are: %s." %
        (task.type, ", ".join(TASK_TYPES)))
  if not isinstance(task.index, int) or task.index < 0:
    raise errors.ClusterError(
        "TF_CONFIG names task index %r; it must be an integer >= 0." %
        (task.index,))
  count = evaluators if task.type == EVALUATOR else len(
      cluster.get(task.type, []))
  if task.index < count:
    return task
  if task.type == EVALUATOR:
    raise errors.ClusterError(
        "TF_CONFIG names task evaluator %d, but there is one evaluator, "
        "index 0." % task.index)
  if not count:
    raise errors.ClusterError(
        "TF_CONFIG names task %s %d, but its cluster has no %s tasks; its "
        "jobs are: %s." % (task.type, task.index, task.type,
                            _jobs(cluster)))
  indices = "index 0" if count == 1 else "indices 0 to %d" % (count - 1)
  raise errors.ClusterError(
      "TF_CONFIG names task %s %d, but its cluster has %d %s task%s (%s); "
      "its jobs are: %s." % (task.type, task.index, count, task.type,
                             "" if count == 1 else "s", indices,
                             _jobs(cluster)))


def is_chief(task: Optional[Task]) -> bool:
  """Whether `task` writes the run's outputs (flags.txt, the export): the
  chief, or a single process (no task)."""
  return task is None or task.type == CHIEF


def make(cluster: ClusterDict, task: Task) -> dict:
  """The TF_CONFIG dict of one task of `cluster`."""
  validate_task(cluster, task)
  return {"cluster": cluster, "task": {"type": task.type,
                                       "index": task.index}}


@dataclasses.dataclass(frozen=True)
class TfConfig:
  """A checked TF_CONFIG.

  Attributes:
    cluster: the training cluster (chief, workers, ps), without evaluator.
    task: this process's task.
    evaluator: the evaluator's address where TF_CONFIG lists one in its
      cluster (TFJob does, for every task); None where it does not.
    extra: the other top-level keys, as given (e.g. "environment").
    task_extra: the other keys of "task", as given (e.g. "trial").
    source: where it came from and how it was read, for the run's log.
  """
  cluster: ClusterDict
  task: Task
  evaluator: Optional[str] = None
  extra: Mapping[str, object] = dataclasses.field(default_factory=dict)
  task_extra: Mapping[str, object] = dataclasses.field(default_factory=dict)
  source: str = ENV

  def for_estimator(self) -> dict:
    """The TF_CONFIG Estimator's RunConfig is given: the evaluator outside
    the cluster, everything else as it came."""
    task = dict(self.task_extra, type=self.task.type, index=self.task.index)
    return dict(self.extra, cluster=self.cluster, task=task)


def _split_evaluator(cluster) -> Tuple[Mapping, List[str]]:
  """(the training cluster, the evaluator addresses TF_CONFIG lists)."""
  if not isinstance(cluster, Mapping) or EVALUATOR not in cluster:
    return cluster, []
  evaluators = cluster[EVALUATOR]
  if (not isinstance(evaluators, list) or len(evaluators) != 1):
    raise errors.ClusterError(
        "TF_CONFIG's cluster lists evaluator %r; Estimator runs one "
        "evaluator: list one HOST:PORT, or none." % (evaluators,))
  parse_address(evaluators[0])
  return {k: v for k, v in cluster.items() if k != EVALUATOR}, evaluators


def _load(text: str, name: str) -> dict:
  try:
    config = json.loads(text)
  except ValueError as e:
    raise errors.ClusterError("%s is not valid JSON (%s): %r" %
                              (name, e, text[:200])) from e
  if not isinstance(config, dict) or "cluster" not in config:
    raise errors.ClusterError(
        "%s needs \"cluster\" and \"task\" keys; it holds %r." %
        (name, text[:200]))
  return config


def _chief_not_master(config: dict) -> Tuple[dict, bool]:
  """TF_CONFIG with a "master" (Vertex AI, AI Platform) called "chief";
  and whether there was one."""
  cluster, task = config["cluster"], config.get("task")
  renamed = False
  if isinstance(cluster, Mapping) and MASTER in cluster:
    if CHIEF in cluster:
      raise errors.ClusterError(
          "TF_CONFIG's cluster has both a chief and a master: a cluster "
          "has one chief (\"master\" is its older name).")
    cluster = {CHIEF if job == MASTER else job: addresses
               for job, addresses in cluster.items()}
    renamed = True
  if isinstance(task, dict) and task.get("type") == MASTER:
    task = dict(task, type=CHIEF)
    renamed = True
  return dict(config, cluster=cluster, task=task), renamed


def parse(text: str, source: str = ENV) -> TfConfig:
  """Checks a TF_CONFIG string, as any engine writes it."""
  config, renamed = _chief_not_master(_load(text, ENV))
  if renamed:
    source += " (its \"master\" read as the chief)"
  cluster, evaluators = _split_evaluator(config["cluster"])
  try:
    cluster = validate_cluster(cluster)
  except errors.ClusterError as e:
    raise errors.ClusterError("TF_CONFIG's cluster: %s" % e) from e
  task = config.get("task")
  if not isinstance(task, dict) or "type" not in task:
    raise errors.ClusterError(
        "TF_CONFIG's \"task\" must be {\"type\": ..., \"index\": ...}; it "
        "is %r." % (task,))
  checked = validate_task(cluster, Task(task["type"], task.get("index", 0)),
                          evaluators=max(len(evaluators), 1))
  return TfConfig(
      cluster, checked, evaluator=evaluators[0] if evaluators else None,
      extra={k: v for k, v in config.items() if k not in ("cluster", "task")},
      task_extra={k: v for k, v in task.items() if k not in ("type",
                                                             "index")},
      source=source)


def from_cluster_spec(text: str) -> dict:
  """Vertex AI's CLUSTER_SPEC as the TF_CONFIG dict it stands for: worker
  pools 0-3 are the chief, the workers, the ps and the evaluator."""
  spec = _load(text, CLUSTER_SPEC_ENV)
  pools, task = spec["cluster"], spec.get("task")
  if not isinstance(pools, Mapping):
    raise errors.ClusterError("CLUSTER_SPEC's cluster must map worker pools "
                              "to lists of HOST:PORT; got %r." % (pools,))
  unknown = sorted(set(pools) - set(WORKER_POOLS))
  if unknown:
    raise errors.ClusterError(
        "CLUSTER_SPEC names worker pool(s) %s; Vertex AI's are %s (chief, "
        "workers, ps, evaluator)." % (", ".join(unknown),
                                      ", ".join(WORKER_POOLS)))
  if not isinstance(task, dict) or task.get("type") not in WORKER_POOLS:
    raise errors.ClusterError(
        "CLUSTER_SPEC's task must name a worker pool (%s); it is %r." %
        (", ".join(WORKER_POOLS), task))
  config = {k: v for k, v in spec.items() if k not in ("cluster", "task")}
  config["cluster"] = {WORKER_POOLS[pool]: addresses
                       for pool, addresses in pools.items() if addresses}
  config["task"] = dict(task, type=WORKER_POOLS[task["type"]])
  return config


def from_environ(environ: Mapping[str, str]) -> Optional[TfConfig]:
  """The environment's TF_CONFIG (else Vertex AI's CLUSTER_SPEC, else a
  JobSet pod's labels), checked; None without any (a single process)."""
  text = environ.get(ENV, "").strip()
  spec_text = environ.get(CLUSTER_SPEC_ENV, "").strip()
  if not text and not spec_text:
    config = jobset_env.from_environ(environ)
    if config is None:
      return None
    return parse(json.dumps(config), source=jobset_env.SOURCE)
  if not text:
    return parse(json.dumps(from_cluster_spec(spec_text)),
                 source=CLUSTER_SPEC_ENV + " (Vertex AI's worker pools)")
  config = parse(text)
  if spec_text and config.evaluator is None:
    evaluators = from_cluster_spec(spec_text)["cluster"].get(EVALUATOR)
    if evaluators:  # Vertex's TF_CONFIG never lists the evaluator.
      parse_address(evaluators[0])
      config = dataclasses.replace(
          config, evaluator=evaluators[0],
          source=config.source + ", the evaluator from " + CLUSTER_SPEC_ENV)
  return config
