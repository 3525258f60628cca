"""Plans and runs one task of an Estimator training job on a hub model.

`plan` is the pre-flight: it checks the model, the data files and how they
fit together, and writes nothing. `run` trains and evaluates with
`tf.estimator.train_and_evaluate`, for whatever task TF_CONFIG names (or a
single process when there is none), and, on the chief, exports a serving
SavedModel.
"""

import dataclasses
import os
import shutil
import tempfile
from typing import Callable, Dict, Mapping, Optional, Sequence

import tensorflow as tf

from trainer import config as config_lib
from trainer import data
from trainer import errors
from trainer import input_map as input_map_lib
from trainer import model as model_lib
from trainer import model_spec as model_spec_lib
from trainer import progress
from trainer import readiness
from trainer import validate


@dataclasses.dataclass(frozen=True)
class ModelOptions:
  """How to load the hub model (see trainer.model_spec.inspect_model)."""
  handle: str
  trainable: bool = False
  tags: Optional[Sequence[str]] = None
  signature: Optional[str] = None
  output_key: Optional[str] = None
  signature_outputs_as_dict: bool = False


@dataclasses.dataclass(frozen=True)
class JobConfig:
  """Everything one training job needs, as plain values."""
  model: ModelOptions
  head: model_lib.HeadConfig
  train_files: Sequence[str]
  eval_files: Sequence[str]
  model_dir: str
  label_key: str = "label"
  input_map: Mapping[str, str] = dataclasses.field(default_factory=dict)
  batch_size: int = 32
  train_steps: int = 1000
  eval_steps: Optional[int] = None
  export_dir: Optional[str] = None
  save_checkpoints_steps: Optional[int] = None
  save_checkpoints_secs: Optional[int] = None
  keep_checkpoint_max: int = 5
  log_every_steps: int = 100
  eval_throttle_secs: int = 10
  eval_start_delay_secs: int = 0
  max_worker_delay_secs: int = config_lib.DEFAULT_MAX_WORKER_DELAY_SECS
  session_creation_timeout_secs: int = (
      config_lib.DEFAULT_SESSION_CREATION_TIMEOUT_SECS)
  share_cluster_devices: bool = True
  readiness_poll_secs: float = readiness.DEFAULT_POLL_SECS
  random_seed: Optional[int] = None
  validate_data: bool = True

  @property
  def resolved_export_dir(self) -> str:
    return self.export_dir or os.path.join(self.model_dir, "export")


@dataclasses.dataclass(frozen=True)
class Plan:
  """A checked job: the model, the files, and the input pipeline config."""
  job: JobConfig
  spec: model_spec_lib.ModelSpec
  train_files: Sequence[str]
  eval_files: Sequence[str]
  inputs: data.InputConfig
  train_examples: Optional[int] = None  # Counted when the data is checked.
  eval_examples: Optional[int] = None


@dataclasses.dataclass(frozen=True)
class Result:
  """What a task did: final metrics (where it evaluated) and its outputs."""
  task_type: Optional[str]
  metrics: Optional[Dict[str, float]]
  checkpoint: Optional[str]
  export_dir: Optional[str]


def _check_numbers(job: JobConfig) -> None:
  positive = {"batch_size": job.batch_size, "train_steps": job.train_steps,
              "log_every_steps": job.log_every_steps}
  if job.eval_steps is not None:
    positive["eval_steps"] = job.eval_steps
  for name, value in positive.items():
    if value <= 0:
      raise errors.FlagError("--%s (%d) must be a positive integer." %
                             (name, value))
  if job.head.n_classes < 0 or job.head.n_classes == 1:
    raise errors.FlagError(
        "--n_classes (%d) must be 0 (regression) or at least 2." %
        job.head.n_classes)
  if job.head.optimizer not in model_lib.OPTIMIZERS:
    raise errors.FlagError("--optimizer=%s is not one of: %s." % (
        job.head.optimizer, ", ".join(sorted(model_lib.OPTIMIZERS))))
  if job.readiness_poll_secs <= 0:
    raise errors.FlagError("--readiness_poll_secs (%g) must be positive." %
                           job.readiness_poll_secs)
  if job.head.learning_rate <= 0:
    raise errors.FlagError("--learning_rate (%g) must be positive." %
                           job.head.learning_rate)
  if any(units <= 0 for units in job.head.hidden_units):
    raise errors.FlagError("--hidden_units (%s) must all be positive." %
                           ",".join(map(str, job.head.hidden_units)))
  if not job.model_dir:
    raise errors.FlagError("--model_dir is required: where checkpoints go.")
  config_lib.check_settings(
      save_checkpoints_steps=job.save_checkpoints_steps,
      save_checkpoints_secs=job.save_checkpoints_secs,
      max_worker_delay_secs=job.max_worker_delay_secs,
      session_creation_timeout_secs=job.session_creation_timeout_secs)


