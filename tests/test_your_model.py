"""Your own model (`--model`, `--model_fn`) on the harness's data, backends,
checks and outputs (trainer.hub_model.user_model; docs/training.md, "Your
own model").

The worked example (configs/your_model.cfg, example_kit/your_model.py) joins
the hub model's image features with a `shift` column; its label, (digit +
shift) mod 5, needs both. Its clusters and a killed worker are in
tests/test_local_cluster.py and tests/test_faults.py.
"""

import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from cluster.launcher import leftovers
from example_kit import datasets
from harness import errors
from tests import backend_jobs
from tests import launcher
from tests import processes
from trainer import task
from trainer.config import cli
from trainer.config import job as job_lib
from trainer.hub_model import user_model
from trainer.plan import resolve
from trainer.training import eval_events

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, "configs", "your_model.cfg")
# A model that reads both columns, as the worked example does; and two that
# read one each (the claim "neither alone" measured).
MODELS = textwrap.dedent('''
    import tf_keras

    def _head(net):
      net = tf_keras.layers.Dense(64, activation="relu", name="hidden")(net)
      return tf_keras.layers.Dense(5, name="logits")(net)

    def pixels_only(inputs, hub_layer):
      return tf_keras.Model(inputs["pixels"], _head(hub_layer(inputs["pixels"])))

    def shift_only(inputs, hub_layer):
      del hub_layer
      shift = tf_keras.layers.Embedding(5, 8)(inputs["shift"])
      return tf_keras.Model(inputs["shift"], _head(shift))
''')


def _module(tmp_path, monkeypatch, name, text):
  """A module of the user's own, importable as `name`."""
  folder = tmp_path / "user_code"
  folder.mkdir(exist_ok=True)
  (folder / (name + ".py")).write_text(textwrap.dedent(text))
  monkeypatch.syspath_prepend(str(folder))
  return name


def _prepare(args, backend=None):
  """The pre-flight, as python -m trainer.task runs it (in this process)."""
  fv = cli.new_flag_values(list(args) + (
      ["--backend=" + backend] if backend else []))
  return resolve.prepare(fv, None, log=lambda line: None)


def _shifted_args(assets, tmp_path, model):
  return ["--module_handle=" + assets.digits_model, "--model=" + model,
          "--train_files=" + assets.data("shifted_train.tfrecord"),
          "--eval_files=" + assets.data("shifted_eval.tfrecord"),
          "--n_classes=5", "--model_dir=" + str(tmp_path / "model")]


# (module text, MODULE:FUNCTION, the one line's start). Module "{m}" is
# written for each case under its own name.
BAD = [
    ("", "no_colon", "`model`=no_colon is not MODULE:FUNCTION"),
    ("", "not_there_at_all:build",
     "`model`=not_there_at_all:build: there is no module not_there_at_all"),
    ("def other(inputs, hub_layer): pass\n", "{m}:build",
     "`model`={m}:build: module {m} ("),
    ("def build(inputs): pass\n", "{m}:build",
     "`model`={m}:build takes (inputs); it must take (inputs, hub_layer)"),
    ("def build(inputs, hub_layer): return None\n", "{m}:build",
     "`model`={m}:build returned NoneType, not a tf_keras.Model"),
    ("import tf_keras\n"
     "class Mine(tf_keras.Model):\n"
     "  def call(self, x): return x\n"
     "def build(inputs, hub_layer): return Mine()\n", "{m}:build",
     "`model`={m}:build returned a subclassed Mine; return a functional"),
    ("import tf_keras\n"
     "def build(inputs, hub_layer):\n"
     "  out = tf_keras.layers.Dense(3)(hub_layer(inputs['pixels']))\n"
     "  return tf_keras.Model(inputs['pixels'], out)\n", "{m}:build",
     "`model`={m}:build: its model returns shape [None, 3]; the logits must "
     "be [batch, 5] (`n_classes`=5)"),
    ("import tf_keras\n"
     "def build(inputs, hub_layer):\n"
     "  extra = tf_keras.Input([2], name='weather')\n"
     "  net = tf_keras.layers.Concatenate()([hub_layer(inputs['pixels']), "
     "extra])\n"
     "  return tf_keras.Model([inputs['pixels'], extra], "
     "tf_keras.layers.Dense(5)(net))\n", "{m}:build",
     "`model`={m}:build: its model takes weather, which the data does not "
     "have; use the inputs it is given (the columns pixels, shift)"),
]


