//! `-k asgi`: ASGI 3.0 apps (a raw one, FastAPI, Django's async views) on
//! the worker's asyncio loop — the scope (compared with gunicorn 27's own
//! `-k asgi`), request bodies streamed as they arrive (with back-pressure
//! and `100 Continue`), streamed responses, errors, disconnects,
//! background tasks, lifespan, timeouts, and the lifecycle under load.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::client::{get, loopback, Conn, IO_TIMEOUT};
use crate::harness::{
    client_script, poll, repo_dir, run_corral, spawn_client_script, wait_until, Corral, Server,
    EVENT_TIMEOUT,
};
use crate::load::Load;

fn raw(args: &[&str]) -> Server {
    Corral::app("asgi_raw:app")
        .args(["-k", "asgi"])
        .args(args.iter().copied())
        .start()
}

fn events(port: u16) -> Vec<String> {
    let r = get(port, "/events");
    assert_eq!(r.status, 200, "{r:?}");
    r.json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_owned())
        .collect()
}

/// The scope of one request, from corral and from gunicorn 27 `-k asgi`,
/// for the same bytes: the keys and values an app reads must agree.
#[test]
fn the_scope_matches_gunicorn_asgi() {
    let request = b"GET /scope/caf%C3%A9%20x?a=1&b=%20z HTTP/1.1\r\nHost: example.test\r\n\
                    X-Custom: One\r\nX-Custom: Two\r\n\r\n";
    let mut scopes = Vec::new();
    for server in [
        raw(&["--root-path", "/api"]),
        Corral::gunicorn("asgi_raw:app")
            .args(["-k", "asgi", "--root-path", "/api"])
            .start(),
    ] {
        let mut c = Conn::tcp(server.port);
        c.send(request).unwrap();
        let r = c.read_response(false).unwrap();
        assert_eq!(r.status, 200, "{r:?}");
        scopes.push(r.json());
    }
    let (ours, theirs) = (&scopes[0], &scopes[1]);
    for key in [
        "type",
        "asgi",
        "http_version",
        "method",
        "scheme",
        "path",
        "raw_path",
        "query_string",
        "root_path",
        "headers",
    ] {
        assert_eq!(ours[key], theirs[key], "scope[{key:?}] differs");
    }
    assert_eq!(ours["path"], "/scope/café x");
    assert_eq!(ours["raw_path"], "/scope/caf%C3%A9%20x");
    assert_eq!(ours["query_string"], "a=1&b=%20z");
    assert_eq!(ours["root_path"], "/api");
    assert_eq!(ours["headers"][1], serde_json::json!(["x-custom", "One"]));
    assert_eq!(ours["client"][0], "127.0.0.1");
    assert_eq!(ours["server"][0], "127.0.0.1");
    // Lifespan state reaches each request's scope (a copy).
    assert!(ours["state"]["started_by"].is_number(), "{ours}");
}

/// Each request's scope is its own: what an app changes in one (the
/// `asgi` dict, a key of its own) is not in the next.
#[test]
fn a_scope_changed_by_the_app_does_not_reach_the_next_request() {
    let server = raw(&["-w", "1"]);
    let mut c = Conn::tcp(server.port);
    for _ in 0..3 {
        let r = c.request("GET", "/scope", &[], b"");
        assert_eq!(r.status, 200, "{r:?}");
        let scope = r.json();
        assert_eq!(
            scope["asgi"],
            serde_json::json!({"version": "3.0", "spec_version": "2.4"})
        );
        assert!(scope.get("changed").is_none(), "{scope}");
        assert_eq!(scope["type"], "http");
        assert_eq!(scope["root_path"], "");
    }
}

