"""The flags that describe a job's cluster, the same on every engine.

`python -m cluster.local`, `python -m cluster.tfjob` and `python -m
cluster.slurm` take these flags before `--`, and the trainer's flags after
it. Each engine adds only what is its own (an image, a partition, ...).
"""

from absl import flags

from cluster.engines import resources as resources_lib
from cluster.engines import spec
from cluster.launcher import restart
from harness import errors


def define(fv: flags.FlagValues = flags.FLAGS) -> None:
  """Defines num_workers, num_ps, evaluator (their defaults: spec.Shape's),
  max_restarts, restart_window_secs, deadline_secs (no deadline unless
  asked: a real run is never stopped by a default it did not know of)."""
  shape = spec.Shape()
  flags.DEFINE_integer("num_workers", shape.num_workers, "Workers besides "
                       "the chief.", flag_values=fv)
  flags.DEFINE_integer("num_ps", shape.num_ps, "Parameter-server tasks.",
                       flag_values=fv)
  flags.DEFINE_bool("evaluator", shape.evaluator, "Run an evaluator task (not "
                    "part of the training cluster); needs the trainer's "
                    "--eval_files.", flag_values=fv)
  flags.DEFINE_integer("max_restarts", restart.DEFAULT_MAX_RESTARTS,
                       "Restarts allowed per task within "
                       "--restart_window_secs before the job fails (on "
                       "Kubernetes: per job, in all, the TFJob's "
                       "backoffLimit).", flag_values=fv)
  flags.DEFINE_float("restart_window_secs", restart.DEFAULT_WINDOW_SECS,
                     "The sliding window --max_restarts counts in: a task "
                     "that keeps dying stops the job within seconds; deaths "
                     "further apart never add up.", flag_values=fv)
  flags.DEFINE_integer("deadline_secs", None, "Stop everything and fail if "
                       "the job has not finished after this many seconds. "
                       "Unset (the default): no deadline; the job runs "
                       "until it ends, a task fails for good, or Ctrl-C.",
                       flag_values=fv)


def shape(fv: flags.FlagValues) -> spec.Shape:
  """The cluster the flags describe."""
  return spec.Shape(num_workers=fv.num_workers, num_ps=fv.num_ps,
                    evaluator=fv.evaluator)


def check(fv: flags.FlagValues) -> None:
  """Raises FlagError for a cluster shape or restart budget no engine can
  run."""
  shape(fv).check()
  if fv.max_restarts < 0:
    raise errors.FlagError("`max_restarts` (%d) must be >= 0." %
                           fv.max_restarts)
  if fv.deadline_secs is not None and fv.deadline_secs <= 0:
    raise errors.FlagError("`deadline_secs` (%d) must be positive." %
                           fv.deadline_secs)


def define_resources(fv: flags.FlagValues, supported) -> None:
  """--chief_resources, --worker_resources, --ps_resources and
  --evaluator_resources (cluster/engines/resources.py), with the keys
  `supported` by the engine named in their help."""
  for role in resources_lib.ROLES:
    flags.DEFINE_string(
        resources_lib.flag_name(role), "", "What each %s task needs: "
        "comma-separated KEY=VALUE of %s, e.g. %s." % (
            role, ", ".join(supported),
            "cpu=4,memory=16Gi" if "cpu" in supported else
            "machine_type=n1-highmem-8"), flag_values=fv)


def resources(fv: flags.FlagValues):
  """{role: cluster.engines.resources.Resources} from the flags."""
  return resources_lib.per_role({
      role: fv[resources_lib.flag_name(role)].value
      for role in resources_lib.ROLES})
