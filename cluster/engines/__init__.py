"""Each engine's job, built as data from a description (pure: nothing runs).

  spec.py       the cluster's shape (chief, workers, ps, evaluator) and
                addresses, the same on every engine
  resources.py  --ROLE_resources, and what each engine calls them
  tfjob.py      a Kubeflow TFJob and its NetworkPolicy
  vertex.py     a Vertex AI CustomJobSpec
  slurm.py      a Slurm batch script: #SBATCH lines and one srun step

The commands that read flags and print or submit these are cluster/*.py.
Imports harness, and cluster.launcher for the rules a job's tasks run
under (the restart policy, the Slurm tasks' ports); never the trainer.
"""
