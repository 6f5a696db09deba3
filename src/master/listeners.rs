//! Getting the listening sockets: inherited from systemd socket units, from
//! systemd's fd store or a previous master (`LISTEN_FDS`), named by the user
//! (`fd://N`), or bound here with gunicorn's retry behaviour.

use std::time::Duration;

use crate::config::{BindSpec, Settings};
use crate::sys::net::Addr;
use crate::sys::Listener;

/// Bind attempts before giving up, one second apart (gunicorn's numbers).
const BIND_ATTEMPTS: u32 = 5;

/// A start-up failure: the message, and the errno behind it if one applies
/// (sent to systemd as `ERRNO=`).
pub struct OpenError {
    pub message: String,
    pub errno: Option<i32>,
}

impl OpenError {
    fn plain(message: String) -> Self {
        Self {
            message,
            errno: None,
        }
    }
}

/// Collect every listener the settings ask for.
///
/// Descriptors from systemd socket units are authoritative: `--bind` is
/// then ignored except for `fd://` entries, as gunicorn does. Descriptors
/// corral handed over itself (named `corral-…`: its fd store, or a USR2
/// re-exec) are matched against `--bind`: a bind that is already open is
/// reused, a new bind is bound, and a stored socket no longer asked for is
/// dropped from the store.
pub fn open(settings: &Settings) -> Result<Vec<Listener>, OpenError> {
    let mut out = Vec::new();
    let mut ours: Vec<(Listener, String)> = Vec::new();
    let activated = crate::systemd::take_listen_fds();
    for (fd, name) in &activated.fds {
        // SAFETY of adoption: systemd (or the previous master) handed these
        // descriptors to us and nothing in this process has touched them.
        let owned = unsafe { crate::sys::process::adopt_fd(*fd) };
        let l = Listener::from_fd(owned, settings.backlog).map_err(|e| {
            OpenError::plain(format!(
                "LISTEN_FDS: fd {fd}{}: {e}",
                name.as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            ))
        })?;
        match name {
            Some(n) if n.starts_with(Listener::NAME_PREFIX) => ours.push((l, n.clone())),
            _ => out.push(l),
        }
    }
    let socket_units = !out.is_empty();
    for spec in &settings.bind {
        match spec {
            BindSpec::Fd(fd) => {
                if !crate::sys::process::fd_is_open(*fd) {
                    return Err(OpenError {
                        message: format!("fd://{fd}: no such open file descriptor"),
                        errno: Some(libc::EBADF),
                    });
                }
                // SAFETY of adoption: the user named this inherited
                // descriptor on the command line; nothing else owns it.
                let owned = unsafe { crate::sys::process::adopt_fd(*fd) };
                out.push(
                    Listener::from_fd(owned, settings.backlog)
                        .map_err(|e| OpenError::plain(format!("fd://{fd}: {e}")))?,
                );
            }
            _ if socket_units => {}
            BindSpec::Tcp(addrs, text) => {
                for addr in addrs {
                    if let Some(l) = take_matching(&mut ours, &Addr::Tcp(*addr)) {
                        out.push(l);
                        continue;
                    }
                    out.push(retry(text, || {
                        Listener::bind_tcp(*addr, settings.backlog, settings.reuse_port)
                    })?);
                }
            }
            BindSpec::Unix(path) => {
                if let Some(l) = take_matching(&mut ours, &Addr::Unix(Some(path.clone()))) {
                    out.push(l);
                    continue;
                }
                let text = format!("unix:{}", path.display());
                out.push(retry(&text, || {
                    Listener::bind_unix(path, settings.backlog)
                })?);
            }
        }
    }
    if socket_units {
        out.extend(ours.drain(..).map(|(l, _)| l));
    }
    for (_, name) in ours {
        tracing::info!("Dropping stored socket {name}: no longer in --bind");
        crate::systemd::remove_stored_fd(&name);
    }
    if out.is_empty() {
        return Err(OpenError::plain(
            "no listening sockets: give --bind or start under socket activation".into(),
        ));
    }
    if crate::systemd::fd_store_enabled() {
        for l in &out {
            if let Err(e) = crate::systemd::store_fd(std::os::fd::AsFd::as_fd(l), &l.fd_name()) {
                tracing::warn!("Cannot keep {} in systemd's fd store: {e}", l.addr());
            }
        }
    }
    Ok(out)
}

fn take_matching(pool: &mut Vec<(Listener, String)>, addr: &Addr) -> Option<Listener> {
    let i = pool.iter().position(|(l, _)| &l.addr() == addr)?;
    Some(pool.remove(i).0)
}

fn retry(
    what: &str,
    mut bind: impl FnMut() -> std::io::Result<Listener>,
) -> Result<Listener, OpenError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match bind() {
            Ok(l) => return Ok(l),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && attempt < BIND_ATTEMPTS => {
                tracing::error!("Connection in use: {what}");
                tracing::error!("Retrying in 1 second.");
                std::thread::sleep(Duration::from_secs(1));
            }
            Err(e) => {
                return Err(OpenError {
                    message: format!("can't bind {what}: {e}"),
                    errno: e.raw_os_error(),
                })
            }
        }
    }
}
