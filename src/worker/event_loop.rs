//! The worker's event loop: accept, read, parse, dispatch to Python, write,
//! keep-alive and timeouts, signals, and draining before exit.

use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use nix::sys::epoll::{EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signal::Signal;

use super::body::{BodyReader, FeedError};
use super::conn::{Conn, Out, Progress, State};
use super::pool::{Flight, Job, Piece, Token};
use super::{sock_addr, Worker, LINGER, TOKEN_LISTENER_BASE, TOKEN_SIGNAL, TOKEN_WAKE};
use crate::exit;
use crate::http::{self, BodyKind, Parsed, ResponseInfo};
use crate::wsgi;

/// Each connection is registered once, edge-triggered, for everything it
/// will ever wait for: no `epoll_ctl` as it moves between reading, waiting
/// for Python and writing (two system calls per request saved). Readiness is
/// remembered in the connection (`readable`; pending output means "write
/// when the next writable edge comes").
const CONN_EVENTS: i32 = libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET;

fn token(index: usize, generation: u32) -> Token {
    ((generation as u64) << 32) | index as u64
}

impl Worker<'_> {
    /// Run until drained; returns the exit code.
    pub(super) fn serve(&mut self) -> i32 {
        let mut events = vec![EpollEvent::empty(); 256];
        let mut pieces = Vec::new();
        let mut next_sweep = Instant::now();
        loop {
            self.heartbeat.beat();
            if self.draining && self.live == 0 {
                return exit::OK;
            }
            let wait = if self.revisit.is_empty() {
                EpollTimeout::from(1000u16)
            } else {
                EpollTimeout::ZERO
            };
            let n = match self.epoll.wait(&mut events, wait) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => 0,
                Err(e) => {
                    tracing::error!("epoll_wait failed: {e}");
                    return 1;
                }
            };
            for ev in &events[..n] {
                let data = ev.data();
                let flags = ev.events();
                match data {
                    TOKEN_SIGNAL => {
                        if let Some(code) = self.on_signals() {
                            return code;
                        }
                    }
                    TOKEN_WAKE => {
                        self.completions.drain(&mut pieces);
                        for (tok, piece) in pieces.drain(..) {
                            self.on_piece(tok, piece);
                        }
                    }
                    t if t >= TOKEN_LISTENER_BASE => {
                        self.accept((t - TOKEN_LISTENER_BASE) as usize);
                    }
                    t => self.on_socket(t, flags),
                }
            }
            for tok in std::mem::take(&mut self.revisit) {
                self.on_socket(tok, EpollFlags::empty());
            }
            let now = Instant::now();
            if now >= next_sweep {
                next_sweep = now + std::time::Duration::from_millis(500);
                self.sweep(now);
                if nix::unistd::getppid() != self.master {
                    tracing::info!("Parent changed, shutting down: {}", std::process::id());
                    return exit::OK;
                }
            }
        }
    }

    fn on_signals(&mut self) -> Option<i32> {
        while let Ok(Some(info)) = self.signals.read_signal() {
            let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                continue;
            };
            match sig {
                Signal::SIGTERM => self.start_draining(),
                Signal::SIGQUIT | Signal::SIGINT => {
                    crate::hooks::worker_int();
                    return Some(exit::OK);
                }
                Signal::SIGUSR1 => {
                    if let Err(e) = crate::logging::reopen() {
                        tracing::error!("reopening log files: {e}");
                    }
                }
                Signal::SIGABRT => self.on_abort(),
                _ => {}
            }
        }
        None
    }

    /// The master judged a request stuck past `--timeout`: log where every
    /// Python thread is, answer the stuck requests with 504 instead of a
    /// reset, and let the others finish while the worker drains.
    fn on_abort(&mut self) -> ! {
        crate::hooks::worker_abort();
        let stacks = wsgi::thread_stacks();
        tracing::error!(
            "Worker aborted after a request exceeded the timeout; Python threads:\n{}",
            stacks.trim_end()
        );
        let limit = self.timeout;
        let now = Instant::now();
        for i in 0..self.conns.len() {
            let stuck = match &self.conns[i].1 {
                Some(c) => {
                    matches!(c.state, State::Busy(_))
                        && c.dispatched_at
                            .is_some_and(|t| now.duration_since(t) >= limit)
                }
                None => false,
            };
            if stuck {
                let gen = self.conns[i].0;
                if let Some(c) = self.conns[i].1.as_mut() {
                    if let State::Busy(f) = &c.state {
                        f.abandon();
                    }
                    // Whatever was partly written cannot be completed;
                    // only a connection with nothing sent can get the 504.
                    c.out.clear();
                    c.queue(http::error_response(504), false);
                    c.state = State::Closing;
                }
                self.after_io(token(i, gen));
            }
        }
        self.start_draining();
        // A stuck thread never returns, so the worker cannot drain fully:
        // give the others a moment by serving until only stuck ones remain.
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let mut events = vec![EpollEvent::empty(); 64];
        let mut pieces = Vec::new();
        while Instant::now() < deadline && self.busy_count() > 0 {
            let n = self
                .epoll
                .wait(&mut events, EpollTimeout::from(100u16))
                .unwrap_or(0);
            for ev in &events[..n] {
                match ev.data() {
                    TOKEN_WAKE => {
                        self.completions.drain(&mut pieces);
                        for (tok, piece) in pieces.drain(..) {
                            self.on_piece(tok, piece);
                        }
                    }
                    TOKEN_SIGNAL => while let Ok(Some(_)) = self.signals.read_signal() {},
                    t if t >= TOKEN_LISTENER_BASE => {}
                    t => self.on_socket(t, ev.events()),
                }
            }
        }
        // Not a normal return: the stuck thread will never finish, so the
        // Python threads cannot be joined. Leave now, as gunicorn's
        // aborted worker does, with exit code 1.
        crate::sys::process::exit_now(1)
    }

    /// Connections still doing useful work after an abort: requests that
    /// are not the stuck ones, and output not yet written.
    fn busy_count(&self) -> usize {
        let now = Instant::now();
        self.conns
            .iter()
            .filter_map(|(_, c)| c.as_ref())
            .filter(|c| match c.state {
                State::Busy(_) => c
                    .dispatched_at
                    .is_some_and(|t| now.duration_since(t) < self.timeout),
                State::Lingering => false,
                _ => !c.out.is_empty(),
            })
            .count()
    }

    /// Stop accepting; idle connections close now, busy ones after their
    /// current response.
    fn start_draining(&mut self) {
        if self.draining {
            return;
        }
        self.draining = true;
        self.stop_accepting();
        for i in 0..self.conns.len() {
            let idle = matches!(
                &self.conns[i].1,
                Some(c) if matches!(c.state, State::Head) && c.pending_input().is_empty() && c.out.is_empty()
            );
            if idle {
                self.close(i);
            }
        }
    }

    fn stop_accepting(&mut self) {
        if self.accepting {
            self.accepting = false;
            for l in self.listeners {
                let _ = self.epoll.delete(l.as_fd());
            }
        }
    }

    fn resume_accepting(&mut self) {
        if !self.accepting && !self.draining {
            self.accepting = true;
            for (i, l) in self.listeners.iter().enumerate() {
                let _ = self.epoll.add(
                    l.as_fd(),
                    EpollEvent::new(
                        EpollFlags::EPOLLIN | EpollFlags::EPOLLEXCLUSIVE,
                        TOKEN_LISTENER_BASE + i as u64,
                    ),
                );
            }
        }
    }

    fn accept(&mut self, index: usize) {
        if !self.accepting {
            return;
        }
        // A small batch per wake-up: the connections already open are not
        // starved, and with several workers on one listener a burst of
        // connections spreads over them (a worker busy here leaves the next
        // wake-up to another) instead of landing on whichever woke first.
        for _ in 0..4 {
            if self.live >= self.max_conns && !self.evict_one() {
                self.stop_accepting();
                return;
            }
            let (stream, peer) = match self.listeners[index].accept() {
                Ok(Some(x)) => x,
                Ok(None) => return,
                Err(e) => {
                    // EMFILE and friends: log and retry on the next wake-up.
                    tracing::error!("accept failed: {e}");
                    return;
                }
            };
            let mut conn = Conn::new(stream, sock_addr(peer), self.locals[index].clone());
            conn.deadline = Some(Instant::now() + self.header_timeout);
            let slot = match self.free.pop() {
                Some(i) => i,
                None => {
                    self.conns.push((0, None));
                    self.conns.len() - 1
                }
            };
            let gen = self.conns[slot].0;
            let tok = token(slot, gen);
            if let Err(e) = self.epoll.add(
                conn.stream.as_fd(),
                EpollEvent::new(EpollFlags::from_bits_truncate(CONN_EVENTS), tok),
            ) {
                tracing::error!("epoll add failed: {e}");
                self.free.push(slot);
                continue;
            }
            self.conns[slot].1 = Some(conn);
            self.live += 1;
            // Most clients send the request with the connection; try now
            // instead of waiting for another epoll round.
            self.on_socket(tok, EpollFlags::EPOLLIN);
        }
    }

    /// The slot a token names, if that connection is still open.
    fn slot(&self, tok: Token) -> Option<usize> {
        let index = (tok & 0xffff_ffff) as usize;
        let gen = (tok >> 32) as u32;
        match self.conns.get(index) {
            Some((g, Some(_))) if *g == gen => Some(index),
            _ => None,
        }
    }

    /// Make room for a new client at the connection limit: close an idle
    /// keep-alive connection (it has had its answers), or else the
    /// connection still waiting for a request head whose deadline is
    /// nearest — the oldest, so a trickling or silent client goes before a
    /// client accepted a moment ago whose request has not been read yet.
    /// Busy connections are never evicted. Returns whether a slot was freed.
    fn evict_one(&mut self) -> bool {
        let mut idle = None;
        let mut slowest: Option<(Instant, usize)> = None;
        for (i, (_, c)) in self.conns.iter().enumerate() {
            let Some(c) = c else { continue };
            if !matches!(c.state, State::Head) || !c.out.is_empty() {
                continue;
            }
            if c.served > 0 && c.pending_input().is_empty() {
                idle = Some(i);
                break;
            }
            if let Some(d) = c.deadline {
                if slowest.is_none_or(|(best, _)| d < best) {
                    slowest = Some((d, i));
                }
            }
        }
        match idle.or(slowest.map(|(_, i)| i)) {
            Some(i) => {
                self.close(i);
                true
            }
            None => false,
        }
    }

    fn lookup(&mut self, tok: Token) -> Option<(usize, &mut Conn)> {
        let index = self.slot(tok)?;
        self.conns[index].1.as_mut().map(|c| (index, c))
    }

    fn on_socket(&mut self, tok: Token, flags: EpollFlags) {
        let Some((index, conn)) = self.lookup(tok) else {
            return;
        };
        if flags.intersects(EpollFlags::EPOLLERR) {
            self.close(index);
            return;
        }
        if flags.intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLHUP) {
            conn.readable = true;
        }
        if flags.intersects(EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLHUP) {
            conn.hup = true;
        }
        if !conn.out.is_empty() && self.write_out(index).is_err() {
            self.close(index);
            return;
        }
        if let Progress::Closed = self.pump(index) {
            return;
        }
        self.after_io(tok);
    }

    /// Read what the socket has, if the connection is in a reading state,
    /// and parse it. Not while a request is with Python: responses must
    /// stay in order, and what arrives meanwhile is read after the response.
    fn pump(&mut self, index: usize) -> Progress {
        let draining = self.draining;
        let (header_timeout, body_timeout) = (self.header_timeout, self.body_timeout);
        let gen = self.conns[index].0;
        let Some(conn) = self.conns[index].1.as_mut() else {
            return Progress::Closed;
        };
        if !conn.readable {
            return Progress::Open;
        }
        match conn.state {
            State::Head | State::Body(_) => {
                let was_empty = conn.pending_input().is_empty();
                match conn.fill() {
                    Ok(n) if n > 0 => {
                        let now = Instant::now();
                        if matches!(conn.state, State::Body(_)) {
                            conn.deadline = Some(now + body_timeout);
                        } else if was_empty && conn.served > 0 {
                            // A keep-alive connection starts its next head:
                            // it gets a full header timeout. A new
                            // connection's clock started at accept and is
                            // not reset by a trickle.
                            conn.deadline = Some(now + header_timeout);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => {
                        self.close(index);
                        return Progress::Closed;
                    }
                }
                // The fairness cap stopped the read: no new edge will come
                // for what is left, so look again on the next turn.
                if conn.readable {
                    self.revisit.push(token(index, gen));
                }
                self.advance(index, draining)
            }
            State::Lingering => match conn.discard_input() {
                Ok(false) => Progress::Open,
                _ => {
                    self.close(index);
                    Progress::Closed
                }
            },
            State::Busy(_) | State::Closing => Progress::Open,
        }
    }

    /// Parse and receive what has been read; dispatch complete requests.
    fn advance(&mut self, index: usize, draining: bool) -> Progress {
        let limits = self.limits.clone();
        let tmp_dir = self.tmp_dir.clone();
        loop {
            let Some(conn) = self.conns[index].1.as_mut() else {
                return Progress::Closed;
            };
            match &mut conn.state {
                State::Head => {
                    if conn.pending_input().is_empty() {
                        if conn.eof {
                            self.close(index);
                            return Progress::Closed;
                        }
                        return Progress::Open;
                    }
                    match http::parse_head(conn.pending_input(), &limits) {
                        Ok(Parsed::Partial) => {
                            if conn.eof {
                                // Truncated request: close without a response.
                                self.close(index);
                                return Progress::Closed;
                            }
                            return Progress::Open;
                        }
                        Ok(Parsed::Complete(head, used)) => {
                            conn.consume(used);
                            let reader = match head.body {
                                BodyKind::None => None,
                                BodyKind::Length(0) => None,
                                BodyKind::Length(n) => Some(BodyReader::length(n)),
                                BodyKind::Chunked => Some(BodyReader::chunked()),
                            };
                            match reader {
                                None => {
                                    self.dispatch(
                                        index,
                                        head,
                                        wsgi::Body::Memory(Vec::new()),
                                        draining,
                                    );
                                    return Progress::Open;
                                }
                                Some(r) => {
                                    if head.expect_continue && conn.pending_input().is_empty() {
                                        conn.queue(http::CONTINUE_100.to_vec(), false);
                                    }
                                    conn.deadline = Some(Instant::now() + self.body_timeout);
                                    conn.state = State::Body(Box::new((head, r)));
                                }
                            }
                        }
                        Err(e) => {
                            tracing::debug!("Invalid request from {:?}: {e}", conn.peer);
                            return self.refuse(index, &e);
                        }
                    }
                }
                State::Body(b) => {
                    let input = &conn.rbuf[conn.rpos..conn.rend];
                    match b.1.feed(input, &tmp_dir) {
                        Ok((used, done)) => {
                            conn.consume(used);
                            if done {
                                let State::Body(b) =
                                    std::mem::replace(&mut conn.state, State::Head)
                                else {
                                    unreachable!()
                                };
                                let (head, reader) = *b;
                                match reader.finish() {
                                    Ok(body) => self.dispatch(index, head, body, draining),
                                    Err(e) => {
                                        tracing::error!("request body: {e}");
                                        conn.queue(http::error_response(500), false);
                                        conn.state = State::Closing;
                                    }
                                }
                                return Progress::Open;
                            }
                            if conn.eof {
                                self.close(index);
                                return Progress::Closed;
                            }
                            return Progress::Open;
                        }
                        Err(FeedError::Http(e)) => {
                            tracing::debug!("Invalid request body from {:?}: {e}", conn.peer);
                            return self.refuse(index, &e);
                        }
                        Err(FeedError::Io(e)) => {
                            tracing::error!("Storing request body: {e}");
                            conn.queue(http::error_response(500), false);
                            conn.state = State::Closing;
                            return Progress::Open;
                        }
                    }
                }
                _ => return Progress::Open,
            }
        }
    }

    /// Answer a request the parser refused (with `Connection: close`), or
    /// close silently when there is nothing to answer (truncated input).
    fn refuse(&mut self, index: usize, e: &http::HttpError) -> Progress {
        match (e.status(), self.conns[index].1.as_mut()) {
            (Some(status), Some(conn)) => {
                conn.queue(http::error_response(status), false);
                conn.state = State::Closing;
                Progress::Open
            }
            _ => {
                self.close(index);
                Progress::Closed
            }
        }
    }

    fn dispatch(
        &mut self,
        index: usize,
        head: http::RequestHead,
        body: wsgi::Body,
        draining: bool,
    ) {
        let gen = self.conns[index].0;
        let keepalive_enabled = !self.keepalive.is_zero();
        let last_allowed = self.max_requests > 0 && self.served + 1 >= self.max_requests;
        let Some(conn) = self.conns[index].1.as_mut() else {
            return;
        };
        let info = ResponseInfo {
            version: head.version,
            head_request: head.method == "HEAD",
            keep_alive: head.keep_alive && keepalive_enabled && !draining && !last_allowed,
        };
        let flight = Arc::new(Flight::default());
        conn.state = State::Busy(Arc::clone(&flight));
        conn.deadline = None;
        conn.dispatched_at = Some(Instant::now());
        // The request is complete: drop consumed bytes now so the buffer
        // does not grow across a long keep-alive connection.
        conn.compact();
        let req = wsgi::Request {
            head,
            body,
            peer: conn.peer.clone(),
            local: conn.local.clone(),
        };
        self.jobs.push(Job {
            token: token(index, gen),
            req,
            info,
            flight,
            started: SystemTime::now(),
            queued: Instant::now(),
        });
    }

    fn on_piece(&mut self, tok: Token, piece: Piece) {
        let Some(index) = self.slot(tok) else {
            return;
        };
        let keepalive = self.keepalive;
        let draining = self.draining;
        let conn = self.conns[index].1.as_mut().expect("slot checked");
        let State::Busy(_) = &conn.state else {
            // A response for a request already answered (504 after abort).
            return;
        };
        match piece {
            Piece::Bytes(b) => conn.queue(b, true),
            Piece::File { file, offset, len } => conn.out.push_back(Out::File {
                file,
                offset,
                left: len,
            }),
            Piece::End { keep_alive } => {
                conn.dispatched_at = None;
                conn.served += 1;
                if keep_alive && !draining {
                    conn.state = State::Head;
                    conn.deadline = Some(Instant::now() + keepalive);
                } else {
                    conn.state = State::Closing;
                }
                self.served += 1;
                self.heartbeat.count_request();
                if self.max_requests > 0 && self.served >= self.max_requests && !self.draining {
                    tracing::info!("Autorestarting worker after current request.");
                    self.start_draining();
                }
            }
        }
        if self.write_out(index).is_err() {
            self.close(index);
            return;
        }
        // A pipelined request may already be buffered, or have arrived on
        // the socket while this one was with Python.
        let draining = self.draining;
        if let Some(conn) = self.conns[index].1.as_ref() {
            if matches!(conn.state, State::Head) {
                let progress = if conn.readable {
                    self.pump(index)
                } else if !conn.pending_input().is_empty() {
                    self.advance(index, draining)
                } else {
                    Progress::Open
                };
                if let Progress::Closed = progress {
                    return;
                }
            }
        }
        self.after_io(tok);
    }

    /// Write queued output, crediting the request's back-pressure account.
    fn write_out(&mut self, index: usize) -> io::Result<()> {
        let Some(conn) = self.conns[index].1.as_mut() else {
            return Ok(());
        };
        let written = conn.flush()?;
        if written > 0 {
            if let State::Busy(f) = &conn.state {
                f.written(written);
            }
        }
        Ok(())
    }

    /// Settle a connection after I/O: once a closing connection's output
    /// is written, half-close it and linger; close idle ones when draining.
    fn after_io(&mut self, tok: Token) {
        let draining = self.draining;
        let Some(index) = self.slot(tok) else {
            return;
        };
        // Output queued while parsing (an error response, 100 Continue):
        // the socket has been writable all along, so no edge will announce
        // it; write now.
        if self.write_out(index).is_err() {
            self.close(index);
            return;
        }
        let conn = self.conns[index].1.as_mut().expect("slot checked");
        if !conn.out.is_empty() {
            return;
        }
        match conn.state {
            State::Closing => {
                conn.stream.shutdown_write();
                if conn.eof {
                    self.close(index);
                    return;
                }
                conn.state = State::Lingering;
                conn.deadline = Some(Instant::now() + LINGER);
                // What the client sent meanwhile will bring no new edge.
                let _ = self.pump(index);
            }
            State::Head if conn.pending_input().is_empty() && (draining || conn.eof) => {
                self.close(index);
            }
            _ => {}
        }
    }

    fn close(&mut self, index: usize) {
        if let Some(conn) = self.conns[index].1.take() {
            let _ = self.epoll.delete(conn.stream.as_fd());
            if let State::Busy(f) = &conn.state {
                f.abandon();
            }
            self.conns[index].0 = self.conns[index].0.wrapping_add(1);
            self.free.push(index);
            self.live -= 1;
            if self.live < self.max_conns {
                self.resume_accepting();
            }
        }
    }

    /// Close connections whose deadline passed.
    fn sweep(&mut self, now: Instant) {
        for i in 0..self.conns.len() {
            let expired =
                matches!(&self.conns[i].1, Some(c) if c.deadline.is_some_and(|d| now >= d));
            if expired {
                self.close(i);
            }
        }
    }
}
