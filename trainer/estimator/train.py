"""Runs one task of an Estimator training job on a checked plan.

`run` trains and evaluates with `tf.estimator.train_and_evaluate`, for
whatever task TF_CONFIG names (or a single process when there is none), and,
on the chief, exports a serving SavedModel. Without evaluation files a single
process only trains (a cluster then has no evaluator: trainer.plan.preflight).
The plan comes from trainer.plan.preflight.check.
"""

import contextlib
import uuid
from typing import Callable, Mapping, Optional

import numpy as np
import tensorflow as tf


from harness import tf_config
from trainer.config import job as job_lib
from trainer.estimator import config as config_lib
from trainer.estimator import evaluator
from trainer.estimator import exporters
from trainer.estimator import hooks as hooks_lib
from trainer.estimator import model as model_lib
from trainer.estimator import readiness
from trainer.estimator import serve
from trainer.estimator import warm_start
from trainer.hub_model import user_model
from trainer.inputs import data
from trainer.inputs import data_share
from trainer.plan import preflight
from trainer.training import early_stopping
from trainer.training import eval_events
from trainer.training import export_check
from trainer.training import job_end
from trainer.training import preemption
from trainer.training import result as result_lib


Result = result_lib.Result
Plan = preflight.Plan


def serving_input_receiver_fn(inputs: Mapping[str, tf.TensorSpec]):
  """Receives each model input as a raw tensor of the model's own spec."""
  def receiver_fn():
    placeholders = {
        name: tf.compat.v1.placeholder(spec.dtype, spec.shape, name=name)
        for name, spec in inputs.items()}
    return tf.estimator.export.ServingInputReceiver(placeholders, placeholders)
  return receiver_fn


def model_fn_of(p: Plan):
  """The plan's model_fn: the user's (`model_fn`), wrapped; else the
  harness's, around the hub model or the user's Keras model (`model`)."""
  if p.job.model.model_fn:
    return model_lib.wrap_model_fn(
        user_model.load(p.job.model.model_fn, "model_fn"),
        p.job.model.model_fn, job_lib.settings_of(p.job))
  return model_lib.make_model_fn(p.spec, p.job.head, p.user_model)


def check_model(p: Plan) -> None:
  """The pre-flight's part for this backend: a user's model_fn is imported
  and its training graph built once (trainer.estimator.model)."""
  if p.job.model.model_fn:
    model_lib.check_model_fn(p.job.model.model_fn, p.serving_inputs,
                             p.job.head.n_classes, job_lib.settings_of(p.job))


def estimator_for(p: Plan, tf_config_dict: Optional[dict] = None
                  ) -> tf.estimator.Estimator:
  """The Estimator of the plan, for the task `tf_config_dict` names."""
  run_config = config_lib.run_config(
      p.job.run, p.job.cluster, model_dir=p.job.model_dir,
      tf_config_dict=tf_config_dict)
  return tf.estimator.Estimator(
      model_fn=model_fn_of(p), config=run_config,
      warm_start_from=warm_start.settings(*p.warm_start) if p.warm_start
      else None)


def input_fns(p: preflight.Plan,
              config: Optional[tf_config.TfConfig] = None,
              log: Callable[[str], None] = lambda line: None):
  """(train input_fn, eval input_fn or None without eval files), training on
  this task's share of the files (trainer.inputs.data_share), said to `log`."""
  share = data_share.for_estimator(len(p.train_files), config,
                                   p.job.run.random_seed,
                                   shard=p.job.data.shard_files)
  if config is None or config.task.type in data_share.ESTIMATOR_TRAINING_JOBS:
    log(share.note)
  return data.input_fns(p.train_files, p.eval_files, p.inputs,
                        batch_size=p.job.data.batch_size, share=share,
                        shuffle_buffer=p.job.data.shuffle_buffer,
                        eval_config=p.eval_inputs)


class _EvaluateUntrained(tf.compat.v1.train.CheckpointSaverListener):
  """--eval_untrained in one process: the checkpoint of global step 0 is
  evaluated too (train_and_evaluate's own listener skips the first save)."""

  def __init__(self, estimator, eval_input, eval_steps):
    self._estimator, self._input, self._steps = (estimator, eval_input,
                                                 eval_steps)

  def after_save(self, session, global_step_value):
    del session  # The evaluation restores the checkpoint in a graph of its own.
    if global_step_value == 0:
      self._estimator.evaluate(
          self._input, steps=self._steps,
          checkpoint_path=self._estimator.latest_checkpoint())


