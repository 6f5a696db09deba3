//! `pre_request` / `post_request`, on the Python thread serving the
//! request. The response sink is wrapped so `post_request` sees what was
//! really sent — including the 500 or 400 corral produced itself — without
//! the WSGI bridge having to report it.

use std::fs::File;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;

use super::{call, objects, this_worker, REQUEST};
use crate::config::gunicorn::Hook;
use crate::wsgi::{ResponseSink, SharedSink, SinkError};

/// Passes everything to the worker's sink and remembers the status, the
/// headers and the body length.
struct Recorder {
    inner: SharedSink,
    status: Option<String>,
    headers: Vec<(String, String)>,
    sent: u64,
}

impl ResponseSink for Recorder {
    fn start(&mut self, status: &str, headers: &[(String, String)]) -> Result<(), SinkError> {
        self.status = Some(status.to_string());
        self.headers = headers.to_vec();
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .start(status, headers)
    }

    fn body(&mut self, data: &[u8], last: bool) -> Result<(), SinkError> {
        let r = self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .body(data, last);
        if r.is_ok() {
            self.sent += data.len() as u64;
        }
        r
    }

    fn file(&mut self, file: File, offset: u64, len: Option<u64>) -> Result<(), SinkError> {
        let size = len.or_else(|| file.metadata().ok().map(|m| m.len().saturating_sub(offset)));
        let r = self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .file(file, offset, len);
        if r.is_ok() {
            self.sent += size.unwrap_or(0);
        }
        r
    }
}

/// One request's hooks, from `pre_request` to `post_request`.
pub struct RequestHooks {
    req: Py<objects::Req>,
    recorder: Arc<Mutex<Recorder>>,
}

impl RequestHooks {
    /// Call `pre_request` and start recording the response. `None` (after
    /// one atomic load) when neither request hook is set.
    pub fn begin(
        py: Python<'_>,
        head: &crate::http::RequestHead,
        sink: &SharedSink,
    ) -> Option<RequestHooks> {
        if !REQUEST.load(Ordering::Acquire) {
            return None;
        }
        let worker = this_worker(py)?;
        let req = objects::request(py, head).ok()?;
        // A failing hook is logged by `call`; the request goes on.
        let _ = call(py, Hook::PreRequest, |_| Ok((worker, req.clone())));
        Some(RequestHooks {
            req: req.unbind(),
            recorder: Arc::new(Mutex::new(Recorder {
                inner: Arc::clone(sink),
                status: None,
                headers: Vec::new(),
                sent: 0,
            })),
        })
    }

    /// The sink the request must write to.
    pub fn sink(&self) -> SharedSink {
        self.recorder.clone()
    }

    /// Call `post_request` with the request's environ (`None` when the
    /// request was refused before one was built).
    pub fn finish(self, py: Python<'_>, environ: Option<Py<PyAny>>) {
        let Some(worker) = this_worker(py) else {
            return;
        };
        let rec = self.recorder.lock().unwrap_or_else(|e| e.into_inner());
        let _ = call(py, Hook::PostRequest, |py| {
            let resp = objects::response(py, rec.status.as_deref(), &rec.headers, rec.sent)?;
            let environ = environ.unwrap_or_else(|| py.None());
            Ok((worker, self.req.clone_ref(py), environ, resp))
        });
    }
}
