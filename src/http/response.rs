//! Response framing: status line, headers, Content-Length / chunked /
//! close-delimited bodies.

/// The interim response sent when a client asked `Expect: 100-continue`.
pub const CONTINUE_100: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// What the encoder needs to know about the request being answered.
#[derive(Debug, Clone, Copy)]
pub struct ResponseInfo {
    pub version: super::Version,
    pub head_request: bool,
    /// The connection may stay open if the response allows it.
    pub keep_alive: bool,
}

/// The app gave headers the server cannot send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("placeholder")]
    Placeholder,
}

/// Frames one response.
#[derive(Debug)]
pub struct ResponseEncoder {}

impl ResponseEncoder {
    /// Validate the app's status and headers and write the head to `out`.
    pub fn start(
        _out: &mut Vec<u8>,
        _info: ResponseInfo,
        _status: &str,
        _headers: &[(String, String)],
    ) -> Result<Self, ResponseError> {
        todo!()
    }
    /// Append framed body bytes.
    pub fn body(&mut self, _out: &mut Vec<u8>, _data: &[u8]) {
        todo!()
    }
    /// Append whatever ends the body (the last chunk).
    pub fn finish(&mut self, _out: &mut Vec<u8>) {
        todo!()
    }
    /// Whether the connection may be reused after this response.
    pub fn keep_alive(&self) -> bool {
        todo!()
    }
}

/// A complete error response with `Connection: close`.
pub fn error_response(_status: u16) -> Vec<u8> {
    todo!()
}

/// The current time as an IMF-fixdate, cached per second.
pub fn http_date() -> String {
    todo!()
}
// MERGE-STUB-BEGIN
impl ResponseEncoder {
    pub fn file_prefix(&mut self, _out: &mut Vec<u8>, _len: u64) -> u64 {
        todo!()
    }
    pub fn file_suffix(&mut self, _out: &mut Vec<u8>, _sent: u64) {
        todo!()
    }
}
// MERGE-STUB-END
