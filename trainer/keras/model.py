"""The Keras backend's model: the hub model in `hub.KerasLayer` plus the
same head as the Estimator's, as a `tf_keras` model.

`tf_keras` (Keras 2), not Keras 3: hub.KerasLayer is a Keras 2 layer, and
Keras 3 has no parameter-server training (keras-team/keras#18624). The
head, its predictions, its losses and its metrics are those of
trainer.estimator.model: ReLU `hidden_N` layers, a `logits` layer,
softmax cross-entropy for classes (n_classes >= 2) or squared error for a
regression (n_classes 0), plus the hub model's regularization losses
(`layer.losses`: empty when frozen).

Variables are named as the Estimator's checkpoints name them
(`variables_by_name`): the hub model's by their saved names ("dense1/kernel"),
the head's "hidden_0/kernel", "logits/bias". That is how a checkpoint of either
backend warm-starts the other (trainer.training.warm_start).

A model of the user's own (`model`, trainer.hub_model.user_model) is
`YourModel`: the user's functional model, fed the columns it takes, with
the same losses and metrics; its variables are named by Keras (the hub
model's by their saved names, the user's layers' "dense/kernel", ...).
"""

from typing import Dict, List, Mapping, Optional, Tuple

import tensorflow as tf
import tensorflow_hub as hub
import tf_keras

from harness import errors
from trainer.config import job as job_lib
from trainer.hub_model import hub_layer
from trainer.hub_model import model_spec as model_spec_lib
from trainer.hub_model import user_model as user_model_lib
from trainer.keras import partitioning


def _hub_layer(spec: model_spec_lib.ModelSpec) -> hub.KerasLayer:
  """The hub.KerasLayer of both models, its variables whole on a cluster:
  TF cannot run a loaded SavedModel on split ones
  (trainer.keras.partitioning)."""
  with partitioning.whole():
    return user_model_lib.hub_layer(spec)


class HubModel(tf_keras.Model):
  """features (a dict keyed by model input) -> logits [batch, max(n, 1)]."""

  def __init__(self, spec: model_spec_lib.ModelSpec,
               head: job_lib.HeadConfig):
    super().__init__(name="hub_model")
    self._spec = spec
    self.hub = _hub_layer(spec)
    self.head_layers = [
        tf_keras.layers.Dense(units, activation="relu", name="hidden_%d" % i)
        for i, units in enumerate(head.hidden_units)]
    self.head_layers.append(tf_keras.layers.Dense(max(head.n_classes, 1),
                                                  name="logits"))

  def get_config(self):
    return {"name": self.name}  # Built from the plan, never from a config.

  def call(self, features, training=False):  # pylint: disable=arguments-differ
    net = hub_layer.outputs(self.hub, self._spec, features, training)
    for layer in self.head_layers:
      net = layer(net)
    return net

  def regularization_losses(self) -> List[tf.Tensor]:
    return list(self.hub.losses)  # Empty when frozen.

  def named_variables(self) -> Dict[str, tf.Variable]:
    """Estimator name -> variable (see variables_by_name)."""
    named = {}
    for variable in self.hub.weights:
      named[variable.name.split(":")[0]] = variable
    for layer in self.head_layers:
      for full_name, variable in partitioning.named(layer.weights):
        name = "%s/%s" % (layer.name, full_name.split("/")[-1])
        if name in named:
          raise errors.ModelCheckError(
              "The hub model has a variable named %s, as the head's layer "
              "%s does; the Keras backend names variables as the Estimator "
              "does and needs them distinct." % (name, layer.name))
        named[name] = variable
    return named


