"""trainer.estimator.evaluator: what an Estimator's ValueError means to the
evaluator's loop (trainer.training.eval_loop). Imports tf.estimator: collected
only where TF has it (tests/conftest.py)."""

import pytest

from tests.test_eval_loop import Chief
from tests.test_eval_loop import metrics_of
from trainer.estimator import evaluator as estimator_evaluator


class _Estimator:
  """What trainer.estimator.evaluator uses of an Estimator: its model
  directory and evaluate(), which raises as a real one does where the
  checkpoint is gone (ValueError) or where the model has a bug (also
  ValueError): a real Estimator cannot be made to raise either on cue."""

  def __init__(self, chief, error):
    self.model_dir, self._chief, self._error = chief.model_dir, chief, error

  def evaluate(self, input_fn, steps, checkpoint_path):
    del input_fn, steps
    if self._error == "gone" and checkpoint_path.endswith("-10"):
      self._chief.save(20)  # Deletes ckpt-10.
      self._chief.export()
      raise ValueError("Could not find trained model at %s." %
                       checkpoint_path)
    if self._error == "bug":
      raise ValueError("Shapes (32, 5) and (32, 3) are incompatible")
    return metrics_of(checkpoint_path)


@pytest.mark.parametrize("error", ["gone", "bug"])
def test_the_estimator_s_value_error_means_gone_only_without_files(tmp_path,
                                                                   error):
  chief = Chief(tmp_path, keep=1)
  chief.save(10)
  run = lambda: estimator_evaluator.evaluate_continuously(
      _Estimator(chief, error), eval_input=None, eval_steps=None,
      throttle_secs=0, export_dir=chief.export_dir, log=lambda line: None,
      clock=lambda: 0.0, sleep=chief.sleep)
  if error == "gone":
    assert run() == {"global_step": 20}
  else:
    with pytest.raises(ValueError, match="are incompatible"):
      run()
    assert chief.sleeps == 0
