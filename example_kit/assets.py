"""The example models and data sets, built on demand into one directory.

`prepare(root)` builds whatever is missing under `root` and returns the
paths. `python -m example_kit --out=demo_assets` does the same from the
command line; the demo (configs/digits.cfg) reads demo_assets/. Each item is written to a temporary name and renamed when complete,
so an interrupted build never leaves a half-written model behind.

Layout under root:
  models/digits       TF2 reusable SavedModel, pre-trained on half the digits
  models/text         TF2 text embedding (vocabulary asset, OOV buckets)
  models/tf1_hub      the digits model in legacy TF1 Hub format, tags
                      {foo,bar} and {}
  data/digits_{train,eval}.{tfrecord,csv}   digits 5-9 of the other half
  data/text_{train,eval}.csv                NumPy docstrings by submodule
  data/shifted_{train,eval}.{tfrecord,csv}  digits 5-9 and a shift column,
                      labelled (digit + shift) mod 5: the worked example of
                      a model of one's own (configs/your_model.cfg)
"""

import dataclasses
import os
import shutil
import tempfile
from typing import Callable

from example_kit import datasets
from example_kit import hub_models

# Digits 5-9: a small training set and a large held-out set, so that the
# benefit of pre-training shows.
DIGITS_TRAIN_FRACTION = 0.1
TEXT_TRAIN_FRACTION = 0.7
# The shifted digits: half the images (each with every shift) to train on.
SHIFTED_TRAIN_FRACTION = 0.5


@dataclasses.dataclass(frozen=True)
class DemoAssets:
  root: str

  def model(self, name: str) -> str:
    return os.path.join(self.root, "models", name)

  def data(self, name: str) -> str:
    return os.path.join(self.root, "data", name)

  @property
  def digits_model(self):
    return self.model("digits")

  @property
  def text_model(self):
    return self.model("text")

  @property
  def tf1_hub_model(self):
    return self.model("tf1_hub")


def _build_once(path: str, build: Callable[[str], object],
                log: Callable[[str], None]) -> None:
  """Runs build(tmp) and renames tmp to path, unless path exists."""
  if os.path.exists(path):
    return
  parent = os.path.dirname(path)
  os.makedirs(parent, exist_ok=True)
  log("Building %s" % path)
  staging = tempfile.mkdtemp(prefix="." + os.path.basename(path) + "-",
                             dir=parent)
  try:
    target = os.path.join(staging, os.path.basename(path))
    build(target)
    os.rename(target, path)
  finally:
    shutil.rmtree(staging, ignore_errors=True)


def _write_data(assets: DemoAssets, log) -> None:
  def digits_split():
    return datasets.split(
        datasets.digits(datasets.TRANSFER_CLASSES, datasets.TRANSFER_HALF),
        DIGITS_TRAIN_FRACTION)

  def text_split():
    return datasets.split(datasets.docstrings(), TEXT_TRAIN_FRACTION)

  def shifted_split():  # Split by image: no image in both parts.
    return [datasets.shifted(part) for part in datasets.split(
        datasets.digits(datasets.TRANSFER_CLASSES, datasets.TRANSFER_HALF),
        SHIFTED_TRAIN_FRACTION)]

  writers = [
      ("digits_train.tfrecord", digits_split, 0, datasets.write_tfrecord),
      ("digits_eval.tfrecord", digits_split, 1, datasets.write_tfrecord),
      ("digits_train.csv", digits_split, 0, datasets.write_csv),
      ("digits_eval.csv", digits_split, 1, datasets.write_csv),
      ("text_train.csv", text_split, 0, datasets.write_csv),
      ("text_eval.csv", text_split, 1, datasets.write_csv),
      ("shifted_train.tfrecord", shifted_split, 0, datasets.write_tfrecord),
      ("shifted_eval.tfrecord", shifted_split, 1, datasets.write_tfrecord),
      ("shifted_train.csv", shifted_split, 0, datasets.write_csv),
      ("shifted_eval.csv", shifted_split, 1, datasets.write_csv),
  ]
  for name, make_split, part, write in writers:
    _build_once(assets.data(name),
                lambda path, s=make_split, i=part, w=write: w(s()[i], path),
                log)


def prepare(root: str, log: Callable[[str], None] = print) -> DemoAssets:
  """Builds the example models and data under `root` where missing."""
  assets = DemoAssets(os.path.abspath(root))
  _build_once(assets.digits_model, hub_models.build_digits_model, log)
  _build_once(assets.text_model, hub_models.build_text_model, log)
  _build_once(assets.tf1_hub_model,
              lambda path: hub_models.build_tf1_hub_model(
                  path, assets.digits_model), log)
  _write_data(assets, log)
  return assets
