"""Shared fixtures: the example hub models and data, built once per run.

Markers (registered in pytest.ini): `cluster` tags the tests that start
live multi-process clusters; `pytest -m "not cluster"` is the fast lane.
"""

import os

import pytest

from example_kit import assets as assets_lib
from example_kit import hub_models


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


@pytest.fixture(scope="session")
def scratch_digits_model(tmp_path_factory):
  """The digits model's architecture, untrained (from-scratch baseline)."""
  path = str(tmp_path_factory.mktemp("scratch") / "digits")
  hub_models.build_digits_model(path, pretrain_steps=0)
  return path
