//! The interpreter's life as corral sees it: preparing `sys.path` once,
//! loading the application object from a `module:variable` /
//! `module:factory(args)` spec, the fork hooks the master must call around
//! `fork()`, keeping `os.environ` in step with the process environment, and
//! dumping every thread's Python stack.
//!
//! corral runs inside the interpreter that imported `corral._corral` (the
//! `corral` console script of the app's virtualenv), so `sys.prefix`,
//! `sys.executable` and `site-packages` are that interpreter's own, exactly
//! as for gunicorn installed in the same virtualenv. Only the unit tests,
//! whose host is a Rust test binary, start an interpreter themselves.

use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use super::environ::Template;

/// How to prepare the interpreter before the app is imported.
#[derive(Debug, Clone, Default)]
pub struct InterpreterOptions {
    /// `--pythonpath` entries, in the order given; they go right after the
    /// current directory on `sys.path`.
    pub pythonpath: Vec<String>,
}

/// Set once `init_interpreter` succeeded; the fork hooks look at it so the
/// master can call them unconditionally.
static INITIALIZED: AtomicBool = AtomicBool::new(false);
static INIT_RESULT: OnceLock<Result<(), String>> = OnceLock::new();

/// Prepare the interpreter once per process: start it when the host is not
/// Python (the unit tests), then put the current directory and
/// `--pythonpath` on `sys.path`. Later calls return the first call's result
/// without touching anything (the first call's options win).
pub fn init_interpreter(opts: &InterpreterOptions) -> Result<(), String> {
    INIT_RESULT.get_or_init(|| init_once(opts)).clone()
}

pub fn is_initialized() -> bool {
    INITIALIZED.load(Ordering::Acquire)
}

/// Set when the process is a Python interpreter running corral (the
/// `corral` command): `os.environ` then exists from the first instruction,
/// before `init_interpreter` prepared `sys.path`.
static HOSTED: AtomicBool = AtomicBool::new(false);

/// Called by the entry point, which Python itself called.
pub fn mark_python_host() {
    HOSTED.store(true, Ordering::Release);
}

/// Whether `os.environ` exists and must follow environment changes.
pub fn python_running() -> bool {
    HOSTED.load(Ordering::Acquire) || is_initialized()
}

fn init_once(opts: &InterpreterOptions) -> Result<(), String> {
    // A no-op inside the `corral` command, whose interpreter is running.
    Python::initialize();
    let result = Python::attach(|py| {
        setup_sys(py, opts).map_err(|e| {
            format!(
                "cannot set up the Python interpreter: {}",
                summarize(py, &e)
            )
        })
    });
    if result.is_ok() {
        INITIALIZED.store(true, Ordering::Release);
    }
    result
}

fn setup_sys(py: Python<'_>, opts: &InterpreterOptions) -> PyResult<()> {
    let path = py.import("sys")?.getattr("path")?;
    // The directory corral runs from comes first, so `corral app:app` finds
    // `app.py` next to where it was started, as with gunicorn.
    let cwd = std::env::current_dir()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.call_method1("insert", (0, &cwd))?;
    for (i, entry) in opts.pythonpath.iter().enumerate() {
        path.call_method1("insert", (i + 1, entry))?;
    }
    Ok(())
}

/// Standard modules the master imports before its first fork. Both load
/// OpenSSL (`hashlib` through `_hashlib`, `ssl` through `_ssl`), and
/// nearly every web app imports them, directly or through Flask, Django,
/// FastAPI, requests or uvloop. Loaded in the master, OpenSSL's start-up
/// (mapping, relocating and initialising the library) happens once, and
/// its memory is shared copy-on-write by every worker; loaded by the app,
/// each worker repeats it and keeps a private copy (about 3 MiB of a Flask
/// worker's resident size). gunicorn's master imports `ssl` for the same
/// effect. The master imports nothing else of the app's.
const IMPORTED_BEFORE_FORK: [&str; 2] = ["hashlib", "ssl"];

