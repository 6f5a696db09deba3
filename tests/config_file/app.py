"""The application the config-file tests serve."""
import os


def application(environ, start_response):
    body = ("hello %s %s\n" % (os.environ.get("GREETING", "-"), environ["wsgi.url_scheme"])).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
