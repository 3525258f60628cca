"""trainer.config: the session config by TF version, and kept defaults."""

import json
import os
from unittest import mock

import pytest
import tensorflow as tf

from trainer import config
from trainer import errors

CLUSTER = {"chief": ["localhost:2220"], "worker": ["localhost:2221",
                                                   "localhost:2222"],
           "ps": ["localhost:2223"]}


@pytest.mark.parametrize("version,top_level", [
    ("1.14.0", False), ("2.1.3", False), ("2.2.0", True),
    ("2.2.0-rc1", True), (tf.version.VERSION, True)])
def test_share_cluster_devices_field_follows_tf_version(version, top_level):
  proto = config.session_config(tf_version=version)
  assert proto.share_cluster_devices_in_session == top_level
  assert proto.experimental.share_cluster_devices_in_session == (
      not top_level)
  assert config.shares_cluster_devices(proto)


def test_default_version_is_the_running_tf():
  assert config.session_config() == config.session_config(
      tf_version=tf.version.VERSION)


def test_share_cluster_devices_can_be_turned_off():
  assert not config.shares_cluster_devices(
      config.session_config(share_cluster_devices=False))


@pytest.mark.parametrize("bad", ["", "latest", "two.one"])
def test_bad_tf_version_is_named(bad):
  with pytest.raises(errors.FlagError, match="MAJOR.MINOR"):
    config.session_config(tf_version=bad)


def _run_config_for(task_type, index):
  tf_config = {"cluster": CLUSTER, "task": {"type": task_type,
                                            "index": index}}
  with mock.patch.dict(os.environ, {"TF_CONFIG": json.dumps(tf_config)}):
    return config.run_config(model_dir="/tmp/unused")


@pytest.mark.parametrize("task_type,index,filters", [
    ("chief", 0, ["/job:ps", "/job:chief"]),
    ("worker", 1, ["/job:ps", "/job:worker/task:1"]),
    ("ps", 0, ["/job:ps", "/job:worker", "/job:chief", "/job:master"]),
])
def test_estimator_distributed_defaults_are_kept(task_type, index, filters):
  run_config = _run_config_for(task_type, index)
  session = run_config.session_config
  assert list(session.device_filters) == filters
  assert session.allow_soft_placement
  assert config.shares_cluster_devices(session)
  # The same filters Estimator itself sets when given no session config.
  with mock.patch.dict(os.environ, {"TF_CONFIG": json.dumps(
      {"cluster": CLUSTER, "task": {"type": task_type, "index": index}})}):
    estimator_default = tf.estimator.RunConfig().session_config
  assert list(estimator_default.device_filters) == filters
  assert (session.graph_options.rewrite_options.meta_optimizer_iterations ==
          estimator_default.graph_options.rewrite_options
          .meta_optimizer_iterations)


def test_evaluator_gets_no_filters_but_shares_devices():
  run_config = _run_config_for("evaluator", 0)
  assert not run_config.session_config.device_filters
  assert config.shares_cluster_devices(run_config.session_config)


def test_local_run_gets_no_filters():
  with mock.patch.dict(os.environ, {}, clear=False):
    os.environ.pop("TF_CONFIG", None)
    run_config = config.run_config(model_dir="/tmp/unused")
  assert not run_config.session_config.device_filters
  assert config.shares_cluster_devices(run_config.session_config)


def test_worker_delay_and_session_timeout_suit_small_clusters():
  run_config = _run_config_for("worker", 0)
  assert run_config.experimental_max_worker_delay_secs == 0
  assert run_config.session_creation_timeout_secs == (
      config.DEFAULT_SESSION_CREATION_TIMEOUT_SECS)
  assert run_config.session_creation_timeout_secs < 7200


def test_contradicting_checkpoint_cadence_is_refused():
  with pytest.raises(errors.FlagError, match="not both"):
    config.run_config(model_dir="/tmp/unused", save_checkpoints_steps=10,
                      save_checkpoints_secs=10)
