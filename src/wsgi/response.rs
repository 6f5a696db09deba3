//! `start_response`, `write()`, and driving the application's response
//! iterable into a [`ResponseSink`]: deferred headers, bytes checks,
//! `close()` always, sendfile for `wsgi.file_wrapper`, and turning app
//! errors into a 500 (or an aborted connection once bytes went out). Also
//! the per-thread Python context the worker's threads run requests in.

use std::fs::File;

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use super::environ::{self, Refusal};
use super::filewrapper::FileWrapper;
use super::input::Input;
use super::interp::{format_traceback, App};
use super::{Outcome, Request, ResponseSink, ServeContext, SharedSink, SinkError, SHARE_MIN};

/// The `start_response` callable handed to the app, and the response state
/// it records.
#[pyclass(module = "corral", name = "StartResponse")]
#[derive(Default)]
pub struct StartResponse {
    status: Option<String>,
    headers: Vec<(String, String)>,
    /// Headers count as sent, for the exc_info rules, once the driver sent
    /// them or the app called write().
    committed: bool,
    /// The status and headers went to the sink.
    started: bool,
    /// Where write() sends its data, straight away (PEP 3333: write() must
    /// not return before the data is on its way).
    sink: Option<SharedSink>,
}

fn lock(sink: &SharedSink) -> std::sync::MutexGuard<'_, dyn ResponseSink + Send + 'static> {
    sink.lock().unwrap_or_else(|e| e.into_inner())
}

/// Once Python lets go of it (after the request, or later if the app kept
/// it), its strings go back for the next response.
impl Drop for StartResponse {
    fn drop(&mut self) {
        recycle(self.status.take(), std::mem::take(&mut self.headers));
    }
}

impl StartResponse {
    fn new(sink: SharedSink) -> Self {
        let mut me = Self::default();
        me.sink = Some(sink);
        me
    }

    /// Send status and headers if not done yet.
    fn ensure_started(&mut self) -> Result<(), Fail> {
        if self.started {
            return Ok(());
        }
        let Some(status) = self.status.as_deref() else {
            return Err(Fail::App(PyRuntimeError::new_err(
                "the application produced a response without calling start_response()",
            )));
        };
        if let Some(sink) = &self.sink {
            lock(sink).start(status, &self.headers)?;
        }
        self.committed = true;
        self.started = true;
        Ok(())
    }

    fn chunk(&mut self, data: &Bound<'_, PyBytes>, last: bool) -> Result<(), Fail> {
        self.ensure_started()?;
        match &self.sink {
            // Exact bytes only: a subclass's __del__ must not run later,
            // on whichever thread then holds the GIL.
            Some(sink)
                if data.as_bytes().len() >= SHARE_MIN && data.is_exact_instance_of::<PyBytes>() =>
            {
                Ok(lock(sink).body_shared(data.clone().into(), last)?)
            }
            Some(sink) => Ok(lock(sink).body(data.as_bytes(), last)?),
            // The request is over; an app that kept write() must not reach
            // whatever the connection serves next.
            None => Err(Fail::App(PyRuntimeError::new_err(
                "write() called after the response was finished",
            ))),
        }
    }
}

/// Storage for status lines and headers from finished responses, reused by
/// the next ones on this thread: in steady state `start_response` copies the
/// app's strings into buffers it already has, where it allocated and freed
/// two strings per header and one for the status line, per request.
#[derive(Default)]
struct Spare {
    lists: Vec<Vec<(String, String)>>,
    strings: Vec<String>,
}

/// How much storage is kept: enough for a few responses' headers, none of
/// it larger than a typical header value.
const SPARE_LISTS: usize = 4;
const SPARE_STRINGS: usize = 128;
const SPARE_STRING_MAX: usize = 1024;

thread_local! {
    static SPARE: std::cell::RefCell<Spare> = std::cell::RefCell::new(Spare::default());
}

