"""The demo: what the trainer runs when no model and no data are given.

The demo is configs/digits.cfg, and nothing else says what it is: run with
no flag of a model or of data (OWN_JOB_FLAGS), the trainer (and the
launchers, which run it) take every flag the user did not set from that
file. Any of those flags given makes the job the user's own, which then
needs its --module_handle: a missing one is said in one line, never filled
in from the demo (the demo's model with the user's data would fail on an
input map the user never wrote). Its models and data live in
demo_assets/ of the working directory, as the file says; where they are
missing, the example kit builds them first, as a command of its own
(`python -m example_kit --out=demo_assets`), so that the trainer neither
imports the kit nor needs its dependencies (scikit-learn).

One setting is not taken from the file: the model directory. Each demo run
gets a new one (the launcher's RUN_DIR/model, or runs/demo-<time>), so the
demo can be run again and again.
"""

import os
import subprocess
import sys
from typing import Callable, List

from absl import flags

from harness import errors
from trainer.config import cli

# This file is REPO/trainer/config/demo.py.
REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
CONFIG = os.path.join(REPO, "configs", "digits.cfg")
ASSETS = "demo_assets"
BUILD_COMMAND = (sys.executable, "-m", "example_kit", "--out=" + ASSETS)
BUILD_TIMEOUT_SECS = 900
# The flags of the config that name files, made absolute so that the
# recorded flags rerun the job from any directory.
PATH_FLAGS = ("module_handle", "train_files", "eval_files")
NOT_FROM_CONFIG = ("model_dir",)
# Flags that describe a model or data: any of them given, the job is the
# user's own, not the demo.
OWN_JOB_FLAGS = ("module_handle", "tags", "signature", "output_key",
                 "signature_outputs_as_dict", "model", "model_fn",
                 "train_files", "eval_files", "label_key", "input_map")


def own_job_flags(fv: flags.FlagValues) -> List[str]:
  """The flags of a model or data that `fv` was given."""
  return [name for name in OWN_JOB_FLAGS if fv[name].present]


def wanted(fv: flags.FlagValues) -> bool:
  """Whether the flags ask for the demo: no flag of a model or data."""
  return not own_job_flags(fv)


def check_own_job(fv: flags.FlagValues) -> None:
  """A job of the user's own names its hub model.

  Raises:
    errors.FlagError: flags of a model or data, but no `module_handle`.
  """
  if not fv.module_handle:
    given = [name for name in own_job_flags(fv) if name != "module_handle"]
    raise errors.FlagError(
        "`module_handle` is missing: %s %s given, so this is a job of your "
        "own, not the demo (which runs only when no model or data flag is "
        "given); set `module_handle` to the hub model's directory, URL or "
        "archive." % (", ".join("`%s`" % name for name in given) or
                      "an empty `module_handle`",
                      "is" if len(given) <= 1 else "are"))


def _absolute(value):
  if isinstance(value, list):
    return [os.path.abspath(v) for v in value]
  return os.path.abspath(value)


def config_values() -> dict:
  """name -> value of every flag configs/digits.cfg sets (paths absolute)."""
  if not os.path.isfile(CONFIG):
    raise errors.FlagError(
        "No model given, and the demo's config %s is missing (the demo runs "
        "from a clone of the project, installed with pip install -e .); set "
        "`module_handle` to the directory of a SavedModel." % CONFIG)
  fv = cli.new_flag_values(["--flagfile=" + CONFIG])
  values = {name: fv[name].value for name in fv if fv[name].present and
            name not in NOT_FROM_CONFIG}
  for name in PATH_FLAGS:
    values[name] = _absolute(values[name])
  return values


def _missing(values: dict) -> List[str]:
  """The demo's own files (those its config names) that do not exist."""
  paths = [values["module_handle"]] + list(values["train_files"]) + list(
      values["eval_files"])
  return [path for path in paths if not os.path.exists(path)]


def build_assets(log: Callable[[str], None]) -> None:
  """Runs the example kit to build demo_assets/ (its output shows as is)."""
  command = list(BUILD_COMMAND)
  shown = " ".join(["python"] + command[1:])
  log("Building the demo's models and data: %s" % shown)
  try:
    code = subprocess.run(command, stdin=subprocess.DEVNULL,
                          timeout=BUILD_TIMEOUT_SECS, check=False).returncode
  except subprocess.TimeoutExpired as e:
    raise errors.DataError(
        "Building the demo's models and data (%s) did not finish within "
        "%d s." % (shown, BUILD_TIMEOUT_SECS)) from e
  if code != 0:
    raise errors.DataError(
        "Building the demo's models and data failed (%s exited with code "
        "%d; its error is above). The example kit needs scikit-learn: pip "
        "install -e '.[examples]'." % (shown, code))


def flag_lines(log: Callable[[str], None], build: bool = True) -> List[str]:
  """The demo's config as flag lines (paths absolute), to come before the
  user's own flags, which win; builds the demo's models and data where
  they are missing (or, without `build`, says they are)."""
  values = config_values()
  log("No model or data given: running the demo (%s): fine-tuning a digits "
      "feature extractor (pre-trained on other images of all ten digits) to "
      "classify digits 5-9." % os.path.relpath(CONFIG, REPO))
  fv = cli.new_flag_values()
  for name, value in values.items():
    fv[name].value = value
  lines = [fv[name].serialize() for name in values]
  if _missing(values) and not build:
    raise errors.DataError(
        "The demo's models and data are missing (%s); build them with "
        "python -m example_kit --out=%s." % (", ".join(_missing(values)),
                                            ASSETS))
  if _missing(values):
    build_assets(log)
    still = _missing(values)
    if still:
      raise errors.DataError("The demo's files are still missing after "
                             "building them: %s." % ", ".join(still))
  return lines
