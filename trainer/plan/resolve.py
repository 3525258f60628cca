"""From the trainer's flags to a checked plan: the way every run starts.

`python -m trainer.task` and the launchers' pre-flight (trainer.plan.launch)
both go this way:
  flags -> the backend (trainer.config.backends: estimator or keras, and why)
        -> `job_from_flags` (trainer.config.cli, the demo, Vertex AI's
           directories) -> JobConfig
        -> `prepare` (trainer.plan.preflight: validated once, model, data)
        -> Plan
        -> `settle_model_dir` (trainer.plan.model_dir) -> the backend's run.
"""

import dataclasses
import datetime
import os
from typing import Callable, List, Mapping, Optional

from absl import flags
from absl import logging

from harness import tf_config
from trainer.config import aip_dirs
from trainer.config import backends
from trainer.config import cli
from trainer.config import demo
from trainer.config import job as job_lib
from trainer.hub_model import handles
# The modules that load TensorFlow (trainer.plan.preflight, .model_dir, the
# backends) are imported where first used, on purpose: --helpfull and a bad
# flag answer in a fraction of the time, and the entry point sets TF's C++
# log level before TF loads (measured in docs/layout.md).


def vertex_dirs(fv: flags.FlagValues, environ: Mapping[str, str]):
  """The directories Vertex AI's environment fills (trainer.config.aip_dirs)."""
  return aip_dirs.chosen({"model_dir": fv.model_dir,
                          "export_dir": fv.export_dir}, environ)


def resolve_flags(fv: flags.FlagValues, *, default_model_dir: str = "",
                  log: Callable[[str], None] = logging.info,
                  build_demo: bool = True,
                  environ: Mapping[str, str] = os.environ
                  ) -> flags.FlagValues:
  """The flags the run uses, as a new FlagValues (`fv`, the user's, is left
  as parsed): the demo's config where no model or data is given (its files
  built where missing, with `build_demo`), then the user's flags, which
  win; Vertex AI's directories where --model_dir or --export_dir is unset and
  `environ` has them; `default_model_dir` where there is still no
  --model_dir."""
  lines = []
  is_demo = demo.wanted(fv)
  if is_demo:
    lines += demo.flag_lines(log=log, build=build_demo)
  else:
    demo.check_own_job(fv)
  lines += cli.flag_lines(fv, only_set=True)
  for chosen in vertex_dirs(fv, environ):
    lines.append("--%s=%s" % (chosen.setting, chosen.value))
    log(chosen.note())
  resolved = cli.new_flag_values(lines)
  if not resolved.model_dir:
    if not default_model_dir and is_demo:
      default_model_dir = os.path.join(
          "runs", "demo-" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    if default_model_dir:
      resolved = cli.new_flag_values(
          lines + ["--model_dir=" + os.path.abspath(default_model_dir)])
  return resolved


def job_from_flags(fv: flags.FlagValues, **kwargs) -> job_lib.JobConfig:
  """The job the flags describe, resolved as `resolve_flags` says."""
  return cli.job_config(resolve_flags(fv, **kwargs))


def prepare(fv: flags.FlagValues, task: Optional[tf_config.Task], *,
            default_model_dir: str = "",
            log: Callable[[str], None] = logging.info,
            build_demo: bool = True, cache_dir: Optional[str] = None,
            choice: Optional[backends.Choice] = None,
            environ: Mapping[str, str] = os.environ):
  """Flags -> a checked trainer.plan.preflight.Plan, for the task `task`, with
  the backend that runs it (`plan.backend`).

  Writes nothing but the demo's models and data (where missing, and
  `build_demo`) and what fetching a hub handle puts into `cache_dir`
  (default: TFHUB_CACHE_DIR, else hub's default). A backend this TF lacks
  is refused before that. `choice`: the backend, where already chosen.
  The plan's `flag_lines` are the resolved flags (`resolve_flags`), the
  record that reruns the job; `fv` is left as parsed.
  """
  choice = choice or backends.choose_here(fv.backend)
  resolved = resolve_flags(fv, default_model_dir=default_model_dir, log=log,
                           build_demo=build_demo, environ=environ)
  from trainer.plan import preflight  # pylint: disable=g-import-not-at-top
  backend = backends.load(choice)
  plan = preflight.check(
      cli.job_config(resolved), task, recorded_model=cli.recorded_model,
      model_settings=cli.model_settings(resolved),
      cache_dir=cache_dir or handles.default_cache_dir(os.environ),
      backend=choice, model_variables=backend.model_variables,
      check_model=backend.check_model, log=log)
  return dataclasses.replace(plan, flag_lines=tuple(cli.flag_lines(resolved)))


def prepare_server(fv: flags.FlagValues, *,
                   log: Callable[[str], None] = logging.info,
                   build_demo: bool = True, cache_dir: Optional[str] = None,
                   environ: Mapping[str, str] = os.environ
                   ) -> job_lib.JobConfig:
  """Flags -> the checked job of a task that only serves (a ps; a Keras
  worker: trainer.config.backends.only_serves).

  Such a task needs the job's directories and cluster settings, not a plan:
  the model and the data are checked by the chief (and by a launcher's
  pre-flight) and used there, so they are not read here. The flags are
  validated as everywhere, and the hub handle is resolved as on every task
  (a URL or an archive fetched into this host's cache): TF reads a
  variable's saved value on the variable's own host (the restore of TF's
  MultiDeviceSaver runs on each variable's device), so a ps reads the hub
  model's variables from its own file system.
  """
  job = job_from_flags(fv, log=log, build_demo=build_demo, environ=environ)
  job_lib.validate(job)
  resolution = handles.resolve(
      job.model.module_handle,
      cache_dir or handles.default_cache_dir(os.environ), log)
  return dataclasses.replace(job, model=dataclasses.replace(
      job.model, module_handle=resolution.path))


def recorded_flags(lines: List[str], resolution,
                   choice: Optional[backends.Choice] = None) -> List[str]:
  """flags.txt's lines: the backend that ran (and why, as a comment), the
  module handle as the user gave it, and, as a comment, the directory it
  resolved to (with the archive's size and sha256), so that a run can be
  reproduced and audited."""
  if choice:
    lines = lines + ["# " + choice.describe()]
  if not (resolution and resolution.in_cache):
    return lines
  return [line for line in lines if not line.startswith("--module_handle=")
         ] + ["--module_handle=" + resolution.handle,
              "# " + resolution.describe()]


def settle_model_dir(plan, overwrite: bool,
                     log: Callable[[str], None] = logging.info,
                     dry_run: bool = False) -> str:
  """Refuses another model's directory, or moves it aside (see
  trainer.plan.model_dir); for the chief's pre-flight. Returns what it did
  (with `dry_run`: would do)."""
  from trainer.plan import model_dir  # pylint: disable=g-import-not-at-top
  done = model_dir.settle(plan.job.model_dir, plan.model_dir_conflict,
                          overwrite, log=log, dry_run=dry_run)
  if plan.earlier_export:
    done += "; " + model_dir.keep_export(
        plan.earlier_export, plan.job.model_dir, log=log, dry_run=dry_run)
  return done


