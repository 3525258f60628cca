r"""Measures the harness against the raw compute limit, side by side.

  python scripts/benchmark.py --quick --json=bench.json --plot=bench.png

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
   end;
5. how long the launcher takes to notice a SIGKILLed chief and stop the
   cluster.

Every figure is the median of --repeats runs; the table says so. The JSON
file holds every figure, the ratios (estimator_vs_raw,
cluster_vs_estimator, scaling_2w_vs_1w), cluster_first_step_s,
chief_death_detect_s, the TF version, core count and model.
"""

import dataclasses
import datetime
import json
import multiprocessing
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # Run from a clone without installing, too.

# pylint: disable=g-import-not-at-top,wrong-import-position
import tensorflow as tf
import tensorflow_hub as hub

from cluster import local
from example_kit import assets as assets_lib
from harness import cli
from trainer import job as job_lib
from trainer import preflight
from trainer import progress
from trainer import train
# pylint: enable=g-import-not-at-top,wrong-import-position


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  """The benchmark's flags (defined by main, not on import)."""
  flags.DEFINE_bool("quick", False, "Fewer steps and repeats: under five "
                    "minutes on 2 cores.", flag_values=fv)
  flags.DEFINE_bool("smoke", False, "A few steps, one repeat: checks that "
                    "every figure is produced (for tests).", flag_values=fv)
  flags.DEFINE_integer("repeats", None, "Runs per figure (median reported); "
                       "default 3, 1 with --smoke.", flag_values=fv)
  flags.DEFINE_integer("batch_size", 32, "Examples per step.",
                       flag_values=fv)
  flags.DEFINE_string("json", "", "Write every figure to this JSON file.",
                      flag_values=fv)
  flags.DEFINE_string("plot", "", "Draw the figures to this PNG file (needs "
                      "matplotlib).", flag_values=fv)
  flags.DEFINE_string("work_dir", "", "Where models, data and runs go; "
                      "empty: a temporary directory.", flag_values=fv)

# absl log line: I1125 18:33:40.483590 1399... file.py:64] message
_LOG_LINE = re.compile(r"^[IWEF](\d\d)(\d\d) (\d\d):(\d\d):(\d\d\.\d+) .*?\] "
                       r"(.*)$")
_STEP = re.compile(r"^step (\d+)/\d+ ")


def settings(quick: bool, smoke: bool, repeats=None) -> dict:
  if smoke:
    plan = dict(raw_steps=30, estimator_steps=60, cluster_steps=300,
                warmup=10, repeats=1)
  elif quick:
    plan = dict(raw_steps=3000, estimator_steps=3000, cluster_steps=1500,
                warmup=100, repeats=3)
  else:
    plan = dict(raw_steps=10000, estimator_steps=10000, cluster_steps=4000,
                warmup=200, repeats=5)
  if repeats:
    plan["repeats"] = repeats
  return plan


def parse_log_times(text: str, year: int):
  """(seconds since the epoch, message) for each absl log line of `text`."""
  for line in text.splitlines():
    match = _LOG_LINE.match(line)
    if match:
      month, day, hour, minute, second, message = match.groups()
      stamp = datetime.datetime(year, int(month), int(day), int(hour),
                                int(minute)) + datetime.timedelta(
                                    seconds=float(second))
      yield stamp.timestamp(), message


def steady_rate(points, skip: int = 1):
  """Steps per second between the first report after `skip` and the last.

  `points` are (time, global step) pairs in order; the first `skip` reports
  are warm-up.
  """
  points = points[skip:]
  if len(points) < 2 or points[-1][0] <= points[0][0]:
    return None
  return (points[-1][1] - points[0][1]) / (points[-1][0] - points[0][0])


def median(values):
  values = [v for v in values if v is not None]
  return statistics.median(values) if values else None


def raw_rate(plan, assets, batch_size, steps, warmup):
  """Examples/s of a hand-written TF2 training step of the same model."""
  loaded = hub.load(assets.digits_model)
  head = tf.Variable(tf.keras.initializers.GlorotUniform(seed=0)([32, 5]))
  bias = tf.Variable(tf.zeros([5]))
  variables = list(loaded.trainable_variables) + [head, bias]
  optimizer = tf.keras.optimizers.Adam(0.01)
  train_input, _ = train.input_fns(plan)
  batches = iter(train_input())

  @tf.function
  def step(features, labels):
    with tf.GradientTape() as tape:
      logits = tf.matmul(loaded(features["inputs"], training=True),
                         head) + bias
      loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
          labels, logits)) + loaded.regularization_losses[0]()
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    return loss

  for _ in range(warmup):
    step(*next(batches)).numpy()
  start = time.perf_counter()
  for _ in range(steps):
    loss = step(*next(batches))
  loss.numpy()
  return steps * batch_size / (time.perf_counter() - start)


