"""hub.Module constructions and their calls, rewritten for TF2.

TF1, what users have:

    m = hub.Module(handle, trainable=T, tags=S)
    y = m(x, signature="sig", as_dict=True)

In a model_fn (or wherever the low-level form does not fit), the call's
choices move to the layer's constructor, as hub.KerasLayer takes them:

    m = hub.KerasLayer(handle, trainable=T, tags=S, signature="sig",
                       signature_outputs_as_dict=True)
    y = m(x)

    m(x)                                  -> KerasLayer(handle)  (hub picks
                                             the legacy model's `default`
                                             signature and output itself)
    m(x, signature="sig")                 -> signature="sig", output_key="default"
    m(x, as_dict=True)                    -> signature="default",
                                             signature_outputs_as_dict=True

Outside a model_fn, where every call names its signature and passes named
inputs (a dict), the low-level form of the migration guide:

    m = hub.load(handle, tags=S)
    y = m.signatures["sig"](x1=..., x2=...)      (["default"] unless as_dict)

The module object is followed through its own name only (one assignment in
its scope, then calls). Anything else is refused with a finding: passed to
another function, stored on an object, a signature chosen at run time, calls
that disagree on the signature in a model_fn.
"""

import dataclasses
from typing import List, Optional, Sequence

import libcst as cst
from libcst import metadata

from hub_migrate import edits as edits_lib
from hub_migrate import findings as findings_lib
from hub_migrate import names

# hub.Module(spec, trainable=False, name="module", tags=None)
_CTOR_PARAMS = ("spec", "trainable", "name", "tags")
# module(inputs=None, signature=None, as_dict=None)
_CALL_PARAMS = ("inputs", "signature", "as_dict")
HOW_TO = "see docs/migrating.md"


class Refused(Exception):
  """This construction cannot be rewritten safely: message and where."""

  def __init__(self, node: cst.CSTNode, message: str):
    super().__init__(message)
    self.node = node


@dataclasses.dataclass
class _Call:
  """One call of a module: m(inputs, signature=..., as_dict=...)."""
  node: cst.Call
  inputs: cst.BaseExpression
  signature: Optional[cst.SimpleString]
  as_dict: bool

  @property
  def signature_name(self) -> Optional[str]:
    return names.literal_str(self.signature)

  def named_inputs(self) -> Optional[List[cst.Arg]]:
    """The inputs as keyword arguments when they are a dict of literal
    names (dict(x1=a) or {"x1": a}); else None."""
    inputs = self.inputs
    if (isinstance(inputs, cst.Call) and names.dotted(inputs.func) == "dict"
        and inputs.args and all(a.keyword is not None and not a.star
                                for a in inputs.args)):
      return list(inputs.args)
    if isinstance(inputs, cst.Dict) and inputs.elements:
      args = []
      for element in inputs.elements:
        key = (names.literal_str(element.key)
               if isinstance(element, cst.DictElement) else None)
        if key is None or not key.isidentifier():
          return None
        args.append(edits_lib.keyword(key, element.value))
      return args
    return None


def _arguments(call: cst.Call, params: Sequence[str], what: str):
  """name -> Arg of a call, positional ones named by `params`."""
  found = {}
  for index, arg in enumerate(call.args):
    if arg.star:
      raise Refused(call, "%s takes *args or **kwargs; hub-migrate cannot "
                    "see its arguments" % what)
    if arg.keyword is None:
      if index >= len(params):
        raise Refused(call, "%s has more positional arguments than it "
                      "takes" % what)
      found[params[index]] = arg
    else:
      if arg.keyword.value not in params:
        raise Refused(call, "%s has the argument `%s`, which it does not "
                      "take (it takes %s)" % (what, arg.keyword.value,
                                              ", ".join(params)))
      found[arg.keyword.value] = arg
  return found


def _read_call(call: cst.Call, module_name: str) -> _Call:
  what = "the call of `%s`" % module_name
  args = _arguments(call, _CALL_PARAMS, what)
  if "inputs" not in args:
    raise Refused(call, "%s passes no inputs" % what)
  signature = args.get("signature")
  if signature is not None:
    if names.literal_str(signature.value) is None:
      if names.dotted(signature.value) == "None":
        signature = None
      else:
        raise Refused(call, "%s chooses its signature at run time "
                      "(signature=%s); a hub.KerasLayer is built for one "
                      "signature: build one layer per signature, or use "
                      "hub.load(handle).signatures[name]" % (
                          what, cst.Module([]).code_for_node(
                              signature.value)))
  as_dict = False
  if "as_dict" in args:
    value = names.literal_bool(args["as_dict"].value)
    if value is None and names.dotted(args["as_dict"].value) != "None":
      raise Refused(call, "%s sets as_dict at run time; write True or "
                    "False" % what)
    as_dict = bool(value)
  return _Call(call, args["inputs"].value,
               signature.value if signature is not None else None, as_dict)


