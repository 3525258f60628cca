"""What one task of a run did, as every backend reports it."""

import dataclasses
from typing import Dict, Optional


@dataclasses.dataclass(frozen=True)
class Result:
  """What a task did: final metrics (where it evaluated) and its outputs."""
  task_type: Optional[str]
  metrics: Optional[Dict[str, float]]
  checkpoint: Optional[str]
  export_dir: Optional[str]
