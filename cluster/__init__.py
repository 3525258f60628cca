"""Clusters: the commands that run a job here, on hosts, or on an engine.

  local.py       python -m cluster.local: a multi-process cluster here
  hosts.py       python -m cluster.hosts: one task on a real host
  tfjob.py       python -m cluster.tfjob: a Kubeflow TFJob
  vertex.py      python -m cluster.vertex: a Vertex AI CustomJobSpec
  slurm.py       python -m cluster.slurm: a Slurm batch script, or the job
                 submitted (slurm_submit.py) and followed
  slurm_task.py  one task of the Slurm job's srun step
  chaos.py       a seeded kill schedule on a live local cluster
  job_flags.py   the cluster flags every command shares
  engines/       each engine's job built as data (pure)
  launcher/      tasks as processes: supervisor, restarts, ports, network
                 isolation

The commands import the trainer (its pre-flight runs before anything
starts); engines/ and launcher/ never do.
"""
