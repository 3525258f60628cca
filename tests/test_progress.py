"""trainer.progress: the progress line, with a fake clock."""

import pytest
import tensorflow as tf

from trainer import progress


class FakeClock:

  def __init__(self):
    self.now = 100.0

  def __call__(self):
    return self.now


def _results(step, loss):
  return tf.estimator.SessionRunValues(
      results={"step": step, "loss": loss}, options=None, run_metadata=None)


def test_reports_rates_every_n_steps_and_at_the_end():
  lines, clock = [], FakeClock()
  hook = progress.ProgressHook(batch_size=8, every_n_steps=10, max_steps=25,
                               log=lines.append, clock=clock)
  for step in range(1, 26):
    clock.now += 0.5  # Two steps per second.
    hook.after_run(None, _results(step, 1.0 / step))
  hook.end(None)
  assert lines == [
      "first training step done at global step 1",
      "step 11/25  loss 0.0909  2.0 steps/s  16 examples/s",
      "step 21/25  loss 0.0476  2.0 steps/s  16 examples/s",
      "step 25/25  loss 0.0400  2.0 steps/s  16 examples/s",
  ]


def test_every_n_steps_must_be_positive():
  with pytest.raises(ValueError, match="every_n_steps"):
    progress.ProgressHook(batch_size=1, every_n_steps=0)
