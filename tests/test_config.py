"""trainer.estimator.config: the session config by TF version, and kept defaults."""

import json
import os
from unittest import mock

import pytest
import tensorflow as tf

from harness import errors
from harness import tf_config
from tests import flagged
from trainer.config import job
from trainer.estimator import config

pytestmark = pytest.mark.estimator  # tf.estimator (tests/conftest.py)

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
  config_dict = {"cluster": CLUSTER, "task": {"type": task_type,
                                              "index": index}}
  return config.run_config(job.RunOptions(), job.ClusterOptions(),
                           model_dir="/tmp/unused",
                           tf_config_dict=config_dict)


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
  # A TF_CONFIG in the environment is not this run's: RunConfig sees none.
  with mock.patch.dict(os.environ, {"TF_CONFIG": json.dumps(
      {"cluster": CLUSTER, "task": {"type": "worker", "index": 0}})}):
    run_config = config.run_config(job.RunOptions(), job.ClusterOptions(),
                                   model_dir="/tmp/unused")
    assert os.environ["TF_CONFIG"]  # Put back.
  assert not run_config.session_config.device_filters
  assert not run_config.cluster_spec
  assert config.shares_cluster_devices(run_config.session_config)


def test_worker_delay_and_session_timeout_suit_small_clusters():
  run_config = _run_config_for("worker", 0)
  assert run_config.experimental_max_worker_delay_secs == 0
  assert run_config.session_creation_timeout_secs == (
      job.ClusterOptions().session_creation_timeout_secs)
  assert run_config.session_creation_timeout_secs < 7200


def test_contradicting_checkpoint_cadence_is_refused():
  with flagged.raises(errors.FlagError, match="not both"):
    job.validate(job.JobConfig(
        model=job.ModelOptions("/m"), head=job.HeadConfig(n_classes=2),
        data=job.DataOptions(train_files=["t"]), model_dir="/tmp/unused",
        run=job.RunOptions(save_checkpoints_steps=10,
                           save_checkpoints_secs=10)))


def test_run_config_takes_the_run_and_cluster_options():
  run_config = config.run_config(
      job.RunOptions(save_checkpoints_steps=7, keep_checkpoint_max=2,
                     log_every_steps=3, random_seed=5),
      job.ClusterOptions(max_worker_delay_secs=4,
                         session_creation_timeout_secs=9),
      model_dir="/tmp/unused",
      tf_config_dict=tf_config.make(CLUSTER, tf_config.Task("worker", 0)))
  assert (run_config.save_checkpoints_steps, run_config.keep_checkpoint_max,
          run_config.log_step_count_steps, run_config.tf_random_seed) == (
              7, 2, 3, 5)
  assert run_config.experimental_max_worker_delay_secs == 4
  assert run_config.session_creation_timeout_secs == 9
  assert run_config.save_checkpoints_secs is None


# What the Estimator backend relies on in TF that no public API offers; each
# of these fails loudly if a TF release changes it.


def test_run_config_reads_the_cluster_only_inside_its_context():
  """RunConfig takes TF_CONFIG from os.environ alone (no argument): the
  backend hands it the task's inside a context that puts it back."""
  cluster = {"chief": ["h:1"], "worker": ["h:2"], "ps": ["h:3"]}
  wanted = {"cluster": cluster, "task": {"type": "worker", "index": 0}}
  with mock.patch.dict(os.environ, {"TF_CONFIG": '{"sentinel": 1}'}):
    run_config = config.run_config(
        job.RunOptions(save_checkpoints_steps=10), job.ClusterOptions(),
        model_dir="/tmp/m", tf_config_dict=wanted)
    assert os.environ["TF_CONFIG"] == '{"sentinel": 1}'  # Put back.
  assert run_config.cluster_spec.as_dict() == cluster
  assert (run_config.task_type, run_config.task_id) == ("worker", 0)
  with mock.patch.dict(os.environ, {}, clear=True):
    with pytest.raises(RuntimeError):
      with config._environment_tf_config(wanted):  # pylint: disable=protected-access
        assert json.loads(os.environ["TF_CONFIG"]) == wanted
        raise RuntimeError("the build failed")
    assert "TF_CONFIG" not in os.environ  # Put back on failure too.


def test_quick_readiness_polls_reach_the_sessions_estimator_makes():
  """MonitoredTrainingSession's session creators make their SessionManager
  through the module attribute that readiness.poll_every swaps, and only
  inside it."""
  # pylint: disable=g-import-not-at-top,protected-access
  from tensorflow.python.training import monitored_session
  from tensorflow.python.training import session_manager
  from trainer.estimator import readiness
  original = session_manager.SessionManager
  with tf.Graph().as_default():
    tf.compat.v1.train.get_or_create_global_step()
    creator = monitored_session.WorkerSessionCreator()
    with readiness.poll_every(0.25):
      quick = creator._get_session_manager()
    assert quick._recovery_wait_secs == 0.25
    assert session_manager.SessionManager is original
    slow = monitored_session.WorkerSessionCreator()._get_session_manager()
    assert slow._recovery_wait_secs == 30  # TF's, outside the context.
