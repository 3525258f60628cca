"""Real data sets that ship inside installed packages, and writers for them.

No data can be downloaded here, so the examples use data that comes with
packages we install anyway:

* digits: the 1,797 8x8 handwritten digits bundled with scikit-learn, cut
  once, with a fixed seed, into two disjoint halves of images. The example
  feature extractor is pre-trained on the first half (all ten digits); the
  trainer's demo task is classifying digits 5-9 (labels 0-4) of the second
  half from few labelled images, which is transfer learning. (Pre-training
  on digits 0-4 alone was tried and did not transfer: docs/transfer.md.)
* docstrings: paragraphs of NumPy's own docstrings, labelled with the
  submodule they document (linalg, fft, random, char, polynomial); a small
  real text-classification task for the text-embedding model.

Writers produce the files the trainer reads: CSV with a header row, or
TFRecord files of `tf.train.Example`. A vector column (the 64 pixels) is one
CSV field of space-separated numbers, or one float-list feature.
"""

import csv
import dataclasses
import gzip
import io
import os
import zlib
from typing import Dict, List, Optional, Sequence

import numpy as np
import numpy.polynomial.polynomial
from sklearn import datasets as sklearn_datasets
import tensorflow as tf

DIGITS_PIXELS = 64
TRANSFER_CLASSES = (5, 6, 7, 8, 9)
ALL_CLASSES = tuple(range(10))
PRETRAIN_HALF, TRANSFER_HALF = 0, 1
HALVES_SEED = 1234
DOCSTRING_MODULES = ("linalg", "fft", "random", "char", "polynomial")


@dataclasses.dataclass(frozen=True)
class Examples:
  """Columns of a data set: name -> array with one row per example."""
  columns: Dict[str, np.ndarray]

  def __len__(self):
    return len(next(iter(self.columns.values())))

  def take(self, index) -> "Examples":
    return Examples({k: v[index] for k, v in self.columns.items()})


def digits(classes: Sequence[int], half: Optional[int] = None) -> Examples:
  """Digits of the given classes; labels renumbered 0..len(classes)-1.

  Args:
    classes: the digits to keep, in label order.
    half: 0 (pre-training images) or 1 (transfer images); None: all images.

  Returns:
    Columns `pixels` (float32, [n, 64], values 0-16) and `label` (int64).
  """
  data = sklearn_datasets.load_digits()
  keep = np.isin(data.target, classes)
  if half is not None:
    in_first = np.random.RandomState(HALVES_SEED).rand(len(data.target)) < 0.5
    keep &= in_first if half == 0 else ~in_first
  relabel = {c: i for i, c in enumerate(classes)}
  labels = np.array([relabel[t] for t in data.target[keep]], np.int64)
  return Examples({"pixels": data.data[keep].astype(np.float32),
                   "label": labels})


SHIFTS = 5  # shift 0..4: the label is (digit + shift) mod 5.


def shifted(examples: Examples) -> Examples:
  """Each digit SHIFTS times, once with each `shift`, labelled (its label +
  shift) mod SHIFTS: neither the image alone nor the shift alone tells the
  label (each leaves 1 in 5), together they do. The worked example of a
  model of one's own (example_kit/your_model.py) joins the two.

  Returns:
    Columns `pixels`, `shift` (int64) and `label` (int64).
  """
  count = len(examples)
  shift = np.tile(np.arange(SHIFTS, dtype=np.int64), count)
  pixels = np.repeat(examples.columns["pixels"], SHIFTS, axis=0)
  labels = (np.repeat(examples.columns["label"], SHIFTS) + shift) % SHIFTS
  return Examples({"pixels": pixels, "shift": shift,
                   "label": labels.astype(np.int64)})


