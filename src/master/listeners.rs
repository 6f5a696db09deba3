//! Getting the listening sockets: inherited from systemd socket units, from
//! systemd's fd store or a previous master (`LISTEN_FDS`), named by the user
//! (`fd://N`), or bound here with gunicorn's retry behaviour.

use std::os::fd::AsFd;
use std::time::Duration;

use crate::config::{BindSpec, Settings};
use crate::sys::net::Addr;
use crate::sys::Listener;

/// The descriptor name of the socket `/metrics` is served on: set by
/// `FileDescriptorName=metrics` in a socket unit, and kept by corral when
/// it hands its own metrics socket to a new master (USR2).
pub const METRICS_NAME: &str = "metrics";

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

/// The listeners and, for each, the descriptor name it travels under
/// (`LISTEN_FDNAMES` on a re-exec, `FDNAME=` in the fd store): systemd's own
/// name for sockets from socket units, [`Listener::own_name`] for sockets
/// corral bound, `corral/fd/N` for `fd://N`.
pub struct Opened {
    pub listeners: Vec<Listener>,
    pub names: Vec<String>,
    /// Where `/metrics` is served, if anywhere.
    pub metrics: Option<Listener>,
}

/// Collect every listener the settings ask for.
///
/// Descriptors from systemd socket units are authoritative: `--bind` is
/// then ignored except for `fd://` entries, as gunicorn does. Descriptors
/// corral bound itself (named `corral/…`: from its fd store, or handed over
/// by a USR2 re-exec) are matched against `--bind`: a bind already open is
/// reused, a new bind is bound, and a stored socket no longer asked for is
/// dropped from the store.
pub fn open(settings: &Settings) -> Result<Opened, OpenError> {
    let mut out: Vec<(Listener, String)> = Vec::new();
    let mut ours: Vec<(Listener, String)> = Vec::new();
    let activated = crate::systemd::take_listen_fds();
    let mut metrics = None;
    for (fd, name) in &activated.fds {
        // systemd (or the previous master) handed these descriptors to us.
        let adopted = crate::sys::process::adopt_inherited(*fd);
        let l = adopted.and_then(|owned| Listener::from_fd(owned, settings.backlog));
        let l = l.map_err(|e| {
            OpenError::plain(format!(
                "LISTEN_FDS: fd {fd}{}: {e}",
                name.as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            ))
        })?;
        let name = name.clone().unwrap_or_default();
        if name == METRICS_NAME {
            metrics = Some(l);
        } else if name.starts_with(Listener::NAME_PREFIX) {
            ours.push((l, name));
        } else {
            out.push((l, name));
        }
    }
    let socket_units = !out.is_empty();
    for spec in &settings.bind {
        match spec {
            BindSpec::Fd(fd) => {
                let name = format!("{}fd/{fd}", Listener::NAME_PREFIX);
                // After a re-exec the socket arrives under this name at a
                // new number; adopting the old number again would be wrong.
                if let Some(i) = ours.iter().position(|(_, n)| *n == name) {
                    out.push(ours.remove(i));
                    continue;
                }
                if !crate::sys::process::fd_is_open(*fd) {
                    return Err(OpenError {
                        message: format!("fd://{fd}: no such open file descriptor"),
                        errno: Some(libc::EBADF),
                    });
                }
                // The user named this inherited descriptor on the command line.
                let l = crate::sys::process::adopt_inherited(*fd)
                    .and_then(|owned| Listener::from_fd(owned, settings.backlog))
                    .map_err(|e| OpenError::plain(format!("fd://{fd}: {e}")))?;
                out.push((l, name));
            }
            _ if socket_units => {}
            BindSpec::Tcp(addrs, text) => {
                for addr in addrs {
                    match take_matching(&mut ours, &Addr::Tcp(*addr)) {
                        Some(found) => out.push(found),
                        None => out.push(named(retry(text, || {
                            Listener::bind_tcp(*addr, settings.backlog, settings.reuse_port)
                        })?)),
                    }
                }
            }
            BindSpec::Unix(path) => match take_matching(&mut ours, &Addr::Unix(Some(path.clone())))
            {
                Some(found) => out.push(found),
                None => {
                    let text = format!("unix:{}", path.display());
                    out.push(named(retry(&text, || {
                        Listener::bind_unix(path, settings.backlog)
                    })?));
                }
            },
        }
    }
    if let Some(addr) = settings.metrics_bind {
        // The socket handed over (by systemd, or the old master) serves
        // unless --metrics-bind now names another address.
        let want = Addr::Tcp(addr);
        let mut pool: Vec<(Listener, String)> = metrics
            .take()
            .into_iter()
            .map(|l| (l, String::new()))
            .collect();
        metrics = match take_matching(&mut pool, &want) {
            Some((l, _)) => Some(l),
            None => {
                let text = format!("--metrics-bind {addr}");
                Some(retry(&text, || Listener::bind_tcp(addr, 64, false))?)
            }
        };
    }
    if socket_units {
        // Under socket activation corral's own sockets (from a re-exec)
        // are kept whatever --bind says: the old master had them too.
        out.append(&mut ours);
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
        // Only what corral bound: systemd already holds its socket units'
        // descriptors, and fd:// ones belong to whoever passed them.
        let fd_prefix = format!("{}fd/", Listener::NAME_PREFIX);
        for (l, name) in &out {
            if name.starts_with(Listener::NAME_PREFIX) && !name.starts_with(&fd_prefix) {
                if let Err(e) = crate::systemd::store_fd(l.as_fd(), name) {
                    tracing::warn!("Cannot keep {} in systemd's fd store: {e}", l.addr());
                }
            }
        }
    }
    let (listeners, names) = out.into_iter().unzip();
    Ok(Opened {
        listeners,
        names,
        metrics,
    })
}

fn named(l: Listener) -> (Listener, String) {
    let name = l.own_name();
    (l, name)
}

/// The inherited socket a bind asks for. Port 0 in a bind means "any port":
/// the socket a previous master bound for it has a real port by now, and
/// binding afresh would move the service to another one.
fn take_matching(pool: &mut Vec<(Listener, String)>, addr: &Addr) -> Option<(Listener, String)> {
    let i = pool.iter().position(|(l, _)| match (&l.addr(), addr) {
        (Addr::Tcp(have), Addr::Tcp(want)) => {
            have.ip() == want.ip() && (want.port() == 0 || have.port() == want.port())
        }
        (have, want) => have == want,
    })?;
    Some(pool.remove(i))
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
