"""Benchmark parts that launch local clusters (python -m cluster.local).

Each run is the launcher as a user runs it, in the work directory (which
holds demo_assets/). Its rate comes from the training tasks' progress lines:
the global step is shared, so the lines of all of them form one series of
(time, global step).
"""

import datetime
import os
import re
import shutil
import signal
import subprocess
import time

from cluster import local
from trainer.training import progress

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# absl log line: I1125 18:33:40.483590 1399... file.py:64] message
_LOG_LINE = re.compile(r"^[IWEF](\d\d)(\d\d) (\d\d):(\d\d):(\d\d\.\d+) .*?\] "
                       r"(.*)$")
STEP = re.compile(r"^step (\d+)/\d+ ")


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


def launch_cluster(work_dir, name, num_workers, steps, batch_size,
                   extra=(), num_ps=1, trainer_args=()):
  """The demo (or `trainer_args`' job) as a cluster, run in `work_dir`."""
  run_dir = os.path.join(work_dir, name)
  shutil.rmtree(run_dir, ignore_errors=True)  # The benchmark's scratch.
  command = local.command_line(
      run_dir=run_dir, num_workers=num_workers, num_ps=num_ps,
      evaluator=False, deadline_secs=900, extra=extra,
      trainer_args=[
          "--train_steps=%d" % steps, "--batch_size=%d" % batch_size,
          "--log_every_steps=%d" % max(steps // 30, 5),
          "--save_checkpoints_steps=%d" % max(steps // 2, 1)] + list(
              trainer_args))  # Later flags win: the caller's.
  output = open(os.path.join(work_dir, name + ".out"), "w")
  # The tasks' temporary files (TF's autograph writes one per converted
  # function, and a task killed with SIGKILL leaves them) stay in the
  # benchmark's own folder, not the machine's /tmp.
  tmp = os.path.join(work_dir, name + ".tmp")
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  started = time.time()
  process = subprocess.Popen(command, cwd=work_dir, stdout=output,
                             stderr=subprocess.STDOUT,
                             env=dict(os.environ, PYTHONPATH=REPO,
                                      TMPDIR=tmp))
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


def tree_rss_bytes(pid: int) -> int:
  """Resident bytes of a process and its descendants (0 once gone)."""
  total, pending = 0, [pid]
  while pending:
    pid = pending.pop()
    try:
      with open("/proc/%d/status" % pid) as f:
        total += next((int(line.split()[1]) * 1024 for line in f
                       if line.startswith("VmRSS:")), 0)
      for task in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/children" % (pid, task)) as f:
          pending += [int(child) for child in f.read().split()]
    except (OSError, ValueError):
      continue  # Gone meanwhile.
  return total


def peak_ps_rss(process, run_dir, num_ps, deadline_secs, every_secs=0.5):
  """Waits for `process` (the launcher) to end, sampling each ps task's
  resident memory; ps-N -> its peak in MB over the run."""
  peaks = {"ps-%d" % i: 0 for i in range(num_ps)}
  deadline = time.monotonic() + deadline_secs
  while process.poll() is None and time.monotonic() < deadline:
    for task in peaks:
      try:
        with open(os.path.join(run_dir, "logs", task + ".pid")) as f:
          pid = int(f.read())
      except (OSError, ValueError):
        continue  # Not started yet.
      peaks[task] = max(peaks[task], tree_rss_bytes(pid) / 1e6)
    try:
      process.wait(every_secs)
    except subprocess.TimeoutExpired:
      pass
  return peaks


# The chief's export check (trainer.training.export_check), its seconds.
EXPORT_CHECK = re.compile(r"Export check: verified .*\(([0-9.]+) s\)\.")


def cluster_figures(work_dir, name, num_workers, steps, batch_size,
                    num_ps=1, trainer_args=(), sample_ps=False):
  """Cluster examples/s (steady), time to first step and to the end; with
  `sample_ps`, each ps's peak resident memory (MB) and the bytes of
  variables the chief says it placed on each (KB)."""
  process, run_dir, started, output = launch_cluster(
      work_dir, name, num_workers, steps, batch_size, num_ps=num_ps,
      trainer_args=trainer_args)
  peaks = peak_ps_rss(process, run_dir, num_ps, 900) if sample_ps else None
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
  points = [(t, int(STEP.match(m).group(1))) for t, m in log
            if STEP.match(m)]
  # Warm-up (the first fifth) and the last report (written after the
  # final checkpoint save, a phase of its own) are not the steady state.
  rate = steady_rate(points[:-1], skip=max(1, len(points) // 5))
  checked = EXPORT_CHECK.search(task_log(run_dir, "chief-0"))
  figures = {"examples_per_s": rate * batch_size if rate else None,
             "first_step_s": first - started, "total_s": ended - started,
             "export_check_s": float(checked.group(1)) if checked else None}
  if sample_ps:
    placed = re.search(r"Variables placed: (.*?);", task_log(run_dir,
                                                             "chief-0"))
    figures.update(ps_peak_rss_mb=peaks, ps_placed_kb={
        task: int(kb) for task, kb in re.findall(
            r"(ps-\d+) (\d+) KB", placed.group(1) if placed else "")})
  return figures


def chief_death_detect(work_dir, name, steps, batch_size, trainer_args=()):
  """Seconds from SIGKILL of the chief to the launcher's exit."""
  process, run_dir, _, output = launch_cluster(
      work_dir, name, 1, steps, batch_size,
      extra=["--restart_policy=never"], trainer_args=trainer_args)
  deadline = time.monotonic() + 300
  while progress.FIRST_STEP not in task_log(run_dir, "chief-0"):
    if time.monotonic() > deadline or process.poll() is not None:
      raise RuntimeError("cluster %s never started training" % name)
    time.sleep(0.05)  # A poll, with the deadline above.
  with open(os.path.join(run_dir, "logs", "chief-0.pid")) as f:
    pid = int(f.read())
  os.kill(pid, signal.SIGKILL)
  killed = time.monotonic()
  process.wait(300)
  detected = time.monotonic() - killed
  output.close()
  return detected


def startup_rounds(work_dir, rounds, steps, batch_size, log):
  """Launch to first step of the two backends' clusters, side by side:
  each round launches an Estimator cluster (its chief and 1 worker) and a
  Keras cluster (2 workers; its chief coordinates), one right after the
  other, the Estimator's first in even rounds and second in odd ones.
  A pair's ratio compares two launches seconds apart, so a machine whose
  speed drifts over the minutes between the repeats' runs moves both.
  Returns a list of {"estimator": s, "keras": s, "ratio": keras / est}."""
  launches = (("estimator", 1), ("keras", 2))
  pairs = []
  for r in range(rounds):
    log("start-up round %d of %d" % (r + 1, rounds))
    pair = {}
    for backend, workers in launches if r % 2 == 0 else launches[::-1]:
      pair[backend] = cluster_figures(
          work_dir, "startup-%s-%d" % (backend, r), workers, steps,
          batch_size, trainer_args=["--backend=" + backend])["first_step_s"]
    pair["ratio"] = pair["keras"] / pair["estimator"]
    pairs.append(pair)
  return pairs
