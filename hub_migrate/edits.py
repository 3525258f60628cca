"""Planned changes to a syntax tree, applied in one pass; argument lists
edited without losing their layout."""

import dataclasses
from typing import Callable, Dict, List, Optional, Sequence

import libcst as cst

Replace = Callable[[cst.CSTNode], cst.CSTNode]


class Edits:
  """original node -> function of the node as rewritten so far (its
  children may have changed too) -> its replacement."""

  def __init__(self):
    self.replacements: Dict[cst.CSTNode, Replace] = {}

  def replace(self, original: cst.CSTNode, how: Replace) -> None:
    self.replacements[original] = how

  def __bool__(self):
    return bool(self.replacements)

  def apply(self, module: cst.Module) -> cst.Module:
    return module.visit(_Rewriter(self.replacements))


class _Rewriter(cst.CSTTransformer):

  def __init__(self, replacements):
    super().__init__()
    self._replacements = replacements

  def on_leave(self, original_node, updated_node):
    updated = super().on_leave(original_node, updated_node)
    how = self._replacements.get(original_node)
    return how(updated) if how is not None else updated


def keyword(name: str, value: cst.BaseExpression) -> cst.Arg:
  """`name=value`, written as code usually writes keyword arguments."""
  return cst.Arg(value=value, keyword=cst.Name(name),
                 equal=cst.AssignEqual(
                     whitespace_before=cst.SimpleWhitespace(""),
                     whitespace_after=cst.SimpleWhitespace("")))


def expression(code: str) -> cst.BaseExpression:
  return cst.parse_expression(code)


def _trailing_comma(args: Sequence[cst.Arg]):
  return args[-1].comma if args else cst.MaybeSentinel.DEFAULT


# Lines the rewrite would make longer than this are wrapped.
MAX_LINE = 79


@dataclasses.dataclass(frozen=True)
class Layout:
  """Where a call sits: the column of its opening parenthesis and the length
  of the line it starts on."""
  paren_column: int
  line_length: int
  indent: int = 0  # Of the line the call starts on.

  def grown(self, by: int) -> "Layout":
    """The layout once the callee's name is `by` characters longer."""
    return Layout(self.paren_column + by, self.line_length + by, self.indent)


def layout_of(call: cst.Call, position: Callable[[cst.CSTNode], object],
              lines: Sequence[str]) -> Layout:
  """The layout of `call`; `position` gives a node's code range (libcst's
  PositionProvider) and `lines` are the module's lines."""
  text = lines[position(call).start.line - 1]
  return Layout(position(call.func).end.column, len(text),
                len(text) - len(text.lstrip(" ")))


def _single_line(call: cst.Call) -> bool:
  return "\n" not in cst.Module([]).code_for_node(call)


def _wrapped_separator(layout: Layout) -> cst.Comma:
  return cst.Comma(whitespace_after=cst.ParenthesizedWhitespace(
      first_line=cst.TrailingWhitespace(), empty_lines=[], indent=False,
      last_line=cst.SimpleWhitespace(" " * (layout.paren_column + 1))))


def with_args(call: cst.Call, keep: Sequence[cst.Arg],
              add: Sequence[cst.Arg] = (),
              layout: Optional[Layout] = None) -> cst.Call:
  """`call` with arguments `keep` (some of its own, in order) then `add`.

  A trailing comma (one argument per line) stays trailing; separators are
  written as the call already writes them. A one-line call that `add`
  would make longer than MAX_LINE (`layout` says how long it is) gets the
  added arguments on a new line, under its first argument.
  """
  trailing = _trailing_comma(call.args)
  args: List[cst.Arg] = list(keep) + list(add)
  if not args:
    return call.with_changes(args=())
  separators = [a.comma for a in call.args[:-1]
                if isinstance(a.comma, cst.Comma)]
  separator = separators[-1] if separators else None
  if layout is not None and add and _single_line(call):
    added = sum(len(cst.Module([]).code_for_node(a)) + 2 for a in add)
    if layout.line_length + added > MAX_LINE and not keep:
      # f() -> f(\n    new=...): a hanging indent under the line.
      return call.with_changes(
          args=[a.with_changes(comma=cst.MaybeSentinel.DEFAULT)
                for a in add],
          whitespace_before_args=cst.ParenthesizedWhitespace(
              first_line=cst.TrailingWhitespace(), empty_lines=[],
              indent=False,
              last_line=cst.SimpleWhitespace(" " * (layout.indent + 4))))
    if layout.line_length + added > MAX_LINE:
      wrapped = _wrapped_separator(layout)
      args = ([a.with_changes(comma=separator or cst.MaybeSentinel.DEFAULT)
               for a in keep[:-1]] +
              [keep[-1].with_changes(comma=wrapped)] +
              [a.with_changes(comma=cst.Comma(
                  whitespace_after=cst.SimpleWhitespace(" ")))
               for a in add[:-1]] + [add[-1].with_changes(comma=trailing)])
      return call.with_changes(args=args)
  fixed = []
  for index, arg in enumerate(args):
    last = index == len(args) - 1
    if last:
      arg = arg.with_changes(comma=trailing)
    elif not isinstance(arg.comma, cst.Comma) or index >= len(keep) - 1:
      # The old last argument, or a new one: separate as the call does.
      arg = arg.with_changes(comma=separator or cst.MaybeSentinel.DEFAULT)
    fixed.append(arg)
  return call.with_changes(args=fixed)


def keyword_names(call: cst.Call) -> List[str]:
  return [arg.keyword.value for arg in call.args if arg.keyword is not None]
