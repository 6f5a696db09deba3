//! Prometheus metrics (`--metrics-bind`): what each worker counts, where
//! it keeps the counts, and the text the master serves on `/metrics`.
//!
//! Each worker counts into its own [`Tally`], a block of words in memory
//! shared with the master (mapped before fork, like the heartbeat page): a
//! request costs a few uncontended atomic adds and no system call. The
//! master adds the live workers' tallies at each scrape. When a worker
//! exits, the master adds its tally into [`Totals`] before dropping the
//! mapping, so no counter ever goes backwards because a worker died, was
//! recycled or was killed. Only a new master (a restart, or USR2) starts
//! from zero, which Prometheus reads as the counter reset it is.
//!
//! The master's own facts (workers by state, restarts by reason, reloads)
//! never leave the master; they arrive in [`render`] as a [`MasterView`].

use std::fmt::Write as _;
use std::time::Duration;

use crate::sys::shm::SharedWords;

/// Methods counted by name; every other method is counted as `other`
/// (request methods are client input: a label per spelling would let any
/// client create series without bound).
pub const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other",
];

/// Status codes 100..=599 each have a slot; anything else is `other`.
const FIRST_CODE: u16 = 100;
const CODES: usize = 500;
const CODE_SLOTS: usize = CODES + 1;

/// Upper bounds of the latency histograms' buckets, in microseconds:
/// Prometheus's defaults, with 1 ms and 2.5 ms below for a fast app and
/// 30 s and 60 s above for a slow one.
const BOUNDS_US: [u64; 15] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000, 30_000_000, 60_000_000,
];
/// A histogram's words: one per bucket (not cumulative), +Inf, and the sum
/// in microseconds.
const HISTOGRAM: usize = BOUNDS_US.len() + 2;

const REQUESTS: usize = 0;
const DURATION: usize = REQUESTS + METHODS.len() * CODE_SLOTS;
const QUEUE: usize = DURATION + HISTOGRAM;
/// Single counters, in [`Counter`] order.
const COUNTERS: usize = QUEUE + HISTOGRAM;
/// The gauge, which is not summed into [`Totals`] when a worker exits.
const IN_FLIGHT: usize = COUNTERS + Counter::ALL.len();
const WORDS: usize = IN_FLIGHT + 1;

/// Events a worker counts besides requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// A connection closed because its client did not send the request
    /// head or body in time (`--header-timeout`, `--body-timeout`), or
    /// closed to make room at `--worker-connections`.
    SlowClient,
    /// A request answered 503 after waiting `--queue-timeout` for a thread.
    Shed,
    /// A request answered 504 because it ran past `--timeout`.
    Timeout,
}

impl Counter {
    const ALL: [Counter; 3] = [Counter::SlowClient, Counter::Shed, Counter::Timeout];

    fn word(self) -> usize {
        COUNTERS + self as usize
    }
}

/// A request method as counted: its slot in [`METHODS`]. Taken when the
/// request is dispatched, so the worker keeps a byte, not the string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Method(u8);

impl Method {
    pub fn of(method: &str) -> Self {
        let i = METHODS[..METHODS.len() - 1]
            .iter()
            .position(|m| *m == method)
            .unwrap_or(METHODS.len() - 1);
        Method(i as u8)
    }

    fn index(self) -> usize {
        self.0 as usize
    }
}

fn code_index(code: u16) -> usize {
    match code.checked_sub(FIRST_CODE) {
        Some(i) if (i as usize) < CODES => i as usize,
        _ => CODES,
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// One worker's counts, in memory the master reads.
pub struct Tally {
    words: SharedWords,
}

impl Tally {
    /// A zeroed tally; create it before fork so both sides share it.
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            words: SharedWords::new(WORDS)?,
        })
    }

    /// A request the app answered with `code` after `took`.
    pub fn request(&self, method: Method, code: u16, took: Duration) {
        self.answered(method, code);
        self.observe(DURATION, took);
    }

    /// A request answered with `code` without the app (a 503 shed, a 504
    /// timeout): counted, but not in the app's latency.
    pub fn answered(&self, method: Method, code: u16) {
        let slot = REQUESTS + method.index() * CODE_SLOTS + code_index(code);
        self.words.fetch_add(slot, 1);
    }

    /// How long a request waited for a Python thread.
    pub fn queue_wait(&self, waited: Duration) {
        self.observe(QUEUE, waited);
    }

    pub fn count(&self, c: Counter) {
        self.words.fetch_add(c.word(), 1);
    }

    /// Requests handed to Python threads and not finished.
    pub fn set_in_flight(&self, n: usize) {
        self.words.store(IN_FLIGHT, n as u64);
    }

    fn observe(&self, histogram: usize, d: Duration) {
        let us = micros(d);
        let bucket = BOUNDS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(BOUNDS_US.len());
        self.words.fetch_add(histogram + bucket, 1);
        self.words.fetch_add(histogram + HISTOGRAM - 1, us);
    }
}

