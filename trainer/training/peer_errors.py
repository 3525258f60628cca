"""Errors that only mean "a peer went away, or came back": retry, not fail.

On a cluster, when a ps (or the chief) dies and is restarted, the other
tasks see TF errors. Where they come from (the messages are in the installed
TF runtime, libtensorflow_cc.so.2 and libtensorflow_framework.so.2):

| error class | message | where it comes from |
|---|---|---|
| UnavailableError | "Socket closed", "failed to connect to all addresses", "Connection reset by peer" | gRPC: the peer's process is gone, or not listening yet |
| AbortedError | "Session handle is not found", "Graph handle is not found" | the restarted peer's worker service has no state of the session, or of its registered graph partitions |
| AbortedError | "RecvTensor expects a different device incarnation", "RecvBuf ..." | a tensor is asked of a peer that restarted (its devices' incarnations changed) |
| FailedPreconditionError | "Attempting to use uninitialized variables", "Attempting to use uninitialized parameters", "... uninitialized value", "... found uninitialized", "... could mean that the variable was uninitialized" | a step reached a restarted ps before the chief restored its variables from the checkpoint |
| NotFoundError | "Resource ... does not exist", "Container ... does not exist" | the same, for resource variables never created on the new ps |
| CancelledError | "... was cancelled" | a step's RPCs cancelled when a peer dropped |
| DeadlineExceededError | any | an RPC to a peer that does not answer |

Estimator's own session recovers in place from the first two
(`monitored_session._PREEMPTION_ERRORS = (AbortedError,
UnavailableError)`); the others escape and end the task with an exception,
exit status 1, which the default restart policy treats as a bug and which
therefore used to stop the whole cluster. `restarted_peer` recognizes them
all, but only on a cluster: in a single process an uninitialized variable
is a real bug. The task then exits with `EXIT_PEER_RESTARTED` (200), which
every retrying policy restarts (exit codes 128-255): the task resumes from
the cluster's state as after a kill. Errors of the user's code or data
(InvalidArgument, a bad shape, a bad file) still exit 1 and stop the
cluster at once.
"""

import re
from typing import Optional

import tensorflow as tf

from harness import exit_codes

EXIT_PEER_RESTARTED = exit_codes.PEER_RESTARTED

_ALWAYS = (tf.errors.UnavailableError, tf.errors.AbortedError,
           tf.errors.CancelledError, tf.errors.DeadlineExceededError)
_BY_MESSAGE = {
    tf.errors.FailedPreconditionError: re.compile(
        r"uninitialized (variables|parameters|value)|found uninitialized|"
        r"could mean that the variable was uninitialized"),
    tf.errors.NotFoundError: re.compile(
        r"(Resource|Container) \S+ does not exist"),
}


def restarted_peer(error: BaseException, on_cluster: bool) -> Optional[str]:
  """Why `error` means only that a peer task restarted; None otherwise."""
  if not on_cluster or not isinstance(error, tf.errors.OpError):
    return None
  first_line = (error.message or "").splitlines()[0] if error.message else ""
  if isinstance(error, _ALWAYS):
    return "%s: %s" % (type(error).__name__, first_line[:200])
  for kind, pattern in _BY_MESSAGE.items():
    if isinstance(error, kind) and pattern.search(error.message or ""):
      return "%s: %s" % (type(error).__name__, first_line[:200])
  return None
