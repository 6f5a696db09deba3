//! Signals as values. The master blocks the signals it obeys and reads them
//! from a signalfd in its loop, so no code runs in signal-handler context at
//! all (stricter than "only enqueue in the handler"), and each signal becomes
//! an [`Intent`] in exactly one place.

use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// What the operator asked for, by signal (gunicorn's meanings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// HUP: reload configuration and replace workers.
    Reload,
    /// TERM: graceful stop.
    GracefulStop,
    /// INT or QUIT: quick stop.
    QuickStop,
    /// TTIN: one more worker.
    Increment,
    /// TTOU: one fewer worker.
    Decrement,
    /// USR1: reopen log files.
    ReopenLogs,
    /// USR2: re-exec a new master.
    Upgrade,
    /// WINCH: stop all workers, keep the master.
    StopWorkers,
    /// CHLD: a child changed state; reap.
    Reap,
}

impl Intent {
    fn from_signal(sig: Signal) -> Option<Self> {
        Some(match sig {
            Signal::SIGHUP => Intent::Reload,
            Signal::SIGTERM => Intent::GracefulStop,
            Signal::SIGINT | Signal::SIGQUIT => Intent::QuickStop,
            Signal::SIGTTIN => Intent::Increment,
            Signal::SIGTTOU => Intent::Decrement,
            Signal::SIGUSR1 => Intent::ReopenLogs,
            Signal::SIGUSR2 => Intent::Upgrade,
            Signal::SIGWINCH => Intent::StopWorkers,
            Signal::SIGCHLD => Intent::Reap,
            _ => return None,
        })
    }
}

/// One signal as the master received it.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub intent: Intent,
    pub signal: Signal,
    /// A process waiting for [`ACK_DONE`] / [`ACK_FAILED`] once the intent
    /// has been carried out (`corral reload`).
    pub reply_to: Option<nix::unistd::Pid>,
}

/// The acknowledgement for a completed reload.
pub const ACK_DONE: Signal = Signal::SIGUSR1;
/// The acknowledgement for a reload that failed (the old workers serve on).
pub const ACK_FAILED: Signal = Signal::SIGUSR2;

/// `corral reload PID`: send HUP to the master PID, asking to be told when
/// the reload is complete, and wait for the answer (at most `limit`).
/// Returns the exit code for the command line.
pub fn request_reload(pid: i32, limit: std::time::Duration) -> i32 {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let target = nix::unistd::Pid::from_raw(pid);
    let mut set = SigSet::empty();
    set.add(ACK_DONE);
    set.add(ACK_FAILED);
    // Blocked before sending, so an answer arriving at once is queued for
    // the signalfd instead of killing us.
    let fd = match set
        .thread_block()
        .and_then(|()| SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK))
    {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("error: corral reload: cannot wait for the answer: {e}");
            return crate::exit::FAILURE;
        }
    };
    if let Err(e) = crate::sys::process::sigqueue(target, Signal::SIGHUP, std::process::id() as i32)
    {
        eprintln!("error: corral reload: cannot signal master {pid}: {e}");
        return crate::exit::FAILURE;
    }
    let deadline = std::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            eprintln!(
                "error: corral reload: master {pid} did not finish reloading within {}s",
                limit.as_secs()
            );
            return crate::exit::FAILURE;
        }
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        let wait = PollTimeout::try_from(left.min(std::time::Duration::from_secs(1)))
            .unwrap_or(PollTimeout::NONE);
        let _ = poll(&mut fds, wait);
        while let Ok(Some(info)) = fd.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(ACK_DONE) => return crate::exit::OK,
                Ok(ACK_FAILED) => {
                    eprintln!("error: corral reload: master {pid} could not reload; its old workers keep serving (see its log)");
                    return crate::exit::FAILURE;
                }
                _ => {}
            }
        }
        // The master may have died meanwhile: no answer will come.
        if nix::sys::signal::kill(target, None).is_err() {
            eprintln!("error: corral reload: master {pid} is gone");
            return crate::exit::FAILURE;
        }
    }
}

/// The master's signals, read from a signalfd.
pub struct MasterSignals {
    fd: SignalFd,
}

const MASTER_SIGNALS: [Signal; 10] = [
    Signal::SIGHUP,
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCHLD,
];

fn master_signal_set() -> SigSet {
    let mut set = SigSet::empty();
    for s in MASTER_SIGNALS {
        set.add(s);
    }
    set
}

/// Block the master's signals in the calling thread now, before the config
/// file or a preloaded app runs: a thread either starts inherits the mask,
/// so the kernel cannot hand it a SIGTERM or SIGHUP whose default action
/// would kill the master outright. [`MasterSignals::install`] then reads
/// them from a signalfd.
pub fn block_master_signals() -> nix::Result<()> {
    master_signal_set().thread_block()
}

impl MasterSignals {
    /// Block the master's signals and open a signalfd for them. Must run
    /// before any child is forked (children unblock their own mask).
    pub fn install() -> nix::Result<Self> {
        let set = master_signal_set();
        set.thread_block()?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        Ok(Self { fd })
    }

    /// Every pending signal, in arrival order, as intents (with the signal
    /// for logging, and who asked to be told when it has been acted on).
    pub fn drain(&self) -> Vec<Received> {
        let mut out = Vec::new();
        while let Ok(Some(info)) = self.fd.read_signal() {
            if let Ok(sig) = Signal::try_from(info.ssi_signo as i32) {
                if let Some(intent) = Intent::from_signal(sig) {
                    // `corral reload` queues its HUP with its own pid as
                    // the payload; a plain kill carries none.
                    let reply_to = (info.ssi_code == libc::SI_QUEUE && info.ssi_int > 0)
                        .then(|| nix::unistd::Pid::from_raw(info.ssi_int));
                    out.push(Received {
                        intent,
                        signal: sig,
                        reply_to,
                    });
                }
            }
        }
        out
    }
}

impl AsFd for MasterSignals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_gunicorn_signal_has_its_intent() {
        assert_eq!(Intent::from_signal(Signal::SIGHUP), Some(Intent::Reload));
        assert_eq!(
            Intent::from_signal(Signal::SIGTERM),
            Some(Intent::GracefulStop)
        );
        assert_eq!(Intent::from_signal(Signal::SIGINT), Some(Intent::QuickStop));
        assert_eq!(
            Intent::from_signal(Signal::SIGQUIT),
            Some(Intent::QuickStop)
        );
        assert_eq!(
            Intent::from_signal(Signal::SIGTTIN),
            Some(Intent::Increment)
        );
        assert_eq!(
            Intent::from_signal(Signal::SIGTTOU),
            Some(Intent::Decrement)
        );
        assert_eq!(
            Intent::from_signal(Signal::SIGUSR1),
            Some(Intent::ReopenLogs)
        );
        assert_eq!(Intent::from_signal(Signal::SIGUSR2), Some(Intent::Upgrade));
        assert_eq!(
            Intent::from_signal(Signal::SIGWINCH),
            Some(Intent::StopWorkers)
        );
        assert_eq!(Intent::from_signal(Signal::SIGCHLD), Some(Intent::Reap));
        assert_eq!(Intent::from_signal(Signal::SIGPIPE), None);
    }
}
