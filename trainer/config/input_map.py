"""Which data column feeds which model input.

`input_map=x1=left,x2=right` (the flag --input_map) maps model input `x1` to column `left`, and
so on. A model input left out is fed by the column of the same name; a
single-input model whose input has no column of its name is fed by the only
column that is not the label.
"""

from typing import Dict, Mapping, Sequence

from harness import errors


def parse(entries: Sequence[str]) -> Dict[str, str]:
  """['x1=left', 'x2=right'] -> {'x1': 'left', 'x2': 'right'}."""
  mapping = {}
  for entry in entries:
    name, sep, column = (part.strip() for part in entry.partition("="))
    if not sep or not name or not column:
      raise errors.FlagError(
          "`input_map` entry %r is not of the form MODEL_INPUT=DATA_COLUMN, "
          "e.g. `input_map`=x1=left,x2=right." % entry)
    if name in mapping:
      raise errors.FlagError("`input_map` names model input %s twice." % name)
    mapping[name] = column
  return mapping


def resolve(model_inputs: Sequence[str], columns: Sequence[str],
            input_map: Mapping[str, str], label_key: str) -> Dict[str, str]:
  """Model input name -> data column, for every model input.

  Raises:
    errors.FlagError: the map names a model input or a column that does not
      exist, or a model input has no column.
  """
  model_inputs, columns = list(model_inputs), list(columns)
  if label_key not in columns:
    raise errors.FlagError(
        "`label_key`=%s is not a column of the data; its columns are: %s." %
        (label_key, ", ".join(columns)))
  for name, column in input_map.items():
    if name not in model_inputs:
      raise errors.FlagError(
          "`input_map` names model input %s, which the model does not have; "
          "its inputs are: %s." % (name, ", ".join(model_inputs)))
    if column not in columns:
      raise errors.FlagError(
          "`input_map` maps %s to column %s, which the data does not have; "
          "its columns are: %s." % (name, column, ", ".join(columns)))
  features = [c for c in columns if c != label_key]
  resolved = {}
  for name in model_inputs:
    if name in input_map:
      resolved[name] = input_map[name]
    elif name in columns:
      resolved[name] = name
    elif len(model_inputs) == 1 and len(features) == 1:
      resolved[name] = features[0]
    else:
      raise errors.FlagError(
          "Model input %s has no data column: add %s=COLUMN to `input_map`, "
          "with COLUMN one of: %s." % (name, name, ", ".join(features)))
  if label_key in resolved.values():
    raise errors.FlagError(
        "The label column %s also feeds model input %s; a model must not see "
        "its label." % (label_key, [n for n, c in resolved.items()
                                    if c == label_key][0]))
  return resolved
