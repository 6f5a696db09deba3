"""WSGI application driven by the systemd tests.

Routes:
  /                 "pid=N" (the worker's pid)
  /slow?s=F&mark=P  create file P, sleep F seconds, answer "slept F"
  /status/N         answer with status N
  /print?tag=T      print "app-print T" to stdout, answer "pid=N"
  /exit?code=N      end the worker at once with exit status N
  /echo             the request body back (application/octet-stream)

At import, CORRAL_TEST_IMPORT_DELAY (seconds) delays the import, and a file
"imported-PID" is created in CORRAL_TEST_MARKERS when that is set, so a test
can tell which workers finished importing.
"""

import os
import sys
import time
from urllib.parse import parse_qs

_delay = float(os.environ.get("CORRAL_TEST_IMPORT_DELAY", "0") or 0)
if _delay:
    time.sleep(_delay)

_markers = os.environ.get("CORRAL_TEST_MARKERS")
if _markers:
    with open(os.path.join(_markers, "imported-%d" % os.getpid()), "w"):
        pass


def _answer(start_response, status, text):
    body = text.encode()
    start_response(
        status,
        [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
    )
    return [body]


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if path == "/slow":
        seconds = float(query.get("s", ["1"])[0])
        mark = query.get("mark", [None])[0]
        if mark:
            with open(mark, "w"):
                pass
        time.sleep(seconds)
        return _answer(start_response, "200 OK", "slept %s" % seconds)
    if path.startswith("/status/"):
        code = int(path[len("/status/"):])
        return _answer(start_response, "%d Test" % code, "status %d" % code)
    if path == "/print":
        tag = query.get("tag", [""])[0]
        sys.stdout.write("app-print %s\n" % tag)
        sys.stdout.flush()
        return _answer(start_response, "200 OK", "pid=%d" % os.getpid())
    if path == "/echo":
        body = environ["wsgi.input"].read()
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/octet-stream"),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]
    if path == "/exit":
        os._exit(int(query.get("code", ["7"])[0]))
    return _answer(start_response, "200 OK", "pid=%d" % os.getpid())
