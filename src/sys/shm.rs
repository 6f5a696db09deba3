//! Memory shared between the master and one worker: an anonymous
//! `MAP_SHARED` mapping created by the master before fork. Both sides see
//! the same page, so heartbeats cost an atomic store instead of the
//! file-mtime dance gunicorn does (no disk I/O on the hot path).

use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::mman::{mmap_anonymous, munmap, MapFlags, ProtFlags};

/// A mapping of `len` u64 words shared with forked children.
pub struct SharedWords {
    ptr: NonNull<AtomicU64>,
    len: usize,
}

// SAFETY: the mapping is only accessed through atomics, which are safe to
// share between threads; the pointer stays valid until drop.
unsafe impl Send for SharedWords {}
// SAFETY: as above.
unsafe impl Sync for SharedWords {}

impl SharedWords {
    /// Map `len` zeroed words, shared with every child forked afterwards.
    pub fn new(len: usize) -> std::io::Result<Self> {
        let bytes = NonZeroUsize::new(len.max(1) * 8).expect("non-zero");
        // SAFETY: a fresh anonymous mapping aliases nothing; the kernel
        // zero-fills it, and zero is a valid AtomicU64.
        let ptr = unsafe {
            mmap_anonymous(
                None,
                bytes,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        }?;
        Ok(Self {
            ptr: ptr.cast(),
            len: len.max(1),
        })
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < self.len, "shared word {i} out of range {}", self.len);
        // SAFETY: i is in bounds, the mapping is live for &self's lifetime
        // and suitably aligned (page-aligned base, 8-byte words).
        unsafe { &*self.ptr.as_ptr().add(i) }
    }

    pub fn load(&self, i: usize) -> u64 {
        self.word(i).load(Ordering::Acquire)
    }

    pub fn store(&self, i: usize, v: u64) {
        self.word(i).store(v, Ordering::Release)
    }

    /// Store `v` only where the word is 0.
    pub fn set_if_zero(&self, i: usize, v: u64) {
        let _ = self
            .word(i)
            .compare_exchange(0, v, Ordering::AcqRel, Ordering::Acquire);
    }

    pub fn fetch_add(&self, i: usize, v: u64) -> u64 {
        self.word(i).fetch_add(v, Ordering::AcqRel)
    }
}

impl Drop for SharedWords {
    fn drop(&mut self) {
        // SAFETY: we own the mapping and nothing borrows it past drop.
        let _ = unsafe { munmap(self.ptr.cast(), self.len * 8) };
    }
}

/// Milliseconds on CLOCK_MONOTONIC_COARSE, which is system-wide, so master
/// and workers compare the same clock. The coarse clock (as fine as the
/// kernel's tick, a few milliseconds) serves timeouts counted in seconds,
/// and reading it costs a Python thread less on every request: it is a
/// load of what the tick stored, not a read of the time-stamp counter.
pub fn monotonic_ms() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC_COARSE)
        .expect("CLOCK_MONOTONIC_COARSE is always available on Linux");
    ts.tv_sec() as u64 * 1000 + ts.tv_nsec() as u64 / 1_000_000
}
