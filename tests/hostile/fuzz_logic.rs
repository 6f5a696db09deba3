//! The properties the fuzz targets check, shared by the cargo-fuzz package
//! (`tests/fuzz`, which includes this file by path) and the corpus replay in
//! `tests/hostile.rs`, so a crash input found by the fuzzer fails plain
//! `cargo test` too.
//!
//! Each function panics when a property breaks; a panic is the finding.
//!
//! * [`head`]: `parse_head` never panics, every complete head respects the
//!   configured `Limits`, and the answer does not depend on how much of the
//!   head has arrived (a prefix of a head that parses is never refused).
//! * [`chunked`]: `ChunkedDecoder` gives the same bytes, the same consumed
//!   count and the same error however the input is sliced, and never
//!   produces more than it was given.
//! * [`connection`]: the worker's connection state machine (head, then body,
//!   then the next pipelined head) driven over arbitrary splits of the input
//!   produces the same sequence of requests and errors as with the input in
//!   one piece, and never buffers more than the head cap while waiting for a
//!   head.

#![allow(dead_code)]

use corral::http::{parse_head, BodyKind, ChunkedDecoder, HeaderMap, HttpError, Limits, Parsed};

/// Limits picked by one selector byte, so the fuzzer explores the
/// permissive switches and small caps as well as the defaults.
pub fn limits_for(sel: u8) -> Limits {
    let mut l = Limits::default();
    if sel & 0x80 == 0 {
        return l; // half the inputs run with gunicorn's defaults
    }
    if sel & 0x01 != 0 {
        l.request_line = 64;
    }
    if sel & 0x02 != 0 {
        l.fields = 4;
    }
    if sel & 0x04 != 0 {
        l.field_size = 48;
    }
    l.permit_obsolete_folding = sel & 0x08 != 0;
    l.strip_header_spaces = sel & 0x10 != 0;
    l.header_map = match (sel >> 5) & 0x03 {
        0 => HeaderMap::Drop,
        1 => HeaderMap::Refuse,
        _ => HeaderMap::Dangerous,
    };
    l
}

/// Splits `data` into (selector, rest), selector 0 when empty.
fn split_sel(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((&s, rest)) => (s, rest),
        None => (0, data),
    }
}

/// Fuzz target 1: the request head parser. Input: selector byte, then raw
/// bytes as a client would send them.
pub fn head(data: &[u8]) {
    let (sel, buf) = split_sel(data);
    let limits = limits_for(sel);
    let whole = parse_head(buf, &limits);
    match &whole {
        Ok(Parsed::Complete(head, used)) => {
            let used = *used;
            assert!(used <= buf.len(), "consumed past the input");
            assert!(used <= limits.head_cap(), "complete head above head_cap");
            assert!(head.target.len() <= limits.effective_request_line());
            assert!(head.headers.len() <= limits.effective_fields());
            for h in &head.headers {
                assert!(
                    h.name.len() + h.value.len() < limits.effective_field_size(),
                    "header field longer than field_size"
                );
                assert!(!h.value.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n'));
            }
            assert!(matches!(head.method.len(), 1..=8190));
            // The same head alone parses to the same length (nothing after
            // the blank line influences it).
            match parse_head(&buf[..used], &limits) {
                Ok(Parsed::Complete(_, n)) => {
                    assert_eq!(n, used, "head length depends on what follows")
                }
                other => panic!("head alone parses differently: {other:?}"),
            }
            // Every prefix of an accepted head is "need more", never an
            // error: a client sending slowly must get the same answer.
            // (Checking all prefixes is quadratic; take a spread of them.)
            let step = (used / 64).max(1);
            let mut k = 0;
            while k < used {
                match parse_head(&buf[..k], &limits) {
                    Ok(Parsed::Partial) => {}
                    other => {
                        panic!("prefix of {k}/{used} bytes of an accepted head gave {other:?}")
                    }
                }
                k += step;
            }
            match parse_head(&buf[..used - 1], &limits) {
                Ok(Parsed::Partial) => {}
                other => panic!("head minus its last byte gave {other:?}"),
            }
            match head.body {
                BodyKind::Chunked => assert_eq!(head.version, corral::http::Version::Http11),
                BodyKind::Length(_) | BodyKind::None => {}
            }
        }
        Ok(Parsed::Partial) => {
            // Waiting for more must stay within the cap: this is what
            // bounds a connection's buffer while a head trickles in.
            assert!(
                buf.len() <= limits.head_cap(),
                "Partial with {} bytes buffered, cap {}",
                buf.len(),
                limits.head_cap()
            );
        }
        Err(e) => {
            // Every refusal maps to a response or a silent close; a
            // complete-head parser never says Truncated itself.
            assert!(e.status().is_some(), "parse_head returned {e:?}");
            // Once refused, more bytes never make it acceptable.
            let mut longer = buf.to_vec();
            longer.extend_from_slice(b"\r\n\r\n");
            if let Ok(p) = parse_head(&longer, &limits) {
                panic!("refused ({e}) but accepted with more bytes: {p:?}");
            }
        }
    }
}

/// Cut points derived from `seed`: a reproducible pseudo-random slicing.
fn cuts(len: usize, seed: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    if len == 0 {
        return out;
    }
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for &b in seed {
        x = (x ^ u64::from(b)).wrapping_mul(0x1000_0000_01b3);
    }
    let mut pos = 0usize;
    while pos < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Mostly tiny pieces (byte-at-a-time is the hostile case), some big.
        let piece = match x % 8 {
            0..=3 => 1 + (x >> 8) as usize % 3,
            4..=6 => 1 + (x >> 8) as usize % 64,
            _ => 1 + (x >> 8) as usize % 4096,
        };
        pos = (pos + piece).min(len);
        out.push(pos);
    }
    out
}

