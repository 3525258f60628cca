"""Chaos on a live local cluster: a seeded schedule of kills, and the record.

`ChaosRun` starts `python -m cluster.local` (chief, 2 workers, 2 ps, an
evaluator, unisolated so its ports can be checked), then kills a random task
(SIGKILL, or SIGTERM as a preemption notice) every few seconds, from a seeded
`random.Random`, until at least `min_kills` kills have hit every role, the chief
and a ps at least twice each. While it runs it records the latest checkpoint's
step over time; afterwards `progress()` reads every training task's progress
lines, and `verify` checks what a finished run promises (the job finished,
nothing lost, nothing left behind: cluster.launcher.leftovers).
tests/test_chaos.py asserts on it; scripts/chaos.py runs it many times for
docs/faults.md's figures.

CHAOS_SEED=N in the environment replays a schedule.
"""

import dataclasses
import datetime
import glob
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

import tensorflow as tf

from cluster.launcher import leftovers
from trainer.training import eval_events
from trainer.training import warm_start

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED_ENV = "CHAOS_SEED"
TASKS = ("chief-0", "worker-0", "worker-1", "ps-0", "ps-1", "evaluator-0")
_LINE = re.compile(r"^[IWEF](\d\d)(\d\d) (\d\d):(\d\d):(\d\d\.\d+) .*?\] "
                   r"step (\d+)/\d+ ")


def seed_from_environment() -> int:
  seed = int(os.environ.get(SEED_ENV) or random.randrange(10**6))
  print("chaos seed: %d (replay with %s=%d)" % (seed, SEED_ENV, seed),
        flush=True)
  return seed


# Kills each role must get in a run.
NEEDED = {"chief": 2, "ps": 2, "worker": 1, "evaluator": 1}


@dataclasses.dataclass
class Kill:
  task: str
  signal: int
  at: float  # time.time()
  pid: int
  replaced_at: Optional[float] = None  # When its restart's pid appeared.


