"""What an export serves: its serving signature called as a serving user
calls it (tf.saved_model.load, raw columns by name), on a data set's
columns, scored against their labels. Tests compare it with what the job's
own evaluation measured (docs/training.md, "What a job leaves")."""

import numpy as np
import tensorflow as tf


def signature(export_dir: str):
  return tf.saved_model.load(export_dir).signatures["serving_default"]


def inputs(export_dir: str):
  """The names of the columns the export takes."""
  return sorted(signature(export_dir).structured_input_signature[1])


def accuracy(export_dir: str, columns) -> float:
  """The export's accuracy on `columns` (name -> array, with `label`)."""
  serve = signature(export_dir)
  taken = serve.structured_input_signature[1]
  classes = serve(**{name: tf.constant(columns[name]) for name in taken}
                  )["classes"].numpy()
  return float(np.mean(classes == columns["label"]))
