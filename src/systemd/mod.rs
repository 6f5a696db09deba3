//! systemd integration, each protocol through the crate best at it:
//! socket activation (`LISTEN_FDS`) through `listenfd`; the sd_notify
//! protocol (READY, RELOADING, STATUS, MAINPID, WATCHDOG, EXTEND_TIMEOUT,
//! FDSTORE) through `sd-notify`; "is stderr the journal?" through
//! `libsystemd`; per-worker journal streams here (a few bytes of protocol).
//! Native journal entries are written by the logging module with
//! `tracing-journald`. Everything degrades to a no-op outside systemd.

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

/// Whether systemd connected our stderr to the journal (`JOURNAL_STREAM`
/// names stderr's device and inode; checked by `libsystemd`, which compares
/// them rather than trusting the variable alone, since children inherit it
/// even after redirecting stderr).
pub fn stderr_is_journal() -> bool {
    libsystemd::logging::connected_to_journal()
}

/// Whether a service manager listens for sd_notify messages.
pub fn under_systemd() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some()
}

/// Whether this process runs as a systemd service whose main pid systemd
/// tracks (`INVOCATION_ID`, set by systemd for every unit, and a notify
/// socket): then a USR2 upgrade hands the service over with `MAINPID=` and
/// completes by itself. Another supervisor that only offers `NOTIFY_SOCKET`
/// gets readiness messages but gunicorn's manual upgrade flow.
pub fn tracks_main_pid() -> bool {
    under_systemd() && std::env::var_os("INVOCATION_ID").is_some()
}

/// A message to the service manager.
pub enum Notify<'a> {
    Ready,
    /// `RELOADING=1` with the `MONOTONIC_USEC=` that systemd 253+ requires
    /// (and 252 ignores), so both `Type=notify` and `Type=notify-reload`
    /// work.
    Reloading,
    Stopping,
    Status(&'a str),
    MainPid(u32),
    Watchdog,
    Errno(i32),
    /// Push the start-up (or reload) timeout this far from now.
    ExtendTimeout(std::time::Duration),
}

/// Send messages to `$NOTIFY_SOCKET` in one datagram. Failures are logged at
/// debug level only: outside systemd there is nobody to tell.
pub fn notify(msgs: &[Notify<'_>]) {
    use sd_notify::NotifyState as N;
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let mut states: Vec<N<'_>> = Vec::with_capacity(msgs.len() + 1);
    for m in msgs {
        match m {
            Notify::Ready => states.push(N::Ready),
            Notify::Reloading => {
                states.push(N::Reloading);
                if let Ok(now) = N::monotonic_usec_now() {
                    states.push(now);
                }
            }
            Notify::Stopping => states.push(N::Stopping),
            Notify::Status(s) => states.push(N::Status(s)),
            Notify::MainPid(p) => states.push(N::MainPid(*p)),
            Notify::Watchdog => states.push(N::Watchdog),
            Notify::Errno(e) => states.push(N::Errno(*e as u32)),
            Notify::ExtendTimeout(d) => states.push(N::ExtendTimeoutUsec(
                d.as_micros().min(u32::MAX as u128) as u32,
            )),
        }
    }
    if let Err(e) = sd_notify::notify(&states) {
        tracing::debug!("sd_notify failed: {e}");
    }
}

/// The watchdog interval systemd expects pings within, if it watches this
/// process (`WATCHDOG_USEC`, and `WATCHDOG_PID` naming us).
pub fn watchdog_interval() -> Option<std::time::Duration> {
    sd_notify::watchdog_enabled().filter(|d| !d.is_zero())
}

/// Whether listening sockets should be kept in systemd's file descriptor
/// store, so they survive `systemctl restart`. systemd 254+ tells us the
/// store's size in `$FDSTORE`; on older systemd the unit opts in with
/// `Environment=CORRAL_FDSTORE=1` next to `FileDescriptorStoreMax=`.
pub fn fd_store_enabled() -> bool {
    if !under_systemd() {
        return false;
    }
    let positive = |v: &str| v.trim().parse::<u64>().is_ok_and(|n| n > 0);
    std::env::var("FDSTORE").is_ok_and(|v| positive(&v))
        || std::env::var("CORRAL_FDSTORE").is_ok_and(|v| positive(&v))
}

/// Hand a listening socket to the fd store under `name`.
pub fn store_fd(fd: std::os::fd::BorrowedFd<'_>, name: &str) -> std::io::Result<()> {
    use sd_notify::NotifyState as N;
    sd_notify::notify_with_fds(&[N::FdStore, N::FdName(name)], &[fd])
}

/// Remove the stored descriptors named `name` (a bind that went away).
pub fn remove_stored_fd(name: &str) {
    use sd_notify::NotifyState as N;
    let _ = sd_notify::notify(&[N::FdStoreRemove, N::FdName(name)]);
}

/// Connect this process's stdout and stderr to a journal stream of their
/// own, so what the Python app prints is attributed (`_PID`) to the worker
/// that printed it rather than to the stream the master inherited.
pub fn attach_std_streams_to_journal(identifier: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut stream = std::os::unix::net::UnixStream::connect("/run/systemd/journal/stdout")?;
    // The stream protocol's header: identifier, unit id (empty), priority
    // (6 = info), level prefix, then forward to syslog / kmsg / console.
    let header = format!("{identifier}\n\n6\n1\n0\n0\n0\n");
    stream.write_all(header.as_bytes())?;
    // Python apps often print from threads; a shutdown of the read side
    // keeps journald from ever blocking us on a reply.
    let _ = stream.shutdown(std::net::Shutdown::Read);
    crate::sys::process::redirect_std_streams(stream.into())
}
