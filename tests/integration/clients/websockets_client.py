"""Drives corral's WebSockets with the `websockets` package (its sync
client): echo of text and bytes, a subprotocol, a large message, a burst in
order, ping/pong, a refused handshake, close codes both ways, an app error,
and FastAPI's WebSocket route. Usage: websockets_client.py PORT FASTAPI_PORT
MAX_PORT (the last serves --websocket-max-message-size 1000).
Prints "websockets client: all ok"."""

import json
import os
import sys
import time
import urllib.request

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from ws_checks import too_big_is_1009

port, fastapi_port, max_port = sys.argv[1:4]
base = f"ws://127.0.0.1:{port}"

with connect(base + "/ws/echo", subprotocols=["chat", "other"]) as ws:
    assert ws.subprotocol == "chat", ws.subprotocol
    assert ws.response.headers["x-ws"] == "yes", ws.response.headers
    ws.send("hello")
    assert ws.recv(timeout=10) == "hello"
    ws.send(b"\x00\x01binary")
    assert ws.recv(timeout=10) == b"\x00\x01binary"
    big = os.urandom(1 << 20)
    ws.send(big)
    assert ws.recv(timeout=30) == big
    for i in range(500):
        ws.send(f"m{i}")
    for i in range(500):
        assert ws.recv(timeout=10) == f"m{i}"
    latency = ws.ping().wait(10)
    assert latency, "no pong"
    ws.close(code=1000, reason="client done")

with connect(base + "/ws/scope") as ws:
    scope = json.loads(ws.recv(timeout=10))
    assert scope["type"] == "websocket" and scope["scheme"] == "ws", scope
    assert scope["subprotocols"] == [] and "method" not in scope, scope

try:
    connect(base + "/ws/reject", open_timeout=10)
    raise AssertionError("a refused handshake was accepted")
except InvalidStatus as exc:
    assert exc.response.status_code == 403, exc.response.status_code

with connect(base + "/ws/close") as ws:
    assert ws.recv(timeout=10) == "bye"
    try:
        ws.recv(timeout=10)
        raise AssertionError("no close")
    except ConnectionClosed as exc:
        assert exc.rcvd.code == 4001 and exc.rcvd.reason == "done", exc

with connect(base + "/ws/raise") as ws:
    try:
        ws.recv(timeout=10)
        raise AssertionError("no close")
    except ConnectionClosed as exc:
        assert exc.rcvd.code == 1011, exc

# The app saw the client's close code.
deadline = time.monotonic() + 10
while True:
    events = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/events"))["events"]
    if "ws closed 1000" in events:
        break
    assert time.monotonic() < deadline, events
    time.sleep(0.05)

with connect(f"ws://127.0.0.1:{fastapi_port}/ws") as ws:
    ws.send("via fastapi")
    assert json.loads(ws.recv(timeout=10)) == {"echo": "via fastapi", "db": "connected"}

# Compressed by the client, the large message is a small frame: the limit
# holds on what it inflates to.
too_big_is_1009(f"ws://127.0.0.1:{max_port}/ws/echo", "x" * 500, "x" * 2000)

print("websockets client: all ok")
