//! permessage-deflate (RFC 7692), the WebSocket extension that compresses
//! each data message: which of a client's offers to accept and what the
//! `101` says about it, and the per-message codec in both directions. Like
//! the rest of `http`: bytes in, bytes out.
//!
//! The server's compressor uses a 4 KiB window (12 bits, or what the
//! client allows below that): a compressor kept for a connection's whole
//! life costs its window times four, and small windows lose little on the
//! short messages WebSockets carry. Messages under [`COMPRESS_MIN`] bytes
//! go uncompressed, which the extension allows message by message.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::websocket::{Failure, CLOSE_INVALID_PAYLOAD, CLOSE_TOO_BIG};

/// The extension's registered name.
pub const NAME: &str = "permessage-deflate";

/// Messages shorter than this are sent uncompressed.
pub const COMPRESS_MIN: usize = 128;

/// The window the server compresses with when the client sets no bound.
const SERVER_WINDOW: u8 = 12;

/// What every message ends with after a sync flush, removed on the wire
/// (RFC 7692 §7.2.1) and put back to inflate.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// An accepted offer: how both sides compress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreement {
    /// The server resets its compressor after each message (the client
    /// asked: `server_no_context_takeover`).
    pub server_no_context: bool,
    /// The client resets its compressor after each message, so the
    /// server's inflater must too (`client_no_context_takeover`).
    pub client_no_context: bool,
    /// The `server_max_window_bits` the client asked for, answered in the
    /// `101` as RFC 7692 §7.1.2.1 requires.
    pub server_max_window: Option<u8>,
}

/// One offer's parameters; `None` when the offer cannot be accepted
/// (unknown or repeated parameter, bad value, a window zlib cannot use).
fn parse_offer(offer: &str) -> Option<Agreement> {
    let mut parts = offer.split(';').map(str::trim);
    if !parts.next()?.eq_ignore_ascii_case(NAME) {
        return None;
    }
    let mut agreed = Agreement {
        server_no_context: false,
        client_no_context: false,
        server_max_window: None,
    };
    let mut seen: Vec<String> = Vec::new();
    for param in parts {
        let (name, value) = match param.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (param, None),
        };
        let name = name.to_ascii_lowercase();
        if seen.contains(&name) {
            return None;
        }
        let bits = |v: Option<&str>| -> Option<Option<u8>> {
            match v {
                None => Some(None),
                Some(v) if v.len() <= 2 && v.bytes().all(|b| b.is_ascii_digit()) => {
                    let n: u8 = v.parse().ok()?;
                    (8..=15).contains(&n).then_some(Some(n))
                }
                Some(_) => None,
            }
        };
        match name.as_str() {
            "server_no_context_takeover" if value.is_none() => agreed.server_no_context = true,
            "client_no_context_takeover" if value.is_none() => agreed.client_no_context = true,
            "server_max_window_bits" => match bits(value)? {
                // zlib cannot compress with a 256-byte window: decline.
                Some(8) | None => return None,
                Some(n) => agreed.server_max_window = Some(n),
            },
            // The client may be told to use a smaller window; the server
            // inflates any, so it never does.
            "client_max_window_bits" => {
                bits(value)?;
            }
            _ => return None,
        }
        seen.push(name);
    }
    Some(agreed)
}

impl Agreement {
    /// The first of the client's `Sec-WebSocket-Extensions` elements (in
    /// its order of preference) that offers permessage-deflate with
    /// parameters the server can honour.
    pub fn negotiate<S: AsRef<str>>(offers: &[S]) -> Option<Agreement> {
        offers.iter().find_map(|o| parse_offer(o.as_ref()))
    }

    /// The `Sec-WebSocket-Extensions` value of the `101`.
    pub fn response_value(&self) -> String {
        let mut v = NAME.to_owned();
        if self.server_no_context {
            v.push_str("; server_no_context_takeover");
        }
        if self.client_no_context {
            v.push_str("; client_no_context_takeover");
        }
        if let Some(n) = self.server_max_window {
            v.push_str(&format!("; server_max_window_bits={n}"));
        }
        v
    }

    pub fn deflater(&self) -> Deflater {
        let bits = self.server_max_window.unwrap_or(15).min(SERVER_WINDOW);
        Deflater {
            c: Compress::new_with_window_bits(Compression::fast(), false, bits),
            reset: self.server_no_context,
        }
    }

    pub fn inflater(&self) -> Inflater {
        Inflater {
            d: Decompress::new_with_window_bits(false, 15),
            reset: self.client_no_context,
        }
    }
}

