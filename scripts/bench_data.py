r"""Benchmark part: the data at scale, side by side in one run.

  python -m scripts.bench_data --quick --json=data.json   # this part alone

1. Input throughput: the trainer's own training pipeline (trainer.inputs.data:
   interleave, shuffle, batch, parse) against a raw tf.data read of the
   same files written by hand (one reader over the files in turn, a
   vectorized parse in parallel, prefetch; no shuffle): the limit on this
   machine; the same raw read with the trainer's record shuffle (a buffer
   of 10000), which isolates what the shuffle costs from what the pipeline
   adds; and the pipeline with --shuffle_buffer=0 (the files' order
   shuffled, not the records) against the raw read; and the pipeline a
   Keras cluster reads by default, through TF's tf.data service (a
   dispatcher and one tf.data worker in this process, over gRPC as on a
   cluster), against the raw read and the pipeline. For 1 large file and
   for 64 files, each as TFRecord, GZIP TFRecord and CSV.
2. Launch to first step: `python -m trainer.task` on 2 MB, 200 MB and
   2 GB of TFRecords (generated here by repeating the digits' records),
   from the process's start to the "first training step done" line, with
   the default pre-flight (validate_data=sample).
3. The full check's rate (validate_data=full) on the 200 MB set.
4. A 2-task cluster (the Estimator's chief and one worker) training on 64
   files with file sharding on and off (--shard_files), steps/s.
5. A Keras cluster with 2 workers training on 64 files through the tf.data
   service (--data_service, the default) and with every worker reading
   every file (--nodata_service): steps/s and launch to first step. The
   smoke run makes it only where TF has no Estimator (and 4 only where it
   has one): one pair of clusters per stack.

The data is written under the work directory and deleted at the end.
"""

import gzip
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import tensorflow as tf

from example_kit import datasets
from scripts import bench_cluster
from trainer.inputs import data
from trainer.inputs import validate
from trainer.keras import data_service
from trainer.training import progress

REPO = bench_cluster.REPO

FORMATS = (("tfrecord", None), ("tfrecord", "GZIP"), ("csv", None))
PIXELS = datasets.DIGITS_PIXELS
INPUTS = {"inputs": tf.TensorSpec([None, PIXELS], tf.float32)}
MB = 1000 * 1000
SHUFFLE_BUFFER = data.SHUFFLE_BUFFER  # The trainer's default.


def _examples():
  return datasets.digits(datasets.TRANSFER_CLASSES, datasets.TRANSFER_HALF)


def _chunk(kind: str, directory: str):
  """(header bytes, rows bytes) of the digits as `kind`, uncompressed."""
  examples = _examples()
  if kind == "csv":
    text = datasets.csv_text(examples).encode("utf-8")
    header, _, rows = text.partition(b"\n")
    return header + b"\n", rows
  path = datasets.write_tfrecord(examples, os.path.join(directory, "chunk"))
  with open(path, "rb") as f:
    rows = f.read()
  os.remove(path)
  return b"", rows


def write_set(directory: str, kind: str, compression, num_files: int,
              total_bytes: int) -> str:
  """`num_files` files of about `total_bytes` on disk in all, made of the
  digits' records repeated (GZIP: as gzip members, which TF and Python
  read as one stream); returns their glob."""
  os.makedirs(directory, exist_ok=True)
  header, rows = _chunk(kind, directory)
  if compression == "GZIP":
    header = gzip.compress(header) if header else b""
    rows = gzip.compress(rows)
  per_file = max(1, math.ceil(total_bytes / num_files / len(rows)))
  suffix = "." + kind + (".gz" if compression else "")
  for i in range(num_files):
    with open(os.path.join(directory, "part-%05d%s" % (i, suffix)),
              "wb") as f:
      f.write(header)
      for _ in range(per_file):
        f.write(rows)
  return os.path.join(directory, "part-*")


def _config(files: data.Files) -> data.InputConfig:
  return data.InputConfig(inputs=INPUTS, input_map={"inputs": "pixels"},
                          columns=data.read_columns(files), label_key="label",
                          label_dtype=tf.int64)


def pipeline_dataset(pattern: str, batch_size: int,
                     shuffle: int = data.SHUFFLE_BUFFER) -> tf.data.Dataset:
  """The trainer's training pipeline; `shuffle`: --shuffle_buffer."""
  files = data.expand([pattern], "train_files")
  return data.make_input_fn(files, _config(files), batch_size=batch_size,
                            training=True, shuffle_buffer=shuffle)()


