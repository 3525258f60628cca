"""The job as a Slurm batch script (pure): #SBATCH lines and one srun step.

Built from a JobSpec and the trainer's flags; `python -m cluster.slurm`
(cluster/slurm.py) is the command, which prints it or submits it
(cluster/slurm_submit.py).

The job is one `srun` step that runs every task (cluster/slurm_task.py):
each task's role and TF_CONFIG come from the step's environment through
TF's SlurmClusterResolver; the trainer runs under the local launcher's
restart policy, per task (Slurm restarts no single task of a step); a task
that fails for good ends the step (--kill-on-bad-exit) and the job fails
with its name. The ps and the evaluator end by themselves once the chief's
final export exists (trainer/training/job_end.py), so the step ends and the
job succeeds. Slurm's own --requeue is another layer: it reruns the whole
job (all tasks, from the latest checkpoint) after a node failure or
preemption: --spot asks for it (with --open-mode=append, so that one output
file holds every attempt), for partitions whose jobs may be preempted.
"""

import dataclasses
import math
import os
import re
import shlex
import sys
from typing import List, Optional, Sequence

from cluster.engines import spec as spec_lib
from cluster.launcher import restart
from cluster.launcher import slurm_status
from harness import errors

SCRIPT_FILE = "job.sbatch"


@dataclasses.dataclass(frozen=True)
class JobSpec:
  """The Slurm job, besides the trainer's flags."""
  run_dir: str
  workdir: str
  nodes: int = 1
  shape: spec_lib.Shape = spec_lib.Shape()
  max_restarts: int = restart.DEFAULT_MAX_RESTARTS
  restart_policy: Sequence[str] = (restart.DEFAULT_POLICY,)
  restart_window_secs: float = restart.DEFAULT_WINDOW_SECS
  time_limit: str = ""
  partition: str = ""
  job_name: str = "hub-harness"
  python: str = sys.executable
  port_base: int = slurm_status.DEFAULT_PORT_BASE
  # #SBATCH options of every task (cluster.engines.resources.slurm_options).
  resources: Sequence[str] = ()
  spot: bool = False  # Preemptible: --requeue, output appended.

  @property
  def num_tasks(self) -> int:
    return self.shape.num_tasks


def time_limit(time_flag: str, deadline_secs: Optional[int]) -> str:
  """Slurm's --time: as given, else the deadline in whole minutes."""
  if time_flag:
    if not re.match(r"^(\d+-)?\d+(:\d+){0,2}$", time_flag):
      raise errors.FlagError(
          "`time`=%s is not a Slurm time limit (MINUTES, HH:MM:SS or "
          "DAYS-HH[:MM[:SS]])." % time_flag)
    return time_flag
  return str(math.ceil(deadline_secs / 60)) if deadline_secs else ""


def time_limit_secs(limit: str) -> Optional[int]:
  """Seconds of a Slurm time limit: MINUTES, MINUTES:SECONDS, H:M:S,
  DAYS-HOURS, DAYS-H:M or DAYS-H:M:S."""
  if not limit:
    return None
  days, _, rest = limit.rpartition("-")
  parts = [int(p) for p in rest.split(":")]
  if days:  # DAYS-HOURS[:MINUTES[:SECONDS]]
    hours, minutes, seconds = (parts + [0, 0])[:3]
    return int(days) * 86400 + hours * 3600 + minutes * 60 + seconds
  if len(parts) == 3:
    return parts[0] * 3600 + parts[1] * 60 + parts[2]
  return parts[0] * 60 + (parts[1] if len(parts) == 2 else 0)


def check(spec: JobSpec) -> None:
  if spec.nodes < 1:
    raise errors.FlagError("`nodes` (%d) must be >= 1." % spec.nodes)
  shape = spec.shape
  shape.check(min_workers=1, engine="Slurm")
  if spec.num_tasks < spec.nodes:
    raise errors.FlagError(
        "`nodes`=%d is more than the job's %d tasks (chief, %d worker(s), "
        "%d ps%s): every node runs at least one." %
        (spec.nodes, spec.num_tasks, shape.num_workers, shape.num_ps,
         ", evaluator" if shape.evaluator else ""))


def step_command(spec: JobSpec, trainer_args: Sequence[str]) -> List[str]:
  """The one srun step that runs every task."""
  return ([
      "srun", "--kill-on-bad-exit=1", "--distribution=block",
      "--nodes=%d" % spec.nodes, "--ntasks=%d" % spec.num_tasks,
      spec.python, "-m", "cluster.slurm_task",
      "--num_workers=%d" % spec.shape.num_workers,
      "--num_ps=%d" % spec.shape.num_ps,
      "--evaluator" if spec.shape.evaluator else "--noevaluator",
      "--max_restarts=%d" % spec.max_restarts,
      "--restart_policy=%s" % ",".join(spec.restart_policy),
      "--restart_window_secs=%g" % spec.restart_window_secs,
      "--port_base=%d" % spec.port_base, "--run_dir=" + spec.run_dir] +
          # The job's time limit bounds each task's supervisor too (without
          # one, the partition's limit does: Slurm ends the job).
          (["--deadline_secs=%d" % time_limit_secs(spec.time_limit)]
           if spec.time_limit else []) + ["--"] + list(trainer_args))


def batch_script(spec: JobSpec, trainer_args: Sequence[str],
                 written_by: Sequence[str],
                 fetch: Optional[Sequence[str]] = None) -> str:
  """The sbatch script (pure): #SBATCH lines, and the step.

  `fetch`: (handle, cache directory) to fetch once, on the batch host,
  before the step (the tasks are then given the directory).
  """
  lines = [
      "#!/bin/bash",
      "# Written by: %s" % " ".join(shlex.quote(a) for a in written_by),
      "# %s and the model directory must be on storage every node sees;"
      % spec.run_dir,
      "# create the first before sbatch (Slurm writes the output there).",
      "#SBATCH --job-name=%s" % spec.job_name,
      "#SBATCH --nodes=%d" % spec.nodes,
      "#SBATCH --ntasks=%d" % spec.num_tasks,
      "#SBATCH --output=%s" % os.path.join(spec.run_dir, "slurm-%j.out"),
  ]
  if spec.time_limit:
    lines.append("#SBATCH --time=%s" % spec.time_limit)
  if spec.partition:
    lines.append("#SBATCH --partition=%s" % spec.partition)
  if spec.spot:  # Requeued after a preemption; one output file for all.
    lines += ["#SBATCH --requeue", "#SBATCH --open-mode=append"]
  lines += ["#SBATCH %s" % option for option in spec.resources]
  command = " \\\n    ".join(_wrap(
      [shlex.quote(a) for a in step_command(spec, trainer_args)]))
  lines += ["set -eu", "cd %s" % shlex.quote(spec.workdir),
            "export PYTHONUNBUFFERED=1"]
  if fetch:
    handle, cache_dir = fetch
    lines += ["# The hub handle, fetched once for every task:",
              " ".join(shlex.quote(a) for a in [
                  spec.python, "-m", "trainer.fetch",
                  "--module_handle=" + handle, "--cache_dir=" + cache_dir])]
  lines.append("exec " + command)
  return "\n".join(lines) + "\n"


def _wrap(words: List[str], width: int = 72) -> List[str]:
  """Words in lines of at most `width` characters (a longer word alone)."""
  lines = [""]
  for word in words:
    if lines[-1] and len(lines[-1]) + 1 + len(word) > width:
      lines.append("")
    lines[-1] += (" " if lines[-1] else "") + word
  return lines
