"""Reads a streamed response with httpx, as an async client would, and
prints one JSON line: the status, the headers, and each chunk with the
seconds since the request was sent. Usage: httpx_stream.py URL."""

import json
import sys
import time

import httpx

url = sys.argv[1]
start = time.monotonic()
chunks = []
with httpx.Client(timeout=30) as client:
    with client.stream("GET", url) as r:
        for text in r.iter_text():
            for line in text.splitlines():
                chunks.append([line, round(time.monotonic() - start, 3)])
        status = r.status_code
        headers = dict(r.headers)
print(json.dumps({"status": status, "headers": headers, "chunks": chunks}))
