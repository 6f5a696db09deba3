//! Raw request vectors written from RFC 9112 (and gunicorn's strictness),
//! each with the outcome a conforming server must produce. Shared by the
//! parser's unit tests and the integration tests that send them to a real
//! corral whole, byte by byte and pipelined.

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

pub const VECTORS: &[Vector] = &[];
