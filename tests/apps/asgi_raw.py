"""A raw ASGI 3.0 app (no framework) for the asgi worker's tests.

- ``/scope...``: the scope as JSON (bytes as latin-1 text, tuples as lists).
- ``/echo``: the request body back, read message by message; the JSON
  header ``X-Messages`` says how many ``http.request`` messages it took.
- ``/first``: reads one ``http.request`` message and answers at once with
  its size and ``more_body``, leaving the rest of the body unread.
- ``/digest?delay=S``: after S seconds, reads the whole body and answers
  with its length, Adler-32, and how many messages of what largest size.
- ``/drain``: reads the body until it ends or ``http.disconnect``, records
  which in /events (``drain N complete`` or ``drain N disconnect``).
- ``/stream?n=N&gap=S``: N chunks, S seconds apart, without Content-Length.
- ``/events``: what lifespan and requests saw, in order, from this worker.
- ``/sleep?s=S``: answers after S seconds (awaiting, the loop stays free).
- ``/block?s=S``: blocks the whole loop for S seconds (time.sleep).
- ``/raise``: raises before responding; ``/raise-late`` after the headers.
- ``/no-response``: returns without responding.
- ``/disconnect``: waits for http.disconnect (or OSError from send) and
  records it in /events.
- ``/background``: answers, then keeps running for 1 s (recorded in /events).
- ``/empty?code=N``: status N, no body and no framing headers.
- ``/missing...``: 404; anything else: 200 with the path and the pid.

WebSockets: ``/ws/echo`` echoes (subprotocol ``chat`` when offered; ``/ws/slow``
after falling a second behind; ``/ws/late`` accepts two seconds late) and
records the close code in /events; ``/ws/reject`` refuses the handshake;
``/ws/close`` says bye and closes with 4001; ``/ws/raise`` raises;
``/ws/scope`` sends its scope first.
"""

import asyncio
import json
import os
import time
import zlib
from urllib.parse import parse_qs

EVENTS = []


def _jsonable(v):
    if isinstance(v, bytes):
        return v.decode("latin-1")
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


async def _send_json(send, obj, status=200, extra=()):
    body = json.dumps(obj).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *extra]})
    await send({"type": "http.response.body", "body": body})


