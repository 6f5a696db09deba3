//! gunicorn-compatible config files and server hooks. With `wsgi`, the only
//! module that touches pyo3.
//!
//! [`load`] is how the binary (and SIGHUP) read the configuration: command
//! line, `*_CMD_ARGS`, then the Python config file, which is executed in the
//! embedded interpreter — initialised in the master for that, and inherited
//! by every worker across `fork`. The file's hook callables are kept in a
//! process-global table: the master calls its hooks on its own (only)
//! thread, workers inherit the table when forked, and request hooks run on
//! the Python thread serving the request. Without a config file nothing
//! here touches Python, and with no request hook the request path pays one
//! atomic load.

mod loader;
mod objects;
mod request;

pub use request::RequestHooks;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, RwLock};

use pyo3::prelude::*;

use crate::config::gunicorn::HOOKS;
use crate::config::{self, Command, ConfigError, Parsed, Settings};
use crate::wsgi;

/// The hooks of the configuration in force, by index into [`HOOKS`].
static ACTIVE: RwLock<Vec<(usize, Py<PyAny>)>> = RwLock::new(Vec::new());
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
/// The directory the first configuration was read from: a relative config
/// path keeps meaning the same file after `--chdir`, on SIGHUP.
static BASE_DIR: OnceLock<PathBuf> = OnceLock::new();
/// What `raw_env` overwrote: `(KEY, previous value)`, restored before the
/// next configuration's `raw_env` is applied.
static RAW_ENV_SAVED: Mutex<Vec<(String, Option<String>)>> = Mutex::new(Vec::new());

/// The config file to read: `-c`, else `./corral.conf.py`, else
/// `./gunicorn.conf.py` if one exists.
fn config_spec(layers: &[config::Layer]) -> Option<String> {
    let base = BASE_DIR.get_or_init(|| std::env::current_dir().unwrap_or_else(|_| "/".into()));
    match config::config_file_named(layers) {
        Some(spec) => {
            if let Some(module) = spec.strip_prefix("python:") {
                return Some(format!("python:{module}"));
            }
            let path = spec.strip_prefix("file:").unwrap_or(&spec);
            Some(base.join(path).to_string_lossy().into_owned())
        }
        None => ["corral.conf.py", "gunicorn.conf.py"]
            .iter()
            .map(|n| base.join(n))
            .find(|p| p.is_file())
            .map(|p| p.to_string_lossy().into_owned()),
    }
}

