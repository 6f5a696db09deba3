//! Building the PEP 3333 environ dict for one request: CGI variables from the
//! request head and socket addresses, `HTTP_*` headers, the trusted-proxy
//! scheme decision, and the per-app template of constant entries that each
//! request's dict is copied from (so constants are created once, and the
//! copy starts out sized for them).

use std::borrow::Cow;
use std::net::IpAddr;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use pyo3::{intern, Py};

use super::errors::ErrorStream;
use super::filewrapper::FileWrapper;
use super::AllowIp;
use super::{ServeContext, SockAddr};
use crate::http::{RequestHead, Version};

/// The `SERVER_SOFTWARE` value.
pub(crate) const SERVER_SOFTWARE: &str = concat!("corral/", env!("CARGO_PKG_VERSION"));

/// `HTTP_*` keys a request's environ takes, at least, without its table
/// growing.
const HEADER_ROOM: usize = 8;

/// Environ entries identical for every request of one app; copied with
/// `dict.copy()`, which is a single C-level copy.
pub(crate) struct Template {
    dict: Py<PyDict>,
    script_name: String,
}

impl Template {
    pub(crate) fn new(py: Python<'_>, script_name: &str) -> PyResult<Self> {
        let d = PyDict::new(py);
        d.set_item(intern!(py, "wsgi.version"), PyTuple::new(py, [1, 0])?)?;
        d.set_item(intern!(py, "wsgi.errors"), ErrorStream::shared(py)?)?;
        d.set_item(
            intern!(py, "wsgi.file_wrapper"),
            py.get_type::<FileWrapper>(),
        )?;
        d.set_item(intern!(py, "wsgi.run_once"), false)?;
        d.set_item(intern!(py, "wsgi.input_terminated"), true)?;
        d.set_item(intern!(py, "SERVER_SOFTWARE"), intern!(py, SERVER_SOFTWARE))?;
        d.set_item(intern!(py, "SCRIPT_NAME"), PyString::new(py, script_name))?;
        // The keys every request sets, present already, so that setting
        // them replaces a value instead of inserting (and growing the
        // copy's table on the way). REMOTE_PORT is the one a request may
        // lack (a unix-socket peer): removed then.
        for key in [
            intern!(py, "wsgi.input"),
            intern!(py, "wsgi.multithread"),
            intern!(py, "wsgi.multiprocess"),
            intern!(py, "wsgi.url_scheme"),
            intern!(py, "REQUEST_METHOD"),
            intern!(py, "PATH_INFO"),
            intern!(py, "QUERY_STRING"),
            intern!(py, "RAW_URI"),
            intern!(py, "SERVER_PROTOCOL"),
            intern!(py, "REMOTE_ADDR"),
            intern!(py, "REMOTE_PORT"),
            intern!(py, "SERVER_NAME"),
            intern!(py, "SERVER_PORT"),
        ] {
            d.set_item(key, py.None())?;
        }
        // Room for a request's headers: `dict.copy()` keeps the table it
        // copies, free slots included, so entries added and removed here
        // leave every copy able to take at least this many `HTTP_*` keys
        // without being resized (14 with CPython 3.11's growth steps). At
        // most a third of the entries may be removed ones, or the copy is
        // rebuilt entry by entry instead.
        for i in 0..HEADER_ROOM {
            d.set_item(format!("corral.room.{i}"), py.None())?;
        }
        for i in 0..HEADER_ROOM {
            d.del_item(format!("corral.room.{i}"))?;
        }
        Ok(Template {
            dict: d.unbind(),
            script_name: script_name.to_owned(),
        })
    }
}

/// The request must be refused before reaching the app.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Trusted proxy headers disagree about the scheme.
    SchemeSpoof,
}

/// Decode `%XX` escapes; malformed escapes are kept literally.
pub(crate) fn percent_decode(s: &str) -> Cow<'_, [u8]> {
    let b = s.as_bytes();
    if !b.contains(&b'%') {
        return Cow::Borrowed(b);
    }
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    Cow::Owned(out)
}

