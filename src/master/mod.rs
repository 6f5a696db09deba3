//! The master process (gunicorn's arbiter). It never serves requests: it
//! opens the listening sockets, forks workers and keeps their number right,
//! watches their heartbeats, and turns signals into actions.
//!
//! The master is single-threaded, always: `fork` is only sound that way. Its
//! loop waits on one `poll` for a signal (signalfd) or a worker's boot byte
//! (a pipe), then reaps, murders timed-out workers, and adjusts the worker
//! count. The lifecycle is the explicit [`Phase`] enum.

mod control;
mod listeners;
mod metrics;
mod nonblock;
mod reexec;
mod spawn;

pub use reexec::Relaunch;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::config::Settings;
use crate::exit;
use crate::heartbeat::Heartbeat;
use crate::signals::{Intent, MasterSignals};
use crate::sys::process::ProcTitle;
use crate::sys::Listener;
use crate::systemd::{self, Notify};
use crate::wsgi;

/// Where the master is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Initial workers are starting; READY=1 not sent yet.
    Booting,
    /// Serving with the configured workers.
    Running,
    /// HUP: a new generation of workers is starting; the old one retires
    /// once it serves.
    Reloading,
    /// USR2: a new master is starting from this one.
    Upgrading,
    /// Workers are stopping; the master exits when they are gone.
    Draining,
}

/// Where a worker is in its life, as the master sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    /// Forked, importing the app; not serving yet.
    Booting,
    /// Serving requests.
    Serving,
    /// Sent SIGTERM to drain and exit, for this reason.
    Retiring(Retire),
}

/// Why the master retires a worker. Every reason is a clean exit: only a
/// worker that dies unasked is a crash (logged at ERROR, respawned with
/// back-off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retire {
    /// HUP: a new generation replaced it.
    Reload,
    /// TTOU, or a reload that lowered `--workers`.
    Scale,
    /// It served `--max-requests`; its replacement is serving.
    Recycle,
    /// Over `--max-worker-memory`; its replacement is serving.
    Memory,
    /// WINCH: every worker stops, the master stays.
    Stop,
    /// `worker kill PID` on the control socket; another takes its place.
    Control,
}

impl Retire {
    fn as_str(self) -> &'static str {
        match self {
            Retire::Reload => "reload",
            Retire::Scale => "scale",
            Retire::Recycle => "recycle",
            Retire::Memory => "memory",
            Retire::Stop => "stop",
            Retire::Control => "control",
        }
    }
}

/// One worker process as the master sees it.
struct WorkerProc {
    pid: Pid,
    /// Spawn order, oldest first (gunicorn's `age`).
    age: u64,
    /// Reload generation the worker belongs to.
    generation: u64,
    /// Shared (`Arc`) so a worker's threads may hold it for the process's
    /// life; the master's copy is the one that matters.
    heartbeat: std::sync::Arc<Heartbeat>,
    /// Its Prometheus counts, when `/metrics` is served.
    tally: Option<std::sync::Arc<crate::metrics::Tally>>,
    spawned: Instant,
    life: Life,
    /// It should be replaced (it served `--max-requests`, or is over the
    /// memory ceiling): it keeps serving until its replacement does.
    recycle: Option<Retire>,
    /// Started to take over from this worker, which is retired once this
    /// one serves.
    replaces: Option<i32>,
    /// When SIGABRT was sent for a timeout.
    aborted: Option<Instant>,
    /// The master itself sent SIGKILL (so the death is no mystery).
    killed: bool,
}

impl WorkerProc {
    fn serving(&self) -> bool {
        self.life == Life::Serving
    }

    fn retiring(&self) -> bool {
        matches!(self.life, Life::Retiring(_))
    }
}

pub struct Master {
    settings: Settings,
    /// The command line, `argv[0]` first; HUP re-reads `argv[1..]`.
    argv: Vec<OsString>,
    /// What a USR2 re-exec runs.
    relaunch: reexec::Relaunch,
    phase: Phase,
    listeners: Vec<Listener>,
    /// Each listener's descriptor name (see `listeners::Opened`).
    listener_names: Vec<String>,
    signals: MasterSignals,
    boot_r: OwnedFd,
    boot_w: OwnedFd,
    workers: BTreeMap<i32, WorkerProc>,
    num_workers: usize,
    generation: u64,
    next_age: u64,
    app: Option<wsgi::App>,
    title: Option<ProcTitle>,
    /// Consecutive workers that died soon after starting, for respawn
    /// back-off, and when the next spawn is allowed.
    quick_deaths: u32,
    spawn_after: Instant,
    last_status: String,
    last_status_at: Instant,
    /// Directory corral was started in (a re-exec starts there, so a
    /// relative `--chdir` means the same thing).
    start_dir: PathBuf,
    /// Re-exec markers when this master was started by USR2.
    upgrade: reexec::Upgrade,
    /// The new master started by USR2, and its readiness pipe.
    reexec_child: Option<Pid>,
    reexec_ready: Option<OwnedFd>,
    /// systemd's watchdog interval, and when it was last fed.
    watchdog: Option<Duration>,
    last_watchdog: Instant,
    /// When the start-up timeout was last extended while booting.
    last_extend: Option<Instant>,
    /// `corral reload` processes waiting to hear that the reload is done.
    reload_waiters: Vec<Pid>,
    /// No recycle starts before this: see `RECYCLE_REST`.
    recycle_rest_until: Instant,
    /// The control socket, once open.
    control: Option<control::Control>,
    /// When to (try to) open it; `None` once open or given up.
    /// `control_waiting`: "in use" was logged.
    control_next_try: Option<Instant>,
    control_waiting: bool,
    /// `/metrics`, when served, and what the master keeps for it.
    exporter: Option<metrics::Exporter>,
    books: metrics::Books,
    started: Instant,
    started_at: std::time::SystemTime,
    counts: Counts,
    /// The worker count last sent to statsd (`gunicorn.workers`).
    workers_reported: Option<usize>,
    /// The settings and worker count a reload replaced, put back if its new
    /// code does not load.
    before_reload: Option<(Box<Settings>, usize)>,
    /// A reload's new code did not load: until a reload succeeds, a worker
    /// started in the meantime (a respawn, a recycle) may load the same
    /// broken code from disk, which is then no reason to stop serving.
    code_broken: bool,
}

