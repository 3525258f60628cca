"""A study on this machine: Optuna draws each trial's flags, each trial is a
harness job, and the study lives in STUDY_DIR so that it resumes.

`python -m cluster.tune` (cluster/tune.py) is the command; this module runs
the study (Optuna is imported here: the `tune` extra).

* Storage: STUDY_DIR/study.db (SQLite, Optuna's RDBStorage), or any storage
  URL Optuna takes (several machines on one study share its RDB or journal
  file). Run the same command again and the study goes on: finished trials
  are kept, and only `trials` minus those run.
* A trial is a job in STUDY_DIR/trial-N: `python -m trainer.task` (one
  process) or `python -m cluster.local` (a cluster, with the cluster flags),
  with the base trainer flags, then the trial's values, then its own
  --model_dir; its output in trial-N/log.txt and its resolved flags in
  trial-N/model/flags.txt (the trainer's record) and the trial's user
  attributes.
* Pruning: while a trial runs, each new evaluation of a trained model in
  its model directory (never one of step 0, the untrained model) is
  reported to Optuna (`trial.report`); when the pruner says so the job is
  stopped and the trial is PRUNED, with the step and the median it was
  measured against said. A trial's value is its final evaluation's metric.
* Interruptions: Ctrl-C (or SIGTERM) stops the running jobs (SIGTERM, then
  SIGKILL after GRACE_SECS) and hands their values back to the study
  (`enqueue_trial`), so that the next run tries them first. A tuner killed
  outright leaves its trials RUNNING in the storage: the next run on the
  same host sees that their process is gone and does the same.
"""

import concurrent.futures
import dataclasses
import datetime
import logging
import os
import signal
import socket
import subprocess
import threading
import time
import warnings
from typing import Callable, Dict, List, Optional, Sequence

import optuna

from cluster.engines import search_space
from cluster.launcher import supervisor
from harness import errors
from harness import files
from trainer.training import eval_events

GRACE_SECS = 10.0
POLL_SECS = 2.0
STORAGE_FILE = "study.db"
BEST_FLAGS = "best.flags"
PLOT_FILE = "history.png"
# A FAILED trial that really failed carries this user attribute; one that
# was interrupted (by Ctrl-C, or a tuner that died) does not, and is tried
# again.
OUTCOME = "outcome"
INTERRUPTED = "interrupted"


class StudyError(errors.HarnessError):
  """A study that cannot be run as asked."""


@dataclasses.dataclass(frozen=True)
class Setup:
  """Everything a study run needs."""
  study_dir: str
  space: Sequence[search_space.Param]
  study: search_space.Study
  base_args: Sequence[str]  # The resolved trainer flags, without model_dir.
  launcher: Sequence[str]  # The trial's command, before the trainer flags.
  train_steps: int = 0  # The base flags' (a trial may tune it).
  storage: str = ""  # Optuna storage URL; "" for STUDY_DIR/study.db.
  study_name: str = "harness"
  sampler_seed: Optional[int] = None
  poll_secs: float = POLL_SECS


def distributions(space: Sequence[search_space.Param]) -> Dict[str, object]:
  """Optuna's distribution of each parameter."""
  out = {}
  for p in space:
    if p.type == search_space.DOUBLE:
      out[p.name] = optuna.distributions.FloatDistribution(
          p.low, p.high, log=p.scale == search_space.LOG)
    elif p.type == search_space.INTEGER:
      out[p.name] = optuna.distributions.IntDistribution(
          int(p.low), int(p.high), log=p.scale == search_space.LOG)
    else:
      out[p.name] = optuna.distributions.CategoricalDistribution(
          list(p.values))
  return out


JOURNAL = "journal:"


def storage_url(setup: Setup) -> str:
  """--storage as given (an RDB URL, or journal:PATH), or the study's own
  SQLite file."""
  if setup.storage:
    return setup.storage
  return "sqlite:///" + os.path.join(os.path.abspath(setup.study_dir),
                                     STORAGE_FILE)


def _storage(setup: Setup):
  """What optuna.create_study takes: an RDB URL as it is; journal:PATH as
  Optuna's journal file (a file several processes append to, for machines
  that share a disk but no database)."""
  url = storage_url(setup)
  if url.startswith(JOURNAL):
    return optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(url[len(JOURNAL):]))
  return url


