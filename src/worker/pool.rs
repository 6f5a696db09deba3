//! The hand-off between the event loop and the Python threads.
//!
//! The event loop pushes complete requests ([`Job`]) onto a [`JobQueue`];
//! each Python thread pops one, runs the app, and streams the framed response
//! back as [`Piece`]s through [`Completions`], which wakes the event loop with
//! an eventfd. Back-pressure is per in-flight request ([`Flight`]): a thread
//! producing faster than its client reads waits, with the GIL released, once
//! more than [`HIGH_WATER`] bytes are queued for that client.

use std::collections::VecDeque;
use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use nix::sys::eventfd::{EfdFlags, EventFd};

use crate::http::{ResponseEncoder, ResponseInfo};
use crate::wsgi::{self, ResponseSink, SinkError};

/// Bytes queued for one client before the producing thread waits. Large
/// enough that typical responses never wait; small enough that a slow client
/// cannot make a worker buffer without bound.
pub const HIGH_WATER: usize = 4 << 20;

/// Identifies a connection slot and its generation, so completions for a
/// connection that has since closed (and whose slot was reused) are dropped.
pub type Token = u64;

/// One request for a Python thread.
pub struct Job {
    pub token: Token,
    pub req: wsgi::Request,
    pub info: ResponseInfo,
    pub flight: Arc<Flight>,
    pub started: std::time::SystemTime,
    /// When the job entered the queue, for `--queue-timeout`.
    pub queued: std::time::Instant,
}

/// State shared between the event loop and the thread serving one request.
#[derive(Default)]
pub struct Flight {
    /// Response bytes handed to the event loop and not yet written.
    pending: AtomicUsize,
    /// The connection is gone; stop producing.
    gone: AtomicBool,
    lock: Mutex<()>,
    cv: Condvar,
}

impl Flight {
    /// The event loop wrote `n` bytes of this response.
    pub fn written(&self, n: usize) {
        let before = self.pending.fetch_sub(n, Ordering::AcqRel);
        if before > HIGH_WATER && before - n <= HIGH_WATER {
            let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.cv.notify_all();
        }
    }

    /// The connection closed: release a waiting producer.
    pub fn abandon(&self) {
        self.gone.store(true, Ordering::Release);
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.cv.notify_all();
    }

    pub fn is_gone(&self) -> bool {
        self.gone.load(Ordering::Acquire)
    }

    fn wait_for_room(&self) {
        if self.pending.load(Ordering::Acquire) <= HIGH_WATER {
            return;
        }
        wsgi::allow_threads(|| {
            let mut guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            while self.pending.load(Ordering::Acquire) > HIGH_WATER && !self.is_gone() {
                guard = self.cv.wait(guard).unwrap_or_else(|e| e.into_inner());
            }
        });
    }
}

/// Requests waiting for a Python thread.
///
/// A thread is woken only when one is asleep: a busy one finds the queue on
/// its way back, and the `futex` call a condition variable makes for every
/// notification, waiter or not, is saved. (Waking once per batch of events
/// instead, before the loop sleeps, saved more CPU but let requests wait
/// for the batch: with one sync worker, 50 connections that replaced 50
/// others saw a p99 of over a second.)
#[derive(Default)]
pub struct JobQueue {
    inner: Mutex<Queue>,
    cv: Condvar,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    closed: bool,
    /// Threads blocked in `pop`, and how many of them were notified and
    /// have not run yet.
    asleep: usize,
    woken: usize,
}

impl JobQueue {
    /// Queue a job, and wake a thread if one is asleep.
    pub fn push(&self, job: Job) {
        let mut q = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        q.jobs.push_back(job);
        // More jobs than threads already woken for them: wake one more.
        let wake = q.asleep > q.woken;
        if wake {
            q.woken += 1;
        }
        drop(q);
        if wake {
            self.cv.notify_one();
        }
    }

    /// Block until a job arrives; `None` once the queue is closed and empty.
    pub fn pop(&self) -> Option<Job> {
        let mut q = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(job) = q.jobs.pop_front() {
                return Some(job);
            }
            if q.closed {
                return None;
            }
            q.asleep += 1;
            q = self.cv.wait(q).unwrap_or_else(|e| e.into_inner());
            q.asleep -= 1;
            q.woken = q.woken.saturating_sub(1);
        }
    }

    /// Let every thread finish its queue and return.
    pub fn close(&self) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        self.cv.notify_all();
    }
}

/// A piece of a response on its way to the socket.
pub enum Piece {
    Bytes(Vec<u8>),
    File {
        file: File,
        offset: u64,
        len: u64,
    },
    /// The response is complete (or abandoned): `keep_alive` says whether
    /// the connection may serve another request.
    End {
        keep_alive: bool,
    },
}

/// Pieces travelling from Python threads to the event loop.
pub struct Completions {
    queue: Mutex<Vec<(Token, Piece)>>,
    wake: EventFd,
}

