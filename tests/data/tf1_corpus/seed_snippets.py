"""The TF1 side of the TF Hub migration guide's examples, as functions.

From "Migrando de TF1 para TF2 com TensorFlow Hub" (the project's seed):
each function holds one snippet of the guide, with its `...` filled in.
"""

import tensorflow as tf
import tensorflow_hub as hub


def signature_outputs(handle, x1, x2):
  """'Usando APIs de nivel inferior': a legacy model's signature, outputs
  as a dict."""
  # DEPRECATED: TensorFlow 1
  m = hub.Module(handle, tags={"foo", "bar"})
  tensors_out_dict = m(dict(x1=x1, x2=x2), signature="sig", as_dict=True)
  return tensors_out_dict


def legacy_layer(handle, tensor_in):
  """'Carregando modelos legados no formato TF1 Hub': a legacy model called
  on a tensor."""
  m = hub.Module(handle, tags={"foo", "bar"})
  tensor_out = m(tensor_in)
  return tensor_out


def estimator(model_fn, model_dir):
  """'Usando a nova API no treinamento do Estimator': the session config
  a TF2 SavedModel needs on parameter servers, as TF 1.15 spelled it."""
  session_config = tf.compat.v1.ConfigProto()
  session_config.experimental.share_cluster_devices_in_session = True
  run_config = tf.estimator.RunConfig(model_dir=model_dir,
                                      session_config=session_config)
  return tf.estimator.Estimator(model_fn=model_fn, config=run_config)
