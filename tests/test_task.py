"""trainer.task: flagfiles, the config files, the demo, and bad input from the
CLI (the flags themselves: tests/test_flags.py)."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from example_kit import datasets
from harness import errors
from harness import tf_config
from tests import backend_jobs
from tests import processes
from trainer import task
from trainer.config import cli
from trainer.config import job as job_lib
from trainer.plan import model_dir as model_dir_lib
from trainer.plan import resolve

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "configs")


def _flags(argv):
  """A private FlagValues with the trainer's flags, parsed from argv."""
  return cli.new_flag_values(argv)


def _good_args(assets, tmp_path):
  return ["--module_handle=" + assets.digits_model,
          "--train_files=" + assets.data("digits_train.tfrecord"),
          "--eval_files=" + assets.data("digits_eval.tfrecord"),
          "--input_map=inputs=pixels", "--n_classes=5",
          "--model_dir=" + str(tmp_path / "model")]


@pytest.mark.parametrize("config", sorted(
    name for name in os.listdir(CONFIGS) if name.endswith(".cfg")))
def test_config_files_describe_valid_jobs(assets, config, tmp_path,
                                          monkeypatch):
  monkeypatch.chdir(tmp_path)
  os.symlink(assets.root, "demo_assets")
  with open(os.path.join(CONFIGS, config)) as f:
    assert f.readline().startswith(
        "# python -m trainer.task --flagfile=configs/%s" % config)
  fv = _flags(["--flagfile=" + os.path.join(CONFIGS, config)])
  plan = backend_jobs.check(cli.job_config(fv))
  assert plan.train_files and plan.eval_files


def _pixels(count=64, value="1"):
  return " ".join([value] * count)


def _write_bad_data(root):
  """Data files with one problem each; returns name -> path."""
  root.mkdir()
  rows = {
      "extra_field.csv": "pixels,label\n%s,1\n%s,2,9\n" % (_pixels(),
                                                           _pixels()),
      "not_a_number.csv": "pixels,label\n%s,1\n%s,0\n" % (
          _pixels(), _pixels(63) + " x7"),
      "short_vector.csv": "pixels,label\n%s,1\n" % _pixels(10),
      "label_range.csv": "pixels,label\n%s,1\n%s,7\n" % (_pixels(),
                                                          _pixels()),
      "empty.csv": "pixels,label\n",
  }
  paths = {}
  for name, text in rows.items():
    (root / name).write_text(text)
    paths[name] = str(root / name)
  bad_labels = datasets.Examples({
      "pixels": np.ones([3, 64], np.float32),
      "label": np.array([0, 1, 9], np.int64)})
  paths["label_range.tfrecord"] = datasets.write_tfrecord(
      bad_labels, str(root / "label_range.tfrecord"))
  return paths


def _other_models_checkpoint(model_dir, assets, flags_txt=True):
  """A model_dir holding a finished run of a regression model."""
  backend_jobs.run(backend_jobs.check(job_lib.JobConfig(
      model=job_lib.ModelOptions(assets.digits_model),
      head=job_lib.HeadConfig(n_classes=0),
      data=job_lib.DataOptions(
          train_files=[assets.data("digits_train.csv")],
          eval_files=[assets.data("digits_eval.csv")],
          input_map={"inputs": "pixels"}, validate_data="off"),
      run=job_lib.RunOptions(train_steps=2), model_dir=str(model_dir))),
                   log=lambda line: None)
  if flags_txt:
    fv = _flags(["--module_handle=" + assets.digits_model, "--n_classes=0",
                 "--model_dir=" + str(model_dir)])
    model_dir_lib.write_record(cli.flag_lines(fv),
                               os.path.join(model_dir, cli.FLAGS_FILE))


