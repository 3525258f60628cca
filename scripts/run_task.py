"""Moved: `python -m cluster.hosts` runs one task on a real host.

This script still runs it, with the same flags, for the commands and
scripts written before the move.
"""

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

if __name__ == "__main__":
  print("note: scripts/run_task.py is now `python -m cluster.hosts`; "
        "running that.", file=sys.stderr, flush=True)
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      filter(None, [REPO, os.environ.get("PYTHONPATH", "")])))
  os.execve(sys.executable, [sys.executable, "-m", "cluster.hosts"] +
            sys.argv[1:], env)