def _is_model_fn(function: Optional[cst.FunctionDef]) -> bool:
  """An Estimator model_fn: named so, or taking features and mode/labels."""
  if function is None:
    return False
  params = {p.name.value for p in function.params.params}
  return ("model_fn" in function.name.value or
          ("features" in params and bool(params & {"mode", "labels"})))


class _Finder(cst.CSTVisitor):
  """Plans the rewrite of every hub.Module construction of a module."""

  METADATA_DEPENDENCIES = (metadata.QualifiedNameProvider,
                           metadata.ScopeProvider,
                           metadata.ParentNodeProvider,
                           metadata.PositionProvider)

  def __init__(self, edits: edits_lib.Edits,
               found: findings_lib.Collector):
    super().__init__()
    self.edits, self.found = edits, found
    self.functions: List[cst.FunctionDef] = []
    # hub.Module construction -> whether its layer needs tags or a
    # signature (a TF1 Hub format model, which cannot be fine-tuned).
    self.layers = {}

  def visit_FunctionDef(self, node):
    self.functions.append(node)

  def leave_FunctionDef(self, original_node):
    self.functions.pop()

  def _position(self, node):
    return self.get_metadata(metadata.PositionProvider, node)

  def _layout(self, call: cst.Call) -> edits_lib.Layout:
    return edits_lib.layout_of(call, self._position, self.lines)

  def _parent(self, node):
    return self.get_metadata(metadata.ParentNodeProvider, node)

  def visit_Call(self, node: cst.Call):
    if not (isinstance(node.func, (cst.Attribute, cst.Name)) and
            names.names_hub(self.get_metadata, node.func, "Module")):
      return
    try:
      self._plan(node)
    except Refused as refused:
      self.found.error(self._position(refused.node), "module-not-rewritten",
                       "hub.Module is not rewritten: %s; %s." % (refused,
                                                                 HOW_TO))

  def _plan(self, ctor: cst.Call) -> None:
    if not isinstance(ctor.func, cst.Attribute):
      raise Refused(ctor, "`Module` is imported by name; write `import "
                    "tensorflow_hub as hub` and `hub.Module(...)`, then run "
                    "hub-migrate again")
    ctor_args = _arguments(ctor, _CTOR_PARAMS, "hub.Module(...)")
    if "spec" not in ctor_args:
      raise Refused(ctor, "hub.Module(...) has no handle")
    parent = self._parent(ctor)
    if isinstance(parent, cst.Call) and parent.func is ctor:
      # hub.Module(handle)(x, ...): built and called at once.
      calls, name = [_read_call(parent, "hub.Module(...)")], None
    elif (isinstance(parent, cst.Assign) and len(parent.targets) == 1 and
          isinstance(parent.targets[0].target, cst.Name)):
      name = parent.targets[0].target.value
      calls = [_read_call(call, name) for call in self._calls_of(parent, name)]
    else:
      raise Refused(ctor, "the module is not assigned to a plain name, so "
                    "hub-migrate cannot follow its calls")
    function = self.functions[-1] if self.functions else None
    low_level = (name is not None and not _is_model_fn(function) and calls
                 and all(c.signature_name and c.named_inputs() is not None
                         for c in calls))
    if low_level:
      self._plan_low_level(ctor, ctor_args, name, calls)
    else:
      self._plan_layer(ctor, ctor_args, calls)

  def _calls_of(self, assign: cst.Assign, name: str) -> List[cst.Call]:
    """The calls of `name` assigned by `assign`; refuses any other use."""
    scope = self.get_metadata(metadata.ScopeProvider, assign)
    assignments = [a for a in scope.assignments[name]
                   if isinstance(a, metadata.Assignment)]
    if len(assignments) != 1:
      raise Refused(assign, "`%s` is assigned %d times in its scope; "
                    "hub-migrate follows a module with one assignment" % (
                        name, len(assignments)))
    calls = []
    for access in sorted(assignments[0].references,
                         key=lambda a: (self._position(a.node).start.line,
                                        self._position(a.node).start.column)):
      use = access.node
      parent = self._parent(use)
      if isinstance(parent, cst.Call) and parent.func is use:
        calls.append(parent)
      elif isinstance(parent, cst.Attribute) and parent.attr.value == "export":
        raise Refused(use, "`%s.export(...)` was removed with hub.Module "
                      "in tensorflow_hub 0.16: export a TF2 SavedModel with "
                      "tf.saved_model.save" % name)
      elif isinstance(parent, cst.Attribute):
        raise Refused(use, "`%s.%s` is used; a hub.KerasLayer has other "
                      "attributes (variables, trainable_weights, losses)" % (
                          name, parent.attr.value))
      elif isinstance(parent, cst.Arg):
        call = self._parent(parent)
        raise Refused(use, "`%s` is passed to `%s`, where hub-migrate "
                      "cannot follow it" % (
                          name, names.dotted(call.func) or "a function"))
      else:
        raise Refused(use, "`%s` is used other than by calling it" % name)
    return calls

  def _plan_layer(self, ctor, ctor_args, calls: List[_Call]) -> None:
    choices = {(c.signature_name, c.as_dict) for c in calls}
    if len(choices) > 1:
      described = ", ".join(
          "line %d: signature=%r, as_dict=%s" % (
              self._position(c.node).start.line, c.signature_name, c.as_dict)
          for c in calls)
      raise Refused(ctor, "its calls choose different signatures or outputs "
                    "(%s); a hub.KerasLayer serves one: build one layer per "
                    "choice" % described)
    signature, as_dict = choices.pop() if choices else (None, False)
    signature_node = calls[0].signature if calls else None
    added = []
    if signature is not None or as_dict:
      added.append(edits_lib.keyword(
          "signature", signature_node or edits_lib.expression('"default"')))
      if as_dict:
        added.append(edits_lib.keyword("signature_outputs_as_dict",
                                       cst.Name("True")))
      else:
        added.append(edits_lib.keyword("output_key",
                                       edits_lib.expression('"default"')))
    self.layers[ctor] = "tags" in ctor_args or bool(added)
    layout = self._layout(ctor).grown(len("KerasLayer") - len("Module"))

    def rewrite_ctor(updated: cst.Call) -> cst.Call:
      keep = [_as_keyword(arg, param)
              for param, arg in _named(updated.args, _CTOR_PARAMS)]
      call = edits_lib.with_args(updated, keep, added, layout)
      return call.with_changes(func=updated.func.with_changes(
          attr=cst.Name("KerasLayer")))

    self.edits.replace(ctor, rewrite_ctor)
    for call in calls:
      self.edits.replace(call.node, _drop_choices)

  def _plan_low_level(self, ctor, ctor_args, name: str,
                      calls: List[_Call]) -> None:
    self.layers[ctor] = True

    def rewrite_ctor(updated: cst.Call) -> cst.Call:
      keep = [_as_keyword(arg, param)
              for param, arg in _named(updated.args, _CTOR_PARAMS)
              if param in ("spec", "tags")]
      call = edits_lib.with_args(updated, keep)
      return call.with_changes(func=updated.func.with_changes(
          attr=cst.Name("load")))

    self.edits.replace(ctor, rewrite_ctor)
    for call in calls:
      self.edits.replace(call.node, _signature_call(name, call))


