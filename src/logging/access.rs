//! The access log: gunicorn's `--access-logformat` compiled once into a list
//! of parts, then rendered per request without parsing anything again.
//!
//! Differences from gunicorn, on purpose: `{NAME}e` reads the worker
//! process's environment (gunicorn reads the WSGI environ, which corral does
//! not keep after the request); and every atom's value is escaped -- `"` as
//! `\"`, `\` as `\\`, control and non-ASCII bytes as `\xHH` -- so a client
//! cannot break the line or forge a new one.

use std::io::Write as _;

use super::AccessRecord;
use crate::http::Version;

/// What one `%(...)s` placeholder stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Atom {
    RemoteAddr,
    Ident,
    User,
    Time,
    RequestLine,
    Status,
    Method,
    Path,
    Query,
    Protocol,
    Bytes,
    Referer,
    UserAgent,
    Seconds,
    Millis,
    Micros,
    DecimalSeconds,
    Pid,
    /// Lower-cased header name.
    RequestHeader(String),
    ResponseHeader(String),
    Env(String),
    /// gunicorn prints `-` for atoms it does not know; so do we.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Atom(Atom),
}

/// A compiled access-log format.
#[derive(Debug, Clone)]
pub struct Format(Vec<Part>);

fn atom(key: &str) -> Atom {
    let braced = |suffix: char| {
        key.strip_prefix('{')
            .and_then(|k| k.strip_suffix(suffix))
            .and_then(|k| k.strip_suffix('}'))
    };
    if let Some(h) = braced('i') {
        return Atom::RequestHeader(h.to_ascii_lowercase());
    }
    if let Some(h) = braced('o') {
        return Atom::ResponseHeader(h.to_ascii_lowercase());
    }
    if let Some(v) = braced('e') {
        return Atom::Env(v.to_string());
    }
    match key {
        "h" => Atom::RemoteAddr,
        "l" => Atom::Ident,
        "u" => Atom::User,
        "t" => Atom::Time,
        "r" => Atom::RequestLine,
        "s" => Atom::Status,
        "m" => Atom::Method,
        "U" => Atom::Path,
        "q" => Atom::Query,
        "H" => Atom::Protocol,
        // gunicorn prints `-` for %(b)s only when nothing was sent at all,
        // which never reaches its access log: an empty body is `0`.
        "b" | "B" => Atom::Bytes,
        "f" => Atom::Referer,
        "a" => Atom::UserAgent,
        "T" => Atom::Seconds,
        "M" => Atom::Millis,
        "D" => Atom::Micros,
        "L" => Atom::DecimalSeconds,
        "p" => Atom::Pid,
        _ => Atom::Unknown,
    }
}

impl Format {
    /// Compile Python %-mapping syntax: `%(KEY)s` and `%%`. `d` and `r`
    /// conversions are taken as `s`; anything else is an error now rather
    /// than a broken line at request time.
    pub fn compile(text: &str) -> Result<Format, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            if c != '%' {
                lit.push(c);
                continue;
            }
            match chars.next() {
                Some((_, '%')) => lit.push('%'),
                Some((open, '(')) => {
                    // Python allows nested parentheses inside the key.
                    let mut depth = 1;
                    let mut close = None;
                    for (i, c) in chars.by_ref() {
                        match c {
                            '(' => depth += 1,
                            ')' => {
                                depth -= 1;
                                if depth == 0 {
                                    close = Some(i);
                                    break;
                                }
                            }
                            _ => {}
                        }
                    }
                    let close = close.ok_or_else(|| format!("unclosed '%(' at offset {at}"))?;
                    let key = &text[open + 1..close];
                    match chars.next() {
                        Some((_, 's' | 'd' | 'r')) => {}
                        _ => {
                            return Err(format!(
                                "'%({key})' must be followed by 's', as in %({key})s"
                            ))
                        }
                    }
                    if !lit.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Atom(atom(key)));
                }
                _ => {
                    return Err(format!(
                    "lone '%' at offset {at}: write %(ATOM)s for a value or %% for a percent sign"
                ))
                }
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Literal(lit));
        }
        Ok(Format(parts))
    }

    /// Append one rendered line (with its newline) to `out`.
    pub fn render(&self, rec: &AccessRecord<'_>, out: &mut Vec<u8>) {
        let mut scratch = Vec::new();
        for part in &self.0 {
            match part {
                Part::Literal(s) => out.extend_from_slice(s.as_bytes()),
                Part::Atom(a) => {
                    scratch.clear();
                    let raw = value(a, rec, &mut scratch);
                    escape_into(raw.unwrap_or(&scratch), out);
                }
            }
        }
        out.push(b'\n');
    }
}

