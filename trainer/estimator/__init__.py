"""The Estimator backend: `tf.estimator` on TF1 sessions (TF <= 2.15).

  connect(config, ps_shard_bytes)  nothing: Estimator connects in its session
  run(plan, config, log)        trains, evaluates, exports (train.py)
  model_variables(spec, head, user)  the model's variables by name
                                (warm_start.py)
  check_model(plan)             the pre-flight's part: a user's model_fn
                                built once (train.py)
  serve(job, config, log)       a ps: a server until the chief's export
                                (serve.py, loaded by
                                trainer.config.backends.load_server)

Its modules: train.py (the task's run), model.py (the model_fn), config.py
(RunConfig and its session config), checkpoints.py (the chief's saver),
readiness.py (ready polls), evaluator.py (the evaluator's loop), hooks.py
(progress, NaN guard, early stopping, profile), exporters.py (the best
export), optimizers.py (lazy Adam for TF1 optimizers), warm_start.py.
"""

import importlib

# Name -> the module of this package that defines it; each is imported where
# first used (a module `__getattr__`, PEP 562), so that a ps, which imports
# only trainer.estimator.serve, loads no model code.
_PARTS = {"run": "train", "check_model": "train",
          "model_variables": "warm_start"}
__all__ = sorted(_PARTS) + ["connect"]


def __getattr__(name: str):
  if name not in _PARTS:
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
  return getattr(importlib.import_module("%s.%s" % (__name__, _PARTS[name])),
                 name)


def connect(config, ps_shard_bytes: int = 0) -> None:
  """Nothing after the pre-flight: Estimator's session joins the cluster
  (and its model_fn places the variables)."""
  del config, ps_shard_bytes
