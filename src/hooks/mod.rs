//! gunicorn-compatible config files and server hooks. With `wsgi`, the only
//! module that touches pyo3.
//!
//! [`read_file`] executes a Python config file in the master's interpreter
//! (`startup` decides when), giving its settings and its hook functions.
//! The hooks are kept in a process-global table indexed by [`Hook`]: the
//! master calls its hooks on its own (only) thread, workers inherit the
//! table when forked, and request hooks run on the Python thread serving
//! the request. Without a config file nothing here touches Python, and with
//! no request hook the request path pays one atomic load.

mod loader;

pub use loader::{FileConfig, HookFns};
mod objects;
mod request;

pub use request::RequestHooks;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

use pyo3::prelude::*;

use crate::config::gunicorn::Hook;
use crate::config::{ConfigError, Settings};

/// The hooks of the configuration in force, indexed by [`Hook`].
static ACTIVE: RwLock<[Option<Py<PyAny>>; Hook::ALL.len()]> =
    RwLock::new([const { None }; Hook::ALL.len()]);
/// Whether any hook is set: lets every call site skip Python entirely.
static ANY: AtomicBool = AtomicBool::new(false);
/// Whether `pre_request` or `post_request` is set.
static REQUEST: AtomicBool = AtomicBool::new(false);
/// The master's pid, for `server.pid` also in hooks that run in a worker.
pub(crate) static MASTER_PID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
/// Age of the worker being forked, set by [`pre_fork`] in the master and
/// read in the child.
static FORKING_AGE: AtomicU64 = AtomicU64::new(0);
/// The `worker` object: in the master, the one being forked (so attributes
/// `pre_fork` sets are there in the child); in a worker, its own.
static WORKER: Mutex<Option<Py<objects::Worker>>> = Mutex::new(None);

/// Run a config file (a path, or `python:module`) in the master's
/// interpreter: the settings it sets, as a layer, and its hook functions
/// (for [`install`]).
pub fn read_file(spec: &str) -> Result<loader::FileConfig, ConfigError> {
    Python::attach(|py| loader::load(py, spec))
}

/// Make the file's hooks the active ones (replacing the previous file's).
pub fn install(hooks: loader::HookFns) {
    // Installing happens in the master (at start and on SIGHUP).
    MASTER_PID.store(std::process::id(), Ordering::Relaxed);
    let request = hooks
        .iter()
        .any(|(h, _)| matches!(h, Hook::PreRequest | Hook::PostRequest));
    let any = !hooks.is_empty();
    let mut table: [Option<Py<PyAny>>; Hook::ALL.len()] = [const { None }; Hook::ALL.len()];
    for (h, f) in hooks {
        table[h as usize] = Some(f);
    }
    let mut active = ACTIVE.write().unwrap_or_else(|e| e.into_inner());
    let old = std::mem::replace(&mut *active, table);
    if old.iter().any(Option::is_some) {
        // Release the previous file's functions with the GIL held.
        Python::attach(|_| drop(old));
    }
    ANY.store(any, Ordering::Release);
    REQUEST.store(request, Ordering::Release);
}

fn hook_fn(py: Python<'_>, hook: Hook) -> Option<Py<PyAny>> {
    let active = ACTIVE.read().unwrap_or_else(|e| e.into_inner());
    active[hook as usize].as_ref().map(|f| f.clone_ref(py))
}

fn is_set(hook: Hook) -> bool {
    ANY.load(Ordering::Acquire)
        && ACTIVE.read().unwrap_or_else(|e| e.into_inner())[hook as usize].is_some()
}

fn traceback(py: Python<'_>, e: &PyErr) -> String {
    let tb = e
        .traceback(py)
        .map_or_else(|| py.None(), |t| t.into_any().unbind());
    py.import("traceback")
        .and_then(|m| m.call_method1("format_exception", (e.get_type(py), e.value(py), tb)))
        .and_then(|lines| lines.extract::<Vec<String>>())
        .map(|l| l.concat())
        .unwrap_or_else(|_| e.to_string())
}

/// Call `hook` with the arguments `args` builds. A hook that raises is
/// logged with its traceback; the error line is returned for the callers
/// that must stop (start-up hooks).
fn call<'py, A>(
    py: Python<'py>,
    hook: Hook,
    args: impl FnOnce(Python<'py>) -> PyResult<A>,
) -> Result<(), String>
where
    A: pyo3::call::PyCallArgs<'py>,
{
    let Some(f) = hook_fn(py, hook) else {
        return Ok(());
    };
    let name = hook.name();
    let result = args(py).and_then(|a| f.bind(py).call1(a));
    match result {
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::error!(
                "Exception in {name} hook:\n{}",
                traceback(py, &e).trim_end()
            );
            Err(format!("the {name} hook failed: {}", e.value(py)))
        }
    }
}

