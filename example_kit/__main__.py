r"""Builds the example hub models and data sets (no model hub needed).

  python -m example_kit --out=demo_assets

Writes models/{digits,text,tf1_hub} and data/ under --out; items that
already exist are kept. See example_kit/assets.py for the layout and
example_kit/hub_models.py for how each model is made.
"""

from absl import app
from absl import flags

from harness import cli

_OUT = flags.DEFINE_string("out", "demo_assets",
                           "Directory to build the models and data into.")


def main(argv):
  refused = cli.refuse_arguments(argv)
  if refused is not None:
    return refused
  cli.prepare_tensorflow()
  from example_kit import assets  # pylint: disable=g-import-not-at-top
  built = assets.prepare(_OUT.value)
  print("Models and data are in %s" % built.root, flush=True)
  return 0


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags_or_exit)
