//! Reading and writing the master's own small clients (the control socket's
//! and `/metrics` scrapers') without ever blocking its single thread: each
//! call moves what the socket takes now and reports whether the client is
//! still usable.

use std::io::{self, Read, Write};

/// What a non-blocking read found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Input {
    /// Nothing more to read for now (or `limit` reached).
    Open,
    /// The client closed its side.
    Eof,
    /// The connection failed.
    Broken,
}

/// Append what `stream` has to `buf`, stopping once `buf` holds more than
/// `limit` bytes: a client never makes the master buffer more than that.
pub(super) fn read_some(stream: &mut impl Read, buf: &mut Vec<u8>, limit: usize) -> Input {
    let mut chunk = [0u8; 4096];
    while buf.len() <= limit {
        match stream.read(&mut chunk) {
            Ok(0) => return Input::Eof,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Input::Open,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Input::Broken,
        }
    }
    Input::Open
}

/// Write as much of `out` as the socket takes now, removing what was
/// written. False when the connection failed.
pub(super) fn write_some(stream: &mut impl Write, out: &mut Vec<u8>) -> bool {
    while !out.is_empty() {
        match stream.write(out) {
            Ok(0) => return false,
            Ok(n) => {
                out.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}
