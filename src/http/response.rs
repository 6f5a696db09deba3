//! Response framing: status line, headers, Content-Length / chunked /
//! close-delimited bodies, the `Date` header cache, and the canned error
//! responses for refused requests.
//!
//! Strings from the app are PEP 3333 "native strings": each char is one
//! latin-1 byte. A char above U+00FF cannot be sent and is an error.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use super::request::is_tchar;
use super::Version;

/// The interim response sent when a client asked `Expect: 100-continue`.
pub const CONTINUE_100: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Value of the `Server` header unless the app sets its own.
pub const SERVER: &str = "corral";

/// What the encoder needs to know about the request being answered.
#[derive(Debug, Clone, Copy)]
pub struct ResponseInfo {
    pub version: super::Version,
    pub head_request: bool,
    /// The connection may stay open if the response allows it.
    pub keep_alive: bool,
}

/// The app gave a status or headers the server cannot send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("invalid status {status:?}: {why}")]
    BadStatus { status: String, why: &'static str },
    #[error("invalid response header name {0:?}: not an RFC 9110 token")]
    BadHeaderName(String),
    #[error("invalid value for response header {name:?}: {why}")]
    BadHeaderValue { name: String, why: &'static str },
    #[error("invalid response Content-Length {0:?}")]
    BadContentLength(String),
    #[error("response Content-Length given twice ({0:?} and {1:?})")]
    DuplicateContentLength(String, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// HEAD, 1xx, 204, 304: the body is discarded.
    NoBody,
    /// The app's Content-Length; bytes beyond it are discarded.
    Length {
        remaining: u64,
    },
    Chunked,
    /// HTTP/1.0 without a length: the body ends when the connection closes.
    Close,
}

/// Frames one response.
#[derive(Debug)]
pub struct ResponseEncoder {
    framing: Framing,
    keep_alive: bool,
    status: u16,
    body_bytes: u64,
    finished: bool,
    /// A chunk header was written and its closing CRLF is still owed.
    pending_chunk: bool,
}

/// Headers a server owns per connection (RFC 9110 §7.6.1), never forwarded
/// from the app.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

impl ResponseEncoder {
    /// Validate the app's status and headers and write the head to `out`.
    /// On error `out` is left as it was, so the caller can still send a 500.
    pub fn start(
        out: &mut Vec<u8>,
        info: ResponseInfo,
        status: &str,
        headers: &[(String, String)],
    ) -> Result<Self, ResponseError> {
        let mark = out.len();
        let result = Self::write_head(out, info, status, headers);
        if result.is_err() {
            out.truncate(mark);
        }
        result
    }

    fn write_head(
        out: &mut Vec<u8>,
        info: ResponseInfo,
        status: &str,
        headers: &[(String, String)],
    ) -> Result<Self, ResponseError> {
        let code = parse_status(status)?;
        let no_body = info.head_request || code < 200 || code == 204 || code == 304;
        // RFC 9110 §8.6: no Content-Length at all on 1xx and 204.
        let drop_length = code < 200 || code == 204;

        // The whole head in one allocation: the status line, the app's
        // headers with their separators, and what is added here.
        let app: usize = headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
        out.reserve(status.len() + app + HEAD_EXTRA);
        out.extend_from_slice(b"HTTP/1.1 ");
        push_latin1(out, status);
        out.extend_from_slice(b"\r\n");

        let mut app_close = false;
        let mut has_date = false;
        let mut has_server = false;
        let mut length: Option<(u64, &str)> = None;
        for (name, value) in headers {
            check_header(name, value)?;
            if HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
                if name.eq_ignore_ascii_case("connection")
                    && value
                        .split(',')
                        .any(|t| t.trim_matches([' ', '\t']).eq_ignore_ascii_case("close"))
                {
                    app_close = true;
                }
                continue;
            }
            if name.eq_ignore_ascii_case("content-length") {
                let v = value.trim_matches([' ', '\t']);
                if let Some((_, first)) = length {
                    return Err(ResponseError::DuplicateContentLength(
                        first.to_owned(),
                        value.clone(),
                    ));
                }
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ResponseError::BadContentLength(value.clone()));
                }
                let n = v
                    .parse::<u64>()
                    .map_err(|_| ResponseError::BadContentLength(value.clone()))?;
                length = Some((n, value));
                if drop_length {
                    continue;
                }
            }
            has_date |= name.eq_ignore_ascii_case("date");
            has_server |= name.eq_ignore_ascii_case("server");
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            push_latin1(out, value.trim_matches([' ', '\t']));
            out.extend_from_slice(b"\r\n");
        }
        push_server_and_date(out, has_server, has_date);

        let mut keep_alive = info.keep_alive && !app_close;
        let framing = if no_body {
            Framing::NoBody
        } else if let Some((n, _)) = length {
            Framing::Length { remaining: n }
        } else if info.version == Version::Http11 {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
            Framing::Chunked
        } else {
            keep_alive = false;
            Framing::Close
        };
        out.extend_from_slice(if keep_alive {
            b"Connection: keep-alive\r\n\r\n"
        } else {
            b"Connection: close\r\n\r\n"
        });
        Ok(ResponseEncoder {
            framing,
            keep_alive,
            status: code,
            body_bytes: 0,
            finished: false,
            pending_chunk: false,
        })
    }

    /// Append framed body bytes. Bytes past a Content-Length, or for a
    /// response that has no body, are dropped.
    pub fn body(&mut self, out: &mut Vec<u8>, data: &[u8]) {
        let n = self.begin_raw(out, data.len() as u64);
        // n <= data.len() by construction of begin_raw.
        out.extend_from_slice(&data[..n as usize]);
        self.end_raw(out);
    }

    /// For bytes sent outside `out` (sendfile): write whatever framing goes
    /// before `len` body bytes and return how many of them may be sent. The
    /// caller sends exactly that many, then calls [`Self::end_raw`]; if it
    /// cannot, the framing is broken and the connection must be closed.
    pub fn begin_raw(&mut self, out: &mut Vec<u8>, len: u64) -> u64 {
        if self.finished || len == 0 {
            return 0;
        }
        let n = match &mut self.framing {
            Framing::NoBody => 0,
            Framing::Length { remaining } => {
                let n = len.min(*remaining);
                *remaining -= n;
                n
            }
            Framing::Chunked => {
                push_hex(out, len);
                out.extend_from_slice(b"\r\n");
                self.pending_chunk = true;
                len
            }
            Framing::Close => len,
        };
        self.body_bytes += n;
        n
    }

    /// Close what [`Self::begin_raw`] opened (the CRLF after chunk data).
    pub fn end_raw(&mut self, out: &mut Vec<u8>) {
        if self.pending_chunk {
            out.extend_from_slice(b"\r\n");
            self.pending_chunk = false;
        }
    }

    /// Append whatever ends the body (the last chunk). Idempotent. A
    /// Content-Length the app did not fill makes the connection unusable.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        self.finished = true;
        match self.framing {
            Framing::Chunked => out.extend_from_slice(b"0\r\n\r\n"),
            Framing::Length { remaining } if remaining > 0 => self.keep_alive = false,
            _ => {}
        }
    }

    /// Whether the connection may be reused after this response.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// The status code sent, for the access log.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Body bytes sent so far, framing excluded (gunicorn's `%(b)s`).
    pub fn body_bytes(&self) -> u64 {
        self.body_bytes
    }
}

