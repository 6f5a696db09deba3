"""WSGI app for corral's hostile-client and chaos tests (stdlib only).

Every answer echoes the request id (the ``id`` query parameter) so a test
can tell that each response belongs to its own request.

  /echo?id=X             200 "id=X pid=N"
  /sleep?id=X&s=0.5      sleeps, then like /echo
  /raise?id=X            raises: corral answers 500
  /leak?id=X&mb=N        keeps N MiB alive in this worker, then like /echo
  /hang?id=X             sleeps 600 s: past --timeout the worker is aborted
  /body?id=X             reads wsgi.input fully: "id=X len=N sum=S"
  /ids                   "uid gid euid egid umask"
"""

import os
import time
from urllib.parse import parse_qs

_leaked = []


def _reply(start_response, text, status="200 OK"):
    body = text.encode()
    start_response(
        status,
        [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
    )
    return [body]


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    q = parse_qs(environ.get("QUERY_STRING", ""))
    rid = q.get("id", ["-"])[0]
    me = "id=%s pid=%d" % (rid, os.getpid())
    if path == "/echo":
        return _reply(start_response, me)
    if path == "/sleep":
        time.sleep(float(q.get("s", ["0.5"])[0]))
        return _reply(start_response, me)
    if path == "/raise":
        raise RuntimeError("hostile test failure for " + rid)
    if path == "/leak":
        _leaked.append(bytearray(int(q.get("mb", ["8"])[0]) << 20))
        return _reply(start_response, me)
    if path == "/hang":
        time.sleep(600)
        return _reply(start_response, me)
    if path == "/body":
        stream = environ["wsgi.input"]
        total = 0
        acc = 0
        while True:
            chunk = stream.read(65536)
            if not chunk:
                break
            total += len(chunk)
            for b in chunk[:16]:
                acc = (acc * 31 + b) & 0xFFFFFFFF
        return _reply(start_response, "id=%s len=%d sum=%d" % (rid, total, acc))
    if path == "/ids":
        mask = os.umask(0)
        os.umask(mask)
        return _reply(
            start_response,
            "%d %d %d %d %03o" % (os.getuid(), os.getgid(), os.geteuid(), os.getegid(), mask),
        )
    return _reply(start_response, "not found " + rid, "404 Not Found")
