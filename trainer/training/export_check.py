"""Every job proves its own export before it says it succeeded.

At the end of a job that exports (one process, or a cluster's chief; both
backends; the harness's head, `--model` and `--model_fn`), before the
export is renamed into place (the ps end once it exists, and the trained
model's variables live on them), it is loaded as a serving user loads it
(`tf.saved_model.load`, its `serving_default` signature: new objects,
never the training ones) and fed
the first `--verify_export_rows` rows of the evaluation data, as raw
columns by name. Its outputs are compared with the trained model's
predictions on the same rows (the backend computes those: the Keras
backend from the model it trained, the Estimator's `predict` from the final
checkpoint), output by output, on the names both have:

* floating point outputs (probabilities, logits, predictions) agree within
  `RTOL` of their size plus `ATOL`, on every row;
* the others (classes) are equal on at least `AGREEMENT` of the rows.

The verdict goes into the run's summary, and into EXPORT_DIR.check.json
beside the export (rows compared, the largest difference and where, the
agreement). A mismatch fails the job (`ExportCheckError`, one line naming
the largest difference) and the export is kept for inspection as
EXPORT_DIR.failed-check: nothing is left where a server would take it.
0 rows turns the check off, and a job without evaluation data says it
could not check: neither ever says "verified".
"""

import dataclasses
import json
import time
from typing import Callable, Dict, Mapping, Optional, Tuple

import numpy as np
import tensorflow as tf

from harness import errors
from harness import files

RTOL = 1e-3
ATOL = 1e-4
AGREEMENT = 0.99
RECORD_SUFFIX = ".check.json"
FAILED_SUFFIX = ".failed-check"


class ExportCheckError(errors.HarnessError):
  """The export does not serve what the trained model predicts."""


@dataclasses.dataclass(frozen=True)
class Verdict:
  """How the export agreed with the trained model on `rows` rows."""
  rows: int
  compared: Tuple[str, ...]
  largest: float  # The largest difference of a floating point output.
  largest_output: str
  agreed: int  # Rows whose other outputs (classes) are all equal.
  why_not: str = ""  # Set where nothing could be compared.
  failures: Tuple[str, ...] = ()
  seconds: float = 0.0  # What the check took.

  @property
  def ok(self) -> bool:
    return not self.why_not and not self.failures

  def describe(self) -> str:
    """The summary's line."""
    if self.why_not:
      return "Export check: not done: %s." % self.why_not
    state = "verified" if self.ok else "FAILED"
    return ("Export check: %s on %d evaluation row(s), served as a server "
            "would: outputs %s; largest difference %.3g (%s); all outputs "
            "agree on %d/%d rows (%.1f s)." % (
                state, self.rows, ", ".join(self.compared), self.largest,
                self.largest_output or "no floating point output",
                self.agreed, self.rows, self.seconds))

  def record(self) -> dict:
    return dict(dataclasses.asdict(self), ok=self.ok)


def not_done(why: str) -> Verdict:
  return Verdict(rows=0, compared=(), largest=0.0, largest_output="",
                 agreed=0, why_not=why)


def served(export_dir: str, features: Mapping[str, np.ndarray]
           ) -> Dict[str, np.ndarray]:
  """The export's `serving_default` outputs for `features` (each input it
  takes, by name; the others left out, as a client would)."""
  signature = tf.saved_model.load(export_dir).signatures["serving_default"]
  taken = signature.structured_input_signature[1]
  missing = sorted(set(taken) - set(features))
  if missing:
    raise ExportCheckError(
        "The export %s takes %s, which the evaluation data does not give; "
        "its serving signature is not the model's." % (
            export_dir, ", ".join(missing)))
  outputs = signature(**{name: tf.constant(features[name], spec.dtype)
                         for name, spec in taken.items()})
  return {name: value.numpy() for name, value in outputs.items()}


def compare(served_outputs: Mapping[str, np.ndarray],
            trained: Mapping[str, np.ndarray], rows: int) -> Verdict:
  """Output by output, on the names both have."""
  names = tuple(sorted(set(served_outputs) & set(trained)))
  if not names:
    return not_done(
        "the export's outputs (%s) share no name with the trained model's "
        "predictions (%s)" % (", ".join(sorted(served_outputs)),
                               ", ".join(sorted(trained))))
  largest, largest_output, failures = 0.0, "", []
  rows_equal = np.ones([rows], bool)
  for name in names:
    got, want = np.asarray(served_outputs[name]), np.asarray(trained[name])
    if got.shape != want.shape:
      failures.append("%s has shape %s served but %s trained" % (
          name, list(got.shape), list(want.shape)))
      continue
    if np.issubdtype(want.dtype, np.floating):
      difference = np.abs(got.astype(np.float64) - want.astype(np.float64))
      worst = float(np.max(difference)) if difference.size else 0.0
      if worst >= largest:
        largest, largest_output = worst, name
      if not np.all(difference <= ATOL + RTOL * np.abs(want)):
        failures.append("%s differs by up to %.3g" % (name, worst))
    else:
      rows_equal &= np.all((got == want).reshape([rows, -1]), axis=1)
  agreed = int(np.sum(rows_equal))
  if agreed < AGREEMENT * rows:
    failures.append("only %d of %d rows agree on %s" % (
        agreed, rows, ", ".join(n for n in names if not np.issubdtype(
            np.asarray(trained[n]).dtype, np.floating))))
  return Verdict(rows=rows, compared=names, largest=largest,
                 largest_output=largest_output, agreed=agreed,
                 failures=tuple(failures))