@pytest.mark.parametrize("text,reference,message", BAD)
def test_a_bad_plug_in_is_one_line_naming_the_setting(
    assets, tmp_path, monkeypatch, text, reference, message):
  name = "user_%d" % BAD.index((text, reference, message))
  if text:
    _module(tmp_path, monkeypatch, name, text)
  reference, message = (s.replace("{m}", name) for s in (reference, message))
  with pytest.raises(errors.FlagError) as raised:
    _prepare(_shifted_args(assets, tmp_path, reference))
  assert str(raised.value).startswith(message), str(raised.value)
  assert "\n" not in str(raised.value)
  assert not (tmp_path / "model").exists()


def test_an_exception_in_your_code_keeps_its_traceback(assets, tmp_path,
                                                       monkeypatch):
  """Raised while importing or building: their traceback, through their own
  file, under one line that says it came from their function."""
  _module(tmp_path, monkeypatch, "user_raises", '''
      def build(inputs, hub_layer):
        raise ValueError("no column called " + "price")
  ''')
  _module(tmp_path, monkeypatch, "user_import_fails",
          "import a_module_nobody_has\n")
  for reference, doing, said in (
      ("user_raises:build", "building the model",
       "ValueError: no column called price"),
      ("user_import_fails:build", "importing user_import_fails",
       "ModuleNotFoundError: No module named 'a_module_nobody_has'")):
    with pytest.raises(user_model.UserCodeError) as raised:
      _prepare(_shifted_args(assets, tmp_path, reference))
    assert str(raised.value) == (
        "`model`=%s raised %s while %s (your code: its traceback is above)."
        % (reference, said, doing))
    module = reference.split(":")[0]
    assert re.search(r'File ".*%s\.py", line \d' % module,
                     raised.value.details), raised.value.details


@pytest.mark.slow
def test_the_command_shows_your_traceback_then_one_line(assets, tmp_path):
  folder = tmp_path / "code"
  folder.mkdir()
  (folder / "mine.py").write_text(
      "def build(inputs, hub_layer):\n  return inputs['nope']\n")
  proc = subprocess.run(
      [sys.executable, "-m", "trainer.task"] +
      _shifted_args(assets, tmp_path, "mine:build"), cwd=str(folder),
      capture_output=True, text=True, timeout=300, check=False,
      env=dict(os.environ, PYTHONPATH=REPO))
  assert proc.returncode == 1, proc.stderr[-3000:]
  lines = processes.our_lines(proc.stderr)
  assert lines[-1] == (
      "error: --model=mine:build raised KeyError: 'nope' while building the "
      "model (your code: its traceback is above).")
  assert "Traceback (most recent call last):" in proc.stderr
  assert re.search(r'File ".*mine\.py", line 2, in build', proc.stderr)
  assert not (tmp_path / "model").exists()


@pytest.mark.parametrize("extra,message", [
    (["--model_fn=m:model_fn"], "Give `model` (a Keras model builder) or "
     "`model_fn` (an Estimator model_fn), not both."),
    (["--input_map=inputs=pixels"], "`input_map` maps data columns to the "
     "hub model's inputs; with `model`"),
    (["--hidden_units=8"], "`hidden_units` builds the harness's head; with "
     "`model`"),
])
def test_settings_of_the_harness_model_are_refused_beside_yours(extra,
                                                                message):
  job = cli.job_config(cli.new_flag_values([
      "--module_handle=/m", "--model=m:build", "--train_files=t",
      "--n_classes=2", "--model_dir=/d"] + extra))
  with pytest.raises(errors.FlagError) as raised:
    job_lib.validate(job)
  assert str(raised.value).startswith(message)


