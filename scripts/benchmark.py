r"""Measures the harness against the raw compute limit, side by side.

  python -m scripts.benchmark --quick --json=bench.json --plot=bench.png

On the same hub model (the demo's digits model, fine-tuned), batch and
data, in one run:

1. raw: a TF2 `tf.function` training step in one process (hub.load, the
   same head, loss and optimizer), steady state after warm-up;
2. estimator: the trainer's Estimator in one process, steady state (graph
   building and checkpoint restore, and the final save, reported apart);
3. cluster_1w / cluster_2w: `python -m cluster.local` with 1 ps and 1 or 2
   training processes (the chief trains, so "1 worker" is the chief alone
   and "2 workers" is the chief plus one worker), examples per second of
   the whole cluster (global steps x batch), steady state;
4. the cluster's time from launch to its first training step, and to the
   end; and launch to first step again in `startup_rounds` pairs of an
   Estimator cluster and a Keras cluster launched one after the other
   (bench_cluster.startup_rounds), reported as the median of the pairs'
   ratios;
5. how long the launcher takes to notice a SIGKILLed chief and stop the
   cluster;
6. the raw step again, as a tight loop (100 steps inside one tf.function
   call): the real limit, without per-step Python dispatch;
7. the embedding curve: the example text model with 10k, 100k and 1M
   rows, fine-tuned with the default optimizer (lazy_adam) and with dense
   adam in one process, and on a local cluster with 2 ps; start-up, final
   save, export and evaluation times, and the bytes on each ps;
8. the data at scale (bench_data.py, its doc): the input pipeline against
   a raw tf.data read, launch to first step by data size, the full data
   check's rate, and file sharding on a 2-task cluster.

Every figure is the median of --repeats runs (the curve: one run per point);
the table says so. The JSON file holds every figure, the ratios
(estimator_vs_raw, estimator_vs_raw_tight, cluster_vs_estimator,
scaling_2w_vs_1w, embedding_1m_vs_10k: steps/s at 1M rows / at 10k, one
process, the default optimizer), the curve, the TF version, core count and
model. Parts: bench_process.py (in this process), bench_cluster.py
(launched clusters).
"""

import dataclasses
import json
import multiprocessing
import os
import statistics
import tempfile
import time

from absl import app
from absl import flags

import tensorflow as tf

from example_kit import assets as assets_lib
from harness import cli
from scripts import bench_cluster
from scripts import bench_data
from scripts import bench_keras
from scripts import bench_plot
from scripts import bench_process
from scripts import bench_split
from trainer.config import backends
from trainer.config import job as job_lib
from trainer.plan import preflight


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  """The benchmark's flags (defined by main, not on import)."""
  flags.DEFINE_bool("quick", False, "Fewer steps and repeats: about 22 "
                    "minutes on 2 cores (1,311-1,372 s on 2026-12-07).",
                    flag_values=fv)
  flags.DEFINE_bool("smoke", False, "A few steps, one repeat, one small "
                    "embedding table (4k rows, not 10k to 1M, so the curve's "
                    "1M / 10k ratios divide a point by itself; the text "
                    "model's vocabulary has about 2k words): checks that "
                    "every figure is produced (for tests); its figures "
                    "measure nothing.", flag_values=fv)
  flags.DEFINE_integer("repeats", None, "Runs per figure (median reported); "
                       "default 3, 1 with --smoke.", flag_values=fv)
  flags.DEFINE_integer("batch_size", 32, "Examples per step.",
                       flag_values=fv)
  flags.DEFINE_string("json", "", "Write every figure to this JSON file.",
                      flag_values=fv)
  flags.DEFINE_string("plot", "", "Draw the figures to this PNG file (needs "
                      "matplotlib: the `bench` extra).", flag_values=fv)
  flags.DEFINE_string("work_dir", "", "Where models, data and runs go; "
                      "empty: a temporary directory.", flag_values=fv)

