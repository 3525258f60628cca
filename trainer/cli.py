"""The trainer's flags, and how they become a `JobConfig`.

Only entry points read flags: `python -m trainer.task` parses them into the
global FlagValues; the cluster launchers parse the trainer flags they pass
on into a private one. Either way `job_config(fv)` turns them into one
plain, nested `JobConfig`, and each flag's default is the default of the
setting it fills (trainer/job.py): there is one of each.

A flag has the name of its setting, so a settings error of the library
("`batch_size` (0) must be ...") is shown as "--batch_size (0) must be ..."
by the entry point (harness.cli.report).

The resolved flags are written next to the model as a flagfile
(trainer.model_dir.write_record), which reruns the job; `recorded_model`
reads the settings that define the model back from such a file.
"""

import dataclasses
from typing import Dict, Iterable, List

from absl import flags

from harness import errors
from trainer import input_map as input_map_lib
from trainer import job as job_lib

FLAGS_FILE = "flags.txt"
# Flags that define the model a checkpoint belongs to.
MODEL_FLAGS = ("module_handle", "trainable", "tags", "signature",
               "output_key", "signature_outputs_as_dict", "n_classes",
               "hidden_units", "optimizer")

_Model = job_lib.ModelOptions
_Data = job_lib.DataOptions
_Run = job_lib.RunOptions
_Cluster = job_lib.ClusterOptions
_Head = job_lib.HeadConfig


class _ValidateDataParser(flags.EnumParser):
  """sample|full|off, and true/false as the boolean flag it once was."""

  _ALIASES = {"true": "sample", "false": "off"}

  def __init__(self):
    super().__init__(job_lib.VALIDATE_DATA)

  def parse(self, argument):
    text = str(argument).strip().lower()
    return super().parse(self._ALIASES.get(text, text))


class ValidateDataFlag(flags.Flag):
  """`--validate_data=sample|full|off`; `--novalidate_data` turns it off
  and a bare `--validate_data` samples (absl's boolean spelling, kept for
  the flagfiles and scripts that use it)."""

  def __init__(self, default, help_string):
    super().__init__(_ValidateDataParser(), flags.ArgumentSerializer(),
                     "validate_data", default, help_string, boolean=True)

  def serialize(self):
    return "--%s=%s" % (self.name, self.value)


