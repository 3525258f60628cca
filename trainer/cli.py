"""What the entry points share: flag parsing that fails in one line."""

import sys

from absl import flags


def parse_flags_or_exit(argv, fv: flags.FlagValues = flags.FLAGS):
  """absl's flags parser, but a bad flag is one line and exit status 2."""
  try:
    return fv(argv)
  except flags.Error as e:
    print("error: %s (see --helpfull)" % e, file=sys.stderr, flush=True)
    sys.exit(2)