/// Counts summed over workers: the exited ones (kept by the master), and
/// for a scrape, the live ones added in.
#[derive(Clone)]
pub struct Totals {
    words: Vec<u64>,
}

impl Default for Totals {
    fn default() -> Self {
        Self {
            words: vec![0; WORDS],
        }
    }
}

impl Totals {
    /// Add a worker's counters (and, when `live`, its in-flight gauge: a
    /// worker that exited has nothing in flight).
    pub fn add(&mut self, t: &Tally, live: bool) {
        for (i, w) in self.words.iter_mut().enumerate().take(IN_FLIGHT) {
            *w = w.wrapping_add(t.words.load(i));
        }
        if live {
            self.words[IN_FLIGHT] += t.words.load(IN_FLIGHT);
        }
    }

    /// Requests answered with `code` for `method` (as labelled).
    pub fn requests(&self, method: &str, code: u16) -> u64 {
        self.words[REQUESTS + Method::of(method).index() * CODE_SLOTS + code_index(code)]
    }
}

/// Workers by state, as the master sees them.
#[derive(Debug, Default, Clone, Copy)]
pub struct WorkerStates {
    /// Forked, importing the app.
    pub booting: u64,
    /// Serving, no request in the app.
    pub idle: u64,
    /// Serving, at least one request in the app.
    pub busy: u64,
    /// Told to stop, finishing what it holds.
    pub retiring: u64,
}

/// Why the master replaced a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// It served `--max-requests`.
    Recycle,
    /// It grew past `--max-worker-memory`.
    Memory,
    /// A request (or its event loop) ran past `--timeout`.
    Timeout,
    /// It died unasked.
    Crash,
    /// `worker kill` on the control socket.
    Control,
}

impl Restart {
    pub const ALL: [Restart; 5] = [
        Restart::Recycle,
        Restart::Memory,
        Restart::Timeout,
        Restart::Crash,
        Restart::Control,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Restart::Recycle => "recycle",
            Restart::Memory => "memory",
            Restart::Timeout => "timeout",
            Restart::Crash => "crash",
            Restart::Control => "control",
        }
    }
}

/// What only the master knows.
#[derive(Debug, Default, Clone)]
pub struct MasterView {
    pub workers: WorkerStates,
    /// Indexed like [`Restart::ALL`].
    pub restarts: [u64; 5],
    pub reloads: u64,
    /// When the master started, in seconds since the epoch.
    pub start_time: f64,
}

/// Every metric family [`render`] writes, with its type: the reference for
/// docs/operations.md and the Grafana dashboard in contrib/.
pub const FAMILIES: [(&str, &str); 12] = [
    ("corral_requests_total", "counter"),
    ("corral_request_duration_seconds", "histogram"),
    ("corral_request_queue_seconds", "histogram"),
    ("corral_requests_in_flight", "gauge"),
    ("corral_request_timeouts_total", "counter"),
    ("corral_requests_shed_total", "counter"),
    ("corral_slow_client_evictions_total", "counter"),
    ("corral_workers", "gauge"),
    ("corral_worker_restarts_total", "counter"),
    ("corral_reloads_total", "counter"),
    ("corral_build_info", "gauge"),
    ("process_start_time_seconds", "gauge"),
];

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn histogram(out: &mut String, name: &str, help: &str, words: &[u64]) {
    head(out, name, "histogram", help);
    let mut seen = 0u64;
    for (i, b) in BOUNDS_US.iter().enumerate() {
        seen += words[i];
        let le = *b as f64 / 1e6;
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {seen}");
    }
    seen += words[BOUNDS_US.len()];
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {seen}");
    let sum = words[HISTOGRAM - 1] as f64 / 1e6;
    let _ = writeln!(out, "{name}_sum {sum}");
    let _ = writeln!(out, "{name}_count {seen}");
}

