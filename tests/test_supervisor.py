"""cluster.launcher.supervisor, with small Python processes standing in for
tasks."""

import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

from cluster.launcher import leftovers
from cluster.launcher import restart
from cluster.launcher import supervisor
from harness import tf_config
from harness import tf_notices
from tests import processes

FOREVER = "import signal; signal.pause()"
IGNORE_TERM = ("import signal, time\n"
               "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
               "while True: time.sleep(1)")


def _task_code(pid_dir, name, body):
  # The pid file is written whole (renamed into place): tests read it while
  # the task runs.
  return textwrap.dedent("""
      import os, sys
      _pid = os.path.join(%r, %r + ".pid")
      open(_pid + ".tmp", "w").write(str(os.getpid()))
      os.rename(_pid + ".tmp", _pid)
      """ % (str(pid_dir), name)) + body


def _launches(tmp_path, bodies):
  """bodies: task name ('worker-0') -> Python code run as that task."""
  result = []
  for name, body in bodies.items():
    kind, index = name.rsplit("-", 1)
    result.append(supervisor.Launch(
        tf_config.Task(kind, int(index)),
        [sys.executable, "-c", _task_code(tmp_path, name, body)],
        dict(os.environ)))
  return result


def _supervise(tmp_path, bodies, deadline_secs=60, **kwargs):
  lines = []
  try:
    return lines, supervisor.supervise(
        _launches(tmp_path, bodies), log_dir=str(tmp_path / "logs"),
        deadline_secs=deadline_secs, printer=lines.append,
        stop_grace_secs=kwargs.pop("stop_grace_secs", 2.0), **kwargs)
  finally:
    for name, pid in processes.read_pids(tmp_path).items():
      assert not leftovers.alive(pid), "%s (pid %d) outlived" % (name, pid)


def test_success_stops_ps_after_everyone_else(tmp_path):
  lines, codes = _supervise(tmp_path, {
      "ps-0": "print('serving'); sys.stdout.flush()\n" + FOREVER,
      "chief-0": "print('chief line 1'); print('chief done')",
      "worker-0": "print('worker done')",
      "evaluator-0": "print('final eval')",
  })
  assert codes == {"chief-0": 0, "worker-0": 0, "evaluator-0": 0,
                   "ps-0": -signal.SIGTERM}
  assert "[chief-0] chief line 1" in lines and "[ps-0] serving" in lines
  with open(tmp_path / "logs" / "chief-0.log") as f:
    assert f.read() == "chief line 1\nchief done\n"


def test_a_ps_that_ends_by_itself_is_done(tmp_path):
  """trainer.training.job_end: a ps exits 0 once the chief's export exists,
  maybe a moment before the chief has exited; the others finish as usual."""
  exported = os.path.join(str(tmp_path), "export")
  ps = ("import time\ndeadline = time.monotonic() + 60\n"
        "while not os.path.exists(%r) and time.monotonic() < deadline:\n"
        "    time.sleep(0.01)\n" % exported)
  chief = ("import time\nopen(%r, 'w').close()\ntime.sleep(0.5)\n"
           "print('exported')" % exported)
  lines, codes = _supervise(tmp_path, {"ps-0": ps, "chief-0": chief,
                                       "worker-0": "pass",
                                       "ps-1": FOREVER})
  assert codes == {"chief-0": 0, "worker-0": 0, "ps-0": 0,
                   "ps-1": -signal.SIGTERM}
  assert "[chief-0] exported" in lines


def test_dead_worker_stops_the_cluster_and_is_named(tmp_path):
  with pytest.raises(supervisor.TaskFailed) as failed:
    _supervise(tmp_path, {"ps-0": FOREVER, "chief-0": FOREVER,
                          "worker-0": "print('boom'); sys.exit(3)"})
  message = str(failed.value)
  assert message.startswith("worker-0 exited with code 3; last lines of ")
  assert message.endswith("worker-0.log:\n  boom")
  assert failed.value.exit_code == 3 and not failed.value.port_conflict


def test_signal_death_is_reported_with_its_signal(tmp_path):
  with pytest.raises(supervisor.TaskFailed,
                     match="chief-0 was killed by SIGKILL .exit code 137."):
    _supervise(tmp_path, {"ps-0": FOREVER, "chief-0":
                          "import os, signal; os.kill(os.getpid(), 9)"})


