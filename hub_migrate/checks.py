"""What the migration cannot rewrite safely: reported, never changed.

* In a function that builds a trainable hub layer (trainable=True, or not a
  literal): graph collections. A hub.KerasLayer puts nothing in them, so
  `get_regularization_loss()`, `get_collection(REGULARIZATION_LOSSES /
  UPDATE_OPS / TRAINABLE_VARIABLES)`, `trainable_variables()` and an
  optimizer's `minimize` without `var_list` silently leave the layer out.
  A frozen layer needs none of them, so it is not reported; nor is a use
  the function already completes by hand (it reads a layer's `losses`, its
  `trainable_weights` or `trainable_variables`, or calls with training=),
  so that a fixed file passes.
* `trainable=True` on a model used with tags or a signature: a TF1 Hub
  format model, which TF2 cannot fine-tune (hub.KerasLayer raises).
* The TF1 APIs that tensorflow_hub 0.16 removed: module specs and
  signatures for export, the feature columns, image module info.
"""

from typing import Dict, List, Optional

import libcst as cst
from libcst import metadata

from hub_migrate import findings as findings_lib
from hub_migrate import names

REMOVED = {
    "ModuleSpec": "export a TF2 SavedModel with tf.saved_model.save",
    "create_module_spec": "export a TF2 SavedModel with tf.saved_model.save",
    "create_module_spec_from_saved_model":
        "export a TF2 SavedModel with tf.saved_model.save",
    "add_signature": "give the TF2 SavedModel a tf.function with an "
                     "input_signature (or a `signatures=` entry of "
                     "tf.saved_model.save)",
    "attach_message": "save the data as an asset or a variable of the TF2 "
                      "SavedModel",
    "load_module_spec": "load the model with hub.load(handle) or "
                        "hub.KerasLayer(handle)",
    "register_module_for_export": "export with tf.saved_model.save",
    "LatestModuleExporter": "export with tf.saved_model.save (an "
                            "Estimator's export_saved_model for serving)",
    "text_embedding_column": "apply hub.KerasLayer(handle) to the text "
                             "feature in the model_fn",
    "text_embedding_column_v2": "apply hub.KerasLayer(handle) to the text "
                                "feature in the model_fn",
    "sparse_text_embedding_column": "apply hub.KerasLayer(handle) to the "
                                    "text feature in the model_fn",
    "image_embedding_column": "apply hub.KerasLayer(handle) to the image "
                              "feature in the model_fn",
    "ImageModuleInfo": "read the model's documentation for its input size",
    "attach_image_module_info": "document the input size with the model",
    "get_expected_image_size": "read the model's documentation for its "
                               "input size",
    "get_num_image_channels": "read the model's documentation for its "
                              "input channels",
    "eval_function_for_module": "load the model with hub.load(handle) and "
                                "call it eagerly",
}
_COLLECTIONS = {
    "REGULARIZATION_LOSSES": "add the layer's losses to the loss "
                             "(+ sum({layer}.losses))",
    "UPDATE_OPS": "a TF2 SavedModel runs its own updates (batch norm "
                  "statistics) when the layer is called with training=True; "
                  "nothing to collect",
    "TRAINABLE_VARIABLES": "use {layer}.trainable_weights with the "
                           "other trainable variables",
}
_COLLECTION_STRINGS = {"regularization_losses": "REGULARIZATION_LOSSES",
                       "update_ops": "UPDATE_OPS",
                       "trainable_variables": "TRAINABLE_VARIABLES"}
_NO_COLLECTIONS = "the hub.KerasLayer adds nothing to graph collections"
# attribute read -> what it shows the function does by hand.
_EVIDENCE = {"losses": "losses", "trainable_weights": "weights",
             "trainable_variables": "weights"}
# collection -> what, done in the same function, makes its use fine.
_FIXED_BY = {"REGULARIZATION_LOSSES": "losses", "UPDATE_OPS": "training",
             "TRAINABLE_VARIABLES": "weights"}


def _argument(call: cst.Call, index: int, keyword: str):
  for position, arg in enumerate(call.args):
    if arg.keyword is not None:
      if arg.keyword.value == keyword:
        return arg
    elif position == index:
      return arg
  return None