/// Import [`IMPORTED_BEFORE_FORK`] in the master. Called first thing,
/// before the config file runs and before the app's directories go on
/// `sys.path`, so an app's own `ssl.py` can never stand in for the
/// standard module (it is not run in the master either). An interpreter
/// built without them is served all the same: the app will say so itself
/// if it needs them, so a failure here is not reported.
pub fn import_before_fork() {
    if !python_running() {
        return;
    }
    Python::attach(|py| {
        for name in IMPORTED_BEFORE_FORK {
            let _ = py.import(name);
        }
    });
}

/// In a master whose config file started Python: put `front` at the head
/// of `sys.path` (the `--chdir` directory, `--pythonpath`), so imports see
/// what a worker's interpreter would, and apply `logconfig_dict` (JSON)
/// with `logging.config.dictConfig`. The error is Python's, in one line.
pub fn configure_python(front: &[String], logconfig_json: Option<&str>) -> Result<(), String> {
    Python::attach(|py| {
        let run = || -> PyResult<()> {
            let path = py.import("sys")?.getattr("path")?;
            for (i, entry) in front.iter().enumerate() {
                if !path.contains(entry)? {
                    path.call_method1("insert", (i, entry))?;
                }
            }
            if let Some(json) = logconfig_json {
                let dict = py.import("json")?.call_method1("loads", (json,))?;
                py.import("logging.config")?
                    .call_method1("dictConfig", (dict,))?;
            }
            Ok(())
        };
        run().map_err(|e| e.value(py).to_string())
    })
}

/// Make `os.environ` agree with the process environment for `keys`, after
/// Rust code set or removed them: Python copied the environment into
/// `os.environ` when it started, and the app (and every `subprocess` it
/// starts) reads that copy. No-op before the interpreter is prepared.
pub fn sync_environ(keys: &[&str]) {
    if !python_running() {
        return;
    }
    Python::attach(|py| {
        let Ok(environ) = py.import("os").and_then(|os| os.getattr("environ")) else {
            return;
        };
        for key in keys {
            let _ = match std::env::var(key) {
                Ok(v) => environ.set_item(*key, v),
                Err(_) => environ.call_method1("pop", (*key, py.None())).map(drop),
            };
        }
    });
}

/// Why the application could not be loaded.
#[derive(Debug, Clone)]
pub struct LoadError {
    /// One line, fit for a log message.
    pub summary: String,
    /// The Python traceback, when Python raised.
    pub traceback: Option<String>,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary)
    }
}

impl std::error::Error for LoadError {}

impl LoadError {
    fn plain(summary: impl Into<String>) -> Self {
        LoadError {
            summary: summary.into(),
            traceback: None,
        }
    }

    fn from_py(py: Python<'_>, err: &PyErr) -> Self {
        LoadError {
            summary: summarize(py, err),
            traceback: Some(format_traceback(py, err)),
        }
    }
}

/// A loaded WSGI application, plus what was fixed at load time.
pub struct App {
    pub(crate) callable: Py<PyAny>,
    /// `SCRIPT_NAME` from the process environment when the app was loaded.
    pub(crate) script_name: String,
    /// The environ entries that never change between requests.
    pub(crate) template: Template,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("script_name", &self.script_name)
            .finish_non_exhaustive()
    }
}

/// Import the app again for a reload of a preloaded app (HUP with
/// `--preload`, which gunicorn cannot do): every module loaded from outside
/// the standard library and site-packages (the application's own code) is
/// dropped from `sys.modules`, then the spec is loaded afresh. Compiled
/// extension modules stay (CPython cannot unload them) and so does
/// installed third-party code; the app's own Python files are re-read.
/// On failure the caller keeps the old app.
pub fn reload_app(spec: &str) -> Result<App, LoadError> {
    Python::attach(|py| -> Result<(), LoadError> {
        let code = CString::new(PURGE).expect("no NUL in constant");
        let globals = PyDict::new(py);
        py.run(&code, Some(&globals), None)
            .and_then(|()| {
                globals
                    .get_item("purge")?
                    .expect("purge defined")
                    .call0()
                    .map(drop)
            })
            .map_err(|e| LoadError::from_py(py, &e))
    })?;
    load_app(spec)
}

