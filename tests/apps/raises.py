"""Raises before start_response. The marker must reach the error log in the
traceback and must never reach the client."""

MARKER = "corral-secret-marker-5d41402a"


def app(environ, start_response):
    raise RuntimeError("the app failed on purpose: " + MARKER)
