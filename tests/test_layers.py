"""The packages and their rooms import one way, read from the code itself.

The rule is a table, UNITS: each unit (a package, or a subpackage of
trainer/ and cluster/; a package's top-level modules are the unit named
after it) and the units of ours it may import. docs/layout.md shows the same
table, and a test here holds the two equal. Besides:

* imports sit at the top of modules, except the lazy ones listed in LAZY
  with the reason (each a measured start-up win, see docs/layout.md);
* importing any module changes nothing in the process: no environment
  variable, no TF class replaced;
* nothing but the tests imports the tests.
"""

import ast
import os
import re
import subprocess
import sys

import pytest

from tests import backend_jobs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OURS = ("harness", "trainer", "cluster", "example_kit", "hub_migrate")
_TRAINER_SHARED = {"trainer.config", "trainer.hub_model", "trainer.inputs",
                   "trainer.training", "trainer.plan"}
# unit -> the units of ours it may import (itself always).
UNITS = {
    "harness": set(),
    "trainer.config": {"harness"},
    "trainer.hub_model": {"harness"},
    "trainer.inputs": {"harness", "trainer.config"},
    "trainer.training": {"harness"},
    "trainer.plan": {"harness", "trainer.config", "trainer.hub_model",
                     "trainer.inputs", "trainer.training"},
    "trainer.estimator": {"harness"} | _TRAINER_SHARED,
    "trainer.keras": {"harness"} | _TRAINER_SHARED,
    # The commands (task.py, fetch.py); the backend is loaded by name.
    "trainer": {"harness"} | _TRAINER_SHARED,
    "cluster.launcher": {"harness"},
    "cluster.engines": {"harness", "cluster.launcher"},
    # The commands: they run the trainer's pre-flight before anything
    # starts (chaos.py also reads what it wrote).
    "cluster": {"harness", "cluster.engines", "cluster.launcher",
                "trainer.config", "trainer.hub_model", "trainer.plan",
                "trainer.training"},
    "example_kit": {"harness"},
    "hub_migrate": {"harness"},
}
# module -> names imported inside functions, on purpose.
LAZY = {
    # TF loads only once flags are parsed: --helpfull and flag errors are
    # fast, and main() sets TF's C++ log level first.
    "trainer/task.py": {"trainer.plan.model_dir",
                        "trainer.training.metric_report",
                        "trainer.training.peer_errors",
                        "trainer.training.preemption",
                        "trainer.inputs.validate"},
    "trainer/plan/resolve.py": {"trainer.plan.preflight",
                                "trainer.plan.model_dir"},
    # Optuna and TF (the tune extra) once the study's flags are checked.
    "cluster/tune.py": {"cluster.study"},
    # matplotlib only to draw the study's plot, at its end.
    "cluster/study.py": {"matplotlib",
                         "matplotlib.pyplot",
                         "optuna.visualization.matplotlib"},
    "trainer/plan/launch.py": {"trainer.plan.model_dir",
                               "trainer.training.best_export",
                               "trainer.training.early_stopping",
                               "trainer.training.eval_events",
                               "trainer.training.export_check"},
    # TF only to read an archive on its file systems: the launcher fetches
    # URL handles before it loads TF.
    "trainer/hub_model/handles.py": {"tensorflow"},
    # The same for the kit's command.
    "example_kit/__main__.py": {"example_kit.assets"},
}


def _modules():
  for package in OURS:
    for root, _, names in sorted(os.walk(os.path.join(REPO, package))):
      for name in sorted(names):
        if name.endswith(".py"):
          path = os.path.relpath(os.path.join(root, name), REPO)
          yield package, path.replace(os.sep, "/")


def unit(name):
  """The unit of a module, dotted ("trainer.plan.preflight") or a path
  ("trainer/plan/preflight.py"): its subpackage, else its package."""
  parts = re.sub(r"\.py$", "", name).replace("/", ".").split(".")
  if len(parts) > 1 and os.path.isdir(os.path.join(REPO, *parts[:2])):
    return ".".join(parts[:2])
  return parts[0]


def _imports(path):
  """(imported module, at top level?) for every import of a file."""
  with open(os.path.join(REPO, path)) as f:
    tree = ast.parse(f.read(), path)
  top = set(map(id, tree.body))
  found = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0:
      names = ["%s.%s" % (node.module, alias.name) for alias in node.names]
    else:
      continue
    found.extend((name, id(node) in top) for name in names)
  return found


def _package(name):
  return name.split(".")[0]


@pytest.mark.parametrize("package,path", list(_modules()))
def test_layers_import_one_way(package, path):
  del package  # For the test id only.
  mine = unit(path)
  allowed = UNITS[mine] | {mine}
  for name, _ in _imports(path):
    if _package(name) in OURS:
      assert unit(name) in allowed, "%s imports %s (%s may import %s)" % (
          path, name, mine, ", ".join(sorted(allowed)))


def test_every_room_has_a_rule():
  """Each subpackage of ours is a unit of the table, and no unit is
  stale."""
  found = {unit(path) for _, path in _modules()}
  assert found == set(UNITS)


def _layout_table():
  """docs/layout.md's table of units: `unit  may import: a, b` lines."""
  with open(os.path.join(REPO, "docs", "layout.md")) as f:
    text = f.read()
  block = text.split("<!-- units -->", 2)[1]
  table = {}
  for line in block.splitlines():
    match = re.match(r"^([\w.]+)\s+(.*)$", line.strip())
    if match:
      names = match.group(2).strip()
      table[match.group(1)] = set() if names == "(nothing of ours)" else set(
          n.strip() for n in names.split(","))
  return table


