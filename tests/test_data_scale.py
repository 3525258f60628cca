"""Data at scale: formats told from the bytes, compressed files, many files
read in parallel, each task its share, and the sampled or full pre-flight."""

import gzip
import os

import numpy as np
import pytest
import tensorflow as tf

from example_kit import datasets
from harness import errors
from harness import tf_config
from tests import backend_jobs
from trainer import task
from trainer.config import cli
from trainer.config import job as job_lib
from trainer.inputs import data
from trainer.inputs import data_format
from trainer.inputs import data_share
from trainer.inputs import validate

PIXELS = {"inputs": tf.TensorSpec([None, 64], tf.float32)}
FORMATS = [("tfrecord", None), ("tfrecord", "GZIP"), ("tfrecord", "ZLIB"),
           ("csv", None), ("csv", "GZIP"), ("csv", "ZLIB")]


def _numbered(count=60):
  """Examples whose pixels hold their own number, so that reads can be
  counted exactly; labels 0-4."""
  ids = np.arange(count)
  return datasets.Examples({
      "pixels": np.repeat(ids[:, None], 64, axis=1).astype(np.float32),
      "label": (ids % 5).astype(np.int64)})


def _config(files):
  return data.InputConfig(inputs=PIXELS, input_map={"inputs": "pixels"},
                          columns=data.read_columns(files),
                          label_key="label", label_dtype=tf.int64)


def _ids(dataset, batches=None):
  source = dataset if batches is None else dataset.take(batches)
  return [int(v) for features, _ in source
          for v in features["inputs"][:, 0].numpy()]


@pytest.mark.parametrize("kind,compression", FORMATS)
def test_format_and_compression_are_told_from_the_bytes(tmp_path, kind,
                                                        compression):
  # Names that say nothing, or the wrong thing: the bytes decide.
  paths = datasets.write_shards(_numbered(), str(tmp_path), 3, kind=kind,
                                compression=compression)
  misnamed = str(tmp_path / ("data.csv" if kind == "tfrecord" else "data"))
  os.rename(paths[0], misnamed)
  files = data.expand([misnamed, str(tmp_path / "part-*")], "train_files")
  expected = data_format.Format(
      data_format.CSV if kind == "csv" else data_format.TFRECORD,
      compression or "")
  assert set(files.formats) == {expected}
  dataset = data.make_input_fn(files, _config(files), batch_size=7,
                               training=False)()
  assert sorted(_ids(dataset)) == list(range(60))


def test_files_of_different_compressions_read_together(tmp_path):
  examples = _numbered()
  paths = [datasets.write_tfrecord(examples.take(np.arange(i, 60, 3)),
                                   str(tmp_path / ("f%d" % i)), compression)
           for i, compression in enumerate([None, "GZIP", "ZLIB"])]
  files = data.expand(paths, "train_files")
  assert [f.compression for f in files.formats] == ["", "GZIP", "ZLIB"]
  assert files.describe() == ("3 file(s): 1 GZIP TFRecord, 1 TFRecord, "
                              "1 ZLIB TFRecord")
  dataset = data.make_input_fn(files, _config(files), batch_size=8,
                               training=False)()
  assert sorted(_ids(dataset)) == list(range(60))


def test_evaluation_reads_every_file_once_in_order(tmp_path):
  datasets.write_shards(_numbered(), str(tmp_path), 6)
  files = data.expand([str(tmp_path / "*")], "eval_files")
  evaluate = data.make_input_fn(files, _config(files), batch_size=8,
                                training=False)
  first, second = _ids(evaluate()), _ids(evaluate())
  assert first == second  # Deterministic,
  assert sorted(first) == list(range(60))  # each example exactly once,
  assert first[:10] == list(range(0, 60, 6))  # file by file.


def test_training_reads_many_files_shuffled_and_repeated(tmp_path):
  datasets.write_shards(_numbered(), str(tmp_path), 8)
  files = data.expand([str(tmp_path / "*")], "train_files")
  train = data.make_input_fn(files, _config(files), batch_size=10,
                             training=True, seed=3, shuffle_buffer=20)()
  ids = _ids(train, batches=12)  # Two passes over the 60 examples.
  assert set(ids) == set(range(60))
  assert ids[:60] != sorted(ids[:60])


def _share_ids(tmp_path, share, batches=30):
  files = data.expand([str(tmp_path / "*")], "train_files")
  train, _ = data.input_fns(files, None, _config(files), batch_size=10,
                            share=share)
  return _ids(train(), batches=batches)


def _tf_config(task_type, index, workers=2):
  return tf_config.parse(
      '{"cluster": {"chief": ["h:1"], "worker": [%s], "ps": ["h:9"]}, '
      '"task": {"type": "%s", "index": %d}}' % (
          ", ".join('"h:%d"' % (2 + i) for i in range(workers)), task_type,
          index))


