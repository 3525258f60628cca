"""hub-migrate on files and folders, and as a command: broken files skipped,
--write, exit statuses."""

import io
import os
import subprocess
import sys
import textwrap

from hub_migrate import cli
from tests import hub_migrate_cases as cases

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write(folder, name, text):
  path = os.path.join(str(folder), name)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    f.write(text)
  return path


def test_files_and_folders(tmp_path):
  """A broken file is reported with its line and skipped; the others are
  migrated; a RunConfig in one file gets its session config because
  another file of the run uses hub; --write writes; a second run changes
  nothing."""
  model = _write(tmp_path, "project/model.py", cases.HEADER + textwrap.dedent("""
      def model_fn(features, labels, mode):
        return hub.Module("h")(features["x"])
      """))
  config = _write(tmp_path, "project/config.py", textwrap.dedent("""
      import tensorflow as tf
      CONFIG = tf.estimator.RunConfig()
      """))
  broken = _write(tmp_path, "project/broken.py", "def f(:\n  pass\n")
  _write(tmp_path, "project/.hidden/skipped.py", cases.HEADER + "hub.Module('h')\n")
  out = io.StringIO()
  code = cli.run([str(tmp_path / "project")], write=False, target_tf="2.15",
                 show_diff=True, out=out)
  report = out.getvalue()
  assert code == 1  # The broken file.
  assert "%s:1:" % broken in report and "[syntax]" in report
  assert "+  return hub.KerasLayer(\"h\")(features[\"x\"])" in report
  assert "+    CONFIG.session_config.share_cluster_devices_in_session = True" in (
      report)
  assert "skipped.py" not in report
  assert report.strip().endswith(
      "hub-migrate: 3 Python files, 2 to rewrite (--write applies) (target "
      "TF 2.15), 1 error, 0 notes.")
  with open(model) as f:
    assert "hub.Module" in f.read()  # Not written without --write.
  mode = os.stat(config).st_mode
  assert cli.run([str(tmp_path / "project")], write=True, target_tf="2.15",
                 show_diff=False, out=io.StringIO()) == 1
  with open(model) as f:
    assert "hub.KerasLayer" in f.read()
  assert os.stat(config).st_mode == mode
  os.remove(broken)
  out = io.StringIO()
  assert cli.run([str(tmp_path / "project")], write=True, target_tf="2.15",
                 show_diff=True, out=out) == 0
  assert "0 rewritten" in out.getvalue() and "---" not in out.getvalue()
  assert not [n for n in os.listdir(tmp_path / "project")
              if n.startswith(".hub-migrate-")]


def _command(*args, cwd=REPO):
  return subprocess.run([sys.executable, "-m", "hub_migrate", *args],
                        cwd=cwd, capture_output=True, text=True, check=False,
                        env=dict(os.environ, PYTHONPATH=REPO))


def test_command_line(tmp_path):
  path = _write(tmp_path, "a.py", cases.HEADER + "m = hub.Module('h')\ny = m(x)\n")
  done = _command(path, "--target_tf=2.1")
  assert done.returncode == 0, done.stderr
  assert "+m = hub.KerasLayer('h')" in done.stdout
  assert "(target TF 2.1)" in done.stdout
  missing = _command(str(tmp_path / "nope.py"))
  assert missing.returncode == 2
  assert missing.stderr.strip() == (
      "error: `%s` is neither a file nor a folder; give Python files or "
      "folders that hold them." % (tmp_path / "nope.py"))
  bad = _command(path, "--target_tf=two")
  assert bad.returncode == 2
  assert "TensorFlow version 'two' is not of the form MAJOR.MINOR" in (
      bad.stderr)
  nothing = _command()
  assert nothing.returncode == 2 and "give the Python files" in nothing.stderr
  assert "--target_tf" in _command("--helpfull").stdout