/// What `show stats` reports besides the current state.
#[derive(Default)]
struct Counts {
    spawned: u64,
    /// Workers told to stop (SIGTERM) or killed (SIGKILL) by the master.
    killed: u64,
    reloads: u64,
}

/// After a recycle, the master rests this many times the replacement's boot
/// time (and at least `RECYCLE_REST_MIN`) before starting the next one. A
/// worker past `--max-requests` keeps serving meanwhile, so the only effect
/// is that booting replacements take at most a fifth of one core, however
/// fast requests use up the limit (an app that imports in 250 ms, at 10,000
/// requests/s with a limit of 40, would otherwise always have one worker
/// importing). The floor covers `--preload`, where a boot is only a fork
/// but a new worker still pays for it in copy-on-write faults as it runs.
const RECYCLE_REST: u32 = 4;
const RECYCLE_REST_MIN: Duration = Duration::from_millis(100);

/// The master stops with this exit code.
struct Halt(i32);

/// A start-up failure: exit code, one-line reason, and the errno behind it
/// when there is one (for systemd's `ERRNO=`).
struct StartError {
    code: i32,
    message: String,
    errno: Option<i32>,
}

impl From<(i32, String)> for StartError {
    fn from((code, message): (i32, String)) -> Self {
        Self {
            code,
            message,
            errno: None,
        }
    }
}

/// Run the master until it stops; returns the process exit code.
pub fn run(
    settings: Settings,
    argv: Vec<OsString>,
    relaunch: reexec::Relaunch,
    start_dir: PathBuf,
    title: Option<ProcTitle>,
) -> i32 {
    let master = match Master::start(settings, argv, relaunch, start_dir, title) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!("{}", e.message);
            let mut msgs = vec![Notify::Status(&e.message)];
            msgs.extend(e.errno.map(Notify::Errno));
            systemd::notify(&msgs);
            return e.code;
        }
    };
    master.run()
}

