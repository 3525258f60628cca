"""What one training job is: its settings, declared once, and their check.

Each setting is declared once, here, as a dataclass field made by
`setting(default, help=...)`: its name, type, default and help. The trainer's
flag of the same name is derived from it (trainer.config.cli), so the help a
user reads with --helpfull is the setting's one description, and the defaults
here are the only ones.

A `JobConfig` is built once (by the entry point, from flags) and checked once
(`validate`), before the model and data are inspected (trainer.plan.preflight).
Its parts are nested by what uses them, and handed on whole:

* `ModelOptions`: how the hub model is loaded (trainer.hub_model.model_spec);
* `HeadConfig`: the layers on top of it and their optimizer (each
  backend's model: trainer.estimator.model, trainer.keras.model);
* `DataOptions`: the files, columns and batches (trainer.inputs.data);
* `RunOptions`: the backend, the training budget, checkpoints and what the
  run does besides training (trainer.config.backends; the backends' train.py);
* `ClusterOptions`: what only matters on a cluster (the Estimator's
  trainer.estimator.config and .readiness; trainer.training.job_end).

No TensorFlow is imported, so entry points can check settings fast.
Errors name a setting in backticks, by its plain name (harness.errors).
"""

import dataclasses
import os
import types
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

from harness import errors
from trainer.config import input_map as input_map_lib

# Each backend's optimizers.OPTIMIZERS: the first is the default. lazy_adam is
# Adam whose sparse updates (embedding rows) touch only the rows of the batch.
OPTIMIZERS = ("lazy_adam", "adam", "adagrad", "rmsprop", "sgd")
# How a step is run (trainer.config.backends): "auto" picks the Estimator where
# tf.estimator exists (TF <= 2.15), the Keras backend otherwise.
BACKENDS = ("auto", "estimator", "keras")
# How much of the data the pre-flight checks (trainer.inputs.validate).
VALIDATE_DATA = ("sample", "full", "off")
# The save cadence when neither steps nor seconds are set (Estimator's own
# default; the Keras backend keeps it).
DEFAULT_SAVE_CHECKPOINTS_SECS = 600
# The metrics each head reports (both backends), for --export_best and
# --early_stopping_metric.
CLASSIFICATION_METRICS = ("accuracy", "loss", "data_loss")
REGRESSION_METRICS = ("rmse", "mae", "loss", "data_loss")


def setting(default: Any = dataclasses.MISSING, *, help: str,  # pylint: disable=redefined-builtin
            default_factory: Any = dataclasses.MISSING,
            choices: Sequence[str] = (),
            aliases: Optional[Mapping[str, str]] = None,
            required: str = "", example: str = "",
            parse: Optional[Callable[[Sequence[str]], Any]] = None):
  """A dataclass field that is one setting of a job, and a trainer flag.

  trainer.config.cli derives the flag from the field: its name, its type (str,
  bool, int, float, each optionally Optional; a sequence or mapping is a
  comma-separated list flag), its default and `help`.

  Args:
    default, default_factory: as dataclasses.field; neither: `required`.
    help: the setting's description, shown as its flag's help.
    choices: the values a str setting may take (an enum flag).
    aliases: other spellings of `choices` (e.g. {'true': 'sample'}); with
      them the flag also takes absl's boolean spelling (--x, --nox).
    required: for a setting with no default, what to give, said when it is
      missing ("`n_classes` is required: <required>.").
    example: for a sequence of integers, a valid value shown when one is not
      an integer.
    parse: turns the flag's list of strings into the setting's value
      (raising errors.FlagError); default: a tuple.
  """
  metadata = {"help": help, "choices": tuple(choices), "aliases": aliases,
              "required": required, "example": example, "parse": parse}
  return dataclasses.field(default=default, default_factory=default_factory,
                           metadata=types.MappingProxyType(metadata))