def test_each_training_task_reads_its_own_files(tmp_path):
  datasets.write_shards(_numbered(), str(tmp_path), 6)
  shares = [data_share.for_estimator(6, _tf_config(t, i), seed=7)
            for t, i in (("chief", 0), ("worker", 0), ("worker", 1))]
  assert [s.indices for s in shares] == [(0, 3), (1, 4), (2, 5)]
  assert [s.seed for s in shares] == [7, 8, 9]
  assert "worker-1 (training task 3 of 3) reads its own 2 of the 6 files" in (
      shares[2].note)
  read = [set(_share_ids(tmp_path, share)) for share in shares]
  # Files i::6 hold the examples i::6: each task sees only its own.
  assert read[0] == set(range(0, 60, 6)) | set(range(3, 60, 6))
  assert read[1] == set(range(1, 60, 6)) | set(range(4, 60, 6))
  assert not read[0] & read[1] and not read[1] & read[2]
  assert set().union(*read) == set(range(60))


def test_fewer_files_than_tasks_every_task_reads_all_shuffled_apart(
    tmp_path):
  datasets.write_shards(_numbered(), str(tmp_path), 2)
  chief, worker = (data_share.for_estimator(2, _tf_config(t, i), seed=7)
                   for t, i in (("chief", 0), ("worker", 1)))
  assert chief.indices == worker.indices == (0, 1)
  assert "fewer than one each" in chief.note
  chief_ids = _share_ids(tmp_path, chief)
  worker_ids = _share_ids(tmp_path, worker)
  assert set(chief_ids) == set(worker_ids) == set(range(60))
  assert chief_ids != worker_ids  # Seeds 7 and 9: different orders,
  assert chief_ids == _share_ids(tmp_path, chief)  # each reproducible.


def test_sharding_can_be_turned_off_and_other_roles_read_everything():
  off = data_share.for_estimator(6, _tf_config("worker", 0), seed=None,
                                 shard=False)
  assert off.indices == tuple(range(6)) and off.seed is None
  assert "file sharding off" in off.note
  for config in (None, _tf_config("ps", 0)):
    assert data_share.for_estimator(6, config, seed=1).indices == tuple(
        range(6))
  keras = data_share.for_keras_workers(6, 2)
  assert keras.indices == tuple(range(6)) and keras.seed is None


def test_share_rejects_an_index_outside_the_tasks():
  with pytest.raises(ValueError, match="task index 3 is not in"):
    data_share.decide(6, tasks=3, index=3, seed=None)


def _plan_args(assets, tmp_path, *extra):
  return ["--module_handle=" + assets.digits_model,
          "--input_map=inputs=pixels", "--n_classes=5",
          "--model_dir=" + str(tmp_path / "model")] + list(extra)


def _run_task(args, capsys):
  code = task.run(cli.new_flag_values(args), environ={})
  return code, capsys.readouterr()


@pytest.mark.slow
@pytest.mark.parametrize("backend", backend_jobs.BACKENDS)
def test_trains_on_gzipped_shards(assets, tmp_path, capsys, backend):
  digits = datasets.digits(datasets.TRANSFER_CLASSES, datasets.TRANSFER_HALF)
  datasets.write_shards(digits, str(tmp_path / "train"), 4,
                        compression="GZIP")
  datasets.write_shards(digits.take(np.arange(100)), str(tmp_path / "eval"),
                        2, kind="csv", compression="GZIP")
  code, out = _run_task(_plan_args(
      assets, tmp_path, "--train_files=%s/train/*.gz" % tmp_path,
      "--eval_files=%s/eval/*" % tmp_path, "--train_steps=20",
      "--backend=" + backend), capsys)
  assert code == 0, out.err[-2000:]
  assert "Eval on" in out.out and "after step 20" in out.out


def _sample_plan(assets, tmp_path, pattern, mode="sample"):
  job = cli.job_config(cli.new_flag_values(_plan_args(
      assets, tmp_path, "--train_files=" + pattern,
      "--validate_data=" + mode)))
  return backend_jobs.check(job)


def _bad_row_beyond_the_sample(tmp_path):
  """Six CSV shards whose last has a bad row far past the first rows."""
  tmp_path.mkdir()
  rows = datasets.csv_text(_numbered(1200)).splitlines()
  header, rows = rows[0], rows[1:]
  for i in range(6):
    shard = rows[i::6]
    if i == 5:
      shard[190] = shard[190].replace(",", " x,", 1)
    (tmp_path / ("part-%d.csv" % i)).write_text(
        "\n".join([header] + shard) + "\n")
  return str(tmp_path / "part-*.csv")