/// Run a master-side hook taking only `server`.
fn server_hook(hook: Hook, s: &Settings, n: usize) -> Result<(), String> {
    if !is_set(hook) {
        return Ok(());
    }
    Python::attach(|py| call(py, hook, |py| Ok((objects::server(py, s, n)?,))))
}

/// Before signal handlers and sockets. An error stops start-up.
pub fn on_starting(s: &Settings, num_workers: usize) -> Result<(), String> {
    server_hook(Hook::OnStarting, s, num_workers)
}

/// Sockets are open, no worker forked yet. An error stops start-up.
pub fn when_ready(s: &Settings, num_workers: usize) -> Result<(), String> {
    server_hook(Hook::WhenReady, s, num_workers)
}

pub fn on_reload(s: &Settings, num_workers: usize) {
    let _ = server_hook(Hook::OnReload, s, num_workers);
}

pub fn pre_exec(s: &Settings, num_workers: usize) {
    let _ = server_hook(Hook::PreExec, s, num_workers);
}

pub fn on_exit(s: &Settings, num_workers: usize) {
    let _ = server_hook(Hook::OnExit, s, num_workers);
}

pub fn nworkers_changed(s: &Settings, new: usize, old: usize) {
    if is_set(Hook::NworkersChanged) {
        let _ = Python::attach(|py| {
            call(py, Hook::NworkersChanged, |py| {
                Ok((objects::server(py, s, new)?, new, old))
            })
        });
    }
}

/// In the master, right before forking the worker of spawn order `age`.
pub fn pre_fork(s: &Settings, num_workers: usize, age: u64) {
    FORKING_AGE.store(age, Ordering::Relaxed);
    if !ANY.load(Ordering::Acquire) {
        return;
    }
    let _ = Python::attach(|py| -> PyResult<()> {
        let worker = objects::worker(py, s, None, age)?;
        *WORKER.lock().unwrap_or_else(|e| e.into_inner()) = Some(worker.clone().unbind());
        let _ = call(py, Hook::PreFork, |py| {
            Ok((objects::server(py, s, num_workers)?, worker))
        });
        Ok(())
    });
}

/// In the new worker, once Python is usable after the fork.
pub fn post_fork(s: &Settings) {
    if !ANY.load(Ordering::Acquire) {
        return;
    }
    let _ = Python::attach(|py| -> PyResult<()> {
        let mut slot = WORKER.lock().unwrap_or_else(|e| e.into_inner());
        let worker = match slot.as_ref() {
            Some(w) => w.bind(py).clone(),
            None => objects::worker(py, s, None, FORKING_AGE.load(Ordering::Relaxed))?,
        };
        {
            let mut w = worker.borrow_mut();
            w.pid = Some(std::process::id());
            w.ppid = nix::unistd::getppid().as_raw() as u32;
        }
        *slot = Some(worker.clone().unbind());
        drop(slot);
        let _ = call(py, Hook::PostFork, |py| {
            Ok((objects::server(py, s, s.workers)?, worker))
        });
        Ok(())
    });
}

/// This worker's `worker` object, if hooks are active.
fn this_worker(py: Python<'_>) -> Option<Bound<'_, objects::Worker>> {
    WORKER
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(|w| w.bind(py).clone())
}

fn worker_hook(hook: Hook, update: impl FnOnce(&mut objects::Worker)) {
    if !is_set(hook) {
        return;
    }
    Python::attach(|py| {
        if let Some(w) = this_worker(py) {
            update(&mut w.borrow_mut());
            let _ = call(py, hook, |_| Ok((w,)));
        }
    });
}

/// The application is loaded; the worker is about to serve.
pub fn post_worker_init() {
    worker_hook(Hook::PostWorkerInit, |w| w.booted = true);
}

/// SIGINT / SIGQUIT reached the worker.
pub fn worker_int() {
    worker_hook(Hook::WorkerInt, |w| w.alive = false);
}

/// SIGABRT (timeout) reached the worker.
pub fn worker_abort() {
    worker_hook(Hook::WorkerAbort, |w| w.alive = false);
}

/// The worker is about to exit.
pub fn worker_exit(s: &Settings) {
    if !is_set(Hook::WorkerExit) {
        return;
    }
    Python::attach(|py| {
        if let Some(w) = this_worker(py) {
            w.borrow_mut().alive = false;
            let _ = call(py, Hook::WorkerExit, |py| {
                Ok((objects::server(py, s, s.workers)?, w))
            });
        }
    });
}

/// In the master, after reaping worker `pid` of spawn order `age`.
pub fn child_exit(s: &Settings, num_workers: usize, pid: i32, age: u64) {
    if !is_set(Hook::ChildExit) {
        return;
    }
    let _ = Python::attach(|py| {
        call(py, Hook::ChildExit, |py| {
            let w = objects::worker(py, s, u32::try_from(pid).ok(), age)?;
            w.borrow_mut().alive = false;
            Ok((objects::server(py, s, num_workers)?, w))
        })
    });
}