@dataclasses.dataclass(frozen=True)
class ModelOptions:
  """How to load the hub model (see
  trainer.hub_model.model_spec.inspect_model)."""
  module_handle: str = setting(
      "", help="Directory of the hub model: a TF2 SavedModel, a legacy "
      "SavedModel or a model in TF1 Hub format. Empty, with no other flag "
      "of a model or data: the demo (configs/digits.cfg).")
  trainable: bool = setting(
      False, help="Fine-tune the hub model's variables (TF2 SavedModels "
      "called through __call__ only).")
  tags: Optional[Sequence[str]] = setting(
      None, help="Comma-separated tag set of the meta graph to load, e.g. "
      "foo,bar. '--tags=' selects the empty tag set. Unset: the default.")
  signature: Optional[str] = setting(
      None, help="Signature to call instead of __call__ (legacy models; TF1 "
      "Hub format defaults to 'default').")
  output_key: Optional[str] = setting(
      None, help="Output of the signature to train on (TF1 Hub format "
      "defaults to 'default').")
  signature_outputs_as_dict: bool = setting(
      False, help="Train on all outputs of the signature, concatenated in "
      "name order.")
  model: str = setting(
      "", help="Your own Keras model, as MODULE:FUNCTION: FUNCTION(inputs, "
      "hub_layer) returns a tf_keras.Model from the data columns (inputs: "
      "column -> tf_keras.Input) to logits; the harness adds the loss, "
      "metrics and optimizer (docs/training.md, 'Your own model'). Empty: "
      "the hub model with --hidden_units and the harness's head.")
  model_fn: str = setting(
      "", help="Your own Estimator model_fn, as MODULE:FUNCTION: "
      "model_fn(features, labels, mode, params) as tf.estimator defines it, "
      "params holding the resolved flags (the Estimator backend only; on "
      "the Keras backend give --model).")


@dataclasses.dataclass(frozen=True)
class HeadConfig:
  """The layers on top of the hub model and how they are trained."""
  n_classes: int = setting(
      help="Number of classes (labels 0..n-1); 0 trains a regression head. "
      "Required.",
      required="the number of classes, or 0 for a regression head")
  hidden_units: Sequence[int] = setting(
      (), help="Sizes of hidden ReLU layers between the hub model and the "
      "output, e.g. 64,32.", example="64,32")
  optimizer: str = setting(
      OPTIMIZERS[0], choices=OPTIMIZERS, help="Optimizer. lazy_adam (the "
      "default) is Adam whose sparse updates (a hub text model's embedding "
      "rows) touch only the rows of the batch, so a step costs what the "
      "batch costs, not what the table does; adam updates every row of every "
      "table on every step (docs/training.md, 'Choosing --optimizer').")
  learning_rate: float = setting(
      0.01, help="The optimizer's learning rate (step size).")
  class_weights: Sequence[float] = setting(
      (), help="One weight per class, e.g. 1,4,1: each example's loss is "
      "scaled by its class's weight (for rare classes); empty: all 1.",
      example="1,4,1")


@dataclasses.dataclass(frozen=True)
class DataOptions:
  """Where the examples come from and how they are batched
  (trainer.inputs.data)."""
  train_files: Sequence[str] = setting(
      (), help="Comma-separated globs of training files: *.csv (with a "
      "header row) or TFRecord files of tf.train.Example. Required.")
  eval_files: Sequence[str] = setting(
      (), help="Comma-separated globs of evaluation files, as --train_files. "
      "Empty: train without evaluating (a cluster then has no evaluator).")
  label_key: str = setting(
      "label", help="Column holding the label: a class 0..n_classes-1, or a "
      "number for regression.")
  input_map: Mapping[str, str] = setting(
      default_factory=dict, parse=input_map_lib.parse,
      help="MODEL_INPUT=DATA_COLUMN pairs, comma-separated. A model input "
      "left out is fed by the column of its name.")
  batch_size: int = setting(32, help="Examples per step and task.")
  validate_data: str = setting(
      "sample", choices=VALIDATE_DATA,
      aliases={"true": "sample", "false": "off"},
      help="How much of the data to check before training, to report a bad "
      "file or row by name in seconds rather than as a TF error "
      "mid-training: sample (the default: every file's format and first "
      "rows, a cost that does not grow with the data's size), full (every "
      "row, read in parallel, with progress) or off. --novalidate_data is "
      "off.")
  shard_files: bool = setting(
      True, help="Where there are at least as many training files as "
      "training tasks, each task reads its own files (by its index in "
      "TF_CONFIG), so one pass over the data is one epoch across the "
      "cluster. --noshard_files: every task reads every file, each shuffled "
      "with its own seed.")
  data_service: bool = setting(
      True, help="Keras backend clusters: training reads through TF's "
      "tf.data service, with its dispatcher on the chief and a tf.data "
      "worker beside each worker, so each training example is read once per "
      "epoch across all the workers (the files handed out as workers ask). "
      "--nodata_service: every worker reads every file in its own order. "
      "The Estimator backend ignores it: its tasks share the files out "
      "(--shard_files).")
  shuffle_buffer: int = setting(
      10000, help="Training records in the shuffle's buffer. The record "
      "shuffle costs a quarter to a third of a plain read's throughput on 2 "
      "cores (docs/performance.md); "
      "0 shuffles only the files' order, for data already shuffled when "
      "written.")


