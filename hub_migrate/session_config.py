"""RunConfig session configs: `share_cluster_devices_in_session`.

A TF2 SavedModel in an Estimator trained with parameter servers fails with
"Assigned device '/job:ps/replica:0/task:0/device:CPU:0' does not match any
device" unless the session config sets `share_cluster_devices_in_session`:
at the top level of ConfigProto from TF 2.2 on, under `experimental` before
(harness.tf_versions, the rule trainer.estimator.config follows too).

* RunConfig(session_config=ConfigProto(...)) and a ConfigProto assigned to a
  name in the RunConfig's scope get the field (a keyword of the
  constructor), or have it moved to where the target TF version keeps it.
* RunConfig(...) without a session config, in code that uses hub models:
  where it is assigned to a name on a line of its own, an `if` after that
  line sets the field on the session config RunConfig made (on a cluster,
  the one with Estimator's device filters). Where it is an argument of a
  call in a statement of its own (`Estimator(config=RunConfig(...))`), it
  is first assigned to a new name, `run_config`, on a line before, and
  set the same way. Elsewhere (a lambda, a comprehension, a condition, a
  class body) the call gets a session config that sets the field.
* Each RunConfig given a session config without device filters gets a note:
  passing one drops Estimator's default device filters (tensorflow#26559: a
  worker whose session starts after the chief has gone waits for it).
* A session config whose making the tool cannot see (built by a function,
  read from an attribute) is reported.
"""

from typing import List, Optional

import libcst as cst
from libcst import metadata

from hub_migrate import edits as edits_lib
from hub_migrate import findings as findings_lib
from hub_migrate import names

FIELD = "share_cluster_devices_in_session"
# RunConfig(model_dir, tf_random_seed, save_summary_steps,
#           save_checkpoints_steps, save_checkpoints_secs, session_config...)
_SESSION_CONFIG_POSITION = 5
DEVICE_FILTERS_NOTE = (
    "passing a session_config drops the device filters Estimator sets by "
    "default on a cluster (a worker then waits on every other task, "
    "tensorflow/tensorflow#26559); keep them: build the RunConfig first, "
    "then config.replace(session_config=...) with device_filters "
    "['/job:ps', '/job:%s/task:%d' % (config.task_type, config.task_id)] "
    "for workers and ['/job:ps', '/job:chief'] for the chief "
    "(trainer.estimator.config.device_filters has the whole rule).")

ADDED_CONFIG_NOTE = (
    "this RunConfig is made where hub-migrate cannot move it (a lambda, a "
    "comprehension, a condition, a class body), so it got a session "
    "config of its own, which drops the device filters Estimator sets by "
    "default on a cluster (a worker then waits on every other task, "
    "tensorflow/tensorflow#26559); make it on a line of its own "
    "(`config = RunConfig(...)`) and run hub-migrate again: it then sets "
    "the field on RunConfig's own session config, filters and all.")


