"""Runs the tasks of a cluster as child processes and watches over them.

* Every line a task prints reaches the terminal prefixed with its name
  (`[worker-1] ...`) and is kept in LOG_DIR/worker-1.log.
* Success: the chief exits 0, then the workers and the evaluator exit 0 by
  themselves (the evaluator after evaluating the final checkpoint); the ps tasks
  end by themselves once the chief's export exists (trainer.training.job_end),
  and any still serving then are stopped.
* A task that dies (exits non-zero, or a ps that exits at all) is
  restarted as its type's restart policy allows (cluster.launcher.restart: a
  kill or preemption is retried within a budget, an error is not), and the
  restart is announced. A death that is not to be retried stops the cluster at
  once; `TaskFailed` names the task, its exit code and the tail of its log. Past
  the deadline, `DeadlineExceeded`. Without policies, nothing is restarted.
* No child outlives the supervisor: each is stopped (SIGTERM, then SIGKILL
  after a grace period) on success, failure, Ctrl-C or an exception, and
  each is started with PR_SET_PDEATHSIG so the kernel kills it if the
  supervisor itself is killed. A ps serves through its grace period, so
  that a chief told to stop can write its checkpoint; once the chief it
  serves has exited (where the chief is one of these tasks), the ps has
  no one left to serve and is stopped at once.
"""

import collections
import ctypes
import dataclasses
import os
import signal
import subprocess
import threading
import time
from typing import Callable, Dict, List, Mapping, Optional, Sequence

from cluster.launcher import restart
from harness import errors
from harness import exit_codes
from harness import files
from harness import tf_config

TAIL_LINES = 25
STOP_GRACE_SECS = 5.0
# How long the ps may take to exit once the chief has (stop_all): enough
# to see the checkpoint the chief wrote last (a ps polls every 0.2 s).
PS_AFTER_CHIEF_SECS = 0.5
# How long a restart waits for the dead process's output to be read.
RESTART_DRAIN_SECS = 30.0
POLL_SECS = 0.05
# What a task prints when its gRPC server cannot bind its port.
PORT_CONFLICT_MARKERS = ("Could not start gRPC server",
                         "Address already in use",
                         "Failed to add port to server")
_PR_SET_PDEATHSIG = 1


# Loaded once, here: `die_with_parent` runs between fork and exec, where
# loading a library can deadlock on a lock another thread held at the fork
# (CPython's subprocess documentation on preexec_fn).
_LIBC = ctypes.CDLL("libc.so.6", use_errno=True)


def die_with_parent():
  """A child's preexec_fn: the kernel kills it (SIGKILL) when the launcher
  dies, however it dies. Runs in the child between fork and exec."""
  _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def describe_exit(code: int) -> str:
  if code < 0:
    try:
      name = signal.Signals(-code).name
    except ValueError:
      name = "signal %d" % -code
    return "was killed by %s (exit code %d)" % (name, 128 - code)
  if code == exit_codes.PEER_RESTARTED:
    return "exited with code %d (a peer task restarted)" % code
  return "exited with code %d" % code


class TaskFailed(errors.ClusterError):
  """A task died; names it, its exit code and the tail of its log."""

  def __init__(self, task: tf_config.Task, exit_code: int, log_path: str,
               tail: Sequence[str], reason: str = ""):
    self.task, self.exit_code = task, exit_code
    self.log_path, self.tail = log_path, list(tail)
    lines = ["%s %s%s; last lines of %s:" % (
        task.name, describe_exit(exit_code), reason, log_path)]
    lines += ["  " + line for line in self.tail]
    super().__init__("\n".join(lines))

  @property
  def port_conflict(self) -> bool:
    return any(marker in line for line in self.tail
               for marker in PORT_CONFLICT_MARKERS)


class DeadlineExceeded(errors.ClusterError):
  """The cluster did not finish within its deadline."""


@dataclasses.dataclass(frozen=True)
class Launch:
  """How to start one task: its command and environment."""
  task: tf_config.Task
  argv: Sequence[str]
  env: Mapping[str, str]


def print_line(line: str) -> None:
  """Prints and flushes, so each line shows at once, also in a pipe."""
  print(line, flush=True)


class Printer:
  """Writes lines from several threads without interleaving them."""

  def __init__(self, write: Callable[[str], None]):
    self._write = write
    self._lock = threading.Lock()

  def __call__(self, line: str) -> None:
    with self._lock:
      self._write(line)


