"""An Estimator-backend ps: a server until the chief's final export.

A ps holds the variables the chief and the workers create in their
sessions; it runs no pre-flight of the model and the data
(trainer.config.backends.only_serves) and loads no model code. Its server
is the one Estimator's own ps would start: the cluster, protocol and GPU
options of the task's RunConfig (trainer.estimator.config).
"""

from typing import Callable, Optional

import tensorflow as tf

from harness import tf_config
from trainer.config import job as job_lib
from trainer.estimator import config as config_lib
from trainer.training import job_end
from trainer.training import preemption
from trainer.training import result as result_lib


def serve(job: job_lib.JobConfig, config: tf_config.TfConfig,
          log: Callable[[str], None] = print,
          notice: Optional[preemption.Notice] = None) -> result_lib.Result:
  """Serves `config`'s ps task until the chief's final export exists.

  `notice`: the ps's SIGTERM as a notice (trainer.training.preemption).

  Raises:
    preemption.Preempted: SIGTERM, and the ps did what it should.
  """
  run_config = config_lib.run_config(job.run, job.cluster,
                                     model_dir=job.model_dir,
                                     tf_config_dict=config.for_estimator())
  job_end.serve_until_done(
      run_config.cluster_spec.as_dict(), job_name=run_config.task_type,
      task_index=run_config.task_id,
      config=tf.compat.v1.ConfigProto(
          gpu_options=run_config.session_config.gpu_options),
      protocol=run_config.protocol, export_dir=job.resolved_export_dir,
      model_dir=job.model_dir, log=log,
      timeout_secs=job.cluster.serve_timeout_secs, notice=notice,
      grace_secs=job.cluster.preemption_grace_secs)
  return result_lib.Result(task_type=config.task.type, metrics=None,
                           checkpoint=None, export_dir=None)
