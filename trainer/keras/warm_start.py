"""Warm start on the Keras backend, and the bridge from the Estimator.

`--warm_start_from` names a checkpoint of either backend
(trainer.training.warm_start found it and checked names and shapes in the
pre-flight). Each selected variable is read by its Estimator name: as it is,
from an Estimator checkpoint (TF 2.15's name-based one, "dense1/kernel"); under
the `model_variables/` dict, from a Keras backend checkpoint. So a model trained
with the Estimator on TF 2.15 continues on TF 2.21.
"""

from typing import Dict, Sequence

import tensorflow as tf

from trainer.training import warm_start as warm_start_lib


def key_of(name: str, saved_keys) -> str:
  """The checkpoint key of the variable named `name`."""
  if name in saved_keys:
    return name
  return "%s%s%s" % (warm_start_lib.KERAS_PREFIX, warm_start_lib.escape(name),
                     warm_start_lib.KERAS_SUFFIX)


def apply(variables: Dict[str, tf.Variable], checkpoint: str,
          names: Sequence[str]) -> None:
  """Assigns the selected variables their values in `checkpoint`."""
  reader = tf.train.load_checkpoint(checkpoint)
  keys = set(reader.get_variable_to_shape_map())
  for name in names:
    variables[name].assign(reader.get_tensor(key_of(name, keys)))
