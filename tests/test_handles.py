"""Hub handles as users write them: URLs, archives, other file systems.

A real HTTP server on the loopback interface (tests/hub_server.py) stands
in for the model hub and counts requests.
"""

import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import tarfile

import numpy as np
import portpicker
import pytest
import tensorflow as tf
import yaml

from harness import errors
from tests import backend_jobs
from tests import flagged
from tests import hub_server
from tests import launcher
from tests import processes
from trainer.config import job as job_lib
from trainer.hub_model import handles

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=REPO)
DIGITS = "/models/digits/1"


@pytest.fixture(scope="module")
def hub(assets):
  server = hub_server.HubServer({"digits": assets.digits_model,
                                 "text": assets.text_model})
  yield server
  server.stop()


@pytest.fixture
def cache(tmp_path):
  return str(tmp_path / "cache")


def _fetch(handle, cache_dir, **popen):
  command = [sys.executable, "-m", "trainer.fetch", "--module_handle=" +
             handle, "--cache_dir=" + cache_dir]
  if popen:
    return subprocess.Popen(command, env=ENV, **popen)
  return subprocess.run(command, env=ENV, capture_output=True, text=True,
                        timeout=120, check=False)


def _digits_args(handle, tmp_path, *extra):
  return ["--module_handle=" + handle, "--trainable",
          "--train_files=" + str(tmp_path / "assets" / "data" /
                                 "digits_train.tfrecord"),
          "--eval_files=" + str(tmp_path / "assets" / "data" /
                                "digits_eval.tfrecord"),
          "--input_map=inputs=pixels", "--n_classes=5"] + list(extra)


def test_url_resolves_to_a_hub_style_cache_entry(hub, cache):
  url = hub.url(DIGITS)
  lines = []
  first = handles.resolve(url, cache, log=lines.append)
  assert first.fetched and first.path == os.path.join(
      cache, hashlib.sha1(url.encode()).hexdigest())  # hub's own layout.
  served = hub.archives["digits"]
  assert first.archive_bytes == len(served)
  assert first.sha256 == hashlib.sha256(served).hexdigest()
  assert tf.io.gfile.exists(os.path.join(first.path, "saved_model.pb"))
  assert lines[0] == "Fetching %s into %s" % (url, cache)
  assert lines[-1].startswith("Fetched %s in " % url)
  again = handles.resolve(url, cache, log=lines.append)
  assert not again.fetched and again.path == first.path
  assert again.sha256 == first.sha256
  assert hub.requests[DIGITS] == 1
  # The fetched directory names where it came from.
  assert handles.origin(first.path).handle == url
  assert handles.identity(first.path) == url


def test_archive_on_another_file_system_is_fetched(assets, cache):
  """A .tar.gz on any tf.io.gfile file system (ram:// here, as gs://)."""
  handle = "ram://hub-archives/digits.tar.gz"
  with tf.io.gfile.GFile(handle, "wb") as f:
    f.write(hub_server.archive(assets.digits_model))
  resolution = handles.resolve(handle, cache, log=lambda line: None)
  assert resolution.fetched and resolution.in_cache
  fetched, original = (tf.saved_model.load(path) for path in (
      resolution.path, assets.digits_model))
  pixels = tf.random.uniform([3, 64], seed=1)
  np.testing.assert_allclose(fetched(pixels), original(pixels), rtol=1e-6)


@pytest.mark.slow
def test_a_cache_on_another_file_system_is_refused_naming_the_variable(
    assets, tmp_path):
  """The cache is unpacked under a kernel lock: a gs:// or ram:// cache is
  refused in one line that names TFHUB_CACHE_DIR, and nothing is written
  (before, a local directory named "ram:" appeared, and the error blamed
  the handle)."""
  archive = str(tmp_path / "digits.tar.gz")
  with open(archive, "wb") as f:
    f.write(hub_server.archive(assets.digits_model))
  os.symlink(assets.root, str(tmp_path / "assets"))
  proc = subprocess.run(
      [sys.executable, "-m", "trainer.task"] + _digits_args(
          archive, tmp_path, "--model_dir=%s" % (tmp_path / "model")),
      env=dict(ENV, TFHUB_CACHE_DIR="ram://hubcache"), cwd=str(tmp_path),
      capture_output=True, text=True, timeout=300, check=False)
  assert proc.returncode == 1
  lines = processes.our_lines(proc.stderr)
  assert len(lines) == 1, lines
  assert lines[0].startswith(
      "error: The hub cache ram://hubcache (TFHUB_CACHE_DIR, else a "
      "temporary directory) is not a local directory"), lines
  assert "Set TFHUB_CACHE_DIR to such a directory" in lines[0]
  assert sorted(os.listdir(tmp_path)) == ["assets", "digits.tar.gz"]


