//! Request head parsing: a strict line scanner that enforces the limits and
//! line-ending rules while the head is still arriving, then `httparse` for the
//! grammar, then RFC 9112 / gunicorn 27 semantics (framing, Host, Expect,
//! method and target rules).
//!
//! Truncation is the caller's business: [`parse_head`] returning
//! [`Parsed::Partial`] and the peer then reaching EOF means "close without a
//! response" ([`HttpError::Truncated`] names that outcome for logs).

use super::error::snippet;
use super::HttpError;
use std::borrow::Cow;

/// HTTP version of a request. Only 1.0 and 1.1 are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    /// The version as written on the wire, e.g. for `SERVER_PROTOCOL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// What to do with header names containing `_` (gunicorn's `header_map`).
/// They matter because WSGI maps both `-` and `_` to `_` in `HTTP_*` keys,
/// so `X_Auth` could impersonate `X-Auth` set by a proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeaderMap {
    /// Silently leave the header out of [`RequestHead::headers`].
    #[default]
    Drop,
    /// Answer 400.
    Refuse,
    /// Keep it; the WSGI layer maps it like any other name.
    Dangerous,
}

/// gunicorn's hard ceiling for `limit_request_line`.
pub const MAX_REQUEST_LINE: usize = 8190;
/// gunicorn's hard ceiling for `limit_request_fields`.
pub const MAX_FIELDS: usize = 32768;
/// Field size used when `limit_request_field_size` is 0. gunicorn reads 0 as
/// unlimited; corral keeps every buffer bounded, so 0 means gunicorn's default.
pub const DEFAULT_FIELD_SIZE: usize = 8190;
/// Absolute ceiling on a whole request head, whatever the limits multiply to.
pub const MAX_HEAD: usize = 4 << 20;

/// Limits and strictness switches for the request head, named after
/// gunicorn's settings. Out-of-range values are normalised when used (see
/// the `effective_*` methods), so any configured value is safe.
#[derive(Debug, Clone)]
pub struct Limits {
    /// `limit_request_line`: longest request line in bytes, CRLF excluded.
    /// 0 or anything above 8190 means 8190 (gunicorn's ceiling).
    pub request_line: usize,
    /// `limit_request_fields`: most header fields. 0 or above 32768 means 32768.
    pub fields: usize,
    /// `limit_request_field_size`: longest header field line in bytes,
    /// counted with its CRLF as gunicorn does. 0 means 8190.
    pub field_size: usize,
    /// Accept any token as method (no length or case rules).
    pub permit_unconventional_http_method: bool,
    /// Upper-case lowercase methods instead of refusing them.
    pub casefold_http_method: bool,
    /// Accept obs-fold continuation lines (each fold becomes spaces).
    pub permit_obsolete_folding: bool,
    /// Strip whitespace between a header name and its colon instead of 400.
    pub strip_header_spaces: bool,
    /// Treatment of header names containing `_`.
    pub header_map: HeaderMap,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_line: 4094,
            fields: 100,
            field_size: 8190,
            permit_unconventional_http_method: false,
            casefold_http_method: false,
            permit_obsolete_folding: false,
            strip_header_spaces: false,
            header_map: HeaderMap::Drop,
        }
    }
}

impl Limits {
    /// The request-line limit actually enforced.
    pub fn effective_request_line(&self) -> usize {
        if self.request_line == 0 || self.request_line > MAX_REQUEST_LINE {
            MAX_REQUEST_LINE
        } else {
            self.request_line
        }
    }
    /// The field-count limit actually enforced.
    pub fn effective_fields(&self) -> usize {
        if self.fields == 0 || self.fields > MAX_FIELDS {
            MAX_FIELDS
        } else {
            self.fields
        }
    }
    /// The field-line limit actually enforced.
    pub fn effective_field_size(&self) -> usize {
        if self.field_size == 0 {
            DEFAULT_FIELD_SIZE
        } else {
            self.field_size
        }
    }
    /// Cap on the whole head: request line, every field at its limit, the
    /// final CRLF, bounded by [`MAX_HEAD`].
    pub fn head_cap(&self) -> usize {
        let fields = self
            .effective_fields()
            .saturating_mul(self.effective_field_size().saturating_add(2));
        (self.effective_request_line() + 2)
            .saturating_add(fields)
            .saturating_add(2)
            .min(MAX_HEAD)
    }
}

/// One header field as received. `name` keeps the client's spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: Vec<u8>,
}

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    None,
    Length(u64),
    Chunked,
}

/// A parsed, validated request head.
#[derive(Debug, Clone)]
pub struct RequestHead {
    /// Borrowed for the common methods: no allocation for them.
    pub method: Cow<'static, str>,
    /// The request-target exactly as sent (`RAW_URI`).
    pub target: String,
    /// Path part of the target, still percent-encoded. For absolute-form it
    /// is the path after the authority (`/` when empty); for `*` it is `*`;
    /// for CONNECT's authority-form it is empty.
    pub path: String,
    /// Query part after `?` (without the `?`), fragment removed.
    pub query: String,
    pub version: Version,
    /// Header fields in arrival order, minus those `header_map` dropped.
    /// Values are trimmed of OWS and keep obs-text bytes.
    pub headers: Vec<Header>,
    pub body: BodyKind,
    /// Whether the client allows the connection to stay open afterwards.
    pub keep_alive: bool,
    /// The client sent `Expect: 100-continue` on HTTP/1.1 (RFC 9110 says to
    /// ignore it on 1.0). The worker should send [`super::CONTINUE_100`]
    /// before reading a body, and may skip it when `body` is `None`.
    pub expect_continue: bool,
}