impl Completions {
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            queue: Mutex::new(Vec::new()),
            wake: EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)?,
        })
    }

    /// Queue pieces and wake the event loop if it may be asleep.
    pub fn push(&self, token: Token, pieces: impl IntoIterator<Item = Piece>) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let was_empty = q.is_empty();
        q.extend(pieces.into_iter().map(|p| (token, p)));
        drop(q);
        // Only the push that makes the queue non-empty needs to wake the
        // loop: it drains everything queued so far in one go.
        if was_empty {
            let _ = self.wake.write(1);
        }
    }

    /// Take everything queued (called by the event loop).
    pub fn drain(&self, into: &mut Vec<(Token, Piece)>) {
        let _ = self.wake.read();
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::swap(&mut *q, into);
    }

    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.wake.as_fd()
    }
}

/// The [`ResponseSink`] a Python thread writes a response into: frames it
/// with the HTTP encoder and ships the bytes to the event loop.
pub struct Sink {
    token: Token,
    info: ResponseInfo,
    flight: Arc<Flight>,
    completions: Arc<Completions>,
    encoder: Option<ResponseEncoder>,
    buf: Vec<u8>,
    finished: bool,
    /// What the access log needs.
    pub status: String,
    pub headers: Vec<(String, String)>,
    pub body_bytes: u64,
    keep_headers: bool,
}

impl Sink {
    pub fn new(
        token: Token,
        info: ResponseInfo,
        flight: Arc<Flight>,
        completions: Arc<Completions>,
        keep_headers: bool,
    ) -> Self {
        Self {
            token,
            info,
            flight,
            completions,
            encoder: None,
            buf: Vec::new(),
            finished: false,
            status: String::new(),
            headers: Vec::new(),
            body_bytes: 0,
            keep_headers,
        }
    }

    fn ship(&mut self, extra: Option<Piece>) -> Result<(), SinkError> {
        if self.flight.is_gone() {
            return Err(SinkError::ClientGone);
        }
        let mut pieces: Vec<Piece> = Vec::with_capacity(2);
        let mut n = 0;
        if !self.buf.is_empty() {
            n = self.buf.len();
            pieces.push(Piece::Bytes(std::mem::take(&mut self.buf)));
        }
        pieces.extend(extra);
        if pieces.is_empty() {
            return Ok(());
        }
        self.flight.pending.fetch_add(n, Ordering::AcqRel);
        self.completions.push(self.token, pieces);
        self.flight.wait_for_room();
        if self.flight.is_gone() {
            Err(SinkError::ClientGone)
        } else {
            Ok(())
        }
    }

    /// Close the response after the app returned: ship what is left with
    /// the End marker in one hand-off. No back-pressure wait here: the
    /// thread moves on and the bytes are bounded by the last chunk.
    pub fn end(&mut self, outcome: wsgi::Outcome) {
        let keep_alive = match (&mut self.encoder, outcome) {
            (Some(enc), wsgi::Outcome::Complete) => {
                if !self.finished {
                    enc.finish(&mut self.buf);
                }
                enc.keep_alive()
            }
            _ => false,
        };
        let mut pieces = Vec::with_capacity(2);
        if !self.buf.is_empty() && !self.flight.is_gone() {
            self.flight
                .pending
                .fetch_add(self.buf.len(), Ordering::AcqRel);
            pieces.push(Piece::Bytes(std::mem::take(&mut self.buf)));
        }
        // Always sent, even for a vanished client: the event loop frees the
        // request's slot on End.
        pieces.push(Piece::End { keep_alive });
        self.completions.push(self.token, pieces);
    }
}

impl ResponseSink for Sink {
    fn start(&mut self, status: &str, headers: &[(String, String)]) -> Result<(), SinkError> {
        let enc = ResponseEncoder::start(&mut self.buf, self.info, status, headers)
            .map_err(|e| SinkError::BadResponse(e.to_string()))?;
        self.encoder = Some(enc);
        self.status.clear();
        self.status.push_str(status);
        if self.keep_headers {
            self.headers = headers.to_vec();
        }
        Ok(())
    }

    fn body(&mut self, data: &[u8], last: bool) -> Result<(), SinkError> {
        let enc = self
            .encoder
            .as_mut()
            .ok_or_else(|| SinkError::BadResponse("body before start_response".into()))?;
        enc.body(&mut self.buf, data);
        self.body_bytes = enc.body_bytes();
        if last {
            enc.finish(&mut self.buf);
            self.finished = true;
            // Held back: `end` ships it together with the End marker, one
            // wake-up for the whole response.
            return Ok(());
        }
        self.ship(None)
    }

    fn file(&mut self, file: File, offset: u64, len: Option<u64>) -> Result<(), SinkError> {
        let size = file
            .metadata()
            .map_err(|e| SinkError::BadResponse(format!("file_wrapper: {e}")))?
            .len();
        let available = size.saturating_sub(offset);
        let want = len.map_or(available, |l| l.min(available));
        let enc = self
            .encoder
            .as_mut()
            .ok_or_else(|| SinkError::BadResponse("file before start_response".into()))?;
        let send = enc.begin_raw(&mut self.buf, want);
        self.body_bytes = enc.body_bytes();
        if send > 0 {
            self.ship(Some(Piece::File {
                file,
                offset,
                len: send,
            }))?;
        }
        let enc = self.encoder.as_mut().expect("set above");
        enc.end_raw(&mut self.buf);
        Ok(())
    }
}
