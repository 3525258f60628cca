r"""Runs the job on a Slurm cluster, from the same flags as everywhere else.

  # The batch script, on stdout (nothing else there), ready for sbatch:
  python -m cluster.slurm --nodes=3 --num_workers=2 --num_ps=1 --evaluator \
      -- --flagfile=configs/digits.cfg --model_dir=/shared/runs/digits

  # Or submitted, followed, and judged:
  python -m cluster.slurm --nodes=3 --num_workers=2 --num_ps=1 --evaluator \
      --submit --run_dir=/shared/runs/digits-1 -- --flagfile=...

Flags before `--` describe the cluster (as for python -m cluster.local,
plus Slurm's --nodes, --partition, --time); flags after it are the
trainer's. RUN_DIR (and the model directory, RUN_DIR/model by default) must
be on storage every node sees (NFS, Lustre, gs://...): every task writes
there, and the batch script runs from it.

The job is one `srun` step that runs every task (cluster/slurm_task.py):
each task's role and TF_CONFIG come from the step's environment through
TF's SlurmClusterResolver; the trainer runs under the local launcher's
restart policy, per task (Slurm restarts no single task of a step); a task
that fails for good ends the step (--kill-on-bad-exit) and the job fails
with its name. The ps and the evaluator end by themselves once the chief's
final export exists (trainer/training/job_end.py), so the step ends and the job
succeeds. Slurm's own --requeue is another layer: it reruns the whole job
(all tasks, from the latest checkpoint) after a node failure or
preemption, and is off unless the user adds it.

With --submit: the trainer's pre-flight runs here first, exactly as the
local launcher's (model, data, model directory), before anything is queued;
then sbatch, then the job's state and each task's output (prefixed with its
name) until it ends: exit 0 when it succeeded, or 1 with the failing task,
its exit code and the tail of its log. Ctrl-C cancels the job.
"""

import dataclasses
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from typing import Callable, List, Mapping, Optional, Sequence

from absl import flags

from cluster import job_flags
from cluster import launcher_end
from cluster import resources as resources_lib
from cluster import restart
from cluster import slurm_status
from cluster import spec as spec_lib
from cluster import supervisor
from harness import cli as harness_cli
from harness import errors
from harness import tf_config
from trainer.config import cli as trainer_cli
from trainer.hub_model import handles
from trainer.plan import launch

SCRIPT_FILE = "job.sbatch"
POLL_SECS = 0.5
FOLLOW_MARGIN_SECS = 600
ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL",
         "PREEMPTED", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE")
DEFAULT_SLURM_CONF = "/etc/slurm/slurm.conf"


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
  # #SBATCH options of every task (cluster.resources.slurm_options).
  resources: Sequence[str] = ()

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
          (["--deadline_secs=%d" % _seconds(spec.time_limit)]
           if spec.time_limit else []) + ["--"] + list(trainer_args))


def shared_cache_dir(spec: JobSpec, environ: Mapping[str, str]) -> str:
  """Where a hub handle is fetched for the job: TFHUB_CACHE_DIR, which must
  then be on storage every node sees, else RUN_DIR/hub_cache."""
  return environ.get(handles.CACHE_ENV) or os.path.join(spec.run_dir,
                                                        "hub_cache")


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


def check_fit(spec: JobSpec, environ: Mapping[str, str]) -> None:
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


