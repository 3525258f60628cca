"""The chief's checkpoint saver, without a second session run per step.

TF's `CheckpointSaverHook` starts with `steps_per_run` set to 1,000,000 "so
that it never skips checking the actual global step": with a step cadence
(--save_checkpoints_steps, as the demo sets) its timer then fires on every
step, and the hook runs the session a second time, every step, only to read
the global step (measured in docs/performance.md: two TF_SessionRun calls
per training step). Estimator never changes it. With `steps_per_run=1` the
hook decides from the global step it already fetched with the train op;
where other workers move the global step too, a save may come a step late.

The model_fn gives Estimator this hook among its chief hooks; Estimator
then uses it instead of making its own (and hangs its listeners on it).
"""

from typing import List

import tensorflow as tf


def saver_hooks(run_config) -> List[tf.compat.v1.train.CheckpointSaverHook]:
  """The saver hook Estimator would make from `run_config`, minus the extra
  session run; none when the config saves no checkpoints."""
  if not run_config or not (run_config.save_checkpoints_secs or
                            run_config.save_checkpoints_steps):
    return []
  hook = tf.compat.v1.train.CheckpointSaverHook(
      run_config.model_dir,
      save_secs=run_config.save_checkpoints_secs,
      save_steps=run_config.save_checkpoints_steps,
      save_graph_def=run_config.checkpoint_save_graph_def)
  hook._set_steps_per_run(1)  # pylint: disable=protected-access
  return [hook]
