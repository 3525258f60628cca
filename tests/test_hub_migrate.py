"""hub-migrate, case by case: each rewrite, each finding, each refusal.

Every case is TF1 source in, the expected source out (None: unchanged) and
the findings expected by code. Each rewritten output is migrated again and
must not change (idempotence). No TensorFlow is imported here: the tool
reads code. tests/test_hub_migrate_corpus.py runs what it writes.
"""

import io
import os
import subprocess
import sys
import textwrap

import pytest

from hub_migrate import cli
from hub_migrate import findings
from hub_migrate import migrate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADER = "import tensorflow as tf\nimport tensorflow_hub as hub\n"


def _migrate(source, target_tf="2.15", header=HEADER):
  source = header + textwrap.dedent(source)
  result = migrate.migrate_source(source.encode(), "case.py",
                                  target_tf=target_tf)
  return source, result.after.decode(), result.findings


def _codes(found, severity=findings.ERROR):
  return sorted(f.code for f in found if f.severity == severity)


REWRITES = {
    "plain call: hub picks the legacy default signature and output": (
        """
        def model_fn(features, labels, mode):
          m = hub.Module("handle", trainable=True)  # fine-tuned
          return m(features["x"])
        """,
        """
        def model_fn(features, labels, mode):
          m = hub.KerasLayer("handle", trainable=True)  # fine-tuned
          return m(features["x"])
        """),
    "a signature: its output `default`": (
        """
        def model_fn(features, labels, mode):
          m = hub.Module("handle")
          return m(features["x"], signature="sig")
        """,
        """
        def model_fn(features, labels, mode):
          m = hub.KerasLayer("handle", signature="sig", output_key="default")
          return m(features["x"])
        """),
    "a signature, outputs as a dict, named inputs in a model_fn": (
        """
        def model_fn(features, labels, mode):
          m = hub.Module("handle", tags={"foo", "bar"})
          out = m(dict(x1=features["a"], x2=features["b"]), signature="sig",
                  as_dict=True)
          return out["features"]
        """,
        """
        def model_fn(features, labels, mode):
          m = hub.KerasLayer("handle", tags={"foo", "bar"},
                             signature="sig", signature_outputs_as_dict=True)
          out = m(dict(x1=features["a"], x2=features["b"]))
          return out["features"]
        """),
    "as_dict alone: the default signature's outputs": (
        """
        def model_fn(features, labels, mode):
          m = hub.Module("handle")
          return m(features["x"], as_dict=True)["default"]
        """,
        """
        def model_fn(features, labels, mode):
          m = hub.KerasLayer("handle",
                             signature="default", signature_outputs_as_dict=True)
          return m(features["x"])["default"]
        """),
    "built and called at once, positional arguments": (
        """
        def model_fn(features, labels, mode):
          return hub.Module("handle", False, "embed")(features["x"], "sig")
        """,
        """
        def model_fn(features, labels, mode):
          return hub.KerasLayer("handle", trainable=False, name="embed",
                                signature="sig", output_key="default")(features["x"])
        """),
    "the seed's low-level form, outside a model_fn": (
        """
        def outputs(x1, x2):
          m = hub.Module("handle", tags={"foo", "bar"})
          tensors_out_dict = m(dict(x1=x1, x2=x2), signature="sig", as_dict=True)
          return tensors_out_dict
        """,
        """
        def outputs(x1, x2):
          m = hub.load("handle", tags={"foo", "bar"})
          tensors_out_dict = m.signatures["sig"](x1=x1, x2=x2)
          return tensors_out_dict
        """),
    "low-level: a dict literal, one output, two signatures": (
        """
        m = hub.Module("handle", trainable=False)
        distance = m({"x1": a, "x2": b}, signature="sig")
        features = m(dict(x=a), signature="default", as_dict=True)
        """,
        """
        m = hub.load("handle")
        distance = m.signatures["sig"](x1=a, x2=b)["default"]
        features = m.signatures["default"](x=a)
        """),
    "another alias of tensorflow_hub; a call spread over lines": (
        """
        def model_fn(features, labels, mode):
          layer = tfhub.Module(
              "handle",
              tags={"train"},
          )
          return layer(features["x"],
                       signature="image_feature_vector")
        """,
        """
        def model_fn(features, labels, mode):
          layer = tfhub.KerasLayer(
              "handle",
              tags={"train"},
              signature="image_feature_vector",
              output_key="default",
          )
          return layer(features["x"])
        """),
    "a named ConfigProto with the experimental field, for TF >= 2.2": (
        """
        session_config = tf.compat.v1.ConfigProto()
        session_config.experimental.share_cluster_devices_in_session = True
        config = tf.estimator.RunConfig(session_config=session_config)
        """,
        """
        session_config = tf.compat.v1.ConfigProto()
        session_config.share_cluster_devices_in_session = True
        config = tf.estimator.RunConfig(session_config=session_config)
        """),
    "a named ConfigProto without the field gets it; filters kept": (
        """
        proto = tf.compat.v1.ConfigProto(allow_soft_placement=True)
        proto.device_filters.extend(["/job:ps", "/job:chief"])
        config = tf.estimator.RunConfig(model_dir="m", session_config=proto)
        """,
        """
        proto = tf.compat.v1.ConfigProto(allow_soft_placement=True,
                                         share_cluster_devices_in_session=True)
        proto.device_filters.extend(["/job:ps", "/job:chief"])
        config = tf.estimator.RunConfig(model_dir="m", session_config=proto)
        """),
    "an inline ConfigProto; the experimental argument moves up": (
        """
        a = tf.estimator.RunConfig(session_config=tf.compat.v1.ConfigProto())
        b = tf.estimator.RunConfig(session_config=tf.compat.v1.ConfigProto(
            experimental=tf.compat.v1.ConfigProto.Experimental(
                share_cluster_devices_in_session=True)))
        """,
        """
        a = tf.estimator.RunConfig(session_config=tf.compat.v1.ConfigProto(
            share_cluster_devices_in_session=True))
        b = tf.estimator.RunConfig(session_config=tf.compat.v1.ConfigProto(
            share_cluster_devices_in_session=True))
        """),
    "a RunConfig without a session config, in code that uses hub": (
        """
        config = tf.estimator.RunConfig(model_dir="m")
        """,
        """
        config = tf.estimator.RunConfig(model_dir="m",
                                        session_config=tf.compat.v1.ConfigProto(
                                            share_cluster_devices_in_session=True))
        """),
}


