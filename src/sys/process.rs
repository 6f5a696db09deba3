//! Process control: fork, exec, the parent-death signal, process titles,
//! signal-mask resets for children, and the allocator and scheduling
//! settings a worker makes for itself.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow, Signal};
use nix::unistd::{ForkResult, Pid};

/// Which side of a fork we are on.
pub enum Forked {
    Parent(Pid),
    Child,
}

/// Fork the process.
///
/// Sound only because the caller (the master) is single-threaded: the child
/// gets a copy of the one thread that exists, so no lock can be held by a
/// thread that vanished. Python's own fork bookkeeping is done by the caller
/// around this call (see `wsgi::before_fork`).
pub fn fork() -> std::io::Result<Forked> {
    // SAFETY: the master never starts threads (documented invariant of the
    // master module), so the child is a faithful copy with consistent state.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Parent { child }) => Ok(Forked::Parent(child)),
        Ok(ForkResult::Child) => Ok(Forked::Child),
        Err(e) => Err(e.into()),
    }
}

/// Ask the kernel to send `sig` to this process when its parent dies, so a
/// worker never outlives a master killed with SIGKILL.
pub fn set_parent_death_signal(sig: Signal) -> nix::Result<()> {
    nix::sys::prctl::set_pdeathsig(sig)
}

/// Unblock every signal. Children inherit the master's blocked mask (the
/// master blocks signals to read them from a signalfd), and so would an
/// exec'd program.
pub fn unblock_all_signals() -> nix::Result<()> {
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
}

/// Block, in the calling thread only, every signal that is delivered
/// asynchronously, so the kernel picks another thread (the worker's main
/// thread, where Python runs signal handlers). Signals a fault raises in
/// this very thread (SIGSEGV and kin) and SIGPIPE stay unblocked: blocking
/// the first is undefined, and the second is ignored process-wide.
pub fn block_async_signals() -> nix::Result<()> {
    let mut set = SigSet::all();
    for sig in [
        Signal::SIGPIPE,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGFPE,
        Signal::SIGILL,
        Signal::SIGTRAP,
        Signal::SIGSYS,
    ] {
        set.remove(sig);
    }
    set.thread_block()
}

/// Make every thread of this process allocate from glibc's main arena,
/// unless the environment already chose (`MALLOC_ARENA_MAX`, or
/// `GLIBC_TUNABLES` naming `arena_max`), in which case glibc applied that
/// choice at start-up and it stands. Elsewhere than glibc, nothing.
///
/// To be called while the process has one thread: arenas already handed
/// to threads stay theirs.
pub fn one_malloc_arena() {
    let chosen = std::env::var_os("MALLOC_ARENA_MAX").is_some()
        || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("arena_max"));
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if !chosen {
        // SAFETY: mallopt only sets an allocator parameter and takes no
        // pointers; a parameter this glibc did not know would be refused
        // (return 0), leaving glibc's default in place.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = chosen;
}

/// Put the calling thread under `SCHED_BATCH`, if it runs under the
/// default policy: when it wakes it takes an idle CPU at once, but does not
/// preempt the thread running on a busy one; it waits for that thread's
/// turn to end. A policy chosen for the service (`CPUSchedulingPolicy=` in
/// its unit, `chrt`) stands. No privilege is needed to choose it. Returns
/// whether the policy changed.
pub fn batch_scheduling() -> std::io::Result<bool> {
    // SAFETY: with pid 0 both calls act on the calling thread only;
    // `param` is a valid sched_param that outlives the call (priority 0,
    // the only one SCHED_BATCH takes).
    unsafe {
        let policy = libc::sched_getscheduler(0);
        if policy == -1 {
            return Err(std::io::Error::last_os_error());
        }
        if policy != libc::SCHED_OTHER {
            return Ok(false);
        }
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) == -1 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(true)
}

/// Terminate the process immediately with `code`, without running atexit
/// handlers or unwinding. Used in forked children when returning up the
/// master's stack would be wrong.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` is async-signal-safe and never returns.
    unsafe { libc::_exit(code) }
}

