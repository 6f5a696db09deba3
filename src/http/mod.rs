//! HTTP/1.0 and HTTP/1.1 wire format: request heads (parsed with `httparse`
//! and then held to RFC 9112 and gunicorn's strictness), request body framing
//! (Content-Length and chunked), response framing, and WebSockets (the
//! handshake and frames in `websocket`, permessage-deflate in `deflate`).
//! Knows nothing of Python or sockets: it turns bytes into values and values
//! into bytes.

mod chunked;
#[cfg(test)]
mod conformance;
pub mod deflate;
mod error;
mod proxy;
mod request;
mod response;
#[cfg(test)]
#[path = "../../tests/vectors/http.rs"]
mod vectors;
pub mod websocket;

pub use chunked::{ChunkedDecoder, MAX_CHUNK_LINE, MAX_TRAILERS};
pub use error::HttpError;
pub use proxy::{parse_proxy, ProxyInfo, ProxyMode, ProxyParse};
pub use request::{
    parse_head, parse_head_reusing, request_line, BodyKind, Header, HeaderMap, Limits, Parsed,
    RequestHead, Version, DEFAULT_FIELD_SIZE, MAX_FIELDS, MAX_HEAD, MAX_REQUEST_LINE,
};
pub use response::{
    error_body_len, error_response, http_date, push_http_date, reason_phrase, ResponseEncoder,
    ResponseError, ResponseInfo, CONTINUE_100, SERVER,
};
