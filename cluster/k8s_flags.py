"""The flags of a job on Kubernetes, the same for a TFJob, a JobSet and a
Trainer v2 TrainJob: a name, an image, a namespace, volumes, the Python
command, resources per role, Spot VMs, and the cluster's shape and restarts
(cluster/job_flags.py). `python -m cluster.tfjob`, `python -m
cluster.jobset` and `python -m cluster.trainjob` define them here and read
them into a cluster.engines.tfjob.JobSpec.
"""

import dataclasses
from typing import List, Sequence, Tuple

from absl import flags

from cluster import job_flags
from cluster.engines import tfjob as tfjob_lib
from trainer.config import cli as trainer_cli
from trainer.hub_model import handles
from trainer.plan import launch


def define(fv: flags.FlagValues, kind: str) -> None:
  """The flags; `kind` (TFJob, JobSet, TrainJob) is named in their help."""
  flags.DEFINE_string("name", "", "The %s's name: a DNS-1035 label "
                      "(lower-case letters, digits, '-')." % kind,
                      flag_values=fv)
  flags.DEFINE_string("image", "", "Container image holding this project "
                      "and its Python environment.", flag_values=fv)
  flags.DEFINE_string("namespace", "default", "Kubernetes namespace.",
                      flag_values=fv)
  job_flags.define(fv)
  flags.DEFINE_multi_string(
      "volume", [], "CLAIM:MOUNT_PATH: a persistent volume claim mounted at "
      "MOUNT_PATH in every pod (repeat for several). The model directory "
      "must be under one, or on gs://.", flag_values=fv)
  flags.DEFINE_string("python", "python", "The Python command in the "
                      "image.", flag_values=fv)
  job_flags.define_resources(fv, tfjob_lib.SUPPORTED)
  flags.DEFINE_bool("spot", False, "Schedule every pod on Spot VM nodes "
                    "(GKE's node label cloud.google.com/gke-spot=true, and "
                    "a toleration of its taint): preemptible; a preempted "
                    "pod is restarted (exit code 143) and resumes from the "
                    "latest checkpoint.", flag_values=fv)


def spec_from_flags(fv: flags.FlagValues, kind: str) -> tfjob_lib.JobSpec:
  """The JobSpec the flags describe, checked by the rules of `kind`."""
  job_flags.check(fv)
  spec = tfjob_lib.JobSpec(
      name=fv.name, image=fv.image, namespace=fv.namespace,
      shape=job_flags.shape(fv),
      max_restarts=fv.max_restarts, deadline_secs=fv.deadline_secs,
      volumes=tuple(tfjob_lib.parse_volume(v) for v in fv.volume),
      python=fv.python,
      resources=job_flags.resources(fv), spot=fv.spot)
  tfjob_lib.check(spec, kind=kind)
  return spec


def trainer_flags(
    trainer_args: Sequence[str],
    spec: tfjob_lib.JobSpec) -> Tuple[List[str], tfjob_lib.JobSpec]:
  """The trainer's flags, checked (without model or data, which are where
  the pods run) and resolved; and the spec, with a per-pod hub cache where
  the handle is fetched."""
  fv, job = launch.check_flags_only(trainer_args,
                                    evaluator=spec.shape.evaluator)
  tfjob_lib.check_shared(job.model_dir, "model_dir", spec.volumes)
  if job.export_dir:
    tfjob_lib.check_shared(job.export_dir, "export_dir", spec.volumes)
  spec = dataclasses.replace(spec, fetches_handle=handles.needs_fetching(
      job.model.module_handle))
  return trainer_cli.flag_lines(fv, only_set=True), spec