def record_path(export_dir: str) -> str:
  return export_dir.rstrip("/") + RECORD_SUFFIX


def check(export_dir: str, staged: str,
          features: Mapping[str, np.ndarray],
          predict: Callable[[], Mapping[str, np.ndarray]],
          log: Callable[[str], None] = print) -> Verdict:
  """Serves `features` with the export (read from `staged`, where it waits
  to be renamed to `export_dir`: the cluster's other tasks end once the
  export exists, and the trained model's variables may live on them),
  compares with `predict()` (the trained model's predictions on the same
  rows), writes the record beside `export_dir` and says the verdict.

  Raises:
    ExportCheckError: they differ; the export is then moved to
      EXPORT_DIR.failed-check, and the record names what differed.
  """
  started = time.monotonic()
  rows = len(next(iter(features.values())))
  verdict = dataclasses.replace(
      compare(served(staged, features), predict(), rows),
      seconds=time.monotonic() - started)
  write_record(export_dir, verdict)
  log(verdict.describe())
  if not verdict.ok and not verdict.why_not:
    kept = export_dir.rstrip("/") + FAILED_SUFFIX
    if tf.io.gfile.exists(kept):
      tf.io.gfile.rmtree(kept)
    tf.io.gfile.rename(staged, kept)
    raise ExportCheckError(
        "The export does not serve what the trained model predicts on %d "
        "evaluation rows: %s; it is kept for inspection as %s (%s says "
        "more)." % (rows, "; ".join(verdict.failures), kept,
                    record_path(export_dir)))
  return verdict


def write_record(export_dir: str, verdict: Verdict) -> None:
  files.write_text(record_path(export_dir),
                   json.dumps(verdict.record(), indent=1, sort_keys=True),
                   tf.io.gfile)


def described(export_dir: str) -> Optional[str]:
  """The summary's line of the check written beside `export_dir` (for the
  launchers, which read it after the chief has gone), or None."""
  for path in (record_path(export_dir),
               record_path(export_dir.rstrip("/") + FAILED_SUFFIX)):
    if tf.io.gfile.exists(path):
      with tf.io.gfile.GFile(path) as f:
        fields = json.load(f)
      fields.pop("ok", None)
      fields["compared"] = tuple(fields["compared"])
      fields["failures"] = tuple(fields["failures"])
      return Verdict(**fields).describe()
  return None


def verify(export_dir: str, staged: str, rows: int,
           read_rows: Optional[Callable[[int], tuple]],
           predict: Callable[[Mapping[str, np.ndarray], np.ndarray],
                             Mapping[str, np.ndarray]],
           log: Callable[[str], None] = print) -> Verdict:
  """A backend's check: `read_rows(rows)` gives (features, labels) of the
  first evaluation rows (None: the job has no evaluation data), and
  `predict(features, labels)` the trained model's predictions on them;
  `check` says the rest. With no rows to read, says why it did not check."""
  not_checked = skipped(rows, read_rows is not None)
  if not_checked:
    log(not_checked.describe())
    return not_checked
  features, labels = read_rows(rows)
  return check(export_dir, staged, features,
               lambda: predict(features, labels), log)


def checked_export(export: Callable[[Callable[[str], None]], str],
                   verify_staged: Callable[[str], Verdict]
                   ) -> Tuple[str, Verdict]:
  """Runs `export(before_publishing)`, a backend's export that calls
  `before_publishing(staged)` on the written export before renaming it
  into place, with `verify_staged` as that call: (the export's directory,
  the check's verdict)."""
  verdicts = []
  export_dir = export(lambda staged: verdicts.append(verify_staged(staged)))
  return export_dir, verdicts[0]


def skipped(rows: int, has_eval_data: bool) -> Optional[Verdict]:
  """The verdict where no check runs: off, or nothing to serve."""
  if rows <= 0:
    return not_done("off (--verify_export_rows=0)")
  if not has_eval_data:
    return not_done("no evaluation data (--eval_files) to serve it")
  return None
