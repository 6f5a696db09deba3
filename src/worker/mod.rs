//! A worker process: one Rust event loop (epoll) that owns every socket —
//! accept, read, parse, receive bodies, write — and a pool of Python threads
//! (1 for `-k sync`, `--threads` for `-k gthread`) that only ever see complete
//! requests. A slow or idle client costs a few bytes of state in the loop,
//! never a Python thread.
//!
//! Lifecycle: boot (Python, app import) → serve → drain on SIGTERM → exit.
//! A worker that reaches `--max-requests` asks the master to replace it and
//! keeps serving until the master retires it with SIGTERM. Exit codes
//! follow gunicorn: 0 normal, 1 aborted, 3 failed before boot, 4 app import
//! error.

mod asgi;
mod body;
mod conn;
mod event_loop;
mod pool;
mod reload;
mod slab;

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;

use crate::config::Settings;
use crate::exit;
use crate::heartbeat::Heartbeat;
use crate::metrics::{Counter, Method, Tally};
use crate::sys::net::Addr;
use crate::sys::Listener;
use crate::wsgi::{self, App, ServeContext, SockAddr};

use conn::Conn;
use pool::{Completions, Job, JobQueue, Sink};

/// How long to drain a closing client's leftovers before giving up.
const LINGER: Duration = Duration::from_secs(2);

/// When a worker stops, how long a connection it already holds with no
/// request on it is kept open: a client that just connected, or one reusing
/// a kept-alive connection, may have its request on the wire. Closing at
/// once would drop it (the client sees the connection closed with no
/// response); a request arriving within the grace is answered, with
/// `Connection: close`. See docs/lifecycle.md.
pub const DRAIN_GRACE: Duration = Duration::from_secs(2);

const TOKEN_SIGNAL: u64 = u64::MAX;
const TOKEN_WAKE: u64 = u64::MAX - 1;
const TOKEN_LISTENER_BASE: u64 = u64::MAX - 1024;
/// `--reload`'s inotify descriptor: below the listeners' range (and far
/// above any connection's slot index).
const TOKEN_RELOAD: u64 = TOKEN_LISTENER_BASE - 1;

/// Everything a worker needs from the master.
pub struct WorkerSpec<'a> {
    pub settings: &'a Settings,
    pub listeners: &'a [Listener],
    pub heartbeat: &'a Arc<Heartbeat>,
    /// Where this worker counts its Prometheus metrics (`--metrics-bind`).
    pub tally: Option<&'a Arc<Tally>>,
    /// The app, when imported by the master (`--preload`).
    pub app: Option<&'a App>,
    /// Written once when the worker has booted, to wake the master.
    pub boot_pipe: &'a OwnedFd,
    /// Requests to serve before recycling (0 = unlimited), jitter applied.
    pub max_requests: u64,
    pub master: Pid,
    pub title: &'a dyn Fn(&str),
}

/// A worker class as the master drives it: its name, how many Python
/// threads its heartbeat page tracks, and what the forked process runs.
/// The master knows no more of a class than this. `sync` and `gthread` are
/// one engine (this module's event loop) with one or `--threads` Python
/// threads; a class with another engine brings its own `run`.
pub trait Class: Sync {
    /// As gunicorn logs it: `Using worker: NAME`.
    fn name(&self) -> &'static str;
    fn python_threads(&self, s: &Settings) -> usize;
    /// The worker process's whole life, after fork.
    fn run(&self, spec: WorkerSpec<'_>) -> !;
}

struct Threaded(&'static str);

impl Class for Threaded {
    fn name(&self) -> &'static str {
        self.0
    }

    fn python_threads(&self, s: &Settings) -> usize {
        crate::config::python_threads(s)
    }

    fn run(&self, spec: WorkerSpec<'_>) -> ! {
        run(spec)
    }
}

/// The implementation of a `-k` class.
pub fn class(c: crate::config::WorkerClass) -> &'static dyn Class {
    use crate::config::WorkerClass;
    match c {
        WorkerClass::Sync => &Threaded("sync"),
        WorkerClass::Gthread => &Threaded("gthread"),
        WorkerClass::Asgi => &asgi::Asgi,
    }
}