const PURGE: &str = r#"
import importlib, os, sys, sysconfig

def purge():
    paths = sysconfig.get_paths()
    keep = {os.path.realpath(paths[k]) for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    for entry in sys.path:
        if entry and ("site-packages" in entry or "dist-packages" in entry):
            keep.add(os.path.realpath(entry))
    keep.add(os.path.realpath(sys.base_prefix))
    for name, mod in list(sys.modules.items()):
        f = getattr(mod, "__file__", None)
        if not f or not f.endswith((".py", ".pyc")):
            continue
        real = os.path.realpath(f)
        if any(real.startswith(k + os.sep) for k in keep):
            continue
        del sys.modules[name]
    importlib.invalidate_caches()
"#;

/// The file of every module imported so far (`--reload` watches them):
/// the app's own modules and everything they pulled in, as gunicorn's
/// reloader takes them from `sys.modules`.
pub fn module_files() -> Vec<std::path::PathBuf> {
    Python::attach(|py| {
        let modules = py
            .import("sys")
            .and_then(|sys| sys.getattr("modules"))
            .and_then(|m| m.call_method0("values"))
            .and_then(|v| v.try_iter());
        let Ok(modules) = modules else {
            return Vec::new();
        };
        let mut files: Vec<std::path::PathBuf> = modules
            .filter_map(|m| m.ok()?.getattr("__file__").ok()?.extract::<String>().ok())
            .map(std::path::PathBuf::from)
            .collect();
        files.sort();
        files.dedup();
        files
    })
}

/// Import the application named by `spec`: `module`, `module:name`, or
/// `module:factory(literal args)`. The interpreter must be initialised.
pub fn load_app(spec: &str) -> Result<App, LoadError> {
    let (module, expr) = match spec.split_once(':') {
        Some((m, e)) => (m.trim(), e.trim()),
        None => (spec.trim(), "application"),
    };
    if module.is_empty() || expr.is_empty() {
        return Err(LoadError::plain(format!(
            "Invalid application spec {spec:?}: expected 'module', 'module:variable' or 'module:factory(args)'."
        )));
    }
    let script_name = std::env::var("SCRIPT_NAME").unwrap_or_default();
    Python::attach(|py| {
        let (name, call) = parse_expr(py, expr)?;
        let module_obj = py.import(module).map_err(|e| LoadError::from_py(py, &e))?;
        let target = match module_obj.getattr(name.as_str()) {
            Ok(t) => t,
            Err(e) if e.is_instance_of::<pyo3::exceptions::PyAttributeError>(py) => {
                return Err(LoadError::plain(format!(
                    "Failed to find attribute '{name}' in '{module}'."
                )));
            }
            Err(e) => return Err(LoadError::from_py(py, &e)),
        };
        let app = match call {
            None => target,
            Some((args, kwargs)) => {
                if !target.is_callable() {
                    return Err(LoadError::plain(format!(
                        "Application factory '{name}' in '{module}' is not callable."
                    )));
                }
                match target.call(
                    args.bind(py)
                        .cast::<pyo3::types::PyTuple>()
                        .map_err(|e| LoadError::plain(e.to_string()))?,
                    Some(
                        kwargs
                            .bind(py)
                            .cast::<PyDict>()
                            .map_err(|e| LoadError::plain(e.to_string()))?,
                    ),
                ) {
                    Ok(app) => app,
                    Err(e) if e.is_instance_of::<PyTypeError>(py) && raised_here(py, &e) => {
                        return Err(LoadError {
                            summary: format!(
                                "Error while calling factory '{name}' in '{module}': {}",
                                summarize(py, &e)
                            ),
                            traceback: Some(format_traceback(py, &e)),
                        });
                    }
                    Err(e) => return Err(LoadError::from_py(py, &e)),
                }
            }
        };
        if !app.is_callable() {
            return Err(LoadError::plain("Application object must be callable."));
        }
        let template = Template::new(py, &script_name).map_err(|e| LoadError::from_py(py, &e))?;
        Ok(App {
            callable: app.unbind(),
            script_name,
            template,
        })
    })
}

/// Whether a TypeError from calling a factory came from the call itself
/// (arguments that do not fit its signature) rather than from inside it:
/// argument binding fails before any Python frame runs, so no traceback.
fn raised_here(py: Python<'_>, err: &PyErr) -> bool {
    err.traceback(py).is_none()
}

type FactoryCall = (Py<PyAny>, Py<PyAny>);

/// Parse the part after `:` with Python's own parser. Only a bare name, or
/// a call of a bare name whose arguments are literals, is accepted: the
/// spec comes from a command line and must not run arbitrary code.
fn parse_expr(py: Python<'_>, expr: &str) -> Result<(String, Option<FactoryCall>), LoadError> {
    let code = CString::new(PARSE_SPEC).expect("no NUL in constant");
    let globals = PyDict::new(py);
    let run = || -> PyResult<Bound<'_, PyAny>> {
        py.run(&code, Some(&globals), None)?;
        globals
            .get_item("parse")?
            .expect("parse defined")
            .call1((expr,))
    };
    let parsed = run().map_err(|e| {
        if e.is_instance_of::<pyo3::exceptions::PyValueError>(py) {
            LoadError::plain(e.value(py).to_string())
        } else {
            LoadError::from_py(py, &e)
        }
    })?;
    let (name, args, kwargs): (String, Bound<'_, PyAny>, Bound<'_, PyAny>) = parsed
        .extract()
        .map_err(|e: PyErr| LoadError::from_py(py, &e))?;
    if args.is_none() {
        Ok((name, None))
    } else {
        Ok((name, Some((args.unbind(), kwargs.unbind()))))
    }
}