/// Something from the store, or a new empty one (also at thread exit,
/// when the store is gone).
fn from_spare<T: Default>(pick: impl FnOnce(&mut Spare) -> Option<T>) -> T {
    SPARE
        .try_with(|sp| pick(&mut sp.borrow_mut()))
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// A copy of `s` in a recycled buffer.
fn spare_string(s: &str) -> String {
    let mut out = from_spare(|sp| sp.strings.pop());
    out.push_str(s);
    out
}

fn spare_list(capacity: usize) -> Vec<(String, String)> {
    let mut list = from_spare(|sp| sp.lists.pop());
    list.reserve(capacity);
    list
}

/// Give a finished response's status and headers back for reuse. At
/// thread exit, when the storage is gone, they are simply freed.
fn recycle(status: Option<String>, mut headers: Vec<(String, String)>) {
    let _ = SPARE.try_with(|sp| {
        let mut sp = sp.borrow_mut();
        let mut keep = |mut s: String| {
            if sp.strings.len() < SPARE_STRINGS && s.capacity() <= SPARE_STRING_MAX {
                s.clear();
                sp.strings.push(s);
            }
        };
        status.into_iter().for_each(&mut keep);
        for (name, value) in headers.drain(..) {
            keep(name);
            keep(value);
        }
        if sp.lists.len() < SPARE_LISTS && headers.capacity() <= SPARE_STRINGS {
            sp.lists.push(headers);
        }
    });
}

fn check_status(status: &Bound<'_, PyAny>) -> PyResult<String> {
    let s = status
        .cast::<PyString>()
        .map_err(|_| {
            PyTypeError::new_err(format!("status must be str, not {}", type_name(status)))
        })?
        .to_str()?;
    let b = s.as_bytes();
    let ok =
        b.len() >= 3 && b[..3].iter().all(u8::is_ascii_digit) && (b.len() == 3 || b[3] == b' ');
    if !ok {
        return Err(PyValueError::new_err(format!(
            "status must be a 3-digit code followed by a reason phrase, got {s:?}"
        )));
    }
    if s.chars().any(|c| c.is_control() || c as u32 > 0xFF) {
        return Err(PyValueError::new_err(format!(
            "status contains invalid characters: {s:?}"
        )));
    }
    Ok(spare_string(s))
}

fn type_name(o: &Bound<'_, PyAny>) -> String {
    o.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

fn check_headers(headers: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
    let list = headers.cast::<PyList>().map_err(|_| {
        PyTypeError::new_err(format!(
            "headers must be a list, not {}",
            type_name(headers)
        ))
    })?;
    let mut out = spare_list(list.len());
    for item in list.iter() {
        let t = item.cast::<PyTuple>().map_err(|_| {
            PyTypeError::new_err(format!(
                "each header must be a (name, value) tuple, not {}",
                type_name(&item)
            ))
        })?;
        if t.len() != 2 {
            return Err(PyValueError::new_err(format!(
                "each header must be a (name, value) tuple, got {} items",
                t.len()
            )));
        }
        let get = |i: usize, what: &str| -> PyResult<String> {
            let v = t.get_item(i)?;
            let s = v.cast::<PyString>().map_err(|_| {
                PyTypeError::new_err(format!("header {what} must be str, not {}", type_name(&v)))
            })?;
            Ok(spare_string(s.to_str()?))
        };
        let (name, value) = (get(0, "name")?, get(1, "value")?);
        // Anything outside latin-1 cannot go on the wire, and CR/LF would
        // let the app (or data it echoes) inject header lines.
        if name.is_empty() || name.chars().any(|c| !c.is_ascii_graphic() || c == ':') {
            return Err(PyValueError::new_err(format!(
                "invalid header name {name:?}"
            )));
        }
        if value
            .chars()
            .any(|c| c as u32 > 0xFF || (c.is_control() && c != '\t'))
        {
            return Err(PyValueError::new_err(format!(
                "invalid value for header {name:?}: {value:?}"
            )));
        }
        out.push((name, value));
    }
    Ok(out)
}

#[pymethods]
impl StartResponse {
    #[pyo3(signature = (status, headers, exc_info=None))]
    fn __call__(
        slf: &Bound<'_, Self>,
        status: &Bound<'_, PyAny>,
        headers: &Bound<'_, PyAny>,
        exc_info: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Write> {
        let py = slf.py();
        let exc_info = exc_info.filter(|e| !e.is_none());
        {
            let me = slf.borrow();
            match exc_info {
                Some(info) if me.committed => {
                    // Too late to change the response: re-raise the app's
                    // error so it propagates out of the app.
                    let value = info.get_item(1)?;
                    let tb = info.get_item(2)?;
                    if !tb.is_none() {
                        value.setattr(intern!(py, "__traceback__"), tb)?;
                    }
                    return Err(PyErr::from_value(value));
                }
                None if me.status.is_some() => {
                    return Err(PyRuntimeError::new_err(
                        "start_response() called a second time without exc_info",
                    ));
                }
                _ => {}
            }
        }
        let status = check_status(status)?;
        let headers = check_headers(headers)?;
        let mut me = slf.borrow_mut();
        me.status = Some(status);
        me.headers = headers;
        Ok(Write {
            state: slf.clone().unbind(),
        })
    }
}

/// The `write` callable `start_response` returns.
#[pyclass(module = "corral", name = "Write")]
pub struct Write {
    state: Py<StartResponse>,
}

#[pymethods]
impl Write {
    fn __call__(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let bytes = data.cast::<PyBytes>().map_err(|_| {
            PyTypeError::new_err(format!(
                "write() argument must be bytes, not {}",
                type_name(data)
            ))
        })?;
        let mut st = self.state.bind(py).borrow_mut();
        if st.status.is_none() {
            return Err(PyRuntimeError::new_err(
                "write() called before start_response()",
            ));
        }
        st.committed = true;
        if bytes.as_bytes().is_empty() {
            return Ok(());
        }
        match st.chunk(bytes, false) {
            Ok(()) => Ok(()),
            Err(Fail::App(e)) => Err(e),
            Err(Fail::BadResponse(m)) => {
                Err(PyValueError::new_err(format!("invalid response: {m}")))
            }
            // Raised into the app, as a failed socket write would be; if
            // the app swallows it, the driver sees the same error next.
            Err(Fail::ClientGone) => {
                Err(pyo3::exceptions::PyOSError::new_err("client disconnected"))
            }
        }
    }
}

/// Why driving the response stopped early.
enum Fail {
    App(PyErr),
    BadResponse(String),
    ClientGone,
}

impl From<PyErr> for Fail {
    fn from(e: PyErr) -> Self {
        Fail::App(e)
    }
}

impl From<SinkError> for Fail {
    fn from(e: SinkError) -> Self {
        match e {
            SinkError::BadResponse(m) => Fail::BadResponse(m),
            SinkError::ClientGone => Fail::ClientGone,
        }
    }
}

struct Driver<'py> {
    py: Python<'py>,
    sink: SharedSink,
    state: Bound<'py, StartResponse>,
}

impl Driver<'_> {
    fn ensure_started(&mut self) -> Result<(), Fail> {
        self.state.borrow_mut().ensure_started()
    }

    fn chunk(&mut self, data: &Bound<'_, PyBytes>, last: bool) -> Result<(), Fail> {
        self.state.borrow_mut().chunk(data, last)
    }

    fn started(&self) -> bool {
        self.state.borrow().started
    }

    /// After an app error: a 500 if nothing was sent yet, else the
    /// connection must be cut (the response cannot be completed).
    fn fail(&self) -> Outcome {
        if self.started() {
            Outcome::Aborted
        } else {
            complete_if(send_error(
                &self.sink,
                "500 Internal Server Error",
                ERROR_BODY,
            ))
        }
    }

    fn drive(&mut self, result: &Bound<'_, PyAny>) -> Result<(), Fail> {
        if let Ok(w) = result.cast::<FileWrapper>() {
            if let Some((file, offset)) = sendable_file(self.py, w.borrow().filelike.bind(self.py))
            {
                self.ensure_started()?;
                lock(&self.sink).file(file, offset, None)?;
                return Ok(());
            }
        }
        if result.is_instance_of::<PyList>() || result.is_instance_of::<PyTuple>() {
            return self.drive_sequence(result);
        }
        for item in result.try_iter()? {
            let item = item?;
            let b = as_bytes(&item)?;
            if !b.as_bytes().is_empty() {
                self.chunk(b, false)?;
            }
        }
        self.ensure_started()
    }

    /// Lists and tuples are checked whole before anything is sent (so a bad
    /// item still gets a clean 500), and their final chunk is flagged
    /// `last` so the worker can coalesce it with the headers.
    fn drive_sequence(&mut self, seq: &Bound<'_, PyAny>) -> Result<(), Fail> {
        // One body in a list, the common `return [body]`: no copy of the
        // list to take. (A list subclass may iterate its own way.)
        if let Ok(list) = seq.cast_exact::<PyList>() {
            if list.len() == 1 {
                let item = list.get_item(0)?;
                let b = as_bytes(&item)?;
                if !b.as_bytes().is_empty() {
                    self.chunk(b, true)?;
                }
                return self.ensure_started();
            }
        }
        let items: Vec<Bound<'_, PyAny>> = seq.try_iter()?.collect::<PyResult<_>>()?;
        let mut chunks = Vec::with_capacity(items.len());
        for item in &items {
            let b = as_bytes(item)?;
            if !b.as_bytes().is_empty() {
                chunks.push(b);
            }
        }
        let n = chunks.len();
        for (i, b) in chunks.iter().enumerate() {
            self.chunk(b, i + 1 == n)?;
        }
        self.ensure_started()
    }
}

fn as_bytes<'a, 'py>(item: &'a Bound<'py, PyAny>) -> PyResult<&'a Bound<'py, PyBytes>> {
    item.cast::<PyBytes>().map_err(|_| {
        PyTypeError::new_err(format!(
            "the response iterable must yield bytes, not {}",
            type_name(item)
        ))
    })
}

/// A real file behind a `wsgi.file_wrapper`, reopened for sendfile, with
/// the object's current position. `None` means "iterate it instead".
///
/// The descriptor is reopened through `/proc/self/fd` rather than dup'ed:
/// turning a raw descriptor into a `File` needs `unsafe`, which this module
/// does not use. The result is an independent open file on the same inode;
/// its own offset does not matter since sendfile gets an explicit one.
fn sendable_file(py: Python<'_>, filelike: &Bound<'_, PyAny>) -> Option<(File, u64)> {
    let probe = || -> PyResult<Option<(i32, u64)>> {
        if !filelike.hasattr(intern!(py, "fileno"))? || !filelike.hasattr(intern!(py, "tell"))? {
            return Ok(None);
        }
        let fd: i32 = filelike.call_method0(intern!(py, "fileno"))?.extract()?;
        let st = py.import("os")?.call_method1("fstat", (fd,))?;
        let mode = st.getattr("st_mode")?;
        let regular: bool = py
            .import("stat")?
            .call_method1("S_ISREG", (mode,))?
            .extract()?;
        if !regular {
            return Ok(None);
        }
        let pos: u64 = filelike.call_method0(intern!(py, "tell"))?.extract()?;
        Ok(Some((fd, pos)))
    };
    // io.BytesIO and friends raise from fileno(): not an error, just not
    // a file.
    let (fd, pos) = probe().ok().flatten()?;
    let file = File::open(format!("/proc/self/fd/{fd}")).ok()?;
    file.metadata().ok().filter(|m| m.is_file())?;
    Some((file, pos))
}

/// Call `close()` on the response iterable if it has one; PEP 3333 requires
/// it whatever happened. Its errors are logged, not sent.
fn close_result(py: Python<'_>, result: &Bound<'_, PyAny>, raw_uri: &str) {
    // Exact lists and tuples have no close(); asking costs an
    // AttributeError built and discarded per request on Python 3.11.
    if result.is_exact_instance_of::<PyList>() || result.is_exact_instance_of::<PyTuple>() {
        return;
    }
    let r = result
        .getattr_opt(intern!(py, "close"))
        .and_then(|c| c.map(|c| c.call0().map(drop)).transpose());
    if let Err(e) = r {
        tracing::error!(
            "Error closing the response of request {raw_uri}\n{}",
            format_traceback(py, &e)
        );
    }
}

/// The bodies of the errors corral answers for an app (WSGI and ASGI).
pub(crate) const ERROR_BODY: &[u8] = b"Internal Server Error\n";
pub(crate) const SPOOF_BODY: &[u8] = b"Bad Request: contradicting scheme headers\n";

/// Send a short error response with `Connection: close`; false if even
/// that could not be sent.
pub(crate) fn send_error(sink: &SharedSink, status: &str, body: &[u8]) -> bool {
    let headers = [
        ("Connection".to_owned(), "close".to_owned()),
        ("Content-Type".to_owned(), "text/plain".to_owned()),
        ("Content-Length".to_owned(), body.len().to_string()),
    ];
    let mut sink = lock(sink);
    sink.start(status, &headers)
        .and_then(|()| sink.body(body, true))
        .is_ok()
}

/// The Python context of one worker thread; see [`python_thread`].
pub struct PyThread<'py> {
    py: Python<'py>,
}