/// PEP 3333 "native strings": bytes mapped one-to-one onto code points
/// U+0000..U+00FF. ASCII (the common case) skips the re-encoding.
pub(crate) fn latin1<'py>(py: Python<'py>, b: &[u8]) -> Bound<'py, PyString> {
    if b.is_ascii() {
        // ASCII is valid UTF-8 and decodes to the same code points.
        PyString::new(py, std::str::from_utf8(b).unwrap_or_default())
    } else {
        let s: String = b.iter().map(|&c| c as char).collect();
        PyString::new(py, &s)
    }
}

/// Whether `peer` is in `allow` (`forwarded_allow_ips`,
/// `proxy_allow_ips`): may set the scheme through proxy headers, or send
/// a PROXY protocol header.
pub fn is_trusted(peer: &SockAddr, allow: &[AllowIp]) -> bool {
    allow.iter().any(|a| match (a, peer) {
        (AllowIp::Any, _) => true,
        (AllowIp::Unix, SockAddr::Unix(_)) => true,
        (AllowIp::Net(net, prefix), SockAddr::Tcp(addr)) => ip_in_net(addr.ip(), *net, *prefix),
        _ => false,
    })
}

fn ip_in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    // An IPv4 client on a dual-stack socket shows up as ::ffff:a.b.c.d.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let p = u32::from(prefix.min(32));
            let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let p = u32::from(prefix.min(128));
            let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The scheme from trusted proxy headers (gunicorn's default
/// `secure_scheme_headers`). `Ok(None)` when none is present.
pub(crate) fn forwarded_scheme(headers: &[crate::http::Header]) -> Result<Option<bool>, Refusal> {
    const SECURE: [(&str, &str); 3] = [
        ("x-forwarded-protocol", "ssl"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-ssl", "on"),
    ];
    scan_scheme(headers, || SECURE.iter().copied())
}

/// Like [`forwarded_scheme`] with a configured `secure_scheme_headers`.
pub(crate) fn forwarded_scheme_with(
    headers: &[crate::http::Header],
    secure: &[(String, String)],
) -> Result<Option<bool>, Refusal> {
    // Checked on every request from a trusted peer: no list is built.
    scan_scheme(headers, || {
        secure.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    })
}

fn scan_scheme<'s, I>(
    headers: &[crate::http::Header],
    secure: impl Fn() -> I,
) -> Result<Option<bool>, Refusal>
where
    I: Iterator<Item = (&'s str, &'s str)>,
{
    let mut seen: Option<bool> = None;
    for h in headers {
        let Some((_, secure_value)) = secure().find(|(n, _)| h.name.eq_ignore_ascii_case(n)) else {
            continue;
        };
        let secure = h
            .value
            .trim_ascii()
            .eq_ignore_ascii_case(secure_value.as_bytes());
        match seen {
            Some(prev) if prev != secure => return Err(Refusal::SchemeSpoof),
            _ => seen = Some(secure),
        }
    }
    Ok(seen)
}

/// Split a Host header into (name, port); `[v6]:port` keeps its brackets in
/// the name as RFC 3875 writes IPv6 SERVER_NAMEs.
pub(crate) fn split_host<'a>(host: &'a str, default_port: &'a str) -> (&'a str, &'a str) {
    if host.starts_with('[') {
        if let Some(end) = host.find(']') {
            let name = &host[..=end];
            let port = host[end + 1..].strip_prefix(':').filter(|p| !p.is_empty());
            return (name, port.unwrap_or(default_port));
        }
        return (host, default_port);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() => (name, port),
        Some((name, _)) => (name, default_port),
        None => (host, default_port),
    }
}

/// The two ends of the connection a request came on, and what its PROXY
/// header said.
pub(crate) struct Ends<'a> {
    pub peer: &'a SockAddr,
    pub local: &'a SockAddr,
    pub proxy: Option<&'a crate::http::ProxyInfo>,
}

