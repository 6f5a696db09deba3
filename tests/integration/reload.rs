//! Code reloading: `--reload` (each engine, and with `--preload`), new code
//! that does not import, `--reload-extra-file`, and `corral reload PID`,
//! the command the shipped units reload with.

use std::path::Path;
use std::process::Command;

use crate::client::get;
use crate::harness::{run, wait_until, Corral, Server, EVENT_TIMEOUT};

/// An app whose answer comes from a module it imports, so a change to an
/// imported module (not only the app's own file) must reload it.
fn write_app(dir: &Path, version: &str) {
    std::fs::write(
        dir.join("reloadable.py"),
        "import helper\n\n\
         def app(environ, start_response):\n    \
             body = helper.VERSION.encode()\n    \
             start_response('200 OK', [('Content-Length', str(len(body)))])\n    \
             return [body]\n",
    )
    .unwrap();
    write_helper(dir, &format!("VERSION = {version:?}\n"));
}

/// Written as editors save: a new file renamed over the old one.
fn write_helper(dir: &Path, text: &str) {
    let tmp = dir.join(".helper.py.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join("helper.py")).unwrap();
}

fn serves(server: &Server, want: &str) {
    wait_until(
        EVENT_TIMEOUT,
        &format!("the server to answer {want:?}"),
        || get(server.port, "/").text() == want,
    );
}

fn reloads_and_survives_broken_code(args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    write_app(dir.path(), "v1");
    let server = Corral::app("reloadable:app")
        .chdir(dir.path())
        .args(["--reload", "-w", "2"])
        .args(args.iter().copied())
        .start();
    server.wait_workers(2);
    assert_eq!(get(server.port, "/").text(), "v1");

    write_helper(dir.path(), "VERSION = 'v2'\n");
    serves(&server, "v2");
    server.expect_log("helper.py modified");
    // The reload is over (the v1 workers are gone) before the next save.
    server.wait_live_workers(2, EVENT_TIMEOUT);

    // A syntax error: the workers serving v2 stay, the error is logged.
    write_helper(dir.path(), "VERSION = (\n");
    server.expect_log("Reload failed, old workers keep serving");
    for _ in 0..5 {
        assert_eq!(get(server.port, "/").text(), "v2");
    }
    // Fixed: the next save reloads.
    write_helper(dir.path(), "VERSION = 'v3'\n");
    serves(&server, "v3");
    // The generation that served v2 retires once v3's serves.
    server.wait_live_workers(2, EVENT_TIMEOUT);
}

#[test]
fn reload_inotify() {
    reloads_and_survives_broken_code(&[]);
}

#[test]
fn reload_poll() {
    reloads_and_survives_broken_code(&["--reload-engine", "poll"]);
}

#[test]
fn reload_with_preload() {
    reloads_and_survives_broken_code(&["--preload"]);
}

#[test]
fn reload_extra_file() {
    let dir = tempfile::tempdir().unwrap();
    write_app(dir.path(), "v1");
    let conf = dir.path().join("settings.toml");
    std::fs::write(&conf, "a = 1\n").unwrap();
    let server = Corral::app("reloadable:app")
        .chdir(dir.path())
        .args(["--reload", "-w", "1", "--reload-extra-file"])
        .args([conf.to_str().unwrap()])
        .start();
    let before = server.wait_workers(1);
    std::fs::write(&conf, "a = 2\n").unwrap();
    server.expect_log("settings.toml modified");
    wait_until(EVENT_TIMEOUT, "a new worker", || {
        let now = server.workers();
        now.len() == 1 && now != before
    });
    assert_eq!(get(server.port, "/").text(), "v1");
}

/// `corral reload PID`: exit 0 once the new workers serve; exit 1 when the
/// new code does not import, with the old workers still serving.
#[test]
fn corral_reload_waits_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    write_app(dir.path(), "v1");
    let server = Corral::app("reloadable:app")
        .chdir(dir.path())
        .args(["-w", "2"])
        .start();
    let first = server.wait_workers(2);
    let reload = || corral_reload(server.pid);
    write_helper(dir.path(), "VERSION = 'v2'\n");
    let done = reload();
    assert!(done.status.success(), "{}", done.stderr);
    // Done means done: only new workers, serving the new code.
    let now = server.workers();
    assert!(now.iter().all(|p| !first.contains(p)), "{first:?} {now:?}");
    assert_eq!(get(server.port, "/").text(), "v2");

    write_helper(dir.path(), "VERSION = (\n");
    let failed = reload();
    assert_eq!(failed.status.code(), Some(1), "{}", failed.stderr);
    assert_eq!(get(server.port, "/").text(), "v2");
    // The failed workers may still be finishing their import.
    let serving = server.wait_live_workers(2, EVENT_TIMEOUT);
    assert_eq!(get(server.port, "/").text(), "v2");

    // A worker that dies now is respawned into the broken code on disk:
    // logged, retried with back-off, and the other worker serves on.
    crate::harness::signal(serving[0], libc::SIGKILL);
    server.expect_log("A new worker could not load the app");
    for _ in 0..5 {
        assert_eq!(get(server.port, "/").text(), "v2");
    }
    assert!(crate::harness::alive(server.pid), "the master stopped");
    // Fixed: the next reload succeeds and the server is whole again.
    write_helper(dir.path(), "VERSION = 'v3'\n");
    let fixed = reload();
    assert!(fixed.status.success(), "{}", fixed.stderr);
    server.wait_live_workers(2, EVENT_TIMEOUT);
    assert_eq!(get(server.port, "/").text(), "v3");

    let usage = {
        let mut cmd = Command::new(crate::installed::corral());
        cmd.args(["reload", "nope"]);
        run(cmd, EVENT_TIMEOUT)
    };
    assert_eq!(usage.status.code(), Some(1));
    assert!(
        usage.stderr.contains("usage: corral reload PID"),
        "{}",
        usage.stderr
    );
}

