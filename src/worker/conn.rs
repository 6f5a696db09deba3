//! One client connection inside the event loop: read, parse, receive the
//! body, wait for Python, write, and decide whether to keep the connection.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IoSlice, Read};
use std::sync::Arc;
use std::time::Instant;

use crate::http::RequestHead;
use crate::sys::Stream;
use crate::wsgi::SockAddr;

use super::body::BodyReader;
use super::pool::{Chunk, Flight};

/// Bytes one connection may read in one turn of the event loop, so a fast
/// uploader does not starve the others.
const FAIR_SHARE: usize = 256 * 1024;

/// Where a connection is in its request cycle.
pub enum State {
    /// Waiting for (more of) a request head.
    Head,
    /// Receiving the body of `head`.
    Body(Box<(RequestHead, BodyReader)>),
    /// The request is with a Python thread.
    Busy(Arc<Flight>),
    /// Write what is queued, then close.
    Closing,
    /// Output done and write side shut: drain the client's leftovers until
    /// EOF so the kernel does not answer them with a reset that could
    /// destroy our last response in flight.
    Lingering,
}

/// Output waiting for the socket.
pub enum Out {
    Bytes {
        buf: Chunk,
        pos: usize,
        /// Response bytes from the app, credited to the request's
        /// back-pressure account when written (not error responses or
        /// 100 Continue, which corral makes itself).
        from_app: bool,
    },
    File {
        file: File,
        offset: u64,
        left: u64,
    },
}

pub struct Conn {
    pub stream: Stream,
    pub peer: SockAddr,
    pub local: SockAddr,
    /// Read buffer: its length is the bytes received, its capacity the
    /// buffer's size. Reads land in the spare capacity, never zeroed: a
    /// small request touches one page of a fresh 16 KiB buffer, not four
    /// (`serving::kept_alive_connections_cost_a_worker_little_memory`).
    pub rbuf: Vec<u8>,
    /// Bytes of `rbuf` already consumed.
    pub rpos: usize,
    pub state: State,
    pub out: VecDeque<Out>,
    /// When the connection is closed if nothing happens.
    pub deadline: Option<Instant>,
    pub eof: bool,
    /// The socket may hold unread bytes: set on a readable edge (the
    /// registration is edge-triggered, so the kernel says so only once),
    /// cleared when a read finds it empty.
    pub readable: bool,
    /// The kernel reported the peer's half-close (RDHUP/HUP): a short read
    /// is then not the end, the EOF is still to be read.
    pub hup: bool,
    /// When the current request reached a Python thread.
    pub dispatched_at: Option<Instant>,
    /// Responses completed on this connection.
    pub served: u64,
    /// Accepted a moment ago and its first request not yet dispatched: it
    /// counts against the worker's free threads (see `Worker::claims`).
    pub claim: bool,
    /// The request with Python came on this connection after an earlier
    /// response (keep-alive or pipelining).
    pub reused: bool,
    /// `--proxy-protocol` is on and the connection's first bytes have not
    /// been looked at yet.
    pub proxy_pending: bool,
    /// What the connection's PROXY header said: it holds for every request
    /// on the connection.
    pub proxy: Option<crate::http::ProxyInfo>,
    /// The method of the request with Python, as the metrics count it.
    pub method: crate::metrics::Method,
    /// A WebSocket session on this connection (asgi workers).
    pub ws: Option<Box<WsLink>>,
    /// The body of the request with the app, still arriving (asgi
    /// workers stream it to the app).
    pub upload: Option<Box<Uploading>>,
    /// Response bytes for the request with Python have been queued (so a
    /// timeout can no longer answer it with a 504).
    pub responded: bool,
    /// The request being answered said it was the client's last
    /// (`Connection: close`, or HTTP/1.0 without keep-alive).
    pub client_closes: bool,
    /// Bytes of the current answer handed to the loop so far.
    pub response_bytes: usize,
    /// Its body waits in the kernel until a place to read it opens (see
    /// `Worker::admit_bodies`).
    pub parked: bool,
    /// Until when its body holds a place among the bodies being read (see
    /// `Worker::admit_bodies`); after that it reads on without one.
    pub place_until: Option<Instant>,
}

