//! Starts the installed `corral` (see `installed`) and watches it: the one
//! way every test binary starts a server and waits for it, with the small
//! tools that go with it (a private temp dir, a free port, bounded waits,
//! the master's children from /proc, commands run with a deadline).
//!
//! Readiness is never guessed: each server gets its own `NOTIFY_SOCKET` (see
//! `notify`) in a private temp dir, and [`Corral::start`] waits (with a
//! deadline) for the master's `READY=1`. The port comes from the master's
//! `Listening at: http://HOST:PORT (PID)` line on stderr, which a reader
//! thread copies into a shared buffer that tests can search too. Dropping a
//! [`Server`] kills the master's whole process group.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::io::Read;
use std::net::TcpListener;
use std::os::fd::RawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::notify::{Msg, Notifications};

/// Start-up on a loaded two-core machine with a debug build and Django to
/// import: generous, but finite.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Graceful stop, worker replacement, log lines to appear.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Variables that change corral's (and gunicorn's) settings: a server under
/// test starts without them, so only the test decides its settings.
pub const SETTINGS_ENV: [&str; 4] = [
    "GUNICORN_CMD_ARGS",
    "CORRAL_CMD_ARGS",
    "WEB_CONCURRENCY",
    "PORT",
];

pub fn apps_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps")
}

/// A private scratch directory `corral-TAG-*`, removed when dropped.
pub fn temp_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("corral-{tag}-"))
        .tempdir()
        .expect("create a temp dir")
}

/// A loopback port nobody listens on right now, for a server that must be
/// told its port in advance (a config file, a socket unit).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral loopback port")
        .port()
}

pub fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub use crate::installed::venv;

pub fn venv_python() -> PathBuf {
    venv().join("bin/python")
}

/// What was read so far, and whether the pipe is closed.
type Shared = (Mutex<(Vec<u8>, bool)>, Condvar);

/// Bytes a child wrote to a pipe, collected by a thread, searchable while the
/// child runs.
#[derive(Clone, Default)]
pub struct Captured {
    inner: Arc<Shared>,
}

impl Captured {
    pub fn collect(mut pipe: impl Read + Send + 'static) -> Captured {
        let captured = Captured::default();
        let sink = captured.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                let n = pipe.read(&mut buf).unwrap_or(0);
                let (lock, cvar) = &*sink.inner;
                let mut guard = lock.lock().unwrap();
                if n == 0 {
                    guard.1 = true;
                    cvar.notify_all();
                    return;
                }
                guard.0.extend_from_slice(&buf[..n]);
                cvar.notify_all();
            }
        });
        captured
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.inner.0.lock().unwrap().0).into_owned()
    }

    /// Waits until `find` returns something for the text so far; `None` when
    /// the deadline passes or the pipe closes without it.
    pub fn wait_for<T>(&self, timeout: Duration, find: impl Fn(&str) -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.inner;
        let mut guard = lock.lock().unwrap();
        loop {
            if let Some(found) = find(&String::from_utf8_lossy(&guard.0)) {
                return Some(found);
            }
            let now = Instant::now();
            if guard.1 || now >= deadline {
                return None;
            }
            guard = cvar.wait_timeout(guard, deadline - now).unwrap().0;
        }
    }

    /// Waits until the pipe is closed (every writer exited), bounded.
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.inner;
        let mut guard = lock.lock().unwrap();
        while !guard.1 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            guard = cvar.wait_timeout(guard, deadline - now).unwrap().0;
        }
        true
    }
}

/// How to start corral. Defaults: `--chdir tests/apps -b 127.0.0.1:0`.
pub struct Corral {
    /// The app argument, last on the command line.
    app: Option<String>,
    args: Vec<String>,
    bind: Option<String>,
    chdir: Option<PathBuf>,
    /// The working directory (by default the test's own).
    cwd: Option<PathBuf>,
    env: Vec<(String, String)>,
    /// Descriptors handed to corral: (ours, the number corral sees).
    fds: Vec<(RawFd, RawFd)>,
    dir: tempfile::TempDir,
    /// Another program than the test virtualenv's `corral`, and the
    /// arguments it takes before corral's own.
    program: Option<(PathBuf, Vec<String>)>,
    /// Start from an empty environment, as systemd starts a service.
    bare: bool,
}

