"""Each evaluation, reported where the tuning services read it.

The chief (or a single process) follows MODEL_DIR/eval's event files, which
the evaluator writes wherever it runs (its own task, or the same process),
and reports every new evaluation, in step order:

* on stdout, one line per evaluation, led by an RFC 3339 time stamp:
  `2026-12-04T18:30:00.123456Z Evaluation at global_step=1000: accuracy=0.87
  loss=0.32` -- what Katib's StdOut metrics collector reads without code of
  the user's (its text parser takes a leading RFC 3339 time and then every
  `name=value`; see docs/tuning.md);
* to cloudml-hypertune's metric file, where Vertex AI's hyperparameter
  tuning reads the trial's metric (only the primary replica's file, so the
  chief writes the evaluator's results too): when CLOUD_ML_HP_METRIC_FILE is
  set, or Vertex AI says the replica is a trial (CLOUD_ML_TRIAL_ID, or a
  `trial` in CLUSTER_SPEC), at the library's default path. One JSON object
  per metric per evaluation, as `report_hyperparameter_tuning_metric` writes
  them (values as strings, `global_step`, `timestamp`, `trial`), the last
  100 kept; the file is rewritten whole through a temporary file.

`Reporter.stop()` reads once more, so the final evaluation, which the chief
waits for before it ends (trainer/training/job_end.py), is the last line.
A restarted chief does not print its earlier start's evaluations again as
if they were new: `start()` says in one plain line how many there are and
reports only the ones after them (the hypertune file, which a restart
begins anew, gets the earlier ones back).
"""

import collections
import datetime
import json
import os
import threading
import time
from typing import Callable, Dict, Mapping, Optional

from harness import files
from trainer.training import eval_events

METRIC_FILE_ENV = "CLOUD_ML_HP_METRIC_FILE"
TRIAL_ID_ENV = "CLOUD_ML_TRIAL_ID"
# cloudml-hypertune's (hypertune/hypertune.py, 0.1.0.dev6).
DEFAULT_METRIC_FILE = "/tmp/hypertune/output.metrics"
MAX_ENTRIES = 100
POLL_SECS = 5.0


def hypertune_target(environ: Mapping[str, str]):
  """(metric file, trial id) where Vertex AI's tuning reads this replica's
  metrics, or None where it does not."""
  trial = environ.get(TRIAL_ID_ENV, "")
  if not trial:
    try:
      spec = json.loads(environ.get("CLUSTER_SPEC", "") or "{}")
      trial = str((spec.get("task") or {}).get("trial") or "")
    except (ValueError, AttributeError):
      trial = ""
  path = environ.get(METRIC_FILE_ENV, "")
  if not path and not trial:
    return None
  return path or DEFAULT_METRIC_FILE, trial or "0"


def stdout_line(step: int, metrics: Mapping[str, float],
                now: Optional[float] = None) -> str:
  stamp = datetime.datetime.fromtimestamp(
      time.time() if now is None else now, datetime.timezone.utc)
  return "%s Evaluation at global_step=%d: %s" % (
      stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), step,
      " ".join("%s=%.6g" % (name, value)
               for name, value in sorted(metrics.items())))


class HypertuneFile:
  """cloudml-hypertune's metric file, written as the library writes it."""

  def __init__(self, path: str, trial: str):
    self.path = path
    self.trial = trial
    self._entries = collections.deque(maxlen=MAX_ENTRIES)

  def report(self, step: int, metrics: Mapping[str, float],
             now: Optional[float] = None) -> None:
    stamp = time.time() if now is None else now
    for name, value in sorted(metrics.items()):
      self._entries.append({"timestamp": stamp, "trial": str(self.trial),
                            name: str(float(value)),
                            "global_step": str(int(step)),
                            "checkpoint_path": ""})
    files.write_text(self.path, "".join(
        json.dumps(entry, sort_keys=True) + "\n" for entry in self._entries))


class Reporter:
  """Follows `eval_dir` on a thread and reports each new evaluation."""

  def __init__(self, eval_dir: str, *,
               print_line: Callable[[str], None] = print,
               hypertune: Optional[HypertuneFile] = None,
               poll_secs: float = POLL_SECS):
    self._eval_dir = eval_dir
    self._print = print_line
    self._hypertune = hypertune
    self._poll_secs = poll_secs
    self._reported = -1
    self._lock = threading.Lock()
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._follow, daemon=True,
                                    name="metric-report")

  def start(self) -> "Reporter":
    """Follows the evaluations made from now on: those already in the
    directory (an earlier start's) are not printed again."""
    earlier = eval_events.evaluations(self._eval_dir)
    if earlier:
      self._reported = earlier[-1][0]
      self._print("%d evaluation(s) of an earlier start of this job are in "
                  "%s (the latest after step %d); only new ones are shown." %
                  (len(earlier), self._eval_dir, self._reported))
      if self._hypertune:
        for step, metrics in earlier:
          self._hypertune.report(step, {k: v for k, v in metrics.items()
                                        if k != "global_step"})
    self._thread.start()
    return self

  def poll(self) -> int:
    """Reports the evaluations not yet reported; returns how many."""
    with self._lock:
      new = [(step, metrics) for step, metrics
             in eval_events.evaluations(self._eval_dir)
             if step > self._reported]
      for step, metrics in new:
        self._report(step, metrics)
        self._reported = step
      return len(new)

  def _report(self, step: int, metrics: Dict[str, float]) -> None:
    metrics = {k: v for k, v in metrics.items() if k != "global_step"}
    self._print(stdout_line(step, metrics))
    if self._hypertune:
      self._hypertune.report(step, metrics)

  def _follow(self) -> None:
    while not self._stop.wait(self._poll_secs):
      self.poll()

  def stop(self) -> None:
    """Stops following (within one poll) and reports what is left."""
    self._stop.set()
    if self._thread.is_alive():
      self._thread.join(timeout=self._poll_secs + 60)
    self.poll()


def _print_flushed(line: str) -> None:
  print(line, flush=True)


def for_task(model_dir: str, environ: Mapping[str, str], *,
             print_line: Callable[[str], None] = _print_flushed,
             poll_secs: float = POLL_SECS) -> Reporter:
  """The chief's reporter: stdout always, the hypertune file where Vertex AI
  tuning reads one (`environ`)."""
  target = hypertune_target(environ)
  return Reporter(os.path.join(model_dir, "eval"), print_line=print_line,
                  hypertune=HypertuneFile(*target) if target else None,
                  poll_secs=poll_secs)
