r"""hub-migrate PATH... [--write] [--target_tf=VERSION]

Rewrites TF1 `hub.Module` code for hub.KerasLayer / hub.load and sets
`share_cluster_devices_in_session` on Estimator session configs. By default
prints a unified diff and the findings; --write changes the files in place.

Exit status: 0 when nothing needs the user's hand (the diff may be
non-empty); 1 when any finding is an error (a construct not rewritten, an
API that is gone, a file that does not parse): it can gate a CI; 2 for bad
flags or paths.
"""

import importlib.metadata
import sys

from absl import app
from absl import flags

from harness import cli as harness_cli
from harness import errors
from harness import exit_codes
from hub_migrate import findings as findings_lib
from hub_migrate import migrate

# When no TensorFlow is installed beside the tool.
FALLBACK_TARGET_TF = "2.15"


def installed_tf_version() -> str:
  """The installed TensorFlow's version, read without importing it."""
  for package in ("tensorflow", "tensorflow-cpu"):
    try:
      return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      continue
  return FALLBACK_TARGET_TF


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  flags.DEFINE_bool("write", False, "Change the files in place (atomically); "
                    "without it, print the diff only.", flag_values=fv)
  flags.DEFINE_string("target_tf", None, "The TensorFlow version the code "
                      "will run on: from 2.2 on, share_cluster_devices_in_"
                      "session is a top-level ConfigProto field, before it "
                      "is under `experimental`. Default: the installed TF "
                      "(%s)." % installed_tf_version(), flag_values=fv)
  flags.DEFINE_bool("diff", True, "Print the unified diff of the changes.",
                    flag_values=fv)


def run(paths, *, write: bool, target_tf: str, show_diff: bool,
        out=sys.stdout) -> int:
  """Migrates `paths`; prints diffs, findings and a summary; the exit code."""
  results = migrate.migrate_paths(paths, target_tf=target_tf)
  changed = [r for r in results if r.changed]
  for result in changed:
    if show_diff:
      out.write(result.diff())
    if write:
      migrate.write(result)
  found = [f for r in results for f in r.findings]
  for finding in found:
    print(finding, file=out)
  errors_found = [f for f in found if f.severity == findings_lib.ERROR]
  print("hub-migrate: %d Python file%s, %d %s (target TF %s), %d error%s, "
        "%d note%s." % (
            len(results), "" if len(results) == 1 else "s", len(changed),
            "rewritten" if write else "to rewrite (--write applies)",
            target_tf, len(errors_found), "" if len(errors_found) == 1 else
            "s", len(found) - len(errors_found),
            "" if len(found) - len(errors_found) == 1 else "s"), file=out)
  return 1 if errors_found else 0


def main(argv):
  fv = flags.FLAGS
  paths = argv[1:]
  if not paths:
    print("error: give the Python files or folders to migrate: hub-migrate "
          "PATH... [--write] [--target_tf=VERSION]", file=sys.stderr)
    return exit_codes.BAD_FLAGS
  try:
    return run(paths, write=fv.write,
               target_tf=fv.target_tf or installed_tf_version(),
               show_diff=fv.diff)
  except errors.HarnessError as error:
    harness_cli.report(error, fv)
    return exit_codes.BAD_FLAGS  # Bad paths (the docstring's status 2).


def console_main():
  """Entry point of `python -m hub_migrate` and the hub-migrate script."""
  define_flags()
  app.run(main, flags_parser=harness_cli.parse_flags_or_exit)
