"""Pre-flight check of a hub model: what it is, and how to call it.

`inspect_model` answers, before anything trains or any process starts:
is the path a SavedModel, is it in TF1 Hub format, which meta graph the tags
pick, which signature and output key the layer will use, whether it can be
fine-tuned, and the name, dtype and shape of every input. Every problem is
a `ModelCheckError` whose message lists what would be valid.

The result, a `ModelSpec`, holds the arguments for `hub.KerasLayer` and the
input specs the data pipeline converts each column to.

Everything is read from the SavedModel's protocol buffer (`saved_model.pb`:
its meta graphs, signatures and object graph), without loading the model:
restoring its variables and initializing its tables (a text model's
vocabulary) would make the check's time and memory grow with the model,
and the trainer loads it again anyway, where it trains. So the check cannot
see a model whose functions fail to load (an op this TF lacks, say): that
fails where hub.KerasLayer loads it, with TF's own error.
"""

import dataclasses
import os
from typing import Dict, FrozenSet, Optional, Sequence, Tuple

import tensorflow as tf
from tensorflow.python.saved_model import loader_impl  # pylint: disable=g-direct-tensorflow-import
from tensorflow.python.saved_model import nested_structure_coder  # pylint: disable=g-direct-tensorflow-import

from harness import errors
from trainer.hub_model import handles

TFHUB_MODULE_MARKER = "tfhub_module.pb"


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """A checked hub model and how the trainer calls it.

  Attributes:
    handle: the model's directory.
    is_tf1_hub_format: it has the `tfhub_module.pb` marker.
    tags: the tag set passed to hub.KerasLayer / hub.load (None: default).
    signature: the signature called, or None for the TF2 `__call__`.
    output_key: the output taken from the signature's dict, or None.
    signature_outputs_as_dict: the layer returns all outputs as a dict.
    trainable: fine-tune the model's variables.
    inputs: model input name -> tf.TensorSpec (with the batch dimension).
    single_input: the model takes one tensor, not a dict of them.
    outputs: output name -> TensorSpec for a signature; empty for __call__.
  """
  handle: str
  is_tf1_hub_format: bool
  tags: Optional[FrozenSet[str]]
  signature: Optional[str]
  output_key: Optional[str]
  signature_outputs_as_dict: bool
  trainable: bool
  inputs: Dict[str, tf.TensorSpec]
  single_input: bool
  outputs: Dict[str, tf.TensorSpec]

  def keras_layer_kwargs(self) -> dict:
    """Keyword arguments of hub.KerasLayer that load this model as checked."""
    kwargs = dict(handle=self.handle, trainable=self.trainable)
    if self.tags is not None:
      kwargs["tags"] = set(self.tags)
    if self.signature:
      kwargs["signature"] = self.signature
      if self.signature_outputs_as_dict:
        kwargs["signature_outputs_as_dict"] = True
      else:
        kwargs["output_key"] = self.output_key
    return kwargs


def _format_tags(tags: Sequence[str]) -> str:
  return "{%s}" % ",".join(sorted(tags)) if tags else "{} (the empty set)"


def _tags_setting(tags: Sequence[str]) -> str:
  return "`tags`=" + ",".join(sorted(tags))


def _check_path(handle: str) -> None:
  if not handle:
    raise errors.ModelCheckError("No model given: set `module_handle` to the "
                                 "directory of a SavedModel.")
  if not tf.io.gfile.exists(handle):
    raise errors.ModelCheckError(
        "Model path %s does not exist; `module_handle` must be the directory "
        "of a SavedModel (one that holds saved_model.pb)." % handle)
  if not any(tf.io.gfile.exists(os.path.join(handle, f))
             for f in handles.SAVED_MODEL_FILES):
    raise errors.ModelCheckError(
        "%s is not a SavedModel: it holds neither saved_model.pb nor "
        "saved_model.pbtxt." % handle)


