"""Input pipelines for CSV and TFRecord files, shaped by the model's inputs.

Files are globs. What each file is, CSV (with a header row) or TFRecord of
`tf.train.Example`, plain or compressed with GZIP or ZLIB, is told from its
bytes (trainer.inputs.data_format), not from its name or a flag. The user does
not describe the columns either: each model input's dtype and shape come from
the model's own signature (`ModelSpec.inputs`), and each column is converted to
them:

* a CSV field holding one number, or several separated by spaces, becomes a
  number or a vector of the input's dtype and shape; a text field feeds a
  string input as it is;
* a TFRecord feature is parsed with its own kind (float, int64 or bytes) and
  the input's shape, then cast to the input's dtype.

Many files are read interleaved and in parallel (`make_input_fn`); which of
them a training task reads is trainer.inputs.data_share's decision.
"""

import concurrent.futures
import csv
import dataclasses
import os
import random
from typing import Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from google.protobuf import message
import tensorflow as tf

from harness import errors
from trainer.config import job as job_lib
from trainer.inputs import data_format
from trainer.inputs import data_share

_KIND_DTYPES = {"float": tf.float32, "int64": tf.int64, "bytes": tf.string}
# Files looked at side by side when a glob is expanded or headers are read
# (I/O-bound: on gs:// each open is a round trip).
IO_THREADS = 16
# How many files of a sample an error names before "and N more".
_NAMED = 3


@dataclasses.dataclass(frozen=True)
class Column:
  """A data column: its kind ('text' for CSV; float, int64, bytes for
  TFRecord) and its length in the first record (1 for CSV)."""
  kind: str
  length: int = 1


@dataclasses.dataclass(frozen=True)
class Files:
  """Data files and the format of each (all of one kind, CSV or TFRecord;
  each with its own compression). Iterates, indexes and counts as the list
  of its paths."""
  paths: Tuple[str, ...]
  formats: Tuple[data_format.Format, ...]

  def __post_init__(self):
    if not self.paths or len(self.paths) != len(self.formats):
      raise ValueError("Files needs one format per path, and a path")

  def __len__(self):
    return len(self.paths)

  def __iter__(self) -> Iterator[str]:
    return iter(self.paths)

  def __getitem__(self, index):
    return self.paths[index]

  @property
  def kind(self) -> str:
    return self.formats[0].kind

  @property
  def is_csv(self) -> bool:
    return self.kind == data_format.CSV

  def subset(self, indices: Sequence[int]) -> "Files":
    return Files(tuple(self.paths[i] for i in indices),
                 tuple(self.formats[i] for i in indices))

  def describe(self) -> str:
    """'3 GZIP TFRecord file(s)', '64 file(s): 60 CSV, 4 GZIP CSV'."""
    counts = {}
    for fmt in self.formats:
      counts[str(fmt)] = counts.get(str(fmt), 0) + 1
    if len(counts) == 1:
      return "%d %s file(s)" % (len(self), next(iter(counts)))
    return "%d file(s): %s" % (len(self), ", ".join(
        "%d %s" % (n, fmt) for fmt, n in sorted(counts.items())))


def named(paths: Sequence[str]) -> str:
  """Up to three paths, and how many more."""
  shown = ", ".join(paths[:_NAMED])
  if len(paths) > _NAMED:
    shown += " and %d more" % (len(paths) - _NAMED)
  return shown


def in_parallel(function: Callable, items: Sequence,
                threads: int = IO_THREADS) -> List:
  """[function(item) for item in items], on up to `threads` threads; the
  first error (in the items' order) is raised."""
  if len(items) <= 1:
    return [function(item) for item in items]
  with concurrent.futures.ThreadPoolExecutor(min(threads, len(items))) as pool:
    return list(pool.map(function, items))


def _same_file(path: str) -> str:
  """What two spellings of one file share: the real path of a local file;
  a path on another file system (gs://...) as it is."""
  return path if "://" in path else os.path.realpath(path)


