//! HTTP/1.0 and HTTP/1.1 wire format: request heads (parsed with `httparse`
//! and then held to RFC 9112 and gunicorn's strictness), request body framing
//! (Content-Length and chunked), and response framing. Knows nothing of Python
//! or sockets: it turns bytes into values and values into bytes.

mod chunked;
mod error;
mod request;
mod response;

pub use chunked::ChunkedDecoder;
pub use error::HttpError;
pub use request::{parse_head, BodyKind, Header, Limits, Parsed, RequestHead, Version};
pub use response::{
    error_response, http_date, ResponseEncoder, ResponseError, ResponseInfo, CONTINUE_100,
};