impl Corral {
    /// `corral ARGS` and nothing else.
    fn plain(args: Vec<String>) -> Corral {
        Corral {
            app: None,
            args,
            bind: None,
            chdir: None,
            cwd: None,
            env: Vec::new(),
            fds: Vec::new(),
            dir: temp_dir("test"),
            program: None,
            bare: false,
        }
    }

    pub fn app(app: &str) -> Corral {
        Corral {
            app: Some(app.to_string()),
            bind: Some("127.0.0.1:0".to_string()),
            chdir: Some(apps_dir()),
            ..Corral::plain(Vec::new())
        }
    }

    /// `corral -c CONFIG`: the app, the bind and the rest come from the
    /// file, so there is no `--chdir`, `-b` or app argument.
    pub fn from_config(config: &Path) -> Corral {
        Corral::plain(vec!["-c".to_string(), config.display().to_string()])
    }

    /// gunicorn 27 from the test virtualenv, started the same way: the
    /// tests that compare behaviour run both and keep both results.
    pub fn gunicorn(app: &str) -> Corral {
        let mut c = Corral::app(app);
        c.program = Some((venv().join("bin/gunicorn"), Vec::new()));
        // Its control socket lives at one path per user: servers started
        // side by side would take it from each other.
        c.args(["--no-control-socket"])
    }

    /// Start corral through `wrapper ARGS...`, a program that execs it (as
    /// `chrt` or `nice` would in a unit's `ExecStart=`).
    pub fn wrapped(mut self, wrapper: &str, args: &[&str]) -> Corral {
        let (program, mut rest) = self
            .program
            .take()
            .unwrap_or_else(|| (PathBuf::from(crate::installed::corral()), Vec::new()));
        let mut argv: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        argv.push(program.display().to_string());
        argv.append(&mut rest);
        self.program = Some((PathBuf::from(wrapper), argv));
        self
    }

    /// Run the `corral` installed in virtualenv `venv`.
    pub fn installed_in(mut self, venv: &Path) -> Corral {
        self.program = Some((venv.join("bin/corral"), Vec::new()));
        self
    }

    /// Run `PYTHON -m corral` rather than the console script.
    pub fn module_of(mut self, python: &Path) -> Corral {
        self.program = Some((python.to_path_buf(), vec!["-m".into(), "corral".into()]));
        self
    }

    /// An environment as bare as systemd gives a service: `PATH=/usr/bin:/bin`
    /// and nothing else but the notify socket (which systemd sets too).
    pub fn bare_env(mut self) -> Corral {
        self.bare = true;
        self
    }

    /// Extra arguments, placed before the app.
    pub fn args<I, S>(mut self, args: I) -> Corral
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn bind(mut self, bind: impl Into<String>) -> Corral {
        self.bind = Some(bind.into());
        self
    }

    pub fn chdir(mut self, dir: impl Into<PathBuf>) -> Corral {
        self.chdir = Some(dir.into());
        self
    }

    /// Runs corral in `dir` (where it looks for a default config file).
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Corral {
        self.cwd = Some(dir.into());
        self
    }