fn corral_reload(pid: i32) -> crate::harness::Finished {
    let mut cmd = Command::new(crate::installed::corral());
    cmd.args(["reload", &pid.to_string()]);
    run(cmd, EVENT_TIMEOUT)
}

/// Reloads whose new code does not import, each followed by the reload
/// that fixes it, under load from fresh and kept-alive clients, for each
/// worker class: not one request lost. (`CORRAL_LONG=1`: ten times the
/// cycles.)
#[test]
fn failed_and_fixed_reloads_lose_nothing_under_load() {
    let cycles = if std::env::var_os("CORRAL_LONG").is_some() {
        50
    } else {
        5
    };
    for class in [&["-k", "sync"][..], &["-k", "gthread", "--threads", "4"]] {
        let dir = tempfile::tempdir().unwrap();
        write_app(dir.path(), "v0");
        let server = Corral::app("reloadable:app")
            .chdir(dir.path())
            .args(["-w", "2"])
            .args(class.iter().copied())
            .start();
        server.wait_workers(2);
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], server.port));
        let load = crate::load::Load::start(addr, 3, 3);
        load.progress(50, EVENT_TIMEOUT);
        for cycle in 1..=cycles {
            write_helper(dir.path(), "VERSION = (\n");
            let failed = corral_reload(server.pid);
            assert_eq!(
                failed.status.code(),
                Some(1),
                "cycle {cycle}: {}",
                failed.stderr
            );
            load.progress(50, EVENT_TIMEOUT);
            write_helper(dir.path(), &format!("VERSION = 'v{cycle}'\n"));
            let fixed = corral_reload(server.pid);
            assert!(fixed.status.success(), "cycle {cycle}: {}", fixed.stderr);
            load.progress(50, EVENT_TIMEOUT);
        }
        let tally = load.finish();
        eprintln!(
            "{class:?}, {cycles} failed and fixed reloads: {}",
            tally.summary()
        );
        assert_eq!(tally.lost, 0, "{class:?}: {}", tally.summary());
        assert_eq!(get(server.port, "/").text(), format!("v{cycles}"));
        assert!(
            !server.stderr.text().contains("Shutting down"),
            "{}",
            server.stderr.text()
        );
    }
}
