"""Which backend runs the training steps, and why.

Everything but "how a step is run" is shared: flags, the pre-flight, the
input pipeline, the launchers. Two backends run the steps:

* `estimator` (trainer.estimator): `tf.estimator` on a TF1 session. It
  exists up to TF 2.15 ("The tf.estimator API is removed", TF 2.16's
  release note), whose wheels are for Python 3.9-3.11.
* `keras` (trainer.keras): TF2's own parameter-server training, a
  `tf_keras` model under `tf.distribute.ParameterServerStrategy` (Keras 3
  has no parameter-server training, and hub.KerasLayer is a Keras 2
  layer), on any TF from 2.15.

`auto` picks the Estimator where tf.estimator exists, so that a job keeps
running as it did, and the Keras backend otherwise. The choice is made
without importing TensorFlow (from the installed packages' metadata), so
that asking for a backend this TF lacks is one fast line that writes
nothing. The shared code never imports a backend; the entry point loads the
chosen one (`load`).
"""

import dataclasses
import importlib
import importlib.metadata
import importlib.util
import sys
from typing import Optional

from harness import errors
from harness import tf_config

ESTIMATOR, KERAS, AUTO = "estimator", "keras", "auto"
# tf.estimator is gone from this TF version on.
ESTIMATOR_REMOVED_IN = (2, 16)
# The tasks that only serve (a tf.distribute.Server that holds variables or
# runs the steps the chief sends): the model and the data are the chief's.
_SERVERS = {ESTIMATOR: (tf_config.PS,),
            KERAS: (tf_config.PS, tf_config.WORKER)}
# The names TF is installed under (the CPU build, the full one, ...).
TF_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-gpu",
                    "tensorflow-intel", "tensorflow-macos", "tf-nightly",
                    "tf-nightly-cpu")


@dataclasses.dataclass(frozen=True)
class Choice:
  """The backend a run uses (`name`) and why, in words."""
  name: str
  why: str

  def describe(self) -> str:
    return "Backend: %s (%s)." % (self.name, self.why)


def installed_tf_version() -> Optional[str]:
  """The installed TensorFlow's version, from package metadata; None where
  no TensorFlow distribution is installed."""
  for name in TF_DISTRIBUTIONS:
    try:
      return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      continue
  return None


def _release(version: str) -> tuple:
  parts = []
  for part in version.split(".")[:2]:
    digits = "".join(c for c in part if c.isdigit())
    parts.append(int(digits or 0))
  return tuple(parts)


def has_estimator(tf_version: Optional[str],
                  estimator_installed: bool) -> bool:
  """Whether tf.estimator exists: TF before 2.16, with the
  tensorflow-estimator package."""
  return bool(tf_version and estimator_installed and
              _release(tf_version) < ESTIMATOR_REMOVED_IN)


def choose(requested: str, *, tf_version: Optional[str],
           estimator_installed: bool,
           python: str = "%d.%d" % sys.version_info[:2]) -> Choice:
  """The backend for `requested` (auto, estimator or keras) on this TF.

  Raises:
    errors.FlagError: the Estimator asked for where it does not exist,
      saying which TF and Python have it.
  """
  if tf_version is None:
    raise errors.FlagError(
        "TensorFlow is not installed: install the harness with the `cpu` "
        "or the `gpu` extra (pip install -e '.[cpu]'; README, Install).")
  available = has_estimator(tf_version, estimator_installed)
  if requested == ESTIMATOR:
    if not available:
      raise errors.FlagError(
          "`backend`=estimator needs tf.estimator, which TF %s on Python %s "
          "does not have (removed in TF 2.16): run it with TF 2.15 on "
          "Python 3.9-3.11, or use `backend`=keras (or auto)." %
          (tf_version, python))
    return Choice(ESTIMATOR, "asked for; TF %s has tf.estimator" %
                  tf_version)
  if requested == KERAS:
    return Choice(KERAS, "asked for; TF %s" % tf_version)
  if requested != AUTO:
    raise errors.FlagError("`backend`=%s is not one of: auto, estimator, "
                           "keras." % requested)
  if available:
    return Choice(ESTIMATOR, "auto: TF %s has tf.estimator" % tf_version)
  return Choice(KERAS, "auto: TF %s has no tf.estimator (removed in TF "
                "2.16)" % tf_version)


def check_workers(choice: Choice, num_workers: int) -> None:
  """The Keras backend's chief only coordinates: its steps run on workers.

  Raises:
    errors.FlagError: a Keras cluster without workers.
  """
  if choice.name == KERAS and num_workers < 1:
    raise errors.FlagError(
        "`num_workers` (%d): the Keras backend trains on workers (its chief "
        "only coordinates them); give its cluster at least one worker, or "
        "use `backend`=estimator, whose chief trains too." % num_workers)


def choose_here(requested: str) -> Choice:
  """`choose` for the TF installed in this environment."""
  return choose(requested, tf_version=installed_tf_version(),
                estimator_installed=importlib.util.find_spec(
                    "tensorflow_estimator") is not None)


def load(choice: Choice):
  """The backend's package: `run(plan, config, log)` and
  `model_variables(spec, head)`."""
  return importlib.import_module("trainer." + choice.name)


def only_serves(choice: Choice, task: Optional[tf_config.Task]) -> bool:
  """Whether `task` only serves on this backend: a ps; on the Keras backend
  a worker too (its chief builds the model and the input pipeline, and
  sends both). Such a task needs no pre-flight of the model and the data
  (trainer.plan.resolve.prepare_server)."""
  return task is not None and task.type in _SERVERS[choice.name]


def load_server(choice: Choice):
  """The backend's module that runs a task that `only_serves`: `serve(job,
  config, log, notice)`. It loads neither the model nor tf_keras."""
  return importlib.import_module("trainer.%s.serve" % choice.name)