#[test]
fn bodies_in_and_out() {
    let server = raw(&["-w", "1"]);
    // A body that came whole with its head arrives in one message, a large
    // one (streamed as it arrives) in several; both intact.
    for (len, several) in [(1000usize, false), (4 << 20, true)] {
        let body: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let r = Conn::tcp(server.port).request("POST", "/echo", &[], &body);
        assert_eq!(r.status, 200);
        assert!(r.body == body, "{len}-byte body came back changed");
        let messages: usize = r.header("x-messages").unwrap().parse().unwrap();
        assert_eq!(messages > 1, several, "{len} bytes in {messages} messages");
        // The whole body in one message without a length: corral adds it.
        assert_eq!(r.header("content-length"), Some(len.to_string().as_str()));
    }
    // Keep-alive and pipelining: three requests in one write.
    let mut c = Conn::tcp(server.port);
    c.send(b"GET /p1 HTTP/1.1\r\nHost: x\r\n\r\nGET /p2 HTTP/1.1\r\nHost: x\r\n\r\nGET /p3 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    for p in ["/p1", "/p2", "/p3"] {
        let r = c.read_response(false).unwrap();
        assert_eq!(r.json()["path"], p);
    }
    // HEAD: headers only.
    let r = Conn::tcp(server.port).request("HEAD", "/scope", &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
}

/// The app is called as soon as the head is in, and answers from the first
/// part of a body whose client has not sent the rest: the answer closes the
/// connection (the rest of the body must not be read as a request).
#[test]
fn a_body_reaches_the_app_while_its_client_still_sends_it() {
    for (peer, server) in corral_and_gunicorn() {
        body_before_its_end(peer, &server);
    }
}

/// The raw app on one corral worker and on gunicorn 27's `-k asgi`, for
/// the behaviour both should share (asserted for both; what corral adds is
/// asserted for corral only).
fn corral_and_gunicorn() -> [(&'static str, Server); 2] {
    [
        ("corral", raw(&["-w", "1"])),
        (
            "gunicorn",
            Corral::gunicorn("asgi_raw:app")
                .args(["-k", "asgi"])
                .start(),
        ),
    ]
}

fn body_before_its_end(peer: &str, server: &Server) {
    let part = [b'a'; 1000];
    for framing in ["Content-Length: 1000000", "Transfer-Encoding: chunked"] {
        let mut bytes =
            format!("POST /first HTTP/1.1\r\nHost: x\r\n{framing}\r\n\r\n").into_bytes();
        if framing.starts_with("Transfer") {
            bytes.extend_from_slice(b"3e8\r\n");
        }
        bytes.extend_from_slice(&part);
        let mut c = Conn::tcp(server.port);
        c.send(&bytes).unwrap();
        let r = c.read_response(false).unwrap();
        assert_eq!(r.status, 200, "{peer}, {framing}: {r:?}");
        let first = r.json()["first"].as_u64().unwrap();
        assert!((1..=1000).contains(&first), "{peer}, {framing}: {r:?}");
        assert_eq!(r.json()["more"], true, "{peer}, {framing}");
        // gunicorn closes too, without saying so.
        if peer == "corral" {
            assert!(r.has_token("Connection", "close"), "{framing}: {r:?}");
        }
        c.expect_eof().unwrap();
    }
}

/// `Expect: 100-continue`: an app that answers without the body sends no
/// `100` (its client never sends the body); one that reads it gets it
/// after the `100`, and a request pipelined right behind the body is
/// answered next, on the same connection.
#[test]
fn continue_is_sent_when_the_app_asks_for_the_body() {
    for (peer, server) in corral_and_gunicorn() {
        continue_when_asked(peer, &server);
    }
}

fn continue_when_asked(peer: &str, server: &Server) {
    let mut c = Conn::tcp(server.port);
    c.send(
        b"POST /scope HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n",
    )
    .unwrap();
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 200, "{peer}, answered without the body: {r:?}");
    if peer == "corral" {
        assert!(r.has_token("Connection", "close"), "{r:?}");
    }

    let body: Vec<u8> = (0..300_000).map(|i| (i % 251) as u8).collect();
    let mut c = Conn::tcp(server.port);
    c.send(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 300000\r\n\r\n",
    )
    .unwrap();
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 100, "{peer}: {r:?}");
    let mut rest = body.clone();
    rest.extend_from_slice(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n");
    c.send(&rest).unwrap();
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 200, "{peer}: {r:?}");
    assert!(r.body == body, "{peer}: the echo differs");
    assert!(!r.has_token("Connection", "close"), "{peer}: {r:?}");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.json()["path"], "/after", "{peer}: {r:?}");
}