fn protocol(v: Version) -> &'static str {
    match v {
        Version::Http10 => "HTTP/1.0",
        Version::Http11 => "HTTP/1.1",
    }
}

fn request_header<'r>(rec: &'r AccessRecord<'_>, lower: &str) -> Option<&'r [u8]> {
    // Last one wins when a header repeats, as in gunicorn's atom table.
    rec.head
        .headers
        .iter()
        .rev()
        .find(|h| h.name.eq_ignore_ascii_case(lower))
        .map(|h| h.value.as_slice())
}

/// The bytes an atom stands for: borrowed from the record where possible,
/// else written into `scratch` (signalled by `None`).
fn value<'r>(atom: &Atom, rec: &'r AccessRecord<'_>, scratch: &mut Vec<u8>) -> Option<&'r [u8]> {
    const DASH: &[u8] = b"-";
    let nonempty = |b: &'r [u8]| if b.is_empty() { DASH } else { b };
    let head = rec.head;
    let d = rec.duration;
    match atom {
        Atom::RemoteAddr => match rec.peer {
            Some(p) => {
                let _ = write!(scratch, "{}", p.ip());
                None
            }
            None => Some(DASH),
        },
        Atom::Ident | Atom::Unknown => Some(DASH),
        Atom::User => match request_header(rec, "authorization").and_then(basic_user) {
            Some(u) => {
                scratch.extend_from_slice(&u);
                None
            }
            None => Some(DASH),
        },
        Atom::Time => {
            let t: chrono::DateTime<chrono::Local> = rec.started.into();
            let _ = write!(scratch, "{}", t.format("[%d/%b/%Y:%H:%M:%S %z]"));
            None
        }
        Atom::RequestLine => {
            let _ = write!(
                scratch,
                "{} {} {}",
                head.method,
                head.target,
                protocol(head.version)
            );
            None
        }
        Atom::Status => Some(
            rec.status
                .split(' ')
                .next()
                .unwrap_or(rec.status)
                .as_bytes(),
        ),
        Atom::Method => Some(head.method.as_bytes()),
        Atom::Path => {
            percent_decode(&head.path, scratch);
            None
        }
        Atom::Query => Some(head.query.as_bytes()),
        Atom::Protocol => Some(protocol(head.version).as_bytes()),
        Atom::Bytes => {
            let _ = write!(scratch, "{}", rec.body_bytes);
            None
        }
        Atom::Referer => Some(request_header(rec, "referer").map_or(DASH, nonempty)),
        Atom::UserAgent => Some(request_header(rec, "user-agent").map_or(DASH, nonempty)),
        Atom::Seconds => {
            let _ = write!(scratch, "{}", d.as_secs());
            None
        }
        Atom::Millis => {
            let _ = write!(scratch, "{}", d.as_millis());
            None
        }
        Atom::Micros => {
            let _ = write!(scratch, "{}", d.as_micros());
            None
        }
        Atom::DecimalSeconds => {
            let _ = write!(scratch, "{}.{:06}", d.as_secs(), d.subsec_micros());
            None
        }
        Atom::Pid => {
            let _ = write!(scratch, "<{}>", std::process::id());
            None
        }
        Atom::RequestHeader(name) => Some(request_header(rec, name).map_or(DASH, nonempty)),
        Atom::ResponseHeader(name) => Some(
            rec.response_headers
                .iter()
                .rev()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map_or(DASH, |(_, v)| nonempty(v.as_bytes())),
        ),
        Atom::Env(var) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => {
                scratch.extend_from_slice(v.as_bytes());
                None
            }
            _ => Some(DASH),
        },
    }
}

/// The user name from `Authorization: Basic base64(user:password)`.
fn basic_user(header: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(header).ok()?.trim();
    let (scheme, creds) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64_decode(creds.trim())?;
    let user = match decoded.iter().position(|&b| b == b':') {
        Some(i) => &decoded[..i],
        None => &decoded[..],
    };
    Some(user.to_vec())
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let sextet = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let body = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for &c in body.as_bytes() {
        acc = (acc << 6) | sextet(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// `%XX` sequences decoded, as in WSGI's `PATH_INFO`; invalid ones kept.
fn percent_decode(path: &str, out: &mut Vec<u8>) {
    let b = path.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
}

fn escape_into(raw: &[u8], out: &mut Vec<u8>) {
    for &c in raw {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x20..=0x7e => out.push(c),
            _ => {
                let _ = write!(out, "\\x{c:02x}");
            }
        }
    }
}