def _d(options_class, name):
  return job_lib.default(options_class, name)


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> List[str]:
  """Defines the trainer's flags on `fv`; returns their names."""
  before = set(fv)
  # The hub model.
  flags.DEFINE_string(
      "module_handle", _d(_Model, "module_handle"), "Directory of the hub "
      "model: a TF2 SavedModel, a legacy SavedModel or a model in TF1 Hub "
      "format. Empty: the demo (configs/digits.cfg).", flag_values=fv)
  flags.DEFINE_bool(
      "trainable", _d(_Model, "trainable"), "Fine-tune the hub model's "
      "variables (TF2 SavedModels called through __call__ only).",
      flag_values=fv)
  flags.DEFINE_list(
      "tags", _d(_Model, "tags"), "Comma-separated tag set of the meta "
      "graph to load, e.g. foo,bar. '--tags=' selects the empty tag set. "
      "Unset: the default.", flag_values=fv)
  flags.DEFINE_string(
      "signature", _d(_Model, "signature"), "Signature to call instead of "
      "__call__ (legacy models; TF1 Hub format defaults to 'default').",
      flag_values=fv)
  flags.DEFINE_string(
      "output_key", _d(_Model, "output_key"), "Output of the signature to "
      "train on (TF1 Hub format defaults to 'default').", flag_values=fv)
  flags.DEFINE_bool(
      "signature_outputs_as_dict", _d(_Model, "signature_outputs_as_dict"),
      "Train on all outputs of the signature, concatenated in name order.",
      flag_values=fv)
  # Data.
  flags.DEFINE_list(
      "train_files", list(_d(_Data, "train_files")), "Comma-separated globs "
      "of training files: *.csv (with a header row) or TFRecord files of "
      "tf.train.Example. Required.", flag_values=fv)
  flags.DEFINE_list(
      "eval_files", list(_d(_Data, "eval_files")), "Comma-separated globs of "
      "evaluation files, as --train_files. Empty: train without evaluating "
      "(a cluster then has no evaluator).", flag_values=fv)
  flags.DEFINE_string("label_key", _d(_Data, "label_key"), "Column holding "
                      "the label: a class 0..n_classes-1, or a number for "
                      "regression.", flag_values=fv)
  flags.DEFINE_list(
      "input_map", [], "MODEL_INPUT=DATA_COLUMN pairs, comma-separated. A "
      "model input left out is fed by the column of its name.",
      flag_values=fv)
  flags.DEFINE_integer("batch_size", _d(_Data, "batch_size"), "Examples per "
                       "step and task.", flag_values=fv)
  flags.DEFINE_flag(ValidateDataFlag(
      _d(_Data, "validate_data"), "How much of the data to check before "
      "training, to report a bad file or row by name in seconds rather than "
      "as a TF error mid-training: sample (the default: every file's format "
      "and first rows, a cost that does not grow with the data's size), "
      "full (every row, read in parallel, with progress) or off. "
      "--novalidate_data is off."), flag_values=fv)
  flags.DEFINE_bool(
      "shard_files", _d(_Data, "shard_files"), "Where there are at least as "
      "many training files as training tasks, each task reads its own files "
      "(by its index in TF_CONFIG), so one pass over the data is one epoch "
      "across the cluster. --noshard_files: every task reads every file, "
      "each shuffled with its own seed.", flag_values=fv)
  flags.DEFINE_integer(
      "shuffle_buffer", _d(_Data, "shuffle_buffer"), "Training records in "
      "the shuffle's buffer. The record shuffle costs about a fifth of a "
      "plain read's throughput on 2 cores; 0 shuffles only the files' order, "
      "for data already shuffled when written.", flag_values=fv)
  # Head and optimization.
  flags.DEFINE_integer(
      "n_classes", None, "Number of classes (labels 0..n-1); 0 trains a "
      "regression head. Required.", flag_values=fv)
  flags.DEFINE_list("hidden_units", [], "Sizes of hidden ReLU layers "
                    "between the hub model and the output, e.g. 64,32.",
                    flag_values=fv)
  flags.DEFINE_enum(
      "optimizer", _d(_Head, "optimizer"), list(job_lib.OPTIMIZERS),
      "Optimizer. lazy_adam (the default) is Adam whose sparse updates (a "
      "hub text model's embedding rows) touch only the rows of the batch, so "
      "a step costs what the batch costs, not what the table does; adam "
      "updates every row of every table on every step (docs/training.md, "
      "'Choosing --optimizer').", flag_values=fv)
  flags.DEFINE_float("learning_rate", _d(_Head, "learning_rate"),
                     "The optimizer's learning rate (step size).",
                     flag_values=fv)
  # How a step is run.
  flags.DEFINE_enum(
      "backend", _d(_Run, "backend"), list(job_lib.BACKENDS),
      "How training steps are run. estimator: tf.estimator (TF <= 2.15, "
      "Python <= 3.11). keras: TF2's own parameter-server training "
      "(tf_keras + ParameterServerStrategy; any TF from 2.15). auto: the "
      "Estimator where tf.estimator exists, keras otherwise. The run says "
      "which it uses and why.", flag_values=fv)
  flags.DEFINE_integer(
      "steps_per_execution", _d(_Run, "steps_per_execution"), "Keras "
      "backend: training steps per call of the step function (per closure "
      "scheduled on a worker); more amortizes the call's overhead, fewer "
      "checks the loss and checkpoint cadence more often. The Estimator "
      "backend ignores it.", flag_values=fv)
  # Budget and checkpoints.
  flags.DEFINE_integer("train_steps", _d(_Run, "train_steps"), "Global step "
                       "to train to.", flag_values=fv)
  flags.DEFINE_integer("eval_steps", _d(_Run, "eval_steps"), "Batches per "
                       "evaluation; unset: all of --eval_files.",
                       flag_values=fv)
  flags.DEFINE_integer("random_seed", _d(_Run, "random_seed"), "Random seed "
                       "of the data's shuffle (training task k of a cluster "
                       "shuffles with seed + k) and, on the Estimator, its "
                       "graph-level seed; unset: random.", flag_values=fv)
  flags.DEFINE_integer("save_checkpoints_steps",
                       _d(_Run, "save_checkpoints_steps"), "Checkpoint every "
                       "N global steps (or give --save_checkpoints_secs).",
                       flag_values=fv)
  flags.DEFINE_integer("save_checkpoints_secs",
                       _d(_Run, "save_checkpoints_secs"), "Checkpoint every "
                       "N seconds (default 600 when no step cadence is set).",
                       flag_values=fv)
  flags.DEFINE_integer("keep_checkpoint_max", _d(_Run, "keep_checkpoint_max"),
                       "How many of the latest checkpoints to keep; older "
                       "ones are deleted.", flag_values=fv)
  flags.DEFINE_integer("log_every_steps", _d(_Run, "log_every_steps"),
                       "Report progress every N steps.", flag_values=fv)
  flags.DEFINE_integer("eval_throttle_secs", _d(_Run, "eval_throttle_secs"),
                       "Least seconds between two evaluations.",
                       flag_values=fv)
  flags.DEFINE_integer("eval_start_delay_secs",
                       _d(_Run, "eval_start_delay_secs"), "Seconds the "
                       "evaluator waits before its first evaluation.",
                       flag_values=fv)
  # Warm start, best export, early stopping, profiling.
  flags.DEFINE_string(
      "warm_start_from", _d(_Run, "warm_start_from"), "Start from another "
      "run's weights: its model directory (its latest checkpoint) or a "
      "checkpoint prefix. The global step and the optimizer's slots start "
      "afresh.", flag_values=fv)
  flags.DEFINE_string(
      "warm_start_vars", _d(_Run, "warm_start_vars"), "Regular expression: "
      "which of the model's variables to warm-start (by name, e.g. "
      "dense1/kernel, logits/kernel). Default: all of them. A head with "
      "another number of classes: '^(?!logits)'.", flag_values=fv)
  flags.DEFINE_string(
      "export_best", _d(_Run, "export_best"), "Also keep a serving export of "
      "the checkpoint with the best evaluation of this metric so far, in "
      "MODEL_DIR/export_best: accuracy (higher is better), or loss, "
      "data_loss, rmse, mae (lower is better). Empty: none.", flag_values=fv)
  flags.DEFINE_string(
      "early_stopping_metric", _d(_Run, "early_stopping_metric"), "Stop "
      "training when this metric (as for --export_best) has not improved "
      "for --early_stopping_patience evaluations; on a cluster every task "
      "then ends as at the last step. Empty: never.", flag_values=fv)
  flags.DEFINE_integer(
      "early_stopping_patience", _d(_Run, "early_stopping_patience"),
      "Evaluations without improvement before stopping early.",
      flag_values=fv)
  flags.DEFINE_list(
      "profile_steps", [], "FIRST,LAST: write a TF profile of these global "
      "steps under MODEL_DIR/plugins/profile (TensorBoard's profile "
      "plugin lists it). Empty: none.", flag_values=fv)
  # Outputs.
  flags.DEFINE_string(
      "model_dir", "", "Directory for checkpoints, events and flags.txt. "
      "Required, except for the demo (runs/demo-<time>) and under a "
      "launcher (RUN_DIR/model).", flag_values=fv)
  flags.DEFINE_string("export_dir", "", "Where the serving SavedModel goes; "
                      "empty: MODEL_DIR/export.", flag_values=fv)
  flags.DEFINE_bool(
      "overwrite_model_dir", False, "If --model_dir holds a checkpoint of "
      "a different model, move that directory aside (to MODEL_DIR.old-TIME) "
      "and start afresh, instead of refusing.", flag_values=fv)
  # Distributed training (the task itself comes from TF_CONFIG).
  flags.DEFINE_bool(
      "share_cluster_devices", _d(_Cluster, "share_cluster_devices"),
      "Set share_cluster_devices_in_session. Turn off only to see the 'does "
      "not match any device' failure.", flag_values=fv)
  flags.DEFINE_integer(
      "max_worker_delay_secs", _d(_Cluster, "max_worker_delay_secs"),
      "Longest deliberate start delay of a worker (Estimator: 60).",
      flag_values=fv)
  flags.DEFINE_integer(
      "session_creation_timeout_secs",
      _d(_Cluster, "session_creation_timeout_secs"),
      "How long a worker waits for the chief's session (Estimator: 7200).",
      flag_values=fv)
  flags.DEFINE_float(
      "readiness_poll_secs", _d(_Cluster, "readiness_poll_secs"), "How often "
      "a worker checks whether the chief has made the model ready (TF's "
      "default: 30).", flag_values=fv)
  flags.DEFINE_integer(
      "final_evaluation_wait_secs", _d(_Cluster, "final_evaluation_wait_secs"),
      "Where TF_CONFIG lists an evaluator in the cluster (Kubeflow's TFJob "
      "does), how long the chief waits after its export for the evaluator's "
      "final evaluation, so that ending the job with the chief does not cut "
      "it off.", flag_values=fv)
  flags.DEFINE_integer(
      "serve_timeout_secs", _d(_Cluster, "serve_timeout_secs"), "How long a "
      "ps (and, on the Keras backend, a worker) serves waiting for the "
      "chief's final export before it gives up with exit status 1, should "
      "the chief never finish and no engine stop it (default: 7 days, "
      "Vertex AI's default job timeout).", flag_values=fv)
  # What the entry point does.
  flags.DEFINE_bool(
      "check_only", False, "Run the whole pre-flight (flags, TF_CONFIG, "
      "model, data, model directory), print what this task would do, write "
      "nothing, and exit: 0 when it would run, 1 with the problem.",
      flag_values=fv)
  return sorted(set(fv) - before)


