//! corral under systemd.
//!
//! Two layers:
//! - fine-grained tests run corral under `systemd-socket-activate` with
//!   `NOTIFY_SOCKET` pointing at a datagram socket of the test's own, and
//!   assert the exact sd_notify conversation (and that only the master
//!   speaks);
//! - `real_systemd` boots systemd as PID 1 of a private namespace (see
//!   `systemd/namespace.rs` for how the host is kept out of it) and drives
//!   socket activation, reload, USR2 upgrade, the journal, stop, the
//!   watchdog and the shipped unit files through `systemctl`.
//!
//! These need root, `unshare` and systemd 252 or later; without them they
//! fail and say why.

#[path = "support/client.rs"]
mod client;
#[path = "systemd/common.rs"]
mod common;
#[path = "support/harness.rs"]
mod harness;
#[path = "support/installed.rs"]
mod installed;
#[path = "support/load.rs"]
mod load;
#[path = "systemd/namespace.rs"]
mod namespace;
#[path = "support/notify.rs"]
mod notify;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use common::{get, pid_in, Activated};
use harness::{free_port, poll, temp_dir, wait_for};
use installed::corral;
use load::Load;
use notify::{Msg, Notifications};

const STATUS_SHAPE: &str = "N workers serving, N booting; N requests served by current workers";

/// Parse `2 workers serving, 0 booting; 17 requests served by current
/// workers` into its three numbers.
fn parse_status(text: &str) -> Option<(u64, u64, u64)> {
    let (a, rest) = text.split_once(" workers serving, ")?;
    let (b, rest) = rest.split_once(" booting; ")?;
    let c = rest.strip_suffix(" requests served by current workers")?;
    Some((a.parse().ok()?, b.parse().ok()?, c.parse().ok()?))
}

fn markers(dir: &Path) -> BTreeSet<i32> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| {
                e.ok()?
                    .file_name()
                    .to_str()?
                    .strip_prefix("imported-")?
                    .parse()
                    .ok()
            })
            .collect()
        })
        .unwrap_or_default()
}

fn assert_from_master(c: &Activated) {
    let master = c.pid();
    for m in &c.notify.all() {
        assert_eq!(
            m.pid,
            Some(master),
            "sd_notify message {:?} came from pid {:?}, not the master {master} \
             (NotifyAccess=main would drop it)",
            m.raw,
            m.pid
        );
    }
}

/// Start app.py with 2 workers whose import takes a while, and wait for
/// READY=1 (and the request that launched corral).
fn start_ready(extra_env: &[(&str, String)]) -> (Activated, std::path::PathBuf, Msg) {
    let mut env = extra_env.to_vec();
    env.push(("CORRAL_TEST_IMPORT_DELAY", "0.7".into()));
    let mut c = Activated::start("app:app", &["-w", "2"], &env);
    let marks = c.marks();
    let addr = c.addr;
    let first = std::thread::spawn(move || {
        wait_for(
            Duration::from_secs(30),
            "systemd-socket-activate to launch corral",
            || get(addr, "/", Duration::from_secs(30)).ok(),
        )
    });
    let ready = c
        .notify
        .expect("READY=1", Duration::from_secs(30), Msg::is_ready);
    let imported = markers(&marks);
    assert_eq!(
        imported.len(),
        2,
        "READY=1 arrived when {} of 2 workers had imported the app: {:?}",
        imported.len(),
        c.notify.raws()
    );
    let r = first.join().expect("first request");
    assert_eq!(r.status, 200, "first request: {r:?}");
    (c, marks, ready)
}

#[test]
fn notify_ready_only_once_all_workers_serve() {
    let started = Instant::now();
    let (c, _marks, ready) = start_ready(&[]);
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "READY=1 came before the workers could have imported the app"
    );
    // No state message before READY=1 (progress only), and READY=1
    // carries the status.
    assert_eq!(
        c.notify.states().len(),
        1,
        "messages before READY=1: {:?}",
        c.notify.raws()
    );
    let status = ready.get("STATUS").unwrap_or_else(|| {
        panic!("READY=1 without STATUS=: {:?}", ready.raw);
    });
    let (serving, booting, _) = parse_status(status)
        .unwrap_or_else(|| panic!("STATUS={status:?} is not like {STATUS_SHAPE:?}"));
    assert_eq!((serving, booting), (2, 0), "STATUS={status:?}");
    // A request made right after READY=1 is answered at once.
    let t = Instant::now();
    let r = get(c.addr, "/", Duration::from_secs(5)).expect("request right after READY=1");
    assert_eq!(r.status, 200);
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "request after READY=1 took {:?}",
        t.elapsed()
    );
    assert_from_master(&c);
}

/// A `.socket` unit names its descriptors after itself
/// (LISTEN_FDNAMES=corral-example.socket for the shipped example unit); a
/// named socket is still the one to serve on, and `--bind` is ignored.
#[test]
fn socket_activation_with_named_socket() {
    let unused = free_port();
    let bind = format!("127.0.0.1:{unused}");
    let mut c = Activated::start_named(
        "app:app",
        &["-w", "1", "-b", &bind],
        &[],
        &["corral-example.socket"],
    );
    let addr = c.addr;
    let first = std::thread::spawn(move || {
        // Retried while systemd-socket-activate is not listening yet.
        let mut refused = String::new();
        poll(Duration::from_secs(20), || {
            match get(addr, "/", Duration::from_secs(20)) {
                Err(e) if e.starts_with("connect") => {
                    refused = e;
                    None
                }
                r => Some(r),
            }
        })
        .unwrap_or(Err(refused))
    });
    let ready = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        c.notify
            .expect("READY=1", Duration::from_secs(30), Msg::is_ready);
    }));
    if ready.is_err() {
        panic!("no READY=1; log:\n{}", c.log());
    }
    let r = first
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("request on the activated socket: {e}\nlog:\n{}", c.log()));
    assert_eq!(r.status, 200);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", unused)).is_err(),
        "corral bound --bind {bind} although it was socket activated"
    );
}

