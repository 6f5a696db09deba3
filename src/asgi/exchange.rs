//! `Exchange`, the Rust side of one request's `receive` and `send`, and
//! `Bridge`, what the asyncio driver takes requests from.
//!
//! Messages are checked here as the ASGI spec words them, and an app that
//! breaks the protocol gets an exception from `send` (the driver turns an
//! exception escaping the app into a 500, or a closed connection once
//! bytes went out). `send` never blocks: when a slow client has more than
//! the high-water mark waiting, it returns true and the driver awaits the
//! event loop's note.

use std::io::Read;

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use std::sync::Arc;

use super::{scope, AsgiOptions, Feed, Incoming, Note, Reply, Upload, WsEvent, WsInit};
use crate::http::websocket::{self as ws, Opcode};
use crate::wsgi::{send_error, Body, Outcome, SharedSink, SinkError, ERROR_BODY, SPOOF_BODY};

/// Body bytes per `http.request` message when the body was spilled to a
/// file (a body in memory goes in one message).
const CHUNK: usize = 64 << 10;

const TIMEOUT_BODY: &[u8] = b"Gateway Timeout\n";

fn sink_error(e: SinkError) -> PyErr {
    match e {
        SinkError::ClientGone => PyOSError::new_err("client disconnected"),
        SinkError::BadResponse(m) => PyRuntimeError::new_err(m),
    }
}

/// One request, as `receive` and `send` see it.
#[pyclass(module = "corral", name = "Exchange")]
pub struct Exchange {
    #[pyo3(get)]
    id: u64,
    scope: Py<PyDict>,
    /// The body not yet given to the app; `None` once it all was.
    body: Option<Body>,
    /// A body still arriving when the app was called, streamed to it as
    /// the event loop decodes it; `None` once the app has it all.
    stream: Option<Arc<Upload>>,
    sink: SharedSink,
    /// `None` once the response ended.
    reply: Option<Box<dyn Reply>>,
    /// `http.response.start`, held until the first body message (which
    /// may let corral add `Content-Length`).
    start: Option<(u16, Vec<(String, String)>)>,
    /// Response bytes went to the sink.
    written: bool,
    /// A HEAD request.
    head: bool,
    /// A WebSocket connection's state, for a websocket scope.
    ws: Option<Ws>,
}

/// Where a WebSocket connection is, as the app sees it.
struct Ws {
    init: WsInit,
    /// `websocket.connect` was received.
    connected: bool,
    /// The app sent `websocket.accept` (the 101 went out).
    accepted: bool,
    /// The app sent `websocket.close`.
    closed: bool,
    /// The disconnect the app was (or is to be) given.
    ended: Option<(u16, String)>,
    /// permessage-deflate's compressor, made on the first message large
    /// enough to compress.
    deflater: Option<crate::http::deflate::Deflater>,
}

fn message<'py>(py: Python<'py>, kind: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyDict>> {
    let m = PyDict::new(py);
    m.set_item(intern!(py, "type"), kind)?;
    Ok(m)
}

/// `[name, value]` pairs of bytes from a message's `headers`.
fn header_pairs(message: &Bound<'_, PyDict>) -> PyResult<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut headers = Vec::new();
    if let Some(list) = message.get_item(intern!(message.py(), "headers"))? {
        for item in list.try_iter()? {
            let item = item?;
            let mut pair = item.try_iter()?;
            let (Some(name), Some(value), None) = (pair.next(), pair.next(), pair.next()) else {
                return Err(PyValueError::new_err(
                    "each header must be a [name, value] pair",
                ));
            };
            headers.push((
                bytes_of(&name?, "header name")?,
                bytes_of(&value?, "header value")?,
            ));
        }
    }
    Ok(headers)
}

impl Exchange {
    fn end(&mut self, py: Python<'_>, outcome: Outcome) {
        if let Some(mut r) = self.reply.take() {
            r.end(py, outcome);
        }
    }

