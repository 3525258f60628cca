"""How each task of a Slurm job says it ended: RUN_DIR/logs/TASK.status.

The task runner (cluster/slurm_task.py) writes one when its trainer has
finished or failed for good; the submitter (cluster/slurm.py) reads them to
name the failing task, also after Slurm has forgotten the job.
"""

import json
import os
from typing import List

from harness import files
from harness import tf_config

SUFFIX = ".status"
# The first gRPC port on each node (TF's SlurmClusterResolver's default).
DEFAULT_PORT_BASE = 8888


def write(log_dir: str, task: tf_config.Task, exit_code: int,
          message: str) -> None:
  files.write_text(os.path.join(log_dir, task.name + SUFFIX), json.dumps(
      {"task": task.name, "exit_code": exit_code, "message": message}))


def read_all(log_dir: str) -> List[dict]:
  """Every status in `log_dir`, by task name."""
  if not os.path.isdir(log_dir):
    return []
  found = []
  for name in sorted(os.listdir(log_dir)):
    if name.endswith(SUFFIX):
      with open(os.path.join(log_dir, name)) as f:
        found.append(json.load(f))
  return found