/// A second socket unit with `FileDescriptorName=metrics` carries
/// `/metrics`: corral serves the app on the first socket only, and the
/// metrics on the second, without `--metrics-bind`.
#[test]
fn a_socket_named_metrics_serves_prometheus_metrics() {
    let mut c = Activated::start_named(
        "app:app",
        &["-w", "1"],
        &[],
        &["corral-example.socket", "metrics"],
    );
    // systemd-socket-activate starts corral on the first connection.
    let addr = c.addr;
    let first = std::thread::spawn(move || {
        poll(Duration::from_secs(20), || {
            match get(addr, "/", Duration::from_secs(20)) {
                Err(e) if e.starts_with("connect") => None,
                r => Some(r),
            }
        })
    });
    c.notify
        .expect("READY=1", Duration::from_secs(30), Msg::is_ready);
    let r = first
        .join()
        .unwrap()
        .expect("listening")
        .expect("app request");
    assert_eq!(r.status, 200);
    let m = client::fetch(c.more[0], "/metrics", Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("scrape: {e}\n{}", c.log()));
    assert_eq!(m.status, 200, "{}", c.log());
    assert!(
        m.text()
            .contains("corral_requests_total{method=\"GET\",code=\"200\"} 1\n"),
        "{}",
        m.text()
    );
    // The metrics socket is not one the app is served on.
    let wrong = client::fetch(c.more[0], "/", Duration::from_secs(10)).expect("GET /");
    assert_eq!(wrong.status, 404);
}

#[test]
fn notify_status_counts_requests_live() {
    let (mut c, _marks, _ready) = start_ready(&[]);
    for _ in 0..5 {
        let r = get(c.addr, "/", Duration::from_secs(5)).expect("request");
        assert_eq!(r.status, 200);
    }
    // 1 request from start-up + 5.
    let m = c.notify.expect(
        "STATUS= counting 6 requests",
        Duration::from_secs(10),
        |m| {
            m.get("STATUS")
                .and_then(parse_status)
                .is_some_and(|(s, b, n)| s == 2 && b == 0 && n >= 6)
        },
    );
    let (_, _, n) = parse_status(m.get("STATUS").unwrap()).unwrap();
    assert_eq!(n, 6, "requests served: {:?}", m.raw);
    assert_from_master(&c);
}

#[test]
fn notify_reload_on_hup() {
    let (mut c, _marks, _ready) = start_ready(&[]);
    let old = c.workers();
    assert_eq!(old.len(), 2, "workers before HUP: {old:?}");
    let load = Load::start(c.addr, 1, 1);
    let before = common::monotonic_usec();
    c.signal(Signal::SIGHUP);
    let reloading = c
        .notify
        .expect("RELOADING=1", Duration::from_secs(10), |m| !m.status_only());
    let after = common::monotonic_usec();
    assert_eq!(
        reloading.get("RELOADING"),
        Some("1"),
        "first state message after HUP: {:?}",
        reloading.raw
    );
    let usec: u64 = reloading
        .get("MONOTONIC_USEC")
        .unwrap_or_else(|| {
            panic!(
                "RELOADING=1 without MONOTONIC_USEC= (systemd needs it to tell this \
                 reload from an older one): {:?}",
                reloading.raw
            )
        })
        .parse()
        .expect("MONOTONIC_USEC is a number");
    assert!(
        (before..=after).contains(&usec),
        "MONOTONIC_USEC={usec} is not CLOCK_MONOTONIC at the reload ({before}..={after})"
    );
    let ready = c
        .notify
        .expect("READY=1 after the reload", Duration::from_secs(20), |m| {
            !m.status_only()
        });
    assert!(ready.is_ready(), "after RELOADING=1 came {:?}", ready.raw);
    let new = c.workers();
    assert_eq!(new.len(), 2, "workers after reload: {new:?}");
    assert!(
        old.iter().all(|p| !new.contains(p)),
        "READY=1 came while old workers were still there: {old:?} -> {new:?}"
    );
    load.progress(3, Duration::from_secs(15));
    let report = load.finish();
    assert_eq!(report.lost, 0, "during the reload: {}", report.summary());
    let states = c.notify.states();
    let states: Vec<Vec<&str>> = states.iter().map(|m| m.keys()).collect();
    assert_eq!(
        states,
        vec![
            vec!["READY", "STATUS"],
            vec!["RELOADING", "MONOTONIC_USEC"],
            vec!["READY", "STATUS"],
        ],
        "state messages: {:?}",
        c.notify.raws()
    );
    assert_from_master(&c);
}

