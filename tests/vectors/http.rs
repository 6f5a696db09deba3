//! Raw request vectors written from RFC 9112 (and gunicorn's strictness),
//! each with the outcome a conforming server must produce. Shared by the
//! parser's unit tests and the integration tests that send them to a real
//! corral whole, byte by byte and pipelined.
//!
//! The outcomes assume gunicorn's default settings: limit_request_line 4094,
//! limit_request_fields 100, limit_request_field_size 8190, header_map drop,
//! no permissive switches. Each vector is exactly one request: after its
//! bytes nothing is left over, so vectors can be pipelined. HTTP/1.0 vectors
//! without `Connection: keep-alive`, and the few that send
//! `Connection: close` on purpose, end their connection.

/// The environ an app must see for a served request. Only the fields given
/// are compared; `headers` lists `HTTP_*` keys that must be present with
/// exactly these values, `absent` keys that must not be present.
#[derive(Debug, Clone, Copy)]
pub struct Env {
    pub method: &'static str,
    pub path_info: &'static str,
    pub query: &'static str,
    pub raw_uri: &'static str,
    pub protocol: &'static str,
    pub headers: &'static [(&'static str, &'static str)],
    pub absent: &'static [&'static str],
    pub content_length: Option<&'static str>,
    pub content_type: Option<&'static str>,
    pub body: &'static [u8],
}

#[derive(Debug, Clone, Copy)]
pub enum Expect {
    /// Served; the app sees this environ.
    Ok(Env),
    /// Refused with this status, `Connection: close`, then closed.
    Status(u16),
    /// Closed without any response (a truncated request).
    Close,
}

#[derive(Debug, Clone, Copy)]
pub struct Vector {
    pub name: &'static str,
    pub raw: &'static [u8],
    pub expect: Expect,
}

/// A GET over HTTP/1.1 with nothing else asserted; vectors override fields.
const fn get(raw_uri: &'static str, path_info: &'static str, query: &'static str) -> Env {
    Env {
        method: "GET",
        path_info,
        query,
        raw_uri,
        protocol: "HTTP/1.1",
        headers: &[],
        absent: &[],
        content_length: None,
        content_type: None,
        body: b"",
    }
}

/// `GET /` over HTTP/1.1.
const ROOT: Env = get("/", "/", "");

/// A POST to `/` carrying `body`.
const fn post(body: &'static [u8]) -> Env {
    Env {
        method: "POST",
        body,
        ..ROOT
    }
}

const fn ok(name: &'static str, raw: &'static [u8], env: Env) -> Vector {
    Vector {
        name,
        raw,
        expect: Expect::Ok(env),
    }
}

const fn status(name: &'static str, raw: &'static [u8], code: u16) -> Vector {
    Vector {
        name,
        raw,
        expect: Expect::Status(code),
    }
}

const fn close(name: &'static str, raw: &'static [u8]) -> Vector {
    Vector {
        name,
        raw,
        expect: Expect::Close,
    }
}

/// `prefix`, then `unit` repeated to fill, then `suffix`: `N` bytes in all.
/// Builds the oversized vectors at compile time.
const fn build<const N: usize>(prefix: &[u8], unit: &[u8], suffix: &[u8]) -> [u8; N] {
    let fill_end = N - suffix.len();
    assert!((fill_end - prefix.len()) % unit.len() == 0);
    let mut out = [0u8; N];
    let mut i = 0;
    while i < prefix.len() {
        out[i] = prefix[i];
        i += 1;
    }
    let mut j = 0;
    while i < fill_end {
        out[i] = unit[j % unit.len()];
        i += 1;
        j += 1;
    }
    let mut k = 0;
    while k < suffix.len() {
        out[i] = suffix[k];
        i += 1;
        k += 1;
    }
    out
}

const fn text(bytes: &[u8]) -> &str {
    match core::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(_) => panic!("vector text must be UTF-8"),
    }
}

const HOST_END: &[u8] = b" HTTP/1.1\r\nHost: example.com\r\n\r\n";
/// A request line of exactly 4094 bytes (the default limit).
const LINE_AT_LIMIT: [u8; 4094 - 9 + HOST_END.len()] = build(b"GET /", b"a", HOST_END);
const LINE_AT_LIMIT_URI: &str = text(LINE_AT_LIMIT.split_at(4).1.split_at(4094 - 9 - 4).0);
/// One byte over.
const LINE_OVER_LIMIT: [u8; 4095 - 9 + HOST_END.len()] = build(b"GET /", b"a", HOST_END);
/// A request line that never ends: 414 before any CRLF arrives.
const LINE_UNENDING: [u8; 5000] = build(b"GET /", b"a", b"");

