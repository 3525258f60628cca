"""A Keras-backend chief with its cluster's servers in the same process.

  python -m tests.keras_inprocess_chief ASSETS_DIR MODEL_DIR [split]

Two workers and two ps serve in this process; the chief runs the
pre-flight, then joins them (as trainer.task does) and trains 60 steps of
the digits model, or with `split` of the text model inside
example_kit/wide_model.py's small model, whose own table the chief splits
over the ps.
Prints the chief's lines, then "checkpoint NAME".
(tests/test_keras_backend.py)
"""

import os
import sys

import portpicker

from cluster.launcher import inprocess
from harness import tf_config
from trainer import keras as keras_backend
from trainer.config import backends
from trainer.config import job as job_lib
from trainer.plan import preflight


def main(assets_dir: str, model_dir: str, split: str = "") -> None:
  servers = inprocess.InProcessCluster(num_workers=2, num_ps=2,
                                       inter_op_threads=3)
  cluster = dict(servers.cluster,
                 chief=["localhost:%d" % portpicker.pick_unused_port()])
  config = tf_config.TfConfig(cluster, tf_config.Task(tf_config.CHIEF, 0))
  data = os.path.join(assets_dir, "data")
  model, files = "digits", ("digits_train.tfrecord", "digits_eval.tfrecord")
  if split:
    model, files = "text", ("text_train.csv", "text_eval.csv")
  job = job_lib.JobConfig(
      model=job_lib.ModelOptions(
          os.path.join(assets_dir, "models", model), trainable=True,
          model="example_kit.wide_model:build_small" if split else ""),
      head=job_lib.HeadConfig(n_classes=5),
      data=job_lib.DataOptions(
          train_files=[os.path.join(data, files[0])],
          eval_files=[os.path.join(data, files[1])],
          # This process's servers run no tf.data workers: every worker
          # reads every file.
          data_service=False),
      run=job_lib.RunOptions(backend="keras", train_steps=60,
                             save_checkpoints_steps=20, log_every_steps=20,
                             steps_per_execution=5),
      model_dir=model_dir)
  plan = preflight.check(job, backend=backends.choose_here("keras"),
                         model_variables=keras_backend.model_variables,
                         log=lambda line: None)
  keras_backend.connect(config)
  result = keras_backend.run(plan, config, log=print)
  print("checkpoint", os.path.basename(result.checkpoint), flush=True)


if __name__ == "__main__":
  main(*sys.argv[1:])
