//! Nothing is lost across restarts. Load clients — some opening a fresh
//! connection for every request, some reusing kept-alive connections back to
//! back, some uploading bodies — count every request that does not get its
//! whole 200 response (or its body echoed in full) while the master reloads,
//! scales, recycles and upgrades. Zero means zero.
//!
//! Where gunicorn 27 should behave the same, the same scenario runs against
//! it (from the test virtualenv) and both results are printed; only corral's
//! is asserted, gunicorn's is the yardstick kept beside it.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::client::{request_bytes, Conn};
use crate::harness::{
    alive, children_of, signal, spawn_client_script, temp_dir, wait_until, Corral, Server,
    EVENT_TIMEOUT,
};
use crate::load::{Load, Tally};

/// How many cycles each scenario runs: `normal`, or ten times as many
/// with `CORRAL_LONG=1` (the long soak of docs/security.md).
fn cycles(normal: usize) -> usize {
    if std::env::var_os("CORRAL_LONG").is_some() {
        normal * 10
    } else {
        normal
    }
}

/// The worker classes, as command-line flags (asgi serves the raw ASGI
/// app, the others the WSGI echo app).
const CLASSES: [&[&str]; 3] = [
    &["-k", "sync"],
    &["-k", "gthread", "--threads", "4"],
    &["-k", "asgi"],
];

/// Three clients on fresh connections and three on kept-alive ones, and
/// four uploading bodies up to 1.2 MiB (two of them on kept-alive
/// connections): more bodies than a sync worker reads at once, so some
/// wait parked in the kernel when their worker is told to stop.
fn load(port: u16) -> Load {
    Load::with_uploads(SocketAddr::from(([127, 0, 0, 1], port)), 3, 3, 8)
}

/// Between events, the servers keep serving.
fn progress(load: &Load) {
    load.progress(50, EVENT_TIMEOUT);
}

/// Which server a scenario runs against.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Peer {
    Corral,
    Gunicorn,
}

fn start(peer: Peer, args: &[&str]) -> Server {
    let app = if args.contains(&"asgi") {
        "asgi_raw:app"
    } else {
        "echo:app"
    };
    let base = match peer {
        Peer::Corral => Corral::app(app),
        Peer::Gunicorn => Corral::gunicorn(app),
    };
    base.args(args.iter().copied()).start()
}

/// Workers of `master`: its children other than a master it started by USR2.
fn workers(master: i32, except: Option<i32>) -> BTreeSet<i32> {
    children_of(master)
        .into_iter()
        .filter(|p| Some(*p) != except)
        .collect()
}

