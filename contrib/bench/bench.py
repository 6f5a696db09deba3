"""Benchmark driver: runs wrk against each server in turn, same app, same worker
count, and writes raw numbers, ratios, docs/performance.md and docs/performance.png.
WSGI scenarios run the WSGI servers, ASGI scenarios the ASGI servers; the WebSocket
scenario uses contrib/bench/wsbench.rs instead of wrk.

Started by contrib/bench/run, which prepares the tools and the virtualenv first.
"""

import argparse
import base64
import datetime
import hashlib
import http.client
import json
import os
import platform
import re
import shlex
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VENV = os.path.join(HERE, ".venv")
VBIN = os.path.join(VENV, "bin")
RESULTS = os.path.join(HERE, "results")
THREADS = 4          # threads per worker for every threaded server
HOST = "127.0.0.1"
CLK = os.sysconf("SC_CLK_TCK")

# --------------------------------------------------------------------------
# Scenarios: name, app, wrk extras, connections, how to check one response.
# kind: "wsgi" (the default) runs the WSGI servers, "asgi" the ASGI ones;
# load: "ws" drives the scenario with wsbench (WebSocket echo) instead of wrk.

SCENARIOS = [
    dict(key="hello", title="hello, keep-alive", app="apps:hello", conns=50),
    dict(key="close", title="hello, Connection: close", app="apps:hello", conns=50,
         wrk=["-H", "Connection: close"]),
    dict(key="64k", title="64 KiB response", app="apps:big", conns=50),
    dict(key="echo", title="1 MiB POST echo", app="apps:echo", conns=8,
         wrk=["-s", os.path.join(HERE, "post1m.lua")]),
    dict(key="sleep", title="10 ms sleep (I/O-bound)", app="apps:sleep", conns=50),
    dict(key="flask", title="Flask JSON", app="flaskapp:app", conns=50),
    # The same with every worker recycled after 40-50 requests: compare with
    # the row above (the servers with gunicorn's flags only). Workers that
    # exit during the run are counted through the master's cutime/cstime.
    dict(key="flask-mr40", title="Flask JSON, --max-requests 40 (jitter 10)",
         app="flaskapp:app", conns=50,
         server_args=["--max-requests", "40", "--max-requests-jitter", "10"],
         only=("corral-sync", "corral-gthread", "gunicorn-sync", "gunicorn-gthread")),
    dict(key="const", title="pre-built response (least Python)", app="apps:const", conns=50),
    dict(key="ceiling", title="no-Python ceiling (Rust responder, not corral)", app=None,
         conns=50),
    # ASGI 3.0: asgi_apps.py (raw ASGI) and fastapiapp.py, on the ASGI servers.
    dict(key="asgi-hello", title="ASGI hello, keep-alive", app="asgi_apps:hello", conns=50,
         kind="asgi"),
    dict(key="asgi-fastapi", title="ASGI FastAPI JSON", app="fastapiapp:app", conns=50,
         kind="asgi"),
    dict(key="asgi-ws", title="ASGI WebSocket echo (20-byte text, 1 in flight/conn)",
         app="asgi_apps:ws_echo", conns=50, kind="asgi", load="ws"),
]

# --------------------------------------------------------------------------
# Servers: each returns the argv that serves APP on PORT with W workers.


def kind(d):
    """A scenario's or a server's interface: "wsgi" (the default) or "asgi"."""
    return d.get("kind", "wsgi")


def corral_for(peer):
    """The corral server a peer is compared with."""
    return {"sync": "corral-sync", "threaded": "corral-gthread",
            "asgi": "corral-asgi"}[peer["model"]]


def corral_bin():
    # corral as users install it: pip-installed into the same virtualenv.
    return os.path.join(VENV, "bin", "corral")


def cmd_corral(kind):
    def f(app, port, w):
        argv = [corral_bin(), "-w", str(w), "-k", kind, "-b", f"{HOST}:{port}",
                "--chdir", HERE, "--log-level", "warning"]
        if kind == "gthread":
            argv += ["--threads", str(THREADS)]
        if kind == "asgi":
            # what --asgi-loop auto picks with uvloop installed; explicit, so that
            # a missing uvloop fails instead of quietly comparing asyncio's loop
            argv += ["--asgi-loop", "uvloop"]
        return argv + [app]
    return f


def cmd_gunicorn(kind):
    def f(app, port, w):
        argv = [os.path.join(VBIN, "gunicorn"), "-w", str(w), "-k", kind,
                "-b", f"{HOST}:{port}", "--chdir", HERE, "--log-level", "warning"]
        if kind == "gthread":
            argv += ["--threads", str(THREADS)]
        if kind == "asgi":
            argv += ["--asgi-loop", "uvloop"]
        return argv + [app]
    return f


def cmd_granian(app, port, w):
    return [os.path.join(VBIN, "granian"), "--interface", "wsgi", "--host", HOST,
            "--port", str(port), "--workers", str(w), "--blocking-threads", str(THREADS),
            "--working-dir", HERE, "--log-level", "warning", app]


def cmd_granian_asgi(app, port, w):
    return [os.path.join(VBIN, "granian"), "--interface", "asgi", "--host", HOST,
            "--port", str(port), "--workers", str(w), "--loop", "uvloop",
            "--working-dir", HERE, "--log-level", "warning", app]


def cmd_uvicorn(app, port, w):
    # --ws websockets-sansio: what --ws auto picks in this uvicorn; the older
    # "websockets" implementation warns that it is deprecated (and is slower).
    return [os.path.join(VBIN, "uvicorn"), "--workers", str(w), "--loop", "uvloop",
            "--http", "httptools", "--ws", "websockets-sansio", "--host", HOST,
            "--port", str(port), "--log-level", "warning", "--no-access-log",
            "--app-dir", HERE, app]


def cmd_bjoern(app, port, w):
    return [os.path.join(VBIN, "python"), os.path.join(HERE, "bjoern_serve.py"), app, str(port)]


def cmd_uwsgi(app, port, w):
    module, _, name = app.partition(":")
    return [os.path.join(VBIN, "uwsgi"), "--http-socket", f"{HOST}:{port}",
            "--chdir", HERE, "--module", module, "--callable", name,
            "--master", "--processes", str(w), "--die-on-term", "--need-app",
            "--disable-logging", "--lazy-apps", "--post-buffering", "0",
            "--buffer-size", "8192", "--pythonpath", HERE,
            "--add-header", "Connection: close"]


def cmd_ceiling(app, port, w):
    return [os.path.join(RESULTS, "ceiling"), str(port), str(w)]