def docstrings() -> Examples:
  """Paragraphs of NumPy docstrings labelled by submodule.

  Columns: `text` (str) and `label` (int64, index into DOCSTRING_MODULES).
  """
  sources = {"linalg": np.linalg, "fft": np.fft,
             "random": np.random.RandomState, "char": np.char,
             "polynomial": numpy.polynomial.polynomial}
  texts, labels = [], []
  for label, module_name in enumerate(DOCSTRING_MODULES):
    module = sources[module_name]
    for name in sorted(dir(module)):
      doc = getattr(getattr(module, name), "__doc__", None)
      if name.startswith("_") or not doc:
        continue
      for paragraph in doc.split("\n\n"):
        words = paragraph.split()
        if len(words) >= 5 and not set(paragraph.strip()) <= set("-= "):
          texts.append(" ".join(words))
          labels.append(label)
  return Examples({"text": np.array(texts, dtype=object),
                   "label": np.array(labels, np.int64)})


def split(examples: Examples, first_fraction: float,
          seed: int = 0) -> List[Examples]:
  """Shuffles with a fixed seed and splits into two parts."""
  order = np.random.RandomState(seed).permutation(len(examples))
  cut = int(round(len(examples) * first_fraction))
  return [examples.take(order[:cut]), examples.take(order[cut:])]


def few_shot(examples: Examples, per_class: int) -> List[Examples]:
  """The first `per_class` examples of each label, and all the others."""
  labels = examples.columns["label"]
  chosen = np.concatenate([np.flatnonzero(labels == label)[:per_class]
                           for label in np.unique(labels)])
  rest = np.setdiff1d(np.arange(len(labels)), chosen)
  return [examples.take(chosen), examples.take(rest)]


def _field(value) -> str:
  if isinstance(value, np.ndarray):
    return " ".join(_number(v) for v in value)
  if isinstance(value, (float, np.floating)):
    return _number(value)
  return str(value)


def _number(value) -> str:
  return "%g" % value


def csv_text(examples: Examples) -> str:
  """The CSV file of `examples`: a header row, vectors space-separated."""
  text = io.StringIO(newline="")
  names = list(examples.columns)
  writer = csv.writer(text)
  writer.writerow(names)
  for i in range(len(examples)):
    writer.writerow([_field(examples.columns[n][i]) for n in names])
  return text.getvalue()


def write_csv(examples: Examples, path: str,
              compression: Optional[str] = None) -> str:
  """Writes a CSV file with a header row; vectors become space-separated.
  `compression`: None, "GZIP" (what `gzip` writes) or "ZLIB"."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  encoded = csv_text(examples).encode("utf-8")
  if compression == "GZIP":
    encoded = gzip.compress(encoded)
  elif compression == "ZLIB":
    encoded = zlib.compress(encoded)
  elif compression:
    raise ValueError("compression %r is not GZIP or ZLIB" % compression)
  with open(path, "wb") as f:
    f.write(encoded)
  return path


def write_tfrecord(examples: Examples, path: str,
                   compression: Optional[str] = None) -> str:
  """Writes `tf.train.Example` records, one feature per column;
  `compression`: None, "GZIP" or "ZLIB" (TF's TFRecordWriter options)."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  names = list(examples.columns)
  with tf.io.TFRecordWriter(path, options=compression) as writer:
    for i in range(len(examples)):
      features = {n: _feature(examples.columns[n][i]) for n in names}
      example = tf.train.Example(
          features=tf.train.Features(feature=features))
      writer.write(example.SerializeToString())
  return path


def write_shards(examples: Examples, directory: str, num_files: int, *,
                 kind: str = "tfrecord", compression: Optional[str] = None
                 ) -> List[str]:
  """Writes `examples` round-robin into `num_files` files named as sharded
  data sets are (part-00000-of-00004.tfrecord.gz); returns their paths."""
  suffix = "." + kind + (".gz" if compression == "GZIP" else
                         ".z" if compression == "ZLIB" else "")
  write = {"tfrecord": write_tfrecord, "csv": write_csv}[kind]
  return [write(examples.take(np.arange(i, len(examples), num_files)),
                os.path.join(directory, "part-%05d-of-%05d%s" % (
                    i, num_files, suffix)), compression)
          for i in range(num_files)]


def _feature(value):
  values = np.atleast_1d(value)
  if values.dtype.kind == "f":
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))
  if values.dtype.kind in "iu":
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
  return tf.train.Feature(bytes_list=tf.train.BytesList(
      value=[str(v).encode("utf-8") for v in values]))
