//! `/metrics` for Prometheus, served by the master (`--metrics-bind`, or
//! systemd's socket named `metrics`): the sum of every worker's tally
//! (`crate::metrics`), what the master counted itself, and the workers'
//! states at the moment of the scrape.
//!
//! The master is single-threaded and must never wait for a scraper, so
//! each connection is a small non-blocking state machine in the master's
//! poll set, as the control socket's clients are: the request head is read
//! (at most 8 KiB, within 10 s), answered once, and the connection closed
//! when the answer is written. The page is built only for a `GET` or `HEAD`
//! of `/metrics`.

use std::os::fd::AsFd;
use std::time::{Duration, Instant, UNIX_EPOCH};

use nix::poll::{PollFd, PollFlags};

use super::nonblock::{read_some, write_some, Input};
use super::{Life, Master, Retire, WorkerProc};
use crate::metrics::{MasterView, Restart, Totals, WorkerStates};
use crate::sys::net::{Listener, Stream};

/// Scrapes served at once; more wait in the backlog.
const MAX_CLIENTS: usize = 16;
/// The longest request head read.
const MAX_HEAD: usize = 8192;
/// A scraper that has not sent its request (or read its answer) by then
/// is dropped.
const DEADLINE: Duration = Duration::from_secs(10);

struct Scrape {
    stream: Stream,
    input: Vec<u8>,
    output: Vec<u8>,
    since: Instant,
    answered: bool,
    broken: bool,
}

impl Scrape {
    /// Failed, or answered in full.
    fn done(&self) -> bool {
        self.broken || (self.answered && self.output.is_empty())
    }
}

/// The metrics socket and its scrapers.
pub struct Exporter {
    listener: Listener,
    clients: Vec<Scrape>,
    accept_after: Instant,
}

impl Exporter {
    pub fn new(listener: Listener) -> std::io::Result<Self> {
        listener.set_nonblocking()?;
        Ok(Self {
            listener,
            clients: Vec::new(),
            accept_after: Instant::now(),
        })
    }

    pub fn listener(&self) -> &Listener {
        &self.listener
    }

    pub fn poll_fds(&self) -> Vec<PollFd<'_>> {
        let mut fds = Vec::with_capacity(self.clients.len() + 1);
        if self.clients.len() < MAX_CLIENTS && Instant::now() >= self.accept_after {
            fds.push(PollFd::new(self.listener.as_fd(), PollFlags::POLLIN));
        }
        for c in &self.clients {
            let flags = if c.answered {
                PollFlags::POLLOUT
            } else {
                PollFlags::POLLIN
            };
            fds.push(PollFd::new(c.stream.as_fd(), flags));
        }
        fds
    }

    /// Accept, read, answer and write what can be done now; `page` makes
    /// the exposition text when a scrape asks for it.
    fn serve(&mut self, now: Instant, mut page: impl FnMut() -> String) {
        while self.clients.len() < MAX_CLIENTS && now >= self.accept_after {
            match self.listener.accept() {
                Ok(Some((stream, _))) => self.clients.push(Scrape {
                    stream,
                    input: Vec::new(),
                    output: Vec::new(),
                    since: now,
                    answered: false,
                    broken: false,
                }),
                Ok(None) => break,
                Err(e) => {
                    // Out of descriptors, say: look again in a second.
                    tracing::warn!("metrics socket: accept failed: {e}");
                    self.accept_after = now + Duration::from_secs(1);
                    break;
                }
            }
        }
        for c in &mut self.clients {
            if !c.answered {
                match read_some(&mut c.stream, &mut c.input, MAX_HEAD) {
                    Input::Open => {}
                    // A client that half-closed after its request still
                    // gets the answer.
                    Input::Eof if !c.input.is_empty() => {}
                    Input::Eof | Input::Broken => c.broken = true,
                }
                if let Some(answer) = answer(&c.input, &mut page) {
                    c.output = answer;
                    c.answered = true;
                }
            }
            if c.answered && !write_some(&mut c.stream, &mut c.output) {
                c.broken = true;
            }
            if now.duration_since(c.since) > DEADLINE {
                c.broken = true;
            }
        }
        self.clients.retain(|c| !c.done());
    }
}

/// The whole response to the request head in `input`, or None while the
/// head is incomplete.
fn answer(input: &[u8], page: &mut impl FnMut() -> String) -> Option<Vec<u8>> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let (status, body, head_only) = match req.parse(input) {
        Ok(httparse::Status::Partial) if input.len() <= MAX_HEAD => return None,
        Ok(httparse::Status::Partial) => {
            ("431 Request Header Fields Too Large", String::new(), false)
        }
        Err(_) => ("400 Bad Request", String::new(), false),
        Ok(httparse::Status::Complete(_)) => {
            let path = req.path.unwrap_or("/");
            let path = path.split('?').next().unwrap_or(path);
            let method = req.method.unwrap_or("");
            match (method, path) {
                ("GET" | "HEAD", "/metrics") => ("200 OK", page(), method == "HEAD"),
                (_, "/metrics") => ("405 Method Not Allowed", String::new(), false),
                _ => (
                    "404 Not Found",
                    "Not found: the metrics are at /metrics\n".to_owned(),
                    method == "HEAD",
                ),
            }
        }
    };
    let kind = if status.starts_with("200") {
        "text/plain; version=0.0.4; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let allow = if status.starts_with("405") {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n{allow}\
         Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    Some(out)
}

