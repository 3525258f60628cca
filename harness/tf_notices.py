"""TF's start-up notices, told apart from what a user must see.

Every TF process prints a block of notices as it starts. TF 2.21 prints it
twice per process (its runtime libraries each set up logging; a bare
`python -c "import tensorflow"` shows both), and on a machine without a GPU
it adds CUDA's "Could not find cuda drivers" and an error line, "failed call
to cuInit: ... UNKNOWN ERROR (303)": the `tensorflow` wheel carries CUDA's
stubs and tries them. With a launcher's five tasks that is some thirty lines
of noise, two of them errors, before the first line of the job.

`StartupNotices` recognises these lines, by their text, so that a launcher
can keep its tasks' out of the terminal (`Hidden`; each task's log keeps
every line), and its own, printed while its pre-flight loads TF
(`quiet_stderr`). The CUDA lines count as notices only on a machine with
no NVIDIA device (`has_gpu`): where there is a GPU, a failed cuInit is a
real error. None of TF's environment settings quiets them:
TF_CPP_MIN_LOG_LEVEL does not reach lines printed before absl's logging is
set up, and CUDA_VISIBLE_DEVICES does not stop the cuInit call (both tried
on TF 2.21).
"""

import contextlib
import glob
import os
import re
import sys
import threading
from typing import Callable, Iterator, Optional

# Lines any TF process prints as it starts, on any machine.
_ALWAYS = (
    r"WARNING: All log messages before absl::InitializeLog\(\) is called "
    r"are written to STDERR",
    r".*\bport\.cc:\d+\] oneDNN custom operations are on\. .*",
    r".*\bcpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized "
    r"to use available CPU instructions in performance-critical operations\.",
    r"To enable the following instructions: .*, in other operations, "
    r"rebuild TensorFlow with the appropriate compiler flags\.",
)
# Lines that say there is no GPU: notices only where there is none.
_NO_GPU = (
    r".*\bcudart_stub\.cc:\d+\] Could not find cuda drivers on your machine, "
    r"GPU will not be used\.",
    r".*\b(cuda_platform|cuda_driver)\.cc:\d+\] failed call to cuInit: .*",
)


def has_gpu(pattern: str = "/dev/nvidia[0-9]*") -> bool:
  """Whether this machine has an NVIDIA GPU device node."""
  return bool(glob.glob(pattern))


class StartupNotices:
  """Tells whether a line of a TF process's output is one of TF's
  start-up notices (see the module doc)."""

  def __init__(self, gpu: bool):
    self.gpu = gpu
    self._pattern = re.compile("|".join(
        "(?:%s)" % p for p in _ALWAYS + (() if gpu else _NO_GPU)))

  def __call__(self, line: str) -> bool:
    return bool(self._pattern.fullmatch(line.rstrip("\n")))


class Hidden:
  """A launcher's filter of its tasks' lines: True for TF's start-up
  notices (kept out of the terminal), saying once, through `say`, where
  they are instead. Called from the tasks' reader threads."""

  def __init__(self, say: Callable[[str], None], where: str,
               gpu: Optional[bool] = None):
    self._notices = StartupNotices(has_gpu() if gpu is None else gpu)
    self._say, self._where = say, where
    self._lock = threading.Lock()
    self._said = False

  def __call__(self, line: str) -> bool:
    if not self._notices(line):
      return False
    with self._lock:
      said, self._said = self._said, True
    if not said:
      self._say("TF's start-up notices (the oneDNN and CPU notices%s) are "
                "not shown here; %s keeps them." % (
                    "" if self._notices.gpu else
                    "; no GPU here: CUDA's \"Could not find cuda drivers\" "
                    "and its cuInit error", self._where))
    return True


@contextlib.contextmanager
def quiet_stderr(notices: StartupNotices) -> Iterator[None]:
  """Within, this process's standard error (file descriptor 2, where TF's
  C++ code writes, out of reach of Python's logging) passes through a
  thread that drops `notices`' lines and forwards every other line at
  once. Child processes started within inherit the filter; past the end
  they keep it until they exit."""
  sys.stderr.flush()
  original = os.dup(2)
  read, write = os.pipe()
  os.dup2(write, 2)
  os.close(write)

  def forward():
    with os.fdopen(read, "rb") as pipe:
      for line in pipe:
        if not notices(line.decode("utf-8", "replace")):
          os.write(original, line)

  thread = threading.Thread(target=forward, daemon=True,
                            name="tf-notices")
  thread.start()
  try:
    yield
  finally:
    sys.stderr.flush()
    os.dup2(original, 2)  # The pipe's last writer closes: the thread ends.
    thread.join(timeout=2)
    if not thread.is_alive():  # Else a child still writes through it.
      os.close(original)
