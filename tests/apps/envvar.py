"""Answers with the value of the environment variable named by the path
(``/NAME``), or ``<unset>``: for ``-e KEY=VALUE``."""

import os


def app(environ, start_response):
    value = os.environ.get(environ["PATH_INFO"].lstrip("/"), "<unset>")
    body = value.encode("utf-8")
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
    )
    return [body]
