//! The Python objects hook code receives: `server`, `worker`, `req`,
//! `resp` and their `log`. They carry the attributes real gunicorn hook code
//! reads (`server.cfg.workers`, `worker.pid`, `req.path`,
//! `resp.status_code`, `log.info(...)`), built from corral's own state.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::config::{Settings, Shown};

/// `server.log` / `worker.log`: Python logging-style methods that write to
/// corral's error log through `tracing`, so hook output lands in the same
/// place (and journal fields) as corral's own messages.
#[pyclass(module = "corral", name = "Log", frozen)]
pub struct Log;

#[derive(Clone, Copy)]
enum Level {
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

/// `msg % args` as Python's logging does it: only when there are args.
fn render(msg: &Bound<'_, PyAny>, args: &Bound<'_, PyTuple>) -> String {
    let text = if args.is_empty() {
        msg.str().map(|s| s.to_string())
    } else {
        // logging accepts a single dict for %(name)s formats.
        let operand =
            if args.len() == 1 && args.get_item(0).is_ok_and(|a| a.is_instance_of::<PyDict>()) {
                args.get_item(0).map(|a| a.unbind())
            } else {
                Ok(args.clone().into_any().unbind())
            };
        operand
            .and_then(|o| msg.rem(o.bind(msg.py())))
            .and_then(|s| s.str().map(|s| s.to_string()))
    };
    text.unwrap_or_else(|_| format!("{msg} {args}"))
}

fn emit(level: Level, text: &str) {
    match level {
        Level::Debug => tracing::debug!("{text}"),
        Level::Info => tracing::info!("{text}"),
        Level::Warning => tracing::warn!("{text}"),
        Level::Error => tracing::error!("{text}"),
        Level::Critical => tracing::error!(critical = true, "{text}"),
    }
}

/// `Log`'s methods: one per level, each taking `logging`'s `(msg, *args,
/// **kwargs)`, plus `exception`. One macro so the level methods cannot
/// drift apart (pyo3 wants every method of the class in one impl block).
macro_rules! log_methods {
    ($($name:ident => $level:expr),* $(,)?) => {
        #[pymethods]
        impl Log {
            $(
                #[pyo3(signature = (msg, *args, **_kwargs))]
                fn $name(
                    &self,
                    msg: &Bound<'_, PyAny>,
                    args: &Bound<'_, PyTuple>,
                    _kwargs: Option<&Bound<'_, PyDict>>,
                ) {
                    emit($level, &render(msg, args));
                }
            )*

            /// Like `error`, followed by the traceback of the exception being
            /// handled (called from an `except` block, as in Python).
            #[pyo3(signature = (msg, *args, **_kwargs))]
            fn exception(
                &self,
                py: Python<'_>,
                msg: &Bound<'_, PyAny>,
                args: &Bound<'_, PyTuple>,
                _kwargs: Option<&Bound<'_, PyDict>>,
            ) {
                let tb = py
                    .import("traceback")
                    .and_then(|t| t.call_method0("format_exc"))
                    .and_then(|s| s.extract::<String>())
                    .unwrap_or_default();
                emit(
                    Level::Error,
                    &format!("{}\n{}", render(msg, args), tb.trim_end()),
                );
            }
        }
    };
}

log_methods! {
    debug => Level::Debug,
    info => Level::Info,
    warning => Level::Warning,
    warn => Level::Warning,
    error => Level::Error,
    critical => Level::Critical,
}

/// `server`: the master as hook code sees it.
#[pyclass(module = "corral", name = "Server", dict)]
pub struct Server {
    #[pyo3(get)]
    pub cfg: Py<PyAny>,
    #[pyo3(get)]
    pub pid: u32,
    #[pyo3(get)]
    pub num_workers: usize,
    #[pyo3(get)]
    pub log: Py<Log>,
    #[pyo3(get)]
    pub proc_name: String,
}

/// `worker`: one worker process. `dict` lets hook code keep its own
/// attributes on it, which gunicorn users do (`worker.started = time()`).
#[pyclass(module = "corral", name = "Worker", dict)]
pub struct Worker {
    /// `None` in `pre_fork`, before the process exists.
    #[pyo3(get, set)]
    pub pid: Option<u32>,
    #[pyo3(get, set)]
    pub ppid: u32,
    /// Spawn order, as gunicorn counts it.
    #[pyo3(get)]
    pub age: u64,
    #[pyo3(get, set)]
    pub alive: bool,
    #[pyo3(get, set)]
    pub booted: bool,
    #[pyo3(get)]
    pub log: Py<Log>,
    #[pyo3(get)]
    pub cfg: Py<PyAny>,
}

/// `req` for `pre_request` / `post_request`.
#[pyclass(module = "corral", name = "Request", dict, frozen)]
pub struct Req {
    #[pyo3(get)]
    pub method: String,
    #[pyo3(get)]
    pub uri: String,
    #[pyo3(get)]
    pub path: String,
    #[pyo3(get)]
    pub query: String,
    /// `(1, 1)`, a tuple as in gunicorn.
    #[pyo3(get)]
    pub version: (u8, u8),
    /// `[(NAME, value)]`, names upper-cased as gunicorn gives them.
    #[pyo3(get)]
    pub headers: Py<PyList>,
}

/// `resp` for `post_request`: what was sent to the client.
#[pyclass(module = "corral", name = "Response", frozen)]
pub struct Resp {
    /// `"200 OK"`, or `None` when nothing could be sent.
    #[pyo3(get)]
    pub status: Option<String>,
    #[pyo3(get)]
    pub status_code: Option<u16>,
    #[pyo3(get)]
    pub headers: Py<PyList>,
    /// Body bytes handed to the connection.
    #[pyo3(get)]
    pub sent: u64,
}

pub fn shown_to_py<'py>(py: Python<'py>, v: &Shown) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Shown::None => py.None().into_bound(py),
        Shown::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Shown::Int(n) => n.into_pyobject(py)?.into_any(),
        Shown::Str(s) => s.into_pyobject(py)?.into_any(),
        Shown::List(l) => PyList::new(py, l)?.into_any(),
        Shown::Dict(d) => {
            let dict = PyDict::new(py);
            for (k, v) in d {
                dict.set_item(k, v)?;
            }
            dict.into_any()
        }
        Shown::Json(j) => py.import("json")?.call_method1("loads", (j,))?,
    })
}

