"""The optimizers `--optimizer` names, as Keras 2 legacy optimizers.

Parameter-server training needs the `tf_keras.optimizers.legacy` ones
(the TF tutorial uses them; Keras 3's do not support it). Their names and
learning rates are the Estimator backend's (trainer.estimator.optimizers).

`LazyAdam` is the Keras form of the Estimator's lazy Adam: for a sparse
gradient (a hub text model's embedding rows) it updates only the rows of
the batch, their `m` and `v` and then those rows of the variable, with
Adam's bias-corrected step; Keras' Adam, like TF1's, decays both slot
tables and moves every row on every step, so a step costs what the table
costs. Dense gradients get Adam's own update, unchanged.
"""

import tensorflow as tf
import tf_keras

_Legacy = tf_keras.optimizers.legacy


class LazyAdam(_Legacy.Adam):
  """Adam, but a sparse gradient updates only the rows it touches."""

  def __init__(self, learning_rate=0.001, name="LazyAdam", **kwargs):
    super().__init__(learning_rate=learning_rate, name=name, **kwargs)

  def _resource_apply_sparse(self, grad, var, indices, apply_state=None):
    # Indices arrive deduplicated (OptimizerV2 sums repeated rows first).
    var_device, var_dtype = var.device, var.dtype.base_dtype
    coefficients = ((apply_state or {}).get((var_device, var_dtype)) or
                    self._fallback_apply_state(var_device, var_dtype))
    m, v = self.get_slot(var, "m"), self.get_slot(var, "v")
    beta_1, beta_2 = coefficients["beta_1_t"], coefficients["beta_2_t"]
    m_rows = beta_1 * tf.gather(m, indices) + (1 - beta_1) * grad
    v_rows = beta_2 * tf.gather(v, indices) + (1 - beta_2) * tf.square(grad)
    m_update = m.scatter_update(tf.IndexedSlices(m_rows, indices))
    v_update = v.scatter_update(tf.IndexedSlices(v_rows, indices))
    # coefficients["lr"] is Adam's bias-corrected step size.
    var_update = var.scatter_sub(tf.IndexedSlices(
        coefficients["lr"] * m_rows / (tf.sqrt(v_rows) +
                                       coefficients["epsilon"]), indices))
    return tf.group(var_update, m_update, v_update)


# `--optimizer` -> the class (trainer.config.job.OPTIMIZERS names them).
OPTIMIZERS = {
    "lazy_adam": LazyAdam,
    "adam": _Legacy.Adam,
    "adagrad": _Legacy.Adagrad,
    "rmsprop": _Legacy.RMSprop,
    "sgd": _Legacy.SGD,
}


def make(name: str, learning_rate: float):
  return OPTIMIZERS[name](learning_rate=learning_rate)