/// The most bytes a head may hold to be kept for reuse (see
/// [`RequestHead::recyclable`]): a typical head's, so that a few unusual
/// requests do not leave the spare heads holding much memory.
const RECYCLE_MAX_BYTES: usize = 4096;

impl RequestHead {
    /// Whether this head, its request over, is worth keeping for
    /// [`parse_head_reusing`]: not when it holds more than a typical
    /// head's memory.
    pub fn recyclable(&self) -> bool {
        let strings = self.target.capacity() + self.path.capacity() + self.query.capacity();
        let fields = self.headers.capacity() * std::mem::size_of::<Header>();
        let mut bytes = strings + fields;
        for h in &self.headers {
            bytes += h.name.capacity() + h.value.capacity();
            if bytes > RECYCLE_MAX_BYTES {
                return false;
            }
        }
        bytes <= RECYCLE_MAX_BYTES
    }

    /// The first header with this name (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_slice())
    }
}

/// Result of feeding bytes to [`parse_head`].
#[derive(Debug)]
pub enum Parsed {
    /// More bytes are needed. If the peer reaches EOF now, close without a
    /// response.
    Partial,
    /// A complete head and how many bytes of the buffer it used.
    Complete(RequestHead, usize),
}

/// Headers parsed on the stack before falling back to the heap.
const STACK_HEADERS: usize = 32;

/// Parse the request head at the start of `buf`.
///
/// Limit and line-ending errors are reported as soon as the offending bytes
/// are in `buf`, even while the head is incomplete, so a client cannot make
/// the server buffer an over-long line. Leading empty lines (CRLF) before the
/// request line are skipped as RFC 9112 §2.2 recommends; they count towards
/// the request-line limit.
pub fn parse_head(buf: &[u8], limits: &Limits) -> Result<Parsed, HttpError> {
    parse_head_reusing(buf, limits, &mut Vec::new())
}

/// [`parse_head`], building the head in the storage of one from `spare`
/// (heads whose requests are over, see [`RequestHead::recyclable`]) when
/// there is one: a head costs no allocation once the worker has served a
/// few like it.
pub fn parse_head_reusing(
    buf: &[u8],
    limits: &Limits,
    spare: &mut Vec<RequestHead>,
) -> Result<Parsed, HttpError> {
    let scan = match scan_head(buf, limits)? {
        None => return Ok(Parsed::Partial),
        Some(scan) => scan,
    };
    let head = &buf[..scan.end];
    let rewritten;
    let to_parse: &[u8] = if scan.folds || scan.spaced_colons {
        rewritten = rewrite_head(head, scan.start);
        &rewritten
    } else {
        head
    };

    let mut stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
    let mut heap;
    let slots: &mut [httparse::Header<'_>] = if scan.fields <= STACK_HEADERS {
        &mut stack
    } else {
        heap = vec![httparse::EMPTY_HEADER; scan.fields];
        &mut heap
    };
    let mut req = httparse::Request::new(slots);
    match req.parse(to_parse) {
        Ok(httparse::Status::Complete(n)) if n == to_parse.len() => {}
        // The scanner found the blank line, so httparse must agree; if it
        // does not, the head is something the two read differently.
        Ok(_) => return Err(HttpError::Syntax(httparse::Error::Token)),
        Err(e) => return Err(map_syntax(e, to_parse)),
    }
    let head = build_head(&req, limits, spare.pop())?;
    Ok(Parsed::Complete(head, scan.end))
}

/// httparse reports whitespace before a colon as a bad header name; say so.
fn map_syntax(e: httparse::Error, head: &[u8]) -> HttpError {
    if e == httparse::Error::HeaderName {
        for line in head.split(|&b| b == b'\n').skip(1) {
            if let Some(colon) = line.iter().position(|&b| b == b':') {
                let name = &line[..colon];
                if name.last().is_some_and(|&b| b == b' ' || b == b'\t') {
                    return HttpError::SpaceBeforeColon(snippet(name.trim_ascii_end()));
                }
                if !name.iter().all(|&b| is_tchar(b)) {
                    return HttpError::BadHeaderName(snippet(name));
                }
            }
        }
    }
    if e == httparse::Error::Version {
        return HttpError::BadVersion;
    }
    HttpError::Syntax(e)
}

/// What the line scanner learned about a complete head.
struct Scan {
    /// Offset of the request line (after skipped empty lines).
    start: usize,
    /// Offset just past the blank line that ends the head.
    end: usize,
    /// Field lines, not counting continuation lines.
    fields: usize,
    /// Some field has obs-fold continuation lines (only when permitted).
    folds: bool,
    /// Some field name has whitespace before its colon (only when stripping).
    spaced_colons: bool,
}

