"""Whole variables placed by size over the ps tasks (the Keras chief).

TF's ParameterServerStrategy puts each variable it does not split on the
next ps in turn (round-robin), whatever its size: with 2 ps, the digits
model's two large kernels, 16 KB and 8 KB, both landed on ps-1 and ps-0
held 1 KB. `by_size` is a variable creator for inside `strategy.scope()`
that sends each whole variable to the ps holding the fewest bytes so far,
as the Estimator backend's `balanced_ps_placement` does.

How: the strategy colocates a variable created with `colocate_with` (the
creator argument `strategy.extended.colocate_vars_with` sets; TF's
optimizers colocate their slots so) with that variable, on its ps, and
never splits it. So the first variable TF places on each ps is that ps's
anchor (the first `num_ps` whole variables still go round-robin, one to
each ps: until then there is nothing to colocate with); every later whole
variable is colocated with the anchor of the lightest ps. Variables the
strategy's partitioner splits, and those already colocated (optimizer
slots), are left to TF and counted where TF put them.

This changes where variables live, never what they hold: a checkpoint
restores into any placement, and the serving export and the evaluator are
built without the strategy.
"""

import contextlib
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import tensorflow as tf

from trainer.keras import partitioning


class Loads:
  """Bytes per ps, and the choice of the lightest (the first on a tie)."""

  def __init__(self, num_ps: int):
    self.bytes = [0] * num_ps
    self.anchors: Dict[int, object] = {}  # ps index -> a variable there.

  def lightest(self) -> int:
    return min(range(len(self.bytes)), key=lambda i: (self.bytes[i], i))

  def target(self) -> Optional[object]:
    """The anchor to colocate the next whole variable with; None while a
    ps has none yet (TF's round-robin places it)."""
    if len(self.anchors) < len(self.bytes):
      return None
    return self.anchors[self.lightest()]

  def add(self, task: int, size: int, variable) -> None:
    """Counts `size` bytes on ps `task`, where `variable` now lives."""
    self.bytes[task] += size
    self.anchors.setdefault(task, variable)


def placed(variable) -> List[Tuple[str, int, int, object]]:
  """(job, task, bytes, variable) of `variable`, or of each of its
  shards."""
  found = []
  for shard in partitioning.shards(variable):
    device = tf.DeviceSpec.from_string(shard.device)
    found.append((device.job, device.task or 0,
                  shard.shape.num_elements() * shard.dtype.size, shard))
  return found


def _shape_and_dtype(kwargs):
  """The new variable's shape and dtype from the creator's arguments
  (a SavedModel's loader gives them; Keras gives a callable initial value
  with `shape`); None where unknown."""
  shape, dtype = kwargs.get("shape"), kwargs.get("dtype")
  initial = kwargs.get("initial_value")
  if shape is None and initial is not None and not callable(initial):
    shape = getattr(initial, "shape", None)
    dtype = dtype or getattr(initial, "dtype", None)
  if shape is None or dtype is None:
    return None
  return tf.TensorShape(shape), tf.as_dtype(dtype)


@contextlib.contextmanager
def by_size(num_ps: int,
            partitioner: Optional[Callable[..., List[int]]] = None
            ) -> Iterator[Loads]:
  """Inside `strategy.scope()`: whole variables created inside go to the
  lightest ps (module docstring). `partitioner`: the strategy's
  variable_partitioner, whose split variables are left to it. Yields the
  loads."""
  loads = Loads(num_ps)

  def creator(next_creator, **kwargs):
    if num_ps < 2 or "colocate_with" in kwargs:
      variable = next_creator(**kwargs)
    else:
      known = _shape_and_dtype(kwargs)
      split = bool(partitioner and known and known[0].rank and
                   partitioner(*known)[0] > 1)
      anchor = None if split else loads.target()
      if anchor is not None:  # As strategy.extended.colocate_vars_with.
        kwargs.update(use_resource=True, colocate_with=anchor)
      variable = next_creator(**kwargs)
    for job, task, size, shard in placed(variable):
      if job == "ps":  # Not a frozen TF1 model's, loaded on the chief.
        loads.add(task, size, shard)
    return variable

  with tf.variable_creator_scope(creator):
    yield loads
