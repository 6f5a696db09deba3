//! Memory stays bounded per connection and per worker whatever clients
//! send: header floods are refused at the limits, and a huge chunked
//! upload goes to a temporary file, not RAM. Measured as the worker's
//! VmRSS from /proc while the traffic flows.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::{fetch, loopback, Conn};
use crate::common::{heavy, hostile_app, rss_kib};
use crate::harness::temp_dir;

/// Samples `pid`'s VmRSS every 100 ms until stopped; returns the peak (KiB).
fn rss_sampler(pid: i32, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while !stop.load(Ordering::Relaxed) {
            peak = peak.max(rss_kib(pid).unwrap_or(0));
            std::thread::sleep(Duration::from_millis(100));
        }
        peak
    })
}

fn long() -> bool {
    std::env::var_os("CORRAL_LONG").is_some()
}

#[test]
fn header_floods_do_not_grow_the_worker() {
    let _g = heavy();
    let srv = hostile_app().args(["-w", "1"]).start();
    let worker = srv.wait_live_workers(1, Duration::from_secs(10))[0];
    // Warm up: a few requests so the baseline includes steady-state buffers.
    for i in 0..5 {
        assert_eq!(
            fetch(
                loopback(srv.port),
                &format!("/echo?id=w{i}"),
                Duration::from_secs(5)
            )
            .unwrap()
            .status,
            200
        );
    }
    let base = rss_kib(worker).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = rss_sampler(worker, Arc::clone(&stop));
    let per_conn: u64 = 20 << 20;
    // Three shapes of flood, 8 connections at once: one endless field
    // line, endless small fields, and an endless request line.
    let shapes: [(&[u8], &[u8]); 3] = [
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-Flood: ", b"a"),
        (b"GET / HTTP/1.1\r\nHost: a\r\n", b"X-F: a\r\n"),
        (b"GET /", b"a"),
    ];
    let sent = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let (prefix, unit) = shapes[i % 3];
            let port = srv.port;
            let sent = Arc::clone(&sent);
            std::thread::spawn(move || {
                let mut c = Conn::open(loopback(port), Duration::from_secs(5)).unwrap();
                let block: Vec<u8> = unit
                    .iter()
                    .copied()
                    .cycle()
                    .take(64 * 1024 / unit.len() * unit.len())
                    .collect();
                let mut n = 0u64;
                let deadline = Instant::now() + Duration::from_secs(20);
                let mut ok = c.send(prefix).is_ok();
                while ok && n < per_conn && Instant::now() < deadline {
                    ok = c.send(&block).is_ok();
                    if ok {
                        n += block.len() as u64;
                    }
                }
                sent.fetch_add(n, Ordering::Relaxed);
                // Whatever we got back: a 4xx refusal, or the connection cut.
                c.shutdown_write();
                c.read_final(false).ok().map(|r| r.status)
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for h in handles {
        statuses.push(h.join().unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    eprintln!(
        "header floods: {} MiB offered over 8 connections, worker RSS {base} KiB -> peak {peak} KiB (+{} KiB), statuses {statuses:?}",
        sent.load(Ordering::Relaxed) >> 20,
        peak.saturating_sub(base)
    );
    for s in statuses.iter().flatten() {
        assert!(matches!(s, 400 | 414 | 431), "flood answered {s}");
    }
    assert!(
        statuses.iter().any(|s| s.is_some()),
        "no flood got a refusal"
    );
    // 8 connections x (head cap ~0.8 MiB + one 256 KiB read) is ~9 MiB;
    // 24 MiB leaves room for allocator slack on any machine.
    assert!(
        peak.saturating_sub(base) < 24 * 1024,
        "worker grew {} KiB",
        peak - base
    );
    assert_eq!(
        fetch(loopback(srv.port), "/echo?id=after", Duration::from_secs(5))
            .unwrap()
            .status,
        200
    );
}

#[test]
fn huge_chunked_upload_keeps_rss_flat() {
    let _g = heavy();
    let tmp = temp_dir("hostile-spill");
    let tmp_arg = tmp.path().to_str().unwrap().to_string();
    let srv = hostile_app()
        .args(["-w", "1", "--worker-tmp-dir", &tmp_arg])
        .start();
    let worker = srv.wait_live_workers(1, Duration::from_secs(10))[0];
    assert_eq!(
        fetch(loopback(srv.port), "/echo?id=warm", Duration::from_secs(5))
            .unwrap()
            .status,
        200
    );
    let base = rss_kib(worker).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = rss_sampler(worker, Arc::clone(&stop));
    // Stream up to 2 GiB for a few seconds (20 s with CORRAL_LONG=1).
    let (limit, secs) = if long() {
        (2u64 << 30, 20)
    } else {
        (2u64 << 30, 4)
    };
    let mut c = Conn::open(loopback(srv.port), Duration::from_secs(30)).unwrap();
    c.send(b"POST /body?id=huge HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    let chunk = vec![b'x'; 256 * 1024];
    let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
    frame.extend_from_slice(&chunk);
    frame.extend_from_slice(b"\r\n");
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < limit && start.elapsed() < Duration::from_secs(secs) {
        c.send(&frame).expect("server kept reading the upload");
        sent += chunk.len() as u64;
    }
    c.send(b"0\r\n\r\n").unwrap();
    let r = c.read_final(false).expect("response to the upload");
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    eprintln!(
        "chunked upload: {} MiB in {elapsed:?}, worker RSS {base} KiB -> peak {peak} KiB (+{} KiB), answer {} {}",
        sent >> 20,
        peak.saturating_sub(base),
        r.status,
        r.text()
    );
    assert_eq!(r.status, 200);
    // Every byte arrived (nothing lost on the way to the temp file).
    assert!(
        r.text().starts_with(&format!("id=huge len={sent} ")),
        "{}",
        r.text()
    );
    assert!(
        sent >= 64 << 20,
        "only {sent} bytes streamed: too slow to mean anything"
    );
    // In-memory part is 1 MiB at most, plus a read buffer and Python's
    // 64 KiB reads: 16 MiB is far below what keeping the body would cost.
    assert!(
        peak.saturating_sub(base) < 16 * 1024,
        "worker grew {} KiB",
        peak - base
    );
    // The spill file is anonymous: nothing left in the tmp dir.
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "spill file left behind"
    );
}
