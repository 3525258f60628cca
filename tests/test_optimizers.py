"""trainer.estimator.optimizers: lazy Adam touches only the rows of a sparse gradient,
and is Adam everywhere else."""

import numpy as np
import pytest
import tensorflow as tf

from trainer.config import job
from trainer.estimator import optimizers

pytestmark = pytest.mark.estimator  # tf.estimator (tests/conftest.py)

LR, B1, B2, EPS = 0.1, 0.9, 0.999, 1e-8


def _run_steps(optimizer_class, grads, rows=6, dim=3, resource=True):
  """Applies gradients [(indices, values) or dense array] step by step;
  returns (variable, m, v) after every step."""
  initial = np.arange(rows * dim, dtype=np.float32).reshape(rows, dim) / 10
  with tf.Graph().as_default():
    var = tf.compat.v1.Variable(initial, use_resource=resource)
    optimizer = optimizer_class(LR, beta1=B1, beta2=B2, epsilon=EPS)
    indices = tf.compat.v1.placeholder(tf.int32, [None])
    values = tf.compat.v1.placeholder(tf.float32, [None, dim])
    dense = tf.compat.v1.placeholder(tf.float32, [rows, dim])
    sparse_step = optimizer.apply_gradients([(tf.IndexedSlices(
        values, indices, tf.constant([rows, dim])), var)])
    dense_step = optimizer.apply_gradients([(dense, var)])
    m, v = optimizer.get_slot(var, "m"), optimizer.get_slot(var, "v")
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      states = []
      for grad in grads:
        if isinstance(grad, tuple):
          session.run(sparse_step, {indices: grad[0], values: grad[1]})
        else:
          session.run(dense_step, {dense: grad})
        states.append(session.run([var, m, v]))
  return initial, states


@pytest.mark.parametrize("resource", [True, False])
def test_lazy_adam_updates_only_the_rows_a_step_touches(resource):
  rng = np.random.RandomState(0)
  g1 = rng.randn(2, 3).astype(np.float32)
  g2 = rng.randn(1, 3).astype(np.float32)
  initial, states = _run_steps(optimizers.LazyAdamOptimizer,
                               [([1, 4], g1), ([4], g2)], resource=resource)
  (var1, m1, v1), (var2, m2, v2) = states
  # Step 1, rows 1 and 4: Adam's first step on exactly those rows.
  step1 = LR * np.sqrt(1 - B2) / (1 - B1)
  expected_m, expected_v = (1 - B1) * g1, (1 - B2) * g1 ** 2
  np.testing.assert_allclose(m1[[1, 4]], expected_m, rtol=1e-4)
  np.testing.assert_allclose(v1[[1, 4]], expected_v, rtol=1e-4)
  np.testing.assert_allclose(
      var1[[1, 4]], initial[[1, 4]] - step1 * expected_m / (
          np.sqrt(expected_v) + EPS), rtol=1e-4)
  untouched = [0, 2, 3, 5]
  np.testing.assert_array_equal(var1[untouched], initial[untouched])
  assert not m1[untouched].any() and not v1[untouched].any()
  # Step 2, row 4 only: row 1 keeps its values and its moments as they were.
  np.testing.assert_array_equal(var2[1], var1[1])
  np.testing.assert_array_equal(m2[1], m1[1])
  step2 = LR * np.sqrt(1 - B2 ** 2) / (1 - B1 ** 2)
  m_row = B1 * m1[4] + (1 - B1) * g2[0]
  v_row = B2 * v1[4] + (1 - B2) * g2[0] ** 2
  np.testing.assert_allclose(m2[4], m_row, rtol=1e-4)
  np.testing.assert_allclose(var2[4], var1[4] - step2 * m_row / (
      np.sqrt(v_row) + EPS), rtol=1e-4)


def test_dense_adam_moves_rows_the_gradient_never_touched():
  """Why lazy Adam: dense Adam's cost (and effect) is on every row."""
  rng = np.random.RandomState(0)
  _, states = _run_steps(tf.compat.v1.train.AdamOptimizer,
                         [([1], rng.randn(1, 3).astype(np.float32)),
                          ([4], rng.randn(1, 3).astype(np.float32))])
  (var1, _, _), (var2, m2, _) = states
  assert not np.allclose(var2[1], var1[1])  # Row 1 moved on step 2 ...
  assert np.abs(m2[1]).sum() > 0  # ... by its decayed momentum.


def test_repeated_rows_are_summed_first():
  g = np.ones([3, 3], np.float32)
  _, lazy = _run_steps(optimizers.LazyAdamOptimizer, [([2, 2, 5], g)])
  _, summed = _run_steps(optimizers.LazyAdamOptimizer,
                         [([2, 5], np.array([[2] * 3, [1] * 3], np.float32))])
  for got, want in zip(lazy[0], summed[0]):
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_dense_gradients_are_adams_own():
  rng = np.random.RandomState(1)
  grads = [rng.randn(6, 3).astype(np.float32) for _ in range(4)]
  _, lazy = _run_steps(optimizers.LazyAdamOptimizer, grads)
  _, adam = _run_steps(tf.compat.v1.train.AdamOptimizer, grads)
  for lazy_state, adam_state in zip(lazy, adam):
    for got, want in zip(lazy_state, adam_state):
      np.testing.assert_array_equal(got, want)


def test_the_flag_names_every_optimizer_and_lazy_adam_is_the_default():
  assert tuple(optimizers.OPTIMIZERS) == job.OPTIMIZERS
  assert job.HeadConfig(n_classes=2).optimizer == "lazy_adam"
