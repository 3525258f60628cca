"""Input pipelines for CSV and TFRecord files, shaped by the model's inputs.

Files are globs; a name ending in `.csv` is CSV (with a header row), any
other is TFRecord of `tf.train.Example`. The user does not describe the
columns: each model input's dtype and shape come from the model's own
signature (`ModelSpec.inputs`), and each column is converted to them:

* a CSV field holding one number, or several separated by spaces, becomes a
  number or a vector of the input's dtype and shape; a text field feeds a
  string input as it is;
* a TFRecord feature is parsed with its own kind (float, int64 or bytes) and
  the input's shape, then cast to the input's dtype.
"""

import csv
import dataclasses
from typing import Dict, List, Mapping, Sequence

import tensorflow as tf

from harness import errors

CSV_SUFFIX = ".csv"
_KIND_DTYPES = {"float": tf.float32, "int64": tf.int64, "bytes": tf.string}


@dataclasses.dataclass(frozen=True)
class Column:
  """A data column: its kind ('text' for CSV; float, int64, bytes for
  TFRecord) and its length in the first record (1 for CSV)."""
  kind: str
  length: int = 1


def expand(patterns: Sequence[str], name: str) -> List[str]:
  """Files matched by globs, sorted; errors name the setting `name` (for
  example 'train_files') and the glob."""
  files = []
  for pattern in patterns:
    matched = sorted(tf.io.gfile.glob(pattern))
    if not matched:
      raise errors.DataError("`%s`: %s matches no file." % (name, pattern))
    for path in matched:
      if tf.io.gfile.isdir(path):
        raise errors.DataError("`%s`: %s is a directory, not a readable file; "
                               "give a glob of files, e.g. %s/*.csv." %
                               (name, path, path.rstrip("/")))
    files.extend(matched)
  formats = {is_csv(f) for f in files}
  if len(formats) > 1:
    raise errors.DataError(
        "`%s` mixes CSV and TFRecord files (%s); use one format." %
        (name, ", ".join(files)))
  return files


def is_csv(path: str) -> bool:
  return path.lower().endswith(CSV_SUFFIX)


def csv_header(path: str) -> List[str]:
  with tf.io.gfile.GFile(path) as f:
    header = next(csv.reader(f), None)
  if not header:
    raise errors.DataError("%s is empty; a CSV file needs a header row naming "
                           "its columns." % path)
  return header


def read_columns(files: Sequence[str]) -> Dict[str, Column]:
  """Column names and kinds, from the CSV header or the first tf.Example."""
  if is_csv(files[0]):
    header = csv_header(files[0])
    for path in files[1:]:
      if csv_header(path) != header:
        raise errors.DataError(
            "%s has header %s, unlike %s with %s; all files of a data set "
            "need the same columns." %
            (path, ",".join(csv_header(path)), files[0], ",".join(header)))
    return {name: Column("text") for name in header}
  for record in tf.data.TFRecordDataset(files[:1]).take(1):
    example = tf.train.Example.FromString(record.numpy())
    return {name: _tf_example_column(feature)
            for name, feature in example.features.feature.items()}
  raise errors.DataError("%s holds no records." % files[0])


def _tf_example_column(feature: tf.train.Feature) -> Column:
  kind = feature.WhichOneof("kind")
  if kind == "float_list":
    return Column("float", len(feature.float_list.value))
  if kind == "int64_list":
    return Column("int64", len(feature.int64_list.value))
  return Column("bytes", len(feature.bytes_list.value))


def _text_to(values: tf.Tensor, spec: tf.TensorSpec) -> tf.Tensor:
  """Batched strings -> tensor of `spec`'s dtype and shape."""
  if spec.dtype == tf.string:
    return values
  item_shape = spec.shape[1:]
  number_type = tf.int64 if spec.dtype.is_integer else tf.float32
  if item_shape.rank == 0:
    return tf.cast(tf.strings.to_number(values, number_type), spec.dtype)
  numbers = tf.strings.to_number(tf.strings.split(values), number_type)
  dense = numbers.to_tensor()
  return tf.cast(tf.reshape(dense, [-1] + item_shape.as_list()), spec.dtype)


