"""Restart policies: which task exits are retried, and how often.

The policies follow Kubeflow TFJob's:

* `never`: no exit is retried.
* `on_failure`: every non-zero exit is retried.
* `exit_code` (the default): exit codes 128-255 and deaths by a signal mean
  the task was killed or preempted (137 = SIGKILL, 143 = SIGTERM) and are
  retried; 1-127 mean an error in the code or configuration (1 for an
  exception, 2 for bad flags) and are not.
* `always`: like `on_failure`; TFJob also restarts a task that exits 0, but
  here a finished task stays finished.

Each task may be restarted at most `max_restarts` times within any
`window_secs` (a sliding window, per task): a task that keeps dying (a
restart storm) stops the cluster within seconds, while deaths far apart in
a long run (preemptions over hours) never add up to an old budget. A
restarted task resumes from the latest checkpoint (Estimator restores it);
a restarted ps has lost its variables, and the chief restores them from the
latest checkpoint.
"""

import dataclasses
from typing import Dict, Mapping, Sequence

from harness import errors
from harness import tf_config

NEVER, ON_FAILURE, EXIT_CODE, ALWAYS = (
    "never", "on_failure", "exit_code", "always")
POLICIES = (NEVER, ON_FAILURE, EXIT_CODE, ALWAYS)
DEFAULT_POLICY = EXIT_CODE
DEFAULT_MAX_RESTARTS = 3
DEFAULT_WINDOW_SECS = 600


@dataclasses.dataclass(frozen=True)
class RestartPolicy:
  """Whether to retry a task that exited with a given code."""
  policy: str = DEFAULT_POLICY
  max_restarts: int = DEFAULT_MAX_RESTARTS
  window_secs: float = DEFAULT_WINDOW_SECS

  def __post_init__(self):
    if self.policy not in POLICIES:
      raise errors.FlagError("Restart policy %r is not one of: %s." %
                             (self.policy, ", ".join(POLICIES)))
    if self.max_restarts < 0:
      raise errors.FlagError("`max_restarts` (%d) must be >= 0." %
                             self.max_restarts)
    if self.window_secs <= 0:
      raise errors.FlagError("`restart_window_secs` (%g) must be positive." %
                             self.window_secs)

  def retryable(self, exit_code: int) -> bool:
    """Whether this exit code may be retried under the policy at all."""
    if exit_code == 0 or self.policy == NEVER:
      return False
    if self.policy == EXIT_CODE:
      return exit_code < 0 or exit_code >= 128
    return True

  def why_not(self, exit_code: int, restarts: int) -> str:
    """Why a failed task is not restarted; empty when it is.

    `restarts`: the task's restarts within the last `window_secs`.
    """
    if not self.retryable(exit_code):
      if self.policy == EXIT_CODE:
        return ("exit code %d means an error in the code or configuration, "
                "which a restart would repeat" % exit_code)
      return "restart policy %s" % self.policy
    if restarts >= self.max_restarts:
      return "restart budget of %d in %g s exhausted" % (self.max_restarts,
                                                         self.window_secs)
    return ""


def parse_policies(entries: Sequence[str], max_restarts: int,
                   window_secs: float = DEFAULT_WINDOW_SECS
                   ) -> Dict[str, RestartPolicy]:
  """['exit_code', 'evaluator=never'] -> a policy for every task type.

  A bare policy applies to every type; TYPE=POLICY sets one type.
  """
  default = DEFAULT_POLICY
  by_type = {}
  for entry in entries:
    kind, sep, policy = entry.partition("=")
    if not sep:
      default = kind
      continue
    if kind not in tf_config.TASK_TYPES:
      raise errors.FlagError(
          "`restart_policy` names task type %r; types are: %s." %
          (kind, ", ".join(tf_config.TASK_TYPES)))
    by_type[kind] = policy
  return {kind: RestartPolicy(by_type.get(kind, default), max_restarts,
                             window_secs)
          for kind in tf_config.TASK_TYPES}


def describe(policies: Mapping[str, RestartPolicy]) -> str:
  return ", ".join("%s: %s (at most %d in %g s)" % (
      kind, p.policy, p.max_restarts, p.window_secs)
                   for kind, p in policies.items())
