//! Tests for the WSGI bridge: real apps (written to a temporary module
//! directory) run through `PyThread::call` with hand-built requests and a
//! recording sink.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use pyo3::prelude::*;

use super::AllowIp;
use super::*;
use crate::http::{BodyKind, Header, RequestHead, Version};

fn module_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        init_interpreter(&InterpreterOptions::default()).expect("interpreter");
        let dir = std::env::temp_dir().join(format!("corral-wsgi-tests-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Python::attach(|py| {
            let path = py.import("sys").unwrap().getattr("path").unwrap();
            path.call_method1("insert", (0, dir.to_str().unwrap()))
                .unwrap();
        });
        dir
    })
}

/// `SCRIPT_NAME` is read from the process environment at load time; loads
/// are serialised so the test that sets it does not leak into others.
static LOAD_LOCK: Mutex<()> = Mutex::new(());

fn write_module(name: &str, src: &str) {
    let dir = module_dir();
    std::fs::write(dir.join(format!("{name}.py")), src).unwrap();
    Python::attach(|py| {
        py.import("importlib")
            .unwrap()
            .call_method0("invalidate_caches")
            .unwrap();
    });
}

fn load(spec: &str) -> Result<App, LoadError> {
    module_dir();
    let _g = LOAD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    load_app(spec)
}

fn app(name: &str, src: &str) -> App {
    write_module(name, src);
    load(&format!("{name}:app")).unwrap_or_else(|e| panic!("{e}: {:?}", e.traceback))
}

/// Evaluate a Python expression in module `name`'s namespace.
fn py_eval<T: for<'a, 'py> FromPyObject<'a, 'py>>(name: &str, expr: &str) -> T {
    Python::attach(|py| {
        let m = py.import(name).unwrap();
        let code = CString::new(expr).unwrap();
        let v = py
            .eval(&code, Some(&m.dict()), None)
            .unwrap_or_else(|e| panic!("{expr}: {e}"));
        v.extract()
            .unwrap_or_else(|_| panic!("{expr}: cannot extract"))
    })
}

fn py_true(name: &str, expr: &str) {
    assert!(py_eval::<bool>(name, expr), "{expr} is false in {name}");
}

fn tcp(s: &str) -> SockAddr {
    SockAddr::Tcp(s.parse::<SocketAddr>().unwrap())
}

fn head(method: &str, target: &str, headers: &[(&str, &[u8])]) -> RequestHead {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), q.to_owned()),
        None => (target.to_owned(), String::new()),
    };
    RequestHead {
        method: method.to_owned().into(),
        target: target.to_owned(),
        path,
        query,
        version: Version::Http11,
        headers: headers
            .iter()
            .map(|(n, v)| Header {
                name: (*n).to_owned(),
                value: v.to_vec(),
            })
            .collect(),
        body: BodyKind::None,
        keep_alive: true,
        expect_continue: false,
    }
}

fn request(method: &str, target: &str, headers: &[(&str, &[u8])], body: Body) -> Request {
    Request {
        head: head(method, target, headers),
        body,
        peer: tcp("10.1.2.3:5555"),
        local: tcp("127.0.0.1:8000"),
        proxy: None,
    }
}

fn get(target: &str) -> Request {
    request(
        "GET",
        target,
        &[("Host", b"localhost:8000")],
        Body::Memory(Vec::new()),
    )
}

fn ctx() -> ServeContext {
    ServeContext {
        multithread: true,
        multiprocess: false,
        forwarded_allow_ips: vec![],
        secure_scheme_headers: None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Start(String, Vec<(String, String)>),
    Body(Vec<u8>, bool),
    File(u64, Option<u64>, Vec<u8>),
}

/// A sink that records every call; it can be told to fail.
#[derive(Default)]
struct Rec {
    events: Vec<Ev>,
    /// Fail with ClientGone on the n-th body call (0-based).
    gone_at_body: Option<usize>,
    bad_start: bool,
    bodies: usize,
    /// Python expression evaluated in this module at each body call.
    probe: Option<(&'static str, &'static str)>,
    probes: Vec<i64>,
}

impl ResponseSink for Rec {
    fn start(&mut self, status: &str, headers: &[(String, String)]) -> Result<(), SinkError> {
        if self.bad_start {
            self.bad_start = false;
            return Err(SinkError::BadResponse("bad status line".into()));
        }
        self.events
            .push(Ev::Start(status.to_owned(), headers.to_vec()));
        Ok(())
    }

    fn body(&mut self, data: &[u8], last: bool) -> Result<(), SinkError> {
        if self.gone_at_body == Some(self.bodies) {
            return Err(SinkError::ClientGone);
        }
        self.bodies += 1;
        if let Some((m, e)) = self.probe {
            self.probes.push(py_eval(m, e));
        }
        self.events.push(Ev::Body(data.to_vec(), last));
        Ok(())
    }

    fn file(&mut self, mut file: File, offset: u64, len: Option<u64>) -> Result<(), SinkError> {
        let mut all = Vec::new();
        file.seek(SeekFrom::Start(offset)).unwrap();
        file.read_to_end(&mut all).unwrap();
        self.events.push(Ev::File(offset, len, all));
        Ok(())
    }
}

impl Rec {
    fn status(&self) -> &str {
        match self.events.first() {
            Some(Ev::Start(s, _)) => s,
            other => panic!("no start: {other:?}"),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        match self.events.first() {
            Some(Ev::Start(_, h)) => h
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str()),
            _ => None,
        }
    }

    fn body(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for e in &self.events {
            if let Ev::Body(b, _) = e {
                out.extend_from_slice(b);
            }
        }
        out
    }

    fn starts(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, Ev::Start(..)))
            .count()
    }
}

