"""What one training job is: plain settings, their defaults, and their check.

A `JobConfig` is built once (by the entry point, from flags) and checked once
(`validate`), before the model and data are inspected (trainer.preflight).
Its parts are nested by what uses them, and handed on whole:

* `ModelOptions`: how the hub model is loaded (trainer.model_spec);
* `HeadConfig`: the layers on top of it and their optimizer (each
  backend's model: trainer.estimator.model, trainer.keras.model);
* `DataOptions`: the files, columns and batches (trainer.data);
* `RunOptions`: the backend, the training budget, checkpoints and what the
  run does besides training (trainer.backends; the backends' train.py);
* `ClusterOptions`: what only matters on a cluster (the Estimator's
  trainer.estimator.config and .readiness; trainer.job_end).

The defaults here are the only ones: the flags take theirs from these
fields. No TensorFlow is imported, so entry points can check settings fast.
Errors name a setting in backticks, by its plain name (harness.errors).
"""

import dataclasses
import os
from typing import Mapping, Optional, Sequence, Tuple

from harness import errors

# Each backend's optimizers.OPTIMIZERS: the first is the default. lazy_adam is
# Adam whose sparse updates (embedding rows) touch only the rows of the batch.
OPTIMIZERS = ("lazy_adam", "adam", "adagrad", "rmsprop", "sgd")
# How a step is run (trainer.backends): "auto" picks the Estimator where
# tf.estimator exists (TF <= 2.15), the Keras backend otherwise.
BACKENDS = ("auto", "estimator", "keras")
# How much of the data the pre-flight checks (trainer.validate).
VALIDATE_DATA = ("sample", "full", "off")
# The save cadence when neither steps nor seconds are set (Estimator's own
# default; the Keras backend keeps it).
DEFAULT_SAVE_CHECKPOINTS_SECS = 600
# The metrics each head reports (both backends), for --export_best and
# --early_stopping_metric.
CLASSIFICATION_METRICS = ("accuracy", "loss", "data_loss")
REGRESSION_METRICS = ("rmse", "mae", "loss", "data_loss")


@dataclasses.dataclass(frozen=True)
class ModelOptions:
  """How to load the hub model (see trainer.model_spec.inspect_model).

  Attributes:
    module_handle: directory of the hub model.
    trainable: fine-tune its variables (TF2 `__call__` only).
    tags: tag set of the meta graph to load; None for the default.
    signature: signature to call instead of `__call__`.
    output_key: output of the signature to train on.
    signature_outputs_as_dict: train on all outputs of the signature.
  """
  module_handle: str = ""
  trainable: bool = False
  tags: Optional[Sequence[str]] = None
  signature: Optional[str] = None
  output_key: Optional[str] = None
  signature_outputs_as_dict: bool = False


@dataclasses.dataclass(frozen=True)
class HeadConfig:
  """The layers on top of the hub model and how they are trained.

  Attributes:
    n_classes: number of classes; 0 for a regression head.
    hidden_units: sizes of the ReLU layers between hub model and output.
    optimizer: one of OPTIMIZERS (lazy_adam: see the backends'
      optimizers.py).
    learning_rate: the optimizer's learning rate.
  """
  n_classes: int
  hidden_units: Sequence[int] = ()
  optimizer: str = OPTIMIZERS[0]
  learning_rate: float = 0.01


@dataclasses.dataclass(frozen=True)
class DataOptions:
  """Where the examples come from and how they are batched.

  Attributes:
    train_files, eval_files: globs of CSV or TFRecord files. Without
      evaluation files the job trains without evaluating.
    label_key: the label column.
    input_map: model input name -> data column, where they differ.
    batch_size: examples per step and task.
    validate_data: how much of the data to check before training
      (trainer.validate): 'sample' (every file's format and first rows; the
      cost does not grow with the files' size), 'full' (every row) or
      'off'.
    shard_files: each training task of a cluster reads its own files
      where there are enough (trainer.data_share).
    shuffle_buffer: records in the training shuffle's buffer; 0 shuffles
      only the files' order (for data shuffled when it was written).
  """
  train_files: Sequence[str] = ()
  eval_files: Sequence[str] = ()
  label_key: str = "label"
  input_map: Mapping[str, str] = dataclasses.field(default_factory=dict)
  batch_size: int = 32
  validate_data: str = "sample"
  shard_files: bool = True
  shuffle_buffer: int = 10000


