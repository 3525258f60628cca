"""The output directories Vertex AI gives each replica, where flags give none.

With a CustomJob's `baseOutputDirectory` set, Vertex AI sets in every
replica (docs/engines.md):

* AIP_CHECKPOINT_DIR=<base>/checkpoints/: where checkpoints go, the
  trainer's `model_dir`;
* AIP_MODEL_DIR=<base>/model/: where the exported model goes, which Vertex
  imports as the job's model: the trainer's `export_dir`;
* AIP_TENSORBOARD_LOG_DIR=<base>/logs/: TensorBoard logs. Both backends
  write their summaries beside the checkpoints (the Estimator has no other
  place for them), so the run names `model_dir` as the TensorBoard log
  directory instead.

Pure: `chosen(flag values, environ)` says which settings the environment
fills; the entry point applies them and records them in flags.txt.
"""

import dataclasses
from typing import List, Mapping

CHECKPOINT_DIR = "AIP_CHECKPOINT_DIR"
MODEL_DIR = "AIP_MODEL_DIR"
TENSORBOARD_LOG_DIR = "AIP_TENSORBOARD_LOG_DIR"
# Setting -> the variable that fills it where the flag is unset.
SETTINGS = (("model_dir", CHECKPOINT_DIR), ("export_dir", MODEL_DIR))


@dataclasses.dataclass(frozen=True)
class Chosen:
  """A setting filled from Vertex AI's environment."""
  setting: str
  variable: str
  value: str

  def note(self) -> str:
    return "`%s` from %s (Vertex AI's baseOutputDirectory): %s" % (
        self.setting, self.variable, self.value)


def chosen(values: Mapping[str, str],
           environ: Mapping[str, str]) -> List[Chosen]:
  """The settings among `values` (setting -> current value) left empty
  that Vertex AI's variables in `environ` fill (trailing slash dropped)."""
  return [Chosen(setting, variable, environ[variable].rstrip("/"))
          for setting, variable in SETTINGS
          if not values.get(setting) and environ.get(variable, "").strip()]


def tensorboard_note(environ: Mapping[str, str], model_dir: str) -> str:
  """What the run says where Vertex AI asked for TensorBoard logs."""
  if not environ.get(TENSORBOARD_LOG_DIR):
    return ""
  return ("TensorBoard: the summaries are written beside the checkpoints, "
          "in %s (not %s=%s): point TensorBoard there." % (
              model_dir, TENSORBOARD_LOG_DIR, environ[TENSORBOARD_LOG_DIR]))