#[test]
fn notify_stopping_on_term_and_inflight_finishes() {
    let (mut c, marks, _ready) = start_ready(&[]);
    let mark = marks.join("slow-started");
    let addr = c.addr;
    let path = format!("/slow?s=1.5&mark={}", mark.display());
    let slow = std::thread::spawn(move || get(addr, &path, Duration::from_secs(20)));
    wait_for(Duration::from_secs(10), "the slow request to start", || {
        mark.exists().then_some(())
    });
    c.signal(Signal::SIGTERM);
    let stopping = c
        .notify
        .expect("STOPPING=1", Duration::from_secs(5), |m| !m.status_only());
    assert_eq!(
        stopping.keys(),
        ["STOPPING"],
        "first state message after TERM: {:?}",
        stopping.raw
    );
    assert_eq!(stopping.get("STOPPING"), Some("1"));
    let r = slow
        .join()
        .unwrap()
        .expect("the in-flight request must complete during a graceful stop");
    assert_eq!((r.status, r.text()), (200, "slept 1.5".to_string()));
    let st = c.wait_exit(Duration::from_secs(20));
    assert_eq!(st.code(), Some(0), "exit after TERM; log:\n{}", c.log());
    assert_from_master(&c);
}

#[test]
fn notify_import_failure_status_and_exit_4() {
    let mut c = Activated::start("broken:app", &["-w", "2"], &[]);
    c.trigger();
    let st = c.wait_exit(Duration::from_secs(30));
    // What was sent before the exit.
    c.notify.settle(Duration::from_millis(200));
    assert_eq!(
        st.code(),
        Some(4),
        "exit status for an app that fails to import; log:\n{}",
        c.log()
    );
    let got = c.notify.all();
    assert!(
        !got.iter().any(Msg::is_ready),
        "READY=1 sent for an app that cannot load: {:?}",
        c.notify.raws()
    );
    let status = got
        .iter()
        .rev()
        .find_map(|m| m.get("STATUS"))
        .unwrap_or_else(|| panic!("no STATUS= with the reason: {:?}", c.notify.raws()));
    assert!(
        status.contains("App failed to load") && status.contains("import exploded"),
        "STATUS= should say the app failed to load and why: {status:?}"
    );
    assert_from_master(&c);
}

#[test]
fn notify_bind_failure_status_and_errno() {
    let dir = temp_dir("sdbind");
    let notify = Notifications::listen(&dir.path().join("notify.sock"));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let mut child = std::process::Command::new(corral())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("NOTIFY_SOCKET", notify.path())
        .args(["-w", "1", "-b", &addr.to_string(), "--chdir"])
        .arg(common::apps_dir())
        .arg("app:app")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // gunicorn's retry: 5 attempts 1 s apart.
    let st = wait_for(Duration::from_secs(30), "corral to give up binding", || {
        child.try_wait().ok().flatten()
    });
    notify.settle(Duration::from_millis(200));
    assert_ne!(st.code(), Some(0), "bind failure must exit non-zero");
    let last = notify
        .all()
        .last()
        .unwrap_or_else(|| panic!("no sd_notify message for a bind failure"))
        .clone();
    let status = last.get("STATUS").unwrap_or_default();
    assert!(
        status.contains(&addr.to_string()),
        "STATUS= should name the address: {:?}",
        last.raw
    );
    assert_eq!(
        last.get("ERRNO"),
        Some(libc::EADDRINUSE.to_string().as_str()),
        "ERRNO= should carry EADDRINUSE: {:?}",
        last.raw
    );
    drop(taken);
}

#[test]
fn notify_watchdog_pings() {
    let (c, _marks, _ready) = start_ready(&[("WATCHDOG_USEC", "200000".into())]);
    let from = Instant::now();
    let window = Duration::from_millis(1500);
    // The reader thread stamps each ping as it comes: watch them for the
    // window.
    std::thread::sleep(window);
    let pings: Vec<Instant> = c
        .notify
        .all()
        .iter()
        .filter(|m| m.get("WATCHDOG") == Some("1"))
        .map(|m| m.at)
        .collect();
    assert!(
        pings.len() >= 5,
        "WATCHDOG_USEC=200000: expected a WATCHDOG=1 at least every 200 ms, got {} in \
         the first {:?} after READY: {:?}",
        pings.len(),
        from.elapsed(),
        c.notify.raws()
    );
    let mut edges = vec![from];
    edges.extend(pings.iter().copied().filter(|t| *t >= from));
    edges.push(Instant::now());
    let worst = edges.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(
        worst < Duration::from_millis(200),
        "a gap of {worst:?} between WATCHDOG=1 pings would trip a 200 ms watchdog"
    );
    assert_from_master(&c);
}

// ---------------------------------------------------------------------------
// End to end, under a real systemd.

const SOCKET_UNIT: &str = "webapp.socket";
const SERVICE_UNIT: &str = "webapp.service";
const WD_UNIT: &str = "webapp-wd.service";
/// `/metrics` on its own socket unit, as docs/systemd.md shows it.
const METRICS_UNIT: &str = "webapp-metrics.socket";

struct E2e {
    sd: namespace::Systemd,
    addr: SocketAddr,
    wd_addr: SocketAddr,
    metrics_addr: SocketAddr,
    scratch: tempfile::TempDir,
}

impl E2e {
    fn prop(&self, prop: &str) -> String {
        self.sd.prop(SERVICE_UNIT, prop)
    }

    fn main_pid(&self) -> i32 {
        self.prop("MainPID").parse().expect("MainPID")
    }

    /// Worker pids: the main process's children, inside the namespace.
    fn workers(&self) -> Vec<i32> {
        let pid = self.main_pid();
        let out = self
            .sd
            .run(&["cat", &format!("/proc/{pid}/task/{pid}/children")]);
        let mut v: Vec<i32> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        v.sort();
        v
    }

