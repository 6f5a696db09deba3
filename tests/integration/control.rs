//! The control socket, driven by gunicorn 27's own `gunicornc` (from the
//! test virtualenv) and by `corral ctl`: every command, the socket's place
//! and mode, hostile messages, and a hand-over on USR2.

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::client::get;
use crate::harness::{alive, run, wait_for, wait_until, Corral, Server, EVENT_TIMEOUT};
use crate::installed::venv;

/// `gunicornc -s SOCKET -c COMMAND -j`: its exit code and the JSON it
/// printed (or its error text).
fn gunicornc(socket: &Path, command: &str) -> Result<Value, String> {
    let mut cmd = Command::new(venv().join("bin/gunicornc"));
    cmd.args(["-s", &socket.display().to_string(), "-c", command, "-j"]);
    finish(cmd, command)
}

fn finish(cmd: Command, command: &str) -> Result<Value, String> {
    let out = run(cmd, Duration::from_secs(30));
    if out.status.success() {
        Ok(serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("{command}: not JSON ({e}): {:?}", out.stdout)))
    } else {
        Err(format!("{}{}", out.stdout, out.stderr))
    }
}

fn ok(socket: &Path, command: &str) -> Value {
    gunicornc(socket, command).unwrap_or_else(|e| panic!("gunicornc {command:?}: {e}"))
}

fn pids(workers: &Value) -> Vec<i32> {
    let mut p: Vec<i32> = workers["workers"]
        .as_array()
        .expect("workers list")
        .iter()
        .map(|w| w["pid"].as_i64().unwrap() as i32)
        .collect();
    p.sort();
    p
}

fn sorted(mut v: Vec<i32>) -> Vec<i32> {
    v.sort();
    v
}

fn start(args: &[&str]) -> (Server, PathBuf) {
    start_app("echo:app", args)
}

fn start_app(app: &str, args: &[&str]) -> (Server, PathBuf) {
    let corral = Corral::app(app);
    let socket = corral.tmp().join("ctl.sock");
    let server = corral
        .args(["--control-socket", socket.to_str().unwrap()])
        .args(args.iter().copied())
        .start();
    (server, socket)
}

#[test]
fn gunicornc_drives_every_command() {
    let (mut server, socket) = start(&["-w", "2"]);
    let first = server.wait_workers(2);
    let meta = std::fs::symlink_metadata(&socket).expect("the control socket exists");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600, "default mode");

    let workers = ok(&socket, "show workers");
    assert_eq!(workers["count"], 2, "{workers}");
    assert_eq!(pids(&workers), sorted(first.clone()));
    for w in workers["workers"].as_array().unwrap() {
        assert_eq!(w["booted"], true, "{w}");
        assert_eq!(w["state"], "serving", "{w}");
        assert!(w["last_heartbeat"].as_f64().unwrap() < 5.0, "{w}");
    }
    let stats = ok(&socket, "show stats");
    assert_eq!(stats["pid"], server.pid, "{stats}");
    assert_eq!(stats["workers_target"], 2, "{stats}");
    assert_eq!(stats["workers_spawned"], 2, "{stats}");
    let listeners = ok(&socket, "show listeners");
    assert_eq!(
        listeners["listeners"][0]["address"],
        format!("http://127.0.0.1:{}", server.port),
        "{listeners}"
    );
    assert_eq!(listeners["listeners"][0]["type"], "tcp");
    let config = ok(&socket, "show config");
    assert_eq!(config["workers"], 2, "{config}");
    assert_eq!(config["worker_class"], "sync", "{config}");
    assert_eq!(config["control_socket"], socket.to_str().unwrap());
    // gunicorn's keys only: never `raw_env`, where `-e` puts secrets.
    assert!(config.get("raw_env").is_none(), "{config}");
    let all = ok(&socket, "show all");
    assert_eq!(all["arbiter"]["pid"], server.pid, "{all}");
    assert_eq!(all["web_worker_count"], 2, "{all}");
    assert_eq!(ok(&socket, "show dirty")["enabled"], false);
    assert!(ok(&socket, "help")["commands"]["worker add [N]"].is_string());

    let added = ok(&socket, "worker add 2");
    assert_eq!(
        (
            added["added"].clone(),
            added["previous"].clone(),
            added["total"].clone()
        ),
        (2.into(), 2.into(), 4.into())
    );
    server.wait_live_workers(4, EVENT_TIMEOUT);
    let removed = ok(&socket, "worker remove 5");
    assert_eq!(
        (removed["removed"].clone(), removed["total"].clone()),
        (3.into(), 1.into()),
        "never fewer than one: {removed}"
    );
    let one = server.wait_live_workers(1, EVENT_TIMEOUT);

    let killed = ok(&socket, &format!("worker kill {}", one[0]));
    assert_eq!(killed["success"], true, "{killed}");
    assert_eq!(killed["killed"], one[0]);
    let replaced = wait_for(EVENT_TIMEOUT, "a worker in the killed one's place", || {
        let now = server.workers();
        (now.len() == 1 && now[0] != one[0]).then_some(now[0])
    });
    server.expect_log(&format!("Worker exiting (pid: {}): control", one[0]));
    let missing = ok(&socket, "worker kill 1");
    assert_eq!(missing["success"], false, "{missing}");

    // A reload re-reads the settings, so the count goes back to `-w 2`
    // (gunicorn's reload does the same).
    assert_eq!(ok(&socket, "reload")["status"], "reloading");
    wait_until(EVENT_TIMEOUT, "a new generation after reload", || {
        let now = server.workers();
        now.len() == 2 && !now.contains(&replaced)
    });
    assert_eq!(ok(&socket, "show stats")["reloads"], 1);
    assert_eq!(ok(&socket, "reopen")["status"], "reopening");

    let bad = gunicornc(&socket, "bogus").expect_err("an unknown command fails");
    assert!(bad.contains("Unknown command: bogus"), "{bad}");
    let bad = gunicornc(&socket, "worker kill").expect_err("kill needs a pid");
    assert!(bad.contains("Missing PID"), "{bad}");
    assert_eq!(get(server.port, "/").status, 200);

    let log = server.stderr.text();
    let uid = nix::unistd::getuid();
    assert!(
        log.contains(&format!("Control command from uid {uid} pid "))
            && log.contains(": worker add 2"),
        "every command is logged with its peer:\n{log}"
    );
    let stop = ok(&socket, "shutdown");
    assert_eq!(stop["status"], "shutting_down", "{stop}");
    assert_eq!(stop["mode"], "graceful");
    assert_eq!(server.wait_code(EVENT_TIMEOUT), 0);
    assert!(!socket.exists(), "the socket is removed at exit");
}

