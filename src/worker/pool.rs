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
use std::time::{Duration, Instant};

use nix::sys::eventfd::{EfdFlags, EventFd};
use pyo3::pybacked::PyBackedBytes;

use crate::http::{RequestHead, ResponseEncoder, ResponseInfo};
use crate::wsgi::{self, ResponseSink, SinkError};

/// How long a thread that took a job is trusted to come back for the next
/// one before the queue wakes another. Well above a typical request's CPU
/// time (tens of microseconds), so a thread getting through a queue of fast
/// requests keeps it alone; short against a request that waits on I/O, so
/// a blocked thread delays the next job by at most this much.
pub const PROGRESS: Duration = Duration::from_millis(1);

/// Bytes queued for one client before the producing thread waits. Large
/// enough that typical responses never wait; small enough that a slow client
/// cannot make a worker buffer without bound.
pub const HIGH_WATER: usize = 4 << 20;

/// Identifies a connection slot and its generation, so completions for a
/// connection that has since closed (and whose slot was reused) are dropped.
pub type Token = u64;

/// One request for a Python thread.
pub struct Job {
    /// The request's number in this worker (an ASGI task's name for it:
    /// a connection's token serves many requests, and a task may outlive
    /// its response).
    pub id: u64,
    pub token: Token,
    pub req: wsgi::Request,
    pub info: ResponseInfo,
    pub flight: Arc<Flight>,
    pub started: std::time::SystemTime,
    /// When the job entered the queue, for `--queue-timeout`.
    pub queued: std::time::Instant,
    /// A WebSocket upgrade (asgi workers only).
    pub ws: Option<crate::asgi::WsInit>,
    /// A body streamed to the app as it arrives (asgi workers only).
    pub upload: Option<Arc<crate::asgi::Upload>>,
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
    /// An asynchronous (ASGI) producer never blocks on the condition
    /// variable: it is told through the async side's eventfd instead, with
    /// this request's number.
    notes: Option<(Arc<AsyncSide>, u64)>,
}

impl Flight {
    /// A flight whose producer is an asyncio task, told of room and of the
    /// client leaving through `side`.
    pub fn notifying(side: Arc<AsyncSide>, id: u64) -> Self {
        Self {
            notes: Some((side, id)),
            ..Self::default()
        }
    }

    /// The event loop wrote `n` bytes of this response.
    pub fn written(&self, n: usize) {
        let before = self.pending.fetch_sub(n, Ordering::AcqRel);
        if before > HIGH_WATER && before - n <= HIGH_WATER {
            if let Some((side, id)) = &self.notes {
                side.note(*id, Note::Drained);
            }
            let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.cv.notify_all();
        }
    }

    /// The connection closed: release a waiting producer.
    pub fn abandon(&self) {
        if self.gone.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some((side, id)) = &self.notes {
            side.note(*id, Note::Gone);
        }
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.cv.notify_all();
    }

    /// More than [`HIGH_WATER`] bytes wait for the client: an asynchronous
    /// producer awaits [`Note::Drained`] before it sends more.
    pub fn full(&self) -> bool {
        self.pending.load(Ordering::Acquire) > HIGH_WATER
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
/// Python threads share one GIL, so waking a second thread while the first
/// is getting through the queue buys nothing but a fight for the GIL: every
/// job would then change hands between threads, each hand-over a `futex`
/// wake and a context switch (with 4 threads, one worker served a hello
/// app at 54k req/s this way; with the rule below, at 73-96k). A sleeping
/// thread is woken only when no thread is making progress: none on its
/// way to the queue, and none that started a job within [`PROGRESS`].
/// Past that, the running jobs may be blocked (a database call, a sleep)
/// with the GIL free, and the event loop wakes another thread through
/// [`JobQueue::poke`] when [`JobQueue::push`] asked it to look again.
///
/// A thread is never woken for nothing: a busy one finds the queue on its
/// way back, and the `futex` call a condition variable makes for every
/// notification, waiter or not, is saved. (Waking once per batch of events
/// instead, before the loop sleeps, saved more CPU but let requests wait
/// for the batch: with one sync worker, 50 connections that replaced 50
/// others saw a p99 of over a second.)
pub struct JobQueue {
    inner: Mutex<Queue>,
    cv: Condvar,
    /// The consumer is an asyncio loop (ASGI) that polls this eventfd
    /// rather than sleeping in `pop`.
    side: Option<Arc<AsyncSide>>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    closed: bool,
    /// When each thread took the job it is running (`None`: between jobs).
    started: Vec<Option<Instant>>,
    /// Threads blocked in `pop`, and how many of them were notified and
    /// have not run yet.
    asleep: usize,
    woken: usize,
    /// A thread was woken to take the GIL once, with no job for it.
    nudged: bool,
}

/// What the queue should do for the jobs it holds (see [`JobQueue`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    /// Wake a sleeping thread now.
    Now,
    /// A thread is making progress: look again then.
    Later(Instant),
    /// No thread sleeps that is not already woken.
    No,
}

impl Queue {
    fn should_wake(&self, now: Instant) -> Wake {
        if self.asleep <= self.woken {
            return Wake::No;
        }
        if self.woken > 0 {
            // That thread may block in its turn: look again.
            return Wake::Later(now + PROGRESS);
        }
        match self.started.iter().flatten().max() {
            Some(&t) if now.duration_since(t) < PROGRESS => Wake::Later(t + PROGRESS),
            _ => Wake::Now,
        }
    }
}

/// What a Python thread gets from [`JobQueue::pop`]. Returned once per
/// request and taken apart at once: boxing the job would cost an
/// allocation per request to save a move.
#[allow(clippy::large_enum_variant)]
pub enum Next {
    Job(Job),
    /// Nothing to run: go round once (see [`JobQueue::nudge`]).
    Nudged,
    Closed,
}

impl JobQueue {
    /// A queue for `threads` Python threads (numbered from 0).
    pub fn new(threads: usize) -> Self {
        Self {
            inner: Mutex::new(Queue {
                started: vec![None; threads],
                ..Queue::default()
            }),
            cv: Condvar::new(),
            side: None,
        }
    }