    fn active_running(&self) -> bool {
        self.prop("ActiveState") == "active" && self.prop("SubState") == "running"
    }

    fn state(&self) -> String {
        let out = self.sd.run(&[
            "systemctl",
            "status",
            "--no-pager",
            "-n",
            "30",
            SERVICE_UNIT,
        ]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn units(e: &E2e) {
    let apps = common::apps_dir();
    let marks = e.scratch.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    e.sd.write(
        &format!("/run/systemd/system/{SOCKET_UNIT}"),
        &format!("[Socket]\nListenStream={}\n", e.addr),
    );
    e.sd.write(
        &format!("/run/systemd/system/{METRICS_UNIT}"),
        &format!(
            "[Socket]\nListenStream={}\nFileDescriptorName=metrics\nService={SERVICE_UNIT}\n",
            e.metrics_addr
        ),
    );
    e.sd.write(
        &format!("/run/systemd/system/{SERVICE_UNIT}"),
        &format!(
            "[Unit]\nRequires={SOCKET_UNIT}\nAfter={SOCKET_UNIT}\n\n[Service]\nType=notify\n\
             NotifyAccess=main\n\
             ExecStart={corral} -w 2 -k gthread --threads 4 -t 30 --graceful-timeout 10 \
             --access-logfile - -e CORRAL_TEST_MARKERS={marks} --chdir {apps} app:app\n\
             ExecReload={corral} reload $MAINPID\n\
             ExecStop=/bin/sh -c 'kill -TERM $$MAINPID && while kill -0 $$MAINPID 2>/dev/null; do sleep 0.1; done'\n\
             KillMode=mixed\nTimeoutStopSec=20\nLogRateLimitIntervalSec=1s\nLogRateLimitBurst=100000\n",
            marks = marks.display(),
            apps = apps.display(),
            corral = corral(),
        ),
    );
    e.sd.write(
        &format!("/run/systemd/system/{WD_UNIT}"),
        &format!(
            "[Service]\nType=notify\nNotifyAccess=main\nWatchdogSec=2\n\
             FileDescriptorStoreMax=4\nEnvironment=CORRAL_FDSTORE=1\n\
             ExecStart={corral} -w 1 -b {addr} --chdir {apps} app:app\n\
             KillMode=mixed\nTimeoutStopSec=20\n",
            addr = e.wd_addr,
            apps = apps.display(),
            corral = corral(),
        ),
    );
    e.sd.ok(&["systemctl", "daemon-reload"]);
}

fn scenario_socket_activation(e: &E2e) {
    e.sd.ok(&["systemctl", "start", SOCKET_UNIT, METRICS_UNIT]);
    assert_eq!(
        e.prop("ActiveState"),
        "inactive",
        "the service must wait for the first connection"
    );
    let r = get(e.addr, "/", Duration::from_secs(30))
        .unwrap_or_else(|err| panic!("first request through {SOCKET_UNIT}: {err}\n{}", e.state()));
    assert_eq!(r.status, 200, "{r:?}");
    wait_for(
        Duration::from_secs(10),
        "the service to be active (running)",
        || e.active_running().then_some(()),
    );
    let serving = pid_in(&r).expect("pid in body");
    assert!(
        e.workers().contains(&serving),
        "the request was not served by a worker of the service's main process"
    );
    // The metrics socket unit's descriptor carries /metrics, not the app.
    let m = get(e.metrics_addr, "/metrics", Duration::from_secs(10))
        .unwrap_or_else(|err| panic!("scrape through {METRICS_UNIT}: {err}\n{}", e.state()));
    assert_eq!(m.status, 200, "{m:?}");
    assert!(
        m.text()
            .contains("corral_requests_total{method=\"GET\",code=\"200\"} 1\n"),
        "{}",
        m.text()
    );
}

fn scenario_status_text(e: &E2e) {
    for _ in 0..3 {
        assert_eq!(
            get(e.addr, "/", Duration::from_secs(10)).unwrap().status,
            200
        );
    }
    // 1 activating request + 3.
    let mut last = String::new();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(
            Duration::from_secs(10),
            "StatusText to count 4 requests",
            || {
                last = e.prop("StatusText");
                parse_status(&last)
                    .is_some_and(|(s, b, n)| s == 2 && b == 0 && n >= 4)
                    .then_some(())
            },
        )
    }));
    if r.is_err() {
        panic!("StatusText={last:?}, want {STATUS_SHAPE:?} with 2 serving, 0 booting, 4 served");
    }
}

/// Five `systemctl reload`s in a row under load: fresh and kept-alive
/// clients, and clients uploading bodies, lose nothing.
fn scenario_reload(e: &E2e) {
    let load = Load::with_uploads(e.addr, 2, 2, 2);
    for round in 0..5 {
        let old = e.workers();
        assert_eq!(old.len(), 2, "workers before reload {round}: {old:?}");
        let t = Instant::now();
        e.sd.ok(&["systemctl", "reload", SERVICE_UNIT]);
        let took = t.elapsed();
        // `systemctl reload` returns at READY=1: by then the new generation
        // serves and the old one is gone.
        let new = e.workers();
        assert_eq!(new.len(), 2, "workers after reload {round}: {new:?}");
        assert!(
            old.iter().all(|p| !new.contains(p)),
            "`systemctl reload` returned ({took:?}) before the old workers were replaced: \
             {old:?} -> {new:?}"
        );
        load.progress(20, Duration::from_secs(15));
    }
    let report = load.finish();
    assert_eq!(
        report.lost,
        0,
        "during 5 `systemctl reload`s: {}",
        report.summary()
    );
    eprintln!("5 x systemctl reload: {}", report.summary());
    assert!(report.uploads > 0, "no upload served: {}", report.summary());
    assert!(e.active_running(), "after reload:\n{}", e.state());
}

