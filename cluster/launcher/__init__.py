"""Tasks as processes on this machine (or a host, or a Slurm node): started,
watched, restarted, stopped, isolated.

  supervisor.py    runs the tasks, restarts by policy, stops them together
  restart.py       restart policies: which exit codes are retried, how often
  ports.py         free ports for a local cluster
  netns.py         a private network namespace for a local cluster
  inprocess.py     a cluster's servers inside one process (fast tests)
  launcher_end.py  SIGTERM as an exception, run directory names, the end
                   summary a launcher prints
  leftovers.py     processes and listening sockets a cluster left behind
  slurm_status.py  each Slurm task's status file, and the step's ports

Imports harness only (and itself): the commands (cluster/local.py,
cluster/slurm_task.py, cluster/hosts.py) put these together.
"""
