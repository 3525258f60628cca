"""A cluster of TF gRPC servers inside the current process, for fast tests.

  servers = InProcessCluster(num_workers=1, num_ps=1)
  with tf.compat.v1.Session(servers.target("worker", 0), config=...) as s:
    ...

Each server listens on a port from portpicker. A port taken between
picking and binding makes TF raise "Could not start gRPC server"; the whole
cluster is then set up again on fresh ports, up to `attempts` times.
TF cannot stop an in-process server: they live until the process exits.
"""

import tensorflow as tf

from cluster.launcher import ports as ports_lib
from harness import errors
from harness import tf_config


class InProcessCluster:
  """ps and worker servers (no chief) started in this process.

  They run no tf.data service workers: a Keras-backend chief that uses
  them reads with `data_service=False` (--nodata_service), every worker
  every file; a local multi-process cluster (cluster.local) has the
  service."""

  def __init__(self, num_workers: int = 1, num_ps: int = 1,
               attempts: int = 3, inter_op_threads: int = 0):
    """`inter_op_threads`: each server's inter-op thread pool (0: TF's
    default). TF2's parameter-server training in one process needs at least
    num_workers + 1 on a 2-core machine, or its first step hangs (as TF's
    own tutorial's in-process cluster sets)."""
    config = tf.compat.v1.ConfigProto(
        inter_op_parallelism_threads=inter_op_threads)
    last_error = None
    for _ in range(attempts):
      ports = iter(ports_lib.pick_ports(num_workers + num_ps))
      self.cluster = {
          tf_config.WORKER: ["localhost:%d" % next(ports)
                        for _ in range(num_workers)],
          tf_config.PS: ["localhost:%d" % next(ports) for _ in range(num_ps)],
      }
      try:
        self.servers = {
            job: [tf.distribute.Server(self.cluster_spec, job_name=job,
                                       task_index=i, config=config,
                                       start=True)
                  for i in range(len(addresses))]
            for job, addresses in self.cluster.items()}
        return
      except tf.errors.UnknownError as e:  # Could not start gRPC server.
        last_error = e
    raise errors.ClusterError("Could not start an in-process cluster in %d "
                              "attempts: %s" % (attempts, last_error))

  @property
  def cluster_spec(self) -> tf.train.ClusterSpec:
    return tf.train.ClusterSpec(self.cluster)

  def target(self, job: str, index: int = 0) -> str:
    """The session target ('grpc://localhost:PORT') of one server."""
    return self.servers[job][index].target
