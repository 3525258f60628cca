"""The model directory's record and guard: never train on another model's run.

`write_record` writes the run's flags (flags.txt, a flagfile that reruns the
job) there, with tf.io.gfile, so a gs:// model directory works too.


A model directory that holds a checkpoint is resumed, as Estimator does,
but only when its flags.txt records the same model (the settings that
define the variables: trainer.config.cli.MODEL_FLAGS). Otherwise `conflict` says
why, and `settle` refuses, or, when asked to overwrite, moves the old
directory aside (MODEL_DIR.old-TIME) so nothing is lost.
"""

import datetime
import os
from typing import Callable, Dict, Iterable

import tensorflow as tf

from harness import errors
from harness import files
from trainer.config import cli
from trainer.hub_model import handles
from trainer.training import warm_start


def write_record(lines: Iterable[str], path: str) -> str:
  """Writes flagfile lines to `path` (any tf.io.gfile path)."""
  return files.write_text(path, "\n".join(lines) + "\n", tf.io.gfile)


def _comparable(settings: Dict) -> Dict:
  """A fetched model is the handle it came from; a local one, its path."""
  return dict(settings, module_handle=handles.identity(
      settings.get("module_handle") or ""))


def conflict(model_dir: str, settings: Dict,
             recorded_model: Callable[[str, str], Dict]) -> str:
  """Why `model_dir`'s checkpoint is not of the model `settings` define;
  empty if it is, or if there is none.

  Args:
    model_dir: the model directory.
    settings: the model's defining settings (trainer.config.cli.model_settings).
    recorded_model: (path, text) of a flags.txt -> the same settings; the
      text is read here, through TF's file systems, so that a model
      directory may be on any of them (gs://, file://, ...).
  """
  checkpoint = tf.train.latest_checkpoint(model_dir)
  if not checkpoint:
    return ""
  recorded_path = os.path.join(model_dir, cli.FLAGS_FILE)
  if not tf.io.gfile.exists(recorded_path):
    return ("it holds a checkpoint (%s) but no %s, so it may belong to "
            "another model" % (checkpoint, cli.FLAGS_FILE))
  with tf.io.gfile.GFile(recorded_path) as f:
    recorded = _comparable(recorded_model(recorded_path, f.read()))
  settings = _comparable(settings)
  changes = ["`%s` was %r, now %r" % (name, recorded[name], settings[name])
             for name in settings if recorded.get(name) != settings[name]]
  if changes:
    return "it holds a checkpoint (%s) of a different model: %s" % (
        checkpoint, "; ".join(changes))
  return ""


def settle(model_dir: str, why: str, overwrite: bool,
           log: Callable[[str], None], dry_run: bool = False) -> str:
  """Acts on a conflict: refuses, or with `overwrite` moves the directory
  aside (and says where). Nothing to do when `why` is empty.

  Returns what it did (or, with `dry_run`, would do), for a report.
  """
  if not why:
    if tf.train.latest_checkpoint(model_dir):
      return "resumes from %s" % tf.train.latest_checkpoint(model_dir)
    return "new" if not tf.io.gfile.exists(model_dir) else "no checkpoint yet"
  if not overwrite:
    raise errors.FlagError(
        "`model_dir`=%s: %s. Use a new `model_dir`, or `overwrite_model_dir` "
        "to move the old one aside." % (model_dir, why))
  aside = "%s.old-%s" % (model_dir.rstrip("/"),
                         datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
  if dry_run:
    return "%s; would be moved to %s (overwrite_model_dir)" % (why, aside)
  tf.io.gfile.rename(model_dir, aside)
  log("%s: %s; moved it to %s (overwrite_model_dir)." % (model_dir, why,
                                                          aside))
  return "moved aside to %s" % aside


def keep_export(export_dir: str, model_dir: str, log: Callable[[str], None],
                dry_run: bool = False) -> str:
  """A finished run continued with a larger --train_steps: its export, of
  its latest checkpoint's global step STEP, is kept as EXPORT_DIR.step-STEP
  (each export kept, as the Estimator's timestamped ones are); EXPORT_DIR
  will be the new run's, the latest. Returns what it did (with `dry_run`:
  would do)."""
  step = warm_start.global_step(model_dir)
  kept = "%s.step-%d" % (export_dir.rstrip("/"), step)
  if dry_run:
    return "its export (step %d) would be kept as %s" % (step, kept)
  if tf.io.gfile.exists(kept):
    raise errors.FlagError(
        "Export directory %s (step %d) is to be kept as %s, which exists "
        "already; move one of them away." % (export_dir, step, kept))
  tf.io.gfile.rename(export_dir, kept)
  log("The run continues from step %d: its export of that step is kept as "
      "%s; %s will be the latest." % (step, kept, export_dir))
  return "continues from step %d, its export kept as %s" % (step, kept)
