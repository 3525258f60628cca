r"""Writes the job as a JobSet, and a NetworkPolicy that guards it.

  python -m cluster.jobset --name=digits --image=registry.example/harness:1 \
      --num_workers=2 --num_ps=1 --evaluator --volume=training:/mnt/shared \
      -- --module_handle=/mnt/shared/models/digits --trainable \
         --train_files=/mnt/shared/data/train.tfrecord \
         --eval_files=/mnt/shared/data/eval.tfrecord --n_classes=5 \
         --model_dir=/mnt/shared/runs/digits | kubectl apply -f -

The same flags as python -m cluster.tfjob (cluster/k8s_flags.py) before
`--`, the trainer's after it, checked here as far as they can be without
the model and data. No TF_CONFIG is written: each pod builds it from
JobSet's labels and JOB_COMPLETION_INDEX (harness/jobset_env.py). Stdout
gets the YAML and nothing else; a problem is one line on stderr and exit
status 1.

What maps where: cluster/engines/jobset.py, which builds the JobSet (pure).
"""

from absl import flags

from cluster import k8s_flags
from cluster.engines import jobset as jobset_lib
from harness import cli as harness_cli
from trainer.config import cli as trainer_cli

KIND = "JobSet"


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  k8s_flags.define(fv, KIND)


def manifest(fv: flags.FlagValues, trainer_args) -> str:
  spec = k8s_flags.spec_from_flags(fv, KIND)
  jobset_lib.check(spec)
  args, spec = k8s_flags.trainer_flags(trainer_args, spec)
  return jobset_lib.manifest(spec, args)


def main(argv):
  fv = flags.FLAGS
  return harness_cli.print_generated(lambda: manifest(fv, argv[1:]), fv,
                                     trainer_cli.FLAG_NAMES)


def console_main():
  harness_cli.console_main(define_flags, main)


if __name__ == "__main__":
  console_main()
