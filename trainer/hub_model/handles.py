"""Hub handles as users write them, resolved once to a local directory.

`--module_handle` takes what `hub.resolve` takes:

* a directory, local or on any tf.io.gfile file system (gs://...): used in
  place;
* an `http://` or `https://` URL: a compressed SavedModel, fetched as hub
  does (with `?tf-hub-format=compressed` appended) into the cache;
* a `.tar.gz` / `.tgz` / `.tar` archive on any tf.io.gfile file system:
  copied and unpacked into the cache.

The cache is TFHUB_CACHE_DIR (else TEMP/tfhub_modules), laid out as hub
lays it out (CACHE/<sha1 of the handle>), so hub.KerasLayer finds what this
module fetched and the other way round; CACHE/<sha1>.resolved.json records
where a directory came from: the handle, the archive's size and sha256, how
long it took.

Resolving is safe from many processes at once, and fails fast:
* one download per handle: a process takes an exclusive `flock` on
  CACHE/<sha1>.harness-lock, downloads into CACHE/<sha1>.tmp-PID, checks
  that it holds a SavedModel and renames it into place; the others wait on
  the lock (saying so) and then find the directory there;
* the kernel releases the lock of a process that dies, so a download killed
  midway never delays the next one: whoever takes the lock next removes the
  leftovers and starts afresh (hub instead waits 10 minutes for a stale lock
  file, tensorflow/hub#579);
* every failure is one `ModelCheckError` naming the handle and what to do:
  the server cannot be reached, HTTP errors, a truncated archive, an archive
  that holds no SavedModel, a cache that cannot be written.
"""

import dataclasses
import fcntl
import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Callable, Optional

from harness import errors
from harness import files
from harness import hub_cache

# A path on one of TF's file systems (gs://, ram://, hdfs://...), not a
# local one.
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
CONNECT_TIMEOUT_SECS = 20.0
LOCK_WAIT_SECS = 1800.0
PROGRESS_EVERY_SECS = 2.0
_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class Resolution:
  """Where a handle resolved to.

  Attributes:
    handle: the handle as given.
    path: the directory to load (the handle itself for a directory).
    archive_bytes, sha256: of the archive fetched (None for a directory).
    seconds: how long fetching took (0 when it was in the cache).
    fetched: whether this call fetched it (False: a cache hit, or in place).
  """
  handle: str
  path: str
  archive_bytes: Optional[int] = None
  sha256: Optional[str] = None
  seconds: float = 0.0
  fetched: bool = False

  @property
  def in_cache(self) -> bool:
    return self.path != self.handle

  def describe(self) -> str:
    """One line for flags.txt and the logs."""
    if not self.in_cache:
      return "module_handle %s is used in place" % self.handle
    return ("module_handle %s resolved to %s (archive %d bytes, sha256 %s)" %
            (self.handle, self.path, self.archive_bytes, self.sha256))


def default_cache_dir(environ=os.environ) -> str:
  """TFHUB_CACHE_DIR, else hub's own default, TEMP/tfhub_modules."""
  return environ.get(hub_cache.CACHE_ENV) or os.path.join(
      tempfile.gettempdir(), "tfhub_modules")


def is_url(handle: str) -> bool:
  return handle.startswith(("http://", "https://"))


def is_archive(handle: str) -> bool:
  return not is_url(handle) and handle.endswith(ARCHIVE_SUFFIXES)


def needs_fetching(handle: str) -> bool:
  """Whether the handle must be fetched into the cache to be loaded."""
  return is_url(handle) or is_archive(handle)


def cache_path(handle: str, cache_dir: str) -> str:
  """Where the handle's directory goes: hub's layout, CACHE/<sha1>."""
  return os.path.join(cache_dir,
                      hashlib.sha1(handle.encode("utf8")).hexdigest())


def _record_path(path: str) -> str:
  return path + ".resolved.json"


def origin(path: str) -> Optional[Resolution]:
  """The resolution that made `path`, if it is a directory this module
  fetched into a cache (its record sits beside it); else None."""
  try:
    with open(_record_path(path)) as f:
      record = json.load(f)
  except (OSError, ValueError):
    return None
  return Resolution(**record) if record.get("path") == path else None


def identity(handle: str) -> str:
  """What a handle names, for comparing runs: a fetched directory is the
  handle it came from; a local directory, its absolute path."""
  if not handle:
    return handle
  fetched = origin(handle)
  if fetched:
    return fetched.handle
  if needs_fetching(handle) or "://" in handle:
    return handle
  return os.path.abspath(handle)


def _url_with_format(url: str) -> str:
  """hub's rule: ask the server for the compressed format."""
  parts = urllib.parse.urlsplit(url)
  query = urllib.parse.parse_qsl(parts.query)
  if ("tf-hub-format", "compressed") not in query:
    query.append(("tf-hub-format", "compressed"))
  return urllib.parse.urlunsplit(parts._replace(
      query=urllib.parse.urlencode(query)))


def _complete(path: str) -> bool:
  return os.path.isdir(path) and origin(path) is not None