/// `server.cfg` / `worker.cfg`: a namespace with one attribute per setting.
pub fn cfg<'py>(py: Python<'py>, settings: &Settings) -> PyResult<Bound<'py, PyAny>> {
    let kwargs = PyDict::new(py);
    for (name, value) in settings.effective() {
        kwargs.set_item(name, shown_to_py(py, &value)?)?;
    }
    py.import("types")?
        .getattr("SimpleNamespace")?
        .call((), Some(&kwargs))
}

pub fn server<'py>(
    py: Python<'py>,
    settings: &Settings,
    num_workers: usize,
) -> PyResult<Bound<'py, Server>> {
    let proc_name = settings
        .proc_name
        .clone()
        .or_else(|| settings.app.clone())
        .unwrap_or_else(|| "corral".into());
    Bound::new(
        py,
        Server {
            cfg: cfg(py, settings)?.unbind(),
            pid: match super::MASTER_PID.load(std::sync::atomic::Ordering::Relaxed) {
                0 => std::process::id(),
                pid => pid,
            },
            num_workers,
            log: Py::new(py, Log)?,
            proc_name,
        },
    )
}

pub fn worker<'py>(
    py: Python<'py>,
    settings: &Settings,
    pid: Option<u32>,
    age: u64,
) -> PyResult<Bound<'py, Worker>> {
    Bound::new(
        py,
        Worker {
            pid,
            ppid: std::process::id(),
            age,
            alive: true,
            booted: false,
            log: Py::new(py, Log)?,
            cfg: cfg(py, settings)?.unbind(),
        },
    )
}

fn latin1(b: &[u8]) -> String {
    b.iter().map(|&c| c as char).collect()
}

pub fn request<'py>(py: Python<'py>, head: &crate::http::RequestHead) -> PyResult<Bound<'py, Req>> {
    let headers = PyList::empty(py);
    for h in &head.headers {
        headers.append((h.name.to_ascii_uppercase(), latin1(&h.value)))?;
    }
    Bound::new(
        py,
        Req {
            method: head.method.to_string(),
            uri: head.target.clone(),
            path: head.path.clone(),
            query: head.query.clone(),
            version: match head.version {
                crate::http::Version::Http10 => (1, 0),
                crate::http::Version::Http11 => (1, 1),
            },
            headers: headers.unbind(),
        },
    )
}

pub fn response<'py>(
    py: Python<'py>,
    status: Option<&str>,
    headers: &[(String, String)],
    sent: u64,
) -> PyResult<Bound<'py, Resp>> {
    let list = PyList::empty(py);
    for (k, v) in headers {
        list.append((k, v))?;
    }
    Bound::new(
        py,
        Resp {
            status: status.map(str::to_string),
            status_code: status.and_then(|s| s.get(..3)).and_then(|c| c.parse().ok()),
            headers: list.unbind(),
            sent,
        },
    )
}
