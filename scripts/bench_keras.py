"""Benchmark parts of the Keras backend measured in this process, and the
demo's accuracy on each backend.

* keras: the trainer's Keras backend in one process (trainer.keras: its
  loop, checkpoints and progress as a user runs it), steady examples/s from
  its own progress lines, and its start-up (to the first step);
* the embedding curve on the Keras backend, one process;
* the demo's held-out accuracy (configs/digits.cfg's job) per backend over
  several seeds.
"""

import dataclasses
import re
import shutil
import statistics
import time

from trainer.config import backends
from trainer.plan import preflight
from trainer.training import progress

STEP = re.compile(r"^step (\d+)/\d+ ")


def keras_figures(plan, batch_size, steps, model_dir, steps_per_execution):
  """Steady examples/s and start-up of a Keras backend run in this
  process (no checkpoints between the first and the last; no evaluation)."""
  shutil.rmtree(model_dir, ignore_errors=True)  # The benchmark's scratch.
  run = dataclasses.replace(
      plan.job.run, backend="keras", train_steps=steps,
      save_checkpoints_steps=10 * steps, save_checkpoints_secs=None,
      steps_per_execution=steps_per_execution,
      log_every_steps=max(steps // 30, steps_per_execution))
  job = dataclasses.replace(plan.job, model_dir=model_dir, run=run,
                            data=dataclasses.replace(plan.job.data,
                                                     eval_files=()))
  choice = backends.choose_here("keras")
  keras_plan = dataclasses.replace(plan, job=job, eval_files=[],
                                   backend=choice)
  lines = []
  start = time.perf_counter()
  backends.load(choice).run(
      keras_plan, None, log=lambda line: lines.append((time.perf_counter(),
                                                       line)))
  first = min(t for t, line in lines if line.startswith(progress.FIRST_STEP))
  points = [(t, int(STEP.match(line).group(1))) for t, line in lines
            if STEP.match(line)]
  # Warm-up (the first fifth) and the last line (after the final save).
  steady = points[max(1, len(points) // 5):-1]
  rate = ((steady[-1][1] - steady[0][1]) / (steady[-1][0] - steady[0][0])
          if len(steady) >= 2 and steady[-1][0] > steady[0][0] else None)
  return {"examples_per_s": rate * batch_size if rate else None,
          "startup_s": first - start}


def demo_accuracy(plan, backend, seeds, model_dir_of):
  """Held-out accuracy of the demo's job on `backend`, one per seed."""
  values = []
  for seed in seeds:
    model_dir = model_dir_of(seed)
    shutil.rmtree(model_dir, ignore_errors=True)
    job = dataclasses.replace(
        plan.job, model_dir=model_dir, export_dir=model_dir + "-export",
        run=dataclasses.replace(plan.job.run, backend=backend,
                                random_seed=seed))
    shutil.rmtree(job.export_dir, ignore_errors=True)
    choice = backends.choose_here(backend)
    module = backends.load(choice)
    checked = preflight.check(job, backend=choice,
                              model_variables=module.model_variables,
                              log=lambda line: None)
    values.append(module.run(checked, None, log=lambda line: None).metrics[
        "accuracy"])
  return values


def mean(values):
  return statistics.mean(values) if values else None