def plan(job: JobConfig) -> Plan:
  """Checks the job before anything is written or trained.

  Raises:
    errors.HarnessError: with a message that names the problem.
  """
  _check_numbers(job)
  spec = model_spec_lib.inspect_model(
      job.model.handle, trainable=job.model.trainable, tags=job.model.tags,
      signature=job.model.signature, output_key=job.model.output_key,
      signature_outputs_as_dict=job.model.signature_outputs_as_dict)
  data.check_shapes(spec.inputs)
  train_files = data.expand(job.train_files, "--train_files")
  eval_files = data.expand(job.eval_files, "--eval_files")
  columns = data.read_columns(train_files)
  eval_columns = data.read_columns(eval_files)
  if set(eval_columns) != set(columns):
    raise errors.DataError(
        "Eval data columns (%s) differ from train data columns (%s)." %
        (", ".join(eval_columns), ", ".join(columns)))
  mapping = input_map_lib.resolve(list(spec.inputs), list(columns),
                                  job.input_map, job.label_key)
  label_dtype = tf.int64 if job.head.n_classes else tf.float32
  inputs = data.InputConfig(inputs=spec.inputs, input_map=mapping,
                            columns=columns, label_key=job.label_key,
                            label_dtype=label_dtype)
  counts = {}
  if job.validate_data:
    counts = dict(
        train_examples=validate.check_files(
            train_files, inputs, job.head.n_classes, "--train_files"),
        eval_examples=validate.check_files(
            eval_files, inputs, job.head.n_classes, "--eval_files"))
  return Plan(job=job, spec=spec, train_files=train_files,
              eval_files=eval_files, inputs=inputs, **counts)


def estimator_for(p: Plan) -> tf.estimator.Estimator:
  job = p.job
  run_config = config_lib.run_config(
      model_dir=job.model_dir,
      save_checkpoints_steps=job.save_checkpoints_steps,
      save_checkpoints_secs=job.save_checkpoints_secs,
      keep_checkpoint_max=job.keep_checkpoint_max,
      log_step_count_steps=job.log_every_steps,
      max_worker_delay_secs=job.max_worker_delay_secs,
      session_creation_timeout_secs=job.session_creation_timeout_secs,
      share_cluster_devices=job.share_cluster_devices,
      random_seed=job.random_seed)
  return tf.estimator.Estimator(
      model_fn=model_lib.make_model_fn(p.spec, job.head), config=run_config)


def input_fns(p: Plan):
  """(train input_fn, eval input_fn) for the plan."""
  job = p.job
  train = data.make_input_fn(p.train_files, p.inputs,
                             batch_size=job.batch_size, training=True,
                             seed=job.random_seed)
  evaluate = data.make_input_fn(p.eval_files, p.inputs,
                                batch_size=job.batch_size, training=False)
  return train, evaluate


def export(estimator: tf.estimator.Estimator, p: Plan,
           export_dir: str) -> str:
  """Exports the latest checkpoint to exactly `export_dir`, atomically.

  Estimator writes into a timestamped folder; it is written next to the
  target first and renamed, so a failed export leaves nothing half-written.
  """
  parent = os.path.dirname(os.path.abspath(export_dir))
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(prefix=".export-", dir=parent)
  try:
    written = estimator.export_saved_model(
        staging, data.serving_input_receiver_fn(p.spec.inputs))
    os.rename(written, export_dir)
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  return export_dir


