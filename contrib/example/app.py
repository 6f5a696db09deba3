"""The example app bundled with corral: plain WSGI, standard library only.

    cargo run --release -- --chdir contrib/example -b 127.0.0.1:8000 app:app

Routes:
    GET  /         a small HTML page
    GET  /json     a JSON document about the worker that answered
    POST /echo     the request body, sent back as it came
    GET  /stream   five lines, one at a time (?delay=SECONDS between them)
"""

import json
import os
import sys
import threading
import time
from urllib.parse import parse_qs

PAGE = b"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Hello from corral</title></head>
<body>
  <h1>Hello from corral</h1>
  <p>This page is served by a Python WSGI app running inside corral.</p>
  <ul>
    <li><a href="/json">/json</a>: which worker answered, as JSON</li>
    <li><a href="/stream">/stream</a>: a streamed response</li>
    <li><code>curl --data-binary hi http://127.0.0.1:8000/echo</code>: echo a body</li>
  </ul>
</body>
</html>
"""


def _respond(start_response, status, content_type, body):
    start_response(
        status,
        [("Content-Type", content_type), ("Content-Length", str(len(body)))],
    )
    return [body]


def hello(environ, start_response):
    return _respond(start_response, "200 OK", "text/html; charset=utf-8", PAGE)


def about(environ, start_response):
    doc = {
        "server": "corral example",
        "pid": os.getpid(),
        "thread": threading.current_thread().name,
        "python": sys.version.split()[0],
        "multithread": environ.get("wsgi.multithread"),
        "multiprocess": environ.get("wsgi.multiprocess"),
    }
    body = json.dumps(doc, indent=2).encode() + b"\n"
    return _respond(start_response, "200 OK", "application/json", body)


def echo(environ, start_response):
    if environ["REQUEST_METHOD"] != "POST":
        start_response("405 Method Not Allowed", [("Allow", "POST"), ("Content-Length", "0")])
        return [b""]
    body = environ["wsgi.input"].read()
    content_type = environ.get("CONTENT_TYPE") or "application/octet-stream"
    return _respond(start_response, "200 OK", content_type, body)


def stream(environ, start_response):
    query = parse_qs(environ.get("QUERY_STRING", ""))
    delay = float(query.get("delay", ["0.5"])[0])
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])

    def lines():
        for i in range(1, 6):
            if i > 1 and delay > 0:
                time.sleep(delay)
            yield f"line {i} of 5\n".encode()

    return lines()


ROUTES = {"/": hello, "/json": about, "/echo": echo, "/stream": stream}


def app(environ, start_response):
    handler = ROUTES.get(environ.get("PATH_INFO", "/"))
    if handler is None:
        return _respond(start_response, "404 Not Found", "text/plain", b"not found\n")
    return handler(environ, start_response)
