"""The commands docs/migrating.md shows, run as written (tests/test_docs.py
says what that means, and checks that every command is listed). HOW: which
test runs each here, or why none can."""

import os
import re
import shutil

from tests import doc_commands

REPO = doc_commands.REPO

# (page, first words) -> the test that runs the command, or why it cannot
# run here.
HOW = {
    ("docs/migrating.md", "hub-migrate my_project/"):
        "test_the_migration_commands",
    ("docs/migrating.md", "hub-migrate my_project/ --write"):
        "test_the_migration_commands",
    ("docs/migrating.md", "hub-migrate model.py"):
        "test_the_migration_commands",
}


def test_the_migration_commands(tmp_path):
  """my_project/ is the TF1 corpus (tests/data/tf1_corpus), model.py its
  legacy_digits.py; the first command's diff holds the page's before and
  after."""
  shutil.copytree(os.path.join(REPO, "tests", "data", "tf1_corpus"),
                  tmp_path / "my_project")
  shutil.copy(tmp_path / "my_project" / "legacy_digits.py",
              tmp_path / "model.py")
  first, write, target = (
      doc_commands.find("docs/migrating.md", start) for start in (
          "hub-migrate my_project/", "hub-migrate my_project/ --write",
          "hub-migrate model.py"))
  report = doc_commands.run(first.text, tmp_path, timeout=120)
  # The corpus has problems only a person can fix: errors, exit status 1.
  assert report.returncode == 1, report.stderr
  with open(os.path.join(REPO, "docs", "migrating.md")) as f:
    page = f.read()
  diff = re.search(r"```diff\n(.*?)```", page, re.S).group(1)
  changed = [line for line in diff.splitlines() if line[:1] in "+-"]
  assert changed and all(line in report.stdout.splitlines()
                         for line in changed), report.stdout
  assert doc_commands.run(write.text, tmp_path, timeout=120).returncode == 1
  for name in os.listdir(tmp_path / "my_project"):
    if name.endswith(".py"):
      with open(tmp_path / "my_project" / name) as f:
        assert "hub.Module(" not in f.read(), name
  older = doc_commands.ok(doc_commands.run(target.text, tmp_path,
                                           timeout=120))
  assert ("+    config.session_config.experimental."
          "share_cluster_devices_in_session = True") in older.stdout, (
              older.stdout)

