"""Runs one task of a job on the Keras backend, on a checked plan.

The roles are TF2's parameter-server training's, under the same TF_CONFIG
as the Estimator's:

* no TF_CONFIG: one process trains, evaluates (on each checkpoint, at most
  every --eval_throttle_secs, and at the end) and exports;
* the chief is the coordinator: it builds the model under
  `ParameterServerStrategy` (variables on the ps tasks), schedules the
  steps on the workers (trainer.keras.loop), checkpoints, and exports when
  done;
* workers and ps run a `tf.distribute.Server` and end by themselves once
  the chief's export exists (trainer.training.job_end), on every engine;
* the evaluator is not part of the training cluster: it evaluates each new
  checkpoint and the final one, then ends (trainer.keras.evaluation).

The chief connects to its cluster after its pre-flight (`connect`, called
by the entry point: trainer.keras.cluster says why).
"""

import json
import os
import time
from typing import Callable, Optional

import tensorflow as tf
import tf_keras

from harness import errors
from harness import tf_config
from trainer.config import job as job_lib
from trainer.inputs import data
from trainer.inputs import data_share
from trainer.keras import cluster as cluster_lib
from trainer.keras import data_service
from trainer.keras import evaluation
from trainer.keras import export as export_lib
from trainer.keras import loop
from trainer.keras import partitioning
from trainer.keras import placement
from trainer.keras import serve
from trainer.keras import state as state_lib
from trainer.keras import warm_start
from trainer.plan import preflight
from trainer.training import early_stopping
from trainer.training import eval_events
from trainer.training import job_end
from trainer.training import preemption
from trainer.training import result as result_lib
from trainer.training import warm_start as warm_start_lib

Result = result_lib.Result


def connect(config: Optional[tf_config.TfConfig],
            ps_shard_bytes: int = partitioning.DEFAULT_SHARD_BYTES) -> None:
  """After the pre-flight: the chief of a cluster joins it, splitting
  variables of more than twice `ps_shard_bytes` over the ps."""
  if config is not None and tf_config.is_chief(config.task):
    cluster_lib.connect(config, ps_shard_bytes)


def dataset_fns(p: preflight.Plan, num_workers: int = 0,
                log: Callable[[str], None] = lambda line: None,
                service: Optional[str] = None):
  """(train input_fn, eval input_fn or None without eval files): one
  process's, or, with `num_workers`, the one every worker of a cluster runs:
  through the tf.data service at `service` (trainer.keras.data_service),
  else reading every file (trainer.inputs.data_share says why); said to
  `log`."""
  files = len(p.train_files)
  if num_workers and not service:
    share = data_share.for_keras_workers(files, num_workers)
  else:  # Every file, with the run's seed: the service splits them.
    share = data_share.decide(files, tasks=1, index=0,
                              seed=p.job.run.random_seed)
  if not service:  # The service's dispatcher says what it does.
    log(share.note)
  return data.input_fns(p.train_files, p.eval_files, p.inputs,
                        batch_size=p.job.data.batch_size, share=share,
                        shuffle_buffer=p.job.data.shuffle_buffer,
                        eval_config=p.eval_inputs, service=service)


def settings(p: preflight.Plan) -> loop.Settings:
  job, run = p.job, p.job.run
  secs = run.save_checkpoints_secs
  if not run.save_checkpoints_steps and not secs:
    secs = job_lib.DEFAULT_SAVE_CHECKPOINTS_SECS
  return loop.Settings(
      train_steps=run.train_steps,
      steps_per_execution=run.steps_per_execution,
      batch_size=job.data.batch_size, log_every_steps=run.log_every_steps,
      learning_rate=job.head.learning_rate, optimizer=job.head.optimizer,
      cadence=loop.Cadence(run.save_checkpoints_steps, secs),
      model_dir=job.model_dir,
      early_stopping_metric=run.early_stopping_metric,
      early_stopping_patience=run.early_stopping_patience,
      profile_steps=tuple(run.profile_steps))


def _start_or_resume(state: state_lib.State, manager, p: preflight.Plan,
                     log: Callable[[str], None]) -> None:
  """Resumes from the latest checkpoint of the model directory; a new run
  warm-starts where asked."""
  if manager.latest_checkpoint:
    state_lib.restore(state, manager.latest_checkpoint)
    log("Resuming from %s (global step %d)." % (
        manager.latest_checkpoint, int(state.step.numpy())))
  elif p.warm_start:
    checkpoint, names = p.warm_start
    warm_start.apply(state.variables, checkpoint, names)
    log("Warm-started %d variable(s) from %s." % (len(names), checkpoint))


