//! The CPython C API calls pyo3 has no safe binding for: CPython's own fork
//! bookkeeping (`PyOS_BeforeFork` / `PyOS_AfterFork_*`) around `fork()`,
//! with the GIL held across the fork so no Python thread owns it at that
//! moment — something a scoped `Python::attach` cannot express, since the
//! GIL is taken before the fork and given back on both sides after it.

use pyo3::ffi;

/// Call right before `fork()`, with the interpreter initialised. Takes the
/// GIL (kept until [`fork_finish`]) and returns whether this thread already
/// held it, which `fork_finish` must be given back.
pub fn fork_prepare() -> bool {
    // SAFETY: the caller guarantees the interpreter is initialised.
    // PyGILState_Ensure attaches this thread; PyOS_BeforeFork requires the
    // GIL, which stays held until fork_finish.
    unsafe {
        let state = ffi::PyGILState_Ensure();
        ffi::PyOS_BeforeFork();
        matches!(state, ffi::PyGILState_STATE::PyGILState_LOCKED)
    }
}

/// Call right after `fork()`, on each side (`child` tells which), with what
/// [`fork_prepare`] returned. Releases the GIL again.
pub fn fork_finish(child: bool, was_held: bool) {
    let state = if was_held {
        ffi::PyGILState_STATE::PyGILState_LOCKED
    } else {
        ffi::PyGILState_STATE::PyGILState_UNLOCKED
    };
    // SAFETY: only called after fork_prepare, on the thread that called it
    // (the master is single-threaded; in the child it is the only thread),
    // with the GIL still held from PyGILState_Ensure. The AfterFork
    // functions require the GIL; PyGILState_Release then gives it back.
    unsafe {
        if child {
            ffi::PyOS_AfterFork_Child();
        } else {
            ffi::PyOS_AfterFork_Parent();
        }
        ffi::PyGILState_Release(state);
    }
}