impl Master {
    fn start(
        settings: Settings,
        argv: Vec<OsString>,
        relaunch: reexec::Relaunch,
        start_dir: PathBuf,
        title: Option<ProcTitle>,
    ) -> Result<Self, StartError> {
        let upgrade = reexec::take_upgrade_env();
        tracing::info!("Starting corral {}", env!("CARGO_PKG_VERSION"));
        let signals = MasterSignals::install().map_err(|e| StartError {
            code: exit::FAILURE,
            message: format!("cannot set up signal handling: {e}"),
            errno: Some(e as i32),
        })?;
        let listeners::Opened {
            listeners,
            names: listener_names,
            metrics,
        } = listeners::open(&settings).map_err(|e| StartError {
            code: exit::FAILURE,
            message: e.message,
            errno: e.errno,
        })?;
        let exporter = match metrics {
            Some(l) => {
                let addr = l.addr();
                let e = metrics::Exporter::new(l).map_err(|e| StartError {
                    code: exit::FAILURE,
                    message: format!("metrics socket {addr}: {e}"),
                    errno: e.raw_os_error(),
                })?;
                tracing::info!("Metrics at: {addr}/metrics");
                Some(e)
            }
            None => None,
        };
        // The app reads its environment through os.environ, a copy Python
        // made at start-up: drop the hand-over variables there too.
        wsgi::sync_environ(&[
            "LISTEN_PID",
            "LISTEN_FDS",
            "LISTEN_FDNAMES",
            reexec::ENV_PARENT,
            reexec::ENV_READY_FD,
        ]);
        init_statsd(&settings);
        let pid = std::process::id();
        for l in &listeners {
            tracing::info!("Listening at: {} ({pid})", l.addr());
        }
        let class = crate::worker::class(settings.worker_class).name();
        tracing::info!("Using worker: {class}");
        if let Some(p) = &settings.pidfile {
            // A new master started by USR2 writes PIDFILE.2 until promoted.
            let path = if upgrade.parent.is_some() {
                suffixed(p)
            } else {
                p.clone()
            };
            std::fs::write(&path, format!("{pid}\n")).map_err(|e| StartError {
                code: exit::FAILURE,
                message: format!("cannot write pidfile {}: {e}", path.display()),
                errno: e.raw_os_error(),
            })?;
        }
        let app = if settings.preload_app {
            // The import blocks this (single) thread for as long as the app
            // takes: ask systemd for time up front.
            if upgrade.parent.is_none() {
                systemd::notify(&[Notify::ExtendTimeout(boot_allowance(&settings))]);
            }
            wsgi::init_interpreter(&crate::config::interpreter_options(&settings))
                .map_err(|e| (exit::FAILURE, e))?;
            match wsgi::load_app(settings.app.as_deref().unwrap_or_default()) {
                Ok(app) => Some(app),
                Err(e) => {
                    if let Some(tb) = &e.traceback {
                        tracing::error!("{}", tb.trim_end());
                    }
                    return Err((
                        exit::APP_LOAD_ERROR,
                        format!("App failed to load: {}", e.summary),
                    )
                        .into());
                }
            }
        } else {
            None
        };
        let (boot_r, boot_w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
                .map_err(|e| StartError {
                    code: exit::FAILURE,
                    message: format!("pipe: {e}"),
                    errno: Some(e as i32),
                })?;
        let num_workers = settings.workers;
        let now = Instant::now();
        let master = Self {
            settings,
            argv,
            relaunch,
            phase: Phase::Booting,
            listeners,
            listener_names,
            signals,
            boot_r,
            boot_w,
            workers: BTreeMap::new(),
            num_workers,
            generation: 0,
            next_age: 0,
            app,
            title,
            quick_deaths: 0,
            spawn_after: now,
            last_status: String::new(),
            last_status_at: now,
            start_dir,
            upgrade,
            reexec_child: None,
            reexec_ready: None,
            watchdog: systemd::watchdog_interval(),
            last_watchdog: now,
            last_extend: None,
            reload_waiters: Vec::new(),
            recycle_rest_until: now,
            control: None,
            control_next_try: Some(now),
            control_waiting: false,
            exporter,
            books: metrics::Books::default(),
            started: now,
            started_at: std::time::SystemTime::now(),
            counts: Counts::default(),
            workers_reported: None,
            before_reload: None,
            code_broken: false,
        };
        master.set_title();
        crate::hooks::when_ready(&master.settings, num_workers).map_err(|e| (exit::FAILURE, e))?;
        Ok(master)
    }

    fn set_title(&self) {
        if let Some(t) = &self.title {
            let suffix = if self.upgrade.parent.is_some() {
                ".2"
            } else {
                ""
            };
            t.set(&format!(
                "corral: master [{}{suffix}]",
                proc_name(&self.settings)
            ));
        }
    }

    /// sd_notify, except from a new master the old one has not handed the
    /// service to yet: it is not the main process, and systemd would drop
    /// (and log) its messages.
    fn notify(&self, msgs: &[Notify<'_>]) {
        if self.upgrade.parent.is_none() || self.upgrade.handed_over {
            systemd::notify(msgs);
        }
    }

    fn run(mut self) -> i32 {
        let Halt(code) = self.main_loop();
        self.cleanup();
        crate::hooks::on_exit(&self.settings, self.num_workers);
        code
    }

    fn main_loop(&mut self) -> Halt {
        loop {
            self.check_promotion();
            if let Some(halt) = self.manage_workers() {
                return halt;
            }
            self.update_phase();
            self.keep_systemd_informed();
            self.report_metrics();
            // After the first workers are forked, as gunicorn does: they
            // never hold the socket (later forks close it, see spawn).
            self.open_control();
            let now = Instant::now();
            let mut wait = if now < self.spawn_after
                || (now < self.recycle_rest_until && self.recycle_wanted())
            {
                Duration::from_millis(100)
            } else {
                Duration::from_secs(1)
            };
            if let Some(interval) = self.watchdog {
                wait = wait.min(interval / 4);
            }
            let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::NONE);
            let new_master_ready = {
                let mut fds = vec![
                    PollFd::new(self.signals.as_fd(), PollFlags::POLLIN),
                    PollFd::new(self.boot_r.as_fd(), PollFlags::POLLIN),
                ];
                let reexec_at = fds.len();
                if let Some(r) = &self.reexec_ready {
                    fds.push(PollFd::new(r.as_fd(), PollFlags::POLLIN));
                }
                if let Some(c) = &self.control {
                    fds.extend(c.poll_fds());
                }
                fds.extend(self.metrics_poll_fds());
                let _ = poll(&mut fds, timeout);
                self.reexec_ready.is_some()
                    && fds[reexec_at]
                        .revents()
                        .is_some_and(|r| r.contains(PollFlags::POLLIN))
            };
            // The old master may have left while we slept: a signal that
            // woke us (say, systemd's HUP for a reload) must be handled as
            // the promoted master.
            self.check_promotion();
            self.drain_boot_pipe();
            if new_master_ready && self.new_master_reported() && self.on_new_master_ready() {
                return self.stop(true);
            }
            for r in self.signals.drain() {
                if r.intent != Intent::Reap {
                    let name = signal_name(r.signal);
                    tracing::info!(SIGNAL = %r.signal.as_str(), "Handling signal: {name}");
                }
                if r.intent == Intent::Reload {
                    self.reload_waiters.extend(r.reply_to);
                }
                if let Some(halt) = self.on_intent(r.intent) {
                    return halt;
                }
            }
            if let Some(graceful) = self.serve_control() {
                return self.stop(graceful);
            }
            self.serve_metrics();
            if let Some(halt) = self.reap() {
                return halt;
            }
            self.murder_timed_out();
            self.recycle_oversized();
        }
    }

    fn on_intent(&mut self, intent: Intent) -> Option<Halt> {
        match intent {
            Intent::Reap => return self.reap(),
            Intent::GracefulStop => return Some(self.stop(true)),
            Intent::QuickStop => return Some(self.stop(false)),
            Intent::Increment => self.set_worker_count(self.num_workers + 1),
            Intent::Decrement => {
                // Never below one; with none (after WINCH) TTOU does nothing.
                if self.num_workers > 1 {
                    self.set_worker_count(self.num_workers - 1);
                }
            }
            Intent::ReopenLogs => self.reopen_logs(),
            Intent::StopWorkers => {
                self.num_workers = 0;
                self.retire_where(Retire::Stop, |_| true);
            }
            Intent::Reload => self.reload(),
            Intent::Upgrade => self.reexec(),
        }
        None
    }

    /// TTIN/TTOU and `worker add|remove`: the loop starts or retires
    /// workers to match.
    fn set_worker_count(&mut self, n: usize) {
        let old = self.num_workers;
        if n != old {
            self.num_workers = n;
            tracing::info!("Workers: {old} -> {n}");
            crate::hooks::nworkers_changed(&self.settings, n, old);
        }
    }

    /// USR1 and `reopen`: the master's log files, then every worker's.
    fn reopen_logs(&mut self) {
        if let Err(e) = crate::logging::reopen() {
            tracing::error!("reopening log files: {e}");
        }
        self.signal_all(Signal::SIGUSR1);
    }

    /// HUP: re-read the settings, start a new generation of workers, retire
    /// the old one once the new one serves (no gap in service).
    fn reload(&mut self) {
        tracing::info!("Hang up: {}", self.master_name());
        self.counts.reloads += 1;
        for w in self.workers.values() {
            w.heartbeat.clear_reload();
        }
        match crate::startup::load(&self.argv[1..], &|k| std::env::var(k).ok()) {
            Ok(crate::config::Command::Run(s)) => {
                let old = std::mem::replace(&mut self.num_workers, s.workers);
                let replaced = std::mem::replace(&mut self.settings, *s);
                if replaced.metrics_bind != self.settings.metrics_bind {
                    tracing::warn!(
                        "--metrics-bind changed: the metrics socket moves at the next start or USR2"
                    );
                }
                self.before_reload = Some((Box::new(replaced), old));
                crate::statsd::flush();
                init_statsd(&self.settings);
                self.workers_reported = None;
                crate::hooks::on_reload(&self.settings, self.num_workers);
                if old != self.num_workers {
                    crate::hooks::nworkers_changed(&self.settings, self.num_workers, old);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::error!("Reload kept the old settings: {e}"),
        }
        if let Err(e) = crate::logging::reopen() {
            tracing::error!("reopening log files: {e}");
        }
        self.notify(&[Notify::Reloading]);
        if self.app.is_some() {
            // Preloaded: the new workers fork from this process, so the
            // master imports the new code itself. If it does not import,
            // the old workers keep serving the old code.
            match wsgi::reload_app(self.settings.app.as_deref().unwrap_or_default()) {
                Ok(app) => self.app = Some(app),
                Err(e) => {
                    if let Some(tb) = &e.traceback {
                        tracing::error!("{}", tb.trim_end());
                    }
                    let msg = format!("Reload failed, old workers keep serving: {}", e.summary);
                    tracing::error!("{msg}");
                    self.restore_settings();
                    self.notify(&[Notify::Ready, Notify::Status(&msg)]);
                    self.answer_reload_waiters(crate::signals::ACK_FAILED);
                    return;
                }
            }
        }
        self.generation += 1;
        self.phase = Phase::Reloading;
    }

    /// A reload whose new workers cannot load the app: they go, the old
    /// generation (still serving) is the current one again, and systemd and
    /// any `corral reload` waiting hear that the reload failed.
    fn abandon_reload(&mut self, why: &str) {
        let msg = join_reason("Reload failed, old workers keep serving:", why);
        tracing::error!("{msg}");
        let failed = self.generation;
        self.retire_where(Retire::Reload, |w| w.generation == failed);
        // The workers that serve on get a new number: numbers are never
        // reused, so a failed worker still exiting is never taken for one
        // of the next reload's.
        self.generation += 1;
        let gen = self.generation;
        for w in self.workers.values_mut() {
            if w.generation < failed && !w.retiring() {
                w.generation = gen;
            }
        }
        self.restore_settings();
        self.code_broken = true;
        self.phase = Phase::Running;
        self.notify(&[Notify::Ready, Notify::Status(&msg)]);
        self.answer_reload_waiters(crate::signals::ACK_FAILED);
    }

    /// A failed reload leaves the settings (and worker count) it replaced.
    fn restore_settings(&mut self) {
        if let Some((settings, workers)) = self.before_reload.take() {
            self.settings = *settings;
            self.num_workers = workers;
            init_statsd(&self.settings);
            self.workers_reported = None;
        }
    }

    /// Whether workers other than those of the current generation serve.
    fn older_serving(&self) -> bool {
        self.workers
            .values()
            .any(|w| w.generation < self.generation && w.serving() && !w.retiring())
    }

    /// Tell every `corral reload` waiting on this reload how it went.
    fn answer_reload_waiters(&mut self, ack: Signal) {
        for pid in self.reload_waiters.drain(..) {
            let _ = kill(pid, ack);
        }
    }

    /// The one way a worker is told to go: SIGTERM, after which it stops
    /// accepting, finishes what it holds, and exits.
    fn retire(&mut self, pid: i32, why: Retire) {
        if let Some(w) = self.workers.get_mut(&pid) {
            if !w.retiring() {
                w.life = Life::Retiring(why);
                let _ = kill(w.pid, Signal::SIGTERM);
                self.counts.killed += 1;
                tracing::debug!(
                    WORKER_PID = pid,
                    "Retiring worker (pid: {pid}): {}",
                    why.as_str()
                );
            }
        }
    }

    fn retire_where(&mut self, why: Retire, which: impl Fn(&WorkerProc) -> bool) {
        let pids: Vec<i32> = self
            .workers
            .iter()
            .filter(|(_, w)| !w.retiring() && which(w))
            .map(|(p, _)| *p)
            .collect();
        for pid in pids {
            self.retire(pid, why);
        }
    }

    fn signal_all(&self, sig: Signal) {
        for w in self.workers.values() {
            let _ = kill(w.pid, sig);
        }
    }

    fn master_name(&self) -> &'static str {
        if self.upgrade.parent.is_some() {
            "Master.2"
        } else {
            "Master"
        }
    }

    /// Whether the readiness pipe holds the new master's byte (as opposed
    /// to EOF from a new master that died).
    fn new_master_reported(&mut self) -> bool {
        let Some(r) = &self.reexec_ready else {
            return false;
        };
        let mut b = [0u8; 1];
        match nix::unistd::read(r, &mut b) {
            Ok(1) => true,
            Ok(_) => {
                self.reexec_ready = None;
                false
            }
            Err(_) => false,
        }
    }

    /// Keep the current generation at `num_workers`; retire surplus and the
    /// old generation once the new one has booted; replace, one at a time,
    /// workers that asked to be recycled.
    fn manage_workers(&mut self) -> Option<Halt> {
        if self.phase == Phase::Draining {
            return None;
        }
        self.finish_replacements();
        let gen = self.generation;
        let mut current: Vec<(u64, i32)> = self
            .workers
            .iter()
            .filter(|(_, w)| w.generation == gen && !w.retiring())
            .map(|(p, w)| (w.age, *p))
            .collect();
        // A worker whose replacement is starting holds no place of its own.
        let replaced = self
            .workers
            .values()
            .filter_map(|w| w.replaces)
            .filter(|p| current.iter().any(|(_, c)| c == p))
            .count();
        let places = current.len() - replaced;
        if places > self.num_workers {
            // Oldest first, as gunicorn does.
            current.sort();
            for (_, pid) in current.into_iter().take(places - self.num_workers) {
                self.retire(pid, Retire::Scale);
            }
        }
        let mut missing = self.num_workers.saturating_sub(places);
        while missing > 0 && Instant::now() >= self.spawn_after {
            if let Err(halt) = self.spawn_worker() {
                return Some(halt);
            }
            missing -= 1;
        }
        // Retire the old generation once the new one is fully up.
        let new_serving = self
            .workers
            .values()
            .filter(|w| w.generation == gen && w.serving())
            .count();
        if new_serving >= self.num_workers {
            self.retire_where(Retire::Reload, |w| w.generation < gen);
        }
        self.start_replacement()
    }

    /// Start the replacement of the oldest worker that asked to be
    /// recycled, unless a recycle is already under way: one worker at a
    /// time, so capacity never drops by more than the one being replaced,
    /// and never to zero (it serves until its replacement does).
    fn start_replacement(&mut self) -> Option<Halt> {
        let now = Instant::now();
        if self.phase != Phase::Running || now < self.spawn_after || now < self.recycle_rest_until {
            return None;
        }
        let under_way = self.workers.values().any(|w| {
            w.replaces.is_some()
                || matches!(w.life, Life::Retiring(Retire::Recycle | Retire::Memory))
        });
        if under_way {
            return None;
        }
        let gen = self.generation;
        let oldest = self
            .workers
            .values()
            .filter(|w| w.generation == gen && w.serving() && w.recycle.is_some())
            .min_by_key(|w| w.age)
            .map(|w| w.pid.as_raw())?;
        match self.spawn_worker() {
            Ok(Some(new)) => {
                if let Some(w) = self.workers.get_mut(&new) {
                    w.replaces = Some(oldest);
                }
                None
            }
            Ok(None) => None,
            Err(halt) => Some(halt),
        }
    }

    /// Whether a serving worker has asked to be recycled.
    fn recycle_wanted(&self) -> bool {
        self.workers
            .values()
            .any(|w| w.serving() && w.recycle.is_some())
    }

    /// Retire the workers whose replacements now serve.
    fn finish_replacements(&mut self) {
        let mut done = Vec::new();
        for w in self.workers.values_mut() {
            if let (Some(old), true) = (w.replaces, w.serving()) {
                w.replaces = None;
                done.push(old);
                let rest = (w.spawned.elapsed() * RECYCLE_REST).max(RECYCLE_REST_MIN);
                self.recycle_rest_until = Instant::now() + rest;
            }
        }
        for old in done {
            let why = self
                .workers
                .get(&old)
                .and_then(|w| w.recycle)
                .unwrap_or(Retire::Recycle);
            self.retire(old, why);
        }
        // A replacement whose predecessor died (or was retired for another
        // reason) simply fills a place.
        let gone: Vec<i32> = self
            .workers
            .iter()
            .filter_map(|(p, w)| w.replaces.map(|old| (*p, old)))
            .filter(|(_, old)| self.workers.get(old).is_none_or(|o| o.retiring()))
            .map(|(p, _)| p)
            .collect();
        for p in gone {
            if let Some(w) = self.workers.get_mut(&p) {
                w.replaces = None;
            }
        }
    }

    fn update_phase(&mut self) {
        let booted = self.workers.values().filter(|w| w.serving()).count();
        let old = self
            .workers
            .values()
            .filter(|w| w.generation < self.generation)
            .count();
        match self.phase {
            Phase::Booting if booted >= self.num_workers => {
                self.phase = Phase::Running;
                tracing::info!("Ready: {booted} workers serving");
                if self.upgrade.parent.is_some() {
                    // The service is already up: the old master hands it
                    // over (MAINPID=) on this signal; a READY=1 from us could
                    // overtake that and be dropped.
                    self.report_ready_to_parent();
                } else {
                    self.notify(&[Notify::Ready, Notify::Status(&self.status_text())]);
                }
                self.last_status_at = Instant::now();
            }
            Phase::Reloading if booted >= self.num_workers && old == 0 => {
                self.phase = Phase::Running;
                self.before_reload = None;
                self.code_broken = false;
                tracing::info!("Reload complete: {booted} workers serving");
                self.notify(&[Notify::Ready, Notify::Status(&self.status_text())]);
                self.answer_reload_waiters(crate::signals::ACK_DONE);
            }
            _ => {}
        }
        if self.last_status_at.elapsed() >= Duration::from_secs(1) {
            let text = self.status_text();
            if text != self.last_status {
                self.notify(&[Notify::Status(&text)]);
                self.last_status = text;
            }
            self.last_status_at = Instant::now();
        }
    }

    /// statsd: `gunicorn.workers` when the count changed, and whatever was
    /// gathered since the last loop.
    fn report_metrics(&mut self) {
        let n = self.workers.len();
        if self.workers_reported != Some(n) {
            crate::statsd::gauge("gunicorn.workers", n as u64);
            self.workers_reported = Some(n);
        }
        crate::statsd::flush();
    }

    /// Feed systemd's watchdog while the master is healthy, and keep the
    /// start-up timeout from running out while workers are still importing
    /// the app (they are killed if they exceed `--timeout`, so this cannot
    /// extend forever).
    fn keep_systemd_informed(&mut self) {
        if let Some(interval) = self.watchdog {
            if self.last_watchdog.elapsed() >= interval / 2 && self.healthy() {
                self.notify(&[Notify::Watchdog]);
                self.last_watchdog = Instant::now();
            }
        }
        if self.phase == Phase::Booting
            && self
                .last_extend
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(5))
        {
            self.notify(&[Notify::ExtendTimeout(boot_allowance(&self.settings))]);
            self.last_extend = Some(Instant::now());
        }
    }

    /// Healthy means the loop runs and, once serving, workers are not all
    /// gone while respawns keep failing: a master stuck in a crash loop
    /// stops feeding the watchdog, and systemd restarts the service.
    fn healthy(&self) -> bool {
        let serving = self.workers.values().any(|w| w.heartbeat.booted());
        match self.phase {
            Phase::Running | Phase::Reloading | Phase::Upgrading => {
                serving || self.num_workers == 0 || self.quick_deaths < 5
            }
            Phase::Booting | Phase::Draining => true,
        }
    }

    fn status_text(&self) -> String {
        let serving = self.workers.values().filter(|w| w.serving()).count();
        let booting = self
            .workers
            .values()
            .filter(|w| w.life == Life::Booting)
            .count();
        let served: u64 = self.workers.values().map(|w| w.heartbeat.requests()).sum();
        format!("{serving} workers serving, {booting} booting; {served} requests served by current workers")
    }

    fn drain_boot_pipe(&mut self) {
        let mut buf = [0u8; 64];
        while let Ok(n) = nix::unistd::read(&self.boot_r, &mut buf) {
            if n == 0 {
                break;
            }
        }
        // The pipe's bytes only wake us; the heartbeat pages say what
        // happened (a worker booted, or served its --max-requests).
        for w in self.workers.values_mut() {
            if w.life == Life::Booting && w.heartbeat.booted() {
                w.life = Life::Serving;
            }
            if w.serving() && w.recycle.is_none() && w.heartbeat.wants_recycle() {
                w.recycle = Some(Retire::Recycle);
            }
        }
        // `--reload`: a worker of the current generation saw its code
        // change (the old generation's flags are moot once a reload runs).
        let gen = self.generation;
        let changed = self
            .workers
            .values()
            .any(|w| w.generation == gen && w.serving() && w.heartbeat.wants_reload());
        if changed && self.phase == Phase::Running {
            tracing::info!("Code changed: reloading the workers");
            self.reload();
        }
    }

    /// Collect exited children. Exit 3/4 from a worker halts the master
    /// with the same code, as gunicorn does; anything else is respawned.
    fn reap(&mut self) -> Option<Halt> {
        loop {
            let status = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return None,
                Ok(s) => s,
            };
            let Some(pid) = status.pid() else { continue };
            let Some(w) = self.workers.remove(&pid.as_raw()) else {
                // A new master from USR2, or a child the app started before
                // fork (not ours to manage).
                self.on_reexec_child_exit(pid);
                continue;
            };
            self.book_exit(&w);
            crate::hooks::child_exit(&self.settings, self.num_workers, pid.as_raw(), w.age);
            let lived = w.spawned.elapsed();
            // Asked to go, or went after its --max-requests: not a crash.
            let reason = match w.life {
                Life::Retiring(why) => Some(why),
                _ => w.recycle,
            };
            let mut crashed = true;
            match status {
                WaitStatus::Exited(_, code) => {
                    match reason {
                        Some(why) if code == 0 => {
                            crashed = false;
                            tracing::info!(
                                WORKER_PID = pid.as_raw(),
                                EXIT_STATUS = code,
                                EXIT_REASON = why.as_str(),
                                "Worker exiting (pid: {pid}): {}",
                                why.as_str()
                            );
                        }
                        _ => tracing::error!(
                            WORKER_PID = pid.as_raw(),
                            EXIT_STATUS = code,
                            EXIT_REASON = "crash",
                            "Worker (pid:{pid}) exited with code {code}"
                        ),
                    }
                    let unloadable =
                        code == exit::WORKER_BOOT_ERROR || code == exit::APP_LOAD_ERROR;
                    if unloadable {
                        let why = w.heartbeat.error().unwrap_or_default();
                        // A worker of a failed reload, already told to go.
                        if matches!(w.life, Life::Retiring(_)) {
                            continue;
                        }
                        // New code that does not load while the old
                        // generation still serves: it stays, as with
                        // --preload.
                        let new = w.generation == self.generation;
                        if self.phase == Phase::Reloading && new && self.older_serving() {
                            self.abandon_reload(&why);
                            continue;
                        }
                        // Broken code on disk since a failed reload, met
                        // by a respawn or a recycle: the workers that have
                        // the good code loaded serve on.
                        let serving = self.workers.values().any(|o| o.serving() && !o.retiring());
                        if self.code_broken && serving {
                            tracing::error!(
                                "A new worker could not load the app (the code on disk \
                                 does not import); the running workers serve on: {why}"
                            );
                            self.note_death(lived);
                            continue;
                        }
                    }
                    if code == exit::WORKER_BOOT_ERROR {
                        let why = w.heartbeat.error().unwrap_or_default();
                        return Some(self.halt(
                            exit::WORKER_BOOT_ERROR,
                            &join_reason("Worker failed to boot.", &why),
                        ));
                    }
                    if code == exit::APP_LOAD_ERROR {
                        let why = w.heartbeat.error().unwrap_or_default();
                        return Some(self.halt(
                            exit::APP_LOAD_ERROR,
                            &join_reason("App failed to load.", &why),
                        ));
                    }
                }
                WaitStatus::Signaled(_, sig, _) => {
                    let (wp, sn) = (pid.as_raw(), sig.as_str());
                    if sig == Signal::SIGKILL && w.killed {
                        tracing::error!(
                            WORKER_PID = wp,
                            SIGNAL = sn,
                            "Worker (pid:{pid}) was killed after the timeout"
                        );
                    } else if sig == Signal::SIGKILL {
                        tracing::error!(
                            WORKER_PID = wp,
                            SIGNAL = sn,
                            "Worker (pid:{pid}) was sent SIGKILL! Perhaps out of memory?"
                        );
                    } else if w.retiring() && sig == Signal::SIGTERM {
                        crashed = false;
                    } else {
                        tracing::error!(
                            WORKER_PID = wp,
                            SIGNAL = sn,
                            "Worker (pid:{pid}) was sent {}!",
                            signal_name(sig)
                        );
                    }
                }
                _ => {}
            }
            if crashed {
                self.note_death(lived);
            }
        }
    }

