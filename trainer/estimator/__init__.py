"""The Estimator backend: `tf.estimator` on TF1 sessions (TF <= 2.15).

  connect(config, ps_shard_bytes)  nothing: Estimator connects in its session
  run(plan, config, log)        trains, evaluates, exports (train.py)
  model_variables(spec, head, user)  the model's variables by name
                                (warm_start.py)
  check_model(plan)             the pre-flight's part: a user's model_fn
                                built once (train.py)

Its modules: train.py (the task's run), model.py (the model_fn), config.py
(RunConfig and its session config), checkpoints.py (the chief's saver),
readiness.py (ready polls), evaluator.py (the evaluator's loop), hooks.py
(progress, NaN guard, early stopping, profile), exporters.py (the best
export), optimizers.py (lazy Adam for TF1 optimizers), warm_start.py.
"""

from trainer.estimator.train import check_model
from trainer.estimator.train import run
from trainer.estimator.warm_start import model_variables

__all__ = ["connect", "run", "model_variables", "check_model"]


def connect(config, ps_shard_bytes: int = 0) -> None:
  """Nothing after the pre-flight: Estimator's session joins the cluster
  (and its model_fn places the variables)."""
  del config, ps_shard_bytes
