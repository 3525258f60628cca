"""From flags to a checked plan, before anything trains or any task starts.

  resolve.py    the way every run starts: flags -> the backend -> the demo
                and Vertex AI's directories -> JobConfig -> pre-flight ->
                Plan -> the model directory settled
  preflight.py  the model, the data and how they fit, checked once -> Plan
  model_dir.py  the model directory's record (flags.txt) and its guard
  launch.py     what the launchers and job generators (cluster/) call: the
                pre-flight once, as the chief, and the flags for the tasks

Steps 2-5 of a run (docs/layout.md, "From flags to a run"). Imports harness,
trainer.config, trainer.inputs, trainer.hub_model and trainer.training;
never a backend (trainer.task loads the chosen one by name).
"""