class _Checker(cst.CSTVisitor):

  METADATA_DEPENDENCIES = (metadata.QualifiedNameProvider,
                           metadata.ParentNodeProvider,
                           metadata.PositionProvider)

  def __init__(self, found: findings_lib.Collector,
               module_layers: Dict[cst.Call, bool]):
    super().__init__()
    self.found = found
    self.module_layers = module_layers
    self.functions: List[Optional[cst.FunctionDef]] = [None]
    self.trainable_in = set()  # Functions building a trainable hub layer.
    self.layer_names = {}  # function -> the names its hub layers are given.
    # function -> what it already does by hand: reads some layer's
    # `losses` or trainable weights, calls something with training=.
    self.handled: Dict[Optional[cst.FunctionDef], set] = {}
    self.pending = []  # (function, node, what fixes it, message)

  def _position(self, node):
    return self.get_metadata(metadata.PositionProvider, node)

  def visit_FunctionDef(self, node):
    self.functions.append(node)

  def leave_FunctionDef(self, original_node):
    self.functions.pop()

  def visit_Attribute(self, node: cst.Attribute):
    self._removed(node, node.attr.value)
    evidence = _EVIDENCE.get(node.attr.value)
    if evidence and not names.ends_with(self.get_metadata, node,
                                        node.attr.value):
      self.handled.setdefault(self.functions[-1], set()).add(evidence)

  def visit_Arg(self, node: cst.Arg):
    if node.keyword is not None and node.keyword.value == "training":
      self.handled.setdefault(self.functions[-1], set()).add("training")

  def visit_ImportFrom(self, node: cst.ImportFrom):
    if (node.module is None or names.dotted(node.module) != names.HUB or
        isinstance(node.names, cst.ImportStar)):
      return
    for alias in node.names:
      self._removed(alias, names.dotted(alias.name))

  def _removed(self, node, attr: Optional[str]):
    if attr in REMOVED and (isinstance(node, cst.ImportAlias) or
                            names.names_hub(self.get_metadata, node, attr)):
      self.found.error(self._position(node), "removed-api",
                       "hub.%s was removed in tensorflow_hub 0.16 (with "
                       "hub.Module): %s." % (attr, REMOVED[attr]))

  def visit_Call(self, node: cst.Call):
    if (isinstance(node.func, (cst.Attribute, cst.Name)) and
        names.names_hub(self.get_metadata, node.func, "Module",
                        "KerasLayer")):
      self._layer(node)
    self._collections(node)

  def _layer(self, node: cst.Call):
    trainable_arg = _argument(node, 1, "trainable")
    trainable = (names.literal_bool(trainable_arg.value)
                 if trainable_arg is not None else False)
    if trainable is not False:
      self.trainable_in.add(self.functions[-1])
      parent = self.get_metadata(metadata.ParentNodeProvider, node)
      if (isinstance(parent, cst.Assign) and len(parent.targets) == 1 and
          isinstance(parent.targets[0].target, cst.Name)):
        self.layer_names.setdefault(self.functions[-1], []).append(
            parent.targets[0].target.value)
    if node in self.module_layers:
      tf1_format = self.module_layers[node]
    else:
      tf1_format = any(_argument(node, -1, k) is not None
                       for k in ("tags", "signature"))
    if trainable and tf1_format:
      self.found.error(
          self._position(node), "trainable-tf1",
          "trainable=True on a model used with tags or a signature: a TF1 "
          "Hub format model, which TF2 cannot fine-tune (hub.KerasLayer "
          "raises). Keep it frozen (trainable=False), or fine-tune the "
          "model's TF2 SavedModel, called without tags or signature.")
    elif trainable and node in self.module_layers:
      self.found.note(
          self._position(node), "trainable-handle",
          "fine-tuning needs a TF2 SavedModel; hub.Module loaded only TF1 "
          "Hub format, so point the handle to the model's TF2 SavedModel "
          "(on a model hub, usually its next version).")

  def _collections(self, node: cst.Call):
    func = node.func
    attr = func.attr.value if isinstance(func, cst.Attribute) else (
        func.value if isinstance(func, cst.Name) else None)
    tf_call = names.ends_with(self.get_metadata, func, attr or "-")
    message = fixed_by = None
    if tf_call and attr in ("get_regularization_loss",
                            "get_regularization_losses"):
      message = "%s() leaves out the hub layer's losses: %s: %s." % (
          attr, _NO_COLLECTIONS, _COLLECTIONS["REGULARIZATION_LOSSES"])
      fixed_by = _FIXED_BY["REGULARIZATION_LOSSES"]
    elif tf_call and attr in ("get_collection", "get_collection_ref"):
      key = _argument(node, 0, "key")
      if key is not None:
        name = (key.value.attr.value if isinstance(key.value, cst.Attribute)
                else _COLLECTION_STRINGS.get(names.literal_str(key.value)))
        if name in _COLLECTIONS:
          message = "%s(%s) leaves out the hub layer: %s: %s." % (
              attr, name, _NO_COLLECTIONS, _COLLECTIONS[name])
          fixed_by = _FIXED_BY[name]
    elif tf_call and attr == "trainable_variables" and not node.args:
      message = ("trainable_variables() leaves out the hub layer: %s: %s." %
                 (_NO_COLLECTIONS, _COLLECTIONS["TRAINABLE_VARIABLES"]))
      fixed_by = _FIXED_BY["TRAINABLE_VARIABLES"]
    elif (attr == "minimize" and isinstance(func, cst.Attribute) and
          _argument(node, 2, "var_list") is None):
      message = ("minimize() without var_list trains the variables of the "
                 "TRAINABLE_VARIABLES collection only: %s: pass var_list="
                 "{layer}.trainable_weights + the other trainable "
                 "variables." %
                 _NO_COLLECTIONS)
    if message:
      self.pending.append((self.functions[-1], node, fixed_by, message))

  def leave_Module(self, original_node):
    for function, node, fixed_by, message in self.pending:
      if (function in self.trainable_in and
          fixed_by not in self.handled.get(function, set())):
        layer = " + ".join(self.layer_names.get(function, [])) or "layer"
        self.found.error(self._position(node), "collections",
                         message.replace("{layer}", layer))


def check(wrapper: metadata.MetadataWrapper, found: findings_lib.Collector,
          module_layers: Dict[cst.Call, bool]) -> None:
  """Reports into `found`. `module_layers`: from modules.plan."""
  wrapper.visit(_Checker(found, module_layers))
