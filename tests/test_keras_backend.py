"""The Keras backend's own parts: lazy Adam's sparse rule, the variable
names that bridge to the Estimator's checkpoints, whole variables placed
by size, a parameter-server cluster in this process (with a table split
over its ps), and flags.txt saying which backend ran."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import portpicker
import pytest
import tensorflow as tf

from trainer.config import job as job_lib
from trainer.keras import model as model_lib
from trainer.keras import optimizers
from trainer.keras import partitioning
from trainer.keras import placement
from trainer.training import warm_start

pytestmark = pytest.mark.keras
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_lazy_adam_moves_only_the_rows_of_the_batch():
  table = tf.Variable(np.ones([6, 3], np.float32))
  dense = tf.Variable(np.ones([6, 3], np.float32))
  lazy, adam = optimizers.LazyAdam(0.1), optimizers.OPTIMIZERS["adam"](0.1)
  rows = tf.constant([1, 4, 1])  # Row 1 twice: its gradients add up.
  for step in range(3):
    grad = tf.IndexedSlices(tf.fill([3, 3], 0.5 + step), rows, [6, 3])
    lazy.apply_gradients([(grad, table)])
    adam.apply_gradients([(grad, dense)])
  untouched = [0, 2, 3, 5]
  np.testing.assert_array_equal(table.numpy()[untouched], 1.0)
  np.testing.assert_array_equal(lazy.get_slot(table, "m").numpy()[untouched],
                                0.0)
  # Rows a step touches every time move exactly as Adam moves them.
  np.testing.assert_allclose(table.numpy()[[1, 4]], dense.numpy()[[1, 4]],
                             rtol=1e-6)
  assert not np.allclose(table.numpy()[[1, 4]], 1.0)


def test_the_optimizers_are_the_estimators():
  assert set(optimizers.OPTIMIZERS) == set(job_lib.OPTIMIZERS)


def test_model_variables_carry_the_estimators_names(assets):
  # pylint: disable=g-import-not-at-top
  from trainer.hub_model import model_spec
  from trainer.keras import model as model_lib
  # pylint: enable=g-import-not-at-top
  spec = model_spec.inspect_model(assets.digits_model, trainable=True)
  shapes = model_lib.model_variables(
      spec, job_lib.HeadConfig(n_classes=5, hidden_units=(8,)))
  assert shapes == {
      "batch_norm/beta": [64], "batch_norm/gamma": [64],
      "batch_norm/moving_mean": [64], "batch_norm/moving_variance": [64],
      "dense1/bias": [64], "dense1/kernel": [64, 64], "dense2/bias": [32],
      "dense2/kernel": [64, 32], "hidden_0/bias": [8],
      "hidden_0/kernel": [32, 8], "logits/bias": [5], "logits/kernel": [8, 5]}


def test_class_weights_scale_each_examples_loss():
  """--class_weights on the Keras backend: as the Estimator's
  (tests/test_model_fn.py), each example's cross-entropy times its class's
  weight, then the mean; a regression's loss is left as it is."""
  logits = tf.constant(np.random.RandomState(0).randn(6, 3), tf.float32)
  labels = tf.constant([0, 1, 2, 2, 1, 0], tf.int64)
  weights = (1.0, 3.0, 0.5)
  each = tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=labels, logits=logits).numpy()
  weighted = model_lib.data_loss(logits, labels, job_lib.HeadConfig(
      n_classes=3, class_weights=weights))
  np.testing.assert_allclose(
      weighted, (each * np.asarray(weights)[labels.numpy()]).mean(),
      rtol=1e-6)
  plain = model_lib.data_loss(logits, labels, job_lib.HeadConfig(n_classes=3))
  np.testing.assert_allclose(plain, each.mean(), rtol=1e-6)


def test_the_escaping_of_checkpoint_keys_round_trips():
  for name in ("dense1/kernel", "a.b/c..d", "embeddings", "x.S/y"):
    assert warm_start.unescape(warm_start.escape(name)) == name