/// Build the environ for `req`. `input` becomes `wsgi.input`.
pub(crate) fn build<'py>(
    py: Python<'py>,
    template: &Template,
    ctx: &ServeContext,
    head: &RequestHead,
    ends: Ends<'_>,
    input: Bound<'py, PyAny>,
) -> PyResult<Result<Bound<'py, PyDict>, Refusal>> {
    let Ends { peer, local, proxy } = ends;
    let secure = if is_trusted(peer, &ctx.forwarded_allow_ips) {
        let found = match &ctx.secure_scheme_headers {
            Some(list) => forwarded_scheme_with(&head.headers, list),
            None => forwarded_scheme(&head.headers),
        };
        match found {
            Ok(s) => s.unwrap_or(false),
            Err(r) => return Ok(Err(r)),
        }
    } else {
        false
    };

    let env = template.dict.bind(py).copy()?;
    env.set_item(intern!(py, "wsgi.input"), input)?;
    env.set_item(intern!(py, "wsgi.multithread"), ctx.multithread)?;
    env.set_item(intern!(py, "wsgi.multiprocess"), ctx.multiprocess)?;
    env.set_item(
        intern!(py, "wsgi.url_scheme"),
        if secure {
            intern!(py, "https")
        } else {
            intern!(py, "http")
        },
    )?;
    let method = match &*head.method {
        "GET" => intern!(py, "GET").clone(),
        "POST" => intern!(py, "POST").clone(),
        "HEAD" => intern!(py, "HEAD").clone(),
        m => PyString::new(py, m),
    };
    env.set_item(intern!(py, "REQUEST_METHOD"), method)?;

    let decoded = percent_decode(&head.path);
    let sn = template.script_name.as_bytes();
    let path: &[u8] = if !sn.is_empty() && decoded.starts_with(sn) {
        &decoded[sn.len()..]
    } else {
        &decoded
    };
    env.set_item(intern!(py, "PATH_INFO"), latin1(py, path))?;
    env.set_item(intern!(py, "QUERY_STRING"), PyString::new(py, &head.query))?;
    env.set_item(intern!(py, "RAW_URI"), PyString::new(py, &head.target))?;
    env.set_item(
        intern!(py, "SERVER_PROTOCOL"),
        match head.version {
            Version::Http10 => intern!(py, "HTTP/1.0"),
            Version::Http11 => intern!(py, "HTTP/1.1"),
        },
    )?;

    // A PROXY header names the client (gunicorn's keys); the trust checks
    // above were made on the peer itself, the front end.
    if let Some(p) = proxy {
        env.set_item(intern!(py, "PROXY_PROTOCOL"), p.protocol)?;
        if let Some(a) = p.proxy {
            env.set_item(intern!(py, "PROXY_ADDR"), a.ip().to_string())?;
            env.set_item(intern!(py, "PROXY_PORT"), a.port().to_string())?;
        }
    }
    match proxy.and_then(|p| p.client).or_else(|| peer.tcp()) {
        Some(a) => {
            env.set_item(intern!(py, "REMOTE_ADDR"), ip_string(py, a.ip()))?;
            env.set_item(intern!(py, "REMOTE_PORT"), port_string(py, a.port()))?;
        }
        // A unix-socket peer has no address: gunicorn reports the empty
        // string and no REMOTE_PORT; so do we.
        None => {
            env.set_item(intern!(py, "REMOTE_ADDR"), intern!(py, ""))?;
            env.del_item(intern!(py, "REMOTE_PORT"))?;
        }
    }

    let mut host: Option<&[u8]> = None;
    for h in &head.headers {
        let key = if h.name.eq_ignore_ascii_case("content-type") {
            intern!(py, "CONTENT_TYPE").clone()
        } else if h.name.eq_ignore_ascii_case("content-length") {
            intern!(py, "CONTENT_LENGTH").clone()
        } else {
            if host.is_none() && h.name.eq_ignore_ascii_case("host") {
                host = Some(&h.value);
            }
            header_key(py, &h.name)
        };
        let value = latin1(py, &h.value);
        // Repeated fields are folded into one, comma-separated (RFC 9110).
        match env.get_item(&key)? {
            Some(prev) => {
                let prev = prev.cast_into::<PyString>()?;
                let joined = format!("{},{}", prev.to_str()?, value.to_str()?);
                env.set_item(key, joined)?;
            }
            None => env.set_item(key, value)?,
        }
    }

    let default_port = if secure { "443" } else { "80" };
    match (host, local) {
        (Some(h), _) => {
            let h = String::from_utf8_lossy(h);
            let (name, port) = split_host(h.trim(), default_port);
            env.set_item(intern!(py, "SERVER_NAME"), name)?;
            env.set_item(intern!(py, "SERVER_PORT"), port)?;
        }
        (None, SockAddr::Tcp(a)) => {
            let name = match a.ip() {
                IpAddr::V6(v6) => format!("[{v6}]"),
                v4 => v4.to_string(),
            };
            env.set_item(intern!(py, "SERVER_NAME"), name)?;
            env.set_item(intern!(py, "SERVER_PORT"), port_string(py, a.port()))?;
        }
        (None, SockAddr::Unix(path)) => {
            let name = path
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            env.set_item(intern!(py, "SERVER_NAME"), name)?;
            env.set_item(intern!(py, "SERVER_PORT"), intern!(py, ""))?;
        }
    }
    Ok(Ok(env))
}

