//! A load generator that counts every failure, shared by the test binaries
//! that put corral through restarts (the integration tests, and the systemd
//! end-to-end tests).
//!
//! Some clients open a fresh connection for every request; others reuse a
//! kept-alive connection back to back for as long as the server keeps it.
//! Uploading clients (see [`Load::with_uploads`]) send bodies instead,
//! from under a kilobyte to over a megabyte, framed by `Content-Length`
//! or chunked, some with `Expect: 100-continue`, and check that the echo
//! app returns every byte. A request counts as served only when its whole
//! `200` response arrived (as long as its `Content-Length` says, or an
//! upload's echo in full); a refused connection, a reset, a connection
//! closed with no response, a short body or a wrong echo is a loss. Zero
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
    /// Of `ok`, uploads whose body came back whole.
    pub uploads: u64,
    pub lost: u64,
    /// The first few failures, described.
    pub failures: Vec<String>,
    /// The longest any request took, failures included.
    pub slowest: Duration,
}

impl Tally {
    pub fn summary(&self) -> String {
        format!(
            "lost {} of {} ({} uploads served; slowest {:.2?}){}",
            self.lost,
            self.ok + self.lost,
            self.uploads,
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
    fn record(&self, started: Instant, upload: bool, outcome: Result<(), String>) {
        let took = started.elapsed();
        let mut t = self.tally.lock().unwrap();
        t.slowest = t.slowest.max(took);
        match outcome {
            Ok(()) => {
                t.ok += 1;
                t.uploads += u64::from(upload);
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
        Load::with_uploads(addr, fresh, kept, 0)
    }

    /// As [`Load::start`], plus `uploading` clients that POST bodies to
    /// `/echo` (every other one on a kept-alive connection). The app must
    /// echo them: `echo:app` (the body in its JSON) or `asgi_raw:app`
    /// (the body itself).
    pub fn with_uploads(addr: SocketAddr, fresh: usize, kept: usize, uploading: usize) -> Load {
        let shared = Arc::new(Shared::default());
        let mut threads = Vec::new();
        for c in 0..fresh + kept + uploading {
            let shared = Arc::clone(&shared);
            let kind = if c < fresh {
                Kind::Get { reuse: false }
            } else if c < fresh + kept {
                Kind::Get { reuse: true }
            } else {
                Kind::Upload {
                    reuse: (c - fresh - kept) % 2 == 1,
                }
            };
            threads.push(std::thread::spawn(move || client(addr, c, kind, &shared)));
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

#[derive(Clone, Copy)]
enum Kind {
    Get { reuse: bool },
    Upload { reuse: bool },
}

fn client(addr: SocketAddr, id: usize, kind: Kind, shared: &Shared) {
    let (reuse, uploading) = match kind {
        Kind::Get { reuse } => (reuse, false),
        Kind::Upload { reuse } => (reuse, true),
    };
    let mut conn: Option<Conn> = None;
    let mut n = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        n += 1;
        let path = match kind {
            Kind::Get { .. } => format!("/?load={id}.{n}"),
            Kind::Upload { .. } => format!("/echo?load={id}.{n}"),
        };
        let started = Instant::now();
        let mut c = match conn.take() {
            Some(c) => c,
            None => match Conn::open(addr, REQUEST_TIMEOUT) {
                Ok(c) => c,
                Err(e) => {
                    shared.record(started, uploading, Err(format!("{path}: connect: {e}")));
                    // Refused: do not spin.
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
            },
        };
        let outcome = match kind {
            Kind::Get { .. } => get(&mut c, &path, reuse),
            Kind::Upload { .. } => upload(&mut c, &path, reuse, n),
        };
        match outcome {
            Ok((200, keep)) => {
                shared.record(started, uploading, Ok(()));
                if reuse && keep {
                    conn = Some(c);
                }
            }
            Ok((status, _)) => {
                shared.record(started, uploading, Err(format!("{path}: status {status}")))
            }
            Err(e) => shared.record(started, uploading, Err(format!("{path}: {e}"))),
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

/// The sizes uploads cycle through: within one read, a few reads, a body
/// read in many, and one past the 1 MiB a worker keeps in memory (spilled
/// to a temporary file).
const UPLOAD_SIZES: [usize; 4] = [700, 40_000, 300_000, 1_200_000];

/// POSTs the `n`th body of a client to `path` and checks the echo. The
/// body is ASCII and names the request, so an answer meant for another
/// request, or bytes lost or reordered, do not pass. Every third body is
/// chunked; every fifth asks for `100 Continue` (and is sent at once, as
/// clients that do not wait may).
fn upload(c: &mut Conn, path: &str, keep: bool, n: u64) -> Result<(u16, bool), String> {
    let size = UPLOAD_SIZES[(n as usize) % UPLOAD_SIZES.len()];
    let body: Vec<u8> = format!("{path}|")
        .into_bytes()
        .into_iter()
        .cycle()
        .take(size)
        .collect();
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: load\r\nContent-Type: text/plain\r\n");
    if !keep {
        head.push_str("Connection: close\r\n");
    }
    if n % 5 == 2 {
        head.push_str("Expect: 100-continue\r\n");
    }
    let mut raw = if n % 3 == 1 {
        head.push_str("Transfer-Encoding: chunked\r\n\r\n");
        let mut raw = head.into_bytes();
        for piece in body.chunks(16 * 1024) {
            raw.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            raw.extend_from_slice(piece);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"0\r\n\r\n");
        raw
    } else {
        head.push_str(&format!("Content-Length: {size}\r\n\r\n"));
        head.into_bytes()
    };
    if n % 3 != 1 {
        raw.extend_from_slice(&body);
    }
    c.send(&raw).map_err(|e| format!("send: {e}"))?;
    let resp = c.read_final(false)?;
    if resp.status == 200 {
        let echoed = if resp
            .header("Content-Type")
            .is_some_and(|t| t.starts_with("application/json"))
        {
            let json =
                serde_json::from_slice(&resp.body).map_err(|e| format!("echo is not JSON: {e}"))?;
            crate::client::echoed_body(&json)
        } else {
            resp.body.clone()
        };
        if echoed != body {
            return Err(format!(
                "echo of a {size}-byte body came back as {} bytes{}",
                echoed.len(),
                match echoed.iter().zip(&body).position(|(a, b)| a != b) {
                    Some(i) => format!(", first difference at byte {i}"),
                    None => String::new(),
                }
            ));
        }
    }
    Ok((resp.status, !resp.has_token("Connection", "close")))
}
