"""What the migration tells its user: one finding per place in a file."""

import dataclasses

# A finding that needs the user's hand: the command exits non-zero.
ERROR = "error"
# Worth knowing, nothing to do for the migration to be right.
NOTE = "note"


@dataclasses.dataclass(frozen=True, order=True)
class Finding:
  """`path`:`line`: `severity`: [`code`] `message`."""
  path: str
  line: int
  column: int
  severity: str
  code: str
  message: str

  def __str__(self):
    return "%s:%d:%d: %s: [%s] %s" % (self.path, self.line, self.column + 1,
                                      self.severity, self.code, self.message)


class Collector:
  """Gathers the findings of one file."""

  def __init__(self, path: str):
    self.path = path
    self.found = []

  def add(self, position, severity: str, code: str, message: str) -> None:
    """`position`: a libcst CodeRange (or anything with .start.line and
    .start.column)."""
    self.found.append(Finding(self.path, position.start.line,
                              position.start.column, severity, code, message))

  def error(self, position, code: str, message: str) -> None:
    self.add(position, ERROR, code, message)

  def note(self, position, code: str, message: str) -> None:
    self.add(position, NOTE, code, message)
