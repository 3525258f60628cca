"""A model of your own with a table of its own beside the hub model (docs/
training.md, "Large tables over the ps"): the hub text model's features
joined with a learned vector per text, looked up by the text's hash in a
Keras `Embedding`. On a Keras-backend cluster the table is split over the
ps (`--ps_shard_bytes`); the hub model's own table is not.

  build        ROWS x DIM, 1,000,000 x 32: 128 MB, and as much again for
               each of Adam's two slots (scripts/benchmark.py)
  build_small  20,000 x 16: 1.25 MB (tests/test_keras_backend.py)

The data is the text demo's (demo_assets/data/text_*.csv: `text`, and a
`label` of 5 classes).
"""

import tf_keras

ROWS, DIM = 1000000, 32
SMALL_ROWS, SMALL_DIM = 20000, 16
N_CLASSES = 5


def build(inputs, hub_layer, rows=ROWS, dim=DIM):
  """text -> the hub model's features and the text's own row; -> logits."""
  text = inputs["text"]
  hashed = tf_keras.layers.Hashing(rows, name="hashed")(text)
  wide = tf_keras.layers.Embedding(rows, dim, name="wide")(hashed)
  joined = tf_keras.layers.Concatenate(name="joined")([hub_layer(text),
                                                       wide])
  logits = tf_keras.layers.Dense(N_CLASSES, name="logits")(joined)
  return tf_keras.Model(inputs=inputs, outputs=logits)


def build_small(inputs, hub_layer):
  return build(inputs, hub_layer, SMALL_ROWS, SMALL_DIM)
