"""Echoes the parts of the WSGI environ that the tests compare, as JSON.

The request body is read from ``wsgi.input`` and returned latin-1 decoded,
so every byte survives the round trip. ``pid`` tells which worker answered.
A HEAD response has no body, so the same JSON also travels hex-encoded in
the ``X-Echo`` header when the method is HEAD.
"""

import json
import os

KEYS = (
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "RAW_URI",
    "SERVER_PROTOCOL",
    "CONTENT_LENGTH",
    "CONTENT_TYPE",
    "SERVER_NAME",
    "SERVER_PORT",
    "REMOTE_ADDR",
    "wsgi.url_scheme",
    "wsgi.input_terminated",
)


def app(environ, start_response):
    body = environ["wsgi.input"].read()
    out = {key: environ[key] for key in KEYS if key in environ}
    out.update((k, v) for k, v in environ.items() if k.startswith("HTTP_"))
    out["body"] = body.decode("latin-1")
    out["pid"] = os.getpid()
    data = json.dumps(out, sort_keys=True).encode("ascii")
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(data))),
    ]
    if environ["REQUEST_METHOD"] == "HEAD":
        headers.append(("X-Echo", data.hex()))
    start_response("200 OK", headers)
    return [data]
