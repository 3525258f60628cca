"""A model of your own, the worked example of `--model` (docs/training.md,
"Your own model"): the hub model's image features joined with another
column, which neither alone can predict.

The data (demo_assets/data/shifted_*, example_kit.datasets.shifted) holds
digits 5-9 (`pixels`) and a `shift` from 0 to 4; the label is (digit +
shift) mod 5. The image alone or the shift alone leaves one chance in five;
this model reads both:

  python -m trainer.task --flagfile=configs/your_model.cfg

`build(inputs, hub_layer)` is the contract: `inputs` maps each data column
but the label to a `tf_keras.Input`, `hub_layer` is the hub.KerasLayer the
model flags describe, and the model returns logits [batch, n_classes]. The
harness adds the loss, the metrics and the optimizer, and exports a
serving model that takes the raw columns the model uses.
"""

import tf_keras

SHIFTS = 5  # example_kit.datasets.SHIFTS; the kit's data module is not
# imported here, so that this file needs only tf_keras.


def build(inputs, hub_layer):
  """pixels -> the hub model's features; shift -> a learned vector; both ->
  logits."""
  features = hub_layer(inputs["pixels"])
  shift = tf_keras.layers.Embedding(SHIFTS, 8, name="shift_embedding")(
      inputs["shift"])
  joined = tf_keras.layers.Concatenate(name="joined")([features, shift])
  hidden = tf_keras.layers.Dense(64, activation="relu",
                                 name="joined_hidden")(joined)
  logits = tf_keras.layers.Dense(SHIFTS, name="logits")(hidden)
  return tf_keras.Model(inputs=inputs, outputs=logits)
