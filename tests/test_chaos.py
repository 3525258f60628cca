"""Chaos: many kills of any task in one run of a local cluster; nothing lost.

A seeded schedule (cluster/chaos.py; the seed is printed, CHAOS_SEED=N
replays it) kills a random task of a chief, 2 workers, 2 ps and an
evaluator every 2-4 seconds until at least 10 kills have hit every role,
the chief and a ps at least twice: with SIGKILL, and with SIGTERM (a
preemption notice). Then the job must finish as if nothing happened.
"""

import re
import signal

import pytest

from cluster import chaos

pytestmark = pytest.mark.cluster
TRAIN_STEPS = 15000


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM],
                         ids=["SIGKILL", "SIGTERM"])
def test_the_job_survives_kills_of_every_role(demo_cwd, signum):
  run = chaos.ChaosRun(demo_cwd, chaos.seed_from_environment(),
                       signum=signum, train_steps=TRAIN_STEPS,
                       interval=(2.0, 4.0))
  try:
    code = run.run()
  finally:
    run.stop()
  print(chaos.describe(chaos.verify(run, code)))
  output = run.output()
  name = signal.Signals(signum).name
  died = re.findall(r"launcher: (\S+) was killed by %s \(exit code (\d+)\); "
                    r"restarting it" % name, output)
  assert len(died) == len(run.kills), (died, [k.task for k in run.kills])
  assert {code for _, code in died} == {str(128 + signum)}
