//! Getting the listening sockets: inherited from systemd or a previous
//! master (`LISTEN_FDS`), named by the user (`fd://N`), or bound here with
//! gunicorn's retry behaviour.

use std::time::Duration;

use crate::config::{BindSpec, Settings};
use crate::sys::Listener;

/// Bind attempts before giving up, one second apart (gunicorn's numbers).
const BIND_ATTEMPTS: u32 = 5;

/// Collect every listener the settings ask for. With socket activation the
/// inherited sockets are used and `--bind` is ignored except for `fd://`
/// entries, as gunicorn does.
pub fn open(settings: &Settings) -> Result<Vec<Listener>, String> {
    let mut out = Vec::new();
    let activated = crate::systemd::take_listen_fds();
    for (fd, name) in &activated.fds {
        // SAFETY of adoption: systemd handed these descriptors to us and
        // nothing in this process has touched them yet.
        let owned = unsafe { crate::sys::process::adopt_fd(*fd) };
        let l = Listener::from_fd(owned, settings.backlog).map_err(|e| {
            format!(
                "LISTEN_FDS: fd {fd}{}: {e}",
                name.as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            )
        })?;
        out.push(l);
    }
    for spec in &settings.bind {
        match spec {
            BindSpec::Fd(fd) => {
                if !crate::sys::process::fd_is_open(*fd) {
                    return Err(format!("fd://{fd}: no such open file descriptor"));
                }
                // SAFETY of adoption: the user named this inherited
                // descriptor on the command line; nothing else owns it.
                let owned = unsafe { crate::sys::process::adopt_fd(*fd) };
                out.push(
                    Listener::from_fd(owned, settings.backlog)
                        .map_err(|e| format!("fd://{fd}: {e}"))?,
                );
            }
            _ if !activated.fds.is_empty() => {}
            BindSpec::Tcp(addrs, text) => {
                for addr in addrs {
                    out.push(retry(text, || {
                        Listener::bind_tcp(*addr, settings.backlog, settings.reuse_port)
                    })?);
                }
            }
            BindSpec::Unix(path) => {
                let text = format!("unix:{}", path.display());
                out.push(retry(&text, || {
                    Listener::bind_unix(path, settings.backlog)
                })?);
            }
        }
    }
    if out.is_empty() {
        return Err("no listening sockets: give --bind or start under socket activation".into());
    }
    Ok(out)
}

fn retry(
    what: &str,
    mut bind: impl FnMut() -> std::io::Result<Listener>,
) -> Result<Listener, String> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match bind() {
            Ok(l) => return Ok(l),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && attempt < BIND_ATTEMPTS => {
                tracing::error!("Connection in use: {what}");
                tracing::error!("connection to {what} failed: {e}");
                tracing::error!("Retrying in 1 second.");
                std::thread::sleep(Duration::from_secs(1));
            }
            Err(e) => return Err(format!("can't bind {what}: {e}")),
        }
    }
}
