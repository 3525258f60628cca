r"""Trains a head on a hub model, one task of a job: the trainer's entry point.

  python -m trainer.task                       # the demo (configs/digits.cfg)
  python -m trainer.task --flagfile=configs/text.cfg --train_steps=500

The steps run on the Estimator (tf.estimator, TF <= 2.15) or on TF2's own
parameter-server training (Keras, any TF from 2.15): --backend, auto by
default. Flags are applied in order: defaults, then each --flagfile, then
the flags after it (a later flag overrides an earlier one). With no flag of
a model or data the demo runs (trainer/config/demo.py). The task comes from
TF_CONFIG; without it, one process trains, evaluates and exports. The
resolved flags are written to MODEL_DIR/flags.txt. Any problem found before
training is reported as one line, and the exit status is 1. --help shows
the flags a first run needs; --helpfull all of them, by part of the job.

The way from flags to a run is trainer.plan.resolve's (the launchers'
pre-flight goes the same way, through trainer.plan.launch); this module
reads the flags and TF_CONFIG, runs the plan on its backend, and says what
it did (`describe` for --check_only, `summary` at the end). A task that only
serves (a ps; a Keras-backend worker) needs no plan: it checks the flags and
serves until the chief's export (`_serve`).
"""

import os
import sys
import threading
from typing import Mapping, Optional

from absl import app
from absl import flags
from absl import logging

from harness import cli as harness_cli
from harness import errors
from harness import tf_config
from trainer.config import aip_dirs
from trainer.config import backends
from trainer.config import cli
from trainer.plan import launch
from trainer.plan import resolve
# The modules that load TensorFlow (trainer.plan.preflight, .model_dir, the
# backends) are imported where first used, on purpose: --helpfull and a bad
# flag answer in a fraction of the time, and main() sets TF's C++ log level
# before TF loads (measured in docs/layout.md).


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


def _role(choice: backends.Choice, task: Optional[tf_config.Task]) -> str:
  roles = _KERAS_ROLES if choice.name == backends.KERAS else _ROLES
  return "Task: %s: %s." % (task.name if task else "local",
                            roles[task.type if task else None])


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
           plan.backend.describe(), _role(plan.backend, task)]
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
  if plan.warm_start:
    lines.append(warm_start_note(plan))
  if tf_config.is_chief(task):
    lines.append("Export: %s." % job.resolved_export_dir)
  return "\n".join(lines)


def warm_start_note(plan) -> str:
  """What the plan's warm start (--warm_start_from) takes."""
  checkpoint, names = plan.warm_start
  return ("Warm start: %d variable(s) matching --warm_start_vars=%s from %s; "
          "the global step and the optimizer's slots start afresh." % (
              len(names), plan.job.run.warm_start_vars, checkpoint))


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
    lines.append("Checkpoint: %s (global step %d)" % (
        result.checkpoint, result.checkpoint_step()))
  if result.export_dir:
    lines.append("Export: %s" % result.export_dir)
    if result.export_check:
      lines.append(result.export_check)
    lines += launch.run_notes(plan.job.model_dir)
  return "\n".join(lines)


def run(fv: flags.FlagValues, environ: Mapping[str, str] = os.environ) -> int:
  """Runs the job the flags describe; returns the exit status.

  Args:
    fv: the parsed trainer flags.
    environ: the environment whose TF_CONFIG names this task.
  """
  from trainer.plan import model_dir  # pylint: disable=g-import-not-at-top
  try:
    parsed = tf_config.from_environ(environ)
    task = parsed.task if parsed else None
    choice = backends.choose_here(fv.backend)
    if not fv.check_only and backends.only_serves(choice, task):
      return _serve(resolve.prepare_server(fv, environ=environ), choice,
                    parsed)
    from_vertex = resolve.vertex_dirs(fv, environ)
    plan = resolve.prepare(fv, task, build_demo=not fv.check_only,
                            choice=choice, environ=environ)
    # After the pre-flight: a Keras chief's pre-flight runs while its
    # workers start, not after it has waited for them (trainer.keras.cluster).
    if not fv.check_only and not plan.job_done:
      try:  # A ps or worker not up yet, or restarting: a restart retries.
        backends.load(choice).connect(parsed, fv.ps_shard_bytes)
      except errors.HarnessError:
        raise
      except Exception as e:  # pylint: disable=broad-except
        return _peer_restarted(e, parsed)
    model_dir_state = "the chief's"
    if tf_config.is_chief(task):
      model_dir_state = resolve.settle_model_dir(
          plan, fv.overwrite_model_dir, dry_run=fv.check_only)
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
        resolve.recorded_flags(list(plan.flag_lines), plan.resolution,
                                plan.backend) +
        ["# " + chosen.note() for chosen in from_vertex],
        os.path.join(job.model_dir, cli.FLAGS_FILE))
  logging.info("Training %s on %s%s for %d steps; model_dir %s",
               job.model.module_handle, plan.train_files.describe(),
               " (%d examples)" % plan.train_examples
               if plan.train_examples else "", job.run.train_steps,
               job.model_dir)
  if plan.warm_start:
    logging.info(warm_start_note(plan))
  reporter = None
  if tf_config.is_chief(task):  # The evaluations, for the tuning services.
    # pylint: disable-next=g-import-not-at-top
    from trainer.training import metric_report
    reporter = metric_report.for_task(job.model_dir, environ).start()
  # pylint: disable-next=g-import-not-at-top
  from trainer.training import preemption
  notice = _preemption_notice(task, preemption)
  try:
    result = backends.load(plan.backend).run(plan, parsed, log=logging.info,
                                             notice=notice)
  except preemption.Preempted as e:
    return _preempted(e, task, notice)
  except errors.HarnessError as e:
    # The loss diverged (trainer.training.nan_guard), or bad data.
    return harness_cli.report(e, cli.FLAG_NAMES)
  except Exception as e:  # pylint: disable=broad-except
    # A data file that cannot be read is named, a peer's restart is retried;
    # anything else is re-raised (_peer_restarted), traceback and all.
    from trainer.inputs import validate  # pylint: disable=g-import-not-at-top
    problem = validate.read_failure(e, plan, task, log=logging.info)
    if problem:
      return harness_cli.report(problem, cli.FLAG_NAMES)
    return _peer_restarted(e, parsed)
  finally:
    if reporter:
      reporter.stop()
    if notice:
      notice.uninstall()
  print(summary(result, plan), flush=True)
  return 0