def test_whole_variables_go_to_the_lightest_ps_once_each_has_an_anchor():
  """trainer.keras.placement.Loads: until every ps holds a variable, TF's
  round-robin places the next (no anchor to colocate with); then the ps
  with the fewest bytes, the first of a tie."""
  loads = placement.Loads(3)
  assert loads.target() is None
  loads.add(0, 16384, "kernel-1")  # Round-robin: one to each ps.
  loads.add(1, 256, "bias-1")
  assert loads.target() is None
  loads.add(2, 256, "bias-2")
  assert loads.target() == "bias-1"  # ps-1 and ps-2 tie at 256: ps-1.
  loads.add(1, 8192, "kernel-2")
  assert loads.target() == "bias-2" and loads.bytes == [16384, 8448, 256]
  loads.add(2, 32, "kernel-3")  # Counted; the anchor stays the first.
  assert loads.anchors == {0: "kernel-1", 1: "bias-1", 2: "bias-2"}


@pytest.mark.slow
def test_an_in_process_cluster_trains_with_variables_on_the_ps(assets,
                                                               tmp_path):
  """The chief's part of a real parameter-server cluster: two workers and
  two ps serving in one process (each with inter-op threads for every
  worker and itself: on 2 cores TF's default hangs the first step). In a
  process of its own: a process's eager context joins one cluster, once
  (trainer.keras.cluster)."""
  lines = _inprocess_chief(assets, str(tmp_path / "model"))
  placed = [line for line in lines if line.startswith("Variables placed: ")]
  assert placed and "ps-0" in placed[0] and "ps-1" in placed[0], lines
  # By size (trainer.keras.placement): the digits model's kernels, 16 KB
  # and 8 KB, on different ps. TF's round-robin put both on one: 18 KB and
  # 9 KB, a ratio of 2.
  kb = [int(n) for n in re.findall(r"ps-\d (\d+) KB", placed[0])]
  assert len(kb) == 2 and max(kb) / min(kb) < 1.6, placed[0]
  assert lines[-1] == "checkpoint model.ckpt-60"
  assert warm_start.global_step(str(tmp_path / "model")) == 60
  exported = tf.saved_model.load(os.path.join(str(tmp_path / "model"),
                                              "export"))
  probabilities = exported.signatures["serving_default"](
      inputs=tf.zeros([2, 64]))["probabilities"].numpy()
  np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.slow
def test_a_chief_reports_bad_data_before_it_waits_for_its_cluster(assets,
                                                                   tmp_path):
  """The Keras chief's pre-flight comes before it joins its cluster
  (trainer.keras.cluster): with no worker or ps up, a missing data file is
  still its one-line report and exit 1, not a wait for the cluster (nor a
  restart, exit 200)."""
  cluster = {job: ["localhost:%d" % portpicker.pick_unused_port()]
             for job in ("chief", "worker", "ps")}  # Nothing listens there.
  missing = str(tmp_path / "missing.tfrecord")
  proc = subprocess.run(
      [sys.executable, "-m", "trainer.task", "--backend=keras",
       "--module_handle=" + assets.digits_model, "--n_classes=5",
       "--train_files=" + missing, "--model_dir=" + str(tmp_path / "model")],
      cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
      env=dict(os.environ, PYTHONPATH=REPO, TF_CONFIG=json.dumps(
          {"cluster": cluster, "task": {"type": "chief", "index": 0}})))
  assert proc.returncode == 1, proc.stderr[-3000:]
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith("error: ") and missing in last, last


