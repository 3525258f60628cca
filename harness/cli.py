"""What the entry points share: flag parsing and errors as one line.

Entry points (python -m trainer.task, python -m cluster.local, ...) parse
their flags with `parse_flags_or_exit` and report a `HarnessError` with
`report`; library code never prints, and never reads flags.
"""

import logging
import os
import sys
import warnings
from typing import Callable, Collection, Optional

from absl import app
from absl import flags
from absl import logging as absl_logging

from harness import errors
from harness import exit_codes


# TF's C++ log level for entry points: INFO and WARNING notices hidden (the
# CPU feature guard, "End of sequence" at every evaluation), errors shown.
# A TF_CPP_MIN_LOG_LEVEL already in the environment wins.
TF_CPP_MIN_LOG_LEVEL = "2"


def use_keras_2(environ=os.environ) -> None:
  """tf.keras is Keras 2, the tf_keras package, in this process and those
  it starts (TF's own switch, TF_USE_LEGACY_KERAS, unless already set).

  hub.KerasLayer subclasses the Layer of tf.keras where that is Keras 2:
  on TF 2.15 that is the `keras` 2.15 package, whose layers cannot take
  tf_keras inputs, so a user's tf_keras model (`model`) could not call the
  hub layer; with the switch it is a tf_keras layer on TF 2.15 as on TF
  2.21. TF reads it when tf.keras is first used: call this before
  TensorFlow (or tensorflow_hub) loads.
  """
  environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def prepare_tensorflow() -> None:
  """For entry points, before TensorFlow loads: TF's C++ notices hidden (its
  errors shown), TF's Python logger at ERROR (no deprecation notices), and
  tf.keras as tf_keras (`use_keras_2`).

  It sets TF_CPP_MIN_LOG_LEVEL in the environment (unless set), so the
  processes an entry point starts inherit it.
  """
  use_keras_2()
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", TF_CPP_MIN_LOG_LEVEL)
  logging.getLogger("tensorflow").setLevel(logging.ERROR)
  # Newer TF modules log through absl's logger directly (TF 2.21: every
  # checkpoint's "Sharding callback duration", the session config): their
  # INFO lines are dropped there, not ours.
  # tensorflow_hub 0.16 imports pkg_resources, which warns on every import
  # (setuptools < 81 still has it; setup.py pins that).
  warnings.filterwarnings("ignore", message="pkg_resources is deprecated",
                          category=UserWarning)
  if not any(isinstance(f, TensorFlowInfo) for f in
             absl_logging.get_absl_handler().filters):
    absl_logging.get_absl_handler().addFilter(TensorFlowInfo())


class TensorFlowInfo(logging.Filter):
  """Drops INFO (and lower) records logged from TensorFlow's own code."""

  def filter(self, record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or (
        "%stensorflow%s" % (os.sep, os.sep) not in record.pathname)


def console_main(define_flags: Callable[[], None],
                 main: Callable[[list], int]) -> None:
  """An entry point: its flags defined, parsed (a bad one is one line,
  exit status 2), then `main`."""
  define_flags()
  app.run(main, flags_parser=parse_flags_or_exit)


def parse_flags_or_exit(argv, fv: flags.FlagValues = flags.FLAGS):
  """absl's flags parser, but a bad flag is one line and exit status 2."""
  try:
    return fv(argv)
  except flags.Error as e:
    print("error: %s (see --helpfull)" % e, file=sys.stderr, flush=True)
    sys.exit(exit_codes.BAD_FLAGS)


def refuse_arguments(argv) -> Optional[int]:
  """For an entry point that takes flags only: stray arguments (argv[1:])
  are one line and exit_codes.BAD_FLAGS; None where there are none."""
  if len(argv) <= 1:
    return None
  print("error: unexpected arguments %s; flags start with --." %
        " ".join(argv[1:]), file=sys.stderr, flush=True)
  return exit_codes.BAD_FLAGS


def flag_spelling(*flag_names: Collection[str]
                  ) -> Callable[[str], Optional[str]]:
  """A `HarnessError.spelled` speller: a setting named like one of the
  flags (a FlagValues, or names) is shown as that flag, --NAME."""
  def spell(name: str) -> Optional[str]:
    return "--" + name if any(name in names for names in flag_names) else None
  return spell


def print_generated(build: Callable[[], str],
                    *flag_names: Collection[str]) -> int:
  """A generator command's end (cluster.tfjob, .jobset, .trainjob,
  .vertex): stdout gets what `build()` returns and nothing else, or stderr
  one line of its HarnessError (exit status 1)."""
  try:
    text = build()
  except errors.HarnessError as e:
    return report(e, *flag_names)
  sys.stdout.write(text)
  return 0


def report(error: errors.HarnessError, *flag_names: Collection[str]) -> int:
  """Prints `error` as one line on stderr, its settings spelled as the
  flags named (see flag_spelling), below its `details` where it has any;
  returns exit_codes.ERROR."""
  message = error.spelled(flag_spelling(*flag_names))
  if error.details:
    print(error.details, file=sys.stderr)
  print("error: %s" % message, file=sys.stderr, flush=True)
  return exit_codes.ERROR