/// The server's side: compresses the messages it sends.
#[derive(Debug)]
pub struct Deflater {
    c: Compress,
    reset: bool,
}

impl Deflater {
    /// One message's payload, compressed and without its sync-flush tail.
    /// When that is no smaller than the payload, send the payload as it is
    /// instead, and [`Deflater::forget`].
    pub fn compress(&mut self, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(payload.len() / 2 + 64);
        let start = self.c.total_in();
        loop {
            let used = (self.c.total_in() - start) as usize;
            // Flushed once, at the end: a flush per call would cut blocks
            // short and grow the output.
            let flush = if used < payload.len() {
                FlushCompress::None
            } else {
                FlushCompress::Sync
            };
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(64));
            }
            self.c
                .compress_vec(&payload[used..], &mut out, flush)
                .expect("deflate into memory cannot fail");
            // Flushed once all input is taken and output room is left over.
            let all_in = (self.c.total_in() - start) as usize == payload.len();
            if all_in && flush == FlushCompress::Sync && out.len() < out.capacity() {
                break;
            }
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if self.reset {
            self.c.reset();
        }
        out
    }

    /// The last compressed message was not sent as such: start a fresh
    /// stream, whose matches never reach back into what the client's
    /// inflater did not see. (Valid for the client: a new stream's blocks
    /// follow the last flush's byte boundary.)
    pub fn forget(&mut self) {
        self.c.reset();
    }
}

/// The client's messages, inflated.
#[derive(Debug)]
pub struct Inflater {
    d: Decompress,
    reset: bool,
}

fn bad_data() -> Failure {
    Failure {
        code: CLOSE_INVALID_PAYLOAD,
        reason: "invalid compressed data",
    }
}

impl Inflater {
    /// A compressed message's payload inflated, refused past `max` bytes
    /// (0: no limit) as soon as the output passes it: a small message that
    /// inflates to gigabytes costs no more than `max`.
    pub fn inflate(&mut self, payload: &[u8], max: usize) -> Result<Vec<u8>, Failure> {
        let limit = if max == 0 { usize::MAX } else { max };
        let mut out: Vec<u8> = Vec::with_capacity(payload.len().saturating_mul(3).min(limit) + 1);
        let mut ended = false;
        for input in [payload, &TAIL[..]] {
            let start = self.d.total_in();
            loop {
                let used = (self.d.total_in() - start) as usize;
                if out.len() == out.capacity() {
                    // Grow by doubling, up to one byte past the limit.
                    let room = out
                        .capacity()
                        .max(1024)
                        .min((limit - out.len()).saturating_add(1));
                    if room == 0 || out.len() > limit {
                        return Err(too_big());
                    }
                    out.reserve_exact(room);
                }
                let status = self
                    .d
                    .decompress_vec(&input[used..], &mut out, FlushDecompress::Sync)
                    .map_err(|_| bad_data())?;
                if out.len() > limit {
                    return Err(too_big());
                }
                if status == Status::StreamEnd {
                    // A final block (BFINAL): the stream is over, and the
                    // tail is not part of it.
                    ended = true;
                    break;
                }
                let done = (self.d.total_in() - start) as usize == input.len();
                if done && out.len() < out.capacity() {
                    break;
                }
                if status == Status::BufError && out.len() < out.capacity() {
                    // No progress possible with room to spare: the input
                    // is all taken and nothing more comes out.
                    break;
                }
            }
            if ended {
                break;
            }
        }
        if self.reset || ended {
            self.d.reset(false);
        }
        Ok(out)
    }
}

