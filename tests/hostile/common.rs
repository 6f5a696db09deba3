//! What only the hostile tests need on top of the shared harness and
//! client: the hostile app, the lock that keeps heavy tests apart, and the
//! per-process figures they measure from /proc (RSS, descriptors, ids).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::harness::Corral;

/// Heavy tests (many sockets, load loops, a server each) take this lock so
/// they never run at the same time on the 2-core CI machine.
pub fn heavy() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn apps_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile/apps")
}

/// corral serving `hostile_app:app` from tests/hostile/apps on an
/// ephemeral loopback port.
pub fn hostile_app() -> Corral {
    Corral::app("hostile_app:app").chdir(apps_dir())
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A `/proc/PID/status` field's numbers (e.g. VmRSS in kB, Uid).
pub fn status_field(pid: i32, field: &str) -> Option<Vec<u64>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(&format!("{field}:")))?;
    Some(
        line[field.len() + 1..]
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect(),
    )
}

pub fn rss_kib(pid: i32) -> Option<u64> {
    status_field(pid, "VmRSS").and_then(|v| v.first().copied())
}

pub fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Percentile (0..=100) of a sample, in the sample's unit.
pub fn percentile(samples: &[Duration], p: usize) -> Duration {
    let mut v = samples.to_vec();
    v.sort();
    if v.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((v.len() * p).div_ceil(100))
        .saturating_sub(1)
        .min(v.len() - 1);
    v[idx]
}

/// Raise the soft RLIMIT_NOFILE of this test process to its hard limit.
pub fn raise_nofile(want: u64) -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let target = want.min(hard).max(soft);
    let _ = setrlimit(Resource::RLIMIT_NOFILE, target, hard);
    getrlimit(Resource::RLIMIT_NOFILE).unwrap().0
}
