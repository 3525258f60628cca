r"""Writes the job as a Vertex AI CustomJobSpec, for `gcloud ai custom-jobs`.

  python -m cluster.vertex --image=us-docker.pkg.dev/p/r/harness:1 \
      --machine_type=n1-standard-8 --num_workers=2 --num_ps=1 --evaluator \
      --worker_resources=gpu=1,gpu_type=NVIDIA_TESLA_T4 \
      --base_output_dir=gs://bucket/runs/digits --deadline_secs=7200 \
      -- --module_handle=gs://bucket/models/digits --trainable \
         --train_files=gs://bucket/data/train-* \
         --eval_files=gs://bucket/data/eval-* --n_classes=5 \
    > job.yaml
  gcloud ai custom-jobs create --region=us-central1 --display-name=digits \
      --config=job.yaml

Flags before `--` describe the cluster (the same as the other engines',
plus what Vertex needs: an image and machine types); flags after it are the
trainer's, checked here as far as they can be without the model and data.
With --hptune it writes a HyperparameterTuningJob instead, for `gcloud ai
hp-tuning-jobs create --region=R --display-name=N --config=FILE`: each
trial is this CustomJobSpec, with the values of --space as flags
(docs/tuning.md).

Stdout gets the YAML and nothing else; a problem is one line on stderr and
exit status 1.

What maps where: cluster/engines/vertex.py, which builds the job (pure);
this command reads the flags, checks the trainer's, and prints it.
"""

from typing import List, Sequence

from absl import flags

from cluster import job_flags
from cluster import tuning
from cluster.engines import vertex as vertex_lib
from harness import cli as harness_cli
from harness import errors
from trainer.config import cli as trainer_cli
from trainer.plan import launch


def trainer_flags(trainer_args: Sequence[str],
                  spec: vertex_lib.JobSpec) -> List[str]:
  """The trainer's flags, checked (without model or data) and resolved."""
  checked = list(trainer_args)
  model_dir_given = bool(trainer_cli.new_flag_values(trainer_args).model_dir)
  if not model_dir_given:
    if not spec.base_output_dir:
      raise errors.FlagError(
          "`model_dir` is unset and there is no `base_output_dir`: give the "
          "trainer --model_dir=gs://..., or --base_output_dir=gs://... "
          "(each replica then gets AIP_CHECKPOINT_DIR).")
    # What AIP_CHECKPOINT_DIR will be, for the checks below only.
    checked.append("--model_dir=%s/checkpoints" %
                   spec.base_output_dir.rstrip("/"))
  fv, job = launch.check_flags_only(checked, evaluator=spec.shape.evaluator)
  vertex_lib.check_shared(job.model_dir, "model_dir")
  if job.export_dir:
    vertex_lib.check_shared(job.export_dir, "export_dir")
  lines = trainer_cli.flag_lines(fv, only_set=True)
  if not model_dir_given:
    lines = [line for line in lines if not line.startswith("--model_dir=")]
  return lines


def hptune_text(fv: flags.FlagValues, spec: vertex_lib.JobSpec,
                trainer_args: List[str]) -> str:
  """The HyperparameterTuningJob, its space and metric checked."""
  if any(arg.startswith("--model_dir=") for arg in trainer_args):
    raise errors.FlagError(
        "`model_dir` is set: every trial would write there. Leave it unset "
        "with --base_output_dir; each trial then gets its own "
        "AIP_CHECKPOINT_DIR.")
  job = trainer_cli.job_config(trainer_cli.new_flag_values(trainer_args))
  space = tuning.load_space(fv.space, trainer_args + [
      "--model_dir=%s/checkpoints" % spec.base_output_dir])
  study = tuning.study_settings(fv, job.head.n_classes)
  return vertex_lib.hptune_yaml_text(spec, trainer_args, space, study)


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  flags.DEFINE_string("image", "", "Container image (Artifact Registry) "
                      "holding this project and its Python environment.",
                      flag_values=fv)
  flags.DEFINE_string("machine_type", "", "Machine type of every pool, "
                      "e.g. n1-standard-8; a role's machine_type= in "
                      "--ROLE_resources overrides it.", flag_values=fv)
  flags.DEFINE_string("accelerator", "", "TYPE:COUNT of the chief's and "
                      "workers' accelerators, e.g. NVIDIA_TESLA_T4:1 (the "
                      "ps and evaluator get none unless their "
                      "--ROLE_resources ask).", flag_values=fv)
  flags.DEFINE_string("base_output_dir", "", "gs:// prefix of the job's "
                      "outputs (baseOutputDirectory): the trainer's "
                      "--model_dir and --export_dir default to its "
                      "checkpoints/ and model/.", flag_values=fv)
  flags.DEFINE_string("python", "python", "The Python command in the "
                      "image.", flag_values=fv)
  job_flags.define(fv)
  job_flags.define_resources(fv, vertex_lib.SUPPORTED)
  flags.DEFINE_bool("spot", False, "Run on Spot VMs (scheduling.strategy: "
                    "SPOT): a fraction of the price, preemptible at any "
                    "time; a preempted replica restarts and resumes from "
                    "the latest checkpoint.", flag_values=fv)
  flags.DEFINE_bool("hptune", False, "Write a HyperparameterTuningJob (for "
                    "gcloud ai hp-tuning-jobs create --config) whose trials "
                    "are this CustomJobSpec, from --space, --trials, "
                    "--parallel, --metric and --goal (docs/tuning.md).",
                    flag_values=fv)
  tuning.define_flags(fv)


def spec_from_flags(fv: flags.FlagValues) -> vertex_lib.JobSpec:
  job_flags.check(fv)
  spec = vertex_lib.JobSpec(
      image=fv.image, machine_type=fv.machine_type,
      shape=job_flags.shape(fv),
      accelerator=vertex_lib.parse_accelerator(fv.accelerator),
      resources=job_flags.resources(fv),
      base_output_dir=fv.base_output_dir.rstrip("/"),
      deadline_secs=fv.deadline_secs, python=fv.python, spot=fv.spot)
  vertex_lib.check(spec)
  return spec


def manifest(fv: flags.FlagValues, trainer_args) -> str:
  spec = spec_from_flags(fv)
  args = trainer_flags(trainer_args, spec)
  if fv.hptune:
    return hptune_text(fv, spec, args)
  return vertex_lib.yaml_text(spec, args)


def main(argv):
  fv = flags.FLAGS
  return harness_cli.print_generated(lambda: manifest(fv, argv[1:]), fv,
                                     trainer_cli.FLAG_NAMES)


def console_main():
  harness_cli.console_main(define_flags, main)


if __name__ == "__main__":
  console_main()