/// An app that does not read its body yet holds the client back: the event
/// loop stops reading once 256 KiB wait for the app, and TCP does the rest.
/// The whole body arrives once the app reads, in messages of at most that.
#[test]
fn a_slow_app_pushes_back_on_its_uploader() {
    const LEN: usize = 64 << 20;
    let server = raw(&["-w", "1"]);
    let body: Vec<u8> = (0..LEN).map(|i| (i * 31 % 253) as u8).collect();
    let mut s = crate::client::connect(loopback(server.port), IO_TIMEOUT).unwrap();
    let head = format!(
        "POST /digest?delay=4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {LEN}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    // Write until the writes have stalled for 300 ms: the app is asleep.
    s.set_nonblocking(true).unwrap();
    let (mut sent, mut stalled) = (0, None::<Instant>);
    let t = Instant::now();
    while sent < LEN {
        match s.write(&body[sent..]) {
            Ok(n) => {
                sent += n;
                stalled = None;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if stalled.get_or_insert_with(Instant::now).elapsed() > Duration::from_millis(300) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => panic!("upload: {e}"),
        }
    }
    eprintln!(
        "{sent} of {LEN} bytes accepted before the app read any ({:?})",
        t.elapsed()
    );
    assert!(
        sent < LEN / 2,
        "{sent} of {LEN} bytes taken in while the app read none ({:?})",
        t.elapsed()
    );
    s.set_nonblocking(false).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(&body[sent..]).unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).unwrap();
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let json: serde_json::Value = serde_json::from_slice(&answer[split + 4..]).unwrap();
    assert_eq!(json["len"], LEN, "{json}");
    assert_eq!(json["adler32"], crate::uploads::adler32(&body), "{json}");
    assert!(json["messages"].as_u64().unwrap() > 1, "{json}");
    assert!(json["largest"].as_u64().unwrap() <= 256 << 10, "{json}");
}

/// A client that leaves mid-body: its app's `receive` returns
/// `http.disconnect`. A client that trickles its body for longer than
/// `--timeout` is no timeout: the clock starts once the body is in.
#[test]
fn an_uploader_leaving_is_a_disconnect_and_a_slow_one_no_timeout() {
    let server = raw(&["-w", "1", "--timeout", "1"]);
    let mut c = Conn::tcp(server.port);
    c.send(b"POST /drain HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n0123456789")
        .unwrap();
    wait_until(EVENT_TIMEOUT, "the app to take the request", || {
        events(server.port).iter().any(|e| e == "request /drain")
    });
    drop(c);
    wait_until(EVENT_TIMEOUT, "the app to hear the client left", || {
        events(server.port)
            .iter()
            .any(|e| e == "drain 10 disconnect")
    });

    let mut c = Conn::tcp(server.port);
    c.send(b"POST /digest HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n")
        .unwrap();
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(500));
        c.send(&[b'z'; 10]).unwrap();
    }
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["len"], 50, "{r:?}");
}

#[test]
fn a_streamed_response_arrives_chunk_by_chunk() {
    let server = raw(&["-w", "1"]);
    let url = format!("http://127.0.0.1:{}/stream?n=4&gap=0.3", server.port);
    let out: serde_json::Value =
        serde_json::from_str(&client_script("httpx_stream.py", &[&url])).unwrap();
    assert_eq!(out["status"], 200);
    assert_eq!(out["headers"]["transfer-encoding"], "chunked");
    let chunks = out["chunks"].as_array().unwrap();
    assert_eq!(chunks.len(), 4, "{out}");
    let first = chunks[0][1].as_f64().unwrap();
    let last = chunks[3][1].as_f64().unwrap();
    // Four chunks 0.3 s apart: the first arrives long before the last.
    assert!(last - first >= 0.8, "chunks were held back: {out}");
}

#[test]
fn app_errors_are_500_or_a_closed_connection_and_logged() {
    let server = raw(&["-w", "1"]);
    let r = get(server.port, "/raise");
    assert_eq!(r.status, 500);
    server.expect_log("Exception in ASGI application");
    server.expect_log("RuntimeError: raised on purpose");
    let r = get(server.port, "/no-response");
    assert_eq!(r.status, 500);
    server.expect_log("ASGI callable returned without starting response.");
    // After the headers went out, the connection is closed mid-body.
    let mut c = Conn::tcp(server.port);
    c.send(b"GET /raise-late HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(
        c.read_response(false).is_err(),
        "a response cut short must not look complete"
    );
    // The worker serves on.
    assert_eq!(get(server.port, "/after").status, 200);
}

