"""harness.files: the small files tasks read back after a restart are
written whole or not at all, even when the writer is killed mid-write; and
a flags.txt that is not the trainer's is one line, not a traceback."""

import os
import signal
import subprocess
import sys
import time

import pytest

from harness import errors
from harness import files
from tests import launcher
from trainer.config import cli

# A writer that rewrites one file in a loop, each time 4 MB of one letter.
_WRITER = """
import sys
from harness import files
path, n = sys.argv[1], 0
print("ready", flush=True)
while True:
  files.write_text(path, "AB"[n % 2] * (4 << 20))
  n += 1
"""


def test_a_writer_killed_mid_write_leaves_the_old_file_or_the_new(tmp_path):
  path = str(tmp_path / "best.json")
  files.write_text(path, "A" * (4 << 20))
  writer = subprocess.Popen([sys.executable, "-c", _WRITER, path],
                            stdout=subprocess.PIPE, text=True,
                            env=launcher.ENV)
  try:
    assert writer.stdout.readline() == "ready\n"
    time.sleep(0.5)  # Some hundred rewrites: a kill lands inside one.
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
  finally:
    if writer.poll() is None:
      writer.kill()
  with open(path) as f:
    text = f.read()
  assert text in ("A" * (4 << 20), "B" * (4 << 20))
  # What the killed writer left is only its own partial file, beside it.
  left = [n for n in os.listdir(tmp_path) if n != "best.json"]
  assert left in ([], ["best.json.tmp-%d" % writer.pid]), left


def test_a_failed_write_leaves_the_old_file_and_no_partial(tmp_path):
  path = str(tmp_path / "sub" / "flags.txt")
  assert files.write_text(path, "--n_classes=5\n") == path
  with pytest.raises(TypeError):
    files.write_text(path, None)  # Fails inside the write.
  with open(path) as f:
    assert f.read() == "--n_classes=5\n"
  assert os.listdir(tmp_path / "sub") == ["flags.txt"]


@pytest.mark.parametrize("text, named", [
    ("--module_handle=/m\n--learning_rat", "learning_rat"),
    ("--module_handle=/m\n--batch_size=3x\n", "batch_size"),
])
def test_a_flags_txt_the_trainer_cannot_read_is_one_line(tmp_path, text,
                                                         named):
  path = str(tmp_path / "flags.txt")
  with open(path, "w") as f:
    f.write(text)
  with pytest.raises(errors.FlagError) as e:
    cli.recorded_model(path, text)
  message = str(e.value)
  assert "\n" not in message and named in message
  assert "is not a flagfile this trainer reads" in message
  assert "`overwrite_model_dir`" in message
