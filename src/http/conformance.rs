//! Runs every conformance vector through the parser and body decoders the
//! way a worker would: the whole buffer at once and one byte at a time. For
//! served vectors it also derives the environ fields the WSGI layer will
//! build (percent-decoded latin-1 PATH_INFO, `HTTP_*` keys joined with `,`)
//! so that a wrong expectation in the vectors fails here first.

use super::vectors::{Env, Expect, Vector, VECTORS};
use super::{parse_head, BodyKind, ChunkedDecoder, HttpError, Limits, Parsed, RequestHead};

#[derive(Debug)]
enum Outcome {
    Served(Box<RequestHead>, Vec<u8>),
    Refused(u16),
    Closed,
}

/// Feed `raw` in slices of `step` bytes (0 = all at once), then EOF.
fn run(raw: &[u8], step: usize) -> Outcome {
    let limits = Limits::default();
    let step = if step == 0 { raw.len().max(1) } else { step };
    let fail = |e: HttpError| match e.status() {
        Some(s) => Outcome::Refused(s),
        None => Outcome::Closed,
    };
    let mut end = 0;
    let (head, used) = loop {
        end = (end + step).min(raw.len());
        match parse_head(&raw[..end], &limits) {
            Err(e) => return fail(e),
            Ok(Parsed::Complete(h, n)) => break (h, n),
            Ok(Parsed::Partial) if end == raw.len() => return Outcome::Closed,
            Ok(Parsed::Partial) => {}
        }
    };
    let rest = &raw[used..];
    let (body, leftover) = match head.body {
        BodyKind::None => (Vec::new(), rest),
        BodyKind::Length(n) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if rest.len() < n {
                return Outcome::Closed;
            }
            (rest[..n].to_vec(), &rest[n..])
        }
        BodyKind::Chunked => {
            let mut dec = ChunkedDecoder::new();
            let mut out = Vec::new();
            let mut pos = 0;
            loop {
                if pos == rest.len() {
                    return Outcome::Closed;
                }
                let to = (pos + step).min(rest.len());
                match dec.feed(&rest[pos..to], &mut out) {
                    Err(e) => return fail(e),
                    Ok((n, true)) => break (out, &rest[pos + n..]),
                    Ok((n, false)) => {
                        assert_eq!(n, to - pos, "an unfinished decoder consumes everything");
                        pos = to;
                    }
                }
            }
        }
    };
    assert!(
        leftover.is_empty(),
        "vector is not exactly one request: {} bytes left over",
        leftover.len()
    );
    Outcome::Served(Box::new(head), body)
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Percent-decoding as Python's `unquote_to_bytes`: malformed escapes stay.
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let hex = |c: u8| char::from(c).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// The environ value of a key as the WSGI layer will build it.
fn environ(head: &RequestHead, key: &str) -> Option<String> {
    let special = match key {
        "CONTENT_TYPE" => Some("content-type"),
        "CONTENT_LENGTH" => Some("content-length"),
        _ => None,
    };
    let values: Vec<String> = head
        .headers
        .iter()
        .filter(|h| match special {
            Some(name) => h.name.eq_ignore_ascii_case(name),
            None => {
                let lower = h.name.to_ascii_lowercase();
                lower != "content-type"
                    && lower != "content-length"
                    && format!("HTTP_{}", h.name.to_ascii_uppercase().replace('-', "_")) == key
            }
        })
        .map(|h| latin1(&h.value))
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

fn check_env(v: &Vector, env: &Env, head: &RequestHead, body: &[u8]) {
    let name = v.name;
    assert_eq!(head.method, env.method, "{name}: method");
    assert_eq!(head.target, env.raw_uri, "{name}: RAW_URI");
    assert_eq!(head.query, env.query, "{name}: QUERY_STRING");
    assert_eq!(
        head.version.as_str(),
        env.protocol,
        "{name}: SERVER_PROTOCOL"
    );
    assert_eq!(body, env.body, "{name}: body");
    assert_eq!(
        latin1(&percent_decode(&head.path)),
        env.path_info,
        "{name}: PATH_INFO"
    );
    // The raw path is the target's own text: a prefix of it (origin-form),
    // the part after the authority (absolute-form), or the special forms.
    assert!(
        head.target.contains(head.path.as_str()) || head.path == "/" || head.path.is_empty(),
        "{name}: path {:?} not taken from target {:?}",
        head.path,
        head.target
    );
    for (key, want) in env.headers {
        assert_eq!(environ(head, key).as_deref(), Some(*want), "{name}: {key}");
    }
    for key in env.absent {
        assert_eq!(environ(head, key), None, "{name}: {key} must be absent");
    }
    if let Some(want) = env.content_length {
        assert_eq!(
            environ(head, "CONTENT_LENGTH").as_deref(),
            Some(want),
            "{name}"
        );
    }
    if let Some(want) = env.content_type {
        assert_eq!(
            environ(head, "CONTENT_TYPE").as_deref(),
            Some(want),
            "{name}"
        );
    }
}

#[test]
fn there_are_enough_vectors_with_unique_names() {
    assert!(VECTORS.len() >= 120, "only {} vectors", VECTORS.len());
    let mut names: Vec<&str> = VECTORS.iter().map(|v| v.name).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "duplicate vector names");
}

#[test]
fn every_vector_whole_and_byte_by_byte() {
    let mut failures = Vec::new();
    for v in VECTORS {
        for step in [0, 1, 7] {
            let got = run(v.raw, step);
            let ok = match (&v.expect, &got) {
                (Expect::Ok(env), Outcome::Served(head, body)) => {
                    check_env(v, env, head, body);
                    true
                }
                (Expect::Status(want), Outcome::Refused(s)) => want == s,
                (Expect::Close, Outcome::Closed) => true,
                _ => false,
            };
            if !ok {
                failures.push(format!(
                    "{} (step {step}): expected {:?}, got {got:?}",
                    v.name, v.expect
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn served_vectors_pipeline() {
    let served: Vec<&Vector> = VECTORS
        .iter()
        .filter(|v| matches!(v.expect, Expect::Ok(_)))
        .collect();
    let mut stream = Vec::new();
    for v in &served {
        stream.extend_from_slice(v.raw);
    }
    let limits = Limits::default();
    let mut pos = 0;
    for v in &served {
        let (head, used) = match parse_head(&stream[pos..], &limits) {
            Ok(Parsed::Complete(h, n)) => (h, n),
            other => panic!("{}: {other:?}", v.name),
        };
        pos += used;
        match head.body {
            BodyKind::None => {}
            BodyKind::Length(n) => pos += n as usize,
            BodyKind::Chunked => {
                let (n, done) = ChunkedDecoder::new()
                    .feed(&stream[pos..], &mut Vec::new())
                    .unwrap();
                assert!(done, "{}", v.name);
                pos += n;
            }
        }
        let Expect::Ok(env) = v.expect else {
            unreachable!()
        };
        assert_eq!(
            head.target, env.raw_uri,
            "{}: pipelined out of step",
            v.name
        );
    }
    assert_eq!(pos, stream.len());
}

#[test]
fn percent_decode_matches_python() {
    assert_eq!(percent_decode("%41%zz%4"), b"A%zz%4");
    assert_eq!(percent_decode("a%2fb%"), b"a/b%");
    assert_eq!(percent_decode("%C3%A9"), b"\xc3\xa9");
}