const BIG_PREFIX: &[u8] = b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Big: ";
/// A field line of exactly 8190 bytes counting its CRLF (the default limit).
const FIELD_AT_LIMIT: [u8; BIG_PREFIX.len() + 8181 + 4] = build(BIG_PREFIX, b"b", b"\r\n\r\n");
/// One byte over.
const FIELD_OVER_LIMIT: [u8; BIG_PREFIX.len() + 8182 + 4] = build(BIG_PREFIX, b"b", b"\r\n\r\n");
/// A field line that never ends.
const FIELD_UNENDING: [u8; BIG_PREFIX.len() + 9000] = build(BIG_PREFIX, b"b", b"");

const FIELDS_PREFIX: &[u8] = b"GET / HTTP/1.1\r\nHost: example.com\r\n";
const FIELD_UNIT: &[u8] = b"X-F: v\r\n";
/// Host plus 99 fields: exactly the default 100.
const FIELDS_AT_LIMIT: [u8; FIELDS_PREFIX.len() + 99 * 8 + 2] =
    build(FIELDS_PREFIX, FIELD_UNIT, b"\r\n");
/// Host plus 100 fields: one too many.
const FIELDS_OVER_LIMIT: [u8; FIELDS_PREFIX.len() + 100 * 8 + 2] =
    build(FIELDS_PREFIX, FIELD_UNIT, b"\r\n");

const CHUNK_EXT_PREFIX: &[u8] =
    b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n1;x=";
/// A chunk extension far beyond any sane size.
const CHUNK_EXT_SUFFIX: &[u8] = b"\r\na\r\n0\r\n\r\n";
const CHUNK_EXT_HUGE: [u8; CHUNK_EXT_PREFIX.len() + 5000 + CHUNK_EXT_SUFFIX.len()] =
    build(CHUNK_EXT_PREFIX, b"a", CHUNK_EXT_SUFFIX);

