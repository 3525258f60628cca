"""Shorter "model ready" polls for tasks that wait on the chief.

A non-chief worker cannot train until the chief has initialized (or
restored) the variables on the ps tasks; TF's SessionManager checks every
`recovery_wait_secs`, fixed at 30 s for the sessions Estimator creates
(MonitoredTrainingSession gives no way to set it). On a small cluster that
is up to 30 s of idle worker per start and per recovery, e.g. after a ps
restart. `set_readiness_poll` makes SessionManager poll every few seconds
instead, in this process.
"""

from tensorflow.python.training import session_manager  # pylint: disable=g-direct-tensorflow-import

DEFAULT_POLL_SECS = 1.0
_ORIGINAL = session_manager.SessionManager


def set_readiness_poll(seconds: float) -> None:
  """Makes every SessionManager created from now on poll every `seconds`."""
  if seconds <= 0:
    raise ValueError("readiness poll (%g s) must be positive." % seconds)

  class QuickPollSessionManager(_ORIGINAL):

    def __init__(self, *args, **kwargs):
      kwargs.setdefault("recovery_wait_secs", seconds)
      super().__init__(*args, **kwargs)

  session_manager.SessionManager = QuickPollSessionManager

