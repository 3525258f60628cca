"""What each role of a job needs, in one spelling for every engine.

  --worker_resources=cpu=8,memory=32Gi,gpu=1
  --ps_resources=cpu=4,memory=16Gi
  --worker_resources=machine_type=n1-standard-8,gpu=1,gpu_type=NVIDIA_TESLA_T4

Pure: parsing and checking only. Each engine maps the keys it has terms for
and refuses the others in one line (`for_engine`):

| key | Kubernetes (TFJob) | Vertex AI (CustomJob) |
|---|---|---|
| cpu | requests = limits `cpu` | (the machine type's) |
| memory | requests = limits `memory` | (the machine type's) |
| gpu | limits `nvidia.com/gpu` | `acceleratorCount` |
| gpu_type | - | `acceleratorType` |
| machine_type | - | `machineType` |

Requests equal to limits give the pods Kubernetes' "Guaranteed" class, the
last to be evicted when a node runs short.
"""

import dataclasses
import re
from typing import Dict, Iterable, Mapping, Optional

from harness import errors
from harness import tf_config

KEYS = ("cpu", "memory", "gpu", "gpu_type", "machine_type")
ROLES = (tf_config.CHIEF, tf_config.WORKER, tf_config.PS,
         tf_config.EVALUATOR)
# Kubernetes quantities: 500m, 2, 0.5 CPUs; 512Mi, 4Gi, 1G of memory.
_CPU = re.compile(r"^(\d+(\.\d+)?|\d+m)$")
_MEMORY = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclasses.dataclass(frozen=True)
class Resources:
  """One role's needs; None or 0 where not asked for."""
  cpu: Optional[str] = None
  memory: Optional[str] = None
  gpu: int = 0
  gpu_type: Optional[str] = None
  machine_type: Optional[str] = None

  def given(self) -> Dict[str, object]:
    return {key: value for key, value in dataclasses.asdict(self).items()
            if value}


def flag_name(role: str) -> str:
  return "%s_resources" % role


def parse(text: str, setting: str) -> Resources:
  """'cpu=8,memory=32Gi,gpu=1' -> Resources; errors name `setting`."""
  values = {}
  for item in filter(None, (part.strip() for part in text.split(","))):
    key, sep, value = item.partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not value:
      raise errors.FlagError(
          "`%s`=%s: %r is not KEY=VALUE; keys are %s, e.g. "
          "cpu=8,memory=32Gi,gpu=1." % (setting, text, item, ", ".join(KEYS)))
    if key not in KEYS:
      raise errors.FlagError("`%s`=%s: unknown key %r; keys are %s." %
                             (setting, text, key, ", ".join(KEYS)))
    if key in values:
      raise errors.FlagError("`%s`=%s gives %s twice." % (setting, text, key))
    values[key] = value
  if "cpu" in values and not _CPU.match(values["cpu"]):
    raise errors.FlagError(
        "`%s`: cpu=%s is not a CPU count (e.g. 4, 0.5 or 500m)." %
        (setting, values["cpu"]))
  if "memory" in values and not _MEMORY.match(values["memory"]):
    raise errors.FlagError(
        "`%s`: memory=%s is not an amount of memory (e.g. 16Gi, 512Mi or "
        "4G)." % (setting, values["memory"]))
  if "gpu" in values:
    if not values["gpu"].isdigit():
      raise errors.FlagError("`%s`: gpu=%s is not a whole number of GPUs." %
                             (setting, values["gpu"]))
    values["gpu"] = int(values["gpu"])
  for key in ("gpu_type", "machine_type"):
    if key in values and not _NAME.match(values[key]):
      raise errors.FlagError("`%s`: %s=%s is not a name." %
                             (setting, key, values[key]))
  if values.get("gpu_type") and not values.get("gpu"):
    raise errors.FlagError("`%s`: gpu_type=%s without gpu=N (how many)." %
                           (setting, values["gpu_type"]))
  return Resources(**values)


def per_role(texts: Mapping[str, str]) -> Dict[str, Resources]:
  """{role: Resources} from {role: flag text} (every role present)."""
  return {role: parse(texts.get(role, "") or "", flag_name(role))
          for role in ROLES}


def for_engine(resources: Mapping[str, Resources], engine: str,
               supported: Iterable[str], roles: Iterable[str]) -> None:
  """Refuses keys `engine` has no term for, for the roles the job has."""
  supported = set(supported)
  for role in roles:
    for key in resources[role].given():
      if key not in supported:
        raise errors.FlagError(
            "`%s`: %s has no term for %s; on %s give %s." % (
                flag_name(role), engine, key, engine,
                ", ".join(k for k in KEYS if k in supported)))


_BINARY = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40,
           "K": 10 ** 3, "M": 10 ** 6, "G": 10 ** 9, "T": 10 ** 12, "": 1}


def memory_bytes(text: str) -> int:
  number, unit = re.match(r"^(\d+(?:\.\d+)?)([A-Za-z]*)$", text).groups()
  return int(float(number) * _BINARY[unit])


def slurm_options(resources: Mapping[str, Resources],
                  roles: Iterable[str]) -> list:
  """The #SBATCH options of a job whose tasks all run in one srun step:
  every role gets the same, so the roles must ask for the same (Slurm
  gives a heterogeneous job's components different resources; the harness
  runs one homogeneous step). cpu -> --cpus-per-task, memory ->
  --mem-per-cpu (the task's memory over its CPUs), gpu[/gpu_type] ->
  --gpus-per-task."""
  roles = list(roles)
  wanted = {role: resources[role] for role in roles}
  if len(set(wanted.values())) > 1:
    shown = "; ".join("%s %s" % (role, ",".join(
        "%s=%s" % item for item in r.given().items()) or "nothing")
                      for role, r in wanted.items())
    raise errors.FlagError(
        "Slurm runs every task of the job in one srun step, so every role "
        "gets the same resources; give %s the same (asked: %s)." % (
            ", ".join("`%s`" % flag_name(role) for role in roles), shown))
  for_engine(resources, "Slurm", ("cpu", "memory", "gpu", "gpu_type"),
             roles)
  same = wanted[roles[0]]
  options = []
  cpus = 1
  if same.cpu:
    if not same.cpu.isdigit() or int(same.cpu) < 1:
      raise errors.FlagError(
          "`%s`: cpu=%s: Slurm gives whole CPUs (e.g. cpu=4)." %
          (flag_name(roles[0]), same.cpu))
    cpus = int(same.cpu)
    options.append("--cpus-per-task=%d" % cpus)
  if same.memory:
    per_cpu = -(-memory_bytes(same.memory) // cpus // (1 << 20))
    options.append("--mem-per-cpu=%dM" % per_cpu)
  if same.gpu:
    options.append("--gpus-per-task=%s%d" % (
        same.gpu_type + ":" if same.gpu_type else "", same.gpu))
  return options
