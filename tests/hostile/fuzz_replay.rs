//! The fuzz targets' properties as ordinary tests: every file of the
//! committed corpus (seeds and every crash input the fuzzer ever found),
//! every conformance and smuggling vector, and a short seeded mutation run
//! so CI fuzzes a little even where libFuzzer cannot be built.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::smuggling::SMUGGLING;
use crate::vectors::VECTORS;
use crate::{fuzz_logic, fuzz_websocket};

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/corpus")
        .join(target)
}

/// Run `f` on every corpus file of `target`; report all failing files.
fn replay(target: &str, f: fn(&[u8])) -> usize {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut failed = Vec::new();
    for p in &files {
        let data = std::fs::read(p).unwrap();
        if catch_unwind(AssertUnwindSafe(|| f(&data))).is_err() {
            failed.push(p.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: failing corpus inputs: {failed:#?}"
    );
    files.len()
}

#[test]
fn corpus_head() {
    assert!(replay("head", fuzz_logic::head) > 0, "empty corpus");
}

#[test]
fn corpus_chunked() {
    assert!(replay("chunked", fuzz_logic::chunked) > 0, "empty corpus");
}

#[test]
fn corpus_websocket() {
    assert!(
        replay("websocket", fuzz_websocket::websocket) > 0,
        "empty corpus"
    );
}

#[test]
fn corpus_connection() {
    assert!(
        replay("connection", fuzz_logic::connection) > 0,
        "empty corpus"
    );
}

/// Inputs for one target.
type Inputs = Vec<Vec<u8>>;
/// A target's name, property and seeds.
type Target<'a> = (&'static str, fn(&[u8]), &'a Inputs);

/// Seed inputs for each target, derived from the vectors.
fn seeds() -> (Inputs, Inputs, Inputs) {
    let raws: Vec<&[u8]> = VECTORS
        .iter()
        .map(|v| v.raw)
        .chain(SMUGGLING.iter().map(|s| s.raw))
        .collect();
    let mut head = Vec::new();
    let mut chunked = Vec::new();
    let mut conn = Vec::new();
    for (i, raw) in raws.iter().enumerate() {
        for sel in [0u8, 0x80, 0x9f, 0xf8] {
            let mut h = vec![sel];
            h.extend_from_slice(raw);
            head.push(h);
        }
        let mut c = vec![(i as u8) & 0x80, i as u8, 1, 2, 3];
        c.extend_from_slice(raw);
        // Pipelined twice: boundaries between requests get exercised.
        c.extend_from_slice(raw);
        conn.push(c);
        if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let mut b = vec![i as u8, 7, 7, 7];
            b.extend_from_slice(&raw[at + 4..]);
            chunked.push(b);
        }
    }
    for body in [
        &b"0\r\n\r\n"[..],
        b"5\r\nhello\r\n0\r\n\r\n",
        b"1;a=b;c=\"d\\\"e\"\r\nx\r\n0\r\nT: v\r\n\r\n",
        b"FFFFFFFFFFFFFFFF\r\n",
        b"10000000000000000\r\n",
        b"3 ; x\r\nabc\r\n0\r\n\r\n",
    ] {
        let mut b = vec![1, 2, 3, 4];
        b.extend_from_slice(body);
        chunked.push(b);
    }
    (head, chunked, conn)
}

#[test]
fn vectors_through_targets() {
    let (head, chunked, conn) = seeds();
    for h in &head {
        fuzz_logic::head(h);
    }
    for c in &chunked {
        fuzz_logic::chunked(c);
    }
    for c in &conn {
        fuzz_logic::connection(c);
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const INTERESTING: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b"\x00",
    b" ",
    b"\t",
    b":",
    b";",
    b"\"",
    b"0\r\n\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Content-Length: 5\r\n",
    b"Content-Length: 18446744073709551616\r\n",
    b"Connection: close\r\n",
    b"Expect: 100-continue\r\n",
    b"\r\n ",
    b"\xff",
    b"ffffffff",
    b"HTTP/1.0",
];

fn mutate(rng: &mut Rng, base: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let end = (at + 1 + rng.below(8)).min(v.len());
                if at < end {
                    v.drain(at..end);
                }
            }
            2 => {
                let ins = INTERESTING[rng.below(INTERESTING.len())];
                v.splice(at..at, ins.iter().copied());
            }
            3 if !other.is_empty() => {
                let from = rng.below(other.len());
                let len = rng.below(other.len() - from + 1);
                v.splice(at..at, other[from..from + len].iter().copied());
            }
            4 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            _ => {
                let end = (at + rng.below(16)).min(v.len());
                let dup = v[at..end].to_vec();
                v.splice(at..at, dup);
            }
        }
    }
    v.truncate(64 * 1024);
    v
}

/// A bounded mutation run over the seeds: `CORRAL_MUTATE_SECS` seconds
/// per target (default 2), at most 200 000 inputs each. Prints the input
/// that broke a property so it can be added to the corpus.
#[test]
fn seeded_mutation_smoke() {
    let secs: u64 = std::env::var("CORRAL_MUTATE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let (head, chunked, conn) = seeds();
    let targets: [Target<'_>; 3] = [
        ("head", fuzz_logic::head, &head),
        ("chunked", fuzz_logic::chunked, &chunked),
        ("connection", fuzz_logic::connection, &conn),
    ];
    for (name, f, seeds) in targets {
        let mut rng = Rng(0x5eed_0000_0000_0001 ^ name.len() as u64);
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut n = 0u32;
        while Instant::now() < deadline && n < 200_000 {
            let a = &seeds[rng.below(seeds.len())];
            let b = &seeds[rng.below(seeds.len())];
            let input = mutate(&mut rng, a, b);
            if catch_unwind(AssertUnwindSafe(|| f(&input))).is_err() {
                let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
                    .join(format!("mutation-crash-{name}"));
                std::fs::write(&path, &input).unwrap();
                panic!(
                    "{name}: property broken by a mutated input ({} bytes) saved to {}: \
                     add it to tests/fuzz/corpus/{name}/",
                    input.len(),
                    path.display()
                );
            }
            n += 1;
        }
        eprintln!("{name}: {n} mutated inputs");
    }
}

/// `CORRAL_WRITE_SEEDS=1 cargo test --test hostile write_seed_corpus`
/// regenerates the seed files of tests/fuzz/corpus/ from the vectors.
#[test]
fn write_seed_corpus() {
    if std::env::var_os("CORRAL_WRITE_SEEDS").is_none() {
        // Still check that the seeds exist on disk for the fuzzer.
        for t in ["head", "chunked", "connection"] {
            assert!(
                std::fs::read_dir(corpus_dir(t)).is_ok_and(|mut d| d.next().is_some()),
                "no seeds in tests/fuzz/corpus/{t}: run with CORRAL_WRITE_SEEDS=1"
            );
        }
        return;
    }
    let (head, chunked, conn) = seeds();
    for (t, inputs) in [("head", head), ("chunked", chunked), ("connection", conn)] {
        let dir = corpus_dir(t);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, input) in inputs.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:04}")), input).unwrap();
        }
    }
}
