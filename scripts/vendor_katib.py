"""Writes tests/data/katib/v1beta1_models.json from Katib's Python SDK.

Katib's Experiment CRD has no schema (`x-kubernetes-preserve-unknown-fields`
on the whole object), so its SDK's models are the one machine-readable
statement of the fields: each model's JSON names, their types and which are
required. The tests validate the Experiment that `cluster.tfjob --katib`
writes against this table, without installing the SDK (it brings the
Kubernetes client, 126 MB). Run again after a Katib release:

  pip install kubeflow-katib==VERSION && python -m scripts.vendor_katib
"""

import importlib.metadata
import inspect
import json
import os

from kubeflow.katib import models

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), "tests", "data", "katib", "v1beta1_models.json")


def _required(cls, attr: str) -> bool:
  setter = getattr(cls, attr).fset
  return "must not be `None`" in inspect.getsource(setter)


def main():
  table = {}
  for name, cls in sorted(vars(models).items()):
    # Katib's own models (the module also re-exports the Kubernetes
    # client's, e.g. V1ObjectMeta, which the tests treat as any mapping).
    if not (inspect.isclass(cls) and name.startswith("V1beta1") and
            cls.__module__.startswith("kubeflow.katib.models")):
      continue
    table[name] = {
        "fields": {cls.attribute_map[a]: t
                   for a, t in sorted(cls.openapi_types.items())},
        "required": sorted(cls.attribute_map[a] for a in cls.openapi_types
                           if _required(cls, a)),
    }
  with open(OUT, "w") as f:
    json.dump({"source": "kubeflow-katib %s (kubeflow.katib.models)" %
                         importlib.metadata.version("kubeflow-katib"),
               "models": table}, f, indent=1, sort_keys=True)
    f.write("\n")
  print("%d models -> %s" % (len(table), OUT))


if __name__ == "__main__":
  main()
