//! The master's signals, one by one, as an operator sends them: worker
//! counts (TTIN, TTOU and its floor, WINCH), log reopening (USR1), the
//! binary upgrade without systemd (USR2 → WINCH old → QUIT old, and the
//! back-out HUP old → QUIT new), the per-request timeout, and HUP reloading
//! a `--preload`ed app.

use std::path::Path;

use crate::client::get;
use crate::harness::{alive, children_of, signal, wait_until, Corral, EVENT_TIMEOUT};

/// Children of `pid` that are workers (a USR2 child is a master).
fn workers_of(pid: i32) -> Vec<i32> {
    children_of(pid)
        .into_iter()
        .filter(|c| {
            std::fs::read_to_string(format!("/proc/{c}/cmdline"))
                .is_ok_and(|t| t.starts_with("corral: worker"))
        })
        .collect()
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// A master started by USR2 is not our child: stop it whatever happens.
struct StopOnDrop(i32);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if alive(self.0) {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(self.0, libc::SIGKILL) };
        }
    }
}

/// How many times the master logged handling `name`.
fn handled(server: &crate::harness::Server, name: &str) -> usize {
    server
        .stderr
        .text()
        .matches(&format!("Handling signal: {name}"))
        .count()
}

#[test]
fn ttin_and_ttou_change_the_worker_count_never_below_one() {
    let server = Corral::app("echo:app").args(["-w", "2"]).start();
    server.wait_workers(2);
    server.signal(libc::SIGTTIN);
    wait_until(EVENT_TIMEOUT, "3 workers after TTIN", || {
        workers_of(server.pid).len() == 3
    });
    // One signal at a time: identical signals pending together are
    // delivered once (POSIX), so each waits for the previous one's effect.
    for want in [2, 1] {
        server.signal(libc::SIGTTOU);
        wait_until(EVENT_TIMEOUT, &format!("{want} workers after TTOU"), || {
            workers_of(server.pid).len() == want
        });
    }
    server.expect_log("Workers: 2 -> 1");
    // The floor: one more TTOU is handled and changes nothing.
    let before = handled(&server, "ttou");
    server.signal(libc::SIGTTOU);
    wait_until(EVENT_TIMEOUT, "the last TTOU to be handled", || {
        handled(&server, "ttou") > before
    });
    assert!(!server.stderr.text().contains("Workers: 1 -> 0"));
    assert_eq!(workers_of(server.pid).len(), 1);
    assert_eq!(get(server.port, "/").status, 200);
}

#[test]
fn winch_stops_every_worker_and_keeps_the_master() {
    let server = Corral::app("echo:app").args(["-w", "2"]).start();
    server.wait_workers(2);
    server.signal(libc::SIGWINCH);
    wait_until(EVENT_TIMEOUT, "no workers after WINCH", || {
        workers_of(server.pid).is_empty()
    });
    assert!(alive(server.pid), "the master must stay after WINCH");
    // TTIN brings one back.
    server.signal(libc::SIGTTIN);
    wait_until(EVENT_TIMEOUT, "a worker after TTIN", || {
        workers_of(server.pid).len() == 1
    });
    wait_until(EVENT_TIMEOUT, "the new worker to answer", || {
        std::panic::catch_unwind(|| get(server.port, "/").status).is_ok_and(|s| s == 200)
    });
}

#[test]
fn usr1_reopens_the_log_files_in_master_and_workers() {
    let dir = tempfile::tempdir().unwrap();
    let access = dir.path().join("access.log");
    let error = dir.path().join("error.log");
    let mut server = Corral::app("echo:app")
        .args([
            "-w",
            "1",
            "--access-logfile",
            access.to_str().unwrap(),
            "--error-logfile",
            error.to_str().unwrap(),
        ])
        .spawn();
    server.wait_ready();
    server.port = server.listening_port_in(&error);
    assert_eq!(get(server.port, "/before").status, 200);
    wait_until(EVENT_TIMEOUT, "the first access line", || {
        std::fs::read_to_string(&access).is_ok_and(|t| t.contains("/before"))
    });
    // What logrotate does: move the files away, then USR1.
    std::fs::rename(&access, dir.path().join("access.log.1")).unwrap();
    std::fs::rename(&error, dir.path().join("error.log.1")).unwrap();
    server.signal(libc::SIGUSR1);
    // The master logs the signal, then reopens: the new file appears.
    wait_until(EVENT_TIMEOUT, "a new error log after USR1", || {
        error.exists()
    });
    // The worker reopens on the forwarded USR1: keep asking until its
    // access line lands in the new file.
    wait_until(EVENT_TIMEOUT, "an access line in the new file", || {
        assert_eq!(get(server.port, "/after").status, 200);
        std::fs::read_to_string(&access).is_ok_and(|t| t.contains("/after"))
    });
    let old = std::fs::read_to_string(dir.path().join("access.log.1")).unwrap();
    assert!(old.contains("/before"), "{old}");
}

