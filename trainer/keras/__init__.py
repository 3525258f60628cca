"""The Keras backend: TF2's own parameter-server training (any TF >= 2.15).

  connect(config, ps_shard_bytes)  the chief joins its cluster (train.py)
  run(plan, config, log)        trains, evaluates, exports (train.py)
  model_variables(spec, head, user)  the model's variables by name
                                (model.py)
  check_model(plan)             the pre-flight's part: refuses a model_fn
                                (train.py)
  serve(job, config, log)       a ps or a worker: a server until the
                                chief's export (serve.py, loaded by
                                trainer.config.backends.load_server)

Its modules: train.py (the roles), cluster.py (the chief's connection), loop.py
(the training loop, in one process or scheduled on a cluster), model.py (the
tf_keras model: hub layer and head), state.py (model, optimizer, checkpoints),
partitioning.py (large variables split over the ps), optimizers.py
(Keras 2 legacy optimizers and lazy Adam), evaluation.py
(metrics, the evaluator, the best export), export.py (the serving export),
warm_start.py (the bridge from Estimator checkpoints), summaries.py
(TensorBoard scalars).

Each name above is imported where first used (a module `__getattr__`, PEP
562): importing trainer.keras.serve, a ps's or worker's whole part, loads
neither the model's modules nor tf_keras.
"""

import importlib

# Name -> the module of this package that defines it.
_PARTS = {"connect": "train", "run": "train", "check_model": "train",
          "model_variables": "model"}
__all__ = sorted(_PARTS)


def __getattr__(name: str):
  if name not in _PARTS:
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
  return getattr(importlib.import_module("%s.%s" % (__name__, _PARTS[name])),
                 name)
