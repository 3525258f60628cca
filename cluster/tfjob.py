r"""Writes the job as a Kubeflow TFJob, and a NetworkPolicy that guards it.

  python -m cluster.tfjob --name=digits --image=registry.example/harness:1 \
      --num_workers=2 --num_ps=1 --evaluator --volume=training:/mnt/shared \
      -- --module_handle=/mnt/shared/models/digits --trainable \
         --train_files=/mnt/shared/data/train.tfrecord \
         --eval_files=/mnt/shared/data/eval.tfrecord --n_classes=5 \
         --model_dir=/mnt/shared/runs/digits | kubectl apply -f -

Flags before `--` describe the cluster (the same as python -m cluster.local,
plus what Kubernetes needs: a name, an image, volumes); flags after it are
the trainer's, checked here as far as they can be without the model and
data (which are where the pods run). With --katib it writes a Katib
Experiment instead, each trial this TFJob with the values of --space as
flags and its own model directory under --model_dir
(cluster/engines/katib.py, docs/tuning.md). Stdout gets the YAML and nothing else;
a problem is one line on stderr and exit status 1.

What maps where: cluster/engines/tfjob.py, which builds the job (pure);
this command reads the flags, checks the trainer's, and prints it.
"""

from typing import List

from absl import flags

from cluster import k8s_flags
from cluster import tuning
from cluster.engines import katib as katib_lib
from cluster.engines import tfjob as tfjob_lib
from harness import cli as harness_cli
from trainer.config import cli as trainer_cli


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  k8s_flags.define(fv, "TFJob")
  flags.DEFINE_bool("katib", False, "Write a Katib Experiment (kubeflow.org/"
                    "v1beta1) whose trials are this TFJob, from --space, "
                    "--trials, --parallel, --metric and --goal; --name "
                    "names the Experiment (docs/tuning.md).",
                    flag_values=fv)
  flags.DEFINE_enum("katib_algorithm", "tpe", katib_lib.ALGORITHMS,
                    "Katib's search algorithm (algorithmName).",
                    flag_values=fv)
  tuning.define_flags(fv)


def manifest(fv: flags.FlagValues, trainer_args) -> str:
  args, spec = k8s_flags.trainer_flags(
      trainer_args, k8s_flags.spec_from_flags(fv, "TFJob"))
  if fv.katib:
    return katib_text(fv, spec, args)
  return tfjob_lib.manifest(spec, args)


def main(argv):
  fv = flags.FLAGS
  return harness_cli.print_generated(lambda: manifest(fv, argv[1:]), fv,
                                     trainer_cli.FLAG_NAMES)


def katib_text(fv: flags.FlagValues, spec: tfjob_lib.JobSpec,
               trainer_args: List[str]) -> str:
  """The Experiment, its space and metric checked."""
  job = trainer_cli.job_config(trainer_cli.new_flag_values(trainer_args))
  space = tuning.load_space(fv.space, trainer_args)
  study = tuning.study_settings(fv, job.head.n_classes)
  return katib_lib.yaml_text(spec, trainer_args, space, study,
                             fv.katib_algorithm)


def console_main():
  harness_cli.console_main(define_flags, main)


if __name__ == "__main__":
  console_main()