    fn gone(&self) -> bool {
        self.reply.as_ref().is_some_and(|r| r.gone())
    }

    /// The app cannot complete its response: a clean error response if
    /// nothing was written yet, else the connection is closed.
    fn give_up(&mut self, py: Python<'_>, status: &str, body: &[u8]) {
        if self.reply.is_none() {
            return;
        }
        if !self.written {
            self.unfinished_body_closes();
        }
        let outcome = if !self.written && send_error(&self.sink, status, body) {
            Outcome::Complete
        } else {
            Outcome::Aborted
        };
        self.written = true;
        self.end(py, outcome);
    }

    /// A response that starts before the client has sent its whole body
    /// closes the connection after it: the rest of the body is never read
    /// as the next request.
    fn unfinished_body_closes(&mut self) {
        if self.stream.as_ref().is_some_and(|u| !u.complete()) {
            if let Some(r) = self.reply.as_mut() {
                r.close_after();
            }
        }
    }

    fn response_start(&mut self, message: &Bound<'_, PyDict>) -> PyResult<bool> {
        if self.start.is_some() || self.written {
            return Err(PyRuntimeError::new_err(
                "Unexpected ASGI message 'http.response.start' sent, after response already started.",
            ));
        }
        let status: u16 = message
            .get_item(intern!(message.py(), "status"))?
            .ok_or_else(|| PyValueError::new_err("http.response.start without 'status'"))?
            .extract()
            .map_err(|_| PyTypeError::new_err("'status' must be an int"))?;
        // A 1xx is not a final answer: the client would wait on for one.
        if !(200..=999).contains(&status) {
            return Err(PyValueError::new_err(format!(
                "invalid HTTP status {status} for http.response.start"
            )));
        }
        let headers = header_pairs(message)?
            .into_iter()
            .map(|(n, v)| (latin1(n), latin1(v)))
            .collect();
        self.start = Some((status, headers));
        Ok(false)
    }

    fn response_body(&mut self, py: Python<'_>, message: &Bound<'_, PyDict>) -> PyResult<bool> {
        if self.reply.is_none() {
            return Err(PyRuntimeError::new_err(
                "Unexpected ASGI message 'http.response.body' sent, after response already completed.",
            ));
        }
        let given = message.get_item(intern!(py, "body"))?;
        // A large bytes body is handed over as the object itself, written
        // from Python's buffer without a copy.
        let shared: Option<PyBackedBytes> = given
            .as_ref()
            .and_then(|b| b.cast_exact::<PyBytes>().ok())
            .filter(|b| b.as_bytes().len() >= crate::wsgi::SHARE_MIN)
            .map(|b| b.clone().into());
        let body = match (&shared, given) {
            (None, Some(b)) => bytes_of(&b, "body")?,
            _ => Vec::new(),
        };
        let body_len = shared.as_ref().map_or(body.len(), |s| s.len());
        let more: bool = match message.get_item(intern!(py, "more_body"))? {
            Some(m) => m.is_truthy()?,
            None => false,
        };
        if self.gone() {
            return Err(PyOSError::new_err("client disconnected"));
        }
        if !self.written {
            self.unfinished_body_closes();
        }
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        if !self.written {
            let Some((status, mut headers)) = self.start.take() else {
                return Err(PyRuntimeError::new_err(
                    "Unexpected ASGI message 'http.response.body' sent, before 'http.response.start'.",
                ));
            };
            // The whole body in the first message and no framing given:
            // say how long it is rather than chunk it. Not where a length
            // would say something else: no body by definition (1xx, 204,
            // 304), or a HEAD answered without the body it describes.
            let framed = headers.iter().any(|(n, _)| {
                n.eq_ignore_ascii_case("content-length")
                    || n.eq_ignore_ascii_case("transfer-encoding")
            });
            let bodiless = status < 200 || status == 204 || status == 304;
            let unknown = self.head && body_len == 0;
            if !more && !framed && !bodiless && !unknown {
                headers.push(("Content-Length".to_owned(), body_len.to_string()));
            }
            let line = format!("{status} {}", crate::http::reason_phrase(status));
            sink.start(&line, &headers).map_err(sink_error)?;
            self.written = true;
        }
        let sent = match shared {
            Some(b) => sink.body_shared(b, !more),
            None => sink.body(&body, !more),
        };
        drop(sink);
        match sent {
            Ok(()) if !more => {
                self.end(py, Outcome::Complete);
                Ok(false)
            }
            Ok(()) => Ok(self.reply.as_ref().is_some_and(|r| r.full())),
            Err(e) => {
                if matches!(e, SinkError::ClientGone) {
                    self.end(py, Outcome::Aborted);
                }
                Err(sink_error(e))
            }
        }
    }
}