def _never_evaluated():
  """The eval input of a cluster without eval files: no task evaluates
  (chief, workers and ps never do; preflight refuses an evaluator)."""
  raise RuntimeError("this job has no eval_files, so nothing evaluates")


def export(estimator: tf.estimator.Estimator, p: Plan,
           export_dir: str,
           before_publishing: Optional[Callable[[str], None]] = None) -> str:
  """Exports the latest checkpoint to exactly `export_dir`, atomically;
  `before_publishing(staged)` runs on the written export before it is
  renamed there (the export check).

  Estimator writes into a timestamped folder; it is written next to the
  target first and renamed, so a failed export leaves nothing half-written.
  Any tf.io.gfile path whose file system renames directories works (local,
  gs://, hdfs://); Estimator's own export needs that too. (TF's in-memory
  ram:// does not: its renames lose a directory's files.)
  """
  staging = "%s.staging-%s" % (export_dir.rstrip("/"), uuid.uuid4().hex[:8])
  tf.io.gfile.makedirs(staging)
  try:
    written = estimator.export_saved_model(
        staging, serving_input_receiver_fn(p.serving_inputs))
    if isinstance(written, bytes):
      written = written.decode()
    if before_publishing:
      before_publishing(written)
    tf.io.gfile.rename(written, export_dir)
  finally:
    if tf.io.gfile.exists(staging):
      tf.io.gfile.rmtree(staging)
  return export_dir


def verify(estimator: tf.estimator.Estimator, p: Plan, staged: str,
           log) -> export_check.Verdict:
  """The export check (trainer.training.export_check) against Estimator's
  own predictions from its final checkpoint (the model_fn in PREDICT mode,
  every variable restored by name), on the first rows of the evaluation
  data."""

  def predict(features, labels):
    batches = list(estimator.predict(
        lambda: tf.data.Dataset.from_tensors((features, labels)),
        checkpoint_path=estimator.latest_checkpoint(),
        yield_single_examples=False))
    return {name: np.concatenate([batch[name] for batch in batches])
            for name in batches[0]}
  return export_check.verify(p.job.resolved_export_dir, staged,
                             p.job.run.verify_export_rows,
                             data.rows_reader(p.eval_files, p.eval_inputs),
                             predict, log)


def _training_hooks(p: Plan, task, model_dir: str, eval_dir: str, log,
                    watch: Optional[preemption.ChiefWatch] = None):
  """The hooks of a training task: progress, the NaN guard, early stopping,
  the profile and preemption (the chief's part, or a worker's)."""
  job, chief = p.job, tf_config.is_chief(task)
  hooks = [
      hooks_lib.ProgressHook(batch_size=job.data.batch_size,
                             every_n_steps=job.run.log_every_steps,
                             max_steps=job.run.train_steps, log=log,
                             summary_dir=model_dir if chief else None),
      hooks_lib.NonFiniteLossHook(learning_rate=job.head.learning_rate,
                                  optimizer=job.head.optimizer),
  ]
  if job.run.early_stopping_metric:
    hooks.append(hooks_lib.StopWhenNotImproving(
        model_dir, eval_dir, job.run.early_stopping_metric,
        job.run.early_stopping_patience, log) if chief else
                 hooks_lib.StopWhenMarked(model_dir))
  if watch:
    hooks.append(hooks_lib.PreemptionHook(watch, model_dir))
  elif task and task.type == tf_config.WORKER:
    hooks.append(hooks_lib.PauseWhileChiefAway(model_dir, log))
  if job.run.profile_steps and chief:
    hooks.append(hooks_lib.ProfileHook(*job.run.profile_steps,
                                       logdir=model_dir, log=log))
  return hooks


def _exporters(p: Plan):
  if not p.job.run.export_best:
    return ()
  return (exporters.BestExport(
      p.job.run.export_best, p.job.model_dir,
      serving_input_receiver_fn(p.serving_inputs)),)


def _step_of_latest(model_dir: str) -> int:
  return int(tf.train.load_variable(tf.train.latest_checkpoint(model_dir),
                                    "global_step"))