    /// Space out respawns when workers keep dying young, so a crash loop
    /// cannot spin the CPU: 0.1 s doubling up to 10 s.
    fn note_death(&mut self, lived: Duration) {
        if lived < Duration::from_secs(5) {
            self.quick_deaths = (self.quick_deaths + 1).min(7);
            let delay =
                Duration::from_millis(100 << (self.quick_deaths - 1)).min(Duration::from_secs(10));
            self.spawn_after = Instant::now() + delay;
        } else {
            self.quick_deaths = 0;
        }
    }

    /// Abort workers whose event loop stalled or whose request ran past
    /// `--timeout`; SIGKILL those that do not go.
    fn murder_timed_out(&mut self) {
        let timeout = self.settings.timeout;
        if timeout.is_zero() {
            return;
        }
        let limit_ms = timeout.as_millis() as u64;
        for w in self.workers.values_mut() {
            if let Some(at) = w.aborted {
                if at.elapsed() > Duration::from_secs(10) {
                    tracing::error!(
                        critical = true,
                        "WORKER TIMEOUT (pid:{}) did not exit; killing",
                        w.pid
                    );
                    let _ = kill(w.pid, Signal::SIGKILL);
                    w.killed = true;
                    w.aborted = Some(Instant::now());
                    self.counts.killed += 1;
                }
                continue;
            }
            let booted = w.heartbeat.booted();
            let stuck = if booted {
                w.heartbeat.silent_for_ms() > limit_ms
                    || w.heartbeat
                        .longest_request_ms()
                        .is_some_and(|(_, ms)| ms > limit_ms)
            } else {
                w.spawned.elapsed() > timeout
            };
            if stuck {
                tracing::error!(
                    critical = true,
                    WORKER_PID = w.pid.as_raw(),
                    "WORKER TIMEOUT (pid:{})",
                    w.pid
                );
                let sig = if booted {
                    Signal::SIGABRT
                } else {
                    Signal::SIGKILL
                };
                let _ = kill(w.pid, sig);
                w.killed = sig == Signal::SIGKILL;
                w.aborted = Some(Instant::now());
                self.counts.killed += u64::from(w.killed);
            }
        }
    }