def _in_process_evaluations(p: preflight.Plan, state, eval_fn, log):
  """The single process's on_checkpoint: an evaluation (throttled)."""
  job = p.job
  evaluate = evaluation.make_evaluate(state.model, job.head)
  recorder = evaluation.Recorder(job.model_dir, p.spec, job.head,
                                 job.run.export_best, log,
                                 user=p.user_model)
  last = {"time": None, "metrics": None}

  def on_checkpoint(path: str, step: int, force: bool = False):
    if step == 0 and not job.run.eval_untrained:
      return  # The model before its first step (trainer.training.eval_loop).
    now = time.monotonic()
    if not force and last["time"] is not None and (
        now - last["time"] < job.run.eval_throttle_secs):
      return
    last["time"] = now
    metrics = dict(evaluate(eval_fn(), job.run.eval_steps),
                   global_step=step)
    recorder.record(metrics, step, path)
    last["metrics"] = metrics
  return on_checkpoint, last


def seed_weights(seed: Optional[int]) -> None:
  """The model's initial weights from `seed`, as the Estimator's graph-level
  seed makes them: tf_keras draws an unseeded initializer's seed from
  Python's `random`, so its seeds (Python, NumPy, TF) are set, in this
  task's process. None: left random."""
  if seed is not None:
    tf_keras.utils.set_random_seed(seed)


def _train_here(p: preflight.Plan, log,
                watch: Optional[preemption.ChiefWatch] = None) -> Result:
  job = p.job
  train_fn, eval_fn = dataset_fns(p, log=log)
  seed_weights(job.run.random_seed)
  state = state_lib.create(p.spec, job.head, user=p.user_model)
  manager = state_lib.manager(state, job.model_dir,
                              job.run.keep_checkpoint_max)
  _start_or_resume(state, manager, p, log)
  early_stopping.clear(job.model_dir)
  on_checkpoint, last = (_in_process_evaluations(p, state, eval_fn, log)
                         if eval_fn else (lambda path, step: None, None))
  step = loop.train(state, loop.LocalSteps(state, job.head,
                                           train_fn), manager, settings(p),
                    log=log, on_checkpoint=on_checkpoint,
                    eval_dir=evaluation.eval_dir(job.model_dir), watch=watch)
  metrics = None
  if eval_fn:
    if not last["metrics"] or last["metrics"]["global_step"] != step:
      on_checkpoint(manager.latest_checkpoint, step, force=True)
    metrics = last["metrics"]
  export_dir, verdict = export_lib.export_checked(
      p, manager.latest_checkpoint, state.model, log)
  return Result(task_type=None, metrics=metrics,
                checkpoint=manager.latest_checkpoint, export_dir=export_dir,
                export_check=verdict.describe())


def _coordinate(p: preflight.Plan, config: tf_config.TfConfig,
                log, watch: Optional[preemption.ChiefWatch] = None) -> Result:
  """The chief: the coordinator of the parameter-server cluster."""
  job = p.job
  if p.job_done:  # Restarted after its final export.
    log(job_end.DONE_NOTE % job.resolved_export_dir)
    if config.evaluator:
      job_end.wait_for_final_evaluation(
          lambda: eval_events.last_step(evaluation.eval_dir(job.model_dir)),
          warm_start_lib.global_step(job.model_dir),
          timeout_secs=job.cluster.final_evaluation_wait_secs, log=log)
    return Result(task_type=config.task.type, metrics=None,
                  checkpoint=tf.train.latest_checkpoint(job.model_dir),
                  export_dir=job.resolved_export_dir)
  job_end.clear_markers(job.model_dir)
  early_stopping.clear(job.model_dir)
  strategy, coordinator = cluster_lib.connect(config,
                                             job.cluster.ps_shard_bytes)
  seed_weights(job.run.random_seed)
  num_ps = len(config.cluster.get(tf_config.PS, ()))
  with strategy.scope(), placement.by_size(num_ps, partitioning.make(
      job.cluster.ps_shard_bytes, num_ps)):
    state = state_lib.create(p.spec, job.head, user=p.user_model)
  log(describe_placement(state, job.model_dir))
  manager = state_lib.manager(state, job.model_dir,
                              job.run.keep_checkpoint_max)
  _start_or_resume(state, manager, p, log)
  num_workers = len(config.cluster[tf_config.WORKER])
  service = (data_service.start_dispatcher(
      job.model_dir, config.cluster[tf_config.CHIEF][0], log)
             if job.data.data_service else None)
  train_fn, _ = dataset_fns(p, num_workers, log, service)
  runner = loop.ClusterSteps(state, job.head, train_fn, strategy,
                             coordinator, num_workers)
  loop.train(state, runner, manager, settings(p), log=log,
             eval_dir=evaluation.eval_dir(job.model_dir), watch=watch)
  checkpoint = manager.latest_checkpoint
  export_dir, verdict = export_lib.export_checked(p, checkpoint, state.model,
                                                 log)
  if config.evaluator:
    job_end.wait_for_final_evaluation(
        lambda: eval_events.last_step(evaluation.eval_dir(
            job.model_dir)),
        warm_start_lib.global_step(checkpoint),
        timeout_secs=job.cluster.final_evaluation_wait_secs, log=log)
  return Result(task_type=config.task.type, metrics=None,
                checkpoint=checkpoint, export_dir=export_dir,
                export_check=verdict.describe())


