"""Times one training step with the variables local, or on a ps over gRPC.

  python docs/profile_step.py demo_assets/models/digits

The numbers are in docs/performance.md ("One training step").
"""

import sys
import time

import numpy as np
import tensorflow as tf
import tensorflow_hub as hub

from cluster.launcher import inprocess
from trainer.estimator import config


def step_time(model, servers, remote, steps=300, warmup=50):
  """Seconds per Adam step, and op counts per device from a traced step."""
  with tf.Graph().as_default() as graph:
    placement = tf.compat.v1.device(
        tf.compat.v1.train.replica_device_setter(
            ps_tasks=1, worker_device="/job:worker/task:0",
            cluster=servers.cluster_spec) if remote else None)
    with placement:
      loaded = hub.load(model)
      pixels = tf.constant(np.random.RandomState(0).rand(32, 64) * 16,
                           tf.float32)
      loss = tf.reduce_sum(tf.square(loaded(pixels, training=True)))
      train = tf.compat.v1.train.AdamOptimizer(0.001).minimize(
          loss, var_list=loaded.trainable_variables)
    target = servers.target("worker") if remote else ""
    with tf.compat.v1.Session(target, graph=graph,
                              config=config.session_config()) as session:
      session.run(tf.compat.v1.global_variables_initializer())
      for _ in range(warmup):
        session.run(train)
      start = time.perf_counter()
      for _ in range(steps):
        session.run(train)
      seconds = (time.perf_counter() - start) / steps
      metadata = tf.compat.v1.RunMetadata()
      session.run(train, options=tf.compat.v1.RunOptions(
          trace_level=tf.compat.v1.RunOptions.FULL_TRACE),
                  run_metadata=metadata)
  return seconds, {d.device: len(d.node_stats)
                   for d in metadata.step_stats.dev_stats}


def main():
  servers = inprocess.InProcessCluster(num_workers=1, num_ps=1)
  for remote in (False, True):
    seconds, ops = step_time(sys.argv[1], servers, remote)
    print("%-6s %.2f ms/step  ops per device: %s" % (
        "ps" if remote else "local", seconds * 1000, ops))


if __name__ == "__main__":
  main()
