"""trainer.inputs.data and trainer.config.input_map: columns reach the model
in its form."""

import numpy as np
import pytest
import tensorflow as tf

from example_kit import datasets
from harness import errors
from tests import flagged
from trainer.config import input_map
from trainer.hub_model import model_spec
from trainer.inputs import data

PIXELS = {"inputs": tf.TensorSpec([None, 64], tf.float32)}


def _first_batch(paths, inputs, mapping, label_dtype=tf.int64,
                 batch_size=4):
  files = data.expand(paths, "train_files")
  config = data.InputConfig(inputs=inputs, input_map=mapping,
                            columns=data.read_columns(files),
                            label_key="label", label_dtype=label_dtype)
  dataset = data.make_input_fn(files, config, batch_size=batch_size,
                               training=False)()
  return next(iter(dataset))


def _expected_digits():
  train, _ = datasets.split(
      datasets.digits(datasets.TRANSFER_CLASSES, datasets.TRANSFER_HALF),
      0.1)
  return train


@pytest.mark.parametrize("name", ["digits_train.csv",
                                  "digits_train.tfrecord"])
def test_pixel_vectors_take_the_models_dtype_and_shape(assets, name):
  features, labels = _first_batch([assets.data(name)], PIXELS,
                                  {"inputs": "pixels"})
  expected = _expected_digits()
  assert features["inputs"].dtype == tf.float32
  assert features["inputs"].shape.as_list() == [4, 64]
  np.testing.assert_array_equal(features["inputs"].numpy(),
                                expected.columns["pixels"][:4])
  assert labels.dtype == tf.int64
  np.testing.assert_array_equal(labels.numpy(), expected.columns["label"][:4])


def test_integer_model_input_from_float_feature(assets):
  features, _ = _first_batch([assets.data("digits_train.tfrecord")],
                             {"inputs": tf.TensorSpec([None, 64], tf.int32)},
                             {"inputs": "pixels"})
  assert features["inputs"].dtype == tf.int32


def test_text_column_feeds_a_string_input(assets):
  spec = model_spec.inspect_model(assets.text_model)
  features, labels = _first_batch([assets.data("text_train.csv")],
                                  spec.inputs, {"inputs": "text"})
  assert features["inputs"].dtype == tf.string
  assert features["inputs"].shape.as_list() == [4]
  assert all(len(t.split()) >= 5 for t in features["inputs"].numpy())
  assert set(labels.numpy()) <= set(range(len(datasets.DOCSTRING_MODULES)))


def test_regression_labels_are_floats(assets):
  _, labels = _first_batch([assets.data("digits_train.csv")], PIXELS,
                           {"inputs": "pixels"}, label_dtype=tf.float32)
  assert labels.dtype == tf.float32


def test_columns_from_csv_header_and_first_example(assets):
  assert list(data.read_columns(data.expand(
      [assets.data("digits_train.csv")], "f"))) == ["pixels", "label"]
  columns = data.read_columns(data.expand(
      [assets.data("digits_train.tfrecord")], "f"))
  assert columns["pixels"] == data.Column("float", 64)
  assert columns["label"] == data.Column("int64", 1)


def test_glob_matching_nothing_is_named(tmp_path):
  with flagged.raises(errors.DataError,
                      match=r"--train_files: .*nothing\*.csv matches no file"):
    data.expand([str(tmp_path / "nothing*.csv")], "train_files")


def test_a_file_several_globs_match_is_read_once_and_said(tmp_path,
                                                          monkeypatch):
  """Overlapping globs (and two spellings of one path) name each file once,
  in the order the globs first match it; the run says which repeated."""
  for name in ("a-1.csv", "a-2.csv", "b-1.csv"):
    (tmp_path / name).write_text("x,label\n1,0\n")
  monkeypatch.chdir(tmp_path)
  logged = []
  files = data.expand([str(tmp_path / "a-*.csv"), str(tmp_path / "*-1.csv"),
                       "./b-1.csv"], "train_files", logged.append)
  assert list(files) == [str(tmp_path / "a-1.csv"), str(tmp_path / "a-2.csv"),
                         str(tmp_path / "b-1.csv")]
  assert logged == ["`train_files`: 2 file(s) matched by more than one glob "
                    "are read once: %s, ./b-1.csv." % (tmp_path / "a-1.csv")]
  # Once per epoch: the pipeline reads each row once.
  config = data.InputConfig(inputs={"x": tf.TensorSpec([None], tf.int64)},
                            input_map={"x": "x"},
                            columns=data.read_columns(files),
                            label_key="label", label_dtype=tf.int64)
  rows = sum(int(tf.size(labels)) for _, labels in data.make_input_fn(
      files, config, batch_size=2, training=False)())
  assert rows == 3
  logged.clear()
  data.expand([str(tmp_path / "a-*.csv")], "train_files", logged.append)
  assert not logged


def test_mixed_formats_are_refused(assets):
  with pytest.raises(errors.DataError, match="mixes CSV and TFRecord"):
    data.expand([assets.data("digits_train.csv"),
                 assets.data("digits_eval.tfrecord")], "train_files")


def test_csv_files_with_different_headers(assets, tmp_path):
  other = tmp_path / "other.csv"
  other.write_text("pixels,target\n1,0\n")
  with pytest.raises(errors.DataError, match="need the same columns"):
    data.read_columns(data.expand([assets.data("digits_train.csv"),
                                   str(other)], "f"))


def test_input_map_parsing():
  assert input_map.parse(["x1=left", " x2 = right "]) == {"x1": "left",
                                                           "x2": "right"}
  with pytest.raises(errors.FlagError, match="MODEL_INPUT=DATA_COLUMN"):
    input_map.parse(["x1"])
  with pytest.raises(errors.FlagError, match="names model input x1 twice"):
    input_map.parse(["x1=a", "x1=b"])


def test_input_map_resolution():
  columns = ["pixels", "label"]
  # A single-input model is fed by the only feature column.
  assert input_map.resolve(["inputs"], columns, {}, "label") == {
      "inputs": "pixels"}
  # Inputs named like columns need no map.
  assert input_map.resolve(["x1", "x2"], ["x1", "x2", "label"], {},
                           "label") == {"x1": "x1", "x2": "x2"}
  assert input_map.resolve(["x1", "x2"], columns, {"x1": "pixels",
                                                   "x2": "pixels"},
                           "label") == {"x1": "pixels", "x2": "pixels"}


@pytest.mark.parametrize("inputs,columns,mapping,label,message", [
    (["x"], ["a", "label"], {"y": "a"}, "label",
     "names model input y, which the model does not have; its inputs are: x"),
    (["x"], ["a", "label"], {"x": "b"}, "label",
     "maps x to column b, which the data does not have; its columns are: "
     "a, label"),
    (["x1", "x2"], ["a", "b", "label"], {"x1": "a"}, "label",
     "Model input x2 has no data column: add x2=COLUMN"),
    (["x"], ["a", "label"], {}, "target",
     "--label_key=target is not a column of the data; its columns are: a, "
     "label"),
    (["x"], ["a", "label"], {"x": "label"}, "label",
     "label column label also feeds model input x"),
])
def test_input_map_errors_name_what_exists(inputs, columns, mapping, label,
                                           message):
  with flagged.raises(errors.FlagError, match=message):
    input_map.resolve(inputs, columns, mapping, label)
