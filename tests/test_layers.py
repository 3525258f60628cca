"""The package layers import one way, read from the code itself.

  harness      the leaf: imports nothing of ours (and no TensorFlow)
  trainer      imports harness; never cluster, never example_kit; its shared
               modules never import a backend (trainer.estimator,
               trainer.keras), and neither backend imports the other
  cluster      imports harness; only its entry points import trainer
  example_kit  imports harness; never trainer, never cluster
  hub_migrate  imports harness; reads code, never loads TensorFlow

Imports sit at the top of modules, except the lazy ones listed in LAZY with
the reason (each a measured start-up win, see docs/layout.md). And
importing any module changes nothing in the process: no environment
variable, no TF class replaced.
"""

import ast
import os
import subprocess
import sys

import pytest

from tests import backend_jobs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OURS = ("harness", "trainer", "cluster", "example_kit", "hub_migrate")
# package -> the packages of ours it may import.
ALLOWED = {
    "harness": {"harness"},
    "trainer": {"harness", "trainer"},
    "cluster": {"harness", "cluster"},
    "example_kit": {"harness", "example_kit"},
    "hub_migrate": {"harness", "hub_migrate"},
}
# The cluster modules that start the trainer (and run its pre-flight).
CLUSTER_ENTRY_POINTS = {"cluster/local.py", "cluster/tfjob.py",
                        "cluster/slurm.py", "cluster/vertex.py",
                        # Starts cluster.local and checks what the trainer
                        # wrote (for tests/test_chaos.py, scripts/chaos.py).
                        "cluster/chaos.py"}
# (cluster/hosts.py starts the trainer by command, importing none of it.)
# module -> names imported inside functions, on purpose.
LAZY = {
    # TF loads only once flags are parsed: --helpfull and flag errors are
    # fast, and main() sets TF's C++ log level first.
    "trainer/task.py": {"trainer.plan.model_dir", "trainer.training.peer_errors",
                        "trainer.inputs.validate"},
    "trainer/plan/resolve.py": {"trainer.plan.preflight", "trainer.plan.model_dir"},
    "trainer/plan/launch.py": {"trainer.plan.model_dir", "trainer.training.best_export",
                          "trainer.training.early_stopping", "trainer.training.eval_events"},
    # TF only to read an archive on its file systems: the launcher fetches
    # URL handles before it loads TF.
    "trainer/hub_model/handles.py": {"tensorflow"},
    # The same for the kit's command.
    "example_kit/__main__.py": {"example_kit.assets"},
}


BACKENDS = ("trainer.estimator", "trainer.keras")


def _modules():
  for package in OURS:
    for root, _, names in sorted(os.walk(os.path.join(REPO, package))):
      for name in sorted(names):
        if name.endswith(".py"):
          path = os.path.relpath(os.path.join(root, name), REPO)
          yield package, path.replace(os.sep, "/")


def _backend(name):
  """The backend a module (dotted, or a path) belongs to, or None."""
  dotted = name.replace("/", ".")
  return next((b for b in BACKENDS if dotted.startswith(b + ".")), None)


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
  allowed = set(ALLOWED[package])
  if path in CLUSTER_ENTRY_POINTS:
    allowed.add("trainer")
  for name, _ in _imports(path):
    if _package(name) in OURS:
      assert _package(name) in allowed, "%s imports %s" % (path, name)
    imported = _backend(name + ".")
    if imported:
      assert _backend(path) == imported, "%s imports the backend %s" % (
          path, name)


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
  """The rule above sees both backends' modules, and catches a shared
  module importing one."""
  paths = [path for _, path in _modules()]
  assert "trainer/estimator/train.py" in paths
  assert "trainer/keras/train.py" in paths
  assert _backend("trainer/estimator/train.py") == "trainer.estimator"
  assert _backend("trainer/plan/preflight.py") is None
  assert _backend("trainer.keras.model.") == "trainer.keras"


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
  """The checker itself: a trainer module importing cluster is found."""
  bad = tmp_path / "trainer"
  bad.mkdir()
  (bad / "bad.py").write_text("from cluster import spec\n"
                              "def f():\n  import trainer.train\n")
  monkeypatch.setattr(sys.modules[__name__], "REPO", str(tmp_path))
  assert _imports("trainer/bad.py") == [("cluster.spec", True),
                                        ("trainer.train", False)]
  with pytest.raises(AssertionError, match="imports cluster.spec"):
    test_layers_import_one_way("trainer", "trainer/bad.py")


@pytest.mark.slow
def test_importing_changes_nothing_in_the_process():
  modules = [path[:-3].replace("/", ".") for _, path in _modules()
             if not path.endswith("__main__.py")]
  if not backend_jobs.ESTIMATOR_HERE:  # Its modules need tf.estimator.
    modules = [m for m in modules if _backend(m + ".") != "trainer.estimator"]
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
