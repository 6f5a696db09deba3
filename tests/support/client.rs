//! The one HTTP/1.1 client of every test binary: a raw socket, so tests
//! control every byte sent and see every byte received, and one response
//! reader (Content-Length, chunked or to EOF; interim 1xx; HEAD). Every
//! connect, write and read has a deadline; nothing here can block forever.
//!
//! [`get`] and [`try_get`] are the integration tests' plain GET on
//! 127.0.0.1 with [`IO_TIMEOUT`]; [`fetch`] is one `Connection: close`
//! exchange with the caller's address and deadline, for the tests whose
//! timeouts are part of what they check (hostile clients, systemd).

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// The longest any single response (or EOF) may take to arrive.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);
/// How long [`Conn::tcp`] waits for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// 127.0.0.1:`port`, where every server under test listens.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A TCP connection to `addr` within `timeout`, with reads and writes
/// bounded by `timeout` too and Nagle off (so a byte written is a byte
/// sent). For tests that drive the socket themselves.
pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.set_nodelay(true)?;
    Ok(s)
}

enum Sock {
    Tcp(TcpStream),
    Unix(UnixStream),
}

pub struct Conn {
    sock: Sock,
    buf: Vec<u8>,
    eof: bool,
    /// How long each response (or EOF) may take to arrive.
    timeout: Duration,
    /// The last read failed because nothing came in time.
    timed_out: bool,
}