def test_port_conflict_is_recognised(tmp_path):
  with pytest.raises(supervisor.TaskFailed) as failed:
    _supervise(tmp_path, {"ps-0": "print('UNKNOWN: Could not start gRPC "
                                  "server'); sys.exit(1)",
                          "chief-0": FOREVER})
  assert failed.value.port_conflict


@pytest.mark.slow
def test_deadline_stops_everything_even_tasks_ignoring_sigterm(tmp_path):
  with pytest.raises(supervisor.DeadlineExceeded,
                     match="did not finish within 1 s.*still running: "
                     "chief-0"):
    _supervise(tmp_path, {"ps-0": FOREVER, "chief-0": IGNORE_TERM},
               deadline_secs=1, stop_grace_secs=0.5)


@pytest.mark.slow
def test_tasks_are_stopped_together_not_one_grace_period_each(tmp_path):
  """Three tasks that ignore SIGTERM: each is sent it at once (they write
  when they are first told), and all are killed one grace period later, not
  three."""
  def noting(name):
    return ("import signal, time\n"
            "def note(*_):\n"
            "  path = os.path.join(%r, %r + '.term')\n"
            "  if not os.path.exists(path):\n"
            "    open(path + '.tmp', 'w').write(repr(time.time()))\n"
            "    os.rename(path + '.tmp', path)\n"
            "signal.signal(signal.SIGTERM, note)\n"
            "while True: time.sleep(0.05)" % (str(tmp_path), name))
  grace = 3.0
  with pytest.raises(supervisor.DeadlineExceeded):
    _supervise(tmp_path, {"chief-0": noting("chief-0"),
                          "worker-0": noting("worker-0"),
                          "ps-0": noting("ps-0")},
               deadline_secs=3, stop_grace_secs=grace)
  told = []
  for name in ("chief-0", "worker-0", "ps-0"):
    with open(tmp_path / (name + ".term")) as f:
      told.append(float(f.read()))
  # One at a time, each SIGTERM would come a grace period after the last.
  assert max(told) - min(told) < grace, told


def test_children_die_with_a_killed_supervisor(tmp_path):
  """SIGKILL of the supervisor itself: the kernel kills its children."""
  script = textwrap.dedent("""
      import os, sys
      sys.path.insert(0, %r)
      from cluster.launcher import supervisor
      from tests import test_supervisor as t
      import pathlib
      supervisor.supervise(t._launches(pathlib.Path(%r), {
          "ps-0": t.FOREVER, "chief-0": t.FOREVER}),
          log_dir=%r, deadline_secs=120)
      """ % (os.getcwd(), str(tmp_path), str(tmp_path / "logs")))
  parent = subprocess.Popen([sys.executable, "-c", script])
  try:
    assert processes.wait_until(
        lambda: len(processes.read_pids(tmp_path)) == 2, 30)
    pids = processes.read_pids(tmp_path)
    assert all(leftovers.alive(pid) for pid in pids.values())
    parent.kill()
    parent.wait()
    assert processes.wait_until(
        lambda: not any(leftovers.alive(p) for p in pids.values()), 10)
  finally:
    parent.kill()
    for pid in processes.read_pids(tmp_path).values():
      if leftovers.alive(pid):
        os.kill(pid, signal.SIGKILL)


KILL_SELF_FIRST_TIME = """
marker = os.path.join(%r, "died-once")
if not os.path.exists(marker):
    open(marker, "w").close()
    os.kill(os.getpid(), 9)
print("second life")
"""


def test_killed_worker_is_restarted_and_the_cluster_finishes(tmp_path):
  events = []
  policies = restart.parse_policies(["exit_code"], max_restarts=3)
  lines, codes = _supervise(
      tmp_path, {"ps-0": FOREVER, "chief-0": "print('done')",
                 "worker-0": KILL_SELF_FIRST_TIME % str(tmp_path)},
      policies=policies, on_event=events.append)
  assert codes["worker-0"] == 0
  assert ("worker-0 was killed by SIGKILL (exit code 137); restarting it "
          "(restart 1 of at most 3 in 600 s)") in events
  assert "[worker-0] second life" in lines
  with open(tmp_path / "logs" / "worker-0.log") as f:
    assert f.read() == "--- restart 1 ---\nsecond life\n"