/// Walk the head line by line: CRLF only, limits enforced on complete and
/// incomplete lines alike. `Ok(None)` means the head is not complete yet.
fn scan_head(buf: &[u8], limits: &Limits) -> Result<Option<Scan>, HttpError> {
    let line_limit = limits.effective_request_line();
    let field_limit = limits.effective_field_size();
    let max_fields = limits.effective_fields();
    let cap = limits.head_cap();

    let mut start = 0;
    while buf[start..].starts_with(b"\r\n") {
        start += 2;
    }
    let mut pos = start;
    let mut line_no = 0usize;
    let mut fields = 0usize;
    let mut field_len = 0usize;
    let mut folds = false;
    let mut spaced_colons = false;
    loop {
        let (content_end, next) = match find_line_end(buf, pos)? {
            Some(found) => found,
            None => {
                // Judge the incomplete line as if its CRLF came next; a
                // trailing CR may be the first half of that CRLF.
                let mut partial = buf.len() - pos;
                if buf.last() == Some(&b'\r') {
                    partial -= 1;
                }
                if line_no == 0 {
                    if pos + partial > line_limit {
                        return Err(HttpError::RequestLineTooLong { limit: line_limit });
                    }
                    check_request_line_bytes(&buf[pos..pos + partial], pos)?;
                } else if partial > 0 {
                    let first = buf[pos];
                    let len = if first == b' ' || first == b'\t' {
                        field_len + partial + 2
                    } else {
                        if fields + 1 > max_fields {
                            return Err(HttpError::TooManyHeaders { limit: max_fields });
                        }
                        partial + 2
                    };
                    if len > field_limit {
                        return Err(HttpError::HeaderTooLarge {
                            line: line_no,
                            limit: field_limit,
                        });
                    }
                }
                if buf.len() > cap {
                    return Err(HttpError::HeadTooLarge { limit: cap });
                }
                return Ok(None);
            }
        };
        let line = &buf[pos..content_end];
        if line_no == 0 {
            // Measured from the buffer start so skipped empty lines count.
            if content_end > line_limit {
                return Err(HttpError::RequestLineTooLong { limit: line_limit });
            }
            check_request_line_bytes(line, pos)?;
        } else if line.is_empty() {
            if next > cap {
                return Err(HttpError::HeadTooLarge { limit: cap });
            }
            return Ok(Some(Scan {
                start,
                end: next,
                fields,
                folds,
                spaced_colons,
            }));
        } else if line[0] == b' ' || line[0] == b'\t' {
            // obs-fold: never valid before the first field (RFC 9112 §2.2).
            if line_no == 1 || !limits.permit_obsolete_folding {
                return Err(HttpError::ObsFold(pos));
            }
            folds = true;
            field_len += line.len() + 2;
            if field_len > field_limit {
                return Err(HttpError::HeaderTooLarge {
                    line: line_no,
                    limit: field_limit,
                });
            }
        } else {
            fields += 1;
            if fields > max_fields {
                return Err(HttpError::TooManyHeaders { limit: max_fields });
            }
            field_len = line.len() + 2;
            if field_len > field_limit {
                return Err(HttpError::HeaderTooLarge {
                    line: line_no,
                    limit: field_limit,
                });
            }
            if limits.strip_header_spaces {
                if let Some(colon) = line.iter().position(|&b| b == b':') {
                    if colon > 0 && matches!(line[colon - 1], b' ' | b'\t') {
                        spaced_colons = true;
                    }
                }
            }
        }
        if next > cap {
            return Err(HttpError::HeadTooLarge { limit: cap });
        }
        line_no += 1;
        pos = next;
    }
}

/// Find the CRLF ending the line at `pos`: `(end of content, start of next
/// line)`. A CR not followed by LF, or an LF without CR, is an error.
fn find_line_end(buf: &[u8], pos: usize) -> Result<Option<(usize, usize)>, HttpError> {
    match buf[pos..].iter().position(|&b| b == b'\r' || b == b'\n') {
        None => Ok(None),
        Some(i) => {
            let at = pos + i;
            if buf[at] == b'\n' {
                return Err(HttpError::BareLf(at));
            }
            match buf.get(at + 1) {
                None => Ok(None),
                Some(b'\n') => Ok(Some((at, at + 2))),
                Some(_) => Err(HttpError::BareCr(at)),
            }
        }
    }
}

/// The request line is ASCII: visible characters separated by single spaces.
/// Checked before httparse so no other byte ever reaches it.
fn check_request_line_bytes(line: &[u8], offset: usize) -> Result<(), HttpError> {
    match line.iter().position(|&b| !(0x20..=0x7e).contains(&b)) {
        None => Ok(()),
        Some(i) => Err(HttpError::RequestLineByte {
            byte: line[i],
            at: offset + i,
        }),
    }
}