def open_study(setup: Setup) -> optuna.Study:
  """The study in its storage, created on the first run; refuses a stored
  study whose direction is not the one asked for."""
  os.makedirs(setup.study_dir, exist_ok=True)
  direction = setup.study.goal
  try:
    study = optuna.create_study(
        storage=_storage(setup), study_name=setup.study_name,
        direction=direction, load_if_exists=True,
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2,
                                           n_warmup_steps=0))
  except (ValueError, optuna.exceptions.OptunaError) as e:
    raise StudyError("Study %s in %s cannot be opened: %s" % (
        setup.study_name, storage_url(setup), e)) from e
  if setup.sampler_seed is not None:
    # Offset by the trials so far: a resumed study must not draw the first
    # run's values again.
    study.sampler = optuna.samplers.TPESampler(
        seed=setup.sampler_seed + len(study.get_trials(deepcopy=False)))
  stored = study.direction.name.lower()
  if stored != direction:
    raise StudyError(
        "Study %s in %s was made to %s; this run asks to %s. Use another "
        "--study_dir or --study_name, or the same goal." % (
            setup.study_name, storage_url(setup), stored, direction))
  known = study.user_attrs.get("metric")
  if known and known != setup.study.metric:
    raise StudyError(
        "Study %s in %s optimizes %s; this run asks for %s. Use another "
        "--study_dir or --study_name, or --metric=%s." % (
            setup.study_name, storage_url(setup), known, setup.study.metric,
            known))
  study.set_user_attr("metric", setup.study.metric)
  return study


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def is_done(trial: optuna.trial.FrozenTrial) -> bool:
  """Whether `trial` counts toward the study's number of trials."""
  state = optuna.trial.TrialState
  return trial.state in (state.COMPLETE, state.PRUNED) or (
      trial.state == state.FAIL and OUTCOME in trial.user_attrs)