    /// A queue read by an asyncio loop through `side`'s eventfd.
    pub fn notifying(side: Arc<AsyncSide>) -> Self {
        Self {
            side: Some(side),
            ..Self::new(0)
        }
    }

    /// Queue a job, and wake a thread if none is making progress. Returns
    /// when the event loop should [`poke`](Self::poke) the queue, if it
    /// did not wake one: the running threads may stall meanwhile.
    pub fn push(&self, job: Job) -> Option<Instant> {
        let mut q = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(side) = &self.side {
            // The consumer takes everything queued each time it wakes:
            // only the job that makes the queue non-empty wakes it.
            let was_empty = q.jobs.is_empty();
            q.jobs.push_back(job);
            drop(q);
            if was_empty {
                side.wake();
            }
            return None;
        }
        // The job was stamped as it was queued: no second clock read.
        let now = job.queued;
        q.jobs.push_back(job);
        self.wake(q, now)
    }

    /// Wake a thread if jobs wait and no thread has taken one within
    /// [`PROGRESS`]. Returns when to look again, if jobs still wait on
    /// the running threads.
    pub fn poke(&self) -> Option<Instant> {
        if self.side.is_some() {
            return None;
        }
        let q = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if q.jobs.is_empty() {
            return None;
        }
        self.wake(q, Instant::now())
    }

    fn wake(&self, mut q: std::sync::MutexGuard<'_, Queue>, now: Instant) -> Option<Instant> {
        match q.should_wake(now) {
            Wake::No => None,
            Wake::Later(t) => Some(t),
            Wake::Now => {
                q.woken += 1;
                // The woken thread may block in its turn, with another
                // asleep to take over.
                let another = q.asleep > q.woken;
                drop(q);
                self.cv.notify_one();
                another.then_some(now + PROGRESS)
            }
        }
    }

    /// Block until a job arrives, the queue is closed and empty, or the
    /// thread is nudged. `thread` is the caller's number.
    pub fn pop(&self, thread: usize) -> Next {
        let mut q = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        q.started[thread] = None;
        loop {
            if let Some(job) = q.jobs.pop_front() {
                q.started[thread] = Some(Instant::now());
                return Next::Job(job);
            }
            if q.closed {
                return Next::Closed;
            }
            if std::mem::take(&mut q.nudged) {
                return Next::Nudged;
            }
            q.asleep += 1;
            q = self.cv.wait(q).unwrap_or_else(|e| e.into_inner());
            q.asleep -= 1;
            q.woken = q.woken.saturating_sub(1);
        }
    }

    /// Wake one idle thread without a job: it takes the GIL on its way
    /// back, and pyo3 then releases the app objects the event loop let go
    /// of (a large response on a worker that has gone quiet would
    /// otherwise stay in memory until its next request).
    pub fn nudge(&self) {
        let mut q = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if q.asleep > q.woken && !q.nudged {
            q.nudged = true;
            q.woken += 1;
            drop(q);
            self.cv.notify_one();
        }
    }