def test_killed_ps_restart_is_attributed_to_the_ps(tmp_path):
  events = []
  second_life = os.path.join(str(tmp_path), "ps-second-life")
  ps = (KILL_SELF_FIRST_TIME % str(tmp_path) +
        "open(%r, 'w').close()\n" % second_life + FOREVER)
  # The chief finishes once the restarted ps is up (polled, with a deadline).
  chief = ("import time\ndeadline = time.monotonic() + 60\n"
           "while not os.path.exists(%r) and time.monotonic() < deadline:\n"
           "    time.sleep(0.05)\n" % second_life)
  _supervise(tmp_path, {"ps-0": ps, "chief-0": chief},
             policies=restart.parse_policies([], 3), on_event=events.append)
  assert any(e.startswith("ps-0 was killed by SIGKILL (exit code 137); "
                          "restarting it") and "restores the latest "
             "checkpoint" in e for e in events), events


def test_error_exit_is_not_retried_under_exit_code_policy(tmp_path):
  with pytest.raises(supervisor.TaskFailed,
                     match="worker-0 exited with code 1; not restarted: exit "
                     "code 1 means an error in the code or configuration"):
    _supervise(tmp_path, {"ps-0": FOREVER, "chief-0": FOREVER,
                          "worker-0": "sys.exit(1)"},
               policies=restart.parse_policies(["exit_code"], 3))


def test_task_that_keeps_dying_exhausts_its_budget(tmp_path):
  with pytest.raises(supervisor.TaskFailed,
                     match="chief-0 was killed by SIGKILL .exit code 137.; "
                     "not restarted: restart budget of 2 in 600 s "
                     "exhausted") as e:
    _supervise(tmp_path, {"ps-0": FOREVER, "chief-0":
                          "import os; os.kill(os.getpid(), 9)"},
               policies=restart.parse_policies(["on_failure"], 2))
  with open(e.value.log_path) as f:
    assert f.read().count("--- restart") == 2


LIVES = """
import time
lives = os.path.join(%r, "lives")
count = len(open(lives).read()) if os.path.exists(lives) else 0
open(lives, "a").write("x")
if count < %d:
    time.sleep(%g)  # This stand-in's lifetime, then it is killed.
    os.kill(os.getpid(), 9)
print("done after %%d deaths" %% count)
"""
DEATHS = 10


def test_the_pid_file_is_whole_and_names_the_running_task(tmp_path):
  """Tests, chaos and benchmarks read logs/NAME.pid while the supervisor
  restarts the task: every read finds a whole pid (CI once read an empty
  file), and the last one is the task's own process."""
  path = tmp_path / "logs" / "chief-0.pid"
  reads, done = [], threading.Event()

  def poll():
    while not done.is_set():
      try:
        reads.append(path.read_text())
      except FileNotFoundError:
        pass
  reader = threading.Thread(target=poll, daemon=True)
  reader.start()
  try:
    _, codes = _supervise(
        tmp_path, {"ps-0": FOREVER,
                   "chief-0": LIVES % (str(tmp_path), DEATHS, 0.0)},
        policies=restart.parse_policies(["exit_code"], DEATHS))
  finally:
    done.set()
    reader.join()
  assert codes["chief-0"] == 0
  bad = [r for r in reads if not r.strip().isdigit()]
  assert not bad, "%d of %d reads were not a pid: %r" % (
      len(bad), len(reads), bad[:3])
  assert int(path.read_text()) == processes.read_pids(tmp_path)["chief-0"]


@pytest.mark.slow
def test_deaths_far_apart_never_add_up_to_the_budget(tmp_path):
  """One restart allowed per 0.5 s: a task killed three times, 1 s apart,
  is restarted every time."""
  events = []
  policies = restart.parse_policies(["exit_code"], max_restarts=1,
                                    window_secs=0.5)
  lines, codes = _supervise(
      tmp_path, {"ps-0": FOREVER,
                 "chief-0": LIVES % (str(tmp_path), 3, 1.0)},
      policies=policies, on_event=events.append)
  assert codes["chief-0"] == 0
  assert "[chief-0] done after 3 deaths" in lines
  assert sum("restarting it (restart 1 of at most 1 in 0.5 s)" in e
             for e in events) == 3, events


