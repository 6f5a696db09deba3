//! Every vector of `tests/vectors/http.rs` against a real corral serving
//! `echo:app`, sent three ways: whole, byte by byte, and pipelined. Each
//! test collects every mismatch and reports them all in one panic.

use crate::client::{echoed_body, Conn, Response};
use crate::harness::{Corral, Server};
use crate::vectors::{Env, Expect, Vector, VECTORS};

fn start() -> Server {
    assert!(
        !VECTORS.is_empty(),
        "tests/vectors/http.rs has no vectors: the conformance suite has nothing to check"
    );
    Corral::app("echo:app").start()
}

/// The request method of a raw vector (for HEAD framing).
fn method(raw: &[u8]) -> &str {
    let end = raw.iter().position(|&b| b == b' ').unwrap_or(0);
    std::str::from_utf8(&raw[..end]).unwrap_or("")
}

/// The environ the echo app reported: from the body, or for HEAD from the
/// hex-encoded `X-Echo` header.
fn echoed(resp: &Response, head: bool) -> Result<serde_json::Value, String> {
    let bytes = if head {
        let hex = resp
            .header("X-Echo")
            .ok_or_else(|| format!("HEAD response without X-Echo: {:?}", resp.headers))?;
        (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|e| format!("bad X-Echo: {e}"))?
    } else {
        resp.body.clone()
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "echo body is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&bytes)
        )
    })
}

/// Differences between what the app saw and what the vector expects.
fn compare(env: &Env, got: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut eq = |key: &str, want: &str| match got.get(key) {
        Some(serde_json::Value::String(s)) if s == want => {}
        other => out.push(format!("{key}: want {want:?}, got {other:?}")),
    };
    eq("REQUEST_METHOD", env.method);
    eq("PATH_INFO", env.path_info);
    eq("QUERY_STRING", env.query);
    eq("RAW_URI", env.raw_uri);
    eq("SERVER_PROTOCOL", env.protocol);
    for (key, value) in env.headers {
        eq(key, value);
    }
    if let Some(v) = env.content_length {
        eq("CONTENT_LENGTH", v);
    }
    if let Some(v) = env.content_type {
        eq("CONTENT_TYPE", v);
    }
    for key in env.absent {
        if let Some(v) = got.get(*key) {
            out.push(format!("{key} must be absent, got {v}"));
        }
    }
    if got.get("wsgi.input_terminated") != Some(&serde_json::Value::Bool(true)) {
        out.push(format!(
            "wsgi.input_terminated: want true, got {:?}",
            got.get("wsgi.input_terminated")
        ));
    }
    if got.get("body").is_some() {
        let body = echoed_body(got);
        if body != env.body {
            out.push(format!(
                "body: want {:?}, got {:?}",
                String::from_utf8_lossy(env.body),
                String::from_utf8_lossy(&body)
            ));
        }
    } else {
        out.push("no body in the echo".to_string());
    }
    out
}

/// Checks the response to one served vector on `conn`.
fn check_ok(conn: &mut Conn, v: &Vector, env: &Env) -> Vec<String> {
    let head = method(v.raw) == "HEAD";
    match conn.read_final(head) {
        Err(e) => vec![format!("no response: {e}")],
        Ok(resp) if resp.status != 200 => vec![format!(
            "want 200, got {} {} {:?}",
            resp.status,
            resp.reason,
            resp.text()
        )],
        Ok(resp) => match echoed(&resp, head) {
            Err(e) => vec![e],
            Ok(got) => compare(env, &got),
        },
    }
}

/// Checks a refused vector: the status, `Connection: close`, then EOF.
fn check_status(conn: &mut Conn, want: u16) -> Vec<String> {
    let mut out = Vec::new();
    match conn.read_final(false) {
        Err(e) => out.push(format!("want {want}, got no response: {e}")),
        Ok(resp) => {
            if resp.status != want {
                out.push(format!("want {want}, got {} {}", resp.status, resp.reason));
            }
            if !resp.has_token("Connection", "close") {
                out.push(format!("{} without Connection: close", resp.status));
            }
            if let Err(e) = conn.expect_eof() {
                out.push(format!("not closed after {}: {e}", resp.status));
            }
        }
    }
    out
}

fn check_close(conn: &mut Conn) -> Vec<String> {
    match conn.expect_eof() {
        Ok(()) => Vec::new(),
        Err(e) => vec![format!("a truncated request must be closed silently: {e}")],
    }
}