fn interpreter_options(layers: &[config::Layer]) -> wsgi::InterpreterOptions {
    // Only the command line's --pythonpath can matter for importing a
    // `python:` config module; the final value is added after resolving.
    let pythonpath = layers
        .iter()
        .find_map(|l| l.get("pythonpath"))
        .map(|p| {
            p.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    wsgi::InterpreterOptions { pythonpath }
}

/// Read the whole configuration: command line, `CORRAL_CMD_ARGS` /
/// `GUNICORN_CMD_ARGS`, the config file, defaults. On success the file's
/// hooks become the active ones and `raw_env` is applied to the process
/// environment (after undoing the previous configuration's); on error
/// nothing changes.
pub fn load(
    args: &[OsString],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Command, ConfigError> {
    let mut layers = match config::command_line(args, env)? {
        Parsed::Help(t) => return Ok(Command::Help(t)),
        Parsed::Version(t) => return Ok(Command::Version(t)),
        Parsed::Layers(l) => l,
    };
    let mut hooks = Vec::new();
    // Loading happens in the master (at start and on SIGHUP).
    MASTER_PID.store(std::process::id(), Ordering::Relaxed);
    let spec = config_spec(&layers);
    if let Some(spec) = &spec {
        wsgi::init_interpreter(&interpreter_options(&layers)).map_err(ConfigError)?;
        let file = Python::attach(|py| loader::load(py, spec))?;
        layers.push(file.layer);
        hooks = file.hooks;
    }
    let mut settings = config::finish(&layers, env)?;
    if spec.is_some() && settings.config.is_none() {
        // Show which file was read (the default one, found by looking).
        settings.config = spec.clone();
    }
    if settings.logconfig_dict.is_some() || spec.is_some() {
        wsgi::init_interpreter(&interpreter_options(&layers)).map_err(ConfigError)?;
        Python::attach(|py| prepare_python(py, &settings))?;
    }
    install(hooks);
    apply_raw_env(&settings);
    Ok(Command::Run(Box::new(settings)))
}

/// After a config file started Python in the master (before `--chdir`):
/// make imports see what a worker-initialised interpreter would (the
/// `--chdir` directory, `--pythonpath`), and apply `logconfig_dict`.
fn prepare_python(py: Python<'_>, s: &Settings) -> Result<(), ConfigError> {
    let run = || -> PyResult<()> {
        let path = py.import("sys")?.getattr("path")?;
        let mut front: Vec<String> = Vec::new();
        if let Some(dir) = &s.chdir {
            let base = BASE_DIR.get().cloned().unwrap_or_default();
            front.push(base.join(dir).to_string_lossy().into_owned());
        }
        front.extend(s.pythonpath.iter().cloned());
        for (i, entry) in front.iter().enumerate() {
            if !path.contains(entry)? {
                path.call_method1("insert", (i, entry))?;
            }
        }
        if let Some(json) = &s.logconfig_dict {
            let dict = py.import("json")?.call_method1("loads", (json,))?;
            py.import("logging.config")?
                .call_method1("dictConfig", (dict,))?;
        }
        Ok(())
    };
    run().map_err(|e| ConfigError(format!("logconfig_dict: {}", e.value(py))))
}

fn install(hooks: Vec<(usize, Py<PyAny>)>) {
    let request = hooks
        .iter()
        .any(|(i, _)| matches!(HOOKS[*i].name, "pre_request" | "post_request"));
    let any = !hooks.is_empty();
    let mut active = ACTIVE.write().unwrap_or_else(|e| e.into_inner());
    let old = std::mem::replace(&mut *active, hooks);
    if !old.is_empty() {
        // Release the previous file's functions with the GIL held.
        Python::attach(|_| drop(old));
    }
    ANY.store(any, Ordering::Release);
    REQUEST.store(request, Ordering::Release);
}

/// Set the environment variables `raw_env` names, after restoring what the
/// previous configuration's `raw_env` replaced (so a variable dropped from
/// the file on SIGHUP goes away, as in gunicorn).
pub fn apply_raw_env(settings: &Settings) {
    let mut saved = RAW_ENV_SAVED.lock().unwrap_or_else(|e| e.into_inner());
    let python = wsgi::python_running();
    let set = |k: &str, v: Option<&str>| {
        // The master is single-threaded here: nothing reads the
        // environment concurrently.
        match v {
            Some(v) => std::env::set_var(k, v),
            None => std::env::remove_var(k),
        }
        if python {
            // Python copied the environment into os.environ at start-up.
            Python::attach(|py| {
                let environ = py.import("os").and_then(|os| os.getattr("environ"));
                let _ = environ.and_then(|e| match v {
                    Some(v) => e.set_item(k, v),
                    None => e.call_method1("pop", (k, py.None())).map(drop),
                });
            });
        }
    };
    for (k, old) in saved.drain(..).rev() {
        set(&k, old.as_deref());
    }
    for (k, v) in &settings.raw_env {
        saved.push((k.clone(), std::env::var(k).ok()));
        set(k, Some(v));
    }
}

/// `--check-config` and `--print-config`: `Some(exit code)` when one of
/// them was asked for and corral must exit instead of serving.
pub fn early_exit(settings: &Settings) -> Option<i32> {
    if settings.print_config {
        print!("{}", settings.print_text());
        return Some(crate::exit::OK);
    }
    if settings.check_config {
        let app = settings.app.as_deref().unwrap_or_default();
        let loaded = wsgi::init_interpreter(&crate::config::interpreter_options(settings))
            .map_err(|e| e.to_string())
            .and_then(|()| {
                wsgi::load_app(app)
                    .map(drop)
                    .map_err(|e| match e.traceback {
                        Some(tb) => format!("{}\n{}", e.summary, tb.trim_end()),
                        None => e.summary,
                    })
            });
        return Some(match loaded {
            Ok(()) => {
                println!(
                    "Configuration OK: {}",
                    settings.config.as_deref().unwrap_or("no config file")
                );
                crate::exit::OK
            }
            Err(e) => {
                eprintln!("error: {e}");
                crate::exit::FAILURE
            }
        });
    }
    None
}

fn hook_fn(py: Python<'_>, name: &str) -> Option<Py<PyAny>> {
    let active = ACTIVE.read().unwrap_or_else(|e| e.into_inner());
    active
        .iter()
        .find(|(i, _)| HOOKS[*i].name == name)
        .map(|(_, f)| f.clone_ref(py))
}

fn is_set(name: &str) -> bool {
    ANY.load(Ordering::Acquire)
        && ACTIVE
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|(i, _)| HOOKS[*i].name == name)
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

/// Call hook `name` with the arguments `args` builds. A hook that raises is
/// logged with its traceback; the error line is returned for the callers
/// that must stop (start-up hooks).
fn call<'py, A>(
    py: Python<'py>,
    name: &str,
    args: impl FnOnce(Python<'py>) -> PyResult<A>,
) -> Result<(), String>
where
    A: pyo3::call::PyCallArgs<'py>,
{
    let Some(f) = hook_fn(py, name) else {
        return Ok(());
    };
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
fn server_hook(name: &str, s: &Settings, n: usize) -> Result<(), String> {
    if !is_set(name) {
        return Ok(());
    }
    Python::attach(|py| call(py, name, |py| Ok((objects::server(py, s, n)?,))))
}

/// Before signal handlers and sockets. An error stops start-up.
pub fn on_starting(s: &Settings, num_workers: usize) -> Result<(), String> {
    server_hook("on_starting", s, num_workers)
}

/// Sockets are open, no worker forked yet. An error stops start-up.
pub fn when_ready(s: &Settings, num_workers: usize) -> Result<(), String> {
    server_hook("when_ready", s, num_workers)
}

pub fn on_reload(s: &Settings, num_workers: usize) {
    let _ = server_hook("on_reload", s, num_workers);
}

pub fn pre_exec(s: &Settings, num_workers: usize) {
    let _ = server_hook("pre_exec", s, num_workers);
}

pub fn on_exit(s: &Settings, num_workers: usize) {
    let _ = server_hook("on_exit", s, num_workers);
}

pub fn nworkers_changed(s: &Settings, new: usize, old: usize) {
    if is_set("nworkers_changed") {
        let _ = Python::attach(|py| {
            call(py, "nworkers_changed", |py| {
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
        let _ = call(py, "pre_fork", |py| {
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
        let _ = call(py, "post_fork", |py| {
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

fn worker_hook(name: &str, update: impl FnOnce(&mut objects::Worker)) {
    if !is_set(name) {
        return;
    }
    Python::attach(|py| {
        if let Some(w) = this_worker(py) {
            update(&mut w.borrow_mut());
            let _ = call(py, name, |_| Ok((w,)));
        }
    });
}

/// The application is loaded; the worker is about to serve.
pub fn post_worker_init() {
    worker_hook("post_worker_init", |w| w.booted = true);
}

/// SIGINT / SIGQUIT reached the worker.
pub fn worker_int() {
    worker_hook("worker_int", |w| w.alive = false);
}

/// SIGABRT (timeout) reached the worker.
pub fn worker_abort() {
    worker_hook("worker_abort", |w| w.alive = false);
}

/// The worker is about to exit.
pub fn worker_exit(s: &Settings) {
    if !is_set("worker_exit") {
        return;
    }
    Python::attach(|py| {
        if let Some(w) = this_worker(py) {
            w.borrow_mut().alive = false;
            let _ = call(py, "worker_exit", |py| {
                Ok((objects::server(py, s, s.workers)?, w))
            });
        }
    });
}

/// In the master, after reaping worker `pid` of spawn order `age`.
pub fn child_exit(s: &Settings, num_workers: usize, pid: i32, age: u64) {
    if !is_set("child_exit") {
        return;
    }
    let _ = Python::attach(|py| {
        call(py, "child_exit", |py| {
            let w = objects::worker(py, s, u32::try_from(pid).ok(), age)?;
            w.borrow_mut().alive = false;
            Ok((objects::server(py, s, num_workers)?, w))
        })
    });
}