impl Exchange {
    fn is_over(&self) -> bool {
        self.reply.is_none() || self.gone() || self.ws.as_ref().is_some_and(|w| w.ended.is_some())
    }

    fn ws_receive<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let gone = self.gone() || self.reply.is_none();
        let ws = self.ws.as_mut().expect("a websocket exchange");
        if !ws.connected {
            ws.connected = true;
            return message(py, intern!(py, "websocket.connect")).map(Some);
        }
        if ws.ended.is_none() {
            let (event, resume) = ws.init.inbox.pop();
            if resume {
                if let Some(r) = &self.reply {
                    r.resume();
                }
            }
            match event {
                Some(WsEvent::Text(t)) => {
                    let m = message(py, intern!(py, "websocket.receive"))?;
                    m.set_item(intern!(py, "text"), t)?;
                    return Ok(Some(m));
                }
                Some(WsEvent::Binary(b)) => {
                    let m = message(py, intern!(py, "websocket.receive"))?;
                    m.set_item(intern!(py, "bytes"), PyBytes::new(py, &b))?;
                    return Ok(Some(m));
                }
                Some(WsEvent::Closed { code, reason }) => ws.ended = Some((code, reason)),
                // Gone without a close frame: 1006, "abnormal closure".
                None if gone => ws.ended = Some((1006, String::new())),
                None => return Ok(None),
            }
        }
        let (code, reason) = ws.ended.clone().expect("set above");
        let m = message(py, intern!(py, "websocket.disconnect"))?;
        m.set_item(intern!(py, "code"), code)?;
        m.set_item(intern!(py, "reason"), reason)?;
        Ok(Some(m))
    }

    fn ws_send(&mut self, py: Python<'_>, kind: &str, msg: &Bound<'_, PyDict>) -> PyResult<bool> {
        let over = self.is_over();
        let ws = self.ws.as_mut().expect("a websocket exchange");
        let Some(reply) = self.reply.as_mut() else {
            return Err(PyRuntimeError::new_err(format!(
                "Unexpected ASGI message {kind:?} sent, after the WebSocket was closed."
            )));
        };
        match kind {
            "websocket.accept" => {
                if ws.accepted {
                    return Err(PyRuntimeError::new_err(
                        "Unexpected ASGI message 'websocket.accept' sent twice.",
                    ));
                }
                let sub: Option<String> = match msg.get_item(intern!(py, "subprotocol"))? {
                    Some(s) if !s.is_none() => Some(s.extract()?),
                    _ => None,
                };
                let headers = header_pairs(msg)?;
                let extensions = ws.init.deflate.map(|a| a.response_value());
                let bytes = ws::handshake_response(
                    &ws.init.accept,
                    sub.as_deref(),
                    extensions.as_deref(),
                    &headers,
                );
                reply.raw(bytes, true).map_err(sink_error)?;
                reply.set_status("101 Switching Protocols");
                ws.accepted = true;
                Ok(false)
            }
            "websocket.send" => {
                if !ws.accepted {
                    return Err(PyRuntimeError::new_err(
                        "Expected ASGI message 'websocket.accept' or 'websocket.close', \
                         but got 'websocket.send'.",
                    ));
                }
                if ws.closed {
                    return Err(PyRuntimeError::new_err(
                        "Unexpected ASGI message 'websocket.send' sent, after 'websocket.close'.",
                    ));
                }
                if over {
                    return Err(PyOSError::new_err("client disconnected"));
                }
                let mut frame = Vec::new();
                let text = msg.get_item(intern!(py, "text"))?.filter(|t| !t.is_none());
                let data = msg.get_item(intern!(py, "bytes"))?.filter(|b| !b.is_none());
                match (text, data) {
                    (Some(_), Some(_)) => {
                        return Err(PyValueError::new_err(
                            "websocket.send takes 'text' or 'bytes', not both",
                        ))
                    }
                    (Some(t), None) => {
                        let t = t
                            .cast::<PyString>()
                            .map_err(|_| PyTypeError::new_err("'text' must be a str"))?;
                        ws.frame(&mut frame, Opcode::Text, t.to_str()?.as_bytes());
                    }
                    (None, Some(b)) => {
                        ws.frame(&mut frame, Opcode::Binary, &bytes_of(&b, "bytes")?);
                    }
                    (None, None) => {
                        return Err(PyValueError::new_err(
                            "websocket.send needs 'text' or 'bytes'",
                        ))
                    }
                }
                reply.raw(frame, false).map_err(sink_error)?;
                Ok(reply.full())
            }
            "websocket.close" => {
                let code: u16 = match msg.get_item(intern!(py, "code"))? {
                    Some(c) if !c.is_none() => c.extract()?,
                    _ => ws::CLOSE_NORMAL,
                };
                let reason: String = match msg.get_item(intern!(py, "reason"))? {
                    Some(r) if !r.is_none() => r.extract()?,
                    _ => String::new(),
                };
                // RFC 6455 §7.4: codes an endpoint may send.
                if !ws::valid_close_code(code) {
                    return Err(PyValueError::new_err(format!(
                        "{code} is not a close code an endpoint may send"
                    )));
                }
                if !ws.accepted {
                    // Refused before the handshake: an HTTP 403, as
                    // uvicorn and gunicorn answer.
                    ws.closed = true;
                    let sent = send_error(&self.sink, "403 Forbidden", b"Forbidden\n");
                    self.written = true;
                    let outcome = if sent {
                        Outcome::Complete
                    } else {
                        Outcome::Aborted
                    };
                    self.end(py, outcome);
                    return Ok(false);
                }
                self.ws_close(py, code, &reason);
                Ok(false)
            }
            other => Err(PyRuntimeError::new_err(format!(
                "Unexpected ASGI message type {other:?} for a websocket scope"
            ))),
        }
    }

    /// Send a close frame (unless the connection is already closing) and
    /// end: the event loop closes the connection once it is written.
    fn ws_close(&mut self, py: Python<'_>, code: u16, reason: &str) {
        let over = self.is_over();
        if let Some(ws) = self.ws.as_mut() {
            ws.closed = true;
            // What a later receive reports: this close, not a lost link.
            ws.ended.get_or_insert_with(|| (code, reason.to_owned()));
        }
        if let Some(r) = self.reply.as_mut() {
            if !over {
                let mut frame = Vec::new();
                ws::encode(&mut frame, Opcode::Close, &ws::close_payload(code, reason));
                let _ = r.raw(frame, false);
            }
        }
        self.end(py, Outcome::Complete);
    }

    /// The app is done with a WebSocket (returned, raised or cancelled):
    /// close it with `code`, or answer 500 if it never accepted.
    fn ws_finish(&mut self, py: Python<'_>, code: u16, why: Option<&str>) {
        if self.reply.is_none() {
            return;
        }
        let accepted = self.ws.as_ref().is_some_and(|w| w.accepted);
        if accepted {
            self.ws_close(py, code, "");
        } else {
            if let Some(why) = why {
                tracing::error!("{why}");
            }
            self.give_up(py, "500 Internal Server Error", ERROR_BODY);
        }
    }
}