fn run_ctx(app: &App, ctx: &ServeContext, req: Request, sink: &mut Rec) -> Outcome {
    let shared = std::sync::Arc::new(std::sync::Mutex::new(std::mem::take(sink)));
    let mut req = req;
    let out = python_thread(|t| t.call(app, ctx, &mut req, shared.clone(), None));
    *sink = std::sync::Arc::try_unwrap(shared)
        .ok()
        .expect("the bridge keeps no reference to the sink after the call")
        .into_inner()
        .unwrap();
    out
}

fn run(app: &App, req: Request) -> (Outcome, Rec) {
    let mut rec = Rec::default();
    let out = run_ctx(app, &ctx(), req, &mut rec);
    (out, rec)
}

fn start(status: &str, headers: &[(&str, &str)]) -> Ev {
    Ev::Start(
        status.into(),
        headers
            .iter()
            .map(|(a, b)| ((*a).into(), (*b).into()))
            .collect(),
    )
}

const RECORD_ENV: &str = r#"
E = None
def app(environ, start_response):
    global E
    E = environ
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"#;

fn env_strings(module: &str) -> HashMap<String, String> {
    py_eval(module, "{k: v for k, v in E.items() if isinstance(v, str)}")
}

#[test]
fn environ_for_a_get_request() {
    let a = app("t_env_get", RECORD_ENV);
    let req = request(
        "GET",
        "/caf%C3%A9/a%2Fb%20c%e9?x=1&y=%20z",
        &[
            ("Host", b"example.com:8080"),
            ("User-Agent", b"test/1"),
            ("X-Multi", b"a"),
            ("x-multi", b"b"),
            ("X-Latin", b"\xe9t\xe9"),
        ],
        Body::Memory(Vec::new()),
    );
    let (out, rec) = run(&a, req);
    assert_eq!(out, Outcome::Complete);
    assert_eq!(
        rec.events,
        vec![
            start("200 OK", &[("Content-Type", "text/plain")]),
            Ev::Body(b"ok".to_vec(), true)
        ]
    );
    let e = env_strings("t_env_get");
    let want = [
        ("REQUEST_METHOD", "GET"),
        ("SCRIPT_NAME", ""),
        // Percent-decoded bytes as latin-1: UTF-8 é is two chars, %2F is a slash.
        ("PATH_INFO", "/caf\u{c3}\u{a9}/a/b c\u{e9}"),
        ("QUERY_STRING", "x=1&y=%20z"),
        ("RAW_URI", "/caf%C3%A9/a%2Fb%20c%e9?x=1&y=%20z"),
        ("SERVER_NAME", "example.com"),
        ("SERVER_PORT", "8080"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        (
            "SERVER_SOFTWARE",
            concat!("corral/", env!("CARGO_PKG_VERSION")),
        ),
        ("REMOTE_ADDR", "10.1.2.3"),
        ("REMOTE_PORT", "5555"),
        ("HTTP_HOST", "example.com:8080"),
        ("HTTP_USER_AGENT", "test/1"),
        ("HTTP_X_MULTI", "a,b"),
        ("HTTP_X_LATIN", "\u{e9}t\u{e9}"),
        ("wsgi.url_scheme", "http"),
    ];
    for (k, v) in want {
        assert_eq!(e.get(k).map(String::as_str), Some(v), "{k}");
    }
    assert!(!e.contains_key("CONTENT_TYPE") && !e.contains_key("CONTENT_LENGTH"));
    py_true(
        "t_env_get",
        "E['wsgi.version'] == (1, 0) and type(E['wsgi.version']) is tuple",
    );
    py_true(
        "t_env_get",
        "E['wsgi.multithread'] is True and E['wsgi.multiprocess'] is False",
    );
    py_true(
        "t_env_get",
        "E['wsgi.run_once'] is False and E['wsgi.input_terminated'] is True",
    );
    py_true("t_env_get", "E['wsgi.input'].read() == b''");
    py_true(
        "t_env_get",
        "hasattr(E['wsgi.errors'], 'write') and callable(E['wsgi.file_wrapper'])",
    );
    py_true("t_env_get", "all(type(k) is str for k in E)");
    // The template's reserved keys and room never show through.
    py_true(
        "t_env_get",
        "all(v is not None for v in E.values()) and not any(k.startswith('corral.') for k in E)",
    );
}

#[test]
fn peer_addresses_are_written_digit_for_digit() {
    let a = app("t_env_digits", RECORD_ENV);
    for (peer, addr, port) in [
        ("0.0.0.0:0", "0.0.0.0", "0"),
        ("255.255.255.255:65535", "255.255.255.255", "65535"),
        ("10.0.9.100:10", "10.0.9.100", "10"),
        ("192.168.1.20:9", "192.168.1.20", "9"),
    ] {
        let mut req = request("GET", "/", &[("Host", b"h")], Body::Memory(Vec::new()));
        req.peer = tcp(peer);
        req.local = tcp("127.0.0.1:8000");
        run(&a, req);
        let e = env_strings("t_env_digits");
        assert_eq!(
            (e["REMOTE_ADDR"].as_str(), e["REMOTE_PORT"].as_str()),
            (addr, port),
            "{peer}"
        );
    }
    // No Host: the local address and port name the server.
    let mut req = request("GET", "/", &[], Body::Memory(Vec::new()));
    req.local = tcp("127.0.0.1:65535");
    run(&a, req);
    let e = env_strings("t_env_digits");
    assert_eq!(
        (e["SERVER_NAME"].as_str(), e["SERVER_PORT"].as_str()),
        ("127.0.0.1", "65535")
    );
}

#[test]
fn content_headers_are_cgi_variables() {
    let a = app("t_env_post", RECORD_ENV);
    let req = request(
        "POST",
        "/submit",
        &[
            ("Host", b"h"),
            ("Content-Type", b"text/plain"),
            ("Content-Length", b"3"),
        ],
        Body::Memory(b"abc".to_vec()),
    );
    let (out, _) = run(&a, req);
    assert_eq!(out, Outcome::Complete);
    let e = env_strings("t_env_post");
    assert_eq!(e["CONTENT_TYPE"], "text/plain");
    assert_eq!(e["CONTENT_LENGTH"], "3");
    assert!(!e.contains_key("HTTP_CONTENT_TYPE") && !e.contains_key("HTTP_CONTENT_LENGTH"));
    // Host without a port: the scheme's default.
    assert_eq!(
        (e["SERVER_NAME"].as_str(), e["SERVER_PORT"].as_str()),
        ("h", "80")
    );
}

#[test]
fn server_name_from_v6_host_local_address_and_unix_socket() {
    let a = app("t_env_addr", RECORD_ENV);
    let req = request(
        "GET",
        "/",
        &[("Host", b"[::1]:9000")],
        Body::Memory(Vec::new()),
    );
    run(&a, req);
    let e = env_strings("t_env_addr");
    assert_eq!(
        (e["SERVER_NAME"].as_str(), e["SERVER_PORT"].as_str()),
        ("[::1]", "9000")
    );

    let mut req = request("GET", "/", &[], Body::Memory(Vec::new()));
    req.local = tcp("[2001:db8::1]:8443");
    req.peer = tcp("[2001:db8::2]:40000");
    run(&a, req);
    let e = env_strings("t_env_addr");
    assert_eq!(
        (e["SERVER_NAME"].as_str(), e["SERVER_PORT"].as_str()),
        ("[2001:db8::1]", "8443")
    );
    assert_eq!(
        (e["REMOTE_ADDR"].as_str(), e["REMOTE_PORT"].as_str()),
        ("2001:db8::2", "40000")
    );

    let mut req = request("GET", "/", &[], Body::Memory(Vec::new()));
    req.local = SockAddr::Unix(Some(PathBuf::from("/run/app.sock")));
    req.peer = SockAddr::Unix(None);
    run(&a, req);
    let e = env_strings("t_env_addr");
    assert_eq!(
        (e["SERVER_NAME"].as_str(), e["SERVER_PORT"].as_str()),
        ("/run/app.sock", "")
    );
    assert_eq!(e["REMOTE_ADDR"], "");
    assert!(!e.contains_key("REMOTE_PORT"));
}

#[test]
fn script_name_from_the_environment_is_stripped() {
    write_module("t_env_script", RECORD_ENV);
    let a = {
        module_dir();
        let _g = LOAD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        std::env::set_var("SCRIPT_NAME", "/prefix");
        let a = load_app("t_env_script:app");
        std::env::remove_var("SCRIPT_NAME");
        a.unwrap()
    };
    run(&a, get("/prefix/page?q"));
    let e = env_strings("t_env_script");
    assert_eq!(
        (e["SCRIPT_NAME"].as_str(), e["PATH_INFO"].as_str()),
        ("/prefix", "/page")
    );
    run(&a, get("/other"));
    let e = env_strings("t_env_script");
    assert_eq!(e["PATH_INFO"], "/other");
}

const INPUT_APP: &str = r#"
def app(environ, start_response):
    i = environ["wsgi.input"]
    mode = environ["QUERY_STRING"]
    if mode == "read":
        out = [i.read(2), i.read(0), i.read(), i.read()]
    elif mode == "readline":
        out = [i.readline(), i.readline(3), i.readline(), i.readline(-1), i.readline()]
    elif mode == "readlines":
        out = [i.readlines(1), i.readlines()]
    elif mode == "iter":
        out = list(i)
    else:
        out = [i.read(None)]
    start_response("200 OK", [])
    return [repr(out).encode()]
"#;

const BODY: &[u8] = b"first line\nsecond\n\nlast";

fn spilled(data: &[u8], junk_after: &[u8]) -> Body {
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = module_dir().join(format!("body-{}", N.fetch_add(1, Ordering::Relaxed)));
    let mut f = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    f.write_all(data).unwrap();
    // Bytes past `len` must never be read.
    f.write_all(junk_after).unwrap();
    Body::File {
        file: f,
        len: data.len() as u64,
    }
}

#[test]
fn input_from_memory_and_file_bodies() {
    let a = app("t_input", INPUT_APP);
    let cases: [(&str, &str); 5] = [
        ("read", "[b'fi', b'', b'rst line\\nsecond\\n\\nlast', b'']"),
        (
            "readline",
            "[b'first line\\n', b'sec', b'ond\\n', b'\\n', b'last']",
        ),
        (
            "readlines",
            "[[b'first line\\n'], [b'second\\n', b'\\n', b'last']]",
        ),
        ("iter", "[b'first line\\n', b'second\\n', b'\\n', b'last']"),
        ("all", "[b'first line\\nsecond\\n\\nlast']"),
    ];
    for (mode, want) in cases {
        for body in [Body::Memory(BODY.to_vec()), spilled(BODY, b"JUNK")] {
            let kind = format!("{body:?}").chars().take(6).collect::<String>();
            let req = request("POST", &format!("/?{mode}"), &[], body);
            let (out, rec) = run(&a, req);
            assert_eq!(out, Outcome::Complete);
            assert_eq!(
                String::from_utf8(rec.body()).unwrap(),
                want,
                "{mode} {kind}"
            );
        }
    }
}

#[test]
fn large_file_body_is_read_in_full() {
    let a = app("t_input_big", INPUT_APP);
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    write_module(
        "t_input_big2",
        "def app(environ, start_response):\n    d = environ['wsgi.input'].read()\n    start_response('200 OK', [])\n    return [d]\n",
    );
    let echo = load("t_input_big2:app").unwrap();
    let (_, rec) = run(&echo, request("POST", "/", &[], spilled(&data, b"tail")));
    assert_eq!(rec.body(), data);
    drop(a);
}

const START_RESPONSE_CHECKS: &str = r#"
import sys
SEEN = []
def attempt(start_response, *args):
    try:
        start_response(*args)
        SEEN.append("ok")
    except Exception as e:
        SEEN.append(type(e).__name__)

def app(environ, start_response):
    SEEN.clear()
    attempt(start_response, 200, [])
    attempt(start_response, "OK", [])
    attempt(start_response, "200 OK", ())
    attempt(start_response, "200 OK", [("A", 1)])
    attempt(start_response, "200 OK", [("A", "b", "c")])
    attempt(start_response, "200 OK", [("A", "b\r\nX-Injected: 1")])
    attempt(start_response, "200 OK", [("A", "\u0100")])
    attempt(start_response, "200 OK", [("X-First", "1")])
    attempt(start_response, "201 Created", [])
    try:
        raise ValueError("boom")
    except ValueError:
        attempt(start_response, "503 Service Unavailable", [("X-Replaced", "yes")], sys.exc_info())
    return [b"body"]
"#;

#[test]
fn start_response_checks_and_exc_info_before_headers() {
    let a = app("t_sr", START_RESPONSE_CHECKS);
    let (out, rec) = run(&a, get("/"));
    assert_eq!(out, Outcome::Complete);
    let seen: Vec<String> = py_eval("t_sr", "SEEN");
    assert_eq!(
        seen,
        [
            "TypeError",
            "ValueError",
            "TypeError",
            "TypeError",
            "ValueError",
            "ValueError",
            "ValueError",
            "ok",
            "RuntimeError",
            "ok"
        ]
    );
    assert_eq!(
        rec.events,
        vec![
            start("503 Service Unavailable", &[("X-Replaced", "yes")]),
            Ev::Body(b"body".to_vec(), true)
        ]
    );
}

const EXC_AFTER_HEADERS: &str = r#"
import sys
RERAISED = None
def app(environ, start_response):
    global RERAISED
    start_response("200 OK", [])
    yield b"partial"
    try:
        raise KeyError("late")
    except KeyError:
        try:
            start_response("500 Oops", [], sys.exc_info())
        except KeyError as e:
            RERAISED = repr(e)
            raise
"#;

#[test]
fn exc_info_after_headers_reraises_and_aborts() {
    let a = app("t_sr_late", EXC_AFTER_HEADERS);
    let (out, rec) = run(&a, get("/"));
    assert_eq!(out, Outcome::Aborted);
    assert_eq!(
        rec.events,
        vec![start("200 OK", &[]), Ev::Body(b"partial".to_vec(), false)]
    );
    assert_eq!(
        py_eval::<String>("t_sr_late", "RERAISED"),
        "KeyError('late')"
    );
}

#[test]
fn write_sends_headers_then_data_before_the_iterable() {
    let a = app(
        "t_write",
        r#"
ERR = None
def app(environ, start_response):
    global ERR
    w = start_response("200 OK", [("X", "1")])
    w(b"a")
    w(b"")
    w(b"b")
    try:
        w("text")
    except TypeError as e:
        ERR = str(e)
    return [b"c", b""]
"#,
    );
    let (out, rec) = run(&a, get("/"));
    assert_eq!(out, Outcome::Complete);
    assert_eq!(
        rec.events,
        vec![
            start("200 OK", &[("X", "1")]),
            Ev::Body(b"a".to_vec(), false),
            Ev::Body(b"b".to_vec(), false),
            Ev::Body(b"c".to_vec(), true),
        ]
    );
    assert!(py_eval::<String>("t_write", "ERR").contains("bytes"));
}

#[test]
fn write_streams_before_the_app_returns_and_dies_with_the_request() {
    // PEP 3333: write() must not return before its data is on its way, so
    // an app streaming through write() is never held whole in memory.
    let a = app(
        "t_write_stream",
        r#"
STEP = 0
KEPT = None
def app(environ, start_response):
    global STEP, KEPT
    STEP = 0
    w = start_response("200 OK", [])
    KEPT = w
    for part in (b"one", b"two"):
        STEP += 1
        w(part)
    STEP += 1
    return []

def late():
    try:
        KEPT(b"late")
    except RuntimeError:
        return "RuntimeError"
    return "no error"
"#,
    );
    let mut rec = Rec {
        probe: Some(("t_write_stream", "STEP")),
        ..Rec::default()
    };
    let out = run_ctx(&a, &ctx(), get("/"), &mut rec);
    assert_eq!(out, Outcome::Complete);
    assert_eq!(rec.probes, vec![1, 2]);
    assert_eq!(rec.body(), b"onetwo");
    // A write() callable kept past its request cannot reach the sink.
    assert_eq!(
        py_eval::<String>("t_write_stream", "late()"),
        "RuntimeError"
    );
}

#[test]
fn headers_wait_for_the_first_non_empty_chunk() {
    // The generator only calls start_response when first advanced, and
    // yields empty strings first: both must work and be invisible.
    let a = app(
        "t_deferred",
        r#"
def app(environ, start_response):
    def gen():
        yield b""
        start_response("202 Accepted", [("X-Late", "1")])
        yield b""
        yield b"x"
    return gen()
"#,
    );
    let (out, rec) = run(&a, get("/"));
    assert_eq!(out, Outcome::Complete);
    assert_eq!(
        rec.events,
        vec![
            start("202 Accepted", &[("X-Late", "1")]),
            Ev::Body(b"x".to_vec(), false)
        ]
    );

    // An empty body (HEAD-like): headers at the end, no body call.
    let a = app(
        "t_empty",
        "def app(e, sr):\n    sr('204 No Content', [])\n    return []\n",
    );
    let (out, rec) = run(&a, get("/"));
    assert_eq!(out, Outcome::Complete);
    assert_eq!(rec.events, vec![start("204 No Content", &[])]);
}

#[test]
fn generators_are_streamed_chunk_by_chunk() {
    let a = app(
        "t_stream",
        r#"
PRODUCED = 0
def app(environ, start_response):
    global PRODUCED
    PRODUCED = 0
    start_response("200 OK", [])
    def gen():
        global PRODUCED
        for part in (b"one", b"two", b"three"):
            PRODUCED += 1
            yield part
    return gen()
"#,
    );
    let mut rec = Rec {
        probe: Some(("t_stream", "PRODUCED")),
        ..Rec::default()
    };
    let out = run_ctx(&a, &ctx(), get("/"), &mut rec);
    assert_eq!(out, Outcome::Complete);
    // Each chunk reached the sink before the next one was produced.
    assert_eq!(rec.probes, vec![1, 2, 3]);
    assert_eq!(rec.body(), b"onetwothree");
    assert!(rec.events.iter().all(|e| !matches!(e, Ev::Body(_, true))));
}

const CLOSING: &str = r#"
CLOSED = 0
class Resp:
    def __init__(self, items):
        self.items = items
    def __iter__(self):
        for it in self.items:
            if isinstance(it, Exception):
                raise it
            yield it
    def close(self):
        global CLOSED
        CLOSED += 1
        raise OSError("close failure is only logged")

def app(environ, start_response):
    start_response("200 OK", [])
    q = environ["QUERY_STRING"]
    if q == "ok":
        return Resp([b"a", b"b"])
    if q == "early":
        return Resp([RuntimeError("before anything")])
    return Resp([b"a", RuntimeError("midway")])
"#;

#[test]
fn close_is_always_called() {
    let a = app("t_close", CLOSING);
    let (out, rec) = run(&a, get("/?ok"));
    assert_eq!((out, rec.body()), (Outcome::Complete, b"ab".to_vec()));
    assert_eq!(py_eval::<i64>("t_close", "CLOSED"), 1);

    let (out, rec) = run(&a, get("/?early"));
    assert_eq!(
        (out, rec.status()),
        (Outcome::Complete, "500 Internal Server Error")
    );
    assert_eq!(py_eval::<i64>("t_close", "CLOSED"), 2);

    let (out, _) = run(&a, get("/?midway"));
    assert_eq!(out, Outcome::Aborted);
    assert_eq!(py_eval::<i64>("t_close", "CLOSED"), 3);

    let mut rec = Rec {
        gone_at_body: Some(1),
        ..Rec::default()
    };
    let out = run_ctx(&a, &ctx(), get("/?ok"), &mut rec);
    assert_eq!(out, Outcome::Aborted);
    assert_eq!(py_eval::<i64>("t_close", "CLOSED"), 4);
}

#[test]
fn file_wrapper_uses_sendfile_from_the_current_position() {
    let path = module_dir().join("static.txt");
    std::fs::write(&path, b"0123456789").unwrap();
    let a = app(
        "t_fw",
        &format!(
            r#"
import io
FILE = None
def app(environ, start_response):
    global FILE
    start_response("200 OK", [("Content-Type", "text/plain")])
    if environ["QUERY_STRING"] == "bytesio":
        return environ["wsgi.file_wrapper"](io.BytesIO(b"abcdefgh"), 3)
    FILE = open({path:?}, "rb")
    FILE.read(3)
    return environ["wsgi.file_wrapper"](FILE)
"#,
            path = path.to_str().unwrap()
        ),
    );
    let (out, rec) = run(&a, get("/"));
    assert_eq!(out, Outcome::Complete);
    assert_eq!(
        rec.events,
        vec![
            start("200 OK", &[("Content-Type", "text/plain")]),
            Ev::File(3, None, b"3456789".to_vec())
        ]
    );
    // The wrapper's close() closed the app's file.
    py_true("t_fw", "FILE.closed");

    let (out, rec) = run(&a, get("/?bytesio"));
    assert_eq!(out, Outcome::Complete);
    let chunks: Vec<Ev> = rec.events[1..].to_vec();
    assert_eq!(
        chunks,
        vec![
            Ev::Body(b"abc".to_vec(), false),
            Ev::Body(b"def".to_vec(), false),
            Ev::Body(b"gh".to_vec(), false)
        ]
    );
}

fn assert_500(rec: &Rec) {
    assert_eq!(rec.status(), "500 Internal Server Error");
    assert_eq!(rec.header("Connection"), Some("close"));
    assert_eq!(rec.header("Content-Type"), Some("text/plain"));
    let body = String::from_utf8(rec.body()).unwrap();
    assert!(
        !body.contains("Traceback") && !body.contains("secret"),
        "{body}"
    );
    assert_eq!(
        rec.header("Content-Length"),
        Some(body.len().to_string().as_str())
    );
}

#[test]
fn non_bytes_items_and_exceptions_become_500_before_headers() {
    let a = app(
        "t_errors",
        r#"
def app(environ, start_response):
    q = environ["QUERY_STRING"]
    if q == "raise":
        raise ValueError("secret detail")
    start_response("200 OK", [])
    if q == "str":
        return ["not bytes"]
    if q == "mixed":
        return [b"fine", "bad"]
    if q == "genstr":
        return (x for x in ["bad"])
    if q == "nostart":
        return [b"x"]
    if q == "late":
        def gen():
            yield b"first"
            raise ValueError("secret")
        return gen()
"#,
    );
    for q in ["raise", "str", "mixed", "genstr"] {
        let (out, rec) = run(&a, get(&format!("/?{q}")));
        assert_eq!(out, Outcome::Complete, "{q}");
        assert_500(&rec);
        assert_eq!(rec.starts(), 1, "{q}");
    }
    // Headers already out: the only honest thing left is to abort.
    let (out, rec) = run(&a, get("/?late"));
    assert_eq!(out, Outcome::Aborted);
    assert_eq!(
        rec.events,
        vec![start("200 OK", &[]), Ev::Body(b"first".to_vec(), false)]
    );

    let a = app("t_nostart", "def app(e, sr):\n    return [b'x']\n");
    let (out, rec) = run(&a, get("/"));
    assert_eq!(out, Outcome::Complete);
    assert_500(&rec);
}

#[test]
fn sink_rejecting_the_response_is_an_app_error() {
    let a = app("t_badresp", RECORD_ENV);
    let mut rec = Rec {
        bad_start: true,
        ..Rec::default()
    };
    let out = run_ctx(&a, &ctx(), get("/"), &mut rec);
    assert_eq!(out, Outcome::Complete);
    assert_500(&rec);
}

#[test]
fn scheme_headers_trusted_untrusted_and_spoofed() {
    let a = app("t_scheme", RECORD_ENV);
    let scheme = |allow: Vec<AllowIp>, headers: &[(&str, &[u8])]| {
        let c = ServeContext {
            forwarded_allow_ips: allow,
            ..ctx()
        };
        let mut rec = Rec::default();
        py_eval::<bool>("t_scheme", "globals().update(E=None) is None");
        let out = run_ctx(
            &a,
            &c,
            request("GET", "/", headers, Body::Memory(Vec::new())),
            &mut rec,
        );
        let s: Option<String> = py_eval("t_scheme", "E and E['wsgi.url_scheme']");
        (out, rec, s)
    };
    let ten: std::net::IpAddr = "10.0.0.0".parse().unwrap();
    let other: std::net::IpAddr = "192.168.0.0".parse().unwrap();
    let (_, _, s) = scheme(
        vec![AllowIp::Net(ten, 8)],
        &[("X-Forwarded-Proto", b"https")],
    );
    assert_eq!(s.as_deref(), Some("https"));
    let (_, _, s) = scheme(
        vec![AllowIp::Any],
        &[("X-Forwarded-Ssl", b"on"), ("X-Forwarded-Protocol", b"ssl")],
    );
    assert_eq!(s.as_deref(), Some("https"));
    let (_, _, s) = scheme(
        vec![AllowIp::Net(other, 16)],
        &[("X-Forwarded-Proto", b"https")],
    );
    assert_eq!(s.as_deref(), Some("http"));
    let (_, _, s) = scheme(vec![AllowIp::Unix], &[("X-Forwarded-Proto", b"https")]);
    assert_eq!(s.as_deref(), Some("http"));
    let (_, _, s) = scheme(vec![AllowIp::Any], &[("X-Forwarded-Proto", b"http")]);
    assert_eq!(s.as_deref(), Some("http"));

    let (out, rec, s) = scheme(
        vec![AllowIp::Any],
        &[("X-Forwarded-Proto", b"https"), ("X-Forwarded-Ssl", b"off")],
    );
    assert_eq!(out, Outcome::Aborted);
    assert_eq!(s, None, "the app must not run");
    assert_eq!(rec.status(), "400 Bad Request");
    assert_eq!(rec.header("Connection"), Some("close"));
    // The same contradiction from an untrusted peer is just ignored.
    let (out, _, s) = scheme(
        vec![],
        &[("X-Forwarded-Proto", b"https"), ("X-Forwarded-Ssl", b"off")],
    );
    assert_eq!((out, s.as_deref()), (Outcome::Complete, Some("http")));
}

const FACTORY: &str = r#"
NOT_CALLABLE = 42
def make(greeting=b"hi", times=1, **kw):
    body = greeting * times + repr(sorted(kw.items())).encode()
    def app(environ, start_response):
        start_response("200 OK", [])
        return [body]
    return app
def application(environ, start_response):
    start_response("200 OK", [])
    return [b"default"]
"#;

#[test]
fn app_specs_factories_and_load_errors() {
    write_module("t_factory", FACTORY);
    let body = |spec: &str| {
        let a = load(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
        String::from_utf8(run(&a, get("/")).1.body()).unwrap()
    };
    assert_eq!(body("t_factory"), "default");
    assert_eq!(body("t_factory:application"), "default");
    assert_eq!(body("t_factory:make()"), "hi[]");
    assert_eq!(
        body("t_factory:make(b'yo', 2, x=[1, -2.5], y=None)"),
        "yoyo[('x', [1, -2.5]), ('y', None)]"
    );

    let err = |spec: &str| load(spec).expect_err(spec);
    assert!(err("t_factory:make(open('x'))").summary.contains("literal"));
    assert!(err("t_factory:make(**{'a': 1})")
        .summary
        .contains("literal"));
    assert!(err("t_factory:make.attr")
        .summary
        .contains("Failed to parse"));
    assert!(err("t_factory:a.b()").summary.contains("simple name"));
    assert!(err("t_factory:make(").summary.contains("Failed to parse"));
    assert_eq!(
        err("t_factory:missing").summary,
        "Failed to find attribute 'missing' in 't_factory'."
    );
    assert_eq!(
        err("t_factory:NOT_CALLABLE").summary,
        "Application object must be callable."
    );
    assert_eq!(
        err("t_factory:make(1, 2, 3)").summary.split(':').next(),
        Some("Error while calling factory 'make' in 't_factory'")
    );

    let e = err("nope_not_a_module:app");
    assert_eq!(
        e.summary,
        "ModuleNotFoundError: No module named 'nope_not_a_module'"
    );
    assert!(e.traceback.unwrap().contains("Traceback"));

    write_module("t_broken", "import sys\nx = 1 / 0\n");
    let e = err("t_broken:app");
    assert_eq!(e.summary, "ZeroDivisionError: division by zero");
    assert!(e.traceback.unwrap().contains("t_broken.py"));
}

const VALIDATED: &str = r#"
from wsgiref.validate import validator

def inner(environ, start_response):
    q = environ["QUERY_STRING"]
    if q == "post":
        n = int(environ.get("CONTENT_LENGTH") or 0)
        data = environ["wsgi.input"].read(n)
        environ["wsgi.errors"].write("got %d bytes\n" % len(data))
        environ["wsgi.errors"].flush()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [data.upper()]
    if q == "stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (bytes([c]) for c in b"abc")
    if q == "empty":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "0")])
        return []
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello ", environ["PATH_INFO"].encode("latin-1")]