#[test]
fn usr2_then_winch_and_quit_old_promotes_the_new_master() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("app.pid");
    let pidfile2 = dir.path().join("app.pid.2");
    let mut server = Corral::app("echo:app")
        .args(["-w", "1", "-p", pidfile.to_str().unwrap()])
        .start();
    let old = server.pid;
    assert_eq!(read_pid(&pidfile), Some(old));
    server.signal(libc::SIGUSR2);
    wait_until(EVENT_TIMEOUT, "PIDFILE.2 naming the new master", || {
        read_pid(&pidfile2).is_some_and(|p| p != old && alive(p))
    });
    let new = read_pid(&pidfile2).unwrap();
    let _stop_new = StopOnDrop(new);
    server.expect_log(&format!("New master (pid:{new}) is serving"));
    let title = std::fs::read_to_string(format!("/proc/{new}/cmdline")).unwrap();
    assert!(
        title.contains("echo:app.2"),
        "new master's title: {title:?}"
    );
    // A second USR2 is refused while the new master runs.
    server.signal(libc::SIGUSR2);
    server.expect_log("USR2 ignored");

    server.signal(libc::SIGWINCH);
    wait_until(EVENT_TIMEOUT, "the old master's workers to stop", || {
        workers_of(old).is_empty()
    });
    // The new master's workers serve alone now.
    let answer = get(server.port, "/");
    assert_eq!(answer.status, 200);

    server.signal(libc::SIGQUIT);
    assert_eq!(server.wait_code(EVENT_TIMEOUT), 0);
    wait_until(
        EVENT_TIMEOUT,
        "promotion: PIDFILE names the new master",
        || read_pid(&pidfile) == Some(new) && !pidfile2.exists(),
    );
    wait_until(EVENT_TIMEOUT, "the promoted master's title", || {
        std::fs::read_to_string(format!("/proc/{new}/cmdline"))
            .is_ok_and(|t| t.contains("echo:app") && !t.contains(".2"))
    });
    assert_eq!(get(server.port, "/").status, 200);
    signal(new, libc::SIGTERM);
    wait_until(EVENT_TIMEOUT, "the new master to stop", || !alive(new));
}

#[test]
fn usr2_back_out_with_hup_old_and_quit_new() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("app.pid");
    let pidfile2 = dir.path().join("app.pid.2");
    let server = Corral::app("echo:app")
        .args(["-w", "1", "-p", pidfile.to_str().unwrap()])
        .start();
    let old = server.pid;
    server.signal(libc::SIGUSR2);
    wait_until(EVENT_TIMEOUT, "the new master", || {
        read_pid(&pidfile2).is_some_and(alive)
    });
    let new = read_pid(&pidfile2).unwrap();
    let _stop_new = StopOnDrop(new);
    server.expect_log(&format!("New master (pid:{new}) is serving"));
    server.signal(libc::SIGWINCH);
    wait_until(EVENT_TIMEOUT, "the old workers to stop", || {
        workers_of(old).is_empty()
    });
    // Back out: the old master starts workers again, the new one leaves.
    server.signal(libc::SIGHUP);
    wait_until(EVENT_TIMEOUT, "the old master's workers to return", || {
        workers_of(old).len() == 1
    });
    signal(new, libc::SIGQUIT);
    wait_until(EVENT_TIMEOUT, "the new master to exit", || !alive(new));
    server.expect_log(&format!(
        "New master (pid:{new}) exited; this master stays in charge"
    ));
    assert_eq!(read_pid(&pidfile), Some(old));
    assert!(
        !pidfile2.exists(),
        "the new master's pidfile must go with it"
    );
    assert_eq!(get(server.port, "/").status, 200);
}

