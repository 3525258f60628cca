"""trainer.hub_model.model_spec: pre-flight checks of hub models."""

import os
import shutil

import pytest
import tensorflow as tf

from harness import errors
from tests import flagged
from trainer.hub_model import model_spec


def test_tf2_model_inputs_come_from_its_call(assets):
  spec = model_spec.inspect_model(assets.digits_model, trainable=True)
  assert spec.single_input and not spec.is_tf1_hub_format
  assert list(spec.inputs) == ["inputs"]
  assert spec.inputs["inputs"].dtype == tf.float32
  assert spec.inputs["inputs"].shape.as_list() == [None, 64]
  assert spec.keras_layer_kwargs() == {"handle": assets.digits_model,
                                       "trainable": True}


def test_text_model_takes_strings(assets):
  spec = model_spec.inspect_model(assets.text_model)
  assert spec.inputs["inputs"].dtype == tf.string
  assert spec.inputs["inputs"].shape.as_list() == [None]


def test_tf1_model_defaults_to_empty_tags_and_default_signature(assets):
  spec = model_spec.inspect_model(assets.tf1_hub_model)
  assert spec.is_tf1_hub_format
  assert spec.tags == frozenset() and spec.signature == "default"
  assert spec.output_key == "default"
  assert list(spec.inputs) == ["x"]


def test_tf1_model_signature_with_several_inputs(assets):
  spec = model_spec.inspect_model(assets.tf1_hub_model, tags=["foo", "bar"],
                                  signature="sig", output_key="features")
  assert sorted(spec.inputs) == ["x1", "x2"] and not spec.single_input
  assert sorted(spec.outputs) == ["distance", "features"]
  assert spec.keras_layer_kwargs() == {
      "handle": assets.tf1_hub_model, "trainable": False,
      "tags": {"foo", "bar"}, "signature": "sig", "output_key": "features"}


@pytest.mark.parametrize("kwargs,message", [
    (dict(handle="/no/such/model"), r"/no/such/model does not exist"),
    (dict(trainable=True), r"TF1 Hub format and cannot be fine-tuned"),
    (dict(tags=["baz"]), r"--tags=baz matches no meta graph.*its tag sets "
     r"are: \{\} \(the empty set\), \{bar,foo\}"),
    (dict(tags=["foo", "bar"], signature="nope"),
     r"--signature=nope is not in .*its signatures are: default, sig"),
    (dict(tags=["foo", "bar"], signature="sig", output_key="nope"),
     r"--output_key=nope is not an output of signature sig; its outputs "
     r"are: distance, features"),
    (dict(tags=["foo", "bar"], signature="sig", output_key="features",
          signature_outputs_as_dict=True), r"contradict"),
])
def test_bad_tf1_requests_are_named(assets, kwargs, message):
  kwargs.setdefault("handle", assets.tf1_hub_model)
  handle = kwargs.pop("handle")
  with flagged.raises(errors.ModelCheckError, match=message):
    model_spec.inspect_model(handle, **kwargs)


def test_directory_without_saved_model(tmp_path):
  with pytest.raises(errors.ModelCheckError,
                     match="is not a SavedModel: it holds neither"):
    model_spec.inspect_model(str(tmp_path))


def test_signature_of_tf2_model_cannot_be_fine_tuned(assets, tmp_path):
  # A TF2 model exported with a serving signature, used through it.
  module = tf.Module()
  module.v = tf.Variable(2.0)
  module.f = tf.function(lambda x: {"y": x * module.v},
                         input_signature=[tf.TensorSpec([None], tf.float32)])
  path = str(tmp_path / "signed")
  tf.saved_model.save(module, path, signatures={"double": module.f})
  with pytest.raises(errors.ModelCheckError,
                     match="called through a signature and cannot be"):
    model_spec.inspect_model(path, trainable=True, signature="double",
                             output_key="y")
  with flagged.raises(errors.ModelCheckError,
                      match="no __call__ function; choose a signature with "
                      "--signature, one of: double"):
    model_spec.inspect_model(path)
  with flagged.raises(errors.ModelCheckError,
                      match="returns a dict: set --output_key to one of y"):
    model_spec.inspect_model(path, signature="double")


def test_output_key_without_signature_is_refused(assets):
  with pytest.raises(errors.ModelCheckError, match="needs a signature"):
    model_spec.inspect_model(assets.digits_model, output_key="default")
  with pytest.raises(errors.ModelCheckError, match="needs a signature"):
    model_spec.inspect_model(assets.digits_model,
                             signature_outputs_as_dict=True)


def test_several_meta_graphs_need_tags(tmp_path):
  path = str(tmp_path / "two_graphs")
  v1 = tf.compat.v1
  with tf.Graph().as_default() as graph:
    x = v1.placeholder(tf.float32, [None], "x")
    sig = v1.saved_model.signature_def_utils.predict_signature_def(
        {"x": x}, {"y": x * 2})
    with v1.Session(graph=graph) as sess:
      builder = v1.saved_model.Builder(path)
      builder.add_meta_graph_and_variables(sess, ["serve"],
                                           signature_def_map={"s": sig})
      builder.add_meta_graph(["gpu", "serve"], signature_def_map={"s": sig})
      builder.save()
  with flagged.raises(errors.ModelCheckError,
                      match=r"has 2 meta graphs, so --tags must pick one; its "
                      r"tag sets are: \{gpu,serve\}, \{serve\}"):
    model_spec.inspect_model(path, signature="s", output_key="y")
  spec = model_spec.inspect_model(path, tags=["serve"], signature="s",
                                  output_key="y")
  assert not os.path.exists(os.path.join(path, "tfhub_module.pb"))
  assert not spec.is_tf1_hub_format and list(spec.inputs) == ["x"]


def test_the_check_reads_the_model_not_its_variables(assets, tmp_path):
  """The check reads saved_model.pb only, so its cost does not grow with
  the variables: it passes without their values (the data shards), and
  names the missing checkpoint where the variables/ folder was left out."""
  path = str(tmp_path / "digits")
  shutil.copytree(assets.digits_model, path)
  variables = os.path.join(path, "variables")
  for name in os.listdir(variables):
    if name.startswith("variables.data"):
      os.remove(os.path.join(variables, name))
  spec = model_spec.inspect_model(path, trainable=True)
  assert spec.inputs["inputs"].shape.as_list() == [None, 64]
  shutil.rmtree(variables)
  with pytest.raises(errors.ModelCheckError,
                     match=r"has variables but no .*variables\.index: copy "
                     r"the model's whole directory"):
    model_spec.inspect_model(path, trainable=True)


def test_a_model_without_saved_trainable_variables_cannot_be_fine_tuned(
    tmp_path):
  """A tf.Module's trainable_variables is a property, not saved: loaded,
  the model has none to fine-tune."""
  module = tf.Module()
  module.v = tf.Variable(2.0)
  module.__call__ = tf.function(lambda x: x * module.v,
                                input_signature=[tf.TensorSpec([None])])
  path = str(tmp_path / "module")
  tf.saved_model.save(module, path)
  spec = model_spec.inspect_model(path)
  assert spec.single_input and list(spec.inputs) == ["x"]
  with pytest.raises(errors.ModelCheckError,
                     match="has no trainable_variables, so `trainable` has "
                     "nothing to fine-tune"):
    model_spec.inspect_model(path, trainable=True)