#[derive(Debug, Clone)]
pub struct Response {
    pub version: String,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Framed with `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// Neither chunked nor Content-Length: the body ran to EOF.
    pub close_delimited: bool,
}

impl Response {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .count()
    }

    /// Whether a comma-separated header (e.g. Connection) has this token.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (the echo app); panics showing the response if not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}): {} {:?} {:?}",
                self.status,
                self.headers,
                self.text()
            )
        })
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl Conn {
    fn new(sock: Sock, timeout: Duration) -> Conn {
        Conn {
            sock,
            buf: Vec::new(),
            eof: false,
            timeout,
            timed_out: false,
        }
    }

    pub fn tcp(port: u16) -> Conn {
        Conn::try_tcp(port).unwrap_or_else(|e| panic!("connect to port {port}: {e}"))
    }

    /// A connection to 127.0.0.1:`port`, or why there is none.
    pub fn try_tcp(port: u16) -> io::Result<Conn> {
        let s = connect(loopback(port), CONNECT_TIMEOUT)?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(Conn::new(Sock::Tcp(s), IO_TIMEOUT))
    }

    /// A connection to `addr` made within `timeout`, whose writes and
    /// responses are each bounded by `timeout` as well.
    pub fn open(addr: SocketAddr, timeout: Duration) -> io::Result<Conn> {
        Ok(Conn::new(Sock::Tcp(connect(addr, timeout)?), timeout))
    }

    pub fn unix(path: &Path) -> Conn {
        let s = UnixStream::connect(path)
            .unwrap_or_else(|e| panic!("connect to {}: {e}", path.display()));
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        Conn::new(Sock::Unix(s), IO_TIMEOUT)
    }

    fn write_some(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.sock {
            Sock::Tcp(s) => s.write_all(bytes),
            Sock::Unix(s) => s.write_all(bytes),
        }
    }

    /// Sends bytes in one write.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_some(bytes)
    }

    /// Sends bytes one write per byte (Nagle is off on TCP).
    pub fn send_bytewise(&mut self, bytes: &[u8]) -> io::Result<()> {
        for b in bytes {
            self.write_some(std::slice::from_ref(b))?;
        }
        Ok(())
    }

    /// Half-closes: the server sees EOF after what was sent.
    pub fn shutdown_write(&mut self) {
        let _ = match &self.sock {
            Sock::Tcp(s) => s.shutdown(Shutdown::Write),
            Sock::Unix(s) => s.shutdown(Shutdown::Write),
        };
    }

    /// Reads more bytes into the buffer before `deadline`. Ok(false) at EOF
    /// (a reset counts as EOF: the peer closed).
    fn fill(&mut self, deadline: Instant) -> Result<bool, String> {
        if self.eof {
            return Ok(false);
        }
        let now = Instant::now();
        if now >= deadline {
            self.timed_out = true;
            return Err(format!("timed out after {:?}", self.timeout));
        }
        let left = Some(deadline - now);
        let mut chunk = [0u8; 65536];
        let res = match &mut self.sock {
            Sock::Tcp(s) => {
                s.set_read_timeout(left).unwrap();
                s.read(&mut chunk)
            }
            Sock::Unix(s) => {
                s.set_read_timeout(left).unwrap();
                s.read(&mut chunk)
            }
        };
        match res {
            Ok(0) => {
                self.eof = true;
                Ok(false)
            }
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                self.eof = true;
                Ok(false)
            }
            Err(e) if is_timeout(&e) => {
                self.timed_out = true;
                Err(format!(
                    "timed out after {:?} (buffered: {:?})",
                    self.timeout,
                    String::from_utf8_lossy(&self.buf)
                ))
            }
            Err(e) => Err(format!("read: {e}")),
        }
    }

    fn take_line(&mut self, deadline: Instant) -> Result<Vec<u8>, String> {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                let line = self.buf[..i].to_vec();
                self.buf.drain(..i + 2);
                return Ok(line);
            }
            if !self.fill(deadline)? {
                return Err(format!(
                    "EOF inside a chunked body (buffered: {:?})",
                    String::from_utf8_lossy(&self.buf)
                ));
            }
        }
    }

    fn take_exact(&mut self, n: usize, deadline: Instant) -> Result<Vec<u8>, String> {
        while self.buf.len() < n {
            if !self.fill(deadline)? {
                return Err(format!("EOF after {} of {n} body bytes", self.buf.len()));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// The next `n` bytes the server sends, whatever they are (WebSocket
    /// frames after a `101`, say).
    pub fn read_exact_bytes(&mut self, n: usize) -> Result<Vec<u8>, String> {
        let deadline = Instant::now() + self.timeout;
        self.take_exact(n, deadline)
    }

    /// Reads the next response, interim 1xx ones included. `head` says the
    /// request was HEAD (so no body follows whatever the headers say).
    pub fn read_response(&mut self, head: bool) -> Result<Response, String> {
        let deadline = Instant::now() + self.timeout;
        let end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            if !self.fill(deadline)? {
                return Err(if self.buf.is_empty() {
                    "connection closed with no response".to_string()
                } else {
                    format!(
                        "EOF inside response headers: {:?}",
                        String::from_utf8_lossy(&self.buf)
                    )
                });
            }
        };
        let head_bytes: Vec<u8> = self.buf.drain(..end + 4).collect();
        let head_text = String::from_utf8_lossy(&head_bytes[..end]).into_owned();
        let mut lines = head_text.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("").to_string();
        let status = parts
            .next()
            .and_then(|s| s.parse::<u16>().ok())
            .filter(|_| version.starts_with("HTTP/1."))
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let reason = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        for line in lines {
            let (k, v) = line
                .split_once(':')
                .ok_or_else(|| format!("bad header line {line:?}"))?;
            if k.is_empty() || k.ends_with(' ') || k.starts_with(' ') {
                return Err(format!("bad header name in {line:?}"));
            }
            headers.push((k.to_string(), v.trim().to_string()));
        }
        let mut resp = Response {
            version,
            status,
            reason,
            headers,
            body: Vec::new(),
            chunked: false,
            close_delimited: false,
        };
        if head || (100..200).contains(&status) || status == 204 || status == 304 {
            return Ok(resp);
        }
        if resp.has_token("Transfer-Encoding", "chunked") {
            resp.chunked = true;
            loop {
                let line = self.take_line(deadline)?;
                let line = String::from_utf8_lossy(&line).into_owned();
                let size_text = line.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(size_text, 16)
                    .map_err(|_| format!("bad chunk size line {line:?}"))?;
                if size == 0 {
                    // Trailers, then the empty line.
                    while !self.take_line(deadline)?.is_empty() {}
                    break;
                }
                let data = self.take_exact(size, deadline)?;
                resp.body.extend_from_slice(&data);
                if !self.take_line(deadline)?.is_empty() {
                    return Err("chunk data not followed by CRLF".to_string());
                }
            }
        } else if let Some(len) = resp.header("Content-Length") {
            let n: usize = len
                .parse()
                .map_err(|_| format!("bad Content-Length {len:?}"))?;
            resp.body = self.take_exact(n, deadline)?;
        } else {
            resp.close_delimited = true;
            while self.fill(deadline)? {}
            resp.body = std::mem::take(&mut self.buf);
        }
        Ok(resp)
    }

    /// Reads responses until a final (non-1xx) one.
    pub fn read_final(&mut self, head: bool) -> Result<Response, String> {
        loop {
            let r = self.read_response(head)?;
            if r.status >= 200 {
                return Ok(r);
            }
        }
    }

    /// Ok when the server closes without sending any (more) byte.
    pub fn expect_eof(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + self.timeout;
        while self.fill(deadline)? {}
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "expected the connection to close, got bytes: {:?}",
                String::from_utf8_lossy(&self.buf)
            ))
        }
    }

    /// Sends one request and reads its final response; panics on errors.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let raw = request_bytes(method, path, headers, body);
        self.send(&raw)
            .unwrap_or_else(|e| panic!("send {method} {path}: {e}"));
        self.read_final(method == "HEAD")
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }
}

/// An HTTP/1.1 request with `Host` (unless given) and, for a body,
/// `Content-Length`.
pub fn request_bytes(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        out.push_str("Host: 127.0.0.1\r\n");
    }
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// One GET on a fresh connection; every failure (refused, reset, closed
/// without a response) is an `Err` for a load client to count.
pub fn try_get(port: u16, path: &str) -> Result<Response, String> {
    let mut conn = Conn::try_tcp(port).map_err(|e| format!("connect: {e}"))?;
    conn.send(&request_bytes("GET", path, &[], b""))
        .map_err(|e| format!("send: {e}"))?;
    conn.read_final(false)
}

/// Why [`fetch`] got no whole response.
#[derive(Debug)]
pub struct Failure {
    /// Nothing came within the deadline (a hang), as opposed to a refused,
    /// reset or closed connection.
    pub timed_out: bool,
    pub reason: String,
}

impl Failure {
    fn io(step: &str, e: io::Error) -> Failure {
        Failure {
            timed_out: is_timeout(&e),
            reason: format!("{step}: {e}"),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl From<Failure> for String {
    fn from(f: Failure) -> String {
        f.reason
    }
}

/// `GET path` with `Connection: close` on a fresh connection to `addr`:
/// connecting, the response and the server's close each within `timeout`.
/// The close is part of the exchange, so a response with bytes after it
/// is an error too.
pub fn fetch(addr: SocketAddr, path: &str, timeout: Duration) -> Result<Response, Failure> {
    let mut conn = Conn::open(addr, timeout).map_err(|e| Failure::io("connect", e))?;
    conn.send(&request_bytes("GET", path, &[("Connection", "close")], b""))
        .map_err(|e| Failure::io("send", e))?;
    match conn.read_final(false) {
        Ok(resp) => match conn.expect_eof() {
            Ok(()) => Ok(resp),
            Err(reason) => Err(Failure {
                timed_out: conn.timed_out,
                reason: format!("after {} {}: {reason}", resp.status, resp.reason),
            }),
        },
        Err(reason) => Err(Failure {
            timed_out: conn.timed_out,
            reason,
        }),
    }
}

/// A read or write that ran out of time (the socket timeouts report
/// `WouldBlock` on Linux).
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// One GET on a fresh connection.
pub fn get(port: u16, path: &str) -> Response {
    Conn::tcp(port).request("GET", path, &[], b"")
}

/// A JSON string field of an echo response, panicking if missing.
pub fn field(json: &serde_json::Value, key: &str) -> String {
    match json.get(key) {
        Some(serde_json::Value::String(s)) => s.clone(),
        other => panic!("echo field {key}: expected a string, got {other:?} in {json}"),
    }
}

/// The echoed body as bytes (the echo app sends it latin-1 decoded).
pub fn echoed_body(json: &serde_json::Value) -> Vec<u8> {
    field(json, "body")
        .chars()
        .map(|c| c as u32 as u8)
        .collect()
}
