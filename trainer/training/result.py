"""What one task of a run did, as every backend reports it."""

import dataclasses
from typing import Dict, Optional

from trainer.training import warm_start


@dataclasses.dataclass(frozen=True)
class Result:
  """What a task did: final metrics (where it evaluated) and its outputs."""
  task_type: Optional[str]
  metrics: Optional[Dict[str, float]]
  checkpoint: Optional[str]
  export_dir: Optional[str]
  # The export check's line (trainer.training.export_check), where it ran.
  export_check: Optional[str] = None

  def checkpoint_step(self) -> Optional[int]:
    """The global step the final checkpoint holds (on the Estimator backend
    its name can say a step or two less: docs/training.md, "What a job
    leaves")."""
    return warm_start.global_step(self.checkpoint) if self.checkpoint else None
