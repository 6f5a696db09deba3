//! Chaos soak: steady client load while workers are SIGKILLed at random and
//! the master gets HUP, TTIN and TTOU, with app endpoints that raise (500),
//! leak memory past --max-worker-memory (graceful recycle) and hang past
//! --timeout (504). 40 s by default, `CORRAL_SOAK_SECS` to change,
//! `CORRAL_LONG=1` for 300 s.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::client::{fetch, loopback};
use crate::common::{fd_count, heavy, hostile_app, tail};
use crate::harness::children_with_state;

#[derive(Default, Debug)]
struct Tally {
    total: u64,
    ok: u64,
    raised_500: u64,
    timeout_504: u64,
    shed_503: u64,
    /// Connection reset or closed without a response: only allowed for
    /// requests in flight on a worker we SIGKILLed.
    cut: u64,
    wrong: Vec<String>,
    hangs: Vec<String>,
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn chaos_soak() {
    let _g = heavy();
    let secs: u64 = std::env::var("CORRAL_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if std::env::var_os("CORRAL_LONG").is_some() {
            300
        } else {
            40
        });
    let workers = 3;
    let srv = hostile_app()
        .args([
            "-w",
            "3",
            "--threads",
            "2",
            "-t",
            "3",
            "--graceful-timeout",
            "5",
            "--max-worker-memory",
            "96",
        ])
        .start();
    srv.wait_live_workers(workers, Duration::from_secs(20));
    let fds_before = fd_count(srv.pid);
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("chaos seed {seed:#x}, {secs} s");
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let start = Instant::now();
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (stop, tally, port) = (Arc::clone(&stop), Arc::clone(&tally), srv.port);
            std::thread::spawn(move || {
                let mut i = 0u64;
                // Bounded: stops at the deadline or after 100k requests.
                while !stop.load(Ordering::Relaxed) && i < 100_000 {
                    i += 1;
                    let id = format!("c{c}r{i}");
                    let (path, want) = match i % 50 {
                        7 | 27 => ("raise", 500),
                        13 => ("leak", 200),
                        41 if c == 0 => ("hang", 504),
                        _ => ("echo", 200),
                    };
                    let leak = if path == "leak" { "&mb=24" } else { "" };
                    let t = Instant::now();
                    // --timeout 3 plus abort and 504: 20 s means hung.
                    let r = fetch(
                        loopback(port),
                        &format!("/{path}?id={id}{leak}"),
                        Duration::from_secs(20),
                    );
                    let mut k = tally.lock().unwrap();
                    k.total += 1;
                    match r {
                        Ok(r) if r.status == want && want != 504 => {
                            if want == 200 && !r.text().starts_with(&format!("id={id} ")) {
                                k.wrong.push(format!("{id}: got body {:?}", r.text()));
                            } else if want == 200 {
                                k.ok += 1;
                            } else {
                                k.raised_500 += 1;
                            }
                        }
                        Ok(r) if r.status == 504 && path == "hang" => k.timeout_504 += 1,
                        Ok(r) if r.status == 503 && r.header("retry-after").is_some() => {
                            k.shed_503 += 1
                        }
                        Ok(r) => k.wrong.push(format!(
                            "{id} /{path}: status {} {:?}",
                            r.status,
                            r.text()
                        )),
                        Err(e) if e.timed_out => k
                            .hangs
                            .push(format!("{id} /{path}: no answer in {:?}", t.elapsed())),
                        Err(_) => k.cut += 1,
                    }
                }
            })
        })
        .collect();

    // The chaos: every 1-2.5 s one of SIGKILL a worker (2 in 5), HUP, TTIN, TTOU.
    let mut rng = Rng(seed);
    let (mut kills, mut hups, mut ttin, mut ttou) = (0u64, 0u64, 0u64, 0u64);
    let mut extra: i64 = 0;
    let mut round = 0u64;
    while start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(1000 + rng.next() % 1500));
        // A fixed rotation so every kind of fault occurs in a short run;
        // timing and victims are random.
        round += 1;
        match round % 5 {
            0 | 1 => {
                let live = srv.workers();
                if !live.is_empty() {
                    let victim = live[(rng.next() % live.len() as u64) as usize];
                    if kill(Pid::from_raw(victim), Signal::SIGKILL).is_ok() {
                        kills += 1;
                    }
                }
            }
            2 => {
                srv.signal(libc::SIGHUP);
                hups += 1;
            }
            3 if extra < 2 => {
                srv.signal(libc::SIGTTIN);
                ttin += 1;
                extra += 1;
            }
            _ if extra > 0 => {
                srv.signal(libc::SIGTTOU);
                ttou += 1;
                extra -= 1;
            }
            _ => {}
        }
    }
    while extra > 0 {
        srv.signal(libc::SIGTTOU);
        ttou += 1;
        extra -= 1;
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let elapsed = start.elapsed();

    // The service ends healthy: configured worker count, no zombies, no
    // leaked descriptors in the master, every worker answering.
    srv.wait_live_workers(workers, Duration::from_secs(30));
    let settle = Instant::now() + Duration::from_secs(15);
    let (zombies, fds_after) = loop {
        let z: Vec<i32> = children_with_state(srv.pid)
            .into_iter()
            .filter(|&(_, state)| state == 'Z')
            .map(|(p, _)| p)
            .collect();
        let f = fd_count(srv.pid);
        if (z.is_empty() && f <= fds_before) || Instant::now() >= settle {
            break (z, f);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for i in 0..20 {
        let r = fetch(
            loopback(srv.port),
            &format!("/echo?id=final{i}"),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(r.status, 200);
        assert!(r.text().starts_with(&format!("id=final{i} ")));
    }
    let k = tally.lock().unwrap();
    let log = srv.stderr.text();
    let recycled = log.matches("over --max-worker-memory").count();
    let timed_out = log.matches("WORKER TIMEOUT").count();
    eprintln!(
        "chaos: {elapsed:?}, {} requests ({:.0}/s): {} ok, {} 500, {} 504, {} 503, {} cut by SIGKILL; \
         {kills} SIGKILL, {hups} HUP, {ttin} TTIN, {ttou} TTOU; {recycled} memory recycles, {timed_out} timeouts; \
         master fds {fds_before} -> {fds_after}",
        k.total,
        k.total as f64 / elapsed.as_secs_f64(),
        k.ok,
        k.raised_500,
        k.timeout_504,
        k.shed_503,
        k.cut
    );
    assert!(k.wrong.is_empty(), "wrong responses: {:#?}", k.wrong);
    assert!(
        k.hangs.is_empty(),
        "hung requests: {:#?}\n{}",
        k.hangs,
        tail(&log, 40)
    );
    // Each SIGKILL can cut at most the requests in flight on that worker:
    // one per client thread.
    assert!(
        k.cut <= 4 * kills.max(1),
        "{} requests cut for {kills} kills",
        k.cut
    );
    assert!(
        zombies.is_empty(),
        "zombie children of the master: {zombies:?}"
    );
    assert!(
        fds_after <= fds_before,
        "master fds {fds_before} -> {fds_after}"
    );
    assert!(k.ok > 100, "too little load got through: {k:?}");
    assert!(k.raised_500 > 0, "no 500s seen");
    if secs >= 30 {
        assert!(recycled > 0, "no worker recycled for memory");
        assert!(k.timeout_504 > 0 || timed_out > 0, "no timeout exercised");
    }
}
