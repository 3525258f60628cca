"""scripts/benchmark.py: a smoke run produces every figure (never a speed).

The scripts run as `python -m scripts.benchmark` from the clone's root, as
docs/performance.md shows."""

import datetime
import json
import os
import statistics
import subprocess
import sys

import pytest

from scripts import bench_cluster
from scripts import benchmark
from tests import backend_jobs
from tests import processes

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARK = [sys.executable, "-m", "scripts.benchmark"]

# Every run's figures: the raw limit and the Keras backend (any TF).
FIGURES = ["raw_examples_per_s", "raw_tight_examples_per_s",
           "keras_examples_per_s", "keras_startup_s",
           "keras_cluster_2w_examples_per_s", "keras_cluster_first_step_s",
           "keras_cluster_total_s", "keras_cluster_export_check_s",
           "keras_chief_death_detect_s", "keras_vs_raw_tight", "keras_embedding_1m_vs_10k",
           "keras_embedding_cluster_1m_vs_10k", "demo_accuracy_keras",
           "data_first_step_largest_vs_smallest", "data_pipeline_vs_raw_min",
           "data_pipeline_vs_raw_shuffled_min",
           "data_pipeline_unshuffled_vs_raw_min", "data_service_vs_raw_min",
           "data_service_vs_pipeline_min"]
# The split table's: the smoke run makes it where TF has no tf.estimator
# (None where it has one; CI runs it once, on the other stack).
SPLIT_FIGURES = ["split_ps_rss_max_vs_min", "whole_ps_rss_max_vs_min",
                 "split_2ps_vs_1ps_steps"]
# The Estimator's, where TF has it (None where not), and the ratios between
# the two backends.
ESTIMATOR_FIGURES = [
    "estimator_examples_per_s", "estimator_startup_s",
    "estimator_final_save_s", "cluster_1w_examples_per_s",
    "cluster_2w_examples_per_s", "cluster_first_step_s", "cluster_total_s",
    "cluster_export_check_s",
    "chief_death_detect_s", "estimator_vs_raw", "estimator_vs_raw_tight",
    "cluster_vs_estimator", "scaling_2w_vs_1w", "embedding_1m_vs_10k",
    "embedding_dense_adam_1m_vs_10k", "embedding_cluster_1m_vs_10k",
    "keras_vs_estimator", "cluster_keras_vs_estimator",
    "first_step_keras_vs_estimator", "first_step_keras_vs_estimator_rounds",
    "demo_accuracy_estimator"]


