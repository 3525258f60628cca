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
import inspect
from typing import Callable, Mapping, Optional

import tensorflow as tf
import tensorflow_hub as hub
import tf_keras

from harness import errors
from trainer.config import job as job_lib
from trainer.estimator import checkpoints
from trainer.estimator import hooks
from trainer.estimator import optimizers
from trainer.hub_model import hub_layer
from trainer.hub_model import model_spec as model_spec_lib
from trainer.hub_model import user_model as user_model_lib


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


def _placement(config, training: bool):
  """Variables on the ps tasks by size. Estimator places variables on ps
  tasks only when training; export and evaluation run in a local session."""
  num_ps = config.num_ps_replicas if config and training else 0
  return (tf.compat.v1.device(balanced_ps_placement(num_ps))
          if num_ps > 1 else contextlib.nullcontext())


def _harness_model(spec: model_spec_lib.ModelSpec, head: job_lib.HeadConfig,
                   features, training: bool):
  """(logits, trainable variables, regularization losses) of the hub model
  with the harness's head."""
  layer = hub.KerasLayer(**spec.keras_layer_kwargs(), name="hub")
  net = hub_layer.outputs(layer, spec, features, training)
  head_layers = [tf_keras.layers.Dense(units, activation="relu",
                                       name="hidden_%d" % i)
                 for i, units in enumerate(head.hidden_units)]
  head_layers.append(tf_keras.layers.Dense(max(head.n_classes, 1),
                                           name="logits"))
  var_list = list(layer.trainable_weights)
  for head_layer in head_layers:
    net = head_layer(net)
    var_list.extend(head_layer.trainable_weights)
  return net, var_list, list(layer.losses)


def _your_model(spec: model_spec_lib.ModelSpec, head: job_lib.HeadConfig,
                user: user_model_lib.UserModel, features, training: bool):
  """(logits, trainable variables, regularization losses) of the user's
  Keras model (`model`), fed the columns it takes."""
  yours, _ = user_model_lib.build(user, spec, head.n_classes)
  logits = yours({name: features[name] for name in user.used},
                 training=training)
  return (tf.cast(logits, tf.float32), list(yours.trainable_weights),
          list(yours.losses))


def make_model_fn(spec: model_spec_lib.ModelSpec, head: job_lib.HeadConfig,
                  user: Optional[user_model_lib.UserModel] = None):
  """Returns a model_fn for `spec` with `head` on top, or for the user's
  Keras model (`user`) with the same loss, metrics and optimizer."""

  def model_fn(features, labels, mode, config=None):
    training = mode == tf.estimator.ModeKeys.TRAIN
    with _placement(config, training):
      if user:
        logits, var_list, regularization_losses = _your_model(
            spec, head, user, features, training)
      else:
        logits, var_list, regularization_losses = _harness_model(
            spec, head, features, training)

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
      example_losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
          labels=tf.cast(labels, tf.int64), logits=logits)
      if head.class_weights:  # Each example's loss by its class's weight.
        example_losses *= tf.gather(
            tf.constant(head.class_weights, tf.float32),
            tf.cast(labels, tf.int64))
      data_loss = tf.reduce_mean(example_losses)
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
        [tf.cast(l, tf.float32) for l in regularization_losses] +
        [tf.constant(0.0)])
    loss = tf.identity(data_loss + regularization, name=hooks.LOSS_NAME)
    metrics["data_loss"] = tf.compat.v1.metrics.mean(data_loss)

    if mode == tf.estimator.ModeKeys.EVAL:
      return tf.estimator.EstimatorSpec(mode, loss=loss,
                                        eval_metric_ops=metrics)

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


def _accepted(function: Callable):
  try:
    return set(inspect.signature(function).parameters)
  except (TypeError, ValueError):
    return set(user_model_lib.MODEL_FN_ARGS)


def _check_spec(result, reference: str, mode: str):
  if not isinstance(result, tf.estimator.EstimatorSpec):
    raise errors.FlagError(
        "`model_fn`=%s returned %s in mode %s, not a tf.estimator."
        "EstimatorSpec." % (reference, type(result).__name__, mode))
  if mode == tf.estimator.ModeKeys.TRAIN and (result.loss is None or
                                              result.train_op is None):
    raise errors.FlagError(
        "`model_fn`=%s returned an EstimatorSpec without a loss or a "
        "train_op in mode train." % reference)


def wrap_model_fn(function: Callable, reference: str,
                  params: Mapping[str, object]):
  """The user's model_fn (`model_fn`), run as the harness runs its own:
  variables placed on the ps tasks by size, the loss also named LOSS_NAME
  (the progress line and the NaN guard read it), and the chief's saver
  hook added where the model_fn brings none. It is given the arguments it
  takes of features, labels, mode, params (`params`: a copy) and config."""
  accepted = _accepted(function)

  def model_fn(features, labels, mode, config=None):
    given = {"labels": labels, "mode": mode, "params": dict(params),
             "config": config}
    kwargs = {name: value for name, value in given.items()
              if name in accepted}
    with _placement(config, mode == tf.estimator.ModeKeys.TRAIN):
      result = function(features=features, **kwargs)
    _check_spec(result, reference, mode)
    if result.loss is not None:
      result = result._replace(
          loss=tf.identity(result.loss, name=hooks.LOSS_NAME))
    chief_hooks = list(result.training_chief_hooks)
    if mode == tf.estimator.ModeKeys.TRAIN and not any(
        isinstance(h, tf.compat.v1.train.CheckpointSaverHook)
        for h in chief_hooks):
      result = result._replace(training_chief_hooks=tuple(
          chief_hooks + checkpoints.saver_hooks(config)))
    return result

  return model_fn


def check_model_fn(reference: str, inputs: Mapping[str, tf.TensorSpec],
                   n_classes: int, params: Mapping[str, object]) -> Callable:
  """Imports the user's model_fn and builds its training graph once, on
  placeholders of the data's columns: its mistakes before any task starts.
  Returns the function.

  Raises:
    errors.FlagError: no such function, other arguments, no EstimatorSpec.
    user_model_lib.UserCodeError: the model_fn raised.
  """
  function = user_model_lib.load(reference, "model_fn")
  user_model_lib.check_arguments(function, reference, "model_fn",
                                 user_model_lib.MODEL_FN_ARGS)
  with tf.Graph().as_default():
    tf.compat.v1.train.get_or_create_global_step()
    features = {name: tf.compat.v1.placeholder(s.dtype, s.shape, name=name)
                for name, s in inputs.items()}
    labels = tf.compat.v1.placeholder(
        tf.int64 if n_classes else tf.float32, [None], name="labels")
    try:
      wrap_model_fn(function, reference, params)(
          features, labels, tf.estimator.ModeKeys.TRAIN)
    except errors.HarnessError:
      raise
    except Exception:  # pylint: disable=broad-except
      raise user_model_lib.user_code_error(
          "model_fn", reference, "building its training graph") from None
  return function