@pytest.mark.parametrize("before,after", REWRITES.values(), ids=REWRITES)
def test_rewrites(before, after):
  header = HEADER.replace("import tensorflow_hub as hub",
                          "import tensorflow_hub as tfhub"
                          ) if "tfhub." in before else HEADER
  source, out, found = _migrate(before, header=header)
  assert out == header + textwrap.dedent(after), out
  assert not _codes(found)
  # Idempotent: a second run changes nothing.
  again = migrate.migrate_source(out.encode(), "case.py", target_tf="2.15")
  assert not again.changed, again.diff()
  assert source != out


BEFORE_TF_2_2 = {
    "the top-level field goes under experimental": (
        """
        proto = tf.compat.v1.ConfigProto()
        proto.share_cluster_devices_in_session = True
        config = tf.estimator.RunConfig(session_config=proto)
        """,
        """
        proto = tf.compat.v1.ConfigProto()
        proto.experimental.share_cluster_devices_in_session = True
        config = tf.estimator.RunConfig(session_config=proto)
        """),
    "a new session config sets the experimental field": (
        """
        config = tf.estimator.RunConfig()
        """,
        """
        config = tf.estimator.RunConfig(
            session_config=tf.compat.v1.ConfigProto(
                experimental=tf.compat.v1.ConfigProto.Experimental(
                    share_cluster_devices_in_session=True)))
        """),
    "a ConfigProto gets an experimental argument": (
        """
        proto = tf.compat.v1.ConfigProto(log_device_placement=True)
        config = tf.estimator.RunConfig(session_config=proto)
        """,
        """
        proto = tf.compat.v1.ConfigProto(log_device_placement=True,
                                         experimental=tf.compat.v1.ConfigProto.Experimental(
                                             share_cluster_devices_in_session=True))
        config = tf.estimator.RunConfig(session_config=proto)
        """),
}


@pytest.mark.parametrize("before,after", BEFORE_TF_2_2.values(),
                         ids=BEFORE_TF_2_2)
def test_rewrites_for_tf_before_2_2(before, after):
  _, out, found = _migrate(before, target_tf="2.1")
  assert out == HEADER + textwrap.dedent(after), out
  assert not _codes(found)
  again = migrate.migrate_source(out.encode(), "case.py", target_tf="2.1")
  assert not again.changed, again.diff()


def test_the_diff_keeps_formatting_and_comments():
  source = HEADER + textwrap.dedent("""
      def model_fn(features, labels, mode):
        # The encoder.   (odd   spacing kept)
        m = hub.Module( "handle" ,trainable = True )  # trailing comment
        return m(features["x"])
      """)
  result = migrate.migrate_source(source.encode(), "case.py",
                                  target_tf="2.15")
  assert result.diff().splitlines()[2:] == [
      "@@ -3,5 +3,5 @@",
      " ",
      " def model_fn(features, labels, mode):",
      "   # The encoder.   (odd   spacing kept)",
      '-  m = hub.Module( "handle" ,trainable = True )  # trailing comment',
      '+  m = hub.KerasLayer( "handle" ,trainable = True )  # trailing '
      "comment",
      '   return m(features["x"])']


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
  before, out, found = _migrate(source)
  assert out == before
  assert set(_codes(found)) == {"module-not-rewritten"}, found
  finding = found[0]
  assert "hub.Module is not rewritten" in finding.message
  assert 'see the README, "Migrating TF1 code"' in finding.message
  # The finding names a line of the case that mentions the module.
  assert "m" in before.splitlines()[finding.line - 1].lower()