BAD_INPUTS = [
    (["--class_weights=1,2"], "--class_weights (1,2) must be 5 positive "
     "numbers, one per class (--n_classes=5)"),
    (["--class_weights=1,2,x,1,1"], "--class_weights=1,2,x,1,1 must be "
     "numbers, e.g. 1,4,1"),
    (["--module_handle=/no/such/model"], "/no/such/model does not exist"),
    (["--module_handle={tmp}"], "is not a SavedModel"),
    (["--module_handle={tf1}", "--trainable"],
     "TF1 Hub format and cannot be fine-tuned"),
    (["--module_handle={tf1}", "--tags=nope"],
     "--tags=nope matches no meta graph"),
    (["--module_handle={tf1}", "--tags=foo,bar", "--signature=nope"],
     "--signature=nope is not in"),
    (["--module_handle={tf1}", "--tags=foo,bar", "--signature=sig",
      "--output_key=nope"], "--output_key=nope is not an output"),
    (["--input_map=pixels=inputs"],
     "names model input pixels, which the model does not have"),
    (["--input_map=inputs=pics"],
     "maps inputs to column pics, which the data does not have"),
    (["--input_map=inputs"], "not of the form MODEL_INPUT=DATA_COLUMN"),
    (["--train_files={tmp}/none*.tfrecord"], "matches no file"),
    (["--train_files={tmp}"], "is a directory, not a readable file"),
    (["--label_key=digit"], "--label_key=digit is not a column"),
    (["--n_classes=1"], "must be 0 (regression) or at least 2"),
    (["--batch_size=0"], "--batch_size (0) must be a positive integer"),
    (["--hidden_units=a,b"], "--hidden_units=a,b must be integers"),
    (["--save_checkpoints_steps=5", "--save_checkpoints_secs=5"],
     "not both"),
    (["--export_dir={tmp}"], "already exists"),
    (["--train_files={bad[extra_field.csv]}"],
     "extra_field.csv:3 has 3 fields; the header has 2 (pixels,label)"),
    (["--eval_files={bad[not_a_number.csv]}"],
     "not_a_number.csv:3: column pixels holds 'x7', which is not a number"),
    (["--train_files={bad[short_vector.csv]}"],
     "short_vector.csv:2: column pixels holds 10 numbers; the model input "
     "takes 64"),
    (["--train_files={bad[label_range.csv]}"],
     "label_range.csv:3: label 7 is outside [0, 5) (--n_classes=5)"),
    (["--train_files={bad[label_range.tfrecord]}"],
     "label_range.tfrecord: record 2: label 9 is outside [0, 5)"),
    (["--train_files={bad[empty.csv]}"], "empty.csv hold no examples"),
    (["ENV:TF_CONFIG={{bad json"], "TF_CONFIG is not valid JSON"),
    (["ENV:TF_CONFIG={{\"cluster\": {{\"worker\": [\"h:1\"]}}, \"task\": "
      "{{\"type\": \"worker\", \"index\": 0}}}}"],
     "The cluster has no chief"),
    # These two train the other model first: seconds each.
    pytest.param(["OTHER_MODEL"], "holds a checkpoint (%s) of a different "
                 "model: --n_classes was 0, now 5. Use a new --model_dir, or "
                 "--overwrite_model_dir", marks=pytest.mark.slow),
    pytest.param(["OTHER_MODEL_NO_FLAGS"], "but no flags.txt, so it may "
                 "belong to another model", marks=pytest.mark.slow),
]


def _listing(path):
  if not os.path.exists(path):
    return None
  return sorted(os.path.join(d, f) for d, _, files in os.walk(path)
                for f in files)


@pytest.mark.parametrize("bad,message", BAD_INPUTS)
def test_bad_input_is_one_line_and_writes_nothing(assets, tmp_path, capsys,
                                                  bad, message):
  scratch = tmp_path / "scratch"
  scratch.mkdir()
  bad_data = _write_bad_data(tmp_path / "bad")
  model_dir = tmp_path / "model"
  environ = {}
  if bad[0].startswith("OTHER_MODEL"):
    _other_models_checkpoint(model_dir, assets,
                             flags_txt=bad[0] == "OTHER_MODEL")
    message = message.replace("%s", os.path.join(model_dir, "model.ckpt-2"))
    bad = []
  elif bad[0].startswith("ENV:"):
    name, _, value = bad[0][4:].partition("=")
    environ[name] = value.format()
    bad = []
  bad = [a.format(tmp=scratch, tf1=assets.tf1_hub_model, bad=bad_data)
         for a in bad]
  before = _listing(model_dir)
  fv = _flags(_good_args(assets, tmp_path) + bad)
  assert task.run(fv, environ=environ) == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith("error: "), err
  assert message in err[0]
  assert _listing(model_dir) == before


@pytest.mark.slow
def test_overwrite_model_dir_moves_the_other_model_aside(assets, tmp_path):
  model_dir = tmp_path / "model"
  _other_models_checkpoint(model_dir, assets)
  fv = _flags(_good_args(assets, tmp_path) + ["--overwrite_model_dir"])
  moved = []
  plan = resolve.prepare(fv, None, log=lambda line: None)
  assert os.path.exists(model_dir)  # The pre-flight writes nothing.
  resolve.settle_model_dir(plan, fv.overwrite_model_dir, log=moved.append)
  assert not os.path.exists(model_dir)
  aside = [p for p in os.listdir(tmp_path) if p.startswith("model.old-")]
  assert len(aside) == 1 and "moved it to" in moved[0]
  assert os.path.exists(tmp_path / aside[0] / "model.ckpt-2.index")


