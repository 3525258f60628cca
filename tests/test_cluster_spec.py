"""cluster.engines.spec and harness.tf_config: clusters and TF_CONFIG, pure."""

import json

import pytest

from cluster.engines import spec
from harness import errors
from harness import tf_config
from tests import flagged


def _cluster():
  return spec.build_cluster(num_workers=2, num_ps=2, ports=iter(range(
      2220, 2230)))


def test_build_cluster_shape_and_addresses():
  assert _cluster() == {
      "chief": ["localhost:2220"],
      "worker": ["localhost:2221", "localhost:2222"],
      "ps": ["localhost:2223", "localhost:2224"]}


def test_tasks_include_evaluator_only_when_asked():
  names = [t.name for t in spec.tasks(_cluster(), evaluator=True)]
  assert names == ["ps-0", "ps-1", "chief-0", "worker-0", "worker-1",
                   "evaluator-0"]
  assert "evaluator-0" not in [t.name for t in spec.tasks(_cluster())]


def test_evaluator_tf_config_names_training_cluster_without_itself():
  config = tf_config.make(_cluster(), tf_config.Task("evaluator"))
  assert config["task"] == {"type": "evaluator", "index": 0}
  assert "evaluator" not in config["cluster"]


# TF_CONFIG as the engines write it (docs/engines.md).
TFJOB_WORKER = {
    "cluster": {"chief": ["job-chief-0.default.svc:2222"],
                "worker": ["job-worker-0.default.svc:2222",
                           "job-worker-1.default.svc:2222"],
                "ps": ["job-ps-0.default.svc:2222"],
                "evaluator": ["job-evaluator-0.default.svc:2222"]},
    "task": {"type": "worker", "index": 1}, "environment": "cloud"}


def test_tfjob_tf_config_keeps_all_but_the_evaluator_in_the_cluster():
  parsed = tf_config.parse(json.dumps(TFJOB_WORKER))
  assert parsed.task == tf_config.Task("worker", 1)
  assert parsed.evaluator == "job-evaluator-0.default.svc:2222"
  expected = json.loads(json.dumps(TFJOB_WORKER))
  del expected["cluster"]["evaluator"]
  assert parsed.for_estimator() == expected


def test_tfjob_evaluator_is_the_evaluator_outside_the_cluster():
  config = dict(TFJOB_WORKER, task={"type": "evaluator", "index": 0})
  parsed = tf_config.parse(json.dumps(config))
  assert parsed.task == tf_config.Task("evaluator", 0)
  assert "evaluator" not in parsed.for_estimator()["cluster"]
  with pytest.raises(errors.ClusterError, match="one evaluator, index 0"):
    tf_config.parse(json.dumps(dict(config, task={"type": "evaluator",
                                                  "index": 1})))


def test_ai_platform_keys_are_kept():
  config = {"cluster": {"chief": ["10.0.0.1:2222"], "ps": ["10.0.0.2:2222"]},
            "task": {"type": "ps", "index": 0, "trial": "3"},
            "job": {"job_name": "x"}, "environment": "cloud"}
  parsed = tf_config.parse(json.dumps(config))
  assert parsed.evaluator is None
  assert parsed.for_estimator() == config


def test_tf_config_round_trip():
  cluster = _cluster()
  text = json.dumps(tf_config.make(cluster, tf_config.Task("worker", 1)))
  parsed = tf_config.parse(text)
  assert (parsed.cluster, parsed.task) == (cluster,
                                           tf_config.Task("worker", 1))
  assert parsed.for_estimator() == json.loads(text)


