"""The Keras backend: TF2's own parameter-server training (any TF >= 2.15).

  connect(config, ps_shard_bytes)  the chief joins its cluster (train.py)
  run(plan, config, log)        trains, evaluates, exports (train.py)
  model_variables(spec, head, user)  the model's variables by name
                                (model.py)
  check_model(plan)             the pre-flight's part: refuses a model_fn
                                (train.py)

Its modules: train.py (the roles), cluster.py (the chief's connection), loop.py
(the training loop, in one process or scheduled on a cluster), model.py (the
tf_keras model: hub layer and head), state.py (model, optimizer, checkpoints),
partitioning.py (large variables split over the ps), optimizers.py
(Keras 2 legacy optimizers and lazy Adam), evaluation.py
(metrics, the evaluator, the best export), export.py (the serving export),
warm_start.py (the bridge from Estimator checkpoints), summaries.py
(TensorBoard scalars).
"""

from trainer.keras.model import model_variables
from trainer.keras.train import check_model
from trainer.keras.train import connect
from trainer.keras.train import run

__all__ = ["connect", "run", "model_variables", "check_model"]
