"""permessage-deflate with the `websockets` package, which offers it by
default: the extension is agreed, compressible and incompressible messages
of every size echo intact (in both directions, context taken over between
them), the no-context-takeover and window parameters are honoured, a client
that offers nothing gets nothing, and a small message that inflates past
--websocket-max-message-size is refused with 1009 without being inflated
whole. Usage: websockets_deflate.py PORT MAX_PORT (the second serves
--websocket-max-message-size 1048576). Prints "deflate: all ok"."""

import json
import os
import sys

from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.sync.client import connect

from ws_checks import too_big_is_1009

port, max_port = sys.argv[1:3]
url = f"ws://127.0.0.1:{port}/ws/echo"


def echo_all(ws):
    record = json.dumps([{"id": i, "name": f"item {i}", "tags": ["a", "b"]} for i in range(5000)])
    noise = os.urandom(200_000)
    messages = [
        record,
        record.encode(),
        # Incompressible: sent plain. The next message repeats its end, which
        # a compressor that remembered it would point back to, out of the
        # client's sight.
        noise,
        noise[-2000:] * 3,
        "after the noise " * 1000,
        b"",
        "short",
    ] + [f"small {i} " * (i % 40) for i in range(200)]
    for m in messages:
        ws.send(m)
        back = ws.recv(timeout=30)
        assert back == m, (type(m), len(m), len(back))


with connect(url, max_size=None) as ws:
    agreed = ws.response.headers.get("Sec-WebSocket-Extensions", "")
    assert agreed == "permessage-deflate", agreed
    assert ws.protocol.extensions, "the client did not take the extension up"
    echo_all(ws)

params = ClientPerMessageDeflateFactory(
    server_no_context_takeover=True,
    client_no_context_takeover=True,
    server_max_window_bits=10,
)
with connect(url, extensions=[params], compression=None, max_size=None) as ws:
    agreed = ws.response.headers.get("Sec-WebSocket-Extensions", "")
    assert agreed == ("permessage-deflate; server_no_context_takeover; "
                      "client_no_context_takeover; server_max_window_bits=10"), agreed
    echo_all(ws)

with connect(url, compression=None, max_size=None) as ws:
    assert "Sec-WebSocket-Extensions" not in ws.response.headers, ws.response.headers
    echo_all(ws)

# 64 MiB of zeros travel as a frame of about 64 KiB, under the 1 MiB limit.
too_big_is_1009(f"ws://127.0.0.1:{max_port}/ws/echo", "x" * 500, bytes(64 << 20))

print("deflate: all ok")