def _task_type(run_config: tf.estimator.RunConfig) -> Optional[str]:
  """The task TF_CONFIG names; None for a single process."""
  if run_config.task_type == config_lib.EVALUATOR:
    return config_lib.EVALUATOR  # Its cluster_spec is empty, as it is local.
  return run_config.task_type if run_config.cluster_spec else None


def last_eval_metrics(eval_dir: str) -> Optional[Dict[str, float]]:
  """The scalars of the latest evaluation written to `eval_dir`'s events."""
  latest = {}
  for path in sorted(tf.io.gfile.glob(os.path.join(eval_dir, "events.*"))):
    for record in tf.data.TFRecordDataset(path):
      event = tf.compat.v1.Event.FromString(record.numpy())
      values = {v.tag: v.simple_value for v in event.summary.value
                if v.HasField("simple_value")}
      if values and event.step >= latest.get("global_step", -1):
        latest = dict(values, global_step=float(event.step))
  return latest or None


# How often the evaluator starts over after losing a checkpoint it chose.
EVALUATOR_RETRIES = 20


def _lost_checkpoint(error: Exception) -> bool:
  """The chief deleted the checkpoint the evaluator was about to restore."""
  return (isinstance(error, tf.errors.NotFoundError) or
          "is not a valid checkpoint" in str(error))


def _evaluate_continuously(estimator, train_spec, eval_spec, log):
  """The evaluator's loop, surviving checkpoints deleted under it.

  The chief keeps only the newest checkpoints; an evaluator that lags can
  pick one that is deleted before it is restored. It then evaluates the
  latest checkpoint instead of dying.
  """
  for attempt in range(EVALUATOR_RETRIES + 1):
    try:
      return tf.estimator.train_and_evaluate(estimator, train_spec,
                                             eval_spec)
    except (ValueError, tf.errors.NotFoundError) as e:
      if not _lost_checkpoint(e) or attempt == EVALUATOR_RETRIES:
        raise
      log("The checkpoint chosen for evaluation was deleted before it was "
          "restored (%s); evaluating the latest one." %
          str(e).splitlines()[0][:200])


def run(p: Plan, log: Callable[[str], None] = print) -> Result:
  """Trains and evaluates this process's task; exports on the chief."""
  job = p.job
  estimator = estimator_for(p)
  if _task_type(estimator.config):
    readiness.set_readiness_poll(job.readiness_poll_secs)
  train_input, eval_input = input_fns(p)
  hook = progress.ProgressHook(batch_size=job.batch_size,
                               every_n_steps=job.log_every_steps,
                               max_steps=job.train_steps, log=log)
  train_spec = tf.estimator.TrainSpec(train_input, max_steps=job.train_steps,
                                      hooks=[hook])
  eval_spec = tf.estimator.EvalSpec(
      eval_input, steps=job.eval_steps, name=None,
      start_delay_secs=job.eval_start_delay_secs,
      throttle_secs=job.eval_throttle_secs)
  task_type = _task_type(estimator.config)
  if task_type == config_lib.EVALUATOR:
    outcome = _evaluate_continuously(estimator, train_spec, eval_spec, log)
  else:
    outcome = tf.estimator.train_and_evaluate(estimator, train_spec,
                                              eval_spec)
  metrics = None
  if isinstance(outcome, tuple):  # Local training returns (metrics, exports).
    metrics = {k: float(v) for k, v in outcome[0].items()}
  elif task_type == config_lib.EVALUATOR:
    metrics = last_eval_metrics(estimator.eval_dir())
  export_dir = None
  if task_type in (None, config_lib.CHIEF, config_lib.MASTER):
    export_dir = export(estimator, p, job.resolved_export_dir)
  return Result(task_type=task_type, metrics=metrics,
                checkpoint=estimator.latest_checkpoint(),
                export_dir=export_dir)
