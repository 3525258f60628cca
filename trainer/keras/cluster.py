"""The chief's connection to its parameter-server cluster, made once.

`connect` builds the `ParameterServerStrategy` and its `ClusterCoordinator`
for the cluster TF_CONFIG names, once per process (the eager context joins
a cluster once). The entry point calls it before the pre-flight: TF 2.15
loses the chief's devices when the pre-flight's eager work (loading the hub
model, reading a record) comes first ("/job:localhost/replica:0/task:0/
device:CPU:0 unknown device" when the model is then built under the
strategy); TF 2.21 does not, but one order for both keeps one path.

TF's own defaults stand: GRPC_FAIL_FAST is `use_caller` unless set (a lost
worker or ps is an error at once, not a hang), and connecting retries
while workers come up.
"""

import json
from typing import Dict, Tuple

import tensorflow as tf

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
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(dict(config.cluster)),
        task_type=config.task.type, task_id=config.task.index,
        rpc_layer="grpc")
    strategy = tf.distribute.ParameterServerStrategy(
        resolver, variable_partitioner=partitioning.make(
            ps_shard_bytes, len(config.cluster.get(tf_config.PS, ()))))
    _CONNECTED[key] = (
        strategy, tf.distribute.coordinator.ClusterCoordinator(strategy))
  return _CONNECTED[key]