async def lifespan(scope, receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            EVENTS.append("startup")
            scope["state"]["started_by"] = os.getpid()
            if os.environ.get("ASGI_RAW_FAIL_STARTUP"):
                await send({"type": "lifespan.startup.failed", "message": "the database is down"})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            EVENTS.append("shutdown")
            marker = os.environ.get("ASGI_RAW_SHUTDOWN_MARKER")
            if marker:
                with open(marker, "a") as f:
                    f.write(f"shutdown {os.getpid()} after {len(EVENTS)} events\n")
            await send({"type": "lifespan.shutdown.complete"})
            return


async def websocket(scope, receive, send):
    path = scope["path"]
    m = await receive()
    assert m["type"] == "websocket.connect", m
    EVENTS.append("ws " + path)
    if path == "/ws/reject":
        await send({"type": "websocket.close", "code": 1000})
        return
    sub = "chat" if "chat" in scope["subprotocols"] else None
    if path == "/ws/late":
        # Accepts two seconds late (a stop may begin meanwhile).
        await asyncio.sleep(2)
    await send({"type": "websocket.accept", "subprotocol": sub,
                "headers": [(b"x-ws", b"yes")]})
    if path == "/ws/slow":
        # Falls a second behind before it echoes: a burst fills the inbox.
        await asyncio.sleep(1)
    if path == "/ws/close":
        await send({"type": "websocket.send", "text": "bye"})
        await send({"type": "websocket.close", "code": 4001, "reason": "done"})
        return
    if path == "/ws/raise":
        raise RuntimeError("raised in a websocket")
    if path == "/ws/scope":
        await send({"type": "websocket.send",
                    "text": json.dumps(_jsonable({k: v for k, v in scope.items() if k != "state"}))})
    # /ws/echo: every message back, until the client leaves.
    while True:
        m = await receive()
        if m["type"] == "websocket.disconnect":
            EVENTS.append(f"ws closed {m['code']}")
            return
        if m.get("text") is not None:
            await send({"type": "websocket.send", "text": m["text"]})
        else:
            await send({"type": "websocket.send", "bytes": m["bytes"]})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(scope, receive, send)
    if scope["type"] == "websocket":
        return await websocket(scope, receive, send)
    assert scope["type"] == "http", scope["type"]
    path = scope["path"]
    query = parse_qs(scope["query_string"].decode())
    EVENTS.append("request " + path)
    if path.startswith("/scope"):
        scope_copy = {k: v for k, v in scope.items() if k != "state"}
        scope_copy["state"] = dict(scope.get("state", {}))
        scope_copy["asgi"] = dict(scope["asgi"])
        # What an app may do to its own scope; the next request's scope
        # must not see it.
        scope["asgi"]["version"] = "changed"
        scope["changed"] = True
        return await _send_json(send, _jsonable(scope_copy))
    if path == "/first":
        m = await receive()
        return await _send_json(send, {"first": len(m["body"]), "more": m.get("more_body", False)})
    if path == "/digest":
        await asyncio.sleep(float(query.get("delay", ["0"])[0]))
        total, adler, messages, largest = 0, 1, 0, 0
        while True:
            m = await receive()
            assert m["type"] == "http.request", m
            messages += 1
            largest = max(largest, len(m["body"]))
            total += len(m["body"])
            adler = zlib.adler32(m["body"], adler)
            if not m.get("more_body"):
                break
        return await _send_json(send, {"len": total, "adler32": adler,
                                       "messages": messages, "largest": largest})
    if path == "/drain":
        total = 0
        while True:
            m = await receive()
            if m["type"] == "http.disconnect":
                EVENTS.append(f"drain {total} disconnect")
                return
            total += len(m["body"])
            if not m.get("more_body"):
                break
        EVENTS.append(f"drain {total} complete")
        return await _send_json(send, {"len": total})
    if path == "/echo":
        chunks = []
        messages = 0
        while True:
            m = await receive()
            assert m["type"] == "http.request", m
            messages += 1
            chunks.append(m["body"])
            if not m.get("more_body"):
                break
        body = b"".join(chunks)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream"),
                                (b"x-messages", str(messages).encode())]})
        await send({"type": "http.response.body", "body": body})
        return
    if path == "/stream":
        n = int(query.get("n", ["3"])[0])
        gap = float(query.get("gap", ["0"])[0])
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        for i in range(n):
            await send({"type": "http.response.body", "body": f"chunk {i} {time.time():.3f}\n".encode(),
                        "more_body": True})
            if gap:
                await asyncio.sleep(gap)
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/empty":
        # An empty body without framing headers, with the status asked for.
        code = int(query.get("code", ["200"])[0])
        await send({"type": "http.response.start", "status": code, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/poll-receive":
        # Polls for a disconnect the way apps do, with a timeout that
        # cancels receive() each time; receive must still work after.
        for _ in range(3):
            try:
                await asyncio.wait_for(receive(), 0.05)
            except asyncio.TimeoutError:
                pass
        return await _send_json(send, {"survived": True})
    if path == "/loop":
        loop = asyncio.get_running_loop()
        return await _send_json(send, {"loop": type(loop).__module__})
    if path == "/events":
        return await _send_json(send, {"pid": os.getpid(), "events": EVENTS})
    if path == "/sleep":
        await asyncio.sleep(float(query.get("s", ["1"])[0]))
        return await _send_json(send, {"pid": os.getpid(), "slept": True})
    if path == "/block":
        time.sleep(float(query.get("s", ["1"])[0]))
        return await _send_json(send, {"pid": os.getpid(), "blocked": True})
    if path == "/raise":
        raise RuntimeError("raised on purpose")
    if path == "/raise-late":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("raised on purpose after the headers")
    if path == "/no-response":
        return
    if path == "/disconnect":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            await send({"type": "http.response.body", "body": b"waiting\n", "more_body": True})
        except OSError:
            # The client read the line and left before this send returned
            # (ASGI 2.4: send raises once the connection is closed).
            EVENTS.append("disconnected")
            return
        m = await receive()
        while m["type"] != "http.disconnect":
            m = await receive()
        EVENTS.append("disconnected")
        return
    if path == "/background":
        await _send_json(send, {"pid": os.getpid()})
        await asyncio.sleep(1)
        EVENTS.append("background done")
        return
    if path.startswith("/missing"):
        return await _send_json(send, {"error": "not found", "path": path}, status=404)
    # Anything else: 200 and the path (what the load clients ask for).
    await _send_json(send, {"path": path, "pid": os.getpid()})
