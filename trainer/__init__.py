"""The trainer: one task of a job, from flags to exit, on either backend.

Read top to bottom, the way a run goes (docs/layout.md):
  task.py     the command (python -m trainer.task): flags -> plan -> run
  fetch.py    the command that fetches a hub handle once (python -m
              trainer.fetch)
  config/     what the job is: its settings, their flags, the demo
  plan/       from flags to a checked plan: the pre-flight, the model
              directory, what the launchers call
  hub_model/  the hub model: handles fetched, the model checked and called
  inputs/     the data: formats, each task's files, pipelines, the check
  training/   what runs around the steps on both backends: progress, NaN
              guard, early stopping, warm start, evaluation, best export,
              how a job ends
  estimator/  the Estimator backend (tf.estimator, TF <= 2.15)
  keras/      the Keras backend (tf_keras + ParameterServerStrategy)

Each subpackage's __init__ says what it may import; tests/test_layers.py
holds the rule.
"""
