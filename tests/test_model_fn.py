"""trainer.estimator.model: what the model_fn wires around hub.KerasLayer.

Each test builds the model_fn's graph for one mode on real digits, runs it
in a plain session and reads the hub model's variables before and after.
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub

from example_kit import datasets
from example_kit import hub_models
from trainer.config import job
from trainer.estimator import model
from trainer.hub_model import model_spec

pytestmark = pytest.mark.estimator  # tf.estimator (tests/conftest.py)

ModeKeys = tf.estimator.ModeKeys
SLOT = "/LazyAdam"  # The default optimizer's first slot (m), by variable.
HUB_KERNEL = "dense1/kernel:0"
MOVING_MEAN = "batch_norm/moving_mean:0"


@pytest.fixture(scope="module")
def batch():
  examples = datasets.digits(datasets.TRANSFER_CLASSES,
                             datasets.TRANSFER_HALF)
  return examples.columns["pixels"][:32], examples.columns["label"][:32]


class Graph:
  """The model_fn's graph for one mode, with a session to run it."""

  def __init__(self, handle, mode, pixels, labels, trainable,
               head=job.HeadConfig(n_classes=5)):
    spec = model_spec.inspect_model(handle, trainable=trainable)
    self.graph = tf.Graph()
    with self.graph.as_default():
      tf.compat.v1.train.get_or_create_global_step()
      model_fn = model.make_model_fn(spec, head)
      self.pixels = tf.compat.v1.placeholder(tf.float32, [None, 64])
      self.spec = model_fn({"inputs": self.pixels},
                           None if mode == ModeKeys.PREDICT
                           else tf.constant(labels), mode)
      self.session = tf.compat.v1.Session(graph=self.graph)
      self.session.run([tf.compat.v1.global_variables_initializer(),
                        tf.compat.v1.local_variables_initializer()])
    self.feed = {self.pixels: pixels}

  def value(self, name):
    variable, = [v for v in self.graph.get_collection("variables")
                 if v.name == name]
    return self.session.run(variable)

  def run(self, fetch, feed=None):
    return self.session.run(fetch, feed or self.feed)


def test_fine_tuning_trains_hub_variables_and_moves_batch_norm(assets, batch):
  g = Graph(assets.digits_model, ModeKeys.TRAIN, *batch, trainable=True)
  kernel, mean = g.value(HUB_KERNEL), g.value(MOVING_MEAN)
  g.run(g.spec.train_op)
  assert not np.allclose(g.value(HUB_KERNEL), kernel)
  assert not np.allclose(g.value(MOVING_MEAN), mean)


def test_frozen_model_keeps_hub_variables_and_batch_norm(assets, batch):
  g = Graph(assets.digits_model, ModeKeys.TRAIN, *batch, trainable=False)
  kernel, mean = g.value(HUB_KERNEL), g.value(MOVING_MEAN)
  head = g.value("logits/kernel:0")
  g.run(g.spec.train_op)
  np.testing.assert_array_equal(g.value(HUB_KERNEL), kernel)
  np.testing.assert_array_equal(g.value(MOVING_MEAN), mean)
  assert not np.allclose(g.value("logits/kernel:0"), head)


@pytest.mark.parametrize("mode", [ModeKeys.EVAL, ModeKeys.PREDICT])
def test_eval_and_predict_keep_batch_norm_statistics(assets, batch, mode):
  g = Graph(assets.digits_model, mode, *batch, trainable=True)
  mean = g.value(MOVING_MEAN)
  fetch = g.spec.loss if mode == ModeKeys.EVAL else g.spec.predictions
  g.run(fetch)
  np.testing.assert_array_equal(g.value(MOVING_MEAN), mean)


def _logits_of_first_example(g, pixels, fetch):
  alone = g.run(fetch, {g.pixels: pixels[:1]})
  in_batch = g.run(fetch, {g.pixels: pixels})
  return alone[0], in_batch[0]


def test_training_argument_follows_mode(assets, batch):
  """Batch statistics (training=True) make an example's output depend on
  its batch; moving statistics (training=False) do not."""
  pixels, _ = batch
  train = Graph(assets.digits_model, ModeKeys.TRAIN, *batch, trainable=True)
  logits = train.graph.get_tensor_by_name("logits/BiasAdd:0")
  alone, in_batch = _logits_of_first_example(train, pixels, logits)
  assert not np.allclose(alone, in_batch, atol=1e-4)
  predict = Graph(assets.digits_model, ModeKeys.PREDICT, *batch,
                  trainable=True)
  alone, in_batch = _logits_of_first_example(
      predict, pixels, predict.spec.predictions["logits"])
  np.testing.assert_allclose(alone, in_batch, atol=1e-5)
  frozen = Graph(assets.digits_model, ModeKeys.TRAIN, *batch,
                 trainable=False)
  logits = frozen.graph.get_tensor_by_name("logits/BiasAdd:0")
  alone, in_batch = _logits_of_first_example(frozen, pixels, logits)
  np.testing.assert_allclose(alone, in_batch, atol=1e-5)


def _data_loss(g, batch, class_weights=None):
  logits = g.graph.get_tensor_by_name("logits/BiasAdd:0")
  values = g.run(logits)
  labels = batch[1]
  shifted = values - values.max(axis=1, keepdims=True)
  log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
  losses = -log_probs[np.arange(len(labels)), labels]
  if class_weights:
    losses *= np.asarray(class_weights)[labels]
  return losses.mean()


