"""Shared fixtures: the example hub models and data, built once per run."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # pylint: disable=g-import-not-at-top


@pytest.fixture(scope="session")
def assets(tmp_path_factory):
  """The demo's models and data (trainer.demo.prepare), in a temp dir."""
  from trainer import demo  # pylint: disable=g-import-not-at-top
  return demo.prepare(str(tmp_path_factory.mktemp("assets")),
                      log=lambda message: None)


@pytest.fixture(scope="session")
def scratch_digits_model(tmp_path_factory):
  """The digits model's architecture, untrained (from-scratch baseline)."""
  from trainer import hub_models  # pylint: disable=g-import-not-at-top
  path = str(tmp_path_factory.mktemp("scratch") / "digits")
  hub_models.build_digits_model(path, pretrain_steps=0)
  return path
