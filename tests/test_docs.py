"""Every command the README and docs/ show runs as written, or says why not.

The commands are read from the pages (tests/doc_commands.py), not copied
here. HOW lists each one, by page and first words: the test that runs it,
or why it cannot run on this machine (and what runs instead). Each page's
part of HOW, and the tests that run its commands, are in its own module,
tests/test_docs_PAGE.py (the README's and docs/performance.md's, here);
`test_every_command_is_listed` gathers them. A command added to a page and
not listed fails it, as does a listed one the pages no longer show.

Run "as written" means: the page's text, through bash, with `python` and the
commands the package installs being this checkout's (doc_commands.run), in
a folder laid out as the page assumes (configs/, demo_assets/). Where a page
names a folder this machine has no business writing (/shared, /runs), the
test says which temporary folder stands for it; where it writes `...` for
the flags a reader adds, the test says what it adds.
"""

import glob
import importlib
import os
import re

import pytest

from tests import doc_commands

REPO = doc_commands.REPO

# (page, first words) -> the test that runs the command, or why it cannot
# run here: the README's and docs/performance.md's (the other pages' are in
# tests/test_docs_PAGE.py).
HOW = {
    ("README.md", "python3 -m venv .venv && .venv/bin/pip install -e "
                  "'.[cpu,examples]'"): "test_the_readme_demo_and_tensorboard",
    ("README.md", "python3 -m venv .venv && .venv/bin/pip install -e "
                  "'.[cpu,test]'"):
        "why not: it is this suite; .ci/run runs exactly it, in a fresh "
        "clone, on each supported Python",
    ("README.md", ".venv/bin/python -m pytest -n 2 -m"):
        "why not: a part of this suite (its fast lane); .ci/run runs all of "
        "it",
    ("docs/performance.md", "pip install -e '.[bench]'"):
        "why not: installing is .ci/run's own step, from the package index; "
        "the extra adds only matplotlib (tests/test_benchmark.py checks the "
        "one-line refusal of --plot without it)",
    ("docs/performance.md", "python -m scripts.benchmark --quick"):
        "why not: a --quick run takes 13 minutes on 2 cores (771 s, "
        "measured); tests/test_benchmark.py runs every part of it in its "
        "--smoke mode and checks its JSON and figures",
}


def _every_page_how():
  """HOW, with the part of every tests/test_docs_PAGE.py."""
  merged = dict(HOW)
  for path in sorted(glob.glob(os.path.join(REPO, "tests",
                                            "test_docs_*.py"))):
    name = os.path.splitext(os.path.basename(path))[0]
    part = importlib.import_module("tests." + name).HOW
    assert not set(part) & set(merged), (name, set(part) & set(merged))
    merged.update(part)
  return merged


def test_every_command_is_listed():
  commands = doc_commands.commands()
  assert len(commands) >= 30  # The reader finds them.
  every = _every_page_how()
  for command in commands:
    listed = [how for (page, start), how in every.items()
              if doc_commands.matches(command, page, start, commands)]
    assert len(listed) == 1, "not listed once in HOW: %s" % command
  for (page, start), how in every.items():
    named = [c for c in commands
             if doc_commands.matches(c, page, start, commands)]
    assert len(named) == 1, "%s: %r names %d commands" % (page, start,
                                                         len(named))
    if not how.startswith("why not: "):
      named = re.findall(r"\btest_\w+(?=[ ,)]|$)", how)
      assert named and set(named) <= _tests_defined(), how


def _tests_defined():
  """The names of the tests in tests/."""
  names = set()
  for path in glob.glob(os.path.join(REPO, "tests", "test_*.py")):
    with open(path) as f:
      names.update(re.findall(r"^def (test_\w+)\(", f.read(), re.M))
  return names


def test_the_reader_finds_continuations_hosts_and_transcripts():
  hosts = [c for c in doc_commands.commands(["docs/clusters.md"])
           if c.host]
  assert [c.host for c in hosts] == ["10.0.0.3", "10.0.0.2", "10.0.0.1"]
  assert all(c.text.endswith("--model_dir=/shared/run1") for c in hosts)
  refusal = doc_commands.find("docs/backends.md",
                              "python -m trainer.task --backend=estimator")
  assert refusal.text == "python -m trainer.task --backend=estimator"
  assert refusal.output.startswith("error: --backend=estimator needs")


# The README's demo, then docs/training.md's tensorboard on its run.


@pytest.mark.cluster
def test_the_readme_demo_and_tensorboard(workdir):
  """The README's demo, after its install (CI's own first step: .ci/run
  makes the venv and installs `.[cpu,test]`, which holds `examples`): its
  summary has the lines the README shows. Then docs/training.md's
  tensorboard command on that run (<time>: the run's), which serves it."""
  command = doc_commands.find("README.md", "python3 -m venv .venv && "
                              ".venv/bin/pip install -e '.[cpu,examples]'")
  *install, demo = command.text.split(" && ")
  assert install == ["python3 -m venv .venv",
                     ".venv/bin/pip install -e '.[cpu,examples]'"]
  assert demo == ".venv/bin/python -m cluster.local"
  result = doc_commands.ok(doc_commands.run(
      demo.replace(".venv/bin/python", "python"), workdir, timeout=600))
  with open(os.path.join(REPO, "README.md")) as f:
    shown = re.search(r"\n```\n(\[chief-0\] Export:.*?)```", f.read(),
                      re.S).group(1)
  for line in shown.splitlines():
    if not line.startswith(("[", "launcher:")):
      prefix = re.split(r"[\d.]+|\.\.\.", line)[0]
      assert any(l.startswith(prefix) for l in result.stdout.splitlines()), (
          prefix, result.stdout[-2000:])
  run_dir, = os.listdir(workdir / "runs")
  assert re.fullmatch(r"cluster-\d{8}-\d{6}", run_dir)
  board = doc_commands.find("docs/training.md", "tensorboard --logdir=")
  text = board.text.replace("runs/cluster-<time>", "runs/" + run_dir)
  served = doc_commands.serve(text, workdir, path="/data/plugin/scalars/tags",
                              timeout=120)
  assert "loss" in served["."] and "accuracy" in served["eval"], served