@pytest.mark.slow
def test_same_model_resumes_from_its_model_dir(assets, tmp_path):
  model_dir = tmp_path / "model"
  _other_models_checkpoint(model_dir, assets)
  new_export = "--export_dir=" + str(tmp_path / "export2")
  fv = _flags(_good_args(assets, tmp_path)[:-2] + [
      "--n_classes=0", "--model_dir=" + str(model_dir), new_export])
  assert resolve.prepare(fv, None).model_dir_conflict == ""
  # Not the chief: the model directory is the chief's to judge.
  fv = _flags(_good_args(assets, tmp_path) + [new_export])
  worker = tf_config.Task("worker", 0)
  assert resolve.prepare(fv, worker).model_dir_conflict == ""
  assert resolve.prepare(fv, None).model_dir_conflict


def _run_cli(args, cwd):
  env = dict(os.environ, PYTHONPATH=REPO)
  return subprocess.run([sys.executable, "-m", "trainer.task"] + args,
                        cwd=cwd, env=env, capture_output=True, text=True,
                        timeout=300, check=False)


@pytest.mark.slow
def test_cli_reports_bad_input_without_traceback(assets, tmp_path):
  proc = _run_cli(["--module_handle=/no/such/model", "--n_classes=2",
                   "--train_files=x", "--eval_files=x",
                   "--model_dir=" + str(tmp_path / "model")], tmp_path)
  assert proc.returncode == 1
  assert processes.our_lines(proc.stderr) == [
      "error: Model path /no/such/model does not exist; --module_handle "
      "must be the directory of a SavedModel (one that holds "
      "saved_model.pb)."]
  assert not os.path.exists(tmp_path / "model")


@pytest.mark.slow
def test_demo_runs_with_no_flags_but_a_short_budget(demo_cwd):
  """The README's main job: no model flags, the demo (configs/digits.cfg)."""
  demo_assets = os.path.join(str(demo_cwd), "demo_assets")
  proc = _run_cli(["--train_steps=60", "--log_every_steps=20",
                   "--model_dir=" + str(demo_cwd / "model")], demo_cwd)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "running the demo" in proc.stderr
  # The line at the multiple of --log_every_steps (the Estimator reads the
  # global step as the step's own run left it: a step either way).
  assert re.search(r"step (39|40|41)/60  loss", proc.stderr), proc.stderr
  # Stdout: a line per evaluation as it comes (for the tuning services:
  # trainer/training/metric_report.py), then the summary.
  lines = proc.stdout.splitlines()
  summary = lines[lines.index("Done."):]
  assert all(" Evaluation at global_step=" in line
             for line in lines[:lines.index("Done.")]), lines
  assert summary[1].startswith("Eval on %s after step 60: accuracy " %
                               os.path.join(demo_assets, "data",
                                            "digits_eval.tfrecord"))
  accuracy = float(summary[1].split("accuracy ")[1].split(",")[0])
  assert accuracy > 0.8
  assert summary[3] == "Export: %s" % (demo_cwd / "model" / "export")
  with open(demo_cwd / "model" / cli.FLAGS_FILE) as f:
    resolved = f.read().splitlines()
  assert "--module_handle=%s" % os.path.join(
      demo_assets, "models", "digits") in resolved
  assert "--train_steps=60" in resolved
  assert "--trainable" in resolved


def test_the_demo_is_the_digits_config(demo_cwd, monkeypatch):
  """No model or data flag: every flag the user did not set comes from
  configs/digits.cfg, but the model directory, which is new per run."""
  monkeypatch.chdir(demo_cwd)
  demo_job = resolve.job_from_flags(_flags(["--train_steps=7"]),
                                 log=lambda line: None)
  config_job = cli.job_config(_flags([
      "--flagfile=" + os.path.join(CONFIGS, "digits.cfg"),
      "--train_steps=7"]))
  assert demo_job.model_dir.startswith(str(demo_cwd / "runs" / "demo-"))
  assert os.path.abspath(demo_job.model.module_handle) == os.path.abspath(
      config_job.model.module_handle)
  assert demo_job.head == config_job.head and demo_job.run == config_job.run
  assert [os.path.abspath(f) for f in config_job.data.train_files] == list(
      demo_job.data.train_files)


@pytest.mark.parametrize("own", [
    ["--train_files=mine.csv"], ["--eval_files=mine.csv"],
    ["--input_map=x=text"], ["--label_key=y"], ["--tags=serve"],
    ["--module_handle="]])