    /// Mark workers whose resident memory passed `--max-worker-memory` for
    /// replacement: each keeps serving until its replacement does.
    fn recycle_oversized(&mut self) {
        let limit = self.settings.max_worker_memory;
        if limit == 0 {
            return;
        }
        let limit_bytes = limit.saturating_mul(1 << 20);
        for w in self.workers.values_mut() {
            if !w.serving() || w.recycle == Some(Retire::Memory) {
                continue;
            }
            let Some(rss) = crate::sys::process::rss_bytes(w.pid) else {
                continue;
            };
            if rss > limit_bytes {
                tracing::warn!(
                    WORKER_PID = w.pid.as_raw(),
                    "Worker (pid:{}) uses {} MiB, over --max-worker-memory {limit}; recycling it",
                    w.pid,
                    rss >> 20
                );
                w.recycle = Some(Retire::Memory);
            }
        }
    }

    /// Stop every worker and leave: TERM (graceful) or QUIT (quick), wait up
    /// to `--graceful-timeout`, then SIGKILL what remains.
    fn stop(&mut self, graceful: bool) -> Halt {
        self.phase = Phase::Draining;
        self.notify(&[Notify::Stopping]);
        tracing::info!("Shutting down: {}", self.master_name());
        self.close_listeners();
        self.close_control();
        // Like the control socket, refused at once rather than left to
        // wait while workers drain (and the port is free for whatever
        // replaces this server).
        self.exporter = None;
        let mut sig = if graceful {
            Signal::SIGTERM
        } else {
            Signal::SIGQUIT
        };
        self.signal_all(sig);
        let deadline = Instant::now() + self.settings.graceful_timeout;
        while !self.workers.is_empty() && Instant::now() < deadline {
            let mut fds = [PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, PollTimeout::from(100u16));
            for r in self.signals.drain() {
                // INT/QUIT during a graceful stop escalates it.
                if r.intent == Intent::QuickStop && sig == Signal::SIGTERM {
                    tracing::info!("Handling signal: {}", signal_name(r.signal));
                    sig = Signal::SIGQUIT;
                    self.signal_all(sig);
                }
            }
            self.reap_quietly();
        }
        if !self.workers.is_empty() {
            self.signal_all(Signal::SIGKILL);
            while !self.workers.is_empty() {
                match waitpid(None, None) {
                    Ok(s) => {
                        if let Some(p) = s.pid() {
                            self.workers.remove(&p.as_raw());
                        }
                    }
                    Err(_) => break,
                }
            }
        }
        Halt(exit::OK)
    }

