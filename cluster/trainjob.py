r"""Writes the job for Kubeflow Trainer v2: a runtime for TF parameter-server
jobs, and a TrainJob that uses it.

  python -m cluster.trainjob --name=digits --runtime=tf-ps-2w \
      --image=registry.example/harness:1 --num_workers=2 --num_ps=1 \
      --evaluator --volume=training:/mnt/shared \
      -- --module_handle=/mnt/shared/models/digits --trainable \
         --train_files=/mnt/shared/data/train.tfrecord \
         --eval_files=/mnt/shared/data/eval.tfrecord --n_classes=5 \
         --model_dir=/mnt/shared/runs/digits | kubectl apply -f -

The same flags as python -m cluster.tfjob (cluster/k8s_flags.py) before
`--`, plus the runtime's name and kind and what to write; the trainer's
flags after it, checked here as far as they can be without the model and
data. --emit=runtime writes the runtime alone (a team installs it once per
cluster shape and image), --emit=trainjob the job alone (its flags in a
ConfigMap, the TrainJob, its NetworkPolicy), --emit=all (the default) both.
Stdout gets the YAML and nothing else; a problem is one line on stderr and
exit status 1.

What maps where: cluster/engines/trainjob.py (pure), whose runtime's
template is the JobSet of cluster/engines/jobset.py.
"""

from absl import flags

from cluster import k8s_flags
from cluster.engines import jobset as jobset_lib
from cluster.engines import trainjob as trainjob_lib
from harness import cli as harness_cli
from trainer.config import cli as trainer_cli

KIND = "TrainJob"
EMIT = ("all", "runtime", "trainjob")


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  k8s_flags.define(fv, KIND)
  flags.DEFINE_string("runtime", "harness-tf-ps", "The runtime's name: the "
                      "TrainingRuntime (or ClusterTrainingRuntime) written "
                      "with --emit=runtime or all, and the one the TrainJob "
                      "names.", flag_values=fv)
  flags.DEFINE_bool("cluster_runtime", False, "A ClusterTrainingRuntime "
                    "(every namespace may use it) instead of a "
                    "TrainingRuntime in --namespace.", flag_values=fv)
  flags.DEFINE_enum("emit", "all", EMIT, "What to write: the runtime and the "
                    "job (all), the runtime alone (runtime: install it "
                    "once), or the job alone (trainjob: its flags' "
                    "ConfigMap, the TrainJob and its NetworkPolicy).",
                    flag_values=fv)


def manifest(fv: flags.FlagValues, trainer_args) -> str:
  spec = k8s_flags.spec_from_flags(fv, KIND)
  jobset_lib.check(spec)
  trainjob_lib.check_runtime_name(fv.runtime)
  args, spec = k8s_flags.trainer_flags(trainer_args, spec)
  kind = trainjob_lib.KINDS[int(fv.cluster_runtime)]
  return trainjob_lib.manifest(spec, args, fv.runtime, kind, fv.emit)


def main(argv):
  fv = flags.FLAGS
  return harness_cli.print_generated(lambda: manifest(fv, argv[1:]), fv,
                                     trainer_cli.FLAG_NAMES)


def console_main():
  harness_cli.console_main(define_flags, main)


if __name__ == "__main__":
  console_main()
