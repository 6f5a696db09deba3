"""A 1 MiB response: byte i is i % 251. ``/`` sends it in one piece with
Content-Length; ``/chunks`` yields it in 16 KiB pieces without a length;
``/write`` passes it to write() in two pieces; ``/short`` returns all of
it under a Content-Length of 100000. ``/refs`` answers with the reference
count of the body object, which must not grow however many responses were
written from it. ``/fresh`` answers with a new 64 MiB object each time."""

import sys

SIZE = 1024 * 1024
BODY = bytes(i % 251 for i in range(SIZE))


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/refs":
        out = str(sys.getrefcount(BODY)).encode()
        start_response("200 OK", [("Content-Length", str(len(out)))])
        return [out]
    if path == "/fresh":
        out = b"f" * (64 * SIZE)
        start_response("200 OK", [("Content-Length", str(len(out)))])
        return [out]
    if path == "/chunks":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        step = 16 * 1024
        return (BODY[i : i + step] for i in range(0, SIZE, step))
    if path == "/write":
        write = start_response(
            "200 OK",
            [("Content-Type", "application/octet-stream"), ("Content-Length", str(SIZE))],
        )
        write(BODY[: SIZE // 3])
        write(BODY[SIZE // 3 :])
        return []
    length = 100000 if path == "/short" else SIZE
    start_response(
        "200 OK",
        [("Content-Type", "application/octet-stream"), ("Content-Length", str(length))],
    )
    return [BODY]
