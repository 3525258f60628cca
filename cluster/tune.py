r"""Tunes a job on this machine: an Optuna study whose trials are harness jobs.

  python -m cluster.tune --space=configs/tuning/digits.yaml --trials=8 \
      --parallel=2 --metric=accuracy --study_dir=runs/tune-digits \
      -- --train_steps=300

Flags before `--` describe the study (and, with --cluster, each trial's
local cluster: --num_workers, --num_ps, --evaluator as cluster.local takes
them); flags after it are the trainer's, the same for every trial (none: the
demo). The space and the metric are checked against the trainer before any
trial starts. One line per trial as it starts and ends; at the end a table
of every trial, STUDY_DIR/best.flags (a trainer flagfile that reruns the
best trial) and STUDY_DIR/history.png. The same command again resumes the
study; with a larger --trials it runs only the difference. Ctrl-C (or
SIGTERM) stops the running trials; their values are tried first by the
next run.

Exit status: 0 when the study has a completed trial; 1 for a problem found
before any trial, or when no trial completed; 130 after Ctrl-C.
What each part does: cluster/study.py (the study), cluster/tuning.py (the
checks), docs/tuning.md (the guide).
"""

import os
import signal
import sys
from typing import List, Sequence

from absl import flags

from cluster import job_flags
from cluster import tuning
from harness import cli as harness_cli
from harness import errors
from harness import exit_codes
from trainer.config import cli as trainer_cli
from trainer.config import job as job_lib
from trainer.plan import resolve

_LOCAL = ("num_workers", "num_ps", "evaluator", "max_restarts",
          "restart_window_secs", "deadline_secs")


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  tuning.define_flags(fv)
  flags.DEFINE_string("study_dir", "", "Where the study lives: its storage "
                      "(study.db), a directory per trial, best.flags and "
                      "history.png. Required.", flag_values=fv)
  flags.DEFINE_string("storage", "", "Where a study that several machines "
                      "share lives: an Optuna RDB URL (postgresql://..., "
                      "mysql://...), or journal:PATH, Optuna's journal file "
                      "on a disk they share; default: STUDY_DIR/study.db "
                      "(SQLite).", flag_values=fv)
  flags.DEFINE_string("study_name", "harness", "The study's name in its "
                      "storage.", flag_values=fv)
  flags.DEFINE_integer("seed", None, "Seed of Optuna's sampler, for a study "
                       "that draws the same values when run again from "
                       "scratch.", flag_values=fv)
  flags.DEFINE_bool("cluster", False, "Run each trial as a local cluster "
                    "(python -m cluster.local, with --num_workers, --num_ps "
                    "and --evaluator); without it each trial is one "
                    "process.", flag_values=fv)
  job_flags.define(fv)


def base_trainer_flags(trainer_args: Sequence[str], study_dir: str
                       ) -> tuple:
  """The trainer's flags every trial gets (resolved: the demo's where no
  model or data is given, built here once), without --model_dir; and the
  job they describe, checked."""
  try:
    fv = trainer_cli.new_flag_values(trainer_args)
  except errors.FlagError as e:
    raise errors.FlagError("trainer flags: %s" % e) from e
  if fv.model_dir:
    raise errors.FlagError(
        "trainer flags: --model_dir=%s: each trial writes its own, "
        "STUDY_DIR/trial-N/model; drop it." % fv.model_dir)
  resolved = resolve.resolve_flags(
      fv, default_model_dir=os.path.join(study_dir, "checked"),
      log=lambda line: print(line, flush=True))
  job = trainer_cli.job_config(resolved)
  job_lib.validate(job)
  lines = [line for line in trainer_cli.flag_lines(resolved, only_set=True)
           if not line.startswith("--model_dir=")]
  return lines, job


def launcher(fv: flags.FlagValues) -> List[str]:
  """The command each trial runs, before the trainer's flags."""
  if not fv.cluster:
    return [sys.executable, "-m", "trainer.task"]
  argv = [sys.executable, "-m", "cluster.local"]
  for name in _LOCAL:
    if fv[name].value is not None:
      argv.append(fv[name].serialize())
  return argv + ["--"]


