"""The study on this machine (cluster/study.py, `python -m cluster.tune`):
Optuna draws each trial's flags, each trial is a harness job, and the study
resumes where it stopped.

The live study (marked slow) runs the demo's trials as real trainer
processes: 4 trials 2 at a time, the same command with more trials, a run
interrupted mid-trial and resumed, and best.flags rerun. The tuning
services' specs and the trainer's reports are in tests/test_tune.py.
"""

import dataclasses
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time

from absl import flags as absl_flags
import optuna
import pytest

from cluster import study as study_lib
from cluster import tune
from cluster.engines import search_space
from tests import doc_commands
from tests import launcher
from tests import processes

SPACE = """\
learning_rate: {type: double, min: 0.0001, max: 0.3, scale: log}
hidden_units: {type: categorical, values: ['', '64', '64,32']}
"""


# Trials a dead tuner left running.

@pytest.mark.slow  # Optuna's SQLite storage: about 2 s.
def test_a_dead_tuners_running_trials_are_queued_again(tmp_path):
  study = optuna.create_study(storage="sqlite:///%s/s.db" % tmp_path)
  dists = study_lib.distributions(search_space.parse(SPACE))
  gone = subprocess.Popen([sys.executable, "-c", "pass"])
  gone.wait()
  orphan = study.ask(dists)
  orphan.set_user_attr("host", socket.gethostname())
  orphan.set_user_attr("pid", gone.pid)
  mine = study.ask(dists)
  mine.set_user_attr("host", socket.gethostname())
  mine.set_user_attr("pid", os.getpid())
  elsewhere = study.ask(dists)
  elsewhere.set_user_attr("host", "another-machine")
  elsewhere.set_user_attr("pid", gone.pid)
  lines = []
  assert study_lib.recover_abandoned(study, lines.append) == 1
  assert "trial %d: its tuner (pid %d) is gone" % (orphan.number,
                                                   gone.pid) in lines[0]
  states = {t.number: study_lib.state_of(t) for t in study.get_trials()}
  assert states[orphan.number] == study_lib.INTERRUPTED
  assert states[mine.number] == states[elsewhere.number] == "running"
  retry = study.ask(dists)  # The queued values come first.
  assert retry.params == orphan.params


# The live study.

TRIAL_FLAGS = ["--train_steps=100"]  # As docs/tuning.md's command.


def _ignore_sigint():
  signal.signal(signal.SIGINT, signal.SIG_IGN)


def _tune(study_dir, trials, cwd, trial_flags=tuple(TRIAL_FLAGS)):
  """The docs' study, with `trials`, started in the background, as a
  non-interactive shell starts a background job: with SIGINT ignored, which
  the study must undo (a full test run started so saw it run on)."""
  return subprocess.Popen(
      [sys.executable, "-m", "cluster.tune",
       "--space=" + os.path.join(launcher.REPO, "configs", "tuning",
                                 "digits.yaml"),
       "--trials=%d" % trials, "--parallel=2", "--seed=1",
       "--study_dir=" + str(study_dir), "--"] + list(trial_flags),
      cwd=str(cwd),
      env=launcher.ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
      text=True, preexec_fn=_ignore_sigint)  # pylint: disable=subprocess-popen-preexec-fn


def _read_until(process, text, timeout_secs):
  """The output of `process` up to and including the first line holding
  `text`; fails after `timeout_secs` or at the output's end."""
  deadline = time.monotonic() + timeout_secs
  read = []
  with selectors.DefaultSelector() as selector:
    selector.register(process.stdout, selectors.EVENT_READ)
    while time.monotonic() < deadline:
      if not selector.select(timeout=max(deadline - time.monotonic(), 0)):
        break
      line = process.stdout.readline()
      assert line, "".join(read)  # The output ended first.
      read.append(line)
      if text in line:
        return "".join(read)
  raise AssertionError("no %r within %d s: %s" % (text, timeout_secs,
                                                  "".join(read)[-3000:]))


def _states(study_dir):
  study = optuna.load_study(study_name="harness",
                            storage="sqlite:///%s/study.db" % study_dir)
  return study, [study_lib.state_of(t) for t in study.get_trials()]