/// `NNN` or `NNN reason`: three digits from 100 to 999, reason-phrase bytes
/// only (HTAB, SP, VCHAR, obs-text).
fn parse_status(status: &str) -> Result<u16, ResponseError> {
    let bad = |why| ResponseError::BadStatus {
        status: status.chars().take(64).collect(),
        why,
    };
    let b = status.as_bytes();
    if b.len() < 3 || !b[..3].iter().all(u8::is_ascii_digit) {
        return Err(bad("must start with a three-digit code"));
    }
    if b[0] == b'0' {
        return Err(bad("code must be 100 to 999"));
    }
    match b.get(3) {
        None | Some(b' ') => {}
        Some(_) => return Err(bad("code must be followed by a space")),
    }
    if status
        .chars()
        .any(|c| (c < ' ' && c != '\t') || c == '\x7f' || c > '\u{ff}')
    {
        return Err(bad("reason contains a control or non-latin-1 character"));
    }
    Ok(status[..3].parse().unwrap_or(500))
}

fn check_header(name: &str, value: &str) -> Result<(), ResponseError> {
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Err(ResponseError::BadHeaderName(
            name.chars().take(64).collect(),
        ));
    }
    let why = if value.contains(['\r', '\n']) {
        Some("contains CR or LF")
    } else if value.contains('\0') {
        Some("contains NUL")
    } else if value.chars().any(|c| c > '\u{ff}') {
        Some("contains a character outside latin-1")
    } else {
        None
    };
    match why {
        Some(why) => Err(ResponseError::BadHeaderValue {
            name: name.to_owned(),
            why,
        }),
        None => Ok(()),
    }
}