def _fail(handle: str, cache_dir: str, problem: str) -> errors.ModelCheckError:
  return errors.ModelCheckError(
      "Cannot fetch `module_handle`=%s: %s (cache: %s)." % (handle, problem,
                                                            cache_dir))


def _open_source(handle: str, cache_dir: str):
  """(a file-like object of the archive, its size or None)."""
  if is_url(handle):
    url = _url_with_format(handle)
    try:
      response = urllib.request.urlopen(url, timeout=CONNECT_TIMEOUT_SECS)
    except urllib.error.HTTPError as e:
      raise _fail(handle, cache_dir, "the server answered HTTP %d %s for %s"
                  % (e.code, e.reason, url)) from None
    except (urllib.error.URLError, OSError) as e:
      reason = getattr(e, "reason", e)
      raise _fail(handle, cache_dir, (
          "the server cannot be reached (%s); where there is no network, "
          "download the model elsewhere and give `module_handle` its "
          "directory or its .tar.gz archive") % reason) from None
    size = response.headers.get("Content-Length")
    return response, int(size) if size and size.isdigit() else None
  # TensorFlow only here, to read an archive on any of its file systems:
  # a launcher resolves URLs before it loads TF (docs/layout.md).
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    return (tf.io.gfile.GFile(handle, "rb"),
            tf.io.gfile.stat(handle).length)
  except tf.errors.OpError as e:
    raise _fail(handle, cache_dir, "cannot read it: %s" %
                str(e).splitlines()[0]) from None


