"""What a WebSocket connection costs an asgi worker in memory, with and
without permessage-deflate.

Starts `corral -w 1 -k asgi asgi_apps:ws_echo`, opens N connections with the
`websockets` client (offering permessage-deflate, or not), sends one
compressible 4 KiB text message on each and waits for its echo, then reads
the worker's resident size. Each mode gets a fresh server; the difference
between the two, divided by N, is what compression costs per connection.

    contrib/bench/.venv/bin/python contrib/bench/wsmem.py [N]

Run `contrib/bench/run --quick` once first (it builds the virtualenv with
corral and websockets in it).
"""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

from websockets.asyncio.client import connect

HERE = os.path.dirname(os.path.abspath(__file__))
CORRAL = os.path.join(HERE, ".venv", "bin", "corral")
MESSAGE = ("corral measures what a connection costs. " * 100)[:4096]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def worker_of(master):
    with open(f"/proc/{master}/task/{master}/children") as f:
        kids = f.read().split()
    if len(kids) != 1:
        raise RuntimeError(f"expected one worker, found {kids}")
    return int(kids[0])


async def wait_ready(port, deadline):
    while time.monotonic() < deadline:
        try:
            async with connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
                await ws.send("ready?")
                await ws.recv()
                return
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError("the server did not answer")


async def measure(n, compression):
    port = free_port()
    server = subprocess.Popen(
        [CORRAL, "-w", "1", "-k", "asgi", "-b", f"127.0.0.1:{port}", "--chdir", HERE,
         "--log-level", "warning", "asgi_apps:ws_echo"],
        start_new_session=True, stdin=subprocess.DEVNULL)
    try:
        await wait_ready(port, time.monotonic() + 60)
        worker = worker_of(server.pid)
        before = rss_kib(worker)
        conns = [await connect(f"ws://127.0.0.1:{port}/", compression=compression,
                               max_size=None) for _ in range(n)]
        for ws in conns:
            await ws.send(MESSAGE)
        for ws in conns:
            if await ws.recv() != MESSAGE:
                raise RuntimeError("wrong echo")
        agreed = conns[0].response.headers.get("Sec-WebSocket-Extensions")
        after = rss_kib(worker)
        for ws in conns:
            await ws.close()
        return before, after, agreed
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait()


async def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    results = {}
    for label, compression in (("plain", None), ("deflate", "deflate")):
        before, after, agreed = await measure(n, compression)
        results[label] = after - before
        print(f"{label:8} {n} connections: worker RSS {before} -> {after} KiB "
              f"(+{after - before} KiB, {(after - before) / n:.1f} KiB each); "
              f"extension agreed: {agreed}")
    extra = (results["deflate"] - results["plain"]) / n
    print(f"permessage-deflate costs about {extra:.0f} KiB per connection")


asyncio.run(main())
