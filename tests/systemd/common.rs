//! What only the systemd tests need on top of the shared harness, client
//! and notify reader: corral started under `systemd-socket-activate`, their
//! app, a GET as strict as they need, and systemd's clock.

use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::client::{fetch, Response};
use crate::harness::{children_with_state, free_port, temp_dir, wait_for};
use crate::notify::Notifications;

/// The test applications (`app.py`, `broken.py`).
pub fn apps_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/systemd/apps")
}

/// `GET path` on a fresh connection; an error unless the whole response
/// (as long as its Content-Length says, which app.py always sends) and the
/// close arrived within `timeout`. A refused connection's error starts with
/// `connect`.
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<Response, String> {
    let resp = fetch(addr, path, timeout)?;
    if resp.header("Content-Length").is_none() {
        return Err(format!("no Content-Length in {resp:?}"));
    }
    Ok(resp)
}

/// The worker pid from a `pid=N` body.
pub fn pid_in(resp: &Response) -> Option<i32> {
    resp.text().strip_prefix("pid=")?.trim().parse().ok()
}

/// corral started by `systemd-socket-activate` on a loopback port, with
/// `NOTIFY_SOCKET` pointing at our own socket. The process group is ours
/// and is killed by its id when this is dropped.
pub struct Activated {
    pub child: Child,
    pub addr: SocketAddr,
    /// The sockets after the first, in the order their names were given.
    pub more: Vec<SocketAddr>,
    pub notify: Notifications,
    pub dir: tempfile::TempDir,
    log: PathBuf,
}

impl Activated {
    /// `env` goes to corral's environment; `args` come before the app.
    pub fn start(app: &str, args: &[&str], env: &[(&str, String)]) -> Activated {
        Self::start_named(app, args, env, &[])
    }

    /// As [`Activated::start`], with the socket named as a `.socket` unit
    /// names it (`LISTEN_FDNAMES`); each name after the first is one more
    /// loopback socket, passed after the first under that name.
    pub fn start_named(
        app: &str,
        args: &[&str],
        env: &[(&str, String)],
        fdnames: &[&str],
    ) -> Activated {
        let dir = temp_dir("sdtest");
        let notify = Notifications::listen(&dir.path().join("notify.sock"));
        let marks = dir.path().join("marks");
        std::fs::create_dir(&marks).expect("markers dir");
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let log = dir.path().join("corral.log");
        let out = std::fs::File::create(&log).expect("log file");
        // systemd-socket-activate execs corral in place, so `$$` is the pid
        // corral will have: that is what WATCHDOG_PID must name.
        let more: Vec<SocketAddr> = fdnames
            .iter()
            .skip(1)
            .map(|_| format!("127.0.0.1:{}", free_port()).parse().unwrap())
            .collect();
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(r#"a=$1; shift; exec systemd-socket-activate -l "$a" -E "WATCHDOG_PID=$$" "$@""#)
            .arg("sh")
            .arg(addr.to_string());
        for a in &more {
            cmd.arg("-l").arg(a.to_string());
        }
        let mut pass = vec![
            (
                "NOTIFY_SOCKET".to_string(),
                notify.path().display().to_string(),
            ),
            ("PATH".to_string(), "/usr/bin:/bin".to_string()),
        ];
        pass.push(("CORRAL_TEST_MARKERS".into(), marks.display().to_string()));
        pass.extend(env.iter().map(|(k, v)| (k.to_string(), v.clone())));
        for (k, v) in &pass {
            cmd.arg("-E").arg(format!("{k}={v}"));
        }
        if !fdnames.is_empty() {
            cmd.arg(format!("--fdname={}", fdnames.join(":")));
        }
        cmd.arg(crate::installed::corral())
            .arg("--chdir")
            .arg(apps_dir())
            .args(args)
            .arg(app)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0);
        let child = cmd.spawn().expect("cannot run systemd-socket-activate");
        Activated {
            child,
            addr,
            more,
            notify,
            dir,
            log,
        }
    }

    /// Where app.py leaves its markers.
    pub fn marks(&self) -> PathBuf {
        self.dir.path().join("marks")
    }

    /// corral's pid (systemd-socket-activate exec'd it in place).
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Open one connection so systemd-socket-activate launches corral.
    pub fn trigger(&self) {
        wait_for(
            Duration::from_secs(10),
            "systemd-socket-activate to listen",
            || TcpStream::connect(self.addr).ok(),
        );
    }

    /// Worker pids: the master's children, exited ones not yet reaped
    /// included (a reload is over only once the master reaped the old
    /// workers).
    pub fn workers(&self) -> Vec<i32> {
        children_with_state(self.pid())
            .into_iter()
            .map(|(pid, _)| pid)
            .collect()
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).expect("signal corral");
    }

    /// Wait for corral to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let what = format!("corral (pid {}) to exit", self.pid());
        let child = &mut self.child;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for(timeout, &what, || child.try_wait().ok().flatten())
        }));
        r.unwrap_or_else(|_| panic!("{what}: timed out\nlog:\n{}", self.log()))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Activated {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            // The group we created at spawn: corral and its workers.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(self.pid()),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = self.child.wait();
        }
    }
}

/// CLOCK_MONOTONIC in microseconds, as systemd's MONOTONIC_USEC counts.
pub fn monotonic_usec() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("clock");
    t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000
}