def _download(handle: str, cache_dir: str, target: str,
              log: Callable[[str], None], clock) -> tuple:
  """Streams the archive into `target`; returns (bytes, sha256)."""
  source, size = _open_source(handle, cache_dir)
  digest, done = hashlib.sha256(), 0
  started = last = clock()
  try:
    with source, open(target, "wb") as out:
      while True:
        try:
          chunk = source.read(_CHUNK)
        except (OSError, urllib.error.URLError) as e:
          raise _fail(handle, cache_dir, "the download broke off after %d "
                      "bytes (%s)" % (done, e)) from None
        if not chunk:
          break
        out.write(chunk)
        digest.update(chunk)
        done += len(chunk)
        if clock() - last >= PROGRESS_EVERY_SECS:
          last = clock()
          rate = done / max(last - started, 1e-9) / 1e6
          log("Downloading %s: %.1f MB%s, %.1f MB/s" % (
              handle, done / 1e6, " of %.1f MB (%d%%)" % (
                  size / 1e6, 100 * done // size) if size else "", rate))
  except OSError as e:
    raise _fail(handle, cache_dir, "cannot write the download (%s)" %
                e.strerror) from None
  if size is not None and done < size:
    raise _fail(handle, cache_dir, "the download broke off after %d of %d "
                "bytes" % (done, size))
  return done, digest.hexdigest()


def _saved_model_root(directory: str) -> Optional[str]:
  """The folder of the unpacked archive that holds the SavedModel."""
  for root in (directory,) + tuple(
      os.path.join(directory, d) for d in sorted(os.listdir(directory))):
    if any(os.path.isfile(os.path.join(root, f)) for f in SAVED_MODEL_FILES):
      return root
  return None


class UnsafeMember(ValueError):
  """A member of an archive that would be written outside its folder, or is
  not a plain file, folder or link."""


def _inside(root: str, path: str) -> bool:
  return os.path.commonpath([root, os.path.realpath(path)]) == root


def extract_checked(tar: tarfile.TarFile, into: str) -> None:
  """What tarfile's "data" filter refuses, refused by hand: for the Pythons
  without it (before 3.9.17, 3.10.12 and 3.11.4, which setup.py admits).
  Every member is checked before anything is written.

  Raises:
    UnsafeMember: an absolute path, a path or link that leaves `into`, a
      device or FIFO.
  """
  root = os.path.realpath(into)
  for member in tar.getmembers():
    target = os.path.join(into, member.name)
    if not (member.isfile() or member.isdir() or member.issym() or
            member.islnk()):
      raise UnsafeMember("%s is not a file, folder or link" % member.name)
    if os.path.isabs(member.name) or not _inside(root, target):
      raise UnsafeMember("%s would be written outside the archive's folder" %
                         member.name)
    if member.issym() or member.islnk():
      link = os.path.join(
          os.path.dirname(target) if member.issym() else into,
          member.linkname)
      if os.path.isabs(member.linkname) or not _inside(root, link):
        raise UnsafeMember("%s links outside the archive's folder (to %s)" %
                           (member.name, member.linkname))
  tar.extractall(into)  # Checked above, member by member.


def _extract(tar: tarfile.TarFile, into: str) -> None:
  """tarfile's "data" filter where this Python has it, else the same
  refusals by hand (extract_checked)."""
  if hasattr(tarfile, "data_filter"):
    tar.extractall(into, filter="data")
  else:
    extract_checked(tar, into)


def _unpack(handle, cache_dir, archive: str, into: str) -> str:
  """Unpacks `archive` into `into`; returns the SavedModel's folder."""
  unsafe = (UnsafeMember,) + ((tarfile.FilterError,) if hasattr(
      tarfile, "FilterError") else ())
  try:
    with tarfile.open(archive) as tar:
      _extract(tar, into)
  except unsafe as e:
    raise _fail(handle, cache_dir, "the archive is unsafe to unpack: %s" %
                e) from None
  except (tarfile.TarError, EOFError, OSError, ValueError) as e:
    raise _fail(handle, cache_dir, "the archive is truncated or not a "
                ".tar.gz (%s)" % (str(e) or type(e).__name__)) from None
  root = _saved_model_root(into)
  if root is None:
    held = ", ".join(sorted(os.listdir(into))[:8]) or "nothing"
    raise _fail(handle, cache_dir, "the archive holds no SavedModel "
                "(saved_model.pb); it holds: %s" % held)
  return root


def _take_lock(lock_path, handle, log, clock, sleep, wait_secs):
  """An exclusive flock on `lock_path` (released by the kernel if we die)."""
  fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
  deadline = clock() + wait_secs
  said = False
  while True:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      break
    except BlockingIOError:
      if not said:
        with open(lock_path) as f:
          holder = f.read().strip() or "another process"
        log("Waiting for %s, which is fetching %s into the same cache." %
            (holder, handle))
        said = True
      if clock() > deadline:
        os.close(fd)
        raise errors.ModelCheckError(
            "Waited %d s for another process fetching `module_handle`=%s "
            "(lock %s); give it a local copy instead." %
            (wait_secs, handle, lock_path))
      sleep(0.2)
  os.ftruncate(fd, 0)
  os.write(fd, ("pid %d" % os.getpid()).encode())
  return fd


def resolve(handle: str, cache_dir: str,
            log: Callable[[str], None] = print, *,
            clock: Callable[[], float] = time.monotonic,
            sleep: Callable[[float], None] = time.sleep,
            lock_wait_secs: float = LOCK_WAIT_SECS) -> Resolution:
  """The local directory to load `handle` from, fetched once if need be.

  Raises:
    errors.ModelCheckError: one line naming the handle, the problem, the
      cache and what to do.
  """
  if not needs_fetching(handle):  # A directory: in place, or fetched before.
    return origin(handle) or Resolution(handle, handle)
  if _SCHEME.match(cache_dir):
    raise errors.ModelCheckError(
        "The hub cache %s (%s, else a temporary directory) is not a local "
        "directory: a URL or archive --module_handle is unpacked there under "
        "a kernel lock (flock), which needs a local or mounted file system "
        "(a disk, NFS, a volume). Set %s to such a directory, or give "
        "`module_handle` the SavedModel's directory, which any file system "
        "TF reads (gs://...) serves in place." % (
            cache_dir, hub_cache.CACHE_ENV, hub_cache.CACHE_ENV))
  path = cache_path(handle, cache_dir)
  if _complete(path):
    return dataclasses.replace(origin(path), seconds=0.0, fetched=False)
  try:
    os.makedirs(cache_dir, exist_ok=True)
    lock = _take_lock(path + ".harness-lock", handle, log, clock, sleep,
                      lock_wait_secs)
  except OSError as e:
    raise _fail(handle, cache_dir, "the cache directory cannot be written "
                "(%s); set %s to a writable directory" % (
                    e.strerror, hub_cache.CACHE_ENV)) from None
  try:
    if _complete(path):  # Another process fetched it while we waited.
      return dataclasses.replace(origin(path), seconds=0.0, fetched=False)
    _remove_leftovers(path, cache_dir)
    staging = "%s.tmp-%d" % (path, os.getpid())
    os.makedirs(staging)
    log("Fetching %s into %s" % (handle, cache_dir))
    started = clock()
    archive = staging + ".archive"
    size, sha256 = _download(handle, cache_dir, archive, log, clock)
    root = _unpack(handle, cache_dir, archive, staging)
    resolution = Resolution(handle, path, size, sha256,
                            round(clock() - started, 3), True)
    os.remove(archive)
    if os.path.isdir(path):  # An incomplete copy (no record): replace it.
      shutil.rmtree(path)
    os.rename(root, path)
    record = dataclasses.asdict(resolution)
    del record["fetched"]
    files.write_text(_record_path(path), json.dumps(record))
    log("Fetched %s in %.1f s: %d bytes, sha256 %s" % (
        handle, resolution.seconds, size, sha256))
    return resolution
  finally:
    _remove_leftovers(path, cache_dir)
    os.close(lock)  # Releases the flock.


def _remove_leftovers(path: str, cache_dir: str) -> None:
  """Partial downloads of this handle (the lock is ours: nobody's else)."""
  prefix = os.path.basename(path) + ".tmp-"
  for name in os.listdir(cache_dir):
    if name.startswith(prefix):
      leftover = os.path.join(cache_dir, name)
      if os.path.isdir(leftover):
        shutil.rmtree(leftover, ignore_errors=True)
      else:
        os.remove(leftover)