def _inprocess_chief(assets, model_dir, *args):
  """The lines tests.keras_inprocess_chief prints (it trains to step 60;
  its pre-flight runs before its join, which on TF 2.15 fails without
  trainer.keras.cluster's two mends)."""
  proc = subprocess.run(
      [sys.executable, "-m", "tests.keras_inprocess_chief", assets.root,
       model_dir, *args], cwd=REPO, capture_output=True, text=True,
      timeout=600, check=False, env=dict(os.environ, PYTHONPATH=REPO))
  assert proc.returncode == 0, proc.stderr[-4000:]
  # The pre-flight's objects were collected before the join: TF did not
  # try to delete their functions on the cluster (trainer.keras.cluster).
  assert "Failed to remove function remotely" not in proc.stderr, (
      proc.stderr[-4000:])
  return proc.stdout.splitlines()


@pytest.mark.slow
def test_a_large_table_of_your_model_is_split_over_the_ps(assets, tmp_path):
  """example_kit/wide_model.py's small 20000 x 16 table (1.25 MB) is split
  in two, one shard on each ps, with its optimizer slots; the hub model's
  own table stays whole (TF cannot run a loaded SavedModel on split
  variables). The checkpoint holds the table and its slots as one variable
  each, and the export, built without the strategy, restores it unsplit,
  values and all: a restore into another number of shards."""
  model_dir = str(tmp_path / "model")
  lines = _inprocess_chief(assets, model_dir, "split")
  placed, = [line for line in lines if line.startswith("Variables placed: ")]
  assert "split: wide/embeddings in 2 " in placed, placed
  with open(os.path.join(model_dir, "placement.json")) as f:
    placement = json.load(f)
  assert sorted(tf.DeviceSpec.from_string(d).task
                for d in placement["wide/embeddings"]) == [0, 1], placement
  assert isinstance(placement["embeddings"], str), placement  # The hub's.
  checkpoint = tf.train.latest_checkpoint(model_dir)
  assert checkpoint.endswith("model.ckpt-60"), checkpoint
  saved = {name: shape for name, shape in tf.train.list_variables(checkpoint)
           if name.startswith("model_variables/wide.Sembeddings/")}
  assert sorted(saved) == [
      "model_variables/wide.Sembeddings/.ATTRIBUTES/VARIABLE_VALUE",
      "model_variables/wide.Sembeddings/.OPTIMIZER_SLOT/optimizer/m/"
      ".ATTRIBUTES/VARIABLE_VALUE",
      "model_variables/wide.Sembeddings/.OPTIMIZER_SLOT/optimizer/v/"
      ".ATTRIBUTES/VARIABLE_VALUE"], saved
  assert set(map(tuple, saved.values())) == {(20000, 16)}, saved
  trained = tf.train.load_variable(
      checkpoint, "model_variables/wide.Sembeddings/.ATTRIBUTES/"
      "VARIABLE_VALUE")
  exported = tf.saved_model.load(os.path.join(model_dir, "export"))
  tables = [v.numpy() for v in exported.model.variables
            if v.shape == (20000, 16)]
  assert len(tables) == 1
  np.testing.assert_array_equal(tables[0], trained)
  assert np.abs(trained).sum() > 0
  probabilities = exported.signatures["serving_default"](
      text=tf.constant(["numpy array sum", "a random sample"]))[
          "probabilities"].numpy()
  np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_the_partitioner_splits_large_variables_except_inside_whole():
  """One shard per ps for a variable over twice the shard bytes, none for a
  small one or inside `whole()` (a hub model's loading, which passes the
  dtype as its enum); no partitioner at 0 bytes or with one ps."""
  split = partitioning.make(256 << 10, num_ps=2)
  assert split((20000, 16), tf.float32) == [2, 1]  # 1.25 MB.
  assert split((100, 16), tf.float32) == [1, 1]
  with partitioning.whole():
    assert split((20000, 16), tf.float32.as_datatype_enum) == [1, 1]
  assert split((20000, 16), tf.float32.as_datatype_enum) == [2, 1]
  assert partitioning.make(0, num_ps=2) is None
  assert partitioning.make(256 << 10, num_ps=1) is None

