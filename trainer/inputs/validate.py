"""Checks the data files before training, so bad data fails in seconds.

Without this, a malformed row surfaces as a TF error deep inside a training
step, often on one task of a cluster, after minutes. A problem is named by
file and line (CSV) or record (TFRecord): a row with the wrong number of
fields, a non-number where the model needs a number, a vector of the wrong
length, a label outside [0, n_classes), no examples at all, a file that is
corrupt or cut short.

Two depths (`--validate_data`):

* `sample` (the default): what is cheap and certain. Every file exists, is
  readable and of one format (trainer.inputs.data: CSV headers agree), and its
  first rows, a bounded sample of SAMPLE_ROWS rows spread over the files,
  are checked. Its cost grows with the number of files, not their size.
* `full`: every row of every file, read by TF's own readers on several
  threads, with progress and its rate; where TF refuses a CSV row, the file
  is read again in Python to name the line.
"""

import csv
import dataclasses
import math
import os
import threading
import time
from typing import Callable, Iterable, Optional

import numpy as np
import tensorflow as tf

from harness import errors
from harness import tf_config
from trainer.config import job
from trainer.inputs import data
from trainer.inputs import data_format

SAMPLE, FULL, OFF = job.VALIDATE_DATA
SAMPLE_ROWS = 1000
_BATCH = 4096
PROGRESS_SECS = 10.0
# TF's readers release the GIL: files are checked side by side.
FULL_SCAN_THREADS = max(2, os.cpu_count() or 1)


@dataclasses.dataclass(frozen=True)
class Checked:
  """What a check covered: the mode, the files, the rows checked (every
  example where `mode` is full), the bytes read and how long it took."""
  mode: str
  files: int
  rows: int
  rows_per_file: Optional[int]
  bytes: int
  seconds: float

  @property
  def examples(self) -> Optional[int]:
    """How many examples the files hold, where every row was read."""
    return self.rows if self.mode == FULL else None

  def describe(self, name: str) -> str:
    if self.mode == FULL:
      return ("`%s`: checked every row: %d examples in %d file(s), %s in "
              "%.1f s (%s/s)." % (name, self.rows, self.files,
                                  _size(self.bytes), self.seconds,
                                  _size(self.bytes / max(self.seconds,
                                                         1e-6))))
    return ("`%s`: checked all %d file(s)' format and first rows, a sample "
            "of %d rows (up to %d per file), in %.1f s; validate_data=full "
            "reads every row." % (name, self.files, self.rows,
                                  self.rows_per_file, self.seconds))


def read_failure(error: Exception, plan, task: Optional[tf_config.Task], *,
                 log: Callable[[str], None] = print
                 ) -> Optional[errors.DataError]:
  """Where TF's readers stopped training on a corrupt or cut-short file
  (past what the pre-flight's sample read), the file and row, found by
  reading every row of the task's files again; None for any other error."""
  if not isinstance(error, tf.errors.DataLossError):
    return None
  evaluating = task is not None and task.type == tf_config.EVALUATOR
  files, config, name = (
      (plan.eval_files, plan.eval_inputs, "eval_files") if evaluating
      else (plan.train_files, plan.inputs, "train_files"))
  log("Reading the data failed (%s); checking every row of `%s` to name "
      "the file." % (data_format.tf_message(error), name))
  try:
    check(files, config, plan.job.head.n_classes, name, mode=FULL, log=log)
  except errors.DataError as e:
    return e
  return errors.DataError(
      "Reading the data failed (%s), though every row of `%s` reads now: "
      "was a file replaced while training?" % (
          data_format.tf_message(error), name))


def _size(n: float) -> str:
  for unit in ("B", "KB", "MB", "GB"):
    if n < 1000 or unit == "GB":
      return ("%.0f %s" if unit == "B" else "%.1f %s") % (n, unit)
    n /= 1000.0
  return ""


def check(files: data.Files, config: data.InputConfig, n_classes: int,
          name: str, *, mode: str = SAMPLE,
          log: Callable[[str], None] = print) -> Checked:
  """Checks `files` (the setting `name`, e.g. 'train_files') to `mode`'s
  depth; says what it covered through `log`.

  Raises:
    errors.DataError: naming the file and row of the first problem found.
  """
  if mode not in (SAMPLE, FULL):
    raise ValueError("mode %r is not one of %s" % (mode, (SAMPLE, FULL)))
  start = time.monotonic()
  limit = None if mode == FULL else max(1, math.ceil(SAMPLE_ROWS /
                                                     len(files)))
  progress = _Progress(files, log) if mode == FULL else None

  def one(i):
    rows = check_file(files[i], files.formats[i], files, config, n_classes,
                      limit=limit)
    if progress:
      progress.done(i, rows)
    return rows

  rows = sum(data.in_parallel(
      one, range(len(files)),
      threads=FULL_SCAN_THREADS if mode == FULL else data.IO_THREADS))
  if rows == 0:
    raise errors.DataError("`%s`: %s hold no examples." %
                           (name, data.named(list(files))))
  checked = Checked(mode, len(files), rows, limit,
                    progress.total if progress else 0,
                    time.monotonic() - start)
  log(checked.describe(name))
  return checked


