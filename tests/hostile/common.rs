//! Harness for the hostile tests: start corral on an ephemeral loopback
//! port, wait for READY=1 on a private NOTIFY_SOCKET, talk raw HTTP with
//! bounded timeouts, and look at the process tree through /proc.

#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Heavy tests (many sockets, load loops, a server each) take this lock so
/// they never run at the same time on the 2-core CI machine.
pub fn heavy() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "corral-hostile-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn apps_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile/apps")
}

/// A running corral master and what it logged.
pub struct Server {
    child: Child,
    pub pid: i32,
    pub port: u16,
    log: Arc<Mutex<Vec<String>>>,
    notify: crate::notify::Notifications,
    /// Datagrams already consumed by [`Server::wait_ready`].
    notify_read: usize,
    pub dir: TempDir,
}

impl Server {
    /// Start `corral -b 127.0.0.1:0 --chdir tests/hostile/apps ARGS` and
    /// wait (bounded) for READY=1. `args` must include the app.
    pub fn start(args: &[&str]) -> Server {
        Self::start_with(args, |_| {})
    }

    pub fn start_with(args: &[&str], tweak: impl FnOnce(&mut Command)) -> Server {
        Self::start_at(&apps_dir(), args, tweak)
    }

    /// Like [`Server::start`] with the app loaded from `chdir`.
    pub fn start_at(chdir: &Path, args: &[&str], tweak: impl FnOnce(&mut Command)) -> Server {
        Self::start_program(crate::installed::corral(), chdir, args, tweak)
    }