/// An IP address as Python text, an IPv4 one (nearly every peer) written
/// out without going through `fmt`.
pub(crate) fn ip_string(py: Python<'_>, ip: IpAddr) -> Bound<'_, PyString> {
    let v4 = match ip {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(v6) => return PyString::new(py, &v6.to_string()),
    };
    let mut buf = [0u8; 15];
    let mut n = 0;
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            buf[n] = b'.';
            n += 1;
        }
        n += push_decimal(&mut buf[n..], u32::from(octet));
    }
    PyString::new(py, std::str::from_utf8(&buf[..n]).unwrap_or_default())
}

/// A port number as Python text.
fn port_string(py: Python<'_>, port: u16) -> Bound<'_, PyString> {
    let mut buf = [0u8; 5];
    let n = push_decimal(&mut buf, u32::from(port));
    PyString::new(py, std::str::from_utf8(&buf[..n]).unwrap_or_default())
}

/// Write `v` in decimal at the start of `out` (room for up to five
/// digits); returns the number of digits.
fn push_decimal(out: &mut [u8], v: u32) -> usize {
    let mut digits = [0u8; 5];
    let mut n = 0;
    let mut v = v;
    loop {
        digits[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for i in 0..n {
        out[i] = digits[n - 1 - i];
    }
    n
}

/// `HTTP_` + name upper-cased with `-` → `_`; common names are interned.
fn header_key<'py>(py: Python<'py>, name: &str) -> Bound<'py, PyString> {
    macro_rules! known {
        ($($lit:literal => $key:literal),* $(,)?) => {
            $(if name.eq_ignore_ascii_case($lit) { return intern!(py, $key).clone(); })*
        };
    }
    known! {
        "host" => "HTTP_HOST",
        "user-agent" => "HTTP_USER_AGENT",
        "accept" => "HTTP_ACCEPT",
        "accept-encoding" => "HTTP_ACCEPT_ENCODING",
        "accept-language" => "HTTP_ACCEPT_LANGUAGE",
        "connection" => "HTTP_CONNECTION",
        "cookie" => "HTTP_COOKIE",
        "referer" => "HTTP_REFERER",
        "authorization" => "HTTP_AUTHORIZATION",
        "cache-control" => "HTTP_CACHE_CONTROL",
        "x-forwarded-for" => "HTTP_X_FORWARDED_FOR",
        "x-forwarded-proto" => "HTTP_X_FORWARDED_PROTO",
        "x-request-id" => "HTTP_X_REQUEST_ID",
    }
    let mut key = String::with_capacity(5 + name.len());
    key.push_str("HTTP_");
    key.extend(name.chars().map(|c| {
        if c == '-' {
            '_'
        } else {
            c.to_ascii_uppercase()
        }
    }));
    PyString::new(py, &key)
}