FLAG_NAMES = tuple(define_flags(flags.FlagValues()))


def new_flag_values(argv: Iterable[str] = ()) -> flags.FlagValues:
  """A private FlagValues with the trainer's flags, parsed from `argv`.

  Raises:
    errors.FlagError: an unknown flag or a bad value, as absl says it.
  """
  fv = flags.FlagValues()
  define_flags(fv)
  try:
    fv(["trainer"] + list(argv))
  except flags.Error as e:
    raise errors.FlagError(str(e)) from e
  return fv


def _fill(options_class, fv: flags.FlagValues, **converted):
  """An options object from the flags of its fields' names."""
  values = {f.name: fv[f.name].value for f in dataclasses.fields(options_class)
            if f.name not in converted}
  return options_class(**values, **converted)


def job_config(fv: flags.FlagValues) -> job_lib.JobConfig:
  """Turns flag values into a JobConfig (not yet validated)."""
  if fv.n_classes is None:
    raise errors.FlagError("`n_classes` is required: the number of classes, "
                           "or 0 for a regression head.")
  try:
    hidden_units = tuple(int(u) for u in fv.hidden_units)
  except ValueError as e:
    raise errors.FlagError("`hidden_units`=%s must be integers, e.g. 64,32." %
                           ",".join(fv.hidden_units)) from e
  try:
    profile_steps = tuple(int(s) for s in fv.profile_steps)
  except ValueError as e:
    raise errors.FlagError("`profile_steps`=%s must be two global steps, "
                           "e.g. 100,110." % ",".join(fv.profile_steps)) from e
  return job_lib.JobConfig(
      model=_fill(_Model, fv),
      head=_fill(_Head, fv, hidden_units=hidden_units),
      data=_fill(_Data, fv, train_files=tuple(fv.train_files),
                 eval_files=tuple(fv.eval_files),
                 input_map=input_map_lib.parse(fv.input_map)),
      run=_fill(_Run, fv, profile_steps=profile_steps),
      cluster=_fill(_Cluster, fv),
      model_dir=fv.model_dir, export_dir=fv.export_dir)


def flag_lines(fv: flags.FlagValues, only_set: bool = False) -> List[str]:
  """The trainer's flags in `fv` as flagfile lines: every flag with a value
  (a record that reruns the job), or, `only_set`, those given (directly or
  in a flagfile) or filled by the demo."""
  lines = (fv[name].serialize() for name in FLAG_NAMES
           if not only_set or fv[name].present or
           fv[name].value != fv[name].default)
  return [line for line in lines if line]


def model_settings(fv: flags.FlagValues) -> Dict[str, object]:
  """The settings that define the model a checkpoint belongs to."""
  return {name: fv[name].value for name in MODEL_FLAGS}


def recorded_model(path: str) -> Dict[str, object]:
  """model_settings of the flagfile at `path` (a run's flags.txt)."""
  fv = flags.FlagValues()
  define_flags(fv)
  fv(["recorded", "--flagfile=" + path])
  return model_settings(fv)
