"""What a piece of syntax names, read with libcst's metadata."""

from typing import Optional, Set

import libcst as cst
from libcst import metadata

HUB = "tensorflow_hub"
TF = "tensorflow"


def qualified_names(get_metadata, node: cst.CSTNode) -> Set[str]:
  """The dotted names `node` may refer to, through imports and aliases:
  `hub.Module` after `import tensorflow_hub as hub` is
  {"tensorflow_hub.Module"}. `get_metadata`: a visitor's."""
  found = get_metadata(metadata.QualifiedNameProvider, node, ())
  return {name.name for name in found}


def names_hub(get_metadata, node: cst.CSTNode, *attrs: str) -> bool:
  """Whether `node` names tensorflow_hub.<one of attrs>."""
  wanted = {"%s.%s" % (HUB, attr) for attr in attrs}
  return bool(qualified_names(get_metadata, node) & wanted)


def ends_with(get_metadata, node: cst.CSTNode, suffix: str,
              roots=(TF, "tensorflow_estimator")) -> bool:
  """Whether `node` names <a root package>...<suffix>, for example
  tensorflow.compat.v1.ConfigProto for suffix "ConfigProto"."""
  return any(name.split(".")[0] in roots and
             (name == suffix or name.endswith("." + suffix))
             for name in qualified_names(get_metadata, node))


def dotted(node: cst.CSTNode) -> Optional[str]:
  """"a.b.c" for a chain of names and attributes; None for anything else."""
  if isinstance(node, cst.Name):
    return node.value
  if isinstance(node, cst.Attribute):
    base = dotted(node.value)
    return base and base + "." + node.attr.value
  return None


def literal_str(node: Optional[cst.CSTNode]) -> Optional[str]:
  """The value of a plain string literal; None for anything else (names,
  f-strings, expressions chosen at run time)."""
  if isinstance(node, cst.SimpleString):
    value = node.evaluated_value
    return value if isinstance(value, str) else None
  return None


def literal_bool(node: Optional[cst.CSTNode]) -> Optional[bool]:
  """True/False for the literals; None for anything else."""
  if isinstance(node, cst.Name) and node.value in ("True", "False"):
    return node.value == "True"
  return None


def module_alias(module: cst.Module, package: str) -> Optional[str]:
  """The name `package` is imported as at the top of `module` (`import
  tensorflow as tf` -> "tf"); None when it is not imported whole."""
  for statement in module.body:
    if not isinstance(statement, cst.SimpleStatementLine):
      continue
    for small in statement.body:
      if isinstance(small, cst.Import):
        for alias in small.names:
          if dotted(alias.name) == package:
            return (alias.asname.name.value if alias.asname else package)
  return None


def imports(module: cst.Module, package: str) -> bool:
  """Whether `module` imports `package` or something from it, anywhere."""
  found = []

  class Visitor(cst.CSTVisitor):

    def visit_Import(self, node):
      found.extend(dotted(a.name) for a in node.names)

    def visit_ImportFrom(self, node):
      if node.module is not None and node.relative == ():
        found.append(dotted(node.module))

  module.visit(Visitor())
  return any(name and (name == package or name.startswith(package + "."))
             for name in found)
