"""Warm start: a new run begins from another run's weights.

`--warm_start_from=PATH` (a model directory, or a checkpoint prefix) and
`--warm_start_vars=REGEX` (which of the model's variables: by default all
of them, the hub model's and the head's; the optimizer's slots and the
global step are never taken) become Estimator's `WarmStartSettings`. The
pre-flight (`check`) finds the checkpoint and checks that every selected
variable is in it with the same shape, so that a mismatch is one line
naming the variable and both shapes, not a TF error after start-up. A head
with another number of classes: `--warm_start_vars='^(?!logits)'`.
"""

import re
from typing import Dict, List

import tensorflow as tf

from harness import errors
from trainer import job as job_lib
from trainer import model as model_lib
from trainer import model_spec as model_spec_lib

ALL_VARIABLES = ".*"


def checkpoint_of(path: str) -> str:
  """The checkpoint `path` names: a directory's latest, or a prefix."""
  if tf.io.gfile.isdir(path):
    latest = tf.train.latest_checkpoint(path)
    if not latest:
      raise errors.FlagError(
          "`warm_start_from`=%s holds no checkpoint (no 'checkpoint' file "
          "naming one); give a model directory of a finished run, or a "
          "checkpoint prefix such as %s/model.ckpt-1000." % (path, path))
    return latest
  if not tf.io.gfile.exists(path + ".index"):
    raise errors.FlagError(
        "`warm_start_from`=%s is neither a model directory nor a checkpoint "
        "(no %s.index)." % (path, path))
  return path


def model_variables(spec: model_spec_lib.ModelSpec,
                    head: job_lib.HeadConfig) -> Dict[str, List[int]]:
  """name -> shape of the model's variables (hub model and head), from its
  graph for evaluation (no optimizer slots there)."""
  with tf.Graph().as_default() as graph:
    step = tf.compat.v1.train.get_or_create_global_step()
    features = {name: tf.compat.v1.placeholder(s.dtype, s.shape)
                for name, s in spec.inputs.items()}
    labels = tf.compat.v1.placeholder(
        tf.int64 if head.n_classes else tf.float32, [None])
    model_lib.make_model_fn(spec, head)(features, labels,
                                        tf.estimator.ModeKeys.EVAL)
    return {v.op.name: v.shape.as_list() for v in graph.get_collection(
        tf.compat.v1.GraphKeys.GLOBAL_VARIABLES)
            if v.op.name not in (step.op.name, "save_counter")}


def selected(variables: Dict[str, List[int]], pattern: str) -> List[str]:
  try:
    regex = re.compile(pattern)
  except re.error as e:
    raise errors.FlagError("`warm_start_vars`=%s is not a regular "
                           "expression: %s." % (pattern, e)) from None
  chosen = sorted(name for name in variables if regex.match(name))
  if not chosen:
    raise errors.FlagError(
        "`warm_start_vars`=%s matches none of the model's variables: %s." %
        (pattern, ", ".join(sorted(variables))))
  return chosen


def check(checkpoint: str, variables: Dict[str, List[int]],
          names: List[str]) -> None:
  """Every selected variable is in the checkpoint, with its shape."""
  saved = dict(tf.train.list_variables(checkpoint))
  for name in names:
    if name not in saved:
      raise errors.FlagError(
          "`warm_start_from`: variable %s is not in %s; leave it out with "
          "`warm_start_vars` (e.g. '^(?!%s)')." % (name, checkpoint,
                                                  name.split("/")[0]))
    if list(saved[name]) != list(variables[name]):
      raise errors.FlagError(
          "`warm_start_from`: variable %s has shape %s in %s but %s in this "
          "model; leave it out with `warm_start_vars` (e.g. '^(?!%s)')." %
          (name, list(saved[name]), checkpoint, list(variables[name]),
           name.split("/")[0]))


def settings(checkpoint: str,
             names: List[str]) -> tf.estimator.WarmStartSettings:
  """Exactly these variables, from exactly this checkpoint."""
  # A list selects from all global variables (a single string would only
  # see TRAINABLE_VARIABLES, which hub.KerasLayer does not fill); each name
  # is matched whole ("dense1/kernel:0").
  return tf.estimator.WarmStartSettings(
      ckpt_to_initialize_from=checkpoint,
      vars_to_warm_start=["^%s:" % re.escape(name) for name in names])
