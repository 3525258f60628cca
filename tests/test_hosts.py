"""python -m cluster.hosts across addresses: each task on its own test host.

Every task runs in a network namespace of its own, with its own IP address,
joined to the others by a bridge (in a namespace too, so the machine's own
network is untouched). The tasks are started through the host script, as on
real machines, and train to the end. Skips, saying why, where network
namespaces cannot be made.
"""

import os
import subprocess
import sys

import pytest

from cluster.launcher import leftovers
from cluster.launcher import supervisor
from harness import tf_config
from tests import launcher
from tests import netns_hosts
from tests import processes
from trainer.training import warm_start

pytestmark = pytest.mark.cluster

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMAND = [sys.executable, "-m", "cluster.hosts"]
ENV = dict(os.environ, PYTHONPATH=REPO)
OLD_SCRIPT = os.path.join(REPO, "scripts", "run_task.py")
PORT = 2222


@pytest.fixture
def hosts():
  reason = netns_hosts.why_not()
  if reason:
    pytest.skip("no network namespaces here: %s" % reason)
  made = netns_hosts.NamespaceHosts(3)
  yield made
  made.remove()


def test_host_script_trains_across_addresses(hosts, assets, tmp_path):
  roles = [tf_config.Task("ps"), tf_config.Task("chief"),
           tf_config.Task("worker")]
  cluster = {t.type: ["%s:%d" % (hosts.address(i), PORT)]
             for i, t in enumerate(roles)}
  cluster_flag = ";".join("%s=%s" % (job, ",".join(addresses))
                          for job, addresses in cluster.items())
  model_dir = str(tmp_path / "model")
  trainer_flags = launcher.demo_flags(assets) + [
      "--model_dir=" + model_dir, "--train_steps=40",
      "--save_checkpoints_steps=20", "--log_every_steps=20"]
  launches = [supervisor.Launch(
      task, hosts.exec_prefix(i) + COMMAND + [
          "--cluster=" + cluster_flag, "--task=%s:%d" % (task.type,
                                                         task.index),
          "--"] + trainer_flags, ENV)
              for i, task in enumerate(roles)]
  lines = []
  supervisor.supervise(launches, log_dir=str(tmp_path / "logs"),
                       deadline_secs=300, printer=lines.append)
  assert warm_start.global_step(model_dir) >= 40
  assert any(line.startswith("[chief-0] TF_CONFIG=") and
             hosts.address(1) in line for line in lines)
  assert not any("localhost" in line for line in lines
                 if "TF_CONFIG=" in line)
  assert os.path.isdir(os.path.join(model_dir, "export"))
  assert not leftovers.pids_mentioning(model_dir)


@pytest.mark.parametrize("old", [False, True])
def test_host_command_refuses_bad_cluster(tmp_path, old):
  """Also through its former home, scripts/run_task.py, which says where
  it went and runs it."""
  command = [sys.executable, OLD_SCRIPT] if old else COMMAND
  proc = subprocess.run(
      command + ["--cluster=chief=h1:2222;ps=h2:x", "--task=ps:0", "--",
                 "--n_classes=2"], capture_output=True, text=True,
      timeout=120, check=False, env=ENV)
  assert proc.returncode == 1
  assert processes.our_lines(proc.stderr) == ([
      "note: scripts/run_task.py is now `python -m cluster.hosts`; running "
      "that."] if old else []) + [
          "error: Port 'x' of address 'h2:x' is not a number from 1 to "
          "65535."]