PLACEMENT_FILE = "placement.json"


def describe_placement(state: state_lib.State, model_dir: str) -> str:
  """Writes MODEL_DIR/placement.json (variable name -> device, or the
  devices of its shards where it is split: whole variables by size,
  trainer.keras.placement) and says how many bytes each ps holds and which
  variables are split."""
  where, loads, split = {}, {}, []
  for name, variable in sorted(state.variables.items()):
    shards = placement.placed(variable)
    devices = [shard.device for _, _, _, shard in shards]
    where[name] = devices if len(shards) > 1 else devices[0]
    if len(shards) > 1:
      split.append("%s in %d" % (name, len(shards)))
    for job, task, size, _ in shards:
      key = "%s-%d" % (job, task)
      loads[key] = loads.get(key, 0) + size
  tf.io.gfile.makedirs(model_dir)
  with tf.io.gfile.GFile(os.path.join(model_dir, PLACEMENT_FILE), "w") as f:
    json.dump(where, f, indent=1)
  return "Variables placed: %s; split: %s (%s)." % (
      ", ".join("%s %d KB" % (key, (size + 1023) // 1024)
                for key, size in sorted(loads.items())),
      ", ".join(split) or "none", PLACEMENT_FILE)


def check_model(p: preflight.Plan) -> None:
  """The pre-flight's part for this backend: an Estimator model_fn cannot
  run here (a user's Keras model, `model`, was built by the pre-flight)."""
  if p.job.model.model_fn:
    raise errors.FlagError(
        "`model_fn`=%s is an Estimator model_fn, and this run's backend is "
        "keras (%s); give your Keras model builder as `model`=MODULE:"
        "FUNCTION instead: FUNCTION(inputs, hub_layer) returns a "
        "tf_keras.Model (docs/training.md, 'Your own model')." % (
            p.job.model.model_fn, p.backend.why if p.backend else
            "--backend"))


def run(p: preflight.Plan, config: Optional[tf_config.TfConfig] = None,
        log: Callable[[str], None] = print,
        notice: Optional[preemption.Notice] = None) -> Result:
  """Trains and evaluates this process's task; exports on the chief.

  `notice`: this task's SIGTERM as a notice (the chief's and the ps's).

  Raises:
    nan_guard.Diverged: the loss became NaN or infinite.
    preemption.Preempted: SIGTERM, and this task did what it should.
  """
  job = p.job
  if config is None:
    return _train_here(p, log, preemption.ChiefWatch(notice, job.model_dir,
                                                     log))
  task = config.task
  if task.type in (tf_config.PS, tf_config.WORKER):
    return serve.serve(job, config, log, notice)
  if task.type == tf_config.EVALUATOR:
    _, eval_fn = dataset_fns(p)
    metrics = evaluation.evaluate_continuously(
        p.spec, job.head, eval_fn, model_dir=job.model_dir,
        eval_steps=job.run.eval_steps,
        throttle_secs=job.run.eval_throttle_secs,
        export_dir=job.resolved_export_dir, export_best=job.run.export_best,
        start_delay_secs=job.run.eval_start_delay_secs,
        untrained=job.run.eval_untrained, log=log, user=p.user_model)
    return Result(task_type=task.type, metrics=metrics,
                  checkpoint=tf.train.latest_checkpoint(job.model_dir),
                  export_dir=None)
  return _coordinate(p, config, log, preemption.ChiefWatch(
      notice, job.model_dir, log))
