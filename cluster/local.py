r"""Runs the trainer as a parameter-server cluster on this machine.

  python -m cluster.local --num_workers=2 --num_ps=1 --evaluator -- \
      --flagfile=configs/digits.cfg --train_steps=500

Flags before `--` shape the cluster; flags after it go to every task of the
trainer (python -m trainer.task). With no trainer flags, the demo runs.

What happens:
1. The cluster runs in a private network namespace when the machine allows
   one (TF's gRPC servers listen on all interfaces without authentication);
   --noisolate turns that off, and the launcher says so.
2. The trainer's pre-flight runs once, before any process starts (flags,
   model, data, model directory), and the resolved trainer flags are
   written to RUN_DIR/trainer_flags.txt for every task, followed by what
   the tasks need not check again (--novalidate_data,
   --nooverwrite_model_dir).
3. One process per task (ps, chief, workers, evaluator), each with its own
   TF_CONFIG, on ports from portpicker. If a port is taken before a task
   binds it, the cluster is started again on fresh ports.
4. Every line of every task is shown with its name and kept in
   RUN_DIR/logs/TASK.log. When the chief and then the workers and evaluator
   finish, the ps tasks are stopped. A task that dies is restarted as
   --restart_policy allows (kills and preemptions, within --max_restarts);
   one that fails for good stops all the others, and the launcher exits 1,
   naming the task, its exit code and the tail of its log. Past
   --deadline_secs (none unless given), the same. Ctrl-C and SIGTERM stop
   all.

This entry point imports the trainer (and so TensorFlow) only once it runs
inside its network namespace: the process that re-executes itself there
never loads TF (measured in docs/layout.md).
"""

import json
import os
import sys
import time
from typing import List, Optional, Sequence

from absl import flags

from cluster import job_flags
from cluster.engines import spec
from cluster.launcher import launcher_end
from cluster.launcher import netns
from cluster.launcher import ports as ports_lib
from cluster.launcher import restart
from cluster.launcher import supervisor
from harness import cli as harness_cli
from harness import errors
from harness import exit_codes
from harness import tf_config
from harness import tf_notices
# TF-free: the trainer's TensorFlow modules load only when the pre-flight
# runs (trainer/task.py), i.e. inside the namespace.
from trainer.config import cli as trainer_cli
from trainer.hub_model import handles
from trainer.plan import launch

PORT_ATTEMPTS = 3


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  job_flags.define(fv)
  flags.DEFINE_string("run_dir", "", "Where logs, the trainer flags and (by "
                      "default) the model go. Empty: runs/cluster-<time>.",
                      flag_values=fv)
  flags.DEFINE_list(
      "restart_policy", [restart.DEFAULT_POLICY], "How tasks that die are "
      "restarted: a policy for every type (never, on_failure, exit_code, "
      "always), then TYPE=POLICY for single types, e.g. "
      "exit_code,evaluator=never. exit_code retries kills and preemptions "
      "(exit codes 128-255, signals) but not errors (1-127).",
      flag_values=fv)
  flags.DEFINE_bool("isolate", True, "Run the cluster in a private network "
                    "namespace (unshare -n as root, unshare -rn otherwise), "
                    "so no other machine can reach its ports.",
                    flag_values=fv)


def command_line(*, run_dir: str, trainer_args: Sequence[str] = (),
                 num_workers: int = 2, num_ps: int = 1,
                 evaluator: bool = True, deadline_secs: int = 900,
                 extra: Sequence[str] = (),
                 python: str = sys.executable) -> List[str]:
  """The `python -m cluster.local ...` command that runs such a cluster."""
  return ([python, "-m", "cluster.local", "--run_dir=" + run_dir,
           "--num_workers=%d" % num_workers, "--num_ps=%d" % num_ps,
           "--evaluator" if evaluator else "--noevaluator",
           "--deadline_secs=%d" % deadline_secs] + list(extra) + ["--"] +
          list(trainer_args))


def isolate_or_warn(isolate: bool, argv, environ=os.environ, log=print):
  """Re-executes argv in a private network namespace, or says why not.

  Returns only when the cluster will run in this process: already isolated
  (loopback brought up), isolation turned off, or not possible here.
  """
  if environ.get(netns.INSIDE_ENV):
    netns.bring_up_loopback()
    log("Isolated: the cluster runs in a private network namespace (%s); "
        "its ports are reachable from this namespace only." %
        " ".join(netns.unshare_prefix()))
    return
  if not isolate:
    log("warning: NOT isolated (--noisolate): the cluster's gRPC servers "
        "listen on all interfaces without authentication.")
    return
  reason = netns.why_not_available()
  if reason:
    log("warning: NOT isolated: no private network namespace here (%s); "
        "the cluster's gRPC servers listen on all interfaces without "
        "authentication." % reason)
    return
  env = dict(environ, **{netns.INSIDE_ENV: "1"})
  command = netns.isolate_command([sys.executable, "-m", "cluster.local"] +
                                  list(argv[1:]))
  sys.stdout.flush()
  sys.stderr.flush()
  os.execvpe(command[0], command, env)


