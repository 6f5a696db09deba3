//! Prometheus `/metrics` (`--metrics-bind`): scraped with `requests` and
//! parsed by `prometheus_client`'s own parser, with exact counts — across
//! worker deaths, recycles, reloads, scaling and USR2 — for requests by
//! method and status, timeouts, sheds and slow clients.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::client::{get, loopback, Conn};
use crate::harness::{
    alive, client_script, free_port, run_corral, signal, wait_for, wait_until, Corral, Server,
    EVENT_TIMEOUT,
};

/// One parsed scrape.
struct Page {
    types: BTreeMap<String, String>,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Page {
    /// The sample `name` whose labels include `labels` (0 when absent:
    /// corral writes request counters only once they are non-zero).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<f64> = self
            .samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| *v)
            .collect();
        assert!(found.len() <= 1, "{name} {labels:?} matches {found:?}");
        found.first().copied().unwrap_or(0.0)
    }

    fn requests(&self, method: &str, code: &str) -> f64 {
        self.value(
            "corral_requests_total",
            &[("method", method), ("code", code)],
        )
    }

    fn restarts(&self, reason: &str) -> f64 {
        self.value("corral_worker_restarts_total", &[("reason", reason)])
    }

    fn workers(&self, state: &str) -> f64 {
        self.value("corral_workers", &[("state", state)])
    }

    /// Every `corral_requests_total` series.
    fn all_requests(&self) -> BTreeMap<(String, String), f64> {
        self.samples
            .iter()
            .filter(|(n, _, _)| n == "corral_requests_total")
            .map(|(_, l, v)| ((l["method"].clone(), l["code"].clone()), *v))
            .collect()
    }
}

fn scrape(port: u16) -> Page {
    let out = client_script("prometheus_scrape.py", &[&port.to_string()]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("scrape JSON");
    let types = v["types"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, t)| (k.clone(), t.as_str().unwrap().to_owned()))
        .collect();
    let samples = v["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let labels = s[1]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            (
                s[0].as_str().unwrap().to_owned(),
                labels,
                s[2].as_f64().unwrap(),
            )
        })
        .collect();
    Page { types, samples }
}