class _Timing(tf.estimator.SessionRunHook):
  """Records when each step ended, and when training ended."""

  def __init__(self):
    self.step_times = []
    self.end_time = None

  def after_run(self, run_context, run_values):
    self.step_times.append(time.perf_counter())

  def end(self, session):
    self.end_time = time.perf_counter()


def estimator_figures(plan, batch_size, steps, warmup, model_dir):
  """Steady examples/s of Estimator.train, plus start-up and final save."""
  plan = dataclasses.replace(plan, job=dataclasses.replace(
      plan.job, model_dir=model_dir, run=dataclasses.replace(
          plan.job.run, save_checkpoints_steps=None,
          save_checkpoints_secs=None)))
  estimator = train.estimator_for(plan)
  train_input, _ = train.input_fns(plan)
  timing = _Timing()
  start = time.perf_counter()
  estimator.train(train_input, max_steps=steps, hooks=[timing])
  done = time.perf_counter()
  times = timing.step_times
  return {
      "examples_per_s": (len(times) - 1 - warmup) * batch_size /
                        (times[-1] - times[warmup]),
      "startup_s": times[0] - start,
      "final_save_s": done - timing.end_time,
  }


def launch_cluster(work_dir, name, num_workers, steps, batch_size,
                   extra=()):
  """The demo as a cluster, run in `work_dir` (which holds demo_assets/)."""
  run_dir = os.path.join(work_dir, name)
  command = local.command_line(
      run_dir=run_dir, num_workers=num_workers, num_ps=1, evaluator=False,
      deadline_secs=600, extra=extra,
      trainer_args=["--train_steps=%d" % steps, "--batch_size=%d" % batch_size,
                    "--log_every_steps=%d" % max(steps // 30, 5),
                    "--save_checkpoints_steps=%d" % max(steps // 2, 1)])
  output = open(os.path.join(work_dir, name + ".out"), "w")
  started = time.time()
  process = subprocess.Popen(command, cwd=work_dir, stdout=output,
                             stderr=subprocess.STDOUT,
                             env=dict(os.environ, PYTHONPATH=REPO))
  return process, run_dir, started, output


def task_log(run_dir, task_name):
  path = os.path.join(run_dir, "logs", task_name + ".log")
  if not os.path.exists(path):
    return ""
  with open(path) as f:
    return f.read()


def training_logs(run_dir):
  """The logs of every training task (chief and workers)."""
  names = sorted(n[:-4] for n in os.listdir(os.path.join(run_dir, "logs"))
                 if n.endswith(".log") and n.startswith(("chief", "worker")))
  return [task_log(run_dir, name) for name in names]


def cluster_figures(work_dir, name, num_workers, steps, batch_size):
  """Cluster examples/s (steady), time to first step and to the end.

  The global step is shared, so the progress lines of all training tasks
  form one series of (time, global step).
  """
  process, run_dir, started, output = launch_cluster(
      work_dir, name, num_workers, steps, batch_size)
  code = process.wait(900)
  ended = time.time()
  output.close()
  if code != 0:
    raise RuntimeError("cluster %s failed (exit %d); see %s" % (
        name, code, os.path.join(work_dir, name + ".out")))
  year = datetime.date.today().year
  log = sorted(entry for text in training_logs(run_dir)
               for entry in parse_log_times(text, year))
  first = min(t for t, m in log if m.startswith(progress.FIRST_STEP))
  points = [(t, int(_STEP.match(m).group(1))) for t, m in log
            if _STEP.match(m)]
  rate = steady_rate(points, skip=max(1, len(points) // 5))
  return {"examples_per_s": rate * batch_size if rate else None,
          "first_step_s": first - started, "total_s": ended - started}


def chief_death_detect(work_dir, name, steps, batch_size):
  """Seconds from SIGKILL of the chief to the launcher's exit."""
  process, run_dir, _, output = launch_cluster(
      work_dir, name, 1, steps, batch_size,
      extra=["--restart_policy=never"])
  deadline = time.monotonic() + 300
  while progress.FIRST_STEP not in task_log(run_dir, "chief-0"):
    if time.monotonic() > deadline or process.poll() is not None:
      raise RuntimeError("cluster %s never started training" % name)
    time.sleep(0.05)
  with open(os.path.join(run_dir, "logs", "chief-0.pid")) as f:
    pid = int(f.read())
  os.kill(pid, signal.SIGKILL)
  killed = time.monotonic()
  process.wait(300)
  detected = time.monotonic() - killed
  output.close()
  return detected


def run_all(plan_settings, work_dir, batch_size, log=print):
  """Every figure, each the median of the repeats."""
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
          validate_data=False),
      model_dir=os.path.join(work_dir, "unused")))
  runs = {"raw": [], "estimator": [], "cluster_1w": [], "cluster_2w": [],
          "chief_death_detect_s": []}
  for r in range(s["repeats"]):
    log("repeat %d of %d" % (r + 1, s["repeats"]))
    runs["raw"].append(raw_rate(plan, assets, batch_size, s["raw_steps"],
                                s["warmup"]))
    runs["estimator"].append(estimator_figures(
        plan, batch_size, s["estimator_steps"], s["warmup"],
        os.path.join(work_dir, "estimator-%d" % r)))
    for workers, key in ((0, "cluster_1w"), (1, "cluster_2w")):
      runs[key].append(cluster_figures(
          work_dir, "%s-%d" % (key, r), workers, s["cluster_steps"],
          batch_size))
    runs["chief_death_detect_s"].append(chief_death_detect(
        work_dir, "death-%d" % r, s["cluster_steps"] * 10, batch_size))
  return summarize(runs, s, batch_size, tf.version.VERSION,
                   multiprocessing.cpu_count(), assets.digits_model)


def summarize(runs, s, batch_size, tf_version, cores, model):
  def med(key, field=None):
    return median([r[field] if field else r for r in runs[key]])
  figures = {
      "raw_examples_per_s": med("raw"),
      "estimator_examples_per_s": med("estimator", "examples_per_s"),
      "estimator_startup_s": med("estimator", "startup_s"),
      "estimator_final_save_s": med("estimator", "final_save_s"),
      "cluster_1w_examples_per_s": med("cluster_1w", "examples_per_s"),
      "cluster_2w_examples_per_s": med("cluster_2w", "examples_per_s"),
      "cluster_first_step_s": med("cluster_2w", "first_step_s"),
      "cluster_total_s": med("cluster_2w", "total_s"),
      "chief_death_detect_s": med("chief_death_detect_s"),
  }

  def ratio(a, b):
    return figures[a] / figures[b] if figures[a] and figures[b] else None
  figures.update(
      estimator_vs_raw=ratio("estimator_examples_per_s",
                             "raw_examples_per_s"),
      cluster_vs_estimator=ratio("cluster_1w_examples_per_s",
                                 "estimator_examples_per_s"),
      scaling_2w_vs_1w=ratio("cluster_2w_examples_per_s",
                             "cluster_1w_examples_per_s"))
  figures.update(repeats=s["repeats"], statistic="median", settings=s,
                 batch_size=batch_size, tf_version=tf_version, cores=cores,
                 model="demo digits feature extractor (%s), fine-tuned" %
                 model, runs=runs)
  return figures


def table(figures) -> str:
  rows = [
      ("raw tf.function step", "raw_examples_per_s", "examples/s"),
      ("Estimator, 1 process", "estimator_examples_per_s", "examples/s"),
      ("  start-up (graph, restore)", "estimator_startup_s", "s"),
      ("  final save", "estimator_final_save_s", "s"),
      ("cluster 1 ps + 1 worker", "cluster_1w_examples_per_s", "examples/s"),
      ("cluster 1 ps + 2 workers", "cluster_2w_examples_per_s", "examples/s"),
      ("cluster launch -> first step", "cluster_first_step_s", "s"),
      ("cluster launch -> end", "cluster_total_s", "s"),
      ("dead chief -> cluster stopped", "chief_death_detect_s", "s"),
      ("Estimator / raw", "estimator_vs_raw", "ratio"),
      ("cluster 1w / Estimator", "cluster_vs_estimator", "ratio"),
      ("cluster 2w / 1w", "scaling_2w_vs_1w", "ratio"),
  ]
  lines = ["figure (median of %d runs)            value" % figures["repeats"]]
  for label, key, unit in rows:
    value = figures[key]
    shown = "n/a" if value is None else (
        "%.3f" % value if unit == "ratio" else "%.1f %s" % (value, unit))
    lines.append("%-36s %s" % (label, shown))
  lines.append("TF %s, %d cores, batch %d" % (
      figures["tf_version"], figures["cores"], figures["batch_size"]))
  return "\n".join(lines)


def plot(figures, path):
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise SystemExit("error: --plot needs matplotlib (pip install "
                     "matplotlib): %s" % e)
  rates = ["raw_examples_per_s", "estimator_examples_per_s",
           "cluster_1w_examples_per_s", "cluster_2w_examples_per_s"]
  times = ["estimator_startup_s", "cluster_first_step_s",
           "chief_death_detect_s"]
  fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
  left.bar([k.replace("_examples_per_s", "") for k in rates],
           [figures[k] or 0 for k in rates])
  left.set_ylabel("examples/s (median of %d)" % figures["repeats"])
  right.bar([k[:-2] for k in times], [figures[k] or 0 for k in times])
  right.set_ylabel("seconds (median of %d)" % figures["repeats"])
  for axis in (left, right):
    axis.tick_params(axis="x", labelrotation=20)
  fig.suptitle("TF %s, %d cores" % (figures["tf_version"], figures["cores"]))
  fig.tight_layout()
  fig.savefig(path)


def main(argv):
  del argv  # Unused.
  fv = flags.FLAGS
  tf.get_logger().setLevel("ERROR")
  started = time.monotonic()
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
    plot(figures, fv.plot)


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=cli.parse_flags_or_exit)