/// Copy of the head with obs-folds turned into spaces and whitespace before
/// colons removed, for the rare requests that use either permitted form.
fn rewrite_head(head: &[u8], start: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(head.len());
    let mut lines = head[start..].split(|&b| b == b'\n').peekable();
    let mut first = true;
    while let Some(line) = lines.next() {
        if lines.peek().is_none() {
            break; // the empty piece after the final LF
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let is_fold = !first && matches!(line.first(), Some(b' ' | b'\t'));
        if is_fold {
            // Replace the preceding CRLF with a space pair (RFC 9112 §5.2).
            out.truncate(out.len() - 2);
            out.extend_from_slice(b"  ");
            out.extend_from_slice(line);
        } else if !first && !line.is_empty() {
            match line.iter().position(|&b| b == b':') {
                Some(colon) => {
                    out.extend_from_slice(line[..colon].trim_ascii_end());
                    out.extend_from_slice(&line[colon..]);
                }
                None => out.extend_from_slice(line),
            }
        } else {
            out.extend_from_slice(line);
        }
        out.extend_from_slice(b"\r\n");
        first = false;
    }
    out
}

pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn build_head(
    req: &httparse::Request<'_, '_>,
    limits: &Limits,
    spare: Option<RequestHead>,
) -> Result<RequestHead, HttpError> {
    let raw_method = req.method.unwrap_or_default();
    let method = check_method(raw_method, limits)?;
    let version = match req.version {
        Some(0) => Version::Http10,
        Some(1) => Version::Http11,
        _ => return Err(HttpError::BadVersion),
    };
    let target = req.path.unwrap_or_default();
    let (path, query) = split_target(&method, target)?;

    let (t, p, q, mut headers) = spare
        .map(|h| (h.target, h.path, h.query, h.headers))
        .unwrap_or_default();
    // Field i is written into the buffers of the last request's field i: a
    // client sends its fields in the same order, so they mostly fit.
    headers.reserve(req.headers.len().saturating_sub(headers.len()));
    let mut n = 0;
    let mut framing = Framing::default();
    for h in req.headers.iter() {
        let value = h.value.trim_ascii();
        if value.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n') {
            return Err(HttpError::BadHeaderValue(snippet(h.name.as_bytes())));
        }
        if h.name.contains('_') {
            match limits.header_map {
                HeaderMap::Drop => continue,
                HeaderMap::Refuse => {
                    return Err(HttpError::UnderscoreInName(snippet(h.name.as_bytes())))
                }
                HeaderMap::Dangerous => {}
            }
        }
        framing.see(h.name, value)?;
        match headers.get_mut(n) {
            Some(reused) => {
                reused.name.clear();
                reused.name.push_str(h.name);
                reused.value.clear();
                reused.value.extend_from_slice(value);
            }
            None => headers.push(Header {
                name: h.name.to_owned(),
                value: value.to_vec(),
            }),
        }
        n += 1;
    }
    headers.truncate(n);

    let body = framing.body(version)?;
    if version == Version::Http11 && !framing.host {
        return Err(HttpError::MissingHost);
    }
    let keep_alive = match version {
        Version::Http11 => !framing.conn_close,
        Version::Http10 => framing.conn_keep_alive && !framing.conn_close,
    };
    let expect_continue = if version == Version::Http11 {
        match framing.expect {
            ExpectSeen::None => false,
            ExpectSeen::Continue => true,
            ExpectSeen::Other(v) => return Err(HttpError::UnsupportedExpect(v)),
        }
    } else {
        false
    };

    let text = |mut into: String, from: &str| {
        into.clear();
        into.push_str(from);
        into
    };
    Ok(RequestHead {
        method,
        target: text(t, target),
        path: text(p, path),
        query: text(q, query),
        version,
        headers,
        body,
        keep_alive,
        expect_continue,
    })
}

/// RFC 9110 token, plus gunicorn's conventions unless permitted: 3 to 20
/// characters, no lowercase and no `#`.
fn check_method(raw: &str, limits: &Limits) -> Result<Cow<'static, str>, HttpError> {
    if let Some(known) = COMMON_METHODS.iter().find(|m| **m == raw) {
        return Ok(Cow::Borrowed(known));
    }
    let bad = || HttpError::BadMethod(snippet(raw.as_bytes()));
    if raw.is_empty() || !raw.bytes().all(is_tchar) {
        return Err(bad());
    }
    if limits.permit_unconventional_http_method {
        return Ok(Cow::Owned(raw.to_owned()));
    }
    let method = if limits.casefold_http_method {
        raw.to_ascii_uppercase()
    } else {
        raw.to_owned()
    };
    if !(3..=20).contains(&method.len())
        || method.bytes().any(|b| b.is_ascii_lowercase() || b == b'#')
    {
        return Err(bad());
    }
    Ok(Cow::Owned(method))
}

/// Methods that pass every rule above whatever the limits say, taken
/// without a copy.
const COMMON_METHODS: &[&str] = &["GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"];

/// The request line of a head the parser refused, when that line itself is
/// sound: enough for the access log to record a rejected request with its
/// method and target, as gunicorn does for requests whose headers it
/// refused. The head it returns has no header fields.
pub fn request_line(buf: &[u8]) -> Option<RequestHead> {
    let mut none: [httparse::Header<'_>; 0] = [];
    let mut req = httparse::Request::new(&mut none);
    // With no room for headers, httparse stops after the request line.
    let _ = req.parse(buf);
    let method = Cow::Owned(req.method?.to_owned());
    let target = req.path?.to_owned();
    let version = match req.version? {
        0 => Version::Http10,
        _ => Version::Http11,
    };
    let (path, query) = split_target(&method, &target).ok()?;
    let (path, query) = (path.to_owned(), query.to_owned());
    Some(RequestHead {
        method,
        target,
        path,
        query,
        version,
        headers: Vec::new(),
        body: BodyKind::None,
        keep_alive: false,
        expect_continue: false,
    })
}

/// Split a request-target into (path, query), enforcing which form each
/// method may use (RFC 9112 §3.2).
fn split_target<'a>(method: &str, target: &'a str) -> Result<(&'a str, &'a str), HttpError> {
    let bad = |why| HttpError::BadTarget {
        target: snippet(target.as_bytes()),
        why,
    };
    if method == "CONNECT" {
        if target.starts_with('/') || target == "*" || target.contains("://") {
            return Err(bad("CONNECT requires authority-form"));
        }
        if !valid_authority(target) || !target.contains(':') {
            return Err(bad("authority-form must be host:port"));
        }
        return Ok(("", ""));
    }
    if target == "*" {
        if method != "OPTIONS" {
            return Err(bad("asterisk-form is only for OPTIONS"));
        }
        return Ok(("*", ""));
    }
    let rest = if target.starts_with('/') {
        target
    } else if let Some(after) = scheme_end(target) {
        let rest = &target[after..];
        let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        if auth_end == 0 || !valid_authority(&rest[..auth_end]) {
            return Err(bad("absolute-form with an invalid authority"));
        }
        &rest[auth_end..]
    } else {
        return Err(bad("authority-form is only for CONNECT"));
    };
    let without_fragment = &rest[..rest.find('#').unwrap_or(rest.len())];
    let (path, query) = match without_fragment.find('?') {
        Some(q) => (&without_fragment[..q], &without_fragment[q + 1..]),
        None => (without_fragment, ""),
    };
    Ok((if path.is_empty() { "/" } else { path }, query))
}

