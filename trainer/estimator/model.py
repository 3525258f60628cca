"""The Estimator `model_fn`: a hub model in `hub.KerasLayer` plus a head.

`hub.KerasLayer` fills no graph collections when used in an Estimator, so
this module wires by hand what Estimator would otherwise miss
(tensorflow/tensorflow#19643):

* trainable variables: the optimizer gets the layer's `trainable_weights`
  (empty when frozen) plus the head's, not the TRAINABLE_VARIABLES
  collection;
* regularization losses: `layer.losses` (zero when frozen) are added to the
  loss;
* `training`: True only in TRAIN mode, so batch normalization uses batch
  statistics and moves its moving averages only while fine-tuning; the
  layer itself forces training=False when frozen;
* update ops: the moving-average updates of a TF2 SavedModel run inside its
  function call; any UPDATE_OPS of the head are run with the train op.

With several ps tasks, variables are placed by size (greedy: each goes to
the ps holding the fewest bytes so far) instead of Estimator's round-robin,
which can put the largest variables on one ps and make it the bottleneck.
"""

import contextlib

import tensorflow as tf
import tensorflow_hub as hub
import tf_keras

from trainer.config import job as job_lib
from trainer.estimator import checkpoints
from trainer.estimator import hooks
from trainer.estimator import optimizers
from trainer.hub_model import hub_layer
from trainer.hub_model import model_spec as model_spec_lib



class GreedyBySize:
  """ps strategy: each variable goes to the ps holding the fewest bytes."""

  def __init__(self, num_ps: int):
    self.loads = [0] * num_ps

  def __call__(self, op) -> int:
    task = self.loads.index(min(self.loads))
    self.loads[task] += _variable_bytes(op)
    return task


def _variable_bytes(op) -> int:
  """Bytes of the variable `op` creates (1 where its shape is unknown)."""
  try:
    shape = tf.TensorShape(op.get_attr("shape"))
    dtype = tf.as_dtype(op.get_attr("dtype"))
  except ValueError:
    return 1
  if not shape.is_fully_defined():
    return 1
  return max(shape.num_elements() * dtype.size, 1)


def balanced_ps_placement(num_ps: int):
  """A device function placing variables on `num_ps` ps tasks by size.

  Used inside Estimator's own replica_device_setter, it decides the ps task
  of each variable (the inner device function wins); other ops are left to
  Estimator.
  """
  return tf.compat.v1.train.replica_device_setter(
      ps_tasks=num_ps, ps_device="/job:ps", worker_device="",
      ps_strategy=GreedyBySize(num_ps))


def make_model_fn(spec: model_spec_lib.ModelSpec, head: job_lib.HeadConfig):
  """Returns a model_fn for `spec` with `head` on top."""

  def model_fn(features, labels, mode, config=None):
    training = mode == tf.estimator.ModeKeys.TRAIN
    # Estimator places variables on ps tasks only when training; export and
    # evaluation run in a local session.
    num_ps = config.num_ps_replicas if config and training else 0
    placement = (tf.compat.v1.device(balanced_ps_placement(num_ps))
                 if num_ps > 1 else contextlib.nullcontext())
    with placement:
      layer = hub.KerasLayer(**spec.keras_layer_kwargs(), name="hub")
      net = hub_layer.outputs(layer, spec, features, training)
      head_layers = [tf_keras.layers.Dense(units, activation="relu",
                                           name="hidden_%d" % i)
                     for i, units in enumerate(head.hidden_units)]
      head_layers.append(tf_keras.layers.Dense(max(head.n_classes, 1),
                                               name="logits"))
      for head_layer in head_layers:
        net = head_layer(net)
    logits = net

    if head.n_classes:
      predictions = {
          "classes": tf.argmax(logits, axis=1),
          "probabilities": tf.nn.softmax(logits),
          "logits": logits,
      }
    else:
      predictions = {"predictions": logits[:, 0]}
    if mode == tf.estimator.ModeKeys.PREDICT:
      return tf.estimator.EstimatorSpec(
          mode, predictions=predictions,
          export_outputs={"serving_default":
                          tf.estimator.export.PredictOutput(predictions)})

    if head.n_classes:
      data_loss = tf.reduce_mean(
          tf.nn.sparse_softmax_cross_entropy_with_logits(
              labels=tf.cast(labels, tf.int64), logits=logits))
      metrics = {"accuracy": tf.compat.v1.metrics.accuracy(
          labels, predictions["classes"])}
    else:
      targets = tf.cast(labels, tf.float32)
      data_loss = tf.reduce_mean(
          tf.square(predictions["predictions"] - targets))
      metrics = {
          "rmse": tf.compat.v1.metrics.root_mean_squared_error(
              targets, predictions["predictions"]),
          "mae": tf.compat.v1.metrics.mean_absolute_error(
              targets, predictions["predictions"]),
      }
    regularization = tf.add_n(
        [tf.cast(l, tf.float32) for l in layer.losses] + [tf.constant(0.0)])
    loss = tf.identity(data_loss + regularization, name=hooks.LOSS_NAME)
    metrics["data_loss"] = tf.compat.v1.metrics.mean(data_loss)

    if mode == tf.estimator.ModeKeys.EVAL:
      return tf.estimator.EstimatorSpec(mode, loss=loss,
                                        eval_metric_ops=metrics)

    var_list = list(layer.trainable_weights)
    for head_layer in head_layers:
      var_list.extend(head_layer.trainable_weights)
    optimizer = optimizers.OPTIMIZERS[head.optimizer](head.learning_rate)
    update_ops = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)
    with tf.control_dependencies(update_ops):
      train_op = optimizer.minimize(
          loss, var_list=var_list,
          global_step=tf.compat.v1.train.get_or_create_global_step())
    tf.compat.v1.summary.scalar("regularization_loss", regularization)
    tf.compat.v1.summary.scalar("learning_rate",
                                tf.constant(head.learning_rate, tf.float32))
    return tf.estimator.EstimatorSpec(
        mode, loss=loss, train_op=train_op,
        training_chief_hooks=checkpoints.saver_hooks(config))

  return model_fn
