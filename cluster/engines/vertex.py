"""The job as a Vertex AI CustomJobSpec (pure).

Built from a JobSpec and the trainer's flags, as data, written with
PyYAML; `python -m cluster.vertex` (cluster/vertex.py) is the command.

What maps where (facts: docs/engines.md, "Vertex AI custom training"):
* worker pools by position: 0 the chief (1 replica), 1 the workers, 2 the
  ps, 3 the evaluator; each a container running `python -m trainer.task`
  with the trainer flags, on the pool's machine type (--machine_type, or
  machine_type= in the role's --ROLE_resources) with its accelerators
  (gpu=N,gpu_type=T there, or --accelerator=TYPE:COUNT for the chief and
  workers). gcloud refuses an empty pool before a filled one, so a job
  with an evaluator or ps needs the pools before it;
* each replica's environment is Vertex's: TF_CONFIG (the chief may be
  called "master", the evaluator is left out; CLUSTER_SPEC says where it
  is), which the trainer reads as it is (harness/tf_config.py);
* outputs: --base_output_dir sets `baseOutputDirectory`; each replica then
  gets AIP_CHECKPOINT_DIR and AIP_MODEL_DIR, which the trainer uses as
  --model_dir and --export_dir where those are unset
  (trainer/config/aip_dirs.py). Every replica writes the model directory (the ps
  run the save ops): it must be gs:// (or /gcs/, Cloud Storage FUSE), never a
  replica's disk;
* the end: the job succeeds when the chief exits 0, and Vertex then stops
  the other replicas; the ps and workers end by themselves once the export
  exists, and the chief waits for the evaluator's final evaluation first
  (trainer/training/job_end.py). `scheduling.timeout` is --deadline_secs;
* --spot: `scheduling.strategy: SPOT` (Spot VMs, preemptible at any time).
  A preempted replica is restarted as after any death, and resumes from
  the latest checkpoint (docs/faults.md).
"""

import dataclasses
import re
from typing import Dict, Optional, Sequence, Tuple

import yaml

from cluster.engines import resources as resources_lib
from cluster.engines import search_space
from cluster.engines import spec as spec_lib
from harness import errors
from harness import tf_config

PORT = 2222  # Vertex AI's, on every replica.
# What a Vertex pool can be given (cluster/engines/resources.py).
SUPPORTED = ("gpu", "gpu_type", "machine_type")
_REMOTE = re.compile(r"^gs://[^/]+/")
_FUSE = "/gcs/"  # Cloud Storage FUSE, mounted in every Vertex replica.
_ACCELERATOR = re.compile(r"^([A-Z][A-Z0-9_]*):(\d+)$")


@dataclasses.dataclass(frozen=True)
class JobSpec:
  """What the CustomJobSpec is made of, besides the trainer's flags."""
  image: str
  machine_type: str
  shape: spec_lib.Shape = spec_lib.Shape()
  accelerator: Optional[Tuple[str, int]] = None
  resources: Dict[str, resources_lib.Resources] = dataclasses.field(
      default_factory=dict)
  base_output_dir: str = ""
  deadline_secs: Optional[int] = None
  python: str = "python"
  spot: bool = False  # Spot VMs: scheduling.strategy SPOT.


def parse_accelerator(text: str) -> Optional[Tuple[str, int]]:
  if not text:
    return None
  match = _ACCELERATOR.match(text)
  if not match or int(match.group(2)) < 1:
    raise errors.FlagError(
        "`accelerator`=%s is not TYPE:COUNT with Vertex AI's type name, "
        "e.g. NVIDIA_TESLA_T4:1 or NVIDIA_L4:2." % text)
  return match.group(1), int(match.group(2))


def check(spec: JobSpec) -> None:
  """What gcloud or Vertex would refuse, refused first, in one line."""
  if not spec.image:
    raise errors.FlagError("`image` is required: the container image with "
                           "this project and its Python environment.")
  if not spec.machine_type:
    raise errors.FlagError("`machine_type` is required: the replicas' "
                           "machine type, e.g. n1-standard-8.")
  pools = spec.shape.roles()  # By position, empty ones too.
  last = max(i for i, (_, count) in enumerate(pools) if count)
  for position, (role, count) in enumerate(pools[:last]):
    if not count:
      later = pools[last][0]
      raise errors.FlagError(
          "Worker pool %d (%s) would be empty before pool %d (%s): gcloud "
          "refuses an empty pool in the middle. Give `num_%s` >= 1, or drop "
          "the %s." % (position, role, last, later,
                       "workers" if role == tf_config.WORKER else role,
                       "evaluator (--noevaluator)"
                       if later == tf_config.EVALUATOR else later))
  if spec.base_output_dir and not (
      _REMOTE.match(spec.base_output_dir)):
    raise errors.FlagError(
        "`base_output_dir`=%s must be a gs://BUCKET/PATH: Vertex AI writes "
        "the replicas' output directories under it." % spec.base_output_dir)
  resources_lib.for_engine(spec.resources, "Vertex AI", SUPPORTED,
                           [role for role, _ in spec.shape.present()])


