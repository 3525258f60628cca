"""Builds the example hub models with real TF code (no model hub is reachable).

Three models, each a directory that `hub.KerasLayer` and `hub.load` accept:

* `build_digits_model`: a TF2 SavedModel following the reusable SavedModel
  conventions (`__call__(inputs, training=...)`, `variables`,
  `trainable_variables`, `regularization_losses`). A feature extractor with
  batch normalization and an L2 weight regularizer, pre-trained on one half
  of the digit images (all ten digits), so training on digits of the other
  half is transfer learning.
* `build_text_model`: a TF2 text-embedding SavedModel: string input, a
  vocabulary file stored as an asset, out-of-vocabulary buckets and a
  sqrt-n embedding combiner.
* `build_tf1_hub_model`: the digits model again, as a legacy TF1 Hub format
  model written with `tf.compat.v1.saved_model.Builder`: two meta graphs
  (tags {"foo", "bar"} and the empty set), several signatures with several
  inputs and outputs (signature `sig` with inputs `x1`, `x2`), and the
  `tfhub_module.pb` marker.
"""

import collections
import os
import re
from typing import Callable, Dict, Optional, Sequence

import numpy as np
import tensorflow as tf

from example_kit import datasets

DIGITS_HIDDEN = 64
DIGITS_FEATURES = 32
TEXT_EMBEDDING_DIM = 16
TEXT_OOV_BUCKETS = 8
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-3
# ModuleDef{format: FORMAT_V3}, serialized: the content of the TF1 Hub
# format marker file, as hub.Module's exporter wrote it.
_TFHUB_MODULE_PB = b"\x08\x03"
TFHUB_MODULE_MARKER = "tfhub_module.pb"


class DigitFeatures(tf.Module):
  """Dense -> batch norm -> ReLU -> dense -> ReLU, on 8x8 digit images."""

  def __init__(self, seed: int = 0, l2: float = 1e-4):
    super().__init__()
    init = tf.keras.initializers.GlorotUniform(seed=seed)
    p, h, f = datasets.DIGITS_PIXELS, DIGITS_HIDDEN, DIGITS_FEATURES
    self.w1 = tf.Variable(init([p, h]), name="dense1/kernel")
    self.b1 = tf.Variable(tf.zeros([h]), name="dense1/bias")
    self.gamma = tf.Variable(tf.ones([h]), name="batch_norm/gamma")
    self.beta = tf.Variable(tf.zeros([h]), name="batch_norm/beta")
    self.moving_mean = tf.Variable(tf.zeros([h]), trainable=False,
                                   name="batch_norm/moving_mean")
    self.moving_variance = tf.Variable(tf.ones([h]), trainable=False,
                                       name="batch_norm/moving_variance")
    self.w2 = tf.Variable(init([h, f]), name="dense2/kernel")
    self.b2 = tf.Variable(tf.zeros([f]), name="dense2/bias")
    self._l2 = l2

  def __call__(self, inputs, training=False):
    x = tf.cast(inputs, tf.float32) / 16.0
    h = tf.matmul(x, self.w1) + self.b1
    if training:
      mean, variance = tf.nn.moments(h, axes=[0])
      self.moving_mean.assign(BN_MOMENTUM * self.moving_mean +
                              (1 - BN_MOMENTUM) * mean)
      self.moving_variance.assign(BN_MOMENTUM * self.moving_variance +
                                  (1 - BN_MOMENTUM) * variance)
    else:
      mean, variance = self.moving_mean, self.moving_variance
    h = tf.nn.batch_normalization(h, mean, variance, self.beta, self.gamma,
                                  BN_EPSILON)
    h = tf.nn.relu(h)
    return tf.nn.relu(tf.matmul(h, self.w2) + self.b2)

  def regularization_loss(self):
    return self._l2 * (tf.reduce_sum(tf.square(self.w1)) +
                       tf.reduce_sum(tf.square(self.w2)))


