//! The notify socket a test gives a server as `NOTIFY_SOCKET`, read by a
//! thread all the time, as systemd reads its own: a socket nobody reads
//! fills up (ten datagrams by default) and blocks the sender. Every test
//! binary that watches corral's sd_notify messages uses this one reader,
//! whether the harness started corral or `systemd-socket-activate` did.
//!
//! Each datagram is kept with the time it came and its sender's pid (from
//! SCM_CREDENTIALS, which is what systemd's `NotifyAccess=main` checks), so
//! tests can time watchdog pings and tell the master's messages from a
//! worker's.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::io::IoSliceMut;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags};

/// One sd_notify datagram.
#[derive(Debug, Clone)]
pub struct Msg {
    /// When the reader thread received it.
    pub at: Instant,
    /// The sender, from SCM_CREDENTIALS.
    pub pid: Option<i32>,
    pub raw: String,
}

impl Msg {
    /// The value of `KEY=value` in this message.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.raw
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
    }

    pub fn keys(&self) -> Vec<&str> {
        self.raw
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k))
            .collect()
    }

    pub fn is_ready(&self) -> bool {
        self.raw.lines().any(|l| l.trim() == "READY=1")
    }

    /// Only progress: STATUS= updates (they come periodically) and
    /// EXTEND_TIMEOUT_USEC= (while start-up or stop takes long). They are
    /// not part of the state sequence.
    pub fn status_only(&self) -> bool {
        self.keys()
            .iter()
            .all(|k| matches!(*k, "STATUS" | "EXTEND_TIMEOUT_USEC"))
    }
}

/// Every datagram so far, and the condition its reader signals.
type Seen = Arc<(Mutex<Vec<Msg>>, Condvar)>;

/// The datagrams a server sent to its notify socket, read by a thread
/// until this is dropped.
pub struct Notifications {
    path: PathBuf,
    seen: Seen,
    stop: Arc<AtomicBool>,
    /// Datagrams already taken by [`Notifications::next`], so each wait
    /// looks only at what came after the last one it returned (after a
    /// reload, the reload's own READY=1, not the first).
    taken: usize,
}

impl Notifications {
    pub fn listen(path: &Path) -> Notifications {
        let sock = UnixDatagram::bind(path).expect("bind the notify socket");
        setsockopt(&sock, sockopt::PassCred, &true).expect("SO_PASSCRED on the notify socket");
        // The thread wakes this often to notice the drop.
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let seen = Seen::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (Arc::clone(&seen), Arc::clone(&stop));
        thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                if let Some(msg) = receive(&sock) {
                    s.0.lock().unwrap().push(msg);
                    s.1.notify_all();
                }
            }
        });
        Notifications {
            path: path.to_path_buf(),
            seen,
            stop,
            taken: 0,
        }
    }

    /// The socket's path, for `NOTIFY_SOCKET`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every datagram so far.
    pub fn all(&self) -> Vec<Msg> {
        self.seen.0.lock().unwrap().clone()
    }

    /// Every datagram's text so far, for failure messages.
    pub fn raws(&self) -> Vec<String> {
        self.all().into_iter().map(|m| m.raw).collect()
    }

    /// The datagrams that are not only progress, in order.
    pub fn states(&self) -> Vec<Msg> {
        self.all()
            .into_iter()
            .filter(|m| !m.status_only())
            .collect()
    }

    /// Waits up to `timeout` for the first datagram after those already
    /// taken that `find` accepts, and takes it.
    pub fn next(&mut self, timeout: Duration, find: impl Fn(&Msg) -> bool) -> Option<Msg> {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.seen;
        let mut guard = lock.lock().unwrap();
        loop {
            if let Some(i) = (self.taken..guard.len()).find(|&i| find(&guard[i])) {
                self.taken = i + 1;
                return Some(guard[i].clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            guard = cvar.wait_timeout(guard, deadline - now).unwrap().0;
        }
    }

    /// As [`Notifications::next`], panicking with every datagram received
    /// when none comes in time.
    pub fn expect(&mut self, what: &str, timeout: Duration, find: impl Fn(&Msg) -> bool) -> Msg {
        self.next(timeout, find).unwrap_or_else(|| {
            panic!(
                "no sd_notify message {what} within {timeout:?}; received: {:#?}",
                self.raws()
            )
        })
    }

    /// Waits until no datagram has come for `quiet`: once a sender has
    /// exited, what it sent before is then all here.
    pub fn settle(&self, quiet: Duration) {
        let (lock, cvar) = &*self.seen;
        let mut guard = lock.lock().unwrap();
        loop {
            let count = guard.len();
            let (g, waited) = cvar
                .wait_timeout_while(guard, quiet, |seen| seen.len() == count)
                .unwrap();
            if waited.timed_out() {
                return;
            }
            guard = g;
        }
    }
}

impl Drop for Notifications {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One datagram with its sender's credentials; `None` when the read timed
/// out.
fn receive(sock: &UnixDatagram) -> Option<Msg> {
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!(nix::sys::socket::UnixCredentials);
    let (n, pid) = {
        let msg = recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        )
        .ok()?;
        let mut pid = None;
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                if let ControlMessageOwned::ScmCredentials(cred) = c {
                    pid = Some(cred.pid());
                }
            }
        }
        (msg.bytes, pid)
    };
    Some(Msg {
        at: Instant::now(),
        pid,
        raw: String::from_utf8_lossy(&buf[..n]).into_owned(),
    })
}
