//! A load generator that counts every failure, shared by the test binaries
//! that put corral through restarts (the integration tests, and the systemd
//! end-to-end tests).
//!
//! Some clients open a fresh connection for every request; others reuse a
//! kept-alive connection back to back for as long as the server keeps it.
//! A request counts as served only when its whole `200` response arrived
//! (as long as its `Content-Length` says); a refused connection, a reset,
//! a connection closed with no response or a short body is a loss. Zero
//! means zero.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long one request may take before it counts as lost.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// What the clients saw.
#[derive(Debug, Default)]
pub struct Tally {
    pub ok: u64,
    pub lost: u64,
    /// The first few failures, described.
    pub failures: Vec<String>,
    /// The longest any request took, failures included.
    pub slowest: Duration,
}

impl Tally {
    pub fn summary(&self) -> String {
        format!(
            "lost {} of {} (slowest {:.2?}){}",
            self.lost,
            self.ok + self.lost,
            self.slowest,
            if self.failures.is_empty() {
                String::new()
            } else {
                format!("; first failures: {:?}", self.failures)
            }
        )
    }
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    ok: AtomicU64,
    tally: Mutex<Tally>,
}

impl Shared {
    fn record(&self, started: Instant, outcome: Result<(), String>) {
        let took = started.elapsed();
        let mut t = self.tally.lock().unwrap();
        t.slowest = t.slowest.max(took);
        match outcome {
            Ok(()) => {
                t.ok += 1;
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                t.lost += 1;
                if t.failures.len() < 5 {
                    t.failures.push(e);
                }
            }
        }
    }
}

/// Clients hammering one address until [`Load::finish`].
pub struct Load {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    /// `fresh` clients open a connection per request; `kept` clients reuse
    /// one. Returns once the first requests have been answered.
    pub fn start(addr: SocketAddr, fresh: usize, kept: usize) -> Load {
        let shared = Arc::new(Shared::default());
        let mut threads = Vec::new();
        for c in 0..fresh + kept {
            let shared = Arc::clone(&shared);
            let reuse = c >= fresh;
            threads.push(std::thread::spawn(move || client(addr, c, reuse, &shared)));
        }
        let load = Load { shared, threads };
        load.progress(20, Duration::from_secs(30));
        load
    }

    pub fn served(&self) -> u64 {
        self.shared.ok.load(Ordering::Relaxed)
    }

    /// Waits until `n` more requests were served (the server keeps serving
    /// between events); panics after `timeout`.
    pub fn progress(&self, n: u64, timeout: Duration) {
        let target = self.served() + n;
        let deadline = Instant::now() + timeout;
        while self.served() < target {
            if Instant::now() > deadline {
                let t = self.shared.tally.lock().unwrap();
                panic!(
                    "{n} more requests not served within {timeout:?}; {}",
                    t.summary()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn finish(self) -> Tally {
        self.shared.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("load client");
        }
        std::mem::take(&mut *self.shared.tally.lock().unwrap())
    }
}

fn client(addr: SocketAddr, id: usize, reuse: bool, shared: &Shared) {
    let mut conn: Option<Conn> = None;
    let mut n = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        n += 1;
        let path = format!("/?load={id}.{n}");
        let started = Instant::now();
        let mut c = match conn.take() {
            Some(c) => c,
            None => match Conn::open(addr) {
                Ok(c) => c,
                Err(e) => {
                    shared.record(started, Err(format!("{path}: connect: {e}")));
                    // Refused: do not spin.
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
            },
        };
        match c.get(&path, reuse) {
            Ok((200, keep)) => {
                shared.record(started, Ok(()));
                if reuse && keep {
                    conn = Some(c);
                }
            }
            Ok((status, _)) => shared.record(started, Err(format!("{path}: status {status}"))),
            Err(e) => shared.record(started, Err(format!("{path}: {e}"))),
        }
    }
}

/// One client connection, reading responses framed by Content-Length.
struct Conn {
    sock: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn open(addr: SocketAddr) -> std::io::Result<Conn> {
        let sock = TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT)?;
        sock.set_nodelay(true)?;
        sock.set_read_timeout(Some(REQUEST_TIMEOUT))?;
        sock.set_write_timeout(Some(REQUEST_TIMEOUT))?;
        Ok(Conn {
            sock,
            buf: Vec::new(),
        })
    }

    /// Sends `GET path`; the status and whether the server keeps the
    /// connection open.
    fn get(&mut self, path: &str, keep: bool) -> Result<(u16, bool), String> {
        let close = if keep { "" } else { "Connection: close\r\n" };
        write!(
            self.sock,
            "GET {path} HTTP/1.1\r\nHost: load\r\n{close}\r\n"
        )
        .map_err(|e| format!("send: {e}"))?;
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            if !self.fill()? {
                return Err(if self.buf.is_empty() {
                    "connection closed with no response".into()
                } else {
                    "connection closed inside the response head".into()
                });
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 4);
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("bad status line in {head:?}"))?;
        let header = |name: &str| {
            head.lines().skip(1).find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
        };
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no Content-Length in {head:?}"))?;
        while self.buf.len() < length {
            if !self.fill()? {
                return Err(format!("body cut at {} of {length} bytes", self.buf.len()));
            }
        }
        self.buf.drain(..length);
        let closes = header("connection")
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")));
        Ok((status, !closes))
    }

    /// Reads more; false at EOF (a reset counts as one).
    fn fill(&mut self) -> Result<bool, String> {
        let mut chunk = [0u8; 16384];
        match self.sock.read(&mut chunk) {
            Ok(0) => Ok(false),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                Err("connection reset".into())
            }
            Err(e) => Err(format!("read: {e}")),
        }
    }
}