def expand(patterns: Sequence[str], name: str,
           log: Callable[[str], None] = lambda line: None) -> Files:
  """Files matched by globs, each glob's sorted, in the globs' order, and
  with their formats. A file that several globs match is read once (its
  first place kept), and `log` says so. Errors name the setting `name` (for
  example 'train_files') and the glob or files."""
  paths, seen, repeated = [], set(), []
  for pattern in patterns:
    matched = sorted(tf.io.gfile.glob(pattern))
    if not matched:
      raise errors.DataError("`%s`: %s matches no file." % (name, pattern))
    for path in matched:
      key = _same_file(path)
      if key in seen:
        repeated.append(path)
      else:
        seen.add(key)
        paths.append(path)
  if repeated:
    log("`%s`: %d file(s) matched by more than one glob are read once: %s."
        % (name, len(repeated), named(repeated)))
  directories = [d for d, is_dir in zip(paths, in_parallel(
      tf.io.gfile.isdir, paths)) if is_dir]
  if directories:
    raise errors.DataError("`%s`: %s is a directory, not a readable file; "
                           "give a glob of files, e.g. %s/*.csv." %
                           (name, directories[0],
                            directories[0].rstrip("/")))
  files = Files(tuple(paths), tuple(in_parallel(data_format.detect, paths)))
  by_kind = {}
  for path, fmt in zip(files.paths, files.formats):
    by_kind.setdefault(fmt.kind, []).append(path)
  if len(by_kind) > 1:
    raise errors.DataError(
        "`%s` mixes CSV and TFRecord files (CSV: %s; TFRecord: %s); use one "
        "format." % (name, named(by_kind[data_format.CSV]),
                     named(by_kind[data_format.TFRECORD])))
  return files


def csv_header(path: str, compression: str = data_format.NONE) -> List[str]:
  with data_format.open_text(path, compression) as f:
    header = next(csv.reader(f), None)
  if not header:
    raise errors.DataError("%s is empty; a CSV file needs a header row naming "
                           "its columns." % path)
  return header


def read_columns(files: Files) -> Dict[str, Column]:
  """Column names and kinds, from the CSV headers (all files must agree)
  or the first tf.Example."""
  if files.is_csv:
    headers = in_parallel(lambda i: csv_header(files[i],
                                               files.formats[i].compression),
                          range(len(files)))
    header = headers[0]
    for path, other in zip(files, headers):
      if other != header:
        raise errors.DataError(
            "%s has header %s, unlike %s with %s; all files of a data set "
            "need the same columns." %
            (path, ",".join(other), files[0], ",".join(header)))
    return {name: Column("text") for name in header}
  dataset = tf.data.TFRecordDataset(
      files.paths[:1], compression_type=files.formats[0].compression)
  for record in dataset.take(1):
    try:
      example = tf.train.Example.FromString(record.numpy())
    except message.DecodeError:
      raise errors.DataError(
          "%s: its first record is not a tf.train.Example; TFRecords of "
          "tf.train.Example are what the trainer reads." % files[0]) from None
    return {name: _tf_example_column(feature)
            for name, feature in example.features.feature.items()}
  raise errors.DataError("%s holds no records." % files[0])


# CSV rows a column's type is read from, for a model of the user's own.
SPEC_SAMPLE_ROWS = 200


def _number(text: str):
  try:
    return int(text)
  except ValueError:
    return float(text)


def _csv_cell_spec(cells: Sequence[str]) -> tf.TensorSpec:
  """What the first rows' cells of a CSV column are: whole numbers (int64),
  numbers (float32), the same count k > 1 of numbers apart by spaces
  (float32, (k,)), or text."""
  try:
    parsed = [[_number(word) for word in cell.split()] for cell in cells]
  except ValueError:
    return tf.TensorSpec([None], tf.string)
  lengths = {len(numbers) for numbers in parsed}
  if not parsed or lengths != {1} and (len(lengths) != 1 or 0 in lengths):
    return tf.TensorSpec([None], tf.string)
  (length,) = lengths
  if length == 1 and all(isinstance(n[0], int) for n in parsed):
    return tf.TensorSpec([None], tf.int64)
  return tf.TensorSpec([None] + ([] if length == 1 else [length]),
                       tf.float32)