/// The text exposition format (version 0.0.4) of everything.
pub fn render(t: &Totals, m: &MasterView) -> String {
    let w = &t.words;
    let mut out = String::with_capacity(4096);
    head(
        &mut out,
        "corral_requests_total",
        "counter",
        "Requests answered, by method and status code.",
    );
    for (mi, method) in METHODS.iter().enumerate() {
        for ci in 0..CODE_SLOTS {
            let n = w[REQUESTS + mi * CODE_SLOTS + ci];
            if n == 0 {
                continue;
            }
            let code = if ci == CODES {
                "other".to_string()
            } else {
                (FIRST_CODE as usize + ci).to_string()
            };
            let _ = writeln!(
                out,
                "corral_requests_total{{method=\"{method}\",code=\"{code}\"}} {n}"
            );
        }
    }
    histogram(
        &mut out,
        "corral_request_duration_seconds",
        "Time the app took to answer, from a Python thread taking the request to the app returning.",
        &w[DURATION..DURATION + HISTOGRAM],
    );
    histogram(
        &mut out,
        "corral_request_queue_seconds",
        "Time a complete request waited for a free Python thread.",
        &w[QUEUE..QUEUE + HISTOGRAM],
    );
    let single = [
        (
            "corral_requests_in_flight",
            "gauge",
            "Requests handed to Python threads and not yet answered.",
            w[IN_FLIGHT],
        ),
        (
            "corral_request_timeouts_total",
            "counter",
            "Requests answered 504 because they ran past --timeout.",
            w[Counter::Timeout.word()],
        ),
        (
            "corral_requests_shed_total",
            "counter",
            "Requests answered 503 after waiting --queue-timeout for a Python thread.",
            w[Counter::Shed.word()],
        ),
        (
            "corral_slow_client_evictions_total",
            "counter",
            "Connections closed because the client was too slow to send its request, \
             or to make room at --worker-connections.",
            w[Counter::SlowClient.word()],
        ),
    ];
    for (name, kind, help, v) in single {
        head(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {v}");
    }
    head(
        &mut out,
        "corral_workers",
        "gauge",
        "Worker processes by state.",
    );
    let s = m.workers;
    for (state, n) in [
        ("booting", s.booting),
        ("idle", s.idle),
        ("busy", s.busy),
        ("retiring", s.retiring),
    ] {
        let _ = writeln!(out, "corral_workers{{state=\"{state}\"}} {n}");
    }
    head(
        &mut out,
        "corral_worker_restarts_total",
        "counter",
        "Workers the master replaced, by reason.",
    );
    for (r, n) in Restart::ALL.iter().zip(m.restarts) {
        let _ = writeln!(
            out,
            "corral_worker_restarts_total{{reason=\"{}\"}} {n}",
            r.label()
        );
    }
    head(
        &mut out,
        "corral_reloads_total",
        "counter",
        "Reloads (HUP, the control socket, --reload) this master started.",
    );
    let _ = writeln!(out, "corral_reloads_total {}", m.reloads);
    head(
        &mut out,
        "corral_build_info",
        "gauge",
        "The running corral's version; always 1.",
    );
    let _ = writeln!(
        out,
        "corral_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    head(
        &mut out,
        "process_start_time_seconds",
        "gauge",
        "When the master started, in seconds since the Unix epoch.",
    );
    let _ = writeln!(out, "process_start_time_seconds {}", m.start_time);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines()
            .find(|l| l.starts_with(prefix) && l[prefix.len()..].starts_with(' '))
            .map(|l| &l[prefix.len() + 1..])
    }

    #[test]
    fn requests_land_under_their_method_and_code() {
        let t = Tally::new().unwrap();
        let m = Method::of;
        t.request(m("GET"), 200, Duration::from_micros(800));
        t.request(m("GET"), 200, Duration::from_millis(3));
        t.request(m("BREW"), 418, Duration::from_secs(2));
        t.request(m("POST"), 999, Duration::from_secs(100));
        t.answered(m("GET"), 503);
        let mut sum = Totals::default();
        sum.add(&t, true);
        assert_eq!(sum.requests("GET", 200), 2);
        assert_eq!(sum.requests("other", 418), 1);
        assert_eq!(sum.requests("GET", 503), 1);
        let text = render(&sum, &MasterView::default());
        assert_eq!(
            line(&text, "corral_requests_total{method=\"GET\",code=\"200\"}"),
            Some("2")
        );
        assert_eq!(
            line(
                &text,
                "corral_requests_total{method=\"other\",code=\"418\"}"
            ),
            Some("1")
        );
        assert_eq!(
            line(
                &text,
                "corral_requests_total{method=\"POST\",code=\"other\"}"
            ),
            Some("1")
        );
        // Buckets are cumulative; the sum is in seconds.
        let b = |le: &str| {
            line(
                &text,
                &format!("corral_request_duration_seconds_bucket{{le=\"{le}\"}}"),
            )
        };
        assert_eq!(b("0.001"), Some("1"));
        assert_eq!(b("0.005"), Some("2"));
        assert_eq!(b("2.5"), Some("3"));
        assert_eq!(b("60"), Some("3"));
        assert_eq!(b("+Inf"), Some("4"));
        assert_eq!(
            line(&text, "corral_request_duration_seconds_count"),
            Some("4")
        );
        assert_eq!(
            line(&text, "corral_request_duration_seconds_sum"),
            Some("102.0038")
        );
    }

    #[test]
    fn an_exited_worker_keeps_its_counts_but_not_its_gauge() {
        let (a, b) = (Tally::new().unwrap(), Tally::new().unwrap());
        a.request(Method::of("GET"), 200, Duration::ZERO);
        a.set_in_flight(3);
        a.count(Counter::Shed);
        b.request(Method::of("GET"), 200, Duration::ZERO);
        b.set_in_flight(1);
        let mut kept = Totals::default();
        kept.add(&a, false);
        drop(a);
        let mut scrape = kept.clone();
        scrape.add(&b, true);
        let text = render(&scrape, &MasterView::default());
        assert_eq!(
            line(&text, "corral_requests_total{method=\"GET\",code=\"200\"}"),
            Some("2")
        );
        assert_eq!(line(&text, "corral_requests_in_flight"), Some("1"));
        assert_eq!(line(&text, "corral_requests_shed_total"), Some("1"));
    }

    #[test]
    fn every_family_is_written_with_its_type() {
        let text = render(&Totals::default(), &MasterView::default());
        for (name, kind) in FAMILIES {
            assert!(
                text.contains(&format!("# TYPE {name} {kind}\n")),
                "{name} missing"
            );
        }
        // Every reason is there from the start, so rate() has a series.
        assert_eq!(
            line(&text, "corral_worker_restarts_total{reason=\"crash\"}"),
            Some("0")
        );
    }

    /// The Grafana dashboard in contrib/ queries only metrics corral
    /// writes (a renamed metric would leave a panel silently empty).
    #[test]
    fn the_dashboard_names_only_metrics_that_exist() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/grafana/corral.json");
        let text = std::fs::read_to_string(path).unwrap();
        let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut exprs = Vec::new();
        for panel in dash["panels"].as_array().unwrap() {
            for t in panel["targets"].as_array().unwrap() {
                exprs.push(t["expr"].as_str().unwrap().to_owned());
            }
        }
        let known = |name: &str| {
            FAMILIES.iter().any(|(f, kind)| {
                name == *f
                    || (*kind == "histogram"
                        && ["_bucket", "_sum", "_count"]
                            .iter()
                            .any(|s| name == format!("{f}{s}")))
            })
        };
        let mut used = 0;
        for e in &exprs {
            let mut rest = e.as_str();
            let next = |r: &str| {
                ["corral_", "process_"]
                    .iter()
                    .filter_map(|p| r.find(p))
                    .min()
            };
            while let Some(at) = next(rest) {
                let word: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    known(&word),
                    "the dashboard queries {word}, which corral does not write"
                );
                used += 1;
                rest = &rest[at + word.len()..];
            }
        }
        assert!(used >= FAMILIES.len(), "only {used} metric references");
        for (f, _) in FAMILIES {
            assert!(text.contains(f), "the dashboard does not show {f}");
        }
    }

    #[test]
    fn a_child_counts_into_the_parents_view() {
        let t = Tally::new().unwrap();
        match crate::sys::process::fork().unwrap() {
            crate::sys::process::Forked::Child => {
                t.request(Method::of("PUT"), 201, Duration::from_millis(1));
                crate::sys::process::exit_now(0);
            }
            crate::sys::process::Forked::Parent(pid) => {
                nix::sys::wait::waitpid(pid, None).unwrap();
                let mut s = Totals::default();
                s.add(&t, false);
                assert_eq!(s.requests("PUT", 201), 1);
            }
        }
    }
}