def _pick_meta_graph(handle, saved_model, tags, is_tf1_hub_format):
  """Returns (tags to load with, the meta graph they select)."""
  by_tags = {frozenset(mg.meta_info_def.tags): mg
             for mg in saved_model.meta_graphs}
  available = ", ".join(_format_tags(t) for t in sorted(by_tags, key=sorted))
  if tags is None:
    if is_tf1_hub_format:
      tags = frozenset()  # hub.load's default for the TF1 Hub format.
    elif len(by_tags) == 1:
      return None, next(iter(by_tags.values()))
    else:
      raise errors.ModelCheckError(
          "%s has %d meta graphs, so `tags` must pick one; its tag sets are: "
          "%s." % (handle, len(by_tags), available))
  if tags not in by_tags:
    raise errors.ModelCheckError(
        "`tags`=%s matches no meta graph in %s; its tag sets are: %s (give "
        "them comma-separated, e.g. %s)." %
        (",".join(sorted(tags)), handle, available,
         _tags_setting(sorted(by_tags, key=len)[-1])))
  return tags, by_tags[tags]


def _root_child(meta_graph, name: str):
  """The saved root object's child `name` (a SavedObject), or None."""
  nodes = meta_graph.object_graph_def.nodes
  if not nodes:
    return None
  return next((nodes[child.node_id] for child in nodes[0].children
               if child.local_name == name), None)


def _has_call_function(meta_graph) -> bool:
  """Whether the saved root object has a `__call__` (a TF2 SavedModel)."""
  call = _root_child(meta_graph, "__call__")
  return call is not None and call.WhichOneof("kind") == "function"


def _signature_names(meta_graph) -> list:
  return sorted(k for k in meta_graph.signature_def
                if not k.startswith("__"))


def _call_inputs(meta_graph) -> Tuple[Dict[str, tf.TensorSpec], bool]:
  """Input specs of a TF2 SavedModel's `__call__`, and if it takes one: its
  first traced function's, as hub.load restores them (TF's
  function_deserialization)."""
  call = _root_child(meta_graph, "__call__").function
  if not call.concrete_functions:
    raise errors.ModelCheckError(
        "The model's __call__ has no traced function to inspect.")
  concrete = meta_graph.object_graph_def.concrete_functions[
      call.concrete_functions[0]]
  positional, _ = nested_structure_coder.decode_proto(
      concrete.canonicalized_input_signature)
  first = positional[0] if positional else None
  if isinstance(first, dict):
    return dict(first), False
  if isinstance(first, tf.TensorSpec):
    args = nested_structure_coder.decode_proto(
        call.function_spec.fullargspec).args
    if call.function_spec.is_method or args[:1] == ["self"]:
      args = args[1:]  # As TF restores a method: without `self`.
    return {args[0]: first}, True
  raise errors.ModelCheckError(
      "The model's __call__ takes %r; only a tensor or a dict of tensors is "
      "supported." % (first,))


