"""`--profile_steps=A,B`: a TF profile of global steps A to B.

`ProfileHook` starts TF's profiler before the first step at or after A and
stops it after the first at or after B; the profile is written under
MODEL_DIR/plugins/profile/, where TensorBoard's profile plugin lists it.
"""

from typing import Callable

import tensorflow as tf


class ProfileHook(tf.estimator.SessionRunHook):
  """Profiles the steps from `first` to `last` (global steps)."""

  def __init__(self, first: int, last: int, logdir: str,
               log: Callable[[str], None] = print):
    self._first, self._last, self._logdir = first, last, logdir
    self._log = log
    self._step = None  # The global step the next run will take.
    self._running = False
    self._done = False

  def begin(self):
    self._global_step = tf.compat.v1.train.get_global_step()

  def after_create_session(self, session, coord):
    self._step = int(session.run(self._global_step))

  def before_run(self, run_context):
    if not self._running and not self._done and self._step >= self._first:
      tf.profiler.experimental.start(self._logdir)
      self._running = True
    return tf.estimator.SessionRunArgs(self._global_step)

  def after_run(self, run_context, run_values):
    self._step = int(run_values.results) + 1
    if self._running and self._step > self._last:
      self._stop()

  def end(self, session):
    if self._running:
      self._stop()

  def _stop(self):
    tf.profiler.experimental.stop()
    self._running, self._done = False, True
    self._log("Profile of steps %d-%d written under %s/plugins/profile." %
              (self._first, self._last, self._logdir))