/// Replace the current process with `program argv` and `env`, keeping the
/// descriptors in `keep` open at the positions 3, 4, ... in that order (the
/// `LISTEN_FDS` convention). Only returns on failure.
pub fn exec_with_fds(
    program: &std::path::Path,
    argv: &[std::ffi::OsString],
    env: &[(std::ffi::OsString, std::ffi::OsString)],
    keep: &[RawFd],
) -> std::io::Error {
    use std::os::unix::ffi::OsStrExt;
    let c = |s: &std::ffi::OsStr| CString::new(s.as_bytes()).unwrap_or_default();
    let prog = c(program.as_os_str());
    let args: Vec<CString> = argv.iter().map(|a| c(a)).collect();
    let envs: Vec<CString> = env
        .iter()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).unwrap_or_default()
        })
        .collect();
    // Move every kept descriptor out of the way first (above any target
    // slot), then into place; a direct dup2 could clobber a descriptor that
    // still has to be moved (gunicorn's re-exec gets this wrong).
    // Above every kept descriptor and every target slot.
    let base = keep
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .max(3 + keep.len() as RawFd)
        + 1;
    let mut moved = Vec::with_capacity(keep.len());
    for (i, fd) in keep.iter().enumerate() {
        let target = base + i as RawFd;
        // SAFETY: plain descriptor duplication; `fd` is open (owned by the
        // caller) and `target` is a free high slot we are about to fill.
        if unsafe { libc::dup2(*fd, target) } < 0 {
            return std::io::Error::last_os_error();
        }
        moved.push(target);
    }
    for (i, fd) in moved.iter().enumerate() {
        let target = 3 + i as RawFd;
        // SAFETY: as above; dup2 clears FD_CLOEXEC on the new descriptor,
        // which is exactly what inheritance across exec needs.
        if unsafe { libc::dup2(*fd, target) } < 0 {
            return std::io::Error::last_os_error();
        }
        // SAFETY: the temporary high copy is ours and no longer needed.
        unsafe { libc::close(*fd) };
    }
    match nix::unistd::execve(&prog, &args, &envs) {
        Err(e) => e.into(),
        Ok(never) => match never {},
    }
}

/// Take ownership of a descriptor this process inherited: a socket from
/// systemd (`LISTEN_FDS`) or a previous master, one the user named with
/// `fd://N`, a re-exec's readiness pipe.
///
/// Checked, so it needs no `unsafe` at the call site: the number must be
/// open, must not be standard input, output or error (the standard library
/// owns those), and can be adopted once per process — a second claim of the
/// same number fails instead of creating two owners that would both close
/// it. Inherited descriptors are adopted at start-up, before anything else
/// in the process opens files, so nothing else can own them.
pub fn adopt_inherited(fd: RawFd) -> std::io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    static ADOPTED: std::sync::Mutex<Vec<RawFd>> = std::sync::Mutex::new(Vec::new());
    let err = |msg: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, msg);
    if fd <= 2 {
        return Err(err(format!(
            "fd {fd} is a standard stream, not an inherited socket"
        )));
    }
    if !fd_is_open(fd) {
        return Err(std::io::Error::from_raw_os_error(libc::EBADF));
    }
    let mut adopted = ADOPTED.lock().unwrap_or_else(|e| e.into_inner());
    if adopted.contains(&fd) {
        return Err(err(format!("fd {fd} was already taken over")));
    }
    adopted.push(fd);
    // SAFETY: `fd` is open, is not a standard stream, and this is its only
    // adoption in the process (checked above under the lock); inherited
    // descriptors are owned by nobody else, so the OwnedFd is its only owner.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether `fd` refers to an open descriptor.
pub fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only queries flags of a descriptor number; it has no
    // effect on ownership.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Overwrites the process's command line as shown by `ps`, in the memory
/// where the kernel placed the original argv.
pub struct ProcTitle {
    start: usize,
    len: usize,
}