class RunningTask:
  """One task's child process (restarted as needed), log and output."""

  def __init__(self, launch: Launch, log_dir: str, printer: Printer,
               hidden: Callable[[str], bool] = lambda line: False):
    self.task = launch.task
    self.launch = launch
    self.restarts = 0
    self.restart_times: List[float] = []  # The clock's, one per restart.
    self.log_path = os.path.join(log_dir, launch.task.name + ".log")
    self.pid_path = os.path.join(log_dir, launch.task.name + ".pid")
    self.tail = collections.deque(maxlen=TAIL_LINES)
    self._printer = printer
    self._hidden = hidden
    self._log = open(self.log_path, "a", buffering=1)
    self._reader = None
    self._start()

  def _start(self):
    self.process = subprocess.Popen(  # pylint: disable=subprocess-popen-preexec-fn
        list(self.launch.argv), env=dict(self.launch.env),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, errors="replace",
        start_new_session=True, preexec_fn=die_with_parent)
    # Whole or not at all: tests, chaos and benchmarks read it while the
    # supervisor restarts the task (an empty read was a flaky test).
    files.write_text(self.pid_path, "%d\n" % self.process.pid)
    self._reader = threading.Thread(target=self._read, daemon=True,
                                    name="output-" + self.task.name)
    self._reader.start()

  def restart(self, now: float) -> None:
    """Starts the task again, with the same command and environment, once
    the dead process's output is all in the log (so that the restart
    marker divides the two runs' lines; on a loaded machine the reader can
    be far behind), at most RESTART_DRAIN_SECS."""
    self._reader.join(timeout=RESTART_DRAIN_SECS)
    self.restarts += 1
    self.restart_times.append(now)
    self._log.write("--- restart %d ---\n" % self.restarts)
    self._start()

  def _read(self):
    prefix = "[%s] " % self.task.name
    for line in self.process.stdout:
      if self._log.closed:
        break
      line = line.rstrip("\n")
      self._log.write(line + "\n")
      self.tail.append(line)
      if not self._hidden(line):
        self._printer(prefix + line)

  def poll(self) -> Optional[int]:
    return self.process.poll()

  def terminate(self) -> None:
    """SIGTERM to the task's process group, if it still runs."""
    if self.process.poll() is None:
      _signal_group(self.process.pid, signal.SIGTERM)

  def stop(self, grace_secs: float = STOP_GRACE_SECS) -> None:
    """SIGTERM to the task's process group; SIGKILL after `grace_secs`."""
    self.terminate()
    self.wait_or_kill(grace_secs)

  def wait_or_kill(self, grace_secs: float) -> None:
    """Waits up to `grace_secs` for the task to exit, then SIGKILL to its
    process group (and to any stragglers either way); closes its log."""
    if self.process.poll() is None:
      try:
        self.process.wait(grace_secs)
      except subprocess.TimeoutExpired:
        _signal_group(self.process.pid, signal.SIGKILL)
        self.process.wait()
    _signal_group(self.process.pid, signal.SIGKILL)  # Any stragglers.
    self.close()

  def close(self) -> None:
    """Waits (briefly) for the last output, then closes the log."""
    self._reader.join(timeout=2.0)
    if not self._log.closed:
      self._log.close()

  def failure(self, reason: str = "") -> TaskFailed:
    self.close()
    return TaskFailed(self.task, self.process.returncode, self.log_path,
                      self.tail, reason)


def stop_all(tasks: Sequence[RunningTask],
             grace_secs: float = STOP_GRACE_SECS) -> None:
  """SIGTERM to every task at once, SIGKILL to those still running
  `grace_secs` later: stopping a cluster takes one grace period, not one
  per task. A ps told SIGTERM serves on until the chief's next checkpoint
  (trainer.training.preemption); where the chief is one of `tasks`, the
  ps go PS_AFTER_CHIEF_SECS after it has exited (a dead chief writes
  none: they would serve out the grace for nothing)."""
  for task in tasks:
    task.terminate()
  deadline = time.monotonic() + grace_secs
  ps_tasks = [t for t in tasks if t.task.type == tf_config.PS]
  others = [t for t in tasks if t not in ps_tasks]
  for task in others:
    task.wait_or_kill(max(0.0, deadline - time.monotonic()))
  if any(t.task.type == tf_config.CHIEF for t in others):
    deadline = min(deadline, time.monotonic() + PS_AFTER_CHIEF_SECS)
  for task in ps_tasks:
    task.wait_or_kill(max(0.0, deadline - time.monotonic()))


def _signal_group(pid: int, signum: int) -> None:
  try:
    os.killpg(pid, signum)
  except (ProcessLookupError, PermissionError):
    pass


