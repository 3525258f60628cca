"""A study's flags and checks, shared by the commands that tune a job.

`python -m cluster.tune` (Optuna, on this machine), `python -m cluster.vertex
--hptune` (Vertex AI's hyperparameter tuning) and `python -m cluster.tfjob
--katib` (Katib) take the same study flags, and check before any trial that
the space only names trainer flags and that the trainer takes every value at
the space's edges (each value of a list, both ends of a range), and that the
metric is one the job's evaluations report: one line and exit status 1
otherwise, as every other flag problem.
"""

from typing import Optional, Sequence, Tuple

from absl import flags

from cluster.engines import search_space
from harness import errors
from trainer.config import cli as trainer_cli
from trainer.config import job as job_lib
from trainer.training import metric_goal

MAXIMIZE, MINIMIZE = "maximize", "minimize"
# Flags a trial may not set: where it writes, and how the run is driven.
NOT_TUNABLE = ("model_dir", "export_dir", "overwrite_model_dir", "flagfile",
               "check_only", "warm_start_from", "backend")


def define_flags(fv: flags.FlagValues) -> None:
  """--space, --trials, --parallel, --metric, --goal,
  --max_failed_trials."""
  flags.DEFINE_string("space", "", "YAML file of the search space: one entry "
                      "per trainer flag, e.g. `learning_rate: {type: double, "
                      "min: 0.0001, max: 0.3, scale: log}` (types double, "
                      "integer, categorical, discrete; docs/tuning.md).",
                      flag_values=fv)
  flags.DEFINE_integer("trials", 10, "Trials in the whole study (a study "
                       "run again with more runs only the difference).",
                       lower_bound=1, flag_values=fv)
  flags.DEFINE_integer("parallel", 1, "Trials at a time.", lower_bound=1,
                       flag_values=fv)
  flags.DEFINE_string("metric", "accuracy",
                      "The evaluation metric the study optimizes: accuracy, "
                      "loss or data_loss (classification); rmse, mae, loss "
                      "or data_loss (regression). A trial's value is its "
                      "final evaluation's.", flag_values=fv)
  flags.DEFINE_enum("goal", None, [MAXIMIZE, MINIMIZE], "Whether the metric "
                    "should go up or down; by default up for accuracy, down "
                    "for the losses and errors.", flag_values=fv)
  flags.DEFINE_integer("max_failed_trials", 0, "Failed trials after which "
                       "the tuning service ends the study (0: the service "
                       "decides).", lower_bound=0, flag_values=fv)


def goal(metric: str, given: Optional[str]) -> str:
  if given:
    return given
  return MAXIMIZE if metric in metric_goal.HIGHER_IS_BETTER else MINIMIZE


def check_metric(metric: str, n_classes: int) -> None:
  reported = job_lib.metrics(n_classes)
  if metric not in reported:
    raise errors.FlagError(
        "`metric`=%s is not an evaluation metric of this job: a %s head "
        "reports %s." % (metric, "classification" if n_classes else
                         "regression", ", ".join(reported)))


def check_space(space: Sequence[search_space.Param],
                trainer_lines: Sequence[str]) -> None:
  """Refuses a name that is not a trainer flag (or one a trial may not
  set), and a value at the space's edges that the trainer refuses."""
  for param in space:
    if param.name not in trainer_cli.FLAG_NAMES:
      raise search_space.SpaceError(
          "Search space: %s is not a trainer flag (python -m trainer.task "
          "--helpfull lists them)." % param.name)
    if param.name in NOT_TUNABLE:
      raise search_space.SpaceError(
          "Search space: %s is set for each trial by the tuner; tunable "
          "flags are the model's, the head's, the data's and the run's "
          "settings." % param.name)
    for value in param.extremes():
      arg = "--%s=%s" % (param.name, search_space.flag_value(value))
      try:
        job_lib.validate(trainer_cli.job_config(
            trainer_cli.new_flag_values(list(trainer_lines) + [arg])))
      except errors.HarnessError as e:
        raise search_space.SpaceError(
            "Search space: %s: the trainer refuses %s: %s" % (
                param.name, arg, e)) from e


def load_space(path: str, trainer_lines: Sequence[str]
               ) -> Tuple[search_space.Param, ...]:
  """The space in `path`, checked against the trainer's flags."""
  if not path:
    raise errors.FlagError("`space` is required: a YAML file of the trainer "
                           "flags to tune (docs/tuning.md).")
  space = search_space.load(path)
  check_space(space, trainer_lines)
  return space


def study_settings(fv: flags.FlagValues, n_classes: int
                   ) -> search_space.Study:
  """The study the flags describe, its metric checked."""
  check_metric(fv.metric, n_classes)
  if fv.parallel > fv.trials:
    raise errors.FlagError("`parallel` (%d) is more than `trials` (%d)." % (
        fv.parallel, fv.trials))
  return search_space.Study(metric=fv.metric, goal=goal(fv.metric, fv.goal),
                            trials=fv.trials, parallel=fv.parallel,
                            max_failed_trials=fv.max_failed_trials)
