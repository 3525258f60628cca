"""Your own model: a function of yours, imported, called and checked.

Two plug-ins, each named MODULE:FUNCTION (MODULE importable as Python
imports it: the working directory under `python -m`, PYTHONPATH, an
installed package):

* `model` (both backends): FUNCTION(inputs, hub_layer) returns a
  `tf_keras.Model` (a functional one, built on `inputs`):
  - `inputs`: data column -> `tf_keras.Input`, for every column but the
    label, typed and shaped as the data is (`column_specs` in
    trainer.inputs.data: a scalar column is shape (), a fixed-length list of
    k is (k,), text is tf.string);
  - `hub_layer`: the `hub.KerasLayer` the model flags describe (handle,
    trainable, tags, signature, output_key, signature_outputs_as_dict);
  - the model maps (a subset of) `inputs` to logits [batch, n_classes], or
    [batch, 1] for a regression (n_classes 0). The harness adds the loss,
    the metrics, the optimizer and the hub layer's regularization losses,
    as for its own head; the serving export takes the columns the model
    uses: those its logits are computed from, whatever it was given as
    its inputs (`used`; the others are `ignored`).
* `model_fn` (the Estimator backend): FUNCTION(features, labels, mode,
  params) as tf.estimator defines it (trainer.estimator.model wraps it).

Every mistake is one line naming the setting and what was expected; an
exception raised inside the user's own code keeps its traceback (it is
theirs to read) under a line saying it came from their function
(`UserCodeError`).
"""

import dataclasses
import importlib
import inspect
import sys
import traceback
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple

import tensorflow as tf
import tensorflow_hub as hub
import tf_keras

from harness import errors
from trainer.hub_model import model_spec as model_spec_lib

MODEL_ARGS = ("inputs", "hub_layer")
# What tf.estimator passes a model_fn, by name, where it takes them.
MODEL_FN_ARGS = ("features", "labels", "mode", "params", "config")


class UserCodeError(errors.HarnessError):
  """An exception raised inside the user's own code; `details` is its
  traceback, which the entry point prints above the one line."""


@dataclasses.dataclass(frozen=True)
class UserModel:
  """A user's Keras model builder (`model`), and what it is built from.

  Attributes:
    reference: MODULE:FUNCTION, as the setting gives it.
    inputs: data column -> TensorSpec (batch dimension None), every column
      but the label.
    used: the columns the built model's logits are computed from (known
      once built; the model is fed, and the serving export takes, these).
    ignored: the columns given to the model as inputs that its logits do
      not depend on (an id column in the inputs dict).
  """
  reference: str
  inputs: Mapping[str, tf.TensorSpec]
  used: Tuple[str, ...] = ()
  ignored: Tuple[str, ...] = ()

  @property
  def serving_inputs(self) -> Dict[str, tf.TensorSpec]:
    return {name: self.inputs[name] for name in self.used}


def load(reference: str, setting: str) -> Callable:
  """The function `reference` (MODULE:FUNCTION) names.

  Raises:
    errors.FlagError: not MODULE:FUNCTION, no such module or function.
    UserCodeError: importing the user's module raised.
  """
  module_name, sep, name = reference.partition(":")
  if not sep or not module_name or not name.isidentifier() or not all(
      part.isidentifier() for part in module_name.split(".")):
    raise errors.FlagError(
        "`%s`=%s is not MODULE:FUNCTION, e.g. `%s`=my_models:build." %
        (setting, reference, setting))
  try:
    module = importlib.import_module(module_name)
  except ModuleNotFoundError as e:
    if e.name and (module_name + ".").startswith(e.name + "."):
      raise errors.FlagError(
          "`%s`=%s: there is no module %s to import (Python looks in the "
          "working directory under python -m, in PYTHONPATH and in the "
          "installed packages)." % (setting, reference, module_name)
      ) from None
    raise user_code_error(setting, reference,
                           "importing " + module_name) from None
  except Exception:  # pylint: disable=broad-except
    raise user_code_error(setting, reference,
                           "importing " + module_name) from None
  function = getattr(module, name, None)
  if function is None or not callable(function):
    found = sorted(n for n, v in vars(module).items()
                   if callable(v) and not n.startswith("_") and
                   getattr(v, "__module__", None) == module.__name__)
    raise errors.FlagError(
        "`%s`=%s: module %s (%s) has no function %s%s." % (
            setting, reference, module_name, getattr(module, "__file__", ""),
            name, "; its functions: " + ", ".join(found) if found else ""))
  return function


def user_code_error(setting: str, reference: str,
                    doing: str) -> UserCodeError:
  """For the exception being handled, raised in the user's code."""
  error = sys.exc_info()[1]
  said = str(error).strip().splitlines()
  return UserCodeError(
      "`%s`=%s raised %s%s while %s (your code: its traceback is above)." % (
          setting, reference, type(error).__name__,
          ": " + said[0] if said else "", doing),
      details=traceback.format_exc().rstrip())


