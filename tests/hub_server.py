"""A model hub for tests: a real HTTP server on the loopback interface.

It serves the example models as .tar.gz archives at hub-style paths, as
tfhub.dev and Kaggle Models serve TF2 SavedModels:

  /models/<name>/1?tf-hub-format=compressed   the model, compressed
  /missing/1                                   HTTP 404
  /truncated/1                                 half of an archive
  /not_a_model/1                               an archive with no SavedModel

and counts the requests for each path (`requests`, by path; `bytes_sent`,
by path and query). `chunk_delay_secs` slows every
response down (a download to kill midway). `HubServer(archives)` starts in
a thread on a free port; `stop()` shuts it down.
"""

import collections
import http.server
import io
import os
import tarfile
import threading
import time
import urllib.parse
from typing import Dict

CHUNK = 16 * 1024


def archive(directory: str) -> bytes:
  """A directory as a .tar.gz, its files at the archive's root (as hub
  archives are)."""
  buffer = io.BytesIO()
  with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
    for name in sorted(os.listdir(directory)):
      tar.add(os.path.join(directory, name), arcname=name)
  return buffer.getvalue()


def not_a_model() -> bytes:
  buffer = io.BytesIO()
  with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
    readme = b"This is not a SavedModel.\n"
    info = tarfile.TarInfo("README.txt")
    info.size = len(readme)
    tar.addfile(info, io.BytesIO(readme))
  return buffer.getvalue()


class HubServer:
  """The server, its request counts, and its archives."""

  def __init__(self, models: Dict[str, str]):
    self.archives = {name: archive(path) for name, path in models.items()}
    self.requests = collections.Counter()
    self.chunk_delay_secs = 0.0
    self.bytes_sent = collections.Counter()
    hub = self

    class Handler(http.server.BaseHTTPRequestHandler):

      def log_message(self, *args):  # Quiet.
        del args

      def do_GET(self):  # pylint: disable=invalid-name
        url = urllib.parse.urlsplit(self.path)
        hub.requests[url.path] += 1
        parts = url.path.strip("/").split("/")
        query = urllib.parse.parse_qs(url.query)
        body = None
        if parts[0] == "models" and len(parts) == 3 and parts[1] in (
            hub.archives) and query.get("tf-hub-format") == ["compressed"]:
          body = hub.archives[parts[1]]
        elif parts[0] == "truncated":
          whole = next(iter(hub.archives.values()))
          body = whole[:len(whole) // 2]
        elif parts[0] == "not_a_model":
          body = not_a_model()
        if body is None:
          self.send_error(404, "Not Found")
          return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-tar")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for start in range(0, len(body), CHUNK):
          self.wfile.write(body[start:start + CHUNK])
          self.wfile.flush()
          hub.bytes_sent[self.path] += len(body[start:start + CHUNK])
          if hub.chunk_delay_secs:
            time.sleep(hub.chunk_delay_secs)  # Throttled on purpose.

    self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    self.server.daemon_threads = True
    self.thread = threading.Thread(target=self.server.serve_forever,
                                   daemon=True)
    self.thread.start()

  def url(self, path: str) -> str:
    return "http://127.0.0.1:%d%s" % (self.server.server_port, path)

  def stop(self):
    self.server.shutdown()
    self.server.server_close()
