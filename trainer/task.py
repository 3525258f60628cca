r"""Trains an Estimator on top of a hub model: the trainer's entry point.

  python -m trainer.task                       # the demo, on built-in data
  python -m trainer.task --flagfile=configs/text.cfg --train_steps=500

Flags are applied in order: defaults, then each --flagfile, then the flags
after it (a later flag overrides an earlier one). With no --module_handle
the demo's models and data are built into --demo_dir (if missing) and used.
The resolved flags are written to MODEL_DIR/flags.txt. Any problem found
before training is reported as one line, and the exit status is 1.
"""

import datetime
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging

from trainer import cli
from trainer import config as config_lib
from trainer import errors
from trainer import input_map as input_map_lib

FLAGS_FILE = "flags.txt"
# Flags that define the model a checkpoint belongs to.
MODEL_FLAGS = ("module_handle", "trainable", "tags", "signature",
               "output_key", "signature_outputs_as_dict", "n_classes",
               "hidden_units", "optimizer")
DEMO_DEFAULTS = {
    "trainable": True,
    "input_map": ["inputs=pixels"],
    "n_classes": 5,
    "hidden_units": [],
    "train_steps": 300,
    "batch_size": 32,
    "save_checkpoints_steps": 100,
    "log_every_steps": 50,
}


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> list:
  """Defines the trainer's flags on `fv`; returns their names."""
  before = set(fv)
  # The hub model.
  flags.DEFINE_string(
      "module_handle", "", "Directory of the hub model: a TF2 SavedModel, a "
      "legacy SavedModel or a model in TF1 Hub format. Empty: the demo's "
      "digits model, built into --demo_dir.", flag_values=fv)
  flags.DEFINE_bool(
      "trainable", False, "Fine-tune the hub model's variables (TF2 "
      "SavedModels called through __call__ only).", flag_values=fv)
  flags.DEFINE_list(
      "tags", None, "Comma-separated tag set of the meta graph to load, e.g. "
      "foo,bar. '--tags=' selects the empty tag set. Unset: the default.",
      flag_values=fv)
  flags.DEFINE_string(
      "signature", None, "Signature to call instead of __call__ (legacy "
      "models; TF1 Hub format defaults to 'default').", flag_values=fv)
  flags.DEFINE_string(
      "output_key", None, "Output of the signature to train on (TF1 Hub "
      "format defaults to 'default').", flag_values=fv)
  flags.DEFINE_bool(
      "signature_outputs_as_dict", False, "Train on all outputs of the "
      "signature, concatenated in name order.", flag_values=fv)
  # Data.
  flags.DEFINE_list(
      "train_files", [], "Comma-separated globs of training files: *.csv "
      "(with a header row) or TFRecord files of tf.train.Example.",
      flag_values=fv)
  flags.DEFINE_list("eval_files", [], "Comma-separated globs of evaluation "
                    "files, as --train_files.", flag_values=fv)
  flags.DEFINE_string("label_key", "label", "Column holding the label.",
                      flag_values=fv)
  flags.DEFINE_list(
      "input_map", [], "MODEL_INPUT=DATA_COLUMN pairs, comma-separated. A "
      "model input left out is fed by the column of its name.",
      flag_values=fv)
  # Head and optimization.
  flags.DEFINE_integer(
      "n_classes", None, "Number of classes (labels 0..n-1); 0 trains a "
      "regression head.", flag_values=fv)
  flags.DEFINE_list("hidden_units", [], "Sizes of hidden ReLU layers "
                    "between the hub model and the output, e.g. 64,32.",
                    flag_values=fv)
  flags.DEFINE_enum("optimizer", "adam", ["adam", "adagrad", "rmsprop", "sgd"],
                    "Optimizer.", flag_values=fv)
  flags.DEFINE_float("learning_rate", 0.01, "Learning rate.", flag_values=fv)
  flags.DEFINE_integer("batch_size", 32, "Examples per step and task.",
                       flag_values=fv)
  flags.DEFINE_integer("train_steps", 1000, "Global step to train to.",
                       flag_values=fv)
  flags.DEFINE_integer("eval_steps", None, "Batches per evaluation; unset: "
                       "all of --eval_files.", flag_values=fv)
  flags.DEFINE_integer("random_seed", None, "Graph-level random seed.",
                       flag_values=fv)
  # Outputs.
  flags.DEFINE_string(
      "model_dir", "", "Directory for checkpoints, events and flags.txt. "
      "Empty (demo only): DEMO_DIR/runs/<timestamp>.", flag_values=fv)
  flags.DEFINE_string("export_dir", "", "Where the serving SavedModel goes; "
                      "empty: MODEL_DIR/export.", flag_values=fv)
  flags.DEFINE_integer("save_checkpoints_steps", None, "Checkpoint every N "
                       "steps.", flag_values=fv)
  flags.DEFINE_integer("save_checkpoints_secs", None, "Checkpoint every N "
                       "seconds (default 600 when no step cadence is set).",
                       flag_values=fv)
  flags.DEFINE_integer("keep_checkpoint_max", 5, "Checkpoints to keep.",
                       flag_values=fv)
  flags.DEFINE_integer("log_every_steps", 100, "Report progress every N "
                       "steps.", flag_values=fv)
  # Distributed training (the task itself comes from TF_CONFIG).
  flags.DEFINE_bool(
      "share_cluster_devices", True, "Set share_cluster_devices_in_session. "
      "Turn off only to see the 'does not match any device' failure.",
      flag_values=fv)
  flags.DEFINE_integer(
      "max_worker_delay_secs", config_lib.DEFAULT_MAX_WORKER_DELAY_SECS,
      "Longest deliberate start delay of a worker (Estimator: 60).",
      flag_values=fv)
  flags.DEFINE_integer(
      "session_creation_timeout_secs",
      config_lib.DEFAULT_SESSION_CREATION_TIMEOUT_SECS,
      "How long a worker waits for the chief's session (Estimator: 7200).",
      flag_values=fv)
  flags.DEFINE_float(
      "readiness_poll_secs", 1.0, "How often a worker checks whether the "
      "chief has made the model ready (TF's default: 30).", flag_values=fv)
  flags.DEFINE_integer("eval_throttle_secs", 10, "Least seconds between two "
                       "evaluations.", flag_values=fv)
  flags.DEFINE_integer("eval_start_delay_secs", 0, "Seconds the evaluator "
                       "waits before its first evaluation.", flag_values=fv)
  flags.DEFINE_bool(
      "validate_data", True, "Read every data file once before training, "
      "to report a bad row by file and line in seconds rather than as a TF "
      "error mid-training. Turn off for data too large to scan.",
      flag_values=fv)
  flags.DEFINE_bool(
      "overwrite_model_dir", False, "If --model_dir holds a checkpoint of "
      "a different model, move that directory aside (to MODEL_DIR.old-TIME) "
      "and start afresh, instead of refusing.", flag_values=fv)
  flags.DEFINE_string("demo_dir", "demo_assets", "Where the demo's models "
                      "and data are built (if missing) and read.",
                      flag_values=fv)
  return sorted(set(fv) - before)