@pytest.mark.slow
def test_a_job_on_another_file_system_trains(assets, tmp_path):
  """Model, data and model directory on ram://: every user path goes
  through tf.io.gfile (the export, as Estimator's own, needs a file
  system that renames directories: here, local)."""
  def copy_tree(local, remote):
    for directory, _, files in os.walk(local):
      relative = os.path.relpath(directory, local)
      into = remote if relative == "." else remote + "/" + relative
      tf.io.gfile.makedirs(into)
      for name in files:
        tf.io.gfile.copy(os.path.join(directory, name), into + "/" + name,
                         overwrite=True)
  copy_tree(assets.digits_model, "ram://hub/digits")
  copy_tree(os.path.join(assets.root, "data"), "ram://data")
  job = job_lib.JobConfig(
      model=job_lib.ModelOptions("ram://hub/digits", trainable=True),
      head=job_lib.HeadConfig(n_classes=5),
      data=job_lib.DataOptions(
          train_files=["ram://data/digits_train.tfrecord"],
          eval_files=["ram://data/digits_eval.tfr*"]),
      run=job_lib.RunOptions(train_steps=20, save_checkpoints_steps=10),
      model_dir="ram://runs/model", export_dir=str(tmp_path / "export"))
  plan = backend_jobs.check(job, cache_dir=str(tmp_path / "cache"))
  assert not plan.resolution.in_cache  # A directory: used in place.
  result = backend_jobs.run(plan, log=lambda line: None)
  assert result.checkpoint == "ram://runs/model/model.ckpt-20"
  assert result.metrics["accuracy"] > 0.5
  exported = tf.saved_model.load(result.export_dir)
  probabilities = exported.signatures["serving_default"](
      inputs=tf.zeros([2, 64]))["probabilities"].numpy()
  np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.slow
