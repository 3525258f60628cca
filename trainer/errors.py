"""The harness's own exceptions.

Every error a user can cause derives from `HarnessError`. Entry points catch
it, print its message as one line and exit non-zero, without a traceback.
Messages say what was wrong and what would be valid.
"""


class HarnessError(Exception):
  """Base class of every error the harness reports to its user."""


class FlagError(HarnessError):
  """A flag value, or a combination of flags, is invalid."""


class ModelCheckError(HarnessError):
  """The hub model cannot be used as asked (path, format, tags, signature)."""


class DataError(HarnessError):
  """Training or evaluation data is missing or malformed."""


class ClusterError(HarnessError):
  """A cluster description or TF_CONFIG is invalid."""