def apply_demo_defaults(fv: flags.FlagValues, log=logging.info) -> None:
  """Without --module_handle: the demo's model, data and settings.

  Only flags the user did not set are changed; an empty --model_dir
  becomes DEMO_DIR/runs/<timestamp>.
  """
  from trainer import demo  # pylint: disable=g-import-not-at-top
  assets = demo.prepare(fv.demo_dir, log=log)
  log("No --module_handle: running the demo. Fine-tuning %s (pre-trained "
      "on other images of all ten digits) to classify digits 5-9." %
      assets.digits_model)
  defaults = dict(DEMO_DEFAULTS)
  defaults["module_handle"] = assets.digits_model
  defaults["train_files"] = [assets.data("digits_train.tfrecord")]
  defaults["eval_files"] = [assets.data("digits_eval.tfrecord")]
  for name, value in defaults.items():
    if not fv[name].present:
      fv[name].value = value
  if not fv.model_dir:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    fv.model_dir = os.path.join(assets.root, "runs", stamp)


def job_config(fv: flags.FlagValues):
  """Turns flag values into a plain JobConfig."""
  from trainer import model as model_lib  # pylint: disable=g-import-not-at-top
  from trainer import train  # pylint: disable=g-import-not-at-top
  if fv.n_classes is None:
    raise errors.FlagError("--n_classes is required: the number of classes, "
                           "or 0 for a regression head.")
  try:
    hidden_units = [int(u) for u in fv.hidden_units]
  except ValueError as e:
    raise errors.FlagError("--hidden_units=%s must be integers, e.g. 64,32." %
                           ",".join(fv.hidden_units)) from e
  return train.JobConfig(
      model=train.ModelOptions(
          handle=fv.module_handle, trainable=fv.trainable, tags=fv.tags,
          signature=fv.signature, output_key=fv.output_key,
          signature_outputs_as_dict=fv.signature_outputs_as_dict),
      head=model_lib.HeadConfig(
          n_classes=fv.n_classes, hidden_units=tuple(hidden_units),
          optimizer=fv.optimizer, learning_rate=fv.learning_rate),
      train_files=fv.train_files, eval_files=fv.eval_files,
      model_dir=fv.model_dir, label_key=fv.label_key,
      input_map=input_map_lib.parse(fv.input_map),
      batch_size=fv.batch_size, train_steps=fv.train_steps,
      eval_steps=fv.eval_steps, export_dir=fv.export_dir or None,
      save_checkpoints_steps=fv.save_checkpoints_steps,
      save_checkpoints_secs=fv.save_checkpoints_secs,
      keep_checkpoint_max=fv.keep_checkpoint_max,
      log_every_steps=fv.log_every_steps,
      eval_throttle_secs=fv.eval_throttle_secs,
      eval_start_delay_secs=fv.eval_start_delay_secs,
      max_worker_delay_secs=fv.max_worker_delay_secs,
      session_creation_timeout_secs=fv.session_creation_timeout_secs,
      share_cluster_devices=fv.share_cluster_devices,
      readiness_poll_secs=fv.readiness_poll_secs,
      random_seed=fv.random_seed, validate_data=fv.validate_data)


