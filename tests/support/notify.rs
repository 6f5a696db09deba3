//! The notify socket a test gives a server as `NOTIFY_SOCKET`, read by a
//! thread all the time, as systemd reads its own: a socket nobody reads
//! fills up (ten datagrams by default) and blocks the sender. Shared by
//! every test binary that starts corral outside systemd.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The datagrams a server sent to its notify socket, read by a thread
/// until the server is dropped.
pub struct Notifications {
    seen: Arc<(Mutex<Vec<String>>, Condvar)>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Notifications {
    pub fn listen(path: &Path) -> Notifications {
        let sock = UnixDatagram::bind(path).expect("bind the notify socket");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let seen: Arc<(Mutex<Vec<String>>, Condvar)> = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (s, st) = (Arc::clone(&seen), Arc::clone(&stop));
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !st.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(n) = sock.recv(&mut buf) {
                    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                    s.0.lock().unwrap().push(msg);
                    s.1.notify_all();
                }
            }
        });
        Notifications { seen, stop }
    }

    /// Every datagram so far.
    pub fn all(&self) -> Vec<String> {
        self.seen.0.lock().unwrap().clone()
    }

    /// Waits up to `timeout` for a datagram after the first `from` ones
    /// that `find` accepts; its index.
    pub fn wait_from(
        &self,
        from: usize,
        timeout: Duration,
        find: impl Fn(&str) -> bool,
    ) -> Option<usize> {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.seen;
        let mut guard = lock.lock().unwrap();
        loop {
            if let Some(i) = (from..guard.len()).find(|&i| find(&guard[i])) {
                return Some(i);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            guard = cvar.wait_timeout(guard, deadline - now).unwrap().0;
        }
    }
}

impl Drop for Notifications {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

pub fn is_ready(msg: &str) -> bool {
    msg.lines().any(|l| l.trim() == "READY=1")
}