@dataclasses.dataclass(frozen=True)
class RunOptions:
  """The backend, the training budget, checkpoint settings, and what the
  run does besides training (trainer.config.backends; warm_start, best_export,
  early_stopping, profiling)."""
  backend: str = setting(
      BACKENDS[0], choices=BACKENDS, help="How training steps are run. "
      "estimator: tf.estimator (TF <= 2.15, Python <= 3.11). keras: TF2's "
      "own parameter-server training (tf_keras + ParameterServerStrategy; "
      "any TF from 2.15). auto: the Estimator where tf.estimator exists, "
      "keras otherwise. The run says which it uses and why.")
  steps_per_execution: int = setting(
      10, help="Keras backend: training steps per call of the step function "
      "(per closure scheduled on a worker); more amortizes the call's "
      "overhead, fewer checks the loss and checkpoint cadence more often. "
      "The Estimator backend ignores it.")
  train_steps: int = setting(1000, help="Global step to train to.")
  eval_steps: Optional[int] = setting(
      None, help="Batches per evaluation; unset: all of --eval_files.")
  save_checkpoints_steps: Optional[int] = setting(
      None, help="Checkpoint every N global steps (or give "
      "--save_checkpoints_secs).")
  save_checkpoints_secs: Optional[int] = setting(
      None, help="Checkpoint every N seconds (default 600 when no step "
      "cadence is set).")
  keep_checkpoint_max: int = setting(
      5, help="How many of the latest checkpoints to keep; older ones are "
      "deleted.")
  log_every_steps: int = setting(100, help="Report progress every N steps.")
  eval_throttle_secs: int = setting(
      10, help="Least seconds between two evaluations while the chief "
      "trains; the final checkpoint is evaluated at once.")
  eval_start_delay_secs: int = setting(
      0, help="Seconds the evaluator waits before its first evaluation.")
  verify_export_rows: int = setting(
      256, help="At the job's end, serve this many rows of the evaluation "
      "data with the export, loaded as a server loads it, and fail the job "
      "unless it predicts what the trained model does (the summary says "
      "how they agreed); 0: no check.")
  eval_untrained: bool = setting(
      False, help="Also evaluate the checkpoint of global step 0, the model "
      "before its first step (the untrained head, or the warm start); off, "
      "the first evaluation is of a trained checkpoint.")
  random_seed: Optional[int] = setting(
      None, help="Random seed of the data's shuffle (training task k of a "
      "cluster shuffles with seed + k) and of the model's initial weights "
      "(the Estimator's graph-level seed; on the Keras backend, tf_keras's "
      "seeds); unset: random.")
  warm_start_from: str = setting(
      "", help="Start from another run's weights: its model directory (its "
      "latest checkpoint) or a checkpoint prefix. The global step and the "
      "optimizer's slots start afresh.")
  warm_start_vars: str = setting(
      ".*", help="Regular expression: which of the model's variables to "
      "warm-start (by name, e.g. dense1/kernel, logits/kernel). Default: all "
      "of them. A head with another number of classes: '^(?!logits)'.")
  export_best: str = setting(
      "", help="Also keep a serving export of the checkpoint with the best "
      "evaluation of this metric so far, in MODEL_DIR/export_best: accuracy "
      "(higher is better), or loss, data_loss, rmse, mae (lower is better). "
      "Empty: none.")
  early_stopping_metric: str = setting(
      "", help="Stop training when this metric (as for --export_best) has "
      "not improved for --early_stopping_patience evaluations; on a cluster "
      "every task then ends as at the last step. Empty: never.")
  early_stopping_patience: int = setting(
      3, help="Evaluations without improvement before stopping early.")
  profile_steps: Tuple[int, ...] = setting(
      (), example="100,110", help="FIRST,LAST: write a TF profile of these "
      "global steps under MODEL_DIR/plugins/profile (TensorBoard's profile "
      "plugin lists it). Empty: none.")