/// Why a worker that exited counts as a restart, if it does: the master
/// replaced it for a limit, a timeout or a command, or it died unasked.
/// Reloads, scaling down and stops are not restarts.
fn restart_cause(w: &WorkerProc) -> Option<Restart> {
    if w.aborted.is_some() {
        return Some(Restart::Timeout);
    }
    let why = match w.life {
        Life::Retiring(why) => Some(why),
        _ => w.recycle,
    };
    match why {
        None => Some(Restart::Crash),
        Some(Retire::Recycle) => Some(Restart::Recycle),
        Some(Retire::Memory) => Some(Restart::Memory),
        Some(Retire::Control) => Some(Restart::Control),
        Some(Retire::Reload | Retire::Scale | Retire::Stop) => None,
    }
}

/// What the master keeps for `/metrics`.
#[derive(Default)]
pub struct Books {
    /// The counts of workers that exited.
    kept: Totals,
    /// Indexed like `Restart::ALL`.
    restarts: [u64; 5],
}

impl Master {
    /// A worker exited: keep its counts, and count the restart.
    pub(super) fn book_exit(&mut self, w: &WorkerProc) {
        if let Some(t) = &w.tally {
            self.books.kept.add(t, false);
        }
        if let Some(r) = restart_cause(w) {
            let i = Restart::ALL.iter().position(|x| *x == r).expect("listed");
            self.books.restarts[i] += 1;
        }
    }

    /// Answer scrapers, once this master is the one in charge (a new
    /// master started by USR2 leaves them to the old one until then).
    pub(super) fn serve_metrics(&mut self) {
        if self.upgrade.parent.is_some() {
            return;
        }
        let Some(mut exporter) = self.exporter.take() else {
            return;
        };
        exporter.serve(Instant::now(), || self.metrics_page());
        self.exporter = Some(exporter);
    }

    /// What the poll set should wake for.
    pub(super) fn metrics_poll_fds(&self) -> Vec<PollFd<'_>> {
        match &self.exporter {
            Some(e) if self.upgrade.parent.is_none() => e.poll_fds(),
            _ => Vec::new(),
        }
    }

    fn metrics_page(&self) -> String {
        let mut sum = self.books.kept.clone();
        let mut states = WorkerStates::default();
        for w in self.workers.values() {
            if let Some(t) = &w.tally {
                sum.add(t, true);
            }
            let n = match w.life {
                Life::Booting => &mut states.booting,
                Life::Retiring(_) => &mut states.retiring,
                Life::Serving if w.heartbeat.longest_request_ms().is_some() => &mut states.busy,
                Life::Serving => &mut states.idle,
            };
            *n += 1;
        }
        let view = MasterView {
            workers: states,
            restarts: self.books.restarts,
            reloads: self.counts.reloads,
            start_time: self
                .started_at
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        };
        crate::metrics::render(&sum, &view)
    }
}

#[cfg(test)]
mod tests {
    use super::answer;

    fn text(input: &str) -> Option<String> {
        answer(input.as_bytes(), &mut || "page\n".to_owned()).map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn a_scrape_gets_the_page_and_others_do_not() {
        assert_eq!(text("GET /metrics HTTP/1.1\r\nHost: x"), None);
        let ok = text("GET /metrics?name[]=x HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("version=0.0.4") && ok.ends_with("\r\n\r\npage\n"));
        let head = text("HEAD /metrics HTTP/1.1\r\n\r\n").unwrap();
        assert!(head.contains("Content-Length: 5\r\n") && head.ends_with("\r\n\r\n"));
        let post = text("POST /metrics HTTP/1.1\r\n\r\n").unwrap();
        assert!(post.starts_with("HTTP/1.1 405") && post.contains("Allow: GET, HEAD"));
        assert!(text("GET / HTTP/1.1\r\n\r\n")
            .unwrap()
            .starts_with("HTTP/1.1 404"));
        assert!(text("\x01\x02 nonsense\r\n\r\n")
            .unwrap()
            .starts_with("HTTP/1.1 400"));
        let huge = format!("GET /metrics HTTP/1.1\r\nX: {}", "a".repeat(9000));
        assert!(text(&huge).unwrap().starts_with("HTTP/1.1 431"));
    }
}