app = validator(inner)
"#;

#[test]
fn wsgiref_validator_accepts_our_environ_and_driving() {
    let a = app("t_validate", VALIDATED);
    let (out, rec) = run(&a, get("/x"));
    assert_eq!(
        (out, rec.status(), rec.body()),
        (Outcome::Complete, "200 OK", b"hello /x".to_vec())
    );

    errors::test_capture::take();
    let req = request(
        "POST",
        "/?post",
        &[
            ("Host", b"h"),
            ("Content-Length", b"5"),
            ("Content-Type", b"text/plain"),
        ],
        spilled(b"hello", b""),
    );
    let (out, rec) = run(&a, req);
    assert_eq!(
        (out, rec.status(), rec.body()),
        (Outcome::Complete, "200 OK", b"HELLO".to_vec())
    );
    assert_eq!(errors::test_capture::take(), b"got 5 bytes\n");

    let (out, rec) = run(&a, get("/?stream"));
    assert_eq!((out, rec.body()), (Outcome::Complete, b"abc".to_vec()));
    assert_eq!(rec.events.len(), 4);

    let mut req = get("/?empty");
    req.head.method = "HEAD".into();
    let (out, rec) = run(&a, req);
    assert_eq!(out, Outcome::Complete);
    assert_eq!(
        rec.events,
        vec![start(
            "200 OK",
            &[("Content-Type", "text/plain"), ("Content-Length", "0")]
        )]
    );
}