def test_refusal_messages_say_what_to_do():
  found = {name: _migrate(source)[2][0].message
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
  _, _, found = _migrate(source)
  assert _codes(found) == codes, found
  for finding in found:
    assert finding.line > 2 and str(finding).startswith(
        "case.py:%d:" % finding.line)


def test_findings_name_the_layer_and_the_fix():
  message = _migrate(FINDINGS[
      "regularization collection with a trainable layer"][0])[2][0].message
  assert "+ sum(m.losses)" in message
  text = [f.message for f in _migrate(FINDINGS[
      "the TF1 export and feature-column APIs"][0])[2]]
  assert any("apply hub.KerasLayer(handle) to the text feature" in m
             for m in text)


def test_device_filters_note_only_where_filters_are_dropped():
  _, _, dropped = _migrate("""
      proto = tf.compat.v1.ConfigProto()
      config = tf.estimator.RunConfig(session_config=proto)
      """)
  _, _, kept = _migrate("""
      proto = tf.compat.v1.ConfigProto(device_filters=["/job:ps"])
      config = tf.estimator.RunConfig(session_config=proto)
      """)
  assert _codes(dropped, findings.NOTE) == ["device-filters"]
  assert "config.replace(session_config=" in dropped[0].message
  assert not kept


def test_a_run_config_in_code_without_hub_is_left_alone():
  source = "import tensorflow as tf\nconfig = tf.estimator.RunConfig()\n"
  result = migrate.migrate_source(source.encode(), target_tf="2.15")
  assert not result.changed and not result.findings


def _write(folder, name, text):
  path = os.path.join(str(folder), name)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    f.write(text)
  return path


def test_files_and_folders(tmp_path):
  """A broken file is reported with its line and skipped; the others are
  migrated; a RunConfig in one file gets its session config because
  another file of the run uses hub; --write writes; a second run changes
  nothing."""
  model = _write(tmp_path, "project/model.py", HEADER + textwrap.dedent("""
      def model_fn(features, labels, mode):
        return hub.Module("h")(features["x"])
      """))
  config = _write(tmp_path, "project/config.py", textwrap.dedent("""
      import tensorflow as tf
      CONFIG = tf.estimator.RunConfig()
      """))
  broken = _write(tmp_path, "project/broken.py", "def f(:\n  pass\n")
  _write(tmp_path, "project/.hidden/skipped.py", HEADER + "hub.Module('h')\n")
  out = io.StringIO()
  code = cli.run([str(tmp_path / "project")], write=False, target_tf="2.15",
                 show_diff=True, out=out)
  report = out.getvalue()
  assert code == 1  # The broken file.
  assert "%s:1:" % broken in report and "[syntax]" in report
  assert "+  return hub.KerasLayer(\"h\")(features[\"x\"])" in report
  assert "session_config=tf.compat.v1.ConfigProto(" in report
  assert "skipped.py" not in report
  assert report.strip().endswith(
      "hub-migrate: 3 Python files, 2 to rewrite (--write applies) (target "
      "TF 2.15), 1 error, 1 note.")
  with open(model) as f:
    assert "hub.Module" in f.read()  # Not written without --write.
  mode = os.stat(config).st_mode
  assert cli.run([str(tmp_path / "project")], write=True, target_tf="2.15",
                 show_diff=False, out=io.StringIO()) == 1
  with open(model) as f:
    assert "hub.KerasLayer" in f.read()
  assert os.stat(config).st_mode == mode
  os.remove(broken)
  out = io.StringIO()
  assert cli.run([str(tmp_path / "project")], write=True, target_tf="2.15",
                 show_diff=True, out=out) == 0
  assert "0 rewritten" in out.getvalue() and "---" not in out.getvalue()
  assert not [n for n in os.listdir(tmp_path / "project")
              if n.startswith(".hub-migrate-")]


def _command(*args, cwd=REPO):
  return subprocess.run([sys.executable, "-m", "hub_migrate", *args],
                        cwd=cwd, capture_output=True, text=True, check=False,
                        env=dict(os.environ, PYTHONPATH=REPO))


def test_command_line(tmp_path):
  path = _write(tmp_path, "a.py", HEADER + "m = hub.Module('h')\ny = m(x)\n")
  done = _command(path, "--target_tf=2.1")
  assert done.returncode == 0, done.stderr
  assert "+m = hub.KerasLayer('h')" in done.stdout
  assert "(target TF 2.1)" in done.stdout
  missing = _command(str(tmp_path / "nope.py"))
  assert missing.returncode == 2
  assert missing.stderr.strip() == (
      "error: `%s` is neither a file nor a folder; give Python files or "
      "folders that hold them." % (tmp_path / "nope.py"))
  bad = _command(path, "--target_tf=two")
  assert bad.returncode == 2
  assert "TensorFlow version 'two' is not of the form MAJOR.MINOR" in (
      bad.stderr)
  nothing = _command()
  assert nothing.returncode == 2 and "give the Python files" in nothing.stderr
  assert "--target_tf" in _command("--helpfull").stdout