/// Append a validated latin-1 string as bytes.
fn push_latin1(out: &mut Vec<u8>, s: &str) {
    if s.is_ascii() {
        out.extend_from_slice(s.as_bytes());
    } else {
        // Callers validated every char is at most U+00FF.
        out.extend(s.chars().map(|c| c as u32 as u8));
    }
}

fn push_hex(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b"0123456789abcdef"[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// `Server:` and `Date:` fields, each unless the app gave its own.
pub(crate) fn push_server_and_date(out: &mut Vec<u8>, has_server: bool, has_date: bool) {
    if !has_server {
        out.extend_from_slice(b"Server: ");
        out.extend_from_slice(SERVER.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !has_date {
        out.extend_from_slice(b"Date: ");
        push_http_date(out);
        out.extend_from_slice(b"\r\n");
    }
}

/// The reason phrase for a status code, "Unknown" for unregistered ones.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// A complete error response with `Connection: close`.
pub fn error_response(status: u16) -> Vec<u8> {
    let reason = reason_phrase(status);
    let body = error_body(status, reason);
    let mut out = Vec::with_capacity(192 + body.len());
    out.extend_from_slice(format!("HTTP/1.1 {status} {reason}\r\n").as_bytes());
    out.extend_from_slice(b"Server: corral\r\nDate: ");
    push_http_date(&mut out);
    out.extend_from_slice(b"\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n");
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body.as_bytes());
    out
}

fn error_body(status: u16, reason: &str) -> String {
    format!("{status} {reason}\n")
}

/// The length of the body [`error_response`] sends (for the access log).
pub fn error_body_len(status: u16) -> usize {
    error_body(status, reason_phrase(status)).len()
}

/// Bytes of a head beyond the app's status and headers: the status line's
/// framing, `Server`, `Date`, the framing header, `Connection`, the blank
/// line, with room to spare for a small body written behind the head.
const HEAD_EXTRA: usize = 256;

/// Length of an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
const DATE_LEN: usize = 29;

thread_local! {
    /// (unix second, its IMF-fixdate); formatting once per second per thread
    /// keeps the hot path to a clock read and a copy.
    static DATE_CACHE: RefCell<(u64, [u8; DATE_LEN])> = const { RefCell::new((u64::MAX, [0; DATE_LEN])) };
}

/// Append the current time as an IMF-fixdate, from the per-thread cache.
pub fn push_http_date(out: &mut Vec<u8>) {
    // The coarse clock (a few milliseconds behind at most) is exact enough
    // for a date in seconds and cheaper to read on every response.
    let now = match nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME_COARSE) {
        Ok(ts) => u64::try_from(ts.tv_sec()).unwrap_or(0),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    DATE_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != now {
            *cache = (now, format_imf_fixdate(now));
        }
        out.extend_from_slice(&cache.1);
    });
}

/// The current time as an IMF-fixdate, cached per second.
pub fn http_date() -> String {
    let mut out = Vec::with_capacity(DATE_LEN);
    push_http_date(&mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Format seconds since the Unix epoch (UTC) as an IMF-fixdate.
fn format_imf_fixdate(secs: u64) -> [u8; DATE_LEN] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let mut d = [0u8; DATE_LEN];
    d[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    d[3..5].copy_from_slice(b", ");
    two(&mut d[5..7], day);
    d[7] = b' ';
    d[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    d[11] = b' ';
    let y = year % 10_000;
    two(&mut d[12..14], y / 100);
    two(&mut d[14..16], y % 100);
    d[16] = b' ';
    two(&mut d[17..19], rem / 3600);
    d[19] = b':';
    two(&mut d[20..22], rem / 60 % 60);
    d[22] = b':';
    two(&mut d[23..25], rem % 60);
    d[25..].copy_from_slice(b" GMT");
    d
}

fn two(dst: &mut [u8], n: u64) {
    dst[0] = b'0' + (n / 10 % 10) as u8;
    dst[1] = b'0' + (n % 10) as u8;
}

/// Proleptic Gregorian (year, month, day) for days since 1970-01-01.
/// Counts from 0000-03-01 so that the leap day is the last day of a
/// "year"; 400-year eras then repeat exactly (146097 days each).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = z / 146_097;
    let doe = z % 146_097; // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..=365, from March 1
    let mp = (5 * doy + 2) / 153; // month index from March, 0..=11
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V11: ResponseInfo = ResponseInfo {
        version: Version::Http11,
        head_request: false,
        keep_alive: true,
    };

    fn hdrs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn text(out: &[u8]) -> String {
        String::from_utf8_lossy(out).into_owned()
    }

    /// Run a whole response; returns (wire bytes with the Date line removed,
    /// keep_alive).
    fn run(info: ResponseInfo, status: &str, h: &[(&str, &str)], body: &[&[u8]]) -> (String, bool) {
        let mut out = Vec::new();
        let mut enc = ResponseEncoder::start(&mut out, info, status, &hdrs(h)).unwrap();
        for part in body {
            enc.body(&mut out, part);
        }
        enc.finish(&mut out);
        let s = text(&out);
        let without_date: Vec<&str> = s
            .split("\r\n")
            .filter(|l| !l.starts_with("Date: "))
            .collect();
        assert!(s.contains("\r\nDate: ") || h.iter().any(|(n, _)| n.eq_ignore_ascii_case("date")));
        (without_date.join("\r\n"), enc.keep_alive())
    }

    #[test]
    fn chunked_on_http11_without_length() {
        let (s, ka) = run(
            V11,
            "200 OK",
            &[("Content-Type", "text/plain")],
            &[b"hello", b"", b"world!"],
        );
        assert_eq!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nServer: corral\r\n\
Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n"
        );
        assert!(ka);
    }

    #[test]
    fn content_length_truncates_extra_and_detects_short() {
        let (s, ka) = run(V11, "200 OK", &[("Content-Length", "4")], &[b"ab", b"cdef"]);
        assert!(s.ends_with("Connection: keep-alive\r\n\r\nabcd"), "{s}");
        assert!(ka);
        let (s, ka) = run(V11, "200 OK", &[("Content-Length", "4")], &[b"ab"]);
        assert!(s.ends_with("\r\n\r\nab"));
        assert!(!ka, "a short body must close the connection");
    }

    #[test]
    fn http10_without_length_is_close_delimited() {
        let info = ResponseInfo {
            version: Version::Http10,
            ..V11
        };
        let (s, ka) = run(info, "200 OK", &[], &[b"abc"]);
        assert!(s.ends_with("Connection: close\r\n\r\nabc"), "{s}");
        assert!(!s.contains("Transfer-Encoding"));
        assert!(!ka);
        let (s, ka) = run(info, "200 OK", &[("Content-Length", "3")], &[b"abc"]);
        assert!(s.contains("Connection: keep-alive"));
        assert!(ka);
    }

    #[test]
    fn no_body_statuses_and_head() {
        let head = ResponseInfo {
            head_request: true,
            ..V11
        };
        let (s, ka) = run(
            head,
            "200 OK",
            &[("Content-Length", "10")],
            &[b"0123456789"],
        );
        assert!(s.contains("Content-Length: 10\r\n"));
        assert!(s.ends_with("\r\n\r\n"));
        assert!(ka);
        let (s, _) = run(V11, "204 No Content", &[("Content-Length", "3")], &[b"abc"]);
        assert!(
            !s.contains("Content-Length") && !s.contains("Transfer-Encoding"),
            "{s}"
        );
        assert!(s.ends_with("\r\n\r\n"));
        let (s, _) = run(
            V11,
            "304 Not Modified",
            &[("Content-Length", "3")],
            &[b"abc"],
        );
        assert!(s.contains("Content-Length: 3") && s.ends_with("\r\n\r\n"));
        let (s, ka) = run(head, "200 OK", &[], &[b"x"]);
        assert!(!s.contains("Transfer-Encoding") && ka, "{s}");
    }

    #[test]
    fn hop_by_hop_dropped_and_close_honoured() {
        let (s, ka) = run(
            V11,
            "200 OK",
            &[
                ("Connection", "Close"),
                ("Keep-Alive", "timeout=5"),
                ("Transfer-Encoding", "chunked"),
                ("Upgrade", "h2c"),
                ("TE", "trailers"),
                ("Trailer", "X"),
                ("Proxy-Connection", "x"),
                ("Content-Length", "0"),
            ],
            &[],
        );
        assert_eq!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nServer: corral\r\nConnection: close\r\n\r\n"
        );
        assert!(!ka);
        let not_alive = ResponseInfo {
            keep_alive: false,
            ..V11
        };
        let (s, ka) = run(not_alive, "200 OK", &[("Content-Length", "0")], &[]);
        assert!(s.contains("Connection: close") && !ka);
    }

    #[test]
    fn app_date_and_server_win() {
        let mut out = Vec::new();
        let h = hdrs(&[
            ("Server", "mine"),
            ("date", "Thu, 01 Jan 1970 00:00:00 GMT"),
            ("Content-Length", "0"),
        ]);
        ResponseEncoder::start(&mut out, V11, "200 OK", &h).unwrap();
        let s = text(&out);
        assert!(
            s.contains("\r\nServer: mine\r\n") && !s.contains("corral"),
            "{s}"
        );
        assert!(
            s.contains("\r\ndate: Thu, 01 Jan 1970 00:00:00 GMT\r\n"),
            "{s}"
        );
        assert_eq!(
            s.to_ascii_lowercase().matches("\r\ndate: ").count(),
            1,
            "{s}"
        );
    }

    #[test]
    fn latin1_values_are_single_bytes() {
        let mut out = Vec::new();
        ResponseEncoder::start(&mut out, V11, "200 Ça va", &hdrs(&[("X-A", "é")])).unwrap();
        assert!(out.starts_with(b"HTTP/1.1 200 \xc7a va\r\n"));
        assert!(out.windows(8).any(|w| w == b"X-A: \xe9\r\n"));
    }

    #[test]
    fn invalid_status_and_headers_leave_out_untouched() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("20 OK", &[]),
            ("099 X", &[]),
            ("2000 OK", &[]),
            ("200OK", &[]),
            ("abc OK", &[]),
            ("200 O\rK", &[]),
            ("200 O\nK", &[]),
            ("200 \u{100}", &[]),
            ("200 OK", &[("Bad Name", "x")]),
            ("200 OK", &[("", "x")]),
            ("200 OK", &[("X", "a\r\nSet-Cookie: evil")]),
            ("200 OK", &[("X", "a\0")]),
            ("200 OK", &[("X", "\u{263a}")]),
            ("200 OK", &[("Content-Length", "-1")]),
            (
                "200 OK",
                &[("Content-Length", "1"), ("content-length", "1")],
            ),
        ];
        for (status, h) in cases {
            let mut out = b"keep".to_vec();
            let r = ResponseEncoder::start(&mut out, V11, status, &hdrs(h));
            assert!(r.is_err(), "{status:?} {h:?} accepted");
            assert_eq!(out, b"keep");
            assert!(!r.unwrap_err().to_string().is_empty());
        }
        assert!(ResponseEncoder::start(&mut Vec::new(), V11, "599", &[]).is_ok());
    }

    #[test]
    fn raw_bodies_for_sendfile() {
        let mut out = Vec::new();
        let mut enc =
            ResponseEncoder::start(&mut out, V11, "200 OK", &hdrs(&[("Content-Length", "5")]))
                .unwrap();
        out.clear();
        assert_eq!(enc.begin_raw(&mut out, 8), 5);
        enc.end_raw(&mut out);
        assert!(out.is_empty());
        assert_eq!(enc.begin_raw(&mut out, 8), 0);
        enc.finish(&mut out);
        assert!(enc.keep_alive());
        assert_eq!(enc.body_bytes(), 5);

        let mut enc = ResponseEncoder::start(&mut out, V11, "200 OK", &[]).unwrap();
        out.clear();
        assert_eq!(enc.begin_raw(&mut out, 300), 300);
        assert_eq!(out, b"12c\r\n");
        enc.end_raw(&mut out);
        enc.finish(&mut out);
        assert_eq!(out, b"12c\r\n\r\n0\r\n\r\n");
        assert_eq!(enc.status(), 200);
    }

    #[test]
    fn error_response_is_complete() {
        let r = text(&error_response(431));
        assert!(r.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(r.contains("\r\nConnection: close\r\n"));
        assert!(r.contains("\r\nServer: corral\r\n"));
        assert!(r.contains("\r\nDate: "));
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        assert_eq!(body, "431 Request Header Fields Too Large\n");
    }

    #[test]
    fn imf_fixdate_known_instants() {
        let f = |s| String::from_utf8(format_imf_fixdate(s).to_vec()).unwrap();
        assert_eq!(f(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(f(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(f(951_825_600), "Tue, 29 Feb 2000 12:00:00 GMT");
        assert_eq!(f(4_107_542_399), "Sun, 28 Feb 2100 23:59:59 GMT");
        assert_eq!(f(4_107_542_400), "Mon, 01 Mar 2100 00:00:00 GMT");
        assert_eq!(f(1_735_689_599), "Tue, 31 Dec 2024 23:59:59 GMT");
        let now = http_date();
        assert_eq!(now.len(), DATE_LEN);
        assert!(now.ends_with(" GMT"));
    }

    #[test]
    fn hex_lengths() {
        let mut out = Vec::new();
        push_hex(&mut out, 0);
        push_hex(&mut out, 255);
        push_hex(&mut out, u64::MAX);
        assert_eq!(out, b"0ffffffffffffffffff");
    }
}
