//! Every way a request can be refused, and the status each one maps to.
//!
//! One variant per reason so that logs say exactly what was wrong and tests
//! can assert on the reason, not only on the status. Variants carry a short,
//! lossy snippet of the offending bytes: enough context for a log line while
//! bounding what a hostile client can make us store.

/// A request the server refuses. [`HttpError::status`] gives the status code
/// to answer with, or `None` when the connection is closed without a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// httparse refused the head (request line or header syntax).
    #[error("malformed request head: {0}")]
    Syntax(httparse::Error),
    /// A line of the head ends in LF without the CR that RFC 9112 requires.
    #[error("bare LF in request head at byte {0}")]
    BareLf(usize),
    /// A CR not followed by LF inside the head.
    #[error("bare CR in request head at byte {0}")]
    BareCr(usize),
    /// A byte outside visible ASCII (or SP between parts) in the request line.
    #[error("invalid byte 0x{byte:02x} in request line at byte {at}")]
    RequestLineByte { byte: u8, at: usize },
    /// The request line exceeds `limit_request_line`.
    #[error("request line longer than {limit} bytes")]
    RequestLineTooLong { limit: usize },
    /// The method is not a token, or breaks gunicorn's conventions.
    #[error("invalid method {0:?}")]
    BadMethod(String),
    /// The request-target has a form the method does not allow.
    #[error("invalid request target {target:?}: {why}")]
    BadTarget { target: String, why: &'static str },
    /// Only HTTP/1.0 and HTTP/1.1 are served.
    #[error("unsupported HTTP version in request line")]
    BadVersion,
    /// More header fields than `limit_request_fields`.
    #[error("more than {limit} header fields")]
    TooManyHeaders { limit: usize },
    /// A header field line longer than `limit_request_field_size`.
    #[error("header field line {line} longer than {limit} bytes")]
    HeaderTooLarge { line: usize, limit: usize },
    /// The head as a whole exceeds the derived cap.
    #[error("request head larger than {limit} bytes")]
    HeadTooLarge { limit: usize },
    /// A header name that is not a token.
    #[error("invalid header name {0:?}")]
    BadHeaderName(String),
    /// Whitespace between a header name and its colon.
    #[error("whitespace between header name {0:?} and colon")]
    SpaceBeforeColon(String),
    /// A header name containing `_` while `header_map` is `Refuse`.
    #[error("underscore in header name {0:?} refused by header_map")]
    UnderscoreInName(String),
    /// Obsolete line folding, refused unless permitted (always refused on
    /// the first field line).
    #[error("obsolete line folding at byte {0}")]
    ObsFold(usize),
    /// A header value containing a byte RFC 9110 forbids.
    #[error("invalid byte in value of header {0:?}")]
    BadHeaderValue(String),
    /// A header that must appear at most once appeared again.
    #[error("duplicate {0} header")]
    DuplicateHeader(&'static str),
    /// HTTP/1.1 requires Host.
    #[error("HTTP/1.1 request without Host header")]
    MissingHost,
    /// A Host value that is not `uri-host [":" port]`.
    #[error("invalid Host header {0:?}")]
    BadHost(String),
    /// Content-Length that is not plain digits, or does not fit in 64 bits.
    #[error("invalid Content-Length {0:?}")]
    BadContentLength(String),
    /// Both framings at once: the classic request-smuggling vector.
    #[error("both Transfer-Encoding and Content-Length present")]
    TransferEncodingWithLength,
    /// Transfer-Encoding is an HTTP/1.1 feature.
    #[error("Transfer-Encoding in an HTTP/1.0 request")]
    TransferEncodingOnHttp10,
    /// chunked repeated, not last, or an empty coding list.
    #[error("invalid Transfer-Encoding {value:?}: {why}")]
    BadTransferEncoding { value: String, why: &'static str },
    /// A transfer coding the server does not implement.
    #[error("unsupported transfer coding {0:?}")]
    UnsupportedTransferCoding(String),
    /// An expectation other than `100-continue`.
    #[error("unsupported expectation {0:?}")]
    UnsupportedExpect(String),
    /// A chunk-size line that is not hexadecimal or overflows 64 bits.
    #[error("invalid chunk size: {0}")]
    BadChunkSize(&'static str),
    /// A malformed or oversized chunk extension.
    #[error("invalid chunk extension: {0}")]
    BadChunkExtension(&'static str),
    /// Chunk data not followed by CRLF, or a line ending that is not CRLF.
    #[error("invalid chunk framing: {0}")]
    BadChunkFraming(&'static str),
    /// A malformed or oversized trailer section.
    #[error("invalid chunked trailer: {0}")]
    BadTrailer(&'static str),
    /// The peer closed before the request was complete. Nothing is sent: the
    /// client cannot be listening for an answer to half a request.
    #[error("connection closed before the request was complete")]
    Truncated,
    /// A malformed PROXY protocol header.
    #[error("invalid PROXY header: {0}")]
    BadProxyHeader(String),
    /// A PROXY header from a peer not in `--proxy-allow-from`.
    #[error("Proxy request from {0:?} not allowed")]
    ProxyForbidden(String),
}

impl HttpError {
    /// The status code to answer with; `None` means close silently.
    pub fn status(&self) -> Option<u16> {
        Some(match self {
            HttpError::Truncated => return None,
            HttpError::RequestLineTooLong { .. } => 414,
            HttpError::TooManyHeaders { .. }
            | HttpError::HeaderTooLarge { .. }
            | HttpError::HeadTooLarge { .. } => 431,
            HttpError::UnsupportedTransferCoding(_) => 501,
            HttpError::UnsupportedExpect(_) => 417,
            HttpError::ProxyForbidden(_) => 403,
            _ => 400,
        })
    }
}

/// A bounded, printable rendering of client bytes for error context.
pub(crate) fn snippet(bytes: &[u8]) -> String {
    const MAX: usize = 64;
    let cut = &bytes[..bytes.len().min(MAX)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if bytes.len() > MAX {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_gunicorn_mapping() {
        assert_eq!(HttpError::Truncated.status(), None);
        assert_eq!(
            HttpError::RequestLineTooLong { limit: 1 }.status(),
            Some(414)
        );
        assert_eq!(HttpError::TooManyHeaders { limit: 1 }.status(), Some(431));
        assert_eq!(
            HttpError::HeaderTooLarge { line: 2, limit: 1 }.status(),
            Some(431)
        );
        assert_eq!(
            HttpError::UnsupportedTransferCoding("gzip".into()).status(),
            Some(501)
        );
        assert_eq!(HttpError::UnsupportedExpect("x".into()).status(), Some(417));
        assert_eq!(HttpError::BadChunkSize("x").status(), Some(400));
        assert_eq!(HttpError::MissingHost.status(), Some(400));
    }

    #[test]
    fn snippet_is_bounded_and_lossy() {
        assert_eq!(snippet(b"X-\xffA"), "X-\u{fffd}A");
        let long = [b'a'; 200];
        assert_eq!(snippet(&long).chars().count(), 65);
    }
}
