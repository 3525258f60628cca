"""Evaluation on the Keras backend: metrics as the Estimator's, written
where the Estimator writes them, and the best export.

`evaluate` runs the model over the evaluation data (all of it, or `eval_steps`
batches) and returns the Estimator's metrics: accuracy (of all examples) or rmse
and mae, and loss and data_loss (means of the batches' losses), with
global_step. `Recorder` writes each evaluation to MODEL_DIR/eval
(trainer.keras.summaries) and keeps the best export
(trainer.training.best_export). `evaluate_continuously` is the evaluator task:
each new checkpoint, to the last (trainer.training.eval_loop).
"""

import os
import time
from typing import Callable, Dict, Optional

import tensorflow as tf

from trainer.config import job as job_lib
from trainer.hub_model import model_spec as model_spec_lib
from trainer.hub_model import user_model as user_model_lib
from trainer.keras import export as export_lib
from trainer.keras import model as model_lib
from trainer.keras import state as state_lib
from trainer.keras import summaries
from trainer.training import best_export
from trainer.training import metric_goal
from trainer.training import eval_events
from trainer.training import eval_loop
from trainer.training import warm_start as warm_start_lib


def eval_dir(model_dir: str) -> str:
  return os.path.join(model_dir, "eval")


def make_evaluate(model: model_lib.Model, head: job_lib.HeadConfig):
  """A function (dataset, steps or None) -> metrics of the model."""
  n_classes = head.n_classes

  @tf.function
  def batch_sums(features, labels):
    logits = model(features, training=False)
    loss, data = model_lib.losses(model, logits, labels, head)
    count = tf.cast(tf.shape(logits)[0], tf.float32)
    if n_classes:
      right = tf.reduce_sum(tf.cast(tf.equal(
          tf.argmax(logits, axis=1), tf.cast(labels, tf.int64)), tf.float32))
      return {"loss": loss, "data_loss": data, "count": count,
              "right": right}
    error = logits[:, 0] - tf.cast(labels, tf.float32)
    return {"loss": loss, "data_loss": data, "count": count,
            "squared": tf.reduce_sum(tf.square(error)),
            "absolute": tf.reduce_sum(tf.abs(error))}

  def evaluate(dataset: tf.data.Dataset, steps: Optional[int]
               ) -> Dict[str, float]:
    totals, batches = {}, 0
    for features, labels in (dataset.take(steps) if steps else dataset):
      for key, value in batch_sums(features, labels).items():
        totals[key] = totals.get(key, 0.0) + float(value)
      batches += 1
    if not batches:
      raise ValueError("the evaluation data holds no batch")
    metrics = {"loss": totals["loss"] / batches,
               "data_loss": totals["data_loss"] / batches}
    if n_classes:
      metrics["accuracy"] = totals["right"] / totals["count"]
    else:
      metrics["rmse"] = (totals["squared"] / totals["count"]) ** 0.5
      metrics["mae"] = totals["absolute"] / totals["count"]
    return metrics
  return evaluate


class Recorder:
  """Writes evaluations to MODEL_DIR/eval and keeps the best export."""

  def __init__(self, model_dir: str, spec: model_spec_lib.ModelSpec,
               head: job_lib.HeadConfig, export_best: str = "",
               log: Callable[[str], None] = print,
               user: Optional[user_model_lib.UserModel] = None):
    self._model_dir, self._spec, self._head = model_dir, spec, head
    self._user = user
    self._metric, self._log = export_best, log
    self._writer = summaries.ScalarWriter(eval_dir(model_dir))

  def record(self, metrics: Dict[str, float], step: int,
             checkpoint: str) -> None:
    earlier = [m[self._metric] for _, m in
               eval_events.evaluations(eval_dir(self._model_dir))
               if self._metric in m] if self._metric else []
    self._writer.write(metrics, step)
    if self._metric and all(metric_goal.better(
        self._metric, metrics[self._metric], value) for value in earlier):
      self._export_best(metrics, step, checkpoint)

  def _export_best(self, metrics, step, checkpoint):
    base = best_export.directory(self._model_dir)
    tf.io.gfile.makedirs(base)
    path = os.path.join(base, str(int(time.time() * 1000)))
    export_lib.export(self._spec, self._head, checkpoint, path,
                      user=self._user)
    for name in tf.io.gfile.listdir(base):  # One kept, as Estimator's.
      other = os.path.join(base, name.rstrip("/"))
      if other != path and name.rstrip("/").isdigit():
        tf.io.gfile.rmtree(other)
    best_export.write_record(self._model_dir, self._metric,
                             metrics[self._metric], step, path)


def evaluate_continuously(spec: model_spec_lib.ModelSpec,
                          head: job_lib.HeadConfig, dataset_fn, *,
                          model_dir: str, eval_steps: Optional[int],
                          throttle_secs: float,
                          export_dir: str, export_best: str = "",
                          start_delay_secs: float = 0,
                          untrained: bool = False,
                          log: Callable[[str], None] = print,
                          user: Optional[user_model_lib.UserModel] = None
                          ) -> dict:
  """The evaluator task (trainer.training.eval_loop): a model of its own,
  restored from each new checkpoint. Returns the final metrics."""
  local = state_lib.create(spec, head, with_optimizer=False, user=user)
  evaluate_model = make_evaluate(local.model, head)
  recorder = Recorder(model_dir, spec, head, export_best, log, user=user)

  def evaluate(checkpoint):
    try:
      step = warm_start_lib.global_step(checkpoint)
      state_lib.restore(local, checkpoint)
    except tf.errors.NotFoundError as e:
      raise eval_loop.CheckpointGone(str(e)) from e
    metrics = dict(evaluate_model(dataset_fn(), eval_steps), global_step=step)
    recorder.record(metrics, step, checkpoint)
    log("Eval after step %d: %s" % (step, ", ".join(
        "%s %.4f" % (k, v) for k, v in sorted(metrics.items())
        if k != "global_step")))
    return metrics
  return eval_loop.evaluate_continuously(
      evaluate, model_dir=model_dir,
      throttle_secs=throttle_secs, export_dir=export_dir,
      start_delay_secs=start_delay_secs, untrained=untrained, log=log)
