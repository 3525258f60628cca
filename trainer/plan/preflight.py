"""The pre-flight: the model, the data and how they fit, checked once.

`check(job, task)` resolves the hub handle (a URL or an archive is fetched once
into the cache: trainer.hub_model.handles), inspects the hub model, expands and
reads the data files (their formats told from their bytes), maps data columns to
model inputs, checks a sample of rows or every row (trainer.inputs.validate;
`validate_data`) and, for the task that writes them, checks the model and export
directories. It writes nothing; a problem is a `HarnessError` naming it. The
result, a `Plan`, is what a backend runs (trainer.estimator, trainer.keras).
"""

import dataclasses
from typing import Callable, Dict, Optional, Tuple

import tensorflow as tf

from harness import errors
from harness import tf_config
from trainer.config import backends
from trainer.config import input_map as input_map_lib
from trainer.config import job as job_lib
from trainer.hub_model import handles
from trainer.hub_model import model_spec as model_spec_lib
from trainer.hub_model import user_model as user_model_lib
from trainer.inputs import data
from trainer.inputs import validate
from trainer.plan import model_dir as model_dir_lib
from trainer.training import early_stopping
from trainer.training import warm_start as warm_start_lib

# (spec, head, user model) -> {variable name: shape}: the backend's model variables,
# named as trainer.training.warm_start names them.
ModelVariables = Callable[[model_spec_lib.ModelSpec, job_lib.HeadConfig,
                           Optional[user_model_lib.UserModel]],
                          Dict[str, list]]


@dataclasses.dataclass(frozen=True)
class Plan:
  """A checked job: the model, the files, and the input pipeline config.

  Attributes:
    model_dir_conflict: why the model directory holds another model's
      checkpoint; empty when it is new or this model's (see
      trainer.plan.model_dir.settle).
    resolution: where the hub handle resolved to; `job` names that
      directory.
    backend: the backend that runs the plan (trainer.config.backends).
    warm_start: (the checkpoint, the names of the variables to take from
      it) where the job warm-starts; None otherwise.
  """
  job: job_lib.JobConfig
  spec: model_spec_lib.ModelSpec
  train_files: data.Files
  eval_files: Optional[data.Files]
  inputs: data.InputConfig
  eval_inputs: Optional[data.InputConfig] = None  # The eval files' columns.
  train_examples: Optional[int] = None  # Counted where every row is checked.
  eval_examples: Optional[int] = None
  model_dir_conflict: str = ""
  resolution: Optional[handles.Resolution] = None
  warm_start: Optional[tuple] = None
  backend: Optional[backends.Choice] = None
  data_checks: Tuple[str, ...] = ()  # What the data check covered.
  # The resolved flags, as flagfile lines (trainer.plan.resolve.prepare).
  flag_lines: Tuple[str, ...] = ()
  # `model`: the user's Keras model builder, checked, with its columns.
  user_model: Optional[user_model_lib.UserModel] = None
  # A cluster's chief restarted after its final export (a preemption while
  # it waited for the final evaluation): the job is done
  # (`job_already_done`); it only waits for that evaluation again.
  job_done: bool = False
  # The export of a finished run that this one continues (a larger
  # --train_steps): kept beside the new one when the chief settles the
  # model directory (trainer.plan.model_dir.keep_export).
  earlier_export: str = ""

  @property
  def serving_inputs(self) -> Dict[str, tf.TensorSpec]:
    """What the serving export takes: the hub model's inputs; the columns a
    user's `model` takes; every column but the label for a `model_fn`."""
    if self.user_model:
      return self.user_model.serving_inputs
    return dict(self.inputs.inputs)


def _inspect(options: job_lib.ModelOptions) -> model_spec_lib.ModelSpec:
  return model_spec_lib.inspect_model(
      options.module_handle, trainable=options.trainable, tags=options.tags,
      signature=options.signature, output_key=options.output_key,
      signature_outputs_as_dict=options.signature_outputs_as_dict)


def job_already_done(job: job_lib.JobConfig) -> bool:
  """Whether this model directory's job has ended: its latest checkpoint is
  at --train_steps, or early stopping ended it (the final export exists
  too, which the caller checks)."""
  if early_stopping.marker(job.model_dir):
    return True
  if not tf.train.latest_checkpoint(job.model_dir):
    return False
  return warm_start_lib.global_step(job.model_dir) >= job.run.train_steps


