//! Request bodies are received whole before Python sees them (a slow upload
//! never holds a thread), but only as many at a time as the threads are
//! about to need: the rest wait in the kernel. These tests hold corral to
//! both halves: a burst of uploads into a busy worker does not pile up in
//! its memory, every byte of every upload still arrives, and uploaders that
//! pause never hold back one that does not.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::client::{loopback, Conn};
use crate::harness::{Corral, Server, EVENT_TIMEOUT};

const MIB: usize = 1 << 20;

/// zlib's Adler-32, as `upload:app` (and `asgi_raw:app`'s `/digest`)
/// answers it.
pub(crate) fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    (b << 16) | a
}

fn body_for(client: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + client) % 251) as u8).collect()
}

/// What `upload:app` must answer for `body`.
fn receipt(body: &[u8]) -> String {
    format!("{} {}", body.len(), adler32(body))
}

/// `upload:app` on one sync worker (one thread), and that worker's pid.
fn one_sync_worker() -> (Server, i32) {
    let server = Corral::app("upload:app")
        .args(["-w", "1", "-k", "sync", "-t", "60"])
        .start();
    let worker = server.wait_workers(1)[0];
    (server, worker)
}

/// Upload `len` bytes on a new connection; how long the answer took.
fn timed_upload(port: u16, client: usize, len: usize) -> Duration {
    let body = body_for(client, len);
    let start = Instant::now();
    let resp = Conn::tcp(port).request("POST", "/", &[], &body);
    let took = start.elapsed();
    assert_eq!(resp.text(), receipt(&body), "upload from client {client}");
    took
}

/// The peak resident memory of a process, in KiB.
fn vm_hwm_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{pid}/status"))
}

#[test]
fn a_burst_of_uploads_waits_in_the_kernel_not_in_the_worker() {
    let (server, worker) = one_sync_worker();
    // One upload first, so the baseline includes what serving one costs.
    let first = body_for(99, MIB);
    let resp = Conn::tcp(server.port).request("POST", "/", &[], &first);
    assert_eq!(resp.text(), receipt(&first));
    let before = vm_hwm_kib(worker);

    // Sixteen 1 MiB uploads at once, on kept-alive connections, into a
    // worker that runs one request per 0.2 s: all sixteen bodies would sit
    // in its memory if it read them as they came.
    const CLIENTS: usize = 16;
    let port = server.port;
    let gate = Arc::new(Barrier::new(CLIENTS));
    let handles: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let gate = Arc::clone(&gate);
            thread::spawn(move || {
                let body = body_for(i, MIB);
                let mut conn = Conn::open(loopback(port), EVENT_TIMEOUT).unwrap();
                // Kept-alive connections, already in the worker: a fresh
                // one would wait in the listen backlog for a free thread.
                let hello = conn.request("POST", "/", &[], b"hi");
                assert_eq!(hello.text(), receipt(b"hi"), "client {i}");
                gate.wait();
                let resp = conn.request("POST", "/?s=0.2", &[], &body);
                assert_eq!(resp.status, 200, "client {i}: {resp:?}");
                assert_eq!(resp.text(), receipt(&body), "client {i}");
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let grown = vm_hwm_kib(worker).saturating_sub(before);
    eprintln!("peak memory grew by {grown} KiB during {CLIENTS} concurrent 1 MiB uploads");
    // The baseline held one upload (its body and Python's copy of it); a
    // second is read only as the running one ends, so little is added.
    // Bodies read as they came grew it by 16 MiB, two read ahead of the
    // thread by 3.5.
    assert!(
        grown < 3 * 1024,
        "the worker's peak memory grew by {grown} KiB: it buffered the uploads waiting for its thread"
    );
}

#[test]
fn paused_uploaders_do_not_hold_back_a_fast_one() {
    let (server, _) = one_sync_worker();
    // Three clients that send their heads, then their bodies a byte at a
    // time: they would take every place among the bodies being read.
    const SLOW_LEN: usize = 24;
    let port = server.port;
    let (ready, started) = std::sync::mpsc::channel();
    let slow: Vec<_> = (0..3)
        .map(|i| {
            let ready = ready.clone();
            thread::spawn(move || {
                let body = body_for(i, SLOW_LEN);
                let mut s = TcpStream::connect(loopback(port)).unwrap();
                s.set_read_timeout(Some(EVENT_TIMEOUT)).unwrap();
                write!(
                    s,
                    "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {SLOW_LEN}\r\nConnection: close\r\n\r\n"
                )
                .unwrap();
                for (n, b) in body.iter().enumerate() {
                    s.write_all(std::slice::from_ref(b)).unwrap();
                    if n == 0 {
                        ready.send(()).unwrap();
                    }
                    thread::sleep(Duration::from_millis(250));
                }
                let mut answer = String::new();
                s.read_to_string(&mut answer).unwrap();
                assert!(
                    answer.ends_with(&receipt(&body)),
                    "slow client {i}: {answer:?}"
                );
            })
        })
        .collect();
    for _ in 0..3 {
        started.recv_timeout(EVENT_TIMEOUT).unwrap();
    }
    let took = timed_upload(port, 7, MIB / 4);
    // The slow uploads take six seconds; the fast one must not wait for
    // any of them.
    assert!(
        took < Duration::from_secs(3),
        "a fast upload took {took:?} behind three paused ones"
    );
    for h in slow {
        h.join().unwrap();
    }
}

#[test]
fn requests_without_a_body_do_not_starve_an_upload() {
    let (server, _) = one_sync_worker();
    let port = server.port;
    // Six kept-alive clients asking, back to back, for 50 ms requests
    // without a body: the worker's one thread always has several waiting.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (ready, started) = std::sync::mpsc::channel();
    let busy: Vec<_> = (0..6)
        .map(|_| {
            let stop = Arc::clone(&stop);
            let ready = ready.clone();
            thread::spawn(move || {
                let mut conn = Conn::tcp(port);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let resp = conn.request("GET", "/?s=0.05", &[], b"");
                    assert_eq!(resp.status, 200, "{resp:?}");
                    let _ = ready.send(());
                }
            })
        })
        .collect();
    // Every busy client has had an answer: the load is on.
    for _ in 0..6 {
        started.recv_timeout(EVENT_TIMEOUT).unwrap();
    }
    let took = timed_upload(port, 3, MIB / 8);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in busy {
        h.join().unwrap();
    }
    // Behind six 50 ms requests at most, not behind the whole load.
    assert!(
        took < Duration::from_secs(3),
        "an upload took {took:?} while requests without a body kept coming"
    );
}
