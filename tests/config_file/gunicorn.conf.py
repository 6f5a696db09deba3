# A gunicorn configuration written for gunicorn, as deployments have them:
# the tests run it under corral unchanged.
import os
import multiprocessing

bind = [os.environ.get("TEST_BIND", "127.0.0.1:8000")]
backlog = 512
workers = 2
worker_class = "gthread"
threads = 2
worker_connections = 1000
timeout = 30
graceful_timeout = 10
keepalive = 5
max_requests = 0
preload_app = False
daemon = False
raw_env = ["GREETING=from-raw-env"]
forwarded_allow_ips = "127.0.0.1"
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}
proc_name = "conftest-app"
accesslog = "-"
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(D)s'
errorlog = "-"
loglevel = "info"
wsgi_app = "app:application"

_cpu_count = multiprocessing.cpu_count()


def _record(*parts):
    with open(os.environ["HOOK_LOG"], "a") as f:
        f.write(" ".join(str(p) for p in parts) + "\n")


def on_starting(server):
    _record("on_starting", server.num_workers, server.cfg.workers, server.cfg.bind == bind)


def on_reload(server):
    _record("on_reload", server.cfg.workers)


def when_ready(server):
    server.log.info("Server is ready. Spawning %s workers", server.num_workers)
    _record("when_ready", server.cfg.threads, server.cfg.worker_class)


def pre_fork(server, worker):
    _record("pre_fork", worker.age, worker.pid)


def post_fork(server, worker):
    server.log.info("Worker spawned (pid: %s)", worker.pid)
    _record("post_fork", worker.age, worker.pid == os.getpid(), worker.ppid == server.pid)


def post_worker_init(worker):
    _record("post_worker_init", worker.pid == os.getpid(), os.environ.get("GREETING"))


def worker_int(worker):
    _record("worker_int", worker.pid)


def worker_abort(worker):
    _record("worker_abort", worker.pid)


def pre_exec(server):
    _record("pre_exec")


def pre_request(worker, req):
    worker.log.debug("%s %s", req.method, req.path)
    _record("pre_request", req.method, req.path, req.query, req.version, dict(req.headers).get("X-TEST"))


def post_request(worker, req, environ, resp):
    _record("post_request", req.path, environ["PATH_INFO"], environ["wsgi.url_scheme"],
            resp.status_code, repr(resp.status), resp.sent)


def child_exit(server, worker):
    _record("child_exit", worker.pid is not None)


def worker_exit(server, worker):
    _record("worker_exit", worker.pid == os.getpid())


def nworkers_changed(server, new_value, old_value):
    _record("nworkers_changed", new_value, old_value)


def on_exit(server):
    _record("on_exit")
