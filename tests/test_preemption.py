"""trainer/training/preemption.py alone: the notice, the chief's watch, a
ps's last wait. The live proofs (a chief and a ps SIGTERMed on a running
cluster, on each backend) are in tests/test_faults.py."""

import os
import signal
import subprocess
import sys

import pytest
import tensorflow as tf

from trainer.training import preemption


class FakeClock:
  def __init__(self):
    self.now = 0.0

  def __call__(self):
    return self.now

  def sleep(self, seconds):
    self.now += seconds


def test_sigterm_is_noted_once_and_given_back():
  notice = preemption.Notice(clock=FakeClock()).install()
  try:
    os.kill(os.getpid(), signal.SIGTERM)  # Would end pytest without it.
    assert notice.wait(5)
    first = notice.received_at
    notice.receive()  # A second SIGTERM changes nothing.
    assert notice.received and notice.received_at == first
  finally:
    notice.uninstall()
  assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


# Rounds of: a new notice, its SIGTERM sent by another thread at a random
# moment while the main thread waits in short sleeps, as a ps waits for
# the export (trainer.training.job_end). A handler that takes a lock the
# interrupted wait holds (threading.Event.set, before 2026-12-08) hangs a
# round before the end; the lock-free one ends them all.
SIGNALS_WHILE_WAITING = """
import os, random, signal, sys, threading, time
from trainer.training import preemption
random.seed(7)
for round in range(3000):
  notice = preemption.Notice().install()
  sender = threading.Timer(random.uniform(0, 0.002), os.kill,
                           (os.getpid(), signal.SIGTERM))
  sender.start()
  while not notice.wait(0):
    pass
  sender.join()
  notice.uninstall()
print("rounds done", flush=True)
"""


def test_a_sigterm_while_the_main_thread_waits_never_deadlocks():
  proc = subprocess.run(
      [sys.executable, "-c", SIGNALS_WHILE_WAITING], capture_output=True,
      text=True, timeout=60, check=False, env=dict(
          os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(
              os.path.abspath(__file__)))))
  assert proc.returncode == 0 and "rounds done" in proc.stdout, proc.stderr


def test_the_chief_stops_on_its_notice_and_says_so_once(tmp_path):
  notice, lines = preemption.Notice(), []
  watch = preemption.ChiefWatch(notice, str(tmp_path), lines.append)
  assert not watch.stop_now(10) and not watch.preempted
  notice.receive()
  assert watch.stop_now(11) and watch.stop_now(12) and watch.preempted
  assert lines == ["SIGTERM (a preemption notice) at step 11: stopping, "
                   "writing a checkpoint, then exiting 143 for a restart."]
  assert not preemption.ChiefWatch(None, str(tmp_path), print).stop_now(1)


def test_a_ps_request_is_seen_within_a_poll_and_answered(tmp_path):
  clock, lines = FakeClock(), []
  watch = preemption.ChiefWatch(None, str(tmp_path), lines.append,
                                clock=clock, poll_secs=1.0)
  assert not watch.checkpoint_wanted()  # Nothing asked.
  preemption.request_checkpoint(str(tmp_path), "ps-1")
  assert not watch.checkpoint_wanted()  # Looked less than a second ago.
  clock.sleep(1.0)
  assert watch.checkpoint_wanted()
  watch.checkpoint_written(700)
  assert lines == ["Checkpoint at step 700 for ps-1 (preempted)."]
  assert preemption.requests(str(tmp_path)) == set()


def _save(model_dir, step):
  checkpoint = tf.train.Checkpoint(v=tf.Variable(float(step)))
  tf.train.CheckpointManager(checkpoint, model_dir, 5).save(step)


def test_a_ps_leaves_once_the_chief_has_saved(tmp_path):
  model_dir, clock, lines = str(tmp_path), FakeClock(), []
  _save(model_dir, 100)

  def sleep(seconds):  # The chief answers the request after 3 s.
    clock.sleep(seconds)
    if clock.now >= 3 and preemption.requests(model_dir):
      _save(model_dir, 450)
      preemption.clear_requests(model_dir, {"ps-0"})

  with pytest.raises(preemption.Preempted,
                     match=r"ps-0: the chief wrote ckpt-450; exiting 143"):
    preemption.leave_after_checkpoint(model_dir, "ps-0", 25, lines.append,
                                      clock=clock, sleep=sleep)
  assert 3 <= clock.now < 4
  assert "at most 25 s: --preemption_grace_secs" in lines[0]


def test_a_ps_leaves_after_its_grace_without_a_checkpoint(tmp_path):
  clock = FakeClock()
  with pytest.raises(preemption.Preempted, match="no new checkpoint within "
                     "25 s of SIGTERM; exiting 143"):
    preemption.leave_after_checkpoint(str(tmp_path), "ps-0", 25,
                                      lambda line: None, clock=clock,
                                      sleep=clock.sleep)
  assert clock.now == pytest.approx(25, abs=0.3)
  assert preemption.requests(str(tmp_path)) == {"ps-0"}


@pytest.mark.slow  # A Python process that imports TF.
def test_a_ps_dies_of_its_sigterm_in_the_end():
  """As a killed ps does: the chief recovers from that (not from a ps that
  ends its process normally while calls are in flight)."""
  code = ("from trainer.training import preemption\n"
          "notice = preemption.Notice().install()\n"
          "preemption.die_of_the_signal(notice)\n"
          "raise SystemExit(3)\n")
  proc = subprocess.run([sys.executable, "-c", code], timeout=120,
                        check=False, env=dict(
                            os.environ, PYTHONPATH=os.path.dirname(
                                os.path.dirname(os.path.abspath(__file__)))))
  assert proc.returncode == -signal.SIGTERM


def test_estimator_workers_pause_while_the_chief_is_away(tmp_path):
  model_dir, clock, lines = str(tmp_path), FakeClock(), []
  preemption.mark_chief_away(model_dir, 1200)
  assert preemption.chief_away(model_dir)

  def sleep(seconds):  # The chief is back after 7 s.
    clock.sleep(seconds)
    if clock.now >= 7:
      preemption.clear_chief_away(model_dir)

  assert preemption.wait_while_chief_away(
      model_dir, lines.append, clock=clock, sleep=sleep) == pytest.approx(7)
  assert "pausing until it is back" in lines[0]
  preemption.mark_chief_away(model_dir, 1300)  # It never comes back.
  assert preemption.wait_while_chief_away(
      model_dir, lines.append, clock=clock, sleep=clock.sleep,
      timeout_secs=30) == pytest.approx(30)
