"""Network isolation for local clusters.

TF's gRPC server listens on all interfaces, without authentication, and runs
any graph sent to it; the host in TF_CONFIG does not restrict that. A local
cluster is therefore run in a private network namespace that holds only a
loopback interface, so nothing outside the machine can reach its ports.

`isolate_command(argv)` returns the command that runs `argv` in a new
network namespace: `unshare -n` as root, `unshare -rn` (a user namespace
too) otherwise. Inside, `bring_up_loopback()` brings `lo` up (a new
namespace starts with it down), without needing the `ip` tool.
"""

import fcntl
import os
import shutil
import socket
import struct
import subprocess
from typing import List, Optional, Sequence

# Set in the environment of a process already in its private namespace.
INSIDE_ENV = "HUB_HARNESS_ISOLATED"

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def unshare_prefix() -> List[str]:
  """`unshare -n` as root, `unshare -rn` otherwise."""
  return ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]


def why_not_available() -> Optional[str]:
  """None when a private network namespace can be made here, else why not."""
  if not shutil.which("unshare"):
    return "the unshare command is not installed (util-linux)"
  try:
    probe = subprocess.run(unshare_prefix() + ["true"], capture_output=True,
                           text=True, timeout=10, check=False)
  except (OSError, subprocess.TimeoutExpired) as e:
    return "unshare failed: %s" % e
  if probe.returncode != 0:
    return "%s failed: %s" % (" ".join(unshare_prefix()),
                              probe.stderr.strip() or probe.returncode)
  return None


def isolate_command(argv: Sequence[str]) -> List[str]:
  """The command that runs `argv` in a new network namespace."""
  return unshare_prefix() + list(argv)


def bring_up_loopback() -> None:
  """Sets the `lo` interface of this network namespace up."""
  with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
    request = struct.pack("16sh", b"lo", 0)
    flags = struct.unpack("16sh", fcntl.ioctl(sock, _SIOCGIFFLAGS,
                                              request))[1]
    fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sh", b"lo",
                                                 flags | _IFF_UP))