#[test]
fn corral_ctl_drives_a_server() {
    let (mut server, socket) = start(&["-w", "1"]);
    let ctl = |words: &[&str]| {
        let mut cmd = Command::new(crate::installed::corral());
        cmd.arg("ctl")
            .args(["-s", socket.to_str().unwrap()])
            .args(words);
        finish(cmd, &words.join(" "))
    };
    let workers = ctl(&["show", "workers"]).unwrap();
    assert_eq!(workers["count"], 1, "{workers}");
    let err = ctl(&["show", "nothing"]).expect_err("an unknown target fails");
    assert!(
        err.contains("error: Invalid argument: Unknown show target: nothing"),
        "{err}"
    );
    let stop = ctl(&["shutdown", "quick"]).unwrap();
    assert_eq!(stop["mode"], "quick", "{stop}");
    assert_eq!(server.wait_code(EVENT_TIMEOUT), 0);
    server.expect_log(&format!(
        "Control command from uid {} pid",
        nix::unistd::getuid()
    ));
}

/// One raw message: length, then the bytes.
fn send(s: &mut UnixStream, body: &[u8]) {
    s.write_all(&(body.len() as u32).to_be_bytes()).unwrap();
    s.write_all(body).unwrap();
}

fn receive(s: &mut UnixStream) -> Value {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("a reply");
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    serde_json::from_slice(&body).unwrap()
}