def _training(study_dir):
  """How many of the study's running trials have a trainer up: it has
  written its flags.txt."""
  study, _ = _states(study_dir)
  return sum(os.path.exists(study_dir / ("trial-%d" % t.number) / "model" /
                            "flags.txt")
             for t in study.get_trials() if study_lib.state_of(t) == "running")


@pytest.mark.slow
def test_a_study_runs_resumes_and_its_best_reruns(demo_cwd, tmp_path):
  """docs/tuning.md's command (4 trials of the demo, 2 at a time), then the
  same study with more trials, interrupted, resumed; then best.flags."""
  command = doc_commands.find("docs/tuning.md", "python -m cluster.tune")
  assert "--study_dir=runs/tune-digits " in command.text
  assert command.text.endswith(" -- " + " ".join(TRIAL_FLAGS))
  os.symlink(os.path.join(launcher.REPO, "configs"), demo_cwd / "configs")
  study_dir = demo_cwd / "runs" / "tune-digits"
  first = doc_commands.run(command.text, demo_cwd, timeout=900)
  assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
  study, states = _states(study_dir)
  assert len(states) == 4
  assert set(states) <= {"complete", "pruned"} and "complete" in states
  assert first.stdout.count(" started: ") == 4
  assert re.search(r"^trial\s+state\s+accuracy\s+secs\s+parameters$",
                   first.stdout, re.M)
  assert os.path.getsize(study_dir / study_lib.PLOT_FILE) > 0
  for number in range(4):
    with open(study_dir / ("trial-%d" % number) / "model" / "flags.txt") as f:
      recorded = f.read()
    params = study.trials[number].params
    assert "--batch_size=%d\n" % params["batch_size"] in recorded

  # More trials, interrupted while two train: they are queued again. These
  # two are long, so that neither can end before the Ctrl-C (with 100
  # steps, a loaded machine once saw both complete first).
  second = _tune(study_dir, 6, demo_cwd, ["--train_steps=1000000"])
  try:
    assert processes.wait_until(lambda: _training(study_dir) == 2, 120)
    second.send_signal(signal.SIGINT)
    out, _ = second.communicate(timeout=120)
  finally:
    if second.poll() is None:
      second.kill()
  assert second.returncode == 130, out[-3000:]
  assert out.count("interrupted; its values are queued again") == 2, out
  _, states = _states(study_dir)
  assert states.count(study_lib.INTERRUPTED) == 2
  assert states.count("waiting") == 2
  assert not subprocess.run(["pgrep", "-f", str(study_dir)],
                            capture_output=True, check=False).stdout

  # The same command again: only the two interrupted trials' values run.
  third = _tune(study_dir, 6, demo_cwd)
  out, _ = third.communicate(timeout=900)
  assert third.returncode == 0, out[-3000:]
  assert out.count(" started: ") == 2
  study, states = _states(study_dir)
  assert len([s for s in states if s in ("complete", "pruned")]) == 6
  interrupted = [t.params for t in study.trials
                 if study_lib.state_of(t) == study_lib.INTERRUPTED]
  rerun = [t.params for t in study.trials[-2:]]
  assert sorted(map(repr, interrupted)) == sorted(map(repr, rerun))

  # A Ctrl-C after the trials, while best.flags and the plot are written
  # (here no trial is left to run), keeps the study too: exit 130, not
  # Python's traceback.
  fourth = _tune(study_dir, 6, demo_cwd)
  try:
    seen = _read_until(fourth, "0 trial(s) to run", 120)
    fourth.send_signal(signal.SIGINT)
    out, _ = fourth.communicate(timeout=120)
  finally:
    if fourth.poll() is None:
      fourth.kill()
  assert fourth.returncode == 130, seen + out
  assert "The study is kept in" in out and "Traceback" not in out, out

  # best.flags reruns the best trial's flags.
  best = study.best_trial
  model_dir = tmp_path / "best"
  rerun = subprocess.run(
      [sys.executable, "-m", "trainer.task",
       "--flagfile=%s" % (study_dir / study_lib.BEST_FLAGS),
       "--model_dir=%s" % model_dir], cwd=str(demo_cwd), env=launcher.ENV,
      capture_output=True, text=True, timeout=300, check=False)
  assert rerun.returncode == 0, rerun.stderr[-3000:]
  with open(model_dir / "flags.txt") as f:
    recorded = f.read()
  for arg in search_space.flag_args(best.params):
    assert arg + "\n" in recorded


