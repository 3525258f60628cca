"""A real Slurm cluster on this machine, for tests: started and torn down.

Debian's Slurm (slurmctld, slurmd, slurm-client, munge), as docs/engines.md
describes: every daemon in its own network namespace with its own address
and host name, joined by a bridge in the root namespace (where the clients,
sbatch, srun, scontrol, run). Each daemon's mount namespace has a private
/etc/hosts (the machine's is never edited), which the job's tasks inherit.
Everything lives in one private folder; `SLURM_CONF` points at it. Where
network namespaces cannot be made, one node on 127.0.0.1 stands in.

`SlurmCluster.start(root, nodes=3)` returns a running cluster; `stop()`
cancels every job, kills what is left in the namespaces, stops the daemons
and munged, and removes the namespaces, veths, bridge and firewall rule.
"""

import itertools
import os
import shutil
import signal
import socket
import subprocess
import time
from typing import Dict, List, Optional

import portpicker

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
BINARIES = ("slurmctld", "slurmd", "sbatch", "srun", "scontrol", "munged")
NODE_CPUS = 4
READY_SECS = 60.0
_COUNTER = itertools.count()


def _run(*args, check=True, timeout=60, **kwargs):
  proc = subprocess.run(list(args), check=False, capture_output=True,
                        text=True, timeout=timeout, **kwargs)
  if check and proc.returncode != 0:
    raise RuntimeError("%s exited with %d: %s" % (
        " ".join(args), proc.returncode, proc.stderr.strip()[-500:]))
  return proc


