"""Shorter "model ready" polls for tasks that wait on the chief.

A non-chief worker cannot train until the chief has initialized (or
restored) the variables on the ps tasks; TF's SessionManager checks every
`recovery_wait_secs`, fixed at 30 s for the sessions Estimator creates
(MonitoredTrainingSession gives no way to set it). On a small cluster that
is up to 30 s of idle worker per start and per recovery, e.g. after a ps
restart. Inside `poll_every(seconds)`, SessionManagers created by TF poll
every `seconds` instead; TF's own class is put back on the way out.
"""

import contextlib
from typing import Iterator

from tensorflow.python.training import session_manager  # pylint: disable=g-direct-tensorflow-import


@contextlib.contextmanager
def poll_every(seconds: float) -> Iterator[None]:
  """SessionManagers created inside poll every `seconds` (> 0)."""
  if seconds <= 0:
    raise ValueError("readiness poll (%g s) must be positive." % seconds)
  original = session_manager.SessionManager

  class QuickPollSessionManager(original):

    def __init__(self, *args, **kwargs):
      kwargs.setdefault("recovery_wait_secs", seconds)
      super().__init__(*args, **kwargs)

  session_manager.SessionManager = QuickPollSessionManager
  try:
    yield
  finally:
    session_manager.SessionManager = original