/// Returns (name, None, None) for a name, (name, args tuple, kwargs dict)
/// for a call; raises ValueError with a one-line message otherwise.
const PARSE_SPEC: &str = r#"
import ast

def parse(expr):
    try:
        node = ast.parse(expr, mode="eval").body
    except SyntaxError:
        raise ValueError("Failed to parse %r as an attribute name or function call." % expr) from None
    if isinstance(node, ast.Name):
        return node.id, None, None
    if not isinstance(node, ast.Call):
        raise ValueError("Failed to parse %r as an attribute name or function call." % expr)
    if not isinstance(node.func, ast.Name):
        raise ValueError("Function reference must be a simple name: %r." % expr)
    try:
        args = tuple(ast.literal_eval(a) for a in node.args)
        kwargs = {}
        for kw in node.keywords:
            if kw.arg is None:
                raise ValueError
            kwargs[kw.arg] = ast.literal_eval(kw.value)
    except ValueError:
        raise ValueError("Failed to parse arguments as literal values: %r." % expr) from None
    return node.func.id, args, kwargs
"#;

/// The last line of a traceback: `ExcType: message`.
pub(crate) fn summarize(py: Python<'_>, err: &PyErr) -> String {
    let ty = err
        .get_type(py)
        .qualname()
        .map(|q| q.to_string())
        .unwrap_or_else(|_| "Exception".to_owned());
    let msg = err
        .value(py)
        .str()
        .map(|s| s.to_string())
        .unwrap_or_default();
    if msg.is_empty() {
        ty
    } else {
        format!("{ty}: {msg}")
    }
}

