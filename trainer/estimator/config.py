"""Builds the Estimator `RunConfig` and its session config.

Two traps are handled here (see docs/training.md, "Why the session config"):

1. A TF2 SavedModel called in a TF1 session whose variables sit on `/job:ps`
   fails with "Assigned device '/job:ps/replica:0/task:0/device:CPU:0' does
   not match any device" unless the session config sets
   `share_cluster_devices_in_session`. The field lives under
   `ConfigProto.experimental` before TF 2.2 and at the top level from 2.2 on;
   `session_config` picks it by TF version.
2. `RunConfig` adds its distributed defaults (device filters of the ps jobs
   plus the task itself, soft placement, one Grappler pass) only when no
   session config is given. Passing one, which (1) requires, silently drops
   them; without device filters a worker can wait on other workers forever
   (tensorflow/tensorflow#26559). `session_config` puts them back.
"""

import contextlib
import json
import os
from typing import Iterator, List, Optional

import tensorflow as tf
from tensorflow.core.protobuf import rewriter_config_pb2

from harness import tf_config
from harness import tf_versions
from trainer.config import job as job_lib

DEFAULT_SAVE_CHECKPOINTS_SECS = job_lib.DEFAULT_SAVE_CHECKPOINTS_SECS


def device_filters(task_type: Optional[str],
                   task_id: int = 0) -> Optional[List[str]]:
  """Estimator's default device filters for a task; None where it sets none.

  Workers and the chief talk only to the ps jobs and themselves; a ps talks
  to everyone that trains; the evaluator (not in the cluster) and a
  non-distributed run get no filters.
  """
  if task_type == tf_config.CHIEF:
    return ["/job:ps", "/job:chief"]
  if task_type == tf_config.WORKER:
    return ["/job:ps", "/job:worker/task:%d" % task_id]
  if task_type == tf_config.PS:
    # As Estimator's own (a "master" is read as the chief: tf_config).
    return ["/job:ps", "/job:worker", "/job:chief", "/job:master"]
  return None


def session_config(tf_version: Optional[str] = None,
                   task_type: Optional[str] = None,
                   task_id: int = 0,
                   share_cluster_devices: bool = True
                   ) -> tf.compat.v1.ConfigProto:
  """The session config for one task of the cluster.

  Args:
    tf_version: the TF version to build for; None means the running TF.
      Selects where `share_cluster_devices_in_session` lives.
    task_type: the task's type from TF_CONFIG (None: not distributed). For
      chief, master, worker and ps tasks Estimator's distributed defaults
      (device filters, soft placement, one Grappler pass) are put back.
    task_id: the task's index within its type.
    share_cluster_devices: set `share_cluster_devices_in_session`. Only
      turned off to demonstrate the failure it prevents.
  """
  top_level = tf_versions.share_cluster_devices_at_top_level(
      tf.version.VERSION if tf_version is None else tf_version)
  config = tf.compat.v1.ConfigProto()
  if share_cluster_devices:
    if top_level:
      config.share_cluster_devices_in_session = True
    else:
      config.experimental.share_cluster_devices_in_session = True
  filters = device_filters(task_type, task_id)
  if filters is not None:
    config.device_filters.extend(filters)
    config.allow_soft_placement = True
    config.graph_options.rewrite_options.meta_optimizer_iterations = (
        rewriter_config_pb2.RewriterConfig.ONE)
  return config


def shares_cluster_devices(config: tf.compat.v1.ConfigProto) -> bool:
  """Whether `config` sets share_cluster_devices_in_session in either place."""
  return (config.share_cluster_devices_in_session or
          config.experimental.share_cluster_devices_in_session)


@contextlib.contextmanager
def _environment_tf_config(config: Optional[dict]) -> Iterator[None]:
  """TF_CONFIG set to `config` (or unset) while RunConfig reads it.

  RunConfig takes the cluster from the environment only; this hands it the
  TF_CONFIG this module was given, and puts the environment back after.
  """
  before = os.environ.get(tf_config.ENV)
  if config is None:
    os.environ.pop(tf_config.ENV, None)
  else:
    os.environ[tf_config.ENV] = json.dumps(config)
  try:
    yield
  finally:
    if before is None:
      os.environ.pop(tf_config.ENV, None)
    else:
      os.environ[tf_config.ENV] = before


def run_config(run: job_lib.RunOptions, cluster: job_lib.ClusterOptions, *,
               model_dir: str, tf_config_dict: Optional[dict] = None,
               tf_version: Optional[str] = None) -> tf.estimator.RunConfig:
  """The RunConfig of the task `tf_config_dict` names (None: one process).

  The session config is built for that task, keeping Estimator's
  distributed defaults (see the module docstring). The settings are taken
  as they are: trainer.config.job.validate checks them.
  """
  secs = run.save_checkpoints_secs
  if not (run.save_checkpoints_steps or secs):
    secs = DEFAULT_SAVE_CHECKPOINTS_SECS
  with _environment_tf_config(tf_config_dict):
    base = tf.estimator.RunConfig(
        model_dir=model_dir,
        save_checkpoints_steps=run.save_checkpoints_steps,
        save_checkpoints_secs=secs,
        keep_checkpoint_max=run.keep_checkpoint_max,
        log_step_count_steps=run.log_every_steps,
        save_summary_steps=run.log_every_steps,
        tf_random_seed=run.random_seed,
        experimental_max_worker_delay_secs=cluster.max_worker_delay_secs,
        session_creation_timeout_secs=cluster.session_creation_timeout_secs)
  task = tf_config_dict["task"] if tf_config_dict else None
  return base.replace(session_config=session_config(
      tf_version, task_type=task["type"] if task else None,
      task_id=task["index"] if task else 0,
      share_cluster_devices=cluster.share_cluster_devices))