impl Ws {
    /// One data message as a frame: compressed when permessage-deflate was
    /// agreed and it is worth it.
    fn frame(&mut self, out: &mut Vec<u8>, opcode: Opcode, payload: &[u8]) {
        use crate::http::deflate::COMPRESS_MIN;
        match self.init.deflate {
            Some(a) if payload.len() >= COMPRESS_MIN => {
                let deflater = self.deflater.get_or_insert_with(|| a.deflater());
                let wire = deflater.compress(payload);
                if wire.len() < payload.len() {
                    ws::encode_compressed(out, opcode, &wire);
                } else {
                    // Incompressible: sent as it is (never larger than the
                    // app made it); the client's inflater never sees it,
                    // so the compressor must forget it too.
                    deflater.forget();
                    ws::encode(out, opcode, payload);
                }
            }
            _ => ws::encode(out, opcode, payload),
        }
    }
}

fn bytes_of(v: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u8>> {
    if let Ok(b) = v.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    // bytearray and memoryview are bytes-like too.
    v.extract::<Vec<u8>>()
        .ok()
        .filter(|_| !v.is_instance_of::<PyString>())
        .ok_or_else(|| PyTypeError::new_err(format!("{what} must be bytes")))
}

/// Header bytes as the sink takes them: one char per byte.
fn latin1(b: Vec<u8>) -> String {
    // ASCII (nearly every header) is already UTF-8: keep the buffer.
    match String::from_utf8(b) {
        Ok(s) if s.is_ascii() => s,
        Ok(s) => s.bytes().map(char::from).collect(),
        Err(e) => e.into_bytes().into_iter().map(char::from).collect(),
    }
}

#[pymethods]
impl Exchange {
    #[getter]
    fn scope(&self, py: Python<'_>) -> Py<PyDict> {
        self.scope.clone_ref(py)
    }

    /// The response is over, or the client left: `receive` returns
    /// `http.disconnect` from now on.
    #[getter]
    fn over(&self) -> bool {
        self.is_over()
    }

    /// A WebSocket (never timed out: it lives as long as its client).
    #[getter]
    fn websocket(&self) -> bool {
        self.ws.is_some()
    }

    /// The client is still sending the body (the app waits on the client,
    /// so `--timeout` does not run; `--body-timeout` does).
    #[getter]
    fn receiving(&self) -> bool {
        self.stream.as_ref().is_some_and(|u| !u.complete())
    }

    /// The app began its response (`--timeout` only runs until then).
    #[getter]
    fn started(&self) -> bool {
        self.written || self.start.is_some()
    }

    /// A slow client has more than the high-water mark waiting.
    #[getter]
    fn full(&self) -> bool {
        self.reply.as_ref().is_some_and(|r| r.full())
    }

    /// The next message for the app, or None when it must wait for the
    /// client (the driver awaits a note and asks again).
    fn receive<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        if self.ws.is_some() {
            return self.ws_receive(py);
        }
        let (data, more) = if let Some(up) = &self.stream {
            let taken = up.take();
            if taken.wake {
                if let Some(r) = &self.reply {
                    r.resume();
                }
            }
            if taken.data.is_empty() && !taken.last {
                if !self.is_over() {
                    return Ok(None);
                }
                // The client left mid-body, or the response is over.
                self.stream = None;
                return message(py, intern!(py, "http.disconnect")).map(Some);
            }
            if taken.last {
                self.stream = None;
            }
            (PyBytes::new(py, &taken.data), !taken.last)
        } else {
            match self.body.take() {
                // The body was all given: the next message is the
                // disconnect, once the response is over or the client left.
                None if self.is_over() => {
                    return message(py, intern!(py, "http.disconnect")).map(Some);
                }
                None => return Ok(None),
                Some(Body::Memory(v)) => (PyBytes::new(py, &v), false),
                Some(Body::File { mut file, len }) => {
                    let n = (len as usize).min(CHUNK);
                    let mut buf = vec![0u8; n];
                    file.read_exact(&mut buf)
                        .map_err(|e| PyOSError::new_err(format!("request body: {e}")))?;
                    let left = len - n as u64;
                    if left > 0 {
                        self.body = Some(Body::File { file, len: left });
                    }
                    (PyBytes::new(py, &buf), left > 0)
                }
            }
        };
        let m = PyDict::new(py);
        m.set_item(intern!(py, "type"), intern!(py, "http.request"))?;
        m.set_item(intern!(py, "body"), data)?;
        m.set_item(intern!(py, "more_body"), more)?;
        Ok(Some(m))
    }

    /// One message from the app. True when the caller should wait for the
    /// client to read before sending more.
    fn send(&mut self, py: Python<'_>, message: &Bound<'_, PyAny>) -> PyResult<bool> {
        let message = message
            .cast::<PyDict>()
            .map_err(|_| PyTypeError::new_err("an ASGI message must be a dict"))?;
        let kind = message
            .get_item(intern!(py, "type"))?
            .ok_or_else(|| PyValueError::new_err("an ASGI message needs a 'type'"))?;
        let kind = kind.cast::<PyString>()?.to_cow()?;
        if self.ws.is_some() {
            return self.ws_send(py, kind.as_ref(), message);
        }
        match kind.as_ref() {
            "http.response.start" => self.response_start(message),
            "http.response.body" => self.response_body(py, message),
            other => Err(PyRuntimeError::new_err(format!(
                "Unexpected ASGI message type {other:?} for an http scope"
            ))),
        }
    }

    /// The app returned.
    fn returned(&mut self, py: Python<'_>) {
        if self.reply.is_none() {
            return;
        }
        if self.ws.is_some() {
            let why = "ASGI callable returned without sending handshake.";
            return self.ws_finish(py, ws::CLOSE_NORMAL, Some(why));
        }
        let why = if self.written || self.start.is_some() {
            "ASGI callable returned without completing response."
        } else {
            "ASGI callable returned without starting response."
        };
        tracing::error!("{why}");
        self.give_up(py, "500 Internal Server Error", ERROR_BODY);
    }

    /// The app raised; `tb` is the formatted traceback.
    fn failed(&mut self, py: Python<'_>, tb: &str) {
        if self.gone() {
            // Most likely the OSError `send` raised because the client
            // left (ASGI 2.4): the client's doing, not an app error, so no
            // ERROR line for every client that hangs up mid-response.
            tracing::debug!(
                "Exception in ASGI application after the client left\n{}",
                tb.trim_end()
            );
        } else {
            tracing::error!("Exception in ASGI application\n{}", tb.trim_end());
        }
        if self.ws.is_some() {
            return self.ws_finish(py, ws::CLOSE_INTERNAL_ERROR, None);
        }
        self.give_up(py, "500 Internal Server Error", ERROR_BODY);
    }

    /// The task was cancelled: for running past `--timeout`, or because the
    /// worker is stopping.
    fn cancelled(&mut self, py: Python<'_>, timed_out: bool) {
        if self.ws.is_some() {
            return self.ws_finish(py, ws::CLOSE_GOING_AWAY, None);
        }
        if timed_out {
            if let Some(r) = self.reply.as_mut() {
                r.timed_out();
            }
            self.give_up(py, "504 Gateway Timeout", TIMEOUT_BODY);
        } else if self.reply.is_some() {
            self.written = true;
            self.end(py, Outcome::Aborted);
        }
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        // The driver always ends a response; this covers a task that was
        // never run (the loop closed first). The event loop must hear of it
        // to free the connection.
        if let Some(mut r) = self.reply.take() {
            Python::attach(|py| r.end(py, Outcome::Aborted));
        }
    }
}