/// The event loop's side of a WebSocket session.
pub struct WsLink {
    /// The request's number, for notes to its task.
    pub id: u64,
    pub decoder: crate::http::websocket::Decoder,
    pub inbox: std::sync::Arc<crate::asgi::Inbox>,
    /// The handshake went out: the connection carries frames now.
    pub open: bool,
    /// A close frame went out (ours, or the echo of the client's).
    pub closed: bool,
}

/// The event loop's side of a body streamed to an ASGI app.
pub struct Uploading {
    /// The request's number, for notes to its task.
    pub id: u64,
    pub decoder: super::body::BodyDecoder,
    pub shared: std::sync::Arc<crate::asgi::Upload>,
}

pub enum Progress {
    Open,
    Closed,
}

impl Conn {
    pub fn new(stream: Stream, peer: SockAddr, local: SockAddr) -> Self {
        Self {
            stream,
            peer,
            local,
            rbuf: Vec::new(),
            rpos: 0,
            state: State::Head,
            out: VecDeque::new(),
            deadline: None,
            eof: false,
            readable: true,
            hup: false,
            dispatched_at: None,
            served: 0,
            claim: false,
            reused: false,
            proxy_pending: false,
            proxy: None,
            method: crate::metrics::Method::default(),
            ws: None,
            upload: None,
            responded: false,
            client_closes: false,
            response_bytes: 0,
            parked: false,
            place_until: None,
        }
    }

    /// The client's address: the one a PROXY header gave, else the peer's.
    pub fn client(&self) -> Option<std::net::SocketAddr> {
        self.proxy
            .as_ref()
            .and_then(|p| p.client)
            .or_else(|| self.peer.tcp())
    }

    /// The client started a request it has not finished sending: part of
    /// a head, or a body still arriving. (A connection with nothing sent
    /// is idle, not slow.)
    pub fn owes_request(&self) -> bool {
        match self.state {
            State::Body(_) => true,
            State::Head => !self.pending_input().is_empty(),
            // A body streamed to its app, still to come.
            State::Busy(_) => self.upload.is_some(),
            _ => false,
        }
    }

    /// Unparsed bytes already received.
    pub fn pending_input(&self) -> &[u8] {
        &self.rbuf[self.rpos..]
    }

    /// Mark `n` received bytes as parsed.
    pub fn consume(&mut self, n: usize) {
        self.rpos += n;
        if self.rpos == self.rbuf.len() {
            self.rpos = 0;
            self.rbuf.clear();
        }
    }

    /// Move unparsed bytes to the front, so a long keep-alive connection
    /// reuses one buffer instead of growing it.
    pub fn compact(&mut self) {
        if self.rpos > 0 {
            self.rbuf.drain(..self.rpos);
            self.rpos = 0;
        }
    }