    /// Let every thread finish its queue and return.
    pub fn close(&self) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        self.cv.notify_all();
        if let Some(side) = &self.side {
            side.wake();
        }
    }

    /// Everything queued, without waiting, and whether the queue is closed
    /// (the asynchronous consumer's `pop`).
    pub fn take_all(&self) -> (Vec<Job>, bool) {
        let mut q = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (q.jobs.drain(..).collect(), q.closed)
    }
}

pub use crate::asgi::Note;

/// The event loop's side of an asyncio consumer: one eventfd the asyncio
/// loop watches (`loop.add_reader`), rung for new jobs and for notes about
/// requests in flight. Ringing it is one `write`, and only when the
/// consumer may be asleep.
pub struct AsyncSide {
    wake: EventFd,
    notes: Mutex<Vec<(u64, Note)>>,
}

impl AsyncSide {
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            wake: EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)?,
            notes: Mutex::new(Vec::new()),
        })
    }

    fn wake(&self) {
        let _ = self.wake.write(1);
    }

    /// Tell the asyncio loop about request `id`.
    pub fn note(&self, id: u64, note: Note) {
        let mut n = self.notes.lock().unwrap_or_else(|e| e.into_inner());
        let was_empty = n.is_empty();
        n.push((id, note));
        drop(n);
        if was_empty {
            self.wake();
        }
    }

    /// Reset the eventfd, then take the notes: anything queued after the
    /// reset rings it again, so nothing is missed.
    pub fn take_notes(&self) -> Vec<(u64, Note)> {
        let _ = self.wake.read();
        std::mem::take(&mut *self.notes.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.wake.as_raw_fd()
    }
}

/// Response bytes on their way to the socket.
pub enum Chunk {
    /// Made here: the head, chunk framing, and bodies small enough that
    /// copying them costs less than keeping their Python object alive.
    Owned(Vec<u8>),
    /// The first `len` bytes of a bytes object the app returned, written
    /// from Python's own buffer: a large body is neither copied nor
    /// allocated again. Dropped by the event loop without the GIL, so the
    /// reference goes back through pyo3's deferred-decref pool, which the
    /// next Python thread to take the GIL empties.
    Shared { bytes: PyBackedBytes, len: usize },
}

/// Set when a [`Chunk::Shared`] is dropped: its reference then waits in
/// pyo3's pool until a Python thread attaches (see [`JobQueue::nudge`]).
static DEFERRED: AtomicBool = AtomicBool::new(false);

impl Drop for Chunk {
    fn drop(&mut self) {
        if matches!(self, Chunk::Shared { .. }) {
            DEFERRED.store(true, Ordering::Relaxed);
        }
    }
}

/// Whether app objects were let go since the last call (and forget it).
pub fn take_deferred() -> bool {
    DEFERRED.swap(false, Ordering::Relaxed)
}

impl std::ops::Deref for Chunk {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Chunk::Owned(v) => v,
            Chunk::Shared { bytes, len } => &bytes[..*len],
        }
    }
}

impl From<Vec<u8>> for Chunk {
    fn from(v: Vec<u8>) -> Self {
        Chunk::Owned(v)
    }
}

/// A piece of a response on its way to the socket.
pub enum Piece {
    Bytes(Chunk),
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
    /// The WebSocket handshake was queued: from now on the event loop
    /// reads frames from the connection.
    Upgrade,
    /// The app caught up with a WebSocket inbox: read the connection again.
    Resume,
}

/// Pieces travelling from Python threads to the event loop.
pub struct Completions {
    queue: Mutex<Handoff>,
    wake: EventFd,
}

#[derive(Default)]
struct Handoff {
    pieces: Vec<(Token, Piece)>,
    /// Heads of finished requests, for the event loop to parse the next
    /// ones into: its allocations then stay on its own thread, where
    /// strings made by one thread and freed by another cost the C
    /// allocator its slow paths on both.
    heads: Vec<RequestHead>,
}

/// The most finished heads kept for reuse (each at most a few KiB, see
/// [`RequestHead::recyclable`]).
const SPARE_HEADS: usize = 32;

