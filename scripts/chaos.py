r"""Chaos runs in a row: docs/faults.md's reliability figures.

  python -m scripts.chaos --runs=5 --signal=SIGKILL --json=chaos.json

Each run is tests/test_chaos.py's run (cluster/chaos.py): the demo on a local
cluster of a chief, 2 workers, 2 ps and an evaluator, with a seeded
schedule killing a random task every few seconds until at least 10 kills
have hit every role (the chief and a ps twice). Each run is checked as the
test checks it (the job finishes, nothing lost, nothing left behind). The
table gives, per run, its seed, the kills it survived and the longest pause
in training progress after a kill, by role; a failed run keeps its
directory and prints its seed (replay: CHAOS_SEED=N pytest
tests/test_chaos.py, or --seeds=N here).
"""

import json
import os
import random
import shutil
import signal
import tempfile
import time

from absl import app
from absl import flags

import tensorflow as tf

from cluster import chaos
from example_kit import assets as assets_lib
from harness import cli

ROLES = ("chief", "worker", "ps", "evaluator")


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  """The script's flags (defined by main, not on import)."""
  flags.DEFINE_integer("runs", 5, "Chaos runs, one after another.",
                       lower_bound=1, flag_values=fv)
  flags.DEFINE_list("seeds", [], "Seeds of the runs (replays); random ones "
                    "when empty. Sets --runs to their number.", flag_values=fv)
  flags.DEFINE_enum("signal", "SIGKILL", ["SIGKILL", "SIGTERM"],
                    "What each kill sends: SIGKILL, or SIGTERM as a "
                    "preemption notice.", flag_values=fv)
  flags.DEFINE_integer("train_steps", 15000, "Global steps of each run.",
                       lower_bound=1000, flag_values=fv)
  flags.DEFINE_float("min_interval", 2.0, "Fewest seconds between kills.",
                     lower_bound=0.5, flag_values=fv)
  flags.DEFINE_float("max_interval", 4.0, "Most seconds between kills.",
                     lower_bound=0.5, flag_values=fv)
  flags.DEFINE_string("work_dir", "", "Where assets and runs go; a new "
                      "temporary directory when empty.", flag_values=fv)
  flags.DEFINE_list("trainer_args", [], "More trainer flags for every run, "
                    "comma-separated (e.g. --backend=keras,--nodata_service).",
                    flag_values=fv)
  flags.DEFINE_string("json", "", "Write every run's figures to this JSON "
                      "file.", flag_values=fv)


def one_run(work_dir: str, assets_root: str, index: int, seed: int,
            signum: int, train_steps: int, interval,
            trainer_args=()) -> dict:
  """A chaos run; its figures, or its failure. Removes its directory when
  it passed."""
  cwd = os.path.join(work_dir, "run-%d-seed-%d" % (index, seed))
  shutil.rmtree(cwd, ignore_errors=True)  # This script's own scratch.
  os.makedirs(cwd)
  os.symlink(assets_root, os.path.join(cwd, "demo_assets"))
  run = chaos.ChaosRun(cwd, seed, signum=signum, train_steps=train_steps,
                       interval=interval, extra_trainer_args=trainer_args)
  started = time.monotonic()
  try:
    code = run.run()
  finally:
    run.stop()
  try:
    figures = chaos.verify(run, code)
  except chaos.ChaosFailure as failure:
    return {"seed": seed, "failed": str(failure)[:2000], "dir": cwd,
            "kills": len(run.kills), "wall_s": time.monotonic() - started}
  figures["wall_s"] = time.monotonic() - started
  shutil.rmtree(cwd)
  return figures


def table(results, signal_name: str) -> str:
  rows = ["| run | seed | kills survived (%s) | by role | longest pause "
          "after a kill, s: %s | most steps lost to a kill: chief / ps "
          "| wall s |" % (signal_name, " / ".join(ROLES)),
          "|---|---|---|---|---|---|---|"]
  for index, result in enumerate(results, 1):
    if "failed" in result:
      rows.append("| %d | %d | FAILED after %d kills | | | | %.0f |" % (
          index, result["seed"], result["kills"], result["wall_s"]))
      continue
    pauses, lost = result["longest_pauses"], result["steps_lost"]
    rows.append("| %d | %d | %d | %s | %s | %s | %.0f |" % (
        index, result["seed"], result["kills"],
        ", ".join("%s %d" % (role, result["hits"].get(role, 0))
                  for role in ROLES),
        " / ".join("%.1f" % pauses[role] if role in pauses else "-"
                   for role in ROLES),
        " / ".join("%d" % lost[role] for role in ("chief", "ps")),
        result["wall_s"]))
  passed = [r for r in results if "failed" not in r]
  if passed:
    worst = {role: max(r["longest_pauses"].get(role, 0.0) for r in passed)
             for role in ROLES}
    rows.append("\n%d of %d runs passed; %d kills survived in all; longest "
                "pause after a kill over all runs, by role: %s" % (
                    len(passed), len(results),
                    sum(r["kills"] for r in passed),
                    ", ".join("%s %.1f s" % (role, worst[role])
                              for role in ROLES)))
  for result in results:
    if "failed" in result:
      rows.append("FAILED (seed %d, kept in %s): %s" % (
          result["seed"], result["dir"], result["failed"]))
  return "\n".join(rows)


def main(argv):
  del argv  # Unused.
  fv = flags.FLAGS
  tf.get_logger().setLevel("ERROR")
  if fv.min_interval > fv.max_interval:
    raise app.UsageError("--min_interval=%s is above --max_interval=%s" % (
        fv.min_interval, fv.max_interval))
  try:
    seeds = [int(seed) for seed in fv.seeds]
  except ValueError:
    raise app.UsageError("--seeds=%s: give whole numbers, e.g. "
                         "--seeds=12,345" % ",".join(fv.seeds)) from None
  seeds = seeds or [random.randrange(10**6) for _ in range(fv.runs)]
  work_dir = os.path.abspath(fv.work_dir or
                             tempfile.mkdtemp(prefix="hub-chaos-"))
  os.makedirs(work_dir, exist_ok=True)
  print("building the demo's assets in %s ..." % work_dir, flush=True)
  assets = assets_lib.prepare(os.path.join(work_dir, "assets"),
                              log=lambda message: None)
  signum = getattr(signal, fv.signal)
  results = []
  for index, seed in enumerate(seeds, 1):
    print("run %d of %d, seed %d (%s) ..." % (index, len(seeds), seed,
                                               fv.signal), flush=True)
    result = one_run(work_dir, assets.root, index, seed, signum,
                     fv.train_steps, (fv.min_interval, fv.max_interval),
                     fv.trainer_args)
    print("  " + (("FAILED: " + result["failed"][:300]) if "failed" in result
                  else chaos.describe(result)), flush=True)
    results.append(result)
  print(table(results, fv.signal))
  if fv.json:
    with open(fv.json, "w") as f:
      json.dump({"signal": fv.signal, "train_steps": fv.train_steps,
                 "trainer_args": fv.trainer_args, "runs": results}, f, indent=2, sort_keys=True)
  return 1 if any("failed" in r for r in results) else 0


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=cli.parse_flags_or_exit)
