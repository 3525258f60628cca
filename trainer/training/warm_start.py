"""Warm start: a new run begins from another run's weights.

`--warm_start_from=PATH` (a model directory, or a checkpoint prefix) and
`--warm_start_vars=REGEX` (which of the model's variables: by default all
of them, the hub model's and the head's; the optimizer's slots and the
global step are never taken). Variables are named as the Estimator's
checkpoints name them ("dense1/kernel", "hidden_0/kernel", "logits/bias"),
on both backends: each backend lists its model's variables by those names
(`model_variables`), and reads them from a checkpoint of either backend
(trainer.estimator.warm_start: Estimator's `WarmStartSettings`;
trainer.keras.warm_start: the bridge). The pre-flight (`check`) finds the
checkpoint and checks that every selected variable is in it with the same
shape, so that a mismatch is one line naming the variable and both shapes,
not a TF error after start-up. A head with another number of classes:
`--warm_start_vars='^(?!logits)'`.
"""

import re
from typing import Dict, List

import tensorflow as tf

from harness import errors

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


def saved_variables(checkpoint: str) -> Dict[str, List[int]]:
  """name -> shape of the model variables in a checkpoint of either backend
  (a Keras backend checkpoint keeps them under `KERAS_PREFIX`)."""
  saved = {}
  for key, shape in reader_of(checkpoint).get_variable_to_shape_map().items():
    middle = key[len(KERAS_PREFIX):-len(KERAS_SUFFIX)]
    if key.startswith(KERAS_PREFIX) and key.endswith(KERAS_SUFFIX):
      if "/" not in middle:  # Not an optimizer slot of the variable.
        saved[unescape(middle)] = shape
    elif ("/.ATTRIBUTES/" not in key and key not in GLOBAL_STEP_KEYS and
          key != OBJECT_GRAPH_KEY):
      saved[key] = shape
  return saved


# How a Keras backend checkpoint keys its model variables: a dict tracked
# as `model_variables`, each entry under its Estimator name, escaped as TF's
# object-based checkpoints escape names ("/" -> ".S", "." -> "..").
KERAS_PREFIX = "model_variables/"
KERAS_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


def escape(name: str) -> str:
  return name.replace(".", "..").replace("/", ".S")


def unescape(key: str) -> str:
  return re.sub(r"\.(.)", lambda m: {"S": "/", ".": "."}[m.group(1)], key)


def read(checkpoint: str, name: str):
  """The value of the model variable `name` in a checkpoint of either
  backend."""
  reader = tf.train.load_checkpoint(checkpoint)
  if reader.has_tensor(name):
    return reader.get_tensor(name)
  return reader.get_tensor(KERAS_PREFIX + escape(name) + KERAS_SUFFIX)


# Where an object-based checkpoint keeps its object graph (not a variable).
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"

# Where each backend's checkpoints keep the global step.
GLOBAL_STEP_KEYS = ("global_step", "optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE")


def reader_of(checkpoint: str):
  """A reader of the checkpoint with prefix `checkpoint`. Not
  tf.train.load_checkpoint: it first asks whether the prefix is a
  directory, and TF 2.21's ram:// file system says yes to a prefix of
  files, and then finds no checkpoint in it."""
  return tf.compat.v1.train.NewCheckpointReader(checkpoint)


def global_step(checkpoint: str) -> int:
  """The global step a checkpoint of either backend (a prefix, or a model
  directory's latest) was saved at."""
  if not tf.io.gfile.exists(checkpoint + ".index") and tf.io.gfile.isdir(
      checkpoint):
    checkpoint = tf.train.latest_checkpoint(checkpoint)
  reader = reader_of(checkpoint)
  for key in GLOBAL_STEP_KEYS:
    if reader.has_tensor(key):
      return int(reader.get_tensor(key))
  raise ValueError("%s holds no global step (%s)" % (
      checkpoint, " or ".join(GLOBAL_STEP_KEYS)))


def check(checkpoint: str, variables: Dict[str, List[int]],
          names: List[str]) -> None:
  """Every selected variable is in the checkpoint, with its shape."""
  saved = saved_variables(checkpoint)
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
