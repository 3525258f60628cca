"""Preemption as a notice: a SIGTERM costs (almost) no steps.

Engines send SIGTERM some seconds before they kill a task: GCE about 30 s,
GKE's graceful node shutdown about 15 s, Slurm its GraceTime, the local
launcher's chaos runs at once. TF's PreemptionCheckpointHandler does not
support ParameterServerStrategy, and Estimator has none, so here:

* the chief (both backends), on SIGTERM, stops scheduling steps, writes a
  checkpoint of where it is, and exits EXIT_CODE (143, 128 + SIGTERM: what
  every engine's restart rule retries); its restart resumes from that
  checkpoint instead of the last periodic one. A second SIGTERM changes
  nothing. A SIGTERM after training (during the final export, or the wait
  for the final evaluation) lets the export finish: it is written to a
  staging directory and renamed, and a chief restarted after it ends the
  done job (trainer/training/job_end.py);
* a ps, on SIGTERM, keeps serving (the chief's save runs on it): it asks
  the chief for a checkpoint (a file under MODEL_DIR/REQUESTS), waits until
  a newer checkpoint exists or `grace_secs` pass, then dies of the SIGTERM
  (143, `die_of_the_signal`);
* workers and the evaluator keep Python's default: they exit at once (143),
  losing nothing but the steps in flight;
* an Estimator chief's workers train on their own, and its restart restores
  its checkpoint over what they did meanwhile: the chief leaves a note
  (AWAY) as it stops, the workers pause within a second of it, and the
  restarted chief removes it once its session has restored.

`Notice` is the signal handler (installed by the entry point, for the chief
and the ps only); `ChiefWatch` is what a chief's loop asks between steps;
`leave_after_checkpoint` is a ps's last wait.
"""

import json
import os
import select
import signal
import time
from typing import Callable, Optional, Set

import tensorflow as tf

from harness import files

EXIT_CODE = 128 + signal.SIGTERM
REQUESTS = "checkpoint-requests"
# The Estimator chief's note to its workers while it is away after a
# notice: they pause until its restart has restored the checkpoint.
AWAY = "chief-away"
AWAY_WAIT_SECS = 600.0
POLL_SECS = 1.0
DEFAULT_GRACE_SECS = 25


class Preempted(Exception):
  """A task that took its SIGTERM as notice and is done: exit EXIT_CODE."""


class Notice:
  """SIGTERM, noted instead of obeyed at once.

  The handler takes no lock. Python runs a signal handler in the main
  thread between two of its bytecodes, possibly while that thread holds a
  lock the handler would need: a `threading.Event.set()` there deadlocks
  when the signal lands inside the same Event's `wait()` (the ps waits so,
  trainer.training.job_end). So the handler sets a plain attribute and
  writes a byte to a pipe of its own, which is never drained: `wait`
  sleeps in `select` on it, and every waiter, in any thread, wakes at once
  and for good.
  """

  def __init__(self, clock: Callable[[], float] = time.monotonic):
    self._clock = clock
    self._received = False
    self.received_at: Optional[float] = None
    self._previous = None
    self._read, self._write = os.pipe()
    os.set_blocking(self._write, False)

  def install(self) -> "Notice":
    """Takes SIGTERM in this process (from the main thread only, as Python
    requires); `uninstall` gives it back."""
    self._previous = signal.signal(signal.SIGTERM, self._on_signal)
    return self

  def uninstall(self) -> None:
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
      self._previous = None

  def _on_signal(self, signum, frame):  # pylint: disable=unused-argument
    if not self._received:  # A second SIGTERM: already leaving.
      self.received_at = self._clock()
      self._received = True
      try:
        os.write(self._write, b"!")
      except OSError:  # Closed (the notice is being dropped): nobody waits.
        pass

  def receive(self) -> None:
    """As if SIGTERM came (tests; an engine's other notices)."""
    self._on_signal(signal.SIGTERM, None)

  @property
  def received(self) -> bool:
    return self._received

  def wait(self, seconds: float) -> bool:
    """Sleeps up to `seconds`, waking at once on SIGTERM; whether it came."""
    if not self._received:
      select.select([self._read], [], [], max(seconds, 0.0))
    return self._received

  def __del__(self):
    for fd in (getattr(self, "_read", None), getattr(self, "_write", None)):
      if fd is not None:
        try:
          os.close(fd)
        except OSError:
          pass


def _requests_dir(model_dir: str) -> str:
  return os.path.join(model_dir, REQUESTS)


def request_checkpoint(model_dir: str, task_name: str) -> None:
  """A preempted ps asks the chief for a checkpoint."""
  tf.io.gfile.makedirs(_requests_dir(model_dir))
  files.write_text(os.path.join(_requests_dir(model_dir), task_name),
                   json.dumps({"task": task_name, "time": time.time()}),
                   tf.io.gfile)


def requests(model_dir: str) -> Set[str]:
  """The tasks waiting for a checkpoint."""
  if not tf.io.gfile.exists(_requests_dir(model_dir)):
    return set()
  return {name for name in tf.io.gfile.listdir(_requests_dir(model_dir))
          if ".tmp-" not in name}  # Not harness.files's partial ones.


