//! Incremental decoder for `Transfer-Encoding: chunked` request bodies.

use super::HttpError;

/// Decodes a chunked body fed in arbitrary slices (down to one byte).
#[derive(Debug, Default)]
pub struct ChunkedDecoder {}

impl ChunkedDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decode from `input`, appending body bytes to `out`. Returns how many
    /// bytes of `input` were consumed and whether the body (including
    /// trailers) is complete.
    pub fn feed(&mut self, _input: &[u8], _out: &mut Vec<u8>) -> Result<(usize, bool), HttpError> {
        todo!()
    }
}