def install_or_why_not() -> Optional[str]:
  """Installs Slurm with apt-get where missing; None when it is there."""
  if all(shutil.which(b) for b in BINARIES):
    return None
  if os.geteuid() != 0 or not shutil.which("apt-get"):
    return "Slurm is not installed and apt-get (as root) is not available"
  # Another test process may be installing it at the same moment (pytest's
  # workers): apt waits for dpkg's lock instead of failing at once.
  apt = ["apt-get", "-o", "DPkg::Lock::Timeout=600"]
  command = apt + ["install", "-y", "--no-install-recommends"]
  proc = _run(*command, *PACKAGES, check=False, timeout=600,
              env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
  if proc.returncode != 0:  # The package lists may be missing: update.
    _run(*apt, "update", check=False, timeout=600)
    proc = _run(*command, *PACKAGES, check=False, timeout=600,
                env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
  if proc.returncode != 0:
    return "apt-get install %s failed: %s" % (" ".join(PACKAGES),
                                              proc.stderr.strip()[-300:])
  missing = [b for b in BINARIES if not shutil.which(b)]
  return "still missing after install: %s" % missing if missing else None


def namespaces_allowed() -> bool:
  if os.geteuid() != 0 or not shutil.which("ip"):
    return False
  probe = "slprobe%d" % os.getpid()
  if _run("ip", "netns", "add", probe, check=False).returncode != 0:
    return False
  _run("ip", "netns", "del", probe, check=False)
  return True


class SlurmCluster:
  """A running Slurm: slurmctld and `nodes` slurmd, in `root`."""

  def __init__(self, root: str, nodes: int, isolated: bool,
               cpus_per_node: int = NODE_CPUS):
    tag = (os.getpid() * 13 + next(_COUNTER)) % 10000
    self.root = root
    self.tag = tag
    self.isolated = isolated
    self.cpus_per_node = cpus_per_node
    # Not isolated, the one node is this machine under its own name: the
    # name Slurm gives the job's tasks (TF_CONFIG's hosts) must resolve.
    self.node_names = (["node%d" % (i + 1) for i in range(nodes)] if isolated
                       else [_short_hostname()])
    self.subnet = "10.%d.%d" % (232 + tag % 20, tag % 250)
    self.bridge = "slbr%d" % tag
    self.namespaces: List[str] = []
    self.veths: List[str] = []
    self.firewall_rule: Optional[List[str]] = None
    self.env = dict(os.environ, SLURM_CONF=os.path.join(root, "slurm.conf"))
    self._daemons: List[subprocess.Popen] = []

  # Addresses: the root namespace .1, slurmctld .2, node i .(3 + i).
  def address(self, host: str) -> str:
    if not self.isolated:
      return "127.0.0.1"
    index = 2 if host == "ctl" else 3 + self.node_names.index(host)
    return "%s.%d" % (self.subnet, index)

  @classmethod
  def start(cls, root: str, nodes: int = 3,
            isolated: Optional[bool] = None) -> "SlurmCluster":
    """`isolated`: daemons in network namespaces (default: where they can
    be made); without them, one node on 127.0.0.1 whatever `nodes` says."""
    if isolated is None:
      isolated = namespaces_allowed()
    # The one node holds the CPUs of all: the same jobs fit.
    cluster = cls(root, nodes if isolated else 1, isolated,
                  NODE_CPUS * (1 if isolated else nodes))
    try:
      cluster._start()
    except BaseException:
      cluster.stop()
      raise
    return cluster

  def _start(self):
    for sub in ("state", "spool", "log", "run"):
      os.makedirs(os.path.join(self.root, sub), exist_ok=True)
    self._write_config()
    self._start_munge()
    if self.isolated:
      self._wire()
    self._write_hosts()
    self._daemon("ctl", ["slurmctld", "-D", "-f", self.env["SLURM_CONF"]])
    for name in self.node_names:
      self._daemon(name, ["slurmd", "-D", "-N", name, "-f",
                          self.env["SLURM_CONF"]])
    self._wait_for_nodes()

  def _write_config(self):
    ctl_port = portpicker.pick_unused_port()
    node_port = portpicker.pick_unused_port()
    nodes = "\n".join(
        "NodeName=%s NodeAddr=%s NodeHostname=%s CPUs=%d State=UNKNOWN" %
        (name, self.address(name), name, self.cpus_per_node)
        for name in self.node_names)
    r = self.root
    conf = """\
ClusterName=harnesstest
SlurmctldHost=%(ctl_name)s(%(ctl)s)
SlurmctldPort=%(ctl_port)d
SlurmdPort=%(node_port)d
AuthType=auth/munge
AuthInfo=socket=%(r)s/run/munge.socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=%(r)s/state
SlurmdSpoolDir=%(r)s/spool/%%n
SlurmctldPidFile=%(r)s/run/slurmctld.pid
SlurmdPidFile=%(r)s/run/slurmd-%%n.pid
SlurmctldLogFile=%(r)s/log/slurmctld.log
SlurmdLogFile=%(r)s/log/slurmd-%%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
MailProg=/bin/true
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
KillWait=5
InactiveLimit=0
MinJobAge=5
%(nodes)s
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""" % dict(ctl=self.address("ctl"), ctl_port=ctl_port, node_port=node_port,
           # slurmctld starts only on the host its name says: "ctl" in its
           # namespace, else this machine.
           ctl_name="ctl" if self.isolated else _short_hostname(),
           r=r, nodes=nodes)
    with open(self.env["SLURM_CONF"], "w") as f:
      f.write(conf)
    with open(os.path.join(r, "cgroup.conf"), "w") as f:
      f.write("CgroupPlugin=cgroup/v1\n")

  def _start_munge(self):
    key = os.path.join(self.root, "run", "munge.key")
    with open(key, "wb") as f:
      f.write(os.urandom(1024))
    shutil.chown(self.root, "munge")
    for sub in ("run",):
      shutil.chown(os.path.join(self.root, sub), "munge")
    shutil.chown(key, "munge")
    os.chmod(key, 0o400)
    run = os.path.join(self.root, "run")
    _run("runuser", "-u", "munge", "--", "munged",
         "--socket=%s/munge.socket" % run, "--key-file=" + key,
         "--pid-file=%s/munged.pid" % run, "--log-file=%s/munged.log" % run,
         "--seed-file=%s/munged.seed" % run, "--force")
    deadline = time.monotonic() + READY_SECS
    while not os.path.exists(os.path.join(run, "munge.socket")):
      if time.monotonic() > deadline:
        raise RuntimeError("munged did not start")
      time.sleep(0.05)

  def _wire(self):
    _run("ip", "link", "add", self.bridge, "type", "bridge")
    _run("ip", "addr", "add", "%s.1/24" % self.subnet, "dev", self.bridge)
    _run("ip", "link", "set", self.bridge, "up")
    if shutil.which("iptables"):
      rule = ["FORWARD", "-i", self.bridge, "-o", self.bridge, "-j",
              "ACCEPT"]
      if _run("iptables", "-I", *rule, check=False).returncode == 0:
        self.firewall_rule = rule
    for i, host in enumerate(["ctl"] + self.node_names):
      ns = "sl%d-%s" % (self.tag, host)
      _run("ip", "netns", "add", ns)
      self.namespaces.append(ns)
      inside, outside = "sv%d-%da" % (self.tag, i), "sv%d-%db" % (self.tag, i)
      _run("ip", "link", "add", inside, "type", "veth", "peer", "name",
           outside)
      self.veths.append(outside)
      _run("ip", "link", "set", inside, "netns", ns)
      _run("ip", "link", "set", outside, "master", self.bridge)
      _run("ip", "link", "set", outside, "up")
      _run("ip", "-n", ns, "addr", "add", "%s/24" % self.address(host),
           "dev", inside)
      _run("ip", "-n", ns, "link", "set", inside, "up")
      _run("ip", "-n", ns, "link", "set", "lo", "up")

  def _write_hosts(self):
    lines = ["127.0.0.1 localhost"] + [
        "%s %s" % (self.address(h), h) for h in ["ctl"] + self.node_names]
    with open(os.path.join(self.root, "hosts"), "w") as f:
      f.write("\n".join(lines) + "\n")

  def _daemon(self, host: str, command: List[str]):
    """Starts a daemon in `host`'s namespaces (or here, not isolated)."""
    log = open(os.path.join(self.root, "log", host + ".out"), "w")
    if self.isolated:
      ns = "sl%d-%s" % (self.tag, host)
      inner = ("mount --bind %s /etc/hosts && hostname %s && exec %s" % (
          os.path.join(self.root, "hosts"), host, " ".join(command)))
      command = ["nsenter", "--net=/run/netns/" + ns, "unshare", "-m", "-u",
                 "sh", "-c", inner]
    self._daemons.append(subprocess.Popen(
        command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True))

  def _wait_for_nodes(self):
    deadline = time.monotonic() + READY_SECS
    while True:
      proc = _run("sinfo", "-h", "-N", "-o", "%N %t", check=False,
                  env=self.env)
      states = dict(line.split() for line in proc.stdout.splitlines())
      if len(states) == len(self.node_names) and all(
          s.startswith("idle") for s in states.values()):
        return
      dead = [d for d in self._daemons if d.poll() is not None]
      if dead or time.monotonic() > deadline:
        raise RuntimeError("Slurm did not come up (%s; daemons exited: %s); "
                           "logs in %s" % (proc.stdout.strip() or
                                           proc.stderr.strip(), len(dead),
                                           self.root))
      time.sleep(0.1)

  def queue(self) -> List[str]:
    proc = _run("squeue", "-h", "-o", "%i %T", env=self.env, check=False)
    return proc.stdout.split("\n") if proc.stdout.strip() else []

  def job_state(self, job_id: str) -> Dict[str, str]:
    proc = _run("scontrol", "show", "job", job_id, "-o", env=self.env,
                check=False)
    return dict(field.split("=", 1) for field in proc.stdout.split()
                if "=" in field)

  def stop(self):
    """Everything this cluster started, gone."""
    if shutil.which("scancel") and os.path.exists(self.env["SLURM_CONF"]):
      _run("scancel", "--full", "--user=root", env=self.env, check=False)
    for ns in self.namespaces:
      pids = _run("ip", "netns", "pids", ns, check=False).stdout.split()
      for pid in pids:
        _kill(int(pid))
    for daemon in self._daemons:
      _kill_group(daemon)
    # What the daemons started in sessions of their own (slurmstepd, the
    # job's tasks) still carries this cluster's SLURM_CONF.
    for pid in pids_in_environment("SLURM_CONF=" + self.env["SLURM_CONF"]):
      _kill(pid)
    for name in os.listdir(os.path.join(self.root, "run")) if os.path.isdir(
        os.path.join(self.root, "run")) else []:
      if name.endswith(".pid"):
        with open(os.path.join(self.root, "run", name)) as f:
          text = f.read().strip()
        if text.isdigit():
          _kill(int(text))
    for veth in self.veths:
      _run("ip", "link", "del", veth, check=False)
    for ns in self.namespaces:
      _run("ip", "netns", "del", ns, check=False)
    if self.isolated:
      _run("ip", "link", "del", self.bridge, check=False)
    if self.firewall_rule:
      _run("iptables", "-D", *self.firewall_rule, check=False)


def _short_hostname() -> str:
  return socket.gethostname().split(".")[0]


def pids_in_environment(entry: str) -> List[int]:
  """The processes whose environment holds `entry` (NAME=VALUE)."""
  wanted, found = entry.encode() + b"\0", []
  for name in os.listdir("/proc"):
    if not name.isdigit() or int(name) == os.getpid():
      continue
    try:
      with open("/proc/%s/environ" % name, "rb") as f:
        environ = f.read() + b"\0"
    except OSError:  # Gone, or a zombie.
      continue
    if b"\0" + wanted in b"\0" + environ:
      found.append(int(name))
  return found


def _kill(pid: int):
  try:
    os.kill(pid, signal.SIGKILL)
  except (ProcessLookupError, PermissionError):
    pass


def _kill_group(process: subprocess.Popen):
  try:
    os.killpg(process.pid, signal.SIGKILL)
  except (ProcessLookupError, PermissionError):
    pass
  try:
    process.wait(10)
  except subprocess.TimeoutExpired:
    pass
