"""A Katib Experiment whose trials are the harness's TFJob (pure).

`python -m cluster.tfjob --katib` (cluster/tfjob.py) is the command. What
maps where (Katib v1beta1; facts: docs/tuning.md, "Katib"):

* `spec.parameters`: the search space (cluster/engines/search_space.py),
  values as strings, a log scale as `distribution: logUniform`;
* `trialTemplate.trialSpec`: the TFJob that `cluster.tfjob` writes
  (cluster/engines/tfjob.py), without its name (Katib names each trial's
  job after the trial). Its trainer flags end with one
  `--NAME=${trialParameters.nameInCamelCase}` per parameter, which Katib
  substitutes, and --model_dir gets `/${trialParameters.trialName}` (the
  trial's name, `${trialSpec.Name}`), so that trials never share a model
  directory;
* metrics: Katib's StdOut collector on the chief's container
  (`primaryPodLabels`: the operator's replica-type label, `chief`), which
  reads the line the chief prints after each evaluation, the evaluator's
  included (trainer/training/metric_report.py);
* `objective`: the metric and its goal; `algorithm`: --katib_algorithm.
The TFJob's NetworkPolicy is not part of the Experiment: the trials' jobs
are named by Katib, so a policy per trial cannot be written ahead.
"""

import re
from typing import Sequence

import yaml

from cluster.engines import search_space
from cluster.engines import tfjob as tfjob_lib

API_VERSION = "kubeflow.org/v1beta1"
TRIAL_NAME = "trialName"
# Katib's suggestion services (its katib-config), by algorithmName.
ALGORITHMS = ("random", "grid", "tpe", "multivariate-tpe",
              "bayesianoptimization", "cmaes", "hyperband", "sobol")


def trial_parameter(flag: str) -> str:
  """learning_rate -> learningRate: the trial parameter that carries it."""
  head, *rest = flag.split("_")
  return head + "".join(word[:1].upper() + word[1:] for word in rest)


def trial_args(trainer_args: Sequence[str],
               space: Sequence[search_space.Param]) -> list:
  """The trainer's flags for every trial: the fixed ones (without those the
  space sets), then a placeholder per parameter; --model_dir per trial."""
  names = [p.name for p in space]
  args = []
  for line in search_space.without(trainer_args, names):
    if line.startswith("--model_dir="):
      line = "%s/${trialParameters.%s}" % (line.rstrip("/"), TRIAL_NAME)
    args.append(line)
  return args + ["--%s=${trialParameters.%s}" % (name, trial_parameter(name))
                 for name in names]


def experiment(spec: tfjob_lib.JobSpec, trainer_args: Sequence[str],
               space: Sequence[search_space.Param],
               study: search_space.Study, algorithm: str = "tpe") -> dict:
  """The Experiment, as data."""
  job = tfjob_lib.tfjob(spec, trial_args(trainer_args, space))
  del job["metadata"]
  return {
      "apiVersion": API_VERSION,
      "kind": "Experiment",
      "metadata": {"name": spec.name, "namespace": spec.namespace},
      "spec": {
          "objective": {"type": study.goal,
                        "objectiveMetricName": study.metric},
          "algorithm": {"algorithmName": algorithm},
          "parallelTrialCount": study.parallel,
          "maxTrialCount": study.trials,
          "maxFailedTrialCount": study.max_failed_trials or study.trials,
          "metricsCollectorSpec": {"collector": {"kind": "StdOut"}},
          "parameters": search_space.katib_parameters(space),
          "trialTemplate": {
              "primaryContainerName": tfjob_lib.CONTAINER,
              "primaryPodLabels": {
                  tfjob_lib.TYPE_LABEL: tfjob_lib.REPLICA_TYPES[
                      "chief"].lower()},
              "trialParameters": [
                  {"name": TRIAL_NAME, "reference": "${trialSpec.Name}",
                   "description": "The trial's name: its model directory"}
              ] + [{"name": trial_parameter(p.name), "reference": p.name,
                    "description": "--%s" % p.name} for p in space],
              "trialSpec": job,
          },
      },
  }


def placeholders(text: str) -> set:
  """The trial parameters `text` refers to."""
  return set(re.findall(r"\$\{trialParameters\.([^}]+)\}", text))


def yaml_text(spec: tfjob_lib.JobSpec, trainer_args: Sequence[str],
              space: Sequence[search_space.Param],
              study: search_space.Study, algorithm: str = "tpe") -> str:
  return yaml.safe_dump(experiment(spec, trainer_args, space, study,
                                   algorithm), sort_keys=False)