/// What the driver takes requests from.
#[pyclass(module = "corral", name = "Bridge")]
pub struct Bridge {
    feed: Box<dyn Feed>,
    opts: AsgiOptions,
}

impl Bridge {
    pub(super) fn new(
        py: Python<'_>,
        feed: Box<dyn Feed>,
        opts: AsgiOptions,
    ) -> PyResult<Py<Bridge>> {
        Py::new(py, Bridge { feed, opts })
    }

    fn exchange(
        &self,
        py: Python<'_>,
        inc: Incoming,
        state: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Option<Exchange>> {
        let Incoming {
            id,
            mut req,
            sink,
            mut reply,
            ws,
            upload,
        } = inc;
        let Ok(secure) = scope::secure(&self.opts.serve, &req.peer, &req.head) else {
            let outcome = if send_error(&sink, "400 Bad Request", SPOOF_BODY) {
                Outcome::Complete
            } else {
                Outcome::Aborted
            };
            reply.end(py, outcome);
            return Ok(None);
        };
        let offered = ws.as_ref().map(|w| w.subprotocols.as_slice());
        let scope = scope::build(py, &req, secure, &self.opts.root_path, state, offered)?;
        let body = std::mem::replace(&mut req.body, Body::Memory(Vec::new()));
        let head_request = req.head.method == "HEAD";
        reply.give_back(req.head);
        Ok(Some(Exchange {
            id,
            scope: scope.unbind(),
            body: upload.is_none().then_some(body),
            stream: upload,
            sink,
            reply: Some(reply),
            start: None,
            written: false,
            head: head_request,
            ws: ws.map(|init| Ws {
                init,
                connected: false,
                accepted: false,
                closed: false,
                ended: None,
                deflater: None,
            }),
        }))
    }
}

#[pymethods]
impl Bridge {
    fn fileno(&self) -> i32 {
        self.feed.fd()
    }

