//! The WSGI bridge (PEP 3333), and the only module that touches pyo3:
//! interpreter set-up, app loading, environ construction, `start_response`,
//! `wsgi.input`, `wsgi.errors`, `wsgi.file_wrapper`, and driving the app's
//! response iterable into a [`ResponseSink`].

use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::http::RequestHead;

/// Where a request came from, or where it arrived.
#[derive(Debug, Clone)]
pub enum SockAddr {
    Tcp(SocketAddr),
    Unix(Option<PathBuf>),
}

impl SockAddr {
    /// The TCP address, for the access log (a unix-socket peer has none).
    pub fn tcp(&self) -> Option<SocketAddr> {
        match self {
            SockAddr::Tcp(a) => Some(*a),
            SockAddr::Unix(_) => None,
        }
    }
}

/// A fully received request body. The worker's event loop reads the whole
/// body before dispatching, so the app never waits on the client; large
/// bodies are spilled to an unlinked temporary file to bound memory.
#[derive(Debug)]
pub enum Body {
    Memory(Vec<u8>),
    File { file: File, len: u64 },
}

/// A request handed to a Python thread.
#[derive(Debug)]
pub struct Request {
    pub head: RequestHead,
    pub body: Body,
    pub peer: SockAddr,
    pub local: SockAddr,
    /// What the connection's PROXY header said, if it had one.
    pub proxy: Option<crate::http::ProxyInfo>,
}

impl Request {
    /// The client's address: the one a PROXY header gave, else the peer's
    /// (none for a unix-socket peer).
    pub fn client(&self) -> Option<SocketAddr> {
        self.proxy
            .as_ref()
            .and_then(|p| p.client)
            .or_else(|| self.peer.tcp())
    }
}

/// Why the sink refused something.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The status or headers cannot be sent; the message says why.
    #[error("{0}")]
    BadResponse(String),
    /// The client is gone; stop producing output.
    #[error("client disconnected")]
    ClientGone,
}

/// Where the response goes. Implemented by the worker; every call may block
/// briefly for back-pressure, never on a slow client for long.
pub trait ResponseSink {
    /// The status and headers, called exactly once, when the first non-empty
    /// body chunk is ready or the body ends (PEP 3333's deferred headers).
    fn start(&mut self, status: &str, headers: &[(String, String)]) -> Result<(), SinkError>;
    /// Body bytes. `last` is a hint that nothing follows.
    fn body(&mut self, data: &[u8], last: bool) -> Result<(), SinkError>;
    /// The same for bytes still in the app's bytes object: a sink that can
    /// write from Python's buffer keeps the object instead of copying it.
    fn body_shared(
        &mut self,
        data: pyo3::pybacked::PyBackedBytes,
        last: bool,
    ) -> Result<(), SinkError> {
        self.body(&data, last)
    }
    /// Send `len` bytes (or to end of file when `None`) of `file` from
    /// `offset` with sendfile.
    fn file(&mut self, file: File, offset: u64, len: Option<u64>) -> Result<(), SinkError>;
}

/// Body chunks from this size on go to the sink as the bytes object itself
/// ([`ResponseSink::body_shared`]); below it a copy costs less than keeping
/// the object alive until the bytes are written.
pub const SHARE_MIN: usize = 8 << 10;

/// The sink as the bridge holds it: shared, so the `write()` callable the
/// app keeps can reach it during the application call.
pub type SharedSink = std::sync::Arc<std::sync::Mutex<dyn ResponseSink + Send>>;

/// What became of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A complete response was produced (possibly a 500 for an app error
    /// raised before any byte was sent).
    Complete,
    /// The response could not be completed (error after headers were sent,
    /// or the client left): the connection must be closed, not reused.
    Aborted,
}

/// A network (CIDR) or `*`: a peer trusted for `X-Forwarded-*`
/// (`--forwarded-allow-ips`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowIp {
    Any,
    Net(std::net::IpAddr, u8),
    /// Unix-socket peers (gunicorn spells this as part of the list too).
    Unix,
}

/// Per-worker constants the environ needs.
#[derive(Debug, Clone)]
pub struct ServeContext {
    pub multithread: bool,
    pub multiprocess: bool,
    pub forwarded_allow_ips: Vec<AllowIp>,
    /// `secure_scheme_headers` from the settings; `None` means gunicorn's
    /// default three headers.
    pub secure_scheme_headers: Option<Vec<(String, String)>>,
}

// What the worker can rely on, and must honour, when it drives requests
// through `PyThread::call`:
// - Sink methods are called on the Python thread with the GIL held; a sink
//   that must wait (back-pressure from a slow client) releases the GIL first
//   with `allow_threads`, so the other Python threads keep running.
// - Header values are `String`s whose chars are all <= U+00FF (checked in
//   start_response): encode each char as one byte (latin-1), not as UTF-8.
// - `body(.., last = true)` marks the final chunk of a list/tuple response,
//   so it can be coalesced with the headers; a generator's end is only known
//   when `call` returns (no trailing empty `body` call is made).
// - Error responses corral makes itself (500 for app errors, 400 for spoofed
//   scheme headers) carry `Connection: close` and a Content-Length: close the
//   connection after them. `Outcome::Aborted` also means close.
// - `write()` data goes to the sink at once; once `call` returns the bridge
//   drops its handle on the sink, so a `write` the app kept cannot reach a
//   later request on the same connection.

mod environ;
mod errors;
mod filewrapper;
mod input;
mod interp;
mod response;
#[cfg(test)]
mod tests;

pub(crate) use environ::ip_string;
pub use environ::is_trusted;
pub(crate) use environ::percent_decode as percent_decode_path;
pub(crate) use interp::summarize as summarize_error;

/// Whether a trusted front end's scheme headers say https (`Ok(None)`
/// when none is present; `Err` when they contradict each other): the
/// configured `secure_scheme_headers`, or gunicorn's default three.
pub(crate) fn forwarded_scheme_of(
    ctx: &ServeContext,
    headers: &[crate::http::Header],
) -> Result<Option<bool>, ()> {
    match &ctx.secure_scheme_headers {
        Some(list) => environ::forwarded_scheme_with(headers, list),
        None => environ::forwarded_scheme(headers),
    }
    .map_err(|_| ())
}
pub use interp::{
    after_fork_child, after_fork_parent, before_fork, configure_python, finish_python,
    import_before_fork, init_interpreter, is_initialized, load_app, mark_python_host, module_files,
    python_running, reload_app, sync_environ, thread_stacks, App, InterpreterOptions, LoadError,
};
pub use response::{allow_threads, python_thread, PyThread};
pub(crate) use response::{send_error, ERROR_BODY, SPOOF_BODY};
