"""Each training example once per epoch across a Keras cluster's workers,
through TF's tf.data service (`--data_service`).

TF's ParameterServerStrategy runs one dataset function on every worker and
gives none its index, so without a service every worker reads every file
(trainer.inputs.data_share). With it:

* the chief runs the service's dispatcher, in its own process, and writes
  its address to MODEL_DIR/data_service.json;
* each worker, once its TF server is up, reads that file and, once the
  dispatcher there accepts connections, runs a tf.data worker beside its
  TF server, at its own host (TF_CONFIG). Not before: TF's WorkerServer
  holds Python's global lock while it waits for its dispatcher, so a
  worker restarted while the chief was down froze, TF server unstarted,
  and the restarted chief waited for it forever (a chaos run, SIGKILL);
* the dispatcher hands the training files out one at a time to whichever
  tf.data worker asks (`distributed_epoch`, dynamic sharding: a slow or
  restarted worker does not hold the others back), each file once per
  pass, and each batch goes to one training worker.

What a fault costs, as TF documents for this mode: the examples a worker
held when it died (in its shuffle buffer, its files part-read, batches
made but not taken) are not read again in that pass, at most once. The
dispatcher keeps its state under MODEL_DIR/data_service/
(fault-tolerant mode), and a restarted chief serves again at the port in
the address file, so the tf.data workers find it where they left it.
"""

import json
import os
import threading
import time
from typing import Callable, List, Optional

import tensorflow as tf

from harness import errors
from harness import files
from harness import tf_config
from trainer.training import job_end

ADDRESS_FILE = "data_service.json"
STATE_DIR = "data_service"
POLL_SECS = 0.5
# A tf.data worker learns of the dispatcher's new tasks at its heartbeat:
# TF's default of 30 s held a run's first step back by a minute or more.
HEARTBEAT_MS = 1000

# The servers of this process: a server stops when its object is deleted.
_SERVERS: List[object] = []


def address_path(model_dir: str) -> str:
  return os.path.join(model_dir, ADDRESS_FILE)


def read_address(model_dir: str) -> Optional[str]:
  """HOST:PORT of the run's dispatcher, or None before the chief wrote it."""
  path = address_path(model_dir)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)["dispatcher"]


def start_dispatcher(model_dir: str, chief_address: str,
                     log: Callable[[str], None]) -> str:
  """The chief's part: starts the dispatcher (at the port of the address
  file where a chief of this run wrote one, else any free one), writes the
  address file and returns the address the workers' datasets use."""
  previous = read_address(model_dir)
  port = tf_config.parse_address(previous)[1] if previous else 0
  state = os.path.join(model_dir, STATE_DIR)
  try:
    server = tf.data.experimental.service.DispatchServer(
        tf.data.experimental.service.DispatcherConfig(
            port=port, work_dir=state, fault_tolerant_mode=True))
  except (tf.errors.OpError, RuntimeError) as e:
    raise errors.ClusterError(
        "The tf.data service's dispatcher could not start on port %d (%s). "
        "A restarted chief serves at the port its run used before, "
        "recorded in %s; if another process holds it, free it or remove "
        "that file (the workers then need a restart too)." % (
            port, str(e).splitlines()[0][:200], address_path(model_dir))
    ) from e
  _SERVERS.append(server)
  address = "%s:%d" % (tf_config.parse_address(chief_address)[0],
                       tf_config.parse_address(server.target)[1])
  files.write_text(address_path(model_dir),
                   json.dumps({"dispatcher": address}), tf.io.gfile)
  log("Data: the tf.data service's dispatcher serves at %s (its state: "
      "%s); each training file is handed to one worker at a time, once per "
      "pass, and each batch goes to one training worker. A worker that "
      "dies loses the examples it held (at most once)." % (address, state))
  return "grpc://" + address


def stop_servers() -> None:
  """Stops this process's dispatcher and tf.data worker (dropped, a server
  stops)."""
  del _SERVERS[:]


def start_worker(model_dir: str, own_address: str, *,
                 timeout_secs: float, log: Callable[[str], None],
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
  """A training worker's part, in the background, once its TF server is
  up: once the chief has written the dispatcher's address and the
  dispatcher accepts connections there, starts a tf.data worker at this
  worker's host. Gives up, saying so, after `timeout_secs` without it."""

  host = tf_config.parse_address(own_address)[0]

  def start():
    deadline = clock() + timeout_secs
    dispatcher = read_address(model_dir)
    while dispatcher is None or not job_end.listening(dispatcher):
      if clock() > deadline:
        log("error: no tf.data service dispatcher %s within %d s: this "
            "worker serves no data." % (
                "at " + dispatcher if dispatcher else "address (%s)" %
                address_path(model_dir), timeout_secs))
        return
      sleep(POLL_SECS)
      dispatcher = read_address(model_dir)
    server = tf.data.experimental.service.WorkerServer(
        tf.data.experimental.service.WorkerConfig(
            dispatcher_address=dispatcher,
            worker_address=host + ":%port%",
            heartbeat_interval_ms=HEARTBEAT_MS))
    _SERVERS.append(server)
    log("Data: a tf.data service worker serves at %s for the dispatcher "
        "at %s." % (host, dispatcher))

  threading.Thread(target=start, name="data-service-worker",
                   daemon=True).start()
