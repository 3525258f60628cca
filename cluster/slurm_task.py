r"""One task of a Slurm job step: its role from Slurm, the trainer under
the restart policy.

  srun --kill-on-bad-exit=1 --distribution=block ... \
      python -m cluster.slurm_task --num_workers=2 --num_ps=1 --evaluator \
          --run_dir=RUN_DIR -- TRAINER_FLAGS

The batch script that python -m cluster.slurm writes runs this once per
task, in one `srun` step. It turns the step's environment (SLURM_PROCID,
SLURM_STEP_NODELIST, SLURM_STEP_TASKS_PER_NODE) into the cluster and this
task's role with TF's own SlurmClusterResolver: ranks go to the jobs in
alphabetical order (chief, evaluator, ps, worker), each task's port is
--port_base plus its offset on its node, hosts sorted by name (so the step
must use block distribution). On CPU-only nodes the resolver's GPU
bookkeeping is given one pretend GPU per task (gpus_per_node = the most
tasks on a node, gpus_per_task=1, auto_set_gpu=False): gpus_per_node=0
fails (tensorflow/tensorflow#56894) and leaving it out runs nvidia-smi.

The evaluator lands in the resolver's cluster; the trainer takes it out
(harness.tf_config), so the chief waits for its final evaluation.

The trainer runs as a child process, restarted as the local launcher would
(cluster.launcher.restart: a kill or preemption, exit 128-255, within
--max_restarts; an error, 1-127, is final): Slurm does not restart one task
of a step. Its output is prefixed with its name and kept in
RUN_DIR/logs/TASK.log; RUN_DIR/logs/TASK.status says how it ended. A task
that fails for good exits non-zero, and --kill-on-bad-exit ends the step.
"""

import json
import os
import sys

from absl import app
from absl import flags
from tensorflow.python.distribute.cluster_resolver import slurm_cluster_resolver  # pylint: disable=g-direct-tensorflow-import

from cluster import job_flags
from cluster.launcher import restart
from cluster.launcher import slurm_status
from cluster.launcher import supervisor
from harness import cli
from harness import errors
from harness import exit_codes
from harness import tf_config
from harness import tf_notices

def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  # No deadline of its own unless given (the batch script passes the job's
  # time limit): the local launcher's 15-minute default would end a long
  # job's tasks; without a time limit the partition's ends the job.
  job_flags.define(fv)
  flags.DEFINE_integer("port_base", slurm_status.DEFAULT_PORT_BASE,
                       "The first gRPC port "
                       "of each node; a node's tasks take the next ones.",
                       flag_values=fv)
  flags.DEFINE_string("run_dir", "", "Shared directory for the tasks' logs "
                      "and status files.", flag_values=fv)
  flags.DEFINE_list("restart_policy", [restart.DEFAULT_POLICY], "As for "
                    "python -m cluster.local.", flag_values=fv)


def jobs(num_workers: int, num_ps: int, evaluator: bool) -> dict:
  """The resolver's jobs: task type -> count."""
  counts = {tf_config.CHIEF: 1, tf_config.WORKER: num_workers,
            tf_config.PS: num_ps, tf_config.EVALUATOR: int(evaluator)}
  return {job: n for job, n in counts.items() if n}


def resolve(job_counts: dict, port_base: int, environ=os.environ) -> dict:
  """This task's TF_CONFIG, from the step's environment.

  Raises:
    errors.ClusterError: not inside an srun step, or a step of the wrong
      size.
  """
  if "SLURM_STEP_NODELIST" not in environ or "SLURM_PROCID" not in environ:
    raise errors.ClusterError(
        "Not inside an srun step (SLURM_STEP_NODELIST and SLURM_PROCID are "
        "unset): run this through the batch script python -m cluster.slurm "
        "writes.")
  per_node = slurm_cluster_resolver.expand_tasks_per_node(
      environ["SLURM_STEP_TASKS_PER_NODE"])
  most = max(per_node)
  try:
    resolver = slurm_cluster_resolver.SlurmClusterResolver(
        jobs=job_counts, port_base=port_base, gpus_per_node=most,
        gpus_per_task=1, auto_set_gpu=False)
    cluster = resolver.cluster_spec().as_dict()
  except RuntimeError as e:
    raise errors.ClusterError("The srun step does not fit the job: %s" %
                              e) from e
  task_type, task_id = resolver.get_task_info()
  return {"cluster": cluster, "task": {"type": task_type, "index": task_id}}


def main(argv):
  fv = flags.FLAGS
  cli.prepare_tensorflow()
  log_dir = os.path.join(os.path.abspath(fv.run_dir or "."), "logs")
  try:
    job_flags.check(fv)
    policies = restart.parse_policies(fv.restart_policy, fv.max_restarts,
                                      fv.restart_window_secs)
    config = resolve(jobs(fv.num_workers, fv.num_ps, fv.evaluator),
                     fv.port_base)
  except errors.HarnessError as e:
    return cli.report(e, fv)
  task = tf_config.Task(config["task"]["type"], config["task"]["index"])
  env = dict(os.environ, TF_CONFIG=json.dumps(config), PYTHONUNBUFFERED="1")
  launch = supervisor.Launch(
      task, [sys.executable, "-m", "trainer.task"] + list(argv[1:]), env)
  events = lambda message: supervisor.print_line(
      "[%s] slurm_task: %s" % (task.name, message))
  events("TF_CONFIG=%s" % env["TF_CONFIG"])
  try:
    supervisor.supervise([launch], log_dir=log_dir,
                         deadline_secs=fv.deadline_secs,
                         on_event=events, policies=policies,
                         wait_for_ps=True, hidden=tf_notices.Hidden(
                             events, "the task's log (%s)" % log_dir))
  except supervisor.TaskFailed as e:
    slurm_status.write(log_dir, task, e.exit_code, str(e).splitlines()[0])
    events("error: %s" % e)
    # A death by signal N is exit status 128 + N, as a shell reports it.
    return e.exit_code if e.exit_code > 0 else 128 - e.exit_code
  except errors.HarnessError as e:
    slurm_status.write(log_dir, task, exit_codes.ERROR, str(e))
    events("error: %s" % e)
    return exit_codes.ERROR
  slurm_status.write(log_dir, task, 0, "finished")
  return 0


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=cli.parse_flags_or_exit)