def settings(quick: bool, smoke: bool, repeats=None) -> dict:
  if smoke:
    plan = dict(raw_steps=30, estimator_steps=60, cluster_steps=300,
                warmup=10, repeats=1, table_sizes=(4000,),
                text_steps=60, text_cluster_steps=100, keras_steps=200,
                steps_per_execution=(10,), demo_seeds=1, startup_rounds=1,
                startup_steps=20,
                split_model="example_kit.wide_model:build_small")
    plan["data"] = bench_data.settings(quick=False, smoke=True)
  elif quick:
    plan = dict(raw_steps=3000, estimator_steps=3000, cluster_steps=1500,
                warmup=100, repeats=3, table_sizes=(10000, 100000, 1000000),
                text_steps=1500, text_cluster_steps=1000, keras_steps=3000,
                steps_per_execution=(1, 10, 50), demo_seeds=5,
                startup_rounds=7, startup_steps=100,
                split_model="example_kit.wide_model:build")
    plan["data"] = bench_data.settings(quick=True, smoke=False)
  else:
    plan = dict(raw_steps=10000, estimator_steps=10000, cluster_steps=4000,
                warmup=200, repeats=5, table_sizes=(10000, 100000, 1000000),
                text_steps=5000, text_cluster_steps=3000, keras_steps=10000,
                steps_per_execution=(1, 5, 10, 20, 50, 100), demo_seeds=5,
                startup_rounds=9, startup_steps=100,
                split_model="example_kit.wide_model:build")
    plan["data"] = bench_data.settings(quick=False, smoke=False)
  if repeats:
    plan["repeats"] = repeats
  plan["smoke"] = smoke
  return plan


def median(values):
  values = [v for v in values if v is not None]
  return statistics.median(values) if values else None


HAS_ESTIMATOR = backends.choose_here("auto").name == backends.ESTIMATOR


def embedding_curve(s, work_dir, assets, batch_size, log):
  """Steps/s against table size, on each backend: one process (the
  default optimizer; and on the Estimator dense Adam, side by side), a
  local cluster with 2 ps; where else the table's size shows (start-up,
  final save, export, evaluation); and the bytes on each of 2 ps. One run
  per point."""
  paths = bench_process.build_text_models(work_dir, s["table_sizes"], log)
  curve = {"one_process": {}, "dense_adam": {}, "cluster_2ps": {},
           "phases": {}, "ps_bytes": {}, "keras_one_process": {},
           "keras_cluster_2ps": {}}
  text_args = lambda path: [
      "--module_handle=" + path, "--trainable", "--n_classes=5",
      "--train_files=" + assets.data("text_train.csv"),
      "--input_map=inputs=text", "--novalidate_data",
      "--save_checkpoints_steps=%d" % (10 * s["text_cluster_steps"])]
  for rows, path in paths.items():
    log("embedding table of %d rows" % rows)
    plan = bench_process.text_plan(path, assets, batch_size, "lazy_adam",
                                   work_dir)
    rate = bench_keras.keras_figures(
        plan, batch_size, s["text_steps"],
        os.path.join(work_dir, "text-keras-%d" % rows),
        job_lib.default(job_lib.RunOptions, "steps_per_execution"))[
            "examples_per_s"]
    curve["keras_one_process"][rows] = rate / batch_size if rate else None
    # Checkpoints at the start and the end only: the rate between saves (a
    # save's own cost grows with the table; it is a phase of its own).
    cluster = bench_cluster.cluster_figures(
        work_dir, "text-keras-cluster-%d" % rows, 1, s["text_cluster_steps"],
        batch_size, num_ps=2, trainer_args=text_args(path) + [
            "--backend=keras"])
    rate = cluster["examples_per_s"]
    curve["keras_cluster_2ps"][rows] = rate / batch_size if rate else None
    if not HAS_ESTIMATOR:
      continue
    for optimizer, key in (("lazy_adam", "one_process"),
                           ("adam", "dense_adam")):
      plan = bench_process.text_plan(path, assets, batch_size, optimizer,
                                     work_dir)
      figures = bench_process.estimator_figures(
          plan, batch_size, s["text_steps"], s["warmup"],
          os.path.join(work_dir, "text-%s-%d" % (optimizer, rows)),
          phases=key == "one_process")
      curve[key][rows] = figures.pop("examples_per_s") / batch_size
      if key == "one_process":
        curve["phases"][rows] = figures
        curve["ps_bytes"][rows] = bench_process.ps_bytes(plan)
    cluster = bench_cluster.cluster_figures(
        work_dir, "text-cluster-%d" % rows, 1, s["text_cluster_steps"],
        batch_size, num_ps=2, trainer_args=text_args(path) + [
            "--backend=estimator"])
    rate = cluster["examples_per_s"]
    curve["cluster_2ps"][rows] = rate / batch_size if rate else None
  return curve


