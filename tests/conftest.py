"""Shared fixtures: the example hub models and data, built once per run.

Markers (registered in pytest.ini): `cluster` tags the tests that start
live multi-process clusters, and `slow` ones that train end to end or start
TF processes; `pytest -m "not cluster and not slow"` is the fast lane.
`estimator` and `keras` tag the tests of one backend; where TF has no
tf.estimator (TF >= 2.16) the Estimator's are not collected.
"""

import os
import shutil
import tempfile

import pytest

from harness import cli

# Before TensorFlow loads, as every entry point does (harness.cli): tf.keras
# is tf_keras, so hub.KerasLayer takes a user's tf_keras model's inputs.
cli.use_keras_2()

# pylint: disable=g-import-not-at-top,wrong-import-position
from example_kit import assets as assets_lib
from example_kit import hub_models
from trainer.config import backends

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def assets(tmp_path_factory):
  """The demo's models and data (example_kit.assets.prepare), in a temp dir."""
  return assets_lib.prepare(str(tmp_path_factory.mktemp("assets")),
                            log=lambda message: None)


@pytest.fixture
def demo_cwd(tmp_path, assets):
  """A working directory where the demo finds its models and data: its
  demo_assets/ is the session's assets."""
  os.symlink(assets.root, str(tmp_path / "demo_assets"))
  return tmp_path


@pytest.fixture
def workdir(tmp_path, assets):
  """A checkout's folder as the docs' commands assume it (tests/
  test_docs*.py): configs/ and the demo's demo_assets/."""
  work = tmp_path / "project"
  work.mkdir()
  os.symlink(os.path.join(REPO, "configs"), work / "configs")
  os.symlink(assets.root, work / "demo_assets")
  return work


@pytest.fixture(scope="session")
def scratch_digits_model(tmp_path_factory):
  """The digits model's architecture, untrained (from-scratch baseline)."""
  path = str(tmp_path_factory.mktemp("scratch") / "digits")
  hub_models.build_digits_model(path, pretrain_steps=0)
  return path


# Test modules of the Estimator backend alone: they import tf.estimator.
ESTIMATOR_ONLY = ("test_config.py", "test_estimator_evaluator.py",
                  "test_inprocess_cluster.py", "test_model_fn.py",
                  "test_optimizers.py")
_HAS_ESTIMATOR = backends.choose_here("auto").name == backends.ESTIMATOR
collect_ignore = [] if _HAS_ESTIMATOR else list(ESTIMATOR_ONLY)


def pytest_configure(config):
  """TMPDIR, for the processes the tests start, is a folder of this run,
  removed at its end (pytest_unconfigure). TF's autograph writes each
  function it converts to TMPDIR/__autograph_generated_file*.py and removes
  it at exit (atexit), which a process killed by a signal never reaches:
  the fault, chaos and deadline tests kill trainers by design, and left
  about 70 such files in /tmp per run. Set here, before the test modules
  are imported (some copy os.environ then), in the main process only:
  pytest-xdist's workers inherit it. pytest's own temporary folders stay
  where they were (tempfile.gettempdir() is read, and cached, first).
  Other users may work in it, as in /tmp (sticky, writable by all)."""
  if hasattr(config, "workerinput"):
    return
  tempfile.gettempdir()
  config.children_tmp = tempfile.mkdtemp(prefix="harness-tests-tmp-")
  # As /tmp is: the Slurm tests' munged runs as user munge, under it.
  os.chmod(config.children_tmp, 0o1777)
  config.tmpdir_before = os.environ.get("TMPDIR")
  os.environ["TMPDIR"] = config.children_tmp


def pytest_unconfigure(config):
  if not hasattr(config, "children_tmp"):
    return
  if config.tmpdir_before is None:
    del os.environ["TMPDIR"]
  else:
    os.environ["TMPDIR"] = config.tmpdir_before
  shutil.rmtree(config.children_tmp, ignore_errors=True)


def pytest_report_header(config):
  del config
  if _HAS_ESTIMATOR:
    return "backends: estimator and keras (TF %s)" % (
        backends.installed_tf_version())
  return ("backends: keras only: TF %s has no tf.estimator, so the "
          "Estimator's tests (marked `estimator`, and %s) are not collected"
          % (backends.installed_tf_version(), ", ".join(ESTIMATOR_ONLY)))


def pytest_collection_modifyitems(config, items):
  if _HAS_ESTIMATOR:
    return
  kept = [item for item in items if not item.get_closest_marker("estimator")]
  if len(kept) != len(items):
    config.hook.pytest_deselected(items=[
        item for item in items if item.get_closest_marker("estimator")])
    items[:] = kept
