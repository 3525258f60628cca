"""The device trap, on an in-process ps + worker cluster (low-level path).

A TF2 SavedModel loaded with hub.load in a tf.compat.v1 session, its
variables placed on /job:ps by replica_device_setter: the training step runs
with share_cluster_devices_in_session, and fails without it.

A forward pass alone does not show the trap: TF inlines the model's function
into the graph. Taking gradients keeps the call a StatefulPartitionedCall
whose resource inputs live on the ps, and that call needs the cluster's
devices in the session.
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub

from cluster.launcher import inprocess
from example_kit import datasets
from trainer.estimator import config

pytestmark = pytest.mark.estimator  # tf.estimator (tests/conftest.py)


@pytest.fixture(scope="module")
def servers():
  return inprocess.InProcessCluster(num_workers=1, num_ps=1)


def _step(servers, model_path, session_config):
  """Builds a graph with the model's variables on ps; runs a train step."""
  pixels = datasets.digits(datasets.TRANSFER_CLASSES,
                           datasets.TRANSFER_HALF).columns["pixels"][:4]
  with tf.Graph().as_default() as graph:
    setter = tf.compat.v1.train.replica_device_setter(
        ps_tasks=1, worker_device="/job:worker/task:0",
        cluster=servers.cluster_spec)
    with tf.compat.v1.device(setter):
      loaded = hub.load(model_path)
      features = loaded(tf.constant(pixels), training=False)
      loss = tf.reduce_sum(tf.square(features))
      train_op = tf.compat.v1.train.GradientDescentOptimizer(0.01).minimize(
          loss, var_list=loaded.trainable_variables)
    placed = {v.name: v.device for v in loaded.variables}
    with tf.compat.v1.Session(servers.target("worker"), graph=graph,
                              config=session_config) as session:
      session.run(tf.compat.v1.global_variables_initializer())
      values = session.run(features)
      session.run(train_op)
      assert not np.allclose(session.run(features), values)  # It trained.
      return placed, values


def test_step_runs_with_share_cluster_devices(servers, assets):
  placed, features = _step(servers, assets.digits_model,
                           config.session_config())
  assert placed and all(d.startswith("/job:ps/task:0") for d in
                        placed.values()), placed
  local = hub.load(assets.digits_model)
  pixels = datasets.digits(datasets.TRANSFER_CLASSES,
                           datasets.TRANSFER_HALF).columns["pixels"][:4]
  np.testing.assert_allclose(features, local(pixels, training=False),
                             rtol=1e-5)


def test_step_fails_without_share_cluster_devices(servers, assets):
  with pytest.raises(tf.errors.OpError, match="does not match any device"):
    _step(servers, assets.digits_model,
          config.session_config(share_cluster_devices=False))
