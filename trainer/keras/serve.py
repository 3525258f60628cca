"""A Keras-backend ps or worker: a server until the chief's final export.

The chief builds the model and the input pipeline and sends both: a ps
holds variables, a worker runs the steps (and, with the tf.data service, a
tf.data worker that reads the files). So these tasks run no pre-flight of
the model and the data (trainer.config.backends.only_serves) and import
neither the model's code nor tf_keras: they start in the time TF takes to
load (docs/performance.md).
"""

from typing import Callable, Optional

import tensorflow as tf

from harness import tf_config
from trainer.config import job as job_lib
from trainer.keras import data_service
from trainer.training import job_end
from trainer.training import preemption
from trainer.training import result as result_lib

# How long a worker or ps waits, after the export, for the chief to end
# (trainer.training.job_end.wait_for_exit), so as to outlive the chief's last
# calls.
CHIEF_EXIT_WAIT_SECS = 60


def serve(job: job_lib.JobConfig, config: tf_config.TfConfig,
          log: Callable[[str], None] = print,
          notice: Optional[preemption.Notice] = None) -> result_lib.Result:
  """Serves `config`'s task (a ps or a worker) until the chief's final
  export exists, then waits for the chief to end.

  `notice`: the ps's SIGTERM as a notice (trainer.training.preemption).

  Raises:
    preemption.Preempted: SIGTERM, and the ps did what it should.
  """
  task = config.task
  if tf.io.gfile.exists(job.resolved_export_dir):
    log("The chief's final export exists: training is over, nothing to do.")
  else:
    serving = lambda: None
    if job.data.data_service and task.type == tf_config.WORKER:
      serving = lambda: data_service.start_worker(
          job.model_dir, config.cluster[task.type][task.index],
          timeout_secs=job.cluster.serve_timeout_secs, log=log)
    job_end.serve_until_done(
        dict(config.cluster), job_name=task.type, task_index=task.index,
        export_dir=job.resolved_export_dir, model_dir=job.model_dir,
        wait_for_workers=False, log=log,
        timeout_secs=job.cluster.serve_timeout_secs,
        notice=notice if task.type == tf_config.PS else None,
        grace_secs=job.cluster.preemption_grace_secs, on_serving=serving)
    job_end.wait_for_exit(config.cluster[tf_config.CHIEF][0],
                          timeout_secs=CHIEF_EXIT_WAIT_SECS, log=log)
  return result_lib.Result(task_type=task.type, metrics=None,
                           checkpoint=None, export_dir=None)
