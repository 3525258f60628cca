"""harness.tf_notices: TF's start-up notices told apart from real output,
with the lines TF 2.15 and TF 2.21 print, and with the running TF's own."""

import os
import subprocess
import sys

import pytest

from harness import tf_notices

# As TF 2.21 printed them on this project's CPU-only machine (twice each,
# but the cpu_feature_guard lines, in one process).
TF_221 = [
    "WARNING: All log messages before absl::InitializeLog() is called are "
    "written to STDERR",
    "I0000 00:00:1796551547.272469   27411 port.cc:153] oneDNN custom "
    "operations are on. You may see slightly different numerical results "
    "due to floating-point round-off errors from different computation "
    "orders. To turn them off, set the environment variable "
    "`TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1796551547.313472   27411 cpu_feature_guard.cc:227] This "
    "TensorFlow binary is optimized to use available CPU instructions in "
    "performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F FMA, in other "
    "operations, rebuild TensorFlow with the appropriate compiler flags.",
]
NO_GPU_221 = [
    "I0000 00:00:1796551547.272750   27411 cudart_stub.cc:31] Could not find "
    "cuda drivers on your machine, GPU will not be used.",
    "E0000 00:00:1796551550.776753   27411 cuda_platform.cc:52] failed call "
    "to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR "
    "(303)",
]
TF_215 = [
    "2026-12-06 10:08:06.717894: I tensorflow/core/util/port.cc:113] oneDNN "
    "custom operations are on. You may see slightly different numerical "
    "results due to floating-point round-off errors from different "
    "computation orders. To turn them off, set the environment variable "
    "`TF_ENABLE_ONEDNN_OPTS=0`.",
    "2026-12-06 10:08:06.880576: I tensorflow/core/platform/"
    "cpu_feature_guard.cc:182] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.",
]
REAL = [
    "E0000 00:00:1796551550.776753   27411 cuda_platform.cc:52] failed call "
    "to cuGetDevice: out of memory",
    "E1206 10:08:06.880576 123 grpc_server_lib.cc:101] Could not start gRPC "
    "server",
    "Traceback (most recent call last):",
    "W0000 00:00:1796551550.776753   27411 port.cc:153] oneDNN custom "
    "operations are off",  # Not TF's notice: a line of its own.
    "[chief-0] WARNING: All log messages before absl::InitializeLog() is "
    "called are written to STDERR",  # Only whole lines match.
    "",
]


def test_the_start_up_notices_of_both_tfs_are_notices_without_a_gpu():
  notices = tf_notices.StartupNotices(gpu=False)
  for line in TF_221 + NO_GPU_221 + TF_215:
    assert notices(line), line
    assert notices(line + "\n"), line
  for line in REAL:
    assert not notices(line), line


def test_with_a_gpu_cudas_lines_are_shown():
  """There a failed cuInit is a real error."""
  notices = tf_notices.StartupNotices(gpu=True)
  assert all(notices(line) for line in TF_221 + TF_215)
  assert not any(notices(line) for line in NO_GPU_221 + REAL)


def test_hidden_says_once_where_the_notices_are(tmp_path):
  said = []
  hidden = tf_notices.Hidden(said.append, "the logs", gpu=False)
  assert [hidden(line) for line in TF_221 + NO_GPU_221 + REAL] == (
      [True] * 6 + [False] * len(REAL))
  assert said == [
      "TF's start-up notices (the oneDNN and CPU notices; no GPU here: "
      "CUDA's \"Could not find cuda drivers\" and its cuInit error) are not "
      "shown here; the logs keeps them."]


QUIET = """
import os, sys
from harness import tf_notices
print("before", file=sys.stderr, flush=True)
with tf_notices.quiet_stderr(tf_notices.StartupNotices(gpu=False)):
  for line in %r:
    os.write(2, (line + "\\n").encode())
  print("python's own", file=sys.stderr)
os.write(2, %r.encode())
print("after", file=sys.stderr)
"""


def test_quiet_stderr_drops_the_notices_a_process_writes_itself():
  """At the file descriptor, where TF's C++ code writes; every other line
  passes, in order, and the descriptor is as before afterwards."""
  notices = TF_221 + NO_GPU_221
  code = QUIET % ([notices[0], REAL[1], notices[-1], REAL[2]],
                  notices[-1] + "\n")
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True,
                        text=True, timeout=60, check=True,
                        cwd=os.path.dirname(os.path.dirname(
                            os.path.abspath(__file__))))
  assert proc.stderr.splitlines() == [
      "before", REAL[1], REAL[2], "python's own", notices[-1], "after"]


def test_a_gpu_is_a_device_node(tmp_path):
  assert not tf_notices.has_gpu(str(tmp_path / "nvidia[0-9]*"))
  (tmp_path / "nvidia0").touch()
  assert tf_notices.has_gpu(str(tmp_path / "nvidia[0-9]*"))


@pytest.mark.slow
def test_the_running_tf_prints_nothing_else_as_it_starts():
  """The installed TF's own start-up, its first op included: every line it
  prints is a notice, on this machine (a GPU's lines may differ)."""
  proc = subprocess.run(
      [sys.executable, "-c", "import tensorflow as tf; tf.constant(1) + 1"],
      capture_output=True, text=True, timeout=120, check=True)
  notices = tf_notices.StartupNotices(tf_notices.has_gpu())
  lines = (proc.stdout + proc.stderr).splitlines()
  assert [line for line in lines if not notices(line)] == [], lines