def follow(job_id: str, spec: JobSpec, environ: Mapping[str, str], *,
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


def _statuses(spec: JobSpec) -> List[dict]:
  return slurm_status.read_all(os.path.join(spec.run_dir, "logs"))


def _state_from_statuses(spec: JobSpec) -> str:
  """For a job Slurm no longer shows: how its tasks say it ended."""
  statuses = _statuses(spec)
  if len(statuses) == spec.num_tasks and all(s["exit_code"] == 0
                                             for s in statuses):
    return "COMPLETED"
  return "FAILED" if statuses else "PENDING"


def failure(job_id: str, state: str, spec: JobSpec,
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


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  job_flags.define(fv, deadline_secs=None)
  job_flags.define_resources(fv, ("cpu", "memory", "gpu", "gpu_type"))
  flags.DEFINE_integer("nodes", 1, "Slurm nodes for the job (one srun step "
                       "runs every task across them).", flag_values=fv)
  flags.DEFINE_string("partition", "", "Slurm partition; empty: the "
                      "default.", flag_values=fv)
  flags.DEFINE_string("time", "", "Slurm time limit (MINUTES, HH:MM:SS, "
                      "DAYS-HH:MM:SS); empty: --deadline_secs, or the "
                      "partition's default.", flag_values=fv)
  flags.DEFINE_bool("submit", False, "Submit the job with sbatch and follow "
                    "it to its end, instead of printing the batch script.",
                    flag_values=fv)
  flags.DEFINE_string("job_name", "hub-harness", "Slurm job name.",
                      flag_values=fv)
  flags.DEFINE_string("run_dir", "", "Where the batch script, the logs and "
                      "(by default) the model go; on storage every node "
                      "sees. Empty: runs/slurm-<time>.", flag_values=fv)
  flags.DEFINE_string("python", sys.executable, "The Python the tasks run "
                      "(default: this one, so the same environment).",
                      flag_values=fv)
  flags.DEFINE_integer("port_base", slurm_status.DEFAULT_PORT_BASE, "The "
                       "first gRPC port on each node.", flag_values=fv)
  flags.DEFINE_list("restart_policy", [restart.DEFAULT_POLICY], "How a task "
                    "that dies is restarted, inside the step: as for python "
                    "-m cluster.local.", flag_values=fv)


def spec_from_flags(fv: flags.FlagValues) -> JobSpec:
  job_flags.check(fv)
  restart.parse_policies(fv.restart_policy, fv.max_restarts,
                         fv.restart_window_secs)
  run_dir = fv.run_dir or launcher_end.default_run_dir("slurm")
  spec = JobSpec(
      run_dir=os.path.abspath(run_dir), workdir=os.getcwd(), nodes=fv.nodes,
      shape=job_flags.shape(fv), max_restarts=fv.max_restarts,
      restart_policy=tuple(fv.restart_policy),
      restart_window_secs=fv.restart_window_secs,
      time_limit=time_limit(fv.time, fv.deadline_secs),
      partition=fv.partition, job_name=fv.job_name, python=fv.python,
      port_base=fv.port_base)
  spec = dataclasses.replace(spec, resources=tuple(
      resources_lib.slurm_options(job_flags.resources(fv), [
          role for role in resources_lib.ROLES
          if role != tf_config.EVALUATOR or spec.shape.evaluator])))
  check(spec)
  return spec



def run_submitted(spec: JobSpec, trainer_args: Sequence[str],
                  argv: Sequence[str], environ=os.environ) -> int:
  """Pre-flight, sbatch, follow; returns the exit status."""
  check_submit_environment(environ)
  check_fit(spec, environ)
  flagfile, plan = launch.prepare_tasks(
      trainer_args, spec.run_dir, evaluator=spec.shape.evaluator,
      log=supervisor.print_line,
      cache_dir=shared_cache_dir(spec, environ))
  script = os.path.join(spec.run_dir, SCRIPT_FILE)
  with open(script, "w") as f:
    f.write(batch_script(spec, ["--flagfile=" + flagfile], argv))
  job_id = submit(script, environ)
  print("slurm: submitted job %s (%s); logs in %s" % (
      job_id, script, os.path.join(spec.run_dir, "logs")), flush=True)
  limit = _seconds(spec.time_limit)
  launcher_end.raise_on_sigterm()
  try:
    state = follow(job_id, spec, environ, printer=supervisor.print_line,
                   deadline_secs=limit + FOLLOW_MARGIN_SECS if limit
                   else None)
  except (KeyboardInterrupt, launcher_end.Terminated):
    _run(["scancel", job_id], environ)
    print("slurm: interrupted; cancelled job %s." % job_id, file=sys.stderr,
          flush=True)
    return 130
  if state != "COMPLETED":
    raise failure(job_id, state, spec)
  print("\n".join(launcher_end.finished_lines(
      plan.job, os.path.join(spec.run_dir, "logs"),
      launch.last_evaluation(plan.job.model_dir),
      launch.run_notes(plan.job.model_dir))), flush=True)
  return 0


def _seconds(limit: str) -> Optional[int]:
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


def _written_by() -> List[str]:
  return ["python", "-m", "cluster.slurm"] + sys.argv[1:]


def main(argv):
  fv = flags.FLAGS
  harness_cli.quiet_tensorflow()
  try:
    spec = spec_from_flags(fv)
    if fv.submit:
      return run_submitted(spec, argv[1:], _written_by())
    checked, job = launch.check_flags_only(
        argv[1:], evaluator=spec.shape.evaluator,
        default_model_dir=os.path.join(spec.run_dir, "model"))
    trainer_args = trainer_cli.flag_lines(checked, only_set=True)
    fetch = None
    if handles.needs_fetching(job.model.module_handle):
      cache_dir = shared_cache_dir(spec, os.environ)
      fetch = (job.model.module_handle, cache_dir)
      trainer_args.append("--module_handle=" + handles.cache_path(
          job.model.module_handle, cache_dir))
  except errors.HarnessError as e:
    return harness_cli.report(e, fv, trainer_cli.FLAG_NAMES)
  sys.stdout.write(batch_script(spec, trainer_args, _written_by(), fetch))
  return 0


def console_main():
  harness_cli.console_main(define_flags, main)


if __name__ == "__main__":
  console_main()