def _cores_note(fv: flags.FlagValues) -> str:
  tasks = 1
  if fv.cluster:
    tasks = 1 + fv.num_workers + fv.num_ps + int(fv.evaluator)
  cores = os.cpu_count() or 1
  if fv.parallel * tasks <= cores:
    return ""
  return ("note: %d trials at a time of %d process%s each on %d cores: they "
          "share the cores, and each trial runs slower." % (
              fv.parallel, tasks, "" if tasks == 1 else "es", cores))


def main(argv):
  fv = flags.FLAGS
  log = lambda line: print(line, flush=True)  # pylint: disable=unnecessary-lambda-assignment
  try:
    if not fv.study_dir:
      raise errors.FlagError("`study_dir` is required: where the study, its "
                             "trials and its results live.")
    if fv.cluster:
      job_flags.check(fv)
    base, job = base_trainer_flags(argv[1:], fv.study_dir)
    space = tuning.load_space(fv.space, base + [
        "--model_dir=" + os.path.join(fv.study_dir, "checked")])
    settings = tuning.study_settings(fv, job.head.n_classes)
    # The tune extra (Optuna, matplotlib), imported once the flags are
    # checked: a bad flag is answered without TF.
    harness_cli.prepare_tensorflow()  # Before cluster.study loads TF.
    try:
      from cluster import study as study_lib  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise errors.FlagError(
          "cluster.tune needs the `tune` extra (%s): pip install -e "
          "'.[tune]'" % e) from e
    study_lib.optuna.logging.set_verbosity(study_lib.optuna.logging.WARNING)
    setup = study_lib.Setup(
        study_dir=fv.study_dir, space=space, study=settings,
        base_args=base, launcher=launcher(fv), storage=fv.storage,
        train_steps=job.run.train_steps,
        study_name=fv.study_name, sampler_seed=fv.seed)
    study = study_lib.open_study(setup)
  except errors.HarnessError as e:
    return harness_cli.report(e, fv, trainer_cli.FLAG_NAMES)
  for line in filter(None, [_cores_note(fv)]):
    log(line)
  # SIGTERM (a scheduler ending the allocation) stops as Ctrl-C does; and
  # Ctrl-C (SIGINT) does, even where the study was started with SIGINT
  # ignored (a background job of a non-interactive shell inherits that, and
  # Python then installs no handler of its own: a test run so saw the
  # study ignore it and run on).
  signal.signal(signal.SIGTERM, signal.default_int_handler)
  signal.signal(signal.SIGINT, signal.default_int_handler)
  # A Ctrl-C after the trials too (while best.flags and the plot are
  # written): the study is kept, and the same command writes them.
  try:
    study_lib.recover_abandoned(study, log)
    runner = study_lib.Runner(setup, study, log)
    log("study %s (%s): %s %s; %d trial(s) to run, %d at a time" % (
        setup.study_name, study_lib.storage_url(setup), setup.study.goal,
        setup.study.metric, runner.remaining(), setup.study.parallel))
    runner.run()
    log(study_lib.table(study))
    best = study_lib.write_best_flags(setup, study)
    if not best:
      log("error: no trial completed; see each trial's log.txt in %s" %
          fv.study_dir)
      return exit_codes.ERROR
    log("Best: trial %d, %s=%.6g; its flags: %s" % (
        study.best_trial.number, setup.study.metric, study.best_value, best))
    log("Plot: %s" % study_lib.plot(setup, study))
  except KeyboardInterrupt:
    log(study_lib.table(study))
    log("The study is kept in %s; run the same command to go on." %
        study_lib.storage_url(setup))
    return exit_codes.INTERRUPTED
  return 0


def console_main():
  harness_cli.console_main(define_flags, main)


if __name__ == "__main__":
  console_main()