@dataclasses.dataclass(frozen=True)
class ClusterOptions:
  """Settings that matter only when TF_CONFIG names a cluster (the task
  itself comes from TF_CONFIG)."""
  share_cluster_devices: bool = setting(
      True, help="Set share_cluster_devices_in_session. Turn off only to see "
      "the 'does not match any device' failure.")
  ps_shard_bytes: int = setting(  # 256 KiB: TF's advice (its docs' example).
      256 << 10, help="Keras backend clusters: a variable of more than "
      "twice this many bytes (a large embedding table of your model, and "
      "with it its optimizer slots) is split over the ps tasks, at most one "
      "shard of at least this many bytes per ps (TF's MinSizePartitioner), "
      "so that no ps holds it whole; checkpoints hold it as one and restore "
      "with any number of ps; 0 keeps every variable whole. A hub model's "
      "own variables stay whole (TF cannot run a loaded SavedModel on split "
      "ones). The Estimator backend ignores it.")
  max_worker_delay_secs: int = setting(
      0, help="Longest deliberate start delay of a worker (Estimator: 60).")
  session_creation_timeout_secs: int = setting(
      300, help="How long a worker waits for the chief's session "
      "(Estimator: 7200).")
  readiness_poll_secs: float = setting(
      1.0, help="How often a worker checks whether the chief has made the "
      "model ready (TF's default: 30).")
  final_evaluation_wait_secs: int = setting(
      600, help="Where TF_CONFIG lists an evaluator in the cluster "
      "(Kubeflow's TFJob does), how long the chief waits after its export "
      "for the evaluator's final evaluation, so that ending the job with the "
      "chief does not cut it off.")
  preemption_grace_secs: int = setting(
      25, help="After a SIGTERM (a preemption notice: GKE gives about 15 s, "
      "GCE about 30 s), how long a ps keeps serving for the chief's "
      "checkpoint before it exits 143; the chief stops at once, saves, and "
      "exits 143 (docs/faults.md).")
  serve_timeout_secs: int = setting(
      7 * 24 * 3600, help="How long a ps (and, on the Keras backend, a "
      "worker) serves waiting for the chief's final export before it gives "
      "up with exit status 1, should the chief never finish and no engine "
      "stop it (default: 7 days, Vertex AI's default job timeout).")


@dataclasses.dataclass(frozen=True)
class JobConfig:
  """Everything one training job needs, as plain values."""
  model: ModelOptions
  head: HeadConfig
  data: DataOptions
  model_dir: str = setting(
      "", help="Directory for checkpoints, events and flags.txt. Required, "
      "except for the demo (runs/demo-<time>) and under a launcher "
      "(RUN_DIR/model).")
  run: RunOptions = RunOptions()
  cluster: ClusterOptions = ClusterOptions()
  export_dir: str = setting(
      "", help="Where the serving SavedModel goes; empty: MODEL_DIR/export.")

  @property
  def resolved_export_dir(self) -> str:
    return self.export_dir or os.path.join(self.model_dir, "export")


def default_of(field: dataclasses.Field):
  """A field's default; dataclasses.MISSING for a required setting."""
  if field.default_factory is not dataclasses.MISSING:
    return field.default_factory()
  return field.default