/// The full traceback as Python's `traceback` module prints it.
pub(crate) fn format_traceback(py: Python<'_>, err: &PyErr) -> String {
    let formatted = py.import("traceback").and_then(|tb| {
        // Type, value and traceback explicitly: before Python 3.12 the
        // traceback may live beside the value rather than on its
        // __traceback__ (and for some errors only on it).
        let frames = match err.traceback(py) {
            Some(t) => t.into_any(),
            None => err.value(py).getattr("__traceback__")?,
        };
        let lines = tb.call_method1(
            "format_exception",
            (err.get_type(py), err.value(py), frames),
        )?;
        PyString::new(py, "")
            .call_method1("join", (lines,))?
            .extract::<String>()
    });
    formatted.unwrap_or_else(|_| summarize(py, err))
}

/// What `PyGILState_Ensure` returned in `before_fork`, so the matching
/// `after_fork_*` restores the same state.
static FORK_GIL_WAS_HELD: AtomicBool = AtomicBool::new(false);

/// Call right before `fork()` in the master. Takes the GIL and keeps it
/// across the fork (as `os.fork` does) so no other Python thread can hold it
/// at the moment of the fork; `after_fork_parent` / `after_fork_child`
/// release it again. No-op when Python was never initialised.
pub fn before_fork() {
    if is_initialized() {
        fork_prepare();
    }
}

/// Call in the parent right after `fork()`.
pub fn after_fork_parent() {
    if is_initialized() {
        fork_finish(false);
    }
}

/// Call in the child right after `fork()`, before anything touches Python.
/// The child continues with the GIL released.
pub fn after_fork_child() {
    if is_initialized() {
        fork_finish(true);
    }
}

fn fork_prepare() {
    let held = crate::sys::python::fork_prepare();
    FORK_GIL_WAS_HELD.store(held, Ordering::Relaxed);
}

fn fork_finish(child: bool) {
    crate::sys::python::fork_finish(child, FORK_GIL_WAS_HELD.load(Ordering::Relaxed));
}

/// What a worker does in Python before a graceful exit, as gunicorn's
/// workers do by leaving through `sys.exit`: run the `atexit` handlers the
/// app registered and flush `sys.stdout`/`sys.stderr`, so nothing the app
/// buffered is lost (the process then ends with `_exit`).
pub fn finish_python() {
    if !is_initialized() {
        return;
    }
    Python::attach(|py| {
        let code = CString::new(FINISH).expect("no NUL in constant");
        if let Err(e) = py.run(&code, None, None) {
            tracing::error!("Error at worker exit: {}", summarize(py, &e));
        }
    });
}

const FINISH: &str = r#"
import atexit, sys
atexit._run_exitfuncs()
for stream in (sys.stdout, sys.stderr):
    try:
        stream.flush()
    except Exception:
        pass
"#;

/// Every Python thread's current stack, for the log line of a worker that
/// is being killed for a timeout. Attaches only for the dump. It needs the
/// GIL: if a C extension holds it without ever yielding, this blocks, so
/// call it from a thread whose wait can be bounded.
pub fn thread_stacks() -> String {
    if !is_initialized() {
        return String::from("(Python not initialised)\n");
    }
    Python::attach(|py| {
        let code = CString::new(STACKS).expect("no NUL in constant");
        let globals = PyDict::new(py);
        let dump = || -> PyResult<String> {
            py.run(&code, Some(&globals), None)?;
            globals
                .get_item("dump")?
                .expect("dump defined")
                .call0()?
                .extract()
        };
        dump().unwrap_or_else(|e| format!("(cannot dump Python stacks: {})\n", summarize(py, &e)))
    })
}

const STACKS: &str = r#"
import sys, threading, traceback

def dump():
    names = {t.ident: t.name for t in threading.enumerate()}
    me = threading.get_ident()
    out = []
    for ident, frame in sys._current_frames().items():
        if ident == me:
            # The thread asking for the dump: its stack is this function.
            continue
        name = names.get(ident, "request thread")
        out.append("Thread %s (%d), most recent call last:\n" % (name, ident))
        out.extend(traceback.format_stack(frame))
    return "".join(out)
"#;