# name, label, argv builder, model ("sync" peers are compared with corral sync,
# "threaded" ones with corral gthread, "asgi" ones with corral asgi), single-process
# only?, kind (the scenarios it serves: "wsgi", the default, or "asgi").
SERVERS = [
    dict(key="corral-sync", label="corral sync", cmd=cmd_corral("sync"), model="sync"),
    dict(key="corral-gthread", label=f"corral gthread ({THREADS} thr)",
         cmd=cmd_corral("gthread"), model="threaded"),
    dict(key="gunicorn-sync", label="gunicorn sync", cmd=cmd_gunicorn("sync"), model="sync"),
    dict(key="gunicorn-gthread", label=f"gunicorn gthread ({THREADS} thr)",
         cmd=cmd_gunicorn("gthread"), model="threaded"),
    dict(key="granian", label=f"granian WSGI ({THREADS} blocking thr)", cmd=cmd_granian,
         model="threaded"),
    dict(key="bjoern", label="bjoern (1 process)", cmd=cmd_bjoern, model="sync", single=True),
    dict(key="uwsgi", label="uWSGI (processes)", cmd=cmd_uwsgi, model="sync"),
    dict(key="corral-asgi", label="corral asgi", cmd=cmd_corral("asgi"), model="asgi",
         kind="asgi"),
    dict(key="uvicorn", label="uvicorn (uvloop, httptools)", cmd=cmd_uvicorn, model="asgi",
         kind="asgi"),
    dict(key="granian-asgi", label="granian ASGI (uvloop)", cmd=cmd_granian_asgi,
         model="asgi", kind="asgi"),
    dict(key="gunicorn-asgi", label="gunicorn asgi (uvloop)", cmd=cmd_gunicorn("asgi"),
         model="asgi", kind="asgi"),
]
PEERS = [s for s in SERVERS if not s["key"].startswith("corral") and kind(s) == "wsgi"]
ASGI_PEERS = [s for s in SERVERS if not s["key"].startswith("corral") and kind(s) == "asgi"]
CEILING = dict(key="ceiling", label="Rust responder (ceiling)", cmd=cmd_ceiling, model="-")

# --------------------------------------------------------------------------
# Process tree helpers (everything is found from the pid we started).


def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree(pid):
    kids = children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_by_pid(pids):
    out = {}
    for p in pids:
        out[p] = cpu_ticks([p])
    return out