fn kill_whom_flag(e: &E2e) -> &'static str {
    let help = e.sd.ok(&["systemctl", "--help"]);
    if help.contains("--kill-whom") {
        "--kill-whom=main"
    } else {
        "--kill-who=main"
    }
}

/// Two USR2 upgrades in a row under load, the way docs/lifecycle.md tells
/// users to do it under systemd: the service stays up, MainPID moves to
/// each new master, and no request (nor uploaded body) is lost.
fn scenario_usr2_upgrade(e: &E2e) {
    let load = Load::with_uploads(e.addr, 2, 2, 2);
    let first = e.main_pid();
    for round in 0..2 {
        let old = e.main_pid();
        assert!(old > 0, "no MainPID before USR2 {round}");
        e.sd.ok(&[
            "systemctl",
            "kill",
            "-s",
            "USR2",
            kill_whom_flag(e),
            SERVICE_UNIT,
        ]);
        let new = wait_for(
            Duration::from_secs(30),
            "MainPID to move to the new master",
            || {
                let p = e.main_pid();
                (p != old && p != 0).then_some(p)
            },
        );
        wait_for(Duration::from_secs(30), "the old master to exit", || {
            let out = e.sd.run(&["test", "-e", &format!("/proc/{old}")]);
            (!out.status.success()).then_some(())
        });
        let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            load.progress(20, Duration::from_secs(15))
        }));
        if served.is_err() {
            panic!(
                "no requests served after upgrade {round} (MainPID {old} -> {new}):\n{}",
                e.state()
            );
        }
        assert!(
            e.active_running(),
            "service after upgrade {round} (MainPID {old} -> {new}):\n{}",
            e.state()
        );
        assert_eq!(e.main_pid(), new);
        let journal = e.sd.ok(&["journalctl", "-o", "cat", "--no-pager"]);
        let line = format!("Supervising process {new} which is not our child");
        assert!(
            journal.contains(&line),
            "systemd did not log {line:?} for hand-over {round}"
        );
    }
    let report = load.finish();
    assert_eq!(
        report.lost,
        0,
        "during 2 USR2 upgrades: {}",
        report.summary()
    );
    eprintln!("2 x USR2 upgrade: {}", report.summary());
    assert!(report.uploads > 0, "no upload served: {}", report.summary());
    assert_ne!(e.main_pid(), first);
    // ExecReload's $MAINPID now names the newest master.
    let before = e.workers();
    e.sd.ok(&["systemctl", "reload", SERVICE_UNIT]);
    let after = e.workers();
    assert!(
        !before.is_empty() && before.iter().all(|p| !after.contains(p)),
        "reload after the upgrades did not replace the new master's workers: {before:?} -> {after:?}\n{}",
        e.state()
    );
}

fn field<'a>(entry: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    entry.get(name)?.as_str()
}

fn scenario_journal(e: &E2e) {
    let tag = format!("t{}", std::process::id());
    let printed = get(
        e.addr,
        &format!("/print?tag={tag}"),
        Duration::from_secs(10),
    )
    .unwrap();
    let printer = pid_in(&printed).expect("pid");
    assert_eq!(
        get(e.addr, "/status/500", Duration::from_secs(10))
            .unwrap()
            .status,
        500
    );
    // A worker that dies: its exit is a lifecycle event.
    let _ = get(e.addr, "/exit?code=7", Duration::from_secs(10));
    let mut problems = Vec::new();

    let access = wait_for_entries(e, &["STATUS=500"], |v| {
        v.iter()
            .find(|x| field(x, "REQUEST_PATH") == Some("/status/500"))
            .cloned()
    });
    match access {
        None => problems.push(
            "`journalctl -u webapp STATUS=500` found no access record with \
             REQUEST_PATH=/status/500"
                .to_string(),
        ),
        Some(a) => {
            let want = [
                ("REQUEST_METHOD", Some("GET")),
                ("STATUS", Some("500")),
                ("SYSLOG_IDENTIFIER", Some("corral")),
            ];
            for (k, v) in want {
                if field(&a, k) != v {
                    problems.push(format!("access record {k}={:?}, want {v:?}", field(&a, k)));
                }
            }
            for k in ["DURATION_USEC", "BYTES"] {
                if field(&a, k).and_then(|v| v.parse::<u64>().ok()).is_none() {
                    problems.push(format!(
                        "access record {k}={:?}, want a number",
                        field(&a, k)
                    ));
                }
            }
            if !field(&a, "REMOTE_ADDR").is_some_and(|v| v.starts_with("127.0.0.1")) {
                problems.push(format!(
                    "access record REMOTE_ADDR={:?}, want 127.0.0.1",
                    field(&a, "REMOTE_ADDR")
                ));
            }
            if field(&a, "PRIORITY").is_none() {
                problems.push("access record without PRIORITY".into());
            }
        }
    }

    let needle = format!("app-print {tag}");
    let print = wait_for_entries(e, &[], |v| {
        v.iter()
            .find(|x| field(x, "MESSAGE").is_some_and(|m| m.contains(&needle)))
            .cloned()
    });
    match print {
        None => problems.push(format!("the app's print {needle:?} is not in the journal")),
        Some(p) => {
            if field(&p, "_PID") != Some(printer.to_string().as_str()) {
                problems.push(format!(
                    "the app's print has _PID={:?}, want the worker's pid {printer}",
                    field(&p, "_PID")
                ));
            }
        }
    }

    // journald drops a unit's entries beyond its rate limit and says so
    // only later; the unit lifts the limit as docs/systemd.md advises.
    let journald = e.sd.ok(&["journalctl", "-o", "cat", "--no-pager"]);
    if let Some(l) = journald
        .lines()
        .find(|l| l.starts_with("Suppressed") && l.contains(SERVICE_UNIT))
    {
        problems.push(format!("journald rate-limited the service: {l:?}"));
    }

    let all = e.sd.journal(SERVICE_UNIT, &[]);
    let corral: Vec<&serde_json::Value> = all
        .iter()
        .filter(|x| field(x, "SYSLOG_IDENTIFIER") == Some("corral"))
        .collect();
    if corral.is_empty() {
        problems.push("no journal entry has SYSLOG_IDENTIFIER=corral".into());
    }
    if !corral.iter().all(|x| field(x, "PRIORITY").is_some()) {
        problems.push("a corral entry lacks PRIORITY".into());
    }
    if !corral.iter().any(|x| field(x, "WORKER_PID").is_some()) {
        problems.push("no lifecycle entry carries WORKER_PID".into());
    }
    if !corral
        .iter()
        .any(|x| field(x, "SIGNAL").is_some_and(|s| s.to_ascii_uppercase().contains("HUP")))
    {
        problems.push("the reload's HUP is not logged with a SIGNAL field".into());
    }
    if !corral
        .iter()
        .any(|x| field(x, "EXIT_STATUS") == Some("7") && field(x, "WORKER_PID").is_some())
    {
        problems.push(
            "a worker's exit with status 7 is not logged with EXIT_STATUS=7 and WORKER_PID".into(),
        );
    }
    assert!(
        problems.is_empty(),
        "journal fields:\n  {}",
        problems.join("\n  ")
    );
}