def pretrain_digits(module: DigitFeatures, examples: datasets.Examples,
                    n_classes: int, steps: int, batch_size: int = 64,
                    seed: int = 0) -> float:
  """Trains `module` with a temporary softmax head; returns train accuracy."""
  head = tf.Variable(
      tf.keras.initializers.GlorotUniform(seed=seed)([DIGITS_FEATURES,
                                                      n_classes]))
  optimizer = tf.keras.optimizers.Adam(0.01)
  variables = list(module.trainable_variables) + [head]
  pixels = tf.constant(examples.columns["pixels"])
  labels = tf.constant(examples.columns["label"])

  @tf.function
  def step(x, y):
    with tf.GradientTape() as tape:
      logits = tf.matmul(module(x, training=True), head)
      loss = tf.reduce_mean(
          tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
      loss += module.regularization_loss()
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))

  rng = np.random.RandomState(seed)
  for _ in range(steps):
    batch = rng.randint(0, len(examples), batch_size)
    step(tf.gather(pixels, batch), tf.gather(labels, batch))
  logits = tf.matmul(module(pixels, training=False), head)
  return float(np.mean(np.argmax(logits, 1) == labels.numpy()))


def save_reusable(module: tf.Module, path: str,
                  call_signature: Sequence[tf.TensorSpec],
                  regularization_losses: Sequence[Callable[[], tf.Tensor]] = (),
                  has_training_argument: bool = True) -> str:
  """Saves `module` as a reusable TF2 SavedModel.

  The saved object has `__call__` (traced for training=True and False when it
  takes a training argument), `variables`, `trainable_variables` and
  `regularization_losses`, as hub.KerasLayer expects.
  """
  obj = tf.train.Checkpoint()
  obj.module = module
  call = tf.function(module.__call__)
  if has_training_argument:
    for training in (True, False):
      call.get_concrete_function(*call_signature, training=training)
  else:
    call.get_concrete_function(*call_signature)
  obj.__call__ = call
  obj.variables = list(module.variables)
  obj.trainable_variables = list(module.trainable_variables)
  obj.regularization_losses = [tf.function(loss, input_signature=[])
                               for loss in regularization_losses]
  tf.saved_model.save(obj, path)
  return path


def build_digits_model(path: str, pretrain_steps: int = 300,
                       seed: int = 0) -> float:
  """Builds and saves the pre-trained digits feature extractor.

  `pretrain_steps=0` saves the same architecture untrained (the from-scratch
  baseline). Returns the pre-training accuracy on its training images.
  """
  tf.random.set_seed(seed)
  module = DigitFeatures(seed=seed)
  accuracy = 0.0
  if pretrain_steps:
    examples = datasets.digits(datasets.ALL_CLASSES, datasets.PRETRAIN_HALF)
    accuracy = pretrain_digits(module, examples, len(datasets.ALL_CLASSES),
                               pretrain_steps, seed=seed)
  save_reusable(module, path,
                [tf.TensorSpec([None, datasets.DIGITS_PIXELS], tf.float32)],
                regularization_losses=[module.regularization_loss])
  return accuracy


def tokenize(texts: tf.Tensor) -> tf.RaggedTensor:
  """Lower-cases, keeps letters and digits, splits on the rest."""
  cleaned = tf.strings.regex_replace(tf.strings.lower(texts), "[^a-z0-9]+",
                                     " ")
  return tf.strings.split(tf.strings.strip(cleaned))


def vocabulary(texts: Sequence[str], size: int) -> list:
  """The `size` most frequent tokens of `texts` (same rules as tokenize)."""
  counts = collections.Counter(
      token for text in texts
      for token in re.sub("[^a-z0-9]+", " ", text.lower()).split())
  return [token for token, _ in counts.most_common(size)]


class TextEmbedding(tf.Module):
  """Strings -> tokens -> vocabulary ids (+ OOV buckets) -> sqrt-n combiner."""

  def __init__(self, vocab_file: str, vocab_size: int, dim: int,
               oov_buckets: int, seed: int = 0):
    super().__init__()
    initializer = tf.lookup.TextFileInitializer(
        vocab_file, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
        tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER)
    self.table = tf.lookup.StaticVocabularyTable(initializer, oov_buckets)
    self.embeddings = tf.Variable(
        tf.random.stateless_normal([vocab_size + oov_buckets, dim],
                                   seed=[seed, 1], stddev=0.3),
        name="embeddings")

  def __call__(self, inputs):
    ids = self.table.lookup(tokenize(inputs))
    # Gather the flat ids, then make them ragged again: a gather with ragged
    # ids would first read the whole table as a dense tensor, every call
    # (docs/performance.md); this one reads only the rows it needs.
    vectors = ids.with_flat_values(tf.gather(self.embeddings,
                                             ids.flat_values))
    total = tf.reduce_sum(vectors, axis=1)
    counts = tf.cast(ids.row_lengths(), tf.float32)[:, tf.newaxis]
    return total / tf.sqrt(tf.maximum(counts, 1.0))


