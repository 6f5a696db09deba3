//! systemd integration: socket activation (`LISTEN_FDS`, through `listenfd`)
//! and the sd_notify protocol (through `sd-notify`). Everything degrades to
//! a no-op outside systemd.

use std::os::fd::RawFd;

/// Descriptors passed by systemd (or a previous master), with their names.
pub struct Activated {
    pub fds: Vec<(RawFd, Option<String>)>,
}

/// Take the sockets systemd passed to this process, if `LISTEN_PID` names
/// us. The variables are removed so children do not see them as their own.
pub fn take_listen_fds() -> Activated {
    let mut lfd = listenfd::ListenFd::from_env();
    let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
        .map(|s| s.split(':').map(str::to_owned).collect())
        .unwrap_or_default();
    let mut fds = Vec::new();
    for i in 0..lfd.len() {
        if let Ok(Some(fd)) = lfd.take_raw_fd(i) {
            fds.push((fd, names.get(i).cloned().filter(|n| !n.is_empty())));
        }
    }
    if !fds.is_empty() {
        // SAFETY-free: the master is single-threaded at this point, so
        // mutating the environment races with nothing.
        for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
            std::env::remove_var(var);
        }
    }
    Activated { fds }
}

/// Whether a service manager listens for sd_notify messages.
pub fn under_systemd() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some()
}

/// A message to the service manager.
pub enum Notify<'a> {
    Ready,
    Reloading,
    Stopping,
    Status(&'a str),
    MainPid(u32),
    Watchdog,
    Errno(i32),
}

/// Send messages to `$NOTIFY_SOCKET` in one datagram. Failures are logged at
/// debug level only: outside systemd there is nobody to tell.
pub fn notify(msgs: &[Notify<'_>]) {
    use sd_notify::NotifyState as N;
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let states: Vec<N<'_>> = msgs
        .iter()
        .map(|m| match m {
            Notify::Ready => N::Ready,
            Notify::Reloading => N::Reloading,
            Notify::Stopping => N::Stopping,
            Notify::Status(s) => N::Status(s),
            Notify::MainPid(p) => N::MainPid(*p),
            Notify::Watchdog => N::Watchdog,
            Notify::Errno(e) => N::Errno(*e as u32),
        })
        .collect();
    if let Err(e) = sd_notify::notify(&states) {
        tracing::debug!("sd_notify failed: {e}");
    }
}