/// Offset after `scheme://` when `target` starts with a URI scheme.
fn scheme_end(target: &str) -> Option<usize> {
    let colon = target.find("://")?;
    let scheme = &target.as_bytes()[..colon];
    let ok = scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    ok.then_some(colon + 3)
}

/// `uri-host [":" port]` by character class: reg-name, IPv4 or an IP-literal.
/// userinfo (`@`) is refused: it has no business in a request.
fn valid_authority(a: &str) -> bool {
    let b = a.as_bytes();
    let (host, port) = if b.first() == Some(&b'[') {
        match a.find(']') {
            Some(close) => {
                let inner = &b[1..close];
                if inner.is_empty()
                    || !inner
                        .iter()
                        .all(|&c| c.is_ascii_hexdigit() || b":.vV".contains(&c))
                {
                    return false;
                }
                match &a[close + 1..] {
                    "" => ("", None),
                    p if p.starts_with(':') => ("", Some(&p[1..])),
                    _ => return false,
                }
            }
            None => return false,
        }
    } else {
        match a.rfind(':') {
            Some(c) => (&a[..c], Some(&a[c + 1..])),
            None => (a, None),
        }
    };
    let host_ok = host
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=".contains(&c));
    let port_ok = port.is_none_or(|p| p.bytes().all(|c| c.is_ascii_digit()));
    host_ok && port_ok
}

#[derive(Default)]
enum ExpectSeen {
    #[default]
    None,
    Continue,
    Other(String),
}

/// Headers that decide framing and connection handling, gathered in one pass.
#[derive(Default)]
struct Framing {
    host: bool,
    content_type: bool,
    content_length: Option<u64>,
    transfer_encoding: Option<TeState>,
    conn_close: bool,
    conn_keep_alive: bool,
    expect: ExpectSeen,
}

/// Transfer codings seen so far, across repeated Transfer-Encoding lines.
struct TeState {
    chunked_last: bool,
    error: Option<HttpError>,
}

impl Framing {
    fn see(&mut self, name: &str, value: &[u8]) -> Result<(), HttpError> {
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        if is("host") {
            if self.host {
                return Err(HttpError::DuplicateHeader("Host"));
            }
            if !std::str::from_utf8(value).is_ok_and(|v| v.is_empty() || valid_authority(v)) {
                return Err(HttpError::BadHost(snippet(value)));
            }
            self.host = true;
        } else if is("content-length") {
            if self.content_length.is_some() {
                return Err(HttpError::DuplicateHeader("Content-Length"));
            }
            self.content_length = Some(parse_length(value)?);
        } else if is("content-type") {
            if self.content_type {
                return Err(HttpError::DuplicateHeader("Content-Type"));
            }
            self.content_type = true;
        } else if is("transfer-encoding") {
            let te = self.transfer_encoding.get_or_insert(TeState {
                chunked_last: false,
                error: None,
            });
            te.see(value);
        } else if is("connection") {
            for token in list_items(value) {
                if token.eq_ignore_ascii_case(b"close") {
                    self.conn_close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    self.conn_keep_alive = true;
                }
            }
        } else if is("expect") {
            let mut any = false;
            for item in list_items(value) {
                any = true;
                if !item.eq_ignore_ascii_case(b"100-continue") {
                    self.expect = ExpectSeen::Other(snippet(value));
                    return Ok(());
                }
            }
            if !any {
                self.expect = ExpectSeen::Other(snippet(value));
            } else if matches!(self.expect, ExpectSeen::None) {
                self.expect = ExpectSeen::Continue;
            }
        }
        Ok(())
    }

    fn body(&mut self, version: Version) -> Result<BodyKind, HttpError> {
        match self.transfer_encoding.take() {
            Some(te) => {
                if version == Version::Http10 {
                    return Err(HttpError::TransferEncodingOnHttp10);
                }
                if self.content_length.is_some() {
                    return Err(HttpError::TransferEncodingWithLength);
                }
                if let Some(e) = te.error {
                    return Err(e);
                }
                if !te.chunked_last {
                    // Only chunked is implemented, so any list that passed
                    // the checks above ends in chunked; this is the empty
                    // list case.
                    return Err(HttpError::BadTransferEncoding {
                        value: String::new(),
                        why: "no transfer coding given",
                    });
                }
                Ok(BodyKind::Chunked)
            }
            None => Ok(match self.content_length {
                None | Some(0) => BodyKind::None,
                Some(n) => BodyKind::Length(n),
            }),
        }
    }
}

