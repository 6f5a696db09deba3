"""An app wrapped in wsgiref.validate.validator, with its warnings turned
into errors, so any PEP 3333 slip by the server becomes a 500.

``/stream`` answers with a generator; every other path answers
"METHOD PATH LEN:" followed by the request body, with Content-Length.
"""

import warnings
from wsgiref.validate import WSGIWarning, validator

warnings.simplefilter("error", WSGIWarning)


def _inner(environ, start_response):
    method = environ["REQUEST_METHOD"]
    path = environ["PATH_INFO"]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (b"line %d\n" % i for i in range(3))
    # The validator allows read(size) only; wsgi.input_terminated promises
    # b"" at the end of the body, chunked or not.
    body = b""
    while True:
        part = environ["wsgi.input"].read(8192)
        if not part:
            break
        body += part
    payload = f"{method} {path} {len(body)}:".encode("latin-1") + body
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(payload)))],
    )
    return [payload]


app = validator(_inner)