def test_a_restart_storm_stops_the_cluster_by_name(tmp_path):
  """The same budget, but the task dies at once, again and again."""
  policies = restart.parse_policies(["exit_code"], max_restarts=1,
                                    window_secs=60)
  with pytest.raises(supervisor.TaskFailed,
                     match="chief-0 was killed by SIGKILL .exit code 137.; "
                     "not restarted: restart budget of 1 in 60 s exhausted"):
    _supervise(tmp_path, {"ps-0": FOREVER,
                          "chief-0": LIVES % (str(tmp_path), 9, 0.0)},
               policies=policies)


def test_a_peer_restart_exit_is_named_and_retried(tmp_path):
  events = []
  policies = restart.parse_policies([], max_restarts=3)
  _supervise(tmp_path, {"ps-0": FOREVER, "chief-0": (
      "marker = os.path.join(%r, 'once')\n"
      "if not os.path.exists(marker):\n"
      "    open(marker, 'w').close()\n"
      "    sys.exit(200)\n" % str(tmp_path))},
             policies=policies, on_event=events.append)
  assert ("chief-0 exited with code 200 (a peer task restarted); restarting "
          "it (restart 1 of at most 3 in 600 s)") in events


def test_hidden_lines_are_kept_in_the_log_not_shown(tmp_path):
  """TF's start-up notices (harness.tf_notices) stay out of the terminal,
  said once, and in the task's log."""
  notice = ("I0000 00:00:1796551547.272750   27411 cudart_stub.cc:31] Could "
            "not find cuda drivers on your machine, GPU will not be used.")
  said = []
  lines, codes = _supervise(tmp_path, {
      "chief-0": "print(%r); print('real line'); print(%r)" % (notice,
                                                                notice)},
      hidden=tf_notices.Hidden(said.append, "the logs", gpu=False))
  assert codes == {"chief-0": 0}
  assert lines == ["[chief-0] real line"]
  with open(tmp_path / "logs" / "chief-0.log") as f:
    assert f.read().splitlines() == [notice, "real line", notice]
  assert len(said) == 1 and "not shown here; the logs keeps" in said[0]


def _ps_serving_after_sigterm(tmp_path, secs):
  """A ps as trainer.training.preemption's: SIGTERM notes it and serves on
  for `secs` (waiting for the chief's checkpoint), then leaves by itself."""
  return ("import signal, time\n"
          "told = []\n"
          "signal.signal(signal.SIGTERM, lambda *_: told.append(1))\n"
          "while not told: time.sleep(0.05)\n"
          "open(os.path.join(%r, 'ps-0.told'), 'w').close()\n"
          "time.sleep(%r)\n"
          "open(os.path.join(%r, 'ps-0.left'), 'w').close()\n" % (
              str(tmp_path), secs, str(tmp_path)))


@pytest.mark.slow
@pytest.mark.parametrize("dies,ps_secs,grace,ps_leaves", [
    # The chief dies: the ps is stopped once the chief is gone, not after
    # serving out the grace period for a checkpoint that will never come
    # (the cluster stopped 5 s after a chief's death, all of it this wait).
    ("chief-0", 5, 60, False),
    # One host's tasks of a job (cluster/slurm_task.py): a worker here
    # fails, the chief is elsewhere and may still write its checkpoint, so
    # the ps here serves until it leaves by itself, within the grace.
    ("worker-0", 1, 30, True),
])
def test_a_ps_serves_through_the_grace_only_while_its_chief_may(
    tmp_path, dies, ps_secs, grace, ps_leaves):
  with pytest.raises(supervisor.TaskFailed, match=dies):
    _supervise(tmp_path, {
        "ps-0": _ps_serving_after_sigterm(tmp_path, ps_secs),
        dies: "import time; time.sleep(1); sys.exit(3)"},
               stop_grace_secs=grace)
  assert os.path.exists(tmp_path / "ps-0.told")  # Told with the others.
  assert os.path.exists(tmp_path / "ps-0.left") == ps_leaves