def check_arguments(function: Callable, reference: str, setting: str,
                    expected: Sequence[str]) -> None:
  """`function` takes `expected` (by position, for `model`; by name, of
  MODEL_FN_ARGS, for `model_fn`).

  Raises:
    errors.FlagError: naming the arguments it takes and those expected.
  """
  try:
    signature = inspect.signature(function)
  except (TypeError, ValueError):
    return  # A builtin or an extension: Python cannot tell, the call will.
  taken = "(%s)" % ", ".join(signature.parameters)
  if setting == "model_fn":
    names = [n for n, p in signature.parameters.items()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [n for n in names if n not in MODEL_FN_ARGS and
               signature.parameters[n].default is inspect.Parameter.empty]
    if "features" not in names or unknown:
      raise errors.FlagError(
          "`model_fn`=%s takes %s; a model_fn takes features and any of "
          "labels, mode, params, config, by those names." % (reference,
                                                             taken))
    return
  try:
    signature.bind(*expected)
  except TypeError:
    raise errors.FlagError(
        "`%s`=%s takes %s; it must take (%s)." % (
            setting, reference, taken, ", ".join(expected))) from None


def keras_inputs(specs: Mapping[str, tf.TensorSpec]
                 ) -> Dict[str, tf_keras.layers.Layer]:
  """column -> tf_keras.Input of its dtype and item shape, named after it."""
  return {name: tf_keras.Input(shape=spec.shape[1:], dtype=spec.dtype,
                               name=name)
          for name, spec in specs.items()}


def hub_layer(spec: model_spec_lib.ModelSpec) -> hub.KerasLayer:
  """The hub.KerasLayer a user's model gets, as the harness's model has it."""
  return hub.KerasLayer(**spec.keras_layer_kwargs(), name="hub")


def build(user: UserModel, spec: model_spec_lib.ModelSpec, n_classes: int,
          function: Optional[Callable] = None,
          layer: Optional[hub.KerasLayer] = None
          ) -> Tuple[tf_keras.Model, UserModel]:
  """Calls the user's FUNCTION with `layer` (default: `hub_layer(spec)`)
  and checks what it returns.

  Keras names a layer left unnamed by counting the layers of its kind made
  before it in this process ("dense", "dense_1", ...), and the checkpoints
  of both backends name variables by those names. So the count starts
  afresh for every build (`tf_keras.backend.reset_uids`, Keras's own reset
  of it): the model's variables get the same names in every build and
  every process (the pre-flight's, the chief's, the export's, the
  evaluator's), the names the Estimator's fresh graph gives them, however
  many models were built before. Only the names of layers built later
  without a name of their own are affected, and nothing of the harness
  names variables by them.

  Returns:
    The model, fed only the columns its logits depend on, and `user` with
    those columns (`used`) and the ones it ignores (`ignored`).

  Raises:
    errors.FlagError: it returns no functional tf_keras.Model, logits of
      another shape, or takes inputs the data does not have.
    UserCodeError: FUNCTION raised.
  """
  reference, setting = user.reference, "model"
  if function is None:
    function = load(reference, setting)
    check_arguments(function, reference, setting, MODEL_ARGS)
  tf_keras.backend.reset_uids()
  inputs = keras_inputs(user.inputs)
  try:
    model = function(inputs,
                     layer if layer is not None else hub_layer(spec))
  except Exception:  # pylint: disable=broad-except
    raise user_code_error(setting, reference,
                           "building the model") from None
  if not isinstance(model, tf_keras.Model):
    raise errors.FlagError(
        "`%s`=%s returned %s, not a tf_keras.Model: build it with tf_keras "
        "(import tf_keras), the Keras of hub.KerasLayer, from the inputs it "
        "is given." % (setting, reference, type(model).__name__))
  if not getattr(model, "inputs", None):
    raise errors.FlagError(
        "`%s`=%s returned a subclassed %s; return a functional model, "
        "tf_keras.Model(inputs=..., outputs=logits), built on the inputs "
        "it is given." % (setting, reference, type(model).__name__))
  ours = {id(tensor): name for name, tensor in inputs.items()}
  strangers = [getattr(t, "name", str(t)) for t in model.inputs
               if id(t) not in ours]
  if strangers:
    raise errors.FlagError(
        "`%s`=%s: its model takes %s, which the data does not have; use "
        "the inputs it is given (the columns %s)." % (
            setting, reference, ", ".join(strangers),
            ", ".join(user.inputs)))
  if len(model.outputs) != 1:
    raise errors.FlagError(
        "`%s`=%s: its model has %d outputs; it must have one, the logits." %
        (setting, reference, len(model.outputs)))
  want = max(n_classes, 1)
  shape = model.outputs[0].shape
  if shape.rank != 2 or shape[1] != want:
    raise errors.FlagError(
        "`%s`=%s: its model returns shape %s; the logits must be [batch, "
        "%d] (%s)." % (setting, reference, shape.as_list() if shape.rank
                       is not None else "unknown", want,
                       "`n_classes`=%d" % n_classes if n_classes else
                       "a regression: `n_classes`=0"))
  reached = _inputs_reached(model.outputs)
  used = tuple(ours[id(t)] for t in model.inputs if id(t) in reached)
  ignored = tuple(ours[id(t)] for t in model.inputs if id(t) not in reached)
  if not used:
    raise errors.FlagError(
        "`%s`=%s: its logits depend on none of its inputs (%s); compute "
        "them from the columns it is given." % (
            setting, reference, ", ".join(ignored)))
  if ignored:  # The same layers, fed only what the logits depend on.
    model = tf_keras.Model(inputs={name: inputs[name] for name in used},
                           outputs=model.outputs[0], name=model.name)
  return model, dataclasses.replace(user, used=used, ignored=ignored)


def _inputs_reached(outputs) -> set:
  """The ids of the model inputs that `outputs` (Keras tensors of a
  functional model) are computed from, found through each tensor's Keras
  history (the layer call that made it, and that call's inputs)."""
  reached, seen, pending = set(), set(), list(outputs)
  while pending:
    tensor = pending.pop()
    if id(tensor) in seen:
      continue
    seen.add(id(tensor))
    history = tensor._keras_history  # pylint: disable=protected-access
    node = history.layer._inbound_nodes[history.node_index]  # pylint: disable=protected-access
    if node.is_input:
      reached.add(id(tensor))
    else:
      pending.extend(node.keras_inputs)
  return reached
