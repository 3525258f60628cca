"""What a data file is, told from its bytes: CSV or TFRecord, and whether it
is compressed (GZIP or ZLIB), so that the user never has to say.

TFX's ExampleGen and Beam write gzipped TFRecords (`*.gz`) by default, and
shards are often named without a hint of their format. A file's first bytes
give its compression (GZIP's magic number, a valid ZLIB header); TF itself
then reads the first record, checking its CRC, which tells a TFRecord from
anything else for certain. A file that is none of them is text, and then
CSV, if it decodes as UTF-8.

`open_text` opens a CSV file, compressed or not, as text through
`tf.io.gfile` (any file system TF has: local, gs://, hdfs://); Python's
`gzip` and `zlib` do the decompressing there, TF's readers do it in the
input pipeline (`compression_type`).
"""

import contextlib
import dataclasses
import gzip
import io
import re
import zlib

import tensorflow as tf

from harness import errors

CSV, TFRECORD = "CSV", "TFRecord"
NONE, GZIP, ZLIB = "", "GZIP", "ZLIB"
_HEAD_BYTES = 1 << 16
_GZIP_MAGIC = b"\x1f\x8b"
_WBITS = {GZIP: 16 + zlib.MAX_WBITS, ZLIB: zlib.MAX_WBITS}


@dataclasses.dataclass(frozen=True)
class Format:
  """A file's kind (CSV or TFRecord) and compression ('' for none)."""
  kind: str
  compression: str = NONE

  def __str__(self):
    return ("%s %s" % (self.compression, self.kind) if self.compression
            else self.kind)


def tf_message(error: Exception) -> str:
  """The useful first line of a TF error, without the function names and
  op names TF wraps it in."""
  text = getattr(error, "message", None) or str(error)
  text = re.sub(r"\{\{[^}]*\}\}\s*", "", text.splitlines()[0] if text else "")
  return re.sub(r"\s*\[Op:[^\]]*\].*$", "", text).strip()


def _likely_compressions(head: bytes):
  """Compressions to try, most likely first: a raw TFRecord may begin with
  the same bytes as a compressed stream, so each is tried for certain."""
  if head.startswith(_GZIP_MAGIC):
    return [GZIP, NONE]
  if len(head) >= 2 and head[0] & 0x0F == 8 and (
      (head[0] << 8) | head[1]) % 31 == 0:
    return [ZLIB, NONE]
  return [NONE]


def _reads_a_record(path: str, compression: str) -> bool:
  dataset = tf.data.TFRecordDataset([path], compression_type=compression)
  try:
    for _ in dataset.take(1):
      return True
  except tf.errors.DataLossError:
    return False
  return False


def _decompressed(head: bytes, compression: str, path: str) -> bytes:
  if compression == NONE:
    return head
  try:
    return zlib.decompressobj(_WBITS[compression]).decompress(head)
  except zlib.error as e:
    raise errors.DataError(
        "%s starts like a %s-compressed file but does not decompress (%s); "
        "the file is corrupt, or not a data file." % (path, compression, e)
    ) from None


def _is_text(data: bytes) -> bool:
  if b"\x00" in data:
    return False
  try:
    data.decode("utf-8")
    return True
  except UnicodeDecodeError as e:  # A character cut at the end is fine.
    return e.start >= len(data) - 3


def detect(path: str) -> Format:
  """The format of the file `path`.

  Raises:
    errors.DataError: it cannot be read, is empty, or is neither CSV nor
      TFRecord (compressed or not).
  """
  try:
    with tf.io.gfile.GFile(path, "rb") as f:
      head = f.read(_HEAD_BYTES)
  except tf.errors.OpError as e:
    raise errors.DataError("%s cannot be read: %s" % (path, tf_message(e))
                           ) from None
  if not head:
    raise errors.DataError("%s is empty; a data file needs a CSV header and "
                           "rows, or TFRecords." % path)
  compressions = _likely_compressions(head)
  for compression in compressions:
    if _reads_a_record(path, compression):
      return Format(TFRECORD, compression)
  text = _decompressed(head, compressions[0], path)
  if text and _is_text(text):
    return Format(CSV, compressions[0])
  raise errors.DataError(
      "%s is neither CSV nor TFRecord (plain, GZIP or ZLIB): it begins with "
      "bytes %r." % (path, head[:8]))


class _ZlibReader(io.RawIOBase):
  """A readable stream of a ZLIB-compressed file object (Python's zlib has
  no file reader of its own, unlike gzip)."""

  def __init__(self, raw):
    super().__init__()
    self._raw = raw
    self._inflate = zlib.decompressobj(_WBITS[ZLIB])
    self._pending = b""

  def readable(self):
    return True

  def readinto(self, buffer):
    while not self._pending:
      chunk = self._raw.read(_HEAD_BYTES)
      if not chunk:
        self._pending = self._inflate.flush()
        if not self._pending:
          return 0
        break
      self._pending = self._inflate.decompress(chunk)
    size = min(len(buffer), len(self._pending))
    buffer[:size] = self._pending[:size]
    self._pending = self._pending[size:]
    return size


@contextlib.contextmanager
def open_text(path: str, compression: str = NONE):
  """A text stream of a CSV file, decompressed; closed on leaving."""
  if compression == NONE:
    with tf.io.gfile.GFile(path, "r") as f:
      yield f
    return
  with tf.io.gfile.GFile(path, "rb") as raw:
    stream = (gzip.GzipFile(fileobj=raw, mode="rb") if compression == GZIP
              else io.BufferedReader(_ZlibReader(raw)))
    with io.TextIOWrapper(stream, encoding="utf-8", newline="") as text:
      yield text