def run_all(plan_settings, work_dir, batch_size, log=print):
  """Every figure, each the median of the repeats (the curve: one run).
  Where TF has no tf.estimator, the Estimator's figures are None."""
  s = plan_settings
  # Where the demo (the clusters below run it) finds its models and data.
  assets = assets_lib.prepare(os.path.join(work_dir, "demo_assets"), log=log)
  plan = preflight.check(job_lib.JobConfig(
      model=job_lib.ModelOptions(assets.digits_model, trainable=True),
      head=job_lib.HeadConfig(n_classes=5),
      data=job_lib.DataOptions(
          train_files=[assets.data("digits_train.tfrecord")],
          eval_files=[assets.data("digits_eval.tfrecord")],
          batch_size=batch_size, input_map={"inputs": "pixels"},
          validate_data="off"),
      model_dir=os.path.join(work_dir, "unused")), log=log)
  runs = {"raw": [], "raw_tight": [], "estimator": [], "cluster_1w": [],
          "cluster_2w": [], "chief_death_detect_s": [], "keras": [],
          "keras_cluster_2w": [], "keras_chief_death_detect_s": [],
          "startup_rounds": []}
  keras_flag = ["--backend=keras"]
  for r in range(s["repeats"]):
    log("repeat %d of %d" % (r + 1, s["repeats"]))
    runs["raw"].append(bench_process.raw_rate(
        plan, assets, batch_size, s["raw_steps"], s["warmup"]))
    runs["raw_tight"].append(bench_process.raw_rate_tight(
        plan, assets, batch_size, s["raw_steps"], s["warmup"]))
    runs["keras"].append(bench_keras.keras_figures(
        plan, batch_size, s["keras_steps"],
        os.path.join(work_dir, "keras-%d" % r),
        job_lib.default(job_lib.RunOptions, "steps_per_execution")))
    # 2 training processes each: the Estimator's chief and a worker; the
    # Keras backend's two workers (its chief only coordinates).
    runs["keras_cluster_2w"].append(bench_cluster.cluster_figures(
        work_dir, "keras-cluster-%d" % r, 2, s["cluster_steps"], batch_size,
        trainer_args=keras_flag))
    runs["keras_chief_death_detect_s"].append(
        bench_cluster.chief_death_detect(
            work_dir, "keras-death-%d" % r, s["cluster_steps"] * 10,
            batch_size, trainer_args=keras_flag))
    if not HAS_ESTIMATOR:
      continue
    runs["estimator"].append(bench_process.estimator_figures(
        plan, batch_size, s["estimator_steps"], s["warmup"],
        os.path.join(work_dir, "estimator-%d" % r)))
    for workers, key in ((0, "cluster_1w"), (1, "cluster_2w")):
      runs[key].append(bench_cluster.cluster_figures(
          work_dir, "%s-%d" % (key, r), workers, s["cluster_steps"],
          batch_size, trainer_args=["--backend=estimator"]))
    runs["chief_death_detect_s"].append(bench_cluster.chief_death_detect(
        work_dir, "death-%d" % r, s["cluster_steps"] * 10, batch_size,
        trainer_args=["--backend=estimator"]))
  if HAS_ESTIMATOR:
    runs["startup_rounds"] = bench_cluster.startup_rounds(
        work_dir, s["startup_rounds"], s["startup_steps"], batch_size, log)
  spe = {}
  for n in s["steps_per_execution"]:
    spe[n] = bench_keras.keras_figures(
        plan, batch_size, s["keras_steps"],
        os.path.join(work_dir, "keras-spe-%d" % n), n)["examples_per_s"]
  accuracy = {}
  # The demo's job (configs/digits.cfg): 300 steps, checkpoints every 100.
  demo_plan = dataclasses.replace(plan, job=dataclasses.replace(
      plan.job, run=dataclasses.replace(
          plan.job.run, train_steps=300, save_checkpoints_steps=100,
          log_every_steps=100)))
  for backend in (["estimator"] if HAS_ESTIMATOR else []) + ["keras"]:
    accuracy[backend] = bench_keras.demo_accuracy(
        demo_plan, backend, range(s["demo_seeds"]),
        lambda seed, b=backend: os.path.join(work_dir, "demo-%s-%d" % (
            b, seed)))
  curve = embedding_curve(s, work_dir, assets, batch_size, log)
  figures = summarize(runs, curve, s, batch_size, tf.version.VERSION,
                      multiprocessing.cpu_count(), assets.digits_model,
                      spe=spe, accuracy=accuracy)
  figures.update(
      bench_split.not_made(s) if s["smoke"] and HAS_ESTIMATOR else
      bench_split.split_table(s, work_dir, assets, batch_size, log))
  figures.update(bench_data.run(work_dir, s["data"], assets.digits_model,
                                HAS_ESTIMATOR, log))
  return figures


