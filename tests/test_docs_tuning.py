"""The commands docs/tuning.md shows, run as written (tests/test_docs.py says
what that means, and checks that every command is listed). HOW: which test
runs each here, or why none can."""

import json

import pytest
import yaml

from tests import doc_commands

# (page, first words) -> the test that runs the command, or why it cannot
# run here.
HOW = {
    ("docs/tuning.md", "python -m cluster.tune"):
        "test_a_study_runs_resumes_and_its_best_reruns (tests/"
        "test_tune_study.py runs it, then the same study resumed, "
        "interrupted and rerun)",
    ("docs/tuning.md", "python -m cluster.vertex"):
        "test_the_tuning_service_commands",
    ("docs/tuning.md", "gcloud ai hp-tuning-jobs create"):
        "why not: gcloud and Vertex AI need a Google Cloud project and the "
        "network; test_the_tuning_service_commands parses the file with "
        "Vertex AI's own HyperparameterTuningJob type",
    ("docs/tuning.md", "python -m cluster.tfjob"):
        "test_the_tuning_service_commands",
}


def test_the_tuning_service_commands(workdir):
  """docs/tuning.md's HyperparameterTuningJob, as gcloud would read it
  (Vertex AI's own type parses it), and its Katib Experiment, without
  `| kubectl apply -f -` (no Kubernetes here; tests/test_tune.py checks
  the Experiment against Katib's models)."""
  aiplatform_v1 = pytest.importorskip("google.cloud.aiplatform_v1")
  command = doc_commands.find("docs/tuning.md", "python -m cluster.vertex")
  assert command.text.endswith("> hptune.yaml")
  doc_commands.ok(doc_commands.run(command.text, workdir, timeout=120))
  with open(workdir / "hptune.yaml") as f:
    job = aiplatform_v1.types.HyperparameterTuningJob.from_json(
        json.dumps(yaml.safe_load(f)))
  assert (job.max_trial_count, job.parallel_trial_count) == (16, 4)
  assert [p.parameter_id for p in job.study_spec.parameters] == [
      "learning_rate", "hidden_units", "batch_size"]
  command = doc_commands.find("docs/tuning.md", "python -m cluster.tfjob")
  text, piped = command.text.split(" | ")
  assert piped == "kubectl apply -f -"
  experiment = yaml.safe_load(doc_commands.ok(doc_commands.run(
      text, workdir, timeout=120)).stdout)
  assert experiment["kind"] == "Experiment"
  assert experiment["spec"]["maxTrialCount"] == 16