/// Waits until the master has exactly `n` workers, none of them in `old`.
fn wait_new_workers(server: &Server, n: usize, old: &BTreeSet<i32>) -> BTreeSet<i32> {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    loop {
        let now = workers(server.pid, None);
        if now.len() == n && now.is_disjoint(old) {
            return now;
        }
        if Instant::now() > deadline {
            panic!(
                "no {n} new workers (old {old:?}, now {now:?}); {}",
                server.stderr.text()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_count(master: i32, n: usize) {
    wait_until(EVENT_TIMEOUT, &format!("{n} workers"), || {
        workers(master, None).len() == n
    });
}

/// 20 HUPs (each waited for: the new generation serves and the old one is
/// gone), then three rounds of TTIN and TTOU, under load.
fn reloads_and_scaling(peer: Peer, class: &[&str]) -> Tally {
    let mut args = vec!["-w", "2"];
    args.extend_from_slice(class);
    let server = start(peer, &args);
    let load = load(server.port);
    let mut current = workers(server.pid, None);
    for _ in 0..cycles(20) {
        server.signal(libc::SIGHUP);
        current = wait_new_workers(&server, 2, &current);
        progress(&load);
    }
    for _ in 0..cycles(3) {
        server.signal(libc::SIGTTIN);
        wait_count(server.pid, 3);
        progress(&load);
        server.signal(libc::SIGTTOU);
        wait_count(server.pid, 2);
        progress(&load);
    }
    load.finish()
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Kills a master this test does not own (a USR2 child outlives its
/// parent) when the test ends, whatever happens.
struct KillOnDrop(Vec<i32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for &p in &self.0 {
            if alive(p) {
                signal(p, libc::SIGKILL);
            }
        }
    }
}

/// Two binary upgrades in a row, the way operators do them without
/// systemd: USR2 to the master, WINCH to the old one once the new one
/// serves, then QUIT to the old one; the promoted master is upgraded again.
fn two_upgrades(peer: Peer, class: &[&str]) -> Tally {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("app.pid");
    let pidfile2 = dir.path().join("app.pid.2");
    let pidarg = pidfile.to_str().unwrap().to_owned();
    let mut args = vec!["-w", "2", "-p", &pidarg];
    args.extend_from_slice(class);
    let server = start(peer, &args);
    let load = load(server.port);
    let mut cleanup = KillOnDrop(Vec::new());
    let mut old = server.pid;
    for round in 0..cycles(2) {
        signal(old, libc::SIGUSR2);
        wait_until(EVENT_TIMEOUT, "PIDFILE.2 naming a new master", || {
            read_pid(&pidfile2).is_some_and(|p| p != old && alive(p))
        });
        let new = read_pid(&pidfile2).unwrap();
        cleanup.0.push(new);
        wait_until(EVENT_TIMEOUT, "the new master's workers", || {
            children_of(new).len() == 2
        });
        progress(&load);
        if peer == Peer::Corral {
            signal(old, libc::SIGWINCH);
            wait_until(EVENT_TIMEOUT, "the old master's workers to stop", || {
                workers(old, Some(new)).is_empty()
            });
            progress(&load);
            signal(old, libc::SIGQUIT);
        } else {
            // gunicorn honours WINCH only when daemonized; without that its
            // documented way is TERM to the old master.
            signal(old, libc::SIGTERM);
        }
        wait_until(EVENT_TIMEOUT, "promotion of the new master", || {
            !alive(old) && read_pid(&pidfile) == Some(new)
        });
        progress(&load);
        eprintln!("upgrade {round}: {old} -> {new}");
        old = new;
    }
    let tally = load.finish();
    signal(old, libc::SIGTERM);
    wait_until(EVENT_TIMEOUT, "the last master to stop", || !alive(old));
    drop(server);
    tally
}

/// `--max-requests 40 --max-requests-jitter 10` under load, until at least
/// 20 workers were recycled.
fn recycling(peer: Peer, class: &[&str]) -> (Tally, String) {
    let mut args = vec![
        "-w",
        "2",
        "--max-requests",
        "40",
        "--max-requests-jitter",
        "10",
    ];
    args.extend_from_slice(class);
    let server = start(peer, &args);
    let load = load(server.port);
    let recycles = cycles(20);
    let limit = Duration::from_secs(120) * cycles(1) as u32;
    wait_until(limit, &format!("{recycles} recycled workers"), || {
        server.booted_workers().len() >= 2 + recycles
    });
    let tally = load.finish();
    (tally, server.stderr.text())
}

/// Finished WebSocket sessions so far (`websockets_load.py`'s progress file).
fn sessions_done(progress: &Path) -> usize {
    std::fs::read_to_string(progress).map_or(0, |s| s.lines().count())
}

/// WebSocket sessions (`websockets_load.py`: four clients, 20 checked
/// echoes each, over and over) through 10 HUPs and a TTIN/TTOU. A stopping
/// worker may end a session with 1001 (the client opens another); nothing
/// may break one. Returns the client's JSON summary.
fn websocket_reloads(peer: Peer) -> serde_json::Value {
    let server = start(peer, &["-w", "2", "-k", "asgi"]);
    let dir = temp_dir("ws-load");
    let progress = dir.path().join("progress");
    let port = server.port.to_string();
    let client = spawn_client_script(
        "websockets_load.py",
        &[&port, dir.path().to_str().expect("a UTF-8 temporary path")],
    );
    let moving = |at_least: usize| {
        wait_until(EVENT_TIMEOUT, "WebSocket sessions going on", || {
            sessions_done(&progress) >= at_least
        })
    };
    moving(20);
    let mut current = workers(server.pid, None);
    for _ in 0..cycles(10) {
        server.signal(libc::SIGHUP);
        current = wait_new_workers(&server, 2, &current);
        moving(sessions_done(&progress) + 20);
    }
    server.signal(libc::SIGTTIN);
    wait_count(server.pid, 3);
    moving(sessions_done(&progress) + 20);
    server.signal(libc::SIGTTOU);
    wait_count(server.pid, 2);
    moving(sessions_done(&progress) + 20);
    std::fs::write(dir.path().join("stop"), b"").unwrap();
    let out = client
        .wait_with_output()
        .expect("websockets_load.py output");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "websockets_load.py failed: {text}");
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn websocket_sessions_through_reloads_end_cleanly_or_not_at_all() {
    let corral = websocket_reloads(Peer::Corral);
    let gunicorn = websocket_reloads(Peer::Gunicorn);
    eprintln!(
        "WebSockets, {} HUP + TTIN/TTOU\n  corral:          {corral}\n  gunicorn 27.0.1: {gunicorn}",
        cycles(10)
    );
    assert_eq!(corral["failures"], 0, "corral: {corral}");
    assert!(
        corral["sessions"].as_u64().unwrap() >= 100,
        "too few sessions to mean anything: {corral}"
    );
}

fn assert_nothing_lost(what: &str, class: &[&str], corral: &Tally, gunicorn: &Tally) {
    eprintln!(
        "{what} {class:?}\n  corral:          {}\n  gunicorn 27.0.1: {}",
        corral.summary(),
        gunicorn.summary()
    );
    assert_eq!(
        corral.lost,
        0,
        "{what} {class:?}: corral {}",
        corral.summary()
    );
    // The uploads ran through the events, not only before them.
    assert!(
        corral.uploads >= 100,
        "{what} {class:?}: too few uploads to count: {}",
        corral.summary()
    );
}

#[test]
fn twenty_reloads_and_scaling_lose_nothing() {
    for class in CLASSES {
        let corral = reloads_and_scaling(Peer::Corral, class);
        let gunicorn = reloads_and_scaling(Peer::Gunicorn, class);
        let what = format!("{} HUP + {} TTIN/TTOU", cycles(20), cycles(3));
        assert_nothing_lost(&what, class, &corral, &gunicorn);
    }
}

#[test]
fn two_upgrades_in_a_row_lose_nothing() {
    for class in CLASSES {
        let corral = two_upgrades(Peer::Corral, class);
        let gunicorn = two_upgrades(Peer::Gunicorn, class);
        let what = format!("{} x USR2, WINCH, QUIT", cycles(2));
        assert_nothing_lost(&what, class, &corral, &gunicorn);
    }
}

#[test]
fn recycling_loses_nothing_and_is_no_crash() {
    for class in CLASSES {
        let (corral, log) = recycling(Peer::Corral, class);
        let (gunicorn, _) = recycling(Peer::Gunicorn, class);
        let what = format!("--max-requests 40 (jitter 10), {} recycles", cycles(20));
        assert_nothing_lost(&what, class, &corral, &gunicorn);
        // A recycled worker is no crash: no ERROR line, no respawn back-off.
        assert!(!log.contains("[ERROR]"), "recycling logged errors:\n{log}");
        assert!(
            log.contains(": recycle"),
            "the master names the exit reason:\n{log}"
        );
        // The old one serves until its replacement does: no request waits
        // for a worker to boot.
        assert!(
            corral.slowest < Duration::from_secs(5),
            "a request waited {:?} during recycling",
            corral.slowest
        );
    }
}

/// Connections a stopping worker holds with no request on them yet: one
/// kept alive after a response, one just opened. Requests sent on them
/// after the worker was told to go are answered, and the connection is
/// closed by a `Connection: close` answer. The master logs the retirement
/// once it has sent SIGTERM, but the worker may answer a request or more
/// before it reads the signal (on a loaded machine), so the test keeps
/// asking: every answer must be a 200, and one of them must close.
fn held_connections_are_answered(stop: impl FnOnce(&Server)) {
    let server = Corral::app("echo:app")
        .args(["-w", "1", "--log-level", "debug"])
        .start();
    let worker = server.wait_workers(1)[0];
    let mut kept = Conn::tcp(server.port);
    let first = kept.request("GET", "/first", &[("Host", "t")], b"");
    assert_eq!(first.status, 200);
    assert!(!first.has_token("Connection", "close"), "{first:?}");
    let mut fresh = Conn::tcp(server.port);
    stop(&server);
    server.expect_log(&format!("Retiring worker (pid: {worker})"));
    for (name, conn) in [("kept-alive", &mut kept), ("fresh", &mut fresh)] {
        let mut closed = false;
        for n in 0..200 {
            let path = format!("/after-stop/{name}/{n}");
            conn.send(&request_bytes("GET", &path, &[("Host", "t")], b""))
                .unwrap();
            let r = conn.read_response(false).unwrap_or_else(|e| {
                panic!(
                    "{name} connection, request {n}: {e}; {}",
                    server.stderr.text()
                )
            });
            assert_eq!(r.status, 200, "{name}: {r:?}");
            assert!(r.text().contains(&path), "{name}: {r:?}");
            if r.has_token("Connection", "close") {
                closed = true;
                break;
            }
        }
        // The fresh one may have waited in the backlog and gone to the new
        // worker, which keeps it; the kept-alive one is the old worker's.
        assert!(
            closed || name == "fresh",
            "{name}: the stopping worker never answered with close"
        );
    }
}

#[test]
fn a_reloading_worker_answers_requests_on_connections_it_holds() {
    held_connections_are_answered(|server| server.signal(libc::SIGHUP));
}

#[test]
fn a_worker_scaled_down_answers_requests_on_connections_it_holds() {
    held_connections_are_answered(|server| {
        server.signal(libc::SIGTTIN);
        wait_count(server.pid, 2);
        server.signal(libc::SIGTTOU);
    });
}
