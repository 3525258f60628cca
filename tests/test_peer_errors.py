"""trainer.training.peer_errors: which TF errors only mean that a peer
restarted."""

import json
import types

import pytest
import tensorflow as tf

from harness import exit_codes
from trainer import task
from trainer.config import backends
from trainer.config import cli
from trainer.training import peer_errors

E = tf.errors
PEER = [
    (E.UnavailableError, "Socket closed"),
    (E.UnavailableError, "failed to connect to all addresses"),
    (E.AbortedError, "Session handle is not found: 1a2b"),
    (E.AbortedError, "Graph handle is not found: 00f"),
    (E.AbortedError, "RecvTensor expects a different device incarnation: 7"),
    (E.CancelledError, "RunManyGraphs was cancelled"),
    (E.DeadlineExceededError, "Deadline Exceeded"),
    (E.FailedPreconditionError, "Attempting to use uninitialized variables: "
     "dense1/kernel/LazyAdam"),
    (E.FailedPreconditionError, "Attempting to use uninitialized parameters: "
     "logits/kernel"),
    (E.FailedPreconditionError, "Error while reading resource variable "
     "dense1/kernel from Container: localhost. This could mean that the "
     "variable was uninitialized."),
    (E.NotFoundError, "Resource localhost/dense1/kernel/N10tensorflow3VarE "
     "does not exist."),
]
REAL = [
    (E.InvalidArgumentError, "Incompatible shapes: [32,64] vs. [32,10]"),
    (E.FailedPreconditionError, "Table not initialized."),
    (E.NotFoundError, "/data/train.tfrecord; No such file or directory"),
    (E.ResourceExhaustedError, "OOM when allocating tensor"),
    (E.InternalError, "Failed to call ThenRnnForward"),
]


@pytest.mark.parametrize("kind,message", PEER)
def test_a_peer_restart_is_recognized_on_a_cluster(kind, message):
  error = kind(None, None, message)
  assert peer_errors.restarted_peer(error, on_cluster=True) == "%s: %s" % (
      kind.__name__, message)
  # In one process there is no peer: the same error is a real one.
  assert peer_errors.restarted_peer(error, on_cluster=False) is None


@pytest.mark.parametrize("kind,message", REAL)
def test_real_errors_are_not(kind, message):
  assert peer_errors.restarted_peer(kind(None, None, message),
                                    on_cluster=True) is None
  assert peer_errors.restarted_peer(ValueError(message), True) is None


WORKER = json.dumps({"cluster": {"chief": ["h:1"], "worker": ["h:2"],
                                 "ps": ["h:3"]},
                     "task": {"type": "worker", "index": 0}})


def _run_raising(assets, tmp_path, monkeypatch, error, capsys):
  def fail(*args, **kwargs):
    raise error
  chosen = backends.load
  monkeypatch.setattr(backends, "load", lambda choice: types.SimpleNamespace(
      run=fail, connect=lambda config, ps_shard_bytes: None,
      model_variables=chosen(choice).model_variables,
      check_model=chosen(choice).check_model))
  # A Keras worker only serves (trainer.config.backends.only_serves).
  monkeypatch.setattr(backends, "load_server",
                      lambda choice: types.SimpleNamespace(serve=fail))
  fv = cli.new_flag_values([
      "--module_handle=" + assets.digits_model, "--n_classes=5",
      "--train_files=" + assets.data("digits_train.tfrecord"),
      "--eval_files=" + assets.data("digits_eval.tfrecord"),
      "--model_dir=" + str(tmp_path / "model"), "--novalidate_data"])
  code = task.run(fv, environ={"TF_CONFIG": WORKER})
  return code, capsys.readouterr().err.strip().splitlines()


def test_the_task_exits_so_that_it_is_restarted(assets, tmp_path,
                                                monkeypatch, capsys):
  error = E.FailedPreconditionError(
      None, None, "Attempting to use uninitialized variables: dense1/kernel")
  code, err = _run_raising(assets, tmp_path, monkeypatch, error, capsys)
  assert code == exit_codes.PEER_RESTARTED == 200
  assert err[-1] == (
      "worker-0: a peer task restarted (FailedPreconditionError: Attempting "
      "to use uninitialized variables: dense1/kernel); exiting with code "
      "200, which the restart policy retries.")


def test_a_real_error_still_fails_the_task(assets, tmp_path, monkeypatch,
                                           capsys):
  error = E.InvalidArgumentError(None, None, "Incompatible shapes")
  with pytest.raises(E.InvalidArgumentError):
    _run_raising(assets, tmp_path, monkeypatch, error, capsys)
