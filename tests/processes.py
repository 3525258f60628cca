"""Helpers for tests that start processes: is a pid alive, wait for it."""

import os
import re
import time


def alive(pid: int) -> bool:
  """True while the process runs (a zombie counts as dead)."""
  try:
    with open("/proc/%d/stat" % pid) as f:
      state = f.read().rsplit(")", 1)[1].split()[0]
  except (FileNotFoundError, ProcessLookupError):
    return False
  return state not in ("Z", "X")


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


def pids_mentioning(text: str) -> list:
  """Live processes whose command line contains `text`."""
  found = []
  for entry in os.listdir("/proc"):
    if not entry.isdigit() or int(entry) == os.getpid():
      continue
    try:
      with open("/proc/%s/cmdline" % entry, "rb") as f:
        cmdline = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
      continue
    if text in cmdline and alive(int(entry)):
      found.append(int(entry))
  return found


def _listening_inodes(ports):
  """Socket inodes listening on any of `ports` (TCP, IPv4 and IPv6)."""
  inodes = set()
  for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    with open(table) as f:
      for line in f.readlines()[1:]:
        fields = line.split()
        port = int(fields[1].rsplit(":", 1)[1], 16)
        if fields[3] == "0A" and port in ports:  # LISTEN
          inodes.add(fields[9])
  return inodes


def socket_holders(ports) -> dict:
  """pid -> command line of the processes listening on any of `ports`."""
  wanted = {"socket:[%s]" % inode for inode in _listening_inodes(ports)}
  found = {}
  for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
      fds = os.listdir("/proc/%s/fd" % pid)
      if any(os.readlink("/proc/%s/fd/%s" % (pid, fd)) in wanted
             for fd in fds):
        with open("/proc/%s/cmdline" % pid, "rb") as f:
          found[int(pid)] = f.read().replace(b"\0", b" ").decode()
    except OSError:
      continue  # Gone meanwhile, or not ours to read.
  return found


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