def check(job: job_lib.JobConfig, task: Optional[tf_config.Task] = None,
          recorded_model: Optional[Callable[[str, str], Dict]] = None,
          model_settings: Optional[Dict] = None, *,
          cache_dir: Optional[str] = None,
          backend: Optional[backends.Choice] = None,
          model_variables: Optional[ModelVariables] = None,
          check_model: Optional[Callable[["Plan"], None]] = None,
          log: Callable[[str], None] = print) -> Plan:
  """Checks the job before anything is trained; writes nothing but what
  fetching the hub handle puts into the cache.

  Args:
    job: the job (validated here, trainer.config.job.validate).
    task: this process's task from TF_CONFIG; None for a single process.
    recorded_model, model_settings: see trainer.plan.model_dir.conflict; without
      them the model directory is not compared with its flags.txt.
    cache_dir: where a URL or archive handle is fetched to (default:
      TFHUB_CACHE_DIR, else hub's default).
    backend: the backend that will run it (recorded in the plan).
    model_variables: the backend's (trainer.estimator / trainer.keras
      `model_variables`); needed where the job warm-starts.
    check_model: the backend's `check_model`, run on the plan: the part of
      the model check only the backend can do (a user's model_fn).
    log: receives download progress, and what the data check says.

  Raises:
    errors.HarnessError: with a message that names the problem.
  """
  job_lib.validate(job)
  resolution = handles.resolve(
      job.model.module_handle, cache_dir or handles.default_cache_dir(), log)
  job = dataclasses.replace(job, model=dataclasses.replace(
      job.model, module_handle=resolution.path))
  spec = _inspect(job.model)
  own_model = job.model.model or job.model.model_fn
  if not own_model:  # A model of the user's own feeds the hub model itself.
    data.check_shapes(spec.inputs)
  train_files = data.expand(job.data.train_files, "train_files", log)
  columns = data.read_columns(train_files)
  eval_files, eval_columns = None, None
  if job.data.eval_files:
    eval_files = data.expand(job.data.eval_files, "eval_files", log)
    eval_columns = data.read_columns(eval_files)
    if set(eval_columns) != set(columns):
      raise errors.DataError(
          "Eval data columns (%s) differ from train data columns (%s)." %
          (", ".join(eval_columns), ", ".join(columns)))
  elif task is not None and task.type == tf_config.EVALUATOR:
    raise errors.FlagError(
        "TF_CONFIG makes this task the evaluator, but `eval_files` is empty: "
        "there is nothing to evaluate.")
  user = None
  if own_model:
    # Every column but the label, under its own name.
    model_inputs = data.column_specs(train_files, columns,
                                     job.data.label_key)
    mapping = {name: name for name in model_inputs}
    if job.model.model:  # Built once here: its mistakes before any task.
      _, user = user_model_lib.build(
          user_model_lib.UserModel(job.model.model, model_inputs), spec,
          job.head.n_classes)
      log("Your model %s takes the columns: %s%s." % (
          job.model.model, ", ".join(user.used),
          "; it ignores %s, which its logits do not depend on (the serving "
          "export leaves them out)" % ", ".join(user.ignored)
          if user.ignored else ""))
  else:
    model_inputs = spec.inputs
    mapping = input_map_lib.resolve(list(spec.inputs), list(columns),
                                    job.data.input_map, job.data.label_key)
  label_dtype = tf.int64 if job.head.n_classes else tf.float32
  inputs = data.InputConfig(inputs=model_inputs, input_map=mapping,
                            columns=columns, label_key=job.data.label_key,
                            label_dtype=label_dtype)
  # The eval files' own columns: their order and kinds may differ (CSV for
  # one, TFRecord for the other; a tf.Example's features have no order).
  eval_inputs = (dataclasses.replace(inputs, columns=eval_columns)
                 if eval_files else None)
  counts, checks = {}, []
  if job.data.validate_data != validate.OFF:
    for name, files, config in (("train", train_files, inputs),
                                ("eval", eval_files, eval_inputs)):
      if files:
        checked = validate.check(files, config, job.head.n_classes,
                                 name + "_files",
                                 mode=job.data.validate_data, log=log)
        counts[name + "_examples"] = checked.examples
        checks.append(checked.describe(name + "_files"))
  conflict = ""
  job_done = False
  earlier_export = ""
  if tf_config.is_chief(task):
    if recorded_model is not None:
      conflict = model_dir_lib.conflict(job.model_dir, model_settings,
                                        recorded_model)
    export_dir = job.resolved_export_dir
    # Inside another model's directory, the export goes with it when that
    # directory is moved aside: the conflict is what to report then.
    moves_aside = conflict and export_dir.startswith(
        job.model_dir.rstrip("/") + "/")
    if tf.io.gfile.exists(export_dir) and not moves_aside:
      latest = tf.train.latest_checkpoint(job.model_dir)
      done = not conflict and job_already_done(job)
      job_done = task is not None and done
      if latest and not conflict and not done:
        earlier_export = export_dir  # Kept when settled (continues).
      elif not job_done:
        raise errors.FlagError(
            "Export directory %s already exists%s; remove it or set "
            "`export_dir` to a new path%s." % (
                export_dir, " (this model directory's run is finished, at "
                "step %d)" % warm_start_lib.global_step(latest)
                if done and latest else "", ", or give a larger "
                "`train_steps` to continue the run" if done else ""))
  warm_start = None
  if job.run.warm_start_from:
    checkpoint = warm_start_lib.checkpoint_of(job.run.warm_start_from)
    if model_variables is None:
      raise ValueError("a warm start needs the backend's model_variables")
    variables = model_variables(spec, job.head, user)
    names = warm_start_lib.selected(variables, job.run.warm_start_vars)
    warm_start_lib.check(checkpoint, variables, names)
    warm_start = (checkpoint, tuple(names))
  plan = Plan(job=job, spec=spec, train_files=train_files,
              eval_files=eval_files, inputs=inputs, eval_inputs=eval_inputs,
              model_dir_conflict=conflict, resolution=resolution,
              warm_start=warm_start, backend=backend,
              data_checks=tuple(checks), user_model=user,
              job_done=job_done, earlier_export=earlier_export, **counts)
  if check_model:
    check_model(plan)
  return plan
