r"""Builds the example hub models and data sets (no model hub needed).

  python scripts/make_hub_models.py --out=demo_assets

Writes models/{digits,text,tf1_hub} and data/ under --out; items that
already exist are kept. See trainer/demo.py for the layout and
trainer/hub_models.py for how each model is made.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from trainer import demo  # pylint: disable=g-import-not-at-top

_OUT = flags.DEFINE_string("out", "demo_assets",
                           "Directory to build the models and data into.")


def main(argv):
  del argv  # Unused.
  assets = demo.prepare(_OUT.value)
  print("Models and data are in %s" % assets.root)


if __name__ == "__main__":
  app.run(main)
