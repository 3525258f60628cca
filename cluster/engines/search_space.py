"""A study's search space: which trainer flags a tuner varies, and over what.

The space file is YAML, one entry per trainer flag:

  learning_rate: {type: double, min: 0.0001, max: 0.3, scale: log}
  hidden_units: {type: categorical, values: ['', '64', '64,32']}
  batch_size: {type: integer, min: 16, max: 128}
  dropout: {type: discrete, values: [0.0, 0.1, 0.3]}

Types are those of Vertex AI's and Katib's studies: `double` and `integer`
(a range, `scale: linear` by default or `log`), `categorical` (strings, as
the flag is written) and `discrete` (numbers). This module parses and checks
the space's own shape and writes it as each tuner wants it (pure): Optuna's
distributions are built by cluster/study.py, Vertex AI's `parameters` and
Katib's here. Whether each name is a trainer flag that takes the values is
checked against the trainer by cluster/tuning.py.
"""

import dataclasses
import math
from typing import (Any, Dict, Iterable, List, Mapping, Optional, Sequence,
                    Tuple)

import yaml

from harness import errors

DOUBLE, INTEGER, CATEGORICAL, DISCRETE = ("double", "integer", "categorical",
                                          "discrete")
TYPES = (DOUBLE, INTEGER, CATEGORICAL, DISCRETE)
LINEAR, LOG = "linear", "log"
SCALES = (LINEAR, LOG)
_KEYS = {DOUBLE: {"type", "min", "max", "scale"},
         INTEGER: {"type", "min", "max", "scale"},
         CATEGORICAL: {"type", "values"}, DISCRETE: {"type", "values"}}


class SpaceError(errors.FlagError):
  """A search space that no trial could be drawn from."""


@dataclasses.dataclass(frozen=True)
class Param:
  """One trainer flag the study varies."""
  name: str
  type: str
  low: Optional[float] = None
  high: Optional[float] = None
  scale: str = LINEAR
  values: Tuple[Any, ...] = ()

  def extremes(self) -> Tuple[Any, ...]:
    """The values a trial may take at the edges: every value of a list,
    both ends of a range (what the trainer's own checks are run on)."""
    if self.values:
      return self.values
    return (self.low, self.high)


@dataclasses.dataclass(frozen=True)
class Study:
  """What a study optimizes and how many trials it runs."""
  metric: str
  goal: str  # "maximize" or "minimize"
  trials: int
  parallel: int = 1
  max_failed_trials: int = 0


def flag_value(value: Any) -> str:
  """How a drawn value is written as a flag's value."""
  if isinstance(value, bool):
    return str(value).lower()
  return str(value)  # A float's str is its repr: 0.01, 1e-05, 100.0.


def flag_args(params: Mapping[str, Any]) -> List[str]:
  """`--name=value` for each drawn value, in the space's order."""
  return ["--%s=%s" % (name, flag_value(value))
          for name, value in params.items()]


def without(lines: Sequence[str], names: Iterable[str]) -> List[str]:
  """The flag lines that set none of `names` (a trial sets those)."""
  spellings = set()
  for name in names:
    spellings.update(("--%s=" % name, "--%s" % name, "--no%s" % name))
  return [line for line in lines
          if line.split("=", 1)[0] + ("=" if "=" in line else "")
          not in spellings]


def _number(name: str, key: str, value: Any, integer: bool) -> float:
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise SpaceError("Search space: %s: `%s`=%r is not a number." % (
        name, key, value))
  if integer and not float(value).is_integer():
    raise SpaceError("Search space: %s: `%s`=%r is not a whole number (type "
                     "integer)." % (name, key, value))
  if not math.isfinite(value):
    raise SpaceError("Search space: %s: `%s`=%r is not finite." % (
        name, key, value))
  return int(value) if integer else float(value)


