//! The master's life: stopping on signals, replacing dead workers, failing
//! loudly on a broken app, recycling workers with --max-requests.

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::client::get;
use crate::harness::{signal, wait_until, Corral, EVENT_TIMEOUT, START_TIMEOUT};

fn port_closed(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err()
}

fn graceful_stop(sig: i32) {
    let mut server = Corral::app("echo:app").args(["-w", "2"]).start();
    assert_eq!(get(server.port, "/").status, 200);
    let workers = server.wait_workers(2);
    server.signal(sig);
    let code = server.wait_code(EVENT_TIMEOUT);
    assert_eq!(
        code,
        0,
        "graceful stop exits 0; stderr:\n{}",
        server.stderr.text()
    );
    assert!(
        port_closed(server.port),
        "port {} still accepts after exit",
        server.port
    );
    for w in workers {
        wait_until(EVENT_TIMEOUT, &format!("worker {w} to be gone"), || {
            !std::path::Path::new(&format!("/proc/{w}")).exists()
                || std::fs::read_to_string(format!("/proc/{w}/stat"))
                    .map(|s| s.contains(") Z "))
                    .unwrap_or(true)
        });
    }
}

#[test]
fn sigterm_stops_gracefully() {
    graceful_stop(libc::SIGTERM);
}

#[test]
fn sigint_stops_gracefully() {
    graceful_stop(libc::SIGINT);
}

#[test]
fn killed_worker_is_replaced() {
    let server = Corral::app("echo:app").args(["-w", "2"]).start();
    let before: BTreeSet<i32> = server.wait_workers(2).into_iter().collect();
    let victim = *before.iter().next().unwrap();
    signal(victim, libc::SIGKILL);
    wait_until(START_TIMEOUT, "a replacement worker", || {
        let now: BTreeSet<i32> = server.workers().into_iter().collect();
        now.len() == 2 && !now.contains(&victim)
    });
    let after: BTreeSet<i32> = server.workers().into_iter().collect();
    let new: Vec<i32> = after.difference(&before).copied().collect();
    assert_eq!(
        new.len(),
        1,
        "exactly one new worker: {before:?} -> {after:?}"
    );
    server.expect_log(&format!("Booting worker with pid: {}", new[0]));
    for _ in 0..10 {
        assert_eq!(get(server.port, "/").status, 200);
    }
}

/// Whether the master itself (not a worker) logged one line holding
/// `needle`, the one-line reason it gives before exiting.
fn master_says(server: &crate::harness::Server, needle: &str) -> bool {
    let tag = format!("] [{}] [", server.pid);
    server
        .stderr
        .text()
        .lines()
        .any(|l| l.contains(&tag) && l.contains(needle))
}

#[test]
fn import_failure_exits_4() {
    let mut server = Corral::app("broken:app").spawn();
    let code = server.wait_code(START_TIMEOUT);
    let log = server.stderr.text();
    assert_eq!(
        code, 4,
        "an app that fails to import exits 4; stderr:\n{log}"
    );
    assert!(
        master_says(&server, "No module named 'nope'"),
        "the master names the Python error in one line; stderr:\n{log}"
    );
}

#[test]
fn missing_module_exits_4() {
    let mut server = Corral::app("no_such_module_here:app").spawn();
    let code = server.wait_code(START_TIMEOUT);
    let log = server.stderr.text();
    assert_eq!(code, 4, "a missing app module exits 4; stderr:\n{log}");
    assert!(
        master_says(&server, "No module named 'no_such_module_here'"),
        "the master names the missing module in one line; stderr:\n{log}"
    );
}

#[test]
fn max_requests_recycles_and_keeps_serving() {
    let server = Corral::app("echo:app")
        .args(["-w", "1", "--max-requests", "5"])
        .start();
    // One worker, one request at a time: each worker serves its 5, and
    // keeps serving until its replacement does, so no request waits.
    // (worker pid, requests it answered), in the order workers appeared.
    let mut served: Vec<(i64, u32)> = Vec::new();
    let deadline = std::time::Instant::now() + START_TIMEOUT;
    let mut i = 0;
    while served.len() < 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "no 5 workers within {START_TIMEOUT:?}: {served:?}; {}",
            server.stderr.text()
        );
        i += 1;
        let resp = get(server.port, &format!("/mr/{i}"));
        assert_eq!(resp.status, 200, "request {i}: {resp:?}");
        let pid = resp.json()["pid"].as_i64().unwrap();
        match served.iter_mut().find(|(p, _)| *p == pid) {
            Some((_, n)) => *n += 1,
            None => served.push((pid, 1)),
        }
    }
    // The last one is still serving its share.
    for (pid, n) in &served[..served.len() - 1] {
        assert!(
            *n >= 5,
            "worker {pid} served {n}, fewer than --max-requests 5: {served:?}"
        );
    }
    let log = server.stderr.text();
    assert!(!log.contains("[ERROR]"), "a recycle is no crash:\n{log}");
    server.expect_log(": recycle");
}

#[test]
fn sigterm_lets_the_request_in_flight_finish() {
    let mut server = Corral::app("slow:app")
        .args(["--graceful-timeout", "20"])
        .start();
    let port = server.port;
    let pending = std::thread::spawn(move || get(port, "/inflight?s=2"));
    // The app logs when it has the request; only then stop the server.
    server.expect_log("slow: started /inflight");
    server.signal(libc::SIGTERM);
    let resp = pending.join().expect("the in-flight request");
    assert_eq!(
        resp.status, 200,
        "the in-flight request completes: {resp:?}"
    );
    let code = server.wait_code(EVENT_TIMEOUT);
    assert_eq!(
        code,
        0,
        "graceful stop exits 0; stderr:\n{}",
        server.stderr.text()
    );
}

#[test]
fn preload_import_failure_exits_4() {
    let mut server = Corral::app("broken:app").args(["--preload"]).spawn();
    let code = server.wait_code(START_TIMEOUT);
    let log = server.stderr.text();
    assert_eq!(
        code, 4,
        "--preload with an app that fails to import exits 4:\n{log}"
    );
    assert!(
        master_says(&server, "No module named 'nope'"),
        "the master names the Python error in one line; stderr:\n{log}"
    );
}