@dataclasses.dataclass(frozen=True)
class RunOptions:
  """The backend, the training budget, checkpoint settings, and what the
  run does besides training.

  Attributes:
    warm_start_from: a model directory or checkpoint to start from
      (trainer.warm_start); empty: none.
    warm_start_vars: a regular expression choosing which of the model's
      variables to take from it.
    export_best: a metric: keep an export of its best evaluation
      (trainer.best_export); empty: none.
    early_stopping_metric, early_stopping_patience: stop once the metric
      has not improved for that many evaluations (trainer.early_stopping).
    profile_steps: (first, last) global steps to profile; empty: none.
    backend: one of BACKENDS (trainer.backends).
    steps_per_execution: Keras backend: training steps per call of the
      step function (per scheduled closure on a cluster); the Estimator
      runs one step per session run.
  """
  backend: str = BACKENDS[0]
  steps_per_execution: int = 10
  train_steps: int = 1000
  eval_steps: Optional[int] = None
  save_checkpoints_steps: Optional[int] = None
  save_checkpoints_secs: Optional[int] = None
  keep_checkpoint_max: int = 5
  log_every_steps: int = 100
  eval_throttle_secs: int = 10
  eval_start_delay_secs: int = 0
  random_seed: Optional[int] = None
  warm_start_from: str = ""
  warm_start_vars: str = ".*"
  export_best: str = ""
  early_stopping_metric: str = ""
  early_stopping_patience: int = 3
  profile_steps: Tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class ClusterOptions:
  """Settings that matter only when TF_CONFIG names a cluster.

  Attributes:
    share_cluster_devices: set share_cluster_devices_in_session (only turned
      off to show the failure it prevents).
    max_worker_delay_secs: longest deliberate start delay of a worker
      (Estimator: 60; here 0, for small clusters).
    session_creation_timeout_secs: how long a worker waits for the chief's
      session (Estimator: 7200).
    readiness_poll_secs: how often a waiting worker checks whether the chief
      made the model ready (TF: 30).
    final_evaluation_wait_secs: where TF_CONFIG lists an evaluator in the
      cluster (TFJob), how long the chief waits after its export for the
      evaluator's final evaluation (trainer.job_end).
    serve_timeout_secs: how long a ps (and a Keras worker) serves waiting
      for the chief's final export before it gives up (trainer.job_end).
  """
  share_cluster_devices: bool = True
  max_worker_delay_secs: int = 0
  session_creation_timeout_secs: int = 300
  readiness_poll_secs: float = 1.0
  final_evaluation_wait_secs: int = 600
  serve_timeout_secs: int = 7 * 24 * 3600


@dataclasses.dataclass(frozen=True)
class JobConfig:
  """Everything one training job needs, as plain values."""
  model: ModelOptions
  head: HeadConfig
  data: DataOptions
  model_dir: str
  run: RunOptions = RunOptions()
  cluster: ClusterOptions = ClusterOptions()
  export_dir: str = ""

  @property
  def resolved_export_dir(self) -> str:
    return self.export_dir or os.path.join(self.model_dir, "export")


def default(options_class, name: str):
  """The default of one setting, e.g. default(RunOptions, 'train_steps')."""
  field, = [f for f in dataclasses.fields(options_class) if f.name == name]
  if field.default_factory is not dataclasses.MISSING:
    return field.default_factory()
  return field.default


def _positive(values: Mapping[str, Optional[float]]) -> None:
  for name, value in values.items():
    if value is not None and value <= 0:
      raise errors.FlagError("`%s` (%s) must be positive." % (name, value))


def _positive_integers(values: Mapping[str, Optional[int]]) -> None:
  for name, value in values.items():
    if value is not None and value <= 0:
      raise errors.FlagError("`%s` (%d) must be a positive integer." %
                             (name, value))


def metrics(n_classes: int) -> Tuple[str, ...]:
  """The metrics a head with `n_classes` (0: regression) reports."""
  return CLASSIFICATION_METRICS if n_classes else REGRESSION_METRICS


