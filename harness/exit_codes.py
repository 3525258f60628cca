"""Exit statuses the trainer and the launchers agree on.

The restart policies (cluster/launcher/restart.py) follow Kubeflow's TFJob:
1-127 means an error a restart would repeat; 128-255 a kill or preemption, worth
a restart.
"""

ERROR = 1            # An exception, or a problem found before training.
BAD_FLAGS = 2        # Flags absl could not parse, or stray arguments.
INTERRUPTED = 130    # Ctrl-C or SIGTERM to a launcher (128 + SIGINT).
# A task saw only that a peer went away or came back
# (trainer.training.peer_errors): retried like a kill; and no signal's code
# (128 + N).
PEER_RESTARTED = 200
