//! USR2: re-executing a new master that inherits the listening sockets, and
//! the promotion of that new master when the old one leaves.
//!
//! The new master is a child of the old one. It receives the listeners as
//! descriptors 3..3+N with `LISTEN_FDS`/`LISTEN_PID`/`LISTEN_FDNAMES` — the
//! same protocol as systemd socket activation, so one code path adopts both —
//! and a pipe (`CORRAL_READY_FD`) on which it reports that its workers serve.
//! Under systemd (a unit: `INVOCATION_ID` and `NOTIFY_SOCKET` set) the old
//! master then hands the service over with
//! `MAINPID=<new>` and drains itself, so `systemctl kill -s USR2` completes a
//! zero-downtime upgrade on its own. Without systemd the old master waits for
//! the operator (gunicorn's USR2 → WINCH → QUIT flow, or HUP old → QUIT new
//! to back out).

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::unistd::Pid;

use super::{Master, Phase};
use crate::sys::process::{exec_with_fds, fork, unblock_all_signals, Forked};
use crate::systemd::{self, Notify};

/// Environment variable naming the old master's pid in a re-exec'd master.
pub const ENV_PARENT: &str = "CORRAL_UPGRADE_FROM";
/// Environment variable naming the descriptor the new master reports
/// readiness on.
pub const ENV_READY_FD: &str = "CORRAL_READY_FD";

/// What a master learned at start-up about being a re-exec child.
pub struct Upgrade {
    /// The old master, while this one is not promoted yet.
    pub parent: Option<Pid>,
    /// Where to report readiness to the old master.
    pub ready_fd: Option<OwnedFd>,
    /// Under systemd: readiness was reported, so the old master has sent
    /// (or is sending) `MAINPID=` for us and systemd treats us as the
    /// service's main process even before the old master has exited.
    pub handed_over: bool,
}

/// Read (and remove from the environment) the re-exec markers. Called at
/// start-up while the process is still single-threaded.
pub fn take_upgrade_env() -> Upgrade {
    let parent = std::env::var(ENV_PARENT)
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .map(Pid::from_raw)
        .filter(|p| *p == nix::unistd::getppid());
    let ready_fd = std::env::var(ENV_READY_FD)
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|_| parent.is_some())
        // The old master placed this pipe at that number for us.
        .and_then(|fd| crate::sys::process::adopt_inherited(fd).ok());
    std::env::remove_var(ENV_PARENT);
    std::env::remove_var(ENV_READY_FD);
    Upgrade {
        parent,
        ready_fd,
        handed_over: false,
    }
}

/// What a USR2 re-exec runs: the interpreter corral runs on and the command
/// line that started it (the console script's path, or `-m corral`). The
/// new master imports the `corral` installed at that moment, so a
/// `pip install` of a newer build followed by USR2 upgrades the code.
#[derive(Debug, Clone)]
pub struct Relaunch {
    pub program: PathBuf,
    /// The full argv, `argv[0]` included.
    pub argv: Vec<OsString>,
}

