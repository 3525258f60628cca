"""Starting `python -m cluster.local` from tests, as a user would.

The command line comes from cluster.local.command_line (the one place that
spells it; scripts/benchmark.py uses it too). Tests run the launcher in a
working directory whose demo_assets/ holds the session's example models
(the `demo_cwd` fixture), so that with no model flags it runs the demo.
"""

import os
import subprocess

from cluster import local

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=REPO)


def command(run_dir, trainer_args=(), **cluster_settings):
  """The launcher's command line (see cluster.local.command_line)."""
  return local.command_line(run_dir=str(run_dir),
                            trainer_args=list(trainer_args),
                            **cluster_settings)


def run(cwd, run_dir, trainer_args=(), timeout_secs=400, env=None,
        **cluster_settings):
  """Runs the launcher to its end (`env`: more environment for it and its
  tasks); returns the CompletedProcess."""
  return subprocess.run(command(run_dir, trainer_args, **cluster_settings),
                        cwd=str(cwd), capture_output=True, text=True,
                        env=dict(ENV, **(env or {})), timeout=timeout_secs,
                        check=False)


def start(cwd, run_dir, output, trainer_args=(), **cluster_settings):
  """Starts the launcher in the background, its output into `output`."""
  return subprocess.Popen(command(run_dir, trainer_args, **cluster_settings),
                          cwd=str(cwd), stdout=output,
                          stderr=subprocess.STDOUT, env=ENV)


def demo_flags(assets):
  """The demo's trainer flags, spelled out: configs/digits.cfg on the
  session's assets (for tasks started without a demo_assets/ to find)."""
  return ["--flagfile=" + os.path.join(REPO, "configs", "digits.cfg"),
          "--module_handle=" + assets.digits_model,
          "--train_files=" + assets.data("digits_train.tfrecord"),
          "--eval_files=" + assets.data("digits_eval.tfrecord")]