impl Completions {
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            queue: Mutex::new(Handoff::default()),
            wake: EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)?,
        })
    }

    /// Queue pieces and wake the event loop if it may be asleep.
    pub fn push(&self, token: Token, pieces: impl IntoIterator<Item = Piece>) {
        self.push_with(token, pieces, None);
    }

    /// [`Completions::push`], giving back the request's head too.
    fn push_with(
        &self,
        token: Token,
        pieces: impl IntoIterator<Item = Piece>,
        head: Option<RequestHead>,
    ) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let was_empty = q.pieces.is_empty();
        q.pieces.extend(pieces.into_iter().map(|p| (token, p)));
        let spare = head.filter(|_| q.heads.len() < SPARE_HEADS);
        q.heads.extend(spare);
        drop(q);
        // Only the push that makes the queue non-empty needs to wake the
        // loop: it drains everything queued so far in one go.
        if was_empty {
            let _ = self.wake.write(1);
        }
    }

    /// Take everything queued (called by the event loop), and the heads
    /// given back while `heads` has room for them.
    pub fn drain(&self, into: &mut Vec<(Token, Piece)>, heads: &mut Vec<RequestHead>) {
        let _ = self.wake.read();
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::swap(&mut q.pieces, into);
        let room = SPARE_HEADS.saturating_sub(heads.len()).min(q.heads.len());
        let from = q.heads.len() - room;
        heads.extend(q.heads.drain(from..));
    }

    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.wake.as_fd()
    }
}

/// The bytes a piece adds to a request's back-pressure account (a file's
/// are not counted: they go out by sendfile, from the kernel).
fn piece_bytes(p: &Piece) -> usize {
    match p {
        Piece::Bytes(c) => c.len(),
        _ => 0,
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
    /// Framing and small bodies, copied together.
    buf: Vec<u8>,
    /// Bytes pieces waiting for the next hand-off, in order, before `buf`.
    staged: Vec<Piece>,
    finished: bool,
    /// Wait for room when the client is slow (a Python thread); an asyncio
    /// task awaits [`Note::Drained`] instead.
    blocking: bool,
    /// The status code, for metrics and statsd (0 until the response
    /// starts).
    code: u16,
    /// What the access log needs (kept only when it is on: a copy of the
    /// status line is an allocation per request).
    pub status: String,
    pub headers: Vec<(String, String)>,
    pub body_bytes: u64,
    keep_headers: bool,
    /// The request's head, handed back with the End marker for reuse.
    head_back: Option<RequestHead>,
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
            staged: Vec::new(),
            finished: false,
            blocking: true,
            code: 0,
            status: String::new(),
            headers: Vec::new(),
            body_bytes: 0,
            keep_headers,
            head_back: None,
        }
    }

    /// Give the request's head back with the end of the response, for the
    /// event loop to parse another request into (when it is not too big).
    pub fn give_back(&mut self, head: RequestHead) {
        if head.recyclable() {
            self.head_back = Some(head);
        }
    }

    /// Record the response's status (the app's, or the one corral answers
    /// for it).
    pub fn set_status(&mut self, status: &str) {
        self.code = status.get(..3).and_then(|s| s.parse().ok()).unwrap_or(0);
        if self.keep_headers {
            self.status.clear();
            self.status.push_str(status);
        }
    }

    /// The status code sent, or 500 when no response started.
    pub fn code(&self) -> u16 {
        if self.code == 0 {
            500
        } else {
            self.code
        }
    }

    /// Bytes that are not an HTTP response (the WebSocket handshake, then
    /// frames); `upgrade` marks the handshake.
    pub fn raw(&mut self, bytes: Vec<u8>, upgrade: bool) -> Result<(), SinkError> {
        self.buf.extend_from_slice(&bytes);
        self.ship(upgrade.then_some(Piece::Upgrade))
    }

    /// The response is to close the connection (set before it starts).
    pub fn close_after(&mut self) {
        self.info.keep_alive = false;
    }

    /// Wake the event loop: to read a paused WebSocket connection or
    /// streamed body again, or to send a body's `100 Continue`.
    pub fn resume(&self) {
        self.completions.push(self.token, [Piece::Resume]);
    }

    /// For an asyncio producer: never wait for the client (see
    /// [`Flight::full`]).
    pub fn non_blocking(mut self) -> Self {
        self.blocking = false;
        self
    }

    pub fn flight(&self) -> &Flight {
        &self.flight
    }

    /// Move `buf` behind the staged pieces; the bytes now staged.
    fn stage(&mut self) -> usize {
        if !self.buf.is_empty() {
            let buf = std::mem::take(&mut self.buf);
            self.staged.push(Piece::Bytes(Chunk::Owned(buf)));
        }
        self.staged.iter().map(piece_bytes).sum()
    }

    fn ship(&mut self, extra: Option<Piece>) -> Result<(), SinkError> {
        if self.flight.is_gone() {
            self.staged.clear();
            return Err(SinkError::ClientGone);
        }
        let n = self.stage();
        let mut pieces = std::mem::take(&mut self.staged);
        pieces.extend(extra);
        if pieces.is_empty() {
            return Ok(());
        }
        self.flight.pending.fetch_add(n, Ordering::AcqRel);
        self.completions.push(self.token, pieces);
        if self.blocking {
            self.flight.wait_for_room();
        }
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
        // The last bytes go without a detour through `staged`: most
        // responses are all in `buf`, and a list to carry one piece is an
        // allocation per request.
        let mut staged = std::mem::take(&mut self.staged);
        let mut last = std::mem::take(&mut self.buf);
        if self.flight.is_gone() {
            staged.clear();
            last.clear();
        }
        let n = last.len() + staged.iter().map(piece_bytes).sum::<usize>();
        if n > 0 {
            self.flight.pending.fetch_add(n, Ordering::AcqRel);
        }
        let last = (!last.is_empty()).then(|| Piece::Bytes(Chunk::Owned(last)));
        // Always sent, even for a vanished client: the event loop frees the
        // request's slot on End.
        let end = Piece::End { keep_alive };
        let pieces = staged.into_iter().chain(last).chain([end]);
        self.completions
            .push_with(self.token, pieces, self.head_back.take());
    }

    /// After body bytes were framed: ship them, unless they are the last,
    /// which `end` ships with the End marker, one wake-up for the whole
    /// response.
    fn after_body(&mut self, last: bool) -> Result<(), SinkError> {
        if last {
            if let Some(enc) = self.encoder.as_mut() {
                enc.finish(&mut self.buf);
            }
            self.finished = true;
            return Ok(());
        }
        self.ship(None)
    }
}