#[test]
fn errors_stream_writes_and_rejects_non_text() {
    let a = app(
        "t_errstream",
        r#"
RES = None
def app(environ, start_response):
    global RES
    e = environ["wsgi.errors"]
    e.writelines(["one\n", "two\n"])
    try:
        e.write(3)
        RES = "accepted"
    except TypeError:
        RES = "TypeError"
    start_response("200 OK", [])
    return []
"#,
    );
    errors::test_capture::take();
    run(&a, get("/"));
    assert_eq!(errors::test_capture::take(), b"one\ntwo\n");
    assert_eq!(py_eval::<String>("t_errstream", "RES"), "TypeError");
}

#[test]
fn idle_releases_the_gil() {
    module_dir();
    python_thread(|t| {
        // Another thread can only attach if this one let go of the GIL.
        let v = t.idle(|| {
            std::thread::spawn(|| Python::attach(|py| py.version_info().major))
                .join()
                .unwrap()
        });
        assert_eq!(v, 3);
    });
}

#[test]
fn thread_stacks_show_where_other_threads_are() {
    let _ = app(
        "t_stacks",
        r#"
import threading
GO = threading.Event()
STARTED = threading.Event()
def parked_in_a_named_function():
    STARTED.set()
    GO.wait(30)
T = threading.Thread(target=parked_in_a_named_function, name="parker")
T.start()
STARTED.wait(30)
def app(environ, start_response):
    start_response("200 OK", [])
    return []
"#,
    );
    let dump = thread_stacks();
    let _ = py_eval::<bool>("t_stacks", "GO.set() or True");
    assert!(dump.contains("Thread parker"), "{dump}");
    assert!(dump.contains("parked_in_a_named_function"), "{dump}");
    // The thread asking for the dump is not part of it.
    assert!(!dump.contains("in dump"), "{dump}");
}

