"""The optimizers `--optimizer` names, and a lazy Adam for sparse gradients.

A hub text model's embedding table receives a sparse gradient (an
`IndexedSlices`: the rows of the batch's words). TF1's `AdamOptimizer`
(the one Estimator's `model_fn` uses) still decays both of its slot tables,
`m` and `v`, and updates the whole variable, densely, on every step: a
step's cost grows with the table, not the batch (measured in
docs/performance.md: 54 times slower at 1M rows than at 10k).

`LazyAdamOptimizer` updates, for a sparse gradient, only the rows it
touches: their `m` and `v`, then those rows of the variable, with the same
bias-corrected step size as Adam. Dense gradients (every other variable)
get Adam's own dense update, unchanged. The difference from Adam is only in
rows a step does not touch: Adam keeps moving them (their momentum decays
and is still applied); lazy Adam leaves them as they are until a batch
touches them again, and their moments decay only then, by one step, not by
the steps in between. That is the same rule as TF1 contrib's
`LazyAdamOptimizer` and tensorflow-addons' `LazyAdam`; the latter is a
Keras optimizer (not a `tf.compat.v1.train.Optimizer`, which `minimize` in
a `model_fn` with a global step needs), and both projects are gone
(contrib with TF 2.0, addons end-of-life), so the harness carries its own.
"""

import tensorflow as tf
from tensorflow.python.ops import resource_variable_ops  # pylint: disable=g-direct-tensorflow-import


class LazyAdamOptimizer(tf.compat.v1.train.AdamOptimizer):
  """Adam, but a sparse gradient updates only the rows it touches."""

  def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999,
               epsilon=1e-8, use_locking=False, name="LazyAdam"):
    super().__init__(learning_rate=learning_rate, beta1=beta1, beta2=beta2,
                     epsilon=epsilon, use_locking=use_locking, name=name)

  def _sparse_step(self, var):
    """(step size, beta1, beta2, epsilon) for `var`'s dtype, as Adam's."""
    dtype = var.dtype.base_dtype
    beta1_power, beta2_power = self._get_beta_accumulators()
    beta1_power = tf.cast(beta1_power, dtype)
    beta2_power = tf.cast(beta2_power, dtype)
    beta1 = tf.cast(self._beta1_t, dtype)
    beta2 = tf.cast(self._beta2_t, dtype)
    step = (tf.cast(self._lr_t, dtype) * tf.sqrt(1 - beta2_power) /
            (1 - beta1_power))
    return step, beta1, beta2, tf.cast(self._epsilon_t, dtype)

  def _resource_apply_sparse(self, grad, var, indices):
    # Indices arrive deduplicated (Optimizer sums repeated rows first).
    step, beta1, beta2, epsilon = self._sparse_step(var)
    m, v = self.get_slot(var, "m"), self.get_slot(var, "v")
    m_rows = beta1 * m.sparse_read(indices) + (1 - beta1) * grad
    v_rows = beta2 * v.sparse_read(indices) + (1 - beta2) * tf.square(grad)
    m_update = resource_variable_ops.resource_scatter_update(
        m.handle, indices, m_rows)
    v_update = resource_variable_ops.resource_scatter_update(
        v.handle, indices, v_rows)
    var_update = resource_variable_ops.resource_scatter_sub(
        var.handle, indices, step * m_rows / (tf.sqrt(v_rows) + epsilon))
    return tf.group(var_update, m_update, v_update)

  def _apply_sparse(self, grad, var):
    # Reference (non-resource) variables: the same, with their scatter ops.
    step, beta1, beta2, epsilon = self._sparse_step(var)
    m, v = self.get_slot(var, "m"), self.get_slot(var, "v")
    indices = grad.indices
    m_rows = beta1 * tf.gather(m, indices) + (1 - beta1) * grad.values
    v_rows = (beta2 * tf.gather(v, indices) +
              (1 - beta2) * tf.square(grad.values))
    m_update = tf.compat.v1.scatter_update(m, indices, m_rows,
                                           use_locking=self._use_locking)
    v_update = tf.compat.v1.scatter_update(v, indices, v_rows,
                                           use_locking=self._use_locking)
    var_update = tf.compat.v1.scatter_sub(
        var, indices, step * m_rows / (tf.sqrt(v_rows) + epsilon),
        use_locking=self._use_locking)
    return tf.group(var_update, m_update, v_update)


# `--optimizer` -> the class (trainer.config.job.OPTIMIZERS names them).
OPTIMIZERS = {
    "lazy_adam": LazyAdamOptimizer,
    "adam": tf.compat.v1.train.AdamOptimizer,
    "adagrad": tf.compat.v1.train.AdagradOptimizer,
    "rmsprop": tf.compat.v1.train.RMSPropOptimizer,
    "sgd": tf.compat.v1.train.GradientDescentOptimizer,
}