impl ResponseSink for Sink {
    fn start(&mut self, status: &str, headers: &[(String, String)]) -> Result<(), SinkError> {
        let enc = ResponseEncoder::start(&mut self.buf, self.info, status, headers)
            .map_err(|e| SinkError::BadResponse(e.to_string()))?;
        self.encoder = Some(enc);
        self.set_status(status);
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
        self.after_body(last)
    }

    fn body_shared(&mut self, data: PyBackedBytes, last: bool) -> Result<(), SinkError> {
        let enc = self
            .encoder
            .as_mut()
            .ok_or_else(|| SinkError::BadResponse("body before start_response".into()))?;
        let n = enc.begin_raw(&mut self.buf, data.len() as u64) as usize;
        if n > 0 {
            if !self.buf.is_empty() {
                let framing = std::mem::take(&mut self.buf);
                self.staged.push(Piece::Bytes(Chunk::Owned(framing)));
            }
            self.staged.push(Piece::Bytes(Chunk::Shared {
                bytes: data,
                len: n,
            }));
        }
        enc.end_raw(&mut self.buf);
        self.body_bytes = enc.body_bytes();
        self.after_body(last)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(asleep: usize, woken: usize, started: &[Option<Instant>]) -> Queue {
        Queue {
            asleep,
            woken,
            started: started.to_vec(),
            ..Queue::default()
        }
    }

    #[test]
    fn a_sleeper_is_woken_when_no_thread_runs() {
        let now = Instant::now();
        assert_eq!(queue(2, 0, &[None, None]).should_wake(now), Wake::Now);
    }

    #[test]
    fn no_sleeper_is_woken_while_a_thread_gets_through_the_queue() {
        let now = Instant::now();
        let t = now - PROGRESS / 4;
        let q = queue(3, 0, &[Some(now - PROGRESS * 9), Some(t), None, None]);
        // The latest start counts: one thread still coming back is enough.
        assert_eq!(q.should_wake(now), Wake::Later(t + PROGRESS));
    }

    #[test]
    fn a_sleeper_is_woken_when_every_running_thread_stalls() {
        let now = Instant::now();
        let q = queue(
            2,
            0,
            &[Some(now - PROGRESS), Some(now - PROGRESS * 3), None],
        );
        assert_eq!(q.should_wake(now), Wake::Now);
    }

    #[test]
    fn a_thread_on_its_way_is_checked_on_later_and_none_woken_with_none_asleep() {
        let now = Instant::now();
        assert_eq!(
            queue(2, 1, &[None, None]).should_wake(now),
            Wake::Later(now + PROGRESS)
        );
        assert_eq!(queue(1, 1, &[None, None]).should_wake(now), Wake::No);
        assert_eq!(
            queue(0, 0, &[Some(now - PROGRESS * 9)]).should_wake(now),
            Wake::No
        );
    }
}
