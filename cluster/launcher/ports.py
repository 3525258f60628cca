"""Free ports for local clusters.

A port picked here is bound later, by a task that may start a minute after
the pick (a worker that joins once the chief has gone). Ports the kernel
hands out for `bind(0)` (what portpicker asks for without a port server)
come from the ephemeral range, the same range every outgoing connection
takes its local port from: in that minute any gRPC or HTTP client on the
machine can take the picked port, and the task then fails in TF_NewServer.
So we pick below the ephemeral range, as portpicker's own port server does
(its static pool is 15000-24999), and let portpicker check that the port is
free on TCP and UDP. Where a port server is configured (PORTSERVER_ADDRESS)
or the range cannot be read, portpicker picks.

A port can still be taken between picking and binding by another picker:
callers that bind retry on fresh ports (see cluster.local.run_cluster and
cluster.launcher.inprocess).
"""

import os
import random
from typing import List, Optional, Tuple

import portpicker

LOWEST = 15000
EPHEMERAL_RANGE = "/proc/sys/net/ipv4/ip_local_port_range"
_TRIES = 100


def ephemeral_range(path: str = EPHEMERAL_RANGE) -> Optional[Tuple[int, int]]:
  """The kernel's (first, last) port for outgoing connections, or None
  where the system does not say (not Linux)."""
  try:
    with open(path) as f:
      first, last = (int(field) for field in f.read().split())
  except (OSError, ValueError):
    return None
  return first, last


def _pick_one(taken: List[int], below: Optional[int]) -> int:
  if below is not None and below - LOWEST >= 1000:
    for _ in range(_TRIES):
      port = random.randrange(LOWEST, below)
      if port not in taken and portpicker.is_port_free(port):
        return port
  while True:
    port = portpicker.pick_unused_port()
    if port not in taken:
      return port


def pick_ports(count: int) -> List[int]:
  """`count` distinct ports that were free when picked, outside the
  kernel's ephemeral range where it can be read."""
  span = None if os.environ.get("PORTSERVER_ADDRESS") else ephemeral_range()
  below = span[0] if span else None
  ports: List[int] = []
  while len(ports) < count:
    ports.append(_pick_one(ports, below))
  return ports