def column_specs(files: Files, columns: Mapping[str, Column],
                 label_key: str) -> Dict[str, tf.TensorSpec]:
  """Every column but the label as a model of the user's own takes it
  (batch dimension None), in the CSV header's order or by name: a TFRecord
  feature by its kind and length (one value: a scalar; k: (k,)); a CSV
  column by its first rows (`_csv_cell_spec`).

  Raises:
    errors.FlagError: `label_key` is not a column.
  """
  if label_key not in columns:
    raise errors.FlagError(
        "`label_key`=%s is not a column of the data; its columns are: %s." %
        (label_key, ", ".join(columns)))
  names = [name for name in columns if name != label_key]
  if not files.is_csv:  # A tf.Example's features have no order: by name.
    names.sort()
    return {name: tf.TensorSpec(
        [None] + ([] if columns[name].length == 1 else
                  [columns[name].length]), _KIND_DTYPES[columns[name].kind])
            for name in names}
  header = list(columns)
  cells = {name: [] for name in names}
  with data_format.open_text(files[0], files.formats[0].compression) as f:
    rows = csv.reader(f)
    next(rows, None)
    for _, row in zip(range(SPEC_SAMPLE_ROWS), rows):
      for name, cell in zip(header, row):
        if name in cells:
          cells[name].append(cell)
  return {name: _csv_cell_spec(cells[name]) for name in names}


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


def parser(files: Files, config: InputConfig):
  """A function from a batch of raw records to (features, labels)."""
  label_spec = tf.TensorSpec([None], config.label_dtype)
  if files.is_csv:
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


def reader(files: Files, num_columns: int):
  """(path, compression) -> the dataset of one file's raw records (CSV:
  tuples of strings, the header skipped)."""
  if files.is_csv:
    return lambda path, compression: tf.data.experimental.CsvDataset(
        path, [tf.string] * num_columns, header=True,
        compression_type=compression)
  return lambda path, compression: tf.data.TFRecordDataset(
      path, compression_type=compression)


# Records a file's reader hands over at once (to the interleave, and as a
# batch of strings to cut or unbatch). A parallel interleave costs
# about 15 us per element it passes: per record, that caps 64 files at about
# 60k records/s on 2 cores (measured: scripts/bench_data.py); per block of
# 128 it is noise.
INTERLEAVE_BLOCK = 128
SHUFFLE_BUFFER = job_lib.default(job_lib.DataOptions, "shuffle_buffer")
# The tf.data service's job that a cluster's training workers share.
SERVICE_JOB = "train"


def blocks(files: Files, num_columns: int, *, training: bool,
           seed: Optional[int] = None) -> tf.data.Dataset:
  """The raw records of `files` in blocks of up to INTERLEAVE_BLOCK: for
  training, repeated forever, the files in a new random order each pass,
  read interleaved and in parallel, in whatever order they come
  (deterministic=False); otherwise each file once, in order (read ahead in
  parallel, still deterministic)."""
  read = reader(files, num_columns)
  if len(files) == 1:
    dataset = read(files[0], files.formats[0].compression)
    return (dataset.repeat() if training else dataset).batch(
        INTERLEAVE_BLOCK)
  names = tf.data.Dataset.from_tensor_slices(
      (list(files.paths), [f.compression for f in files.formats]))
  if training:
    names = names.shuffle(len(files), seed=seed).repeat()
  return _interleave(names, read, deterministic=not training)


def _interleave(names: tf.data.Dataset, read, *,
                deterministic: bool) -> tf.data.Dataset:
  """The files `names` gives ((path, compression) pairs), read in blocks
  of INTERLEAVE_BLOCK, several at once."""
  return names.interleave(
      lambda path, compression: read(path, compression).batch(
          INTERLEAVE_BLOCK),
      num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)