def write_flags(fv: flags.FlagValues, names, path: str) -> str:
  """Writes the resolved flags to `path`, as a flagfile that reruns them."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  lines = [fv[name].serialize() for name in names]
  with open(path, "w") as f:
    f.write("\n".join(line for line in lines if line) + "\n")
  return path


def summary(result, job) -> str:
  lines = ["Done."]
  if result.metrics:
    shown = ", ".join("%s %.4f" % (k, v) for k, v in sorted(
        result.metrics.items()) if k != "global_step")
    lines.append("Eval on %s after step %d: %s" % (
        ",".join(job.eval_files), result.metrics.get("global_step", 0),
        shown))
  lines.append("Checkpoint: %s" % result.checkpoint)
  if result.export_dir:
    lines.append("Export: %s" % result.export_dir)
  return "\n".join(lines)


def task_type_from_env(environ=os.environ):
  """The task type TF_CONFIG names (checked), or None without TF_CONFIG."""
  from cluster import spec  # pylint: disable=g-import-not-at-top
  text = environ.get("TF_CONFIG", "").strip()
  if not text:
    return None
  _, task = spec.parse_tf_config(text)
  return task.type


def prepare(fv: flags.FlagValues, task_type=None, log=logging.info):
  """Resolves the flags into a checked plan; writes nothing but demo assets.

  Raises:
    errors.HarnessError: what is wrong with the flags, model or data.
  """
  from trainer import train  # pylint: disable=g-import-not-at-top
  if not fv.module_handle:
    apply_demo_defaults(fv, log=log)
  job = job_config(fv)
  plan = train.plan(job)
  if task_type in (None, config_lib.CHIEF):
    check_model_dir(fv, log=log)
    if os.path.exists(job.resolved_export_dir):
      raise errors.FlagError(
          "Export directory %s already exists; remove it or set "
          "--export_dir to a new path." % job.resolved_export_dir)
  return plan


def _model_flag_value(fv, name):
  value = fv[name].value
  if name == "module_handle" and value:
    return os.path.abspath(value)
  return value


def model_dir_conflict(fv: flags.FlagValues) -> str:
  """Why --model_dir's checkpoint is not this model's; empty if it is."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  checkpoint = tf.train.latest_checkpoint(fv.model_dir)
  if not checkpoint:
    return ""
  recorded_path = os.path.join(fv.model_dir, FLAGS_FILE)
  if not os.path.exists(recorded_path):
    return ("it holds a checkpoint (%s) but no %s, so it may belong to "
            "another model" % (checkpoint, FLAGS_FILE))
  recorded = flags.FlagValues()
  define_flags(recorded)
  recorded(["recorded", "--flagfile=" + recorded_path])
  changes = ["--%s was %r, now %r" % (name, _model_flag_value(recorded, name),
                                      _model_flag_value(fv, name))
             for name in MODEL_FLAGS
             if _model_flag_value(recorded, name) != _model_flag_value(
                 fv, name)]
  if changes:
    return "it holds a checkpoint (%s) of a different model: %s" % (
        checkpoint, "; ".join(changes))
  return ""