def test_a_model_fn_is_refused_on_the_keras_backend(assets, tmp_path):
  args = _shifted_args(assets, tmp_path, "unused:build")
  args = [a for a in args if not a.startswith("--model=")]
  with pytest.raises(errors.FlagError) as raised:
    _prepare(args + ["--model_fn=legacy:model_fn"], backend="keras")
  assert str(raised.value).startswith(
      "`model_fn`=legacy:model_fn is an Estimator model_fn, and this run's "
      "backend is keras")
  assert "give your Keras model builder as `model`" in str(raised.value)


def test_column_specs_are_what_your_inputs_get(assets):
  """TFRecord by feature kind and length; CSV from its first rows."""
  for name in ("shifted_train.tfrecord", "shifted_train.csv"):
    plan = _prepare(["--module_handle=" + assets.digits_model,
                     "--model=example_kit.your_model:build",
                     "--train_files=" + assets.data(name), "--n_classes=5",
                     "--model_dir=/tmp/unused-your-model"])
    specs = plan.inputs.inputs
    assert specs == {"pixels": tf.TensorSpec([None, 64], tf.float32),
                     "shift": tf.TensorSpec([None], tf.int64)}, name
    assert plan.user_model.used == ("pixels", "shift")
    assert plan.serving_inputs == specs


def _eval_data(assets):
  _, evaluation = datasets.split(
      datasets.digits(datasets.TRANSFER_CLASSES, datasets.TRANSFER_HALF),
      0.5)
  return datasets.shifted(evaluation)


@pytest.mark.slow
@pytest.mark.parametrize("backend", backend_jobs.BACKENDS)
def test_your_model_needs_both_columns_and_gets_them(
    backend, assets, tmp_path, monkeypatch):
  """The worked example trains far above what either column alone gets; its
  export serves the raw columns it uses; flags.txt records --model."""
  _module(tmp_path, monkeypatch, "one_column", MODELS)
  accuracy = {}
  for model in ("example_kit.your_model:build", "one_column:pixels_only",
                "one_column:shift_only"):
    model_dir = tmp_path / model.split(":")[1]
    fv = cli.new_flag_values(
        ["--flagfile=" + CONFIG, "--backend=" + backend, "--model=" + model,
         "--module_handle=" + assets.digits_model,
         "--train_files=" + assets.data("shifted_train.tfrecord"),
         "--eval_files=" + assets.data("shifted_eval.tfrecord"),
         "--model_dir=" + str(model_dir), "--export_best=accuracy"])
    assert task.run(fv, environ={}) == 0
    accuracy[model] = eval_events.last(str(model_dir / "eval"))["accuracy"]
  print("accuracy:", accuracy)
  assert accuracy["example_kit.your_model:build"] > 0.9
  assert accuracy["one_column:pixels_only"] < 0.35
  assert accuracy["one_column:shift_only"] < 0.35
  model_dir = tmp_path / "build"
  with open(model_dir / cli.FLAGS_FILE) as f:
    assert "--model=example_kit.your_model:build\n" in f.read()
  # The export takes the raw columns and predicts as the evaluation said.
  serve = tf.saved_model.load(str(model_dir / "export")).signatures[
      "serving_default"]
  assert sorted(serve.structured_input_signature[1]) == ["pixels", "shift"]
  data = _eval_data(assets).columns
  classes = serve(pixels=tf.constant(data["pixels"]),
                  shift=tf.constant(data["shift"]))["classes"].numpy()
  served = np.mean(classes == data["label"])
  assert served == pytest.approx(accuracy["example_kit.your_model:build"],
                                 abs=0.01)
  assert (model_dir / "export_best" / "best.json").exists()
  # A new run warm-starts from it by the variables' names: one step on,
  # already as good.
  fv = cli.new_flag_values(
      ["--flagfile=" + CONFIG, "--backend=" + backend,
       "--module_handle=" + assets.digits_model,
       "--train_files=" + assets.data("shifted_train.tfrecord"),
       "--eval_files=" + assets.data("shifted_eval.tfrecord"),
       "--model_dir=" + str(tmp_path / "warm"), "--train_steps=1",
       "--warm_start_from=" + str(model_dir)])
  assert task.run(fv, environ={}) == 0
  warm = eval_events.last(str(tmp_path / "warm" / "eval"))["accuracy"]
  assert warm > 0.9, warm


