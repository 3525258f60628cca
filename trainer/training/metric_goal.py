"""Which way each evaluation metric should go (no TensorFlow here).

Of the metrics the heads report (trainer.config.job.metrics), higher is
better for accuracy; the others are losses and errors, lower is better.
The best export, early stopping and the tuners' default goal (cluster/
tuning.py) all follow this one rule.
"""

HIGHER_IS_BETTER = ("accuracy",)


def better(metric: str, current: float, best: float) -> bool:
  """Whether `current` is an improvement on `best` for `metric`."""
  if metric in HIGHER_IS_BETTER:
    return current > best
  return current < best
