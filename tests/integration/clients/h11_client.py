"""Checks corral's responses with h11, a strict HTTP/1.1 state machine:
several requests on one connection (GET chunked, HEAD, GET), each response
validated event by event. Usage: h11_client.py PORT (against stream:app).
Prints "h11 client: all ok"; any protocol slip raises."""

import socket
import sys

import h11

port = int(sys.argv[1])
sock = socket.create_connection(("127.0.0.1", port), timeout=20)
conn = h11.Connection(our_role=h11.CLIENT)


def exchange(method, target):
    headers = [("Host", f"127.0.0.1:{port}")]
    sock.sendall(conn.send(h11.Request(method=method, target=target, headers=headers)))
    sock.sendall(conn.send(h11.EndOfMessage()))
    response, body = None, b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = sock.recv(65536)
            conn.receive_data(data)
            continue
        if isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            break
        else:
            raise AssertionError(f"unexpected event {event!r}")
    assert conn.our_state is h11.DONE and conn.their_state is h11.DONE
    conn.start_next_cycle()
    return response, body


resp, body = exchange("GET", "/?n=4")
assert resp.status_code == 200, resp
assert (b"transfer-encoding", b"chunked") in resp.headers, resp.headers
assert body == b"".join(b"part %d\n" % i for i in range(4)), body
names = [name for name, _ in resp.headers]
assert names.count(b"date") == 1 and b"server" in names, resp.headers

resp, body = exchange("HEAD", "/?n=2")
assert resp.status_code == 200 and body == b"", (resp, body)

resp, body = exchange("GET", "/?n=1")
assert resp.status_code == 200 and body == b"part 0\n", (resp, body)

sock.close()
print("h11 client: all ok")
