"""Soak: the local demo cluster several times back to back leaks nothing.

After each run: no process of the cluster, no socket of the cluster still
listening, no file left in the temporary directory (TMPDIR, private to the
test, so other tests' temporary files do not count). Runs with --noisolate
so that the cluster's ports are in this network namespace and can be
checked. Other tests may run clusters at the same time (pytest -n), and one
of them may be given a port this run used: only sockets held by this run's
own processes count.
"""

import json
import os
import re
import subprocess

import pytest

from cluster.launcher import leftovers
from tests import launcher

pytestmark = pytest.mark.cluster
RUNS = 3


def test_back_to_back_runs_leak_nothing(demo_cwd):
  temp_dir = demo_cwd / "tmp"
  temp_dir.mkdir()
  env = dict(launcher.ENV, TMPDIR=str(temp_dir))
  for run in range(RUNS):
    run_dir = str(demo_cwd / ("run-%d" % run))
    proc = subprocess.run(
        launcher.command(run_dir, ["--train_steps=40",
                                   "--save_checkpoints_steps=20"],
                         num_workers=1, evaluator=False, deadline_secs=300,
                         extra=["--noisolate"]),
        cwd=str(demo_cwd), capture_output=True, text=True, timeout=360,
        env=env, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "warning: NOT isolated (--noisolate)" in proc.stdout
    cluster = json.loads(re.search(r"^Cluster: (\{.*\})$", proc.stdout,
                                   re.M).group(1))
    ports = {int(a.rsplit(":", 1)[1]) for addresses in cluster.values()
             for a in addresses}
    assert not leftovers.pids_mentioning(run_dir)
    holders = leftovers.socket_holders(ports)
    assert not [cmd for cmd in holders.values() if run_dir in cmd], holders
    assert not os.listdir(temp_dir), os.listdir(temp_dir)