impl ProcTitle {
    /// Locate the argv area. Must be called before anything else writes the
    /// title; the arguments themselves must have been read already (Rust's
    /// `std::env::args` reads that same memory lazily).
    pub fn locate() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the parenthesised command name; arg_start and
        // arg_end are fields 48 and 49 of proc(5).
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        let start: usize = fields.get(48 - 3)?.parse().ok()?;
        let end: usize = fields.get(49 - 3)?.parse().ok()?;
        (end > start).then_some(Self {
            start,
            len: end - start,
        })
    }

    /// Write `title`, truncated to the original argv's size.
    pub fn set(&self, title: &str) {
        let bytes = title.as_bytes();
        let n = bytes.len().min(self.len - 1);
        // SAFETY: [start, start+len) is this process's own argv area as
        // reported by the kernel; it is mapped and writable, and nothing
        // else reads it after start-up (std::env::args was consumed before
        // `locate`). We stay strictly inside it.
        unsafe {
            let dst = self.start as *mut u8;
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, n);
            std::ptr::write_bytes(dst.add(n), 0, self.len - n);
        }
        // Also set the thread name shown by `top` (first 15 bytes).
        if let Ok(c) = CString::new(&bytes[..bytes.len().min(15)]) {
            let _ = nix::sys::prctl::set_name(&c);
        }
    }
}

/// Drop to `user`/`group` and apply `umask`, in that order of safety:
/// supplementary groups and gid first, while still privileged, uid last.
pub fn drop_privileges(user: Option<u32>, group: Option<u32>, umask: u32) -> nix::Result<()> {
    use nix::unistd::{setgid, setgroups, setuid, Gid, Uid};
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        umask as libc::mode_t,
    ));
    if let Some(g) = group {
        if Gid::effective() != Gid::from_raw(g) {
            if Uid::effective().is_root() {
                setgroups(&[Gid::from_raw(g)])?;
            }
            setgid(Gid::from_raw(g))?;
        }
    }
    if let Some(u) = user {
        if Uid::effective() != Uid::from_raw(u) {
            setuid(Uid::from_raw(u))?;
        }
    }
    Ok(())
}

/// Send `sig` to `pid` with an integer payload (`sigqueue(3)`); the
/// receiver sees it as `ssi_int` with `ssi_code == SI_QUEUE`.
pub fn sigqueue(
    pid: nix::unistd::Pid,
    sig: nix::sys::signal::Signal,
    value: i32,
) -> std::io::Result<()> {
    let val = libc::sigval {
        sival_ptr: value as usize as *mut libc::c_void,
    };
    // SAFETY: plain system call with a valid signal number and a value
    // passed by copy; no memory is shared with the receiver.
    if unsafe { libc::sigqueue(pid.as_raw(), sig as libc::c_int, val) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Resident memory of a process in bytes, from `/proc/PID/statm`.
pub fn rss_bytes(pid: nix::unistd::Pid) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as u64;
    Some(pages * page)
}

/// Make `fd` the process's stdout and stderr (fds 1 and 2).
pub fn redirect_std_streams(fd: OwnedFd) -> std::io::Result<()> {
    for target in [1, 2] {
        // SAFETY: dup2 onto the standard descriptors; `fd` is open and
        // owned, and 1/2 are never owned by Rust objects (std's handles
        // write to the numbers).
        if unsafe { libc::dup2(fd.as_raw_fd(), target) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsRawFd, IntoRawFd};

    use super::adopt_inherited;

    #[test]
    fn an_inherited_descriptor_is_adopted_once() {
        let (r, w) = nix::unistd::pipe().unwrap();
        drop(w);
        // Stand in for a descriptor handed over by exec: nothing owns it.
        let raw = r.into_raw_fd();
        let owned = adopt_inherited(raw).expect("first adoption");
        assert_eq!(owned.as_raw_fd(), raw);
        let again = adopt_inherited(raw).unwrap_err();
        assert!(again.to_string().contains("already taken over"), "{again}");
        for std_stream in 0..=2 {
            assert!(adopt_inherited(std_stream).is_err());
        }
        drop(owned);
        assert_eq!(
            adopt_inherited(1_000_000).unwrap_err().raw_os_error(),
            Some(libc::EBADF)
        );
    }
}
