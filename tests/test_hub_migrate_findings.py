"""hub-migrate, case by case: each finding and each refusal (the code left
as it is, with the reason and what to do)."""

import pytest

from hub_migrate import findings
from hub_migrate import migrate
from tests import hub_migrate_cases as cases


REFUSED = {
    "passed to another function": """
        def model_fn(features, labels, mode):
          m = hub.Module("handle")
          return build_tower(m, features)
        """,
    "a signature chosen at run time": """
        def model_fn(features, labels, mode, params):
          m = hub.Module("handle")
          return m(features["x"], signature=params["signature"])
        """,
    "calls that disagree on the signature in a model_fn": """
        def model_fn(features, labels, mode):
          m = hub.Module("handle")
          return m(features["x"], signature="a") + m(features["y"])
        """,
    "assigned twice": """
        def model_fn(features, labels, mode):
          m = hub.Module("a")
          m = hub.Module("b")
          return m(features["x"])
        """,
    "stored on an object": """
        class Tower:
          def __init__(self):
            self.m = hub.Module("handle")
        """,
    "its attributes read": """
        def model_fn(features, labels, mode):
          m = hub.Module("handle")
          return m(features["x"]), m.variables
        """,
    "exported (Module.export is gone)": """
        m = hub.Module("handle")
        m.export("path", session)
        """,
    "imported by name": """
        from tensorflow_hub import Module
        m = Module("handle")
        """,
}


@pytest.mark.parametrize("source", REFUSED.values(), ids=REFUSED)
def test_refusals_leave_the_code_and_say_why(source):
  before, out, found = cases.migrate(source)
  assert out == before
  assert set(cases.codes(found)) == {"module-not-rewritten"}, found
  finding = found[0]
  assert "hub.Module is not rewritten" in finding.message
  assert "see docs/migrating.md" in finding.message
  # The finding names a line of the case that mentions the module.
  assert "m" in before.splitlines()[finding.line - 1].lower()


def test_refusal_messages_say_what_to_do():
  found = {name: cases.migrate(source)[2][0].message
           for name, source in REFUSED.items()}
  assert "passed to `build_tower`" in found["passed to another function"]
  assert ("chooses its signature at run time (signature=params"
          "[\"signature\"])") in found["a signature chosen at run time"]
  assert "build one layer per choice" in found[
      "calls that disagree on the signature in a model_fn"]
  assert "tf.saved_model.save" in found["exported (Module.export is gone)"]
  assert "import tensorflow_hub as hub" in found["imported by name"]


FINDINGS = {
    "regularization collection with a trainable layer": ("""
        def model_fn(features, labels, mode):
          m = hub.KerasLayer("handle", trainable=True)
          loss = tf.reduce_sum(m(features["x"]))
          return loss + tf.compat.v1.losses.get_regularization_loss()
        """, ["collections"]),
    "... fixed by hand: the layer's losses added": ("""
        def model_fn(features, labels, mode):
          m = hub.KerasLayer("handle", trainable=True)
          loss = tf.reduce_sum(m(features["x"])) + sum(m.losses)
          return loss + tf.compat.v1.losses.get_regularization_loss()
        """, []),
    "... with a frozen layer there is nothing to add": ("""
        def model_fn(features, labels, mode):
          m = hub.KerasLayer("handle")
          loss = tf.reduce_sum(m(features["x"]))
          return loss + tf.compat.v1.losses.get_regularization_loss()
        """, []),
    "update ops, trainable variables and minimize, by collection": ("""
        def model_fn(features, labels, mode, params):
          m = hub.Module("handle", trainable=params["fine_tune"])
          loss = tf.reduce_sum(m(features["x"]))
          updates = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)
          weights = tf.compat.v1.get_collection("trainable_variables")
          more = tf.compat.v1.trainable_variables()
          return tf.compat.v1.train.AdamOptimizer().minimize(loss)
        """, ["collections"] * 4),
    "... fixed: training= passed, var_list given": ("""
        def model_fn(features, labels, mode):
          m = hub.KerasLayer("handle", trainable=True)
          loss = tf.reduce_sum(m(features["x"], training=True))
          updates = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)
          return tf.compat.v1.train.AdamOptimizer().minimize(
              loss, var_list=m.trainable_weights)
        """, []),
    "fine-tuning a model used with tags or a signature": ("""
        def model_fn(features, labels, mode):
          m = hub.Module("handle", trainable=True, tags={"train"})
          return m(features["x"], signature="sig")
        """, ["trainable-tf1"]),
    "... the same on a KerasLayer": ("""
        layer = hub.KerasLayer("h", trainable=True, signature="s", output_key="o")
        """, ["trainable-tf1"]),
    "the TF1 export and feature-column APIs": ("""
        from tensorflow_hub import load_module_spec
        spec = hub.create_module_spec(module_fn)
        column = hub.text_embedding_column("text", "handle")
        """, ["removed-api"] * 3),
    "a session config made elsewhere": ("""
        config = tf.estimator.RunConfig(session_config=make_session_config())
        """, ["session-config"]),
    "a session config passed by position": ("""
        config = tf.estimator.RunConfig("m", None, 100, None, 600, proto)
        """, ["session-config"]),
}


@pytest.mark.parametrize("source,codes", FINDINGS.values(), ids=FINDINGS)
def test_findings(source, codes):
  _, _, found = cases.migrate(source)
  assert cases.codes(found) == codes, found
  for finding in found:
    assert finding.line > 2 and str(finding).startswith(
        "case.py:%d:" % finding.line)


def test_findings_name_the_layer_and_the_fix():
  message = cases.migrate(FINDINGS[
      "regularization collection with a trainable layer"][0])[2][0].message
  assert "+ sum(m.losses)" in message
  text = [f.message for f in cases.migrate(FINDINGS[
      "the TF1 export and feature-column APIs"][0])[2]]
  assert any("apply hub.KerasLayer(handle) to the text feature" in m
             for m in text)


def test_device_filters_note_only_where_filters_are_dropped():
  _, _, dropped = cases.migrate("""
      proto = tf.compat.v1.ConfigProto()
      config = tf.estimator.RunConfig(session_config=proto)
      """)
  _, _, kept = cases.migrate("""
      proto = tf.compat.v1.ConfigProto(device_filters=["/job:ps"])
      config = tf.estimator.RunConfig(session_config=proto)
      """)
  assert cases.codes(dropped, findings.NOTE) == ["device-filters"]
  assert "config.replace(session_config=" in dropped[0].message
  assert not kept


def test_a_run_config_in_code_without_hub_is_left_alone():
  source = "import tensorflow as tf\nconfig = tf.estimator.RunConfig()\n"
  result = migrate.migrate_source(source.encode(), target_tf="2.15")
  assert not result.changed and not result.findings