    fn reap_quietly(&mut self) {
        while let Ok(s) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            match s.pid() {
                Some(p) => {
                    if let Some(w) = self.workers.remove(&p.as_raw()) {
                        crate::hooks::child_exit(&self.settings, 0, p.as_raw(), w.age);
                    }
                }
                None => break,
            }
        }
    }

    /// Halt with a reason, stopping the other workers first.
    fn halt(&mut self, code: i32, reason: &str) -> Halt {
        tracing::error!("{reason}");
        self.notify(&[Notify::Status(reason)]);
        self.stop(true);
        Halt(code)
    }

    fn close_listeners(&mut self) {
        for l in self.listeners.drain(..) {
            l.unlink();
        }
    }

    fn cleanup(&mut self) {
        self.close_listeners();
        self.report_metrics();
        if let Some(c) = self.control.take() {
            c.close();
        }
        if let Some(p) = &self.settings.pidfile {
            // Only remove a pidfile that still names this process: after a
            // promotion the new master has rewritten it.
            let path = if self.upgrade.parent.is_some() {
                suffixed(p)
            } else {
                p.clone()
            };
            let ours = std::fs::read_to_string(&path)
                .is_ok_and(|c| c.trim() == std::process::id().to_string());
            if ours {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// Connect to the statsd server the settings name (or stop sending). A
/// server that cannot be reached is no reason not to serve: say so once.
fn init_statsd(s: &Settings) {
    if let Err(e) = crate::statsd::init(crate::config::statsd_config(s).as_ref()) {
        let target = s.statsd_host.as_ref().map(|t| t.to_string());
        tracing::warn!("No statsd metrics to {}: {e}", target.unwrap_or_default());
    }
}

/// `PIDFILE.2`, the pidfile of a new master before promotion.
fn suffixed(p: &std::path::Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".2");
    PathBuf::from(s)
}

/// How long systemd should wait for the app to import: workers that take
/// longer than `--timeout` to boot are killed anyway, so twice that (and at
/// least 90 s, systemd's own default) covers a slow but healthy start.
fn boot_allowance(s: &Settings) -> Duration {
    (s.timeout * 2).max(Duration::from_secs(90))
}

fn join_reason(what: &str, why: &str) -> String {
    if why.is_empty() {
        what.to_string()
    } else {
        format!("{what} {why}")
    }
}

fn proc_name(s: &Settings) -> String {
    s.proc_name
        .clone()
        .or_else(|| s.app.clone())
        .unwrap_or_else(|| "corral".into())
}

fn signal_name(sig: Signal) -> String {
    sig.as_str().trim_start_matches("SIG").to_ascii_lowercase()
}
