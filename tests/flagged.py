"""Library errors as the command line shows them.

Library code names settings in backticks (harness.errors); the entry points
spell them as flags. Tests that check a library error directly read it the
way the user will: `as_flags(error)` spells every setting --NAME.
"""

import contextlib
import re

import pytest


def as_flags(error) -> str:
  """The message of a HarnessError with its settings spelled --NAME."""
  return error.spelled(lambda name: "--" + name)


@contextlib.contextmanager
def raises(error_type, match: str):
  """pytest.raises, matching `match` against as_flags(the error)."""
  with pytest.raises(error_type) as raised:
    yield raised
  message = as_flags(raised.value)
  assert re.search(match, message), (match, message)