/// Run a worker in a freshly forked child. Never returns.
///
/// Python thread 0 is the process's main thread, as in gunicorn's sync
/// worker: an app may call `signal.signal()`, use `signal.alarm()` timeouts
/// or the main thread's asyncio loop. The event loop and, for gthread, the
/// other Python threads run on threads that block every asynchronous
/// signal, so the kernel delivers those to the main thread, where Python
/// runs its handlers (and where a blocking call is interrupted for them).
fn run(spec: WorkerSpec<'_>) -> ! {
    let code = match boot(&spec) {
        Ok((mut worker, app, ctx, threads)) => {
            crate::hooks::post_worker_init();
            let jobs_q = Arc::clone(&worker.jobs);
            let books = Books {
                heartbeat: spec.heartbeat,
                tally: spec.tally.map(|t| &**t),
                queue_timeout: worker.plan.queue_timeout,
            };
            let done = Arc::clone(&worker.completions);
            let (jobs, completions) = (&*jobs_q, &done);
            let (ctx, app) = (&ctx, &app);
            std::thread::scope(|scope| {
                for t in 1..threads {
                    start(scope, format!("python-{t}"), move || {
                        crash_on_panic("a Python thread", || {
                            python_thread(t, jobs, completions, ctx, app, books)
                        });
                        exit::OK
                    });
                }
                let server = start(scope, "event-loop".to_owned(), || {
                    spec.heartbeat.set_booted();
                    let _ = nix::unistd::write(spec.boot_pipe, &[1]);
                    let code = crash_on_panic("the event loop", || worker.serve());
                    // Idle Python threads return once the queue closes.
                    jobs.close();
                    code
                });
                crash_on_panic("a Python thread", || {
                    python_thread(0, jobs, completions, ctx, app, books)
                });
                server.join().unwrap_or(1)
            })
        }
        Err(code) => code,
    };
    leave(&spec, code)
}

/// The end of every worker class's process: `worker_exit`, what statsd
/// gathered, the app's `atexit` handlers on a clean exit, then `_exit`.
fn leave(spec: &WorkerSpec<'_>, code: i32) -> ! {
    crate::hooks::worker_exit(spec.settings);
    crate::statsd::flush();
    if code == exit::OK {
        wsgi::finish_python();
    }
    crate::sys::process::exit_now(code)
}

/// Run `f`; if it panics, end the worker at once with exit 1 (gunicorn's
/// "aborted"): the other threads would otherwise wait for it forever (a
/// Python thread for jobs from a dead event loop, or the event loop for
/// answers from a dead Python thread). The master respawns the worker.
fn crash_on_panic<T>(what: &str, f: impl FnOnce() -> T) -> T {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => {
            tracing::error!("Worker crashed: {what} panicked");
            crate::sys::process::exit_now(1)
        }
    }
}

/// Start one of the worker's helper threads (see `run`), with the
/// asynchronous signals blocked in it.
fn start<'scope, F>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    name: String,
    f: F,
) -> std::thread::ScopedJoinHandle<'scope, i32>
where
    F: FnOnce() -> i32 + Send + 'scope,
{
    let spawned = std::thread::Builder::new()
        .name(name)
        .spawn_scoped(scope, move || {
            if let Err(e) = crate::sys::process::block_async_signals() {
                tracing::warn!("Cannot block signals in a worker thread: {e}");
            }
            f()
        });
    spawned.unwrap_or_else(|e| {
        tracing::error!("Exception in worker process: starting threads: {e}");
        crate::sys::process::exit_now(exit::WORKER_BOOT_ERROR)
    })
}

type Booted<'a> = (Worker<'a>, AppRef<'a>, ServeContext, usize);

/// The app: the master's (imported before fork with `--preload`) or the
/// worker's own.
enum AppRef<'a> {
    Preloaded(&'a App),
    Own(App),
}

