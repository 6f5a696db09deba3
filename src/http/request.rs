//! Request head parsing.

use super::HttpError;

/// HTTP version of a request. Only 1.0 and 1.1 are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// Limits on the request head, named after gunicorn's settings.
#[derive(Debug, Clone)]
pub struct Limits {
    /// `limit_request_line`: longest request line in bytes; 0 = unlimited (capped at 8190 like gunicorn... see docs).
    pub request_line: usize,
    /// `limit_request_fields`: most header fields.
    pub fields: usize,
    /// `limit_request_field_size`: longest header field line in bytes.
    pub field_size: usize,
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
    pub method: String,
    /// The request-target exactly as sent (`RAW_URI`).
    pub target: String,
    /// Path part of the target, still percent-encoded.
    pub path: String,
    /// Query part after `?` (without the `?`), fragment removed.
    pub query: String,
    pub version: Version,
    pub headers: Vec<Header>,
    pub body: BodyKind,
    /// Whether the client allows the connection to stay open afterwards.
    pub keep_alive: bool,
    /// The client sent `Expect: 100-continue`.
    pub expect_continue: bool,
}

/// Result of feeding bytes to [`parse_head`].
#[derive(Debug)]
pub enum Parsed {
    /// More bytes are needed.
    Partial,
    /// A complete head and how many bytes of the buffer it used.
    Complete(RequestHead, usize),
}

/// Parse the request head at the start of `buf`.
pub fn parse_head(_buf: &[u8], _limits: &Limits) -> Result<Parsed, HttpError> {
    todo!()
}
// MERGE-STUB-BEGIN
impl Default for Limits {
    fn default() -> Self {
        todo!()
    }
}
// MERGE-STUB-END
