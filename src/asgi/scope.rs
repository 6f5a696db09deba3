//! The ASGI `http` scope of a request (ASGI 3.0, HTTP spec 2.4).

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::http::{RequestHead, Version};
use crate::wsgi::{self, ServeContext, SockAddr};

/// The request's scheme: `https` only when a trusted front end says so
/// (`--forwarded-allow-ips` and `secure_scheme_headers`, as for WSGI).
/// `Err` when the front end's headers contradict each other.
pub fn secure(ctx: &ServeContext, peer: &SockAddr, head: &RequestHead) -> Result<bool, ()> {
    if !wsgi::is_trusted(peer, &ctx.forwarded_allow_ips) {
        return Ok(false);
    }
    wsgi::forwarded_scheme_of(ctx, &head.headers)
        .map(|s| s.unwrap_or(false))
        .map_err(|_| ())
}

fn address<'py>(py: Python<'py>, a: Option<std::net::SocketAddr>) -> PyResult<Bound<'py, PyAny>> {
    match a {
        Some(a) => Ok(PyTuple::new(
            py,
            [
                wsgi::ip_string(py, a.ip()).into_any(),
                a.port().into_pyobject(py)?.into_any(),
            ],
        )?
        .into_any()),
        None => Ok(py.None().into_bound(py)),
    }
}

/// What every http scope of this thread starts from, for one root path.
struct Template {
    root_path: String,
    /// Every key `build` sets, `type` and `root_path` with their values;
    /// copied, so a request's scope starts at its final size and setting
    /// a key replaces a value. Some room is left for keys apps add
    /// (Starlette adds half a dozen).
    scope: Py<PyDict>,
    /// The `asgi` entry, copied for each scope: an app may change its own.
    asgi: Py<PyDict>,
}

thread_local! {
    static TEMPLATE: std::cell::RefCell<Option<Template>> = const { std::cell::RefCell::new(None) };
}

/// A new scope with the constant entries set, and its `asgi` dict. A
/// websocket scope (rarer, and with other keys) starts from an empty dict.
fn from_template<'py>(
    py: Python<'py>,
    root_path: &str,
    ws: bool,
) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyDict>)> {
    TEMPLATE.with(|cell| {
        let mut cell = cell.borrow_mut();
        if let Some(t) = cell.as_ref().filter(|t| t.root_path == root_path) {
            let scope = if ws {
                let scope = PyDict::new(py);
                scope.set_item(intern!(py, "type"), intern!(py, "websocket"))?;
                scope.set_item(intern!(py, "root_path"), PyString::new(py, root_path))?;
                scope
            } else {
                t.scope.bind(py).copy()?
            };
            return Ok((scope, t.asgi.bind(py).copy()?));
        }
        let asgi = PyDict::new(py);
        asgi.set_item(intern!(py, "version"), intern!(py, "3.0"))?;
        asgi.set_item(intern!(py, "spec_version"), intern!(py, "2.4"))?;
        let scope = PyDict::new(py);
        scope.set_item(intern!(py, "type"), intern!(py, "http"))?;
        for key in [
            intern!(py, "asgi"),
            intern!(py, "http_version"),
            intern!(py, "scheme"),
            intern!(py, "method"),
            intern!(py, "path"),
            intern!(py, "raw_path"),
            intern!(py, "query_string"),
            intern!(py, "headers"),
            intern!(py, "client"),
            intern!(py, "server"),
        ] {
            scope.set_item(key, py.None())?;
        }
        scope.set_item(intern!(py, "root_path"), PyString::new(py, root_path))?;
        *cell = Some(Template {
            root_path: root_path.to_owned(),
            scope: scope.unbind(),
            asgi: asgi.unbind(),
        });
        drop(cell);
        from_template(py, root_path, ws)
    })
}

/// The scope dict: `http`, or `websocket` when `subprotocols` is given
/// (what the client offered). `state` is the lifespan state,
/// shallow-copied so one request's changes never reach another.
pub fn build<'py>(
    py: Python<'py>,
    req: &wsgi::Request,
    secure: bool,
    root_path: &str,
    state: Option<&Bound<'py, PyDict>>,
    subprotocols: Option<&[String]>,
) -> PyResult<Bound<'py, PyDict>> {
    let head = &req.head;
    let ws = subprotocols.is_some();
    let (scope, asgi) = from_template(py, root_path, ws)?;
    scope.set_item(intern!(py, "asgi"), asgi)?;
    scope.set_item(
        intern!(py, "http_version"),
        match head.version {
            Version::Http10 => intern!(py, "1.0"),
            Version::Http11 => intern!(py, "1.1"),
        },
    )?;
    let method = match &*head.method {
        "GET" => intern!(py, "GET").clone(),
        "POST" => intern!(py, "POST").clone(),
        m => PyString::new(py, m),
    };
    let scheme = match (ws, secure) {
        (false, false) => intern!(py, "http"),
        (false, true) => intern!(py, "https"),
        (true, false) => intern!(py, "ws"),
        (true, true) => intern!(py, "wss"),
    };
    scope.set_item(intern!(py, "scheme"), scheme)?;
    match subprotocols {
        // The websocket scope has no method (the handshake is a GET).
        Some(offered) => scope.set_item(intern!(py, "subprotocols"), PyList::new(py, offered)?)?,
        None => scope.set_item(intern!(py, "method"), method)?,
    }
    // `path` is decoded (percent-escapes, then UTF-8); `raw_path` is the
    // path as sent.
    let decoded = wsgi::percent_decode_path(&head.path);
    scope.set_item(
        intern!(py, "path"),
        PyString::new(py, &String::from_utf8_lossy(&decoded)),
    )?;
    scope.set_item(
        intern!(py, "raw_path"),
        PyBytes::new(py, head.path.as_bytes()),
    )?;
    scope.set_item(
        intern!(py, "query_string"),
        PyBytes::new(py, head.query.as_bytes()),
    )?;
    let headers = PyList::empty(py);
    for h in &head.headers {
        let name = h.name.to_ascii_lowercase();
        headers.append(PyTuple::new(
            py,
            [
                PyBytes::new(py, name.as_bytes()),
                PyBytes::new(py, &h.value),
            ],
        )?)?;
    }
    scope.set_item(intern!(py, "headers"), headers)?;
    let client = req.client();
    scope.set_item(intern!(py, "client"), address(py, client)?)?;
    scope.set_item(intern!(py, "server"), address(py, req.local.tcp())?)?;
    if let Some(state) = state {
        scope.set_item(intern!(py, "state"), state.copy()?)?;
    }
    Ok(scope)
}
