"""--data_service (trainer.keras.data_service): each training example read
once per epoch across a Keras cluster's workers, counted by the model.

The model is a user's own (`--model`) whose training step adds 1 to a
variable on the ps at each example's id, so the final checkpoint holds how
often each example was trained on.
"""

import os
import textwrap
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from harness import errors
from tests import launcher
from tests import processes
from trainer.config import cli
from trainer.config import job as job_lib
from trainer.keras import data_service
from trainer.plan import resolve
from trainer.training import warm_start

EXAMPLES_PER_FILE = 200
# 40,000 examples: what is in flight when the epoch's steps run out (about
# 1,000 examples; 1,049 in a full 3.11 run under load) is then 2-3% of an
# epoch, not 5% (with 20,000 that run counted 89.5% once).
FILES = 200
EXAMPLES = EXAMPLES_PER_FILE * FILES
BATCH = 100

COUNTING_MODEL = textwrap.dedent('''
    import tensorflow as tf
    import tf_keras


    class Visits(tf_keras.layers.Layer):
      """Adds 1 at each training example's id, in a variable on the ps."""

      def __init__(self, size, **kwargs):
        super().__init__(**kwargs)
        self.size = size

      def build(self, input_shape):
        self.visits = self.add_weight(name="visits", shape=(self.size,),
                                      initializer="zeros", trainable=False)

      def call(self, ids, training=False):
        if training:
          self.visits.scatter_add(tf.IndexedSlices(
              tf.ones_like(ids, tf.float32), ids))
        return tf.zeros_like(tf.cast(ids, tf.float32))[:, None]


    def counting(inputs, hub_layer):
      del hub_layer
      visited = Visits(%d, name="visits")(inputs["id"])
      logits = tf_keras.layers.Dense(2)(inputs["x"][:, None]) + visited
      return tf_keras.Model(inputs, logits)
''' % EXAMPLES)


def _write_data(folder):
  """FILES TFRecord files of EXAMPLES_PER_FILE examples: id, x, label."""
  os.makedirs(folder)
  rng = np.random.default_rng(0)
  for f in range(FILES):
    path = os.path.join(folder, "part-%03d.tfrecord" % f)
    with tf.io.TFRecordWriter(path) as writer:
      for i in range(f * EXAMPLES_PER_FILE, (f + 1) * EXAMPLES_PER_FILE):
        x = float(rng.normal())
        writer.write(tf.train.Example(features=tf.train.Features(feature={
            "id": tf.train.Feature(int64_list=tf.train.Int64List(value=[i])),
            "x": tf.train.Feature(float_list=tf.train.FloatList(value=[x])),
            "label": tf.train.Feature(
                int64_list=tf.train.Int64List(value=[int(x > 0)])),
        })).SerializeToString())
  return os.path.join(folder, "part-*.tfrecord")


def _visits(model_dir):
  """(visits by id, global step) of the run's final checkpoint."""
  reader = tf.train.load_checkpoint(model_dir)
  [key] = [k for k in reader.get_variable_to_shape_map()
           if "visits" in k and "OPTIMIZER" not in k]
  return reader.get_tensor(key), warm_start.global_step(model_dir)


@pytest.mark.cluster
def test_each_example_is_read_once_per_epoch_across_two_workers(
    tmp_path, assets):
  """2 workers, one epoch's worth of steps: with the service, >= 90% of the
  examples were trained on exactly once (each worker reading every file in
  its own order gives about 50%). The rest were in flight when the epoch's
  steps ran out: in a shuffle buffer or a part-read file, whose places the
  next pass's first examples took."""
  code = tmp_path / "user_code"
  code.mkdir()
  (code / "visits_model.py").write_text(COUNTING_MODEL)
  pattern = _write_data(str(tmp_path / "data"))
  steps = EXAMPLES // BATCH
  proc = launcher.run(
      tmp_path, tmp_path / "run", [
          "--backend=keras",  # The tf.data service is its default.
          "--module_handle=" + assets.digits_model,
          "--model=visits_model:counting", "--train_files=" + pattern,
          "--n_classes=2", "--batch_size=%d" % BATCH,
          "--train_steps=%d" % steps, "--shuffle_buffer=100",
          "--log_every_steps=100", "--validate_data=off"],
      num_workers=2, evaluator=False, timeout_secs=600,
      env={"PYTHONPATH": "%s:%s" % (launcher.REPO, code)})
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  assert "tf.data service's dispatcher serves at" in proc.stdout
  visits, step = _visits(str(tmp_path / "run" / "model"))
  # Every step trained on one batch, and each was counted.
  assert visits.sum() == int(step) * BATCH
  once = float(np.mean(visits == 1))
  assert once >= 0.9, (once, np.bincount(visits.astype(int)))


def test_a_worker_waits_for_its_dispatcher_without_freezing(tmp_path):
  """A tf.data worker whose dispatcher is down (the chief restarting, its
  address file left from before) waits for it without freezing Python (TF's
  WorkerServer holds the global lock while it waits: a chaos run's worker
  froze before its TF server started, and the restarted chief waited for
  it), then starts once the dispatcher serves there."""
  import portpicker  # pylint: disable=g-import-not-at-top
  port = portpicker.pick_unused_port()
  model_dir = str(tmp_path)
  with open(data_service.address_path(model_dir), "w") as f:
    f.write('{"dispatcher": "localhost:%d"}' % port)
  lines = []
  data_service.start_worker(model_dir, "localhost:1", timeout_secs=60,
                            log=lines.append)
  ticks = []  # This thread runs on while the worker waits.
  for _ in range(10):
    ticks.append(time.monotonic())
    time.sleep(0.1)
  assert ticks[-1] - ticks[0] < 3, ticks
  assert not lines
  dispatcher = tf.data.experimental.service.DispatchServer(
      tf.data.experimental.service.DispatcherConfig(port=port))
  try:
    assert processes.wait_until(lambda: lines, 30), "no worker started"
    assert lines[0].startswith("Data: a tf.data service worker serves at "
                               "localhost for the dispatcher at localhost:%d"
                               % port), lines
  finally:
    data_service.stop_servers()
    del dispatcher
  assert not [t for t in threading.enumerate()
              if t.name == "data-service-worker"]



@pytest.mark.estimator
def test_the_default_is_on_and_the_estimator_ignores_it(assets, tmp_path):
  """Its tasks share the files out themselves (--shard_files). A launcher
  writes every flag into its tasks' flagfile, the default's value too, so
  the Estimator cannot tell a given --data_service from the default: it
  ignores both, as it ignores --steps_per_execution."""
  assert job_lib.default(job_lib.DataOptions, "data_service") is True
  fv = cli.new_flag_values(launcher.demo_flags(assets) + [
      "--backend=estimator", "--data_service",
      "--model_dir=" + str(tmp_path / "model")])
  plan = resolve.prepare(fv, None, log=lambda line: None)
  assert plan.backend.name == "estimator" and plan.job.data.data_service
