"""ASGI 3.0 applications used by the benchmark (the ASGI rows).  Raw ASGI, no
framework, so that every server runs exactly the same Python per request; the
FastAPI app is in fastapiapp.py.

Every app here answers the lifespan scope properly (startup.complete, then
shutdown.complete) instead of returning or raising on it: servers differ in
what they make of an app that ignores lifespan (a log line, a warning, or an
error with `--asgi-lifespan on`), and the benchmark should not depend on that.
"""

_HELLO = b"Hello, World!"
_HELLO_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
}


async def _lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def hello(scope, receive, send):
    """The ASGI counterpart of apps:hello: builds its headers on every call,
    one http.response.start, one http.response.body."""
    kind = scope["type"]
    if kind == "http":
        body = _HELLO
        await send({
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"),
                        (b"content-length", str(len(body)).encode())],
        })
        await send({"type": "http.response.body", "body": body})
    elif kind == "lifespan":
        await _lifespan(receive, send)


async def ws_echo(scope, receive, send):
    """WebSocket echo: accept, then send every text or bytes message back as it
    came, until websocket.disconnect.  A plain HTTP request (the driver's
    readiness probe) gets the hello response."""
    kind = scope["type"]
    if kind == "websocket":
        while True:
            message = await receive()
            t = message["type"]
            if t == "websocket.connect":
                await send({"type": "websocket.accept"})
            elif t == "websocket.receive":
                text = message.get("text")
                if text is not None:
                    await send({"type": "websocket.send", "text": text})
                else:
                    await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
            elif t == "websocket.disconnect":
                return
    elif kind == "http":
        await send(_HELLO_START)
        await send({"type": "http.response.body", "body": _HELLO})
    elif kind == "lifespan":
        await _lifespan(receive, send)
