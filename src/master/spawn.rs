//! Forking a worker.

use std::time::Instant;

use super::{Halt, Life, Master, WorkerProc};
use crate::exit;
use crate::heartbeat::Heartbeat;
use crate::sys::process::{fork, Forked};
use crate::wsgi;

impl Master {
    /// Fork one worker of the current generation; its pid, unless fork
    /// failed (logged, and retried later).
    pub(super) fn spawn_worker(&mut self) -> Result<Option<i32>, Halt> {
        let class = crate::worker::class(self.settings.worker_class);
        let threads = class.python_threads(&self.settings);
        let heartbeat = match Heartbeat::new(threads) {
            Ok(h) => std::sync::Arc::new(h),
            Err(e) => {
                tracing::error!("cannot create worker heartbeat: {e}");
                return Err(Halt(exit::FAILURE));
            }
        };
        let tally = match self.exporter.as_ref().map(|_| crate::metrics::Tally::new()) {
            Some(Ok(t)) => Some(std::sync::Arc::new(t)),
            Some(Err(e)) => {
                tracing::error!("cannot create worker metrics: {e}");
                return Err(Halt(exit::FAILURE));
            }
            None => None,
        };
        let max_requests = jittered(
            self.settings.max_requests,
            self.settings.max_requests_jitter,
        );
        let age = self.next_age;
        self.next_age += 1;
        crate::hooks::pre_fork(&self.settings, self.num_workers, age);
        wsgi::before_fork();
        let forked = fork();
        match forked {
            Ok(Forked::Child) => {
                // The master's control socket and its clients are not the
                // worker's (closed here; the file stays, it is the master's).
                drop(self.control.take());
                drop(self.exporter.take());
                let title = |t: &str| {
                    if let Some(pt) = &self.title {
                        pt.set(t);
                    }
                };
                class.run(crate::worker::WorkerSpec {
                    settings: &self.settings,
                    listeners: &self.listeners,
                    heartbeat: &heartbeat,
                    tally: tally.as_ref(),
                    app: self.app.as_ref(),
                    boot_pipe: &self.boot_w,
                    max_requests,
                    master: nix::unistd::getppid(),
                    title: &title,
                })
            }
            Ok(Forked::Parent(pid)) => {
                wsgi::after_fork_parent();
                self.counts.spawned += 1;
                self.workers.insert(
                    pid.as_raw(),
                    WorkerProc {
                        pid,
                        age,
                        generation: self.generation,
                        heartbeat,
                        tally,
                        spawned: Instant::now(),
                        life: Life::Booting,
                        recycle: None,
                        replaces: None,
                        aborted: None,
                        killed: false,
                    },
                );
                Ok(Some(pid.as_raw()))
            }
            Err(e) => {
                wsgi::after_fork_parent();
                tracing::error!("fork failed: {e}");
                // Try again later rather than spin.
                self.note_death(std::time::Duration::ZERO);
                Ok(None)
            }
        }
    }
}

/// gunicorn's per-worker request limit: `max_requests + randint(0, jitter)`,
/// so workers started together do not all restart together.
fn jittered(max: u64, jitter: u64) -> u64 {
    if max == 0 {
        return 0;
    }
    if jitter == 0 {
        return max;
    }
    // Monotonic clock nanoseconds mixed with the pid: enough spread for
    // de-synchronising restarts; this is not cryptography.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0)
        ^ (std::process::id() as u64).rotate_left(17);
    let mixed = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    max + (mixed >> 32) % (jitter + 1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn jitter_stays_in_range() {
        for _ in 0..100 {
            let v = super::jittered(100, 10);
            assert!((100..=110).contains(&v), "{v}");
        }
        assert_eq!(super::jittered(0, 10), 0);
        assert_eq!(super::jittered(50, 0), 50);
    }
}