class ChaosRun:
  """One chaos run of the demo on a local cluster."""

  def __init__(self, cwd: str, seed: int, *, signum=signal.SIGKILL,
               train_steps: int = 15000, min_kills: int = 10,
               interval: Tuple[float, float] = (3.0, 6.0),
               extra_cluster_args=(), extra_trainer_args=(),
               deadline_secs: int = 600):
    self.cwd, self.seed, self.signum = str(cwd), seed, signum
    self.run_dir = os.path.join(self.cwd, "run")
    self.model_dir = os.path.join(self.run_dir, "model")
    self.train_steps, self.min_kills = train_steps, min_kills
    self.interval = interval
    self.random = random.Random(seed)
    self.kills: List[Kill] = []
    self.checkpoints: List[Tuple[float, int]] = []  # (time, latest step)
    self.output_path = os.path.join(self.cwd, "launcher.out")
    command = [
        sys.executable, "-m", "cluster.local", "--run_dir=" + self.run_dir,
        "--num_workers=2", "--num_ps=2", "--evaluator", "--noisolate",
        "--deadline_secs=%d" % deadline_secs, "--max_restarts=20",
        *extra_cluster_args, "--",
        "--train_steps=%d" % train_steps, "--save_checkpoints_steps=500",
        "--log_every_steps=100", "--eval_throttle_secs=2",
        *extra_trainer_args]
    self._output = open(self.output_path, "w")
    self.process = subprocess.Popen(
        command, cwd=self.cwd, stdout=self._output, stderr=subprocess.STDOUT,
        env=dict(os.environ, PYTHONPATH=REPO))

  # What the run has written so far.

  def pid(self, task: str) -> Optional[int]:
    try:
      with open(os.path.join(self.run_dir, "logs", task + ".pid")) as f:
        return int(f.read())
    except (OSError, ValueError):
      return None

  def latest_checkpoint_step(self) -> Optional[int]:
    latest = tf.train.latest_checkpoint(self.model_dir)
    return int(latest.rsplit("-", 1)[1]) if latest else None

  def _record_checkpoint(self):
    step = self.latest_checkpoint_step()
    if step is not None and (not self.checkpoints or
                             self.checkpoints[-1][1] != step):
      self.checkpoints.append((time.time(), step))

  def training_started(self) -> bool:
    return self.latest_checkpoint_step() not in (None, 0)

  def hits(self) -> Dict[str, int]:
    """Kills by role."""
    found = {}
    for kill in self.kills:
      role = kill.task.split("-")[0]
      found[role] = found.get(role, 0) + 1
    return found

  def owed(self) -> Dict[str, int]:
    hits = self.hits()
    return {role: n - hits.get(role, 0) for role, n in NEEDED.items()
            if hits.get(role, 0) < n}

  def coverage_met(self) -> bool:
    return len(self.kills) >= self.min_kills and not self.owed()

  def _next_task(self) -> str:
    """Random; but once the kills left are only enough for the roles still
    owed theirs, one of those."""
    owed = self.owed()
    if owed and self.min_kills - len(self.kills) <= sum(owed.values()):
      role = self.random.choice(sorted(owed))
      return self.random.choice([t for t in TASKS if t.startswith(role)])
    return self.random.choice(TASKS)

  # The run.

  def _record_replacements(self):
    for kill in self.kills:
      if kill.replaced_at is None and self.pid(kill.task) not in (kill.pid,
                                                                 None):
        kill.replaced_at = time.time()

  def _wait(self, seconds: float):
    """Sleeps `seconds` (the schedule's pause), recording checkpoints and
    restarted tasks."""
    end = time.monotonic() + seconds
    while time.monotonic() < end and self.process.poll() is None:
      self._record_checkpoint()
      self._record_replacements()
      time.sleep(0.1)  # The schedule's own clock, not a readiness guess.

  def run(self, start_timeout: float = 240.0) -> int:
    deadline = time.monotonic() + start_timeout
    while not self.training_started():
      if self.process.poll() is not None or time.monotonic() > deadline:
        raise RuntimeError("the cluster did not start training:\n" +
                           self.output()[-3000:])
      self._wait(0.2)
    while not self.coverage_met() and self.process.poll() is None:
      self._wait(self.random.uniform(*self.interval))
      task = self._next_task()
      pid = self.pid(task)
      if (pid is None or self.process.poll() is not None or
          pid in {kill.pid for kill in self.kills}):
        continue  # Not up, or already signalled (a ps in its grace).
      try:
        os.kill(pid, self.signum)
      except ProcessLookupError:
        continue  # Between a death and its restart.
      self.kills.append(Kill(task, self.signum, time.time(), pid))
    while self.process.poll() is None:
      self._wait(0.5)
    self._output.close()
    return self.process.returncode

  def stop(self):
    if self.process.poll() is None:
      self.process.kill()
      self.process.wait()
    if not self._output.closed:
      self._output.close()

  # The record.

  def output(self) -> str:
    with open(self.output_path) as f:
      return f.read()

  def task_log(self, task: str) -> str:
    path = os.path.join(self.run_dir, "logs", task + ".log")
    with open(path, errors="replace") as f:
      return f.read()

  def progress(self) -> List[Tuple[float, int, str]]:
    """(time, global step, task) of every progress line of the chief and
    the workers, by time."""
    year = datetime.date.today().year
    found = []
    for task in ("chief-0", "worker-0", "worker-1"):
      for line in self.task_log(task).splitlines():
        match = _LINE.match(line)
        if match:
          month, day, hour, minute, second, step = match.groups()
          when = datetime.datetime(year, int(month), int(day), int(hour),
                                   int(minute)).timestamp() + float(second)
          found.append((when, int(step), task))
    return sorted(found)

  def checkpoint_at(self, when: float) -> int:
    """The latest checkpoint's step seen at `when` (0 before any)."""
    steps = [step for seen, step in self.checkpoints if seen <= when]
    return steps[-1] if steps else 0

  def longest_pauses(self) -> Dict[str, float]:
    """By role: the longest time after a kill of that role until global
    step progress was logged again."""
    lines = self.progress()
    pauses = {}
    for kill in self.kills:
      after = [when for when, _, _ in lines if when > kill.at]
      if after:
        role = kill.task.split("-")[0]
        pauses[role] = max(pauses.get(role, 0.0), after[0] - kill.at)
    return pauses

  def steps_lost(self, noise: int = 200) -> Dict[str, int]:
    """By role, the chief's and the ps's: the most global steps one kill of
    that role sent the global step back (a restore from a checkpoint older
    than where training was). Only they can: a worker or the evaluator
    loses its steps in flight at most. Each fall of the logged step below
    the highest so far, by more than `noise` (tasks' lines interleave), is
    put down to the latest chief or ps kill before it."""
    lost = {"chief": 0, "ps": 0}
    restorers = [k for k in self.kills if k.task.split("-")[0] in lost]
    highest = None
    for when, step, _ in self.progress():
      if highest is not None and step < highest - noise:
        before = [k for k in restorers if k.at < when]
        if before:
          role = before[-1].task.split("-")[0]
          lost[role] = max(lost[role], highest - step)
        highest = step  # Training goes on from the restored step.
      highest = step if highest is None else max(highest, step)
    return lost

  def checkpoint_paths(self) -> List[str]:
    return sorted(glob.glob(os.path.join(self.model_dir, "*.index")))


