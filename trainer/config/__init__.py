"""What the job is: its settings, their flags, and where unset ones come from.

  job.py        JobConfig: each setting declared once (name, type, default,
                help), nested by what uses it, and its one check
  input_map.py  which data column feeds which model input (a setting's type)
  cli.py        the trainer's flags, derived from job.py's settings, and
                back to a JobConfig
  demo.py       no model or data given: the demo (configs/digits.cfg)
  aip_dirs.py   Vertex AI's output directories, where flags leave them unset
  backends.py   which backend runs the steps (estimator or keras), and why

Step 1 of a run (docs/layout.md, "From flags to a run"). Imports harness
only, and never TensorFlow: an entry point checks flags in a fraction of a
second.
"""
