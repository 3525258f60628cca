"""A model of the user's own with a table large enough to be split over
the ps (tests/test_keras_backend.py): the hub text model's features joined
with a learned vector per hashed text, from a Keras `Embedding` of
ROWS x DIM (1.25 MB, over twice the default `ps_shard_bytes`)."""

import tf_keras

ROWS, DIM, N_CLASSES = 20000, 16, 5


def build(inputs, hub_layer):
  text = inputs["text"]
  hashed = tf_keras.layers.Hashing(ROWS, name="hashed")(text)
  wide = tf_keras.layers.Embedding(ROWS, DIM, name="wide")(hashed)
  joined = tf_keras.layers.Concatenate(name="joined")([hub_layer(text),
                                                       wide])
  logits = tf_keras.layers.Dense(N_CLASSES, name="logits")(joined)
  return tf_keras.Model(inputs=inputs, outputs=logits)
