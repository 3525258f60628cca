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

_CONNECTED: Dict[str, Tuple[object, object]] = {}


def connect(config: tf_config.TfConfig):
  """(strategy, coordinator) of the chief of `config`'s cluster."""
  backends.check_workers(backends.Choice(backends.KERAS, ""),
                         len(config.cluster.get(tf_config.WORKER, ())))
  key = json.dumps(config.cluster, sort_keys=True)
  if key not in _CONNECTED:
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(dict(config.cluster)),
        task_type=config.task.type, task_id=config.task.index,
        rpc_layer="grpc")
    strategy = tf.distribute.ParameterServerStrategy(resolver)
    _CONNECTED[key] = (
        strategy, tf.distribute.coordinator.ClusterCoordinator(strategy))
  return _CONNECTED[key]