/// Poll the unit's journal (with matches) until `find` picks an entry.
fn wait_for_entries(
    e: &E2e,
    matches: &[&str],
    find: impl Fn(&[serde_json::Value]) -> Option<serde_json::Value>,
) -> Option<serde_json::Value> {
    poll(Duration::from_secs(10), || {
        find(&e.sd.journal(SERVICE_UNIT, matches))
    })
}

/// `systemctl stop` with requests in flight, on a service whose master
/// came from the USR2 upgrades above: every one of them is answered.
fn scenario_stop_finishes_inflight(e: &E2e) {
    let addr = e.addr;
    let slow: Vec<_> = (0..4)
        .map(|i| {
            let mark = e.scratch.path().join(format!("marks/slow-e2e-{i}"));
            let path = format!("/slow?s=2&mark={}", mark.display());
            let t = std::thread::spawn(move || get(addr, &path, Duration::from_secs(30)));
            (mark, t)
        })
        .collect();
    for (mark, _) in &slow {
        wait_for(
            Duration::from_secs(10),
            "the slow requests to start",
            || mark.exists().then_some(()),
        );
    }
    e.sd.ok(&["systemctl", "stop", SOCKET_UNIT, SERVICE_UNIT]);
    for (_, t) in slow {
        let r = t.join().unwrap().unwrap_or_else(|err| {
            panic!(
                "in-flight request during `systemctl stop`: {err}\n{}",
                e.state()
            )
        });
        assert_eq!((r.status, r.text()), (200, "slept 2.0".to_string()));
    }
    let state = e.prop("ActiveState");
    assert_eq!(state, "inactive", "after stop: Result={}", e.prop("Result"));
}

