"""How a distributed job ends by itself, on any engine.

Estimator's ps tasks serve forever (`server.join()`), and engines end a job
in their own ways: the local launcher stops the ps when everyone else is
done; Kubeflow's TFJob marks the job done when the chief succeeds and then
deletes the pods still running (`cleanPodPolicy: Running`), an evaluator in
its final evaluation included; a Slurm step ends only when every task has
exited. So that one rule works everywhere:

* a worker that has finished training leaves a marker,
  MODEL_DIR/finished/worker-N (the chief clears them when it starts);
* a ps serves until the chief's final export exists and every worker has
  left its marker (or `WORKER_MARKER_WAIT_SECS` after the export, for a
  worker that died meanwhile), then exits 0;
* where TF_CONFIG lists an evaluator in the cluster (TFJob does), the chief
  waits after its export until the evaluator has evaluated the final
  checkpoint (at most `final_evaluation_wait_secs`), so the engine does not
  cut the evaluation off by ending the job with the chief;
* the evaluator ends after evaluating the final checkpoint (Estimator).

The ps's wait for the export has no deadline of its own: it lasts as long
as the job, whose deadline is the engine's (--deadline_secs,
activeDeadlineSeconds, Slurm's --time).
"""

import json
import os
import socket
import time
from typing import Callable, Optional, Set

import tensorflow as tf

from harness import errors
from harness import files
from harness import tf_config
from trainer.training import preemption

MARKERS = "finished"
WORKER_MARKER_WAIT_SECS = 60.0
POLL_SECS = 1.0


def marker_dir(model_dir: str) -> str:
  return os.path.join(model_dir, MARKERS)


# What a cluster's chief says when it restarts after its final export (a
# preemption while it waited for the final evaluation): the job is done
# (trainer.plan.preflight.job_already_done), and it ends as the others do.
DONE_NOTE = ("The job is done: its final export %s exists (this chief "
             "restarted after writing it); nothing to train.")


def clear_markers(model_dir: str) -> None:
  """The chief, starting: no worker of this run has finished yet."""
  if tf.io.gfile.exists(marker_dir(model_dir)):
    tf.io.gfile.rmtree(marker_dir(model_dir))


def mark_finished(model_dir: str, task: tf_config.Task, step: int) -> None:
  """A worker that has finished training says so."""
  tf.io.gfile.makedirs(marker_dir(model_dir))
  files.write_text(os.path.join(marker_dir(model_dir), task.name),
                   json.dumps({"task": task.name, "global_step": step}),
                   tf.io.gfile)


def finished_workers(model_dir: str) -> Set[str]:
  """Names of the workers that left a marker ('worker-0', ...)."""
  if not tf.io.gfile.exists(marker_dir(model_dir)):
    return set()
  return {name for name in tf.io.gfile.listdir(marker_dir(model_dir))
          if ".tmp-" not in name}  # Not harness.files's partial ones.


def wait_until_done(*, export_dir: str, model_dir: str, num_workers: int,
                    log: Callable[[str], None], timeout_secs: float,
                    clock: Callable[[], float] = time.monotonic,
                    sleep: Callable[[float], None] = time.sleep,
                    poll_secs: float = POLL_SECS,
                    marker_wait_secs: float = WORKER_MARKER_WAIT_SECS,
                    notice: Optional[preemption.Notice] = None,
                    task_name: str = "ps",
                    grace_secs: float = preemption.DEFAULT_GRACE_SECS
                    ) -> Set[str]:
  """A ps's wait: until the export exists and every worker finished.

  Returns the workers that did not leave a marker within `marker_wait_secs`
  of the export (empty when all did).

  Raises:
    errors.ClusterError: no export within `timeout_secs`.
    preemption.Preempted: SIGTERM (`notice`) before the export; this ps
      served on until the chief's next checkpoint, or `grace_secs`.
  """
  give_up = clock() + timeout_secs
  while not tf.io.gfile.exists(export_dir):
    if notice and notice.received:
      preemption.leave_after_checkpoint(model_dir, task_name, grace_secs,
                                        log, clock=clock, sleep=sleep)
    if clock() > give_up:
      raise errors.ClusterError(
          "No final export at %s after %d s of serving: the chief never "
          "finished, and nothing stopped this task; giving up "
          "(`serve_timeout_secs`)." % (export_dir, timeout_secs))
    if notice:
      notice.wait(poll_secs)  # Wakes at once on SIGTERM.
    else:
      sleep(poll_secs)
  workers = {tf_config.Task(tf_config.WORKER, i).name
             for i in range(num_workers)}
  deadline = clock() + marker_wait_secs
  while True:
    missing = workers - finished_workers(model_dir)
    if not missing or clock() > deadline:
      break
    sleep(poll_secs)
  if missing:
    log("The chief's final export exists, but %s left no finish marker "
        "within %d s; stopping anyway." % (", ".join(sorted(missing)),
                                           marker_wait_secs))
  return missing


