"""Answers how many malloc arenas glibc has in the worker, after four new
threads have each allocated: by glibc's default each new thread that
allocates gets an arena of its own (up to eight per core); a worker that
limits the process to one arena shows one. Counted from malloc_info(3)."""

import ctypes
import os
import tempfile
import threading


def _arenas():
    libc = ctypes.CDLL(None)
    libc.fdopen.restype = ctypes.c_void_p
    libc.fdopen.argtypes = [ctypes.c_int, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    with tempfile.TemporaryFile() as f:
        stream = libc.fdopen(os.dup(f.fileno()), b"w")
        libc.malloc_info(0, stream)
        libc.fclose(stream)
        f.seek(0)
        return f.read().decode().count("<heap nr=")


def app(environ, start_response):
    # Above pymalloc's 512-byte limit, so each goes through malloc.
    kept = []

    def allocate():
        kept.append(bytearray(4096))

    threads = [threading.Thread(target=allocate) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    body = f"{_arenas()}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
