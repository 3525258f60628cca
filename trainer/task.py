r"""Trains an Estimator on top of a hub model: the trainer's entry point.

  python -m trainer.task                       # the demo (configs/digits.cfg)
  python -m trainer.task --flagfile=configs/text.cfg --train_steps=500

Flags are applied in order: defaults, then each --flagfile, then the flags
after it (a later flag overrides an earlier one). With no --module_handle
the demo runs (trainer/demo.py). The task comes from TF_CONFIG; without it,
one process trains, evaluates and exports. The resolved flags are written to
MODEL_DIR/flags.txt. Any problem found before training is reported as one
line, and the exit status is 1.

The way from flags to a run, for this entry point and for the launchers that
start it (cluster/):
  flags -> the backend (trainer.backends: estimator or keras, and why)
        -> `job_from_flags` (trainer.cli, the demo) -> JobConfig
        -> `prepare` (trainer.preflight: validated once, model, data) -> Plan
        -> trainer.model_dir.settle -> the backend's run -> `summary`.
"""

import datetime
import os
import sys
from typing import Callable, List, Mapping, Optional, Tuple

from absl import app
from absl import flags
from absl import logging

from harness import cli as harness_cli
from harness import errors
from harness import tf_config
from trainer import aip_dirs
from trainer import backends
from trainer import cli
from trainer import demo
from trainer import handles
from trainer import job as job_lib
# The modules that load TensorFlow (trainer.preflight, .model_dir, the
# backends) are imported where first used, on purpose: --helpfull and a bad flag answer
# in a fraction of the time, and main() sets TF's C++ log level before TF
# loads (measured in docs/layout.md).


def vertex_dirs(fv: flags.FlagValues, environ: Mapping[str, str]):
  """The directories Vertex AI's environment fills (trainer.aip_dirs)."""
  return aip_dirs.chosen({"model_dir": fv.model_dir,
                          "export_dir": fv.export_dir}, environ)