@pytest.mark.parametrize("extra, message", [
    (["--space=/nonexistent.yaml"], "cannot be read"),
    (["--metric=rmse"], "--metric=rmse is not an evaluation metric"),
    (["--study_dir="], "--study_dir is required"),
])
def test_tune_refuses_a_bad_study_before_any_trial(tmp_path, extra, message):
  argv = [sys.executable, "-m", "cluster.tune",
          "--space=" + os.path.join(launcher.REPO, "configs", "tuning",
                                    "digits.yaml"),
          "--study_dir=%s" % (tmp_path / "s")] + extra + [
              "--", "--module_handle=/m", "--train_files=/t",
              "--n_classes=3"]
  proc = subprocess.run(argv, env=launcher.ENV, capture_output=True,
                        text=True, timeout=120, check=False)
  assert proc.returncode == 1, proc.stderr
  assert message in proc.stderr
  assert not os.path.exists(tmp_path / "s" / "trial-0")


# The study's parts, each alone.

def _setup(tmp_path, launcher_argv, **kwargs):
  return study_lib.Setup(
      study_dir=str(tmp_path / "study"), space=search_space.parse(
          "learning_rate: {type: double, min: 0.001, max: 0.3}"),
      study=search_space.Study(metric="accuracy", goal="maximize",
                               trials=1),
      base_args=["--n_classes=5"], launcher=launcher_argv, poll_secs=0.2,
      train_steps=100, **kwargs)


def _write_evaluation(eval_dir, step, accuracy):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  os.makedirs(eval_dir, exist_ok=True)
  event = tf.compat.v1.Event(step=step, wall_time=time.time(), summary=(
      tf.compat.v1.Summary(value=[tf.compat.v1.Summary.Value(
          tag="accuracy", simple_value=accuracy)])))
  with tf.io.TFRecordWriter(os.path.join(
      eval_dir, "events.out.tfevents.%d" % step)) as writer:
    writer.write(event.SerializeToString())


def _after_two_trials(tmp_path, job_code, intermediate):
  """A study of 3 trials, 2 complete at 0.9 (`intermediate` values), whose
  third runs `job_code` as its job: (study, runner, its log lines, the
  third trial's eval dir)."""
  setup = _setup(tmp_path, [sys.executable, "-c", job_code])
  setup = dataclasses.replace(setup, study=dataclasses.replace(
      setup.study, trials=3))
  study = study_lib.open_study(setup)
  dists = study_lib.distributions(setup.space)
  for value in (0.01, 0.02):
    study.add_trial(optuna.trial.create_trial(
        params={"learning_rate": value}, distributions=dists, value=0.9,
        intermediate_values=intermediate))
  lines = []
  runner = study_lib.Runner(setup, study, lines.append)
  return study, runner, lines, str(
      tmp_path / "study" / "trial-2" / "model" / "eval")


@pytest.mark.slow  # TF writes the evaluation; a second or two.
def test_a_trial_below_the_median_is_pruned_and_its_job_stopped(tmp_path):
  """Two finished trials reached 0.9 at step 10; a running trial's first
  evaluation says 0.1 there: the pruner stops its job (here a process that
  would sleep a minute) at once."""
  study, runner, lines, eval_dir = _after_two_trials(
      tmp_path, "import time; time.sleep(60)", {10: 0.9})
  writer = threading.Timer(1.0, _write_evaluation, (eval_dir, 10, 0.1))
  writer.start()
  started = time.monotonic()
  assert runner.run() == 1
  writer.join()
  assert time.monotonic() - started < 30, lines
  trial = study.trials[-1]
  assert trial.state == optuna.trial.TrialState.PRUNED
  assert trial.intermediate_values == {10: pytest.approx(0.1)}
  assert ("trial 2 pruned at step 10: accuracy=0.1000, its best so far "
          "worse than the median 0.9000 of 2 completed trial(s) at that "
          "step") in lines[-1]
  assert not subprocess.run(["pgrep", "-f", "time.sleep\\(60\\)"],
                            capture_output=True, check=False).stdout


