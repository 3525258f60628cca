"""What the launchers use of the trainer (cluster/): its checks, once.

`prepare_tasks` is a launcher's pre-flight (cluster.local, cluster.slurm
--submit): the trainer's whole check, once, as the chief, then one flagfile
for every task. `check_flags_only` is what the job generators can check
without the model and data, which are where the job runs (cluster.tfjob,
cluster.vertex, cluster.slurm's printed script).
"""

import os
from typing import Callable, List, Optional, Tuple

from absl import flags
from absl import logging

from harness import errors
from harness import tf_config
from trainer.config import backends
from trainer.config import cli
from trainer.config import demo
from trainer.config import job as job_lib
from trainer.plan import resolve


def require_eval_files(evaluator: bool, eval_files) -> None:
  """An evaluator needs something to evaluate: the one check of it."""
  if evaluator and not eval_files:
    raise errors.FlagError(
        "`eval_files` is empty, so an evaluator would have nothing to "
        "evaluate: give the trainer `eval_files`, or --noevaluator.")


# Where a launcher writes the trainer flags its tasks read, and what it tells
# them after its pre-flight: it scanned the data, and settled the model
# directory (a restarted chief must resume, not move its own work aside).
TASK_FLAGS_FILE = "trainer_flags.txt"
CHECKED_ONCE = ("--novalidate_data", "--nooverwrite_model_dir")


def prepare_tasks(trainer_args, run_dir: str, *, evaluator: bool,
                  log: Callable[[str], None] = logging.info,
                  cache_dir: Optional[str] = None,
                  num_workers: Optional[int] = None):
  """A launcher's pre-flight (cluster/local.py, cluster/slurm.py): the
  trainer's whole check, once, as the chief, before any task starts; then
  the resolved trainer flags, for every task, in RUN_DIR/trainer_flags.txt.
  A hub handle that must be fetched is fetched here, once, into `cache_dir`
  (which every task must see), and the tasks are given the directory.

  Returns (path of that flagfile, the checked plan).

  Raises:
    errors.HarnessError: the one-line problem (trainer flags named as such).
  """
  try:
    fv = cli.new_flag_values(trainer_args)
  except errors.FlagError as e:
    raise errors.FlagError("trainer flags: %s" % e) from e
  plan = resolve.prepare(fv, tf_config.Task(tf_config.CHIEF),
                          default_model_dir=os.path.join(run_dir, "model"),
                          log=log, cache_dir=cache_dir)
  if num_workers is not None:
    backends.check_workers(plan.backend, num_workers)
  require_eval_files(evaluator, plan.eval_files)
  resolve.settle_model_dir(plan, fv.overwrite_model_dir, log=log)
  log(plan.backend.describe())
  # Every task runs the backend the launcher chose.
  lines = list(plan.flag_lines) + list(CHECKED_ONCE) + [
      "# " + plan.backend.describe(), "--backend=" + plan.backend.name]
  if plan.resolution.in_cache:  # Every task loads the one fetched copy.
    lines += ["# %s, once, by the launcher" % plan.resolution.describe(),
              "--module_handle=" + plan.resolution.path]
  from trainer.plan import model_dir  # pylint: disable=g-import-not-at-top
  path = model_dir.write_record(lines, os.path.join(run_dir,
                                                    TASK_FLAGS_FILE))
  return path, plan


def check_flags_only(trainer_args, *, evaluator: bool = False,
                     default_model_dir: str = ""
                     ) -> Tuple[flags.FlagValues, job_lib.JobConfig]:
  """The trainer's checks that need neither the model nor the data, for the
  job generators (cluster/tfjob.py, cluster/vertex.py, cluster/slurm.py):
  those files are where the job runs. Unknown flags, bad values,
  contradictions, an `evaluator` without eval files.

  Returns the flags the tasks get (`default_model_dir` where --model_dir is
  unset: a Slurm job's RUN_DIR/model) and their job.

  Raises:
    errors.HarnessError: the one-line problem.
  """
  fv = cli.new_flag_values(trainer_args)
  if demo.wanted(fv):
    raise errors.FlagError(
        "`module_handle` is required here: give the hub model's path as "
        "the job's tasks will see it (the demo runs only where its "
        "pre-flight runs: python -m cluster.local, or python -m "
        "cluster.slurm --submit).")
  # The generators' own environment is not the job's (no Vertex AI
  # directories from it).
  fv = resolve.resolve_flags(fv, default_model_dir=default_model_dir,
                              build_demo=False, environ={})
  job = cli.job_config(fv)
  job_lib.validate(job)
  require_eval_files(evaluator, job.data.eval_files)
  return fv, job


def last_evaluation(model_dir: str) -> Optional[dict]:
  """The metrics of the latest evaluation written under `model_dir`."""
  # pylint: disable-next=g-import-not-at-top
  from trainer.training import eval_events
  return eval_events.last(os.path.join(model_dir, "eval"))


def run_notes(model_dir: str, export_dir: str = "") -> List[str]:
  """How the run ended besides: an early stop, the best export; with
  `export_dir`, how the export check went (the launchers': a task's own
  summary has it from its result)."""
  # pylint: disable=g-import-not-at-top
  from trainer.training import best_export
  from trainer.training import early_stopping
  from trainer.training import export_check
  # pylint: enable=g-import-not-at-top
  return [note for note in (
      early_stopping.describe(model_dir), best_export.describe(model_dir),
      export_check.described(export_dir) if export_dir else None) if note]