    /// Read a body of known length that stays in memory straight into its
    /// buffer, when nothing else is buffered ahead of it: one copy fewer
    /// than through `rbuf`. `None` when `fill` must do the reading. Same
    /// flags and fairness cap as `fill`.
    pub fn fill_body(&mut self) -> Option<io::Result<usize>> {
        if self.rpos != self.rbuf.len() {
            return None;
        }
        let State::Body(b) = &mut self.state else {
            return None;
        };
        let reader = &mut b.1;
        reader.direct()?;
        let mut total = 0;
        loop {
            let Some((mem, remaining)) = reader.direct() else {
                return Some(Ok(total));
            };
            let want = remaining.min(FAIR_SHARE - total);
            if want == 0 {
                return Some(Ok(total));
            }
            match self.stream.read_append(mem, want) {
                Ok(0) => {
                    self.eof = true;
                    self.readable = false;
                    return Some(Ok(total));
                }
                Ok(n) => {
                    reader.took(n);
                    total += n;
                    if n < want && !self.hup {
                        self.readable = false;
                        return Some(Ok(total));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    return Some(Ok(total));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// Read whatever the socket has (up to a fairness cap). Sets `eof`, and
    /// clears `readable` once the socket is drained; it stays set when the
    /// cap stopped the read, and the caller must come back.
    pub fn fill(&mut self) -> io::Result<usize> {
        let mut total = 0;
        loop {
            if self.rbuf.len() == self.rbuf.capacity() {
                self.compact();
                if self.rbuf.len() == self.rbuf.capacity() && total > 0 {
                    // Full of bytes nobody has parsed yet: let the caller
                    // parse them first. A head needs the buffer to grow; a
                    // body behind the head does not (it is read into its
                    // own buffer, or left in the kernel), so `rbuf` stays
                    // the size of a head.
                    return Ok(total);
                }
                if self.rbuf.len() == self.rbuf.capacity() {
                    // Full of unparsed bytes: grow. The parser's limits bound
                    // how far a head can make this go; bodies are consumed
                    // as they arrive.
                    let grown = (self.rbuf.capacity() * 2).max(16 * 1024);
                    self.rbuf.reserve_exact(grown - self.rbuf.len());
                }
            }
            let room = self.rbuf.capacity() - self.rbuf.len();
            match self.stream.read_append(&mut self.rbuf, room) {
                Ok(0) => {
                    self.eof = true;
                    self.readable = false;
                    return Ok(total);
                }
                Ok(n) => {
                    total += n;
                    // A short read from a stream socket means it is drained,
                    // unless the peer has closed: then the EOF must be read
                    // now, as no further edge will announce it.
                    if n < room && !self.hup {
                        self.readable = false;
                        return Ok(total);
                    }
                    // Enough for this round; the loop comes back for more.
                    if total >= FAIR_SHARE {
                        return Ok(total);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    return Ok(total);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    pub fn queue(&mut self, buf: impl Into<Chunk>, from_app: bool) {
        let buf = buf.into();
        if !buf.is_empty() {
            self.out.push_back(Out::Bytes {
                buf,
                pos: 0,
                from_app,
            });
        }
    }

    /// Whether the client has sent nothing past what was parsed: one
    /// non-blocking read finds the socket empty, or at its end. Bytes it
    /// does find are dropped (the connection is closing anyway).
    pub fn sent_nothing_more(&mut self) -> bool {
        if !self.pending_input().is_empty() {
            return false;
        }
        let mut probe = [0u8; 512];
        loop {
            match self.stream.read(&mut probe) {
                Ok(0) => {
                    self.eof = true;
                    return true;
                }
                Ok(_) => return false,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    return true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Dead: nothing to linger for.
                Err(_) => return true,
            }
        }
    }

    /// Drain and discard what the client still sends (lingering close).
    /// `Ok(true)` when the client has closed its side.
    pub fn discard_input(&mut self) -> io::Result<bool> {
        let mut sink = [0u8; 4096];
        loop {
            match self.stream.read(&mut sink) {
                Ok(0) => return Ok(true),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    return Ok(false);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Write as much queued output as the socket takes. Returns the number
    /// of response bytes (from Python) written, for back-pressure
    /// accounting; `Err` means the connection is dead.
    pub fn flush(&mut self) -> io::Result<usize> {
        let mut flight_bytes = 0;
        while let Some(front) = self.out.front_mut() {
            match front {
                Out::File { file, offset, left } => {
                    let mut off = *offset as i64;
                    let want = (*left).min(1 << 30) as usize;
                    match self.stream.sendfile(file, &mut off, want) {
                        Ok(0) => {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "file shorter than announced",
                            ))
                        }
                        Ok(n) => {
                            *offset += n as u64;
                            *left -= n as u64;
                            if *left == 0 {
                                self.out.pop_front();
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(flight_bytes),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Out::Bytes { .. } => {
                    let mut slices: [IoSlice<'_>; 32] = [IoSlice::new(&[]); 32];
                    let mut n_slices = 0;
                    for item in self.out.iter() {
                        match item {
                            Out::Bytes { buf, pos, .. } if n_slices < 32 => {
                                slices[n_slices] = IoSlice::new(&buf[*pos..]);
                                n_slices += 1;
                            }
                            _ => break,
                        }
                    }
                    let written = match self.stream.write_vectored(&slices[..n_slices]) {
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(flight_bytes),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    };
                    let mut left = written;
                    while left > 0 {
                        let Some(Out::Bytes { buf, pos, from_app }) = self.out.front_mut() else {
                            break;
                        };
                        let avail = buf.len() - *pos;
                        let take = avail.min(left);
                        *pos += take;
                        left -= take;
                        if *from_app {
                            flight_bytes += take;
                        }
                        if *pos == buf.len() {
                            self.out.pop_front();
                        }
                    }
                }
            }
        }
        Ok(flight_bytes)
    }
}