def _serve(job, choice: backends.Choice, parsed: tf_config.TfConfig) -> int:
  """Runs a task that only serves (trainer.config.backends.only_serves: a
  ps; a Keras worker) until the chief's final export; returns the exit
  status. It checks and loads neither the model nor the data: the chief
  does (trainer.plan.resolve.prepare_server)."""
  logging.info(choice.describe())
  logging.info("Cluster: from %s.", parsed.source)
  logging.info(_role(choice, parsed.task))
  logging.info("Training %s for %d steps; model_dir %s; the chief checks "
               "and builds the model and the input pipeline, this task "
               "serves them.", job.model.module_handle, job.run.train_steps,
               job.model_dir)
  # pylint: disable-next=g-import-not-at-top
  from trainer.training import preemption
  notice = _preemption_notice(parsed.task, preemption)
  try:
    backends.load_server(choice).serve(job, parsed, log=logging.info,
                                       notice=notice)
  except preemption.Preempted as e:
    return _preempted(e, parsed.task, notice)
  except errors.HarnessError as e:  # No chief before the deadline.
    return harness_cli.report(e, cli.FLAG_NAMES)
  except Exception as e:  # pylint: disable=broad-except
    return _peer_restarted(e, parsed)
  finally:
    if notice:
      notice.uninstall()
  print("Done.", flush=True)
  return 0


def _preempted(error, task: Optional[tf_config.Task], notice) -> int:
  """The exit status after SIGTERM (trainer.training.preemption): a ps dies
  of the signal, as its restart policy expects; any other task exits with
  preemption.EXIT_CODE."""
  # pylint: disable-next=g-import-not-at-top
  from trainer.training import preemption
  print(str(error), file=sys.stderr, flush=True)
  if task and task.type == tf_config.PS:
    preemption.die_of_the_signal(notice)
  return preemption.EXIT_CODE


def _preemption_notice(task, preemption):
  """The chief (or a single process) and the ps take SIGTERM as a notice
  (trainer.training.preemption); workers and the evaluator keep Python's
  default and exit at once. Only the main thread may take a signal."""
  if task and task.type not in (tf_config.CHIEF, tf_config.PS):
    return None
  if threading.current_thread() is not threading.main_thread():
    return None  # An in-process cluster's task (tests).
  return preemption.Notice().install()


def _peer_restarted(error: Exception, parsed) -> int:
  """The exit status of a task that saw only a peer restart (which the
  restart policy retries); re-raises any other error (exit status 1)."""
  # pylint: disable-next=g-import-not-at-top
  from trainer.training import peer_errors
  why = peer_errors.restarted_peer(error, on_cluster=parsed is not None)
  if not why:
    raise error  # A real error: its traceback, exit status 1.
  print("%s: a peer task restarted (%s); exiting with code %d, which the "
        "restart policy retries." % (parsed.task.name, why,
                                     peer_errors.EXIT_PEER_RESTARTED),
        file=sys.stderr, flush=True)
  return peer_errors.EXIT_PEER_RESTARTED


def main(argv):
  refused = harness_cli.refuse_arguments(argv)
  if refused is not None:
    return refused
  harness_cli.prepare_tensorflow()
  return run(flags.FLAGS)


def console_main():
  """Entry point of `python -m trainer.task` and the hub-trainer script."""
  # --help shows the main module's key flags, looked up by sys.argv[0]
  # (this file under -m, the hub-trainer script otherwise).
  cli.define_flags(key_module=sys.argv[0])
  app.run(main, flags_parser=harness_cli.parse_flags_or_exit)


if __name__ == "__main__":
  console_main()