pub const VECTORS: &[Vector] = &[
    // ---- request line: origin-form targets (RFC 9112 §3.2.1) ----
    ok(
        "get root",
        b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        Env {
            headers: &[("HTTP_HOST", "example.com")],
            absent: &["CONTENT_LENGTH", "CONTENT_TYPE"],
            ..ROOT
        },
    ),
    ok(
        "query string",
        b"GET /search?q=rust&lang=en HTTP/1.1\r\nHost: example.com\r\n\r\n",
        get("/search?q=rust&lang=en", "/search", "q=rust&lang=en"),
    ),
    ok(
        "empty query after ?",
        b"GET /p? HTTP/1.1\r\nHost: example.com\r\n\r\n",
        get("/p?", "/p", ""),
    ),
    ok(
        "fragment dropped from path and query",
        b"GET /p?a=1#frag HTTP/1.1\r\nHost: example.com\r\n\r\n",
        get("/p?a=1#frag", "/p", "a=1"),
    ),
    ok(
        "fragment without query",
        b"GET /p#f?x HTTP/1.1\r\nHost: example.com\r\n\r\n",
        get("/p#f?x", "/p", ""),
    ),
    ok(
        "second ? belongs to the query",
        b"GET /p?a=1?b=2 HTTP/1.1\r\nHost: example.com\r\n\r\n",
        get("/p?a=1?b=2", "/p", "a=1?b=2"),
    ),
    ok(
        "percent-encoded UTF-8 is decoded to latin-1 text",
        b"GET /caf%C3%A9 HTTP/1.1\r\nHost: example.com\r\n\r\n",
        get("/caf%C3%A9", "/caf\u{c3}\u{a9}", ""),
    ),
    ok(
        "lowercase percent hex",
        b"GET /caf%c3%a9 HTTP/1.1\r\nHost: example.com\r\n\r\n",
        get("/caf%c3%a9", "/caf\u{c3}\u{a9}", ""),
    ),
    ok(
        "encoded slash is decoded in PATH_INFO",
        b"GET /a%2Fb HTTP/1.1\r\nHost: example.com\r\n\r\n",
        get("/a%2Fb", "/a/b", ""),
    ),
    ok(
        "encoded space",
        b"GET /a%20b HTTP/1.1\r\nHost: example.com\r\n\r\n",
        get("/a%20b", "/a b", ""),
    ),
    ok(
        "invalid percent escape left as is",
        b"GET /a%zzb%4 HTTP/1.1\r\nHost: example.com\r\n\r\n",
        get("/a%zzb%4", "/a%zzb%4", ""),
    ),
    ok(
        "query stays percent-encoded",
        b"GET /p?x=%20%C3%A9&y=a+b HTTP/1.1\r\nHost: example.com\r\n\r\n",
        get("/p?x=%20%C3%A9&y=a+b", "/p", "x=%20%C3%A9&y=a+b"),
    ),
    ok(
        "double slashes kept",
        b"GET //double//slash HTTP/1.1\r\nHost: example.com\r\n\r\n",
        get("//double//slash", "//double//slash", ""),
    ),
    ok(
        "dot segments not normalised",
        b"GET /a/../b/./c HTTP/1.1\r\nHost: example.com\r\n\r\n",
        get("/a/../b/./c", "/a/../b/./c", ""),
    ),
    ok(
        "all visible ASCII sub-delims in path",
        b"GET /!$&'()*+,;=:@-._~ HTTP/1.1\r\nHost: example.com\r\n\r\n",
        get("/!$&'()*+,;=:@-._~", "/!$&'()*+,;=:@-._~", ""),
    ),
    ok(
        "encoded NUL is the app's business",
        b"GET /a%00b HTTP/1.1\r\nHost: example.com\r\n\r\n",
        get("/a%00b", "/a\u{0}b", ""),
    ),
    // ---- absolute-form, asterisk-form, authority-form ----
    ok(
        "absolute-form takes the path",
        b"GET http://example.com/abs?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
        get("http://example.com/abs?x=1", "/abs", "x=1"),
    ),
    ok(
        "absolute-form https with port",
        b"GET https://example.com:8443/p/q HTTP/1.1\r\nHost: example.com:8443\r\n\r\n",
        get("https://example.com:8443/p/q", "/p/q", ""),
    ),
    ok(
        "absolute-form without a path means /",
        b"GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n",
        get("http://example.com", "/", ""),
    ),
    ok(
        "absolute-form with query but no path",
        b"GET http://example.com?a=b HTTP/1.1\r\nHost: example.com\r\n\r\n",
        get("http://example.com?a=b", "/", "a=b"),
    ),
    status(
        "absolute-form with userinfo",
        b"GET http://user@example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
        400,
    ),
    status(
        "absolute-form with empty authority",
        b"GET http:///p HTTP/1.1\r\nHost: example.com\r\n\r\n",
        400,
    ),
    ok(
        "OPTIONS asterisk",
        b"OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n",
        Env {
            method: "OPTIONS",
            ..get("*", "*", "")
        },
    ),
    status(
        "asterisk with GET",
        b"GET * HTTP/1.1\r\nHost: example.com\r\n\r\n",
        400,
    ),
    status(
        "asterisk with a query",
        b"OPTIONS *?x HTTP/1.1\r\nHost: example.com\r\n\r\n",
        400,
    ),
    ok(
        "CONNECT authority-form",
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        Env {
            method: "CONNECT",
            ..get("example.com:443", "", "")
        },
    ),
    status(
        "authority-form with GET",
        b"GET example.com:80 HTTP/1.1\r\nHost: example.com\r\n\r\n",
        400,
    ),
    status(
        "CONNECT with origin-form",
        b"CONNECT / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        400,
    ),
    status(
        "CONNECT without port",
        b"CONNECT example.com HTTP/1.1\r\nHost: example.com\r\n\r\n",
        400,
    ),
    status(
        "relative target without slash",
        b"GET index.html HTTP/1.1\r\nHost: example.com\r\n\r\n",
        400,
    ),
    // ---- request line syntax (RFC 9112 §3) ----
    status(
        "raw UTF-8 in target",
        b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: example.com\r\n\r\n",
        400,
    ),
    status(
        "raw latin-1 byte in target",
        b"GET /\xe9 HTTP/1.1\r\nHost: example.com\r\n\r\n",
        400,
    ),
    status(
        "DEL in target",
        b"GET /a\x7fb HTTP/1.1\r\nHost: example.com\r\n\r\n",
        400,
    ),
    status(
        "NUL in target",
        b"GET /a\x00b HTTP/1.1\r\nHost: example.com\r\n\r\n",
        400,
    ),
    status(
        "space inside target",
        b"GET /a b HTTP/1.1\r\nHost: example.com\r\n\r\n",
        400,
    ),
    status(
        "tab inside target",
        b"GET /a\tb HTTP/1.1\r\nHost: example.com\r\n\r\n",
        400,
    ),
    status(
        "double space after method",
        b"GET  / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        400,
    ),
    status(
        "trailing space after version",
        b"GET / HTTP/1.1 \r\nHost: example.com\r\n\r\n",
        400,
    ),
    status(
        "leading space before method",
        b" GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        400,
    ),
    status(
        "tabs as separators",
        b"GET\t/\tHTTP/1.1\r\nHost: example.com\r\n\r\n",
        400,
    ),
    status("HTTP/0.9 style request", b"GET /\r\n\r\n", 400),
    status(
        "missing target",
        b"GET HTTP/1.1\r\nHost: example.com\r\n\r\n",
        400,
    ),
    status("empty target", b"GET  HTTP/1.1\r\nHost: example.com\r\n\r\n", 400),
    status(
        "lowercase protocol name",
        b"GET / http/1.1\r\nHost: example.com\r\n\r\n",
        400,
    ),
    status(
        "HTTP/2.0 in an HTTP/1 request line",
        b"GET / HTTP/2.0\r\nHost: example.com\r\n\r\n",
        400,
    ),
    status(
        "HTTP/1.2",
        b"GET / HTTP/1.2\r\nHost: example.com\r\n\r\n",
        400,
    ),
    status(
        "HTTP/0.9 version",
        b"GET / HTTP/0.9\r\nHost: example.com\r\n\r\n",
        400,
    ),
    status(
        "two-digit minor version",
        b"GET / HTTP/1.10\r\nHost: example.com\r\n\r\n",
        400,
    ),
    status(
        "version without minor",
        b"GET / HTTP/1\r\nHost: example.com\r\n\r\n",
        400,
    ),
    status(
        "garbage after version",
        b"GET / HTTP/1.1x\r\nHost: example.com\r\n\r\n",
        400,
    ),
    status(
        "bare LF ends request line",
        b"GET / HTTP/1.1\nHost: example.com\r\n\r\n",
        400,
    ),
    status(
        "bare CR inside request line",
        b"GET /\r HTTP/1.1\r\nHost: example.com\r\n\r\n",
        400,
    ),
    ok(
        "leading empty line before request line is ignored",
        b"\r\nGET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        ROOT,
    ),
    status(
        "leading bare LF",
        b"\nGET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        400,
    ),
    // ---- methods (RFC 9110 §9, gunicorn conventions) ----
    ok(
        "PUT with body",
        b"PUT /r HTTP/1.1\r\nHost: example.com\r\nContent-Length: 2\r\n\r\nok",
        Env {
            method: "PUT",
            body: b"ok",
            content_length: Some("2"),
            ..get("/r", "/r", "")
        },
    ),
    ok(
        "DELETE",
        b"DELETE /r/1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
        Env {
            method: "DELETE",
            ..get("/r/1", "/r/1", "")
        },
    ),
    ok(
        "HEAD",
        b"HEAD / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        Env {
            method: "HEAD",
            ..ROOT
        },
    ),
    ok(
        "extension method with hyphen",
        b"M-SEARCH /upnp HTTP/1.1\r\nHost: example.com\r\n\r\n",
        Env {
            method: "M-SEARCH",
            ..get("/upnp", "/upnp", "")
        },
    ),
    ok(
        "twenty-character method",
        b"ABCDEFGHIJKLMNOPQRST / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        Env {
            method: "ABCDEFGHIJKLMNOPQRST",
            ..ROOT
        },
    ),
    status(
        "twenty-one-character method",
        b"ABCDEFGHIJKLMNOPQRSTU / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        400,
    ),
    status(
        "lowercase method",
        b"get / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        400,
    ),
    status(
        "mixed-case method",
        b"Get / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        400,
    ),
    status(
        "two-character method",
        b"GE / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        400,
    ),
    status(
        "hash in method",
        b"GE#T / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        400,
    ),
    status(
        "delimiter in method",
        b"GE(T / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        400,
    ),
    status(
        "non-ASCII method",
        b"G\xc9T / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        400,
    ),
    // ---- header fields (RFC 9112 §5, RFC 9110 §5) ----
    ok(
        "custom header",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Custom: value\r\n\r\n",
        Env {
            headers: &[("HTTP_X_CUSTOM", "value")],
            ..ROOT
        },
    ),
    ok(
        "OWS around value trimmed",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A:   v  \r\n\r\n",
        Env {
            headers: &[("HTTP_X_A", "v")],
            ..ROOT
        },
    ),
    ok(
        "tab OWS trimmed",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A:\tv\t\r\n\r\n",
        Env {
            headers: &[("HTTP_X_A", "v")],
            ..ROOT
        },
    ),
    ok(
        "no space after colon",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A:v\r\n\r\n",
        Env {
            headers: &[("HTTP_X_A", "v")],
            ..ROOT
        },
    ),
    ok(
        "empty value",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Empty:\r\n\r\n",
        Env {
            headers: &[("HTTP_X_EMPTY", "")],
            ..ROOT
        },
    ),
    ok(
        "whitespace-only value",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Empty: \t \r\n\r\n",
        Env {
            headers: &[("HTTP_X_EMPTY", "")],
            ..ROOT
        },
    ),
    ok(
        "inner whitespace kept",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: a  \tb\r\n\r\n",
        Env {
            headers: &[("HTTP_X_A", "a  \tb")],
            ..ROOT
        },
    ),
    ok(
        "obs-text value kept as latin-1",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: caf\xe9 \xff\r\n\r\n",
        Env {
            headers: &[("HTTP_X_A", "caf\u{e9} \u{ff}")],
            ..ROOT
        },
    ),
    ok(
        "colon inside value",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: a:b: c\r\n\r\n",
        Env {
            headers: &[("HTTP_X_A", "a:b: c")],
            ..ROOT
        },
    ),
    ok(
        "repeated header joined with comma",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\nX-A: 2\r\n\r\n",
        Env {
            headers: &[("HTTP_X_A", "1,2")],
            ..ROOT
        },
    ),
    ok(
        "repeated header in different case joined",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nAccept: a\r\naccept: b\r\nACCEPT: c\r\n\r\n",
        Env {
            headers: &[("HTTP_ACCEPT", "a,b,c")],
            ..ROOT
        },
    ),
    ok(
        "lowercase names map to upper-case keys",
        b"GET / HTTP/1.1\r\nhost: example.com\r\nx-lower-case: 1\r\n\r\n",
        Env {
            headers: &[("HTTP_HOST", "example.com"), ("HTTP_X_LOWER_CASE", "1")],
            ..ROOT
        },
    ),
    ok(
        "token punctuation in name",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX.Y!Z: 1\r\n\r\n",
        Env {
            headers: &[("HTTP_X.Y!Z", "1")],
            ..ROOT
        },
    ),
    ok(
        "underscore header dropped",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX_Under: 1\r\nX-Kept: 2\r\n\r\n",
        Env {
            headers: &[("HTTP_X_KEPT", "2")],
            absent: &["HTTP_X_UNDER"],
            ..ROOT
        },
    ),
    ok(
        "underscore cannot spoof a dashed header",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: 10.0.0.1\r\nX_Forwarded_For: 6.6.6.6\r\n\r\n",
        Env {
            headers: &[("HTTP_X_FORWARDED_FOR", "10.0.0.1")],
            ..ROOT
        },
    ),
    ok(
        "Content-Type only as CONTENT_TYPE",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\r\nhi",
        Env {
            content_type: Some("text/plain; charset=utf-8"),
            content_length: Some("2"),
            absent: &["HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"],
            ..post(b"hi")
        },
    ),
    status(
        "space before colon",
        b"GET / HTTP/1.1\r\nHost : example.com\r\n\r\n",
        400,
    ),
    status(
        "tab before colon",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A\t: 1\r\n\r\n",
        400,
    ),
    status(
        "space inside name",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX A: 1\r\n\r\n",
        400,
    ),
    status(
        "empty name",
        b"GET / HTTP/1.1\r\nHost: example.com\r\n: v\r\n\r\n",
        400,
    ),
    status(
        "line without colon",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nNoColon\r\n\r\n",
        400,
    ),
    status(
        "delimiter in name",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX(A): 1\r\n\r\n",
        400,
    ),
    status(
        "at-sign in name",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX@A: 1\r\n\r\n",
        400,
    ),
    status(
        "non-ASCII name",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX\xe9: 1\r\n\r\n",
        400,
    ),
    status(
        "obs-fold refused",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: one\r\n two\r\n\r\n",
        400,
    ),
    status(
        "obs-fold with tab refused",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: one\r\n\ttwo\r\n\r\n",
        400,
    ),
    status(
        "whitespace before first field",
        b"GET / HTTP/1.1\r\n Host: example.com\r\n\r\n",
        400,
    ),
    status(
        "NUL in value",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: a\x00b\r\n\r\n",
        400,
    ),
    status(
        "bare CR in value",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: a\rb\r\n\r\n",
        400,
    ),
    status(
        "bare LF ends a field line",
        b"GET / HTTP/1.1\r\nHost: example.com\nX-A: 1\r\n\r\n",
        400,
    ),
    status(
        "bare LF ends the head",
        b"GET / HTTP/1.1\r\nHost: example.com\r\n\n",
        400,
    ),
    status(
        "bare LF line endings throughout",
        b"GET / HTTP/1.1\nHost: example.com\n\n",
        400,
    ),
    status(
        "control character in value",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: a\x01b\r\n\r\n",
        400,
    ),
    status(
        "DEL in value",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: a\x7fb\r\n\r\n",
        400,
    ),
    status(
        "vertical tab as OWS",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A:\x0bv\r\n\r\n",
        400,
    ),
    // ---- Host (RFC 9112 §3.2) ----
    status("HTTP/1.1 without Host", b"GET / HTTP/1.1\r\n\r\n", 400),
    ok(
        "HTTP/1.0 without Host",
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        Env {
            protocol: "HTTP/1.0",
            absent: &["HTTP_HOST"],
            ..ROOT
        },
    ),
    status(
        "duplicate Host",
        b"GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
        400,
    ),
    status(
        "duplicate Host in other case",
        b"GET / HTTP/1.1\r\nHost: a.example\r\nhost: a.example\r\n\r\n",
        400,
    ),
    status(
        "duplicate Host on HTTP/1.0",
        b"GET / HTTP/1.0\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
        400,
    ),
    ok(
        "empty Host",
        b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
        Env {
            headers: &[("HTTP_HOST", "")],
            ..ROOT
        },
    ),
    ok(
        "Host with port",
        b"GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
        Env {
            headers: &[("HTTP_HOST", "example.com:8080")],
            ..ROOT
        },
    ),
    ok(
        "Host IPv6 literal",
        b"GET / HTTP/1.1\r\nHost: [::1]:8000\r\n\r\n",
        Env {
            headers: &[("HTTP_HOST", "[::1]:8000")],
            ..ROOT
        },
    ),
    status(
        "Host with inner space",
        b"GET / HTTP/1.1\r\nHost: exa mple.com\r\n\r\n",
        400,
    ),
    status(
        "Host with path",
        b"GET / HTTP/1.1\r\nHost: example.com/evil\r\n\r\n",
        400,
    ),
    status(
        "Host with userinfo",
        b"GET / HTTP/1.1\r\nHost: user@example.com\r\n\r\n",
        400,
    ),
    status(
        "Host with non-numeric port",
        b"GET / HTTP/1.1\r\nHost: example.com:http\r\n\r\n",
        400,
    ),
    // ---- Content-Length (RFC 9112 §6.2, §6.3) ----
    ok(
        "POST with Content-Length",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhello",
        Env {
            content_length: Some("5"),
            ..post(b"hello")
        },
    ),
    ok(
        "Content-Length zero",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n",
        Env {
            content_length: Some("0"),
            ..post(b"")
        },
    ),
    ok(
        "Content-Length with OWS",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length:  5 \r\n\r\nhello",
        post(b"hello"),
    ),
    ok(
        "Content-Length with leading zeros",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 005\r\n\r\nhello",
        post(b"hello"),
    ),
    ok(
        "GET with a body",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\n\r\nabc",
        Env {
            body: b"abc",
            ..ROOT
        },
    ),
    ok(
        "binary body bytes",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 6\r\n\r\n\x00\r\n\xff\n\r",
        post(b"\x00\r\n\xff\n\r"),
    ),
    ok(
        "body that looks like a request",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 18\r\n\r\nGET / HTTP/1.1\r\n\r\n",
        post(b"GET / HTTP/1.1\r\n\r\n"),
    ),
    status(
        "Content-Length with plus sign",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: +5\r\n\r\nhello",
        400,
    ),
    status(
        "negative Content-Length",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: -1\r\n\r\n",
        400,
    ),
    status(
        "Content-Length list",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5, 5\r\n\r\nhello",
        400,
    ),
    status(
        "hex Content-Length",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0x5\r\n\r\nhello",
        400,
    ),
    status(
        "Content-Length with inner space",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 1 0\r\n\r\n0123456789",
        400,
    ),
    status(
        "empty Content-Length",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length:\r\n\r\n",
        400,
    ),
    status(
        "Content-Length overflowing 64 bits",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 18446744073709551616\r\n\r\n",
        400,
    ),
    status(
        "duplicate Content-Length, same value",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
        400,
    ),
    status(
        "duplicate Content-Length, different values",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        400,
    ),
    status(
        "duplicate Content-Type",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Type: a/b\r\nContent-Type: c/d\r\n\r\n",
        400,
    ),
    close(
        "body shorter than Content-Length",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 10\r\n\r\nhello",
    ),
    // ---- chunked bodies (RFC 9112 §7.1) ----
    ok(
        "chunked body",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        Env {
            headers: &[("HTTP_TRANSFER_ENCODING", "chunked")],
            ..post(b"hello")
        },
    ),
    ok(
        "several chunks",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n",
        post(b"hello world"),
    ),
    ok(
        "uppercase hex chunk size",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n",
        post(b"0123456789"),
    ),
    ok(
        "lowercase hex chunk size",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n0123456789a\r\n0\r\n\r\n",
        post(b"0123456789a"),
    ),
    ok(
        "chunk size with leading zeros",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n0005\r\nhello\r\n000\r\n\r\n",
        post(b"hello"),
    ),
    ok(
        "coding name is case-insensitive",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: ChUnKeD\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
        post(b"hi"),
    ),
    ok(
        "empty chunked body",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        post(b""),
    ),
    ok(
        "chunk extensions ignored",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value;flag\r\nhello\r\n0;last\r\n\r\n",
        post(b"hello"),
    ),
    ok(
        "quoted chunk extension with BWS",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5 ; n = \"a \\\" b;c\"\r\nhello\r\n0\r\n\r\n",
        post(b"hello"),
    ),
    ok(
        "trailer fields are not in the environ",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n",
        Env {
            absent: &["HTTP_X_TRAILER", "HTTP_X_OTHER"],
            ..post(b"hello")
        },
    ),
    ok(
        "chunk data containing CRLF",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n\r\n\r\n\r\n0\r\n\r\n",
        post(b"\r\n\r\n"),
    ),
    ok(
        "leading OWS before chunked is only OWS",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding:   chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
        post(b"hi"),
    ),
    ok(
        "trailing tab after chunked is OWS",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\t\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
        post(b"hi"),
    ),
    ok(
        "empty list elements ignored",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: , chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
        post(b"hi"),
    ),
    status(
        "chunk size not hex",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\ng\r\nhello\r\n0\r\n\r\n",
        400,
    ),
    status(
        "chunk size with 0x prefix",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
        400,
    ),
    status(
        "negative chunk size",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
        400,
    ),
    status(
        "chunk size overflowing 64 bits",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nhello\r\n0\r\n\r\n",
        400,
    ),
    status(
        "empty chunk size line",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n",
        400,
    ),
    status(
        "chunk data longer than its size",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
        400,
    ),
    status(
        "bare LF after chunk size",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
        400,
    ),
    status(
        "bare LF after chunk data",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n",
        400,
    ),
    status(
        "bare LF ends the chunked body",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\n",
        400,
    ),
    status(
        "whitespace after chunk size without extension",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n",
        400,
    ),
    status(
        "extension without a name",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n",
        400,
    ),
    status(
        "extension with control byte",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\x01\r\nhello\r\n0\r\n\r\n",
        400,
    ),
    status(
        "unterminated quoted extension",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"b\r\nhello\r\n0\r\n\r\n",
        400,
    ),
    status("oversized chunk extension", &CHUNK_EXT_HUGE, 400),
    status(
        "obs-fold in trailer",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: a\r\n b\r\n\r\n",
        400,
    ),
    status(
        "invalid trailer name",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX T: a\r\n\r\n",
        400,
    ),
    status(
        "trailer line without colon",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nnonsense\r\n\r\n",
        400,
    ),
    close(
        "chunked body cut inside data",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
    ),
    close(
        "chunked body without last chunk",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    ),
    close(
        "chunked body without final CRLF",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n",
    ),
    // ---- framing conflicts and smuggling (RFC 9112 §6.1, §6.3) ----
    status(
        "CL.TE: Content-Length then Transfer-Encoding",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX",
        400,
    ),
    status(
        "TE.CL: Transfer-Encoding then Content-Length",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n",
        400,
    ),
    status(
        "TE.TE: unknown coding with Content-Length",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\nhello",
        400,
    ),
    status(
        "xchunked",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
        501,
    ),
    status(
        "chunked with a coding parameter",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n",
        501,
    ),
    status(
        "space inside the coding name",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chun ked\r\n\r\n0\r\n\r\n",
        501,
    ),
    status(
        "chunked, chunked",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    status(
        "chunked twice across two fields",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    status(
        "chunked not the final coding",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
        400,
    ),
    status(
        "gzip then chunked is not implemented",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        501,
    ),
    status(
        "gzip alone",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: gzip\r\n\r\n",
        501,
    ),
    status(
        "identity is not a transfer coding",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: identity\r\n\r\n",
        501,
    ),
    status(
        "empty Transfer-Encoding",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding:\r\n\r\n",
        400,
    ),
    status(
        "Transfer-Encoding on HTTP/1.0",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    status(
        "space before colon in Transfer-Encoding",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    status(
        "vertical tab before chunked",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    status(
        "folded Transfer-Encoding",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    ok(
        "Transfer_Encoding with underscore is dropped, not obeyed",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer_Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello",
        Env {
            absent: &["HTTP_TRANSFER_ENCODING"],
            ..post(b"hello")
        },
    ),
    // ---- connection management (RFC 9112 §9) ----
    ok(
        "HTTP/1.0 closes by default",
        b"GET / HTTP/1.0\r\nHost: example.com\r\n\r\n",
        Env {
            protocol: "HTTP/1.0",
            ..ROOT
        },
    ),
    ok(
        "HTTP/1.0 keep-alive",
        b"GET / HTTP/1.0\r\nHost: example.com\r\nConnection: Keep-Alive\r\n\r\n",
        Env {
            protocol: "HTTP/1.0",
            headers: &[("HTTP_CONNECTION", "Keep-Alive")],
            ..ROOT
        },
    ),
    ok(
        "HTTP/1.0 POST with Content-Length",
        b"POST /form HTTP/1.0\r\nConnection: keep-alive\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\na=1&b=2",
        Env {
            method: "POST",
            protocol: "HTTP/1.0",
            content_type: Some("application/x-www-form-urlencoded"),
            content_length: Some("7"),
            body: b"a=1&b=2",
            ..get("/form", "/form", "")
        },
    ),
    ok(
        "HTTP/1.1 Connection: close is meant",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
        Env {
            headers: &[("HTTP_CONNECTION", "close")],
            ..ROOT
        },
    ),
    ok(
        "Connection list with close token",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: TE, Close\r\nTE: trailers\r\n\r\n",
        Env {
            headers: &[("HTTP_TE", "trailers")],
            ..ROOT
        },
    ),
    // ---- Expect (RFC 9110 §10.1.1) ----
    ok(
        "Expect 100-continue",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
        Env {
            headers: &[("HTTP_EXPECT", "100-continue")],
            ..post(b"hello")
        },
    ),
    ok(
        "Expect is case-insensitive",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\nhi",
        post(b"hi"),
    ),
    status(
        "unknown expectation",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\nhi",
        417,
    ),
    status(
        "100-continue with another expectation",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nExpect: 100-continue, x-y\r\n\r\n",
        417,
    ),
    ok(
        "expectations are ignored on HTTP/1.0",
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 200-ok\r\n\r\n",
        Env {
            protocol: "HTTP/1.0",
            ..ROOT
        },
    ),
    // ---- truncated heads: no response ----
    close("head cut in request line", b"GET / HTT"),
    close(
        "head without final empty line",
        b"GET / HTTP/1.1\r\nHost: example.com\r\n",
    ),
    close(
        "head cut between CR and LF",
        b"GET / HTTP/1.1\r\nHost: example.com\r\n\r",
    ),
    close("only empty lines", b"\r\n\r\n"),
    // ---- limits (gunicorn defaults) ----
    ok(
        "request line at the limit",
        &LINE_AT_LIMIT,
        get(LINE_AT_LIMIT_URI, LINE_AT_LIMIT_URI, ""),
    ),
    status("request line over the limit", &LINE_OVER_LIMIT, 414),
    status("request line that never ends", &LINE_UNENDING, 414),
    ok("field line at the limit", &FIELD_AT_LIMIT, ROOT),
    status("field line over the limit", &FIELD_OVER_LIMIT, 431),
    status("field line that never ends", &FIELD_UNENDING, 431),
    ok(
        "field count at the limit",
        &FIELDS_AT_LIMIT,
        Env {
            headers: &[("HTTP_HOST", "example.com")],
            ..ROOT
        },
    ),
    status("field count over the limit", &FIELDS_OVER_LIMIT, 431),
];