/// Run `f` with the GIL released, from code that may or may not hold it
/// (the response sink waiting for a slow client must not stall the other
/// Python threads).
pub fn allow_threads<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    Python::attach(|py| py.detach(f))
}

/// Attach the calling OS thread to Python for the duration of `f` — meant
/// to wrap a worker thread's whole life, so its thread state is created
/// once, not per request. `f` runs holding the GIL; use [`PyThread::idle`]
/// around anything that waits.
pub fn python_thread<R>(f: impl FnOnce(&PyThread<'_>) -> R) -> R {
    Python::attach(|py| f(&PyThread { py }))
}

impl PyThread<'_> {
    /// Run `f` with the GIL released (waiting for the next job, I/O).
    pub fn idle<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        self.py.detach(f)
    }

    /// The interpreter token, for code that runs around a request (the
    /// config file's request hooks, which the worker wraps around `call`).
    pub fn py(&self) -> Python<'_> {
        self.py
    }

    /// Run one request through `app`, writing the response to `sink`. With
    /// `environ_out`, the request's environ is left there afterwards (for a
    /// `post_request` hook). The body is taken from `req`; the rest stays
    /// for the caller (its head can serve another request).
    pub fn call(
        &self,
        app: &App,
        ctx: &ServeContext,
        req: &mut Request,
        sink: SharedSink,
        environ_out: Option<&mut Option<Py<PyAny>>>,
    ) -> Outcome {
        let py = self.py;
        let body = std::mem::replace(&mut req.body, super::Body::Memory(Vec::new()));
        let Request {
            head,
            peer,
            local,
            proxy,
            ..
        } = &*req;
        let raw_uri = head.target.as_str();
        let app_error = |e: &PyErr| {
            tracing::error!(
                "Error handling request {raw_uri}\n{}",
                format_traceback(py, e)
            );
        };
        let prepared = Input::new(body)
            .map_err(PyErr::from)
            .and_then(|input| Bound::new(py, input))
            .and_then(|input| {
                environ::build(
                    py,
                    &app.template,
                    ctx,
                    head,
                    environ::Ends {
                        peer,
                        local,
                        proxy: proxy.as_ref(),
                    },
                    input.into_any(),
                )
            });
        let env = match prepared {
            Ok(Ok(env)) => {
                if let Some(out) = environ_out {
                    *out = Some(env.clone().into_any().unbind());
                }
                env
            }
            Ok(Err(Refusal::SchemeSpoof)) => {
                tracing::warn!(
                    "Refusing request {raw_uri}: contradicting scheme headers from a trusted proxy"
                );
                send_error(&sink, "400 Bad Request", SPOOF_BODY);
                return Outcome::Aborted;
            }
            Err(e) => {
                app_error(&e);
                return complete_if(send_error(&sink, "500 Internal Server Error", ERROR_BODY));
            }
        };
        let state = match Bound::new(py, StartResponse::new(sink.clone())) {
            Ok(s) => s,
            Err(e) => {
                app_error(&e);
                return complete_if(send_error(&sink, "500 Internal Server Error", ERROR_BODY));
            }
        };
        let mut drv = Driver {
            py,
            sink,
            state: state.clone(),
        };
        let result = match app.callable.bind(py).call1((env, state)) {
            Ok(r) => r,
            Err(e) => {
                app_error(&e);
                drv.state.borrow_mut().sink = None;
                return complete_if(send_error(
                    &drv.sink,
                    "500 Internal Server Error",
                    ERROR_BODY,
                ));
            }
        };
        let driven = drv.drive(&result);
        close_result(py, &result, raw_uri);
        // Cut the app's write() callable off from this request's sink.
        drv.state.borrow_mut().sink = None;
        match driven {
            Ok(()) => Outcome::Complete,
            Err(Fail::ClientGone) => Outcome::Aborted,
            Err(Fail::App(e)) => {
                app_error(&e);
                drv.fail()
            }
            Err(Fail::BadResponse(msg)) => {
                tracing::error!("Error handling request {raw_uri}: invalid response: {msg}");
                drv.fail()
            }
        }
    }
}

fn complete_if(sent: bool) -> Outcome {
    if sent {
        Outcome::Complete
    } else {
        Outcome::Aborted
    }
}
