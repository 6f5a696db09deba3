//! Helpers shared by the systemd tests: bounded waits, a small HTTP client
//! and a client loop, an sd_notify receiver that records the sender's pid,
//! and corral started under `systemd-socket-activate`.

use std::io::{IoSliceMut, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The installed `corral` under test.
pub fn corral() -> &'static str {
    crate::installed::corral()
}

/// The test applications (`app.py`, `broken.py`).
pub fn apps_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/systemd/apps")
}

/// Poll `cond` until it yields a value; panic naming `what` at the deadline.
pub fn wait_for<T>(what: &str, timeout: Duration, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = cond() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("cannot bind an ephemeral loopback port")
        .port()
}

/// A complete HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

impl Response {
    /// The worker pid from a `pid=N` body.
    pub fn pid(&self) -> Option<i32> {
        self.body.strip_prefix("pid=")?.trim().parse().ok()
    }
}

/// `GET path` on a fresh connection; an error unless the whole response
/// (as long as its Content-Length says) arrived within `timeout`.
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<Response, String> {
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("send: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .map_err(|e| format!("read: {e} after {} bytes", raw.len()))?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("incomplete response head: {text:?}"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line: {head:?}"))?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .ok_or_else(|| format!("no Content-Length in {head:?}"))?;
    if body.len() != length {
        return Err(format!(
            "truncated body: {} of {length} bytes: {body:?}",
            body.len()
        ));
    }
    Ok(Response {
        status,
        body: body.to_string(),
    })
}

/// One sd_notify datagram.
#[derive(Debug, Clone)]
pub struct Msg {
    pub at: Instant,
    /// The sender, from SCM_CREDENTIALS.
    pub pid: Option<i32>,
    pub raw: String,
}

impl Msg {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.raw
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
    }

    pub fn keys(&self) -> Vec<&str> {
        self.raw
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k))
            .collect()
    }

    /// Only progress: STATUS= updates (they come periodically) and
    /// EXTEND_TIMEOUT_USEC= (while start-up or stop takes long). They are
    /// not part of the state sequence.
    pub fn status_only(&self) -> bool {
        self.keys()
            .iter()
            .all(|k| matches!(*k, "STATUS" | "EXTEND_TIMEOUT_USEC"))
    }
}

/// A notify socket of our own, as `$NOTIFY_SOCKET`.
pub struct Notifier {
    sock: UnixDatagram,
    pub path: PathBuf,
    /// Every message received so far.
    pub got: Vec<Msg>,
}

impl Notifier {
    pub fn bind(dir: &Path) -> Notifier {
        let path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("bind notify socket");
        nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::PassCred, &true)
            .expect("SO_PASSCRED on notify socket");
        Notifier {
            sock,
            path,
            got: Vec::new(),
        }
    }

    /// Receive one message, or None at the deadline.
    pub fn recv(&mut self, deadline: Instant) -> Option<Msg> {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixCredentials};
        let left = deadline.checked_duration_since(Instant::now())?;
        self.sock
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok()?;
        let mut buf = [0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!(UnixCredentials);
        let (n, pid) = {
            let msg = recvmsg::<()>(
                self.sock.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::empty(),
            )
            .ok()?;
            let mut pid = None;
            if let Ok(cmsgs) = msg.cmsgs() {
                for c in cmsgs {
                    if let ControlMessageOwned::ScmCredentials(cred) = c {
                        pid = Some(cred.pid());
                    }
                }
            }
            (msg.bytes, pid)
        };
        let m = Msg {
            at: Instant::now(),
            pid,
            raw: String::from_utf8_lossy(&buf[..n]).into_owned(),
        };
        self.got.push(m.clone());
        Some(m)
    }

    /// Receive until a message satisfies `pred`; panic at the deadline with
    /// everything received so far.
    pub fn wait(&mut self, what: &str, timeout: Duration, pred: impl Fn(&Msg) -> bool) -> Msg {
        let deadline = Instant::now() + timeout;
        loop {
            match self.recv(deadline) {
                Some(m) if pred(&m) => return m,
                Some(_) => {}
                None => panic!(
                    "no sd_notify message {what} within {timeout:?}; received: {:#?}",
                    self.raws()
                ),
            }
        }
    }

    pub fn raws(&self) -> Vec<&str> {
        self.got.iter().map(|m| m.raw.as_str()).collect()
    }

    /// The messages that are not plain STATUS= updates, in order.
    pub fn states(&self) -> Vec<&Msg> {
        self.got.iter().filter(|m| !m.status_only()).collect()
    }
}

