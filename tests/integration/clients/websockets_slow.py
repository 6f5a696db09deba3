"""Bursts two 600 KB messages and a short one at an app that reads a
second late (so corral pauses reading the connection), then checks every
echo arrives. Usage: websockets_slow.py URL. Prints "slow: all ok"."""

import sys

from websockets.sync.client import connect

big = [bytes([i]) * 600_000 for i in (1, 2)]
with connect(sys.argv[1], max_size=None) as ws:
    for m in big:
        ws.send(m)
    ws.send("last")
    assert ws.recv(timeout=20) == big[0]
    assert ws.recv(timeout=20) == big[1]
    assert ws.recv(timeout=20) == "last"
print("slow: all ok")
