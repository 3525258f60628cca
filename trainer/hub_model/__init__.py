"""The hub model: fetched once, inspected before training, called the same way.

  handles.py     handles as users write them (paths, URLs, archives,
                 gs://), resolved once to a local directory
  model_spec.py  what the model is (TF2 or TF1 Hub format), its inputs and
                 outputs, how to call it; the pre-flight's model check
  hub_layer.py   calling its hub.KerasLayer, the same on both backends
  user_model.py  a model of the user's own around it (--model, --model_fn):
                 imported, called and checked

`python -m trainer.fetch` (trainer/fetch.py) is the command for handles.py.
Imports harness only: the model is described by what the user passed
(trainer.config's ModelOptions are handed in as plain values).
"""
