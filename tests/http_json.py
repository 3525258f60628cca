"""GET a JSON answer from a test's server (TensorBoard gzips its own)."""

import gzip
import json
import urllib.request


def get(url: str, timeout: float = 30):
  """The JSON `url` answers; urllib's errors as they come."""
  with urllib.request.urlopen(url, timeout=timeout) as response:
    body = response.read()
    if response.headers.get("Content-Encoding") == "gzip":
      body = gzip.decompress(body)
  return json.loads(body)