fn too_big() -> Failure {
    Failure {
        code: CLOSE_TOO_BIG,
        reason: "message too big",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agree(offer: &str) -> Option<Agreement> {
        Agreement::negotiate(&[offer])
    }

    #[test]
    fn offers_browsers_and_libraries_send_are_accepted() {
        let plain = Agreement {
            server_no_context: false,
            client_no_context: false,
            server_max_window: None,
        };
        assert_eq!(agree("permessage-deflate"), Some(plain));
        assert_eq!(
            agree("permessage-deflate; client_max_window_bits"),
            Some(plain)
        );
        assert_eq!(
            agree("Permessage-Deflate;client_max_window_bits=10"),
            Some(plain)
        );
        let a = agree(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=\"10\"",
        )
        .unwrap();
        assert!(a.server_no_context && a.client_no_context);
        assert_eq!(a.server_max_window, Some(10));
        assert_eq!(
            a.response_value(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10"
        );
        assert_eq!(plain.response_value(), "permessage-deflate");
    }

    #[test]
    fn offers_that_cannot_be_honoured_are_declined_for_the_next() {
        for bad in [
            "permessage-deflate; server_max_window_bits=8",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; client_max_window_bits=010",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; mystery",
            "x-webkit-deflate-frame",
        ] {
            assert_eq!(agree(bad), None, "{bad}");
        }
        let a = Agreement::negotiate(&[
            "permessage-deflate; server_max_window_bits=8",
            "permessage-deflate; client_no_context_takeover",
        ])
        .unwrap();
        assert!(a.client_no_context, "the second offer");
    }

    /// RFC 7692 §7.2.3.1: "Hello" as one compressed message.
    #[test]
    fn rfc7692_hello() {
        let mut inf = agree("permessage-deflate").unwrap().inflater();
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(inf.inflate(&hello, 0).unwrap(), b"Hello");
        // §7.2.3.2: the same message again, with the context taken over.
        let again = [0xf2, 0x00, 0x11, 0x00, 0x00];
        assert_eq!(inf.inflate(&again, 0).unwrap(), b"Hello");
    }

    #[test]
    fn messages_round_trip_with_and_without_context_takeover() {
        for offer in [
            "permessage-deflate",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_max_window_bits=9",
        ] {
            let a = agree(offer).unwrap();
            let (mut def, mut inf) = (a.deflater(), a.inflater());
            let mut sizes = Vec::new();
            for i in 0..5 {
                let msg = format!(
                    "{{\"event\": \"tick\", \"n\": {i}, \"pad\": \"{}\"}}",
                    "ab".repeat(2000)
                );
                let wire = def.compress(msg.as_bytes());
                assert!(!wire.ends_with(&TAIL), "{offer}");
                sizes.push(wire.len());
                assert_eq!(inf.inflate(&wire, 0).unwrap(), msg.as_bytes(), "{offer}");
            }
            assert!(sizes[0] < 200, "{offer}: compressed {sizes:?}");
        }
        // Taken over, a repeated message costs a few bytes.
        let a = agree("permessage-deflate").unwrap();
        let mut def = a.deflater();
        let msg = vec![b'x'; 1000];
        let first = def.compress(&msg).len();
        assert!(def.compress(&msg).len() <= first, "context taken over");
    }

    /// Incompressible data is sent as it is, and what follows still
    /// inflates after the compressor forgets it.
    #[test]
    fn incompressible_messages_go_plain_and_the_stream_goes_on() {
        let a = agree("permessage-deflate").unwrap();
        let (mut def, mut inf) = (a.deflater(), a.inflater());
        let text = "the same words again and again ".repeat(100);
        assert_eq!(
            inf.inflate(&def.compress(text.as_bytes()), 0).unwrap(),
            text.as_bytes()
        );
        // Pseudo-random bytes: their deflate output is no smaller.
        let mut x = 0x2545_f491_u32;
        let noise: Vec<u8> = (0..100_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        assert!(def.compress(&noise).len() >= noise.len());
        def.forget();
        let wire = def.compress(text.as_bytes());
        assert!(wire.len() < text.len() / 4);
        assert_eq!(inf.inflate(&wire, 0).unwrap(), text.as_bytes());
    }

    #[test]
    fn a_bomb_is_refused_at_the_limit_and_garbage_is_invalid() {
        let a = agree("permessage-deflate").unwrap();
        let wire = a.deflater().compress(&vec![0u8; 4 << 20]);
        assert!(wire.len() < 64 << 10);
        let e = a.inflater().inflate(&wire, 1 << 20).unwrap_err();
        assert_eq!(e.code, CLOSE_TOO_BIG);
        assert_eq!(a.inflater().inflate(&wire, 4 << 20).unwrap().len(), 4 << 20);
        let e = a
            .inflater()
            .inflate(&[0xff, 0xff, 0xff, 0xff, 0xff], 0)
            .unwrap_err();
        assert_eq!(e.code, CLOSE_INVALID_PAYLOAD);
    }

    #[test]
    fn a_final_block_ends_the_stream_and_the_next_message_starts_fresh() {
        // "Hello" with BFINAL set (a raw deflate stream of its own).
        let mut c = Compress::new(Compression::default(), false);
        let mut wire = Vec::with_capacity(64);
        c.compress_vec(b"Hello", &mut wire, FlushCompress::Finish)
            .unwrap();
        let mut inf = agree("permessage-deflate").unwrap().inflater();
        assert_eq!(inf.inflate(&wire, 0).unwrap(), b"Hello");
        assert_eq!(inf.inflate(&wire, 0).unwrap(), b"Hello");
    }
}
