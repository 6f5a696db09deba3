//! The control socket: what the master answers gunicorn 27's `gunicornc`
//! (and `corral ctl`) on. A Unix stream socket in the master's poll set;
//! each message is a 4-byte big-endian length and that many bytes of JSON,
//! `{"id", "command", "args"}` in and `{"id", "status": "ok", "data"}` or
//! `{"id", "status": "error", "error"}` out, as many as the client likes on
//! one connection.
//!
//! The master is single-threaded, so every client is a small non-blocking
//! state machine: a client that sends half a message, or never reads its
//! answer, costs a buffer and never stalls the loop. Messages are capped,
//! a malformed one gets an error reply, and every command is logged with
//! the peer's uid and pid. This file owns the socket, reading messages and the
//! commands; the actions they take are the master's own (the same as the
//! signals').

use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags};
use serde_json::{json, Map, Value};

use super::nonblock::{read_some, write_some, Input};
use super::{Life, Master, Retire};
use crate::config::Shown;
use crate::control::{frame, socket_path, MAX_MESSAGE};
use crate::sys::net::Addr;

/// Connections served at once; more wait in the socket's backlog.
const MAX_CLIENTS: usize = 16;

/// Messages answered per client per pass of the master's loop.
const BATCH: usize = 16;

/// The most workers one `worker add` starts: the master forks them one
/// after the other before it looks at anything else, so a typo must not
/// be able to fork thousands.
const MAX_ADD: usize = 64;

/// A client that sends nothing for this long is disconnected.
const IDLE: Duration = Duration::from_secs(300);

/// Who sent a command, from the socket's peer credentials.
#[derive(Debug, Clone, Copy)]
struct Peer {
    uid: u32,
    pid: i32,
}

struct Client {
    stream: UnixStream,
    peer: Peer,
    input: Vec<u8>,
    output: Vec<u8>,
    last: Instant,
    /// Close once the output is written (EOF, or a message too large to
    /// skip safely).
    closing: bool,
    /// A read or write failed: drop it.
    broken: bool,
}

/// Why the socket could not be opened.
pub enum Refusal {
    /// Another running server answers on the path: try again later (it
    /// may be an old master draining).
    InUse(String),
    Failed(String),
}

/// Whether a server answers on the socket at `path`, asked without
/// blocking (a full backlog also means someone is there).
fn answers(path: &Path) -> bool {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    let Ok(fd) = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    ) else {
        return false;
    };
    let Ok(addr) = UnixAddr::new(path) else {
        return false;
    };
    match connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr) {
        Ok(()) => true,
        Err(e) => e == nix::errno::Errno::EAGAIN || e == nix::errno::Errno::EINPROGRESS,
    }
}

/// A listening socket at `path` whose file never has more access than
/// `mode`: the socket's own mode is set before bind (Linux gives the file
/// the socket's mode less the umask), so no umask change — which other
/// threads of the master (a config file's) would see — is needed.
fn bind_with_mode(path: &Path, mode: u32) -> nix::Result<UnixListener> {
    use nix::sys::socket::{
        bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType, UnixAddr,
    };
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    nix::sys::stat::fchmod(&fd, nix::sys::stat::Mode::from_bits_truncate(mode & 0o777))?;
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &UnixAddr::new(path)?)?;
    listen(&fd, Backlog::new(16)?)?;
    Ok(UnixListener::from(fd))
}

/// One message read from a client: the words of its command, or why it
/// could not be understood.
struct Request {
    client: usize,
    id: Value,
    text: String,
    words: Result<Vec<String>, String>,
}

/// The listening socket and its clients.
pub struct Control {
    listener: UnixListener,
    path: PathBuf,
    /// The socket file's device and inode: at exit it is removed only if
    /// it is still this one (a new master may have replaced it).
    ident: (u64, u64),
    clients: Vec<Client>,
    /// No accept before this (after an accept error).
    accept_after: Instant,
}

