"""Opens a WebSocket whose app accepts it two seconds late, prints "open" once
the handshake is done, then waits for the server to close it and prints
"closed CODE". Usage: websockets_late.py URL."""

import sys

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

with connect(sys.argv[1], open_timeout=20) as ws:
    print("open", flush=True)
    try:
        while True:
            ws.recv(timeout=60)
    except ConnectionClosed as exc:
        print(f"closed {exc.rcvd.code if exc.rcvd else 'none'}", flush=True)