#[test]
fn hostile_messages_get_errors_and_never_stall_the_master() {
    let (server, socket) = start(&["-w", "1"]);
    let workers = server.wait_workers(1);
    // A client that sends half a message and waits: the others are still
    // answered.
    let mut stalled = UnixStream::connect(&socket).unwrap();
    stalled.write_all(&[0, 0, 0, 50, b'{']).unwrap();

    let mut c = UnixStream::connect(&socket).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    send(&mut c, b"not json");
    let r = receive(&mut c);
    assert_eq!(r["status"], "error", "{r}");
    // The connection still works after an error.
    send(&mut c, br#"{"id": 9, "command": 5, "args": []}"#);
    let r = receive(&mut c);
    assert_eq!(
        (r["id"].clone(), r["status"].clone()),
        (9.into(), "error".into())
    );
    assert!(r["error"].as_str().unwrap().contains("command"), "{r}");
    send(
        &mut c,
        br#"{"id": 10, "command": "show 'unclosed", "args": []}"#,
    );
    assert!(receive(&mut c)["error"]
        .as_str()
        .unwrap()
        .contains("unterminated single quote"));
    send(
        &mut c,
        br#"{"id": 11, "command": "show stats", "args": []}"#,
    );
    let r = receive(&mut c);
    assert_eq!(
        (r["id"].clone(), r["status"].clone()),
        (11.into(), "ok".into()),
        "{r}"
    );
    assert_eq!(r["data"]["pid"], server.pid);
    // Two commands in one write are answered in order.
    let mut both = Vec::new();
    for (id, cmd) in [(1, "show stats"), (2, "help")] {
        let body = format!(r#"{{"id": {id}, "command": "{cmd}", "args": []}}"#);
        both.extend_from_slice(&(body.len() as u32).to_be_bytes());
        both.extend_from_slice(body.as_bytes());
    }
    c.write_all(&both).unwrap();
    assert_eq!(receive(&mut c)["id"], 1);
    assert_eq!(receive(&mut c)["id"], 2);

    // A length past the limit: an error, then the connection is closed.
    let mut big = UnixStream::connect(&socket).unwrap();
    big.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // One write: the master answers and closes as soon as it has read the
    // length, and a second write could meet the closed socket.
    let mut oversize = (64 * 1024 * 1024u32).to_be_bytes().to_vec();
    oversize.extend_from_slice(&[b'x'; 1024]);
    big.write_all(&oversize).unwrap();
    let r = receive(&mut big);
    assert!(
        r["error"].as_str().unwrap().contains("Message too large"),
        "{r}"
    );
    let mut rest = Vec::new();
    let _ = big.read_to_end(&mut rest);
    assert!(rest.is_empty(), "closed after the error");

    drop(stalled);
    assert_eq!(get(server.port, "/").status, 200);
    assert_eq!(server.workers(), workers, "no worker was disturbed");
    assert!(alive(server.pid));
}

#[test]
fn the_default_socket_is_where_gunicornc_looks() {
    // The harness gives each server its own XDG_RUNTIME_DIR, as a user
    // session has one: gunicornc run in the same session finds the socket
    // without -s.
    let corral = Corral::app("echo:app");
    let runtime = corral.tmp().to_path_buf();
    let server = corral.args(["-w", "1"]).start();
    let socket = runtime.join("gunicorn.ctl");
    assert!(socket.exists(), "{}", server.stderr.text());
    let mut cmd = Command::new(venv().join("bin/gunicornc"));
    cmd.args(["-c", "show stats", "-j"])
        .env("XDG_RUNTIME_DIR", &runtime);
    let stats = finish(cmd, "show stats").unwrap();
    assert_eq!(stats["pid"], server.pid, "{stats}");
}

#[test]
fn mode_is_set_and_the_socket_can_be_turned_off() {
    let (_server, socket) = start(&["-w", "1", "--control-socket-mode", "0o660"]);
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o660);

    let corral = Corral::app("echo:app");
    let runtime = corral.tmp().to_path_buf();
    let server = corral.args(["-w", "1", "--no-control-socket"]).start();
    assert!(!runtime.join("gunicorn.ctl").exists());
    assert!(!server.stderr.text().contains("Control socket"));
}

#[test]
fn a_socket_another_server_answers_on_is_not_taken() {
    let (first, socket) = start(&["-w", "1"]);
    let second = Corral::app("echo:app")
        .args(["-w", "1", "--control-socket", socket.to_str().unwrap()])
        .start();
    second.expect_log("in use by another running server");
    assert_eq!(ok(&socket, "show stats")["pid"], first.pid);
    assert_eq!(get(second.port, "/").status, 200, "the second one serves");
    // Once the first has gone, the second takes the socket (it looks again
    // every 5 s).
    let mut first = first;
    first.signal(libc::SIGTERM);
    assert_eq!(first.wait_code(EVENT_TIMEOUT), 0);
    wait_until(EVENT_TIMEOUT, "the second server on the socket", || {
        gunicornc(&socket, "show stats").is_ok_and(|s| s["pid"] == second.pid)
    });
}

/// USR2: the old master keeps answering until it leaves; the promoted one
/// then opens the socket, and the old one's exit does not remove it.
#[test]
fn the_promoted_master_takes_the_socket_over() {
    let (mut server, socket) = start(&["-w", "1"]);
    let old = server.pid;
    server.signal(libc::SIGUSR2);
    let new = wait_for(EVENT_TIMEOUT, "the new master", || {
        crate::harness::children_of(old).into_iter().find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.contains(".2"))
        })
    });
    server.expect_log(&format!("New master (pid:{new}) is serving"));
    assert_eq!(
        ok(&socket, "show stats")["pid"],
        old,
        "the old master answers until it leaves"
    );
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait_code(EVENT_TIMEOUT), 0);
    wait_until(
        EVENT_TIMEOUT,
        "the promoted master on the control socket",
        || gunicornc(&socket, "show stats").is_ok_and(|s| s["pid"] == new),
    );
    let stop = ok(&socket, "shutdown");
    assert_eq!(stop["status"], "shutting_down");
    wait_until(EVENT_TIMEOUT, "the new master to stop", || !alive(new));
    assert!(!socket.exists());
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// Clients that pipeline commands and never read the answers, one of them
/// half-closed: the master neither buffers answers without bound nor
/// spins, and still answers everyone else at once.
#[test]
fn clients_that_never_read_cost_the_master_nothing() {
    let (server, socket) = start(&["-w", "1"]);
    let request = br#"{"id": 1, "command": "show config", "args": []}"#;
    let mut many = Vec::new();
    for _ in 0..3000 {
        many.extend_from_slice(&(request.len() as u32).to_be_bytes());
        many.extend_from_slice(request);
    }
    let rss_before = rss_kib(server.pid);
    let mut hogs = Vec::new();
    for half_close in [false, true] {
        let mut s = UnixStream::connect(&socket).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
        // Stops when the master stops reading (its answers are not read).
        let _ = s.write_all(&many);
        if half_close {
            let _ = s.shutdown(std::net::Shutdown::Write);
        }
        hogs.push(s);
    }
    let ticks = cpu_ticks(server.pid);
    let window = std::time::Instant::now();
    // Meanwhile everyone else is answered.
    for _ in 0..10 {
        assert_eq!(ok(&socket, "show stats")["pid"], server.pid);
    }
    std::thread::sleep(Duration::from_secs(2).saturating_sub(window.elapsed()));
    let used = cpu_ticks(server.pid) - ticks;
    let grown = rss_kib(server.pid).saturating_sub(rss_before);
    eprintln!("master: {used} ticks of CPU in 2 s, RSS +{grown} KiB");
    // 100 ticks a second: a spinning master would use about 200.
    assert!(used < 50, "the master spun: {used} ticks in 2 s");
    assert!(
        grown < 8 * 1024,
        "the master buffered answers: +{grown} KiB"
    );
    drop(hogs);
    assert_eq!(get(server.port, "/").status, 200);
}