def default(options_class, name: str):
  """The default of one setting, e.g. default(RunOptions, 'train_steps')."""
  field, = [f for f in dataclasses.fields(options_class) if f.name == name]
  return default_of(field)


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


def settings_of(job) -> Dict[str, Any]:
  """Every setting of `job` (a JobConfig, or a part of one) by its name,
  its flag's: a user's model_fn gets these as `params`."""
  values = {}
  for field in dataclasses.fields(job):
    value = getattr(job, field.name)
    if dataclasses.is_dataclass(value):
      values.update(settings_of(value))
    else:
      values[field.name] = value
  return values


def _validate_own_model(job: JobConfig) -> None:
  """`model` and `model_fn` replace parts of the harness's model: the
  settings of those parts are refused beside them, not ignored."""
  model = job.model
  if model.model and model.model_fn:
    raise errors.FlagError(
        "Give `model` (a Keras model builder) or `model_fn` (an Estimator "
        "model_fn), not both.")
  own = "model" if model.model else "model_fn" if model.model_fn else ""
  if not own:
    return
  if job.data.input_map:
    raise errors.FlagError(
        "`input_map` maps data columns to the hub model's inputs; with "
        "`%s` your function gets every column by name, and feeds the hub "
        "layer itself." % own)
  if job.head.hidden_units:
    raise errors.FlagError(
        "`hidden_units` builds the harness's head; with `%s` your model has "
        "its own layers." % own)
  if model.model_fn and job.run.warm_start_from:
    raise errors.FlagError(
        "`warm_start_from` with `model_fn`: the harness cannot name a "
        "model_fn's variables before it runs; warm-start inside it "
        "(tf.compat.v1.train.init_from_checkpoint), or give your model as "
        "`model`, which warm-starts by name.")


def _validate_features(job: JobConfig) -> None:
  run = job.run
  for name in ("export_best", "early_stopping_metric"):
    metric = getattr(run, name)
    if not metric:
      continue
    # A model_fn reports its own metrics: known only once it runs.
    if metric not in metrics(job.head.n_classes) and not job.model.model_fn:
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
             "serve_timeout_secs": cluster.serve_timeout_secs,
             "preemption_grace_secs": cluster.preemption_grace_secs})
  if head.n_classes < 0 or head.n_classes == 1:
    raise errors.FlagError(
        "`n_classes` (%d) must be 0 (regression) or at least 2." %
        head.n_classes)
  if cluster.ps_shard_bytes < 0:
    raise errors.FlagError("`ps_shard_bytes` (%d) must be >= 0 (0: every "
                           "variable whole)." % cluster.ps_shard_bytes)
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
  if head.class_weights and (len(head.class_weights) != head.n_classes or
                             min(head.class_weights) <= 0):
    raise errors.FlagError(
        "`class_weights` (%s) must be %d positive numbers, one per class "
        "(`n_classes`=%d)%s." % (
            ",".join("%g" % w for w in head.class_weights), head.n_classes,
            head.n_classes, "; a regression head has no classes"
            if not head.n_classes else ""))
  if any(units <= 0 for units in head.hidden_units):
    raise errors.FlagError("`hidden_units` (%s) must all be positive." %
                           ",".join(map(str, head.hidden_units)))
  if run.save_checkpoints_steps and run.save_checkpoints_secs:
    raise errors.FlagError(
        "Give checkpoint cadence in steps (%d) or in seconds (%d), not both." %
        (run.save_checkpoints_steps, run.save_checkpoints_secs))
  for name in ("eval_throttle_secs", "eval_start_delay_secs",
               "verify_export_rows"):
    if getattr(run, name) < 0:
      raise errors.FlagError("`%s` (%d) must be >= 0." %
                             (name, getattr(run, name)))
  _validate_own_model(job)
  _validate_features(job)
  if cluster.max_worker_delay_secs < 0:
    raise errors.FlagError("`max_worker_delay_secs` (%d) must be >= 0." %
                           cluster.max_worker_delay_secs)
  return job