def _validate_features(job: JobConfig) -> None:
  run = job.run
  for name in ("export_best", "early_stopping_metric"):
    metric = getattr(run, name)
    if not metric:
      continue
    if metric not in metrics(job.head.n_classes):
      raise errors.FlagError(
          "`%s`=%s is not a metric this head reports; it reports: %s." %
          (name, metric, ", ".join(metrics(job.head.n_classes))))
    if not job.data.eval_files:
      raise errors.FlagError(
          "`%s` needs evaluations, and `eval_files` is empty." % name)
  if run.early_stopping_patience < 1:
    raise errors.FlagError("`early_stopping_patience` (%d) must be >= 1." %
                           run.early_stopping_patience)
  if run.profile_steps and not (
      len(run.profile_steps) == 2 and
      0 <= run.profile_steps[0] <= run.profile_steps[1]):
    raise errors.FlagError(
        "`profile_steps`=%s must be two global steps FIRST,LAST with 0 <= "
        "FIRST <= LAST, e.g. 100,110." %
        ",".join(map(str, run.profile_steps)))


def validate(job: JobConfig) -> JobConfig:
  """Checks every setting that can be checked without the model or data.

  Raises:
    errors.FlagError: naming the setting, its value and what would be valid.
  """
  if not job.model.module_handle:
    raise errors.ModelCheckError(
        "No model given: set `module_handle` to the directory of a "
        "SavedModel.")
  if not job.data.train_files:
    raise errors.FlagError(
        "`train_files` is required: comma-separated globs of training files "
        "(*.csv with a header row, or TFRecord files of tf.train.Example).")
  if not job.model_dir:
    raise errors.FlagError("`model_dir` is required: where checkpoints go.")
  head, run, cluster = job.head, job.run, job.cluster
  _positive_integers({"batch_size": job.data.batch_size,
                      "train_steps": run.train_steps,
                      "steps_per_execution": run.steps_per_execution,
                      "log_every_steps": run.log_every_steps,
                      "eval_steps": run.eval_steps,
                      "keep_checkpoint_max": run.keep_checkpoint_max,
                      "save_checkpoints_steps": run.save_checkpoints_steps,
                      "save_checkpoints_secs": run.save_checkpoints_secs})
  _positive({"learning_rate": head.learning_rate,
             "readiness_poll_secs": cluster.readiness_poll_secs,
             "session_creation_timeout_secs":
                 cluster.session_creation_timeout_secs,
             "final_evaluation_wait_secs":
                 cluster.final_evaluation_wait_secs,
             "serve_timeout_secs": cluster.serve_timeout_secs})
  if head.n_classes < 0 or head.n_classes == 1:
    raise errors.FlagError(
        "`n_classes` (%d) must be 0 (regression) or at least 2." %
        head.n_classes)
  if job.data.shuffle_buffer < 0:
    raise errors.FlagError("`shuffle_buffer` (%d) must be >= 0 (0: no "
                           "record shuffle)." % job.data.shuffle_buffer)
  if job.data.validate_data not in VALIDATE_DATA:
    raise errors.FlagError("`validate_data`=%s is not one of: %s." % (
        job.data.validate_data, ", ".join(VALIDATE_DATA)))
  if run.backend not in BACKENDS:
    raise errors.FlagError("`backend`=%s is not one of: %s." % (
        run.backend, ", ".join(BACKENDS)))
  if head.optimizer not in OPTIMIZERS:
    raise errors.FlagError("`optimizer`=%s is not one of: %s." % (
        head.optimizer, ", ".join(OPTIMIZERS)))
  if any(units <= 0 for units in head.hidden_units):
    raise errors.FlagError("`hidden_units` (%s) must all be positive." %
                           ",".join(map(str, head.hidden_units)))
  if run.save_checkpoints_steps and run.save_checkpoints_secs:
    raise errors.FlagError(
        "Give checkpoint cadence in steps (%d) or in seconds (%d), not both." %
        (run.save_checkpoints_steps, run.save_checkpoints_secs))
  for name in ("eval_throttle_secs", "eval_start_delay_secs"):
    if getattr(run, name) < 0:
      raise errors.FlagError("`%s` (%d) must be >= 0." %
                             (name, getattr(run, name)))
  _validate_features(job)
  if cluster.max_worker_delay_secs < 0:
    raise errors.FlagError("`max_worker_delay_secs` (%d) must be >= 0." %
                           cluster.max_worker_delay_secs)
  return job