def test_class_weights_scale_each_examples_loss(assets, batch):
  """--class_weights: each example's cross-entropy times its class's
  weight, then the mean (as the Keras backend's, tests/test_keras_backend)."""
  weights = (1.0, 4.0, 0.5, 2.0, 1.0)
  g = Graph(assets.digits_model, ModeKeys.TRAIN, *batch, trainable=False,
            head=job.HeadConfig(n_classes=5, class_weights=weights))
  weighted = g.run(g.spec.loss)
  np.testing.assert_allclose(weighted, _data_loss(g, batch, weights),
                             rtol=1e-5)
  assert abs(weighted - _data_loss(g, batch)) > 1e-3


def test_regularization_loss_is_added_when_fine_tuning(assets, batch):
  loaded = hub.load(assets.digits_model)
  expected = float(loaded.regularization_losses[0]())
  assert expected > 0
  g = Graph(assets.digits_model, ModeKeys.TRAIN, *batch, trainable=True)
  total = g.run(g.spec.loss)
  np.testing.assert_allclose(total - _data_loss(g, batch), expected,
                             rtol=1e-3)
  frozen = Graph(assets.digits_model, ModeKeys.TRAIN, *batch,
                 trainable=False)
  np.testing.assert_allclose(frozen.run(frozen.spec.loss),
                             _data_loss(frozen, batch), rtol=1e-5)


def test_only_layer_and_head_variables_are_trained(assets, batch):
  g = Graph(assets.digits_model, ModeKeys.TRAIN, *batch, trainable=True)
  with g.graph.as_default():
    # hub.KerasLayer fills no TRAINABLE_VARIABLES collection ...
    collected = {v.name for v in tf.compat.v1.trainable_variables()}
  assert HUB_KERNEL not in collected
  # ... yet the optimizer got the hub model's trainable variables, and not
  # its batch-norm moving statistics.
  slots = {v.name for v in g.graph.get_collection("variables")
           if SLOT in v.name}
  assert "dense1/kernel%s:0" % SLOT in slots
  assert "logits/kernel%s:0" % SLOT in slots
  assert not any("moving_mean" in name for name in slots)


class _TwoPsConfig:
  """What the model_fn reads of a RunConfig with two ps tasks."""
  num_ps_replicas = 2
  save_checkpoints_steps = save_checkpoints_secs = None


def _ps_placement(handle, balanced, slots=False, inputs=None):
  """Variable -> (ps task, bytes) when the model_fn runs under Estimator's
  own round-robin replica_device_setter with two ps tasks (the optimizer's
  slots too, with `slots`)."""
  spec = model_spec.inspect_model(handle, trainable=True)
  cluster = tf.train.ClusterSpec({"ps": ["h:1", "h:2"], "chief": ["h:3"]})
  with tf.Graph().as_default() as graph:
    outer = tf.compat.v1.train.replica_device_setter(
        ps_tasks=2, worker_device="/job:chief", cluster=cluster)
    with tf.compat.v1.device(outer):
      tf.compat.v1.train.get_or_create_global_step()
      model_fn = model.make_model_fn(spec, job.HeadConfig(n_classes=5))
      features = {"inputs": tf.zeros([4, 64]) if inputs is None
                  else tf.constant(inputs)}
      model_fn(features, tf.zeros([4], tf.int64), ModeKeys.TRAIN,
               _TwoPsConfig() if balanced else None)
  placed = {}
  for op in graph.get_operations():
    if op.type == "VarHandleOp" and (slots or "Adam" not in op.name):
      shape = tf.TensorShape(op.get_attr("shape"))
      placed[op.name] = (tf.DeviceSpec.from_string(op.device).task,
                         shape.num_elements() * 4)
  return placed


def test_variables_are_balanced_over_ps_tasks_by_size(assets):
  placed = _ps_placement(assets.digits_model, balanced=True)
  largest = sorted(placed, key=lambda name: -placed[name][1])[:2]
  assert set(largest) == {"dense1/kernel", "dense2/kernel"}
  assert placed[largest[0]][0] != placed[largest[1]][0]
  load = [sum(b for task, b in placed.values() if task == t) for t in (0, 1)]
  round_robin = _ps_placement(assets.digits_model, balanced=False)
  rr_load = [sum(b for task, b in round_robin.values() if task == t)
             for t in (0, 1)]
  print("bytes per ps: balanced %s, round-robin %s" % (load, rr_load))
  # Strictly better than round-robin here (a tie would prove nothing):
  # balanced [10284, 16392] bytes, round-robin [17812, 8864].
  assert max(load) < max(rr_load)
  assert sum(load) == sum(rr_load)  # The same variables, placed otherwise.
  assert max(load) / sum(load) < 0.65


def test_a_table_that_dominates_gets_a_ps_of_its_own(tmp_path):
  """Variables cannot be split, so two ps share a model evenly only where
  its variables allow: a text model whose embedding table dominates gets
  one ps for the table and its optimizer slots (3 times the table's
  bytes), the other ps for everything else."""
  path = str(tmp_path / "text")
  hub_models.build_text_model(path, table_rows=20000, dim=32)
  placed = _ps_placement(path, balanced=True, slots=True,
                         inputs=["eigenvalues of a matrix"] * 4)
  table = [name for name in placed if name.startswith("embeddings")]
  assert sorted(table) == ["embeddings", "embeddings/LazyAdam",
                           "embeddings/LazyAdam_1"]
  table_task = {placed[name][0] for name in table}
  assert len(table_task) == 1
  head = {placed[name][0] for name in placed if name.startswith("logits")}
  assert len(head) == 1 and table_task.isdisjoint(head)  # Slots included.
  others = [name for name in placed if name not in table and
            not name.startswith("logits")]
  assert all(placed[name][1] <= 8 for name in others)  # Scalars only.
  table_bytes = sum(placed[name][1] for name in table)
  assert table_bytes == 3 * 20000 * 32 * 4