def check_shared(path: str, setting: str) -> None:
  """Refuses a directory that not every replica sees."""
  if _REMOTE.match(path) or path.startswith(_FUSE):
    return
  raise errors.FlagError(
      "`%s`=%s is %s: every replica writes there (the ps run the save "
      "ops), so it must be on Cloud Storage: gs://BUCKET/PATH (or "
      "/gcs/BUCKET/PATH), or left unset with `base_output_dir`, whose "
      "AIP_CHECKPOINT_DIR and AIP_MODEL_DIR the trainer uses." % (
          setting, path, "relative" if not path.startswith("/") else
          "on one replica's disk"))


def _machine(spec: JobSpec, role: str) -> dict:
  wanted = spec.resources.get(role, resources_lib.Resources())
  machine = {"machineType": wanted.machine_type or spec.machine_type}
  accelerator = ((wanted.gpu_type, wanted.gpu) if wanted.gpu else
                 spec.accelerator if role in (tf_config.CHIEF,
                                              tf_config.WORKER) else None)
  if accelerator:
    if not accelerator[0]:
      raise errors.FlagError(
          "`%s`: gpu=%d needs gpu_type= on Vertex AI (e.g. "
          "gpu_type=NVIDIA_TESLA_T4)." % (resources_lib.flag_name(role),
                                           accelerator[1]))
    machine["acceleratorType"], machine["acceleratorCount"] = accelerator
  return machine


def custom_job_spec(spec: JobSpec, trainer_args: Sequence[str]) -> dict:
  """The CustomJobSpec, as data (the JSON/YAML names of its proto)."""
  pools = []
  for role, count in spec.shape.present():
    pools.append({
        "machineSpec": _machine(spec, role),
        "replicaCount": count,
        "containerSpec": {
            "imageUri": spec.image,
            "command": [spec.python, "-m", "trainer.task"],
            "args": list(trainer_args),
            "env": [{"name": "PYTHONUNBUFFERED", "value": "1"}],
        },
    })
  job = {"workerPoolSpecs": pools}
  if spec.base_output_dir:
    job["baseOutputDirectory"] = {"outputUriPrefix": spec.base_output_dir}
  scheduling = {}
  if spec.deadline_secs:
    scheduling["timeout"] = "%ds" % spec.deadline_secs
  if spec.spot:
    scheduling["strategy"] = "SPOT"
  if scheduling:
    job["scheduling"] = scheduling
  return job


def yaml_text(spec: JobSpec, trainer_args: Sequence[str]) -> str:
  return yaml.safe_dump(custom_job_spec(spec, trainer_args), sort_keys=False)


def hyperparameter_tuning_job(spec: JobSpec, trainer_args: Sequence[str],
                              space: Sequence[search_space.Param],
                              study: search_space.Study) -> dict:
  """A HyperparameterTuningJob (JSON names), for `gcloud ai hp-tuning-jobs
  create --config`: the study from the space, each trial the CustomJobSpec
  above. Vertex AI appends each trial's values to the containers' args as
  `--name=value`; the flags the space sets are left out of the fixed ones.
  The trainer reports the metric in cloudml-hypertune's file (the chief's,
  pool 0, is the one read: trainer/training/metric_report.py); each trial's
  AIP_* directories get the trial's id after the base, so trials never
  share a model directory."""
  fixed = search_space.without(trainer_args, [p.name for p in space])
  return {
      "studySpec": {
          "metrics": [{"metricId": study.metric,
                       "goal": study.goal.upper()}],
          "parameters": search_space.vertex_parameters(space),
          "measurementSelectionType": "LAST_MEASUREMENT",
      },
      "maxTrialCount": study.trials,
      "parallelTrialCount": study.parallel,
      "maxFailedTrialCount": study.max_failed_trials,
      "trialJobSpec": custom_job_spec(spec, fixed),
  }


def hptune_yaml_text(spec: JobSpec, trainer_args: Sequence[str],
                     space: Sequence[search_space.Param],
                     study: search_space.Study) -> str:
  return yaml.safe_dump(hyperparameter_tuning_job(spec, trainer_args, space,
                                                  study), sort_keys=False)