impl TeState {
    /// Record one Transfer-Encoding line. The first problem is kept: a 400
    /// for structure (chunked repeated or not last) wins over a 501 for an
    /// unknown coding only when it comes first, as a reader would meet them.
    fn see(&mut self, value: &[u8]) {
        for coding in list_items(value) {
            if self.error.is_some() {
                return;
            }
            if coding.eq_ignore_ascii_case(b"chunked") {
                if self.chunked_last {
                    self.error = Some(HttpError::BadTransferEncoding {
                        value: snippet(value),
                        why: "chunked applied twice",
                    });
                }
                self.chunked_last = true;
            } else if self.chunked_last {
                self.error = Some(HttpError::BadTransferEncoding {
                    value: snippet(value),
                    why: "chunked is not the final coding",
                });
            } else {
                self.error = Some(HttpError::UnsupportedTransferCoding(snippet(coding)));
            }
        }
    }
}

/// Elements of a comma-separated list, OWS-trimmed, empty elements skipped
/// (RFC 9110 §5.6.1).
fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(|item| item.trim_ascii())
        .filter(|item| !item.is_empty())
}

/// Content-Length: one or more digits, fitting in a u64. No sign, no list.
fn parse_length(value: &[u8]) -> Result<u64, HttpError> {
    let bad = || HttpError::BadContentLength(snippet(value));
    if value.is_empty() {
        return Err(bad());
    }
    value.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return Err(bad());
        }
        acc.checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or_else(bad)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> Result<Parsed, HttpError> {
        parse_head(raw, &Limits::default())
    }

    fn complete(raw: &[u8]) -> (RequestHead, usize) {
        match parse(raw) {
            Ok(Parsed::Complete(h, n)) => (h, n),
            other => panic!("expected complete, got {other:?}"),
        }
    }

    fn status(raw: &[u8], limits: &Limits) -> Option<u16> {
        match parse_head(raw, limits) {
            Err(e) => e.status(),
            Ok(p) => panic!("expected an error, got {p:?}"),
        }
    }

    #[test]
    fn request_line_of_a_refused_head() {
        let h = request_line(b"GET /a%20b?q=1 HTTP/1.1\r\nBad Header: x\r\n\r\n").unwrap();
        assert_eq!(
            (&*h.method, h.path.as_str(), h.query.as_str()),
            ("GET", "/a%20b", "q=1")
        );
        assert_eq!(h.version, Version::Http11);
        assert!(h.headers.is_empty());
        assert_eq!(
            request_line(b"GET /x HTTP/1.0\r\n").unwrap().version,
            Version::Http10
        );
        // A request line that is itself broken gives nothing to log.
        assert!(request_line(b"GET\x01/ HTTP/1.1\r\n\r\n").is_none());
        assert!(request_line(b"GET noslash HTTP/1.1\r\n\r\n").is_none());
        assert!(request_line(b"\x16\x03\x01").is_none());
    }

    const SIMPLE: &[u8] = b"POST /a/b%20c?x=1&y#frag HTTP/1.1\r\nHost: example.com\r\n\
Content-Length: 3\r\nX-Multi: a\r\nx-multi:  b \r\n\r\nabc";

    #[test]
    fn simple_request_fields() {
        let (h, n) = complete(SIMPLE);
        assert_eq!(n, SIMPLE.len() - 3);
        assert_eq!(h.method, "POST");
        assert_eq!(h.target, "/a/b%20c?x=1&y#frag");
        assert_eq!(h.path, "/a/b%20c");
        assert_eq!(h.query, "x=1&y");
        assert_eq!(h.version, Version::Http11);
        assert_eq!(h.body, BodyKind::Length(3));
        assert!(h.keep_alive);
        assert!(!h.expect_continue);
        assert_eq!(h.headers.len(), 4);
        assert_eq!(h.headers[3].name, "x-multi");
        assert_eq!(h.headers[3].value, b"b");
        assert_eq!(h.header("X-MULTI"), Some(&b"a"[..]));
    }

    #[test]
    fn every_split_point_is_partial_until_the_end() {
        let head_len = SIMPLE.len() - 3;
        for cut in 0..head_len {
            match parse(&SIMPLE[..cut]) {
                Ok(Parsed::Partial) => {}
                other => panic!("cut {cut}: {other:?}"),
            }
        }
        for cut in head_len..=SIMPLE.len() {
            assert!(matches!(parse(&SIMPLE[..cut]), Ok(Parsed::Complete(_, n)) if n == head_len));
        }
    }

    #[test]
    fn bare_lf_found_even_while_partial() {
        assert_eq!(
            parse(b"GET / HTTP/1.1\nHost: a\r\n\r\n").unwrap_err(),
            HttpError::BareLf(14)
        );
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nHost: a\nX").unwrap_err(),
            HttpError::BareLf(23)
        );
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nHost: a\rX").unwrap_err(),
            HttpError::BareCr(23)
        );
        assert_eq!(
            parse(b"\nGET / HTTP/1.1\r\n").unwrap_err(),
            HttpError::BareLf(0)
        );
    }

    #[test]
    fn request_line_limit_is_exact_and_early() {
        let limits = Limits {
            request_line: 20,
            ..Limits::default()
        };
        // "GET /xxxxxxxxxxx HTTP/1.0" sized to exactly 20 bytes.
        let ok = b"GET /aaaaaa HTTP/1.0\r\n\r\n";
        assert_eq!(ok.len() - 4, 20);
        assert!(matches!(parse_head(ok, &limits), Ok(Parsed::Complete(..))));
        let long = b"GET /aaaaaaa HTTP/1.0\r\n\r\n";
        assert_eq!(status(long, &limits), Some(414));
        // Still partial with 20 bytes and a CR: the LF may complete it.
        assert!(matches!(
            parse_head(&ok[..21], &limits),
            Ok(Parsed::Partial)
        ));
        // 21 content bytes without CRLF are already too long.
        assert_eq!(status(&long[..21], &limits), Some(414));
        // Limit 0 means the 8190 ceiling, not unlimited.
        let zero = Limits {
            request_line: 0,
            ..Limits::default()
        };
        assert_eq!(zero.effective_request_line(), 8190);
        assert_eq!(status(&[b'G'; 8191], &zero), Some(414));
        assert!(matches!(
            parse_head(&[b'G'; 8190], &zero),
            Ok(Parsed::Partial)
        ));
    }

    #[test]
    fn field_limits_count_crlf_and_fire_while_partial() {
        let limits = Limits {
            field_size: 10,
            fields: 2,
            ..Limits::default()
        };
        // "Host: abcd" is 10 bytes with CRLF... 8 + 2.
        assert!(matches!(
            parse_head(b"GET / HTTP/1.1\r\nHost: ab\r\n\r\n", &limits),
            Ok(Parsed::Complete(..))
        ));
        assert_eq!(
            status(b"GET / HTTP/1.1\r\nHost: abc\r\n\r\n", &limits),
            Some(431)
        );
        assert_eq!(
            status(b"GET / HTTP/1.1\r\nHost: abcdefgh", &limits),
            Some(431)
        );
        assert_eq!(
            status(b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC", &limits),
            Some(431)
        );
        assert!(matches!(
            parse_head(b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n", &limits),
            Ok(Parsed::Partial)
        ));
    }

    #[test]
    fn head_cap_bounds_memory() {
        let limits = Limits {
            fields: 1,
            field_size: 100,
            request_line: 100,
            ..Limits::default()
        };
        assert_eq!(limits.head_cap(), 102 + 102 + 2);
        let big = Limits {
            fields: 0,
            field_size: usize::MAX,
            ..Limits::default()
        };
        assert_eq!(big.head_cap(), MAX_HEAD);
    }

    #[test]
    fn many_headers_use_the_heap_path() {
        let mut raw = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
        for i in 0..60 {
            raw.extend_from_slice(format!("X-H{i}: {i}\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        let (h, _) = complete(&raw);
        assert_eq!(h.headers.len(), 61);
        assert_eq!(h.headers[60].value, b"59");
    }

    #[test]
    fn method_rules() {
        let d = Limits::default();
        assert_eq!(status(b"get / HTTP/1.1\r\nHost: a\r\n\r\n", &d), Some(400));
        assert_eq!(status(b"GE / HTTP/1.1\r\nHost: a\r\n\r\n", &d), Some(400));
        assert_eq!(status(b"G#T / HTTP/1.1\r\nHost: a\r\n\r\n", &d), Some(400));
        let fold = Limits {
            casefold_http_method: true,
            ..Limits::default()
        };
        let (h, _) = match parse_head(b"get / HTTP/1.1\r\nHost: a\r\n\r\n", &fold) {
            Ok(Parsed::Complete(h, n)) => (h, n),
            other => panic!("{other:?}"),
        };
        assert_eq!(h.method, "GET");
        let any = Limits {
            permit_unconventional_http_method: true,
            ..Limits::default()
        };
        match parse_head(b"x / HTTP/1.1\r\nHost: a\r\n\r\n", &any) {
            Ok(Parsed::Complete(h, _)) => assert_eq!(h.method, "x"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn header_map_modes() {
        let raw = b"GET / HTTP/1.1\r\nHost: a\r\nX_Auth: 1\r\n\r\n";
        let (h, _) = complete(raw);
        assert!(h.header("X_Auth").is_none());
        let refuse = Limits {
            header_map: HeaderMap::Refuse,
            ..Limits::default()
        };
        assert_eq!(
            parse_head(raw, &refuse).unwrap_err(),
            HttpError::UnderscoreInName("X_Auth".into())
        );
        let keep = Limits {
            header_map: HeaderMap::Dangerous,
            ..Limits::default()
        };
        match parse_head(raw, &keep) {
            Ok(Parsed::Complete(h, _)) => assert_eq!(h.header("x_auth"), Some(&b"1"[..])),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn obs_fold_and_colon_spaces_when_permitted() {
        let folded = b"GET / HTTP/1.1\r\nHost: a\r\nX-F: one\r\n  two\r\n\r\n";
        assert_eq!(parse(folded).unwrap_err(), HttpError::ObsFold(35));
        let permit = Limits {
            permit_obsolete_folding: true,
            strip_header_spaces: true,
            ..Limits::default()
        };
        match parse_head(folded, &permit) {
            Ok(Parsed::Complete(h, n)) => {
                assert_eq!(n, folded.len());
                assert_eq!(h.header("x-f"), Some(&b"one    two"[..]));
            }
            other => panic!("{other:?}"),
        }
        // Folding the first field line is never allowed.
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", &permit).unwrap_err(),
            HttpError::ObsFold(16)
        );
        let spaced = b"GET / HTTP/1.1\r\nHost : a\r\n\r\n";
        assert_eq!(
            parse(spaced).unwrap_err(),
            HttpError::SpaceBeforeColon("Host".into())
        );
        match parse_head(spaced, &permit) {
            Ok(Parsed::Complete(h, _)) => assert_eq!(h.header("host"), Some(&b"a"[..])),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn framing_rules() {
        let d = Limits::default();
        let s = |raw: &[u8]| status(raw, &d);
        assert_eq!(
            s(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Some(400)
        );
        assert_eq!(
            s(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"),
            Some(501)
        );
        assert_eq!(
            s(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
            Some(400)
        );
        assert_eq!(
            s(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Some(400)
        );
        assert_eq!(
            s(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\n\r\n"),
            Some(400)
        );
        assert_eq!(
            s(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Some(400)
        );
        assert_eq!(
            s(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n"),
            Some(400)
        );
        // gzip before chunked is still a coding corral cannot undo.
        assert_eq!(
            s(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Some(501)
        );
    }

    #[test]
    fn keep_alive_and_expect() {
        let (h, _) = complete(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(h.keep_alive);
        let (h, _) = complete(b"GET / HTTP/1.0\r\n\r\n");
        assert!(!h.keep_alive);
        let (h, _) = complete(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade, CLOSE\r\n\r\n");
        assert!(!h.keep_alive);
        let (h, _) = complete(
            b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n",
        );
        assert!(h.expect_continue);
        let (h, _) = complete(b"PUT / HTTP/1.0\r\nExpect: whatever\r\n\r\n");
        assert!(!h.expect_continue);
        assert_eq!(
            parse(b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n")
                .unwrap_err()
                .status(),
            Some(417)
        );
    }

    #[test]
    fn targets() {
        let (h, _) =
            complete(b"GET http://example.com:8080/p/q?x#f HTTP/1.1\r\nHost: example.com\r\n\r\n");
        assert_eq!((h.path.as_str(), h.query.as_str()), ("/p/q", "x"));
        let (h, _) = complete(b"GET http://example.com?x HTTP/1.1\r\nHost: example.com\r\n\r\n");
        assert_eq!((h.path.as_str(), h.query.as_str()), ("/", "x"));
        let (h, _) = complete(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(h.path, "*");
        let (h, _) = complete(b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n");
        assert_eq!((h.path.as_str(), h.target.as_str()), ("", "a.example:443"));
        let d = Limits::default();
        assert_eq!(status(b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", &d), Some(400));
        assert_eq!(
            status(b"GET a:80 HTTP/1.1\r\nHost: a\r\n\r\n", &d),
            Some(400)
        );
        assert_eq!(
            status(b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", &d),
            Some(400)
        );
        assert_eq!(
            status(b"GET http://u@h/ HTTP/1.1\r\nHost: a\r\n\r\n", &d),
            Some(400)
        );
    }

    #[test]
    fn leading_empty_lines_are_skipped() {
        let (h, n) = complete(b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(n, 31);
        assert_eq!(h.path, "/");
        assert!(matches!(parse(b"\r\n\r"), Ok(Parsed::Partial)));
    }

    #[test]
    fn a_head_parsed_into_reused_storage_is_the_head_parsed_fresh() {
        let requests: [&[u8]; 5] = [
            b"GET /a/long/path/indeed?with=a&long=query HTTP/1.1\r\nHost: example.com\r\n\
              User-Agent: something-long/1.0\r\nAccept: */*\r\nX-Extra: 1\r\n\r\n",
            b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
            b"GET / HTTP/1.0\r\n\r\n",
            b"DELETE /x?y HTTP/1.1\r\nHost: hh\r\nA: b\r\nC: d\r\nE: f\r\nG: h\r\nI: j\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\nHost: a-much-longer-host-name.example.org:8080\r\n\r\n",
        ];
        let limits = Limits::default();
        let mut spare = Vec::new();
        // Every request after every other, so each is parsed into storage
        // left by longer and shorter heads, with more and fewer fields.
        for first in 0..requests.len() {
            for step in 1..requests.len() {
                for k in 0..requests.len() {
                    let raw = requests[(first + k * step) % requests.len()];
                    let fresh = parse_head(raw, &limits);
                    let reused = parse_head_reusing(raw, &limits, &mut spare);
                    assert_eq!(format!("{fresh:?}"), format!("{reused:?}"));
                    let Ok(Parsed::Complete(head, _)) = reused else {
                        panic!("{fresh:?}");
                    };
                    assert!(spare.is_empty(), "the spare head was used");
                    assert!(head.recyclable());
                    spare.push(head);
                }
            }
        }
    }

    #[test]
    fn a_head_holding_much_memory_is_not_kept() {
        let long = format!(
            "GET / HTTP/1.1\r\nHost: h\r\nCookie: {}\r\n\r\n",
            "c".repeat(RECYCLE_MAX_BYTES)
        );
        let Ok(Parsed::Complete(head, _)) = parse_head(long.as_bytes(), &Limits::default()) else {
            panic!("not parsed");
        };
        assert!(!head.recyclable());
    }
}