#[test]
fn a_client_that_leaves_is_an_http_disconnect() {
    use std::io::{Read, Write};
    let server = raw(&["-w", "1"]);
    let mut c = std::net::TcpStream::connect(loopback(server.port)).unwrap();
    c.write_all(b"GET /disconnect HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    c.set_read_timeout(Some(EVENT_TIMEOUT)).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("waiting") {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "closed early");
        seen.extend_from_slice(&buf[..n]);
    }
    drop(c);
    wait_until(EVENT_TIMEOUT, "the app to see http.disconnect", || {
        events(server.port).contains(&"disconnected".to_owned())
    });
}

/// gunicorn #3819: work an app does after its response must not hold up
/// the next request on the connection.
#[test]
fn a_background_task_does_not_hold_up_the_connection() {
    let server = raw(&["-w", "1"]);
    let mut c = Conn::tcp(server.port);
    let t = Instant::now();
    assert_eq!(c.request("GET", "/background", &[], b"").status, 200);
    assert_eq!(c.request("GET", "/next", &[], b"").status, 200);
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    wait_until(EVENT_TIMEOUT, "the background work to finish", || {
        events(server.port).contains(&"background done".to_owned())
    });
}

#[test]
fn fastapi_routes_uploads_state_and_background_tasks() {
    let server = Corral::app("fastapi_app:app")
        .args(["-k", "uvicorn.workers.UvicornWorker", "-w", "1"])
        .start();
    let out = client_script("httpx_fastapi.py", &[&server.port.to_string()]);
    assert!(out.contains("fastapi client: all ok"), "{out}");
    let url = format!("http://127.0.0.1:{}/stream?n=3&gap=0.3", server.port);
    let out: serde_json::Value =
        serde_json::from_str(&client_script("httpx_stream.py", &[&url])).unwrap();
    let chunks = out["chunks"].as_array().unwrap();
    assert_eq!(chunks.len(), 3, "{out}");
    assert!(chunks[2][1].as_f64().unwrap() - chunks[0][1].as_f64().unwrap() >= 0.5);
}

#[test]
fn django_async_views() {
    let server = Corral::app("djangoapp.asgi:application")
        .args(["-k", "asgi", "-w", "1"])
        .start();
    let r = get(server.port, "/async/");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "hello from async django, GET /async/\n");
    assert_eq!(get(server.port, "/hello/").status, 200);
    // Django has no lifespan support: auto mode says so and serves on.
    server.expect_log("ASGI 'lifespan' protocol appears unsupported.");
}

#[test]
fn lifespan_runs_before_serving_and_after_the_last_request() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("shutdown");
    let mut server = Corral::app("asgi_raw:app")
        .args(["-k", "asgi", "-w", "1"])
        .env("ASGI_RAW_SHUTDOWN_MARKER", marker.to_str().unwrap())
        .start();
    assert_eq!(events(server.port)[0], "startup");
    // TERM while a request is in the app: it completes, then shutdown runs.
    let port = server.port;
    let slow = std::thread::spawn(move || get(port, "/sleep?s=1.5").status);
    wait_until(EVENT_TIMEOUT, "the request in the app", || {
        events(port).contains(&"request /sleep".to_owned())
    });
    server.signal(libc::SIGTERM);
    assert_eq!(slow.join().unwrap(), 200);
    assert_eq!(server.wait_code(EVENT_TIMEOUT), 0);
    let text = std::fs::read_to_string(&marker).unwrap();
    // startup, /events, /sleep, /events (x2 at most, polling) ...: the
    // shutdown saw the sleeping request's event before it.
    assert!(text.starts_with("shutdown "), "{text}");
}

#[test]
fn a_failed_lifespan_startup_stops_corral_with_one_line() {
    let mut server = Corral::app("asgi_raw:app")
        .args(["-k", "asgi", "-w", "2"])
        .env("ASGI_RAW_FAIL_STARTUP", "1")
        .spawn();
    assert_eq!(server.wait_code(EVENT_TIMEOUT), 3);
    server.expect_log("Worker failed to boot. ASGI lifespan startup failed: the database is down");
}

