"""`--export_best` on the Estimator backend: Estimator's own `BestExporter`, run
after every evaluation, with its event-file pattern set so that an evaluator
that restarts reads the best so far back (trainer.training.best_export).
"""

import tensorflow as tf

from trainer.training import best_export
from trainer.training import metric_goal


class BestExport(tf.estimator.BestExporter):
  """BestExporter that exports to `best_export.directory(model_dir)` and records which
  evaluation its export is."""

  def __init__(self, metric: str, model_dir: str, serving_input_fn):
    self._metric, self._model_dir = metric, model_dir
    self._base = best_export.directory(model_dir)

    def compare(best_eval_result, current_eval_result):
      return metric_goal.better(metric, current_eval_result[metric],
                                best_eval_result[metric])
    super().__init__(
        name="best", serving_input_receiver_fn=serving_input_fn,
        event_file_pattern=best_export.EVENT_FILE_PATTERN,
        compare_fn=compare, exports_to_keep=1)

  def export(self, estimator, export_path, checkpoint_path, eval_result,
             is_the_final_export):
    del export_path  # Estimator's MODEL_DIR/export/best: ours instead.
    written = super().export(estimator, self._base, checkpoint_path,
                             eval_result, is_the_final_export)
    if written:
      if isinstance(written, bytes):
        written = written.decode()
      best_export.write_record(self._model_dir, self._metric,
                               eval_result[self._metric],
                               eval_result["global_step"], written)
    return written