def summarize(runs, curve, s, batch_size, tf_version, cores, model,
              spe=None, accuracy=None):
  def med(key, field=None):
    return median([r[field] if field else r for r in runs[key]])
  figures = {
      "raw_examples_per_s": med("raw"),
      "raw_tight_examples_per_s": med("raw_tight"),
      "estimator_examples_per_s": med("estimator", "examples_per_s"),
      "estimator_startup_s": med("estimator", "startup_s"),
      "estimator_final_save_s": med("estimator", "final_save_s"),
      "cluster_1w_examples_per_s": med("cluster_1w", "examples_per_s"),
      "cluster_2w_examples_per_s": med("cluster_2w", "examples_per_s"),
      "cluster_first_step_s": med("cluster_2w", "first_step_s"),
      "cluster_total_s": med("cluster_2w", "total_s"),
      "cluster_export_check_s": med("cluster_2w", "export_check_s"),
      "chief_death_detect_s": med("chief_death_detect_s"),
      "keras_examples_per_s": med("keras", "examples_per_s"),
      "keras_startup_s": med("keras", "startup_s"),
      "keras_cluster_2w_examples_per_s": med("keras_cluster_2w",
                                             "examples_per_s"),
      "keras_cluster_first_step_s": med("keras_cluster_2w", "first_step_s"),
      "keras_cluster_total_s": med("keras_cluster_2w", "total_s"),
      "keras_cluster_export_check_s": med("keras_cluster_2w",
                                          "export_check_s"),
      "keras_chief_death_detect_s": med("keras_chief_death_detect_s"),
  }

  def ratio(a, b):
    return figures[a] / figures[b] if figures[a] and figures[b] else None
  figures.update(
      estimator_vs_raw=ratio("estimator_examples_per_s",
                             "raw_examples_per_s"),
      estimator_vs_raw_tight=ratio("estimator_examples_per_s",
                                   "raw_tight_examples_per_s"),
      cluster_vs_estimator=ratio("cluster_1w_examples_per_s",
                                 "estimator_examples_per_s"),
      scaling_2w_vs_1w=ratio("cluster_2w_examples_per_s",
                             "cluster_1w_examples_per_s"),
      keras_vs_raw_tight=ratio("keras_examples_per_s",
                               "raw_tight_examples_per_s"),
      keras_vs_estimator=ratio("keras_examples_per_s",
                               "estimator_examples_per_s"),
      cluster_keras_vs_estimator=ratio("keras_cluster_2w_examples_per_s",
                                       "cluster_2w_examples_per_s"),
      first_step_keras_vs_estimator=ratio("keras_cluster_first_step_s",
                                          "cluster_first_step_s"),
      first_step_keras_vs_estimator_rounds=median(
          [pair["ratio"] for pair in runs["startup_rounds"]]))
  small, large = min(s["table_sizes"]), max(s["table_sizes"])

  def size_ratio(series):
    points = curve[series]
    return (points[large] / points[small] if points.get(large) and
            points.get(small) else None)
  accuracy = accuracy or {}
  figures.update(
      embedding_table_sizes=list(s["table_sizes"]),
      embedding_steps_per_s=curve["one_process"],
      embedding_dense_adam_steps_per_s=curve["dense_adam"],
      embedding_cluster_2ps_steps_per_s=curve["cluster_2ps"],
      embedding_keras_steps_per_s=curve["keras_one_process"],
      embedding_keras_cluster_2ps_steps_per_s=curve["keras_cluster_2ps"],
      embedding_phases=curve["phases"],
      embedding_ps_bytes=curve["ps_bytes"],
      embedding_1m_vs_10k=size_ratio("one_process"),
      embedding_dense_adam_1m_vs_10k=size_ratio("dense_adam"),
      embedding_cluster_1m_vs_10k=size_ratio("cluster_2ps"),
      keras_embedding_1m_vs_10k=size_ratio("keras_one_process"),
      keras_embedding_cluster_1m_vs_10k=size_ratio("keras_cluster_2ps"),
      keras_steps_per_execution_examples_per_s=spe or {},
      demo_accuracy=accuracy,
      demo_accuracy_estimator=bench_keras.mean(accuracy.get("estimator")),
      demo_accuracy_keras=bench_keras.mean(accuracy.get("keras")))
  figures.update(repeats=s["repeats"], statistic="median", settings=s,
                 batch_size=batch_size, tf_version=tf_version, cores=cores,
                 model="demo digits feature extractor (%s), fine-tuned" %
                 model, runs=runs)
  return figures


