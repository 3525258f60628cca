"""Builds the Estimator `RunConfig` and its session config.

Two traps are handled here (see the README, "Why the session config"):

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

import re
from typing import List, Optional, Tuple

import tensorflow as tf
from tensorflow.core.protobuf import rewriter_config_pb2

from trainer import errors

# Estimator's task types, spelled as in TF_CONFIG.
CHIEF, MASTER, WORKER, PS, EVALUATOR = (
    "chief", "master", "worker", "ps", "evaluator")

# Local and small clusters: start workers at once (Estimator waits
# (index + 1) * 5 s, up to 60 s) and give up on session creation after
# minutes, not Estimator's 2 hours.
DEFAULT_MAX_WORKER_DELAY_SECS = 0
DEFAULT_SESSION_CREATION_TIMEOUT_SECS = 300


def parse_tf_version(version: str) -> Tuple[int, int]:
  """'2.15.1' -> (2, 15); '2.2.0-rc1' -> (2, 2)."""
  match = re.match(r"^(\d+)\.(\d+)", version or "")
  if not match:
    raise errors.FlagError(
        "TensorFlow version %r is not of the form MAJOR.MINOR[.PATCH], "
        "for example '2.15.1'." % (version,))
  return int(match.group(1)), int(match.group(2))


def device_filters(task_type: Optional[str],
                   task_id: int = 0) -> Optional[List[str]]:
  """Estimator's default device filters for a task; None where it sets none.

  Workers and the chief talk only to the ps jobs and themselves; a ps talks
  to everyone that trains; the evaluator (not in the cluster) and a
  non-distributed run get no filters.
  """
  if task_type == CHIEF:
    return ["/job:ps", "/job:chief"]
  if task_type == MASTER:
    return ["/job:ps", "/job:master"]
  if task_type == WORKER:
    return ["/job:ps", "/job:worker/task:%d" % task_id]
  if task_type == PS:
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
  major, minor = parse_tf_version(
      tf.version.VERSION if tf_version is None else tf_version)
  config = tf.compat.v1.ConfigProto()
  if share_cluster_devices:
    if (major, minor) >= (2, 2):
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


def check_settings(*, save_checkpoints_steps: Optional[int],
                   save_checkpoints_secs: Optional[int],
                   max_worker_delay_secs: int,
                   session_creation_timeout_secs: int) -> None:
  """Raises FlagError for RunConfig settings that cannot work together."""
  if save_checkpoints_steps and save_checkpoints_secs:
    raise errors.FlagError(
        "Give checkpoint cadence in steps (%d) or in seconds (%d), not both." %
        (save_checkpoints_steps, save_checkpoints_secs))
  if max_worker_delay_secs < 0:
    raise errors.FlagError("--max_worker_delay_secs (%d) must be >= 0." %
                           max_worker_delay_secs)
  if session_creation_timeout_secs <= 0:
    raise errors.FlagError(
        "--session_creation_timeout_secs (%d) must be > 0." %
        session_creation_timeout_secs)


def run_config(*, model_dir: str,
               save_checkpoints_steps: Optional[int] = None,
               save_checkpoints_secs: Optional[int] = None,
               keep_checkpoint_max: int = 5,
               log_step_count_steps: int = 100,
               max_worker_delay_secs: int = DEFAULT_MAX_WORKER_DELAY_SECS,
               session_creation_timeout_secs: int = (
                   DEFAULT_SESSION_CREATION_TIMEOUT_SECS),
               share_cluster_devices: bool = True,
               random_seed: Optional[int] = None,
               tf_version: Optional[str] = None
               ) -> tf.estimator.RunConfig:
  """A RunConfig for this process's task, as named in TF_CONFIG.

  RunConfig reads TF_CONFIG itself; the session config is then built for the
  task it found, keeping Estimator's distributed defaults.
  """
  check_settings(save_checkpoints_steps=save_checkpoints_steps,
                 save_checkpoints_secs=save_checkpoints_secs,
                 max_worker_delay_secs=max_worker_delay_secs,
                 session_creation_timeout_secs=session_creation_timeout_secs)
  if not (save_checkpoints_steps or save_checkpoints_secs):
    save_checkpoints_secs = 600  # Estimator's default.
  base = tf.estimator.RunConfig(
      model_dir=model_dir,
      save_checkpoints_steps=save_checkpoints_steps,
      save_checkpoints_secs=save_checkpoints_secs,
      keep_checkpoint_max=keep_checkpoint_max,
      log_step_count_steps=log_step_count_steps,
      tf_random_seed=random_seed,
      experimental_max_worker_delay_secs=max_worker_delay_secs,
      session_creation_timeout_secs=session_creation_timeout_secs)
  return base.replace(session_config=session_config(
      tf_version, task_type=base.task_type if base.cluster_spec else None,
      task_id=base.task_id, share_cluster_devices=share_cluster_devices))
