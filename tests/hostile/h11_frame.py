"""Frame raw HTTP/1.1 requests with h11, for corral's differential test.

Reads one hex-encoded request per line on stdin; writes one JSON object per
line: {"v": "ok", "consumed": N, "body": N} when the first request is
complete (N bytes used, body of that many decoded bytes), {"v": "incomplete"}
when h11 needs more data, or {"v": "error", "why": "..."} when h11 refuses.
"""

import json
import sys

import h11


def frame(raw):
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(raw)
    body = 0
    try:
        while True:
            ev = conn.next_event()
            if ev is h11.NEED_DATA:
                return {"v": "incomplete"}
            if isinstance(ev, h11.Data):
                body += len(ev.data)
            elif isinstance(ev, h11.EndOfMessage):
                rest, _closed = conn.trailing_data
                return {"v": "ok", "consumed": len(raw) - len(rest), "body": body}
    except h11.RemoteProtocolError as e:
        return {"v": "error", "why": str(e)[:120]}


for line in sys.stdin:
    line = line.strip()
    if line:
        print(json.dumps(frame(bytes.fromhex(line))), flush=True)
