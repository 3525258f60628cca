"""The low-level path (hub.load + signatures) agrees with the trainer's layer.

The migration guide's TF2 replacement for hub.Module(handle, tags=...)(...,
signature="sig", as_dict=True) is hub.load(path, tags=...).signatures["sig"]
(**inputs). The trainer calls the same model through hub.KerasLayer with
tags, signature and output_key / signature_outputs_as_dict.
"""

import numpy as np
import tensorflow as tf
import tensorflow_hub as hub

from example_kit import datasets
from trainer.hub_model import hub_layer
from trainer.hub_model import model_spec


def _pixels():
  examples = datasets.digits(datasets.TRANSFER_CLASSES,
                             datasets.TRANSFER_HALF)
  return examples.columns["pixels"][:8], examples.columns["pixels"][8:16]


def _trainer_layer_outputs(spec, features):
  """What the model_fn feeds its head, computed in a TF1 graph session."""
  with tf.Graph().as_default() as graph:
    layer = hub.KerasLayer(**spec.keras_layer_kwargs())
    tensors = {k: tf.constant(v) for k, v in features.items()}
    outputs = hub_layer.outputs(layer, spec, tensors, training=False)
    with tf.compat.v1.Session(graph=graph) as session:
      session.run(tf.compat.v1.global_variables_initializer())
      return session.run(outputs)


def test_signature_outputs_match_the_trainers_layer(assets):
  x1, x2 = _pixels()
  loaded = hub.load(assets.tf1_hub_model, tags={"foo", "bar"})
  direct = loaded.signatures["sig"](x1=tf.constant(x1), x2=tf.constant(x2))
  assert sorted(direct) == ["distance", "features"]

  as_dict = model_spec.inspect_model(
      assets.tf1_hub_model, tags=["foo", "bar"], signature="sig",
      signature_outputs_as_dict=True)
  got = _trainer_layer_outputs(as_dict, {"x1": x1, "x2": x2})
  # All outputs, concatenated in name order: distance, then features.
  np.testing.assert_allclose(
      got, np.concatenate([direct["distance"].numpy(),
                           direct["features"].numpy()], axis=1), rtol=1e-5)

  one_key = model_spec.inspect_model(
      assets.tf1_hub_model, tags=["foo", "bar"], signature="sig",
      output_key="features")
  got = _trainer_layer_outputs(one_key, {"x1": x1, "x2": x2})
  np.testing.assert_allclose(got, direct["features"].numpy(), rtol=1e-5)


def test_tags_select_different_graphs(assets):
  x, _ = _pixels()
  tagged = hub.load(assets.tf1_hub_model, tags={"foo", "bar"})
  untagged = hub.load(assets.tf1_hub_model)  # TF1 Hub format: tags {}.
  relu = tagged.signatures["default"](x=tf.constant(x))["default"].numpy()
  linear = untagged.signatures["default"](x=tf.constant(x))["default"].numpy()
  np.testing.assert_allclose(relu, np.maximum(linear, 0), rtol=1e-5)
  assert (linear < 0).any()

  spec = model_spec.inspect_model(assets.tf1_hub_model)
  np.testing.assert_allclose(_trainer_layer_outputs(spec, {"x": x}), linear,
                             rtol=1e-5)
