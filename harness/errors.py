"""The harness's own exceptions.

Every error a user can cause derives from `HarnessError`. Entry points catch
it, print its message as one line and exit non-zero, without a traceback.
Messages say what was wrong and what would be valid.

Library code does not know how a setting is spelled where the user gave it
(a flag, a config field), so it names a setting in backticks, by its plain
name: "`batch_size` (0) must be a positive integer", "`tags`=baz matches no
meta graph". An entry point shows the message with `spelled`, which writes
each marked name as its flag ("--batch_size (0) must be ...").
"""

import re
from typing import Callable, Optional

_SETTING = re.compile(r"`(\w+)`")


class HarnessError(Exception):
  """Base class of every error the harness reports to its user.

  `details`: text the entry point prints before the one line (the traceback
  of an exception raised in the user's own code); empty for the rest.
  """

  def __init__(self, message: str = "", details: str = ""):
    super().__init__(message)
    self.details = details

  def spelled(self, spell: Callable[[str], Optional[str]]) -> str:
    """The message with each `setting` as `spell(setting)` writes it.

    Where `spell` returns None, the name is kept, without the backticks.
    """
    return _SETTING.sub(lambda m: spell(m.group(1)) or m.group(1), str(self))


class FlagError(HarnessError):
  """A setting, or a combination of settings, is invalid."""


class ModelCheckError(HarnessError):
  """The hub model cannot be used as asked (path, format, tags, signature)."""


class DataError(HarnessError):
  """Training or evaluation data is missing or malformed."""


class ClusterError(HarnessError):
  """A cluster description, a TF_CONFIG or a launch of tasks is invalid."""


class CheckpointMismatchError(HarnessError):
  """A checkpoint does not hold exactly the model's variables: restoring it
  would leave some of the model at its initial values."""