def check_model_dir(fv: flags.FlagValues, log=logging.info) -> None:
  """Refuses a --model_dir holding another model's checkpoint.

  With --overwrite_model_dir, that directory is moved aside instead.
  """
  conflict = model_dir_conflict(fv)
  if not conflict:
    return
  if not fv.overwrite_model_dir:
    raise errors.FlagError(
        "--model_dir=%s: %s. Use a new --model_dir, or --overwrite_model_dir "
        "to move the old one aside." % (fv.model_dir, conflict))
  aside = "%s.old-%s" % (fv.model_dir.rstrip("/"),
                         datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
  os.rename(fv.model_dir, aside)
  log("--overwrite_model_dir: %s; moved it to %s." % (conflict, aside))


def run(fv: flags.FlagValues, names, environ=os.environ) -> int:
  """Runs the job the flags describe; returns the exit status."""
  from trainer import train  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.get_logger().setLevel("ERROR")
  try:
    task_type = task_type_from_env(environ)
    plan = prepare(fv, task_type)
  except errors.HarnessError as e:
    print("error: %s" % e, file=sys.stderr)
    return 1
  job = plan.job
  if task_type in (None, config_lib.CHIEF):
    write_flags(fv, names, os.path.join(job.model_dir, FLAGS_FILE))
  logging.info("Training %s on %s%s for %d steps; model_dir %s",
               job.model.handle, ",".join(plan.train_files),
               " (%d examples)" % plan.train_examples
               if plan.train_examples else "", job.train_steps,
               job.model_dir)
  result = train.run(plan, log=logging.info)
  print(summary(result, job), flush=True)
  return 0


def main(argv):
  if len(argv) > 1:
    print("error: unexpected arguments %s; flags start with --." %
          " ".join(argv[1:]), file=sys.stderr)
    return 2
  return run(flags.FLAGS, _FLAG_NAMES)


_FLAG_NAMES = []


def console_main():
  """Entry point of the `hub-trainer` console script."""
  _FLAG_NAMES.extend(define_flags())
  app.run(main, flags_parser=cli.parse_flags_or_exit)


if __name__ == "__main__":
  console_main()