impl Control {
    /// Create the socket at `path` with `mode`. An existing socket that no
    /// server answers on is replaced; one that answers, or a file that is
    /// not a socket, is left alone and reported.
    pub fn open(path: &Path, mode: u32) -> Result<Self, Refusal> {
        let shown = path.display();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|e| {
                        Refusal::Failed(format!("cannot create {}: {e}", dir.display()))
                    })?;
            }
        }
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => {
                if answers(path) {
                    return Err(Refusal::InUse(format!(
                        "{shown} is in use by another running server"
                    )));
                }
                std::fs::remove_file(path).map_err(|e| {
                    Refusal::Failed(format!("cannot remove the stale socket {shown}: {e}"))
                })?;
            }
            Ok(_) => {
                return Err(Refusal::Failed(format!(
                    "{shown} exists and is not a socket"
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Refusal::Failed(format!("{shown}: {e}"))),
        }
        let failed =
            |what: &str, e: &dyn std::fmt::Display| Refusal::Failed(format!("{what} {shown}: {e}"));
        let listener = bind_with_mode(path, mode).map_err(|e| failed("cannot listen on", &e))?;
        // bind applied the umask too; now exactly the mode asked for.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| failed("cannot set the mode of", &e))?;
        let meta = std::fs::metadata(path).map_err(|e| failed("", &e))?;
        Ok(Self {
            listener,
            path: path.to_owned(),
            ident: (meta.dev(), meta.ino()),
            clients: Vec::new(),
            accept_after: Instant::now(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the master's poll should wake up for.
    pub fn poll_fds(&self) -> Vec<PollFd<'_>> {
        let mut fds = Vec::with_capacity(self.clients.len() + 1);
        if self.clients.len() < MAX_CLIENTS && Instant::now() >= self.accept_after {
            fds.push(PollFd::new(self.listener.as_fd(), PollFlags::POLLIN));
        }
        for c in &self.clients {
            // Read only from a client that has its answers: one that does
            // not read them gets no more (the master's memory is not its
            // buffer), and a closing one is only written to. Waiting for
            // input the loop will not read would wake poll at once, for
            // ever, on a socket at EOF.
            let flags = if !c.output.is_empty() {
                PollFlags::POLLOUT
            } else if c.closing {
                continue;
            } else {
                PollFlags::POLLIN
            };
            fds.push(PollFd::new(c.stream.as_fd(), flags));
        }
        fds
    }

    /// Accept, read and frame without blocking; the complete messages.
    fn take_requests(&mut self, now: Instant) -> Vec<Request> {
        while self.clients.len() < MAX_CLIENTS && now >= self.accept_after {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if let Some(client) = Client::new(stream, now) {
                        self.clients.push(client);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // Out of descriptors, say: the connection stays in the
                    // backlog and the listener readable, so look again in a
                    // second rather than at once (and log once a second).
                    tracing::warn!("control socket: accept failed: {e}");
                    self.accept_after = now + Duration::from_secs(1);
                    break;
                }
            }
        }
        let mut requests = Vec::new();
        for (i, c) in self.clients.iter_mut().enumerate() {
            if !c.output.is_empty() {
                // Answers first (see `poll_fds`).
                continue;
            }
            c.read(now);
            c.frames(i, &mut requests);
            if now.duration_since(c.last) > IDLE {
                c.broken = true;
            }
        }
        requests
    }

    fn reply(&mut self, client: usize, id: Value, result: Result<Value, String>) {
        let msg = match result {
            Ok(data) => json!({"id": id, "status": "ok", "data": data}),
            Err(error) => json!({"id": id, "status": "error", "error": error}),
        };
        if let Some(c) = self.clients.get_mut(client) {
            c.output.extend_from_slice(&frame(&msg));
        }
    }

    /// Write what is pending and drop the clients that are done.
    fn flush(&mut self) {
        for c in &mut self.clients {
            c.write();
        }
        self.clients.retain(|c| !c.done());
    }

    /// Stop listening; remove the socket file if it is still this one.
    pub fn close(self) {
        let ours =
            std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.ident);
        drop(self.listener);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Client {
    fn new(stream: UnixStream, now: Instant) -> Option<Self> {
        if let Err(e) = stream.set_nonblocking(true) {
            tracing::warn!("control socket: {e}");
            return None;
        }
        let creds =
            nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials);
        let peer = match creds {
            Ok(c) => Peer {
                uid: c.uid(),
                pid: c.pid(),
            },
            Err(e) => {
                tracing::warn!("control socket: no peer credentials: {e}");
                return None;
            }
        };
        Some(Self {
            stream,
            peer,
            input: Vec::new(),
            output: Vec::new(),
            last: now,
            closing: false,
            broken: false,
        })
    }

    /// Nothing more to do for this client: it broke, or it is closing and
    /// its answers are written.
    fn done(&self) -> bool {
        self.broken || (self.closing && self.output.is_empty())
    }

    fn read(&mut self, now: Instant) {
        if self.closing || self.broken {
            return;
        }
        let before = self.input.len();
        // Never buffer more than one whole message and its length.
        match read_some(&mut self.stream, &mut self.input, MAX_MESSAGE + 4) {
            Input::Open => {}
            Input::Eof => self.closing = true,
            Input::Broken => self.broken = true,
        }
        if self.input.len() > before {
            self.last = now;
        }
    }

    /// The complete messages buffered, at most [`BATCH`] of them: what a
    /// client pipelines is answered a batch at a time, each batch once the
    /// last one's answers are written, so its answers never pile up.
    fn frames(&mut self, client: usize, out: &mut Vec<Request>) {
        let mut taken = 0;
        while self.input.len() >= 4 && !self.broken && taken < BATCH {
            taken += 1;
            let len = u32::from_be_bytes(self.input[..4].try_into().expect("4 bytes")) as usize;
            if len > MAX_MESSAGE {
                // The rest of the stream cannot be trusted to be framed.
                out.push(Request {
                    client,
                    id: json!(0),
                    text: String::new(),
                    words: Err(format!(
                        "Message too large: {len} bytes (the limit is {MAX_MESSAGE})"
                    )),
                });
                self.input.clear();
                self.closing = true;
                return;
            }
            if self.input.len() < 4 + len {
                return;
            }
            let body: Vec<u8> = self.input.drain(..4 + len).skip(4).collect();
            out.push(parse(client, &body));
        }
    }

    fn write(&mut self) {
        if !self.broken && !write_some(&mut self.stream, &mut self.output) {
            self.broken = true;
        }
    }
}

/// One message: `{"id": N, "command": "show workers", "args": [...]}`.
fn parse(client: usize, body: &[u8]) -> Request {
    let bad = |id: Value, why: &str| Request {
        client,
        id,
        text: String::new(),
        words: Err(format!("Invalid message: {why}")),
    };
    let Ok(Value::Object(msg)) = serde_json::from_slice::<Value>(body) else {
        return bad(json!(0), "expected a JSON object");
    };
    let id = msg.get("id").cloned().unwrap_or(json!(0));
    // A missing command is an empty one, as gunicorn reads it.
    let text = match msg.get("command") {
        None | Some(Value::Null) => "",
        Some(Value::String(t)) => t.as_str(),
        Some(_) => return bad(id, "\"command\" must be a string"),
    };
    let args = match msg.get("args") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        Some(_) => return bad(id, "\"args\" must be a list"),
    };
    // Split as a shell would (gunicorn uses Python's shlex).
    let words = crate::config::shell_split(text.trim())
        .map(|mut w| {
            w.extend(args);
            w
        })
        .map_err(|e| format!("Invalid argument: {e}"));
    Request {
        client,
        id,
        text: text.trim().to_owned(),
        words,
    }
}

/// What the master does after answering a command.
pub(super) enum After {
    Nothing,
    Stop { graceful: bool },
}

/// A command's count argument: at least 1 (gunicorn's `max(1, N)`).
fn count(arg: Option<&String>) -> Result<usize, String> {
    match arg {
        None => Ok(1),
        Some(a) => a
            .parse::<i64>()
            .map(|n| n.max(1) as usize)
            .map_err(|_| format!("Invalid argument: not a whole number: {a:?}")),
    }
}

fn seconds(d: Duration) -> f64 {
    (d.as_secs_f64() * 100.0).round() / 100.0
}

fn shown_json(v: Shown) -> Value {
    match v {
        Shown::None => Value::Null,
        Shown::Bool(b) => json!(b),
        Shown::Int(n) => json!(n),
        Shown::Str(s) => json!(s),
        Shown::List(l) => json!(l),
        Shown::Dict(d) => Value::Object(d.into_iter().map(|(k, v)| (k, json!(v))).collect()),
        Shown::Json(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

/// What `show config` answers: gunicorn 27's keys, in its order (its
/// `dirty_timeout` has no meaning here and is left out).
const CONFIG_KEYS: &[&str] = &[
    "bind",
    "workers",
    "worker_class",
    "threads",
    "timeout",
    "graceful_timeout",
    "keepalive",
    "max_requests",
    "max_requests_jitter",
    "worker_connections",
    "preload_app",
    "daemon",
    "pidfile",
    "proc_name",
    "reload",
    "dirty_workers",
    "dirty_apps",
    "control_socket",
    "control_socket_disable",
];

const HELP: &[(&str, &str)] = &[
    ("show all", "The master and every worker"),
    (
        "show workers",
        "Each worker: pid, age, state, requests, last heartbeat",
    ),
    ("show dirty", "Dirty workers (corral has none)"),
    ("show config", "The effective settings"),
    (
        "show stats",
        "Uptime, worker counts, spawns, kills and reloads",
    ),
    ("show listeners", "The listening sockets"),
    ("worker add [N]", "Run N more workers (default 1)"),
    (
        "worker remove [N]",
        "Run N fewer workers, never fewer than 1 (default 1)",
    ),
    (
        "worker kill <PID>",
        "Retire one worker; a new one takes its place",
    ),
    (
        "dirty add [N]",
        "Not available: corral has no dirty workers",
    ),
    (
        "dirty remove [N]",
        "Not available: corral has no dirty workers",
    ),
    ("reload", "Reload as on SIGHUP"),
    ("reopen", "Reopen the log files as on SIGUSR1"),
    (
        "shutdown [graceful|quick]",
        "Stop as on SIGTERM, or SIGINT with quick",
    ),
    ("help", "This list"),
];

impl Master {
    /// Open the control socket once the master is the one in charge (a new
    /// master started by USR2 waits for its promotion: until then the old
    /// one answers). While another server answers on the path (an old
    /// master still draining, say) it tries again every few seconds; any
    /// other failure is reported once and corral runs without it.
    pub(super) fn open_control(&mut self) {
        let now = Instant::now();
        if self.upgrade.parent.is_some() || self.control_next_try.is_none_or(|t| now < t) {
            return;
        }
        self.control_next_try = None;
        if self.settings.control_socket_disable {
            return;
        }
        let path = socket_path(
            self.settings.control_socket.as_deref(),
            &self.start_dir,
            &|k| std::env::var(k).ok(),
            &|| {
                std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .or_else(|| {
                        nix::unistd::User::from_uid(nix::unistd::getuid())
                            .ok()
                            .flatten()
                            .map(|u| u.dir)
                    })
                    .unwrap_or_else(|| PathBuf::from("/"))
            },
        );
        match Control::open(&path, self.settings.control_socket_mode) {
            Ok(c) => {
                tracing::info!("Control socket listening at {}", c.path().display());
                self.control = Some(c);
            }
            Err(Refusal::InUse(e)) => {
                if !self.control_waiting {
                    tracing::warn!("No control socket yet: {e}; trying again every 5 s");
                    self.control_waiting = true;
                }
                self.control_next_try = Some(now + Duration::from_secs(5));
            }
            Err(Refusal::Failed(e)) => tracing::warn!("No control socket: {e}"),
        }
    }

    /// Stop answering: at the start of a stop, so that clients are refused
    /// at once rather than left waiting while workers drain.
    pub(super) fn close_control(&mut self) {
        if let Some(mut c) = self.control.take() {
            c.flush();
            c.close();
        }
        self.control_next_try = None;
    }

    /// Answer what the control clients sent. Returns a stop to carry out
    /// once the replies are written.
    pub(super) fn serve_control(&mut self) -> Option<bool> {
        let requests = self.control.as_mut()?.take_requests(Instant::now());
        let mut stop = None;
        for r in requests {
            let peer = self
                .control
                .as_ref()
                .and_then(|c| c.clients.get(r.client))
                .map(|c| c.peer);
            let (uid, pid) = peer.map_or((u32::MAX, 0), |p| (p.uid, p.pid));
            let result = match r.words {
                Ok(words) => {
                    tracing::info!(
                        CONTROL_UID = uid,
                        CONTROL_PID = pid,
                        "Control command from uid {uid} pid {pid}: {}",
                        r.text.escape_debug()
                    );
                    let (result, after) = self.command(&words);
                    if let After::Stop { graceful } = after {
                        // Two in one batch: a quick stop is not made graceful.
                        stop = Some(stop.map_or(graceful, |g: bool| g && graceful));
                    }
                    result
                }
                Err(e) => {
                    tracing::warn!(
                        CONTROL_UID = uid,
                        CONTROL_PID = pid,
                        "Control message from uid {uid} pid {pid} refused: {e}"
                    );
                    Err(e)
                }
            };
            if let Some(c) = self.control.as_mut() {
                c.reply(r.client, r.id, result);
            }
        }
        if let Some(c) = self.control.as_mut() {
            c.flush();
        }
        stop
    }

    fn command(&mut self, words: &[String]) -> (Result<Value, String>, After) {
        let Some(first) = words.first() else {
            return (Err("Empty command".into()), After::Nothing);
        };
        let rest = &words[1..];
        let word = |i: usize| rest.get(i).map(|w| w.to_ascii_lowercase());
        let result = match first.to_ascii_lowercase().as_str() {
            "show" => match word(0).as_deref() {
                None => {
                    Err("Invalid argument: Missing show target (all|workers|dirty|config|stats|listeners)".into())
                }
                Some("all") => Ok(self.show_all()),
                Some("workers") => Ok(self.show_workers()),
                Some("dirty") => {
                    Ok(json!({"enabled": false, "pid": null, "workers": [], "apps": []}))
                }
                Some("config") => Ok(self.show_config()),
                Some("stats") => Ok(self.show_stats()),
                Some("listeners") => Ok(self.show_listeners()),
                Some(other) => Err(format!("Invalid argument: Unknown show target: {other}")),
            },
            "worker" => match word(0).as_deref() {
                None => Err("Invalid argument: Missing worker action (add|remove|kill)".into()),
                Some("add") => count(rest.get(1)).and_then(|n| self.add_workers(n)),
                Some("remove") => count(rest.get(1)).map(|n| self.remove_workers(n)),
                Some("kill") => match rest.get(1) {
                    None => Err("Invalid argument: Missing PID for worker kill".into()),
                    Some(p) => p
                        .parse::<i32>()
                        .map(|pid| self.kill_worker(pid))
                        .map_err(|_| format!("Invalid argument: not a pid: {p:?}")),
                },
                Some(other) => Err(format!("Invalid argument: Unknown worker action: {other}")),
            },
            "dirty" => match word(0).as_deref() {
                None => Err("Invalid argument: Missing dirty action (add|remove)".into()),
                Some("add" | "remove") => {
                    Ok(json!({"success": false, "error": "Dirty arbiter not running"}))
                }
                Some(other) => Err(format!("Invalid argument: Unknown dirty action: {other}")),
            },
            "reload" => {
                self.reload();
                Ok(json!({"status": "reloading"}))
            }
            "reopen" => {
                self.reopen_logs();
                Ok(json!({"status": "reopening"}))
            }
            "shutdown" => {
                // As gunicorn: only "quick" is a quick stop.
                let mode = rest.first().cloned().unwrap_or_else(|| "graceful".into());
                let graceful = mode != "quick";
                return (
                    Ok(json!({"status": "shutting_down", "mode": mode})),
                    After::Stop { graceful },
                );
            }
            "help" => Ok(json!({
                "commands": HELP.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<Map<_, _>>()
            })),
            other => Err(format!("Invalid argument: Unknown command: {other}")),
        };
        (result, After::Nothing)
    }

    fn worker_entries(&self) -> Vec<Value> {
        let mut workers: Vec<_> = self.workers.values().collect();
        workers.sort_by_key(|w| w.age);
        workers
            .into_iter()
            .map(|w| {
                let state = match w.life {
                    Life::Booting => "booting",
                    Life::Serving => "serving",
                    Life::Retiring(_) => "retiring",
                };
                json!({
                    "pid": w.pid.as_raw(),
                    // gunicorn counts from 1.
                    "age": w.age + 1,
                    "booted": w.heartbeat.booted(),
                    "aborted": w.aborted.is_some(),
                    "last_heartbeat": seconds(Duration::from_millis(w.heartbeat.silent_for_ms())),
                    "state": state,
                    "requests": w.heartbeat.requests(),
                })
            })
            .collect()
    }

    fn show_workers(&self) -> Value {
        let workers = self.worker_entries();
        json!({"count": workers.len(), "workers": workers})
    }

    fn show_all(&self) -> Value {
        let mut workers = self.worker_entries();
        for w in &mut workers {
            if let Value::Object(m) = w {
                m.insert("type".into(), json!("web"));
            }
        }
        json!({
            "arbiter": {"pid": std::process::id(), "type": "arbiter", "role": "master"},
            "web_worker_count": workers.len(),
            "web_workers": workers,
            "dirty_arbiter": null,
            "dirty_workers": [],
            "dirty_worker_count": 0,
        })
    }

    fn show_stats(&self) -> Value {
        json!({
            "uptime": seconds(self.started.elapsed()),
            "pid": std::process::id(),
            "workers_current": self.workers.len(),
            "workers_target": self.num_workers,
            "workers_spawned": self.counts.spawned,
            "workers_killed": self.counts.killed,
            "reloads": self.counts.reloads,
            "dirty_arbiter_pid": null,
        })
    }

    /// gunicorn's keys, and only those: the whole configuration would
    /// show `raw_env` (secrets passed with `-e`) to anyone allowed on the
    /// socket. The socket's path is the one in use, not the setting.
    fn show_config(&self) -> Value {
        let mut out = Map::new();
        for name in CONFIG_KEYS {
            let value = match *name {
                // What corral does not have, as gunicorn shows it off.
                "daemon" | "reload" => json!(false),
                "dirty_workers" => json!(0),
                "dirty_apps" => json!([]),
                "control_socket" => json!(self
                    .control
                    .as_ref()
                    .map(|c| c.path().display().to_string())),
                other => self.settings.shown(other).map_or(Value::Null, shown_json),
            };
            out.insert((*name).to_owned(), value);
        }
        Value::Object(out)
    }

    fn show_listeners(&self) -> Value {
        let listeners: Vec<Value> = self
            .listeners
            .iter()
            .map(|l| {
                let addr = l.addr();
                let kind = match &addr {
                    Addr::Tcp(a) if a.is_ipv6() => "tcp6",
                    Addr::Tcp(_) => "tcp",
                    Addr::Unix(_) => "unix",
                };
                json!({"address": addr.to_string(), "fd": l.as_raw(), "type": kind})
            })
            .collect();
        json!({"count": listeners.len(), "listeners": listeners})
    }

    fn add_workers(&mut self, n: usize) -> Result<Value, String> {
        let old = self.num_workers;
        if n > MAX_ADD {
            return Err(format!(
                "Invalid argument: at most {MAX_ADD} workers at a time, not {n}"
            ));
        }
        self.set_worker_count(old + n);
        Ok(json!({"added": n, "previous": old, "total": self.num_workers}))
    }

    /// Never below one, as TTOU; with no workers (after WINCH) nothing to
    /// remove.
    fn remove_workers(&mut self, n: usize) -> Value {
        let old = self.num_workers;
        if old > 1 {
            self.set_worker_count(old.saturating_sub(n).max(1));
        }
        json!({"removed": old - self.num_workers, "previous": old, "total": self.num_workers})
    }

    fn kill_worker(&mut self, pid: i32) -> Value {
        match self.workers.get(&pid) {
            Some(w) if !w.retiring() => {
                self.retire(pid, Retire::Control);
                json!({"success": true, "killed": pid})
            }
            // Already stopping: as asked (gunicorn signals it again).
            Some(_) => json!({"success": true, "killed": pid}),
            None => json!({"success": false, "error": format!("Worker {pid} not found")}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_a_command_and_its_args() {
        let r = parse(0, br#"{"id": 7, "command": "worker add", "args": [2]}"#);
        assert_eq!(r.id, json!(7));
        assert_eq!(r.words.unwrap(), ["worker", "add", "2"]);
        let r = parse(0, br#"{"id": 3, "command": 5}"#);
        assert_eq!(r.id, json!(3));
        assert!(r
            .words
            .unwrap_err()
            .contains("\"command\" must be a string"));
        let r = parse(0, b"not json");
        assert_eq!(r.id, json!(0));
        assert!(r.words.is_err());
    }
}