/// Once a stop has begun the socket is gone: a client is refused at once,
/// not left waiting while the workers drain.
#[test]
fn a_stopping_master_refuses_control_clients_at_once() {
    let (mut server, socket) = start_app("slow:app", &["-w", "1", "-t", "60"]);
    let port = server.port;
    let slow = std::thread::spawn(move || get(port, "/drain?s=3").status);
    server
        .stderr
        .wait_for(EVENT_TIMEOUT, |t| {
            t.contains("slow: started /drain").then_some(())
        })
        .expect("the slow request started");
    assert_eq!(ok(&socket, "shutdown")["status"], "shutting_down");
    wait_until(EVENT_TIMEOUT, "the socket to go", || !socket.exists());
    let asked = std::time::Instant::now();
    let refused = gunicornc(&socket, "show stats").expect_err("no master answers");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    eprintln!("while draining: {refused}");
    assert!(alive(server.pid), "still draining the slow request");
    assert_eq!(slow.join().unwrap(), 200);
    assert_eq!(server.wait_code(EVENT_TIMEOUT), 0);
}

/// After WINCH (no workers) neither TTOU nor `worker remove` starts one;
/// `worker add` does, and refuses to fork a typo's worth of workers.
#[test]
fn scaling_down_from_no_workers_does_nothing() {
    let (server, socket) = start(&["-w", "1"]);
    server.wait_workers(1);
    server.signal(libc::SIGWINCH);
    wait_until(EVENT_TIMEOUT, "no workers", || server.workers().is_empty());
    server.signal(libc::SIGTTOU);
    let removed = ok(&socket, "worker remove");
    assert_eq!(
        (removed["removed"].clone(), removed["total"].clone()),
        (0.into(), 0.into()),
        "{removed}"
    );
    assert_eq!(ok(&socket, "show stats")["workers_target"], 0);
    assert!(server.workers().is_empty(), "a worker was started");
    assert!(!server.stderr.text().contains("Workers: 0 -> 1"));
    let err = gunicornc(&socket, "worker add 100000").expect_err("too many");
    assert!(err.contains("at most 64 workers at a time"), "{err}");
    assert_eq!(ok(&socket, "worker add")["total"], 1);
    server.wait_live_workers(1, EVENT_TIMEOUT);
}
