"""Drives corral's echo app with the `requests` library: one pooled session,
GET with a query, POST with JSON and with form data, a streamed upload.
Usage: requests_client.py PORT. Prints "requests client: all ok"."""

import json
import sys

import requests

base = f"http://127.0.0.1:{sys.argv[1]}"
TIMEOUT = 20

with requests.Session() as s:
    pids = set()

    r = s.get(base + "/search", params={"q": "a b", "n": "1"}, timeout=TIMEOUT)
    r.raise_for_status()
    env = r.json()
    assert env["PATH_INFO"] == "/search", env
    assert env["QUERY_STRING"] == "q=a+b&n=1", env
    assert r.headers["Server"] == "corral", r.headers
    pids.add(env["pid"])

    r = s.post(base + "/json", json={"k": [1, 2]}, timeout=TIMEOUT)
    r.raise_for_status()
    env = r.json()
    assert env["CONTENT_TYPE"] == "application/json", env
    assert json.loads(env["body"]) == {"k": [1, 2]}, env
    pids.add(env["pid"])

    r = s.post(base + "/form", data={"name": "corral"}, timeout=TIMEOUT)
    r.raise_for_status()
    env = r.json()
    assert env["body"] == "name=corral", env
    assert env["CONTENT_LENGTH"] == "11", env

    def parts():
        yield b"streamed "
        yield b"upload"

    # A generator body goes out with Transfer-Encoding: chunked.
    r = s.put(base + "/chunked", data=parts(), timeout=TIMEOUT)
    r.raise_for_status()
    env = r.json()
    assert env["body"] == "streamed upload", env
    assert env["wsgi.input_terminated"] is True, env

    r = s.head(base + "/head", timeout=TIMEOUT)
    assert r.status_code == 200 and r.content == b"", (r.status_code, r.content)

print("requests client: all ok")