impl std::ops::Deref for AppRef<'_> {
    type Target = App;
    fn deref(&self) -> &App {
        match self {
            AppRef::Preloaded(a) => a,
            AppRef::Own(a) => a,
        }
    }
}

fn boot<'a>(spec: &WorkerSpec<'a>) -> Result<Booted<'a>, i32> {
    let s = spec.settings;
    // What the master had gathered for statsd is the master's to send.
    crate::statsd::after_fork();
    // A gthread worker's Python threads take turns under the GIL, so an
    // arena each buys them no parallelism, only memory: each arena keeps
    // its own freed blocks. With four threads echoing 1 MiB bodies, peak
    // RSS per worker fell from 37-42 MiB to 29-30 MiB (gunicorn's gthread
    // worker: 34 MiB) at the same req/s. A sync worker is left alone: its
    // two threads (event loop, Python) allocate at the same time, and
    // sharing one arena cost it 25-30 % of its req/s on that load for no
    // memory gained.
    if crate::config::python_threads(s) > 1 {
        crate::sys::process::one_malloc_arena();
    }
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        let msg = format!("{what}: {e}");
        tracing::error!("Exception in worker process: {msg}");
        spec.heartbeat.set_error(&msg);
        exit::WORKER_BOOT_ERROR
    };
    // The master reads signals from a signalfd with them blocked; the
    // worker replaces that mask with its own set at once, before the app is
    // imported: a SIGINT then (Ctrl-C, or systemd signalling the group)
    // waits for the worker's loop, which exits quickly, instead of reaching
    // Python's KeyboardInterrupt handler mid-import and passing for an app
    // that fails to load (exit 4, which stops the master for good).
    worker_signal_set()
        .thread_set_mask()
        .map_err(|e| fail("signal mask", &e))?;
    let _ = crate::sys::process::set_parent_death_signal(Signal::SIGTERM);
    (spec.title)(&format!(
        "corral: worker [{}]",
        s.proc_name
            .as_deref()
            .or(s.app.as_deref())
            .unwrap_or("corral")
    ));
    wsgi::after_fork_child();
    crate::hooks::post_fork(s);
    if crate::logging::journald_active() {
        // What the app prints must be attributed to this worker, not to
        // the stream the master inherited from systemd.
        if let Err(e) = crate::systemd::attach_std_streams_to_journal("corral") {
            tracing::warn!("Cannot open a journal stream for the worker's output: {e}");
        }
    }
    let pid = std::process::id();
    tracing::info!(WORKER_PID = pid, "Booting worker with pid: {pid}");
    crate::sys::process::drop_privileges(s.user, s.group, s.umask)
        .map_err(|e| fail("dropping privileges", &e))?;

    let app = match spec.app {
        Some(app) => AppRef::Preloaded(app),
        None => {
            let spec_str = s.app.as_deref().unwrap_or_default();
            wsgi::init_interpreter(&crate::config::interpreter_options(s))
                .map_err(|e| fail("Python", &e))?;
            match wsgi::load_app(spec_str) {
                Ok(app) => AppRef::Own(app),
                Err(e) => {
                    if let Some(tb) = &e.traceback {
                        tracing::error!("Exception in worker process:\n{}", tb.trim_end());
                    }
                    spec.heartbeat.set_error(&e.summary);
                    return Err(exit::APP_LOAD_ERROR);
                }
            }
        }
    };

    let mask = worker_signal_set();
    // Blocked before any thread starts, so every Python thread inherits the
    // mask and signals reach only the signalfd.
    mask.thread_block()
        .map_err(|e| fail("blocking signals", &e))?;
    let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| fail("signalfd", &e))?;
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(|e| fail("epoll", &e))?;
    let completions = Arc::new(Completions::new().map_err(|e| fail("eventfd", &e))?);
    epoll
        .add(
            signals.as_fd(),
            EpollEvent::new(EpollFlags::EPOLLIN, TOKEN_SIGNAL),
        )
        .map_err(|e| fail("epoll", &e))?;
    epoll
        .add(
            completions.fd(),
            EpollEvent::new(EpollFlags::EPOLLIN, TOKEN_WAKE),
        )
        .map_err(|e| fail("epoll", &e))?;
    let mut locals = Vec::new();
    for (i, l) in spec.listeners.iter().enumerate() {
        l.set_nonblocking().map_err(|e| fail("listener", &e))?;
        locals.push(sock_addr(l.addr()));
        // EPOLLEXCLUSIVE: one worker is woken per new connection instead of
        // all of them (no thundering herd).
        epoll
            .add(
                l.as_fd(),
                EpollEvent::new(
                    EpollFlags::EPOLLIN | EpollFlags::EPOLLEXCLUSIVE,
                    TOKEN_LISTENER_BASE + i as u64,
                ),
            )
            .map_err(|e| fail("epoll", &e))?;
    }

    let plan = crate::config::worker_plan(s);
    // `--reload`: the files the app's code came from, now that it is
    // imported.
    let reload = match &plan.reload {
        Some((engine, extra)) => {
            let mut files = wsgi::module_files();
            files.extend(extra.iter().cloned());
            let watcher = reload::Watcher::new(files, *engine).map_err(|e| fail("--reload", &e))?;
            if let Some(fd) = watcher.fd() {
                epoll
                    .add(fd, EpollEvent::new(EpollFlags::EPOLLIN, TOKEN_RELOAD))
                    .map_err(|e| fail("epoll", &e))?;
            }
            Some(watcher)
        }
        None => None,
    };
    let threads = plan.threads;
    let async_side = match s.worker_class {
        crate::config::WorkerClass::Asgi => Some(Arc::new(
            pool::AsyncSide::new().map_err(|e| fail("eventfd", &e))?,
        )),
        _ => None,
    };
    // The Python threads borrow the serve context while the event loop
    // owns the worker: each gets its own.
    let serve = plan.serve.clone();
    Ok((
        Worker {
            epoll,
            signals,
            completions,
            jobs: Arc::new(match &async_side {
                Some(side) => JobQueue::notifying(Arc::clone(side)),
                None => JobQueue::new(plan.threads),
            }),
            listeners: spec.listeners,
            locals,
            conns: slab::Slab::new(),
            revisit: Vec::new(),
            parked: std::collections::VecDeque::new(),
            reading: Vec::new(),
            body_flights: std::collections::HashSet::new(),
            accepting: true,
            in_flight: 0,
            reused_in_flight: 0,
            claims: Vec::new(),
            conn_limit: false,
            backlog_since: None,
            next_backlog_check: Instant::now(),
            stage: Stage::Serving,
            served: 0,
            max_requests: spec.max_requests,
            plan,
            heartbeat: spec.heartbeat,
            tally: spec.tally.map(|t| &**t),
            boot_pipe: spec.boot_pipe,
            master: spec.master,
            reload,
            async_side,
            spare_heads: Vec::new(),
            next_id: 0,
            next_poke: None,
        },
        app,
        serve,
        threads,
    ))
}

