"""WebSocket sessions under load, for the restart tests. Usage:
websockets_load.py PORT DIR. Four clients each open /ws/echo, exchange 20
messages (every echo checked) and close with 1000, over and over, until
DIR/stop exists; each finished session appends a line to DIR/progress.

A session the server ends with a 1001 close frame (going away: its worker
is stopping) counts as a goodbye, and the client opens the next one.
Anything else is a failure: a refused or failed handshake, an echo missing
or wrong, a connection closed without a close frame or with another code.
Prints one JSON object: sessions, messages, goodbyes, failures, and the
first problems described."""

import json
import os
import sys
import threading
import time

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

port, folder = sys.argv[1], sys.argv[2]
stop_file = os.path.join(folder, "stop")
progress = open(os.path.join(folder, "progress"), "a", buffering=1)
lock = threading.Lock()
totals = {"sessions": 0, "messages": 0, "goodbyes": 0, "failures": 0}
problems = []


def note(key, n=1, why=None):
    with lock:
        totals[key] += n
        if why is not None and len(problems) < 20:
            problems.append(why)
        if key in ("sessions", "goodbyes"):
            progress.write(key + "\n")


def client(k):
    i = 0
    while not os.path.exists(stop_file):
        try:
            ws = connect(f"ws://127.0.0.1:{port}/ws/echo", open_timeout=10, close_timeout=10)
        except Exception as exc:  # refused, reset, bad status: all failures
            note("failures", why=f"handshake: {exc!r}")
            time.sleep(0.05)
            continue
        sent = 0
        try:
            with ws:
                for _ in range(20):
                    msg = f"{k}-{i}"
                    i += 1
                    ws.send(msg)
                    got = ws.recv(timeout=10)
                    if got != msg:
                        raise AssertionError(f"echo {got!r} for {msg!r}")
                    sent += 1
            note("sessions")
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            if code == 1001:
                note("goodbyes")
            else:
                note("failures", why=f"closed with {code} after {sent}: {exc!r}")
        except Exception as exc:
            note("failures", why=f"after {sent}: {exc!r}")
        note("messages", sent)


threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(dict(totals, problems=problems)))