@pytest.mark.slow  # TF writes the evaluations; a second or two.
def test_the_untrained_models_evaluation_never_prunes_a_trial(tmp_path):
  """Two finished trials were at 0.9 from step 0 on; a running trial's
  step-0 evaluation (the untrained model, as --eval_untrained makes one)
  says 0.1, its final one 0.95: the pruner never sees step 0, and the
  final evaluation is the trial's value."""
  study, runner, lines, eval_dir = _after_two_trials(
      tmp_path, "import time; time.sleep(4)", {0: 0.9, 100: 0.9})
  writers = [threading.Timer(0.5, _write_evaluation, (eval_dir, 0, 0.1)),
             threading.Timer(2.0, _write_evaluation, (eval_dir, 100, 0.95))]
  for writer in writers:
    writer.start()
  assert runner.run() == 1
  for writer in writers:
    writer.join()
  trial = study.trials[-1]
  assert trial.state == optuna.trial.TrialState.COMPLETE, lines
  assert trial.value == pytest.approx(0.95)
  assert 0 not in trial.intermediate_values
  assert "trial 2 complete: accuracy=0.9500 at step 100" in lines[-1]


@pytest.mark.slow  # Optuna's storages: a second or two.
def test_a_failed_trial_counts_and_says_why(tmp_path):
  setup = _setup(tmp_path, [sys.executable, "-c", "raise SystemExit(3)"],
                 storage="journal:%s" % (tmp_path / "journal.log"))
  study = study_lib.open_study(setup)
  lines = []
  runner = study_lib.Runner(setup, study, lines.append)
  assert runner.run() == 1
  assert os.path.getsize(tmp_path / "journal.log") > 0  # Optuna's journal.
  trial = study.trials[0]
  assert study_lib.state_of(trial) == "failed"
  assert study_lib.is_done(trial) and runner.remaining() == 0
  assert "trial 0 failed (exit code 3" in lines[-1]
  assert study_lib.write_best_flags(setup, study) is None
  # The trial's flags: the base ones, its value, its own model directory.
  flags = trial.user_attrs["flags"]
  assert flags[0] == "--n_classes=5"
  assert flags[1].startswith("--learning_rate=")
  assert flags[2] == "--model_dir=%s" % (tmp_path / "study" / "trial-0" /
                                         "model")


@pytest.mark.slow
def test_a_study_refuses_another_goal_or_metric(tmp_path):
  setup = _setup(tmp_path, ["true"])
  study_lib.open_study(setup)
  other = dataclasses.replace(setup, study=dataclasses.replace(
      setup.study, goal="minimize"))
  with pytest.raises(study_lib.StudyError, match="was made to maximize; "
                     "this run asks to minimize"):
    study_lib.open_study(other)
  other = dataclasses.replace(setup, study=dataclasses.replace(
      setup.study, metric="loss"))
  with pytest.raises(study_lib.StudyError, match="optimizes accuracy; this "
                     "run asks for loss"):
    study_lib.open_study(other)


def test_trials_run_as_one_process_or_a_local_cluster():
  fv = absl_flags.FlagValues()
  tune.define_flags(fv)
  fv(["tune"])
  assert tune.launcher(fv) == [sys.executable, "-m", "trainer.task"]
  fv(["tune", "--cluster", "--num_workers=1", "--num_ps=2", "--noevaluator"])
  argv = tune.launcher(fv)
  assert argv[:3] == [sys.executable, "-m", "cluster.local"]
  assert argv[-1] == "--"
  assert {"--num_workers=1", "--num_ps=2", "--noevaluator"} <= set(argv)


@pytest.mark.slow  # Optuna's SQLite storage: a few seconds.
def test_queued_trials_go_to_one_thread_each(tmp_path):
  """Resumed with interrupted trials queued, the runner's threads ask at
  once: each queued trial goes to one of them (Optuna's ask() alone may
  hand the same one to two)."""
  setup = dataclasses.replace(_setup(tmp_path, ["true"]), study=dataclasses.
                              replace(_setup(tmp_path, []).study, trials=8))
  study = study_lib.open_study(setup)
  for value in range(8):
    study.enqueue_trial({"learning_rate": 0.01 + value / 100})
  runner = study_lib.Runner(setup, study, lambda line: None)
  barrier = threading.Barrier(8)
  numbers = []

  def ask():
    barrier.wait()
    numbers.append(runner.ask().number)

  threads = [threading.Thread(target=ask) for _ in range(8)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join(60)
  assert sorted(numbers) == list(range(8))
  assert all(t.state == optuna.trial.TrialState.RUNNING
             for t in study.get_trials())
