"""The chief's connection to its parameter-server cluster, made once.

`connect` builds the `ParameterServerStrategy` and its `ClusterCoordinator`
for the cluster TF_CONFIG names, once per process (the eager context joins
a cluster once). The entry point calls it after the pre-flight, so that the
chief checks the model and data while its workers start, instead of
waiting for every worker's server first and checking after (measured in
docs/performance.md).

Joining after eager work needs two things on TF 2.15, which TF 2.21 does
itself (its `Context.set_server_def`):
- the objects the pre-flight made (the eager datasets that read the data's
  first records, a model of your own it built to check) are collected
  before the join, so that TF does not try to delete their functions on
  the workers and ps afterwards ("Failed to remove function remotely");
- TF's cache of partial device names ("CPU" -> "/job:localhost/replica:0/
  task:0/device:CPU:0", filled by the pre-flight's eager work) is emptied
  after it. TF 2.15's `set_server_def` leaves it, and the next hub model
  load fails with "/job:localhost/replica:0/task:0/device:CPU:0 unknown
  device"; TF 2.21 clears it there. No public API clears it, so this
  module empties the dict, as TF 2.21 does.

TF's own defaults stand: GRPC_FAIL_FAST is `use_caller` unless set (a lost
worker or ps is an error at once, not a hang), and connecting retries
while workers come up.
"""

import gc
import json
from typing import Dict, Tuple

import tensorflow as tf
# pylint: disable-next=g-direct-tensorflow-import
from tensorflow.python.eager import context

from harness import tf_config
from trainer.config import backends
from trainer.keras import partitioning

_CONNECTED: Dict[str, Tuple[object, object]] = {}


def connect(config: tf_config.TfConfig,
            ps_shard_bytes: int = partitioning.DEFAULT_SHARD_BYTES):
  """(strategy, coordinator) of the chief of `config`'s cluster; variables
  of more than twice `ps_shard_bytes` split over the ps (0: none;
  trainer.keras.partitioning)."""
  backends.check_workers(backends.Choice(backends.KERAS, ""),
                         len(config.cluster.get(tf_config.WORKER, ())))
  key = json.dumps([config.cluster, ps_shard_bytes], sort_keys=True)
  if key not in _CONNECTED:
    gc.collect()  # The pre-flight's objects, before the join (docstring).
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(dict(config.cluster)),
        task_type=config.task.type, task_id=config.task.index,
        rpc_layer="grpc")
    strategy = tf.distribute.ParameterServerStrategy(
        resolver, variable_partitioner=partitioning.make(
            ps_shard_bytes, len(config.cluster.get(tf_config.PS, ()))))
    _forget_local_device_names()
    _CONNECTED[key] = (
        strategy, tf.distribute.coordinator.ClusterCoordinator(strategy))
  return _CONNECTED[key]


def _forget_local_device_names() -> None:
  """Empties TF's cache of partial device names resolved before the join,
  as TF 2.21's `set_server_def` does and TF 2.15's does not (docstring)."""
  getattr(context, "_device_parsing_cache", {}).clear()