#[test]
fn fork_hooks_pair_up_without_forking() {
    module_dir();
    before_fork();
    after_fork_parent();
    // The import lock and the GIL were given back: Python still works,
    // from this thread and from another.
    Python::attach(|py| py.import("json").map(drop)).unwrap();
    std::thread::spawn(|| Python::attach(|py| py.import("decimal").map(drop)))
        .join()
        .unwrap()
        .unwrap();
}

#[test]
fn pure_helpers() {
    use super::environ::{forwarded_scheme, percent_decode, split_host};
    assert_eq!(&*percent_decode("/a%2fb%zz%4"), b"/a/b%zz%4");
    assert_eq!(&*percent_decode("%E9%00"), b"\xe9\x00");
    assert_eq!(split_host("[::1]", "80"), ("[::1]", "80"));
    assert_eq!(split_host("host:", "443"), ("host", "443"));
    assert_eq!(split_host("a.b:81", "80"), ("a.b", "81"));
    let h = |n: &str, v: &[u8]| Header {
        name: n.into(),
        value: v.to_vec(),
    };
    assert_eq!(
        forwarded_scheme(&[h("X-FORWARDED-PROTO", b"HTTPS")]),
        Ok(Some(true))
    );
    assert_eq!(forwarded_scheme(&[h("X-Other", b"https")]), Ok(None));
    assert!(forwarded_scheme(&[
        h("x-forwarded-ssl", b"on"),
        h("x-forwarded-protocol", b"tls")
    ])
    .is_err());
    let trusted = |peer: &str, net: &str, p: u8| {
        environ::is_trusted(&tcp(peer), &[AllowIp::Net(net.parse().unwrap(), p)])
    };
    assert!(trusted("10.9.8.7:1", "10.0.0.0", 8));
    assert!(!trusted("11.9.8.7:1", "10.0.0.0", 8));
    assert!(trusted("[::ffff:10.9.8.7]:1", "10.0.0.0", 8));
    assert!(trusted("[2001:db8::5]:1", "2001:db8::", 32));
    assert!(!trusted("[2001:db9::5]:1", "2001:db8::", 32));
    assert!(!environ::is_trusted(
        &SockAddr::Unix(None),
        &[AllowIp::Net("0.0.0.0".parse().unwrap(), 0)]
    ));
}