fn scenario_watchdog(e: &E2e) {
    e.sd.ok(&["systemctl", "start", WD_UNIT]);
    let pid = e.sd.prop(WD_UNIT, "MainPID");
    let until = Instant::now() + Duration::from_millis(3500);
    while Instant::now() < until {
        let (state, now) = (
            e.sd.prop(WD_UNIT, "ActiveState"),
            e.sd.prop(WD_UNIT, "MainPID"),
        );
        assert!(
            state == "active" && now == pid,
            "WatchdogSec=2: the service did not stay up (ActiveState={state}, Result={}, \
             MainPID {pid} -> {now})",
            e.sd.prop(WD_UNIT, "Result")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = get(e.wd_addr, "/", Duration::from_secs(10)).expect("request to the watchdog unit");
    assert_eq!(r.status, 200);
}

fn scenario_fd_store(e: &E2e) {
    // The watchdog unit binds its own socket and allows an fd store.
    let n: u32 =
        e.sd.prop(WD_UNIT, "NFileDescriptorStore")
            .parse()
            .expect("NFileDescriptorStore");
    assert!(
        n >= 1,
        "a self-bound corral under FileDescriptorStoreMax= should keep its listener in \
         systemd's fd store (FDSTORE=1) so it survives `systemctl restart`; store holds {n}"
    );
    let before = e.sd.prop(WD_UNIT, "MainPID");
    e.sd.ok(&["systemctl", "restart", WD_UNIT]);
    assert_ne!(before, e.sd.prop(WD_UNIT, "MainPID"));
    assert_eq!(
        get(e.wd_addr, "/", Duration::from_secs(10)).unwrap().status,
        200
    );
    e.sd.ok(&["systemctl", "stop", WD_UNIT]);
}

fn scenario_verify_shipped_units(e: &E2e) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .expect("systemd/ with the shipped units")
        .filter_map(|d| d.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".service") || n.ends_with(".socket"))
        .collect();
    names.sort();
    for want in [
        "corral-example.service",
        "corral-example.socket",
        "corral@.service",
        "corral@.socket",
    ] {
        assert!(names.iter().any(|n| n == want), "systemd/{want} is missing");
    }
    // The units run /srv/NAME/venv/bin/corral: give the namespace (only) a
    // /srv with those, for as long as the verification takes.
    e.sd.ok(&["mount", "-t", "tmpfs", "tmpfs", "/srv"]);
    for name in ["demo", "corral-example"] {
        e.sd.ok(&["mkdir", "-p", &format!("/srv/{name}/venv/bin")]);
        e.sd.ok(&[
            "ln",
            "-s",
            corral(),
            &format!("/srv/{name}/venv/bin/corral"),
        ]);
    }
    let mut paths = Vec::new();
    for n in &names {
        // Templates are verified as an instance.
        let inst = n.replacen("@.", "@demo.", 1);
        let path = format!("/run/corral-verify/{inst}");
        let text = std::fs::read_to_string(root.join(n)).unwrap();
        e.sd.write(&path, &text);
        paths.push(path);
    }
    let mut args = vec!["systemd-analyze", "verify"];
    args.extend(paths.iter().map(String::as_str));
    let out = e.sd.run(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    let ours: Vec<&str> = err.lines().filter(|l| l.contains("corral")).collect();
    e.sd.ok(&["umount", "/srv"]);
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify ({}):\n{err}",
        out.status
    );
}

/// What the deployment probe says about a worker's interpreter, asserted to
/// be the virtualenv's alone (see tests/apps/probe.py).
fn assert_probe(body: &str, venv: &Path, framework: &str) {
    let info: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("probe answered {body:?}: {e}"));
    let venv = std::fs::canonicalize(venv).unwrap();
    let prefix = std::fs::canonicalize(info["prefix"].as_str().unwrap()).unwrap();
    assert_eq!(prefix, venv, "sys.prefix: {info}");
    let exe = info["executable"].as_str().unwrap();
    assert!(
        exe.starts_with(&*venv.to_string_lossy()),
        "sys.executable {exe}"
    );
    let base = info["base_prefix"].as_str().unwrap();
    for p in info["path"].as_array().unwrap() {
        let p = p.as_str().unwrap();
        assert!(
            !(p.starts_with(base) && (p.contains("site-packages") || p.contains("dist-packages"))),
            "the base interpreter's {p} is on sys.path: {info}"
        );
    }
    let file = info[framework]
        .as_str()
        .unwrap_or_else(|| panic!("{framework}: {info}"));
    assert!(
        file.starts_with(&*venv.to_string_lossy()),
        "{framework} imported from {file}, outside {}",
        venv.display()
    );
}

