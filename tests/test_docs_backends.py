"""The commands docs/backends.md shows, run as written (tests/test_docs.py says
what that means, and checks that every command is listed). HOW: which test
runs each here, or why none can."""

import os
import re
import shutil
import sys

import pytest

from tests import doc_commands
from trainer.config import backends
from trainer.training import warm_start

REPO = doc_commands.REPO
HAS_ESTIMATOR = backends.choose_here("auto").name == backends.ESTIMATOR

# (page, first words) -> the test that runs the command, or why it cannot
# run here.
HOW = {
    ("docs/backends.md", "python -m trainer.task --backend=estimator"):
        "test_asking_for_the_estimator_where_tf_has_none",
    ("docs/backends.md", "python -m trainer.task --flagfile=configs/digits.cfg "
                         "--backend=estimator"): "test_the_bridge_commands",
    ("docs/backends.md", "python -m trainer.task --flagfile=configs/digits.cfg "
                         "--warm_start_from"): "test_the_bridge_commands",
}


@pytest.mark.slow
def test_asking_for_the_estimator_where_tf_has_none(workdir):
  """The page's transcript: the line it prints, with this TF's version."""
  if HAS_ESTIMATOR:
    pytest.skip("this TF has tf.estimator, so the command trains; the page "
                "shows TF 2.21, where the second CI stage runs this test")
  command = doc_commands.find("docs/backends.md",
                              "python -m trainer.task --backend=estimator")
  result = doc_commands.run(command.text, workdir, timeout=120)
  expected = re.sub(r"TF 2\.21\.0 on Python 3\.12", "TF %s on Python %d.%d" % (
      (backends.installed_tf_version(),) + sys.version_info[:2]),
                    command.output)
  assert doc_commands.error_line(result) == expected
  assert not os.path.exists(workdir / "runs")


@pytest.mark.slow
def test_the_bridge_commands(workdir, tmp_path):
  """/runs/ is a temporary folder. Where TF has the Estimator both run, the
  second from the first's checkpoint; where it has none (the page's second
  stack), the first is refused and the second starts from the Estimator
  checkpoint TF 2.15 wrote (tests/data/estimator_checkpoint: this job's)."""
  runs = tmp_path / "runs"
  first, second = (
      doc_commands.find("docs/backends.md", start).text.replace(
          "/runs/", str(runs) + "/") for start in (
              "python -m trainer.task --flagfile=configs/digits.cfg "
              "--backend=estimator",
              "python -m trainer.task --flagfile=configs/digits.cfg "
              "--warm_start_from"))
  if HAS_ESTIMATOR:
    doc_commands.ok(doc_commands.run(first, workdir, timeout=600))
    assert warm_start.global_step(str(runs / "est")) == 300
  else:
    assert "needs tf.estimator" in doc_commands.error_line(
        doc_commands.run(first, workdir, timeout=120))
    shutil.copytree(os.path.join(REPO, "tests", "data",
                                 "estimator_checkpoint"), runs / "est")
    with open(runs / "est" / "checkpoint", "w") as f:
      f.write('model_checkpoint_path: "model.ckpt-50"\n')
  result = doc_commands.ok(doc_commands.run(second, workdir, timeout=600))
  assert warm_start.global_step(str(runs / "keras")) == 300
  taken = re.search(r"Warm start: (\d+) variable\(s\) matching --"
                    r"warm_start_vars=\.\* from (\S+);", result.stderr)
  assert taken, result.stderr[-3000:]
  assert int(taken.group(1)) >= 4  # The hub model's layers and the head.
  assert taken.group(2).startswith(str(runs / "est" / "model.ckpt-"))