def run(p: Plan, config: Optional[tf_config.TfConfig] = None,
        log: Callable[[str], None] = print,
        notice: Optional[preemption.Notice] = None) -> Result:
  """Trains and evaluates this process's task; exports on the chief.

  Args:
    p: the checked plan.
    config: this task's TF_CONFIG; None for a single process.
    log: receives progress lines.
    notice: this task's SIGTERM as a notice (the chief's and the ps's).

  Raises:
    nan_guard.Diverged: the loss became NaN or infinite.
    preemption.Preempted: SIGTERM, and this task did what it should.
  """
  job = p.job
  task = config.task if config else None
  task_type = task.type if task else None
  if task_type == tf_config.PS:
    return serve.serve(job, config, log, notice)
  estimator = estimator_for(p, config.for_estimator() if config else None)
  if task_type == tf_config.WORKER and tf.io.gfile.exists(
      job.resolved_export_dir):
    log("The chief's final export exists: training is over, nothing to do.")
    job_end.mark_finished(job.model_dir, task, job.run.train_steps)
    return Result(task_type=task_type, metrics=None,
                  checkpoint=estimator.latest_checkpoint(), export_dir=None)
  if tf_config.is_chief(task) and p.job_done:
    log(job_end.DONE_NOTE % job.resolved_export_dir)
    preemption.clear_chief_away(job.model_dir)
    if config and config.evaluator:
      job_end.wait_for_final_evaluation(
          lambda: eval_events.last_step(estimator.eval_dir()),
          _step_of_latest(job.model_dir),
          timeout_secs=job.cluster.final_evaluation_wait_secs, log=log)
    return Result(task_type=task_type, metrics=None,
                  checkpoint=estimator.latest_checkpoint(),
                  export_dir=job.resolved_export_dir)
  if tf_config.is_chief(task):
    job_end.clear_markers(job.model_dir)
    early_stopping.clear(job.model_dir)
  train_input, eval_input = input_fns(p, config, log)
  watch = preemption.ChiefWatch(notice, job.model_dir, log) if (
      tf_config.is_chief(task) and task_type != tf_config.EVALUATOR) else None
  hooks = _training_hooks(p, task, job.model_dir, estimator.eval_dir(), log,
                          watch)
  train_spec = tf.estimator.TrainSpec(
      train_input, max_steps=job.run.train_steps, hooks=hooks,
      saving_listeners=(_EvaluateUntrained(estimator, eval_input,
                                           job.run.eval_steps),)
      if config is None and eval_input and job.run.eval_untrained else ())
  eval_spec = tf.estimator.EvalSpec(
      eval_input or _never_evaluated, steps=job.run.eval_steps, name=None,
      start_delay_secs=job.run.eval_start_delay_secs,
      throttle_secs=job.run.eval_throttle_secs, exporters=_exporters(p))
  metrics = None
  with (readiness.poll_every(job.cluster.readiness_poll_secs) if config
        else contextlib.nullcontext()):
    if task_type == tf_config.EVALUATOR:
      metrics = evaluator.evaluate_continuously(
          estimator, eval_input, eval_steps=job.run.eval_steps,
          start_delay_secs=job.run.eval_start_delay_secs,
          throttle_secs=job.run.eval_throttle_secs,
          export_dir=job.resolved_export_dir, exporters=_exporters(p),
          untrained=job.run.eval_untrained, log=log)
    elif config is None and eval_input is None:
      estimator.train(train_input, max_steps=job.run.train_steps,
                      hooks=hooks)
    else:
      outcome = tf.estimator.train_and_evaluate(estimator, train_spec,
                                                eval_spec)
      if isinstance(outcome, tuple):  # Local: (metrics, export results).
        metrics = outcome[0]
  if watch and watch.preempted:
    raise preemption.Preempted(
        "The chief stopped on SIGTERM at step %d and saved it in %s; "
        "exiting %d for a restart." % (
            _step_of_latest(job.model_dir),
            estimator.latest_checkpoint(), preemption.EXIT_CODE))
  export_dir, verdict = None, None
  if task_type == tf_config.WORKER:
    job_end.mark_finished(job.model_dir, task, job.run.train_steps)
  if tf_config.is_chief(task):
    export_dir, verdict = export_check.checked_export(
        lambda before_publishing: export(
            estimator, p, job.resolved_export_dir,
            before_publishing=before_publishing),
        lambda staged: verify(estimator, p, staged, log))
    if config and config.evaluator:
      job_end.wait_for_final_evaluation(
          lambda: eval_events.last_step(estimator.eval_dir()),
          _step_of_latest(job.model_dir),
          timeout_secs=job.cluster.final_evaluation_wait_secs, log=log)
  return Result(task_type=task_type,
                metrics={k: float(v) for k, v in metrics.items()}
                if metrics else None,
                checkpoint=estimator.latest_checkpoint(),
                export_dir=export_dir,
                export_check=verdict.describe() if export_dir else None)
