"""A small file that is written whole or not at all.

A task can be killed at any moment (a preemption, a SIGKILL, a restart), and
the small files tasks read back after a restart (flags.txt, the early-
stopping marker, best.json, the supervisor's pid files, the workers' end
markers, a fetched hub model's record, the tuners' files) must never be found
half written: a restarted task would misread them ("a different model", a
crash while parsing). `write_text` writes a temporary file beside the target
(named after this process, so two writers never share one) and renames it
into place: a reader sees the old file or the new one.

Without `gfile` the path is local and goes through `os`; the trainer's
files, which may be on gs:// or another of TF's file systems, pass
`tf.io.gfile` (this leaf never loads TF itself), where a Cloud Storage
object appears only once it is whole and the rename is the file system's.
"""

import os


def write_text(path: str, text: str, gfile=None) -> str:
  """Writes `text` to `path` atomically (see the module's docstring), making
  its directory where missing; returns `path`. `gfile`: tf.io.gfile, for a
  path on any of TF's file systems."""
  partial = "%s.tmp-%d" % (path, os.getpid())
  if gfile is not None:
    gfile.makedirs(os.path.dirname(path) or ".")
    with gfile.GFile(partial, "w") as f:
      f.write(text)
    gfile.rename(partial, path, overwrite=True)
    return path
  if "://" in path:
    raise ValueError("%s: a path with a scheme needs gfile=tf.io.gfile" %
                     path)
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  try:
    with open(partial, "w") as f:
      f.write(text)
    os.replace(partial, path)
  finally:
    if os.path.exists(partial):  # Only when the write itself failed.
      os.remove(partial)
  return path