class _Planner(cst.CSTVisitor):

  METADATA_DEPENDENCIES = (metadata.QualifiedNameProvider,
                           metadata.ScopeProvider,
                           metadata.ParentNodeProvider,
                           metadata.PositionProvider)

  def __init__(self, edits: edits_lib.Edits, found: findings_lib.Collector,
               top_level: bool, uses_hub: bool, tf_alias: Optional[str]):
    super().__init__()
    self.edits, self.found = edits, found
    self.top_level, self.uses_hub, self.tf_alias = top_level, uses_hub, tf_alias
    self.taken = None  # The names the file uses (_unused_name).
    self.hoisted = {}  # Statement line -> {name: RunConfig call} (_hoist).

  def _position(self, node):
    return self.get_metadata(metadata.PositionProvider, node)

  def _layout(self, call: cst.Call) -> edits_lib.Layout:
    return edits_lib.layout_of(call, self._position, self.lines)

  def _is(self, node, suffix):
    return names.ends_with(self.get_metadata, node, suffix)

  def visit_Call(self, node: cst.Call):
    if not self._is(node.func, "RunConfig"):
      return
    if len([a for a in node.args if a.keyword is None and not a.star]) > (
        _SESSION_CONFIG_POSITION) or any(a.star for a in node.args):
      self.found.error(self._position(node), "session-config",
                       "RunConfig's session_config is passed by position or "
                       "through *args/**kwargs; pass it as session_config= "
                       "and run hub-migrate again.")
      return
    given = [a for a in node.args
             if a.keyword is not None and a.keyword.value == "session_config"]
    if not given:
      if self.uses_hub:
        self._add_session_config(node)
      return
    value = given[0].value
    if isinstance(value, cst.Call) and self._is(value.func, "ConfigProto"):
      self._fix_constructor(value)
      filtered = "device_filters" in edits_lib.keyword_names(value)
    elif isinstance(value, cst.Name):
      filtered = self._fix_named(node, value.value)
      if filtered is None:
        return
    else:
      self.found.error(
          self._position(value), "session-config",
          "hub-migrate cannot see where this session_config is built; set "
          "%s = True on it." % self._where())
      return
    if not filtered:
      self.found.note(self._position(node), "device-filters",
                      DEVICE_FILTERS_NOTE)

  def _where(self) -> str:
    return ("`config.%s` (top level, TF 2.2 and later)" % FIELD
            if self.top_level else
            "`config.experimental.%s` (before TF 2.2)" % FIELD)

  # The three places a session config is made.

  def _add_session_config(self, run_config: cst.Call) -> None:
    if self._set_after(run_config) or self._hoist(run_config):
      return
    if self.tf_alias is None:
      self.found.error(self._position(run_config), "session-config",
                       "this RunConfig needs a session_config setting %s, "
                       "and the file does not `import tensorflow`; add one "
                       "by hand." % FIELD)
      return
    proto = "%s.compat.v1.ConfigProto" % self.tf_alias
    layout = self._layout(run_config)
    # Where the new argument starts: under the call's last argument when it
    # has its own line, after the opening parenthesis when the call has
    # arguments on its line, else on a line of its own, indented.
    if run_config.args and "\n" in cst.Module([]).code_for_node(run_config):
      last = run_config.args[-1]
      column = self._position(last.keyword or last.value).start.column
    elif run_config.args:
      column = layout.paren_column + 1
    else:
      column = layout.indent + 4
    start = column + len("session_config=")
    if self.top_level:
      code = _wrap(proto, "%s=True" % FIELD, start, column + 4)
    else:
      code = _wrap(proto, "experimental=" + _wrap(
          proto + ".Experimental", "%s=True" % FIELD,
          column + 4 + len("experimental="), column + 8), start, column + 4)
    added = edits_lib.keyword("session_config", _absolute(
        edits_lib.expression(code)))
    self.edits.replace(run_config, lambda updated: edits_lib.with_args(
        updated, list(updated.args), [added], layout))
    self.found.note(self._position(run_config), "device-filters",
                    ADDED_CONFIG_NOTE)

  def _set_after(self, run_config: cst.Call) -> bool:
    """NAME = RunConfig(...), alone on its line: the field is set after it,

        if NAME.session_config is not None:
          NAME.session_config.FIELD = True

    on the session config RunConfig makes itself on a cluster, which keeps
    Estimator's device filters (there is none without a cluster, where no
    variable is on a ps). Returns False where the call is not so assigned.
    """
    assign = self.get_metadata(metadata.ParentNodeProvider, run_config)
    if not (isinstance(assign, cst.Assign) and len(assign.targets) == 1 and
            isinstance(assign.targets[0].target, cst.Name)):
      return False
    line = self.get_metadata(metadata.ParentNodeProvider, assign)
    if not (isinstance(line, cst.SimpleStatementLine) and
            len(line.body) == 1):
      return False
    target = assign.targets[0].target
    scope = self.get_metadata(metadata.ScopeProvider, run_config)
    made = [a for a in scope.assignments[target.value]
            if isinstance(a, metadata.Assignment) and a.node is target]
    for access in (made[0].references if made else ()):
      chain = self._attribute_chain(access.node)
      fields = [a.attr.value for a in chain]
      if fields[:1] == ["session_config"] and _sets_field(fields[1:]):
        self._place(chain[1:], fields[1:])  # Set already (a second run).
        return True
    statement = self._setter(target.value)
    self.edits.replace(line, lambda updated: cst.FlattenSentinel(
        [updated, statement]))
    return True

  def _setter(self, name: str) -> cst.BaseStatement:
    """The `if` that sets the field on NAME's session config, with its
    comment."""
    where = FIELD if self.top_level else "experimental." + FIELD
    code = ("# For TF2 SavedModels with variables on the ps (hub-migrate); "
            "this is\n"
            "# RunConfig's own session config, so its device filters stay.\n"
            "if {0}.session_config is not None:\n"
            "{1}{0}.session_config.{2} = True\n").format(
                name, self.module.default_indent, where)
    return cst.parse_statement(code, config=self.module.config_for_parsing)

  def _hoist(self, run_config: cst.Call) -> bool:
    """RunConfig(...) as an argument of a call in a statement alone on its
    line (`Estimator(model_fn, config=RunConfig(...))`, `return f(...)`):
    it is made first, on lines of its own before that statement, as

        run_config = RunConfig(...)
        if run_config.session_config is not None: ... (as _set_after)

    and the statement takes the name (one no other line of the file uses).
    The RunConfig is then made before the statement's other arguments are
    evaluated, as it would be if its author had named it. Returns False
    where the call is elsewhere (a lambda, a comprehension, a condition,
    a default value: moving it would change whether or when it runs; a
    class body, where the name would be a new attribute)."""
    node, parent = run_config, self.get_metadata(metadata.ParentNodeProvider,
                                                 run_config)
    while isinstance(parent, (cst.Arg, cst.Call)):
      if isinstance(parent, cst.Call) and not isinstance(node, cst.Arg):
        return False  # RunConfig(...)(...): not an argument.
      node, parent = parent, self.get_metadata(metadata.ParentNodeProvider,
                                               parent)
    if not (isinstance(parent, (cst.Assign, cst.AnnAssign, cst.Expr,
                                cst.Return)) and
            getattr(parent, "value", None) is node):
      return False
    line = self.get_metadata(metadata.ParentNodeProvider, parent)
    if not (isinstance(line, cst.SimpleStatementLine) and
            len(line.body) == 1):
      return False
    if isinstance(self.get_metadata(metadata.ScopeProvider, run_config),
                  metadata.ClassScope):
      return False  # The name would be a new attribute of the class.
    name = self._unused_name("run_config")
    # name -> the call as rewritten (filled in as the rewrite leaves it,
    # before it leaves the line); one line may make more than one.
    made = self.hoisted.setdefault(line, {})
    made[name] = None

    def named(updated):
      made[name] = updated
      return cst.Name(name)

    def before(updated):
      statements = []
      for each, call in made.items():
        statements += [cst.SimpleStatementLine(
            [cst.Assign([cst.AssignTarget(cst.Name(each))], call)]),
                       self._setter(each)]
      statements[0] = statements[0].with_changes(
          leading_lines=updated.leading_lines)  # Its comments go first.
      return cst.FlattenSentinel(statements + [
          updated.with_changes(leading_lines=())])
    self.edits.replace(run_config, named)
    self.edits.replace(line, before)
    return True

  def _unused_name(self, stem: str) -> str:
    """`stem`, or stem_2, stem_3, ...: the first no name in the file is."""
    if self.taken is None:
      names = _Names()
      self.module.visit(names)
      self.taken = names.names
    name, count = stem, 1
    while name in self.taken:
      count += 1
      name = "%s_%d" % (stem, count)
    self.taken.add(name)
    return name

  def _place(self, chain: List[cst.Attribute], fields: List[str]) -> None:
    """X.FIELD or X.experimental.FIELD (`chain` its Attribute nodes,
    innermost first; `fields` their names) where the target TF keeps it."""
    if self.top_level and fields[0] == "experimental":
      # X.experimental.FIELD -> X.FIELD
      self.edits.replace(chain[1], lambda updated: updated.with_changes(
          value=updated.value.value))
    elif not self.top_level and fields[0] == FIELD:
      # X.FIELD -> X.experimental.FIELD
      self.edits.replace(chain[0], lambda updated: updated.with_changes(
          value=updated.with_changes(attr=cst.Name("experimental")),
          attr=cst.Name(FIELD)))

  def _fix_constructor(self, proto: cst.Call) -> None:
    """ConfigProto(...) gets the field where the target TF keeps it."""
    keywords = edits_lib.keyword_names(proto)
    experimental = [a for a in proto.args if a.keyword is not None and
                    a.keyword.value == "experimental"]
    inner = experimental[0].value if experimental else None
    inner_sets = (isinstance(inner, cst.Call) and
                  FIELD in edits_lib.keyword_names(inner))
    if self.top_level:
      if FIELD in keywords:
        return
      if inner_sets:
        value = [a for a in inner.args if a.keyword.value == FIELD][0].value
        self.edits.replace(proto, lambda updated: _move_up(updated, value))
      else:
        layout = self._layout(proto)
        self.edits.replace(proto, lambda updated: edits_lib.with_args(
            updated, list(updated.args), [edits_lib.keyword(
                FIELD, cst.Name("True"))], layout))
      return
    if inner_sets:
      return
    if FIELD in keywords or experimental:
      self.found.error(self._position(proto), "session-config",
                       "this ConfigProto sets %s at the top level or its "
                       "own `experimental`; before TF 2.2 the field is "
                       "experimental.%s: set it there by hand." % (FIELD,
                                                                   FIELD))
      return
    proto_code = cst.Module([]).code_for_node(proto.func)
    layout = self._layout(proto)
    column = (layout.paren_column + 1 if proto.args else layout.indent + 4)
    added = edits_lib.keyword("experimental", _absolute(edits_lib.expression(
        _wrap(proto_code + ".Experimental", "%s=True" % FIELD,
              column + len("experimental="), column + 4))))
    self.edits.replace(proto, lambda updated: edits_lib.with_args(
        updated, list(updated.args), [added], layout))

  def _fix_named(self, run_config: cst.Call, name: str) -> Optional[bool]:
    """session_config=NAME: the ConfigProto assigned to NAME in this scope.

    Returns whether it sets device filters; None where it was reported.
    """
    scope = self.get_metadata(metadata.ScopeProvider, run_config)
    assignments = [a for a in scope.assignments[name]
                   if isinstance(a, metadata.Assignment)]
    made = None
    if len(assignments) == 1:
      parent = self.get_metadata(metadata.ParentNodeProvider,
                                 assignments[0].node)
      if isinstance(parent, cst.AssignTarget):
        parent = self.get_metadata(metadata.ParentNodeProvider, parent)
      value = getattr(parent, "value", None)
      if (isinstance(parent, cst.Assign) and isinstance(value, cst.Call) and
          self._is(value.func, "ConfigProto")):
        made = value
    if made is None:
      self.found.error(
          self._position(run_config), "session-config",
          "hub-migrate cannot see where the session config `%s` is built "
          "(one `%s = ConfigProto(...)` in this scope); set %s on it." % (
              name, name, self._where()))
      return None
    sets, filtered = [], "device_filters" in edits_lib.keyword_names(made)
    for access in assignments[0].references:
      chain = self._attribute_chain(access.node)
      if chain and chain[0].attr.value == "device_filters":
        filtered = True
      fields = [a.attr.value for a in chain]
      if _sets_field(fields):
        sets.append((chain, fields))
    if not sets:
      self._fix_constructor(made)
    for chain, fields in sets:
      self._place(chain, fields)
    return filtered

  def _attribute_chain(self, node) -> List[cst.Attribute]:
    """NAME.a.b -> the Attribute nodes, innermost first."""
    chain = []
    parent = self.get_metadata(metadata.ParentNodeProvider, node)
    while isinstance(parent, cst.Attribute) and parent.value is node:
      chain.append(parent)
      node = parent
      parent = self.get_metadata(metadata.ParentNodeProvider, node)
    return chain


