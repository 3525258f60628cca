r"""Runs one task of a parameter-server cluster on this host.

Start every task of the cluster, each on its own host, with the same
cluster and trainer flags; only --task differs:

  python -m cluster.hosts \
      --cluster='chief=10.0.0.1:2222;worker=10.0.0.2:2222;ps=10.0.0.3:2222' \
      --task=ps:0 -- --flagfile=configs/digits.cfg --model_dir=/shared/run

--cluster_file=cluster.json (a cluster dict, or a whole TF_CONFIG) may stand
for --cluster. This checks the cluster and the task, sets TF_CONFIG and
replaces itself with `python -m trainer.task TRAINER_FLAGS`; TF's gRPC
runtime connects the tasks. MODEL_DIR must be a path every task reaches (a
shared file system). A ps task ends by itself once the chief's export
exists (at most --serve_timeout_secs). TF's gRPC servers accept anyone who
can reach their port: keep the cluster's ports behind a firewall.
(`scripts/run_task.py`, its former home, still runs it.)
"""

import json
import os
import sys
from typing import Mapping

from absl import flags

from cluster.engines import spec
from harness import cli
from harness import errors
from harness import tf_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  flags.DEFINE_string(
      "cluster", "", "The training cluster: JOB=HOST:PORT[,HOST:PORT...] for "
      "chief, worker and ps, separated by ';'.", flag_values=fv)
  flags.DEFINE_string(
      "cluster_file", "", "A JSON file with the cluster dict (or a whole "
      "TF_CONFIG); instead of --cluster.", flag_values=fv)
  flags.DEFINE_string(
      "task", "", "This host's task as TYPE:INDEX: chief:0, worker:N, ps:N "
      "or evaluator:0.", flag_values=fv)


def task_environment(cluster_text: str, cluster_file: str, task_text: str,
                     environ: Mapping[str, str] = os.environ) -> dict:
  """The environment of the trainer process: TF_CONFIG for this task."""
  if bool(cluster_text) == bool(cluster_file):
    raise errors.FlagError("Give the cluster as `cluster` or `cluster_file` "
                           "(exactly one of them).")
  cluster = (spec.parse_cluster_flag(cluster_text) if cluster_text
             else spec.load_cluster_file(cluster_file))
  if not task_text:
    raise errors.FlagError("`task` is required, e.g. `task`=worker:0.")
  task = spec.parse_task_flag(task_text)
  python_path = os.pathsep.join(
      filter(None, [REPO, environ.get("PYTHONPATH", "")]))
  return dict(environ, TF_CONFIG=json.dumps(tf_config.make(cluster, task)),
              PYTHONUNBUFFERED="1", PYTHONPATH=python_path)


def main(argv):
  fv = flags.FLAGS
  try:
    env = task_environment(fv.cluster, fv.cluster_file, fv.task)
  except errors.HarnessError as e:
    return cli.report(e, fv)
  print("TF_CONFIG=%s" % env["TF_CONFIG"], flush=True)
  command = [sys.executable, "-m", "trainer.task"] + list(argv[1:])
  os.execve(sys.executable, command, env)


def console_main():
  cli.console_main(define_flags, main)


if __name__ == "__main__":
  console_main()
