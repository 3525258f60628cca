"""Benchmark parts measured in this process: raw TF2 loops, the Estimator,
and the embedding-table curve.

* raw: the same model, head, loss and optimizer in hand-written TF2, one
  `tf.function` call per step (pays Python dispatch per step), and a tight
  loop running many steps inside one call (as Keras' steps_per_execution):
  the real limit of the step itself.
* estimator: the trainer's Estimator, steady state, plus start-up and the
  final save.
* the embedding curve: the example text model with its table at several
  sizes (real vocabulary, filler rows), fine-tuned; steady rate, and where
  a step or a run could grow with the table: start-up (variables and the
  lookup table initialized), the final checkpoint save, the export, an
  evaluation; and the bytes each of 2 ps tasks holds.
"""

import dataclasses
import os
import shutil
import time
import types

import tensorflow as tf
import tensorflow_hub as hub
import tf_keras

from example_kit import hub_models
from trainer.config import job as job_lib
from trainer.inputs import data
from trainer.plan import preflight
# The Estimator's parts import trainer.estimator where they run: it exists
# only where TF has tf.estimator (TF <= 2.15).

TEXT_DIM = 32


def _raw_train_step(assets):
  """A TF2 training step of the digits model with the Estimator's head."""
  loaded = hub.load(assets.digits_model)
  head = tf.Variable(tf_keras.initializers.GlorotUniform(seed=0)([32, 5]))
  bias = tf.Variable(tf.zeros([5]))
  variables = list(loaded.trainable_variables) + [head, bias]
  # Keras 2's Adam, as the Keras backend's dense updates (TF 2.16+'s
  # tf.keras is Keras 3).
  optimizer = tf_keras.optimizers.legacy.Adam(0.01)

  def step(features, labels):
    with tf.GradientTape() as tape:
      logits = tf.matmul(loaded(features["inputs"], training=True),
                         head) + bias
      loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
          labels, logits)) + loaded.regularization_losses[0]()
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    return loss
  return step


def _train_input(plan, batch_size):
  return data.make_input_fn(plan.train_files, plan.inputs,
                            batch_size=batch_size, training=True)


def raw_rate(plan, assets, batch_size, steps, warmup):
  """Examples/s with one tf.function call per step."""
  step = tf.function(_raw_train_step(assets))
  train_input = _train_input(plan, batch_size)
  batches = iter(train_input())
  for _ in range(warmup):
    step(*next(batches)).numpy()
  start = time.perf_counter()
  for _ in range(steps):
    loss = step(*next(batches))
  loss.numpy()
  return steps * batch_size / (time.perf_counter() - start)


