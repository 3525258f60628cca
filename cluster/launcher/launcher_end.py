"""What every launcher does around a run: its run directory's default name,
SIGTERM turned into an exception (so that `finally` stops every child, as
Ctrl-C does), and the summary of a finished job."""

import datetime
import os
import signal
from typing import List, Optional


class Terminated(Exception):
  """SIGTERM arrived; raised so that every child is stopped on the way out."""


def _raise_terminated(signum, frame):
  del signum, frame  # Unused.
  raise Terminated()


def raise_on_sigterm() -> None:
  """From now on SIGTERM raises Terminated in the main thread, and Ctrl-C
  (SIGINT) KeyboardInterrupt, even where the launcher was started with
  SIGINT ignored (a background job of a non-interactive shell inherits
  that, and Python then installs no handler of its own)."""
  signal.signal(signal.SIGTERM, _raise_terminated)
  signal.signal(signal.SIGINT, signal.default_int_handler)


def default_run_dir(kind: str) -> str:
  """runs/KIND-YYYYmmdd-HHMMSS, absolute: a new one per run."""
  return os.path.abspath(os.path.join("runs", "%s-%s" % (
      kind, datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))))


def finished_lines(job, log_dir: str, metrics: Optional[dict],
                   notes: List[str]) -> List[str]:
  """The final evaluation (`metrics`, trainer.plan.launch.last_evaluation), how
  the run ended besides (`notes`: an early stop, the best export), and where
  the model, export and logs are."""
  lines = []
  if metrics:
    metrics = dict(metrics)
    lines.append("Final evaluation (step %d): %s" % (
        metrics.pop("global_step"),
        ", ".join("%s %.4f" % kv for kv in sorted(metrics.items()))))
  lines += notes
  return lines + ["Model: %s" % job.model_dir,
                  "Export: %s" % job.resolved_export_dir,
                  "Logs: %s" % log_dir]
