//! A load generator that counts every failure, shared by the test binaries
//! that put corral through restarts (the integration tests, and the systemd
//! end-to-end tests).
//!
//! Some clients open a fresh connection for every request; others reuse a
//! kept-alive connection back to back for as long as the server keeps it.
//! A request counts as served only when its whole `200` response arrived
//! (as long as its `Content-Length` says); a refused connection, a reset,
//! a connection closed with no response or a short body is a loss. Zero
//! means zero. Responses are read by the shared client (`client`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::client::{request_bytes, Conn};

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
            None => match Conn::open(addr, REQUEST_TIMEOUT) {
                Ok(c) => c,
                Err(e) => {
                    shared.record(started, Err(format!("{path}: connect: {e}")));
                    // Refused: do not spin.
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
            },
        };
        match get(&mut c, &path, reuse) {
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

/// Sends `GET path` on `c`; the status and whether the server keeps the
/// connection open. The apps under load always send Content-Length, so a
/// response without one is broken, not served.
fn get(c: &mut Conn, path: &str, keep: bool) -> Result<(u16, bool), String> {
    let headers: &[(&str, &str)] = if keep {
        &[("Host", "load")]
    } else {
        &[("Host", "load"), ("Connection", "close")]
    };
    c.send(&request_bytes("GET", path, headers, b""))
        .map_err(|e| format!("send: {e}"))?;
    let resp = c.read_final(false)?;
    if resp.header("Content-Length").is_none() {
        return Err(format!(
            "no Content-Length in {} {:?}",
            resp.status, resp.headers
        ));
    }
    Ok((resp.status, !resp.has_token("Connection", "close")))
}