def recover_abandoned(study: optuna.Study, log: Callable[[str], None]) -> int:
  """Trials left RUNNING by a tuner on this host that is gone: failed (as
  interrupted) and their values queued again. Returns how many."""
  host = socket.gethostname()
  found = 0
  for trial in study.get_trials(
      deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
    attrs = trial.user_attrs
    if attrs.get("host") != host or _alive(int(attrs.get("pid", 0))):
      continue  # Another machine's, or this tuner's own.
    study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
    log("trial %d: its tuner (pid %s) is gone; its values are queued "
        "again" % (trial.number, attrs.get("pid")))
    found += 1
  return found


def _describe(params: Dict[str, object]) -> str:
  """The values, short: floats to 4 significant digits (the flags and
  best.flags keep them whole)."""
  return " ".join("%s=%s" % (name, "%.4g" % value if isinstance(
      value, float) else search_space.flag_value(value))
                  for name, value in params.items())


class _Job:
  """One trial's process, stopped on request."""

  def __init__(self, argv: List[str], log_path: str):
    self._log = open(log_path, "w")
    self.process = subprocess.Popen(  # pylint: disable=subprocess-popen-preexec-fn
        argv, stdin=subprocess.DEVNULL, stdout=self._log,
        stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=supervisor.die_with_parent)

  def wait(self, timeout: float) -> Optional[int]:
    try:
      return self.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
      return None

  def stop(self) -> None:
    """SIGTERM to its process group, SIGKILL after GRACE_SECS."""
    for sig, wait in ((signal.SIGTERM, GRACE_SECS), (signal.SIGKILL, 30.0)):
      if self.process.poll() is not None:
        break
      try:
        os.killpg(self.process.pid, sig)
      except ProcessLookupError:
        break
      if self.wait(wait) is not None:
        break
    self._log.close()

  def close(self) -> None:
    self._log.close()


class Runner:
  """Runs a study's remaining trials, `parallel` at a time."""

  def __init__(self, setup: Setup, study: optuna.Study,
               log: Callable[[str], None]):
    self.setup = setup
    self.study = study
    self.log = log
    self.stop_event = threading.Event()
    self._lock = threading.Lock()
    # Optuna's ask() pops a queued (WAITING) trial without a lock of its
    # own: two threads asking at once can both get the same one.
    self._ask_lock = threading.Lock()
    self._to_start = 0
    self._distributions = distributions(setup.space)

  def remaining(self) -> int:
    """Trials still to run: the study's number, less those done and those
    running elsewhere."""
    trials = self.study.get_trials(deepcopy=False)
    done = sum(1 for t in trials if is_done(t))
    running = sum(1 for t in trials
                  if t.state == optuna.trial.TrialState.RUNNING)
    return max(0, self.setup.study.trials - done - running)

  def run(self) -> int:
    """Runs the remaining trials; returns how many were started. Ctrl-C:
    stops them (see the module's docstring) and re-raises."""
    self._to_start = self.remaining()
    started = self._to_start
    workers = min(self.setup.study.parallel, max(1, self._to_start))
    if not self._to_start:
      return 0
    pool = concurrent.futures.ThreadPoolExecutor(
        max_workers=workers, thread_name_prefix="trial")
    futures = [pool.submit(self._work) for _ in range(workers)]
    try:
      while not all(f.done() for f in futures):
        concurrent.futures.wait(futures, timeout=1.0)
    except KeyboardInterrupt:
      self.stop_event.set()
      self.log("interrupted: stopping the running trials (their values are "
               "queued for the next run)")
      concurrent.futures.wait(futures, timeout=GRACE_SECS + 60)
      raise
    finally:
      pool.shutdown(wait=False)
    for f in futures:
      f.result()  # A bug in a trial's thread: its traceback.
    return started - self._to_start

  def _claim(self) -> bool:
    with self._lock:
      if self.stop_event.is_set() or self._to_start <= 0:
        return False
      self._to_start -= 1
      return True

  def _work(self) -> None:
    while self._claim():
      self._trial()

  def ask(self) -> optuna.trial.Trial:
    """The next trial to run: a queued one first, else a new draw; one
    thread at a time."""
    with self._ask_lock:
      return self.study.ask(self._distributions)

  def _trial(self) -> None:
    trial = self.ask()
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", os.getpid())
    trial_dir = os.path.join(self.setup.study_dir, "trial-%d" % trial.number)
    model_dir = os.path.join(os.path.abspath(trial_dir), "model")
    os.makedirs(trial_dir, exist_ok=True)
    flags = search_space.without(self.setup.base_args, trial.params) + (
        search_space.flag_args(trial.params) + ["--model_dir=" + model_dir])
    trial.set_user_attr("flags", flags)
    log_path = os.path.join(trial_dir, "log.txt")
    self.log("trial %d started: %s" % (trial.number,
                                       _describe(trial.params)))
    started = time.monotonic()
    job = _Job(list(self.setup.launcher) + flags, log_path)
    reported = -1
    metric = self.setup.study.metric
    code = None
    try:
      while code is None:
        code = job.wait(self.setup.poll_secs)
        if self.stop_event.is_set() and code is None:
          job.stop()
          self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
          self.study.enqueue_trial(trial.params,
                                   user_attrs={"retry_of": trial.number})
          self.log("trial %d interrupted; its values are queued again" %
                   trial.number)
          return
        for step, values in eval_events.evaluations(
            os.path.join(model_dir, "eval")):
          # The untrained model (step 0, where --eval_untrained asks for
          # it) says nothing of the trial: the pruner never sees it.
          if step <= reported or step == 0 or metric not in values:
            continue
          reported = step
          trial.report(values[metric], step)
          # The final evaluation decides the trial, never the pruner.
          final = int(trial.params.get("train_steps", self.setup.train_steps))
          if code is None and step < final and trial.should_prune():
            job.stop()
            self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            self.log("trial %d pruned at step %d: %s=%.4f, %s (%.0f s)" % (
                trial.number, step, metric, values[metric],
                self._compared(step), time.monotonic() - started))
            return
    finally:
      job.close()
    self._finish(trial, code, model_dir, log_path, started)

  def _compared(self, step: int) -> str:
    """What a trial pruned at `step` was measured against: Optuna's median
    pruner takes the median of the completed trials' values at exactly
    that step."""
    values = sorted(
        other.intermediate_values[step] for other in self.study.get_trials(
            deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if step in other.intermediate_values)
    if not values:
      return "as the pruner decided"
    middle = len(values) // 2
    median = (values[middle] if len(values) % 2 else
              (values[middle - 1] + values[middle]) / 2)
    return ("its best so far worse than the median %.4f of %d completed "
            "trial(s) at that step" % (median, len(values)))

  def _finish(self, trial, code: int, model_dir: str, log_path: str,
              started: float) -> None:
    seconds = time.monotonic() - started
    metric = self.setup.study.metric
    last = eval_events.last(os.path.join(model_dir, "eval"))
    if code != 0 or not last or metric not in last:
      why = ("exit code %d" % code if code != 0 else
             "no evaluation of %s in %s/eval" % (metric, model_dir))
      trial.set_user_attr(OUTCOME, why)
      self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
      self.log("trial %d failed (%s, %.0f s): see %s" % (
          trial.number, why, seconds, log_path))
      return
    trial.set_user_attr(OUTCOME, "complete")
    self.study.tell(trial, last[metric])
    self.log("trial %d complete: %s=%.4f at step %d (%.0f s)" % (
        trial.number, metric, last[metric], int(last["global_step"]),
        seconds))


def state_of(trial: optuna.trial.FrozenTrial) -> str:
  if trial.state == optuna.trial.TrialState.FAIL:
    return "failed" if OUTCOME in trial.user_attrs else INTERRUPTED
  return trial.state.name.lower()


def table(study: optuna.Study) -> str:
  """Every trial: number, state, value, time, parameters."""
  metric = study.user_attrs.get("metric", "value")
  rows = [("trial", "state", metric, "secs", "parameters")]
  for t in study.get_trials(deepcopy=False):
    secs = ""
    if t.datetime_start and t.datetime_complete:
      secs = "%.0f" % (t.datetime_complete - t.datetime_start).total_seconds()
    rows.append((str(t.number), state_of(t),
                 "" if t.value is None else "%.4f" % t.value, secs,
                 _describe(t.params)))
  widths = [max(len(r[i]) for r in rows) for i in range(4)]
  return "\n".join("  ".join(r[i].ljust(widths[i]) for i in range(4)) +
                   "  " + r[4] for r in rows)


def best_trial(study: optuna.Study) -> Optional[optuna.trial.FrozenTrial]:
  if not any(t.state == optuna.trial.TrialState.COMPLETE
             for t in study.get_trials(deepcopy=False)):
    return None
  return study.best_trial


def write_best_flags(setup: Setup, study: optuna.Study) -> Optional[str]:
  """STUDY_DIR/best.flags: a trainer flagfile that reruns the best trial
  (add --model_dir), or None before any trial completed."""
  best = best_trial(study)
  if best is None:
    return None
  path = os.path.join(setup.study_dir, BEST_FLAGS)
  flags = [f for f in best.user_attrs.get("flags", [])
           if not f.startswith("--model_dir=")]
  header = [
      "# The best trial of study %s (%s): trial %d, %s=%.6g." % (
          setup.study_name, storage_url(setup), best.number,
          study.user_attrs.get("metric", "value"), best.value),
      "# Written %s. Rerun: python -m trainer.task --flagfile=%s "
      "--model_dir=DIR" % (datetime.datetime.now().isoformat(
          timespec="seconds"), path)]
  return files.write_text(path, "\n".join(header + flags) + "\n")


def plot(setup: Setup, study: optuna.Study) -> Optional[str]:
  """STUDY_DIR/history.png: Optuna's optimization history (matplotlib), or
  None before any trial completed."""
  if best_trial(study) is None:
    return None
  # pylint: disable=g-import-not-at-top
  import matplotlib
  matplotlib.use("Agg")  # Files only: no display on a training machine.
  logging.getLogger("matplotlib").setLevel(logging.WARNING)  # Font cache.
  from matplotlib import pyplot
  from optuna.visualization import matplotlib as optuna_plots
  # pylint: enable=g-import-not-at-top
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    axes = optuna_plots.plot_optimization_history(study)
  path = os.path.join(setup.study_dir, PLOT_FILE)
  axes.figure.savefig(path, dpi=100, bbox_inches="tight")
  pyplot.close(axes.figure)
  return path