@pytest.mark.estimator
def test_a_model_fn_that_returns_no_estimator_spec_is_one_line(
    assets, tmp_path, monkeypatch):
  _module(tmp_path, monkeypatch, "user_fn_none", '''
      def model_fn(features, labels, mode, params):
        return {"loss": 0}
  ''')
  _module(tmp_path, monkeypatch, "user_fn_args", '''
      def model_fn(inputs, targets):
        pass
  ''')
  args = [a for a in _shifted_args(assets, tmp_path, "x:y")
          if not a.startswith("--model=")]
  for reference, message in (
      ("user_fn_none:model_fn", "`model_fn`=user_fn_none:model_fn returned "
       "dict in mode train, not a tf.estimator.EstimatorSpec."),
      ("user_fn_args:model_fn", "`model_fn`=user_fn_args:model_fn takes "
       "(inputs, targets); a model_fn takes features and any of labels, "
       "mode, params, config, by those names.")):
    with pytest.raises(errors.FlagError) as raised:
      _prepare(args + ["--model_fn=" + reference], backend="estimator")
    assert str(raised.value) == message


@pytest.mark.cluster
@pytest.mark.estimator
def test_a_hub_migrated_model_fn_trains_on_a_cluster(assets, demo_cwd):
  """A TF1 Estimator file with hub.Module (the corpus's legacy_digits.py,
  taking its handle from params["module_handle"]), rewritten by hub-migrate,
  trains as --model_fn on chief, 2 workers, ps and evaluator, from the
  working directory it sits in; the export takes every column but the
  label."""
  with open(os.path.join(REPO, "tests", "data", "tf1_corpus",
                         "legacy_digits.py")) as f:
    source = f.read().replace('params["hub_handle"]',
                              'params["module_handle"]')
  assert "hub.Module(" in source
  (demo_cwd / "legacy_digits.py").write_text(source)
  migrated = subprocess.run(
      [sys.executable, "-m", "hub_migrate", "legacy_digits.py", "--write"],
      cwd=str(demo_cwd), capture_output=True, text=True, timeout=120,
      check=False, env=dict(os.environ, PYTHONPATH=REPO))
  assert migrated.returncode == 0, migrated.stdout + migrated.stderr
  rewritten = (demo_cwd / "legacy_digits.py").read_text()
  assert "hub.Module(" not in rewritten and "hub.KerasLayer(" in rewritten
  run_dir = demo_cwd / "run"
  proc = launcher.run(demo_cwd, run_dir, [
      "--module_handle=" + assets.tf1_hub_model,
      "--model_fn=legacy_digits:model_fn",
      "--train_files=" + assets.data("digits_train.tfrecord"),
      "--eval_files=" + assets.data("digits_eval.tfrecord"),
      "--n_classes=5", "--train_steps=300", "--save_checkpoints_steps=100",
      "--log_every_steps=50"], num_workers=2, num_ps=1, evaluator=True,
                      timeout_secs=400)
  assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
  model_dir = run_dir / "model"
  metrics = eval_events.last(str(model_dir / "eval"))
  assert metrics["global_step"] >= 300 and metrics["accuracy"] > 0.8
  serve = tf.saved_model.load(str(model_dir / "export")).signatures[
      "serving_default"]
  assert sorted(serve.structured_input_signature[1]) == ["pixels"]
  assert not leftovers.pids_mentioning(str(run_dir))
