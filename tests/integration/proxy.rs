//! The PROXY protocol (`--proxy-protocol`), v1 and v2, from allowed and
//! refused peers: the same bytes sent to corral and to gunicorn 27, and
//! both answers kept.

use serde_json::{json, Value};

use crate::client::Conn;
use crate::harness::{Corral, Server};

const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

fn v1(client: &str, port: u16) -> Vec<u8> {
    format!("PROXY TCP4 {client} 10.0.0.1 {port} 80\r\n").into_bytes()
}

/// A v2 PROXY header for an IPv6 client, with a TLV to skip.
fn v2_tcp6() -> Vec<u8> {
    let mut addr = Vec::new();
    addr.extend_from_slice(
        &"2001:db8::7"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    addr.extend_from_slice(
        &"2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    addr.extend_from_slice(&40000u16.to_be_bytes());
    addr.extend_from_slice(&443u16.to_be_bytes());
    addr.extend_from_slice(&[0x04, 0x00, 0x01, 0x00]);
    let mut h = V2_SIGNATURE.to_vec();
    h.extend_from_slice(&[0x21, 0x21]);
    h.extend_from_slice(&(addr.len() as u16).to_be_bytes());
    h.extend_from_slice(&addr);
    h
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";

fn ask(server: &Server, bytes: &[u8]) -> (u16, Value) {
    let mut c = Conn::tcp(server.port);
    c.send(bytes).unwrap();
    let r = c.read_final(false).unwrap();
    let body = if r.status == 200 {
        r.json()
    } else {
        Value::Null
    };
    (r.status, body)
}

fn both(args: &[&str]) -> [(&'static str, Server); 2] {
    let start = |c: Corral| {
        c.args(["--proxy-protocol"])
            .args(args.iter().copied())
            .args(["--access-logfile", "-"])
            .start()
    };
    [
        ("corral", start(Corral::app("proxied:app"))),
        ("gunicorn", start(Corral::gunicorn("proxied:app"))),
    ]
}

#[test]
fn proxy_headers_name_the_client_as_in_gunicorn() {
    for (who, server) in both(&[]) {
        let (status, env) = ask(&server, &[v1("203.0.113.7", 51234), GET.to_vec()].concat());
        assert_eq!(status, 200, "{who}");
        assert_eq!(
            env,
            json!({"REMOTE_ADDR": "203.0.113.7", "REMOTE_PORT": "51234",
                   "PROXY_PROTOCOL": "TCP4", "PROXY_ADDR": "10.0.0.1", "PROXY_PORT": "80"}),
            "{who}: v1"
        );
        let (status, env) = ask(&server, &[v2_tcp6(), GET.to_vec()].concat());
        assert_eq!(status, 200, "{who}");
        assert_eq!(
            env,
            json!({"REMOTE_ADDR": "2001:db8::7", "REMOTE_PORT": "40000",
                   "PROXY_PROTOCOL": "TCP6", "PROXY_ADDR": "2001:db8::1", "PROXY_PORT": "443"}),
            "{who}: v2"
        );
        // The header is optional: plain HTTP is served with the peer itself.
        let (status, env) = ask(&server, GET);
        assert_eq!(status, 200, "{who}");
        assert_eq!(env["REMOTE_ADDR"], "127.0.0.1", "{who}");
        assert_eq!(env["PROXY_PROTOCOL"], Value::Null, "{who}");
        // A malformed header is refused.
        let (status, _) = ask(
            &server,
            b"PROXY TCP4 1.2.3.4 nope 1 2\r\nGET / HTTP/1.1\r\n\r\n",
        );
        assert_eq!(status, 400, "{who}: malformed v1");
        // The access log names the client the header gave.
        server
            .stdout
            .wait_for(crate::harness::EVENT_TIMEOUT, |t| {
                t.lines()
                    .any(|l| l.starts_with("203.0.113.7 "))
                    .then_some(())
            })
            .unwrap_or_else(|| panic!("{who}: access log {}", server.stdout.text()));
    }
}

#[test]
fn proxy_headers_from_other_peers_are_forbidden() {
    for (who, server) in both(&["--proxy-allow-from", "10.9.9.9"]) {
        let (status, _) = ask(&server, &[v1("203.0.113.7", 1), GET.to_vec()].concat());
        assert_eq!(status, 403, "{who}");
        server.expect_log("Invalid request from ip=127.0.0.1: Proxy request from ");
        // Plain HTTP from that peer is still served.
        assert_eq!(ask(&server, GET).0, 200, "{who}");
    }
}

/// corral only: the header is the connection's, so every request on a
/// kept-alive connection has the client it named (gunicorn reports the
/// proxy's own address from the second request on).
#[test]
fn the_header_holds_for_the_whole_connection() {
    let server = Corral::app("proxied:app")
        .args(["--proxy-protocol", "v1"])
        .start();
    let mut c = Conn::tcp(server.port);
    c.send(&[v1("198.51.100.9", 7), GET.to_vec()].concat())
        .unwrap();
    for _ in 0..3 {
        let r = c.read_final(false).unwrap();
        assert_eq!(r.json()["REMOTE_ADDR"], "198.51.100.9");
        c.send(GET).unwrap();
    }
    // v2 is not read in v1 mode: its bytes are a malformed request.
    let (status, _) = ask(&server, &[v2_tcp6(), GET.to_vec()].concat());
    assert_eq!(status, 400);
}

/// A unix-socket peer may always send a header, whatever the allow list.
#[test]
fn unix_socket_peers_may_send_a_header() {
    let corral = Corral::app("proxied:app");
    let sock = corral.tmp().join("app.sock");
    let server = corral
        .bind(format!("unix:{}", sock.display()))
        .args(["--proxy-protocol", "--proxy-allow-from", "10.9.9.9"])
        .start();
    let mut c = Conn::unix(&sock);
    c.send(&[v1("203.0.113.5", 9), GET.to_vec()].concat())
        .unwrap();
    let r = c.read_final(false).unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["REMOTE_ADDR"], "203.0.113.5");
    drop(server);
}