#[test]
fn lifespan_off_is_never_run() {
    let server = raw(&["-w", "1", "--asgi-lifespan", "off"]);
    let ev = events(server.port);
    assert!(!ev.contains(&"startup".to_owned()), "{ev:?}");
    let scope = get(server.port, "/scope").json();
    assert_eq!(scope["state"], serde_json::json!({}), "{scope}");
}

/// `--timeout`: an awaiting request is cancelled and answered 504 with its
/// task's stack logged, and the worker serves on; a request that blocks the
/// whole loop gets the worker aborted (the master's heartbeat) and 504 too.
#[test]
fn timeouts_answer_504() {
    let server = raw(&["-w", "1", "--timeout", "2"]);
    let before = get(server.port, "/pid").json()["pid"].clone();
    let t = Instant::now();
    let r = get(server.port, "/sleep?s=30");
    assert_eq!(r.status, 504, "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());
    server.expect_log(
        "Request exceeded the timeout (2 s) before its response started; answering 504.",
    );
    server.expect_log("asgi_raw.py");
    assert_eq!(
        get(server.port, "/pid").json()["pid"],
        before,
        "same worker"
    );

    let r = get(server.port, "/block?s=30");
    assert_eq!(r.status, 504, "{r:?}");
    server.expect_log("WORKER TIMEOUT");
    wait_until(EVENT_TIMEOUT, "a new worker", || {
        let p = get(server.port, "/pid").json()["pid"].clone();
        p != before
    });
}

#[test]
fn access_log_and_max_requests() {
    let server = raw(&["-w", "1", "--access-logfile", "-", "--max-requests", "5"]);
    let first = get(server.port, "/pid").json()["pid"].clone();
    for i in 0..5 {
        assert_eq!(get(server.port, &format!("/n{i}")).status, 200);
    }
    let line = "\"GET /n3 HTTP/1.1\" 200";
    if server
        .stdout
        .wait_for(EVENT_TIMEOUT, |t| t.contains(line).then_some(()))
        .is_none()
    {
        panic!("no access log line {line}: {}", server.stdout.text());
    }
    wait_until(EVENT_TIMEOUT, "the recycled worker's replacement", || {
        get(server.port, "/pid").json()["pid"] != first
    });
}

#[test]
fn hup_under_load_loses_nothing() {
    let server = raw(&["-w", "2"]);
    let load = Load::with_uploads(
        std::net::SocketAddr::from(([127, 0, 0, 1], server.port)),
        3,
        3,
        2,
    );
    for _ in 0..10 {
        let old = server.workers();
        server.signal(libc::SIGHUP);
        wait_until(EVENT_TIMEOUT, "a new generation", || {
            let now = server.workers();
            now.len() == 2 && now.iter().all(|p| !old.contains(p))
        });
        load.progress(50, EVENT_TIMEOUT);
    }
    let tally = load.finish();
    eprintln!("asgi, 10 HUP: {}", tally.summary());
    assert_eq!(tally.lost, 0, "{}", tally.summary());
}

#[test]
fn uvicorn_class_names_and_bad_values() {
    for class in [
        "uvicorn.workers.UvicornH11Worker",
        "uvicorn_worker.UvicornWorker",
    ] {
        let apps = repo_dir().join("tests/apps");
        let out = run_corral(&[
            "-k",
            class,
            "--chdir",
            apps.to_str().unwrap(),
            "--check-config",
            "asgi_raw:app",
        ]);
        assert!(out.status.success(), "{class}: {}", out.stderr);
    }
    let out = run_corral(&["-k", "asgi", "--asgi-lifespan", "maybe", "asgi_raw:app"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.contains("--asgi-lifespan"), "{}", out.stderr);
}

#[test]
fn websockets_with_a_real_client() {
    let raw_server = raw(&["-w", "1"]);
    let fastapi = Corral::app("fastapi_app:app")
        .args(["-k", "asgi", "-w", "1"])
        .start();
    let small = raw(&["-w", "1", "--websocket-max-message-size", "1000"]);
    let out = client_script(
        "websockets_client.py",
        &[
            &raw_server.port.to_string(),
            &fastapi.port.to_string(),
            &small.port.to_string(),
        ],
    );
    assert!(out.contains("websockets client: all ok"), "{out}");
    raw_server.expect_log("RuntimeError: raised in a websocket");
}

/// permessage-deflate with a real client (which offers it by default): see
/// the script for what it checks.
#[test]
fn websocket_messages_are_compressed_when_the_client_offers_it() {
    let server = raw(&["-w", "1"]);
    let small = raw(&["-w", "1", "--websocket-max-message-size", "1048576"]);
    let out = client_script(
        "websockets_deflate.py",
        &[&server.port.to_string(), &small.port.to_string()],
    );
    assert!(out.contains("deflate: all ok"), "{out}");
    // On the wire: an agreed echo of 10,000 letters comes back as a short
    // frame with RSV1 set; an offer the server cannot honour (a 256-byte
    // window) is declined, and the echo is plain.
    for (offer, compressed) in [
        ("permessage-deflate; client_max_window_bits", true),
        ("permessage-deflate; server_max_window_bits=8", false),
    ] {
        let mut c = Conn::tcp(server.port);
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        c.send(
            format!(
                "GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\
                 Sec-WebSocket-Extensions: {offer}\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
        let r = c.read_response(true).unwrap();
        assert_eq!(r.status, 101, "{r:?}");
        assert_eq!(
            r.header("Sec-WebSocket-Extensions").is_some(),
            compressed,
            "{offer}: {r:?}"
        );
        let payload = vec![b'a'; 10_000];
        let mask = [1u8, 2, 3, 4];
        let mut frame = vec![0x81, 0x80 | 126];
        frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        c.send(&frame).unwrap();
        let head = c.read_exact_bytes(2).unwrap();
        if compressed {
            assert_eq!(head[0], 0xc1, "FIN, RSV1, text: {head:?}");
            assert!(
                usize::from(head[1]) < 126,
                "10,000 letters in {} bytes",
                head[1]
            );
        } else {
            assert_eq!(head[0], 0x81, "FIN, text: {head:?}");
            assert_eq!(head[1], 126, "{head:?}");
        }
    }
}

/// A reload must not wait for WebSocket clients (they never end by
/// themselves): the old worker closes them with 1001 and exits, and the
/// client reconnects to the new one.
#[test]
fn a_reload_closes_websockets_with_1001() {
    use std::io::BufRead;
    let server = raw(&["-w", "1"]);
    let url = format!("ws://127.0.0.1:{}/ws/echo", server.port);
    let mut client = spawn_client_script("websockets_wait_close.py", &[&url]);
    let mut lines = std::io::BufReader::new(client.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "open");
    let old = server.workers();
    let t = Instant::now();
    server.signal(libc::SIGHUP);
    assert_eq!(lines.next().unwrap().unwrap(), "closed 1001");
    assert!(client.wait().unwrap().success());
    wait_until(EVENT_TIMEOUT, "the old worker to leave", || {
        server.workers().iter().all(|p| !old.contains(p)) && server.workers().len() == 1
    });
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let again = client_script(
        "websockets_wait_close.py",
        &[&url.replace("/ws/echo", "/ws/close")],
    );
    assert_eq!(again, "got bye\nclosed 4001\n");
}

/// The config file's request hooks run around ASGI requests too (with no
/// WSGI environ: `None`), and the metrics count them.
#[test]
fn request_hooks_and_metrics_see_asgi_requests() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("hooks");
    let conf = dir.path().join("conf.py");
    std::fs::write(
        &conf,
        format!(
            "def pre_request(worker, req):\n    \
                 open({rec:?}, 'a').write(f'pre {{req.method}} {{req.path}}\\n')\n\
             def post_request(worker, req, environ, resp):\n    \
                 open({rec:?}, 'a').write(f'post {{req.path}} {{environ}} {{resp.status}}\\n')\n",
            rec = record.to_str().unwrap()
        ),
    )
    .unwrap();
    let mport = crate::harness::free_port();
    let server = raw(&[
        "-w",
        "1",
        "-c",
        conf.to_str().unwrap(),
        "--metrics-bind",
        &format!("127.0.0.1:{mport}"),
    ]);
    assert_eq!(get(server.port, "/hooked").status, 200);
    assert_eq!(get(server.port, "/missing/x").status, 404);
    wait_until(EVENT_TIMEOUT, "both post_request calls", || {
        std::fs::read_to_string(&record).is_ok_and(|t| t.matches("post ").count() == 2)
    });
    let text = std::fs::read_to_string(&record).unwrap();
    assert!(text.contains("pre GET /hooked\n"), "{text}");
    assert!(text.contains("post /hooked None 200 OK\n"), "{text}");
    assert!(
        text.contains("post /missing/x None 404 Not Found\n"),
        "{text}"
    );
    let page = get(mport, "/metrics").text();
    assert!(
        page.contains("corral_requests_total{method=\"GET\",code=\"200\"} 1\n")
            && page.contains("corral_requests_total{method=\"GET\",code=\"404\"} 1\n"),
        "{page}"
    );
}

/// A client that sends its close frame and closes the connection at once
/// (no waiting for the echo): the app gets the client's code, not 1006;
/// one that just drops the connection gives 1006.
#[test]
fn a_close_frame_sent_with_the_end_of_the_connection_is_read() {
    use std::io::{Read, Write};
    let server = raw(&["-w", "1"]);
    let handshake = b"GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
                      Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                      Sec-WebSocket-Version: 13\r\n\r\n";
    for (code, expect) in [(Some(4002u16), "ws closed 4002"), (None, "ws closed 1006")] {
        let mut c = std::net::TcpStream::connect(loopback(server.port)).unwrap();
        c.set_read_timeout(Some(EVENT_TIMEOUT)).unwrap();
        c.write_all(handshake).unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 512];
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = c.read(&mut buf).unwrap();
            assert!(n > 0);
            seen.extend_from_slice(&buf[..n]);
        }
        assert!(
            seen.starts_with(b"HTTP/1.1 101 "),
            "{}",
            String::from_utf8_lossy(&seen)
        );
        if let Some(code) = code {
            // A masked close frame (mask 0: the payload is as is).
            let frame = [0x88, 0x82, 0, 0, 0, 0, (code >> 8) as u8, code as u8];
            c.write_all(&frame).unwrap();
        }
        drop(c);
        let seen = poll(EVENT_TIMEOUT, || {
            events(server.port)
                .contains(&expect.to_owned())
                .then_some(())
        });
        // On a timeout, say what the app saw instead.
        assert!(
            seen.is_some(),
            "{expect} never came; the app's events: {:?}",
            events(server.port)
        );
    }
}

/// `--asgi-loop`: uvloop when installed (`auto`, the default), or the one
/// asked for.
#[test]
fn the_event_loop_is_the_one_asked_for() {
    for (flag, module) in [
        ("auto", "uvloop"),
        ("uvloop", "uvloop"),
        ("asyncio", "asyncio.unix_events"),
    ] {
        let server = raw(&["-w", "1", "--asgi-loop", flag]);
        assert_eq!(get(server.port, "/loop").json()["loop"], module, "{flag}");
        // And it serves a streamed response on it.
        assert_eq!(get(server.port, "/stream?n=2").status, 200);
    }
}

/// A client that hangs up on a response in progress makes `send` raise
/// (ASGI 2.4); an app that lets that escape is not logged as an error.
#[test]
fn a_client_leaving_mid_response_is_no_error_line() {
    use std::io::{Read, Write};
    let server = raw(&["-w", "1", "--log-level", "debug"]);
    let mut c = std::net::TcpStream::connect(loopback(server.port)).unwrap();
    c.write_all(b"GET /stream?n=50&gap=0.05 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(c.read(&mut buf).unwrap() > 0);
    drop(c);
    server.expect_log("Exception in ASGI application after the client left");
    assert!(server
        .stderr
        .text()
        .contains("OSError: client disconnected"));
    // The worker serves on, and said nothing at ERROR about the hang-up.
    assert_eq!(get(server.port, "/after").status, 200);
    let log = server.stderr.text();
    assert!(!log.contains("[ERROR]"), "{log}");
}

/// The `Content-Length` corral adds for a whole body given at once is
/// never one that would mislead: none on 204 and 304, none for a HEAD
/// answered without its body.
#[test]
fn content_length_is_added_only_where_it_is_true() {
    let server = raw(&["-w", "1"]);
    let r = get(server.port, "/empty?code=200");
    assert_eq!(r.header("content-length"), Some("0"), "{r:?}");
    for code in ["204", "304"] {
        let r = get(server.port, &format!("/empty?code={code}"));
        assert_eq!(r.status.to_string(), code);
        assert_eq!(r.header("content-length"), None, "{code}: {r:?}");
        assert_eq!(r.header("transfer-encoding"), None, "{code}: {r:?}");
    }
    let r = Conn::tcp(server.port).request("HEAD", "/empty?code=200", &[], b"");
    assert_eq!(r.header("content-length"), None, "{r:?}");
    // A HEAD whose app computed the body: its length is the GET's.
    let get_len = get(server.port, "/same").body.len().to_string();
    let r = Conn::tcp(server.port).request("HEAD", "/same", &[], b"");
    assert_eq!(r.header("content-length"), Some(get_len.as_str()), "{r:?}");
}

/// An app that polls `receive` with a timeout (each poll cancels one
/// receive) still gets its later receives.
#[test]
fn a_cancelled_receive_leaves_later_ones_working() {
    let server = raw(&["-w", "1"]);
    let r = get(server.port, "/poll-receive");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["survived"], true);
}

/// A burst the app is a second behind on pauses reading; every message
/// is still delivered once it catches up.
#[test]
fn a_websocket_burst_beyond_the_inbox_is_delivered_in_full() {
    let server = raw(&["-w", "1"]);
    let url = format!("ws://127.0.0.1:{}/ws/slow", server.port);
    let out = client_script("websockets_slow.py", &[&url]);
    assert!(out.contains("slow: all ok"), "{out}");
}

/// A WebSocket its app accepts after a stop began is closed with 1001 too,
/// and the stop does not wait for it.
#[test]
fn a_websocket_accepted_during_a_stop_is_closed_with_1001() {
    use std::io::BufRead;
    let mut server = raw(&["-w", "1", "--graceful-timeout", "20"]);
    let url = format!("ws://127.0.0.1:{}/ws/late", server.port);
    let mut client = spawn_client_script("websockets_late.py", &[&url]);
    // The handshake is with the app (it accepts two seconds late): stop now.
    wait_until(EVENT_TIMEOUT, "the handshake to reach the app", || {
        events(server.port).contains(&"ws /ws/late".to_owned())
    });
    let t = Instant::now();
    server.signal(libc::SIGTERM);
    let mut lines = std::io::BufReader::new(client.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "open");
    assert_eq!(lines.next().unwrap().unwrap(), "closed 1001");
    assert!(client.wait().unwrap().success());
    assert_eq!(server.wait_code(EVENT_TIMEOUT), 0);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
}

/// `--timeout` is for an answer to start: a response streaming for longer
/// is not cut.
#[test]
fn a_streaming_response_outlives_the_timeout() {
    let server = raw(&["-w", "1", "--timeout", "2"]);
    let url = format!("http://127.0.0.1:{}/stream?n=8&gap=0.5", server.port);
    let out: serde_json::Value =
        serde_json::from_str(&client_script("httpx_stream.py", &[&url])).unwrap();
    assert_eq!(out["status"], 200);
    assert_eq!(out["chunks"].as_array().unwrap().len(), 8, "{out}");
}

/// A handshake that carries a body (legal on a GET, if odd): the body is
/// read as the request's, and only the bytes after it are WebSocket frames.
/// Sent in one write with a frame behind it, the frame is echoed and the
/// body never is: were the body read as frames, "hello" would be a bad
/// frame and the connection closed with 1002.
#[test]
fn a_handshake_with_a_body_reads_frames_only_after_it() {
    let server = raw(&["-w", "1"]);
    let mut c = Conn::tcp(server.port);
    let mut wire = b"GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
                     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                     Sec-WebSocket-Version: 13\r\nContent-Length: 5\r\n\r\nhello"
        .to_vec();
    let mask = [7u8, 9, 11, 13];
    wire.extend_from_slice(&[0x81, 0x80 | 4]);
    wire.extend_from_slice(&mask);
    wire.extend(b"ping".iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    c.send(&wire).unwrap();
    let r = c.read_response(true).unwrap();
    assert_eq!(r.status, 101, "{r:?}");
    assert_eq!(
        c.read_exact_bytes(6).unwrap(),
        b"\x81\x04ping",
        "the frame after the body, echoed"
    );
}