def table(figures) -> str:
  rows = [
      ("raw tf.function step", "raw_examples_per_s", "examples/s"),
      ("raw tight loop (100 steps/call)", "raw_tight_examples_per_s",
       "examples/s"),
      ("Estimator, 1 process", "estimator_examples_per_s", "examples/s"),
      ("  start-up (graph, restore)", "estimator_startup_s", "s"),
      ("  final save", "estimator_final_save_s", "s"),
      ("cluster 1 ps + 1 worker", "cluster_1w_examples_per_s", "examples/s"),
      ("cluster 1 ps + 2 workers", "cluster_2w_examples_per_s", "examples/s"),
      ("cluster launch -> first step", "cluster_first_step_s", "s"),
      ("cluster launch -> end", "cluster_total_s", "s"),
      ("  the chief's export check", "cluster_export_check_s", "s"),
      ("dead chief -> cluster stopped", "chief_death_detect_s", "s"),
      ("Estimator / raw", "estimator_vs_raw", "ratio"),
      ("Estimator / raw tight loop", "estimator_vs_raw_tight", "ratio"),
      ("cluster 1w / Estimator", "cluster_vs_estimator", "ratio"),
      ("cluster 2w / 1w", "scaling_2w_vs_1w", "ratio"),
      ("embedding 1M / 10k rows, lazy_adam", "embedding_1m_vs_10k", "ratio"),
      ("embedding 1M / 10k rows, dense adam",
       "embedding_dense_adam_1m_vs_10k", "ratio"),
      ("embedding 1M / 10k rows, cluster 2 ps", "embedding_cluster_1m_vs_10k",
       "ratio"),
      ("Keras backend, 1 process", "keras_examples_per_s", "examples/s"),
      ("  start-up (to the first step)", "keras_startup_s", "s"),
      ("Keras cluster 1 ps + 2 workers", "keras_cluster_2w_examples_per_s",
       "examples/s"),
      ("Keras cluster launch -> first step", "keras_cluster_first_step_s",
       "s"),
      ("Keras cluster launch -> end", "keras_cluster_total_s", "s"),
      ("  the chief's export check", "keras_cluster_export_check_s", "s"),
      ("Keras dead chief -> cluster stopped", "keras_chief_death_detect_s",
       "s"),
      ("Keras / raw tight loop", "keras_vs_raw_tight", "ratio"),
      ("Keras / Estimator, 1 process", "keras_vs_estimator", "ratio"),
      ("Keras / Estimator cluster, 2 trainers", "cluster_keras_vs_estimator",
       "ratio"),
      ("Keras / Estimator cluster, launch -> first step",
       "first_step_keras_vs_estimator", "ratio"),
      ("  the same, launched in pairs (median)",
       "first_step_keras_vs_estimator_rounds", "ratio"),
      ("Keras embedding 1M / 10k, 1 process", "keras_embedding_1m_vs_10k",
       "ratio"),
      ("Keras embedding 1M / 10k, cluster 2 ps",
       "keras_embedding_cluster_1m_vs_10k", "ratio"),
      ("demo accuracy, Estimator (mean)", "demo_accuracy_estimator",
       "ratio"),
      ("demo accuracy, Keras (mean)", "demo_accuracy_keras", "ratio"),
  ]
  lines = ["figure (median of %d runs)            value" % figures["repeats"]]
  for label, key, unit in rows:
    value = figures[key]
    shown = "n/a" if value is None else (
        "%.3f" % value if unit == "ratio" else "%.1f %s" % (value, unit))
    lines.append("%-38s %s" % (label, shown))
  pairs = figures["runs"]["startup_rounds"]
  if pairs:
    lines.append("launch -> first step in pairs, Estimator / Keras s "
                 "(ratio): %s" % "; ".join(
                     "%.1f / %.1f (%.2f)" % (p["estimator"], p["keras"],
                                            p["ratio"]) for p in pairs))
  lines.append("Keras steps_per_execution -> examples/s: %s" % ", ".join(
      "%s: %s" % (n, "n/a" if v is None else "%.0f" % v) for n, v in sorted(
          figures["keras_steps_per_execution_examples_per_s"].items())))
  lines.append("demo accuracy per seed: %s" % "; ".join(
      "%s %s" % (b, ", ".join("%.3f" % v for v in values))
      for b, values in sorted(figures["demo_accuracy"].items())))
  lines.append("embedding curve (steps/s, one run per point):")
  lines.append("  %10s %10s %10s %12s %10s %12s" % (
      "rows", "lazy_adam", "adam", "cluster 2ps", "keras", "keras 2ps"))
  for rows in figures["embedding_table_sizes"]:
    points = [figures[k].get(rows) for k in (
        "embedding_steps_per_s", "embedding_dense_adam_steps_per_s",
        "embedding_cluster_2ps_steps_per_s", "embedding_keras_steps_per_s",
        "embedding_keras_cluster_2ps_steps_per_s")]
    lines.append("  %10d %10s %10s %12s %10s %12s" % ((rows,) + tuple(
        "n/a" if p is None else "%.1f" % p for p in points)))
  for rows in figures["embedding_table_sizes"]:
    phases = figures["embedding_phases"].get(rows)
    if not phases:
      continue
    lines.append("  %d rows: start-up %.1f s, checkpoint save %.2f s, "
                 "restore %.2f s, export %.2f s, eval %.2f s; ps bytes %s" % (
                     rows, phases["startup_s"], phases["checkpoint_save_s"],
                     phases["checkpoint_restore_s"], phases["export_s"],
                     phases["eval_s"], ", ".join(
                         "%s %.1f MB" % (task, n / 1e6) for task, n in
                         sorted(figures["embedding_ps_bytes"][rows].items()))))
  lines += bench_split.split_lines(figures)
  lines += data_table(figures)
  lines.append("TF %s, %d cores, batch %d" % (
      figures["tf_version"], figures["cores"], figures["batch_size"]))
  return "\n".join(lines)


