"""Warm start on the Estimator backend (trainer.training.warm_start): the
model's variables by name, and Estimator's `WarmStartSettings`."""

import re
from typing import Dict, List, Optional

import tensorflow as tf

from trainer.config import job as job_lib
from trainer.estimator import model as model_lib
from trainer.hub_model import model_spec as model_spec_lib
from trainer.hub_model import user_model as user_model_lib
from trainer.training import warm_start as warm_start_lib


def model_variables(spec: model_spec_lib.ModelSpec, head: job_lib.HeadConfig,
                    user: Optional[user_model_lib.UserModel] = None
                    ) -> Dict[str, List[int]]:
  """name -> shape of the model's variables (hub model and head, or the
  user's Keras model), from its graph for evaluation (no optimizer slots
  there)."""
  inputs = user.serving_inputs if user else spec.inputs
  with tf.Graph().as_default() as graph:
    step = tf.compat.v1.train.get_or_create_global_step()
    features = {name: tf.compat.v1.placeholder(s.dtype, s.shape)
                for name, s in inputs.items()}
    labels = tf.compat.v1.placeholder(
        tf.int64 if head.n_classes else tf.float32, [None])
    model_lib.make_model_fn(spec, head, user)(features, labels,
                                              tf.estimator.ModeKeys.EVAL)
    return {v.op.name: v.shape.as_list() for v in graph.get_collection(
        tf.compat.v1.GraphKeys.GLOBAL_VARIABLES)
            if v.op.name not in (step.op.name, "save_counter")}


def settings(checkpoint: str,
             names: List[str]) -> tf.estimator.WarmStartSettings:
  """Exactly these variables, from exactly this checkpoint (of either
  backend: a Keras backend checkpoint's keys are mapped to the names)."""
  # A list selects from all global variables (a single string would only
  # see TRAINABLE_VARIABLES, which hub.KerasLayer does not fill); each name
  # is matched whole ("dense1/kernel:0").
  reader = tf.train.load_checkpoint(checkpoint)
  previous = {name: warm_start_lib.KERAS_PREFIX + warm_start_lib.escape(
      name) + warm_start_lib.KERAS_SUFFIX for name in names
              if not reader.has_tensor(name)}
  return tf.estimator.WarmStartSettings(
      ckpt_to_initialize_from=checkpoint,
      vars_to_warm_start=["^%s:" % re.escape(name) for name in names],
      var_name_to_prev_var_name=previous or None)
