"""The commands the docs show, read from the pages themselves.

`commands()` reads README.md and every docs/*.md: in a ```sh block, each
command (a line; a trailing backslash continues it; comments and blank
lines are not commands; `# on HOST:` names the host of the command after
it); in any other fenced block, each line that starts with `$ ` (a
transcript: the lines after it, up to the next `$ `, are what it prints).
tests/test_docs.py says how each runs here; `run` runs one as a user would,
from a shell; `ok` and `error_line` read how it ended.
"""

import dataclasses
import glob
import os
import re
import signal
import subprocess
import sys
from typing import List, Mapping, Optional
import urllib.error

from tests import http_json
from tests import processes

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ["README.md"] + sorted(
    os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "docs",
                                                             "*.md")))
_FENCE = re.compile(r"^( *)```(\w*)\n(.*?)^\1```", re.S | re.M)
_HOST = re.compile(r"^# on ([\w.:-]+):$")


@dataclasses.dataclass(frozen=True)
class Command:
  page: str  # README.md, docs/clusters.md, ...
  line: int  # Where it starts on the page.
  text: str  # As a shell reads it: continuations joined.
  host: str = ""  # From a `# on HOST:` comment before it.
  output: str = ""  # A transcript's printed lines.

  def __str__(self):
    return "%s:%d: %s" % (self.page, self.line, self.text)


def _shell_commands(page: str, first_line: int, body: str) -> List[Command]:
  found, host, pending, start = [], "", "", 0
  for number, raw in enumerate(body.splitlines(), first_line):
    line = raw.strip()
    if not pending:
      if not line:
        continue
      if line.startswith("#"):
        match = _HOST.match(line)
        host = match.group(1) if match else host
        continue
      start = number
    pending += (" " if pending else "") + line.rstrip("\\").strip()
    if not line.endswith("\\"):
      text = re.sub(r"\s{2,}#.*$", "", pending)  # A comment after it.
      found.append(Command(page, start, text, host))
      pending, host = "", ""
  assert not pending, "%s:%d: a command ends with a backslash" % (page, start)
  return found


def _transcripts(page: str, first_line: int, body: str) -> List[Command]:
  found = []
  lines = body.splitlines()
  for i, line in enumerate(lines):
    if line.startswith("$ "):
      rest = []
      for after in lines[i + 1:]:
        if after.startswith("$ "):
          break
        rest.append(after)
      text = re.sub(r"\s+#.*$", "", line[2:]).strip()  # A comment after it.
      found.append(Command(page, first_line + i, text,
                           output="\n".join(rest).strip()))
  return found


def commands(pages=PAGES) -> List[Command]:
  """Every command the pages show, in page order."""
  found = []
  for page in pages:
    with open(os.path.join(REPO, page)) as f:
      text = f.read()
    for match in _FENCE.finditer(text):
      first_line = text.count("\n", 0, match.start(3)) + 1
      body = re.sub(r"^" + match.group(1), "", match.group(3), flags=re.M)
      if match.group(2) == "sh":
        found += _shell_commands(page, first_line, body)
      else:
        found += _transcripts(page, first_line, body)
  return found


def matches(command: Command, page: str, start: str,
            among: List[Command]) -> bool:
  """Whether `command` is the one of `page` that `start` names: its whole
  text, or else its first words (where no command of `among` is exactly
  `start`)."""
  if command.page != page:
    return False
  if any(c.page == page and c.text == start for c in among):
    return command.text == start
  return command.text.startswith(start)


def find(page: str, start: str) -> Command:
  """The one command of `page` that `start` names (`matches`)."""
  found = commands([page])
  matching = [c for c in found if matches(c, page, start, found)]
  assert len(matching) == 1, "%s: %d commands start %r" % (
      page, len(matching), start)
  return matching[0]


def ok(result):
  """`result` (of `run`), once it has exited 0."""
  assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
  return result


def error_line(result):
  """The one `error: ` line of a run that exited 1."""
  lines = [line for line in result.stderr.splitlines()
           if line.startswith("error: ")]
  assert result.returncode == 1 and len(lines) == 1, result.stderr[-3000:]
  return lines[0]


def environment(extra: Optional[Mapping[str, str]] = None) -> dict:
  """A user's shell with this checkout installed: `python`, `hub-migrate`,
  `tensorboard` and the rest are the running interpreter's."""
  bin_dir = os.path.dirname(sys.executable)
  env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ["PATH"],
             PYTHONPATH=REPO)
  env.update(extra or {})
  return env


def run(text: str, cwd, *, timeout: float, env=None,
        prefix=()) -> subprocess.CompletedProcess:
  """Runs a command as a user's shell would (bash: pipes, redirections,
  VAR=value before it), in `cwd`; `prefix` is put before bash (e.g. a
  network namespace's `ip netns exec NAME`)."""
  return subprocess.run(
      list(prefix) + ["bash", "-o", "pipefail", "-c", text], cwd=str(cwd),
      env=env or environment(), capture_output=True, text=True,
      timeout=timeout, check=False)


def serve(text: str, cwd, *, path: str, timeout: float):
  """Runs a command that serves HTTP (e.g. tensorboard) as `run` does, until
  it says where (`at http://HOST:PORT/`) and answers `path` with JSON;
  returns that JSON. The server and its children are stopped whatever
  happens."""
  log_path = os.path.join(str(cwd), "served.log")
  with open(log_path, "w") as log:
    process = subprocess.Popen(["bash", "-c", text], cwd=str(cwd),
                               env=environment(), stdout=log,
                               stderr=subprocess.STDOUT,
                               start_new_session=True)
  answer = []

  def served():
    if process.poll() is not None:
      raise AssertionError("%s exited with %d:\n%s" % (
          text, process.returncode, _read(log_path)[-3000:]))
    where = re.search(r" at (http://[\w.:-]+)/", _read(log_path))
    if not where:
      return False
    try:
      answer.append(http_json.get(where.group(1) + path, timeout=10))
      return True
    except (urllib.error.URLError, ConnectionError):
      return False  # Said where, not yet serving: polled to the deadline.
  try:
    if not processes.wait_until(served, timeout, poll_secs=0.2):
      raise AssertionError("%s did not serve %s within %d s:\n%s" % (
          text, path, timeout, _read(log_path)[-3000:]))
    return answer[0]
  finally:
    if process.poll() is None:
      os.killpg(process.pid, signal.SIGTERM)
      try:
        process.wait(30)
      except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _read(path: str) -> str:
  with open(path) as f:
    return f.read()


def python_block(page: str, start: str) -> str:
  """The one ```python block of `page` whose text starts with `start`, as
  the page shows it (a module a test writes and imports as it is)."""
  with open(os.path.join(REPO, page)) as f:
    text = f.read()
  blocks = [b for b in re.findall(r"```python\n(.*?)```", text, re.S)
            if b.startswith(start)]
  assert len(blocks) == 1, "%s: %d python blocks start %r" % (
      page, len(blocks), start)
  return blocks[0]
