"""Calling the hub model's `hub.KerasLayer`, the same on every backend.

The layer takes one tensor or a dict of them (as the model's signature
says: trainer.hub_model.model_spec) and returns a tensor or, with
`signature_outputs_as_dict`, a dict; `outputs` makes that one float
[batch, n] tensor for the head.
"""

import tensorflow as tf
import tensorflow_hub as hub

from trainer.hub_model import model_spec as model_spec_lib


def outputs(layer: hub.KerasLayer, spec: model_spec_lib.ModelSpec,
            features, training: bool) -> tf.Tensor:
  """Calls the hub layer and returns one float [batch, n] tensor."""
  if spec.single_input:
    inputs = features[next(iter(spec.inputs))]
  else:
    inputs = dict(features)
  result = layer(inputs, training=training)
  if isinstance(result, dict):  # signature_outputs_as_dict
    result = tf.concat([_flat_float(result[k]) for k in sorted(result)],
                       axis=1)
  return _flat_float(result)


def _flat_float(tensor: tf.Tensor) -> tf.Tensor:
  tensor = tf.cast(tensor, tf.float32)
  if tensor.shape.rank == 1:
    return tensor[:, tf.newaxis]
  if tensor.shape.rank > 2:
    return tf.reshape(tensor, [-1, tensor.shape[1:].num_elements()])
  return tensor