    /// One more variable in corral's environment.
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Corral {
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// Hands our descriptor `fd` to corral as descriptor `target` (for
    /// `fd://N` binds). The caller keeps `fd` open until the spawn.
    pub fn pass_fd(mut self, fd: RawFd, target: RawFd) -> Corral {
        self.fds.push((fd, target));
        self
    }

    /// The private temp dir of this server (sockets, files).
    pub fn tmp(&self) -> &Path {
        self.dir.path()
    }

    /// Spawns corral without waiting for readiness.
    pub fn spawn(self) -> Server {
        let notify_path = self.dir.path().join("notify.sock");
        let notify = Notifications::listen(&notify_path);
        let (program, mut argv) = self
            .program
            .clone()
            .unwrap_or_else(|| (PathBuf::from(crate::installed::corral()), Vec::new()));
        if let Some(dir) = &self.chdir {
            argv.extend(["--chdir".to_string(), dir.display().to_string()]);
        }
        if let Some(bind) = &self.bind {
            argv.extend(["-b".to_string(), bind.clone()]);
        }
        argv.extend(self.args.iter().cloned());
        argv.extend(self.app.clone());
        let mut cmd = Command::new(&program);
        if self.bare {
            cmd.env_clear().env("PATH", "/usr/bin:/bin");
        } else {
            // Each server its own session runtime directory, as each user
            // session has: the control socket's default place (corral's and
            // gunicorn's), so servers running side by side never share one.
            cmd.env("PYTHONDONTWRITEBYTECODE", "1")
                .env("XDG_RUNTIME_DIR", self.dir.path());
        }
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        for var in SETTINGS_ENV {
            cmd.env_remove(var);
        }
        cmd.args(&argv)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("NOTIFY_SOCKET", &notify_path)
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .env_remove("LISTEN_FDNAMES")
            // corral logs to the journal when its stderr is this stream.
            .env_remove("JOURNAL_STREAM")
            .env_remove("VIRTUAL_ENV")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Own process group, so drop can take the workers down too.
            .process_group(0);
        let fds = self.fds.clone();
        if !fds.is_empty() {
            // SAFETY: only dup2(2) and fcntl(2), which are async-signal-safe,
            // run between fork and exec. dup2 leaves the new descriptor
            // without CLOEXEC, except when it already is the target: then it
            // does nothing, and the flag must be cleared by hand.
            unsafe {
                cmd.pre_exec(move || {
                    for &(fd, target) in &fds {
                        let r = if fd == target {
                            libc::fcntl(fd, libc::F_SETFD, 0)
                        } else {
                            libc::dup2(fd, target)
                        };
                        if r < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
        let stdout = Captured::collect(child.stdout.take().unwrap());
        let stderr = Captured::collect(child.stderr.take().unwrap());
        Server {
            pid: child.id() as i32,
            child,
            stdout,
            stderr,
            notify,
            port: 0,
            args: argv,
            exited: None,
            _dir: self.dir,
        }
    }

    /// Spawns corral, waits for `READY=1` on the notify socket and, for a
    /// TCP bind, for the port in the `Listening at:` line.
    pub fn start(self) -> Server {
        let tcp = self
            .bind
            .as_deref()
            .is_some_and(|b| !b.starts_with("unix:"));
        let mut server = self.spawn();
        server.wait_ready();
        if tcp {
            server.port = server.listening_port();
        }
        server
    }
}

/// A running (or exited) corral master.
pub struct Server {
    pub pid: i32,
    child: Child,
    pub stdout: Captured,
    pub stderr: Captured,
    pub notify: Notifications,
    pub port: u16,
    args: Vec<String>,
    exited: Option<ExitStatus>,
    /// Holds the notify socket (and any socket files) until the drop.
    _dir: tempfile::TempDir,
}

impl Server {
    fn describe(&self) -> String {
        format!(
            "corral {:?} (pid {})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args,
            self.pid,
            self.stdout.text(),
            self.stderr.text()
        )
    }

    /// Waits for a datagram with a `READY=1` line after those seen by the
    /// last call (so after a reload, it waits for the reload's own).
    pub fn wait_ready(&mut self) {
        self.wait_ready_within(START_TIMEOUT);
    }

    /// [`Server::wait_ready`] with another deadline.
    pub fn wait_ready_within(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let now = Instant::now();
            if now >= deadline {
                panic!(
                    "no READY=1 within {timeout:?} (datagrams seen: {:?}); {}",
                    self.notify.raws(),
                    self.describe()
                );
            }
            // A short wait, so an early exit is noticed quickly.
            let slice = (deadline - now).min(Duration::from_millis(200));
            if self.notify.next(slice, Msg::is_ready).is_some() {
                return;
            }
            if let Some(status) = self.try_exit() {
                // Let the stderr reader catch the last words.
                self.stderr.wait_closed(Duration::from_secs(5));
                panic!(
                    "corral exited ({status}) before READY=1; {}",
                    self.describe()
                );
            }
        }
    }

    /// The first `Listening at: http://HOST:PORT` port on stderr.
    pub fn listening_port(&self) -> u16 {
        let found = self.stderr.wait_for(EVENT_TIMEOUT, port_in);
        match found {
            Some(port) if port != 0 => port,
            _ => panic!(
                "no `Listening at: http://HOST:PORT` line with a real port; {}",
                self.describe()
            ),
        }
    }

    /// The port, from an error log written to a file (`--error-logfile`).
    /// The line is there once READY=1 came: the master logs it first.
    pub fn listening_port_in(&self, error_log: &Path) -> u16 {
        let text = std::fs::read_to_string(error_log).unwrap_or_default();
        match port_in(&text) {
            Some(port) if port != 0 => port,
            _ => panic!("no `Listening at:` line in {}: {text}", error_log.display()),
        }
    }

    fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().expect("try_wait");
        }
        self.exited
    }

    /// Waits for the master to exit, bounded; panics with stderr on timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit() {
                self.stderr.wait_closed(Duration::from_secs(5));
                return status;
            }
            if Instant::now() >= deadline {
                panic!(
                    "corral did not exit within {timeout:?}; {}",
                    self.describe()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Exit code, panicking if killed by a signal.
    pub fn wait_code(&mut self, timeout: Duration) -> i32 {
        let status = self.wait_exit(timeout);
        status.code().unwrap_or_else(|| {
            panic!(
                "corral was killed by signal {:?}; {}",
                status.signal(),
                self.describe()
            )
        })
    }

    pub fn signal(&self, sig: i32) {
        signal(self.pid, sig);
    }

    /// Live (non-zombie) children of the master, from /proc.
    pub fn workers(&self) -> Vec<i32> {
        children_of(self.pid)
    }

    /// Worker pids announced with `Booting worker with pid: N`, in order.
    pub fn booted_workers(&self) -> Vec<i32> {
        booted_pids(&self.stderr.text())
    }

    /// Waits until `n` workers have logged their boot and are alive
    /// children of the master (the log may trail READY=1 in our pipe).
    pub fn wait_workers(&self, n: usize) -> Vec<i32> {
        let booted = self
            .stderr
            .wait_for(EVENT_TIMEOUT, |t| {
                let pids = booted_pids(t);
                (pids.len() >= n).then_some(pids)
            })
            .unwrap_or_else(|| {
                panic!(
                    "{n} `Booting worker with pid` lines never appeared; {}",
                    self.describe()
                )
            });
        let live = self.wait_live_workers(n, EVENT_TIMEOUT);
        for pid in &live {
            assert!(
                booted.contains(pid),
                "live child {pid} never logged its boot (booted: {booted:?}); {}",
                self.describe()
            );
        }
        live
    }

    /// Waits until the master has exactly `n` live workers, whatever it
    /// logged (after faults, workers come and go faster than the log says).
    pub fn wait_live_workers(&self, n: usize, timeout: Duration) -> Vec<i32> {
        let found = poll(timeout, || {
            let live = self.workers();
            (live.len() == n).then_some(live)
        });
        found.unwrap_or_else(|| {
            panic!(
                "no {n} live workers within {timeout:?} (now {:?}); {}",
                self.workers(),
                self.describe()
            )
        })
    }

    /// Waits until the stderr contains `needle`, panicking otherwise.
    pub fn expect_log(&self, needle: &str) {
        if self
            .stderr
            .wait_for(EVENT_TIMEOUT, |t| t.contains(needle).then_some(()))
            .is_none()
        {
            panic!("{needle:?} never appeared in the log; {}", self.describe());
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.try_exit().is_some() {
            return;
        }
        let workers = self.workers();
        // SAFETY: plain kill(2) calls on our own child's process group and
        // its children. Errors are ignored on purpose: a worker may already
        // have exited (recycled, or gone with the group), and a drop must
        // never panic.
        unsafe {
            libc::kill(-self.pid, libc::SIGKILL);
            libc::kill(self.pid, libc::SIGKILL);
            for w in workers {
                libc::kill(w, libc::SIGKILL);
            }
        }
        let _ = self.child.wait();
    }
}

pub fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {sig}): {}",
        std::io::Error::last_os_error()
    );
}

/// The port of the first `Listening at: http://HOST:PORT` line.
fn port_in(text: &str) -> Option<u16> {
    text.lines().find_map(|line| {
        let rest = line.split("Listening at: http://").nth(1)?;
        let addr = rest.split_whitespace().next()?;
        addr.rsplit(':').next()?.parse::<u16>().ok()
    })
}

pub fn booted_pids(log: &str) -> Vec<i32> {
    log.lines()
        .filter_map(|l| l.split("Booting worker with pid: ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect()
}

/// Children of `pid` with their state letter (`Z`: exited, not yet
/// reaped), by scanning /proc.
pub fn children_with_state(pid: i32) -> Vec<(i32, char)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if let Some((state, ppid)) = proc_stat(child) {
            if ppid == pid {
                out.push((child, state));
            }
        }
    }
    out.sort_unstable();
    out
}

/// Children of `pid` that are alive (not zombies), by scanning /proc.
pub fn children_of(pid: i32) -> Vec<i32> {
    children_with_state(pid)
        .into_iter()
        .filter(|&(_, state)| !gone(state))
        .map(|(child, _)| child)
        .collect()
}

/// Whether `pid` exists and has not exited (a zombie has).
pub fn alive(pid: i32) -> bool {
    proc_stat(pid).is_some_and(|(state, _)| !gone(state))
}

/// Exited: a zombie, or dead.
fn gone(state: char) -> bool {
    state == 'Z' || state == 'X'
}

/// (state, ppid) from /proc/PID/stat.
fn proc_stat(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces and parens.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Re-checks `cond` every 20 ms until it yields a value; `None` at the
/// deadline. For state that has no event to wait on (/proc, files,
/// `systemctl show`).
pub fn poll<T>(timeout: Duration, mut cond: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = cond() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// [`poll`], panicking with `what` at the deadline.
pub fn wait_for<T>(timeout: Duration, what: &str, cond: impl FnMut() -> Option<T>) -> T {
    poll(timeout, cond).unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}"))
}

/// [`wait_for`] a condition that holds or not.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    wait_for(timeout, what, || cond().then_some(()))
}

/// What a finished command printed.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a command to completion with a deadline (killing it past that).
pub fn run(mut cmd: Command, timeout: Duration) -> Finished {
    let shown = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {shown}: {e}"));
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(out)) => Finished {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
        Ok(Err(e)) => panic!("{shown}: {e}"),
        Err(_) => {
            // SAFETY: kill(2) on the child we spawned.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("{shown} did not finish within {timeout:?}");
        }
    }
}

/// Runs corral itself with `args` (no app server expected to stay up).
pub fn run_corral(args: &[&str]) -> Finished {
    let mut cmd = Command::new(crate::installed::corral());
    cmd.args(args).env_remove("NOTIFY_SOCKET");
    run(cmd, Duration::from_secs(30))
}

/// Runs `tests/integration/clients/SCRIPT ARGS` with the test
/// virtualenv's Python (a real client library against the server);
/// its standard output, or a panic with both outputs if it failed.
/// Start a client script from tests/integration/clients with the test
/// virtualenv's Python, its stdout piped to the test, and return at once.
pub fn spawn_client_script(script: &str, args: &[&str]) -> std::process::Child {
    Command::new(venv_python())
        .arg(repo_dir().join("tests/integration/clients").join(script))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {script}: {e}"))
}

pub fn client_script(script: &str, args: &[&str]) -> String {
    let mut cmd = Command::new(venv_python());
    cmd.arg(repo_dir().join("tests/integration/clients").join(script))
        .args(args);
    let out = run(cmd, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{script} failed:\n{}{}",
        out.stdout,
        out.stderr
    );
    out.stdout
}
