//! Incremental decoder for `Transfer-Encoding: chunked` request bodies
//! (RFC 9112 §7.1): a byte-level state machine, so it gives the same answer
//! however the input is sliced, and keeps no more than a few integers of
//! state, so a hostile client cannot make it buffer anything.
//!
//! Extensions are validated and ignored; trailer fields are validated and
//! discarded (WSGI has no way to hand them to the app). Both are bounded.

use super::request::is_tchar;
use super::HttpError;

/// Longest chunk-size line (size, extensions, not the CRLF) accepted.
pub const MAX_CHUNK_LINE: usize = 4096;
/// Largest trailer section (all trailer lines with their CRLFs) accepted.
pub const MAX_TRAILERS: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// At the first hex digit of a chunk size.
    #[default]
    SizeStart,
    /// Inside the hex digits.
    Size,
    /// Whitespace after the size: only a `;` may follow.
    SizeBws,
    /// After `;`, before the extension name (BWS allowed).
    ExtNameStart,
    ExtName,
    /// After the name: `=`, `;` or the CR, with BWS before `=` / `;`.
    ExtAfterName {
        ws: bool,
    },
    /// After `=`, before the value (BWS allowed).
    ExtValueStart,
    ExtToken,
    ExtQuoted,
    ExtQuotedEscape,
    /// After a value: `;` or the CR, with BWS before `;`.
    ExtAfterValue {
        ws: bool,
    },
    /// Saw the CR ending the size line.
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// At the start of a trailer line, or of the final empty line.
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    FinalLf,
    Done,
}

/// Fields that must not be sent as trailers because they change how the
/// message is routed, framed or authenticated (RFC 9110 §6.5.1). gunicorn
/// 27 refuses the same six with 400: an app reading trailers could be
/// fooled into trusting them.
const FORBIDDEN_TRAILERS: [&[u8]; 6] = [
    b"host",
    b"content-length",
    b"transfer-encoding",
    b"trailer",
    b"authorization",
    b"te",
];

fn forbidden_in_trailer(name: &[u8]) -> bool {
    FORBIDDEN_TRAILERS
        .iter()
        .any(|f| f.eq_ignore_ascii_case(name))
}

/// Decodes a chunked body fed in arbitrary slices (down to one byte).
#[derive(Debug, Default)]
pub struct ChunkedDecoder {
    state: State,
    /// Bytes of the current chunk still to copy.
    remaining: u64,
    /// Length of the current size line so far.
    line_len: usize,
    /// Length of the trailer section so far.
    trailer_len: usize,
    /// The name of the trailer field being read (bounded by
    /// `MAX_TRAILERS`).
    trailer_name: Vec<u8>,
    /// Decoded body bytes so far, for callers that spill or limit bodies.
    decoded: u64,
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the last chunk and trailer section have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Body bytes produced so far.
    pub fn decoded(&self) -> u64 {
        self.decoded
    }

    /// Decode from `input`, appending body bytes to `out`. Returns how many
    /// bytes of `input` were consumed and whether the body (including
    /// trailers) is complete. Once complete, nothing more is consumed: the
    /// rest of `input` belongs to the next request. EOF before completion is
    /// a truncated request ([`HttpError::Truncated`]): close without a reply.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(usize, bool), HttpError> {
        let mut i = 0;
        while i < input.len() {
            if self.state == State::Done {
                break;
            }
            if self.state == State::Data {
                let avail = input.len() - i;
                let take = usize::try_from(self.remaining).map_or(avail, |r| r.min(avail));
                out.extend_from_slice(&input[i..i + take]);
                i += take;
                self.remaining -= take as u64;
                self.decoded += take as u64;
                if self.remaining == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            self.step(input[i])?;
            i += 1;
        }
        Ok((i, self.state == State::Done))
    }

