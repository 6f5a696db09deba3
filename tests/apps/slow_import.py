"""An app whose import takes a while (a big framework warming up), with a
marker file written when the import starts, so a test can signal a worker
mid-import."""

import os
import time

_marker = os.environ.get("CORRAL_TEST_IMPORT_MARK")
if _marker:
    with open(os.path.join(_marker, "importing-%d" % os.getpid()), "w"):
        pass
time.sleep(1.5)


def app(environ, start_response):
    body = b"imported"
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