/// corral started by `systemd-socket-activate` on a loopback port, with
/// `NOTIFY_SOCKET` pointing at our own socket. The process group is ours
/// and is killed by its id when this is dropped.
pub struct Activated {
    pub child: Child,
    pub addr: SocketAddr,
    pub notify: Notifier,
    pub dir: tempfile::TempDir,
    log: PathBuf,
}

impl Activated {
    /// `env` goes to corral's environment; `args` come before the app.
    pub fn start(app: &str, args: &[&str], env: &[(&str, String)]) -> Activated {
        Self::start_named(app, args, env, None)
    }

    /// As [`Activated::start`], with the socket named as a `.socket` unit
    /// names it (`LISTEN_FDNAMES`).
    pub fn start_named(
        app: &str,
        args: &[&str],
        env: &[(&str, String)],
        fdname: Option<&str>,
    ) -> Activated {
        let dir = tempfile::Builder::new()
            .prefix("corral-sdtest-")
            .tempdir()
            .expect("temp dir");
        let notify = Notifier::bind(dir.path());
        let marks = dir.path().join("marks");
        std::fs::create_dir(&marks).expect("markers dir");
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let log = dir.path().join("corral.log");
        let out = std::fs::File::create(&log).expect("log file");
        // systemd-socket-activate execs corral in place, so `$$` is the pid
        // corral will have: that is what WATCHDOG_PID must name.
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(r#"a=$1; shift; exec systemd-socket-activate -l "$a" -E "WATCHDOG_PID=$$" "$@""#)
            .arg("sh")
            .arg(addr.to_string());
        let mut pass = vec![
            (
                "NOTIFY_SOCKET".to_string(),
                notify.path.display().to_string(),
            ),
            ("PATH".to_string(), "/usr/bin:/bin".to_string()),
        ];
        pass.push(("CORRAL_TEST_MARKERS".into(), marks.display().to_string()));
        pass.extend(env.iter().map(|(k, v)| (k.to_string(), v.clone())));
        for (k, v) in &pass {
            cmd.arg("-E").arg(format!("{k}={v}"));
        }
        if let Some(name) = fdname {
            cmd.arg(format!("--fdname={name}"));
        }
        cmd.arg(corral())
            .arg("--chdir")
            .arg(apps_dir())
            .args(args)
            .arg(app)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0);
        let child = cmd.spawn().expect("cannot run systemd-socket-activate");
        Activated {
            child,
            addr,
            notify,
            dir,
            log,
        }
    }

    /// Where app.py leaves its markers.
    pub fn marks(&self) -> PathBuf {
        self.dir.path().join("marks")
    }

    /// corral's pid (systemd-socket-activate exec'd it in place).
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Open one connection so systemd-socket-activate launches corral.
    pub fn trigger(&self) {
        wait_for(
            "systemd-socket-activate to listen",
            Duration::from_secs(10),
            || TcpStream::connect(self.addr).ok(),
        );
    }

    /// Worker pids: the master's children.
    pub fn workers(&self) -> Vec<i32> {
        children(self.pid())
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).expect("signal corral");
    }

    /// Wait for corral to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let what = format!("corral (pid {}) to exit", self.pid());
        let child = &mut self.child;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for(&what, timeout, || child.try_wait().ok().flatten())
        }));
        r.unwrap_or_else(|_| panic!("{what}: timed out\nlog:\n{}", self.log()))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Activated {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            // The group we created at spawn: corral and its workers.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(self.pid()),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = self.child.wait();
        }
    }
}

/// Children of a process, from /proc.
pub fn children(pid: i32) -> Vec<i32> {
    let mut out: Vec<i32> = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    out.sort();
    out
}

/// CLOCK_MONOTONIC in microseconds, as systemd's MONOTONIC_USEC counts.
pub fn monotonic_usec() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("clock");
    t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000
}
