"""The commands docs/training.md shows, run as written (tests/test_docs.py says
what that means, and checks that every command is listed). HOW: which test
runs each here, or why none can."""

import os

import pytest

from tests import doc_commands
from trainer.training import eval_events
from trainer.training import warm_start

REPO = doc_commands.REPO

# (page, first words) -> the test that runs the command, or why it cannot
# run here.
HOW = {
    ("docs/training.md", "python -m example_kit --out=demo_assets"):
        "test_the_tf1_hub_commands",
    ("docs/training.md", "python -m trainer.task --flagfile=configs/"
                         "tf1_hub.cfg"): "test_the_tf1_hub_commands",
    ("docs/training.md", "python -m trainer.task --flagfile=configs/"
                         "your_model.cfg"): "test_the_your_model_command",
    ("docs/training.md", "python -m trainer.task --module_handle=https://"
                         "tfhub.dev"):
        "why not: no tfhub.dev here (no network beyond package registries); "
        "tests/test_handles.py serves a hub archive over HTTP the same way",
    ("docs/training.md", "python -m trainer.task --module_handle=gs://my-"
                         "bucket/models/digits ..."):
        "why not: no Cloud Storage here; tests/test_handles.py reads a model "
        "in place on TF's ram:// file system, through the same tf.io.gfile",
    ("docs/training.md", "python -m trainer.task --module_handle=gs://my-"
                         "bucket/models/digits.tar.gz"):
        "why not: no Cloud Storage here; tests/test_handles.py fetches an "
        "archive from ram:// the same way",
    ("docs/training.md", "TFHUB_CACHE_DIR=/shared/hub_cache"):
        "why not: 'https://...' stands for a hub URL, and there is no hub "
        "here; tests/test_handles.py fetches into TFHUB_CACHE_DIR from a "
        "local HTTP server",
    ("docs/training.md", "python -m trainer.task --module_handle=demo_assets/"
                         "models/tf1_hub --tags=baz"):
        "test_the_bad_tags_transcript",
    ("docs/training.md", "tensorboard --logdir=runs/cluster-<time>/model"):
        "test_the_readme_demo_and_tensorboard (tests/test_docs.py, on the "
        "README demo's run)",
}


@pytest.mark.slow
def test_the_bad_tags_transcript(workdir):
  """`...` is the rest of a job (a required flag left out would be said
  first): the data, the classes and a model directory."""
  command = doc_commands.find("docs/training.md",
                              "python -m trainer.task --module_handle="
                              "demo_assets/models/tf1_hub --tags=baz")
  assert command.text.endswith(" ...")
  text = command.text.replace(
      " ...", " --train_files=demo_assets/data/digits_train.csv "
      "--n_classes=5 --model_dir=runs/tags")
  result = doc_commands.run(text, workdir, timeout=120)
  assert doc_commands.error_line(result) == command.output
  assert not os.path.exists(workdir / "runs")


@pytest.mark.slow
def test_the_tf1_hub_commands(tmp_path):
  """From a folder with only configs/: the kit builds demo_assets/, then the
  TF1 Hub format job trains 200 steps."""
  os.symlink(os.path.join(REPO, "configs"), tmp_path / "configs")
  for start in ("python -m example_kit --out=demo_assets",
                "python -m trainer.task --flagfile=configs/tf1_hub.cfg"):
    command = doc_commands.find("docs/training.md", start)
    doc_commands.ok(doc_commands.run(command.text, tmp_path, timeout=600))
  assert warm_start.global_step(str(tmp_path / "runs" / "tf1_hub")) == 200


@pytest.mark.slow
def test_the_your_model_command(demo_cwd):
  """The worked example of a model of one's own, as the page runs it, from a
  folder with configs/ and demo_assets/: far above the 0.2 either column
  alone gets."""
  os.symlink(os.path.join(REPO, "configs"), demo_cwd / "configs")
  command = doc_commands.find(
      "docs/training.md",
      "python -m trainer.task --flagfile=configs/your_model.cfg")
  doc_commands.ok(doc_commands.run(command.text, demo_cwd, timeout=600))
  model_dir = str(demo_cwd / "runs" / "your_model")
  assert warm_start.global_step(model_dir) == 600
  assert eval_events.last(os.path.join(model_dir, "eval"))["accuracy"] > 0.9

