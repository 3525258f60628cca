"""What the Keras backend trains and checkpoints: the model, its optimizer
and the global step, and how they are saved and restored.

A checkpoint (tf.train.Checkpoint, written by a CheckpointManager as
MODEL_DIR/model.ckpt-STEP, like the Estimator's) tracks:

* `model_variables`: a dict of every model variable under its Estimator
  name (trainer.keras.model.variables_by_name), so that its keys say what
  each variable is (trainer.training.warm_start reads them by name);
* `optimizer`: its slots and its `iterations`, which is the global step.

`tf.train.latest_checkpoint(MODEL_DIR)` names the latest, as for the
Estimator; a restarted chief restores exactly that one. The names do not
depend on what else the process built (trainer.hub_model.user_model.build),
and `restore` is strict both ways: a model variable the checkpoint has no
value for, or a value of the checkpoint that no model variable takes, is
an error naming both, never a model left partly at its initial values.
"""

import dataclasses
from typing import Dict, List, Optional

import tensorflow as tf

from harness import errors
from trainer.config import job as job_lib
from trainer.hub_model import model_spec as model_spec_lib
from trainer.hub_model import user_model as user_model_lib
from trainer.keras import model as model_lib
from trainer.keras import optimizers
from trainer.training import warm_start as warm_start_lib

CHECKPOINT_NAME = "model.ckpt"


@dataclasses.dataclass
class State:
  """A model, its optimizer, and the checkpoint that holds both."""
  model: model_lib.Model
  optimizer: Optional[object]  # A tf_keras legacy optimizer.
  checkpoint: tf.train.Checkpoint
  variables: Dict[str, tf.Variable]

  @property
  def step(self) -> tf.Variable:
    """The global step: the number of steps the optimizer applied."""
    return self.optimizer.iterations


def create(spec: model_spec_lib.ModelSpec, head: job_lib.HeadConfig, *,
           with_optimizer: bool = True,
           user: Optional[user_model_lib.UserModel] = None) -> State:
  """Builds the model (the user's, where `user`; and the optimizer) in the
  current strategy's scope."""
  model = model_lib.build(spec, head, user)
  variables = model_lib.variables_by_name(model)
  optimizer = (optimizers.make(head.optimizer, head.learning_rate)
               if with_optimizer else None)
  tracked = {"model_variables": variables}
  if optimizer is not None:
    create_slots(optimizer, model)
    tracked["optimizer"] = optimizer
  return State(model=model, optimizer=optimizer,
               checkpoint=tf.train.Checkpoint(**tracked),
               variables=variables)


def create_slots(optimizer, model: model_lib.Model) -> None:
  """Creates the optimizer's variables now: its `iterations` (so that every
  checkpoint holds the global step), hyperparameters and slots. Left to
  the first `apply_gradients`, they are made while the step function is
  traced, and TF then traces it a second time (a tf.function that creates
  variables is traced again to check it makes no more): with the digits
  model the chief's first step came 12.3 s after it was scheduled, 2 traces
  in a thread of TF's. The legacy optimizers have no public `build` (the
  new ones do); `_create_all_weights` is what their `apply_gradients`
  calls, and what tf_keras's own weight loading calls first."""
  optimizer._create_all_weights(model.trainable_variables)  # pylint: disable=protected-access


def manager(state: State, model_dir: str,
            keep_checkpoint_max: int) -> tf.train.CheckpointManager:
  return tf.train.CheckpointManager(
      state.checkpoint, model_dir, max_to_keep=keep_checkpoint_max,
      checkpoint_name=CHECKPOINT_NAME)


def restore(state: State, path: str) -> None:
  """Restores `path` into `state`: every model variable, and the optimizer
  where `state` has one.

  Raises:
    errors.CheckpointMismatchError: a model variable the checkpoint holds
      no value for, or a value of the checkpoint that no model variable
      takes (a model built otherwise than the one trained), each named.
    tf.errors.NotFoundError: the checkpoint is gone.
  """
  saved = warm_start_lib.saved_variables(path)
  missing = sorted(set(state.variables) - set(saved))
  unused = sorted(set(saved) - set(state.variables))
  if missing or unused:
    raise errors.CheckpointMismatchError(
        "Checkpoint %s does not hold this model's variables: %s; nothing "
        "was restored. Is the model built as it was for training (the same "
        "flags, the same model code)?" % (path, "; ".join(
            part for part in (
                _named("the model has", missing, "that the checkpoint "
                       "lacks"),
                _named("the checkpoint has", unused, "that the model "
                       "lacks")) if part)))
  status = state.checkpoint.restore(path)
  status.assert_existing_objects_matched()
  if state.optimizer is None:
    # Evaluation and export: the checkpoint's optimizer (its slots, its
    # iterations, its hyperparameters) and save counter are the one
    # expected difference; every model variable was checked above.
    status.expect_partial()


def _named(side: str, names: List[str], what: str) -> str:
  if not names:
    return ""
  shown = ", ".join(names[:8]) + (" and %d more" % (len(names) - 8)
                                  if len(names) > 8 else "")
  return "%s %d variable(s) %s (%s)" % (side, len(names), what, shown)
