"""The trainer's flags, and how they become a `JobConfig`.

Only entry points read flags: `python -m trainer.task` parses them into the
global FlagValues; the cluster launchers parse the trainer flags they pass
on into a private one. Either way `job_config(fv)` turns them into one
plain, nested `JobConfig`.

Each setting is declared once, as a field of trainer/config/job.py; its flag is
derived from the field (name, type, default, help) by `define_flags`, and
its value read back by `job_config`. Only the entry point's own flags
(--check_only, --overwrite_model_dir) are declared here. Why not a library:
ml_collections' config_flags (Flax, t5x) would rename every flag
--config.<name> and move the defaults into a config file, and
tensorflow/models' hyperparams brings its own YAML overrides; users' scripts
and recorded flags.txt files spell today's absl flags, which this keeps.

`--helpfull` shows the flags in GROUPS, by the part of the job they set
(absl groups flags by the name it is told defined them, so each part's
label stands in for a module name), and `--help` shows the few a first run
needs (FIRST_RUN, the entry point's key flags).

A flag has the name of its setting, so a settings error of the library
("`batch_size` (0) must be ...") is shown as "--batch_size (0) must be ..."
by the entry point (harness.cli.report).

The resolved flags are written next to the model as a flagfile
(trainer.plan.model_dir.write_record), which reruns the job; `recorded_model`
reads the settings that define the model back from such a file.
"""

from collections import abc
import dataclasses
import typing
from typing import Dict, Iterable, List

from absl import flags

from harness import errors
from trainer.config import job as job_lib

FLAGS_FILE = "flags.txt"
# Flags that define the model a checkpoint belongs to.
MODEL_FLAGS = ("module_handle", "trainable", "tags", "signature",
               "output_key", "signature_outputs_as_dict", "model",
               "model_fn", "n_classes", "hidden_units", "optimizer")
# The part of the job a setting belongs to -> its group in --helpfull, in
# the order a job is described (absl sorts the groups by label). JobConfig's
# own settings (the model and export directories) and the entry point's
# flags are the run's.
GROUPS = {
    job_lib.ModelOptions: "trainer 1/5, the hub model",
    job_lib.HeadConfig: "trainer 2/5, the head on top of it",
    job_lib.DataOptions: "trainer 3/5, the data",
    job_lib.RunOptions: "trainer 4/5, the run",
    job_lib.ClusterOptions: "trainer 5/5, on a cluster",
}
RUN_GROUP = GROUPS[job_lib.RunOptions]
# What a first run of one's own model and data needs: --help shows these.
FIRST_RUN = ("module_handle", "trainable", "train_files", "eval_files",
             "label_key", "n_classes", "model_dir", "train_steps",
             "batch_size", "check_only")


class _EnumParser(flags.EnumParser):
  """One of a setting's choices, or one of its aliases (e.g. true/false)."""

  def __init__(self, choices, aliases):
    super().__init__(list(choices))
    self._aliases = aliases

  def parse(self, argument):
    text = str(argument).strip().lower()
    return super().parse(self._aliases.get(text, text))


class EnumFlag(flags.Flag):
  """An enum flag that also takes absl's boolean spelling: `--name` is the
  alias of 'true' and `--noname` that of 'false' (kept for the flagfiles and
  scripts that used the boolean flag a setting once was, e.g.
  `--novalidate_data`)."""

  def __init__(self, name, choices, aliases, default, help_string):
    super().__init__(_EnumParser(choices, aliases),
                     flags.ArgumentSerializer(), name, default, help_string,
                     boolean=True)

  def serialize(self):
    return "--%s=%s" % (self.name, self.value)


def _fields(config_class):
  """(field, type) of each field of a dataclass, Optional[X] read as X."""
  hints = typing.get_type_hints(config_class)
  for field in dataclasses.fields(config_class):
    kind = hints[field.name]
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    if typing.get_origin(kind) is typing.Union and len(args) == 1:
      kind = args[0]
    yield field, kind


def settings(config_class=job_lib.JobConfig):
  """(part, field, type) of every setting of a JobConfig, its parts'
  included; `part` is the dataclass that declares the field."""
  for field, kind in _fields(config_class):
    if dataclasses.is_dataclass(kind):
      yield from settings(kind)
    else:
      yield config_class, field, kind


def _is_list(kind) -> bool:
  origin = typing.get_origin(kind)
  return origin is not None and issubclass(origin, (abc.Sequence, abc.Mapping))


