"""What the hub-migrate tests share: a case's source header, migrating a
case, and the codes of what it found."""

import textwrap

from hub_migrate import findings
from hub_migrate import migrate as migrate_lib

HEADER = "import tensorflow as tf\nimport tensorflow_hub as hub\n"


def migrate(source, target_tf="2.15", header=HEADER):
  """(the source as migrated, the result's text, its findings)."""
  source = header + textwrap.dedent(source)
  result = migrate_lib.migrate_source(source.encode(), "case.py",
                                      target_tf=target_tf)
  return source, result.after.decode(), result.findings


def codes(found, severity=findings.ERROR):
  return sorted(f.code for f in found if f.severity == severity)
