"""What a job leaves is what it trained: the export, a resumed run, a
continued one and a warm start of a model written as the docs show it
(every layer left to Keras's default name), checked against the evaluation
the job itself measured (docs/training.md, "What a job leaves").

The model is docs/training.md's own snippet, as the page shows it. Its data
has one more column than it reads (`id`, in the inputs dict it is given):
the export must leave it out. Before training, the test process builds
unnamed layers of the model's kinds, so that Keras's count of them is not
where a fresh process has it: the names the checkpoints use must not
depend on it. The same model on a local cluster is in
tests/test_local_cluster.py.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from example_kit import assets as assets_lib
from example_kit import datasets
from harness import errors
from tests import backend_jobs
from tests import doc_commands
from tests import served
from trainer import task
from trainer.config import cli
from trainer.plan import resolve
from trainer.training import eval_events
from trainer.training import warm_start

REPO = doc_commands.REPO
SNIPPET = doc_commands.python_block(
    "docs/training.md", "import tf_keras\n\ndef build(inputs, hub_layer):")
# The snippet with one more hidden layer, and without the shift's embedding.
DEEPER = SNIPPET.replace(
    'hidden = tf_keras.layers.Dense(64, activation="relu")(joined)',
    'hidden = tf_keras.layers.Dense(64, activation="relu")(joined)\n'
    '  hidden = tf_keras.layers.Dense(64, activation="relu")(hidden)')
PIXELS_ONLY = SNIPPET.replace(
    'shift = tf_keras.layers.Embedding(5, 8)(inputs["shift"])',
    'shift = tf_keras.layers.Dense(8)(features)')


@pytest.fixture(scope="module")
def id_data(tmp_path_factory):
  """(train file, eval file, the eval columns): the shifted digits with an
  `id` column the model never reads."""
  folder = tmp_path_factory.mktemp("id_data")
  parts = datasets.split(
      datasets.digits(datasets.TRANSFER_CLASSES, datasets.TRANSFER_HALF),
      assets_lib.SHIFTED_TRAIN_FRACTION)
  paths, columns = [], None
  for name, part in zip(("train", "eval"), parts):
    shifted = datasets.shifted(part)
    columns = dict(shifted.columns,
                   id=np.arange(len(shifted), dtype=np.int64) + 10**9)
    paths.append(datasets.write_tfrecord(
        datasets.Examples(columns), str(folder / (name + ".tfrecord"))))
  return paths[0], paths[1], columns


@pytest.fixture
def user_code(tmp_path, monkeypatch):
  """A folder of the user's modules, importable here and by the tasks'
  processes (`env`): docs_snippet (the page's model), deeper, pixels_only."""
  folder = tmp_path / "user_code"
  folder.mkdir()
  for name, text in (("docs_snippet", SNIPPET), ("deeper", DEEPER),
                     ("pixels_only", PIXELS_ONLY)):
    (folder / (name + ".py")).write_text(text)
  monkeypatch.syspath_prepend(str(folder))
  return folder


def _args(assets, id_data, model_dir, model="docs_snippet:build", **more):
  train, evaluation, _ = id_data
  flags = dict(module_handle=assets.digits_model, model=model,
               train_files=train, eval_files=evaluation, label_key="label",
               n_classes=5, train_steps=300, batch_size=32,
               learning_rate=0.01, save_checkpoints_steps=100,
               log_every_steps=100, random_seed=3, model_dir=str(model_dir))
  flags.update(more)
  return ["--%s=%s" % item for item in flags.items()]


def _shift_keras_counts():
  """Unnamed layers of the model's kinds, as a process that built models
  before makes them: the next unnamed Dense is no longer "dense"."""
  for _ in range(2):
    tf_keras.layers.Dense(1)
    tf_keras.layers.Embedding(1, 1)
    tf_keras.layers.Concatenate()


def _plan(args, backend):
  fv = cli.new_flag_values(list(args) + ["--backend=" + backend])
  return resolve.prepare(fv, None, log=lambda line: None)


@pytest.mark.keras
def test_an_unnamed_model_is_named_alike_in_every_build(assets, id_data,
                                                         user_code, tmp_path):
  """However many layers the process made before, the model's variables
  have the names a fresh process gives them; and the Estimator's graph
  names them so too."""
  from trainer.keras import state as state_lib  # pylint: disable=g-import-not-at-top
  plan = _plan(_args(assets, id_data, tmp_path / "m"), "keras")
  builds = []
  for _ in range(3):
    _shift_keras_counts()
    builds.append(sorted(state_lib.create(
        plan.spec, plan.job.head, user=plan.user_model).variables))
  assert builds[0] == builds[1] == builds[2]
  assert {"dense/kernel", "dense_1/kernel", "embedding/embeddings",
          "dense1/kernel"} <= set(builds[0]), builds[0]
  if backend_jobs.ESTIMATOR_HERE:
    from trainer.estimator import warm_start as estimator_warm_start  # pylint: disable=g-import-not-at-top
    assert sorted(estimator_warm_start.model_variables(
        plan.spec, plan.job.head, plan.user_model)) == builds[0]


@pytest.mark.keras
def test_a_checkpoint_of_another_model_is_one_error_naming_both_sides(
    assets, id_data, user_code, tmp_path):
  """Restoring a checkpoint into a model it does not fit restores nothing
  and names what each side lacks, instead of leaving the rest at its
  initial values."""
  from trainer.keras import state as state_lib  # pylint: disable=g-import-not-at-top
  plan = _plan(_args(assets, id_data, tmp_path / "m"), "keras")
  trained = state_lib.create(plan.spec, plan.job.head, user=plan.user_model)
  path = state_lib.manager(trained, str(tmp_path / "m"), 1).save(0)
  for model, said in (
      ("deeper:build", "the model has 2 variable(s) that the checkpoint "
       "lacks (dense_2/bias, dense_2/kernel)"),
      ("pixels_only:build", "the checkpoint has 1 variable(s) that the "
       "model lacks (embedding/embeddings)")):
    other = _plan(_args(assets, id_data, tmp_path / model, model=model),
                  "keras")
    state = state_lib.create(other.spec, other.job.head,
                             user=other.user_model, with_optimizer=False)
    before = {n: v.numpy() for n, v in state.variables.items()}
    with pytest.raises(errors.CheckpointMismatchError) as raised:
      state_lib.restore(state, path)
    assert said in str(raised.value), str(raised.value)
    assert str(raised.value).startswith("Checkpoint %s does not hold this "
                                        "model's variables" % path)
    for name, variable in state.variables.items():
      np.testing.assert_array_equal(variable.numpy(), before[name])


def _checkpoint_steps(model_dir):
  """{step in the name: global step inside} of every checkpoint kept."""
  state = tf.train.get_checkpoint_state(model_dir)
  return {int(path.rsplit("-", 1)[1]): warm_start.global_step(path)
          for path in state.all_model_checkpoint_paths}


@pytest.mark.slow
@pytest.mark.parametrize("backend", backend_jobs.BACKENDS)
def test_what_a_job_leaves_is_the_model_it_trained(backend, assets, id_data,
                                                   user_code, tmp_path):
  """The export serves what the final evaluation measured, on the columns
  the model reads; no evaluation is of the untrained model; each
  checkpoint's name is its step; the finished run, continued in a new
  process with more steps, resumes where it was and keeps the earlier
  export; a warm start from it takes every variable."""
  _shift_keras_counts()
  model_dir = tmp_path / "model"
  args = _args(assets, id_data, model_dir) + ["--backend=" + backend]
  assert task.run(cli.new_flag_values(args), environ={}) == 0
  _, _, columns = id_data
  evaluations = eval_events.evaluations(str(model_dir / "eval"))
  assert evaluations and evaluations[0][0] > 0, [s for s, _ in evaluations]
  final = eval_events.last(str(model_dir / "eval"))
  assert final["global_step"] == 300 and final["accuracy"] > 0.9, final
  export = str(model_dir / "export")
  assert served.inputs(export) == ["pixels", "shift"]
  first = served.accuracy(export, columns)
  print("%s: evaluated %.4f, served %.4f" % (backend, final["accuracy"],
                                             first))
  assert first == pytest.approx(final["accuracy"], abs=0.002)
  steps = _checkpoint_steps(str(model_dir))
  assert steps and all(name == inside for name, inside in steps.items()), \
      steps

  # The finished run goes on, in a process of its own, to 400 steps.
  more = subprocess.run(
      [sys.executable, "-m", "trainer.task"] + args + ["--train_steps=400"],
      cwd=str(tmp_path), capture_output=True, text=True, timeout=400,
      env=dict(os.environ, PYTHONPATH=os.pathsep.join([REPO,
                                                       str(user_code)])),
      check=False)
  assert more.returncode == 0, more.stdout[-3000:] + more.stderr[-3000:]
  output = more.stdout + more.stderr
  assert ("The run continues from step 300: its export of that step is "
          "kept as %s.step-300" % export) in output, output[-3000:]
  assert "Evaluation at global_step=300" not in output  # Not told as new.
  resumed = eval_events.last(str(model_dir / "eval"))
  assert resumed["global_step"] == 400, resumed
  assert resumed["accuracy"] >= final["accuracy"] - 0.02, (final, resumed)
  assert served.accuracy(export + ".step-300", columns) == first
  assert served.accuracy(export, columns) == pytest.approx(
      resumed["accuracy"], abs=0.002)
  assert all(name == inside for name, inside in
             _checkpoint_steps(str(model_dir)).items())

  # A new run warm-started from it: every variable taken, as good at once.
  warm_dir = tmp_path / "warm"
  warm_args = [a for a in _args(assets, id_data, warm_dir, train_steps=1)
               if not a.startswith("--save_checkpoints_steps")]
  plan = _plan(warm_args + ["--warm_start_from=" + str(model_dir)], backend)
  # All 13: the hub model's 8 (batch_norm's 4, dense1's 2, dense2's 2) and
  # the snippet's 5 (embedding, dense, dense_1).
  assert len(plan.warm_start[1]) == 13, plan.warm_start[1]
  assert task.run(cli.new_flag_values(
      warm_args + ["--backend=" + backend,
                   "--warm_start_from=" + str(model_dir)]), environ={}) == 0
  warm = eval_events.last(str(warm_dir / "eval"))
  assert warm["accuracy"] >= resumed["accuracy"] - 0.03, (resumed, warm)



@pytest.mark.cluster
@pytest.mark.keras
def test_on_a_cluster_the_export_is_the_model_the_evaluator_measured(
    assets, id_data, user_code, tmp_path):
  """The snippet on a local Keras cluster (chief, 2 workers, ps,
  evaluator): every task builds the model itself, the evaluator's final
  accuracy is far above either column's alone (0.2), the chief's export
  serves exactly that accuracy on the columns the model reads, each
  checkpoint's name is its step (the chief saves with no step in flight),
  and nothing evaluated the untrained model."""
  from tests import launcher  # pylint: disable=g-import-not-at-top
  run_dir = tmp_path / "run"
  model_dir = run_dir / "model"
  args = [a for a in _args(assets, id_data, model_dir, train_steps=600)
          if not a.startswith("--random_seed")] + ["--backend=keras"]
  proc = launcher.run(
      tmp_path, str(run_dir), args, timeout_secs=400,
      env={"PYTHONPATH": os.pathsep.join([REPO, str(user_code)])},
      num_workers=2, num_ps=1, evaluator=True, deadline_secs=340)
  assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
  assert ("Your model docs_snippet:build takes the columns: pixels, shift; "
          "it ignores id") in proc.stdout
  final = eval_events.last(str(model_dir / "eval"))
  assert final["global_step"] == warm_start.global_step(str(model_dir))
  assert final["accuracy"] > 0.9, final
  steps = [step for step, _ in eval_events.evaluations(
      str(model_dir / "eval"))]
  assert steps[0] > 0, steps
  export = str(model_dir / "export")
  assert served.inputs(export) == ["pixels", "shift"]
  assert served.accuracy(export, id_data[2]) == pytest.approx(
      final["accuracy"], abs=0.002)
  kept = _checkpoint_steps(str(model_dir))
  assert kept and all(name == inside for name, inside in kept.items()), kept


@pytest.mark.slow
@pytest.mark.parametrize("backend", backend_jobs.BACKENDS)
def test_a_model_directory_given_as_a_file_url_resumes(backend, assets,
                                                       tmp_path, capsys):
  """--model_dir=file:///...: the run's flags.txt is read back through TF's
  file systems when the run goes on (absl's --flagfile, a plain open(),
  could not: "error reading flagfile"), and the export it leaves checks."""
  model_dir = "file://" + str(tmp_path / "model")
  args = ["--module_handle=" + assets.digits_model,
          "--train_files=" + assets.data("digits_train.tfrecord"),
          "--eval_files=" + assets.data("digits_eval.tfrecord"),
          "--n_classes=5", "--save_checkpoints_steps=20",
          "--model_dir=" + model_dir, "--backend=" + backend]
  for steps in (20, 40):
    assert task.run(cli.new_flag_values(
        args + ["--train_steps=%d" % steps]), environ={}) == 0
  out = capsys.readouterr().out
  assert "Export check: verified on 256 evaluation row(s)" in out, out
  assert eval_events.last(model_dir + "/eval")["global_step"] == 40
  assert tf.io.gfile.exists(model_dir + "/export.step-20")