def supervise(launches: Sequence[Launch], *, log_dir: str,
              deadline_secs: Optional[float],
              printer: Callable[[str], None] = print_line,
              clock: Callable[[], float] = time.monotonic,
              on_event: Optional[Callable[[str], None]] = None,
              stop_grace_secs: float = STOP_GRACE_SECS,
              policies: Optional[Mapping[str, restart.RestartPolicy]] = None,
              wait_for_ps: bool = False,
              hidden: Callable[[str], bool] = lambda line: False
              ) -> Dict[str, int]:
  """Runs the tasks until the cluster succeeds or fails.

  Args:
    launches: the tasks to run.
    log_dir: where TASK.log and TASK.pid (the current pid) are written.
    deadline_secs: the whole cluster's deadline; None: none (the user's
      choice: python -m cluster.local without --deadline_secs; or where
      something outside bounds it, a Slurm job's time limit).
    printer: receives every output line, prefixed with its task's name.
    clock: the clock the deadline is measured with.
    on_event: receives the supervisor's own messages (restarts, the end).
    stop_grace_secs: how long a task may take to exit after SIGTERM.
    policies: task type -> RestartPolicy; None: restart nothing.
    wait_for_ps: wait for the ps tasks to end by themselves too, instead of
      stopping them once every other task has finished (for one task of a
      job, whose other tasks run elsewhere: cluster/slurm_task.py).
    hidden: the lines kept out of `printer` (still in the logs and the
      tails; harness.tf_notices.Hidden: TF's start-up notices).

  Returns:
    Each task's name -> exit code (the ps tasks: the code of being stopped).

  Raises:
    TaskFailed: a task died and was not to be restarted; all others were
      stopped.
    DeadlineExceeded: past `deadline_secs`; all tasks were stopped.
  """
  os.makedirs(log_dir, exist_ok=True)
  on_event = on_event or (lambda message: None)
  printer = Printer(printer)
  start = clock()
  running: List[RunningTask] = []
  try:
    for launch in launches:
      running.append(RunningTask(launch, log_dir, printer, hidden))
    deadline = start + deadline_secs if deadline_secs is not None else None
    return _watch(running, deadline, deadline_secs, clock,
                  on_event, stop_grace_secs, policies, wait_for_ps)
  finally:
    stop_all(running, stop_grace_secs)


def _handle_exit(task: RunningTask, code: int, policies, on_event,
                 now: float) -> None:
  """Restarts a task that died, or raises TaskFailed naming it."""
  if policies is None:
    raise task.failure()
  policy = policies[task.task.type]
  recent = [t for t in task.restart_times if now - t < policy.window_secs]
  why_not = policy.why_not(code, len(recent))
  if why_not:
    raise task.failure("; not restarted: " + why_not)
  note = ("; it lost its variables, so the chief restores the latest "
          "checkpoint" if task.task.type == tf_config.PS else "")
  on_event("%s %s; restarting it (restart %d of at most %d in %g s)%s" % (
      task.task.name, describe_exit(code), len(recent) + 1,
      policy.max_restarts, policy.window_secs, note))
  task.restart(now)


def _watch(running, deadline, deadline_secs, clock, on_event,
           stop_grace_secs, policies, wait_for_ps):
  ps_tasks = [t for t in running
              if t.task.type == tf_config.PS and not wait_for_ps]
  finishers = [t for t in running if t not in ps_tasks]
  chief_done = False
  while True:
    exited = [t for t in finishers if t.poll() == 0]
    if not chief_done and any(t.task.type == tf_config.CHIEF for t in exited):
      chief_done = True  # Said once.
      on_event("chief finished")
    for task in running:
      code = task.poll()
      # A ps exits 0 only once the chief's final export exists (see
      # trainer.training.job_end): it is done, like a finished worker.
      if code is not None and code != 0:
        _handle_exit(task, code, policies, on_event, clock())
    if len(exited) == len(finishers):
      on_event("all tasks finished" + ("; stopping the ps tasks still "
                                       "serving" if ps_tasks else ""))
      codes = {t.task.name: t.poll() for t in finishers}
      # Every task, the finished ones too: stop_all then knows whether the
      # ps' chief has exited.
      stop_all(running, stop_grace_secs)
      for ps in ps_tasks:
        codes[ps.task.name] = ps.poll()
      return codes
    if deadline is not None and clock() > deadline:
      waiting = [t.task.name for t in finishers if t.poll() is None]
      raise DeadlineExceeded(
          "The cluster did not finish within %d s (--deadline_secs); still "
          "running: %s. Logs: %s" % (deadline_secs, ", ".join(waiting),
                                     os.path.dirname(running[0].log_path)))
    time.sleep(POLL_SECS)
