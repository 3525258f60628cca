"""trainer.training.job_end: how a distributed job ends by itself, with a
fake clock."""

import json
import os
import socket

import portpicker
import pytest

from harness import errors
from harness import tf_config
from tests import backend_jobs
from trainer import task
from trainer.config import cli
from trainer.plan import preflight
from trainer.training import job_end


class FakeTime:
  """A clock that moves only when slept on; runs `on_sleep` each sleep."""

  def __init__(self, on_sleep=lambda now: None):
    self.now = 0.0
    self.on_sleep = on_sleep

  def clock(self):
    return self.now

  def sleep(self, seconds):
    self.now += seconds
    self.on_sleep(self.now)


def test_markers_are_written_read_and_cleared(tmp_path):
  model_dir = str(tmp_path)
  assert job_end.finished_workers(model_dir) == set()
  job_end.mark_finished(model_dir, tf_config.Task("worker", 1), 60)
  job_end.mark_finished(model_dir, tf_config.Task("worker", 0), 60)
  assert job_end.finished_workers(model_dir) == {"worker-0", "worker-1"}
  job_end.clear_markers(model_dir)
  assert job_end.finished_workers(model_dir) == set()


def test_ps_waits_for_the_export_then_for_every_worker(tmp_path):
  model_dir, export = str(tmp_path), str(tmp_path / "export")
  events = {3.0: lambda: os.mkdir(export),
            5.0: lambda: job_end.mark_finished(
                model_dir, tf_config.Task("worker", 0), 9),
            8.0: lambda: job_end.mark_finished(
                model_dir, tf_config.Task("worker", 1), 9)}
  fake = FakeTime(lambda now: events.pop(now, lambda: None)())
  missing = job_end.wait_until_done(
      export_dir=export, model_dir=model_dir, num_workers=2,
      log=print, clock=fake.clock, sleep=fake.sleep, poll_secs=1.0,
      timeout_secs=100)
  assert missing == set() and fake.now == 8.0


def test_ps_gives_up_when_no_export_ever_comes(tmp_path):
  fake = FakeTime()
  with pytest.raises(errors.ClusterError,
                     match=r"No final export at .*export after 30 s of "
                           r"serving.*\(`serve_timeout_secs`\)"):
    job_end.wait_until_done(
        export_dir=str(tmp_path / "export"), model_dir=str(tmp_path),
        num_workers=1, log=print, clock=fake.clock, sleep=fake.sleep,
        poll_secs=1.0, timeout_secs=30)
  assert 30.0 < fake.now <= 31.0


def test_ps_stops_anyway_when_a_worker_never_reports(tmp_path):
  model_dir, export = str(tmp_path), str(tmp_path / "export")
  os.mkdir(export)
  job_end.mark_finished(model_dir, tf_config.Task("worker", 0), 9)
  fake, lines = FakeTime(), []
  missing = job_end.wait_until_done(
      export_dir=export, model_dir=model_dir, num_workers=2,
      log=lines.append, clock=fake.clock, sleep=fake.sleep,
      marker_wait_secs=10.0, timeout_secs=100)
  assert missing == {"worker-1"} and 10.0 < fake.now <= 11.0
  assert "worker-1 left no finish marker within 10 s" in lines[0]


def test_chief_waits_for_the_final_evaluation():
  steps = iter([None, 30, 30, 60])
  fake, lines = FakeTime(), []
  assert job_end.wait_for_final_evaluation(
      lambda: next(steps), 60, timeout_secs=100, log=lines.append,
      clock=fake.clock, sleep=fake.sleep)
  assert fake.now == 3.0 and lines[-1] == "The evaluator evaluated step 60."


def test_chief_gives_up_on_a_missing_final_evaluation():
  fake, lines = FakeTime(), []
  assert not job_end.wait_for_final_evaluation(
      lambda: 30, 60, timeout_secs=5, log=lines.append, clock=fake.clock,
      sleep=fake.sleep)
  assert 5.0 < fake.now <= 6.0
  assert lines[-1].startswith("warning: no evaluation of step 60 within 5 s")


def test_waiting_for_a_process_to_end_sees_its_port_close():
  """A real listening socket on loopback, closed after the third poll."""
  listener = socket.socket()
  listener.bind(("127.0.0.1", 0))
  listener.listen()
  address = "127.0.0.1:%d" % listener.getsockname()[1]
  polls = []

  def on_sleep(now):
    polls.append(now)
    if len(polls) == 3:
      listener.close()
  fake, lines = FakeTime(on_sleep), []
  assert job_end.wait_for_exit(address, timeout_secs=60, log=lines.append,
                               clock=fake.clock, sleep=fake.sleep)
  assert len(polls) == 3 and not lines


def test_waiting_for_a_process_that_never_ends_gives_up_and_says_so():
  listener = socket.socket()
  listener.bind(("127.0.0.1", 0))
  listener.listen()
  address = "127.0.0.1:%d" % listener.getsockname()[1]
  fake, lines = FakeTime(), []
  try:
    assert not job_end.wait_for_exit(address, timeout_secs=5,
                                      log=lines.append, clock=fake.clock,
                                      sleep=fake.sleep)
  finally:
    listener.close()
  assert fake.now > 5
  assert lines == ["The chief (%s) still runs 5 s after its export; "
                   "stopping anyway." % address]


# A chief preempted after its final export, while it waited for the final
# evaluation, is restarted: the job is done, and it ends as the others do.

@pytest.mark.slow
@pytest.mark.parametrize("backend", backend_jobs.BACKENDS)
def test_a_chief_restarted_after_its_export_ends_the_done_job(
    assets, tmp_path, capsys, backend):
  model_dir = tmp_path / "model"
  args = ["--module_handle=" + assets.digits_model,
          "--train_files=" + assets.data("digits_train.tfrecord"),
          "--eval_files=" + assets.data("digits_eval.tfrecord"),
          "--input_map=inputs=pixels", "--n_classes=5", "--train_steps=20",
          "--backend=" + backend, "--model_dir=%s" % model_dir]
  # The job ran to its end: checkpoint at the last step, its evaluation,
  # the export (one process writes all three, as a cluster's tasks would).
  assert task.run(cli.new_flag_values(args), environ={}) == 0
  assert os.path.isdir(model_dir / "export")
  # The chief of the job's cluster starts again. Its peers are gone (no
  # process listens on these ports): it must not need them.
  cluster = {"chief": ["127.0.0.1:%d" % portpicker.pick_unused_port()],
             "worker": ["127.0.0.1:%d" % portpicker.pick_unused_port()],
             "ps": ["127.0.0.1:%d" % portpicker.pick_unused_port()]}
  environ = {"TF_CONFIG": json.dumps({
      "cluster": cluster, "task": {"type": "chief", "index": 0}})}
  capsys.readouterr()
  exported = os.path.getmtime(model_dir / "export")
  assert task.run(cli.new_flag_values(args), environ=environ) == 0
  out = capsys.readouterr()
  assert "Export directory" not in out.err
  assert os.path.getmtime(model_dir / "export") == exported  # Untouched.
  assert preflight.job_already_done(cli.job_config(cli.new_flag_values(args)))
  # More steps asked: not done, and the export is in the way, as before
  # (the pre-flight's answer, without the cluster).
  more = cli.job_config(cli.new_flag_values(args + ["--train_steps=40"]))
  assert not preflight.job_already_done(more)
