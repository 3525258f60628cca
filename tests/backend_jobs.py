"""Jobs run in this process on a chosen backend, for the tests of both.

`BACKENDS` parametrizes a test over the backends (each marked with its
name: `-m estimator`, `-m keras`); where this TF has no tf.estimator the
Estimator's cases are not collected (tests/conftest.py says so in the
header). `check` and `run` are what trainer.task does with a job.
"""

import pytest

from trainer.config import backends
from trainer.plan import preflight

BACKENDS = [pytest.param("estimator", marks=pytest.mark.estimator),
            pytest.param("keras", marks=pytest.mark.keras)]
ESTIMATOR_HERE = backends.choose_here("auto").name == backends.ESTIMATOR


def check(job, **kwargs) -> preflight.Plan:
  """The pre-flight with the backend `job.run.backend` names."""
  choice = backends.choose_here(job.run.backend)
  backend = backends.load(choice)
  return preflight.check(job, backend=choice,
                         model_variables=backend.model_variables,
                         check_model=backend.check_model, **kwargs)


def run(plan: preflight.Plan, config=None, log=print):
  return backends.load(plan.backend).run(plan, config, log=log)