def job_from_flags(fv: flags.FlagValues, *, default_model_dir: str = "",
                   log: Callable[[str], None] = logging.info,
                   build_demo: bool = True,
                   environ: Mapping[str, str] = os.environ
                   ) -> job_lib.JobConfig:
  """The job the flags describe: the demo's settings where no model is
  given (its files built where missing, with `build_demo`), Vertex AI's
  directories where --model_dir or --export_dir is unset and `environ`
  has them, `default_model_dir` where there is still no --model_dir."""
  is_demo = demo.wanted(fv)
  if is_demo:
    demo.apply(fv, log=log, build=build_demo)
  for chosen in vertex_dirs(fv, environ):
    setattr(fv, chosen.setting, chosen.value)
    log(chosen.note())
  if not fv.model_dir:
    if not default_model_dir and is_demo:
      default_model_dir = os.path.join(
          "runs", "demo-" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    fv.model_dir = os.path.abspath(default_model_dir) if (
        default_model_dir) else ""
  return cli.job_config(fv)


def prepare(fv: flags.FlagValues, task: Optional[tf_config.Task], *,
            default_model_dir: str = "",
            log: Callable[[str], None] = logging.info,
            build_demo: bool = True, cache_dir: Optional[str] = None,
            choice: Optional[backends.Choice] = None,
            environ: Mapping[str, str] = os.environ):
  """Flags -> a checked trainer.preflight.Plan, for the task `task`, with
  the backend that runs it (`plan.backend`).

  Writes nothing but the demo's models and data (where missing, and
  `build_demo`) and what fetching a hub handle puts into `cache_dir`
  (default: TFHUB_CACHE_DIR, else hub's default). A backend this TF lacks
  is refused before that. `choice`: the backend, where already chosen.
  """
  choice = choice or backends.choose_here(fv.backend)
  job = job_from_flags(fv, default_model_dir=default_model_dir, log=log,
                       build_demo=build_demo, environ=environ)
  from trainer import preflight  # pylint: disable=g-import-not-at-top
  return preflight.check(
      job, task, recorded_model=cli.recorded_model,
      model_settings=cli.model_settings(fv),
      cache_dir=cache_dir or handles.default_cache_dir(os.environ),
      backend=choice,
      model_variables=backends.load(choice).model_variables, log=log)


def recorded_flags(lines: List[str], resolution,
                   choice: Optional[backends.Choice] = None) -> List[str]:
  """flags.txt's lines: the backend that ran (and why, as a comment), the
  module handle as the user gave it, and, as a comment, the directory it
  resolved to (with the archive's size and sha256), so that a run can be
  reproduced and audited."""
  if choice:
    lines = lines + ["# " + choice.describe()]
  if not (resolution and resolution.in_cache):
    return lines
  return [line for line in lines if not line.startswith("--module_handle=")
         ] + ["--module_handle=" + resolution.handle,
              "# " + resolution.describe()]


# Where a launcher writes the trainer flags its tasks read, and what it tells
# them after its pre-flight: it scanned the data, and settled the model
# directory (a restarted chief must resume, not move its own work aside).
TASK_FLAGS_FILE = "trainer_flags.txt"
CHECKED_ONCE = ("--novalidate_data", "--nooverwrite_model_dir")


def prepare_tasks(trainer_args, run_dir: str, *, evaluator: bool,
                  log: Callable[[str], None] = logging.info,
                  cache_dir: Optional[str] = None,
                  num_workers: Optional[int] = None):
  """A launcher's pre-flight (cluster/local.py, cluster/slurm.py): the
  trainer's whole check, once, as the chief, before any task starts; then
  the resolved trainer flags, for every task, in RUN_DIR/trainer_flags.txt.
  A hub handle that must be fetched is fetched here, once, into `cache_dir`
  (which every task must see), and the tasks are given the directory.

  Returns (path of that flagfile, the checked plan).

  Raises:
    errors.HarnessError: the one-line problem (trainer flags named as such).
  """
  try:
    fv = cli.new_flag_values(trainer_args)
  except errors.FlagError as e:
    raise errors.FlagError("trainer flags: %s" % e) from e
  plan = prepare(fv, tf_config.Task(tf_config.CHIEF),
                 default_model_dir=os.path.join(run_dir, "model"), log=log,
                 cache_dir=cache_dir)
  if num_workers is not None:
    backends.check_workers(plan.backend, num_workers)
  if evaluator and not plan.eval_files:
    raise errors.FlagError(
        "`eval_files` is empty, so an evaluator would have nothing to "
        "evaluate: give the trainer `eval_files`, or run the cluster with "
        "--noevaluator.")
  settle_model_dir(plan, fv.overwrite_model_dir, log=log)
  log(plan.backend.describe())
  # Every task runs the backend the launcher chose.
  lines = cli.flag_lines(fv) + list(CHECKED_ONCE) + [
      "# " + plan.backend.describe(), "--backend=" + plan.backend.name]
  if plan.resolution.in_cache:  # Every task loads the one fetched copy.
    lines += ["# %s, once, by the launcher" % plan.resolution.describe(),
              "--module_handle=" + plan.resolution.path]
  from trainer import model_dir  # pylint: disable=g-import-not-at-top
  path = model_dir.write_record(lines, os.path.join(run_dir,
                                                    TASK_FLAGS_FILE))
  return path, plan


def check_flags_only(trainer_args) -> Tuple[flags.FlagValues,
                                            job_lib.JobConfig]:
  """The trainer's checks that need neither the model nor the data, for the
  job generators (cluster/tfjob.py, cluster/slurm.py): those files are
  where the job runs. Unknown flags, bad values, contradictions.

  Raises:
    errors.HarnessError: the one-line problem.
  """
  fv = cli.new_flag_values(trainer_args)
  if demo.wanted(fv):
    raise errors.FlagError(
        "`module_handle` is required here: give the hub model's path as "
        "the job's tasks will see it (the demo runs only where its "
        "pre-flight runs: python -m cluster.local, or python -m "
        "cluster.slurm --submit).")
  job = cli.job_config(fv)
  job_lib.validate(job)
  return fv, job


def settle_model_dir(plan, overwrite: bool,
                     log: Callable[[str], None] = logging.info,
                     dry_run: bool = False) -> str:
  """Refuses another model's directory, or moves it aside (see
  trainer.model_dir); for the chief's pre-flight. Returns what it did
  (with `dry_run`: would do)."""
  from trainer import model_dir  # pylint: disable=g-import-not-at-top
  return model_dir.settle(plan.job.model_dir, plan.model_dir_conflict,
                          overwrite, log=log, dry_run=dry_run)


def last_evaluation(model_dir: str) -> Optional[dict]:
  """The metrics of the latest evaluation written under `model_dir`."""
  from trainer import eval_events  # pylint: disable=g-import-not-at-top
  return eval_events.last(os.path.join(model_dir, "eval"))


_ROLES = {
    None: "a single process (no TF_CONFIG): trains, evaluates and exports",
    tf_config.CHIEF: "trains, writes checkpoints and summaries, exports when "
                     "done",
    tf_config.WORKER: "trains; its variables live on the ps tasks",
    tf_config.PS: "holds the variables; ends once the chief's export exists",
    tf_config.EVALUATOR: "evaluates each new checkpoint until the last",
}
# Where the Keras backend's roles differ (trainer/keras/train.py).
_KERAS_ROLES = dict(
    _ROLES,
    **{tf_config.CHIEF: "coordinates: schedules the steps on the workers, "
                        "writes checkpoints and summaries, exports when done",
       tf_config.WORKER: "runs the steps the chief schedules; the variables "
                         "live on the ps tasks; ends once the chief's export "
                         "exists"})


def _model_kind(spec) -> str:
  kind = "TF1 Hub format" if spec.is_tf1_hub_format else "SavedModel"
  tags = "" if spec.tags is None else ", tags {%s}" % ",".join(
      sorted(spec.tags))
  if spec.signature:
    call = "signature %s (%s)" % (spec.signature, "all outputs" if
                                  spec.signature_outputs_as_dict else
                                  "output " + spec.output_key)
  else:
    call = "__call__"
  return "%s%s, called through %s, %s" % (
      kind, tags, call, "fine-tuned" if spec.trainable else "frozen")


def describe(plan, config: Optional[tf_config.TfConfig],
             model_dir_state: str) -> str:
  """What this task would do (--check_only): its role, cluster, model,
  inputs, data and outputs."""
  task = config.task if config else None
  lines = ["Pre-flight passed; nothing was written.",
           plan.backend.describe(),
           "Task: %s: %s." % (task.name if task else "local",
                              (_KERAS_ROLES if plan.backend.name ==
                               backends.KERAS else _ROLES)[
                                   task.type if task else None])]
  if config:
    jobs = ", ".join("%s (%d)" % (job, len(addresses))
                     for job, addresses in config.cluster.items())
    evaluator = (" + evaluator %s, outside the training cluster" %
                 config.evaluator if config.evaluator else "")
    lines.append("Cluster: %s%s; from %s." % (jobs, evaluator,
                                               config.source))
  job, spec = plan.job, plan.spec
  if plan.resolution and plan.resolution.in_cache:
    lines.append("Model handle: %s." % plan.resolution.describe())
  lines.append("Model: %s: %s." % (job.model.module_handle, _model_kind(spec)))
  lines.append("Inputs: %s." % ", ".join(
      "%s <- column %s (%s %s)" % (name, plan.inputs.input_map[name],
                                   spec.inputs[name].dtype.name,
                                   spec.inputs[name].shape)
      for name in spec.inputs))
  counted = lambda n: " (%d examples)" % n if n is not None else ""
  lines.append("Train data: %s%s; eval data: %s." % (
      plan.train_files.describe(), counted(plan.train_examples),
      plan.eval_files.describe() + counted(plan.eval_examples)
      if plan.eval_files else "none (no evaluation)"))
  lines += ["Data check: " + check for check in plan.data_checks] or [
      "Data check: off (`validate_data`=off)."]
  lines.append("Model directory: %s: %s." % (job.model_dir, model_dir_state))
  if tf_config.is_chief(task):
    lines.append("Export: %s." % job.resolved_export_dir)
  return "\n".join(lines)


def summary(result, plan) -> str:
  """What the task did: its final evaluation, checkpoint and export."""
  lines = ["Done."]
  if result.metrics:
    shown = ", ".join("%s %.4f" % (k, v) for k, v in sorted(
        result.metrics.items()) if k != "global_step")
    lines.append("Eval on %s after step %d: %s" % (
        ",".join(plan.job.data.eval_files),
        result.metrics.get("global_step", 0), shown))
  if result.checkpoint:
    lines.append("Checkpoint: %s" % result.checkpoint)
  if result.export_dir:
    lines.append("Export: %s" % result.export_dir)
    lines += run_notes(plan.job.model_dir)
  return "\n".join(lines)


def run_notes(model_dir: str) -> List[str]:
  """How the run ended besides: an early stop, the best export."""
  # pylint: disable=g-import-not-at-top
  from trainer import best_export
  from trainer import early_stopping
  # pylint: enable=g-import-not-at-top
  return [note for note in (early_stopping.describe(model_dir),
                            best_export.describe(model_dir)) if note]


def run(fv: flags.FlagValues, environ: Mapping[str, str] = os.environ) -> int:
  """Runs the job the flags describe; returns the exit status.

  Args:
    fv: the parsed trainer flags.
    environ: the environment whose TF_CONFIG names this task.
  """
  from trainer import model_dir  # pylint: disable=g-import-not-at-top
  try:
    parsed = tf_config.from_environ(environ)
    task = parsed.task if parsed else None
    choice = backends.choose_here(fv.backend)
    if not fv.check_only:
      try:  # A ps or worker not up yet, or restarting: a restart retries.
        backends.load(choice).connect(parsed)
      except errors.HarnessError:
        raise
      except Exception as e:  # pylint: disable=broad-except
        return _peer_restarted(e, parsed)
    from_vertex = vertex_dirs(fv, environ)
    plan = prepare(fv, task, build_demo=not fv.check_only, choice=choice,
                   environ=environ)
    model_dir_state = "the chief's"
    if tf_config.is_chief(task):
      model_dir_state = settle_model_dir(plan, fv.overwrite_model_dir,
                                         dry_run=fv.check_only)
  except errors.HarnessError as e:
    return harness_cli.report(e, cli.FLAG_NAMES)
  if fv.check_only:
    print("\n".join([describe(plan, parsed, model_dir_state)] + [
        chosen.note() + "." for chosen in from_vertex]), flush=True)
    return 0
  job = plan.job
  logging.info(plan.backend.describe())
  if parsed:
    logging.info("Cluster: from %s.", parsed.source)
  for line in filter(None, [aip_dirs.tensorboard_note(environ,
                                                      job.model_dir)]):
    logging.info(line)
  if tf_config.is_chief(task):
    model_dir.write_record(
        recorded_flags(cli.flag_lines(fv), plan.resolution, plan.backend) +
        ["# " + chosen.note() for chosen in from_vertex],
        os.path.join(job.model_dir, cli.FLAGS_FILE))
  logging.info("Training %s on %s%s for %d steps; model_dir %s",
               job.model.module_handle, plan.train_files.describe(),
               " (%d examples)" % plan.train_examples
               if plan.train_examples else "", job.run.train_steps,
               job.model_dir)
  try:
    result = backends.load(plan.backend).run(plan, parsed, log=logging.info)
  except errors.HarnessError as e:  # The loss diverged (trainer.nan_guard).
    return harness_cli.report(e, cli.FLAG_NAMES)
  except Exception as e:  # pylint: disable=broad-except
    from trainer import validate  # pylint: disable=g-import-not-at-top
    problem = validate.read_failure(e, plan, task, log=logging.info)
    if problem:
      return harness_cli.report(problem, cli.FLAG_NAMES)
    return _peer_restarted(e, parsed)
  print(summary(result, plan), flush=True)
  return 0


def _peer_restarted(error: Exception, parsed) -> int:
  """The exit status of a task that saw only a peer restart (which the
  restart policy retries); re-raises any other error (exit status 1)."""
  from trainer import peer_errors  # pylint: disable=g-import-not-at-top
  why = peer_errors.restarted_peer(error, on_cluster=parsed is not None)
  if not why:
    raise error  # A real error: its traceback, exit status 1.
  print("%s: a peer task restarted (%s); exiting with code %d, which the "
        "restart policy retries." % (parsed.task.name, why,
                                     peer_errors.EXIT_PEER_RESTARTED),
        file=sys.stderr, flush=True)
  return peer_errors.EXIT_PEER_RESTARTED


def main(argv):
  if len(argv) > 1:
    print("error: unexpected arguments %s; flags start with --." %
          " ".join(argv[1:]), file=sys.stderr)
    return 2
  harness_cli.quiet_tensorflow()
  return run(flags.FLAGS)


def console_main():
  """Entry point of `python -m trainer.task` and the hub-trainer script."""
  cli.define_flags()
  app.run(main, flags_parser=harness_cli.parse_flags_or_exit)


if __name__ == "__main__":
  console_main()