def raw_dataset(pattern: str, kind: str, compression,
                batch_size: int, shuffle: int = 0) -> tf.data.Dataset:
  """The same files read by hand, the simplest way: one reader over all the
  files in turn (faster here than TF's `num_parallel_reads`, whose
  interleave costs per record), batched and parsed in parallel; shuffled
  through a buffer of `shuffle` records, or (0) not at all.
  """
  paths = sorted(tf.io.gfile.glob(pattern))
  if kind == "tfrecord":
    spec = {"pixels": tf.io.FixedLenFeature([PIXELS], tf.float32),
            "label": tf.io.FixedLenFeature([], tf.int64)}
    dataset = tf.data.TFRecordDataset(paths,
                                      compression_type=compression or "")
    parse = lambda records: tf.io.parse_example(records, spec)
  else:
    dataset = tf.data.experimental.CsvDataset(
        paths, [tf.string, tf.int64], header=True,
        compression_type=compression or "")
    parse = lambda pixels, label: (tf.reshape(tf.strings.to_number(
        tf.strings.split(pixels)).to_tensor(), [-1, PIXELS]), label)
  dataset = dataset.repeat()
  if shuffle:
    dataset = dataset.shuffle(shuffle)
  return dataset.batch(batch_size).map(
      parse, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


class LocalService:
  """TF's tf.data service in this process, as a Keras cluster runs it
  (trainer.keras.data_service): a dispatcher and one tf.data worker; its
  `target` is what the pipeline's `service` takes. One per measurement:
  the pipeline's job name is fixed, and a second reader of a dispatcher
  would join the first's job."""

  def __enter__(self) -> str:
    service = tf.data.experimental.service
    self._dispatcher = service.DispatchServer()
    self._worker = service.WorkerServer(service.WorkerConfig(
        dispatcher_address=self._dispatcher.target.split("://")[1],
        heartbeat_interval_ms=data_service.HEARTBEAT_MS))
    return self._dispatcher.target

  def __exit__(self, *exc):
    del self._worker, self._dispatcher  # Dropped, a server stops.


def service_rate(pattern: str, s: dict) -> float:
  """Examples/s of the trainer's training pipeline read through a local
  tf.data service."""
  files = data.expand([pattern], "train_files")
  with LocalService() as target:
    return examples_per_s(data.make_input_fn(
        files, _config(files), batch_size=s["input_batch"], training=True,
        shuffle_buffer=SHUFFLE_BUFFER, service=target)(),
                          s["input_batches"], s["input_batch"])


def examples_per_s(dataset: tf.data.Dataset, batches: int,
                   batch_size: int) -> float:
  iterator = iter(dataset)
  for _ in range(max(5, batches // 10)):  # Warm-up: buffers fill.
    next(iterator)
  start = time.perf_counter()
  for _ in range(batches):
    next(iterator)
  return batches * batch_size / (time.perf_counter() - start)


def throughput(work_dir, s, log):
  """{format-files: {raw, pipeline, ratio}} for 1 and 64 files."""
  figures = {}
  for kind, compression in FORMATS:
    for num_files in (1, 64):
      name = "%s%s_%dfile%s" % ("gzip_" if compression else "", kind,
                                num_files, "s" if num_files > 1 else "")
      directory = os.path.join(work_dir, "throughput", name)
      pattern = write_set(directory, kind, compression, num_files,
                          s["throughput_bytes"])
      runs = {"raw": [], "raw_shuffled": [], "pipeline": [],
              "pipeline_unshuffled": [], "service": []}
      for _ in range(s["repeats"]):  # Alternated, so drift hits all five.
        for key, shuffle in (("raw", 0), ("raw_shuffled", SHUFFLE_BUFFER)):
          runs[key].append(examples_per_s(raw_dataset(
              pattern, kind, compression, s["input_batch"], shuffle),
                                          s["input_batches"],
                                          s["input_batch"]))
        for key, shuffle in (("pipeline", SHUFFLE_BUFFER),
                             ("pipeline_unshuffled", 0)):
          runs[key].append(examples_per_s(pipeline_dataset(
              pattern, s["input_batch"], shuffle), s["input_batches"],
                                          s["input_batch"]))
        runs["service"].append(service_rate(pattern, s))
      rates = {key: statistics.median(values) for key, values in runs.items()}
      figures[name] = {key + "_examples_per_s": rate
                       for key, rate in rates.items()}
      figures[name]["pipeline_vs_raw"] = rates["pipeline"] / rates["raw"]
      figures[name]["pipeline_vs_raw_shuffled"] = (
          rates["pipeline"] / rates["raw_shuffled"])
      figures[name]["pipeline_unshuffled_vs_raw"] = (
          rates["pipeline_unshuffled"] / rates["raw"])
      figures[name]["service_vs_raw"] = rates["service"] / rates["raw"]
      figures[name]["service_vs_pipeline"] = (
          rates["service"] / rates["pipeline"])
      log("input %s: pipeline %.0f, raw %.0f (%.2f), raw shuffled %.0f "
          "(%.2f); --shuffle_buffer=0 %.0f, raw (%.2f); tf.data service "
          "%.0f, raw (%.2f), pipeline (%.2f) examples/s" % (
              name, rates["pipeline"], rates["raw"],
              figures[name]["pipeline_vs_raw"], rates["raw_shuffled"],
              figures[name]["pipeline_vs_raw_shuffled"],
              rates["pipeline_unshuffled"],
              figures[name]["pipeline_unshuffled_vs_raw"], rates["service"],
              figures[name]["service_vs_raw"],
              figures[name]["service_vs_pipeline"]))
      shutil.rmtree(directory)
  return figures


def first_step_s(pattern, model_dir, digits_model, extra=()):
  """Seconds from launching the trainer to its first training step."""
  started = time.time()
  proc = subprocess.run(
      [sys.executable, "-m", "trainer.task", "--module_handle=" + digits_model,
       "--train_files=" + pattern, "--input_map=inputs=pixels",
       "--n_classes=5", "--train_steps=5", "--log_every_steps=5",
       "--model_dir=" + model_dir] + list(extra),
      capture_output=True, text=True, timeout=900, cwd=REPO, check=False,
      env=dict(os.environ, PYTHONPATH=REPO))
  if proc.returncode != 0:
    raise RuntimeError("trainer failed: %s" % proc.stderr[-2000:])
  year = time.localtime().tm_year
  for stamp, message in bench_cluster.parse_log_times(proc.stderr, year):
    if message.startswith(progress.FIRST_STEP):
      return stamp - started
  raise RuntimeError("no first step in: %s" % proc.stderr[-2000:])


def startup_by_size(work_dir, s, digits_model, log):
  """{size name: launch->first step s}, and the full check's rate."""
  figures, full = {}, None
  for size_name, size in s["sizes"]:
    directory = os.path.join(work_dir, "size", size_name)
    pattern = write_set(directory, "tfrecord", None, s["size_files"], size)
    on_disk = sum(os.path.getsize(os.path.join(directory, n))
                  for n in os.listdir(directory))
    times = [first_step_s(pattern, os.path.join(work_dir, "size-model-%d" % r),
                          digits_model) for r in range(s["repeats"])]
    figures[size_name] = {"bytes": on_disk,
                          "first_step_s": statistics.median(times)}
    log("launch->first step with %s (%d bytes): %.1f s" % (
        size_name, on_disk, figures[size_name]["first_step_s"]))
    if size_name == s["full_check_size"]:
      files = data.expand([pattern], "train_files")
      checked = validate.check(files, _config(files), 5, "train_files",
                               mode=validate.FULL, log=lambda line: None)
      full = {"bytes": checked.bytes, "seconds": checked.seconds,
              "mb_per_s": checked.bytes / MB / checked.seconds}
      log("full check of %s: %.0f MB/s" % (size_name, full["mb_per_s"]))
    shutil.rmtree(directory)
    for r in range(s["repeats"]):
      shutil.rmtree(os.path.join(work_dir, "size-model-%d" % r),
                    ignore_errors=True)
  return figures, full


def _cluster_on(pattern, work_dir, s, name, num_workers, flags):
  """bench_cluster.cluster_figures of the demo's model training on the
  files of `pattern`, with `flags`."""
  return bench_cluster.cluster_figures(
      work_dir, name, num_workers, s["shard_steps"], s["batch_size"],
      trainer_args=[
          # The demo's model on these files (a data flag alone is not the
          # demo: trainer/config/demo.py).
          "--module_handle=demo_assets/models/digits", "--trainable",
          "--input_map=inputs=pixels", "--n_classes=5",
          "--train_files=" + pattern, "--eval_files="] + list(flags))


def _median_rate(rates, work_dir, name):
  """The median of the clusters' rates that could be measured; an error
  naming their logs where none could (too few progress reports)."""
  measured = [rate for rate in rates if rate]
  if not measured:
    raise RuntimeError(
        "no steady rate in any run of %s: too few progress reports (more "
        "steps would give more); see %s" % (
            name, os.path.join(work_dir, name + "-*.out")))
  return statistics.median(measured)


def sharding(work_dir, s, has_estimator, log):
  """Steps/s of a chief + 1 worker Estimator cluster on 64 files, sharded
  and not; None where TF has no Estimator (the Keras backend's workers
  cannot shard: trainer/inputs/data_share.py)."""
  if not has_estimator:
    return None
  pattern = write_set(os.path.join(work_dir, "shards"), "tfrecord", None, 64,
                      s["throughput_bytes"])
  figures = {}
  for flag in ("--shard_files", "--noshard_files"):
    rates = [_cluster_on(pattern, work_dir, s, "shard-%s-%d" % (flag[2:], r),
                         1, ["--backend=estimator", flag])["examples_per_s"]
             for r in range(s["repeats"])]
    figures[flag[2:]] = _median_rate(rates, work_dir, "shard-%s" % flag[2:]
                                     ) / s["batch_size"]
    log("2-task cluster %s: %.1f steps/s" % (flag, figures[flag[2:]]))
  shutil.rmtree(os.path.join(work_dir, "shards"))
  return figures


def keras_reads(work_dir, s, log):
  """{data_service, nodata_service: {steps_per_s, first_step_s}} of a Keras
  cluster with 2 workers on 64 files (medians of the repeats)."""
  pattern = write_set(os.path.join(work_dir, "keras-reads"), "tfrecord",
                      None, 64, s["throughput_bytes"])
  figures = {}
  for flag in ("--data_service", "--nodata_service"):
    runs = [_cluster_on(pattern, work_dir, s, "reads-%s-%d" % (flag[2:], r),
                        2, ["--backend=keras", flag])
            for r in range(s["repeats"])]
    figures[flag[2:]] = {
        "steps_per_s": _median_rate(
            [f["examples_per_s"] for f in runs], work_dir,
            "reads-%s" % flag[2:]) / s["batch_size"],
        "first_step_s": statistics.median(f["first_step_s"] for f in runs)}
    log("Keras cluster, 2 workers, %s: %.1f steps/s, first step at %.1f s"
        % (flag, figures[flag[2:]]["steps_per_s"],
           figures[flag[2:]]["first_step_s"]))
  shutil.rmtree(os.path.join(work_dir, "keras-reads"))
  return figures


def settings(quick: bool, smoke: bool) -> dict:
  if smoke:
    return dict(throughput_bytes=2 * MB, input_batch=256, input_batches=20,
                repeats=1, sizes=(("2MB", 2 * MB), ("20MB", 20 * MB)),
                # 300 steps: a Keras chief's first report can come at step
                # 40 (its steps are scheduled ahead), and with 100 steps a
                # loaded CI machine left too few reports for a rate.
                full_check_size="20MB", size_files=4, shard_steps=300,
                batch_size=32, smoke=True)
  return dict(throughput_bytes=64 * MB if quick else 256 * MB,
              input_batch=256, input_batches=400 if quick else 2000,
              repeats=3 if quick else 5,
              sizes=(("2MB", 2 * MB), ("200MB", 200 * MB),
                     ("2GB", 2000 * MB)),
              full_check_size="200MB", size_files=16,
              shard_steps=1500 if quick else 4000, batch_size=32,
              smoke=False)


def run(work_dir, s, digits_model, has_estimator, log=print) -> dict:
  """Every figure of this part, and the ratios the targets are about."""
  figures = {"data_input": throughput(work_dir, s, log)}
  figures["data_first_step"], figures["data_full_check"] = startup_by_size(
      work_dir, s, digits_model, log)
  small, large = s["sizes"][0][0], s["sizes"][-1][0]
  figures["data_first_step_largest_vs_smallest"] = (
      figures["data_first_step"][large]["first_step_s"] /
      figures["data_first_step"][small]["first_step_s"])
  for key in ("pipeline_vs_raw", "pipeline_vs_raw_shuffled",
              "pipeline_unshuffled_vs_raw", "service_vs_raw",
              "service_vs_pipeline"):
    figures["data_%s_min" % key] = min(
        f[key] for f in figures["data_input"].values())
  figures["data_sharding_steps_per_s"] = sharding(work_dir, s, has_estimator,
                                                  log)
  reads = None
  if not (s["smoke"] and has_estimator):
    reads = keras_reads(work_dir, s, log)
  figures["data_keras_reads"] = reads
  figures["data_keras_service_vs_independent_steps"] = (
      reads["data_service"]["steps_per_s"] /
      reads["nodata_service"]["steps_per_s"] if reads else None)
  return figures


def main():
  # pylint: disable=g-import-not-at-top
  import argparse
  import json
  from example_kit import assets as assets_lib
  from trainer.config import backends
  # pylint: enable=g-import-not-at-top
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--smoke", action="store_true")
  parser.add_argument("--json", default="")
  parser.add_argument("--work_dir", default="")
  args = parser.parse_args()
  tf.get_logger().setLevel("ERROR")
  work_dir = os.path.abspath(args.work_dir or tempfile.mkdtemp(
      prefix="hub-bench-data-"))
  assets = assets_lib.prepare(os.path.join(work_dir, "demo_assets"))
  figures = run(work_dir, settings(args.quick, args.smoke),
                assets.digits_model,
                backends.choose_here("auto").name == backends.ESTIMATOR)
  if args.json:
    with open(args.json, "w") as f:
      json.dump(figures, f, indent=2, sort_keys=True)
  print(json.dumps(figures, indent=2, sort_keys=True))


if __name__ == "__main__":
  main()
