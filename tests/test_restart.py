"""cluster.launcher.restart: which exits are retried (TFJob's conventions)."""

import pytest

from cluster.launcher import restart
from harness import errors
from tests import flagged


@pytest.mark.parametrize("policy,code,retried", [
    ("exit_code", 137, True), ("exit_code", 143, True),
    ("exit_code", -9, True), ("exit_code", 1, False), ("exit_code", 2, False),
    ("exit_code", 127, False), ("exit_code", 128, True),
    ("on_failure", 1, True), ("on_failure", 0, False),
    ("always", 2, True), ("never", 137, False),
])
def test_retryable(policy, code, retried):
  assert restart.RestartPolicy(policy).retryable(code) == retried


def test_budget():
  policy = restart.RestartPolicy("exit_code", max_restarts=2)
  assert policy.why_not(137, 1) == ""
  assert policy.why_not(137, 2) == "restart budget of 2 in 600 s exhausted"
  assert "error in the code or configuration" in policy.why_not(1, 0)


def test_parse_policies_default_and_per_type():
  policies = restart.parse_policies(["on_failure", "evaluator=never"], 5)
  assert policies["worker"] == restart.RestartPolicy("on_failure", 5)
  assert policies["evaluator"] == restart.RestartPolicy("never", 5)
  assert restart.parse_policies([], 3)["ps"].policy == "exit_code"


@pytest.mark.parametrize("entries,max_restarts,message", [
    (["sometimes"], 3, "Restart policy 'sometimes' is not one of: never, "
     "on_failure, exit_code, always"),
    (["boss=never"], 3, "--restart_policy names task type 'boss'"),
    ([], -1, "--max_restarts (-1) must be >= 0"),
])
def test_bad_policies_are_named(entries, max_restarts, message):
  with pytest.raises(errors.FlagError) as raised:
    restart.parse_policies(entries, max_restarts)
  assert message in flagged.as_flags(raised.value)