def test_a_model_or_data_flag_without_a_model_is_not_the_demo(
    own, demo_cwd, monkeypatch):
  """The demo runs only with no model or data flag: with any, the job is the
  user's, and a missing --module_handle is said, never taken from the
  demo (whose input map the user never wrote)."""
  monkeypatch.chdir(demo_cwd)
  logged = []
  with pytest.raises(errors.FlagError) as raised:
    resolve.resolve_flags(_flags(own + ["--n_classes=2"]),
                          log=logged.append, build_demo=False)
  name = own[0][2:].split("=")[0]
  assert str(raised.value).startswith("`module_handle` is missing: ")
  if name != "module_handle":
    assert "`%s` is given" % name in str(raised.value)
  assert not logged  # Not a word of the demo.
  # Flags that are neither say nothing of a model or data: the demo.
  assert resolve.resolve_flags(
      _flags(["--train_steps=7", "--batch_size=8", "--notrainable"]),
      log=logged.append, build_demo=False).module_handle == os.path.abspath(
          "demo_assets/models/digits")


@pytest.mark.slow
def test_check_only_describes_the_run_and_writes_nothing(assets, tmp_path):
  proc = _run_cli(_good_args(assets, tmp_path) + ["--check_only"], tmp_path)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = proc.stdout.splitlines()
  assert out[0] == "Pre-flight passed; nothing was written."
  assert re.match(r"Backend: (estimator|keras) \(auto: TF [\d.]+ ", out[1])
  assert out[2] == ("Task: local: a single process (no TF_CONFIG): trains, "
                    "evaluates and exports.")
  assert out[3] == ("Model: %s: SavedModel, called through __call__, "
                    "frozen." % assets.digits_model)
  assert out[4] == "Inputs: inputs <- column pixels (float32 (None, 64))."
  assert "Model directory: %s: new." % (tmp_path / "model") in out
  assert not os.path.exists(tmp_path / "model")


@pytest.mark.slow
def test_a_single_process_without_eval_files_trains_and_exports(
    assets, tmp_path):
  args = [a for a in _good_args(assets, tmp_path)
          if not a.startswith("--eval_files")]
  proc = _run_cli(args + ["--train_steps=20"], tmp_path)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert proc.stdout.splitlines()[0] == "Done."
  assert "Eval on" not in proc.stdout
  assert os.path.isdir(tmp_path / "model" / "export")
  assert os.path.exists(tmp_path / "model" / "model.ckpt-20.index")


def test_an_evaluator_without_eval_files_is_refused(assets, tmp_path,
                                                    capsys):
  args = [a for a in _good_args(assets, tmp_path)
          if not a.startswith("--eval_files")]
  environ = {"TF_CONFIG": '{"cluster": {"chief": ["h:1"], "ps": ["h:2"]}, '
                          '"task": {"type": "evaluator", "index": 0}}'}
  assert task.run(_flags(args), environ=environ) == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert err == ["error: TF_CONFIG makes this task the evaluator, but "
                 "--eval_files is empty: there is nothing to evaluate."]


# Every required setting left out, as a new user would: one line each.
# (--eval_files is optional: above.)
MISSING = [
    ("module_handle", "--module_handle is missing: --train_files, "
     "--eval_files, --input_map are given, so this is a job of your own"),
    ("train_files", "--train_files is required"),
    ("n_classes", "--n_classes is required"),
    ("model_dir", "--model_dir is required: where checkpoints go"),
]


@pytest.mark.slow
@pytest.mark.parametrize("left_out,message", MISSING)
def test_a_required_flag_left_out_is_one_line(assets, tmp_path, left_out,
                                              message):
  args = [a for a in _good_args(assets, tmp_path)
          if not a.startswith("--%s=" % left_out)]
  proc = _run_cli(args, tmp_path)
  assert proc.returncode == 1, proc.stderr[-3000:]
  assert "Traceback" not in proc.stderr
  lines = processes.our_lines(proc.stderr)
  assert len(lines) == 1 and lines[0].startswith("error: " + message), lines


def test_resolving_flags_leaves_the_users_as_parsed(demo_cwd, monkeypatch):
  """The demo's config and Vertex AI's directories make a new set of flags;
  the parsed ones are not written over (the user's flags win over the
  config's)."""
  monkeypatch.chdir(demo_cwd)
  fv = _flags(["--train_steps=7"])
  resolved = resolve.resolve_flags(
      fv, log=lambda line: None, build_demo=False,
      environ={"AIP_MODEL_DIR": "gs://b/out/model/"})
  assert (fv.module_handle, fv.model_dir, fv.export_dir) == ("", "", "")
  assert resolved.train_steps == 7  # The config says 300.
  assert resolved.module_handle == os.path.abspath(
      "demo_assets/models/digits")
  assert resolved.model_dir.startswith(os.path.abspath("runs/demo-"))
  assert resolved.export_dir == "gs://b/out/model"