def raw_rate_tight(plan, assets, batch_size, steps, warmup,
                   steps_per_call=100):
  """Examples/s with `steps_per_call` steps inside one tf.function call."""
  step = _raw_train_step(assets)
  train_input = _train_input(plan, batch_size)
  batches = iter(train_input())

  @tf.function
  def many():
    loss = tf.constant(0.0)
    for _ in tf.range(steps_per_call):
      loss = step(*next(batches))
    return loss

  for _ in range(max(1, warmup // steps_per_call)):
    many().numpy()
  calls = max(1, steps // steps_per_call)
  start = time.perf_counter()
  for _ in range(calls):
    loss = many()
  loss.numpy()
  return calls * steps_per_call * batch_size / (time.perf_counter() - start)


def _timing_hook():
  """A SessionRunHook that records when each step ended, and when training
  ended."""

  class Timing(tf.estimator.SessionRunHook):

    def __init__(self):
      self.step_times = []
      self.end_time = None

    def after_run(self, run_context, run_values):
      self.step_times.append(time.perf_counter())

    def end(self, session):
      self.end_time = time.perf_counter()
  return Timing()


def estimator_figures(plan, batch_size, steps, warmup, model_dir,
                      phases=False):
  """Steady examples/s of Estimator.train, start-up and the final save;
  with `phases`, also the export and one evaluation."""
  from trainer.estimator import train  # pylint: disable=g-import-not-at-top
  shutil.rmtree(model_dir, ignore_errors=True)  # The benchmark's scratch.
  plan = dataclasses.replace(plan, job=dataclasses.replace(
      plan.job, model_dir=model_dir, run=dataclasses.replace(
          plan.job.run, save_checkpoints_steps=None,
          save_checkpoints_secs=None)))
  estimator = train.estimator_for(plan)
  train_input, eval_input = train.input_fns(plan)
  timing = _timing_hook()
  start = time.perf_counter()
  estimator.train(train_input, max_steps=steps, hooks=[timing])
  done = time.perf_counter()
  times = timing.step_times
  figures = {
      "examples_per_s": (len(times) - 1 - warmup) * batch_size /
                        (times[-1] - times[warmup]),
      "startup_s": times[0] - start,
      "final_save_s": done - timing.end_time,
  }
  if phases:
    start = time.perf_counter()
    train.export(estimator, plan, os.path.join(model_dir, "export"))
    figures["export_s"] = time.perf_counter() - start
    start = time.perf_counter()
    estimator.evaluate(eval_input)
    figures["eval_s"] = time.perf_counter() - start
    figures.update(checkpoint_seconds(estimator.latest_checkpoint()))
  return figures


def checkpoint_seconds(checkpoint):
  """How long restoring, and saving again, the training checkpoint takes
  (every variable and optimizer slot)."""
  with tf.Graph().as_default():
    saver = tf.compat.v1.train.import_meta_graph(checkpoint + ".meta")
    with tf.compat.v1.Session() as session:
      start = time.perf_counter()
      saver.restore(session, checkpoint)
      restored = time.perf_counter()
      saver.save(session, checkpoint + "-again", write_meta_graph=False)
      saved = time.perf_counter()
  return {"checkpoint_restore_s": restored - start,
          "checkpoint_save_s": saved - restored}


def build_text_models(work_dir, sizes, log):
  """The example text model with a table of each size; size -> path."""
  paths = {}
  for rows in sizes:
    paths[rows] = os.path.join(work_dir, "text_models", "rows-%d" % rows)
    if not os.path.exists(paths[rows]):
      log("Building a text model with %d rows" % rows)
      hub_models.build_text_model(paths[rows], table_rows=rows,
                                  dim=TEXT_DIM)
  return paths


def text_plan(model_path, assets, batch_size, optimizer, work_dir):
  return preflight.check(job_lib.JobConfig(
      model=job_lib.ModelOptions(model_path, trainable=True),
      head=job_lib.HeadConfig(n_classes=5, optimizer=optimizer),
      data=job_lib.DataOptions(
          train_files=[assets.data("text_train.csv")],
          eval_files=[assets.data("text_eval.csv")],
          batch_size=batch_size, input_map={"inputs": "text"},
          validate_data="off"),
      model_dir=os.path.join(work_dir, "unused")), log=lambda line: None)


def ps_bytes(plan, num_ps=2):
  """Bytes of variables (optimizer slots included) on each ps task, as the
  model_fn places them for training on `num_ps` ps tasks."""
  from trainer.estimator import model as model_lib  # pylint: disable=g-import-not-at-top
  with tf.Graph().as_default() as graph:
    tf.compat.v1.train.get_or_create_global_step()
    features = {name: tf.compat.v1.placeholder(spec.dtype, spec.shape)
                for name, spec in plan.spec.inputs.items()}
    labels = tf.compat.v1.placeholder(tf.int64, [None])
    model_fn = model_lib.make_model_fn(plan.spec, plan.job.head)
    model_fn(features, labels, tf.estimator.ModeKeys.TRAIN,
             config=types.SimpleNamespace(num_ps_replicas=num_ps,
                                          save_checkpoints_steps=None,
                                          save_checkpoints_secs=None))
    loads = {}
    for variable in graph.get_collection(
        tf.compat.v1.GraphKeys.GLOBAL_VARIABLES):
      if variable.device.startswith("/job:ps"):
        task = "ps-" + variable.device.split("task:")[1].split("/")[0]
        size = variable.shape.num_elements() * variable.dtype.size
        loads[task] = loads.get(task, 0) + size
  return loads