/// The signals a worker reads from its signalfd.
fn worker_signal_set() -> SigSet {
    let mut mask = SigSet::empty();
    for sig in [
        Signal::SIGTERM,
        Signal::SIGQUIT,
        Signal::SIGINT,
        Signal::SIGUSR1,
        Signal::SIGABRT,
        Signal::SIGWINCH,
    ] {
        mask.add(sig);
    }
    mask
}

fn sock_addr(a: Addr) -> SockAddr {
    match a {
        Addr::Tcp(s) => SockAddr::Tcp(s),
        Addr::Unix(p) => SockAddr::Unix(p),
    }
}

/// Answer a request that waited too long for a Python thread with 503
/// and `Retry-After`, without running the app: under overload, a fast
/// refusal the client (or its load balancer) can retry beats a response
/// that arrives after everyone gave up.
fn shed(
    token: pool::Token,
    info: crate::http::ResponseInfo,
    flight: Arc<pool::Flight>,
    completions: &Arc<Completions>,
    waited: Duration,
) -> bool {
    tracing::warn!(
        "Shedding load: a request waited {} ms for a Python thread; answered 503",
        waited.as_millis()
    );
    let body = b"Service Unavailable: the server is overloaded, retry shortly.\n";
    let headers = [
        ("Retry-After".to_owned(), "1".to_owned()),
        ("Connection".to_owned(), "close".to_owned()),
        ("Content-Type".to_owned(), "text/plain".to_owned()),
        ("Content-Length".to_owned(), body.len().to_string()),
    ];
    let mut sink = Sink::new(token, info, flight, Arc::clone(completions), false);
    let sent = wsgi::ResponseSink::start(&mut sink, "503 Service Unavailable", &headers)
        .and_then(|()| wsgi::ResponseSink::body(&mut sink, body, true));
    let sent = sent.is_ok();
    sink.end(if sent {
        wsgi::Outcome::Complete
    } else {
        wsgi::Outcome::Aborted
    });
    sent
}