/// Outcome of decoding a chunked body, comparable across slicings.
#[derive(Debug, PartialEq, Eq)]
struct Decoded {
    out: Vec<u8>,
    consumed: usize,
    done: bool,
    err: Option<HttpError>,
}

fn decode_in_pieces(input: &[u8], cut_at: &[usize]) -> Decoded {
    let mut dec = ChunkedDecoder::new();
    let mut out = Vec::new();
    let mut consumed = 0usize;
    let mut start = 0usize;
    for &end in cut_at.iter().chain(std::iter::once(&input.len())) {
        if end <= start {
            continue;
        }
        // The event loop hands the decoder everything not yet consumed.
        let before = out.len();
        match dec.feed(&input[consumed..end], &mut out) {
            Ok((used, done)) => {
                assert!(used <= end - consumed, "consumed more than given");
                assert!(out.len() - before <= used, "produced more than consumed");
                consumed += used;
                if done {
                    assert!(dec.is_done());
                    return Decoded {
                        out,
                        consumed,
                        done,
                        err: None,
                    };
                }
                assert_eq!(consumed, end, "not done, yet left input unconsumed");
            }
            Err(e) => {
                return Decoded {
                    out: Vec::new(),
                    consumed: 0,
                    done: false,
                    err: Some(e),
                }
            }
        }
        start = end;
    }
    assert_eq!(dec.decoded(), out.len() as u64);
    Decoded {
        out,
        consumed,
        done: false,
        err: None,
    }
}

/// Fuzz target 2: the chunked decoder. Input: 4 seed bytes for the slicing,
/// then the body bytes.
pub fn chunked(data: &[u8]) {
    let (seed, input) = data.split_at(data.len().min(4));
    let whole = decode_in_pieces(input, &[]);
    let sliced = decode_in_pieces(input, &cuts(input.len(), seed));
    assert_eq!(whole, sliced, "chunked decoding depends on slicing");
    let bytewise: Vec<usize> = (1..input.len()).collect();
    if input.len() <= 4096 {
        assert_eq!(
            whole,
            decode_in_pieces(input, &bytewise),
            "byte-at-a-time differs"
        );
    }
    if let Some(e) = &whole.err {
        assert!(
            e.status().is_some(),
            "decoder error without a status: {e:?}"
        );
    }
}

/// What the connection state machine did, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A complete request would be dispatched: method, target, body length
    /// and a checksum of the body.
    Request {
        method: String,
        target: String,
        body_len: u64,
        body_sum: u64,
    },
    /// Refused with this status (then the connection closes).
    Refused(u16),
    /// Closed silently (truncated request at EOF).
    Closed,
}

enum St {
    Head,
    Length {
        head: (String, String),
        keep: bool,
        left: u64,
        len: u64,
        sum: u64,
    },
    Chunked {
        head: (String, String),
        keep: bool,
        dec: ChunkedDecoder,
        len: u64,
        sum: u64,
    },
}

fn add_sum(sum: &mut u64, data: &[u8]) {
    for &b in data {
        *sum = sum.wrapping_mul(31).wrapping_add(u64::from(b));
    }
}

