"""Scans the data files before training, so bad data fails in seconds.

Without this, a malformed row surfaces as a TF error deep inside a training
step, often on one task of a cluster, after minutes. `check_files` reads
every file once and names the file and line (CSV) or record (TFRecord) of
the first problem: a row with the wrong number of fields, a non-number where
the model needs a number, a vector of the wrong length, a label outside
[0, n_classes), or no examples at all.
"""

import csv
from typing import Sequence

import numpy as np
import tensorflow as tf

from trainer import data
from harness import errors

_TFRECORD_BATCH = 4096


def check_files(files: Sequence[str], config: data.InputConfig,
                n_classes: int, name: str) -> int:
  """Checks every example of `files` (the setting `name`, for example
  'train_files'); returns how many there are."""
  check = _check_csv if data.is_csv(files[0]) else _check_tfrecord
  total = sum(check(path, config, n_classes) for path in files)
  if total == 0:
    raise errors.DataError("`%s`: %s hold no examples." %
                           (name, ", ".join(files)))
  return total


def _item_size(spec: tf.TensorSpec) -> int:
  return spec.shape[1:].num_elements()


def _check_label(value: float, where: str, n_classes: int) -> None:
  if n_classes and not (value == int(value) and 0 <= value < n_classes):
    raise errors.DataError(
        "%s: label %g is outside [0, %d) (`n_classes`=%d); labels must be "
        "the integers 0 to %d." % (where, value, n_classes, n_classes,
                                   n_classes - 1))


def _numbers(text: str, where: str, column: str) -> list:
  try:
    return [float(v) for v in text.split()]
  except ValueError:
    bad = next(v for v in text.split() if not _is_number(v))
    raise errors.DataError("%s: column %s holds %r, which is not a number." %
                           (where, column, bad)) from None


def _is_number(text: str) -> bool:
  try:
    float(text)
    return True
  except ValueError:
    return False


def _check_csv(path: str, config: data.InputConfig, n_classes: int) -> int:
  numeric = {column: config.inputs[name]
             for name, column in config.input_map.items()
             if config.inputs[name].dtype != tf.string}
  rows = 0
  with tf.io.gfile.GFile(path) as f:
    reader = csv.reader(f)
    header = next(reader, None) or []
    for row in reader:
      where = "%s:%d" % (path, reader.line_num)
      if len(row) != len(header):
        raise errors.DataError(
            "%s has %d fields; the header has %d (%s)." %
            (where, len(row), len(header), ",".join(header)))
      fields = dict(zip(header, row))
      for column, spec in numeric.items():
        values = _numbers(fields[column], where, column)
        if len(values) != _item_size(spec):
          raise errors.DataError(
              "%s: column %s holds %d numbers; the model input takes %d "
              "(shape %s)." % (where, column, len(values), _item_size(spec),
                               spec.shape[1:]))
      label = _numbers(fields[config.label_key], where, config.label_key)
      if len(label) != 1:
        raise errors.DataError("%s: label column %s holds %r; it needs one "
                               "number." % (where, config.label_key,
                                            fields[config.label_key]))
      _check_label(label[0], where, n_classes)
      rows += 1
  return rows


def _check_tfrecord(path: str, config: data.InputConfig,
                    n_classes: int) -> int:
  parse = data.parser([path], config)
  records = 0
  dataset = tf.data.TFRecordDataset([path]).batch(_TFRECORD_BATCH)
  iterator = iter(dataset)
  while True:
    try:
      batch = next(iterator)
    except StopIteration:
      return records
    except tf.errors.DataLossError as e:
      raise errors.DataError("%s is not a TFRecord file (or is corrupt "
                             "after record %d): %s" %
                             (path, records, e.message.splitlines()[0])
                             ) from e
    try:
      _, labels = parse(batch)
    except (tf.errors.InvalidArgumentError, ValueError) as e:
      raise errors.DataError(
          "%s: records %d-%d do not fit the model inputs: %s" %
          (path, records, records + len(batch) - 1,
           str(e).splitlines()[0][:300])) from e
    values = labels.numpy().astype(np.float64)
    if n_classes:
      bad = np.flatnonzero((values < 0) | (values >= n_classes) |
                           (values != np.round(values)))
      if bad.size:
        _check_label(values[bad[0]], "%s: record %d" % (
            path, records + bad[0]), n_classes)
    records += len(batch)