def test_sample_checks_first_rows_and_full_finds_the_rest(assets, tmp_path):
  pattern = _bad_row_beyond_the_sample(tmp_path / "data")
  plan = _sample_plan(assets, tmp_path, pattern)
  assert plan.train_examples is None  # Not counted: not every row read.
  assert plan.data_checks[0].startswith(
      "`train_files`: checked all 6 file(s)' format and first rows, a "
      "sample of 1002 rows (up to 167 per file)")
  with pytest.raises(errors.DataError,
                     match=r"part-5.csv:192: column pixels holds 'x', which "
                           r"is not a number"):
    _sample_plan(assets, tmp_path, pattern, mode="full")


def test_sample_catches_a_bad_first_row_in_any_file(assets, tmp_path):
  root = tmp_path / "data"
  datasets.write_shards(_numbered(), str(root), 5, kind="csv")
  last = root / "part-00004-of-00005.csv"
  header, first, rest = last.read_text().split("\n", 2)
  last.write_text("\n".join([header, first + ",9", rest]))
  with pytest.raises(errors.DataError,
                     match=r"part-00004-of-00005.csv:2 has 3 fields; the "
                           r"header has 2 \(pixels,label\)"):
    _sample_plan(assets, tmp_path, str(root / "*"))


def test_full_check_counts_every_example_and_reports_its_rate(assets,
                                                              tmp_path):
  datasets.write_shards(_numbered(), str(tmp_path / "data"), 4,
                        compression="GZIP")
  plan = _sample_plan(assets, tmp_path, str(tmp_path / "data" / "*"),
                      mode="full")
  assert plan.train_examples == 60
  assert plan.data_checks[0].startswith(
      "`train_files`: checked every row: 60 examples in 4 file(s)")
  assert plan.data_checks[0].endswith("/s).")


def _truncated_copy(path, out, keep=0.6):
  with open(path, "rb") as f:
    content = f.read()
  with open(out, "wb") as f:
    f.write(content[:int(len(content) * keep)])
  return out


def test_a_file_cut_short_passes_the_sample_fails_the_full_check(
    assets, tmp_path):
  digits = datasets.digits(datasets.TRANSFER_CLASSES, datasets.TRANSFER_HALF)
  digits = digits.take(np.tile(np.arange(len(digits)), 4))
  root = tmp_path / "data"
  whole = datasets.write_tfrecord(digits, str(tmp_path / "whole.gz"), "GZIP")
  datasets.write_tfrecord(digits, str(root / "a.gz"), "GZIP")
  _truncated_copy(whole, str(root / "b.gz"), keep=0.9)
  _sample_plan(assets, tmp_path, str(root / "*"))  # First rows read fine.
  with pytest.raises(errors.DataError,
                     match=r"b.gz is corrupt or cut short after record "
                           r"\d{4} \(it reads as GZIP TFRecord\)"):
    _sample_plan(assets, tmp_path, str(root / "*"), mode="full")


@pytest.mark.parametrize("backend", backend_jobs.BACKENDS)
def test_training_that_reaches_a_cut_file_stops_with_one_line(
    assets, tmp_path, capsys, backend):
  digits = datasets.digits(datasets.TRANSFER_CLASSES, datasets.TRANSFER_HALF)
  whole = datasets.write_tfrecord(digits, str(tmp_path / "whole.tfrecord"))
  cut = _truncated_copy(whole, str(tmp_path / "cut.tfrecord"))
  code, out = _run_task(_plan_args(
      assets, tmp_path, "--train_files=" + cut, "--train_steps=100",
      "--backend=" + backend), capsys)
  assert code == 1
  errors_shown = [line for line in out.err.splitlines()
                  if line.startswith("error: ")]
  assert len(errors_shown) == 1, out.err[-3000:]
  assert errors_shown[0].startswith(
      "error: %s is corrupt or cut short after record" % cut)
  assert "Traceback" not in out.err


@pytest.mark.parametrize("content,message", [
    (b"\x1f\x8b\x08\x00garbage-not-deflate" * 4,
     "starts like a GZIP-compressed file but does not decompress"),
    (bytes(range(256)) * 4, "is neither CSV nor TFRecord"),
    (b"", "is empty"),
])
def test_a_file_that_is_not_what_it_claims_is_one_line(assets, tmp_path,
                                                       content, message):
  bad = tmp_path / "data" / "part-1.gz"
  bad.parent.mkdir()
  bad.write_bytes(content)
  datasets.write_tfrecord(_numbered(), str(tmp_path / "data" / "part-0"))
  with pytest.raises(errors.DataError, match=message) as raised:
    _sample_plan(assets, tmp_path, str(tmp_path / "data" / "*"))
  assert str(bad) in str(raised.value)
  assert "\n" not in str(raised.value)