/// The shipped `corral@.service` and `corral@.socket`, unchanged, for an app
/// in /srv/corral-test with its virtualenv of Debian's python3 in
/// /srv/corral-test/venv: DynamicUser=, ProtectHome=, ProtectSystem=strict,
/// systemd's own environment. Only the socket's address is overridden, with
/// a drop-in as a user would (the test reaches TCP, not the namespace's
/// /run), and the Django run sets CORRAL_APP as the template documents.
fn scenario_shipped_template_venv(e: &E2e) {
    // The Debian-python virtualenv `tests/run` keeps at /srv/NAME/venv,
    // which is where the shipped template `corral@NAME.service` looks.
    let venv = installed::deploy_venv();
    let srv = venv.parent().unwrap().to_path_buf();
    assert_eq!(srv.parent(), Some(Path::new("/srv")), "{}", venv.display());
    let name = srv.file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        venv.join("bin/corral").exists(),
        "{} has no corral: tests/run installs the wheel there",
        venv.display()
    );
    let apps = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps");
    for f in ["probe.py", "probe_flask.py"] {
        std::fs::copy(apps.join(f), srv.join(f)).unwrap();
    }
    std::fs::write(
        srv.join("app.py"),
        "from probe_flask import app  # noqa: F401\n",
    )
    .unwrap();
    let dj = srv.join("djangoapp");
    std::fs::create_dir_all(&dj).unwrap();
    for f in ["__init__.py", "settings.py", "urls.py", "wsgi.py"] {
        std::fs::copy(apps.join("djangoapp").join(f), dj.join(f)).unwrap();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    for unit in ["corral@.service", "corral@.socket"] {
        let text = std::fs::read_to_string(root.join(unit)).unwrap();
        e.sd.write(&format!("/run/systemd/system/{unit}"), &text);
    }
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let socket = format!("corral@{name}.socket");
    let service = format!("corral@{name}.service");
    e.sd.write(
        &format!("/run/systemd/system/{socket}.d/address.conf"),
        &format!("[Socket]\nListenStream=\nListenStream={addr}\n"),
    );
    e.sd.ok(&["systemctl", "daemon-reload"]);
    e.sd.ok(&["systemctl", "start", &socket]);
    let journal = || {
        let out = e.sd.run(&[
            "journalctl",
            "-u",
            &service,
            "-o",
            "cat",
            "--no-pager",
            "-n",
            "40",
        ]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let r = get(addr, "/probe", Duration::from_secs(60))
        .unwrap_or_else(|err| panic!("GET /probe through {socket}: {err}\n{}", journal()));
    assert_eq!(r.status, 200, "{r:?}\n{}", journal());
    assert_probe(&r.text(), &venv, "flask");
    // The control socket where the template puts it (RuntimeDirectory=),
    // driven as root by gunicorn's own gunicornc and by `corral ctl`.
    let ctl = format!("/run/corral-{name}/gunicorn.ctl");
    let run_json = |argv: &[&str]| {
        let out = e.sd.run(argv);
        assert!(
            out.status.success(),
            "{argv:?}: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            journal()
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .unwrap_or_else(|err| panic!("{argv:?} printed no JSON: {err}"))
    };
    let gunicornc = venv.join("bin/gunicornc");
    let stats = run_json(&[
        gunicornc.to_str().unwrap(),
        "-s",
        &ctl,
        "-c",
        "show stats",
        "-j",
    ]);
    assert_eq!(
        stats["pid"].to_string(),
        e.sd.prop(&service, "MainPID"),
        "{stats}"
    );
    assert_eq!(stats["workers_target"], 4, "{stats}");
    let corral = venv.join("bin/corral");
    let added = run_json(&[corral.to_str().unwrap(), "ctl", "-s", &ctl, "worker", "add"]);
    assert_eq!(added["total"], 5, "{added}");
    assert_eq!(e.sd.prop(&service, "DynamicUser"), "yes");
    assert_eq!(e.sd.prop(&service, "ProtectHome"), "yes");
    assert_eq!(e.sd.prop(&service, "ProtectSystem"), "strict");
    // Django, by naming the app as the template documents.
    e.sd.ok(&["systemctl", "stop", &service]);
    e.sd.write(
        &format!("/run/systemd/system/{service}.d/app.conf"),
        "[Service]\nEnvironment=CORRAL_APP=djangoapp.wsgi:application\n",
    );
    e.sd.ok(&["systemctl", "daemon-reload"]);
    let r = get(addr, "/probe/", Duration::from_secs(60))
        .unwrap_or_else(|err| panic!("GET /probe/ (Django): {err}\n{}", journal()));
    assert_eq!(r.status, 200, "{r:?}\n{}", journal());
    assert_probe(&r.text(), &venv, "django");
    e.sd.ok(&["systemctl", "stop", &service, &socket]);
}

/// A unit for the pyenv-based test virtualenv (its Python lives in /root,
/// so this unit cannot have ProtectHome=): ExecStart= is the virtualenv's
/// corral, nothing in Environment=.
fn scenario_pyenv_venv_unit(e: &E2e) {
    let venv = installed::venv();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let unit = "shop.service";
    e.sd.write(
        &format!("/run/systemd/system/{unit}"),
        &format!(
            "[Service]\nType=notify\nNotifyAccess=main\n\
             ExecStart={corral} -w 2 -k sync -b {addr} --chdir {apps} probe_flask:app\n\
             KillMode=mixed\nTimeoutStopSec=20\n",
            corral = venv.join("bin/corral").display(),
            apps = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/apps")
                .display(),
        ),
    );
    e.sd.ok(&["systemctl", "daemon-reload"]);
    e.sd.ok(&["systemctl", "start", unit]);
    let r = get(addr, "/probe", Duration::from_secs(30)).unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_probe(&r.text(), &venv, "flask");
    let info: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
    assert_eq!(
        info["main_thread"], true,
        "sync view off the main thread: {info}"
    );
    let r = get(addr, "/signal", Duration::from_secs(30)).unwrap();
    assert_eq!(r.text(), "interrupted", "{r:?}");
    e.sd.ok(&["systemctl", "stop", unit]);
}

type Scenario = (&'static str, fn(&E2e));

/// One boot of systemd for all end-to-end scenarios, run in order; each
/// failure is collected and reported at the end.
#[test]
fn real_systemd() {
    let sd = namespace::Systemd::boot();
    let e = E2e {
        sd,
        addr: format!("127.0.0.1:{}", free_port()).parse().unwrap(),
        wd_addr: format!("127.0.0.1:{}", free_port()).parse().unwrap(),
        metrics_addr: format!("127.0.0.1:{}", free_port()).parse().unwrap(),
        scratch: temp_dir("sde2e"),
    };
    units(&e);
    let scenarios: [Scenario; 11] = [
        ("verify shipped units", scenario_verify_shipped_units),
        (
            "shipped template, hardened, Debian virtualenv",
            scenario_shipped_template_venv,
        ),
        ("pyenv virtualenv, Flask", scenario_pyenv_venv_unit),
        ("socket activation", scenario_socket_activation),
        ("live StatusText", scenario_status_text),
        ("reload under load", scenario_reload),
        ("USR2 upgrade", scenario_usr2_upgrade),
        ("journal fields", scenario_journal),
        ("stop finishes in-flight", scenario_stop_finishes_inflight),
        ("watchdog", scenario_watchdog),
        ("fd store", scenario_fd_store),
    ];
    let mut failed = Vec::new();
    for (name, f) in scenarios {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&e)));
        match r {
            Ok(()) => eprintln!("scenario {name}: ok"),
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                eprintln!("scenario {name}: FAILED: {msg}");
                failed.push(format!("{name}: {msg}"));
            }
        }
    }
    drop(e);
    assert!(
        failed.is_empty(),
        "{} end-to-end scenario(s) failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}
