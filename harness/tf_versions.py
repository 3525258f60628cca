"""Where `share_cluster_devices_in_session` lives, by TensorFlow version.

TF 2.2 moved the field from `ConfigProto.experimental` to the top level of
`ConfigProto`. trainer.estimator.config builds session configs by this rule and the
migration assistant (hub_migrate) rewrites users' code by it. TF-free: the
version is a string.
"""

import re
from typing import Tuple

from harness import errors

# The first TF version with the top-level field.
TOP_LEVEL_SINCE = (2, 2)


def parse(version: str) -> Tuple[int, int]:
  """'2.15.1' -> (2, 15); '2.2.0-rc1' -> (2, 2)."""
  match = re.match(r"^(\d+)\.(\d+)", version or "")
  if not match:
    raise errors.FlagError(
        "TensorFlow version %r is not of the form MAJOR.MINOR[.PATCH], "
        "for example '2.15.1'." % (version,))
  return int(match.group(1)), int(match.group(2))


def share_cluster_devices_at_top_level(version: str) -> bool:
  """Whether TF `version` has `ConfigProto.share_cluster_devices_in_session`
  (else only `ConfigProto.experimental.share_cluster_devices_in_session`)."""
  return parse(version) >= TOP_LEVEL_SINCE
