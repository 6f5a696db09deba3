//! The property of the `websocket` fuzz target, shared by the cargo-fuzz
//! package (`tests/fuzz`, which includes this file by path) and the corpus
//! replay in `tests/hostile.rs`, as `fuzz_logic.rs` is for
//! the HTTP targets. [`websocket`] panics when:
//!
//! * the messages and the failure differ between feeding the stream whole,
//!   byte by byte, or in pieces chosen by the input;
//! * `decode` claims to have consumed nothing, or more than it was given,
//!   for a message;
//! * a message breaks a rule the decoder enforces (size limit, control
//!   payload of at most 125 bytes, valid close code);
//! * a decoded message, encoded again as a server frame and masked as a
//!   client would, does not decode to the same message.
//!
//! Input: a selector byte, then either raw client bytes (selector bit 0x80
//! clear) or, so that the fuzzer reaches deep states without guessing mask
//! bits, a list of frames `b0, len, payload...` that are masked here.
//! Selector bit 0x04 agrees permessage-deflate, so RSV1 messages are
//! inflated (and the size limit applies to what they inflate to).

#![allow(dead_code)]

use corral::http::deflate::Agreement;
use corral::http::websocket::{
    close_payload, encode, masked, valid_close_code, Decoder, Failure, Message, Opcode,
    MAX_CONTROL_PAYLOAD,
};

/// Limit picked by the selector: none, or small enough to be hit often.
fn max_for(sel: u8) -> usize {
    match sel & 0x03 {
        0 => 0,
        1 => 16,
        2 => 200,
        _ => 70_000,
    }
}

/// Frames described as `b0, len, payload` turned into masked client bytes.
/// A length byte of 254 or 255 stretches the payload into the 16- and
/// 64-bit length forms.
fn frames(mut data: &[u8]) -> Vec<u8> {
    let mut stream = Vec::new();
    while let [b0, len, rest @ ..] = data {
        let n = usize::from(*len).min(rest.len());
        let mut payload = rest[..n].to_vec();
        data = &rest[n..];
        if *len >= 254 && !payload.is_empty() {
            let target = if *len == 254 { 300 } else { 65_540 };
            payload = payload.iter().copied().cycle().take(target).collect();
        }
        let mut frame = Vec::new();
        encode(&mut frame, Opcode::Binary, &payload);
        frame[0] = *b0;
        stream.extend(masked(&frame, [*b0, *len, 0x5a, 0xc3]));
    }
    stream
}

/// Feed `stream` in pieces of the sizes `sizes` yields, following the
/// decode contract; the messages and the failure, if any.
fn run(
    max: usize,
    deflate: bool,
    stream: &[u8],
    sizes: &mut dyn FnMut() -> usize,
) -> (Vec<Message>, Option<Failure>) {
    let mut d = Decoder::new(max);
    if deflate {
        let agreed = Agreement::negotiate(&["permessage-deflate"]).expect("the plain offer");
        d = d.with_inflater(agreed.inflater());
    }
    let mut messages = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        let n = sizes().clamp(1, stream.len() - at);
        let mut pending = &stream[at..at + n];
        at += n;
        loop {
            match d.decode(pending) {
                Ok(Some((m, used))) => {
                    assert!(used > 0 && used <= pending.len(), "consumed {used}");
                    messages.push(m);
                    pending = &pending[used..];
                }
                Ok(None) => break,
                Err(f) => {
                    assert_eq!(d.decode(b"\x81\x80"), Err(f.clone()));
                    return (messages, Some(f));
                }
            }
        }
    }
    (messages, None)
}

fn check_message(max: usize, m: &Message) {
    let (opcode, payload) = match m {
        Message::Text(t) => (Opcode::Text, t.as_bytes().to_vec()),
        Message::Binary(b) => (Opcode::Binary, b.clone()),
        Message::Ping(p) => (Opcode::Ping, p.clone()),
        Message::Pong(p) => (Opcode::Pong, p.clone()),
        Message::Close(None) => (Opcode::Close, Vec::new()),
        Message::Close(Some((code, reason))) => {
            assert!(valid_close_code(*code), "close code {code}");
            let p = close_payload(*code, reason);
            assert_eq!(p.len(), 2 + reason.len(), "reason was cut");
            (Opcode::Close, p)
        }
    };
    if opcode.is_control() {
        assert!(payload.len() <= MAX_CONTROL_PAYLOAD);
    } else if max > 0 {
        assert!(payload.len() <= max, "{} > {max}", payload.len());
    }
    let mut frame = Vec::new();
    encode(&mut frame, opcode, &payload);
    let frame = masked(&frame, [0x11, 0x22, 0x33, 0x44]);
    assert_eq!(
        Decoder::new(max).decode(&frame),
        Ok(Some((m.clone(), frame.len()))),
        "round trip"
    );
}

pub fn websocket(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let max = max_for(sel);
    let built;
    let stream = if sel & 0x80 != 0 {
        built = frames(rest);
        &built[..]
    } else {
        rest
    };

    let deflate = sel & 0x04 != 0;
    let whole = run(max, deflate, stream, &mut || usize::MAX);
    for m in &whole.0 {
        check_message(max, m);
    }
    assert_eq!(run(max, deflate, stream, &mut || 1), whole, "byte by byte");
    let mut seed = u32::from(sel) | 0x100;
    let mut pieces = || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        (seed % 97) as usize + 1
    };
    assert_eq!(run(max, deflate, stream, &mut pieces), whole, "pieces");
}