def _named(args: Sequence[cst.Arg], params: Sequence[str]):
  """(parameter name, Arg) of arguments already checked by _arguments."""
  return [(arg.keyword.value if arg.keyword is not None else params[index],
           arg) for index, arg in enumerate(args)]


def _as_keyword(arg: cst.Arg, param: str) -> cst.Arg:
  """A positional constructor argument after the handle, as a keyword
  (hub.KerasLayer's positional parameters differ)."""
  if arg.keyword is not None or param == "spec":
    return arg
  return arg.with_changes(keyword=cst.Name(param), equal=cst.AssignEqual(
      whitespace_before=cst.SimpleWhitespace(""),
      whitespace_after=cst.SimpleWhitespace("")))


def _drop_choices(updated: cst.Call) -> cst.Call:
  """m(x, signature=..., as_dict=...) -> m(x)."""
  keep = []
  for param, arg in _named(updated.args, _CALL_PARAMS):
    if param == "inputs":
      keep.append(arg.with_changes(keyword=None, equal=cst.MaybeSentinel.DEFAULT)
                  if arg.keyword is not None else arg)
  return edits_lib.with_args(updated, keep)


def _signature_call(name: str, call: _Call):
  """m(dict(x1=a), signature="sig", as_dict=A) ->
  m.signatures["sig"](x1=a), then ["default"] unless A."""
  signature_code = cst.Module([]).code_for_node(call.signature)

  def rewrite(updated: cst.Call) -> cst.BaseExpression:
    inputs = _read_call(updated, name).named_inputs()
    func = edits_lib.expression("%s.signatures[%s]" % (name, signature_code))
    new = cst.Call(func=func, args=inputs)
    new = edits_lib.with_args(new, inputs)
    if call.as_dict:
      return new.with_changes(lpar=updated.lpar, rpar=updated.rpar)
    return cst.Subscript(value=new, slice=[cst.SubscriptElement(
        cst.Index(edits_lib.expression('"default"')))],
                         lpar=updated.lpar, rpar=updated.rpar)

  return rewrite


def plan(wrapper: metadata.MetadataWrapper, edits: edits_lib.Edits,
         found: findings_lib.Collector):
  """Plans the rewrites into `edits`; returns the hub.Module constructions
  planned -> whether the model needs tags or a signature."""
  finder = _Finder(edits, found)
  finder.lines = wrapper.module.code.splitlines()
  wrapper.visit(finder)
  return finder.layers