def clear_requests(model_dir: str, names: Set[str]) -> None:
  for name in names:
    path = os.path.join(_requests_dir(model_dir), name)
    if tf.io.gfile.exists(path):
      tf.io.gfile.remove(path)


def _away_path(model_dir: str) -> str:
  return os.path.join(model_dir, REQUESTS, AWAY)


def mark_chief_away(model_dir: str, step: int) -> None:
  """The Estimator chief, leaving on a notice: its workers pause (their
  steps would be undone by its restart's restore)."""
  tf.io.gfile.makedirs(os.path.join(model_dir, REQUESTS))
  files.write_text(_away_path(model_dir), json.dumps({"step": step}),
                   tf.io.gfile)


def clear_chief_away(model_dir: str) -> None:
  """The chief is back and has restored: the workers go on."""
  if tf.io.gfile.exists(_away_path(model_dir)):
    tf.io.gfile.remove(_away_path(model_dir))


def chief_away(model_dir: str) -> bool:
  return tf.io.gfile.exists(_away_path(model_dir))


def wait_while_chief_away(model_dir: str, log: Callable[[str], None],
                          clock: Callable[[], float] = time.monotonic,
                          sleep: Callable[[float], None] = time.sleep,
                          timeout_secs: float = AWAY_WAIT_SECS) -> float:
  """An Estimator worker's pause while its chief is away; returns the
  seconds paused (at most `timeout_secs`: a chief that never comes back
  fails the job in its own way)."""
  started = clock()
  log("The chief left on a preemption notice: pausing until it is back "
      "(at most %d s), so that its restore undoes no step of ours." %
      timeout_secs)
  while chief_away(model_dir) and clock() - started < timeout_secs:
    sleep(POLL_SECS)
  return clock() - started


class ChiefWatch:
  """What the chief's loop asks after each step: whether to stop (its own
  SIGTERM), and whether a preempted ps wants a checkpoint now (looked for at
  most every `poll_secs`)."""

  def __init__(self, notice: Optional[Notice], model_dir: str,
               log: Callable[[str], None],
               clock: Callable[[], float] = time.monotonic,
               poll_secs: float = POLL_SECS):
    self._notice, self._model_dir, self._log = notice, model_dir, log
    self._clock, self._poll_secs = clock, poll_secs
    self._next_look = clock()
    self._said = False
    self._wanted: Set[str] = set()

  def stop_now(self, step: int) -> bool:
    if not (self._notice and self._notice.received):
      return False
    if not self._said:
      self._said = True
      self._log("SIGTERM (a preemption notice) at step %d: stopping, "
                "writing a checkpoint, then exiting %d for a restart." % (
                    step, EXIT_CODE))
    return True

  def leaving(self, step: int) -> None:
    """The Estimator chief's workers train on their own: they pause while
    it is away."""
    mark_chief_away(self._model_dir, step)

  @property
  def preempted(self) -> bool:
    return bool(self._notice and self._notice.received)

  def checkpoint_wanted(self) -> bool:
    now = self._clock()
    if now < self._next_look:
      return False
    self._next_look = now + self._poll_secs
    self._wanted = requests(self._model_dir)
    return bool(self._wanted)

  def checkpoint_written(self, step: int) -> None:
    """After the checkpoint a ps asked for: its request is answered."""
    self._log("Checkpoint at step %d for %s (preempted)." % (
        step, ", ".join(sorted(self._wanted))))
    clear_requests(self._model_dir, self._wanted)
    self._wanted = set()


def die_of_the_signal(notice: Notice) -> None:
  """A ps ends as a killed process does, once it has served its grace: of
  the SIGTERM itself, Python's default handler given back. TF's server has
  no clean shutdown, and the chief recovers from a ps that vanishes (its
  session sees the connection go); a ps that ended its Python process
  normally left the chief's final step blocked in a chaos run (Estimator,
  TF 2.15: "The same RunGraph (Worker) request was received twice")."""
  notice.uninstall()
  signal.signal(signal.SIGTERM, signal.SIG_DFL)
  os.kill(os.getpid(), signal.SIGTERM)
  time.sleep(5)  # The signal is delivered at once; this is not reached.


def leave_after_checkpoint(model_dir: str, task_name: str, grace_secs: float,
                           log: Callable[[str], None],
                           clock: Callable[[], float] = time.monotonic,
                           sleep: Callable[[float], None] = time.sleep,
                           poll_secs: float = 0.2) -> None:
  """A ps's last wait after SIGTERM: asks for a checkpoint, serves until a
  newer one than now exists or `grace_secs` pass; then raises Preempted."""
  before = tf.train.latest_checkpoint(model_dir)
  request_checkpoint(model_dir, task_name)
  log("SIGTERM (a preemption notice): serving until the chief writes a "
      "checkpoint (at most %d s: --preemption_grace_secs)." % grace_secs)
  deadline = clock() + grace_secs
  while clock() < deadline:
    latest = tf.train.latest_checkpoint(model_dir)
    if latest and latest != before:
      raise Preempted("%s: the chief wrote %s; exiting %d for a restart." % (
          task_name, os.path.basename(latest), EXIT_CODE))
    sleep(poll_secs)
  raise Preempted("%s: no new checkpoint within %d s of SIGTERM; exiting %d "
                  "for a restart." % (task_name, grace_secs, EXIT_CODE))