class YourModel(tf_keras.Model):
  """features (a dict keyed by column) -> the user's model's logits."""

  def __init__(self, spec: model_spec_lib.ModelSpec,
               head: job_lib.HeadConfig, user: user_model_lib.UserModel):
    super().__init__(name="your_model")
    self.yours, self._user = user_model_lib.build(
        user, spec, head.n_classes, layer=_hub_layer(spec))
    self._used = self._user.used

  def get_config(self):
    return {"name": self.name}  # Built from the plan, never from a config.

  def call(self, features, training=False):  # pylint: disable=arguments-differ
    logits = self.yours({name: features[name] for name in self._used},
                        training=training)
    return tf.cast(logits, tf.float32)

  def regularization_losses(self) -> List[tf.Tensor]:
    return list(self.yours.losses)

  def named_variables(self) -> Dict[str, tf.Variable]:
    """Keras name -> variable, for every variable of the user's model."""
    named = {}
    for name, variable in partitioning.named(self.yours.weights):
      if name in named:
        raise errors.ModelCheckError(
            "Your model has two variables named %s; checkpoints and warm "
            "starts name variables, so give its layers distinct names." %
            name)
      named[name] = variable
    return named


def example_features(inputs: Mapping[str, tf.TensorSpec],
                     batch: int = 1) -> Dict[str, tf.Tensor]:
  """A batch of zeros (empty strings) of the model's inputs, to build it."""
  features = {}
  for name, spec in inputs.items():
    shape = [batch] + spec.shape[1:].as_list()
    shape = [1 if d is None else d for d in shape]
    features[name] = (tf.fill(shape, "") if spec.dtype == tf.string else
                      tf.zeros(shape, spec.dtype))
  return features


Model = tf_keras.Model  # HubModel or YourModel.


def build(spec: model_spec_lib.ModelSpec, head: job_lib.HeadConfig,
          user: Optional[user_model_lib.UserModel] = None) -> Model:
  """The model (the user's, where `user`) with every variable created
  (called once on zeros)."""
  if user:
    model = YourModel(spec, head, user)
    # Two examples: a batch of one is squeezed by some Keras layers.
    model(example_features(user.serving_inputs, batch=2), training=False)
  else:
    model = HubModel(spec, head)
    model(example_features(spec.inputs), training=False)
  return model


def variables_by_name(model: Model) -> Dict[str, tf.Variable]:
  """Name -> variable, for every variable of the model: the Estimator's
  names for the harness's model, Keras's for the user's."""
  return model.named_variables()


def model_variables(spec: model_spec_lib.ModelSpec, head: job_lib.HeadConfig,
                    user: Optional[user_model_lib.UserModel] = None
                    ) -> Dict[str, List[int]]:
  """name -> shape of the model's variables (trainer.training.warm_start)."""
  return {name: variable.shape.as_list() for name, variable in
          variables_by_name(build(spec, head, user)).items()}


def predictions(logits: tf.Tensor, n_classes: int) -> Dict[str, tf.Tensor]:
  """What the serving export returns, as the Estimator's does."""
  if n_classes:
    return {"classes": tf.argmax(logits, axis=1),
            "probabilities": tf.nn.softmax(logits), "logits": logits}
  return {"predictions": logits[:, 0]}


def data_loss(logits: tf.Tensor, labels: tf.Tensor,
              head: job_lib.HeadConfig) -> tf.Tensor:
  """The mean loss of the data (no regularization); with class weights,
  each example's scaled by its class's weight."""
  n_classes = head.n_classes
  if n_classes:
    labels = tf.cast(labels, tf.int64)
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=logits)
    if head.class_weights:
      losses *= tf.gather(tf.constant(head.class_weights, tf.float32),
                          labels)
    return tf.reduce_mean(losses)
  return tf.reduce_mean(tf.square(logits[:, 0] - tf.cast(labels,
                                                         tf.float32)))


def regularization(model: Model) -> tf.Tensor:
  return tf.add_n([tf.cast(loss, tf.float32)
                   for loss in model.regularization_losses()] +
                  [tf.constant(0.0)])


def losses(model: Model, logits: tf.Tensor, labels: tf.Tensor,
           head: job_lib.HeadConfig) -> Tuple[tf.Tensor, tf.Tensor]:
  """(total loss, data loss) of a batch."""
  data = data_loss(logits, labels, head)
  return data + regularization(model), data