def _param(name: Any, entry: Any) -> Param:
  if not isinstance(name, str) or not name:
    raise SpaceError("Search space: %r is not a flag name." % (name,))
  if not isinstance(entry, dict) or "type" not in entry:
    raise SpaceError(
        "Search space: %s: give a mapping with a `type` (one of %s), e.g. "
        "{type: double, min: 0.001, max: 0.1, scale: log}; got %r." % (
            name, ", ".join(TYPES), entry))
  kind = entry["type"]
  if kind not in TYPES:
    raise SpaceError("Search space: %s: type %r is not one of %s." % (
        name, kind, ", ".join(TYPES)))
  unknown = sorted(set(entry) - _KEYS[kind])
  if unknown:
    raise SpaceError("Search space: %s: %s %s not a key of a %s parameter "
                     "(its keys: %s)." % (
                         name, ", ".join(map(str, unknown)),
                         "is" if len(unknown) == 1 else "are", kind,
                         ", ".join(sorted(_KEYS[kind]))))
  if kind in (DOUBLE, INTEGER):
    for key in ("min", "max"):
      if key not in entry:
        raise SpaceError("Search space: %s: a %s parameter needs `min` and "
                         "`max`." % (name, kind))
    low = _number(name, "min", entry["min"], kind == INTEGER)
    high = _number(name, "max", entry["max"], kind == INTEGER)
    if not low < high:
      raise SpaceError("Search space: %s: `min` (%s) must be below `max` "
                       "(%s)." % (name, low, high))
    scale = entry.get("scale", LINEAR)
    if scale not in SCALES:
      raise SpaceError("Search space: %s: scale %r is not one of %s." % (
          name, scale, ", ".join(SCALES)))
    if scale == LOG and low <= 0:
      raise SpaceError("Search space: %s: a log scale needs `min` > 0 (it "
                       "is %s)." % (name, low))
    return Param(name, kind, low=low, high=high, scale=scale)
  values = entry.get("values")
  if not isinstance(values, list) or not values:
    raise SpaceError("Search space: %s: a %s parameter needs `values`, a "
                     "non-empty list." % (name, kind))
  if kind == CATEGORICAL:
    if not all(isinstance(v, str) for v in values):
      raise SpaceError(
          "Search space: %s: categorical values are strings, as the flag is "
          "written (quote them: '64,32', '0.5'); got %r." % (name, values))
  else:
    # Whole numbers stay ints, so an integer flag takes them as written.
    values = [_number(name, "values", v, integer=isinstance(v, int))
              for v in values]
  if len(set(values)) != len(values):
    raise SpaceError("Search space: %s: `values` %r repeat a value." % (
        name, values))
  if kind == DISCRETE:
    values = sorted(values)
  return Param(name, kind, values=tuple(values))


def parse(text: str, source: str = "The search space") -> Tuple[Param, ...]:
  """The parameters `text` (YAML) describes, in its order.

  Raises:
    SpaceError: the first problem, naming the parameter and what is valid.
  """
  try:
    data = yaml.safe_load(text)
  except yaml.YAMLError as e:
    raise SpaceError("%s is not YAML: %s" % (source, " ".join(
        str(e).split()))) from e
  if not isinstance(data, dict) or not data:
    raise SpaceError(
        "%s must map trainer flags to their ranges, e.g. `learning_rate: "
        "{type: double, min: 0.0001, max: 0.3, scale: log}`; got %r." % (
            source, data))
  return tuple(_param(name, entry) for name, entry in data.items())


def load(path: str) -> Tuple[Param, ...]:
  try:
    with open(path) as f:
      text = f.read()
  except OSError as e:
    raise SpaceError("Search space %s cannot be read: %s" % (
        path, e.strerror or e)) from e
  return parse(text, source="Search space " + path)


def vertex_parameters(space: Tuple[Param, ...]) -> List[Dict[str, Any]]:
  """Vertex AI's `studySpec.parameters` (ParameterSpec, JSON names)."""
  specs = []
  for p in space:
    spec: Dict[str, Any] = {"parameterId": p.name}
    if p.type == DOUBLE:
      spec["doubleValueSpec"] = {"minValue": p.low, "maxValue": p.high}
    elif p.type == INTEGER:
      # int64 in the proto: JSON carries it as a string.
      spec["integerValueSpec"] = {"minValue": str(p.low),
                                  "maxValue": str(p.high)}
    elif p.type == CATEGORICAL:
      spec["categoricalValueSpec"] = {"values": list(p.values)}
    else:
      spec["discreteValueSpec"] = {"values": list(p.values)}
    if p.type in (DOUBLE, INTEGER):
      spec["scaleType"] = ("UNIT_LOG_SCALE" if p.scale == LOG else
                           "UNIT_LINEAR_SCALE")
    specs.append(spec)
  return specs


_KATIB_TYPES = {DOUBLE: "double", INTEGER: "int", CATEGORICAL: "categorical",
                DISCRETE: "discrete"}


def katib_parameters(space: Tuple[Param, ...]) -> List[Dict[str, Any]]:
  """Katib's `spec.parameters` (ParameterSpec: values are strings)."""
  specs = []
  for p in space:
    if p.values:
      feasible = {"list": [flag_value(v) for v in p.values]}
    else:
      feasible = {"min": flag_value(p.low), "max": flag_value(p.high)}
      if p.scale == LOG:
        feasible["distribution"] = "logUniform"
    specs.append({"name": p.name, "parameterType": _KATIB_TYPES[p.type],
                  "feasibleSpace": feasible})
  return specs
