"""Opens a WebSocket, sends one message and prints "open" if it comes back
(else "got MESSAGE"), then waits for the server to close the connection and
prints "closed CODE". Usage:
websockets_wait_close.py URL."""

import sys

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

with connect(sys.argv[1]) as ws:
    try:
        ws.send("before")
    except ConnectionClosed:
        pass  # the server spoke and closed first; its messages still come
    first = ws.recv(timeout=10)
    print("open" if first == "before" else f"got {first}", flush=True)
    try:
        while True:
            ws.recv(timeout=60)
    except ConnectionClosed as exc:
        print(f"closed {exc.rcvd.code if exc.rcvd else 'none'}", flush=True)
