"""Sleeps for ``?s=SECONDS`` (default 1) and then names the worker and thread
that answered, for the thread-pool concurrency and graceful-stop tests. It
logs "slow: started PATH" to stderr first, so a test knows the request is in
flight without guessing."""

import os
import sys
import threading
import time
from urllib.parse import parse_qs


def app(environ, start_response):
    print(f"slow: started {environ['PATH_INFO']}", file=sys.stderr, flush=True)
    query = parse_qs(environ.get("QUERY_STRING", ""))
    time.sleep(float(query.get("s", ["1"])[0]))
    body = f"{os.getpid()} {threading.get_ident()}\n".encode()
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
    )
    return [body]
