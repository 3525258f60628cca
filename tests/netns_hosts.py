"""Test hosts: network namespaces with their own addresses on a bridge.

`NamespaceHosts(n)` makes namespaces, each with its own IPv4 address, all
joined by a bridge that lives in a namespace of its own (the machine's
network is untouched). `hosts_file` gives a namespace its own /etc/hosts
(`ip netns exec` mounts /etc/netns/NAME/hosts over /etc/hosts), so names
such as Kubernetes service names resolve there. `remove()` takes all of it
away. Making namespaces needs root; `why_not()` says why not, for a skip.
"""

import itertools
import os
import re
import shutil
import subprocess
from typing import Mapping, Optional

import numpy as np
import tensorflow as tf

from cluster.launcher import leftovers
from trainer.training import eval_events
from trainer.training import warm_start

SUBNET = "10.231.%d"
_COUNTER = itertools.count()


def ip(*args):
  subprocess.run(["ip"] + list(args), check=True, capture_output=True,
                 timeout=30)


def why_not() -> Optional[str]:
  """None where network namespaces can be made here, else why not."""
  if os.geteuid() != 0:
    return "making network namespaces with ip netns needs root"
  if not shutil.which("ip"):
    return "the ip command (iproute2) is not installed"
  probe = "hhprobe%d" % os.getpid()
  try:
    ip("netns", "add", probe)
  except subprocess.CalledProcessError as e:
    return "ip netns add failed: %s" % e.stderr.decode().strip()
  ip("netns", "del", probe)
  return None


class NamespaceHosts:
  """Namespaces hh<tag>-0..N plus a switch namespace holding a bridge."""

  def __init__(self, count: int, subnet: str = ""):
    """`subnet`: the first three numbers of the hosts' addresses (host i
    is SUBNET.i+1), e.g. '10.0.0' for addresses a page shows; default: one
    of 10.231.*, by the tag."""
    tag = (os.getpid() * 7 + next(_COUNTER)) % 100000
    self.tag = tag
    self.subnet = subnet or SUBNET % (tag % 250)
    self.switch = "hhsw%d" % tag
    self.names = ["hh%d-%d" % (tag, i) for i in range(count)]
    self._created = []
    self._etc = []
    try:
      self._wire()
    except Exception:
      self.remove()
      raise

  def _wire(self):
    self._add(self.switch)
    ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
    ip("-n", self.switch, "link", "set", "br0", "up")
    for i, name in enumerate(self.names):
      self._add(name)
      inside, outside = "hv%d-%da" % (self.tag, i), "hv%d-%db" % (self.tag, i)
      ip("link", "add", inside, "type", "veth", "peer", "name", outside)
      ip("link", "set", inside, "netns", name)
      ip("link", "set", outside, "netns", self.switch)
      ip("-n", self.switch, "link", "set", outside, "master", "br0")
      ip("-n", self.switch, "link", "set", outside, "up")
      ip("-n", name, "addr", "add", "%s/24" % self.address(i), "dev", inside)
      ip("-n", name, "link", "set", inside, "up")
      ip("-n", name, "link", "set", "lo", "up")

  def _add(self, name):
    ip("netns", "add", name)
    self._created.append(name)

  def address(self, i: int) -> str:
    return "%s.%d" % (self.subnet, i + 1)

  def hosts_file(self, i: int, names: Mapping[str, str]) -> None:
    """Host name -> address, as /etc/hosts inside namespace `i`."""
    etc = os.path.join("/etc/netns", self.names[i])
    os.makedirs(etc, exist_ok=True)
    self._etc.append(etc)
    lines = ["127.0.0.1 localhost"] + ["%s %s" % (address, name)
                                        for name, address in names.items()]
    with open(os.path.join(etc, "hosts"), "w") as f:
      f.write("\n".join(lines) + "\n")

  def exec_prefix(self, i: int):
    """The command prefix that runs a command inside namespace `i`."""
    return ["ip", "netns", "exec", self.names[i]]

  def remove(self):
    for etc in self._etc:
      shutil.rmtree(etc, ignore_errors=True)
    for name in reversed(self._created):
      subprocess.run(["ip", "netns", "del", name], capture_output=True,
                     check=False, timeout=30)


def run_as_hosts(replicas, *, log_dir: str, deadline_secs: float,
                 subnet: str = ""):
  """Runs each replica, (host name, task, command, env), in a namespace of
  its own that resolves every replica's host name, under the local
  launcher's supervisor (the ps too end by themselves: waited for, not
  stopped); replica i's address is SUBNET.i+1 (NamespaceHosts). Returns
  (task name -> exit code, the output's lines); the namespaces are removed
  whatever happens."""
  # pylint: disable=g-import-not-at-top
  from cluster.launcher import supervisor
  # pylint: enable=g-import-not-at-top
  hosts = NamespaceHosts(len(replicas), subnet=subnet)
  lines = []
  try:
    names = {name: hosts.address(i)
             for i, (name, _, _, _) in enumerate(replicas)}
    launches = []
    for i, (_, task, command, env) in enumerate(replicas):
      hosts.hosts_file(i, names)
      launches.append(supervisor.Launch(task, hosts.exec_prefix(i) + command,
                                        env))
    codes = supervisor.supervise(launches, log_dir=log_dir,
                                 deadline_secs=deadline_secs,
                                 printer=lines.append, wait_for_ps=True)
  finally:
    hosts.remove()
  assert not os.path.exists("/etc/netns/" + hosts.names[0])
  return codes, lines


def container_replica(host: str, task, container: Mapping, env: Mapping):
  """run_as_hosts' (host name, task, command, env) of a container as a
  TFJob's pod template or a Vertex AI worker pool writes it (`command`,
  `args`, `env` as name/value pairs), on top of `env`."""
  env = dict(env)
  env.update({e["name"]: e["value"] for e in container.get("env", [])})
  return host, task, list(container["command"]) + list(container["args"]), env


def check_the_demo_job(codes, lines, model_dir: str, export_dir: str,
                       steps: int) -> str:
  """What a demo job of chief, 2 workers, ps and evaluator run by
  run_as_hosts promises: every replica (the ps too) ended by itself with
  success, the chief waited for the evaluator's evaluation of the final
  checkpoint, the export predicts probabilities, nothing is left running.
  Returns the output."""
  output = "\n".join(lines)
  assert codes == {"chief-0": 0, "worker-0": 0, "worker-1": 0, "ps-0": 0,
                   "evaluator-0": 0}, output[-3000:]
  assert warm_start.global_step(model_dir) >= steps
  assert re.search(r"\[chief-0\] .*The evaluator evaluated step \d+",
                   output), output[-3000:]
  assert eval_events.last(os.path.join(model_dir, "eval"))[
      "global_step"] >= steps
  exported = tf.saved_model.load(export_dir)
  probabilities = exported.signatures["serving_default"](
      inputs=tf.zeros([2, 64]))["probabilities"].numpy()
  np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
  assert not leftovers.pids_mentioning(model_dir)
  return output
