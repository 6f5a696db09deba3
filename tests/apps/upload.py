"""Reads the whole request body, then waits ``?s=`` seconds (with the GIL
released), and answers with the body's length and Adler-32 checksum, so a client can
check that every byte arrived."""

import time
import zlib
from urllib.parse import parse_qs


def app(environ, start_response):
    body = environ["wsgi.input"].read()
    secs = float(parse_qs(environ.get("QUERY_STRING", "")).get("s", ["0"])[0])
    if secs:
        time.sleep(secs)
    out = f"{len(body)} {zlib.adler32(body)}".encode()
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(out)))],
    )
    return [out]
