//! The control protocol both ends share: where the socket is, how a
//! message is framed, and the client `corral ctl` runs. gunicorn 27's
//! protocol, so its `gunicornc` and corral's client are interchangeable:
//! a 4-byte big-endian length, then that many bytes of JSON. The master's
//! side (the socket and the commands) is `master/control.rs`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

/// The largest message either side accepts. A command is a few words; a
/// larger message is a broken or hostile client (gunicorn's own limit is
/// 16 MiB, which only lets such a client make the master buffer more).
pub const MAX_MESSAGE: usize = 64 * 1024;

/// The largest answer the client reads (`show all` for many workers).
const MAX_ANSWER: usize = 16 << 20;

/// The socket's file name in the default directories: gunicornc's default,
/// so it finds a corral started in the same session without `-s`.
pub const SOCKET_NAME: &str = "gunicorn.ctl";

/// Where the control socket is. `setting` is `--control-socket` (relative
/// to `start_dir`); without it, `gunicorn.ctl` in systemd's
/// `$RUNTIME_DIRECTORY` (the first, when `RuntimeDirectory=` names
/// several), else in `$XDG_RUNTIME_DIR` when that is a directory
/// (gunicorn's rule), else in `HOME/.gunicorn`.
pub fn socket_path(
    setting: Option<&str>,
    start_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    home: &dyn Fn() -> PathBuf,
) -> PathBuf {
    if let Some(p) = setting {
        return start_dir.join(p);
    }
    let var = |k: &str| env(k).filter(|v| !v.is_empty());
    if let Some(dirs) = var("RUNTIME_DIRECTORY") {
        let first = dirs.split(':').next().unwrap_or_default();
        return Path::new(first).join(SOCKET_NAME);
    }
    if let Some(dir) = var("XDG_RUNTIME_DIR").filter(|d| Path::new(d).is_dir()) {
        return Path::new(&dir).join(SOCKET_NAME);
    }
    home().join(".gunicorn").join(SOCKET_NAME)
}

/// One message on the wire.
pub fn frame(msg: &Value) -> Vec<u8> {
    let body = serde_json::to_vec(msg).unwrap_or_default();
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Send `command` to the master listening at `path` and return the reply's
/// `data`, or the error it answered (or why it could not be asked).
pub fn call(path: &Path, command: &str, timeout: Duration) -> Result<Value, String> {
    let shown = path.display();
    let mut s = UnixStream::connect(path).map_err(|e| format!("cannot connect to {shown}: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .and_then(|()| s.set_write_timeout(Some(timeout)))
        .map_err(|e| format!("{shown}: {e}"))?;
    let request = json!({"id": 1, "command": command, "args": []});
    s.write_all(&frame(&request))
        .map_err(|e| format!("cannot send to {shown}: {e}"))?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len)
        .map_err(|e| format!("no answer from {shown}: {e}"))?;
    let len = u32::from_be_bytes(len) as usize;
    // Answers grow with the number of workers; gunicornc's own limit.
    if len > MAX_ANSWER {
        return Err(format!("{shown} answered a {len}-byte message"));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)
        .map_err(|e| format!("short answer from {shown}: {e}"))?;
    let reply: Value =
        serde_json::from_slice(&body).map_err(|e| format!("{shown} answered no JSON: {e}"))?;
    if reply.get("status").and_then(Value::as_str) == Some("error") {
        let why = reply
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("error");
        return Err(why.to_owned());
    }
    Ok(reply.get("data").cloned().unwrap_or(json!({})))
}

/// `corral ctl [-s PATH] COMMAND...`: one command, its answer printed as
/// JSON; exit 0, or 1 with `error: ...` (gunicornc's `-c CMD -j`).
pub fn main(args: &[std::ffi::OsString]) -> i32 {
    const USAGE: &str = "usage: corral ctl [-s PATH] COMMAND...\n\n\
        Send one command to a running corral's control socket and print the answer as JSON.\n\
        Commands: show all|workers|config|stats|listeners|dirty, worker add [N],\n\
        worker remove [N], worker kill PID, reload, reopen, shutdown [graceful|quick], help.\n\
        -s, --socket PATH   the control socket (default: as --control-socket's default)\n";
    let mut socket = None;
    let mut words = Vec::new();
    let mut it = args.iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                return crate::exit::OK;
            }
            "-s" | "--socket" => match it.next() {
                Some(p) => socket = Some(p),
                None => {
                    eprintln!("error: {a} needs a path");
                    return crate::exit::FAILURE;
                }
            },
            _ => words.push(a),
        }
    }
    if words.is_empty() {
        eprint!("{USAGE}");
        return crate::exit::FAILURE;
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
    let path = socket_path(socket.as_deref(), &cwd, &|k| std::env::var(k).ok(), &|| {
        std::env::var_os("HOME").map_or_else(|| "/".into(), PathBuf::from)
    });
    let command = words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ");
    match call(&path, &command, Duration::from_secs(30)) {
        Ok(data) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&data).unwrap_or_default()
            );
            crate::exit::OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            crate::exit::FAILURE
        }
    }
}

/// A word as the master's shell-like split reads it back unchanged.
fn quote(w: &str) -> String {
    if !w.is_empty()
        && w.chars()
            .all(|c| !c.is_whitespace() && !matches!(c, '\'' | '"' | '\\'))
    {
        return w.to_owned();
    }
    format!("'{}'", w.replace('\'', r#"'"'"'"#))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_a_big_endian_length_and_json() {
        let f = frame(&json!({"a": 1}));
        assert_eq!(&f[..4], &[0, 0, 0, 7]);
        assert_eq!(&f[4..], br#"{"a":1}"#);
    }

    #[test]
    fn words_are_quoted_only_when_they_must_be() {
        assert_eq!(quote("add"), "add");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r#"'it'"'"'s'"#);
    }

    #[test]
    fn the_default_path_follows_systemd_then_the_session_then_home() {
        let home = || PathBuf::from("/home/u");
        let start = Path::new("/srv/app");
        let none = |_: &str| None;
        assert_eq!(
            socket_path(Some("ctl.sock"), start, &none, &home),
            Path::new("/srv/app/ctl.sock")
        );
        assert_eq!(
            socket_path(Some("/run/x.sock"), start, &none, &home),
            Path::new("/run/x.sock")
        );
        let systemd = |k: &str| (k == "RUNTIME_DIRECTORY").then(|| "/run/app:/run/other".into());
        assert_eq!(
            socket_path(None, start, &systemd, &home),
            Path::new("/run/app/gunicorn.ctl")
        );
        let tmp = std::env::temp_dir();
        let session = |k: &str| (k == "XDG_RUNTIME_DIR").then(|| tmp.display().to_string());
        assert_eq!(
            socket_path(None, start, &session, &home),
            tmp.join(SOCKET_NAME)
        );
        let missing = |k: &str| (k == "XDG_RUNTIME_DIR").then(|| "/nonexistent/dir".into());
        assert_eq!(
            socket_path(None, start, &missing, &home),
            Path::new("/home/u/.gunicorn/gunicorn.ctl")
        );
    }
}
