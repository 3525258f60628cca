"""trainer.training.progress: the progress line, with a fake clock; and the
Estimator's hook that feeds it."""

import pytest

from trainer.training import progress


class FakeClock:

  def __init__(self):
    self.now = 100.0

  def __call__(self):
    return self.now


EXPECTED = [
    "first training step done at global step 1",
    "step 10/25  loss 0.1000  2.0 steps/s  16 examples/s",
    "step 20/25  loss 0.0500  2.0 steps/s  16 examples/s",
    "step 25/25  loss 0.0400  2.0 steps/s  16 examples/s",
]


def test_reports_rates_every_n_steps_and_at_the_end():
  lines, clock, scalars = [], FakeClock(), []
  report = progress.Progress(
      batch_size=8, every_n_steps=10, max_steps=25, log=lines.append,
      clock=clock, write_scalar=lambda *args: scalars.append(args))
  for step in range(1, 26):
    clock.now += 0.5  # Two steps per second.
    report.update(step, 1.0 / step)
  report.end()
  assert lines == EXPECTED
  assert scalars == [("examples/sec", 16.0, 10), ("examples/sec", 16.0, 20),
                     ("examples/sec", 16.0, 25)]


def test_several_local_steps_per_update_count_as_examples():
  """The Keras backend reports after each run of steps_per_execution."""
  lines, clock = [], FakeClock()
  report = progress.Progress(batch_size=8, every_n_steps=10, log=lines.append,
                             clock=clock)
  report.update(5, 1.0, local_steps=5)
  clock.now += 2.0
  report.update(15, 0.5, local_steps=10)
  assert lines[-1] == "step 15  loss 0.5000  5.0 steps/s  40 examples/s"


def test_every_n_steps_must_be_positive():
  with pytest.raises(ValueError, match="every_n_steps"):
    progress.Progress(batch_size=1, every_n_steps=0)


@pytest.mark.estimator
def test_the_estimator_hook_feeds_it():
  tf = pytest.importorskip("tensorflow")
  from trainer.estimator import hooks  # pylint: disable=g-import-not-at-top
  lines, clock = [], FakeClock()
  hook = hooks.ProgressHook(batch_size=8, every_n_steps=10, max_steps=25,
                            log=lines.append, clock=clock)
  for step in range(1, 26):
    clock.now += 0.5
    hook.after_run(None, tf.estimator.SessionRunValues(
        results={"step": step, "loss": 1.0 / step}, options=None,
        run_metadata=None))
  hook.end(None)
  assert lines == EXPECTED