def build_text_model(path: str, texts: Optional[Sequence[str]] = None,
                     vocab_size: int = 2000, seed: int = 0,
                     table_rows: Optional[int] = None,
                     dim: int = TEXT_EMBEDDING_DIM) -> str:
  """Builds the text-embedding SavedModel; vocabulary from `texts`.

  `table_rows`: make the embedding table this large (vocabulary plus OOV
  buckets), the vocabulary padded with filler tokens that no text holds:
  a large hub text model, whose steps touch only the rows of their words.
  """
  if texts is None:
    texts = list(datasets.docstrings().columns["text"])
  vocab = vocabulary(texts, vocab_size)
  if table_rows is not None:
    filler = table_rows - TEXT_OOV_BUCKETS - len(vocab)
    if filler < 0:
      raise ValueError("table_rows (%d) is below the vocabulary's %d rows" %
                       (table_rows, len(vocab) + TEXT_OOV_BUCKETS))
    vocab += ["~filler%d" % i for i in range(filler)]
  os.makedirs(path, exist_ok=True)
  vocab_file = os.path.join(path, "..", os.path.basename(path) + ".vocab.txt")
  with open(vocab_file, "w") as f:
    f.write("\n".join(vocab) + "\n")
  module = TextEmbedding(vocab_file, len(vocab), dim, TEXT_OOV_BUCKETS,
                         seed=seed)
  save_reusable(module, path, [tf.TensorSpec([None], tf.string)],
                has_training_argument=False)
  os.remove(vocab_file)  # The SavedModel holds its own copy as an asset.
  return path


def digits_weights(digits_model: str) -> Dict[str, np.ndarray]:
  """The variables of a saved digits model, by name (without ':0')."""
  loaded = tf.saved_model.load(digits_model)
  return {v.name.split(":")[0]: v.numpy() for v in loaded.variables}


def build_tf1_hub_model(path: str, digits_model: str) -> str:
  """Exports a saved digits model again, as a legacy TF1 Hub format model.

  The same pre-trained feature extractor (inference graph: batch norm with
  its moving statistics) in the legacy format, with:
  Meta graph {"foo", "bar"}: signature `default` (input `x`, output
  `default`, [batch, 32] features) and signature `sig` (inputs `x1`, `x2`;
  outputs `features` = features of x1 and x2 concatenated, [batch, 64], and
  `distance` = Euclidean distance between them, [batch, 1]).
  Meta graph with the empty tag set: signature `default` only, computing
  the features before the last ReLU (a different graph over the same
  variables).
  """
  weights = digits_weights(digits_model)
  v1 = tf.compat.v1
  build = v1.saved_model.signature_def_utils.predict_signature_def
  graph = tf.Graph()
  with graph.as_default():
    w = {name: v1.get_variable(name, initializer=value, use_resource=True)
         for name, value in sorted(weights.items())}

    def features(x, last_relu=True):
      h = tf.matmul(x / 16.0, w["dense1/kernel"]) + w["dense1/bias"]
      h = tf.nn.batch_normalization(
          h, w["batch_norm/moving_mean"], w["batch_norm/moving_variance"],
          w["batch_norm/beta"], w["batch_norm/gamma"], BN_EPSILON)
      out = tf.matmul(tf.nn.relu(h), w["dense2/kernel"]) + w["dense2/bias"]
      return tf.nn.relu(out) if last_relu else out

    def placeholder(name):
      return v1.placeholder(tf.float32, [None, datasets.DIGITS_PIXELS], name)

    x, x1, x2 = placeholder("x"), placeholder("x1"), placeholder("x2")
    f1, f2 = features(x1), features(x2)
    tagged = {
        "default": build({"x": x}, {"default": features(x)}),
        "sig": build({"x1": x1, "x2": x2}, {
            "features": tf.concat([f1, f2], axis=1),
            "distance": tf.norm(f1 - f2, axis=1, keepdims=True)}),
    }
    untagged = {"default": build({"x": x},
                                 {"default": features(x, last_relu=False)})}
    with v1.Session(graph=graph) as sess:
      sess.run(v1.global_variables_initializer())
      builder = v1.saved_model.Builder(path)
      builder.add_meta_graph_and_variables(sess, ["foo", "bar"],
                                           signature_def_map=tagged)
      builder.add_meta_graph([], signature_def_map=untagged)
      builder.save()
  with open(os.path.join(path, TFHUB_MODULE_MARKER), "wb") as f:
    f.write(_TFHUB_MODULE_PB)
  return path