/// What a Python thread reports to besides its answers: the heartbeat
/// page, the metrics tally, and when to shed a request instead.
#[derive(Clone, Copy)]
struct Books<'a> {
    heartbeat: &'a Heartbeat,
    tally: Option<&'a Tally>,
    queue_timeout: Duration,
}

fn python_thread(
    index: usize,
    jobs: &JobQueue,
    completions: &Arc<Completions>,
    ctx: &ServeContext,
    app: &App,
    books: Books<'_>,
) {
    let Books {
        heartbeat,
        tally,
        queue_timeout,
    } = books;
    wsgi::python_thread(|py| loop {
        let job = match py.idle(|| jobs.pop(index)) {
            pool::Next::Job(job) => job,
            // Coming back from `idle` took the GIL: pyo3 has released what
            // was waiting for it.
            pool::Next::Nudged => continue,
            pool::Next::Closed => return,
        };
        let Job {
            id: _,
            token,
            mut req,
            info,
            flight,
            started,
            queued,
            ws: _,
            upload: _,
        } = job;
        // Clock reads only for what asks for them: each is a measurable
        // share of a small request's time on the Python thread.
        let waited = (tally.is_some() || !queue_timeout.is_zero()).then(|| queued.elapsed());
        let method = tally.map(|t| {
            t.queue_wait(waited.unwrap_or_default());
            Method::of(&req.head.method)
        });
        if let Some(waited) = waited.filter(|w| !queue_timeout.is_zero() && *w > queue_timeout) {
            let sent = shed(token, info, flight, completions, waited);
            if let (Some(t), Some(m)) = (tally, method) {
                t.count(Counter::Shed);
                if sent {
                    t.answered(m, 503);
                }
            }
            continue;
        }
        let logging = crate::logging::access_enabled();
        let timed = logging || crate::statsd::enabled() || tally.is_some();
        let clock = timed.then(Instant::now);
        let peer = req.client();
        heartbeat.set_busy(index, true);
        let sink = Arc::new(Mutex::new(Sink::new(
            token,
            info,
            flight,
            Arc::clone(completions),
            logging,
        )));
        let outcome = serve_with_hooks(py, app, ctx, &mut req, sink.clone());
        heartbeat.set_busy(index, false);
        let mut sink = sink.lock().unwrap_or_else(|e| e.into_inner());
        if crate::statsd::enabled() || tally.is_some() {
            let status = sink.code();
            let took = clock.map(|c| c.elapsed()).unwrap_or_default();
            crate::statsd::request(status, took);
            if let (Some(t), Some(m)) = (tally, method) {
                t.request(m, status, took);
            }
        }
        if logging {
            crate::logging::access(&crate::logging::AccessRecord {
                peer,
                head: &req.head,
                status: &sink.status,
                response_headers: &sink.headers,
                body_bytes: sink.body_bytes,
                started,
                duration: clock.map(|c| c.elapsed()).unwrap_or_default(),
            });
        }
        sink.give_back(req.head);
        sink.end(outcome);
    })
}