#[test]
fn a_stuck_request_gets_504_its_stack_logged_and_others_still_answer() {
    let server = Corral::app("slow:app")
        .args(["-w", "1", "-k", "gthread", "--threads", "2", "-t", "2"])
        .start();
    let port = server.port;
    let stuck = std::thread::spawn(move || get(port, "/stuck?s=60"));
    server.expect_log("slow: started /stuck");
    // The other thread still answers while one is stuck.
    assert_eq!(get(port, "/quick?s=0").status, 200);
    let r = stuck.join().unwrap();
    assert_eq!(r.status, 504, "the stuck client gets 504 Gateway Timeout");
    server.expect_log("WORKER TIMEOUT (pid:");
    // Where it hung: the app's frame, in the stack dump of the worker.
    server.expect_log("time.sleep(float(query.get(\"s\", [\"1\"])[0]))");
    // A replacement worker serves.
    wait_until(EVENT_TIMEOUT, "a replacement worker to answer", || {
        std::panic::catch_unwind(|| get(port, "/again?s=0").status).is_ok_and(|s| s == 200)
    });
}

#[test]
fn hup_reloads_a_preloaded_app_and_keeps_it_when_the_new_code_breaks() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("reloadable.py"),
        "import part\n\
         def app(environ, start_response):\n\
         \x20   body = part.VERSION.encode()\n\
         \x20   start_response('200 OK', [('Content-Length', str(len(body)))])\n\
         \x20   return [body]\n",
    )
    .unwrap();
    let part = dir.path().join("part.py");
    std::fs::write(&part, "VERSION = 'one'\n").unwrap();
    let server = Corral::app("reloadable:app")
        .chdir(dir.path())
        .args(["-w", "2", "--preload"])
        .start();
    assert_eq!(get(server.port, "/").body, b"one");
    std::fs::write(&part, "VERSION = 'two'\n").unwrap();
    server.signal(libc::SIGHUP);
    server.expect_log("Reload complete");
    wait_until(EVENT_TIMEOUT, "the new code to serve", || {
        get(server.port, "/").body == b"two"
    });
    // Broken code: the reload is refused and the old workers keep serving.
    std::fs::write(&part, "VERSION = (\n").unwrap();
    server.signal(libc::SIGHUP);
    server.expect_log("Reload failed, old workers keep serving");
    for _ in 0..5 {
        assert_eq!(get(server.port, "/").body, b"two");
    }
}

/// SIGINT to a worker while it imports the app (Ctrl-C in a terminal, or a
/// signal to the whole group) is a quick stop of that worker, as gunicorn's
/// worker_int: never an "App failed to load" that halts the master.
#[test]
fn sigint_during_a_workers_import_does_not_halt_the_master() {
    let marks = tempfile::tempdir().unwrap();
    let mut server = Corral::app("slow_import:app")
        .args([
            "-w",
            "1",
            "-e",
            &format!("CORRAL_TEST_IMPORT_MARK={}", marks.path().display()),
        ])
        .spawn();
    let mut importing = 0;
    wait_until(EVENT_TIMEOUT, "a worker to start importing", || {
        importing = std::fs::read_dir(marks.path())
            .unwrap()
            .filter_map(|e| {
                e.ok()?
                    .file_name()
                    .to_str()?
                    .strip_prefix("importing-")?
                    .parse()
                    .ok()
            })
            .next()
            .unwrap_or(0);
        importing > 0
    });
    signal(importing, libc::SIGINT);
    server.wait_ready();
    server.port = server.listening_port();
    assert!(
        alive(server.pid),
        "the master stopped: {}",
        server.stderr.text()
    );
    assert_eq!(get(server.port, "/").text(), "imported");
    assert!(
        !server.stderr.text().contains("App failed to load"),
        "{}",
        server.stderr.text()
    );
}
