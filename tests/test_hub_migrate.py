"""hub-migrate, case by case: each rewrite.

Every case is TF1 source in, the expected source out. Each rewritten output
is migrated again and must not change (idempotence). No TensorFlow is
imported here: the tool reads code. test_hub_migrate_findings.py has what
is only reported or refused, test_hub_migrate_cli.py files and the
command, test_hub_migrate_corpus.py runs what it writes.
"""

import textwrap

import pytest

from hub_migrate import migrate
from tests import hub_migrate_cases as cases


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
        config = tf.estimator.RunConfig(model_dir="m")
        # For TF2 SavedModels with variables on the ps (hub-migrate); this is
        # RunConfig's own session config, so its device filters stay.
        if config.session_config is not None:
            config.session_config.share_cluster_devices_in_session = True
        """),
    "a RunConfig made as an argument is named first, then set": (
        """
        def build(model_fn):
            # The estimator.
            estimator = tf.estimator.Estimator(
                model_fn, config=tf.estimator.RunConfig(model_dir="m"))
            return estimator
        """,
        """
        def build(model_fn):
            # The estimator.
            run_config = tf.estimator.RunConfig(model_dir="m")
            # For TF2 SavedModels with variables on the ps (hub-migrate); this is
            # RunConfig's own session config, so its device filters stay.
            if run_config.session_config is not None:
                run_config.session_config.share_cluster_devices_in_session = True
            estimator = tf.estimator.Estimator(
                model_fn, config=run_config)
            return estimator
        """),
    "a name the file uses is not taken for it": (
        """
        run_config = "flags"
        estimator = tf.estimator.Estimator(model_fn,
                                           config=tf.estimator.RunConfig())
        """,
        """
        run_config = "flags"
        run_config_2 = tf.estimator.RunConfig()
        # For TF2 SavedModels with variables on the ps (hub-migrate); this is
        # RunConfig's own session config, so its device filters stay.
        if run_config_2.session_config is not None:
            run_config_2.session_config.share_cluster_devices_in_session = True
        estimator = tf.estimator.Estimator(model_fn,
                                           config=run_config_2)
        """),
    "two made on one line: both named first, in order": (
        """
        pair = compare(
            tf.estimator.Estimator(model_fn, config=tf.estimator.RunConfig("a")),
            tf.estimator.Estimator(model_fn, config=tf.estimator.RunConfig("b")))
        """,
        """
        run_config = tf.estimator.RunConfig("a")
        # For TF2 SavedModels with variables on the ps (hub-migrate); this is
        # RunConfig's own session config, so its device filters stay.
        if run_config.session_config is not None:
            run_config.session_config.share_cluster_devices_in_session = True
        run_config_2 = tf.estimator.RunConfig("b")
        # For TF2 SavedModels with variables on the ps (hub-migrate); this is
        # RunConfig's own session config, so its device filters stay.
        if run_config_2.session_config is not None:
            run_config_2.session_config.share_cluster_devices_in_session = True
        pair = compare(
            tf.estimator.Estimator(model_fn, config=run_config),
            tf.estimator.Estimator(model_fn, config=run_config_2))
        """),
}


# Where moving the RunConfig would change whether or when it is made, or
# what a class holds: it gets a session config of its own, and a note that
# says what that costs.
IN_PLACE = {
    "in a lambda": (
        """
        make = lambda: tf.estimator.Estimator(
            model_fn, config=tf.estimator.RunConfig(model_dir="m"))
        """,
        """
        make = lambda: tf.estimator.Estimator(
            model_fn, config=tf.estimator.RunConfig(model_dir="m",
                                                    session_config=tf.compat.v1.ConfigProto(
                                                        share_cluster_devices_in_session=True)))
        """),
    "in a class body (the name would be a new attribute)": (
        """
        class Job:
            estimator = tf.estimator.Estimator(model_fn,
                                               config=tf.estimator.RunConfig())
        """,
        """
        class Job:
            estimator = tf.estimator.Estimator(model_fn,
                                               config=tf.estimator.RunConfig(
                                                   session_config=tf.compat.v1.ConfigProto(
                                                       share_cluster_devices_in_session=True)))
        """),
    "in a condition": (
        """
        config = tf.estimator.RunConfig() if distributed else None
        """,
        """
        config = tf.estimator.RunConfig(
            session_config=tf.compat.v1.ConfigProto(
                share_cluster_devices_in_session=True)) if distributed else None
        """),
}


@pytest.mark.parametrize("before,after", IN_PLACE.values(), ids=IN_PLACE)
def test_a_runconfig_that_cannot_move_gets_a_session_config(before, after):
  _, out, found = cases.migrate(before)
  assert out == cases.HEADER + textwrap.dedent(after), out
  assert [f.code for f in found] == ["device-filters"]
  assert "make it on a line of its own" in found[0].message
  again = migrate.migrate_source(out.encode(), "case.py", target_tf="2.15")
  assert not again.changed, again.diff()


@pytest.mark.parametrize("before,after", REWRITES.values(), ids=REWRITES)
def test_rewrites(before, after):
  header = cases.HEADER.replace("import tensorflow_hub as hub",
                          "import tensorflow_hub as tfhub"
                          ) if "tfhub." in before else cases.HEADER
  source, out, found = cases.migrate(before, header=header)
  assert out == header + textwrap.dedent(after), out
  assert not cases.codes(found)
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
        make = lambda: tf.estimator.Estimator(model_fn,
                                              config=tf.estimator.RunConfig())
        """,
        """
        make = lambda: tf.estimator.Estimator(model_fn,
                                              config=tf.estimator.RunConfig(
                                                  session_config=tf.compat.v1.ConfigProto(
                                                      experimental=tf.compat.v1.ConfigProto.Experimental(
                                                          share_cluster_devices_in_session=True))))
        """),
    "a RunConfig named first sets the experimental field": (
        """
        estimator = tf.estimator.Estimator(model_fn,
                                           config=tf.estimator.RunConfig())
        """,
        """
        run_config = tf.estimator.RunConfig()
        # For TF2 SavedModels with variables on the ps (hub-migrate); this is
        # RunConfig's own session config, so its device filters stay.
        if run_config.session_config is not None:
            run_config.session_config.experimental.share_cluster_devices_in_session = True
        estimator = tf.estimator.Estimator(model_fn,
                                           config=run_config)
        """),
    "the field set after a RunConfig goes under experimental": (
        """
        config = tf.estimator.RunConfig()
        """,
        """
        config = tf.estimator.RunConfig()
        # For TF2 SavedModels with variables on the ps (hub-migrate); this is
        # RunConfig's own session config, so its device filters stay.
        if config.session_config is not None:
            config.session_config.experimental.share_cluster_devices_in_session = True
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
  _, out, found = cases.migrate(before, target_tf="2.1")
  assert out == cases.HEADER + textwrap.dedent(after), out
  assert not cases.codes(found)
  again = migrate.migrate_source(out.encode(), "case.py", target_tf="2.1")
  assert not again.changed, again.diff()


def test_the_diff_keeps_formatting_and_comments():
  source = cases.HEADER + textwrap.dedent("""
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