@pytest.mark.cluster
@pytest.mark.timeout(1800)  # About 5 min alone, 14 beside other tests.
def test_smoke_run_produces_every_figure(tmp_path):
  path = tmp_path / "bench.json"
  proc = subprocess.run(
      BENCHMARK + [
       "--smoke", "--work_dir=" + str(tmp_path / "work"), "--json=" +
       str(path)], capture_output=True, text=True, timeout=1500, check=False,
      cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO))
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  figures = json.loads(path.read_text())
  estimator = backend_jobs.ESTIMATOR_HERE
  for key in FIGURES + (ESTIMATOR_FIGURES if estimator else SPLIT_FIGURES):
    assert isinstance(figures[key], float), (key, figures[key],
                                             proc.stdout[-3000:])
    assert figures[key] > 0, (key, figures[key])  # A rate, time or ratio.
  for key in SPLIT_FIGURES + ["split_table"] if estimator else (
      ESTIMATOR_FIGURES):
    assert figures[key] is None, (key, figures[key])
  # Each ratio is the quotient of the figures it names, measured in the run.
  ratios = {"keras_vs_raw_tight": ("keras_examples_per_s",
                                   "raw_tight_examples_per_s")}
  if estimator:
    ratios.update(
        estimator_vs_raw=("estimator_examples_per_s", "raw_examples_per_s"),
        cluster_vs_estimator=("cluster_1w_examples_per_s",
                              "estimator_examples_per_s"),
        scaling_2w_vs_1w=("cluster_2w_examples_per_s",
                          "cluster_1w_examples_per_s"),
        keras_vs_estimator=("keras_examples_per_s",
                            "estimator_examples_per_s"),
        first_step_keras_vs_estimator=("keras_cluster_first_step_s",
                                       "cluster_first_step_s"))
  for ratio, (top, bottom) in ratios.items():
    assert figures[ratio] == pytest.approx(figures[top] / figures[bottom]), (
        ratio)
  assert figures["keras_cluster_first_step_s"] < figures[
      "keras_cluster_total_s"]
  if estimator:  # Launched in pairs: each pair's ratio, and their median.
    pairs = figures["runs"]["startup_rounds"]
    assert len(pairs) == benchmark.settings(
        quick=False, smoke=True)["startup_rounds"]
    for pair in pairs:
      assert pair["ratio"] == pytest.approx(pair["keras"] / pair[
          "estimator"])
    assert figures["first_step_keras_vs_estimator_rounds"] == pytest.approx(
        statistics.median(pair["ratio"] for pair in pairs))
  assert 0 <= figures["demo_accuracy_keras"] <= 1
  tables = benchmark.settings(quick=False, smoke=True)["table_sizes"]
  assert figures["embedding_table_sizes"] == list(tables)
  for rows in map(str, tables):
    assert isinstance(figures["embedding_keras_steps_per_s"][rows], float)
    assert isinstance(figures["embedding_keras_cluster_2ps_steps_per_s"][
        rows], float)
    if estimator:
      assert isinstance(figures["embedding_steps_per_s"][rows], float)
      assert set(figures["embedding_phases"][rows]) == {
          "startup_s", "final_save_s", "export_s", "eval_s",
          "checkpoint_save_s", "checkpoint_restore_s"}
      assert set(figures["embedding_ps_bytes"][rows]) == {"ps-0", "ps-1"}
  assert set(figures["keras_steps_per_execution_examples_per_s"]) == {"10"}
  assert [len(v) for v in figures["demo_accuracy"].values()] == (
      [1, 1] if estimator else [1])
  assert all(0 <= a <= 1 for v in figures["demo_accuracy"].values()
             for a in v)
  # The table of your model (where made): each run's rate, each ps's peak
  # memory and placed bytes; split, both ps hold some of it; whole, one
  # holds the table.
  if estimator:
    assert "a table of your model: n/a" in proc.stdout
  else:
    _check_split_table(figures, proc.stdout)
  # The data part: every format and file count, both sizes, the check.
  assert set(figures["data_input"]) == {
      "%s_%s" % (name, files) for name in ("tfrecord", "gzip_tfrecord", "csv")
      for files in ("1file", "64files")}
  for f in figures["data_input"].values():
    assert f["pipeline_examples_per_s"] > 0 and f["raw_examples_per_s"] > 0
    assert f["pipeline_vs_raw"] == pytest.approx(
        f["pipeline_examples_per_s"] / f["raw_examples_per_s"])
    assert f["service_vs_pipeline"] == pytest.approx(
        f["service_examples_per_s"] / f["pipeline_examples_per_s"])
  sizes = figures["data_first_step"]
  assert sizes["20MB"]["bytes"] >= 9 * sizes["2MB"]["bytes"]
  assert all(f["first_step_s"] > 0 for f in sizes.values())
  assert figures["data_full_check"]["bytes"] == sizes["20MB"]["bytes"]
  sharding = figures["data_sharding_steps_per_s"]
  assert (set(sharding) == {"shard_files", "noshard_files"} if estimator
          else sharding is None)
  # The Keras cluster's reads, with the service and without: the smoke run
  # makes the pair where the Estimator's sharding pair is not made.
  reads = figures["data_keras_reads"]
  if estimator:
    assert reads is None
    assert figures["data_keras_service_vs_independent_steps"] is None
  else:
    assert set(reads) == {"data_service", "nodata_service"}
    assert all(f["steps_per_s"] > 0 and f["first_step_s"] > 0
               for f in reads.values()), reads
    assert figures["data_keras_service_vs_independent_steps"] == (
        pytest.approx(reads["data_service"]["steps_per_s"] /
                      reads["nodata_service"]["steps_per_s"]))
    assert "Keras cluster, 2 workers, --nodata_service:" in proc.stdout
  assert "launch -> first step by data size: 2MB" in proc.stdout
  assert figures["statistic"] == "median" and figures["repeats"] == 1
  assert figures["cores"] >= 1
  assert figures["tf_version"].startswith("2.15" if estimator else "2.")
  assert "figure (median of 1 runs)" in proc.stdout


