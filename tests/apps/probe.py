"""What a deployment test asks of the interpreter a worker runs on.

As an app (``probe:app``, stdlib only) it answers every path with
``describe()`` as JSON; the Flask and Django probes answer with the same
document plus where their framework was imported from.

``/signal`` installs a SIGALRM handler and sleeps under ``signal.alarm``:
it only answers "interrupted" if the view runs on the main thread (where
``signal.signal`` is allowed) and the alarm is delivered to it.
"""

import json
import os
import signal
import sys
import threading
import time


def describe(**extra):
    import corral

    info = {
        "pid": os.getpid(),
        "version": list(sys.version_info[:2]),
        "prefix": sys.prefix,
        "base_prefix": sys.base_prefix,
        "executable": sys.executable,
        "path": sys.path,
        "thread": threading.current_thread().name,
        "main_thread": threading.current_thread() is threading.main_thread(),
        "corral": corral.__version__,
        "corral_core": corral._corral.__version__,
    }
    info.update(extra)
    return info


class _Alarm(Exception):
    pass


def alarm_interrupts_sleep():
    """True when SIGALRM cuts a 10 s sleep short, as timeout decorators need."""

    def fire(signum, frame):
        raise _Alarm()

    old = signal.signal(signal.SIGALRM, fire)
    try:
        signal.alarm(1)
        time.sleep(10)
        return False
    except _Alarm:
        return True
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def app(environ, start_response):
    if environ["PATH_INFO"] == "/signal":
        body = b"interrupted" if alarm_interrupts_sleep() else b"not interrupted"
    else:
        body = json.dumps(describe()).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