/// One request through the app, with the config file's `pre_request` and
/// `post_request` around it when either is set (they see the response
/// through a recording sink).
fn serve_with_hooks(
    py: &wsgi::PyThread<'_>,
    app: &App,
    ctx: &ServeContext,
    req: &mut wsgi::Request,
    sink: wsgi::SharedSink,
) -> wsgi::Outcome {
    match crate::hooks::RequestHooks::begin(py.py(), &req.head, &sink) {
        None => py.call(app, ctx, req, sink, None),
        Some(hooks) => {
            let mut environ = None;
            let outcome = py.call(app, ctx, req, hooks.sink(), Some(&mut environ));
            hooks.finish(py.py(), environ);
            outcome
        }
    }
}

/// Where a worker is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Serving,
    /// Served `--max-requests` and told the master so; serving on until
    /// the master retires it.
    Replacing,
    /// Stopping: no new connections; requests already on the way are
    /// answered with `Connection: close`; the worker exits once every
    /// connection is gone.
    Draining,
}

impl Worker<'_> {
    fn draining(&self) -> bool {
        self.stage == Stage::Draining
    }
}

struct Worker<'a> {
    epoll: Epoll,
    signals: SignalFd,
    completions: Arc<Completions>,
    jobs: Arc<JobQueue>,
    listeners: &'a [Listener],
    locals: Vec<SockAddr>,
    /// The open connections; a slot's generation makes stale tokens
    /// harmless.
    conns: slab::Slab<Conn>,
    /// Connections whose read stopped at the fairness cap with bytes left:
    /// an edge-triggered registration will not report them again.
    revisit: Vec<pool::Token>,
    /// Connections with a request head whose body is left in the kernel
    /// until a place to read it opens (see `Worker::admit_bodies`). Oldest
    /// first.
    parked: std::collections::VecDeque<pool::Token>,
    /// Connections holding a place among the bodies being read.
    reading: Vec<pool::Token>,
    /// Requests with a body that are with Python (their End not back).
    body_flights: std::collections::HashSet<pool::Token>,
    /// The listeners are in this worker's epoll set: it is in the kernel's
    /// queue of workers to wake for a new connection.
    accepting: bool,
    /// Requests handed to the Python threads whose End has not come back
    /// (queued or running; a request whose client left still holds its
    /// thread until the app returns).
    in_flight: usize,
    /// Of those, requests that came on a kept-alive connection: they took a
    /// thread without passing through the listen backlog.
    reused_in_flight: usize,
    /// Connections accepted a moment ago whose first request is expected at
    /// once, each with the instant its claim on a thread lapses.
    claims: Vec<(pool::Token, Instant)>,
    /// At `--worker-connections` with nothing to evict.
    conn_limit: bool,
    /// Since when connections have been seen waiting in the listen backlog
    /// while this worker had no free thread.
    backlog_since: Option<Instant>,
    next_backlog_check: Instant,
    stage: Stage,
    /// Threads (the most requests this worker takes on at once), limits,
    /// timeouts: what every worker of the generation runs with.
    plan: crate::config::WorkerPlan,
    served: u64,
    max_requests: u64,
    heartbeat: &'a Heartbeat,
    tally: Option<&'a Tally>,
    /// Wakes the master (boot, and asking to be recycled).
    boot_pipe: &'a OwnedFd,
    master: Pid,
    /// `--reload`: watches the app's files.
    reload: Option<reload::Watcher>,
    /// The asgi class: how its asyncio loop is woken.
    async_side: Option<Arc<pool::AsyncSide>>,
    /// The next request's number (`Job::id`).
    next_id: u64,
    /// Heads of finished requests the Python threads gave back, to parse
    /// new ones into (see `http::parse_head_reusing`).
    spare_heads: Vec<crate::http::RequestHead>,
    /// When to ask the job queue again whether a thread should be woken
    /// for the jobs waiting on busy ones (see [`JobQueue::poke`]).
    next_poke: Option<Instant>,
}