#[test]
fn interpreter_setup_and_shareable_app() {
    module_dir();
    // A second call is a no-op that reports the first result.
    let again = InterpreterOptions {
        pythonpath: vec!["/nonexistent-xyz".into()],
    };
    assert_eq!(init_interpreter(&again), Ok(()));
    let cwd = std::env::current_dir().unwrap();
    Python::attach(|py| {
        let sys = py.import("sys").unwrap();
        let path: Vec<String> = sys.getattr("path").unwrap().extract().unwrap();
        assert!(
            path.contains(&cwd.to_string_lossy().into_owned()),
            "{path:?}"
        );
        assert!(!path.iter().any(|p| p == "/nonexistent-xyz"));
        let argv: Vec<String> = sys.getattr("argv").unwrap().extract().unwrap();
        assert!(!argv.is_empty());
    });
    fn shareable<T: Send + Sync>() {}
    shareable::<App>();
}

const VARYING_HEADERS: &str = r#"
KEPT = []
def app(environ, start_response):
    # Long, then short, then more and fewer headers than the last response:
    # storage a response reuses must come back empty.
    n = int(environ["QUERY_STRING"])
    if not KEPT:
        KEPT.append(start_response)
    headers = [("X-Long-Header-Name-%d" % i, "v" * (40 - 10 * n)) for i in range(3 - n)]
    start_response("%d %s" % (200 + n, "R" * (9 - 3 * n)), headers + [("X-N", str(n))])
    return [b"x" * n]

def call_again():
    try:
        KEPT[0]("200 OK", [])
    except RuntimeError as e:
        return "second time" in str(e)
    return False
"#;

#[test]
fn headers_are_exact_whatever_the_responses_before_them_sent() {
    let a = app("varying_headers", VARYING_HEADERS);
    for round in 0..2 {
        for n in [0usize, 2, 1, 3, 0] {
            let (out, rec) = run(&a, get(&format!("/?{n}")));
            assert_eq!(out, Outcome::Complete, "round {round}, n={n}");
            let mut headers: Vec<(String, String)> = (0..3 - n)
                .map(|i| (format!("X-Long-Header-Name-{i}"), "v".repeat(40 - 10 * n)))
                .collect();
            headers.push(("X-N".into(), n.to_string()));
            let status = format!("{} {}", 200 + n, "R".repeat(9 - 3 * n));
            assert_eq!(
                rec.events.first(),
                Some(&Ev::Start(status, headers)),
                "round {round}, n={n}"
            );
        }
    }
    // A start_response the app kept still knows it was called.
    py_true("varying_headers", "call_again()");
}
