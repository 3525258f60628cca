"""A Slurm job submitted, followed and judged: sbatch, its state and output
until it ends, and the failing task with the tail of its log.

What `python -m cluster.slurm --submit` does after the pre-flight; the batch
script is cluster/engines/slurm.py's. Every wait is bounded: `follow` ends
with the job's time limit (plus a margin) or raises.
"""

import os
import shutil
import subprocess
import time
from typing import Callable, List, Mapping, Optional

from cluster.engines import slurm as slurm_lib
from cluster.launcher import slurm_status
from harness import errors

POLL_SECS = 0.5

ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL",
         "PREEMPTED", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE")

DEFAULT_SLURM_CONF = "/etc/slurm/slurm.conf"


def _run(command, env, timeout=60) -> subprocess.CompletedProcess:
  return subprocess.run(command, env=dict(env), capture_output=True,
                        text=True, timeout=timeout, check=False)


def check_submit_environment(environ: Mapping[str, str]) -> None:
  """sbatch is here, and a slurm.conf says which cluster to use."""
  if not shutil.which("sbatch", path=environ.get("PATH")):
    raise errors.ClusterError(
        "--submit needs Slurm's sbatch, which is not on PATH: run this on a "
        "Slurm login node, or print the batch script (without --submit) "
        "and submit it there.")
  if not environ.get("SLURM_CONF") and not os.path.exists(
      DEFAULT_SLURM_CONF):
    raise errors.ClusterError(
        "--submit: SLURM_CONF is not set and %s does not exist, so sbatch "
        "cannot find the cluster; set SLURM_CONF to its slurm.conf." %
        DEFAULT_SLURM_CONF)


def check_fit(spec: slurm_lib.JobSpec, environ: Mapping[str, str]) -> None:
  """The job's tasks (one CPU each) fit on --nodes nodes of the partition."""
  command = ["sinfo", "-h", "-N", "-o", "%N %c %P"]
  proc = _run(command, environ)
  if proc.returncode != 0:
    raise errors.ClusterError("sinfo failed: %s" % proc.stderr.strip())
  cpus = {}
  for line in proc.stdout.splitlines():
    node, count, partition = line.split()
    default = partition.endswith("*")
    if (spec.partition and partition.rstrip("*") == spec.partition) or (
        not spec.partition and default):
      cpus[node] = int(count)
  name = spec.partition or "the default partition"
  if spec.partition and not cpus:
    return  # Not a partition sinfo knows: sbatch says so, in its words.
  if len(cpus) < spec.nodes:
    raise errors.ClusterError(
        "`nodes`=%d, but %s has %d node(s)." % (spec.nodes, name, len(cpus)))
  per_task = next((int(o.split("=")[1]) for o in spec.resources
                   if o.startswith("--cpus-per-task=")), 1)
  fit = sum(sorted((count // per_task for count in cpus.values()),
                   reverse=True)[:spec.nodes])
  if spec.num_tasks > fit:
    raise errors.ClusterError(
        "The job's %d tasks do not fit on %d node(s) of %s: they hold %d "
        "tasks (%s). Ask for more `nodes`, or fewer tasks." %
        (spec.num_tasks, spec.nodes, name, fit,
         "one CPU each" if per_task == 1 else "%d CPUs each" % per_task))


def submit(script_path: str, environ: Mapping[str, str]) -> str:
  """sbatch; returns the job id. A rejection is Slurm's message as is."""
  proc = _run(["sbatch", "--parsable", script_path], environ)
  if proc.returncode != 0:  # Slurm's words, its lines joined into one.
    raise errors.ClusterError("sbatch refused the job: %s" % "; ".join(
        proc.stderr.strip().splitlines()))
  return proc.stdout.strip().split(";")[0]


def cancel(job_id: str, environ: Mapping[str, str]) -> None:
  """scancel; a job Slurm has already ended is no error."""
  _run(["scancel", job_id], environ)


def job_state(job_id: str, environ: Mapping[str, str]) -> dict:
  """scontrol's fields of the job; {} once Slurm has forgotten it."""
  proc = _run(["scontrol", "show", "job", "-o", job_id], environ)
  if proc.returncode != 0:
    return {}
  return dict(field.split("=", 1) for field in proc.stdout.split()
              if "=" in field)


class _Tail:
  """New whole lines of a file that grows."""

  def __init__(self, path: str):
    self.path, self.offset, self.partial = path, 0, ""

  def lines(self) -> List[str]:
    if not os.path.exists(self.path):
      return []
    with open(self.path, errors="replace") as f:
      f.seek(self.offset)
      text = f.read()
      self.offset = f.tell()
    text = self.partial + text
    *whole, self.partial = text.split("\n")
    return whole


def follow(job_id: str, spec: slurm_lib.JobSpec, environ: Mapping[str, str], *,
           deadline_secs: Optional[float], printer: Callable[[str], None],
           clock=time.monotonic, sleep=time.sleep) -> str:
  """Shows the job's state and output until it ends; returns its state."""
  output = _Tail(os.path.join(spec.run_dir, "slurm-%s.out" % job_id))
  deadline = clock() + deadline_secs if deadline_secs else None
  shown, state = None, "PENDING"
  while True:
    fields = job_state(job_id, environ)
    state = fields.get("JobState", "") or _state_from_statuses(spec)
    where = fields.get("NodeList", "") if state == "RUNNING" else fields.get(
        "Reason", "")
    if (state, where) != shown:
      printer("slurm: job %s %s%s" % (job_id, state, " (%s)" % where
                                      if where and where != "None" else ""))
      shown = (state, where)
    for line in output.lines():
      printer(line)
    if state in ENDED:
      sleep(POLL_SECS)  # The last lines Slurm flushes.
      for line in output.lines() + ([output.partial] if output.partial
                                    else []):
        printer(line)
      return state
    if deadline and clock() > deadline:
      raise errors.ClusterError(
          "Slurm job %s did not end within %d s of its time limit; it is "
          "still %s." % (job_id, deadline_secs, state))
    sleep(POLL_SECS)


def _statuses(spec: slurm_lib.JobSpec) -> List[dict]:
  return slurm_status.read_all(os.path.join(spec.run_dir, "logs"))


def _state_from_statuses(spec: slurm_lib.JobSpec) -> str:
  """For a job Slurm no longer shows: how its tasks say it ended."""
  statuses = _statuses(spec)
  if len(statuses) == spec.num_tasks and all(s["exit_code"] == 0
                                             for s in statuses):
    return "COMPLETED"
  return "FAILED" if statuses else "PENDING"


def failure(job_id: str, state: str, spec: slurm_lib.JobSpec,
            tail_lines: int = 25) -> errors.ClusterError:
  """The failing task, its exit code and the tail of its log."""
  failed = [s for s in _statuses(spec) if s["exit_code"] != 0]
  if not failed:
    return errors.ClusterError(
        "Slurm job %s ended %s; no task reported a failure (see %s)." %
        (job_id, state, os.path.join(spec.run_dir, "slurm-%s.out" % job_id)))
  first = failed[0]
  log_path = os.path.join(spec.run_dir, "logs", first["task"] + ".log")
  tail = []
  if os.path.exists(log_path):
    with open(log_path, errors="replace") as f:
      tail = f.read().splitlines()[-tail_lines:]
  return errors.ClusterError("\n".join(
      ["Slurm job %s ended %s: %s" % (job_id, state, first["message"]),
       "last lines of %s:" % log_path] + ["  " + line for line in tail]))