    /// Like [`Server::start_at`] with another installation's `corral`.
    pub fn start_program(
        program: &str,
        chdir: &Path,
        args: &[&str],
        tweak: impl FnOnce(&mut Command),
    ) -> Server {
        let dir = TempDir::new("srv");
        let sock_path = dir.0.join("notify.sock");
        let notify = crate::notify::Notifications::listen(&sock_path);
        let mut cmd = Command::new(program);
        cmd.arg("--chdir")
            .arg(chdir)
            .args(args)
            .env("NOTIFY_SOCKET", &sock_path)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if !args.iter().any(|a| *a == "-b" || a.starts_with("--bind")) {
            cmd.args(["-b", "127.0.0.1:0"]);
        }
        tweak(&mut cmd);
        let mut child = cmd.spawn().expect("spawn corral");
        let pid = child.id() as i32;
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("CORRAL_TEST_ECHO").is_some() {
                    eprintln!("[corral] {line}");
                }
                sink.lock().unwrap().push(line);
            }
        });
        let mut srv = Server {
            child,
            pid,
            port: 0,
            log,
            notify,
            notify_read: 0,
            dir,
        };
        srv.wait_ready(Duration::from_secs(60));
        let line = srv
            .wait_log("Listening at: http://127.0.0.1:", Duration::from_secs(5))
            .expect("no 'Listening at' line");
        let rest = line
            .split("Listening at: http://127.0.0.1:")
            .nth(1)
            .unwrap();
        srv.port = rest
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .expect("port in Listening line");
        srv
    }

    /// Wait for the next READY=1 datagram.
    pub fn wait_ready(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("corral exited during startup ({st}):\n{}", self.log_text());
            }
            let slice = Duration::from_millis(200);
            if let Some(i) = self
                .notify
                .wait_from(self.notify_read, slice, crate::notify::is_ready)
            {
                self.notify_read = i + 1;
                return;
            }
        }
        panic!(
            "no READY=1 within {limit:?} (datagrams: {:?}); log:\n{}",
            self.notify.all(),
            self.log_text()
        );
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn log_count(&self, needle: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// First log line containing `needle`, waiting up to `limit`.
    pub fn wait_log(&self, needle: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(l) = self.log.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return Some(l.clone());
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn workers(&self) -> Vec<i32> {
        children_of(self.pid)
    }

    /// Wait until the master has exactly `n` live (non-zombie) workers.
    pub fn wait_workers(&self, n: usize, limit: Duration) -> Vec<i32> {
        let deadline = Instant::now() + limit;
        loop {
            let w: Vec<i32> = self
                .workers()
                .into_iter()
                .filter(|&p| proc_state(p) != Some('Z'))
                .collect();
            if w.len() == n {
                return w;
            }
            if Instant::now() >= deadline {
                panic!(
                    "expected {n} workers, have {w:?} after {limit:?}; log tail:\n{}",
                    tail(&self.log_text(), 30)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), sig).expect("signal master");
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM and wait (bounded); returns whether it exited in time.
    pub fn stop(&mut self) -> bool {
        if !self.alive() {
            return true;
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(35);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.alive() {
            for w in self.workers() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(w),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// (state, ppid) from /proc/PID/stat.
pub fn proc_stat(pid: i32) -> Option<(char, i32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    let mut it = after.split(' ');
    let state = it.next()?.chars().next()?;
    let ppid = it.next()?.parse().ok()?;
    Some((state, ppid))
}

pub fn proc_state(pid: i32) -> Option<char> {
    proc_stat(pid).map(|s| s.0)
}

/// Processes whose parent is `pid` (zombies included).
pub fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if proc_stat(p).is_some_and(|(_, pp)| pp == pid) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A `/proc/PID/status` field's first number (e.g. VmRSS in kB, Uid).
pub fn status_field(pid: i32, field: &str) -> Option<Vec<u64>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(&format!("{field}:")))?;
    Some(
        line[field.len() + 1..]
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect(),
    )
}

pub fn rss_kib(pid: i32) -> Option<u64> {
    status_field(pid, "VmRSS").and_then(|v| v.first().copied())
}

pub fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub fn connect(port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Read one response (Content-Length, chunked, or to EOF).
pub fn read_response(s: &mut impl Read) -> io::Result<Resp> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("EOF in response head after {} bytes", buf.len()),
            ));
        }
        buf.push(byte[0]);
        if buf.len() > 64 * 1024 {
            return Err(io::Error::other("response head too large"));
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            Some((n.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let mut resp = Resp {
        status,
        headers,
        body: Vec::new(),
    };
    if status == 100 {
        return read_response(s);
    }
    if let Some(cl) = resp.header("content-length") {
        let n: usize = cl
            .parse()
            .map_err(|_| io::Error::other("bad content-length"))?;
        let mut body = vec![0u8; n];
        s.read_exact(&mut body)?;
        resp.body = body;
    } else if resp
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut line = Vec::new();
            while !line.ends_with(b"\r\n") {
                if s.read(&mut byte)? == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "EOF in chunk"));
                }
                line.push(byte[0]);
            }
            let size = usize::from_str_radix(
                String::from_utf8_lossy(&line)
                    .trim()
                    .split(';')
                    .next()
                    .unwrap_or(""),
                16,
            )
            .map_err(|_| io::Error::other("bad chunk size"))?;
            if size == 0 {
                let mut crlf = [0u8; 2];
                s.read_exact(&mut crlf)?;
                break;
            }
            let mut chunk = vec![0u8; size + 2];
            s.read_exact(&mut chunk)?;
            chunk.truncate(size);
            resp.body.extend_from_slice(&chunk);
        }
    } else {
        s.read_to_end(&mut resp.body)?;
    }
    Ok(resp)
}

/// One request on a fresh connection, answer read with `timeout`.
pub fn request(port: u16, raw: &[u8], timeout: Duration) -> io::Result<Resp> {
    let mut s = connect(port, timeout)?;
    s.write_all(raw)?;
    let r = read_response(&mut s);
    let _ = s.shutdown(Shutdown::Both);
    r
}

pub fn get(port: u16, path: &str, timeout: Duration) -> io::Result<Resp> {
    request(
        port,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        timeout,
    )
}

/// Wait until a TCP port answers an HTTP request with some status.
pub fn wait_serving(port: u16, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        if get(port, "/echo?id=probe", Duration::from_secs(2)).is_ok_and(|r| r.status == 200) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "port {port} not serving in {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Percentile (0..=100) of a sample, in the sample's unit.
pub fn percentile(samples: &[Duration], p: usize) -> Duration {
    let mut v = samples.to_vec();
    v.sort();
    if v.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((v.len() * p).div_ceil(100))
        .saturating_sub(1)
        .min(v.len() - 1);
    v[idx]
}

/// Raise the soft RLIMIT_NOFILE of this test process to its hard limit.
pub fn raise_nofile(want: u64) -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let target = want.min(hard).max(soft);
    let _ = setrlimit(Resource::RLIMIT_NOFILE, target, hard);
    getrlimit(Resource::RLIMIT_NOFILE).unwrap().0
}
