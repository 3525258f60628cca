"""Free ports for local clusters, from portpicker.

portpicker can hand out the same port twice without a port server, and a
port can be taken between picking and binding: callers that bind retry on
fresh ports (see cluster.local.run_cluster and cluster.launcher.inprocess).
"""

from typing import List

import portpicker


def pick_ports(count: int) -> List[int]:
  """`count` distinct ports that were free when picked."""
  ports = []
  while len(ports) < count:
    port = portpicker.pick_unused_port()
    if port not in ports:
      ports.append(port)
  return ports
