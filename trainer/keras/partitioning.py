"""Large variables split over the ps tasks (`--ps_shard_bytes`).

`Partitioner` is the `variable_partitioner` the chief's
`ParameterServerStrategy` is built with: TF's `MinSizePartitioner`, at
most one shard per ps, so that a variable of more than twice
`min_shard_bytes` (a large embedding table of the user's model and its
optimizer slots, which TF colocates with each shard) spreads over the ps
instead of filling one. TF saves a split variable as one: a checkpoint
restores into any number of shards (another number of ps) or none (the
serving export, trainer.keras.export, and the evaluator, built without
the strategy).

A hub model's own variables stay whole (`whole()` while the hub layer
loads): the functions of a loaded SavedModel capture each variable as one
resource, and TF cannot run them on a split one ("Looks like you are
trying to run a loaded non-Keras model that was trained using
tf.distribute.experimental.ParameterServerStrategy with variable
partitioning, which is not currently supported", TF 2.15 and 2.21;
`ShardedVariable.__tf_experimental_restore_capture__` returns None). They
are placed by size, as any variable TF does not split
(trainer.keras.placement).
"""

import contextlib
import threading
from typing import List, Tuple

import tensorflow as tf

from trainer.config import job as job_lib

DEFAULT_SHARD_BYTES = job_lib.default(job_lib.ClusterOptions,
                                      "ps_shard_bytes")
_STATE = threading.local()

ShardedVariable = tf.__internal__.distribute.ShardedVariable


@contextlib.contextmanager
def whole():
  """Variables created inside (by this thread) are not split."""
  depth = getattr(_STATE, "whole", 0)
  _STATE.whole = depth + 1
  try:
    yield
  finally:
    _STATE.whole = depth


class Partitioner:
  """shape, dtype -> [shards, 1, ...]: TF's MinSizePartitioner with at most
  `num_ps` shards of at least `min_shard_bytes`; [1, ...] inside `whole()`."""

  def __init__(self, min_shard_bytes: int, num_ps: int):
    self._min_size = tf.distribute.experimental.partitioners.MinSizePartitioner(
        min_shard_bytes=min_shard_bytes, max_shards=num_ps)

  def __call__(self, shape, dtype) -> List[int]:
    # A SavedModel's loader passes the dtype as its enum (an int).
    shape, dtype = tf.TensorShape(shape), tf.as_dtype(dtype)
    if getattr(_STATE, "whole", 0):
      return [1] * shape.rank
    return self._min_size(shape, dtype)


def make(min_shard_bytes: int, num_ps: int):
  """The strategy's variable_partitioner; None (every variable whole) for 0
  bytes or a single ps."""
  if min_shard_bytes <= 0 or num_ps < 2:
    return None
  return Partitioner(min_shard_bytes, num_ps)


def shards(variable) -> List[tf.Variable]:
  """The variables that hold `variable`: its shards, or itself."""
  if isinstance(variable, ShardedVariable):
    return list(variable.variables)
  return [variable]


def named(weights) -> List[Tuple[str, tf.Variable]]:
  """Keras's weights (of a split variable, its shards "NAME/part_K") ->
  (name, variable) pairs, each split variable once, as itself, under its
  NAME: a checkpoint then holds it as one, whatever the number of shards."""
  pairs, seen = [], set()
  for variable in weights:
    container = getattr(variable, "_sharded_container", None)
    if container is None:  # TF sets it on each shard; tf_keras lists them.
      pairs.append((variable.name.split(":")[0], variable))
    elif id(container()) not in seen:
      variable = container()
      seen.add(id(variable))
      name = variable.variables[0].name.split(":")[0]
      pairs.append((name.rsplit("/part_", 1)[0], variable))
  return pairs
