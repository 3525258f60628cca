r"""Fetches a hub handle into a cache, once, and prints its directory.

  python -m trainer.fetch --module_handle=https://host/models/digits/1 \
      [--cache_dir=/shared/hub_cache]

What the trainer does before it loads a URL or archive handle
(trainer/hub_model/handles.py), as a command of its own: for a job's init step
(the Slurm batch script runs it once before its tasks), to fill a cache for
machines without network, or to check a handle. Stdout is the directory;
progress goes to stderr; a problem is one line and exit status 1.
"""

import sys

from absl import app
from absl import flags

from harness import cli
from harness import errors
from trainer.hub_model import handles

_HANDLE = flags.DEFINE_string("module_handle", "", "The handle: a URL, an "
                              "archive or a directory (any tf.io.gfile "
                              "path).")
_CACHE_DIR = flags.DEFINE_string("cache_dir", "", "Where to fetch it to; "
                                 "empty: TFHUB_CACHE_DIR, else hub's "
                                 "default (TEMP/tfhub_modules).")


def main(argv):
  refused = cli.refuse_arguments(argv)
  if refused is not None:
    return refused
  cli.prepare_tensorflow()
  try:
    if not _HANDLE.value:
      raise errors.FlagError("`module_handle` is required.")
    resolution = handles.resolve(
        _HANDLE.value, _CACHE_DIR.value or handles.default_cache_dir(),
        log=lambda line: print(line, file=sys.stderr, flush=True))
  except errors.HarnessError as e:
    return cli.report(e, flags.FLAGS)
  print(resolution.path, flush=True)
  return 0


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags_or_exit)
