"""A 1 MiB response: byte i is i % 251. ``/`` sends it in one piece with
Content-Length; ``/chunks`` yields it in 16 KiB pieces without a length."""

SIZE = 1024 * 1024
BODY = bytes(i % 251 for i in range(SIZE))


def app(environ, start_response):
    if environ["PATH_INFO"] == "/chunks":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        step = 16 * 1024
        return (BODY[i : i + step] for i in range(0, SIZE, step))
    start_response(
        "200 OK",
        [("Content-Type", "application/octet-stream"), ("Content-Length", str(SIZE))],
    )
    return [BODY]
