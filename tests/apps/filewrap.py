"""Serves a temporary file through ``wsgi.file_wrapper``: 300000 bytes,
byte i is (i * 7) % 256."""

import os
import tempfile

SIZE = 300_000

_fd, PATH = tempfile.mkstemp(prefix="corral-filewrap-")
with os.fdopen(_fd, "wb") as f:
    f.write(bytes((i * 7) % 256 for i in range(SIZE)))


def app(environ, start_response):
    f = open(PATH, "rb")
    start_response(
        "200 OK",
        [("Content-Type", "application/octet-stream"), ("Content-Length", str(SIZE))],
    )
    return environ["wsgi.file_wrapper"](f, 64 * 1024)