def cpu_ticks(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                s = f.read()
        except OSError:
            continue
        fields = s[s.rindex(")") + 2:].split()
        # utime + stime, and cutime + cstime: what the process's reaped
        # children used. A worker that exits during a measurement (a
        # recycle) leaves the tree, and its whole CPU time moves into its
        # parent's cutime/cstime when the master reaps it; without them the
        # tree's total went down, and recycling rows showed negative CPU.
        total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return total


def vm_hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


# --------------------------------------------------------------------------
# One server, one scenario


WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_once(port, timeout=2.0):
    """One WebSocket round trip, as wsbench makes them: the opening handshake
    (101 and Sec-WebSocket-Accept checked), one masked text frame, its echo (one
    unmasked text frame, same payload), then a close. True if all is right; an
    OSError while the server is not up yet."""
    key = base64.b64encode(os.urandom(16)).decode()
    s = socket.create_connection((HOST, port), timeout=timeout)
    try:
        s.sendall(("GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n" % (HOST, port, key)).encode())
        buf = b""

        def need(n):
            nonlocal buf
            while len(buf) < n:
                d = s.recv(65536)
                if not d:
                    raise ConnectionResetError("closed by the server")
                buf += d

        while b"\r\n\r\n" not in buf:
            need(len(buf) + 1)
        head, _, buf = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if not lines[0].startswith("HTTP/1.1 101"):
            return False
        headers = {k.strip().lower(): v.strip()
                   for k, _, v in (ln.partition(":") for ln in lines[1:])}
        want = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        if headers.get("sec-websocket-accept") != want:
            return False

        def frame(opcode, payload):
            mask = os.urandom(4)
            return (bytes([0x80 | opcode, 0x80 | len(payload)]) + mask +
                    bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

        payload = b"wsbench probe %06d" % (os.getpid() % 1000000)
        s.sendall(frame(0x1, payload))
        need(2)
        if buf[0] != 0x81 or buf[1] != len(payload):   # FIN text, unmasked, 20 bytes
            return False
        need(2 + len(payload))
        ok = buf[2:2 + len(payload)] == payload
        buf = buf[2 + len(payload):]
        s.sendall(frame(0x8, (1000).to_bytes(2, "big")))
        try:
            need(2)     # the server's close frame, not checked
        except OSError:
            pass
        return ok
    finally:
        s.close()


def request_once(port, sc, timeout=2.0):
    """One request as the scenario makes it; returns True if the answer is right."""
    if sc.get("load") == "ws":
        return ws_once(port, timeout)
    c = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        if sc["key"] == "echo":
            body = os.urandom(1 << 20)
            c.request("POST", "/", body=body,
                      headers={"Content-Type": "application/octet-stream"})
            r = c.getresponse()
            return r.status == 200 and r.read() == body
        c.request("GET", "/")
        r = c.getresponse()
        data = r.read()
        if r.status != 200:
            return False
        if sc["key"] == "64k":
            return len(data) == 65536
        if sc["app"] in ("flaskapp:app", "fastapiapp:app"):
            return json.loads(data)["message"] == "Hello, World!"
        return data == b"Hello, World!"
    finally:
        c.close()


def wait_ready(proc, port, sc, limit=60.0):
    """Bounded wait until the port answers the scenario's request correctly."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if proc.poll() is not None:
            return "exited with status %s" % proc.returncode
        try:
            if request_once(port, sc):
                return None
            return "wrong response"
        except (OSError, http.client.HTTPException, ValueError):
            time.sleep(0.05)
    return "not ready after %.0f s" % limit


def stop(proc):
    """Stop the server we started: its own process group, whose id is its pid."""
    pids = tree(proc.pid)
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        # the group leader is gone; give leftovers in its group a moment
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") and
                                                  _alive(p) for p in pids[1:]):
            time.sleep(0.05)
        if not any(_alive(p) for p in pids[1:]):
            return
    for p in pids[1:]:
        if _alive(p):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_wrk(out):
    def lat(pct):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s|m)\s*$" % pct, out, re.M)
        return float(m.group(1)) * UNIT[m.group(2)] if m else None
    r = {"p50": lat(50), "p99": lat(99)}
    m = re.search(r"^\s*(\d+) requests in ([\d.]+)(ms|s|m)", out, re.M)
    r["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    r["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["sock_err"] = sum(int(x) for x in m.groups()) if m else 0
    r["sock_detail"] = "c%s r%s w%s t%s" % m.groups() if m else ""
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non2xx"] = int(m.group(1)) if m else 0
    return r


def parse_ws(out):
    """wsbench's result line, in parse_wrk's fields: requests are round trips
    (message sent, echo received and checked); every error counts as a socket error."""
    m = re.search(r"^wsbench (.*)$", out, re.M)
    kv = dict(x.split("=", 1) for x in m.group(1).split()) if m else {}
    num = lambda k, t=float: t(kv[k]) if k in kv else t(0)  # noqa: E731
    r = {"p50": num("p50_ms") if num("roundtrips", int) else None,
         "p99": num("p99_ms") if num("roundtrips", int) else None,
         "requests": num("roundtrips", int), "rps": num("rps"),
         "sock_err": num("errors", int), "non2xx": 0}
    r["sock_detail"] = "handshake %d, wrong echo %d, i/o %d, timeout %d" % (
        num("handshake", int), num("mismatch", int), num("io", int), num("timeout", int))
    return r


WSBENCH = os.path.join(RESULTS, "wsbench")


def run_ws(port, sc, duration, conns=None):
    """Runs wsbench (bounded): like run_wrk, for the WebSocket echo scenario."""
    argv = [WSBENCH, f"{HOST}:{port}", "-c", str(conns or sc["conns"]), "-d", str(duration)]
    return run_bounded(argv, duration)


def run_load(port, sc, duration, conns=None):
    return (run_ws if sc.get("load") == "ws" else run_wrk)(port, sc, duration, conns)


def run_wrk(port, sc, duration, conns=None):
    """Runs wrk (bounded); returns its argv, output and CPU seconds (its own rusage)."""
    argv = ["wrk", "-t1", "-c%d" % (conns or sc["conns"]), "-d%ds" % duration, "--latency",
            "--timeout", "2s"] + sc.get("wrk", []) + [f"http://{HOST}:{port}/"]
    return run_bounded(argv, duration)


def run_bounded(argv, duration):
    """Runs the load generator, killed if it overruns by 30 s; returns its argv,
    output and CPU seconds (its own rusage)."""
    import tempfile
    import threading
    with tempfile.TemporaryFile("w+") as out:
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        guard = threading.Timer(duration + 30, lambda: os.kill(p.pid, signal.SIGKILL))
        guard.start()
        _, status, ru = os.wait4(p.pid, 0)
        guard.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        return argv, out.read(), ru.ru_utime + ru.ru_stime


def one_case(server, sc, workers, port, args):
    res = dict(server=server["key"], scenario=sc["key"], workers=workers)
    argv = server["cmd"](sc["app"], port, workers)
    # Scenario flags go before the app, the last argument.
    argv[-1:-1] = sc.get("server_args", [])
    env = dict(os.environ, VIRTUAL_ENV=VENV, PATH=VBIN + ":" + os.environ["PATH"],
               PYTHONDONTWRITEBYTECODE="1")
    env.pop("WEB_CONCURRENCY", None)
    log = open(os.path.join(RESULTS, f"{server['key']}-{sc['key']}-w{workers}.log"), "w")
    proc = subprocess.Popen(argv, cwd=HERE, env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    res["cmd"] = " ".join(shlex.quote(a) for a in argv)
    try:
        err = wait_ready(proc, port, sc)
        if err:
            res["error"] = err
            return res
        if args.warmup:
            run_load(port, sc, args.warmup)
            err = wait_ready(proc, port, sc, limit=10)
            if err:
                res["error"] = "after warm-up: " + err
                return res
        pids = tree(proc.pid)
        t0 = cpu_ticks(pids)
        per0 = cpu_by_pid(pids)
        wall0 = time.monotonic()
        wargv, out, wrk_cpu = run_load(port, sc, args.duration)
        wall = time.monotonic() - wall0
        pids_after = tree(proc.pid)
        t1 = cpu_ticks(pids_after)
        per1 = cpu_by_pid(pids_after)
        # how the work was spread over the worker processes (share of the busiest)
        wd = [per1[p] - per0.get(p, 0) for p in pids_after if p != proc.pid]
        res["busiest_worker_share"] = (max(wd) / sum(wd)) if len(wd) > 1 and sum(wd) else None
        ws = sc.get("load") == "ws"
        res.update(parse_ws(out) if ws else parse_wrk(out))
        res["wrk_cmd"] = " ".join(shlex.quote(a) for a in wargv)
        res["wrk_cpu"] = wrk_cpu / max(wall, 1e-9)
        res["server_cpu"] = (t1 - t0) / CLK / max(wall, 1e-9)  # cores used
        res["cpu_us_per_req"] = ((t1 - t0) / CLK * 1e6 / res["requests"]
                                 if res["requests"] else None)
        res["restarted"] = sorted(set(pids) - set(pids_after)) != []
        workers_pids = [p for p in pids_after if p != proc.pid] or [proc.pid]
        hwm = [vm_hwm_kib(p) for p in workers_pids]
        res["worker_cpu_ticks"] = wd
        hwm = [h for h in hwm if h]
        res["rss_worker_mib"] = max(hwm) / 1024 if hwm else None
        res["rss_total_mib"] = sum(h for h in (vm_hwm_kib(p) for p in pids_after) if h) / 1024
        res["nproc"] = len(pids_after)
        tool = "wsbench" if ws else "wrk"
        if not res["rps"]:
            m = re.search(r"^wsbench: first error: (.*)$", out, re.M)
            res["error"] = (tool + ": " + m.group(1) if m else
                            tool + ": " + out.strip().splitlines()[-1] if out.strip()
                            else tool + " failed")
        with open(os.path.join(RESULTS, f"{server['key']}-{sc['key']}-w{workers}.{tool}"),
                  "w") as f:
            f.write(res["wrk_cmd"] + "\n" + out)
        return res
    finally:
        stop(proc)
        log.close()


def median_run(runs):
    """The round with the median req/s, whole (its latencies, CPU and RSS
    come from the same measurement), with every round's req/s attached. A
    round that failed wins: a server that failed once is a finding."""
    failed = [r for r in runs if r.get("error") or not r.get("rps")]
    rps = [r.get("rps", 0) for r in runs]
    if failed:
        pick = dict(failed[0])
    else:
        ranked = sorted(runs, key=lambda r: r["rps"])
        pick = dict(ranked[(len(ranked) - 1) // 2])
    pick["rounds_rps"] = rps
    return pick


def rounds_text(r):
    return "/".join("%.0f" % x for x in r.get("rounds_rps", []))


# --------------------------------------------------------------------------
# Machine description


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except Exception:
        return ""


def machine():
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) / 1024 / 1024
    pipv = {}
    for name in ("gunicorn", "granian", "bjoern", "uWSGI", "Flask", "matplotlib", "uvicorn",
                 "uvloop", "httptools", "websockets", "fastapi", "starlette", "pydantic"):
        v = sh(f"{VBIN}/python -m pip show {name} 2>/dev/null | sed -n 's/^Version: //p'")
        pipv[name] = v
    return {
        "nproc": sh("nproc"),
        "cpu": model,
        "mem_gib": "%.1f" % mem,
        "kernel": platform.release(),
        "os": sh(". /etc/os-release && echo $PRETTY_NAME"),
        "python": sh(f"{VBIN}/python -c 'import sys; print(sys.version.split()[0])'"),
        "corral": sh(f"{corral_bin()} --version") + " (git " + sh(
            f"git -C {ROOT} rev-parse --short HEAD") + ")",
        "rustc": sh("rustc --version"),
        "wrk": sh("wrk -v 2>&1 | head -1"),
        "pip": pipv,
        "loadavg": open("/proc/loadavg").read().split()[:3],
    }


# --------------------------------------------------------------------------
# Report

SERVER_LABEL = {s["key"]: s["label"] for s in SERVERS + [CEILING]}
SC_TITLE = {s["key"]: s["title"] for s in SCENARIOS}


def fmt_ms(v):
    return "-" if v is None else ("%.2f" % v if v < 10 else "%.1f" % v)


def raw_table(results):
    head = ("| scenario | workers | server | req/s | p50 ms | p99 ms | errors | "
            "peak RSS/worker MiB | server CPU µs/req | server cores | busiest worker | wrk cores "
            "| req/s of each round |\n"
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
    rows = []
    for r in results:
        sv = SERVER_LABEL[r["server"]]
        if r.get("error") and not r.get("rps"):
            rows.append(f"| {SC_TITLE[r['scenario']]} | {r['workers']} | {sv} | failed: "
                        f"{r['error']} | | | | | | | | | {rounds_text(r)} |")
            continue
        errs = r["non2xx"] + r["sock_err"]
        errs_s = str(errs) if not errs else "%d (%s%s)" % (
            errs, "non-2xx %d " % r["non2xx"] if r["non2xx"] else "", r["sock_detail"])
        rows.append("| %s | %d | %s | %.0f | %s | %s | %s | %s | %s | %.2f | %s | %.2f | %s |" % (
            SC_TITLE[r["scenario"]], r["workers"], sv, r["rps"], fmt_ms(r["p50"]),
            fmt_ms(r["p99"]), errs_s,
            "-" if r.get("rss_worker_mib") is None else "%.1f" % r["rss_worker_mib"],
            "-" if r.get("cpu_us_per_req") is None else "%.0f" % r["cpu_us_per_req"],
            r["server_cpu"], "-" if r.get("busiest_worker_share") is None else
            "%.0f %%" % (100 * r["busiest_worker_share"]), r["wrk_cpu"], rounds_text(r)))
    return head + "\n".join(rows) + "\n"


def index(results):
    return {(r["scenario"], r["workers"], r["server"]): r for r in results
            if r.get("rps")}


def ratio_cell(c, p):
    if not c or not p:
        return "-"
    s = "%.2f×" % (c["rps"] / p["rps"])
    if c.get("p99") and p.get("p99"):
        s += " (p99 %s/%s)" % (fmt_ms(c["p99"]), fmt_ms(p["p99"]))
    return s


def corral_model(peer):
    return {"sync": "sync", "threaded": "gthread", "asgi": "asgi"}[peer["model"]]


def ratio_table(results, peers=None):
    """corral ÷ each peer; the WSGI peers by default, ASGI_PEERS for the ASGI rows."""
    peers = PEERS if peers is None else peers
    ix = index(results)
    head = ("| scenario | workers | " + " | ".join(
        "corral %s / %s" % (corral_model(p), p["label"])
        for p in peers) + " |\n|---|---:|" + "---:|" * len(peers) + "\n")
    rows = []
    for sc in SCENARIOS:
        if sc["key"] == "ceiling":
            continue
        for w in sorted({r["workers"] for r in results}, reverse=True):
            cells = []
            for p in peers:
                ck = corral_for(p)
                cells.append(ratio_cell(ix.get((sc["key"], w, ck)),
                                        ix.get((sc["key"], w, p["key"]))))
            if all(c == "-" for c in cells):
                continue
            rows.append("| %s | %d | %s |" % (sc["title"], w, " | ".join(cells)))
    return head + "\n".join(rows) + "\n"


def cpu_ratio_table(results, peers=None):
    peers = PEERS if peers is None else peers
    ix = index(results)
    head = ("| scenario | workers | " + " | ".join(
        "%s ÷ corral %s" % (p["label"], corral_model(p))
        for p in peers) + " |\n|---|---:|" + "---:|" * len(peers) + "\n")
    rows = []
    for sc in SCENARIOS:
        if sc["key"] == "ceiling":
            continue
        for w in sorted({r["workers"] for r in results}, reverse=True):
            cells = []
            for p in peers:
                ck = corral_for(p)
                c, q = ix.get((sc["key"], w, ck)), ix.get((sc["key"], w, p["key"]))
                if c and q and c.get("cpu_us_per_req") and q.get("cpu_us_per_req"):
                    cells.append("%.2f× (%.0f/%.0f µs)" % (
                        q["cpu_us_per_req"] / c["cpu_us_per_req"], q["cpu_us_per_req"],
                        c["cpu_us_per_req"]))
                else:
                    cells.append("-")
            if all(c == "-" for c in cells):
                continue
            rows.append("| %s | %d | %s |" % (sc["title"], w, " | ".join(cells)))
    return head + "\n".join(rows) + "\n"


def targets(results):
    ix = index(results)
    out = []

    def g(sc, w, sv):
        return ix.get((sc, w, sv))

    def verdict(ok):
        return "**met**" if ok else "**missed**"

    def best_corral(sc, w):
        c = [g(sc, w, k) for k in ("corral-sync", "corral-gthread")]
        c = [x for x in c if x]
        return max(c, key=lambda x: x["rps"]) if c else None

    for w in sorted({r["workers"] for r in results}, reverse=True):
        # granian
        for ck in ("corral-gthread", "corral-sync"):
            c, p = g("hello", w, ck), g("hello", w, "granian")
            if c and p:
                ratio = c["rps"] / p["rps"]
                p99ok = c["p99"] <= p["p99"]
                out.append("- ≥1.5× granian req/s, p99 no worse (hello keep-alive, %d worker%s, "
                           "%s): %.2f× req/s, p99 %s vs %s ms → %s" % (
                               w, "s" if w > 1 else "", SERVER_LABEL[ck], ratio,
                               fmt_ms(c["p99"]), fmt_ms(p["p99"]),
                               verdict(ratio >= 1.5 and p99ok)))
    for ck in ("corral-sync", "corral-gthread"):
        c, p = g("hello", 1, ck), g("hello", 1, "bjoern")
        if c and p:
            ratio = c["rps"] / p["rps"]
            out.append("- ≥1.0× bjoern, 1 worker (hello keep-alive, %s): %.2f× → %s" % (
                SERVER_LABEL[ck], ratio, verdict(ratio >= 1.0)))
    for ck, pk, goal in (("corral-sync", "gunicorn-sync", 10), ("corral-gthread",
                                                               "gunicorn-gthread", 5)):
        for w in sorted({r["workers"] for r in results}, reverse=True):
            c, p = g("hello", w, ck), g("hello", w, pk)
            if c and p:
                ratio = c["rps"] / p["rps"]
                allr = [(sc["key"], g(sc["key"], w, ck)["rps"] / g(sc["key"], w, pk)["rps"])
                        for sc in SCENARIOS
                        if g(sc["key"], w, ck) and g(sc["key"], w, pk)]
                out.append("- ≥%d× %s (hello keep-alive, %d worker%s): %.2f× → %s "
                           "(other scenarios: %s)" % (
                               goal, SERVER_LABEL[pk], w, "s" if w > 1 else "", ratio,
                               verdict(ratio >= goal),
                               ", ".join("%s %.2f×" % (k, v) for k, v in allr if k != "hello")))
    for w in sorted({r["workers"] for r in results}, reverse=True):
        c, ceil = best_corral("hello", w), g("ceiling", w, "ceiling")
        const = best_corral("const", w)
        if c and ceil:
            f = ceil["rps"] / c["rps"]
            out.append("- within 2× of the no-Python ceiling (%d worker%s): the Rust responder "
                       "does %.0f req/s, corral's best hello %.0f req/s (%s): %.2f× below → %s" % (
                           w, "s" if w > 1 else "", ceil["rps"], c["rps"],
                           SERVER_LABEL[c["server"]], f, verdict(f <= 2.0))
                       + (("; corral with the pre-built response: %.0f req/s" % const["rps"])
                          if const else ""))
    for w in sorted({r["workers"] for r in results}, reverse=True):
        c = best_corral("echo", w)
        peers = [g("echo", w, p["key"]) for p in PEERS]
        peers = [p for p in peers if p]
        if c and peers:
            best = max(peers, key=lambda x: x["rps"])
            hello = g("hello", w, c["server"])
            grow = (c["rss_worker_mib"] - hello["rss_worker_mib"]) if hello else None
            out.append("- 1 MiB echo no worse than any peer, flat memory (%d worker%s): "
                       "corral best (%s) %.0f req/s vs best peer %s %.0f req/s = %.2f× → %s; "
                       "peak RSS/worker %.1f MiB vs %.1f MiB in hello (+%.1f MiB) with %d "
                       "concurrent 1 MiB requests" % (
                           w, "s" if w > 1 else "", SERVER_LABEL[c["server"]], c["rps"],
                           SERVER_LABEL[best["server"]], best["rps"], c["rps"] / best["rps"],
                           verdict(c["rps"] >= best["rps"]), c["rss_worker_mib"],
                           hello["rss_worker_mib"] if hello else 0, grow or 0,
                           [s for s in SCENARIOS if s["key"] == "echo"][0]["conns"]))
    worse = []
    total = 0
    for (sc, w, sv), r in ix.items():
        pk = {"corral-sync": "gunicorn-sync", "corral-gthread": "gunicorn-gthread"}.get(sv)
        if pk and ix.get((sc, w, pk)) and r.get("rss_worker_mib"):
            total += 1
            p = ix[(sc, w, pk)]
            if r["rss_worker_mib"] > p["rss_worker_mib"]:
                worse.append("%s/%s w%d: %.1f vs %.1f MiB" % (
                    sc, sv, w, r["rss_worker_mib"], p["rss_worker_mib"]))
    if total:
        out.append("- peak RSS per worker ≤ gunicorn's (same class, every case): %d of %d "
                   "cases at or below → %s%s" % (
                       total - len(worse), total, verdict(not worse),
                       ("; above in " + "; ".join(worse)) if worse else ""))
    out += asgi_targets(ix)
    return "\n".join(out) + "\n"


# corral asgi's targets on the raw ASGI hello: (peer, req/s goal, at how many
# workers, p99 no worse too?). gunicorn -k asgi has no goal: shown for the record.
ASGI_GOALS = (("uvicorn", 2.0, 1, False), ("granian-asgi", 1.5, 2, True),
              ("gunicorn-asgi", None, None, False))


def asgi_targets(ix):
    out = []
    ws = sorted({w for (_, w, _) in ix}, reverse=True)
    others = [s["key"] for s in SCENARIOS if kind(s) == "asgi" and s["key"] != "asgi-hello"]
    for pk, goal, at, want_p99 in ASGI_GOALS:
        for w in ws:
            c, p = ix.get(("asgi-hello", w, "corral-asgi")), ix.get(("asgi-hello", w, pk))
            if not (c and p):
                continue
            ratio = c["rps"] / p["rps"]
            p99ok = c["p99"] is not None and p["p99"] is not None and c["p99"] <= p["p99"]
            rest = ["%s %.2f× (p99 %s/%s)" % (k, ix[(k, w, "corral-asgi")]["rps"] /
                                               ix[(k, w, pk)]["rps"],
                                               fmt_ms(ix[(k, w, "corral-asgi")]["p99"]),
                                               fmt_ms(ix[(k, w, pk)]["p99"]))
                    for k in others if ix.get((k, w, "corral-asgi")) and ix.get((k, w, pk))]
            if goal is not None and w == at:
                what = "≥%g× %s req/s%s" % (goal, SERVER_LABEL[pk],
                                            ", p99 no worse" if want_p99 else "")
                ok = ratio >= goal and (p99ok or not want_p99)
                tail = " → **met**" if ok else " → **missed**"
            elif goal is not None:
                what = "%s req/s" % SERVER_LABEL[pk]
                tail = " (for the record: the ≥%g× goal is for %d worker%s)" % (
                    goal, at, "s" if at > 1 else "")
            else:
                what = "%s req/s" % SERVER_LABEL[pk]
                tail = " (for the record: no goal)"
            out.append("- %s (ASGI hello keep-alive, %d worker%s, corral asgi): %.2f× req/s, "
                       "p99 %s vs %s ms%s%s" % (
                           what, w, "s" if w > 1 else "", ratio, fmt_ms(c["p99"]),
                           fmt_ms(p["p99"]), tail,
                           (" (other ASGI scenarios: %s)" % ", ".join(rest)) if rest else ""))
    return out


def chart(results, path):
    """One panel per scenario (linear axis from zero), bars per server, grouped by the
    number of workers."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ws = sorted({r["workers"] for r in results}, reverse=True)
    scs = [s for s in SCENARIOS if any(r["scenario"] == s["key"] for r in results)]
    servers = [s for s in SERVERS + [CEILING] if any(r["server"] == s["key"] for r in results)]
    # matplotlib's cycle has 10 colours; the servers past it get these
    extra = ["navy", "goldenrod", "black", "lime", "teal", "maroon"]
    colors = {s["key"]: "C%d" % i if i < 10 else extra[(i - 10) % len(extra)]
              for i, s in enumerate(servers)}
    ix = index(results)
    cols = min(4, len(scs))
    rows = (len(scs) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
    for k, sc in enumerate(scs):
        ax = axes[k // cols][k % cols]
        # a panel has bars for the servers of the scenario's kind (WSGI or ASGI)
        mine = [s for s in servers if kind(s) == kind(sc)]
        width = 0.8 / len(mine)
        for i, s in enumerate(mine):
            xs, ys = [], []
            for j, w in enumerate(ws):
                r = ix.get((sc["key"], w, s["key"]))
                if r:
                    xs.append(j + (i - (len(mine) - 1) / 2) * width)
                    ys.append(r["rps"])
            ax.bar(xs, ys, width, color=colors[s["key"]], label=s["label"])
        ax.set_xticks(range(len(ws)))
        ax.set_xticklabels(["%d worker%s" % (w, "s" if w > 1 else "") for w in ws])
        ax.set_title(sc["title"], fontsize=9)
        ax.set_ylim(bottom=0)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(axis="y", alpha=0.3)
        if k % cols == 0:
            ax.set_ylabel("requests/s")
    for k in range(len(scs), rows * cols):
        axes[k // cols][k % cols].axis("off")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[s["key"]]) for s in servers]
    fig.legend(handles, [s["label"] for s in servers], loc="lower center",
               ncol=min(4, len(servers)), fontsize=8)
    rounds = max((len(r.get("rounds_rps", [])) for r in results), default=1)
    fig.suptitle("corral and other %s servers: requests/s (higher is better; %s, "
                 "shared 2-core VM)" % (" and ".join(sorted({kind(s).upper() for s in scs})),
                                        "median of %d rounds" % rounds if rounds > 1
                                        else "one run"),
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 0.97))
    fig.savefig(path, dpi=80)


def profile_text():
    path = os.path.join(RESULTS, "profile", "summary.txt")
    if not os.path.exists(path):
        return "(no profile: contrib/bench/profile was not run)"
    lines = [ln.rstrip()[:150] for ln in open(path)]
    return "\n".join(lines)


def write_doc(results, mach, args, started, finished, cmdline):
    p = mach["pip"]
    ix_cmds = {}
    for r in results:
        if r.get("cmd"):
            ix_cmds.setdefault(r["server"], r["cmd"].replace(HERE, "contrib/bench").replace(
                corral_bin(), "corral").replace(VBIN + "/", "").replace(RESULTS, "results"))
    wrk_ex = next((r["wrk_cmd"] for r in results if r.get("wrk_cmd", "").startswith("wrk ")),
                  "")
    ws_ex = next((r["wrk_cmd"].replace(HERE, "contrib/bench") for r in results
                  if r.get("wrk_cmd", "").startswith(WSBENCH)), "")
    if args.rounds > 1:
        rounds_phrase = (f"in {args.rounds} rounds of {args.duration} s (within a round\n"
                         "the servers take turns, so a change in the machine's load falls on "
                         "all of them)")
        median_phrase = ("the tables show the round with the median\nreq/s, whole (its "
                         "latencies, CPU and memory come from that same measurement),\nand "
                         "the raw table lists every round's req/s. Differences of ±10 % "
                         "between two\nservers are still within the noise.")
    else:
        rounds_phrase = f"once, for {args.duration} s"
        median_phrase = "differences of ±10 % between two servers are within the noise."
    doc = f"""# Performance

<!-- Generated by `{cmdline}`. Do not edit by hand: run it again. -->

This page is written by `contrib/bench/run`, which installs what it needs, builds corral
with `pip install` of this checkout into the benchmark virtualenv (a release build), and then runs `wrk` against each server in turn, in one run,
with the same WSGI application and the same number of worker processes; the ASGI
scenarios do the same with the ASGI servers and an ASGI application (and a small
WebSocket load generator instead of `wrk` for the WebSocket echo). Every number
below comes from the run of {started} to {finished} (UTC).

**Read the ratios, not the absolute numbers.** The machine is a shared 2-core virtual
machine; other jobs (compilers, test suites) were running on it during the run
(load average {' '.join(mach['loadavg_start'])} at the start and
{' '.join(mach['loadavg'])} at the end). The load generator runs on the same two cores as
the server. Each case is measured {rounds_phrase}, each after a {args.warmup} s warm-up
on a freshly started server; {median_phrase}

![requests per second per server and scenario](performance.png)

## Machine and versions

| | |
|---|---|
| CPUs (`nproc`) | {mach['nproc']} |
| CPU model | {mach['cpu']} |
| memory | {mach['mem_gib']} GiB |
| kernel | {mach['kernel']} ({mach['os']}) |
| Python | {mach['python']} (one virtualenv, `contrib/bench/.venv`, for every server) |
| corral | {mach['corral']}, release build, {mach['rustc']} |
| gunicorn | {p['gunicorn']} |
| granian | {p['granian']} |
| bjoern | {p['bjoern']} |
| uWSGI | {p['uWSGI']} |
| Flask | {p['Flask']} |
| uvicorn | {p['uvicorn']} (uvloop {p['uvloop']}, httptools {p['httptools']}, websockets {p['websockets']}) |
| FastAPI | {p['fastapi']} (Starlette {p['starlette']}, pydantic {p['pydantic']}) |
| load generator | {mach['wrk']}; WebSockets: `contrib/bench/wsbench.rs` (`rustc -O`) |

## Method

- Applications: `contrib/bench/apps.py` and `contrib/bench/flaskapp.py`, the same files for
  every server. ASGI: `contrib/bench/asgi_apps.py` (raw ASGI 3.0 hello and WebSocket
  echo; both complete the lifespan protocol) and `contrib/bench/fastapiapp.py` (the Flask
  app's JSON from a FastAPI route).
- Load: `wrk` with **one thread** (`-t1`), so that it takes at most one of the two cores;
  its CPU use is measured (from its rusage) and shown as "wrk cores". Nothing is pinned:
  with two cores, pinning the server to one core would stop a 2-worker server from using
  two. A server is therefore competing with `wrk` for the CPU, which is why "server CPU
  µs/req" (CPU time of the whole server process tree, from `/proc/PID/stat`, divided by
  the requests served) is the steadiest measure of efficiency here.
- Example load command: `{wrk_ex}`. 50 connections, except 8 for the 1 MiB echo
  (`contrib/bench/post1m.lua`). `Connection: close` is `-H 'Connection: close'`.
- Threaded servers use {THREADS} threads per worker (corral and gunicorn `--threads {THREADS}`,
  granian `--blocking-threads {THREADS}`). uWSGI runs processes with one thread each and
  is compared with corral sync; bjoern is one process, so only in the 1-worker runs.
- uWSGI uses `--http-socket` plus a `Connection: close` header, so it closes after each
  response as gunicorn sync does. With `--http11-socket` (keep-alive) each process stays
  on one connection and the other connections get nothing: in a smoke run the 10 ms
  sleep app answered with a p50 of 10 ms at 2 × 100 req/s, i.e. only 2 of the 50
  connections were served, and wrk reports latency only for answered requests. Without
  the header wrk counts every close as a read error.
- Readiness: the driver polls the port with the scenario's own request (checking the
  answer: body, length, JSON, the 1 MiB echo byte for byte, or a WebSocket handshake and
  one echoed message) for at most 60 s; no fixed
  sleeps. Each server is stopped through the process group of the pid the driver started
  before the next one starts.
- The 10 ms sleep app caps a server at 100 req/s per single-threaded worker and
  {THREADS * 100} req/s per {THREADS}-thread worker, whatever the CPU does: a server below its cap
  there is leaving workers or threads idle.
- Errors = non-2xx responses + socket errors (connect, read, write, timeout) from wrk.
- WebSocket echo: `wrk` cannot speak WebSocket, so `contrib/bench/wsbench.rs` (std-only
  Rust, one thread per connection) drives it: each of 50 connections does the RFC 6455
  handshake (checks the 101 and `Sec-WebSocket-Accept`), then sends a masked 20-byte text
  frame and waits for its echo before the next (one message in flight per connection).
  Every echo is checked (one unmasked text message, the same payload); a wrong echo, a
  failed handshake, an I/O error or a 2 s timeout is an error. "req/s" is round trips
  per second, the latencies are per round trip, "wrk cores" is wsbench's CPU. Example:
  `{ws_ex}`.
- ASGI peers, all with the same worker count and on uvloop: corral `-k asgi
  --asgi-loop uvloop` (its HTTP/1.1 parser and WebSocket framing are in Rust, in the
  event loop; the app runs on an asyncio loop in each worker); uvicorn `--loop uvloop
  --http httptools --ws websockets-sansio` (httptools' C parser; the sans-I/O
  `websockets` protocol, what `--ws auto` picks, the older one being deprecated);
  granian `--interface asgi --loop uvloop` (Rust HTTP stack, default 1 runtime thread per
  worker); gunicorn `-k asgi --asgi-loop uvloop` (gunicorn's own asyncio worker, with its
  pure-Python HTTP parser: the optional `gunicorn_h1c` C parser is not installed, as in
  the WSGI rows). With 1 worker uvicorn runs as a single process; its "peak RSS per
  worker" is then that process's.
- Peak RSS per worker = the largest `VmHWM` of the server's worker processes (the
  children of the started process; the process itself for bjoern), read at the end of
  each case.
- No-Python ceiling: corral has **no built-in Rust responder**, so its own Python-free
  floor cannot be measured without changing the server. Two stand-ins are shown: the
  "pre-built response" app (`apps:const`: status, headers and body list built once, the
  least Python work a WSGI response can cost) on every server, and a ~60-line Rust
  program (`contrib/bench/ceiling.rs`, not corral: one thread per connection, constant
  response) that shows what `wrk` and this machine can do at all with no Python.

Commands used for each server (PORT, app and worker count vary per case):

""" + "\n".join("- %s: `%s`" % (SERVER_LABEL[k], v) for k, v in ix_cmds.items()) + f"""

## Ratios: corral against each peer

Each cell is corral's req/s divided by the peer's, same scenario, same worker count, same
run; in brackets corral's p99 latency / the peer's, in ms (lower is better). corral sync
is compared with the single-threaded peers (gunicorn sync, bjoern, uWSGI), corral gthread
with the threaded ones (gunicorn gthread, granian).

{ratio_table(results)}
### CPU cost per request

On a loaded machine req/s moves with whatever else is running; the server's own CPU time
per request moves much less. Each cell is the peer's CPU µs per request divided by
corral's (above 1 = corral spends less CPU per request), with both values in brackets.

{cpu_ratio_table(results)}
### ASGI: corral asgi against each ASGI peer

The same two tables for the ASGI scenarios: corral `-k asgi` against uvicorn, granian's
ASGI interface and gunicorn's `-k asgi`, same worker count. For the WebSocket echo,
req/s is echoed messages per second.

{ratio_table(results, ASGI_PEERS)}
{cpu_ratio_table(results, ASGI_PEERS)}
## Targets

{targets(results)}
## Raw numbers

"server cores" and "wrk cores" are the CPU each used during the measurement (1.00 = one
core busy all the time; the machine has {mach['nproc']}). "busiest worker" is the share of
the server's CPU time spent by its busiest worker process (50 % = evenly spread over 2
workers, 100 % = one worker did everything).

{raw_table(results)}
## Where corral's time goes (hello keep-alive, 1 sync worker)

Output of `contrib/bench/profile`, run right before the benchmark in the same session:
`strace -c -f` attached to the worker while wrk runs (system calls per request), `perf
stat` counting the worker's `malloc` and `free` calls through uprobes, then `perf record
-e cpu-clock --call-graph dwarf` on the worker (this VM exposes no hardware
counters, so no instruction counts; callgrind could not be used, see the script).
Under strace and perf the worker is slower than in the tables above; the shares matter,
not the request rates.

```
{profile_text()}
```

What the profile says (the percentages are in the output above):

- **System calls.** A keep-alive request costs about two: one `recvfrom` and one
  `writev`, plus the `futex` calls of the hand-off to the Python thread (`JobQueue`,
  a mutex and condition variable, and the completion queue's eventfd) whenever the
  thread had gone to sleep: it is woken only then, so the count per request depends
  on how often the thread catches up with the loop. The context switches show as
  `finish_task_switch` in the kernel's share. The hand-off is what corral pays that
  bjoern, which runs Python on its only thread, does not; it buys the event loop's
  independence from Python (slow clients, timeouts answered with 504, back-pressure).
- **Fixed since the first profile of this benchmark:** two `epoll_ctl` per request (each
  connection is now registered once, edge-triggered), a `memset` of the read buffer on
  every read, a `close` lookup that built and dropped an `AttributeError` for every
  list response on Python 3.11, and a `futex` wake for every request even when the
  Python thread was busy. Together they took a keep-alive request from about six
  system calls to three or four.
- **environ.** `environ::build` (the dict, its keys and values) is the largest
  user-space item left. The dict is copied from a template that already holds every
  key a request sets and room for its headers, so it is never resized; the response
  head is written into one buffer sized for it; the clocks the Python thread reads per
  request are the coarse ones (Date in seconds, heartbeat in milliseconds), and the
  others are read only when metrics, statsd, the access log or `--queue-timeout` ask.
- **malloc.** The profile's second part counts the C allocator's calls per response on
  each of the worker's threads. A request head is parsed into the strings of a finished
  one that the Python thread handed back, and `start_response` reuses the strings of
  earlier responses' headers, so what the counts show is what a small request still
  allocates (docs/architecture.md, "Inside a worker", names it). Memory made on one
  thread and freed on the other is what costs glibc most, and went first.
- **gthread.** A gthread worker wakes a second Python thread only when the running
  ones stop making progress (none took a job in the last millisecond), so on a fast
  app one thread gets through the queue and the GIL does not change hands per request;
  when requests wait on I/O the others are woken within a millisecond (the 10 ms sleep
  rows). Before that rule, 4 threads made one worker about 30 % slower than sync on
  the hello app.
- **Large bodies.** A response's head and a body written from the app's own bytes
  object go out in one `writev`. Bursts of new keep-alive connections at a busy
  worker are admitted at the pace it finishes requests, so the p99 columns no longer
  carry wrk's connection start-up (docs/architecture.md, "Fair scheduling").
- The kernel's share is mostly TCP over loopback (`writev` includes delivering the bytes
  to `wrk`'s socket), which any server pays.
- **64 KiB with one worker: where the scheduler puts `wrk`.** The event loop copies each
  response into the socket and `wrk` copies it out; when the kernel places `wrk` on the
  event loop's core, the two take turns on it. With the event-loop thread pinned to one
  core and the Python threads to the other (`contrib/bench/threads pinned sync`, and
  `... pinned gthread --threads 4`; 2026-12-07), one worker served 22-24k req/s with
  `wrk` on the event loop's core and 28-34k with `wrk` on the other, gthread and sync
  alike. Left unpinned, as here, a run lands either near the first figure
  or above the second (the scheduler then spreads the Python threads too), which is why
  this row moves more than the others between runs. Nothing is pinned in this benchmark.
- **Two sync workers cost more CPU per request than two gthread workers** here (the CPU
  table's hello and Flask rows; with one worker they cost about the same). Five busy threads
  (two event loops, two Python threads, `wrk`) share two cores, and the sync worker's one
  Python thread is the one that gets preempted, mostly by its own worker's event loop:
  with Flask and 2 workers (`contrib/bench/threads switches 2 sync flaskapp:app`, and the
  same with `gthread flaskapp:app --threads 4`; 2026-12-07) it was switched out
  involuntarily 1.5-1.9 times per request it served, against 0.6-0.9 for a gthread
  worker's four Python threads together. Leaving and rejoining the accept queue less often
  (fewer `epoll_ctl` calls) was tried and did not change it.

Not visible in a 1-worker profile: how connections spread over two workers. A worker is
in the kernel's queue for new connections only while it has a free Python thread, and it
rejoins at the back (docs/architecture.md, "Fair scheduling"); "busiest worker" in the
raw table shows how evenly the CPU time was shared.

## Reproducing

```
contrib/bench/run            # full run (about 25 minutes), rewrites this page and the chart
contrib/bench/run --quick    # 1 s per case smoke run; writes to contrib/bench/results/ only
contrib/bench/profile        # where corral's time goes in the hello keep-alive case
contrib/bench/threads        # per-thread context switches and CPU; the pinned 64 KiB case
```

Raw wrk output and each server's log for the last round of each case are in `contrib/bench/results/`
(not committed).
"""
    return doc


# --------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3,
                    help="measurements per case, servers alternating; the median is kept")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--workers", default="2,1")
    ap.add_argument("--scenarios", default=",".join(s["key"] for s in SCENARIOS))
    ap.add_argument("--servers", default=",".join(s["key"] for s in SERVERS))
    ap.add_argument("--doc", action="store_true", help="write docs/performance.{md,png}")
    ap.add_argument("--cmdline", default="contrib/bench/run")
    ap.add_argument("--chart-only", metavar="JSON", help="redraw the chart from results")
    args = ap.parse_args()
    os.makedirs(RESULTS, exist_ok=True)
    if args.chart_only:
        chart(json.load(open(args.chart_only)), os.path.join(RESULTS, "performance.png"))
        return
    mach0 = open("/proc/loadavg").read().split()[:3]
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    workers = [int(x) for x in args.workers.split(",")]
    want_sc = args.scenarios.split(",")
    want_sv = args.servers.split(",")
    results = []
    port = 18100 + (os.getpid() % 50) * 100
    t_start = time.monotonic()
    for w in workers:
        for sc in SCENARIOS:
            if sc["key"] not in want_sc:
                continue
            servers = [CEILING] if sc["key"] == "ceiling" else [
                s for s in SERVERS if s["key"] in want_sv and not (s.get("single") and w > 1)
                and s["key"] in sc.get("only", (s["key"],)) and kind(s) == kind(sc)]
            # Rounds alternate the servers, so that a change in the
            # machine's load lands on all of them rather than on one.
            runs = {s["key"]: [] for s in servers}
            for _ in range(args.rounds):
                for s in servers:
                    port += 1
                    runs[s["key"]].append(one_case(s, sc, w, port, args))
            for s in servers:
                r = median_run(runs[s["key"]])
                results.append(r)
                print("%-8s w%d %-26s %9.0f req/s  p50 %7s  p99 %7s ms  err %-5s rss/w %6s "
                      "MiB  cpu %5s µs/req  wrk %.2f  [%4.0fs]%s" % (
                          sc["key"], w, SERVER_LABEL[s["key"]], r.get("rps", 0),
                          fmt_ms(r.get("p50")), fmt_ms(r.get("p99")),
                          r.get("non2xx", 0) + r.get("sock_err", 0),
                          "%.1f" % r["rss_worker_mib"] if r.get("rss_worker_mib") else "-",
                          "%.0f" % r["cpu_us_per_req"] if r.get("cpu_us_per_req") else "-",
                          r.get("wrk_cpu", 0), time.monotonic() - t_start,
                          ("  ERROR " + r["error"]) if r.get("error") else "")
                      + ("  rounds " + rounds_text(r) if len(r.get("rounds_rps", [])) > 1
                         else ""), flush=True)
    finished = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    with open(os.path.join(RESULTS, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    print()
    if any(kind(s) == "wsgi" for s in SCENARIOS if s["key"] in want_sc):
        print("Ratios (corral req/s ÷ peer req/s; p99 corral/peer ms):")
        print(ratio_table(results))
        print("CPU per request (peer ÷ corral):")
        print(cpu_ratio_table(results))
    if any(kind(s) == "asgi" for s in SCENARIOS if s["key"] in want_sc):
        print("ASGI ratios (corral asgi req/s ÷ peer req/s; p99 corral/peer ms):")
        print(ratio_table(results, ASGI_PEERS))
        print("ASGI CPU per request (peer ÷ corral asgi):")
        print(cpu_ratio_table(results, ASGI_PEERS))
    print("Targets:")
    print(targets(results))
    if args.doc:
        mach = machine()
        mach["loadavg_start"] = mach0
        doc = write_doc(results, mach, args, started, finished, args.cmdline)
        with open(os.path.join(ROOT, "docs", "performance.md"), "w") as f:
            f.write(doc)
        chart(results, os.path.join(ROOT, "docs", "performance.png"))
        print("wrote docs/performance.md and docs/performance.png")
    else:
        chart(results, os.path.join(RESULTS, "performance.png"))


if __name__ == "__main__":
    main()