@pytest.mark.parametrize("text,message", [
    ("{not json", "TF_CONFIG is not valid JSON"),
    ('{"task": {"type": "chief"}}', 'TF_CONFIG needs "cluster"'),
    ('{"cluster": {"worker": ["h:1"], "ps": ["h:2"]}, "task": {"type": '
     '"worker", "index": 0}}', "The cluster has no chief"),
    ('{"cluster": {"chief": ["h:1", "h:2"], "ps": ["h:3"]}, "task": '
     '{"type": "chief", "index": 0}}', "has 2 chiefs (h:1, h:2)"),
    ('{"cluster": {"chief": ["h:1"], "ps": ["h:2"]}, "task": {"type": '
     '"ps", "index": 3}}', "TF_CONFIG names task ps 3, but its cluster has 1 "
     "ps task (index 0); its jobs are: chief (1), ps (1)."),
    ('{"cluster": {"chief": ["h:1"], "worker": ["h:2", "h:3"]}, "task": '
     '{"type": "worker", "index": 2}}', "TF_CONFIG names task worker 2, but "
     "its cluster has 2 worker tasks (indices 0 to 1)"),
    # The issue's own example: no worker job at all.
    ('{"cluster": {"chief": ["h:1"]}, "task": {"type": "worker", "index": '
     '3}}', "TF_CONFIG names task worker 3, but its cluster has no worker "
     "tasks; its jobs are: chief (1)."),
    ('{"cluster": {"chief": ["h:1"], "ps": ["h:2"]}, "task": {"type": '
     '"boss", "index": 0}}', "TF_CONFIG names task type 'boss'"),
    ('{"cluster": {"chief": ["h:1"], "evaluator": ["h:2", "h:3"]}, "task": '
     '{"type": "chief"}}', "TF_CONFIG's cluster lists evaluator ['h:2', "
     "'h:3']; Estimator runs one evaluator"),
    ('{"cluster": {"chief": ["h:x1"], "ps": ["h:2"]}, "task": {"type": '
     '"chief", "index": 0}}', "Port 'x1' of address 'h:x1' is not a number"),
    ('{"cluster": {"chief": ["h:1"], "master": ["h:2"]}, "task": {"type": '
     '"chief"}}', "TF_CONFIG's cluster has both a chief and a master"),
    ('{"cluster": {"chief": ["h:1"], "ps": ["h:1"]}, "task": {"type": '
     '"chief"}}', "chief-0 and ps-0 both use h:1"),
    ('{"cluster": {"chief": ["h:1"]}, "task": "chief"}',
     '"task" must be {"type": ..., "index": ...}'),
])
def test_bad_tf_config_is_named(text, message):
  with pytest.raises(errors.ClusterError) as raised:
    tf_config.parse(text)
  assert message in str(raised.value)


@pytest.mark.parametrize("workers,ps,message", [
    (-1, 1, "--num_workers (-1) must be >= 0"),
    (1, 0, "--num_ps (0) must be >= 1"),
])
def test_bad_cluster_shape(workers, ps, message):
  with pytest.raises(errors.ClusterError) as raised:
    spec.build_cluster(num_workers=workers, num_ps=ps, ports=iter(range(9)))
  assert message in flagged.as_flags(raised.value)


def test_cluster_and_task_flags():
  assert spec.parse_cluster_flag(
      "chief=10.0.0.1:2222; worker=10.0.0.2:2222,10.0.0.3:2222;"
      "ps=10.0.0.4:2222") == {
          "chief": ["10.0.0.1:2222"],
          "worker": ["10.0.0.2:2222", "10.0.0.3:2222"],
          "ps": ["10.0.0.4:2222"]}
  assert spec.parse_task_flag("worker:1") == tf_config.Task("worker", 1)
  with pytest.raises(errors.ClusterError, match="is not TYPE:INDEX"):
    spec.parse_task_flag("worker")
  with pytest.raises(errors.ClusterError, match="is not JOB=HOST:PORT"):
    spec.parse_cluster_flag("chief:10.0.0.1:2222")
  with pytest.raises(errors.ClusterError, match="not of the form HOST:PORT"):
    spec.parse_cluster_flag("chief=2222")


def test_cluster_file(tmp_path):
  path = tmp_path / "cluster.json"
  path.write_text(json.dumps({"cluster": _cluster(), "task": {}}))
  assert spec.load_cluster_file(str(path)) == _cluster()
  path.write_text("{")
  with pytest.raises(errors.ClusterError, match="is not valid JSON"):
    spec.load_cluster_file(str(path))
  with pytest.raises(errors.ClusterError, match="Cannot read cluster file"):
    spec.load_cluster_file(str(tmp_path / "missing.json"))


def test_a_shape_is_the_same_on_every_engine():
  """spec.Shape: the roles in pool order (Vertex's pools are by position),
  an absent evaluator counted 0, and one check with the engine named."""
  shape = spec.Shape(num_workers=3, num_ps=2, evaluator=False)
  assert shape.roles() == [("chief", 1), ("worker", 3), ("ps", 2),
                           ("evaluator", 0)]
  assert shape.present() == [("chief", 1), ("worker", 3), ("ps", 2)]
  assert shape.num_tasks == 6
  # The order of Vertex AI's pools, as TF_CONFIG's reader maps them.
  assert [role for role, _ in shape.roles()] == list(
      tf_config.WORKER_POOLS.values())
  assert spec.Shape().num_tasks == 5  # The flags' defaults: 2 workers.
  with pytest.raises(errors.FlagError,
                     match=r"^`num_workers` \(0\) must be >= 1 on Slurm\.$"):
    spec.Shape(num_workers=0).check(min_workers=1, engine="Slurm")
  with pytest.raises(errors.ClusterError, match=r"`num_ps` \(0\) must be"):
    spec.Shape(num_ps=0).check()
  spec.Shape(num_workers=0).check()  # The Estimator's chief trains alone.
