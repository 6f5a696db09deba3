//! Worker liveness, shared with the master through one shared page per
//! worker: the event loop's heartbeat, when each Python thread started its
//! current request, whether the worker finished booting, requests served,
//! whether it reached `--max-requests` and waits to be replaced, and the
//! one-line reason a worker failed to boot.
//!
//! The master reads these to detect a stuck event loop or a request running
//! past `--timeout` in any thread (gunicorn's gthread never detects the
//! latter), and to report live numbers.

use crate::sys::shm::{monotonic_ms, SharedWords};

const BEAT: usize = 0;
const BOOTED: usize = 1;
const REQUESTS: usize = 2;
const RECYCLE: usize = 3;
const ERROR_LEN: usize = 4;
const ERROR_WORDS: usize = 64;
const ERROR: usize = 5;
/// `--reload`: the worker saw its code change.
const CODE_CHANGED: usize = ERROR + ERROR_WORDS;
const BUSY: usize = CODE_CHANGED + 1;

/// The shared record of one worker.
pub struct Heartbeat {
    words: SharedWords,
    threads: usize,
}

impl Heartbeat {
    /// A record for a worker running `threads` Python threads.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let words = SharedWords::new(BUSY + threads)?;
        words.store(BEAT, monotonic_ms());
        Ok(Self { words, threads })
    }

    /// Called by the worker's event loop on every iteration.
    pub fn beat(&self) {
        self.words.store(BEAT, monotonic_ms());
    }

    /// Milliseconds since the event loop last ran.
    pub fn silent_for_ms(&self) -> u64 {
        monotonic_ms().saturating_sub(self.words.load(BEAT))
    }

    pub fn set_booted(&self) {
        self.words.store(BOOTED, 1);
    }

    pub fn booted(&self) -> bool {
        self.words.load(BOOTED) != 0
    }

    /// Python thread `t` started (Some) or finished (None) a request.
    pub fn set_busy(&self, t: usize, busy: bool) {
        if t < self.threads {
            self.words
                .store(BUSY + t, if busy { monotonic_ms().max(1) } else { 0 });
        }
    }

    /// Thread `t` is busy from now on, unless it already was (an asgi
    /// worker's event loop handing its asyncio loop a request: if that
    /// loop is blocked, it is timed from here).
    pub fn mark_busy(&self, t: usize) {
        if t < self.threads {
            self.words.set_if_zero(BUSY + t, monotonic_ms().max(1));
        }
    }

    /// How long the longest-running current request has been running, and
    /// on which thread.
    pub fn longest_request_ms(&self) -> Option<(usize, u64)> {
        let now = monotonic_ms();
        (0..self.threads)
            .filter_map(|t| {
                let since = self.words.load(BUSY + t);
                (since != 0).then(|| (t, now.saturating_sub(since)))
            })
            .max_by_key(|&(_, d)| d)
    }

    pub fn count_request(&self) {
        self.words.fetch_add(REQUESTS, 1);
    }

    pub fn requests(&self) -> u64 {
        self.words.load(REQUESTS)
    }

    /// The worker served its `--max-requests`: it keeps serving until the
    /// master has a replacement running, then is retired like any other.
    pub fn ask_recycle(&self) {
        self.words.store(RECYCLE, 1);
    }

    pub fn wants_recycle(&self) -> bool {
        self.words.load(RECYCLE) != 0
    }

    /// `--reload`: a file the worker's code came from changed; the master
    /// reloads every worker.
    pub fn ask_reload(&self) {
        self.words.store(CODE_CHANGED, 1);
    }

    pub fn wants_reload(&self) -> bool {
        self.words.load(CODE_CHANGED) != 0
    }

    /// The master started the reload the worker asked for.
    pub fn clear_reload(&self) {
        self.words.store(CODE_CHANGED, 0);
    }

    /// Record why the worker could not boot (read by the master after it
    /// exits, to print one clear line).
    pub fn set_error(&self, msg: &str) {
        let bytes = &msg.as_bytes()[..msg.len().min(ERROR_WORDS * 8)];
        for (i, chunk) in bytes.chunks(8).enumerate() {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.words.store(ERROR + i, u64::from_le_bytes(w));
        }
        self.words.store(ERROR_LEN, bytes.len() as u64);
    }

    pub fn error(&self) -> Option<String> {
        let len = self.words.load(ERROR_LEN) as usize;
        if len == 0 {
            return None;
        }
        let mut bytes = Vec::with_capacity(len);
        for i in 0..len.div_ceil(8) {
            bytes.extend_from_slice(&self.words.load(ERROR + i).to_le_bytes());
        }
        bytes.truncate(len);
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_round_trips_and_truncates() {
        let hb = Heartbeat::new(2).unwrap();
        assert_eq!(hb.error(), None);
        hb.set_error("ModuleNotFoundError: No module named 'nope'");
        assert_eq!(
            hb.error().as_deref(),
            Some("ModuleNotFoundError: No module named 'nope'")
        );
        hb.set_error(&"x".repeat(2000));
        assert_eq!(hb.error().unwrap().len(), ERROR_WORDS * 8);
    }

    #[test]
    fn busy_threads_report_longest() {
        let hb = Heartbeat::new(3).unwrap();
        assert_eq!(hb.longest_request_ms(), None);
        hb.set_busy(1, true);
        assert_eq!(hb.longest_request_ms().map(|(t, _)| t), Some(1));
        hb.set_busy(1, false);
        assert_eq!(hb.longest_request_ms(), None);
    }

    #[test]
    fn shared_with_a_forked_child() {
        // The point of the mapping: a write in the child is seen by the
        // parent.
        let hb = Heartbeat::new(1).unwrap();
        match crate::sys::process::fork().unwrap() {
            crate::sys::process::Forked::Child => {
                hb.count_request();
                hb.set_booted();
                crate::sys::process::exit_now(0);
            }
            crate::sys::process::Forked::Parent(pid) => {
                nix::sys::wait::waitpid(pid, None).unwrap();
                assert!(hb.booted());
                assert_eq!(hb.requests(), 1);
            }
        }
    }
}
