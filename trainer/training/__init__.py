"""What runs around the training steps, the same on both backends.

While it trains:
  progress.py        a progress line every N steps
  nan_guard.py       stop at once when the loss is not a number
  early_stopping.py  end the whole cluster when evaluations stop improving
  peer_errors.py     errors that only mean a peer restarted: retry, not fail
  warm_start.py      begin from another run's weights, by variable name
What it leaves, and how it ends:
  eval_loop.py       the evaluator task's loop over new checkpoints
  eval_events.py     the evaluations a model directory's event files hold
  best_export.py     the serving export of the best evaluation so far
  export_check.py    the export served as a server would, against the model
  metric_goal.py     which way each metric should go (no TF)
  metric_report.py   each evaluation, where the tuning services read it
  job_end.py         how a distributed job ends by itself, on any engine
  preemption.py      SIGTERM as a notice: save first, then go
  result.py          what one task did, as every backend reports it

A backend calls these with plain values; they import harness and each other
only, never a backend, the config or the pre-flight.
"""
