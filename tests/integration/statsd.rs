//! statsd: the datagrams a statsd server receives from corral, and from
//! gunicorn 27 for the same requests — the same metric names, types,
//! prefix, tags and counts, so dashboards built for gunicorn keep working.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crate::client::{get, Conn};
use crate::harness::{Corral, EVENT_TIMEOUT};

/// Every line received until `done` says the picture is complete (or the
/// deadline passes).
fn collect(
    recv: impl Fn(&mut [u8]) -> Option<usize>,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    let mut lines = Vec::new();
    let mut buf = vec![0u8; 65536];
    while Instant::now() < deadline && !done(&lines) {
        if let Some(n) = recv(&mut buf) {
            lines.extend(
                String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .map(str::to_owned),
            );
        }
    }
    lines
}

/// The sum of a counter's values.
fn total(lines: &[String], name: &str) -> u64 {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(&format!("{name}:")))
        .filter_map(|rest| rest.split('|').next()?.parse::<u64>().ok())
        .sum()
}

/// `name|type` of each line, tags checked and cut off.
fn shapes(lines: &[String]) -> BTreeSet<String> {
    lines
        .iter()
        .map(|l| {
            let (metric, rest) = l.split_once(':').unwrap_or_else(|| panic!("{l:?}"));
            assert!(l.ends_with("|#env:test,svc:x"), "tags on every line: {l:?}");
            let kind = rest.split('|').nth(1).unwrap_or("");
            format!("{metric}|{kind}")
        })
        .collect()
}

/// Five Flask requests that answer 200, two that answer 404, and one
/// request line that is refused (a WARNING in both servers' logs).
fn traffic(port: u16) {
    for i in 0..5 {
        assert_eq!(get(port, &format!("/json?i={i}")).status, 200);
    }
    for _ in 0..2 {
        assert_eq!(get(port, "/nowhere").status, 404);
    }
    let mut c = Conn::tcp(port);
    c.send(b"GET /refused HTTP/1.1\r\nHost: t\r\nBad Header: y\r\n\r\n")
        .unwrap();
    assert_eq!(c.read_response(false).unwrap().status, 400);
}

fn complete(lines: &[String]) -> bool {
    total(lines, "app.gunicorn.requests") >= 7
        && total(lines, "app.gunicorn.request.status.200") >= 5
        && total(lines, "app.gunicorn.request.status.404") >= 2
        && lines
            .iter()
            .filter(|l| l.starts_with("app.gunicorn.request.duration:"))
            .count()
            >= 7
        && total(lines, "app.gunicorn.log.warning") >= 1
        && lines
            .iter()
            .any(|l| l.starts_with("app.gunicorn.workers:2|g"))
}

fn run(server: Corral) -> Vec<String> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let addr = sock.local_addr().unwrap().to_string();
    let server = server
        .args(["-w", "2", "--statsd-host", &addr, "--statsd-prefix", "app"])
        .args(["--dogstatsd-tags", "env:test,svc:x"])
        .start();
    server.wait_workers(2);
    traffic(server.port);
    collect(|b| sock.recv(b).ok(), complete)
}

#[test]
fn statsd_metrics_match_gunicorn() {
    let ours = run(Corral::app("flaskapp:app"));
    let theirs = run(Corral::gunicorn("flaskapp:app"));
    eprintln!(
        "corral:\n{}\n\ngunicorn 27:\n{}",
        ours.join("\n"),
        theirs.join("\n")
    );
    for (who, lines) in [("corral", &ours), ("gunicorn", &theirs)] {
        assert!(
            complete(lines),
            "{who} sent an incomplete picture: {lines:#?}"
        );
        assert_eq!(total(lines, "app.gunicorn.requests"), 7, "{who}");
        assert_eq!(total(lines, "app.gunicorn.request.status.200"), 5, "{who}");
        assert_eq!(total(lines, "app.gunicorn.request.status.404"), 2, "{who}");
        let timings = lines
            .iter()
            .filter(|l| l.starts_with("app.gunicorn.request.duration:"))
            .count();
        assert_eq!(timings, 7, "{who}: one timing per request");
    }
    let expected: BTreeSet<String> = [
        "app.gunicorn.request.duration|ms",
        "app.gunicorn.requests|c",
        "app.gunicorn.request.status.200|c",
        "app.gunicorn.request.status.404|c",
        "app.gunicorn.workers|g",
        "app.gunicorn.log.warning|c",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(shapes(&ours), expected, "corral");
    assert_eq!(shapes(&theirs), expected, "gunicorn 27");
}

/// `unix:PATH`, the worker gauge following TTIN, and a statsd server that
/// is not there at all (sends are dropped, requests are served).
#[test]
fn statsd_over_a_unix_socket_and_with_no_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("statsd.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let server = Corral::app("echo:app")
        .args([
            "-w",
            "1",
            "--statsd-host",
            &format!("unix://{}", path.display()),
        ])
        .start();
    server.wait_workers(1);
    assert_eq!(get(server.port, "/").status, 200);
    server.signal(libc::SIGTTIN);
    let lines = collect(
        |b| sock.recv(b).ok(),
        |l| total(l, "gunicorn.requests") >= 1 && l.iter().any(|x| x == "gunicorn.workers:2|g"),
    );
    assert_eq!(total(&lines, "gunicorn.requests"), 1, "{lines:#?}");
    assert!(
        lines.iter().any(|x| x == "gunicorn.workers:1|g"),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|x| x == "gunicorn.workers:2|g"),
        "{lines:#?}"
    );

    // Nobody listens: every send fails, and nothing else does.
    drop(sock);
    for _ in 0..20 {
        assert_eq!(get(server.port, "/").status, 200);
    }
    let _ = std::io::stderr().flush();
    assert!(
        !server.stderr.text().contains("[ERROR]"),
        "{}",
        server.stderr.text()
    );
}
