"""Soak: the local demo cluster several times back to back leaks nothing.

After each run: no process of the cluster, no listening port of the
cluster, no file left in the temporary directory (TMPDIR, private to the
test, so other tests' temporary files do not count). Runs with --noisolate
so that the cluster's ports are in this network namespace and can be
checked.
"""

import json
import os
import re
import subprocess
import sys

from tests import processes

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = 3


def _listening_ports():
  ports = set()
  for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    with open(table) as f:
      for line in f.readlines()[1:]:
        fields = line.split()
        if fields[3] == "0A":  # LISTEN
          ports.add(int(fields[1].rsplit(":", 1)[1], 16))
  return ports


def test_back_to_back_runs_leak_nothing(assets, tmp_path):
  temp_dir = tmp_path / "tmp"
  temp_dir.mkdir()
  for run in range(RUNS):
    run_dir = str(tmp_path / ("run-%d" % run))
    proc = subprocess.run(
        [sys.executable, "-m", "cluster.local", "--noisolate",
         "--num_workers=1", "--noevaluator", "--run_dir=" + run_dir,
         "--deadline_secs=300", "--", "--demo_dir=" + assets.root,
         "--train_steps=40", "--save_checkpoints_steps=20"],
        cwd=str(tmp_path), capture_output=True, text=True, timeout=360,
        env=dict(os.environ, PYTHONPATH=REPO, TMPDIR=str(temp_dir)),
        check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "warning: NOT isolated (--noisolate)" in proc.stdout
    cluster = json.loads(re.search(r"^Cluster: (\{.*\})$", proc.stdout,
                                   re.M).group(1))
    ports = {int(a.rsplit(":", 1)[1]) for addresses in cluster.values()
             for a in addresses}
    assert not processes.pids_mentioning(run_dir)
    assert not ports & _listening_ports(), "ports still listening"
    assert not os.listdir(temp_dir), os.listdir(temp_dir)