def _define_setting(field, kind, fv: flags.FlagValues, group: str) -> None:
  """The flag of one setting (trainer.config.job.setting), derived from its
  field, shown in --helpfull under `group`."""
  meta, name = field.metadata, field.name
  value = job_lib.default_of(field)
  value = None if value is dataclasses.MISSING else value
  where = dict(flag_values=fv, module_name=group)
  if meta["aliases"]:
    flags.DEFINE_flag(EnumFlag(name, meta["choices"], meta["aliases"], value,
                               meta["help"]), **where)
  elif meta["choices"]:
    flags.DEFINE_enum(name, value, list(meta["choices"]), meta["help"],
                      **where)
  elif _is_list(kind):
    if isinstance(value, abc.Mapping):
      value = ["%s=%s" % item for item in value.items()]
    flags.DEFINE_list(name, None if value is None else list(value),
                      meta["help"], **where)
  else:
    define = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer,
              float: flags.DEFINE_float, str: flags.DEFINE_string}[kind]
    define(name, value, meta["help"], **where)


def define_flags(fv: flags.FlagValues = flags.FLAGS, *,
                 key_module: str = "") -> List[str]:
  """Defines the trainer's flags on `fv`: one per setting of a JobConfig
  (trainer.config.job), and the entry point's own. Returns their names.

  `key_module`: the entry point's module name as absl's --help looks it up
  (sys.argv[0]); FIRST_RUN become its key flags, which --help shows.
  """
  before = set(fv)
  for part, field, kind in settings():
    _define_setting(field, kind, fv, GROUPS.get(part, RUN_GROUP))
  flags.DEFINE_bool(
      "overwrite_model_dir", False, "If --model_dir holds a checkpoint of "
      "a different model, move that directory aside (to MODEL_DIR.old-TIME) "
      "and start afresh, instead of refusing.", flag_values=fv,
      module_name=RUN_GROUP)
  flags.DEFINE_bool(
      "check_only", False, "Run the whole pre-flight (flags, TF_CONFIG, "
      "model, data, model directory), print what this task would do, write "
      "nothing, and exit: 0 when it would run, 1 with the problem.",
      flag_values=fv, module_name=RUN_GROUP)
  if key_module:
    for name in FIRST_RUN:
      fv.register_key_flag_for_module(key_module, fv[name])
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


def _setting_value(field, kind, value):
  """A setting's value from its flag's."""
  meta, name = field.metadata, field.name
  if value is None:
    if meta["required"]:
      raise errors.FlagError("`%s` is required: %s." % (name, meta["required"]))
    return None
  if meta["parse"]:
    return meta["parse"](value)
  if not _is_list(kind):
    return value
  item = (typing.get_args(kind) or (str,))[0]
  if item not in (int, float):
    return tuple(value)
  try:
    return tuple(item(v) for v in value)
  except ValueError as e:
    raise errors.FlagError("`%s`=%s must be %s, e.g. %s." % (
        name, ",".join(value), "integers" if item is int else "numbers",
        meta["example"])) from e


def _build(config_class, fv: flags.FlagValues):
  """A JobConfig (or one of its parts) from the flags of its settings."""
  values = {}
  for field, kind in _fields(config_class):
    values[field.name] = (
        _build(kind, fv) if dataclasses.is_dataclass(kind) else
        _setting_value(field, kind, fv[field.name].value))
  return config_class(**values)


def job_config(fv: flags.FlagValues) -> job_lib.JobConfig:
  """Turns flag values into a JobConfig (not yet validated)."""
  return _build(job_lib.JobConfig, fv)


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


def recorded_model(path: str, text: str) -> Dict[str, object]:
  """model_settings of a run's flags.txt, its `text` read from `path` by the
  caller (through TF's file systems: a model directory may be on gs:// or
  any URL TF reads, which absl's --flagfile, a plain open(), cannot). The
  lines are a flagfile's as absl reads one: a flag each, blank lines and
  lines starting # or // left out."""
  lines = [line.strip() for line in text.splitlines()]
  args = [line for line in lines
          if line and not line.startswith(("#", "//"))]
  fv = flags.FlagValues()
  define_flags(fv)
  try:
    fv(["recorded"] + args)
  except flags.Error as e:
    raise errors.FlagError(
        "%s is not a flagfile this trainer reads (%s): it was edited, or "
        "written by another version. Fix or remove it, or give "
        "`overwrite_model_dir` to start the model directory afresh." % (
            path, " ".join(str(e).split()))) from e
  return model_settings(fv)
