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

The batch script and what it runs: cluster/engines/slurm.py (pure).

With --submit: the trainer's pre-flight runs here first, exactly as the
local launcher's (model, data, model directory), before anything is queued;
then sbatch, then the job's state and each task's output (prefixed with its
name) until it ends: exit 0 when it succeeded, or 1 with the failing task,
its exit code and the tail of its log. Ctrl-C cancels the job.
"""

import dataclasses
import os
import sys
from typing import List, Mapping, Sequence

from absl import flags

from cluster import job_flags
from cluster import slurm_submit
from cluster.engines import resources as resources_lib
from cluster.engines import slurm as slurm_lib
from cluster.launcher import launcher_end
from cluster.launcher import restart
from cluster.launcher import slurm_status
from cluster.launcher import supervisor
from harness import cli as harness_cli
from harness import errors
from harness import exit_codes
from harness import hub_cache
from harness import tf_config
from trainer.config import cli as trainer_cli
from trainer.hub_model import handles
from trainer.plan import launch

FOLLOW_MARGIN_SECS = 600


def shared_cache_dir(spec: slurm_lib.JobSpec,
                     environ: Mapping[str, str]) -> str:
  """Where a hub handle is fetched for the job: TFHUB_CACHE_DIR, which must
  then be on storage every node sees, else RUN_DIR/hub_cache."""
  return environ.get(hub_cache.CACHE_ENV) or os.path.join(spec.run_dir,
                                                         "hub_cache")


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  job_flags.define(fv)
  job_flags.define_resources(fv, ("cpu", "memory", "gpu", "gpu_type"))
  flags.DEFINE_integer("nodes", 1, "Slurm nodes for the job (one srun step "
                       "runs every task across them).", flag_values=fv)
  flags.DEFINE_string("partition", "", "Slurm partition; empty: the "
                      "default.", flag_values=fv)
  flags.DEFINE_bool("spot", False, "For a partition whose jobs may be "
                    "preempted: #SBATCH --requeue (Slurm puts the preempted "
                    "job back in the queue, and it resumes from the latest "
                    "checkpoint) and --open-mode=append.", flag_values=fv)
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


def spec_from_flags(fv: flags.FlagValues) -> slurm_lib.JobSpec:
  job_flags.check(fv)
  restart.parse_policies(fv.restart_policy, fv.max_restarts,
                         fv.restart_window_secs)
  run_dir = fv.run_dir or launcher_end.default_run_dir("slurm")
  spec = slurm_lib.JobSpec(
      run_dir=os.path.abspath(run_dir), workdir=os.getcwd(), nodes=fv.nodes,
      shape=job_flags.shape(fv), max_restarts=fv.max_restarts,
      restart_policy=tuple(fv.restart_policy),
      restart_window_secs=fv.restart_window_secs,
      time_limit=slurm_lib.time_limit(fv.time, fv.deadline_secs),
      partition=fv.partition, job_name=fv.job_name, python=fv.python,
      spot=fv.spot,
      port_base=fv.port_base)
  spec = dataclasses.replace(spec, resources=tuple(
      resources_lib.slurm_options(job_flags.resources(fv), [
          role for role in resources_lib.ROLES
          if role != tf_config.EVALUATOR or spec.shape.evaluator])))
  slurm_lib.check(spec)
  return spec


def run_submitted(spec: slurm_lib.JobSpec, trainer_args: Sequence[str],
                  argv: Sequence[str], environ=os.environ) -> int:
  """Pre-flight, sbatch, follow; returns the exit status."""
  slurm_submit.check_submit_environment(environ)
  slurm_submit.check_fit(spec, environ)
  flagfile, plan = launch.prepare_tasks(
      trainer_args, spec.run_dir, evaluator=spec.shape.evaluator,
      log=supervisor.print_line,
      cache_dir=shared_cache_dir(spec, environ))
  script = os.path.join(spec.run_dir, slurm_lib.SCRIPT_FILE)
  with open(script, "w") as f:
    f.write(slurm_lib.batch_script(spec, ["--flagfile=" + flagfile], argv))
  job_id = slurm_submit.submit(script, environ)
  print("slurm: submitted job %s (%s); logs in %s" % (
      job_id, script, os.path.join(spec.run_dir, "logs")), flush=True)
  limit = slurm_lib.time_limit_secs(spec.time_limit)
  launcher_end.raise_on_sigterm()
  try:
    state = slurm_submit.follow(
        job_id, spec, environ, printer=supervisor.print_line,
        deadline_secs=limit + FOLLOW_MARGIN_SECS if limit else None)
  except (KeyboardInterrupt, launcher_end.Terminated):
    slurm_submit.cancel(job_id, environ)
    print("slurm: interrupted; cancelled job %s." % job_id, file=sys.stderr,
          flush=True)
    return exit_codes.INTERRUPTED
  if state != "COMPLETED":
    raise slurm_submit.failure(job_id, state, spec)
  print("\n".join(launcher_end.finished_lines(
      plan.job, os.path.join(spec.run_dir, "logs"),
      launch.last_evaluation(plan.job.model_dir),
      launch.run_notes(plan.job.model_dir,
                       plan.job.resolved_export_dir))), flush=True)
  return 0


def _written_by() -> List[str]:
  return ["python", "-m", "cluster.slurm"] + sys.argv[1:]


def main(argv):
  fv = flags.FLAGS
  harness_cli.prepare_tensorflow()
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
  sys.stdout.write(slurm_lib.batch_script(spec, trainer_args, _written_by(),
                                          fetch))
  return 0


def console_main():
  harness_cli.console_main(define_flags, main)


if __name__ == "__main__":
  console_main()