def serve_until_done(cluster_spec: dict, *, job_name: str, task_index: int,
                     export_dir: str, model_dir: str,
                     log: Callable[[str], None], timeout_secs: float,
                     config: Optional[tf.compat.v1.ConfigProto] = None,
                     protocol: Optional[str] = None,
                     wait_for_workers: bool = True,
                     notice: Optional[preemption.Notice] = None,
                     grace_secs: float = preemption.DEFAULT_GRACE_SECS,
                     on_serving: Callable[[], None] = lambda: None
                     ) -> None:
  """Starts this ps's (or, on the Keras backend, worker's) server and
  serves until the job is done (see wait_until_done); then returns, and
  the process exits 0. `wait_for_workers`: also wait for the workers'
  finish markers (Estimator workers train on their own and leave one;
  Keras workers only serve). `notice`: a ps's SIGTERM, after which it
  serves until the chief's next checkpoint (at most `grace_secs`) and
  raises preemption.Preempted. `on_serving`: called once the server is
  up."""
  server = tf.distribute.Server(
      tf.train.ClusterSpec(cluster_spec), job_name=job_name,
      task_index=task_index, config=config, protocol=protocol or "grpc",
      start=True)
  del server  # Serves in its own threads until the process exits.
  on_serving()
  num_workers = len(cluster_spec.get(tf_config.WORKER, [])) if (
      wait_for_workers) else 0
  log("Serving; stopping once %s exists%s (at most %d s: "
      "--serve_timeout_secs)." % (
          export_dir, " and %d worker(s) finished" % num_workers
          if num_workers else "", timeout_secs))
  wait_until_done(export_dir=export_dir, model_dir=model_dir,
                  num_workers=num_workers, log=log, timeout_secs=timeout_secs,
                  notice=notice, task_name="%s-%d" % (job_name, task_index),
                  grace_secs=grace_secs)
  log("The job is done (the chief's final export exists); stopping.")


def listening(address: str, timeout_secs: float = POLL_SECS) -> bool:
  """Whether something accepts connections at `address` (HOST:PORT)."""
  try:
    socket.create_connection(tf_config.parse_address(address),
                             timeout=timeout_secs).close()
  except OSError:
    return False
  return True


def wait_for_exit(address: str, *, timeout_secs: float,
                  log: Callable[[str], None],
                  clock: Callable[[], float] = time.monotonic,
                  sleep: Callable[[float], None] = time.sleep,
                  poll_secs: float = POLL_SECS) -> bool:
  """Waits until nothing listens at `address` (HOST:PORT): the process that
  served there has ended. Returns False after `timeout_secs` without that.

  Keras backend workers and ps wait so for the chief after its export: the
  chief's TF still talks to them while its process ends (it removes its
  functions from every task), and a task already gone makes each of those
  calls log an error.
  """
  deadline = clock() + timeout_secs
  while True:
    if not listening(address, poll_secs):
      return True
    if clock() > deadline:
      log("The chief (%s) still runs %d s after its export; stopping "
          "anyway." % (address, timeout_secs))
      return False
    sleep(poll_secs)


def wait_for_final_evaluation(
    read_step: Callable[[], Optional[int]], final_step: int, *,
    timeout_secs: float, log: Callable[[str], None],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    poll_secs: float = POLL_SECS) -> bool:
  """The chief's wait for the evaluator's evaluation of `final_step`.

  Args:
    read_step: the global step of the latest evaluation, or None.
    final_step: the step of the final checkpoint.

  Returns:
    Whether the final evaluation happened within `timeout_secs`.
  """
  log("Waiting (at most %d s) for the evaluator's final evaluation, of step "
      "%d, before ending the job." % (timeout_secs, final_step))
  deadline = clock() + timeout_secs
  while True:
    step = read_step()
    if step is not None and step >= final_step:
      log("The evaluator evaluated step %d." % step)
      return True
    if clock() > deadline:
      log("warning: no evaluation of step %d within %d s (latest: %s); "
          "ending anyway." % (final_step, timeout_secs, step))
      return False
    sleep(poll_secs)