impl Master {
    /// USR2: start a new master, unless one is already running or this
    /// master is itself a new master that has not been promoted.
    pub(super) fn reexec(&mut self) {
        if let Some(pid) = self.reexec_child {
            tracing::warn!("USR2 ignored: a new master (pid:{pid}) is already running");
            return;
        }
        if self.upgrade.parent.is_some() {
            tracing::warn!("USR2 ignored: this master has not been promoted yet");
            return;
        }
        let (ready_r, ready_w) = match nix::unistd::pipe2(
            nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK,
        ) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("USR2 failed: pipe: {e}");
                return;
            }
        };
        let mut keep: Vec<i32> = self.listeners.iter().map(|l| l.as_raw()).collect();
        let mut names = self.listener_names.clone();
        // The metrics socket travels under systemd's name for it, so the
        // new master tells it from the sockets it serves on.
        if let Some(e) = &self.exporter {
            keep.push(e.listener().as_raw());
            names.push(super::listeners::METRICS_NAME.to_owned());
        }
        let n = keep.len();
        keep.push(ready_w.as_raw_fd());
        let program = self.relaunch.program.clone();
        let me = std::process::id();
        crate::hooks::pre_exec(&self.settings, self.num_workers);
        match fork() {
            Ok(Forked::Child) => {
                // Only async-signal-safe work from here to exec beyond the
                // environment build: the master is single-threaded, so the
                // allocator is in a consistent state.
                let _ = unblock_all_signals();
                let child = std::process::id();
                let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
                    .filter(|(k, _)| {
                        !matches!(
                            k.to_str(),
                            Some("LISTEN_FDS" | "LISTEN_PID" | "LISTEN_FDNAMES")
                        )
                    })
                    .collect();
                env.push(("LISTEN_FDS".into(), n.to_string().into()));
                env.push(("LISTEN_PID".into(), child.to_string().into()));
                env.push(("LISTEN_FDNAMES".into(), names.join(":").into()));
                env.push((ENV_PARENT.into(), me.to_string().into()));
                // systemd watches the main pid; once this child is promoted
                // to it, its pings are the ones that count.
                if std::env::var_os("WATCHDOG_USEC").is_some() {
                    env.retain(|(k, _)| k != "WATCHDOG_PID");
                    env.push(("WATCHDOG_PID".into(), child.to_string().into()));
                }
                env.push((ENV_READY_FD.into(), (3 + n).to_string().into()));
                let _ = std::env::set_current_dir(&self.start_dir);
                let err = exec_with_fds(&program, &self.relaunch.argv, &env, &keep);
                // Logging from here is safe enough: the child is a copy of a
                // single-threaded process.
                tracing::error!("USR2: cannot execute {}: {err}", program.display());
                crate::sys::process::exit_now(crate::exit::FAILURE);
            }
            Ok(Forked::Parent(pid)) => {
                drop(ready_w);
                tracing::info!("Re-executing: new master starting (pid:{pid})");
                self.reexec_child = Some(pid);
                self.reexec_ready = Some(ready_r);
                self.phase = Phase::Upgrading;
            }
            Err(e) => tracing::error!("USR2 failed: fork: {e}"),
        }
    }

    /// The new master reported that it serves.
    pub(super) fn on_new_master_ready(&mut self) -> bool {
        let Some(pid) = self.reexec_child else {
            return false;
        };
        self.reexec_ready = None;
        tracing::info!("New master (pid:{pid}) is serving");
        if systemd::tracks_main_pid() {
            // Hand the service to the new master, then leave gracefully:
            // systemd keeps the unit active because its main process is
            // now the new master.
            let status = format!("Upgrade: handing over to new master {pid}");
            systemd::notify(&[
                Notify::MainPid(pid.as_raw() as u32),
                Notify::Status(&status),
            ]);
            tracing::info!("Handed the service over to pid {pid}; stopping this master");
            return true;
        }
        self.phase = Phase::Running;
        false
    }

    /// The new master exited before being promoted (backed out, or it
    /// failed to start).
    pub(super) fn on_reexec_child_exit(&mut self, pid: Pid) {
        if self.reexec_child == Some(pid) {
            tracing::info!("New master (pid:{pid}) exited; this master stays in charge");
            self.reexec_child = None;
            self.reexec_ready = None;
            if self.phase == Phase::Upgrading {
                self.phase = Phase::Running;
            }
        }
    }

    /// A re-exec'd master becomes the master once the old one is gone:
    /// names and pidfile go back to their configured values.
    pub(super) fn check_promotion(&mut self) {
        let Some(parent) = self.upgrade.parent else {
            return;
        };
        if nix::unistd::getppid() == parent {
            return;
        }
        self.upgrade.parent = None;
        tracing::info!("Master has been promoted.");
        if let Some(p) = &self.settings.pidfile {
            let _ = std::fs::write(p, format!("{}\n", std::process::id()));
            let _ = std::fs::remove_file(super::suffixed(p));
        }
        self.set_title();
        systemd::notify(&[Notify::Status(&self.status_text())]);
    }

    /// Tell the old master this one serves (once).
    pub(super) fn report_ready_to_parent(&mut self) {
        if let Some(fd) = self.upgrade.ready_fd.take() {
            let _ = nix::unistd::write(&fd, b"1");
            self.upgrade.handed_over = systemd::tracks_main_pid();
        }
    }
}
