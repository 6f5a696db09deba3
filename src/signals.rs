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

impl MasterSignals {
    /// Block the master's signals and open a signalfd for them. Must run
    /// before any child is forked (children unblock their own mask).
    pub fn install() -> nix::Result<Self> {
        let mut set = SigSet::empty();
        for s in MASTER_SIGNALS {
            set.add(s);
        }
        set.thread_block()?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        Ok(Self { fd })
    }

    /// Every pending signal, in arrival order, as intents (with the signal
    /// name for logging).
    pub fn drain(&self) -> Vec<(Intent, Signal)> {
        let mut out = Vec::new();
        while let Ok(Some(info)) = self.fd.read_signal() {
            if let Ok(sig) = Signal::try_from(info.ssi_signo as i32) {
                if let Some(i) = Intent::from_signal(sig) {
                    out.push((i, sig));
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
