//! The ASGI 3.0 bridge (`-k asgi`): the http scope, the `Exchange` each
//! request's `receive` and `send` talk to, the `Bridge` the asyncio side
//! takes requests from, and the asyncio driver itself (`driver.py`, run on
//! the worker's main thread).
//!
//! The worker's Rust event loop owns the sockets exactly as for WSGI: it
//! parses, reads bodies, writes, keeps connections alive. What differs is
//! the consumer of requests: one asyncio loop instead of a pool of threads,
//! woken through an eventfd it watches with `add_reader`. A request goes
//! to it with its head, and its body follows as it arrives ([`Upload`]):
//! a task awaiting its body costs no thread. Responses go
//! back through the same sink as WSGI's (`wsgi::ResponseSink`), so framing,
//! keep-alive and back-pressure are shared; a slow client makes `send`
//! await instead of block.
//!
//! This module knows nothing of the worker: the worker implements [`Feed`]
//! (where requests come from) and [`Reply`] (how a response ends, and its
//! accounting), as it implements the WSGI sink.

mod exchange;
mod scope;
mod upload;
mod websocket;

use std::ffi::CString;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule};

pub use exchange::{Bridge, Exchange};
pub use upload::{Pushed, Taken, Upload, UPLOAD_LIMIT};
pub use websocket::{Inbox, WsEvent, WsInit};

use crate::wsgi::{App, Outcome, Request, ServeContext, SharedSink};

/// gunicorn's `asgi_lifespan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lifespan {
    /// Run it; an app that raises on the lifespan scope has none.
    #[default]
    Auto,
    /// Run it; any failure to complete startup stops the server.
    On,
    Off,
}

impl Lifespan {
    pub fn as_str(self) -> &'static str {
        match self {
            Lifespan::Auto => "auto",
            Lifespan::On => "on",
            Lifespan::Off => "off",
        }
    }
}

/// gunicorn's `asgi_loop`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoopKind {
    /// uvloop when installed, else asyncio's own.
    #[default]
    Auto,
    Asyncio,
    Uvloop,
}

impl LoopKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LoopKind::Auto => "auto",
            LoopKind::Asyncio => "asyncio",
            LoopKind::Uvloop => "uvloop",
        }
    }
}

/// What the ASGI side runs with.
#[derive(Debug, Clone)]
pub struct AsgiOptions {
    pub lifespan: Lifespan,
    pub event_loop: LoopKind,
    /// The scope's `root_path` (`--root-path`).
    pub root_path: String,
    /// A request running longer is cancelled and answered 504 (0 = never).
    pub timeout: Duration,
    /// How long lifespan shutdown, and work an app left running after its
    /// responses, may take when the worker stops.
    pub graceful_timeout: Duration,
    /// `--asgi-disconnect-grace-period`: how long a request task may run on
    /// after its client left.
    pub disconnect_grace: Duration,
    pub serve: ServeContext,
}

/// What the event loop tells a request's producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// The client left.
    Gone,
    /// The bytes queued for a slow client fell under the high-water mark.
    Drained,
    /// A WebSocket message (or the close) is in the inbox.
    Message,
}

