"""A generator response without Content-Length: chunked on HTTP/1.1,
close-delimited on HTTP/1.0. ``?n=K`` sets the number of parts (default 5)."""

from urllib.parse import parse_qs


def app(environ, start_response):
    query = parse_qs(environ.get("QUERY_STRING", ""))
    count = int(query.get("n", ["5"])[0])
    start_response("200 OK", [("Content-Type", "text/plain")])

    def parts():
        for i in range(count):
            yield b"part %d\n" % i

    return parts()