def went_back(progress, checkpoint_at) -> List[Tuple[float, int, str]]:
  """The progress lines (time, step, task) that show a task training below
  the latest checkpoint seen a second before, where its next line does
  too: a restore from an older checkpoint trains on from there. A single
  line below it, followed at once by one above, is a step that began long
  before it ended (a CI run's chief logged step 944 after 11 s stalled,
  then 1483 80 ms later, with checkpoint 1337 written by then); it lost
  nothing."""
  by_task: Dict[str, List[Tuple[float, int]]] = {}
  for when, step, task in progress:
    by_task.setdefault(task, []).append((when, step))
  behind = []
  for task, lines in by_task.items():
    low = [step < checkpoint_at(when - 1.0) for when, step in lines]
    behind += [(when, step, task)
               for i, (when, step) in enumerate(lines)
               if low[i] and i + 1 < len(lines) and low[i + 1]]
  return sorted(behind)


class ChaosFailure(AssertionError):
  """A chaos run broke one of its promises; the message says which, with
  the seed."""


def _ports(output: str):
  cluster = json.loads(re.search(r"^Cluster: (\{.*\})", output,
                                 re.M).group(1).split(" + ")[0])
  return {int(a.rsplit(":", 1)[1]) for addresses in cluster.values()
          for a in addresses}


def _require(condition, run, what, detail=""):
  if not condition:
    raise ChaosFailure("seed %d: %s %s" % (run.seed, what, detail))


def verify(run: ChaosRun, code: int) -> Dict[str, object]:
  """Checks what a finished chaos run promises; returns its figures.

  Raises ChaosFailure naming the seed and the broken promise.
  """
  output = run.output()
  _require(code == 0, run, "the launcher exited %s:" % code,
           "\n" + output[-4000:])
  # The schedule did its part.
  _require(len(run.kills) >= run.min_kills and not run.owed(), run,
           "the schedule fell short (the job ended first: give it more "
           "train steps):", run.hits())
  # The job finished: every step, an evaluation of the last checkpoint, an
  # export, loadable checkpoints.
  final = warm_start.global_step(run.model_dir)
  _require(final >= run.train_steps, run, "the final step is", final)
  evaluated = eval_events.last(os.path.join(run.model_dir, "eval"))
  _require(evaluated and evaluated["global_step"] == final, run,
           "the last evaluation is not of the final checkpoint:", evaluated)
  state = tf.train.get_checkpoint_state(run.model_dir)
  for path in state.all_model_checkpoint_paths:
    # Loads, and holds at least the step its name says: the first is of
    # step 0, and workers step on while the chief saves.
    step = warm_start.global_step(path)
    _require(step >= int(path.rsplit("-", 1)[1]), run,
             "a listed checkpoint holds step %d:" % step, path)
  exported = tf.saved_model.load(os.path.join(run.model_dir, "export"))
  _require("serving_default" in exported.signatures, run,
           "the export has no serving signature")
  # The global step never went back past the latest checkpoint (a second of
  # slack for when the run saw the checkpoint appear).
  behind = went_back(run.progress(), run.checkpoint_at)
  _require(not behind, run, "the global step went back past a checkpoint:",
           (behind[:5], run.checkpoints))
  # Every kill was a restart, and nothing is left of the cluster.
  for kill in run.kills:
    _require(kill.replaced_at is not None or run.pid(kill.task) != kill.pid,
             run, "a killed task was not restarted:", kill)
  _require(not leftovers.pids_mentioning(run.run_dir), run,
           "processes are left:", leftovers.pids_mentioning(run.run_dir))
  holders = leftovers.socket_holders(_ports(output))
  left = [cmd for cmd in holders.values() if run.run_dir in cmd]
  _require(not left, run, "ports are still held:", left)
  return {"seed": run.seed, "kills": len(run.kills), "hits": run.hits(),
          "longest_pauses": run.longest_pauses(),
          "steps_lost": run.steps_lost(), "final_step": final}


def describe(figures: Dict[str, object]) -> str:
  return ("seed %d: %d kills %s; longest pause by role %s; most steps lost "
          "to a kill by role %s; final step %d" % (
              figures["seed"], figures["kills"], figures["hits"],
              {role: round(pause, 1) for role, pause in
               sorted(figures["longest_pauses"].items())},
              dict(sorted(figures["steps_lost"].items())),
              figures["final_step"]))
