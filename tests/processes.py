"""Helpers for tests that start processes: wait for something, read the
pid files of fake tasks, a process's own lines. Whether a process is alive
and what a cluster left behind: cluster.launcher.leftovers."""

import os
import re
import time


def wait_until(predicate, timeout_secs: float, poll_secs: float = 0.05):
  """Polls `predicate` until it is true or the deadline passes."""
  deadline = time.monotonic() + timeout_secs
  while time.monotonic() < deadline:
    if predicate():
      return True
    time.sleep(poll_secs)
  return predicate()


def read_pids(directory) -> dict:
  """name -> pid from the NAME.pid files the fake tasks write."""
  pids = {}
  for name in os.listdir(directory):
    if name.endswith(".pid"):
      with open(os.path.join(directory, name)) as f:
        pids[name[:-4]] = int(f.read())
  return pids


# TF's own C++ notices (TF 2.21 writes some at import whatever
# TF_CPP_MIN_LOG_LEVEL says: oneDNN, the CUDA stub, cuInit): "I0000 00:00:...
# file.cc:N] ..." and absl's line before its logging is initialized.
_TF_NOTICE = re.compile(r"^([IWEF]\d{4} \d\d:\d\d:[\d.]+ +\d+ [\w.]+:\d+\] |"
                        r"WARNING: All log messages before absl::"
                        r"InitializeLog\(\) is called)")


def our_lines(stderr: str) -> list:
  """A process's stderr without TF's own C++ notices."""
  return [line for line in stderr.strip().splitlines()
          if not _TF_NOTICE.match(line)]