def _check_split_table(figures, stdout):
  split = figures["split_table"]
  assert set(split) == {"1ps", "2ps_split", "2ps_whole"}
  for name, f in split.items():
    assert f["steps_per_s"] > 0, name
    assert len(f["ps_peak_rss_mb"]) == len(f["ps_placed_kb"]) == (
        1 if name == "1ps" else 2), (name, f)
    assert all(mb > 0 for mb in f["ps_peak_rss_mb"].values()), (name, f)
  assert min(split["2ps_split"]["ps_placed_kb"].values()) > 500
  # Whole, the wide table (1,250 KB) sits on one ps; by size
  # (trainer.keras.placement), the hub's table and the head on the other.
  whole = split["2ps_whole"]["ps_placed_kb"].values()
  assert max(whole) > 1000 and min(whole) < 0.2 * max(whole), whole
  peaks = split["2ps_split"]["ps_peak_rss_mb"].values()
  assert figures["split_ps_rss_max_vs_min"] == pytest.approx(
      max(peaks) / min(peaks))
  assert figures["split_2ps_vs_1ps_steps"] == pytest.approx(
      split["2ps_split"]["steps_per_s"] / split["1ps"]["steps_per_s"])
  assert "a table of your model (example_kit.wide_model:build_small)" in (
      stdout)


def test_log_times_and_steady_rate():
  year = datetime.date.today().year
  text = ("I1125 10:00:00.000000 1 progress.py:64] step 10/100  loss 1\n"
          "noise\n"
          "I1125 10:00:02.500000 1 progress.py:64] step 60/100  loss 1\n"
          "I1125 10:00:05.000000 1 progress.py:64] step 110/100  loss 1\n")
  parsed = list(bench_cluster.parse_log_times(text, year))
  assert [m for _, m in parsed] == ["step 10/100  loss 1",
                                    "step 60/100  loss 1",
                                    "step 110/100  loss 1"]
  assert parsed[1][0] - parsed[0][0] == pytest.approx(2.5)
  points = [(t, int(bench_cluster.STEP.match(m).group(1)))
            for t, m in parsed]
  assert bench_cluster.steady_rate(points, skip=1) == pytest.approx(20.0)
  assert bench_cluster.steady_rate(points[:1]) is None


@pytest.mark.slow
def test_plot_without_matplotlib_is_refused_before_any_run(tmp_path):
  """--plot is checked first: a missing matplotlib is one line at the start,
  not an error after the whole benchmark. The `test` extra installs
  matplotlib (for tuning's plot), so the benchmark runs here as it would
  without it: in a process where importing matplotlib fails."""
  without = ("import runpy, sys\n"
             "sys.modules['matplotlib'] = None  # import matplotlib fails\n"
             "sys.argv[0] = 'benchmark'\n"
             "runpy.run_module('scripts.benchmark', run_name='__main__')\n")
  proc = subprocess.run(
      [sys.executable, "-c", without, "--smoke",
       "--plot=" + str(tmp_path / "b.png"),
       "--work_dir=" + str(tmp_path / "work")], capture_output=True,
      text=True, timeout=120, check=False,
      cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO))
  assert proc.returncode == 1, proc.stderr[-3000:]
  assert proc.stderr.strip().splitlines()[-1].startswith(
      "error: --plot needs matplotlib, which the `bench` extra installs")
  assert not os.path.exists(tmp_path / "work")


def test_the_resident_memory_of_a_process_tree_counts_its_children():
  """bench_cluster.tree_rss_bytes: a parent holding little and a child
  holding 200 MB count as 200 MB or more; a process gone counts 0."""
  holder = "import sys; b = bytearray(200 << 20); sys.stdin.read()"
  parent = subprocess.Popen(
      [sys.executable, "-c",
       "import subprocess, sys; subprocess.run([sys.executable, '-c', %r])"
       % holder], stdin=subprocess.PIPE)
  try:
    assert processes.wait_until(
        lambda: bench_cluster.tree_rss_bytes(parent.pid) > 200 << 20, 30)
  finally:
    parent.communicate(b"", timeout=30)
  assert bench_cluster.tree_rss_bytes(parent.pid) == 0