/// Scrapes until `ok` holds, returning that page.
fn scrape_until(port: u16, what: &str, ok: impl Fn(&Page) -> bool) -> Page {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    loop {
        let page = scrape(port);
        if ok(&page) {
            return page;
        }
        assert!(
            Instant::now() < deadline,
            "never: {what}; last page: {:?}",
            page.samples
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn with_metrics(app: &str, args: &[&str]) -> (Server, u16) {
    let mport = free_port();
    let server = Corral::app(app)
        .args(["--metrics-bind", &format!("127.0.0.1:{mport}")])
        .args(args.iter().copied())
        .start();
    server.expect_log(&format!("Metrics at: http://127.0.0.1:{mport}/metrics"));
    (server, mport)
}

fn form(port: u16) -> u16 {
    Conn::tcp(port)
        .request(
            "POST",
            "/form",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            b"name=x",
        )
        .status
}

#[test]
fn counts_are_exact_across_worker_deaths_reloads_and_scaling() {
    let (server, mport) = with_metrics("flaskapp:app", &["-w", "2"]);
    let port = server.port;
    for i in 0..10 {
        assert_eq!(get(port, &format!("/json?i={i}")).status, 200);
    }
    for _ in 0..3 {
        assert_eq!(get(port, "/nowhere").status, 404);
    }
    for _ in 0..2 {
        assert_eq!(form(port), 200);
    }
    let delete = Conn::tcp(port).request("DELETE", "/json", &[], b"");
    assert_eq!(delete.status, 405);

    let expected: BTreeMap<(String, String), f64> = [
        (("GET", "200"), 10.0),
        (("GET", "404"), 3.0),
        (("POST", "200"), 2.0),
        (("DELETE", "405"), 1.0),
    ]
    .into_iter()
    .map(|((m, c), v)| ((m.to_owned(), c.to_owned()), v))
    .collect();
    let page = scrape(mport);
    assert_eq!(page.all_requests(), expected);
    assert_eq!(page.types["corral_requests"], "counter");
    assert_eq!(page.types["corral_request_duration_seconds"], "histogram");
    assert_eq!(page.types["corral_workers"], "gauge");
    assert_eq!(
        page.value("corral_request_duration_seconds_count", &[]),
        16.0
    );
    assert_eq!(
        page.value("corral_request_duration_seconds_bucket", &[("le", "+Inf")]),
        16.0
    );
    assert!(page.value("corral_request_duration_seconds_sum", &[]) > 0.0);
    assert_eq!(page.value("corral_request_queue_seconds_count", &[]), 16.0);
    assert_eq!(page.value("corral_requests_in_flight", &[]), 0.0);
    assert_eq!(page.workers("idle") + page.workers("busy"), 2.0);
    assert_eq!(page.workers("booting") + page.workers("retiring"), 0.0);
    for reason in ["recycle", "memory", "timeout", "crash", "control"] {
        assert_eq!(page.restarts(reason), 0.0, "{reason}");
    }

    // A worker dies: its counts stay, and it is a crash.
    let victim = server.workers()[0];
    signal(victim, libc::SIGKILL);
    let page = scrape_until(mport, "the crash counted and replaced", |p| {
        p.restarts("crash") == 1.0 && p.workers("idle") + p.workers("busy") == 2.0
    });
    assert_eq!(page.all_requests(), expected);

    // HUP: a new generation; the old one's counts stay, no restart.
    for _ in 0..4 {
        assert_eq!(get(port, "/json").status, 200);
    }
    signal(server.pid, libc::SIGHUP);
    server.expect_log("Reload complete");
    let page = scrape_until(mport, "the reload counted", |p| {
        p.value("corral_reloads_total", &[]) == 1.0 && p.workers("retiring") == 0.0
    });
    assert_eq!(page.requests("GET", "200"), 14.0);
    assert_eq!(page.restarts("crash"), 1.0);
    assert_eq!(page.restarts("recycle") + page.restarts("control"), 0.0);

    // TTOU: one worker retires; its counts stay.
    signal(server.pid, libc::SIGTTOU);
    server.wait_live_workers(1, EVENT_TIMEOUT);
    for _ in 0..3 {
        assert_eq!(get(port, "/nowhere").status, 404);
    }
    let page = scrape(mport);
    assert_eq!(page.requests("GET", "200"), 14.0);
    assert_eq!(page.requests("GET", "404"), 6.0);
    assert_eq!(page.requests("POST", "200"), 2.0);
    assert_eq!(page.requests("DELETE", "405"), 1.0);
    assert_eq!(
        page.value("corral_request_duration_seconds_count", &[]),
        23.0
    );
    assert_eq!(page.workers("idle") + page.workers("busy"), 1.0);
    assert_eq!(page.restarts("crash"), 1.0);
}

#[test]
fn recycles_are_restarts_and_keep_their_counts() {
    let (server, mport) = with_metrics("echo:app", &["-w", "1", "--max-requests", "3"]);
    for _ in 0..3 {
        assert_eq!(get(server.port, "/").status, 200);
    }
    let page = scrape_until(mport, "the recycle counted", |p| {
        p.restarts("recycle") == 1.0 && p.workers("retiring") == 0.0
    });
    assert_eq!(page.requests("GET", "200"), 3.0);
    assert_eq!(page.restarts("crash"), 0.0);
    assert_eq!(get(server.port, "/").status, 200);
    assert_eq!(scrape(mport).requests("GET", "200"), 4.0);
}

#[test]
fn a_timed_out_request_is_a_504_and_a_timeout_restart() {
    let (server, mport) = with_metrics("slow:app", &["-w", "1", "--timeout", "2"]);
    let r = get(server.port, "/stuck?s=60");
    assert_eq!(r.status, 504);
    let page = scrape_until(mport, "the timeout restart", |p| {
        p.restarts("timeout") == 1.0
    });
    assert_eq!(page.value("corral_request_timeouts_total", &[]), 1.0);
    assert_eq!(page.requests("GET", "504"), 1.0);
    assert_eq!(page.restarts("crash"), 0.0);
    // The stuck request never reached the app's latency histogram.
    assert_eq!(
        page.value("corral_request_duration_seconds_count", &[]),
        0.0
    );
}

#[test]
fn sheds_are_counted_as_the_clients_saw_them() {
    let (server, mport) = with_metrics(
        "slow:app",
        &["-w", "1", "--threads", "2", "--queue-timeout", "1"],
    );
    let port = server.port;
    let handles: Vec<_> = (0..12)
        .map(|i| std::thread::spawn(move || get(port, &format!("/b{i}?s=1.5")).status))
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let ok = statuses.iter().filter(|s| **s == 200).count() as f64;
    let shed = statuses.iter().filter(|s| **s == 503).count() as f64;
    assert_eq!(ok + shed, 12.0, "{statuses:?}");
    assert!(shed >= 1.0, "nothing shed: {statuses:?}");
    let page = scrape_until(mport, "nothing in flight", |p| {
        p.value("corral_requests_in_flight", &[]) == 0.0
    });
    assert_eq!(page.requests("GET", "200"), ok);
    assert_eq!(page.requests("GET", "503"), shed);
    assert_eq!(page.value("corral_requests_shed_total", &[]), shed);
    assert_eq!(page.value("corral_request_queue_seconds_count", &[]), 12.0);
    assert!(page.value("corral_request_queue_seconds_sum", &[]) >= shed);
}

/// Reads until the server closes the connection.
fn wait_closed(mut s: std::net::TcpStream) {
    s.set_read_timeout(Some(EVENT_TIMEOUT)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[test]
fn a_client_too_slow_with_its_request_is_an_eviction_an_idle_one_is_not() {
    let (server, mport) = with_metrics("echo:app", &["-w", "1", "--header-timeout", "1"]);
    let addr = loopback(server.port);
    let mut partial = std::net::TcpStream::connect(addr).unwrap();
    partial.write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
    let silent = std::net::TcpStream::connect(addr).unwrap();
    wait_closed(partial);
    wait_closed(silent);
    let page = scrape(mport);
    assert_eq!(page.value("corral_slow_client_evictions_total", &[]), 1.0);
    assert_eq!(page.all_requests().values().sum::<f64>(), 0.0);
}

#[test]
fn the_metrics_socket_moves_to_the_new_master_on_usr2() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("app.pid");
    let pidfile2 = dir.path().join("app.pid.2");
    let (mut server, mport) =
        with_metrics("echo:app", &["-w", "1", "-p", pidfile.to_str().unwrap()]);
    let old = server.pid;
    for _ in 0..3 {
        assert_eq!(get(server.port, "/").status, 200);
    }
    let before = scrape(mport);
    assert_eq!(before.requests("GET", "200"), 3.0);
    server.signal(libc::SIGUSR2);
    let new = wait_for(EVENT_TIMEOUT, "PIDFILE.2 naming the new master", || {
        std::fs::read_to_string(&pidfile2)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
            .filter(|p| *p != old && alive(*p))
    });
    server.expect_log(&format!("New master (pid:{new}) is serving"));
    // Until promoted, the old master answers scrapes.
    assert_eq!(scrape(mport).requests("GET", "200"), 3.0);
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait_code(EVENT_TIMEOUT), 0);
    // The new master serves the same socket, with its own counts.
    let page = scrape_until(mport, "the promoted master's page", |p| {
        p.value("process_start_time_seconds", &[]) > before.value("process_start_time_seconds", &[])
    });
    assert_eq!(page.requests("GET", "200"), 0.0);
    assert_eq!(get(server.port, "/").status, 200);
    assert_eq!(scrape(mport).requests("GET", "200"), 1.0);
    signal(new, libc::SIGTERM);
    wait_until(EVENT_TIMEOUT, "the new master to stop", || !alive(new));
}

#[test]
fn other_paths_and_methods_are_refused() {
    let (_server, mport) = with_metrics("echo:app", &["-w", "1"]);
    let r = get(mport, "/");
    assert_eq!(r.status, 404);
    let r = Conn::tcp(mport).request("POST", "/metrics", &[], b"");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let r = get(mport, "/metrics");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("# TYPE corral_requests_total counter"));
}

#[test]
fn a_bad_metrics_address_is_one_clear_line() {
    let out = run_corral(&["--metrics-bind", "no-port-here", "echo:app"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let line = out.stderr.trim();
    assert!(
        line.contains("--metrics-bind") && line.lines().count() == 1,
        "{line}"
    );
}