def _feature_spec(column: Column, spec: tf.TensorSpec):
  shape = spec.shape[1:]
  if not shape.is_fully_defined():
    shape = tf.TensorShape([] if column.length == 1 else [column.length])
  return tf.io.FixedLenFeature(shape, _KIND_DTYPES[column.kind])


def _to_dtype(values: tf.Tensor, spec: tf.TensorSpec) -> tf.Tensor:
  if values.dtype == spec.dtype:
    return values
  if values.dtype == tf.string:
    return _text_to(values, spec)
  return tf.cast(values, spec.dtype)


def check_shapes(inputs: Mapping[str, tf.TensorSpec]) -> None:
  """Inputs whose item shape is unknown can only be fed as strings."""
  for name, spec in inputs.items():
    if spec.dtype != tf.string and not spec.shape[1:].is_fully_defined():
      raise errors.DataError(
          "Model input %s has shape %s: the data pipeline needs every "
          "dimension but the batch to be known." % (name, spec.shape))


@dataclasses.dataclass(frozen=True)
class InputConfig:
  """What the pipeline produces: features keyed by model input, and labels.

  Attributes:
    inputs: model input name -> TensorSpec (from the model's signature).
    input_map: model input name -> data column.
    columns: data columns, as `read_columns` returns them.
    label_key: the label column.
    label_dtype: tf.int64 for classes, tf.float32 for regression targets.
  """
  inputs: Mapping[str, tf.TensorSpec]
  input_map: Mapping[str, str]
  columns: Mapping[str, Column]
  label_key: str
  label_dtype: tf.DType


def parser(files: Sequence[str], config: InputConfig):
  """A function from a batch of raw records to (features, labels)."""
  label_spec = tf.TensorSpec([None], config.label_dtype)
  if is_csv(files[0]):
    header = list(config.columns)

    def parse_csv(*fields):
      by_name = dict(zip(header, fields))
      features = {name: _text_to(by_name[column], config.inputs[name])
                  for name, column in config.input_map.items()}
      return features, _text_to(by_name[config.label_key], label_spec)
    return parse_csv

  wanted = {column: _feature_spec(config.columns[column],
                                  config.inputs[name])
            for name, column in config.input_map.items()}
  label_column = config.columns[config.label_key]
  wanted[config.label_key] = tf.io.FixedLenFeature(
      [], _KIND_DTYPES[label_column.kind])

  def parse_records(records):
    parsed = tf.io.parse_example(records, wanted)
    features = {name: _to_dtype(parsed[column], config.inputs[name])
                for name, column in config.input_map.items()}
    return features, _to_dtype(parsed[config.label_key], label_spec)
  return parse_records


def make_input_fn(files: Sequence[str], config: InputConfig, *,
                  batch_size: int, training: bool, seed=None,
                  shuffle_buffer: int = 10000):
  """An Estimator input_fn over `files`.

  Training repeats forever and shuffles; evaluation reads the files once.
  """
  files = list(files)

  def input_fn():
    if is_csv(files[0]):
      dataset = tf.data.experimental.CsvDataset(
          files, [tf.string] * len(config.columns), header=True)
    else:
      dataset = tf.data.TFRecordDataset(files)
    if training:
      dataset = dataset.shuffle(shuffle_buffer, seed=seed).repeat()
    dataset = dataset.batch(batch_size)
    dataset = dataset.map(parser(files, config),
                          num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
  return input_fn


def input_fns(train_files: Sequence[str], eval_files: Sequence[str],
              config: InputConfig, *, batch_size: int, seed=None):
  """(train input_fn, eval input_fn or None without eval files): the one
  pipeline of both backends (an input_fn returns a tf.data.Dataset)."""
  train = make_input_fn(train_files, config, batch_size=batch_size,
                        training=True, seed=seed)
  evaluate = None
  if eval_files:
    evaluate = make_input_fn(eval_files, config, batch_size=batch_size,
                             training=False)
  return train, evaluate