def shared_blocks(files: Files, num_columns: int,
                  seed: Optional[int] = None) -> tf.data.Dataset:
  """Training's blocks for TF's tf.data service (`distributed_epoch`): the
  service hands the files out one by one, each once per pass, to whichever
  of its workers asks, so the pipeline's source must be the file list
  itself. The files' order is shuffled once, here (a shuffle in the
  pipeline would be each service worker's own, and measured it undid the
  split: 46% of the examples once per epoch instead of 82%)."""
  order = list(range(len(files)))
  random.Random(seed).shuffle(order)
  names = tf.data.Dataset.from_tensor_slices(
      ([files.paths[i] for i in order],
       [files.formats[i].compression for i in order])).repeat()
  return _interleave(names, reader(files, num_columns), deterministic=False)


def make_input_fn(files: Files, config: InputConfig, *,
                  batch_size: int, training: bool, seed=None,
                  shuffle_buffer: int = SHUFFLE_BUFFER,
                  service: Optional[str] = None):
  """An input_fn over `files`, returning a tf.data.Dataset of batches.

  Training repeats forever and shuffles (the files' order and, through a
  buffer of `shuffle_buffer` records, the records; 0: the files' order
  only); evaluation reads each file once. Records are unbatched only for
  the record shuffle; otherwise the blocks are cut into batches whole
  (`rebatch`), which costs per batch, not per record.

  `service`: the address of a tf.data service dispatcher
  (trainer.keras.data_service): the batches are made by its workers, each
  file read once per pass across all of them (`shared_blocks`), and every
  consumer of the same job gets its own batches.
  """
  def input_fn():
    if service:
      dataset = shared_blocks(files, len(config.columns), seed).unbatch()
      if shuffle_buffer:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed)
      dataset = dataset.batch(batch_size).map(
          parser(files, config), num_parallel_calls=tf.data.AUTOTUNE)
      return dataset.apply(tf.data.experimental.service.distribute(
          processing_mode=tf.data.experimental.service.ShardingPolicy.DYNAMIC,
          service=service, job_name=SERVICE_JOB)).prefetch(tf.data.AUTOTUNE)
    if training and shuffle_buffer:
      if len(files) == 1:  # No interleave: the reader's records as they are.
        dataset = reader(files, len(config.columns))(
            files[0], files.formats[0].compression).repeat()
      else:
        dataset = blocks(files, len(config.columns), training=True,
                         seed=seed).unbatch()
      dataset = dataset.shuffle(shuffle_buffer, seed=seed).batch(batch_size)
    else:
      dataset = blocks(files, len(config.columns), training=training,
                       seed=seed).rebatch(batch_size)
    dataset = dataset.map(parser(files, config),
                          num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
  return input_fn


def first_rows(files: Files, config: InputConfig, rows: int):
  """(features, labels) of the first `rows` rows of `files` (fewer where
  they hold fewer), as NumPy arrays: what a serving client would send, for
  trainer.training.export_check."""
  features, labels = next(iter(make_input_fn(
      files, config, batch_size=rows, training=False)()))
  return ({name: value.numpy() for name, value in features.items()},
          labels.numpy())


def rows_reader(files: Optional[Files], config: Optional[InputConfig]):
  """rows -> `first_rows` of `files`; None without files."""
  if not files:
    return None
  return lambda rows: first_rows(files, config, rows)


def input_fns(train_files: Files, eval_files: Optional[Files],
              config: InputConfig, *, batch_size: int,
              share: data_share.Share, shuffle_buffer: int = SHUFFLE_BUFFER,
              eval_config: Optional[InputConfig] = None,
              service: Optional[str] = None):
  """(train input_fn, eval input_fn or None without eval files): the one
  pipeline of both backends (an input_fn returns a tf.data.Dataset).
  Training reads this task's `share` of the files with its seed; the
  evaluation reads every eval file once, by `eval_config` (the eval files'
  own columns; default: `config`). `service`: training's batches come
  from that tf.data service (make_input_fn)."""
  train = make_input_fn(train_files.subset(share.indices), config,
                        batch_size=batch_size, training=True,
                        seed=share.seed, shuffle_buffer=shuffle_buffer,
                        service=service)
  evaluate = None
  if eval_files:
    evaluate = make_input_fn(eval_files, eval_config or config,
                             batch_size=batch_size, training=False)
  return train, evaluate
