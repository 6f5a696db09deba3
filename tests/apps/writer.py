"""Uses the legacy write() callable returned by start_response, then returns
more body from the iterable. The client must see "first,second,third"."""


def app(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"first,")
    write(b"second,")
    return [b"third"]