/// How a request's response ends, implemented by the worker: the End
/// marker for its event loop, and the access log, statsd and metrics.
pub trait Reply: Send + Sync {
    /// The response is over (complete, or aborted: the connection closes).
    /// Called once, with the GIL held (`post_request` runs here).
    fn end(&mut self, py: Python<'_>, outcome: Outcome);
    /// More bytes wait for the client than the high-water mark.
    fn full(&self) -> bool;
    /// The client left.
    fn gone(&self) -> bool;
    /// The request was cancelled for running past `--timeout`.
    fn timed_out(&mut self);
    /// Bytes that are not an HTTP response (the WebSocket handshake, with
    /// `upgrade`, after which the event loop reads frames; then frames).
    fn raw(&mut self, bytes: Vec<u8>, upgrade: bool) -> Result<(), crate::wsgi::SinkError>;
    /// The app caught up with a WebSocket inbox or a streamed body the
    /// event loop had paused, or wants a body's `100 Continue` sent.
    fn resume(&self);
    /// Close the connection after this response (whose request body is
    /// still arriving): the response says `Connection: close`.
    fn close_after(&mut self);
    /// The status the access log shows when no HTTP response was framed
    /// (`101` for an accepted WebSocket).
    fn set_status(&mut self, status: &str);
    /// The request's head, once the scope is built from it: the event loop
    /// may parse a later request into its storage.
    fn give_back(&mut self, head: crate::http::RequestHead);
}

/// A request as the asyncio side receives it.
pub struct Incoming {
    /// Unique in the worker for its life; notes name requests by it.
    pub id: u64,
    pub req: Request,
    /// Where the response's status, headers and body go.
    pub sink: SharedSink,
    pub reply: Box<dyn Reply>,
    /// A WebSocket upgrade the client asked for (checked as RFC 6455 says).
    pub ws: Option<WsInit>,
    /// The body, when it was still arriving as the request was handed over
    /// (`req.body` is then empty).
    pub upload: Option<std::sync::Arc<Upload>>,
}

/// Where requests come from, implemented by the worker.
pub trait Feed: Send + Sync {
    /// The eventfd the asyncio loop watches.
    fn fd(&self) -> i32;
    /// New requests, notes about requests in flight, and whether the event
    /// loop has stopped (no more requests will come). Called with the GIL
    /// held, so the worker can run `pre_request` as it hands a request over.
    fn take(&self, py: Python<'_>) -> (Vec<Incoming>, Vec<(u64, Note)>, bool);
    /// The loop turns; `busy` when a request is in the app.
    fn beat(&self, busy: bool);
}

const DRIVER: &str = include_str!("driver.py");

/// The asyncio side of an ASGI worker, between [`Driver::start`] and
/// [`Driver::shutdown`].
pub struct Driver {
    driver: Py<PyAny>,
}

impl Driver {
    /// Create the event loop and run lifespan startup. `Err` is the
    /// one-line reason the worker cannot serve.
    pub fn start(app: &App, feed: Box<dyn Feed>, opts: AsgiOptions) -> Result<Driver, String> {
        Python::attach(|py| {
            let failed = |e: PyErr| crate::wsgi::summarize_error(py, &e);
            let module = load_driver(py).map_err(failed)?;
            let options = PyDict::new(py);
            options
                .set_item("lifespan", opts.lifespan.as_str())
                .map_err(failed)?;
            options
                .set_item("loop", opts.event_loop.as_str())
                .map_err(failed)?;
            options
                .set_item("timeout", opts.timeout.as_secs_f64())
                .map_err(failed)?;
            options
                .set_item("graceful_timeout", opts.graceful_timeout.as_secs_f64())
                .map_err(failed)?;
            options
                .set_item("disconnect_grace", opts.disconnect_grace.as_secs_f64())
                .map_err(failed)?;
            let bridge = Bridge::new(py, feed, opts).map_err(failed)?;
            let driver = module
                .getattr("Driver")
                .and_then(|d| d.call1((app.callable.clone_ref(py), bridge, options)))
                .map_err(failed)?;
            match driver.call_method0("startup") {
                Ok(_) => Ok(Driver {
                    driver: driver.unbind(),
                }),
                Err(e) => {
                    let lifespan_failed = module
                        .getattr("LifespanFailed")
                        .is_ok_and(|t| e.matches(py, t).unwrap_or(false));
                    let text = e.value(py).to_string();
                    Err(if lifespan_failed {
                        format!("ASGI lifespan startup failed: {text}")
                    } else {
                        format!("ASGI start-up failed: {}", failed(e))
                    })
                }
            }
        })
    }

    /// Serve until the event loop has drained (it closes the feed).
    pub fn serve(&self) -> Result<(), String> {
        Python::attach(|py| {
            self.driver
                .bind(py)
                .call_method0("serve")
                .map(|_| ())
                .map_err(|e| crate::wsgi::summarize_error(py, &e))
        })
    }

    /// Lifespan shutdown, then close the asyncio loop.
    pub fn shutdown(self) {
        Python::attach(|py| {
            if let Err(e) = self.driver.bind(py).call_method0("shutdown") {
                tracing::error!("ASGI shutdown: {}", crate::wsgi::summarize_error(py, &e));
            }
        });
    }
}

fn load_driver(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    let code = CString::new(DRIVER).expect("no NUL in the driver");
    PyModule::from_code(py, &code, c"corral/asgi/driver.py", c"corral._asgi")
}