def test_docs_layout_shows_the_same_rule():
  assert _layout_table() == UNITS


def test_docs_layout_names_every_test_file():
  """docs/layout.md's "Where the tests are" names each tests/test_*.py,
  and only those."""
  with open(os.path.join(REPO, "docs", "layout.md")) as f:
    block = f.read().split("<!-- tests -->", 2)[1]
  named = set(re.findall(r"\b(test_\w+\.py)\b", block))
  files = {name for name in os.listdir(os.path.join(REPO, "tests"))
           if re.match(r"^test_\w+\.py$", name)}
  assert named == files


def test_nothing_but_the_tests_imports_the_tests():
  """The packages and the scripts stand without the test suite (the chaos
  run the script and the test share lives in cluster/chaos.py)."""
  scripts = sorted(os.path.join("scripts", name)
                   for name in os.listdir(os.path.join(REPO, "scripts"))
                   if name.endswith(".py"))
  paths = [path for _, path in _modules()] + scripts
  assert "scripts/chaos.py" in paths and "cluster/chaos.py" in paths
  for path in paths:
    assert not [name for name, _ in _imports(path)
                if _package(name) == "tests"], path


def test_the_backends_are_found_and_kept_apart():
  """The rule above sees both backends' modules, keeps them apart, and
  keeps the shared rooms off both."""
  paths = [path for _, path in _modules()]
  assert "trainer/estimator/train.py" in paths
  assert "trainer/keras/train.py" in paths
  assert unit("trainer/estimator/train.py") == "trainer.estimator"
  assert unit("trainer/plan/preflight.py") == "trainer.plan"
  assert unit("trainer.keras.model.KerasModel") == "trainer.keras"
  assert unit("trainer/task.py") == "trainer"
  assert unit("cluster.engines") == "cluster.engines"
  for shared in _TRAINER_SHARED:
    assert not {"trainer.estimator", "trainer.keras"} & UNITS[shared]
  assert "trainer.keras" not in UNITS["trainer.estimator"]
  assert "trainer.estimator" not in UNITS["trainer.keras"]


def test_the_leaf_and_the_migration_tool_do_not_load_tensorflow():
  for _, path in _modules():
    if path.startswith(("harness/", "hub_migrate/")):
      assert not [n for n, _ in _imports(path) if n.startswith("tensorflow")]


@pytest.mark.parametrize("package,path", list(_modules()))
def test_imports_are_at_the_top_unless_listed(package, path):
  del package  # For the test id only.
  lazy = {name for name, top in _imports(path) if not top}
  assert lazy == LAZY.get(path, set()), path


def test_the_rule_above_catches_a_cycle(tmp_path, monkeypatch):
  """The checker itself: a room importing a room above it is found (the
  data importing the pre-flight), and so is a trainer module importing
  cluster."""
  for name in ("trainer/inputs", "trainer/config", "trainer/plan",
               "cluster/engines"):
    (tmp_path / name).mkdir(parents=True)
  (tmp_path / "trainer/inputs/bad.py").write_text(
      "from trainer.plan import preflight\n"
      "def f():\n  import trainer.config.job\n")
  (tmp_path / "trainer/inputs/worse.py").write_text(
      "from cluster.engines import spec\n")
  monkeypatch.setattr(sys.modules[__name__], "REPO", str(tmp_path))
  assert _imports("trainer/inputs/bad.py") == [
      ("trainer.plan.preflight", True), ("trainer.config.job", False)]
  with pytest.raises(AssertionError, match="imports trainer.plan.preflight"):
    test_layers_import_one_way("trainer", "trainer/inputs/bad.py")
  with pytest.raises(AssertionError, match="imports cluster.engines.spec"):
    test_layers_import_one_way("trainer", "trainer/inputs/worse.py")


@pytest.mark.slow
def test_importing_changes_nothing_in_the_process():
  modules = [path[:-3].replace("/", ".") for _, path in _modules()
             if not path.endswith("__main__.py")]
  if not backend_jobs.ESTIMATOR_HERE:  # Its modules need tf.estimator.
    modules = [m for m in modules if unit(m) != "trainer.estimator"]
  script = """
import os, sys
before = dict(os.environ)
from tensorflow.python.training import session_manager
original = session_manager.SessionManager
for name in sys.argv[1:]:
  __import__(name)
changed = {k for k in set(before) | set(os.environ)
           if before.get(k) != os.environ.get(k)}
assert not changed, changed
assert session_manager.SessionManager is original
print("imported", len(sys.argv) - 1)
"""
  env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
  proc = subprocess.run([sys.executable, "-c", script] + modules, cwd=REPO,
                        env=dict(env, PYTHONPATH=REPO), capture_output=True,
                        text=True, timeout=300, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert proc.stdout.strip() == "imported %d" % len(modules)


def test_docs_layout_names_every_page():
  """The tree in docs/layout.md names each page of docs/."""
  with open(os.path.join(REPO, "docs", "layout.md")) as f:
    tree = f.read().split("## Layers", 1)[0]
  pages = [name for name in os.listdir(os.path.join(REPO, "docs"))
           if name.endswith(".md")]
  assert [page for page in pages if page not in tree] == []
