"""One source text migrated; then files and folders, diffs and writes."""

import dataclasses
import difflib
import os
import tempfile
from typing import Iterator, List, Sequence

import libcst as cst
from libcst import metadata

from harness import errors
from harness import tf_versions
from hub_migrate import checks
from hub_migrate import edits as edits_lib
from hub_migrate import findings as findings_lib
from hub_migrate import modules
from hub_migrate import names
from hub_migrate import session_config

# Folders never searched for Python files.
SKIPPED_DIRS = {"__pycache__", "node_modules", "site-packages"}


class MigrateError(errors.HarnessError):
  """A path to migrate is missing or unreadable."""


@dataclasses.dataclass
class Result:
  """One file: its text before and after, and what was found."""
  path: str
  before: bytes
  after: bytes
  findings: List[findings_lib.Finding]
  encoding: str = "utf-8"

  @property
  def changed(self) -> bool:
    return self.after != self.before

  def diff(self) -> str:
    before = self.before.decode(self.encoding).splitlines(keepends=True)
    after = self.after.decode(self.encoding).splitlines(keepends=True)
    return "".join(difflib.unified_diff(before, after, self.path,
                                        self.path))


def parse(source: bytes, path: str):
  """(module, None), or (None, the finding that it does not parse)."""
  try:
    return cst.parse_module(source), None
  except cst.ParserSyntaxError as error:
    line, column, message = error.raw_line, error.raw_column, error.message
  try:  # Python's own parser places most errors better.
    compile(source, path, "exec", dont_inherit=True)
  except SyntaxError as error:
    line, column = error.lineno or line, max((error.offset or 1) - 1, 0)
    message = error.msg
  except ValueError:  # Null bytes: libcst's words stand.
    pass
  return None, findings_lib.Finding(
      path, line, column, findings_lib.ERROR, "syntax",
      "does not parse, skipped: %s" % message)


def migrate_module(module: cst.Module, path: str, *, target_tf: str,
                   uses_hub: bool) -> Result:
  """Rewrites a parsed module; reports what it cannot rewrite.

  Args:
    module: the file's syntax tree.
    path: the file's name in findings and diffs.
    target_tf: the TF version the code will run on (where the session
      config field lives).
    uses_hub: whether the code being migrated (this file, or another one
      of the same run) uses tensorflow_hub: then a RunConfig without a
      session config gets one.
  """
  found = findings_lib.Collector(path)
  wrapper = metadata.MetadataWrapper(module)
  edits = edits_lib.Edits()
  module_layers = modules.plan(wrapper, edits, found)
  session_config.plan(
      wrapper, edits, found,
      top_level=tf_versions.share_cluster_devices_at_top_level(target_tf),
      uses_hub=uses_hub, tf_alias=names.module_alias(module, names.TF))
  checks.check(wrapper, found, module_layers)
  after = edits.apply(wrapper.module) if edits else wrapper.module
  return Result(path, module.bytes, after.bytes, sorted(found.found),
                module.encoding)


def migrate_source(source: bytes, path: str = "<source>", *,
                   target_tf: str, uses_hub=None) -> Result:
  """migrate_module for a source text; a text that does not parse comes
  back unchanged with its syntax finding. `uses_hub` None: whether this
  text imports tensorflow_hub."""
  module, failure = parse(source, path)
  if module is None:
    return Result(path, source, source, [failure])
  if uses_hub is None:
    uses_hub = names.imports(module, names.HUB)
  return migrate_module(module, path, target_tf=target_tf, uses_hub=uses_hub)


def python_files(paths: Sequence[str]) -> Iterator[str]:
  """The .py files of `paths` (files, or folders searched recursively, in
  name order, without hidden folders and caches)."""
  for path in paths:
    if os.path.isfile(path):
      yield path
    elif os.path.isdir(path):
      for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs
                         if not d.startswith(".") and d not in SKIPPED_DIRS)
        for name in sorted(files):
          if name.endswith(".py"):
            yield os.path.join(root, name)
    else:
      raise MigrateError("`%s` is neither a file nor a folder; give Python "
                         "files or folders that hold them." % path)


def migrate_paths(paths: Sequence[str], *, target_tf: str) -> List[Result]:
  """Every Python file of `paths`, migrated (nothing written).

  Code "uses hub" when any of its files imports tensorflow_hub: a RunConfig
  in config.py gets its session config for a model in model.py.
  """
  tf_versions.parse(target_tf)  # A bad version fails before any work.
  sources = []
  for path in python_files(paths):
    try:
      with open(path, "rb") as f:
        sources.append((path, f.read()))
    except OSError as error:
      raise MigrateError("cannot read `%s`: %s" % (path, error.strerror))
  parsed = [(path, source) + parse(source, path) for path, source in sources]
  uses_hub = any(module is not None and names.imports(module, names.HUB)
                 for _, _, module, _ in parsed)
  results = []
  for path, source, module, failure in parsed:
    if module is None:
      results.append(Result(path, source, source, [failure]))
    else:
      results.append(migrate_module(module, path, target_tf=target_tf,
                                    uses_hub=uses_hub))
  return results


def write(result: Result) -> None:
  """Replaces the file with its migrated text, atomically, keeping its
  permissions."""
  folder = os.path.dirname(os.path.abspath(result.path))
  mode = os.stat(result.path).st_mode
  handle, staging = tempfile.mkstemp(prefix=".hub-migrate-", dir=folder)
  try:
    with os.fdopen(handle, "wb") as f:
      f.write(result.after)
    os.chmod(staging, mode)
    os.replace(staging, result.path)
  except BaseException:
    if os.path.exists(staging):
      os.remove(staging)
    raise