class _Progress:
  """Says how far a full scan is, at most every PROGRESS_SECS."""

  def __init__(self, files: data.Files, log):
    self._sizes = data.in_parallel(lambda p: tf.io.gfile.stat(p).length,
                                   list(files))
    self.total = sum(self._sizes)
    self._log = log
    self._lock = threading.Lock()
    self._start = self._last = time.monotonic()
    self._files = self._bytes = self._rows = 0
    log("Checking every row of %d file(s), %s, on %d threads." % (
        len(files), _size(self.total), min(FULL_SCAN_THREADS, len(files))))

  def done(self, index: int, rows: int):
    with self._lock:
      self._files += 1
      self._bytes += self._sizes[index]
      self._rows += rows
      now = time.monotonic()
      if now - self._last < PROGRESS_SECS or self._files == len(self._sizes):
        return
      self._last = now
      self._log("Data check: %d of %d file(s), %s of %s, %d rows (%s/s)." % (
          self._files, len(self._sizes), _size(self._bytes),
          _size(self.total), self._rows,
          _size(self._bytes / max(now - self._start, 1e-6))))


def check_file(path: str, fmt: data_format.Format, files: data.Files,
               config: data.InputConfig, n_classes: int,
               limit: Optional[int] = None) -> int:
  """Checks the first `limit` rows of one file (every row: None); returns
  how many it checked."""
  if fmt.kind == data_format.CSV and limit is not None:
    return _check_csv_rows(path, fmt.compression, config, n_classes, limit)
  return _check_with_tf(path, fmt, files, config, n_classes, limit)


def _check_with_tf(path, fmt, files, config, n_classes, limit) -> int:
  """Reads the file with the input pipeline's own reader and parser."""
  dataset = data.reader(files, len(config.columns))(path, fmt.compression)
  if limit is not None:
    dataset = dataset.take(limit)
  dataset = dataset.batch(min(limit or _BATCH, _BATCH))
  parse = data.parser(files, config)
  # The features are returned too: unused outputs would be pruned from the
  # graph, their conversions never run.
  dataset = dataset.map(lambda *batch: (tf.shape(batch[0])[0],) + tuple(
      parse(*batch)), num_parallel_calls=tf.data.AUTOTUNE)
  rows = 0
  iterator = iter(dataset)
  while True:
    try:
      size, _, labels = next(iterator)
    except StopIteration:
      return rows
    except tf.errors.DataLossError as e:
      rows += _readable(path, fmt, files, len(config.columns), skip=rows)
      raise errors.DataError(
          "%s is corrupt or cut short after %s %d (it reads as %s): %s" %
          (path, "row" if fmt.kind == data_format.CSV else "record", rows,
           fmt, data_format.tf_message(e))) from None
    except tf.errors.OpError as e:
      if fmt.kind == data_format.CSV:  # Name the line, reading in Python.
        _check_csv_rows(path, fmt.compression, config, n_classes, None)
        raise errors.DataError("%s: rows %d to %d: %s" % (
            path, rows + 1, rows + _BATCH, data_format.tf_message(e))
                               ) from None
      raise errors.DataError(
          "%s: records %d-%d do not fit the model inputs: %s" %
          (path, rows, rows + _BATCH - 1,
           data_format.tf_message(e)[:300])) from None
    try:
      _check_labels(labels.numpy(), n_classes, path, rows, fmt)
    except errors.DataError:
      if fmt.kind == data_format.CSV:  # Name the line.
        _check_csv_rows(path, fmt.compression, config, n_classes, None)
      raise
    rows += int(size)


def _readable(path, fmt, files, num_columns, skip: int) -> int:
  """How many records after the first `skip` read before TF's error (at
  most one batch: the failing one)."""
  dataset = data.reader(files, num_columns)(path, fmt.compression)
  count = 0
  try:
    for _ in dataset.skip(skip).take(_BATCH):
      count += 1
  except tf.errors.OpError:
    pass
  return count


def _check_labels(labels: np.ndarray, n_classes: int, path: str,
                  offset: int, fmt: data_format.Format) -> None:
  if not n_classes:
    return
  values = labels.astype(np.float64)
  bad = np.flatnonzero((values < 0) | (values >= n_classes) |
                       (values != np.round(values)))
  if bad.size:
    where = ("%s: row %d" if fmt.kind == data_format.CSV else
             "%s: record %d") % (path, offset + bad[0])
    _check_label(values[bad[0]], where, n_classes)


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


def _check_csv_rows(path: str, compression: str, config: data.InputConfig,
                    n_classes: int, limit: Optional[int]) -> int:
  """Checks the first `limit` rows (all: None) in Python, naming the line
  of a problem."""
  numeric = {column: config.inputs[name]
             for name, column in config.input_map.items()
             if config.inputs[name].dtype != tf.string}
  rows = 0
  try:
    with data_format.open_text(path, compression) as f:
      reader = csv.reader(f)
      header = next(reader, None) or []
      for row in reader:
        _check_csv_row(row, header, "%s:%d" % (path, reader.line_num),
                       numeric, config.label_key, n_classes)
        rows += 1
        if limit is not None and rows >= limit:
          break
  except (EOFError, OSError, UnicodeDecodeError) as e:
    raise errors.DataError("%s is corrupt or cut short after row %d (it "
                           "reads as %s CSV): %s" % (
                               path, rows, compression or "plain", e)
                           ) from None
  return rows


def _check_csv_row(row: Iterable[str], header, where, numeric, label_key,
                   n_classes) -> None:
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
  label = _numbers(fields[label_key], where, label_key)
  if len(label) != 1:
    raise errors.DataError("%s: label column %s holds %r; it needs one "
                           "number." % (where, label_key, fields[label_key]))
  _check_label(label[0], where, n_classes)
