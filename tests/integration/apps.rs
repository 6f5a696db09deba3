//! Real applications: one under wsgiref's validator, Flask, Django, and the
//! bundled example.

use crate::client::{get, Conn};
use crate::harness::{repo_dir, venv, Corral, Server};

fn assert_clean_log(server: &Server) {
    let log = server.stderr.text();
    for bad in [
        "Traceback",
        "AssertionError",
        "WSGIWarning",
        "Exception ignored",
    ] {
        assert!(!log.contains(bad), "{bad} in the server log:\n{log}");
    }
}

fn validated(worker: &[&str]) {
    let server = Corral::app("validated:app")
        .args(worker.iter().copied())
        .start();
    let mut conn = Conn::tcp(server.port);

    let resp = conn.request("GET", "/get?x=1", &[], b"");
    assert_eq!(
        (resp.status, resp.text().as_str()),
        (200, "GET /get 0:"),
        "{resp:?}"
    );

    let resp = conn.request(
        "POST",
        "/post",
        &[("Content-Type", "text/plain")],
        b"payload",
    );
    assert_eq!(
        (resp.status, resp.text().as_str()),
        (200, "POST /post 7:payload")
    );

    let resp = conn.request("PUT", "/put", &[], b"x");
    assert_eq!((resp.status, resp.text().as_str()), (200, "PUT /put 1:x"));

    let resp = conn.request("DELETE", "/del", &[], b"");
    assert_eq!((resp.status, resp.text().as_str()), (200, "DELETE /del 0:"));

    let resp = conn.request("OPTIONS", "/opt", &[], b"");
    assert_eq!(
        (resp.status, resp.text().as_str()),
        (200, "OPTIONS /opt 0:")
    );

    conn.send(
        b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    )
    .unwrap();
    let resp = conn.read_final(false).expect("chunked POST");
    assert_eq!(
        (resp.status, resp.text().as_str()),
        (200, "POST /chunked 5:abcde")
    );

    let resp = conn.request("GET", "/stream", &[], b"");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert!(resp.chunked, "{resp:?}");
    assert_eq!(resp.text(), "line 0\nline 1\nline 2\n");

    let resp = conn.request("HEAD", "/head", &[], b"");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.header("Content-Length"), Some("13"), "{resp:?}");

    // The connection survived all of that.
    let resp = conn.request("GET", "/end", &[], b"");
    assert_eq!(resp.status, 200);
    drop(conn);
    assert_clean_log(&server);
}

#[test]
fn wsgiref_validator_sync() {
    validated(&["-k", "sync"]);
}

#[test]
fn wsgiref_validator_gthread() {
    validated(&["-k", "gthread", "--threads", "2"]);
}

#[test]
fn flask_app() {
    venv();
    let server = Corral::app("flaskapp:app").start();
    let mut conn = Conn::tcp(server.port);

    let resp = conn.request("GET", "/json?a=1", &[], b"");
    assert_eq!(resp.status, 200, "{resp:?}\n{}", server.stderr.text());
    assert_eq!(resp.header("Content-Type"), Some("application/json"));
    let json = resp.json();
    assert_eq!(json["framework"], "flask");
    assert_eq!(json["args"]["a"], "1");

    let resp = conn.request(
        "POST",
        "/form",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"name=corral+server",
    );
    assert_eq!(
        (resp.status, resp.text().as_str()),
        (200, "hello corral server")
    );

    let resp = conn.request("GET", "/missing", &[], b"");
    assert_eq!(resp.status, 404, "{resp:?}");
    assert_clean_log(&server);
}

#[test]
fn django_app() {
    venv();
    let server = Corral::app("djangoapp.wsgi:application").start();
    let mut conn = Conn::tcp(server.port);
    let resp = conn.request("GET", "/hello/", &[], b"");
    assert_eq!(resp.status, 200, "{resp:?}\n{}", server.stderr.text());
    assert_eq!(resp.text(), "hello from django, GET /hello/\n");
    let resp = conn.request("POST", "/hello/", &[], b"ignored");
    assert_eq!(resp.text(), "hello from django, POST /hello/\n");
    let resp = conn.request("GET", "/nowhere/", &[], b"");
    assert_eq!(resp.status, 404, "{resp:?}");
    assert_clean_log(&server);
}

#[test]
fn bundled_example_app() {
    let server = Corral::app("app:app")
        .chdir(repo_dir().join("contrib/example"))
        .start();
    let resp = get(server.port, "/");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert!(resp
        .header("Content-Type")
        .unwrap_or("")
        .starts_with("text/html"));
    assert!(resp.text().contains("corral"), "{}", resp.text());

    let resp = get(server.port, "/json");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.json()["server"], "corral example");

    let resp = Conn::tcp(server.port).request("POST", "/echo", &[], b"echo me");
    assert_eq!((resp.status, resp.body.as_slice()), (200, &b"echo me"[..]));

    let resp = get(server.port, "/stream?delay=0");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert!(resp.chunked);
    assert_eq!(resp.text().lines().count(), 5, "{}", resp.text());

    assert_eq!(get(server.port, "/nope").status, 404);
    assert_clean_log(&server);
}
