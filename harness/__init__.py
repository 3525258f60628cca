"""What the trainer, the cluster code and the example kit share.

A leaf: it imports nothing else of this project, and no TensorFlow, so that
every entry point can use it before (or without) loading TF.

* `errors`: the harness's exceptions.
* `tf_config`: task types, and TF_CONFIG parsed and checked.
* `cli`: flag parsing and error reporting for entry points.
"""
