"""WSGI applications used by the benchmark.  One module, one callable per scenario,
so every server imports exactly the same code."""

import time

_HELLO = b"Hello, World!"


def hello(environ, start_response):
    """Typical minimal app: builds its headers on every call."""
    body = _HELLO
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


# The least Python work a WSGI response can cost: everything pre-built.
_CONST_STATUS = "200 OK"
_CONST_HEADERS = [("Content-Type", "text/plain"), ("Content-Length", "13")]
_CONST_BODY = [_HELLO]


def const(environ, start_response):
    start_response(_CONST_STATUS, _CONST_HEADERS)
    return _CONST_BODY


_BIG = b"x" * (64 * 1024)


def big(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(_BIG)))])
    return [_BIG]


def echo(environ, start_response):
    """Reads the whole request body through wsgi.input and sends it back."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(body)))])
    return [body]


def sleep(environ, start_response):
    """I/O-bound: 10 ms of waiting (the GIL is released) per request."""
    time.sleep(0.010)
    return hello(environ, start_response)
