"""Which training files each task of a cluster reads, and its shuffle seed.

Pure: decided from the file list and TF_CONFIG, before any TF is imported.

* Where there are at least as many files as training tasks, task k of n
  reads files k, k+n, k+2n, ... (its index in TF_CONFIG: on the Estimator
  the chief is task 0 and worker i task i+1), so that one pass over the data
  is one epoch across the cluster.
* With fewer files, every task reads every file.
* Either way each task's shuffle differs: with `random_seed` set, task k
  shuffles with seed random_seed + k.

On the Keras backend the chief coordinates and the workers train through
one dataset function that TF's ParameterServerStrategy runs unchanged on
every worker (it gives no worker its index: its `InputContext` is always
pipeline 0 of 1), so there every worker reads every file, each shuffling
with its own random seed (TF's, when the op has none).
"""

import dataclasses
from typing import Optional, Sequence, Tuple

from harness import tf_config

ESTIMATOR_TRAINING_JOBS = (tf_config.CHIEF, tf_config.WORKER)


@dataclasses.dataclass(frozen=True)
class Share:
  """This task's training files (indices into the input's files), the seed
  of its shuffle (None: TF picks one at random), and what was decided."""
  indices: Tuple[int, ...]
  seed: Optional[int]
  note: str

  def of(self, files: Sequence):
    return [files[i] for i in self.indices]


def decide(num_files: int, *, tasks: int, index: int,
           seed: Optional[int], name: str = "this task",
           shard: bool = True) -> Share:
  """The share of training task `index` of `tasks` (0-based); `shard`
  False: every task reads every file."""
  if not 0 <= index < tasks:
    raise ValueError("task index %d is not in [0, %d)" % (index, tasks))
  task_seed = None if seed is None else seed + index
  seeded = ("shuffled with seed %d" % task_seed if task_seed is not None
            else "shuffled at random")
  if tasks == 1:
    return Share(tuple(range(num_files)), task_seed,  # seed + 0.
                 "Data: one training task reads all %d file(s), %s." % (
                     num_files, seeded))
  if shard and num_files >= tasks:
    indices = tuple(range(index, num_files, tasks))
    return Share(indices, task_seed, (
        "Data: %s (training task %d of %d) reads its own %d of the %d "
        "files (%s), %s; one pass over the data is one epoch across the "
        "cluster." % (name, index + 1, tasks, len(indices), num_files,
                      _numbers(indices), seeded)))
  why = ("fewer than one each" if shard else
         "file sharding off (`shard_files`)")
  return Share(tuple(range(num_files)), task_seed, (
      "Data: %d file(s) for %d training tasks, %s: %s (training task %d of "
      "%d) reads every file, %s." % (
          num_files, tasks, why, name, index + 1, tasks, seeded)))


def _numbers(indices: Sequence[int], shown: int = 3) -> str:
  """'file 2', 'files 1, 4, 7 and 19 more' (numbered from 1)."""
  numbers = ", ".join(str(i + 1) for i in indices[:shown])
  more = " and %d more" % (len(indices) - shown) if len(indices) > shown else ""
  return ("file " if len(indices) == 1 else "files ") + numbers + more


def for_estimator(num_files: int, config: Optional[tf_config.TfConfig],
                  seed: Optional[int], shard: bool = True) -> Share:
  """The share of this task on the Estimator backend, whose chief and
  workers all train; a single process reads everything."""
  if config is None or config.task.type not in ESTIMATOR_TRAINING_JOBS:
    return decide(num_files, tasks=1, index=0, seed=seed)
  workers = len(config.cluster.get(tf_config.WORKER, []))
  index = (0 if config.task.type == tf_config.CHIEF
           else 1 + config.task.index)
  return decide(num_files, tasks=1 + workers, index=index, seed=seed,
                name=config.task.name, shard=shard)


def for_keras_workers(num_files: int, num_workers: int) -> Share:
  """The share every worker of a Keras cluster gets (see the module doc)."""
  return Share(tuple(range(num_files)), None, (
      "Data: each of the %d worker(s) reads all %d file(s), shuffled with "
      "its own random seed (TF's ParameterServerStrategy runs one dataset "
      "function on every worker and gives none its index, so it cannot "
      "split the files; --random_seed does not fix the order there). "
      "--nodata_service chose this; by default the tf.data service hands "
      "each file to one worker per epoch." % (
          num_workers, num_files)))
