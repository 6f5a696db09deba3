"""Drives the FastAPI app (tests/apps/fastapi_app.py) with httpx over one
pooled connection: path and query parameters, lifespan state, a 4 MiB
upload, a background task that must not hold up the next request on the
connection. Usage: httpx_fastapi.py PORT. Prints "fastapi client: all ok"."""

import hashlib
import os
import sys
import time

import httpx

base = f"http://127.0.0.1:{sys.argv[1]}"
with httpx.Client(base_url=base, timeout=30) as c:
    r = c.get("/items/42", params={"q": "a b"})
    assert r.status_code == 200, r
    assert r.json()["item_id"] == 42 and r.json()["q"] == "a b", r.json()

    r = c.get("/items/not-a-number")
    assert r.status_code == 422, r

    r = c.get("/state")
    assert r.json() == {"db": "connected", "ready": "yes"}, r.json()

    body = os.urandom(4 << 20)
    r = c.post("/upload", content=body)
    assert r.status_code == 200, r
    assert r.json() == {"len": len(body), "sha256": hashlib.sha256(body).hexdigest()}, r.json()

    # gunicorn #3819: a background task runs after the response; the next
    # request on the same connection must not wait for it.
    t0 = time.monotonic()
    r = c.get("/background", params={"tag": "t1"})
    assert r.json() == {"scheduled": "t1"}, r.json()
    r = c.get("/hello")
    took = time.monotonic() - t0
    assert r.text == "hello from fastapi\n", r.text
    assert took < 0.4, f"the next request waited {took:.2f} s for a background task"
    time.sleep(0.8)
    r = c.get("/done")
    assert "t1" in r.json()["done"], r.json()

    r = c.get("/nowhere")
    assert r.status_code == 404, r
print("fastapi client: all ok")