class _Names(cst.CSTVisitor):
  """Every name a module uses."""

  def __init__(self):
    super().__init__()
    self.names = set()

  def visit_Name(self, node: cst.Name) -> None:
    self.names.add(node.value)


def _sets_field(fields: List[str]) -> bool:
  """Whether X.<fields> names the field: [FIELD] or [experimental, FIELD]."""
  return fields[-1:] == [FIELD] and fields[:-1] in ([], ["experimental"])


def _wrap(callee: str, argument: str, start: int, indent: int) -> str:
  """callee(argument), starting at column `start`; when it does not fit,
  the argument on a line of its own at column `indent`."""
  code = "%s(%s)" % (callee, argument)
  if start + len(code.split("\n")[0]) <= edits_lib.MAX_LINE:
    return code
  return "%s(\n%s%s)" % (callee, " " * indent, argument)


def _absolute(node: cst.CSTNode) -> cst.CSTNode:
  """A parsed expression whose line breaks give absolute columns (not
  under the block's indentation)."""

  class Absolute(cst.CSTTransformer):

    def leave_ParenthesizedWhitespace(self, original_node, updated_node):
      return updated_node.with_changes(indent=False)

  return node.visit(Absolute())


def _move_up(proto: cst.Call, value: cst.BaseExpression) -> cst.Call:
  """ConfigProto(experimental=E(FIELD=v, ...)) -> ConfigProto(FIELD=v,
  experimental=E(...)) (the experimental argument goes when empty)."""
  keep = []
  for arg in proto.args:
    if arg.keyword is not None and arg.keyword.value == "experimental":
      inner = arg.value
      rest = [a for a in inner.args if a.keyword.value != FIELD]
      if rest:
        keep.append(arg.with_changes(value=edits_lib.with_args(inner, rest)))
    else:
      keep.append(arg)
  return edits_lib.with_args(proto, keep, [edits_lib.keyword(FIELD, value)])


def plan(wrapper: metadata.MetadataWrapper, edits: edits_lib.Edits,
         found: findings_lib.Collector, *, top_level: bool, uses_hub: bool,
         tf_alias: Optional[str]) -> None:
  """Plans the session-config rewrites of a module into `edits`."""
  planner = _Planner(edits, found, top_level, uses_hub, tf_alias)
  planner.module = wrapper.module
  planner.lines = wrapper.module.code.splitlines()
  wrapper.visit(planner)