    /// `(exchanges, notes, closed)`: new requests, `(id, "gone" or
    /// "drained")` for requests in flight, and whether no more will come.
    #[pyo3(signature = (state=None))]
    fn take<'py>(
        &self,
        py: Python<'py>,
        state: Option<Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let (incoming, notes, closed) = self.feed.take(py);
        let exchanges = PyList::empty(py);
        for inc in incoming {
            // One request that cannot be handed over (its reply, dropped,
            // frees the connection) must not take the others with it.
            let handed = self
                .exchange(py, inc, state.as_ref())
                .and_then(|x| x.map(|x| Py::new(py, x)).transpose());
            match handed {
                Ok(Some(x)) => exchanges.append(x)?,
                Ok(None) => {}
                Err(e) => tracing::error!(
                    "ASGI request not handed to the app: {}",
                    crate::wsgi::summarize_error(py, &e)
                ),
            }
        }
        let notes = PyList::new(
            py,
            notes.into_iter().map(|(id, n)| {
                (
                    id,
                    match n {
                        Note::Gone => "gone",
                        Note::Drained => "drained",
                        Note::Message => "message",
                    },
                )
            }),
        )?;
        PyTuple::new(
            py,
            [
                exchanges.into_any(),
                notes.into_any(),
                closed.into_pyobject(py)?.to_owned().into_any(),
            ],
        )
    }

    fn beat(&self, busy: bool) {
        self.feed.beat(busy);
    }

    fn log_error(&self, msg: &str) {
        tracing::error!("{}", msg.trim_end());
    }

    fn log_info(&self, msg: &str) {
        tracing::info!("{}", msg.trim_end());
    }

    fn log_debug(&self, msg: &str) {
        tracing::debug!("{}", msg.trim_end());
    }
}