def test_records_that_are_not_examples_are_refused(assets, tmp_path):
  path = str(tmp_path / "strings.tfrecord")
  with tf.io.TFRecordWriter(path) as writer:
    writer.write(b"\xff\xff not a tf.train.Example")
  with pytest.raises(errors.DataError,
                     match="its first record is not a tf.train.Example"):
    _sample_plan(assets, tmp_path, path)


def test_mixed_kinds_name_the_files(tmp_path):
  datasets.write_shards(_numbered(), str(tmp_path / "a"), 2, kind="csv",
                        compression="GZIP")
  datasets.write_shards(_numbered(), str(tmp_path / "b"), 4)
  with pytest.raises(errors.DataError) as raised:
    data.expand([str(tmp_path / "*" / "*")], "train_files")
  message = str(raised.value)
  assert "mixes CSV and TFRecord files (CSV: %s" % (
      tmp_path / "a" / "part-00000-of-00002.csv.gz") in message
  assert "and 1 more); use one format" in message


def test_gzipped_csv_headers_must_agree(tmp_path):
  (tmp_path / "a.csv.gz").write_bytes(gzip.compress(b"pixels,label\n1,0\n"))
  (tmp_path / "b.csv.gz").write_bytes(gzip.compress(b"pixels,target\n1,0\n"))
  with pytest.raises(errors.DataError, match=r"b.csv.gz has header "
                                             r"pixels,target, unlike"):
    data.read_columns(data.expand([str(tmp_path / "*")], "train_files"))


@pytest.mark.parametrize("argv,expected", [
    ([], "sample"), (["--validate_data"], "sample"),
    (["--novalidate_data"], "off"), (["--validate_data=full"], "full"),
    (["--validate_data=false"], "off")])
def test_validate_data_flag_spellings(argv, expected):
  fv = cli.new_flag_values(argv)
  assert fv.validate_data == expected
  assert fv["validate_data"].serialize() == "--validate_data=" + expected


def test_validate_data_flag_refuses_other_values():
  with pytest.raises(Exception, match="should be one of <sample|full|off>"):
    cli.new_flag_values(["--validate_data=most"])
  with pytest.raises(errors.FlagError, match="not one of: sample, full, off"):
    job_lib.validate(job_lib.JobConfig(
        model=job_lib.ModelOptions("m"), model_dir="d",
        head=job_lib.HeadConfig(n_classes=2),
        data=job_lib.DataOptions(train_files=("f",), validate_data="most")))


def test_zlib_text_reader_reads_across_chunks(tmp_path):
  text = "".join("row %d\n" % i for i in range(50000))
  import zlib  # pylint: disable=g-import-not-at-top
  (tmp_path / "t.z").write_bytes(zlib.compress(text.encode()))
  with data_format.open_text(str(tmp_path / "t.z"), data_format.ZLIB) as f:
    assert f.read() == text


def test_validate_modes_are_the_settings_values():
  assert (validate.SAMPLE, validate.FULL, validate.OFF) == (
      job_lib.VALIDATE_DATA)


@pytest.mark.parametrize("train_kind,eval_kind", [
    ("tfrecord", "csv"), ("csv", "tfrecord"), ("csv", "csv")])
def test_eval_files_are_read_by_their_own_columns(assets, tmp_path,
                                                  train_kind, eval_kind):
  """Train and eval files may differ in kind and in column order (a
  tf.Example's features have no order at all)."""
  examples = _numbered()
  datasets.write_shards(examples, str(tmp_path / "train"), 2,
                        kind=train_kind)
  flipped = datasets.Examples({"label": examples.columns["label"],
                               "pixels": examples.columns["pixels"]})
  datasets.write_shards(flipped, str(tmp_path / "eval"), 3, kind=eval_kind)
  job = cli.job_config(cli.new_flag_values(_plan_args(
      assets, tmp_path, "--train_files=%s/train/*" % tmp_path,
      "--eval_files=%s/eval/*" % tmp_path, "--validate_data=full")))
  plan = backend_jobs.check(job)
  assert plan.eval_examples == 60
  _, evaluate = data.input_fns(
      plan.train_files, plan.eval_files, plan.inputs, batch_size=16,
      share=data_share.decide(2, tasks=1, index=0, seed=None),
      eval_config=plan.eval_inputs)
  seen = {}
  for features, labels in evaluate():
    for pixel, label in zip(features["inputs"][:, 0].numpy(),
                            labels.numpy()):
      seen[int(pixel)] = int(label)
  assert seen == {i: i % 5 for i in range(60)}