def inspect_model(handle: str, *, trainable: bool = False,
                  tags: Optional[Sequence[str]] = None,
                  signature: Optional[str] = None,
                  output_key: Optional[str] = None,
                  signature_outputs_as_dict: bool = False) -> ModelSpec:
  """Checks that the model can be used as asked; returns how to call it.

  Args:
    handle: directory of a TF2 SavedModel, a legacy SavedModel or a model in
      TF1 Hub format.
    trainable: fine-tune the model (TF2 `__call__` only).
    tags: tag set of the meta graph to load; None for the default.
    signature: signature to call instead of `__call__`.
    output_key: output of the signature to use.
    signature_outputs_as_dict: use all outputs of the signature.

  Raises:
    errors.ModelCheckError: naming what is wrong and what would be valid.
  """
  _check_path(handle)
  is_tf1 = tf.io.gfile.exists(os.path.join(handle, TFHUB_MODULE_MARKER))
  try:
    saved_model = loader_impl.parse_saved_model(handle)
  except (IOError, OSError, ValueError) as e:
    raise errors.ModelCheckError("Cannot read the SavedModel in %s: %s" %
                                 (handle, str(e).splitlines()[0])) from e
  tags = frozenset(tags) if tags is not None else None
  tags, meta_graph = _pick_meta_graph(handle, saved_model, tags, is_tf1)
  signatures = _signature_names(meta_graph)
  has_call = not is_tf1 and _has_call_function(meta_graph)

  if is_tf1:
    signature = signature or "default"
  if output_key and signature_outputs_as_dict:
    raise errors.ModelCheckError(
        "`output_key`=%s and `signature_outputs_as_dict` contradict each "
        "other: pick one output, or all of them as a dict." % output_key)
  if signature is None and not has_call:
    raise errors.ModelCheckError(
        "%s has no __call__ function; choose a signature with `signature`, "
        "one of: %s." % (handle, ", ".join(signatures) or "(none)"))
  if signature is not None and signature not in signatures:
    raise errors.ModelCheckError(
        "`signature`=%s is not in %s (tags %s); its signatures are: %s." %
        (signature, handle, _format_tags(tags or ()),
         ", ".join(signatures) or "(none)"))
  if trainable and (is_tf1 or signature):
    kind = "in TF1 Hub format" if is_tf1 else "called through a signature"
    raise errors.ModelCheckError(
        "%s is %s and cannot be fine-tuned in TF2 (only a TF2 SavedModel's "
        "__call__ can): drop `trainable` to train on top of it frozen." %
        (handle, kind))
  if signature_outputs_as_dict and not signature:
    raise errors.ModelCheckError(
        "`signature_outputs_as_dict` needs a signature; %s is called through "
        "__call__. Set `signature` (one of: %s) or drop `signature_outputs_as_dict`." %
        (handle, ", ".join(signatures) or "(none)"))

  _check_variables(handle, meta_graph)
  outputs = {}
  if signature:
    signature_def = meta_graph.signature_def[signature]
    # By name, as the signature's function takes them (keyword arguments).
    inputs = dict(sorted(_tensor_specs(signature_def.inputs).items()))
    outputs = _tensor_specs(signature_def.outputs)
    if not signature_outputs_as_dict:
      output_key = output_key or ("default" if is_tf1 else None)
      if output_key is None:
        raise errors.ModelCheckError(
            "Signature %s of %s returns a dict: set `output_key` to one of "
            "%s, or `signature_outputs_as_dict`." %
            (signature, handle, ", ".join(sorted(outputs))))
      if output_key not in outputs:
        raise errors.ModelCheckError(
            "`output_key`=%s is not an output of signature %s; its outputs "
            "are: %s." % (output_key, signature, ", ".join(sorted(outputs))))
    single_input = False
  else:
    if output_key:
      raise errors.ModelCheckError(
          "`output_key`=%s needs a signature; %s is called through __call__, "
          "which returns a single tensor." % (output_key, handle))
    inputs, single_input = _call_inputs(meta_graph)
    saved = _root_child(meta_graph, "trainable_variables")
    if trainable and (saved is None or not saved.children):
      raise errors.ModelCheckError(
          "%s has no trainable_variables, so `trainable` has nothing to "
          "fine-tune; drop `trainable`." % handle)
  return ModelSpec(
      handle=handle, is_tf1_hub_format=is_tf1, tags=tags,
      signature=signature, output_key=None if signature_outputs_as_dict
      else output_key, signature_outputs_as_dict=signature_outputs_as_dict,
      trainable=trainable, inputs=inputs, single_input=single_input,
      outputs=outputs)


def _tensor_specs(tensor_infos) -> Dict[str, tf.TypeSpec]:
  """A signature's inputs or outputs (name -> TensorInfo) as the specs of
  the function hub.load makes of it: dense ones named by their key."""
  specs = {}
  for name, info in tensor_infos.items():
    encoding = info.WhichOneof("encoding")
    shape = tf.TensorShape(info.tensor_shape)
    if encoding == "coo_sparse":
      specs[name] = tf.SparseTensorSpec(shape, tf.as_dtype(info.dtype))
    elif encoding == "composite_tensor":
      specs[name] = nested_structure_coder.decode_proto(
          info.composite_tensor.type_spec)
    else:
      specs[name] = tf.TensorSpec(shape, tf.as_dtype(info.dtype), name)
  return specs


def _check_variables(handle: str, meta_graph) -> None:
  """A model with variables has their checkpoint beside it (what a copy
  that left out `variables/` lacks; the model is not loaded here)."""
  nodes = meta_graph.object_graph_def.nodes
  tf1_variables = meta_graph.collection_def.get("variables")
  has_variables = any(n.WhichOneof("kind") == "variable" for n in nodes) or (
      tf1_variables is not None and tf1_variables.bytes_list.value)
  index = os.path.join(handle, "variables", "variables.index")
  if has_variables and not tf.io.gfile.exists(index):
    raise errors.ModelCheckError(
        "%s has variables but no %s: copy the model's whole directory, "
        "its variables/ folder too." % (handle, index))