def test_trainer_trains_from_a_url_and_then_from_the_cache(hub, assets,
                                                           tmp_path):
  os.symlink(assets.root, str(tmp_path / "assets"))
  env = dict(ENV, TFHUB_CACHE_DIR=str(tmp_path / "cache"))
  url = hub.url(DIGITS)
  before = hub.requests[DIGITS]
  for run in ("first", "second"):
    proc = subprocess.run(
        [sys.executable, "-m", "trainer.task"] + _digits_args(
            url, tmp_path, "--train_steps=20",
            "--model_dir=%s" % (tmp_path / run)),
        env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
  assert hub.requests[DIGITS] - before == 1  # The second run: the cache.
  with open(tmp_path / "first" / "flags.txt") as f:
    recorded = f.read().splitlines()
  assert "--module_handle=" + url in recorded
  path = handles.cache_path(url, str(tmp_path / "cache"))
  sha256 = hashlib.sha256(hub.archives["digits"]).hexdigest()
  assert ("# module_handle %s resolved to %s (archive %d bytes, sha256 %s)" %
          (url, path, len(hub.archives["digits"]), sha256)) in recorded


def test_five_processes_fetch_one_url_with_one_download(hub, cache):
  url = hub.url("/models/text/1")
  before = hub.requests["/models/text/1"]
  # Long enough for them all to meet, even when their starts are spread
  # by a loaded machine (0.005 s per chunk once missed in a CI run).
  hub.chunk_delay_secs = 0.05
  try:
    running = [_fetch(url, cache, stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE, text=True) for _ in range(5)]
    results = [p.communicate(timeout=120) for p in running]
  finally:
    hub.chunk_delay_secs = 0.0
  assert [p.returncode for p in running] == [0] * 5, results
  assert {out.strip() for out, _ in results} == {
      handles.cache_path(url, cache)}
  assert hub.requests["/models/text/1"] - before == 1
  waited = [err for _, err in results if "Waiting for pid" in err]
  assert waited  # The others waited on the one download, and said so.


def test_a_download_killed_midway_does_not_delay_the_next(hub, tmp_path):
  cache = str(tmp_path / "cache")
  url = hub.url("/models/text/1?v=kill")  # Its own cache entry.
  hub.chunk_delay_secs = 0.05
  try:
    err_path = tmp_path / "killed.err"
    with open(err_path, "w") as err:
      killed = _fetch(url, cache, stdout=subprocess.DEVNULL, stderr=err)
      sent = lambda: sum(n for path, n in hub.bytes_sent.items()
                         if "v=kill" in path)
      assert processes.wait_until(lambda: sent() >= 3 * hub_server.CHUNK, 60)
      assert killed.poll() is None
      os.kill(killed.pid, signal.SIGKILL)
      killed.wait(30)
  finally:
    hub.chunk_delay_secs = 0.0
  leftovers = [n for n in os.listdir(cache) if ".tmp-" in n]
  assert leftovers  # It died with a partial download ...
  proc = _fetch(url, cache)
  assert proc.returncode == 0, proc.stderr
  assert "Waiting" not in proc.stderr  # ... and nobody waits on a dead one.
  assert proc.stdout.strip() == handles.cache_path(url, cache)
  assert [n for n in os.listdir(cache) if ".tmp-" in n] == []


@pytest.fixture
def broken(hub, tmp_path):
  """name -> a handle that cannot be loaded, and the cache it uses."""
  not_a_file = tmp_path / "file"
  not_a_file.write_text("a file, not a directory")
  dead_port = portpicker.pick_unused_port()
  truncated = tmp_path / "truncated.tar.gz"
  truncated.write_bytes(hub_server.archive(str(tmp_path))[:40])
  escaping = tmp_path / "escaping.tar.gz"
  _tar(escaping, [("../outside.txt", b"x")])
  return {
      "unreachable": ("http://127.0.0.1:%d/models/digits/1" % dead_port,
                      str(tmp_path / "cache")),
      "404": (hub.url("/missing/1"), str(tmp_path / "cache")),
      "not a SavedModel": (hub.url("/not_a_model/1"),
                           str(tmp_path / "cache")),
      "truncated, served": (hub.url("/truncated/1"), str(tmp_path / "cache")),
      "truncated, on disk": (str(truncated), str(tmp_path / "cache")),
      "cache not writable": (hub.url(DIGITS), str(not_a_file / "cache")),
      "unsafe": (str(escaping), str(tmp_path / "cache")),
  }


def _tar(path, members, links=()):
  """A .tar.gz of (name, bytes) files and (name, target) symbolic links."""
  with tarfile.open(path, "w:gz") as tar:
    for name, data in members:
      info = tarfile.TarInfo(name)
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
    for name, target in links:
      info = tarfile.TarInfo(name)
      info.type, info.linkname = tarfile.SYMTYPE, target
      tar.addfile(info)


BROKEN = [
    ("unreachable", r"the server cannot be reached \(\[Errno 111\] Connection "
     r"refused\); where there is no network, download the model elsewhere "
     r"and give --module_handle its directory or its \.tar\.gz archive "
     r"\(cache: .*/cache\)\."),
    ("404", r"the server answered HTTP 404 Not Found for "
     r"http://127\.0\.0\.1:\d+/missing/1\?tf-hub-format=compressed"),
    ("not a SavedModel", r"the archive holds no SavedModel \(saved_model\.pb"
     r"\); it holds: README\.txt"),
    ("truncated, served", r"the archive is truncated or not a \.tar\.gz"),
    ("truncated, on disk", r"the archive is truncated or not a \.tar\.gz"),
    ("cache not writable", r"the cache directory cannot be written \(Not a "
     r"directory\); set TFHUB_CACHE_DIR to a writable directory"),
    ("unsafe", r"the archive is unsafe to unpack: .*outside\.txt"),
]


@pytest.mark.parametrize("members,links,refused", [
    ([("../up.txt", b"x")], [], "../up.txt would be written outside"),
    ([("/abs.txt", b"x")], [], "/abs.txt would be written outside"),
    ([("m/ok.txt", b"x")], [("m/out", "../../etc")],
     "m/out links outside the archive's folder"),
    ([("m/ok.txt", b"x")], [("m/in", "ok.txt")], None),
])
def test_archives_are_checked_by_hand_where_python_has_no_filter(
    tmp_path, members, links, refused):
  """The Pythons without tarfile's "data" filter (before 3.11.4, which
  setup.py admits) get the same refusals, before anything is written."""
  archive = tmp_path / "a.tar.gz"
  _tar(archive, members, links)
  into = tmp_path / "into"
  into.mkdir()
  with tarfile.open(archive) as tar:
    if refused:
      with pytest.raises(handles.UnsafeMember, match=re.escape(refused)):
        handles.extract_checked(tar, str(into))
      assert not os.listdir(into) and not (tmp_path / "up.txt").exists()
    else:
      handles.extract_checked(tar, str(into))
      assert (into / "m" / "in").read_bytes() == b"x"


@pytest.mark.slow
@pytest.mark.parametrize("case,message", BROKEN)
def test_a_handle_that_cannot_be_fetched_is_one_line(broken, case, message):
  handle, cache_dir = broken[case]
  proc = _fetch(handle, cache_dir)
  assert proc.returncode == 1, proc.stdout
  assert proc.stdout == "" and "Traceback" not in proc.stderr
  lines = processes.our_lines(proc.stderr)  # Progress, then the problem.
  assert [l for l in lines if l.startswith("error: ")] == lines[-1:], lines
  assert lines[-1].startswith(
      "error: Cannot fetch --module_handle=%s: " % handle), lines
  assert re.search(message, lines[-1]), lines
  if os.path.isdir(cache_dir):  # Nothing half-written is left.
    assert [n for n in os.listdir(cache_dir) if ".tmp-" in n] == []


def test_leftovers_of_a_dead_process_are_taken_over(hub, cache):
  """A lock file and a partial download, their owner long gone."""
  url = hub.url("/models/digits/1?v=stale")
  path = handles.cache_path(url, cache)
  os.makedirs(path + ".tmp-999999")
  with open(path + ".harness-lock", "w") as f:
    f.write("pid 999999")
  resolution = handles.resolve(url, cache, log=lambda line: None)
  assert resolution.fetched
  assert not os.path.exists(path + ".tmp-999999")


def test_library_errors_name_the_setting(cache):
  with flagged.raises(errors.ModelCheckError,
                      match=r"^Cannot fetch --module_handle=http://127\.0"):
    handles.resolve("http://127.0.0.1:%d/m" % portpicker.pick_unused_port(),
                    cache, log=lambda line: None)


@pytest.mark.cluster
def test_local_cluster_fetches_a_url_once_for_every_task(hub, assets,
                                                         tmp_path):
  os.symlink(assets.root, str(tmp_path / "assets"))
  url = hub.url("/models/digits/1?v=cluster")
  cache = str(tmp_path / "cache")
  before = hub.requests[DIGITS]
  run_dir = str(tmp_path / "run")
  proc = subprocess.run(
      launcher.command(run_dir, _digits_args(
          url, tmp_path, "--train_steps=40", "--save_checkpoints_steps=20",
          "--log_every_steps=20"), num_workers=2, num_ps=1, evaluator=True,
                       deadline_secs=300),
      cwd=str(tmp_path), env=dict(ENV, TFHUB_CACHE_DIR=cache),
      capture_output=True, text=True, timeout=400, check=False)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  assert hub.requests[DIGITS] - before == 1  # One download for five tasks.
  path = handles.cache_path(url, cache)
  # Fetched before the cluster was isolated (it cannot reach the server).
  assert proc.stdout.index("Fetched " + url) < proc.stdout.index("Isolated")
  with open(os.path.join(run_dir, "trainer_flags.txt")) as f:
    task_flags = f.read().splitlines()
  assert task_flags[-1] == "--module_handle=" + path
  for name in ("chief-0", "worker-0", "worker-1", "ps-0", "evaluator-0"):
    with open(os.path.join(run_dir, "logs", name + ".log")) as f:
      # A task that only serves names it too (trainer.task._serve).
      assert re.search("Training %s (on|for) " % re.escape(path),
                       f.read()), name
  with open(os.path.join(run_dir, "model", "flags.txt")) as f:
    recorded = f.read()
  assert "--module_handle=%s\n" % url in recorded
  assert "# module_handle %s resolved to %s" % (url, path) in recorded
  record = json.load(open(path + ".resolved.json"))
  assert record["handle"] == url and record["archive_bytes"] == len(
      hub.archives["digits"])


def test_engines_resolve_once_per_job_or_per_pod(tmp_path):
  """Slurm: one fetch before the step, into a cache every node sees;
  Kubernetes: each pod its own cache (never a race for one directory)."""
  url = "https://hub.example/models/digits/1"
  trainer = ["--module_handle=" + url, "--train_files=/s/t", "--n_classes=5",
             "--model_dir=/s/m"]
  slurm = subprocess.run(
      [sys.executable, "-m", "cluster.slurm", "--noevaluator",
       "--run_dir=/s/run", "--"] + trainer, env=ENV, capture_output=True,
      text=True, timeout=120, check=False)
  assert slurm.returncode == 0, slurm.stderr
  cached = handles.cache_path(url, "/s/run/hub_cache")
  fetch_line = ("%s -m trainer.fetch --module_handle=%s "
                "--cache_dir=/s/run/hub_cache" % (sys.executable, url))
  script = slurm.stdout
  assert fetch_line in script
  assert script.index(fetch_line) < script.index("exec srun")
  assert script.rstrip().endswith("--module_handle=" + cached)
  k8s = subprocess.run(
      [sys.executable, "-m", "cluster.tfjob", "--name=j", "--image=i",
       "--noevaluator", "--volume=c:/s", "--"] + trainer, env=ENV,
      capture_output=True, text=True, timeout=120, check=False)
  assert k8s.returncode == 0, k8s.stderr
  job = next(yaml.safe_load_all(k8s.stdout))
  for replica in job["spec"]["tfReplicaSpecs"].values():
    pod = replica["template"]["spec"]
    container, = pod["containers"]
    assert {"name": "TFHUB_CACHE_DIR", "value": "/var/cache/tfhub"} in (
        container["env"])
    assert {"name": "hub-cache", "mountPath": "/var/cache/tfhub"} in (
        container["volumeMounts"])
    assert {"name": "hub-cache", "emptyDir": {}} in pod["volumes"]