    fn step(&mut self, b: u8) -> Result<(), HttpError> {
        use State::*;
        if matches!(
            self.state,
            SizeStart
                | Size
                | SizeBws
                | ExtNameStart
                | ExtName
                | ExtAfterName { .. }
                | ExtValueStart
                | ExtToken
                | ExtQuoted
                | ExtQuotedEscape
                | ExtAfterValue { .. }
        ) {
            self.line_len += 1;
            if self.line_len > MAX_CHUNK_LINE {
                return Err(HttpError::BadChunkExtension("chunk-size line too long"));
            }
        }
        if matches!(
            self.state,
            TrailerStart | TrailerName | TrailerValue | TrailerLf | FinalLf
        ) {
            self.trailer_len += 1;
            if self.trailer_len > MAX_TRAILERS {
                return Err(HttpError::BadTrailer("trailer section too large"));
            }
        }
        let bws = b == b' ' || b == b'\t';
        self.state = match (self.state, b) {
            (SizeStart, _) => match hex(b) {
                Some(d) => {
                    self.remaining = u64::from(d);
                    Size
                }
                None => return Err(HttpError::BadChunkSize("expected a hex digit")),
            },
            (Size, _) if hex(b).is_some() => {
                if self.remaining > u64::MAX >> 4 {
                    return Err(HttpError::BadChunkSize("chunk size overflows 64 bits"));
                }
                self.remaining = (self.remaining << 4) | u64::from(hex(b).unwrap_or(0));
                Size
            }
            (Size, b'\r') => SizeLf,
            (Size, b';') => ExtNameStart,
            (Size, _) if bws => SizeBws,
            (Size, b'\n') => return Err(HttpError::BadChunkFraming("bare LF after chunk size")),
            (Size, _) => return Err(HttpError::BadChunkSize("invalid byte in chunk size")),
            (SizeBws, _) if bws => SizeBws,
            (SizeBws, b';') => ExtNameStart,
            (SizeBws, _) => {
                return Err(HttpError::BadChunkSize(
                    "whitespace after chunk size without extension",
                ))
            }
            (ExtNameStart, _) if bws => ExtNameStart,
            (ExtNameStart, _) if is_tchar(b) => ExtName,
            (ExtNameStart, _) => return Err(HttpError::BadChunkExtension("expected a name")),
            (ExtName, _) if is_tchar(b) => ExtName,
            (ExtName | ExtAfterName { ws: false }, b'\r') => SizeLf,
            (ExtName | ExtAfterName { .. }, b';') => ExtNameStart,
            (ExtName | ExtAfterName { .. }, b'=') => ExtValueStart,
            (ExtName | ExtAfterName { .. }, _) if bws => ExtAfterName { ws: true },
            (ExtName | ExtAfterName { .. }, _) => {
                return Err(HttpError::BadChunkExtension("invalid byte after name"))
            }
            (ExtValueStart, _) if bws => ExtValueStart,
            (ExtValueStart, b'"') => ExtQuoted,
            (ExtValueStart, _) if is_tchar(b) => ExtToken,
            (ExtValueStart, _) => return Err(HttpError::BadChunkExtension("expected a value")),
            (ExtToken, _) if is_tchar(b) => ExtToken,
            (ExtToken | ExtAfterValue { ws: false }, b'\r') => SizeLf,
            (ExtToken | ExtAfterValue { .. }, b';') => ExtNameStart,
            (ExtToken | ExtAfterValue { .. }, _) if bws => ExtAfterValue { ws: true },
            (ExtToken | ExtAfterValue { .. }, _) => {
                return Err(HttpError::BadChunkExtension("invalid byte after value"))
            }
            (ExtQuoted, b'"') => ExtAfterValue { ws: false },
            (ExtQuoted, b'\\') => ExtQuotedEscape,
            (ExtQuoted, _) if qdtext(b) => ExtQuoted,
            (ExtQuoted, _) => {
                return Err(HttpError::BadChunkExtension("invalid byte in quoted value"))
            }
            (ExtQuotedEscape, _) if qdtext(b) || b == b'"' || b == b'\\' => ExtQuoted,
            (ExtQuotedEscape, _) => {
                return Err(HttpError::BadChunkExtension("invalid escaped byte"))
            }
            (SizeLf, b'\n') => {
                self.line_len = 0;
                if self.remaining == 0 {
                    TrailerStart
                } else {
                    Data
                }
            }
            (SizeLf, _) => return Err(HttpError::BadChunkFraming("CR without LF in size line")),
            (DataCr, b'\r') => DataLf,
            (DataCr, _) => {
                return Err(HttpError::BadChunkFraming(
                    "chunk data not followed by CRLF",
                ))
            }
            (DataLf, b'\n') => SizeStart,
            (DataLf, _) => {
                return Err(HttpError::BadChunkFraming(
                    "chunk data not followed by CRLF",
                ))
            }
            (TrailerStart, b'\r') => FinalLf,
            (TrailerStart, _) if bws => return Err(HttpError::BadTrailer("obsolete line folding")),
            (TrailerStart | TrailerName, _) if is_tchar(b) => {
                if self.state == TrailerStart {
                    self.trailer_name.clear();
                }
                self.trailer_name.push(b);
                TrailerName
            }
            (TrailerName, b':') if forbidden_in_trailer(&self.trailer_name) => {
                return Err(HttpError::BadTrailer("field not allowed in a trailer"))
            }
            (TrailerStart, _) => return Err(HttpError::BadTrailer("invalid field name")),
            (TrailerName, b':') => TrailerValue,
            (TrailerName, _) => return Err(HttpError::BadTrailer("invalid byte in field name")),
            (TrailerValue, b'\r') => TrailerLf,
            (TrailerValue, _) if b == b'\t' || b >= 0x20 && b != 0x7f => TrailerValue,
            (TrailerValue, _) => return Err(HttpError::BadTrailer("invalid byte in field value")),
            (TrailerLf, b'\n') => TrailerStart,
            (TrailerLf, _) => return Err(HttpError::BadTrailer("CR without LF")),
            (FinalLf, b'\n') => Done,
            (FinalLf, _) => return Err(HttpError::BadChunkFraming("CR without LF at body end")),
            (Data | Done, _) => unreachable!("handled by feed"),
        };
        Ok(())
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// qdtext of RFC 9110 §5.6.4, minus `"` and `\` which the caller handles.
fn qdtext(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decode `input` whole and byte by byte; both must agree.
    fn decode(input: &[u8]) -> Result<(Vec<u8>, usize), HttpError> {
        let mut whole = ChunkedDecoder::new();
        let mut out = Vec::new();
        let (n, done) = whole.feed(input, &mut out)?;
        let whole_result = if done { Some((out.clone(), n)) } else { None };

        let mut bytewise = ChunkedDecoder::new();
        let mut out2 = Vec::new();
        let mut used = 0;
        let mut finished = false;
        for b in input {
            let (c, d) = bytewise.feed(std::slice::from_ref(b), &mut out2)?;
            used += c;
            if d {
                finished = true;
                break;
            }
        }
        assert_eq!(whole_result.is_some(), finished, "whole vs bytewise");
        match whole_result {
            Some((o, n)) => {
                assert_eq!((&o, n), (&out2, used));
                Ok((o, n))
            }
            None => Err(HttpError::Truncated),
        }
    }

    #[test]
    fn simple_body_and_leftover() {
        let raw = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nGET";
        let (body, n) = decode(raw).unwrap();
        assert_eq!(body, b"hello world");
        assert_eq!(n, raw.len() - 3);
    }

    #[test]
    fn extensions_and_trailers() {
        let raw = b"3;a=b;c ; d=\"q \\\" x\"\r\nabc\r\nA ;x\r\n0123456789\r\n0;last\r\nX-T: v\r\nY: \r\n\r\n";
        let (body, _) = decode(raw).unwrap();
        assert_eq!(body, b"abc0123456789");
    }

    #[test]
    fn fields_forbidden_in_trailers_are_refused() {
        for name in [
            "Host",
            "content-length",
            "Transfer-Encoding",
            "TRAILER",
            "Authorization",
            "te",
        ] {
            let raw = format!("1\r\nx\r\n0\r\n{name}: v\r\n\r\n");
            let e = decode(raw.as_bytes()).unwrap_err();
            assert_eq!(e.status(), Some(400), "{name}: {e}");
        }
        // Names that merely start like one are fine, fed a byte at a time too.
        let raw = b"1\r\nx\r\n0\r\nTE-Extra: v\r\nHosts: w\r\nX-Host: y\r\n\r\n";
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        for b in raw.iter() {
            d.feed(std::slice::from_ref(b), &mut out).unwrap();
        }
        assert!(d.is_done());
        assert_eq!(out, b"x");
    }

    #[test]
    fn hex_is_case_insensitive_and_leading_zeros_ok() {
        let (body, _) = decode(b"00a\r\n0123456789\r\n0000\r\n\r\n").unwrap();
        assert_eq!(body.len(), 10);
        let (body, _) = decode(b"A\r\n0123456789\r\n0\r\n\r\n").unwrap();
        assert_eq!(body.len(), 10);
    }

    #[test]
    fn errors() {
        let cases: &[&[u8]] = &[
            b"g\r\n",
            b"\r\n",
            b"-1\r\n",
            b"0x5\r\n",
            b"5 \r\nhello\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"5\r\nhelloXX0\r\n\r\n",
            b"5;\r\nhello\r\n0\r\n\r\n",
            b"5;a=\r\nhello\r\n",
            b"5;a=\"x\r\n",
            b"5;a \r\n",
            b"5;a=b \r\n",
            b"5;a=\x01\r\n",
            b"10000000000000000\r\n",
            b"0\r\n X: y\r\n\r\n",
            b"0\r\nX : y\r\n\r\n",
            b"0\r\nX: \x00\r\n\r\n",
            b"0\r\nX: y\n\r\n",
            b"0\r\n\n",
            b"0\r\n\r\r",
        ];
        for raw in cases {
            let err = decode(raw).expect_err(&String::from_utf8_lossy(raw));
            assert_eq!(
                err.status(),
                Some(400),
                "{:?}: {err}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn largest_size_is_accepted_without_overflow() {
        let mut d = ChunkedDecoder::new();
        let (n, done) = d.feed(b"ffffffffffffffff\r\nab", &mut Vec::new()).unwrap();
        assert_eq!((n, done), (20, false));
        assert_eq!(d.decoded(), 2);
    }

    #[test]
    fn line_and_trailer_limits() {
        let mut line = b"1;".to_vec();
        line.resize(line.len() + MAX_CHUNK_LINE, b'a');
        assert_eq!(
            decode(&line).unwrap_err(),
            HttpError::BadChunkExtension("chunk-size line too long")
        );
        let mut zeros = vec![b'0'; MAX_CHUNK_LINE + 1];
        zeros.extend_from_slice(b"\r\n\r\n");
        assert!(decode(&zeros).is_err());
        let mut trailers = b"0\r\n".to_vec();
        while trailers.len() < MAX_TRAILERS + 10 {
            trailers.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaaaaaa\r\n");
        }
        trailers.extend_from_slice(b"\r\n");
        assert_eq!(
            decode(&trailers).unwrap_err(),
            HttpError::BadTrailer("trailer section too large")
        );
    }

    #[test]
    fn truncated_is_not_done() {
        for raw in [
            &b"5\r\nhel"[..],
            b"5\r\nhello\r\n",
            b"0\r\n",
            b"0\r\nX: y\r\n",
        ] {
            assert_eq!(decode(raw).unwrap_err(), HttpError::Truncated);
        }
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        assert_eq!(d.feed(b"0\r\n\r\n", &mut out).unwrap(), (5, true));
        assert_eq!(d.feed(b"more", &mut out).unwrap(), (0, true));
        assert!(d.is_done());
    }
}