/// Drive head parsing and body framing over `input` delivered in pieces
/// ending at `cut_at`, as `worker/event_loop.rs` does: the read buffer holds
/// unconsumed bytes, the head is re-parsed from the start of the pending
/// input after each read, bodies are decoded from what follows the head,
/// pipelined requests are parsed after the previous one completes, and the
/// connection ends at a refusal, a non-keep-alive request, or EOF.
pub fn run_connection(input: &[u8], cut_at: &[usize], limits: &Limits) -> Vec<Event> {
    let mut events = Vec::new();
    let mut rbuf: Vec<u8> = Vec::new();
    let mut rpos = 0usize;
    let mut st = St::Head;
    let mut delivered = 0usize;
    let ends: Vec<usize> = cut_at
        .iter()
        .copied()
        .chain(std::iter::once(input.len()))
        .collect();
    for (i, &end) in ends.iter().enumerate() {
        if end < delivered {
            continue;
        }
        rbuf.extend_from_slice(&input[delivered..end]);
        delivered = end;
        let eof = i + 1 == ends.len();
        // advance(): loop while progress can be made.
        loop {
            match &mut st {
                St::Head => {
                    let pending = &rbuf[rpos..];
                    if pending.is_empty() {
                        if eof {
                            return events; // clean close between requests
                        }
                        break;
                    }
                    match parse_head(pending, limits) {
                        Ok(Parsed::Partial) => {
                            assert!(
                                pending.len() <= limits.head_cap(),
                                "waiting for a head with {} bytes buffered (cap {})",
                                pending.len(),
                                limits.head_cap()
                            );
                            if eof {
                                events.push(Event::Closed);
                                return events;
                            }
                            break;
                        }
                        Ok(Parsed::Complete(head, used)) => {
                            rpos += used;
                            let id = (head.method.to_string(), head.target.clone());
                            // Without keep-alive the connection closes after
                            // this response: nothing after it is parsed.
                            let keep = head.keep_alive;
                            st = match head.body {
                                BodyKind::None | BodyKind::Length(0) => {
                                    events.push(Event::Request {
                                        method: id.0,
                                        target: id.1,
                                        body_len: 0,
                                        body_sum: 0,
                                    });
                                    if !keep {
                                        return events;
                                    }
                                    St::Head
                                }
                                BodyKind::Length(n) => St::Length {
                                    head: id,
                                    keep,
                                    left: n,
                                    len: 0,
                                    sum: 0,
                                },
                                BodyKind::Chunked => St::Chunked {
                                    head: id,
                                    keep,
                                    dec: ChunkedDecoder::new(),
                                    len: 0,
                                    sum: 0,
                                },
                            };
                        }
                        Err(e) => {
                            events.push(Event::Refused(
                                e.status().expect("parse_head never says Truncated"),
                            ));
                            return events;
                        }
                    }
                }
                St::Length {
                    head,
                    keep,
                    left,
                    len,
                    sum,
                } => {
                    let pending = &rbuf[rpos..];
                    let n = (*left).min(pending.len() as u64) as usize;
                    add_sum(sum, &pending[..n]);
                    *len += n as u64;
                    *left -= n as u64;
                    rpos += n;
                    if *left == 0 {
                        events.push(Event::Request {
                            method: head.0.clone(),
                            target: head.1.clone(),
                            body_len: *len,
                            body_sum: *sum,
                        });
                        if !*keep {
                            return events;
                        }
                        st = St::Head;
                        continue;
                    }
                    if eof {
                        events.push(Event::Closed);
                        return events;
                    }
                    break;
                }
                St::Chunked {
                    head,
                    keep,
                    dec,
                    len,
                    sum,
                } => {
                    let mut out = Vec::new();
                    match dec.feed(&rbuf[rpos..], &mut out) {
                        Ok((used, done)) => {
                            rpos += used;
                            add_sum(sum, &out);
                            *len += out.len() as u64;
                            if done {
                                events.push(Event::Request {
                                    method: head.0.clone(),
                                    target: head.1.clone(),
                                    body_len: *len,
                                    body_sum: *sum,
                                });
                                if !*keep {
                                    return events;
                                }
                                st = St::Head;
                                continue;
                            }
                            if eof {
                                events.push(Event::Closed);
                                return events;
                            }
                            break;
                        }
                        Err(e) => {
                            match e.status() {
                                Some(s) => events.push(Event::Refused(s)),
                                None => events.push(Event::Closed),
                            }
                            return events;
                        }
                    }
                }
            }
        }
        // Like the worker's dispatch(): drop consumed bytes so the buffer
        // holds only what is pending.
        rbuf.drain(..rpos);
        rpos = 0;
    }
    events
}

/// Fuzz target 3: the connection state machine. Input: selector byte for
/// the limits, 4 seed bytes for the slicing, then the client's bytes.
pub fn connection(data: &[u8]) {
    let (sel, rest) = split_sel(data);
    let limits = limits_for(sel);
    let (seed, input) = rest.split_at(rest.len().min(4));
    let whole = run_connection(input, &[], &limits);
    let sliced = run_connection(input, &cuts(input.len(), seed), &limits);
    // A head with two faults (say a NUL inside a line that is also too
    // long) is refused for whichever fault arrives first, so the status of
    // a refusal may depend on slicing; that it is refused, and everything
    // before it, may not.
    let norm = |ev: &[Event]| -> Vec<String> {
        ev.iter()
            .map(|e| match e {
                Event::Refused(_) => "refused".to_string(),
                other => format!("{other:?}"),
            })
            .collect()
    };
    if norm(&whole) != norm(&sliced) {
        panic!(
            "connection outcome depends on how the bytes arrive:\n whole:  {}\n sliced: {}",
            summary(&whole),
            summary(&sliced)
        );
    }
    let consumed_requests = whole
        .iter()
        .filter(|e| matches!(e, Event::Request { .. }))
        .count();
    assert!(
        consumed_requests <= input.len() / 16 + 1,
        "more requests than bytes allow"
    );
}

/// Events with long targets shortened, for readable failure messages.
fn summary(events: &[Event]) -> String {
    let parts: Vec<String> = events
        .iter()
        .map(|e| match e {
            Event::Request {
                method,
                target,
                body_len,
                ..
            } => {
                let t: String = target.chars().take(24).collect();
                format!("{method} {t}({} bytes) body={body_len}", target.len())
            }
            other => format!("{other:?}"),
        })
        .collect();
    parts.join(", ")
}