/// Sends one vector on a fresh connection and checks the outcome.
fn run_one(port: u16, v: &Vector, bytewise: bool) -> Vec<String> {
    let mut conn = Conn::tcp(port);
    let sent = if bytewise {
        conn.send_bytewise(v.raw)
    } else {
        conn.send(v.raw)
    };
    // A server may refuse before reading everything; a failed write is
    // then expected and the response is still there to read.
    if let (Err(e), Expect::Ok(_)) = (&sent, &v.expect) {
        return vec![format!("send failed: {e}")];
    }
    match &v.expect {
        Expect::Ok(env) => check_ok(&mut conn, v, env),
        Expect::Status(n) => check_status(&mut conn, *n),
        Expect::Close => {
            conn.shutdown_write();
            check_close(&mut conn)
        }
    }
}

fn report(mode: &str, failures: Vec<(&str, Vec<String>)>) {
    let failures: Vec<_> = failures
        .into_iter()
        .filter(|(_, f)| !f.is_empty())
        .collect();
    if failures.is_empty() {
        return;
    }
    let mut msg = format!(
        "{} failures ({mode}, {} vectors in all): {}\n",
        failures.len(),
        VECTORS.len(),
        failures
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (name, problems) in &failures {
        msg.push_str(&format!("- {name}:\n"));
        for p in problems {
            msg.push_str(&format!("    {p}\n"));
        }
    }
    panic!("{msg}");
}

#[test]
fn vectors_whole() {
    let server = start();
    let failures = VECTORS
        .iter()
        .map(|v| (v.name, run_one(server.port, v, false)))
        .collect();
    report("each sent in one write", failures);
}

#[test]
fn vectors_byte_by_byte() {
    let server = start();
    let failures = VECTORS
        .iter()
        .map(|v| (v.name, run_one(server.port, v, true)))
        .collect();
    report("each sent one byte per write", failures);
}

/// Whether a served vector leaves the connection open (HTTP/1.1 without
/// `Connection: close`), so it can sit in the middle of a pipeline.
fn keeps_alive(v: &Vector, env: &Env) -> bool {
    if env.protocol != "HTTP/1.1" {
        return false;
    }
    let text = String::from_utf8_lossy(v.raw);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    !head.lines().skip(1).any(|line| {
        line.split_once(':').is_some_and(|(k, val)| {
            k.trim().eq_ignore_ascii_case("connection")
                && val.to_ascii_lowercase().contains("close")
        })
    })
}

#[test]
fn vectors_pipelined() {
    let server = start();
    let served: Vec<(&Vector, &Env)> = VECTORS
        .iter()
        .filter_map(|v| match &v.expect {
            Expect::Ok(env) if keeps_alive(v, env) => Some((v, env)),
            _ => None,
        })
        .collect();
    let refused: Vec<&Vector> = VECTORS
        .iter()
        .filter(|v| !matches!(v.expect, Expect::Ok(_)))
        .collect();
    assert!(
        !served.is_empty(),
        "no keep-alive vector that can be pipelined in tests/vectors/http.rs"
    );
    // One pipeline per refused vector (it goes last), or one without.
    let tails: Vec<Option<&Vector>> = if refused.is_empty() {
        vec![None]
    } else {
        refused.into_iter().map(Some).collect()
    };
    let mut failures: Vec<(String, Vec<String>)> = Vec::new();
    for tail in tails {
        let label = tail.map_or("(no refused tail)".to_string(), |t| {
            format!("pipeline ending in {}", t.name)
        });
        let mut conn = Conn::tcp(server.port);
        let mut all: Vec<u8> = served
            .iter()
            .flat_map(|(v, _)| v.raw.iter().copied())
            .collect();
        if let Some(t) = tail {
            all.extend_from_slice(t.raw);
        }
        let sent = conn.send(&all);
        if tail.is_some_and(|t| matches!(t.expect, Expect::Close)) {
            conn.shutdown_write();
        }
        let mut lost = false;
        for (v, env) in &served {
            if lost {
                failures.push((format!("{} [{label}]", v.name), vec!["not reached".into()]));
                continue;
            }
            let problems = check_ok(&mut conn, v, env);
            lost = problems.iter().any(|p| p.starts_with("no response"));
            failures.push((format!("{} [{label}]", v.name), problems));
        }
        if let Some(t) = tail {
            let problems = if lost {
                vec!["not reached".into()]
            } else {
                match t.expect {
                    Expect::Status(n) => check_status(&mut conn, n),
                    Expect::Close => check_close(&mut conn),
                    Expect::Ok(_) => unreachable!(),
                }
            };
            failures.push((format!("{} (last) [{label}]", t.name), problems));
        } else if let Err(e) = sent {
            failures.push((label, vec![format!("send failed: {e}")]));
        }
    }
    let failures: Vec<(&str, Vec<String>)> = failures
        .iter()
        .map(|(n, p)| (n.as_str(), p.clone()))
        .collect();
    report("pipelined on one connection", failures);
}