def prefetch_handle(trainer_args, environ=os.environ, log=print) -> None:
  """Fetches a URL or archive hub handle into the cache before the cluster
  is isolated: inside its network namespace nothing can be reached. The
  pre-flight then finds it there, and every task is given that directory
  (trainer.plan.launch.prepare_tasks): one download, however many tasks."""
  try:
    fv = trainer_cli.new_flag_values(trainer_args)
  except errors.FlagError:
    return  # The pre-flight says what is wrong with the flags.
  if handles.needs_fetching(fv.module_handle):
    handles.resolve(fv.module_handle, handles.default_cache_dir(environ), log)


def launches(cluster, evaluator: bool, flagfile: str, environ=os.environ):
  """One Launch per task: the trainer with that task's TF_CONFIG."""
  argv = [sys.executable, "-m", "trainer.task", "--flagfile=" + flagfile]
  result = []
  for task in spec.tasks(cluster, evaluator):
    env = dict(environ, TF_CONFIG=json.dumps(tf_config.make(cluster, task)),
               PYTHONUNBUFFERED="1")
    env.pop(netns.INSIDE_ENV, None)
    result.append(supervisor.Launch(task, argv, env))
  return result


def run_cluster(*, num_workers: int, num_ps: int, evaluator: bool,
                flagfile: str, log_dir: str, deadline_secs: Optional[float],
                policies=None, printer=supervisor.print_line,
                log=supervisor.print_line):
  """Starts the cluster and supervises it; retries on port conflicts.
  `deadline_secs`: None, no deadline."""
  deadline = time.monotonic() + deadline_secs if deadline_secs else None
  for attempt in range(1, PORT_ATTEMPTS + 1):
    ports = iter(ports_lib.pick_ports(1 + num_workers + num_ps))
    cluster = spec.build_cluster(num_workers=num_workers, num_ps=num_ps,
                                 ports=ports)
    log("Cluster: %s%s" % (json.dumps(cluster),
                           " + evaluator" if evaluator else ""))
    try:
      return supervisor.supervise(
          launches(cluster, evaluator, flagfile), log_dir=log_dir,
          deadline_secs=(max(deadline - time.monotonic(), 1.0) if deadline
                         else None),
          printer=printer, on_event=lambda e: log("launcher: " + e),
          policies=policies, hidden=tf_notices.Hidden(
              lambda line: log("launcher: " + line),
              "each task's log (%s)" % log_dir))
    except supervisor.TaskFailed as e:
      if not e.port_conflict or attempt == PORT_ATTEMPTS:
        raise
      log("launcher: %s could not bind its port (taken since it was "
          "picked); starting the cluster again on fresh ports (attempt %d "
          "of %d)." % (e.task.name, attempt + 1, PORT_ATTEMPTS))


def finished_summary(seconds, codes, job, log_dir) -> str:
  """What the cluster did: tasks, final eval metrics, model, export, logs."""
  return "\n".join(["Cluster finished in %.0f s: %s." % (
      seconds, ", ".join(sorted(codes)))] + launcher_end.finished_lines(
          job, log_dir, launch.last_evaluation(job.model_dir),
          launch.run_notes(job.model_dir, job.resolved_export_dir)))


def main(argv):
  fv = flags.FLAGS
  if not os.environ.get(netns.INSIDE_ENV):  # Not yet re-executed inside.
    try:
      prefetch_handle(argv[1:])
    except errors.HarnessError as e:
      return harness_cli.report(e, fv, trainer_cli.FLAG_NAMES)
  isolate_or_warn(fv.isolate, sys.argv)
  harness_cli.prepare_tensorflow()  # Before TF loads, in the pre-flight.
  launcher_end.raise_on_sigterm()
  run_dir = os.path.abspath(fv.run_dir or launcher_end.default_run_dir(
      "cluster"))
  started = time.monotonic()
  try:
    job_flags.check(fv)
    policies = restart.parse_policies(fv.restart_policy, fv.max_restarts,
                                      fv.restart_window_secs)
    # The pre-flight loads TF here: its start-up notices, as the tasks'.
    with tf_notices.quiet_stderr(tf_notices.StartupNotices(
        tf_notices.has_gpu())):
      flagfile, plan = launch.prepare_tasks(
          argv[1:], run_dir, evaluator=fv.evaluator, log=print,
          num_workers=fv.num_workers)
    print("Restart policy: %s" % restart.describe(policies), flush=True)
    print("Deadline: %s" % ("%d s (--deadline_secs)" % fv.deadline_secs
                            if fv.deadline_secs else
                            "none (--deadline_secs sets one)"), flush=True)
    codes = run_cluster(
        num_workers=fv.num_workers, num_ps=fv.num_ps,
        evaluator=fv.evaluator, flagfile=flagfile,
        log_dir=os.path.join(run_dir, "logs"),
        deadline_secs=fv.deadline_secs, policies=policies)
  except errors.HarnessError as e:
    return harness_cli.report(e, fv, trainer_cli.FLAG_NAMES)
  except (KeyboardInterrupt, launcher_end.Terminated):
    print("launcher: interrupted; every task was stopped.", file=sys.stderr,
          flush=True)
    return exit_codes.INTERRUPTED
  print(finished_summary(time.monotonic() - started, codes, plan.job,
                         os.path.join(run_dir, "logs")), flush=True)
  return 0


def console_main():
  harness_cli.console_main(define_flags, main)


if __name__ == "__main__":
  console_main()
