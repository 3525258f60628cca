"""Bad input to the launcher and the trainer CLIs, as a user types it.

Each case runs the real command: it must exit non-zero with one line on
stderr naming the problem, no traceback, nothing written to the run or
model directory, and nothing left running.
"""

import os
import re
import subprocess
import sys

from absl import flags
import pytest

from cluster import local
from cluster.launcher import leftovers
from tests import processes

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The demo's model and data as a job of one's own (a data flag alone is not
# the demo: trainer/config/demo.py).
OWN_JOB = ["--module_handle=demo_assets/models/digits",
           "--train_files=demo_assets/data/digits_train.tfrecord",
           "--input_map=inputs=pixels", "--n_classes=5"]
CASES = [
    ("cluster.local", ["--num_ps=0"], "--num_ps (0) must be >= 1"),
    ("cluster.local", ["--num_workers=-2"],
     "--num_workers (-2) must be >= 0"),
    ("cluster.local", ["--restart_policy=sometimes"],
     "Restart policy 'sometimes' is not one of"),
    ("cluster.local", ["--restart_policy=boss=never"],
     "names task type 'boss'"),
    ("cluster.local", ["--bogus_flag=1"],
     "Unknown command line flag 'bogus_flag'"),
    ("cluster.local", ["--", "--no_such_flag=1"],
     "trainer flags: Unknown command line flag 'no_such_flag'"),
    ("cluster.local", ["--", "--module_handle=/nope", "--n_classes=2",
                       "--train_files=x"],
     "Model path /nope does not exist"),
    ("cluster.local", ["--", "--n_classes=3"],
     "digits_train.tfrecord: record 1: label 4 is outside [0, 3) "
     "(--n_classes=3)"),
    ("cluster.local", ["--", "--batch_size=0"],
     "--batch_size (0) must be a positive integer"),
    ("cluster.local", ["--evaluator", "--"] + OWN_JOB + ["--eval_files="],
     "--eval_files is empty, so an evaluator would have nothing to "
     "evaluate: give the trainer --eval_files, or --noevaluator."),
    ("trainer.task", ["--train_steps=zero"],
     "flag --train_steps=zero: invalid literal for int()"),
    ("trainer.task", OWN_JOB + ["--eval_files=/nope/*.csv"],
     "--eval_files: /nope/*.csv matches no file"),
]


@pytest.mark.slow
@pytest.mark.parametrize("module,args,message", CASES)
def test_bad_input(demo_cwd, module, args, message):
  """Run where the demo finds its models (demo_cwd)."""
  tmp_path = demo_cwd
  run_dir = str(tmp_path / "run")
  model_dir = str(tmp_path / "model")
  args = list(args)
  command = [sys.executable, "-m", module]
  if module == "cluster.local":
    command.append("--run_dir=" + run_dir)
    if "--" in args:
      args.append("--model_dir=" + model_dir)
  else:
    args.append("--model_dir=" + model_dir)
  proc = subprocess.run(command + args, cwd=str(tmp_path), text=True,
                        capture_output=True, timeout=300, check=False,
                        env=dict(os.environ, PYTHONPATH=REPO))
  assert proc.returncode != 0
  # Progress logged before the check (absl's "I1125 12:00:00.0 ..." lines)
  # may precede it; the problem itself is one line.
  errors = [line for line in processes.our_lines(proc.stderr)
            if not re.match(r"[IWEF]\d{4} \d", line)]
  assert len(errors) == 1, proc.stderr
  assert errors[0].startswith("error: ") and message in errors[0], errors
  assert "Traceback" not in proc.stdout + proc.stderr
  assert not os.path.exists(run_dir) and not os.path.exists(model_dir)
  assert not leftovers.pids_mentioning(str(tmp_path))


def test_the_launcher_has_no_deadline_unless_asked():
  """A local run longer than any default is not stopped by surprise:
  --deadline_secs is unset by default, and its help says so."""
  fv = flags.FlagValues()
  local.define_flags(fv)
  fv(["local"])
  assert fv.deadline_secs is None
  assert "Unset (the default): no deadline" in fv["deadline_secs"].help
