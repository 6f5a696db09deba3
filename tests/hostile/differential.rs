//! Differential framing check: the same raw requests through corral's
//! parser (head, then Content-Length or chunked framing, as the worker does)
//! and through Python's h11. A disagreement on where the first request ends
//! or how long its body is fails the test; one side refusing what the other
//! accepts is listed (docs/security.md keeps the list).

use std::io::Write;
use std::process::{Command, Stdio};

use corral::http::{parse_head, BodyKind, ChunkedDecoder, Limits, Parsed};

use crate::harness::venv_python;
use crate::smuggling::SMUGGLING;
use crate::vectors::VECTORS;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Ok { consumed: usize, body: u64 },
    Incomplete,
    Error(String),
}

/// Where corral's worker would end the first request in `raw`.
fn corral_frame(raw: &[u8]) -> Verdict {
    let limits = Limits::default();
    let (head, used) = match parse_head(raw, &limits) {
        Ok(Parsed::Complete(h, n)) => (h, n),
        Ok(Parsed::Partial) => return Verdict::Incomplete,
        Err(e) => return Verdict::Error(e.to_string()),
    };
    let rest = &raw[used..];
    match head.body {
        BodyKind::None => Verdict::Ok {
            consumed: used,
            body: 0,
        },
        BodyKind::Length(n) => {
            if rest.len() as u64 >= n {
                Verdict::Ok {
                    consumed: used + n as usize,
                    body: n,
                }
            } else {
                Verdict::Incomplete
            }
        }
        BodyKind::Chunked => {
            let mut dec = ChunkedDecoder::new();
            let mut out = Vec::new();
            match dec.feed(rest, &mut out) {
                Ok((c, true)) => Verdict::Ok {
                    consumed: used + c,
                    body: out.len() as u64,
                },
                Ok((_, false)) => Verdict::Incomplete,
                Err(e) => Verdict::Error(e.to_string()),
            }
        }
    }
}

fn h11_frame(raws: &[&[u8]]) -> Vec<Verdict> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hostile/h11_frame.py");
    let mut child = Command::new(venv_python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run the venv's python");
    let mut input = String::new();
    for r in raws {
        for b in *r {
            input.push_str(&format!("{b:02x}"));
        }
        input.push('\n');
    }
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().expect("h11 script");
    assert!(out.status.success(), "h11 script failed: {}", out.status);
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .map(|l| {
            let field = |k: &str| -> Option<String> {
                let at = l.find(&format!("\"{k}\": "))? + k.len() + 4;
                let rest = &l[at..];
                if let Some(s) = rest.strip_prefix('"') {
                    Some(s[..s.find('"').unwrap_or(s.len())].to_string())
                } else {
                    Some(rest.split([',', '}']).next()?.trim().to_string())
                }
            };
            match field("v").as_deref() {
                Some("ok") => Verdict::Ok {
                    consumed: field("consumed").unwrap().parse().unwrap(),
                    body: field("body").unwrap().parse().unwrap(),
                },
                Some("incomplete") => Verdict::Incomplete,
                _ => Verdict::Error(field("why").unwrap_or_default()),
            }
        })
        .collect()
}

#[test]
fn message_boundaries_agree_with_h11() {
    let mut cases: Vec<(String, &[u8])> = VECTORS
        .iter()
        .map(|v| (format!("vector {}", v.name), v.raw))
        .collect();
    cases.extend(
        SMUGGLING
            .iter()
            .map(|s| (format!("smuggle {}", s.name), s.raw)),
    );
    let raws: Vec<&[u8]> = cases.iter().map(|c| c.1).collect();
    let theirs = h11_frame(&raws);
    assert_eq!(theirs.len(), cases.len(), "h11 script answered every case");

    let mut boundary = Vec::new();
    let mut stricter = Vec::new();
    let mut laxer = Vec::new();
    let mut agree = 0;
    for ((name, raw), h) in cases.iter().zip(&theirs) {
        let c = corral_frame(raw);
        match (&c, h) {
            (Verdict::Ok { .. }, Verdict::Ok { .. }) if c == *h => agree += 1,
            (Verdict::Ok { .. }, Verdict::Ok { .. })
            | (Verdict::Ok { .. }, Verdict::Incomplete)
            | (Verdict::Incomplete, Verdict::Ok { .. }) => {
                boundary.push(format!("{name}: corral {c:?}, h11 {h:?}"))
            }
            (Verdict::Error(e), Verdict::Ok { .. } | Verdict::Incomplete) => {
                stricter.push(format!("{name}: corral refuses ({e}); h11 {h:?}"))
            }
            (Verdict::Ok { .. } | Verdict::Incomplete, Verdict::Error(e)) => {
                laxer.push(format!("{name}: h11 refuses ({e}); corral {c:?}"))
            }
            _ => agree += 1,
        }
    }
    let report = format!(
        "{} cases: {agree} agree, {} corral stricter, {} h11 stricter, {} boundary disagreements\n\
         -- corral stricter --\n{}\n-- h11 stricter --\n{}\n-- BOUNDARY --\n{}\n",
        cases.len(),
        stricter.len(),
        laxer.len(),
        boundary.len(),
        stricter.join("\n"),
        laxer.join("\n"),
        boundary.join("\n")
    );
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("differential.txt");
    let _ = std::fs::write(&path, &report);
    eprintln!("{report}(also in {})", path.display());
    assert!(
        boundary.is_empty(),
        "message boundary disagreements:\n{}",
        boundary.join("\n")
    );
    assert!(
        agree > 100,
        "too few agreeing cases ({agree}): is the harness broken?"
    );
}
