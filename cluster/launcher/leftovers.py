"""What a cluster left behind: live processes and listening sockets.

Read from Linux's /proc, for the chaos runs (cluster.chaos) and the tests
that prove a stopped cluster leaves no process and no port behind. Nothing
here stops anything.
"""

import os


def alive(pid: int) -> bool:
  """True while the process runs (a zombie counts as dead)."""
  try:
    with open("/proc/%d/stat" % pid) as f:
      state = f.read().rsplit(")", 1)[1].split()[0]
  except (FileNotFoundError, ProcessLookupError):
    return False
  return state not in ("Z", "X")


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
