"""A fixed body with Content-Length; the server must drop it for HEAD."""

BODY = b"hello from head.py\n"


def app(environ, start_response):
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))],
    )
    return [BODY]


# `corral head` (a module without `:VAR`) serves this name.
application = app