def data_table(figures):
  """The data part's lines (scripts/bench_data.py)."""
  lines = ["input pipeline, examples/s; pipeline / raw; / raw with the "
           "same shuffle; --shuffle_buffer=0 / raw; through the tf.data "
           "service / raw, / pipeline:"]
  for name, f in sorted(figures["data_input"].items()):
    lines.append("  %-22s %9.0f  %.3f  %.3f  %.3f  %.3f  %.3f" % (
        name, f["pipeline_examples_per_s"], f["pipeline_vs_raw"],
        f["pipeline_vs_raw_shuffled"], f["pipeline_unshuffled_vs_raw"],
        f["service_vs_raw"], f["service_vs_pipeline"]))
  lines.append("launch -> first step by data size: %s; largest / smallest "
               "%.3f" % (", ".join(
                   "%s %.1f s" % (name, f["first_step_s"]) for name, f in
                   sorted(figures["data_first_step"].items(),
                          key=lambda item: item[1]["bytes"])),
                         figures["data_first_step_largest_vs_smallest"]))
  lines.append("full data check: %.0f MB/s" %
               figures["data_full_check"]["mb_per_s"])
  sharding = figures["data_sharding_steps_per_s"]
  lines.append("2-task cluster, 64 files: %s" % (
      "sharded %.1f, not sharded %.1f steps/s" % (
          sharding["shard_files"], sharding["noshard_files"])
      if sharding else "n/a (no tf.estimator)"))
  reads = figures["data_keras_reads"]
  lines.append("Keras cluster, 2 workers, 64 files: %s" % (
      "tf.data service %.1f steps/s (first step %.1f s), every worker every "
      "file %.1f (%.1f s); ratio %.3f" % (
          reads["data_service"]["steps_per_s"],
          reads["data_service"]["first_step_s"],
          reads["nodata_service"]["steps_per_s"],
          reads["nodata_service"]["first_step_s"],
          figures["data_keras_service_vs_independent_steps"])
      if reads else "n/a (the smoke run makes it where TF has no "
      "tf.estimator)"))
  return lines


def main(argv):
  del argv  # Unused.
  fv = flags.FLAGS
  tf.get_logger().setLevel("ERROR")
  started = time.monotonic()
  plt = bench_plot.pyplot() if fv.plot else None
  plan_settings = settings(fv.quick, fv.smoke, fv.repeats)
  work_dir = fv.work_dir or tempfile.mkdtemp(prefix="hub-bench-")
  os.makedirs(work_dir, exist_ok=True)
  figures = run_all(plan_settings, os.path.abspath(work_dir), fv.batch_size)
  figures["benchmark_wall_s"] = time.monotonic() - started
  print(table(figures))
  print("benchmark took %.0f s; runs in %s" % (figures["benchmark_wall_s"],
                                               work_dir))
  if fv.json:
    with open(fv.json, "w") as f:
      json.dump(figures, f, indent=2, sort_keys=True)
  if fv.plot:
    bench_plot.plot(figures, fv.plot, plt)


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=cli.parse_flags_or_exit)
