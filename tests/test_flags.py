"""trainer.config.cli: the trainer's flags: help on each, the groups that
--help and --helpfull show, each setting as its flag, and a job config's
round trip through its flag lines (moved from tests/test_task.py)."""

import dataclasses
import os
import re
import subprocess
import sys

import pytest

from trainer.config import cli
from trainer.config import job as job_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "configs")


def _flags(argv):
  """A private FlagValues with the trainer's flags, parsed from argv."""
  return cli.new_flag_values(argv)


def test_every_flag_has_help():
  """Every flag says what it does, in a sentence of its own: not its name
  again, not another flag's words."""
  fv = _flags([])
  helps = {}
  for name in cli.FLAG_NAMES:
    text = re.sub(r"^<[^>]*>: ", "", fv[name].help)  # An enum's values.
    assert text.rstrip().endswith((".", ")")), (name, text)
    assert len(text.split()) >= 5, (name, text)
    assert text.split()[0][0].isupper(), (name, text)
    helps.setdefault(text, []).append(name)
  assert not [names for names in helps.values() if len(names) > 1]
  # And --helpfull shows each of them.
  shown = subprocess.run(
      [sys.executable, "-m", "trainer.task", "--helpfull"],
      capture_output=True, text=True, timeout=60, check=False,
      env=dict(os.environ, PYTHONPATH=REPO)).stdout  # absl exits 1 here.
  for name in cli.FLAG_NAMES:
    assert re.search(r"--(\[no\])?%s:" % name, shown), name


def _help(option):
  return subprocess.run(
      [sys.executable, "-m", "trainer.task", option], capture_output=True,
      text=True, timeout=60, check=False,
      env=dict(os.environ, PYTHONPATH=REPO)).stdout


def test_help_shows_a_first_run_and_helpfull_the_parts_of_the_job():
  """--help: the flags a first run needs, and no others; --helpfull: every
  flag under the part of the job it sets, the parts in the job's order."""
  short = _help("--help")
  shown = set(re.findall(r"^  --(?:\[no\])?(\w+):", short, re.M))
  assert shown == set(cli.FIRST_RUN)
  full = _help("--helpfull")
  groups = re.findall(r"^(trainer \d/5, [^:]+):$", full, re.M)
  assert groups == list(cli.GROUPS.values())
  # Each flag under its group: the part of JobConfig that declares it.
  parts = {field.name: part for part, field, _ in cli.settings()}
  for block in re.split(r"^(?=\S.*:$)", full, flags=re.M):
    title = block.split(":\n", 1)[0]
    for name in re.findall(r"^  --(?:\[no\])?(\w+):", block, re.M):
      if name in parts:
        assert title == cli.GROUPS.get(parts[name], cli.RUN_GROUP), name
  assert "  --module_handle:" in full.split(cli.GROUPS[job_lib.ModelOptions])[1]


def _setting_fields(config_class=job_lib.JobConfig):
  for field in dataclasses.fields(config_class):
    if dataclasses.is_dataclass(field.type):
      yield from _setting_fields(field.type)
    else:
      yield field


def test_each_setting_is_its_flag():
  """One declaration: every field of a JobConfig is the flag of its name,
  with the field's help and default; the other flags are the entry point's
  own two."""
  fv = _flags([])
  fields = list(_setting_fields())
  for field in fields:
    assert fv[field.name].help.endswith(field.metadata["help"]), field.name
    default = job_lib.default_of(field)
    if default is dataclasses.MISSING:
      assert fv[field.name].default is None, field.name
    elif isinstance(default, (tuple, dict)):
      assert not default and fv[field.name].default == [], field.name
    else:
      assert fv[field.name].default == default, field.name
  assert set(cli.FLAG_NAMES) - {f.name for f in fields} == {
      "check_only", "overwrite_model_dir"}


def test_a_job_config_round_trips_through_its_flag_lines():
  """Every setting set away from its default comes back from the flagfile
  lines the run records (each type: str, bool, int, float, Optional, lists,
  the input map, the enum with a boolean spelling)."""
  job = job_lib.JobConfig(
      model=job_lib.ModelOptions(
          module_handle="/m", trainable=True, tags=("a", "b"),
          signature="s", output_key="o", signature_outputs_as_dict=True,
          # (Exclusive, as job.validate says; a round trip does not check.)
          model="mine:build", model_fn="mine:model_fn"),
      head=job_lib.HeadConfig(n_classes=0, hidden_units=(8, 4),
                              optimizer="sgd", learning_rate=0.5,
                              class_weights=(0.5, 2.0)),
      data=job_lib.DataOptions(
          train_files=("t1", "t2"), eval_files=("e",), label_key="y",
          input_map={"x1": "left", "x2": "right"}, batch_size=7,
          validate_data="full", shard_files=False, data_service=False,
          shuffle_buffer=0),
      model_dir="/d", export_dir="/x",
      run=job_lib.RunOptions(
          backend="keras", steps_per_execution=3, train_steps=9,
          eval_steps=2, save_checkpoints_steps=4, keep_checkpoint_max=1,
          log_every_steps=5, eval_throttle_secs=0, eval_start_delay_secs=6,
          eval_untrained=True, verify_export_rows=7,
          random_seed=11, warm_start_from="/w", warm_start_vars="^d",
          export_best="rmse", early_stopping_metric="mae",
          early_stopping_patience=2, profile_steps=(3, 4)),
      cluster=job_lib.ClusterOptions(
          share_cluster_devices=False, max_worker_delay_secs=1,
          session_creation_timeout_secs=2, readiness_poll_secs=0.25,
          final_evaluation_wait_secs=3, preemption_grace_secs=5,
          serve_timeout_secs=4, ps_shard_bytes=0))
  changed = [f.name for f in _setting_fields()
             if f.name != "save_checkpoints_secs"]  # Exclusive with steps.
  lines = ["--%s=%s" % (name, _flag_text(_setting(job, name)))
           for name in changed]
  back = cli.job_config(_flags(lines))
  assert back == job
  # And through the lines the run records (flags.txt).
  assert cli.job_config(_flags(cli.flag_lines(_flags(lines)))) == job
  # Each changed setting was away from its default, so none came back by
  # default.
  for field in _setting_fields():
    if field.name in changed:
      assert _setting(job, field.name) != job_lib.default_of(field), field.name


def _setting(job, name):
  """A setting's value by name (job_lib.settings_of: the part `model` of a
  JobConfig is not the setting `model`)."""
  return job_lib.settings_of(job)[name]


def _flag_text(value):
  if isinstance(value, dict):
    return ",".join("%s=%s" % item for item in value.items())
  if isinstance(value, tuple):
    return ",".join(map(str, value))
  return str(value).lower() if isinstance(value, bool) else str(value)


def test_a_list_of_integers_names_the_setting_and_an_example():
  with pytest.raises(cli.errors.FlagError,
                     match=r"`profile_steps`=3,x must be integers, e\.g\. "
                     r"100,110\."):
    cli.job_config(_flags(["--profile_steps=3,x", "--n_classes=2"]))
  with pytest.raises(cli.errors.FlagError,
                     match="`n_classes` is required: the number of classes"):
    cli.job_config(_flags([]))


def test_flagfile_then_command_line_overrides(tmp_path):
  fv = _flags(["--flagfile=" + os.path.join(CONFIGS, "text.cfg"),
                  "--train_steps=7", "--model_dir=" + str(tmp_path)])
  assert fv.train_steps == 7  # Overridden after the flagfile.
  assert fv.hidden_units == ["32"]  # From the flagfile.
  assert fv.module_handle == "demo_assets/models/text"
