//! The worker's event loop: accept, read, parse, dispatch to Python, write,
//! keep-alive and timeouts, signals, and draining before exit. It also owns
//! the worker's share of fair scheduling: it stays in the kernel's queue of
//! workers waiting for a new connection only while it has a free Python
//! thread (see docs/architecture.md, "Fair scheduling").

use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::epoll::{EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signal::Signal;

use super::body::{BodyDecoder, BodyReader, FeedError};
use super::conn::{Conn, Out, Progress, State, Uploading, WsLink};
use super::pool::{self, Flight, Job, Piece, Token};
use super::{
    sock_addr, Stage, Worker, DRAIN_GRACE, LINGER, TOKEN_LISTENER_BASE, TOKEN_RELOAD, TOKEN_SIGNAL,
    TOKEN_WAKE,
};
use crate::exit;
use crate::http::{self, BodyKind, Parsed, ResponseInfo};
use crate::metrics::{Counter, Method};
use crate::wsgi;

/// Each connection is registered once, edge-triggered, for everything it
/// will ever wait for: no `epoll_ctl` as it moves between reading, waiting
/// for Python and writing (two system calls per request saved). Readiness is
/// remembered in the connection (`readable`; pending output means "write
/// when the next writable edge comes").
const CONN_EVENTS: i32 = libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET;

/// How long a connection just accepted, with no request bytes yet, holds a
/// Python thread's place. Clients send the request with the connection, so
/// its bytes are there at once or within a round trip; without the claim a
/// worker would accept several connections in the gap between accept and
/// their requests and then queue them on one thread. Bounded, so a client
/// that connects and stays silent costs the worker's accept queue place
/// only this long (its own deadline is `--header-timeout`).
const CLAIM: Duration = Duration::from_millis(250);

/// The largest answer after which a client's `Connection: close` is taken
/// at its word (no lingering close): about what TCP sends at once on a new
/// connection (ten segments).
const FAST_CLOSE_MAX: usize = 14 * 1024;

/// How long a body holds its place among the bodies being read. A body
/// that arrives fast is in well before (1 MiB over loopback takes a few
/// milliseconds); one still arriving after this gives its place to the
/// next, and reads on, so a slow or trickling uploader delays the others
/// by this much at most.
const PLACE: Duration = Duration::from_millis(50);

/// While a worker has no free thread, how often it looks at the listen
/// backlog (only when kept-alive requests or `--queue-timeout` make it
/// eligible to admit a waiting connection anyway).
const BACKLOG_TICK: Duration = Duration::from_millis(10);

/// How long connections must have been seen waiting in the backlog, with
/// every worker that could take them out of the accept queue, before a
/// worker without a free thread admits one.
const BACKLOG_PATIENCE: Duration = Duration::from_millis(20);

fn is_listener(data: u64) -> bool {
    (TOKEN_LISTENER_BASE..TOKEN_WAKE).contains(&data)
}

impl Worker<'_> {
    /// Run until drained; returns the exit code.
    pub(super) fn serve(&mut self) -> i32 {
        // The loop works in short bursts that can wait a few milliseconds,
        // and the thread it would preempt on waking is nearly always one
        // running Python, this worker's or another's, in the middle of a
        // request. Batch scheduling lets that thread finish its turn; the
        // loop then finds more to do at once. With as many workers as
        // cores (contrib/bench, 2 workers on 2 cores, alternated runs)
        // hello rose from 51-58k to 72-73k req/s and Flask from 11-13k to
        // 15-20k, with CPU per request down by a fifth and p99 no worse;
        // with one worker, req/s moved within the noise
        // (`contrib/bench/threads policy` reproduces these).
        if let Err(e) = crate::sys::process::batch_scheduling() {
            tracing::debug!("event loop keeps the default scheduling policy: {e}");
        }
        let mut events = vec![EpollEvent::empty(); 256];
        let mut pieces = Vec::new();
        let mut next_sweep = Instant::now();
        loop {
            self.heartbeat.beat();
            if self.draining() && self.conns.len() == 0 {
                return exit::OK;
            }
            let wait = if self.revisit.is_empty() {
                self.wait_timeout(Instant::now())
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
            // Signals first: a quick stop must not take a connection only to
            // drop it (a graceful one takes what it was woken for, below).
            if events[..n].iter().any(|ev| ev.data() == TOKEN_SIGNAL) {
                if let Some(code) = self.on_signals() {
                    return code;
                }
            }
            // Then new connections. The listeners were in the epoll set,
            // so this worker had a free thread when it went to sleep; the
            // kernel woke it and no other worker for this connection
            // (EPOLLEXCLUSIVE), so it must take it before the events below
            // (a kept-alive request, say) fill that thread.
            for ev in &events[..n] {
                if is_listener(ev.data()) {
                    self.accept((ev.data() - TOKEN_LISTENER_BASE) as usize);
                }
            }
            for ev in &events[..n] {
                let data = ev.data();
                let flags = ev.events();
                match data {
                    TOKEN_SIGNAL => {}
                    TOKEN_WAKE => self.on_completions(&mut pieces),
                    TOKEN_RELOAD => {
                        if let Some(w) = self.reload.as_mut() {
                            w.on_readable(Instant::now());
                        }
                    }
                    t if is_listener(t) => {}
                    t => self.on_socket(t, flags),
                }
            }
            for tok in std::mem::take(&mut self.revisit) {
                self.on_socket(tok, EpollFlags::empty());
            }
            let now = Instant::now();
            if self.next_place_lapse().is_some_and(|t| t <= now) {
                self.admit_bodies();
            }
            self.settle_accepting(now);
            // Only when a push or the last look asked for it: no lock on
            // the queue per turn otherwise.
            if self.next_poke.is_some_and(|t| t <= now) {
                self.next_poke = self.jobs.poke();
            }
            if now >= next_sweep {
                next_sweep = now + std::time::Duration::from_millis(500);
                self.sweep(now);
                self.admit_bodies();
                // Large responses written since, from the app's objects, on
                // a worker whose threads all sleep: have one take the GIL so
                // the objects are freed now. (An asgi worker's loop calls
                // into corral at least twice a second anyway.)
                if self.in_flight == 0 && self.async_side.is_none() && pool::take_deferred() {
                    self.jobs.nudge();
                }
                // Metrics gathered since: at most half a second late.
                crate::statsd::flush();
                self.check_code(now);
                // A wake-up lost to a race between workers (the kernel
                // stopped at one that then filled up) would leave a
                // connection in the backlog until the next one arrives:
                // a worker with a free thread looks for one now and then.
                if self.accepting {
                    for i in 0..self.listeners.len() {
                        self.accept(i);
                    }
                    self.settle_accepting(now);
                }
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
                Signal::SIGTERM => {
                    // The kernel may have woken this worker, and no other,
                    // for a connection in the backlog: take it (it is
                    // served) rather than leave it waiting for a wake-up.
                    if self.accepting {
                        for i in 0..self.listeners.len() {
                            self.accept(i);
                        }
                    }
                    self.start_draining();
                }
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
        let limit = self.plan.timeout;
        let now = Instant::now();
        // An asgi worker's one loop is what got stuck: every request in it
        // is stuck with it.
        let all = self.async_side.is_some();
        for i in 0..self.conns.slots() {
            let stuck = match self.conns.get(i) {
                Some(c) => {
                    matches!(c.state, State::Busy(_))
                        && (all
                            || c.dispatched_at
                                .is_some_and(|t| now.duration_since(t) >= limit))
                }
                None => false,
            };
            if stuck {
                let tok = self.conns.token(i);
                if self
                    .conns
                    .get(i)
                    .is_some_and(|c| c.ws.as_ref().is_some_and(|w| w.open))
                {
                    // A WebSocket gets a close frame, not an HTTP answer.
                    self.websocket_goodbye(
                        i,
                        http::websocket::CLOSE_INTERNAL_ERROR,
                        "worker timed out",
                    );
                } else if let Some(c) = self.conns.get_mut(i) {
                    if let State::Busy(f) = &c.state {
                        f.abandon();
                    }
                    // A response already under way cannot be completed:
                    // what was queued goes out and the connection closes.
                    // Only a request with nothing sent gets the 504.
                    if !c.responded {
                        c.out.clear();
                        c.queue(http::error_response(504), false);
                        if let Some(t) = self.tally {
                            t.answered(c.method, 504);
                        }
                    }
                    c.state = State::Closing;
                    if let Some(t) = self.tally {
                        t.count(Counter::Timeout);
                    }
                }
                self.after_io(tok);
            }
        }
        self.start_draining();
        // A stuck thread never returns, so the worker cannot drain fully:
        // give the others a moment by serving until only stuck ones remain.
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let mut events = vec![EpollEvent::empty(); 64];
        let mut pieces = Vec::new();
        while Instant::now() < deadline && self.busy_count() > 0 {
            // Jobs queued behind the stuck thread go to the others.
            self.jobs.poke();
            let n = self
                .epoll
                .wait(&mut events, EpollTimeout::from(100u16))
                .unwrap_or(0);
            for ev in &events[..n] {
                match ev.data() {
                    TOKEN_WAKE => self.on_completions(&mut pieces),
                    TOKEN_SIGNAL => while let Ok(Some(_)) = self.signals.read_signal() {},
                    t if is_listener(t) => {}
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
            .map(|(_, c)| c)
            .filter(|c| match c.state {
                State::Busy(_) => c
                    .dispatched_at
                    .is_some_and(|t| now.duration_since(t) < self.plan.timeout),
                State::Lingering => false,
                _ => !c.out.is_empty(),
            })
            .count()
    }

    /// Stop accepting. Busy connections close after their current response;
    /// idle ones are kept for `DRAIN_GRACE` in case a request is already on
    /// its way (it is answered with `Connection: close`), then closed by the
    /// sweep.
    fn start_draining(&mut self) {
        if self.draining() {
            return;
        }
        self.stage = Stage::Draining;
        self.stop_accepting();
        let until = Instant::now() + DRAIN_GRACE;
        for c in self.conns.values_mut() {
            if matches!(c.state, State::Head) && c.pending_input().is_empty() {
                c.deadline = Some(c.deadline.map_or(until, |d| d.min(until)));
            }
        }
        // A WebSocket never ends by itself: close it with 1001 ("going
        // away"), so the client reconnects to a worker that stays. (One
        // still being accepted by its app is closed when the accept comes.)
        for i in 0..self.conns.slots() {
            self.websocket_goodbye(i, http::websocket::CLOSE_GOING_AWAY, "server stopping");
        }
    }

    /// `--reload`: a file the code came from changed; ask the master to
    /// reload every worker (it starts new ones, then retires this one).
    fn check_code(&mut self, now: Instant) {
        let Some(file) = self.reload.as_mut().and_then(|w| w.tick(now)) else {
            return;
        };
        tracing::info!("Worker reloading: {} modified", file.display());
        self.heartbeat.ask_reload();
        let _ = nix::unistd::write(self.boot_pipe, &[3]);
    }

    /// `--max-requests` reached: ask the master for a replacement and keep
    /// serving until it retires this worker, so capacity never drops.
    fn ask_recycle(&mut self) {
        if self.stage != Stage::Serving {
            return;
        }
        self.stage = Stage::Replacing;
        tracing::info!("Autorestarting worker after current request.");
        self.heartbeat.ask_recycle();
        let _ = nix::unistd::write(self.boot_pipe, &[2]);
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
        if !self.accepting && self.has_room(Instant::now()) {
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

    /// Threads not taken by a request in flight or claimed by a connection
    /// just accepted.
    fn free_threads(&mut self, now: Instant) -> usize {
        let mut i = 0;
        while i < self.claims.len() {
            let (tok, until) = self.claims[i];
            let held = until > now
                && self
                    .slot(tok)
                    .and_then(|s| self.conns.get(s))
                    .is_some_and(|c| c.claim);
            if held {
                i += 1;
            } else {
                self.claims.swap_remove(i);
            }
        }
        self.plan
            .threads
            .saturating_sub(self.in_flight + self.claims.len())
    }

    /// Whether this worker should be in the accept queue: a Python thread is
    /// free for the next connection and there is room for one more.
    fn has_room(&mut self, now: Instant) -> bool {
        !self.draining() && !self.conn_limit && self.free_threads(now) > 0
    }

    /// Join or leave the kernel's queue of workers to wake for a new
    /// connection, after whatever the last events changed.
    fn settle_accepting(&mut self, now: Instant) {
        if self.has_room(now) {
            self.backlog_since = None;
            self.resume_accepting();
        } else {
            self.stop_accepting();
            self.admit_waiting(now);
        }
    }

    /// A worker with no free thread may still have to take a connection
    /// from the backlog, so that waiting there is never worse than waiting
    /// inside a worker: when its threads serve kept-alive connections
    /// (their requests never pass through the backlog, so without this a
    /// few busy keep-alive clients would starve every new one), or when
    /// `--queue-timeout` asks for requests that waited too long to be
    /// refused rather than kept waiting. Only after connections have been
    /// seen waiting for `BACKLOG_PATIENCE` — long enough for a worker with a
    /// free thread, woken first by the kernel, to have taken them — and one
    /// per `BACKLOG_TICK`, so full workers share the backlog evenly.
    fn admit_waiting(&mut self, now: Instant) {
        if !self.may_admit_waiting() {
            self.backlog_since = None;
            return;
        }
        if now < self.next_backlog_check {
            return;
        }
        self.next_backlog_check = now + BACKLOG_TICK;
        let Some(index) = self.waiting_listener() else {
            self.backlog_since = None;
            return;
        };
        match self.backlog_since {
            None => self.backlog_since = Some(now),
            Some(since) if now.duration_since(since) >= BACKLOG_PATIENCE => {
                self.accept_one(index, now);
            }
            Some(_) => {}
        }
    }

    /// A full worker that finished `ended` requests while connections
    /// wait in the backlog (seen there for `BACKLOG_PATIENCE`) takes as
    /// many of them. On top of the one per `BACKLOG_TICK`, this admits at
    /// the pace the worker serves: a burst of new keep-alive clients at a
    /// busy worker of fast requests is taken in within a few requests (at
    /// one per tick, the last of 50 waited half a second), while a worker
    /// of slow requests still takes no more than it gets through. No
    /// system call is made unless the tick saw connections waiting.
    fn admit_for_finished(&mut self, ended: usize, now: Instant) {
        let patient = self
            .backlog_since
            .is_some_and(|since| now.duration_since(since) >= BACKLOG_PATIENCE);
        if !patient || !self.may_admit_waiting() {
            return;
        }
        let mut left = ended;
        while left > 0 {
            let before = left;
            for index in 0..self.listeners.len() {
                if left > 0 && self.accept_one(index, now) {
                    left -= 1;
                }
            }
            if left == before {
                // The backlog is empty: the tick looks again.
                self.backlog_since = None;
                return;
            }
        }
    }

    fn may_admit_waiting(&self) -> bool {
        !self.accepting
            && !self.draining()
            && !self.conn_limit
            && (self.reused_in_flight > 0 || !self.plan.queue_timeout.is_zero())
    }

    /// A listener with connections waiting in its backlog, looked at
    /// without taking any.
    fn waiting_listener(&self) -> Option<usize> {
        let mut fds: Vec<PollFd<'_>> = self
            .listeners
            .iter()
            .map(|l| PollFd::new(l.as_fd(), PollFlags::POLLIN))
            .collect();
        match nix::poll::poll(&mut fds, PollTimeout::ZERO) {
            Ok(n) if n > 0 => fds
                .iter()
                .position(|f| f.revents().is_some_and(|r| r.contains(PollFlags::POLLIN))),
            _ => None,
        }
    }

    /// How long the loop may sleep: until a claim lapses (the worker then
    /// has a free thread again), the next backlog look, or a second.
    fn wait_timeout(&mut self, now: Instant) -> EpollTimeout {
        let mut until = now + Duration::from_secs(1);
        if let Some(first) = self.claims.iter().map(|&(_, t)| t).min() {
            until = until.min(first);
        }
        if self.may_admit_waiting() {
            until = until.min(self.next_backlog_check);
        }
        if let Some(lapse) = self.next_place_lapse() {
            until = until.min(lapse);
        }
        if let Some(poke) = self.next_poke.filter(|_| self.in_flight > 0) {
            until = until.min(poke);
        }
        let ms = until
            .saturating_duration_since(now)
            .as_micros()
            .div_ceil(1000);
        EpollTimeout::from(ms.min(1000) as u16)
    }

    /// Take new connections, as many as there are free threads and at most
    /// 4 per wake-up, so the connections already open are not starved.
    fn accept(&mut self, index: usize) {
        if !self.accepting {
            return;
        }
        let now = Instant::now();
        let mut took = false;
        for _ in 0..4 {
            if !self.has_room(now) || !self.accept_one(index, now) {
                break;
            }
            took = true;
        }
        if took {
            // Leave the accept queue; `settle_accepting` rejoins it at the
            // back if a thread is still free. The kernel wakes the worker
            // at the front, so new connections go round the workers, and
            // kept-alive ones end up spread over them.
            self.stop_accepting();
        }
    }

    /// Accept one connection and read its request if it came with it.
    /// Returns whether the backlog gave one.
    fn accept_one(&mut self, index: usize, now: Instant) -> bool {
        if self.conns.len() >= self.plan.max_conns && !self.evict_one() {
            self.conn_limit = true;
            self.stop_accepting();
            return false;
        }
        let (stream, peer) = match self.listeners[index].accept() {
            Ok(Some(x)) => x,
            Ok(None) => return false,
            Err(e) => {
                // EMFILE and friends: log and retry on the next wake-up.
                tracing::error!("accept failed: {e}");
                return false;
            }
        };
        let mut conn = Conn::new(stream, sock_addr(peer), self.locals[index].clone());
        conn.deadline = Some(now + self.plan.header_timeout);
        conn.proxy_pending = self.plan.proxy_protocol != http::ProxyMode::Off;
        conn.claim = true;
        let slot = self.conns.insert(conn);
        let tok = self.conns.token(slot);
        let fd = self.conns.get(slot).expect("just inserted").stream.as_fd();
        if let Err(e) = self.epoll.add(
            fd,
            EpollEvent::new(EpollFlags::from_bits_truncate(CONN_EVENTS), tok),
        ) {
            tracing::error!("epoll add failed: {e}");
            self.conns.remove(slot);
            return true;
        }
        self.claims.push((tok, now + CLAIM));
        // Most clients send the request with the connection; try now
        // instead of waiting for another epoll round.
        self.on_socket(tok, EpollFlags::EPOLLIN);
        true
    }

    /// The slot a token names, if that connection is still open.
    fn slot(&self, tok: Token) -> Option<usize> {
        self.conns.find(tok)
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
        for (i, c) in self.conns.iter() {
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
                if idle.is_none() {
                    self.count(Counter::SlowClient);
                }
                self.close(i);
                true
            }
            None => false,
        }
    }

    fn lookup(&mut self, tok: Token) -> Option<(usize, &mut Conn)> {
        let index = self.slot(tok)?;
        self.conns.get_mut(index).map(|c| (index, c))
    }

    fn on_socket(&mut self, tok: Token, flags: EpollFlags) {
        let asynchronous = self.async_side.is_some();
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
            // An ASGI app is told when its client leaves (`http.disconnect`),
            // as asyncio servers do when the client's side ends: its whole
            // request was read (the connection is busy), so the end of the
            // input means the client is gone. (An open WebSocket's input is
            // read first: a close frame may come with the end.)
            if asynchronous && !conn.ws.as_ref().is_some_and(|w| w.open) {
                if let State::Busy(f) = &conn.state {
                    f.abandon();
                }
            }
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
        let draining = self.draining();
        let (header_timeout, body_timeout) = (self.plan.header_timeout, self.plan.body_timeout);
        let tok = self.conns.token(index);
        let Some(conn) = self.conns.get_mut(index) else {
            return Progress::Closed;
        };
        // An open WebSocket may hold decoded-later frames in its buffer (its
        // inbox was full) with nothing more to come from the socket.
        let ws_open = conn.ws.as_ref().is_some_and(|w| w.open && !w.closed);
        // A streamed body may hold bytes read but not decoded (its app was
        // behind) with nothing more to come from the socket.
        if !conn.readable && !ws_open && conn.upload.is_none() {
            return Progress::Open;
        }
        match conn.state {
            // Left in the kernel until unparked; `readable` stays set so
            // the unparking revisit reads it.
            State::Body(_) if conn.parked => Progress::Open,
            State::Head | State::Body(_) => {
                let was_empty = conn.pending_input().is_empty();
                let read = conn.fill_body().unwrap_or_else(|| conn.fill());
                match read {
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
                    self.revisit.push(tok);
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
            State::Busy(_) if conn.ws.as_ref().is_some_and(|w| w.open && !w.closed) => {
                self.websocket_input(index)
            }
            State::Busy(_) if conn.upload.is_some() => self.upload_input(index),
            State::Busy(_) | State::Closing => Progress::Open,
        }
    }

    /// Close an open WebSocket from this side: a close frame with `code`,
    /// the app told (`websocket.disconnect`; its later sends raise), and
    /// the connection closed once the frame is written.
    fn websocket_goodbye(&mut self, index: usize, code: u16, reason: &str) {
        use http::websocket::{self as ws_wire, Opcode};
        let Some(conn) = self.conns.get_mut(index) else {
            return;
        };
        let Some(ws) = conn.ws.as_mut().filter(|w| w.open && !w.closed) else {
            return;
        };
        ws.closed = true;
        ws.inbox.push(crate::asgi::WsEvent::Closed {
            code,
            reason: reason.to_owned(),
        });
        let id = ws.id;
        let mut frame = Vec::new();
        ws_wire::encode(
            &mut frame,
            Opcode::Close,
            &ws_wire::close_payload(code, reason),
        );
        conn.queue(frame, false);
        if let State::Busy(f) = std::mem::replace(&mut conn.state, State::Closing) {
            f.abandon();
        }
        if let Some(side) = &self.async_side {
            side.note(id, crate::asgi::Note::Message);
        }
        let tok = self.conns.token(index);
        self.after_io(tok);
    }

    /// Read a WebSocket connection's frames: messages go to the app's
    /// inbox (reading pauses while the app is behind), pings are answered
    /// here, a close frame is echoed, and a protocol error closes the
    /// connection with its code. The app hears of each through a note.
    fn websocket_input(&mut self, index: usize) -> Progress {
        use crate::asgi::WsEvent;
        use http::websocket::{self as ws_wire, Message, Opcode};
        let Some(conn) = self.conns.get_mut(index) else {
            return Progress::Closed;
        };
        // Out of the connection while frames are read into it.
        let Some(mut ws) = conn.ws.take() else {
            return Progress::Open;
        };
        let mut told = false;
        let mut failed = false;
        // Leave the rest in the socket while the app is behind: TCP pushes
        // back on the client until the app catches up (Piece::Resume).
        while !ws.closed && !ws.inbox.paused() {
            if conn.rpos == conn.rbuf.len() {
                if !conn.readable {
                    break;
                }
                if conn.fill().is_err() {
                    failed = true;
                    break;
                }
                if conn.rpos == conn.rbuf.len() {
                    break;
                }
            }
            let input = &conn.rbuf[conn.rpos..];
            let decoded = ws.decoder.decode(input);
            let used = match &decoded {
                Ok(Some((_, n))) => *n,
                // The decoder keeps what it was given (see its contract).
                _ => input.len(),
            };
            conn.consume(used);
            let closing = match decoded {
                Ok(None) => None,
                Ok(Some((Message::Text(t), _))) => {
                    ws.inbox.push(WsEvent::Text(t));
                    told = true;
                    None
                }
                Ok(Some((Message::Binary(b), _))) => {
                    ws.inbox.push(WsEvent::Binary(b));
                    told = true;
                    None
                }
                Ok(Some((Message::Ping(p), _))) => {
                    let mut frame = Vec::new();
                    ws_wire::encode(&mut frame, Opcode::Pong, &p);
                    conn.queue(frame, false);
                    None
                }
                Ok(Some((Message::Pong(_), _))) => None,
                // The client closes: echo its code (an empty close for an
                // empty one), and tell the app (1005: no code given).
                Ok(Some((Message::Close(c), _))) => Some(match c {
                    Some((code, reason)) => (Some(code), code, reason),
                    None => (None, 1005, String::new()),
                }),
                Err(f) => Some((Some(f.code), f.code, f.reason.to_owned())),
            };
            if let Some((echo, code, reason)) = closing {
                let payload = echo.map_or_else(Vec::new, |c| ws_wire::close_payload(c, &reason));
                let mut frame = Vec::new();
                ws_wire::encode(&mut frame, Opcode::Close, &payload);
                conn.queue(frame, false);
                ws.closed = true;
                ws.inbox.push(WsEvent::Closed { code, reason });
                told = true;
            }
        }
        if conn.eof && conn.rpos == conn.rbuf.len() && !ws.closed {
            // The connection ended without a close frame: 1006.
            ws.closed = true;
            ws.inbox.push(WsEvent::Closed {
                code: 1006,
                reason: String::new(),
            });
            told = true;
        }
        if told {
            if let Some(side) = &self.async_side {
                side.note(ws.id, crate::asgi::Note::Message);
            }
        }
        if ws.closed || failed {
            // The app's later sends raise; the connection closes once the
            // close frame is written (the app's End then finds it closing).
            if let State::Busy(f) = std::mem::replace(&mut conn.state, State::Closing) {
                f.abandon();
            }
        }
        conn.ws = Some(ws);
        Progress::Open
    }

    /// Parse and receive what has been read; dispatch complete requests.
    fn advance(&mut self, index: usize, draining: bool) -> Progress {
        let limits = self.plan.limits.clone();
        let tmp_dir = std::sync::Arc::clone(&self.plan.tmp_dir);
        loop {
            let Some(conn) = self.conns.get_mut(index) else {
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
                    if conn.proxy_pending {
                        match self.read_proxy_header(index) {
                            Some(Progress::Open) => continue,
                            Some(p) => return p,
                            None => return Progress::Open,
                        }
                    }
                    match http::parse_head_reusing(
                        conn.pending_input(),
                        &limits,
                        &mut self.spare_heads,
                    ) {
                        Ok(Parsed::Partial) => {
                            // Part of a head: a slow client (or a
                            // slowloris) must not hold a thread's place.
                            conn.claim = false;
                            if conn.eof {
                                // Truncated request: close without a response.
                                self.close(index);
                                return Progress::Closed;
                            }
                            return Progress::Open;
                        }
                        Ok(Parsed::Complete(head, used)) => {
                            conn.consume(used);
                            // An asgi app awaits its body: it gets it as it
                            // arrives (a WebSocket handshake with a body
                            // is received whole, as before).
                            if self.async_side.is_some()
                                && http::websocket::upgrade_request(&head).is_none()
                            {
                                if let Some(decoder) = BodyDecoder::new(head.body) {
                                    return self.stream_body(index, head, decoder, draining);
                                }
                            }
                            let Some(conn) = self.conns.get_mut(index) else {
                                return Progress::Closed;
                            };
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
                                        None,
                                    );
                                    return Progress::Open;
                                }
                                Some(r) => {
                                    conn.state = State::Body(Box::new((head, r)));
                                    // It waits for a place among the bodies
                                    // being read (its 100 Continue too); no
                                    // body deadline while the wait is the
                                    // server's doing, and no claim on a
                                    // thread: its request is not ready.
                                    conn.parked = true;
                                    conn.claim = false;
                                    conn.place_until = None;
                                    conn.deadline = None;
                                    self.parked.push_back(self.conns.token(index));
                                    self.admit_bodies();
                                    let Some(conn) = self.conns.get(index) else {
                                        return Progress::Closed;
                                    };
                                    if conn.parked {
                                        return Progress::Open;
                                    }
                                }
                            }
                        }
                        Err(e) => {
                            let line = http::request_line(conn.pending_input());
                            return self.refuse(index, &e, line.as_ref());
                        }
                    }
                }
                State::Body(_) if conn.parked => return Progress::Open,
                State::Body(b) => {
                    let input = &conn.rbuf[conn.rpos..];
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
                                    Ok(body) => self.dispatch(index, head, body, draining, None),
                                    Err(e) => {
                                        tracing::error!("request body: {e}");
                                        conn.queue(http::error_response(500), false);
                                        conn.state = State::Closing;
                                    }
                                }
                                // Its place is free; admitted after the
                                // dispatch, which it may now count against.
                                self.admit_bodies();
                                return Progress::Open;
                            }
                            if conn.eof {
                                self.close(index);
                                return Progress::Closed;
                            }
                            return Progress::Open;
                        }
                        Err(FeedError::Http(e)) => {
                            let head = match std::mem::replace(&mut conn.state, State::Head) {
                                State::Body(b) => Some(b.0),
                                _ => None,
                            };
                            return self.refuse(index, &e, head.as_ref());
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

    /// The PROXY header a connection may start with (`--proxy-protocol`).
    /// `Some(Open)`: looked at, go on parsing; `None`: more bytes needed;
    /// otherwise the connection was refused or closed.
    fn read_proxy_header(&mut self, index: usize) -> Option<Progress> {
        let mode = self.plan.proxy_protocol;
        let conn = self.conns.get_mut(index)?;
        match http::parse_proxy(conn.pending_input(), mode) {
            Ok(http::ProxyParse::NotProxy) => {
                conn.proxy_pending = false;
                Some(Progress::Open)
            }
            Ok(http::ProxyParse::Partial) => {
                conn.claim = false;
                if conn.eof {
                    self.close(index);
                    return Some(Progress::Closed);
                }
                None
            }
            Ok(http::ProxyParse::Done(info, used)) => {
                // Only trusted front ends may say whom a connection is from
                // (a unix-socket peer always may, as in gunicorn).
                let unix = matches!(conn.peer, wsgi::SockAddr::Unix(_));
                if !unix && !wsgi::is_trusted(&conn.peer, &self.plan.proxy_allow) {
                    let ip = conn
                        .peer
                        .tcp()
                        .map(|a| a.ip().to_string())
                        .unwrap_or_default();
                    let e = http::HttpError::ProxyForbidden(ip);
                    return Some(self.refuse(index, &e, None));
                }
                conn.consume(used);
                conn.proxy_pending = false;
                conn.proxy = Some(info);
                Some(Progress::Open)
            }
            Err(e) => Some(self.refuse(index, &e, None)),
        }
    }

    /// Answer a request the parser refused (with `Connection: close`), or
    /// close silently when there is nothing to answer (truncated input).
    /// Logged as gunicorn does: `Invalid request from ip=…: reason` at
    /// WARNING, and an access-log record when the request line was sound.
    fn refuse(
        &mut self,
        index: usize,
        e: &http::HttpError,
        head: Option<&http::RequestHead>,
    ) -> Progress {
        match (e.status(), self.conns.get_mut(index)) {
            (Some(status), Some(conn)) => {
                let peer = conn.client();
                let ip = peer.map(|a| a.ip().to_string()).unwrap_or_default();
                tracing::warn!("Invalid request from ip={ip}: {e}");
                let response = http::error_response(status);
                if let Some(head) = head.filter(|_| crate::logging::access_enabled()) {
                    let status_line = format!("{status} {}", http::reason_phrase(status));
                    crate::logging::access(&crate::logging::AccessRecord {
                        peer,
                        head,
                        status: &status_line,
                        response_headers: &[],
                        body_bytes: http::error_body_len(status) as u64,
                        started: SystemTime::now(),
                        duration: Duration::ZERO,
                    });
                }
                conn.queue(response, false);
                conn.state = State::Closing;
                Progress::Open
            }
            _ => {
                self.close(index);
                Progress::Closed
            }
        }
    }

    /// Hand a request to Python. `upload`: its body, still arriving, is
    /// streamed to the app (asgi) as the event loop decodes it.
    fn dispatch(
        &mut self,
        index: usize,
        head: http::RequestHead,
        body: wsgi::Body,
        draining: bool,
        upload: Option<(BodyDecoder, Arc<crate::asgi::Upload>)>,
    ) {
        let tok = self.conns.token(index);
        let keepalive_enabled = !self.plan.keepalive.is_zero();
        let max_message = self.plan.websocket_max_message;
        let asynchronous = self.async_side.is_some();
        let Some(conn) = self.conns.get_mut(index) else {
            return;
        };
        // An asgi worker serves WebSockets: a bad handshake is refused
        // here, as RFC 6455 says, before any app sees it.
        let upgrade = match asynchronous
            .then(|| http::websocket::upgrade_request(&head))
            .flatten()
        {
            Some(Err(e)) => {
                tracing::debug!("WebSocket handshake refused: {e}");
                conn.queue(e.response(), false);
                conn.state = State::Closing;
                return;
            }
            Some(Ok(u)) => Some(u),
            None => None,
        };
        let ws = upgrade.map(|u| {
            let inbox = Arc::new(crate::asgi::Inbox::default());
            (
                crate::asgi::WsInit {
                    accept: http::websocket::accept_key(&u.key),
                    subprotocols: u.subprotocols,
                    deflate: http::deflate::Agreement::negotiate(&u.extensions),
                    inbox: Arc::clone(&inbox),
                },
                inbox,
            )
        });
        let info = ResponseInfo {
            version: head.version,
            head_request: head.method == "HEAD",
            // Past --max-requests the connection stays alive too: the
            // worker serves until it is retired, and its drain answers the
            // client's next request with `Connection: close` then.
            keep_alive: head.keep_alive && keepalive_enabled && !draining && ws.is_none(),
        };
        let id = self.next_id;
        self.next_id += 1;
        let flight = Arc::new(match &self.async_side {
            Some(side) => Flight::notifying(Arc::clone(side), id),
            None => Flight::default(),
        });
        conn.claim = false;
        conn.reused = conn.served > 0;
        conn.responded = false;
        conn.client_closes = !head.keep_alive;
        conn.response_bytes = 0;
        conn.method = Method::of(&head.method);
        let n = self.in_flight + 1;
        if conn.reused {
            self.reused_in_flight += 1;
        }
        conn.state = State::Busy(Arc::clone(&flight));
        conn.deadline = None;
        // One clock read for the request's times here and in the queue.
        let now = Instant::now();
        conn.dispatched_at = Some(now);
        let upload = upload.map(|(decoder, shared)| {
            // The client is to send the rest: its body deadline runs.
            conn.deadline = Some(now + self.plan.body_timeout);
            conn.upload = Some(Box::new(Uploading {
                id,
                decoder,
                shared: Arc::clone(&shared),
            }));
            shared
        });
        let ws = ws.map(|(init, inbox)| {
            let decoder = http::websocket::Decoder::new(max_message);
            let decoder = match &init.deflate {
                Some(a) => decoder.with_inflater(a.inflater()),
                None => decoder,
            };
            conn.ws = Some(Box::new(WsLink {
                id,
                decoder,
                inbox,
                open: false,
                closed: false,
            }));
            init
        });
        // The request is complete: drop consumed bytes now so the buffer
        // does not grow across a long keep-alive connection.
        conn.compact();
        let req = wsgi::Request {
            head,
            body,
            peer: conn.peer.clone(),
            local: conn.local.clone(),
            proxy: conn.proxy.clone(),
        };
        self.set_in_flight(n);
        let has_body = match &req.body {
            wsgi::Body::Memory(v) => !v.is_empty(),
            wsgi::Body::File { .. } => true,
        };
        // Counted for admitting bodies to be read, which an asgi worker
        // does not do (it streams them).
        if has_body && !asynchronous {
            self.body_flights.insert(tok);
        }
        if asynchronous {
            // Timed from now if the asyncio loop is idle: one that blocked
            // before taking this request is seen as stuck all the same.
            self.heartbeat.mark_busy(0);
        }
        let again = self.jobs.push(Job {
            id,
            token: tok,
            req,
            info,
            flight,
            started: SystemTime::now(),
            queued: now,
            ws,
            upload,
        });
        if let Some(t) = again {
            self.next_poke = Some(self.next_poke.map_or(t, |p| p.min(t)));
        }
    }

    /// An asgi request with a body: to the app at once, with what came with
    /// the head; the rest is streamed to it as it arrives
    /// ([`Self::upload_input`]). A body already here in full goes in one
    /// message, as before.
    fn stream_body(
        &mut self,
        index: usize,
        head: http::RequestHead,
        mut decoder: BodyDecoder,
        draining: bool,
    ) -> Progress {
        let Some(conn) = self.conns.get_mut(index) else {
            return Progress::Closed;
        };
        let mut prefix = Vec::new();
        match decoder.feed(conn.pending_input(), &mut prefix) {
            Ok((used, done)) => {
                conn.consume(used);
                if done {
                    let body = wsgi::Body::Memory(prefix);
                    self.dispatch(index, head, body, draining, None);
                    return Progress::Open;
                }
            }
            Err(e) => return self.refuse(index, &e, Some(&head)),
        }
        // A client that waits for `100 Continue` gets it when the app asks
        // for the body (an app may answer without it).
        let expect = head.expect_continue && prefix.is_empty();
        let shared = Arc::new(crate::asgi::Upload::new(prefix, expect));
        let body = wsgi::Body::Memory(Vec::new());
        self.dispatch(index, head, body, draining, Some((decoder, shared)));
        self.upload_input(index)
    }

    /// Read and decode a streamed body into its app's buffer: reading
    /// pauses while the app is behind (TCP pushes back on the client until
    /// it catches up: `Piece::Resume`), and the app hears of new bytes
    /// through a note. A client that leaves mid-body, or breaks its chunked
    /// framing, is closed: its app's `receive` returns `http.disconnect`.
    fn upload_input(&mut self, index: usize) -> Progress {
        let body_timeout = self.plan.body_timeout;
        let tok = self.conns.token(index);
        let Some(conn) = self.conns.get_mut(index) else {
            return Progress::Closed;
        };
        let Some(mut up) = conn.upload.take() else {
            return Progress::Open;
        };
        let Uploading {
            id,
            decoder,
            shared,
        } = &mut *up;
        let mut told = false;
        let mut progressed = false;
        let mut filled = false;
        let mut broken = None;
        let (mut paused, mut complete) = (shared.paused(), false);
        while !paused {
            if conn.rpos == conn.rbuf.len() {
                // One read per turn, as for every connection: what is left
                // is read on the next (`revisit`).
                if filled || !conn.readable {
                    break;
                }
                filled = true;
                if conn.fill().is_err() {
                    broken = Some(None);
                    break;
                }
                if conn.rpos == conn.rbuf.len() {
                    break;
                }
            }
            let input = &conn.rbuf[conn.rpos..];
            let mut used = 0;
            let pushed = shared.push(|out| {
                let (n, done) = decoder.feed(input, out)?;
                used = n;
                Ok::<_, http::HttpError>(done)
            });
            match pushed {
                Ok(p) => {
                    told |= p.told;
                    progressed |= used > 0;
                    conn.consume(used);
                    (paused, complete) = (p.paused, p.complete);
                    if complete {
                        break;
                    }
                }
                Err(e) => {
                    broken = Some(Some(e));
                    break;
                }
            }
        }
        let id = *id;
        if told {
            if let Some(side) = &self.async_side {
                side.note(id, crate::asgi::Note::Message);
            }
        }
        if let Some(e) = broken {
            if let Some(e) = e {
                let ip = conn
                    .client()
                    .map(|a| a.ip().to_string())
                    .unwrap_or_default();
                tracing::warn!("Invalid request body from ip={ip}: {e}");
            }
            self.close(index);
            return Progress::Closed;
        }
        if complete {
            // What follows is the next request, read after the response.
            conn.deadline = None;
            return Progress::Open;
        }
        if conn.eof && conn.rpos == conn.rbuf.len() {
            // The client left before the end of its body.
            self.close(index);
            return Progress::Closed;
        }
        // No deadline while the app is behind: that wait is the server's.
        if paused {
            conn.deadline = None;
        } else if progressed || conn.deadline.is_none() {
            conn.deadline = Some(Instant::now() + body_timeout);
        }
        if conn.readable && !paused {
            self.revisit.push(tok);
        }
        conn.upload = Some(up);
        Progress::Open
    }

    /// What the Python threads sent since the last wake-up. The threads
    /// that finished rejoin the accept queue (at its back) before any byte
    /// of their answers is written: a client that opens its next
    /// connection as soon as it has its answer must find this worker
    /// behind the idle ones. Joining after the write let that connection
    /// reach the backlog first; the kernel reports a waiting connection to
    /// a listener as it is added, so this worker took it ahead of the idle
    /// worker woken for it, and kept-alive clients piled up on one worker.
    fn on_completions(&mut self, pieces: &mut Vec<(Token, Piece)>) {
        self.completions.drain(pieces, &mut self.spare_heads);
        let mut ended = 0;
        for (tok, p) in pieces.iter() {
            if matches!(p, Piece::End { .. }) {
                ended += 1;
                // No hashing on the common path: most requests have no body.
                if !self.body_flights.is_empty() {
                    self.body_flights.remove(tok);
                }
            }
        }
        if ended > 0 {
            // Those threads are free, whether or not the clients are still
            // there.
            self.set_in_flight(self.in_flight.saturating_sub(ended));
            self.admit_bodies();
            let now = Instant::now();
            self.settle_accepting(now);
            self.admit_for_finished(ended, now);
        }
        let mut batch = pieces.drain(..).peekable();
        while let Some((tok, piece)) = batch.next() {
            // Output followed by more for the same response is only queued:
            // the last piece writes them all, head and body in one
            // `writev`, not one system call per piece.
            let more = matches!(piece, Piece::Bytes(_) | Piece::File { .. })
                && batch.peek().is_some_and(|(next, _)| *next == tok);
            self.on_piece(tok, piece, more);
        }
    }

    fn on_piece(&mut self, tok: Token, piece: Piece, more: bool) {
        let Some(index) = self.slot(tok) else {
            return;
        };
        let keepalive = self.plan.keepalive;
        let draining = self.draining();
        let conn = self.conns.get_mut(index).expect("slot checked");
        let State::Busy(_) = &conn.state else {
            // A response for a request already answered (504 after abort).
            return;
        };
        match piece {
            Piece::Bytes(b) => {
                conn.responded = true;
                conn.response_bytes += b.len();
                conn.queue(b, true);
                if more {
                    return;
                }
            }
            Piece::File { file, offset, len } => {
                conn.response_bytes += len as usize;
                conn.out.push_back(Out::File {
                    file,
                    offset,
                    left: len,
                });
                if more {
                    return;
                }
            }
            Piece::Upgrade => {
                if let Some(ws) = conn.ws.as_mut() {
                    ws.open = true;
                }
                if draining {
                    // Accepted after the stop began: closed at once, as
                    // the others were (once the 101 is out).
                    if self.write_out(index).is_err() {
                        self.close(index);
                        return;
                    }
                    self.websocket_goodbye(
                        index,
                        http::websocket::CLOSE_GOING_AWAY,
                        "server stopping",
                    );
                    self.after_io(tok);
                    return;
                }
            }
            Piece::Resume => {
                // The app asked for a body its client waits to send.
                let owed = conn
                    .upload
                    .as_ref()
                    .is_some_and(|u| u.shared.take_continue());
                if owed && !conn.responded {
                    conn.queue(http::CONTINUE_100.to_vec(), false);
                }
            }
            Piece::End { mut keep_alive } => {
                // Answered before the whole body came: the rest is never
                // read as a request (the response said `Connection: close`).
                if conn.upload.take().is_some() {
                    keep_alive = false;
                }
                if std::mem::take(&mut conn.reused) {
                    self.reused_in_flight -= 1;
                }
                conn.dispatched_at = None;
                conn.served += 1;
                if keep_alive {
                    // The response promised the connection: even when the
                    // worker is stopping, the client may reuse it at once,
                    // so keep it for the grace and answer with close.
                    let idle = if draining {
                        keepalive.min(DRAIN_GRACE)
                    } else {
                        keepalive
                    };
                    conn.state = State::Head;
                    conn.deadline = Some(Instant::now() + idle);
                } else {
                    conn.state = State::Closing;
                }
                self.served += 1;
                self.heartbeat.count_request();
                if self.max_requests > 0 && self.served >= self.max_requests {
                    self.ask_recycle();
                }
            }
        }
        if self.write_out(index).is_err() {
            self.close(index);
            return;
        }
        // A WebSocket's frames may already be buffered (sent right after
        // the handshake), or have waited while the inbox was full; so may
        // a streamed body's bytes.
        if self
            .conns
            .get(index)
            .is_some_and(|c| c.ws.is_some() || c.upload.is_some())
        {
            if let Progress::Closed = self.pump(index) {
                return;
            }
        }
        // A pipelined request may already be buffered, or have arrived on
        // the socket while this one was with Python.
        let draining = self.draining();
        if let Some(conn) = self.conns.get(index) {
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
        let Some(conn) = self.conns.get_mut(index) else {
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
    /// is written, half-close it and linger; close idle ones the client
    /// closed.
    fn after_io(&mut self, tok: Token) {
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
        let conn = self.conns.get_mut(index).expect("slot checked");
        if !conn.out.is_empty() {
            return;
        }
        match conn.state {
            State::Closing => {
                // The client said this was its last request, nothing more
                // has come, and the answer was small enough to leave at
                // once: a client that sent a stray byte now would get a
                // reset, but with the answer already on its way, not
                // queued behind it. Close now, without lingering.
                let small = conn.response_bytes <= FAST_CLOSE_MAX;
                if conn.eof || (conn.client_closes && small && conn.sent_nothing_more()) {
                    self.close(index);
                    return;
                }
                conn.stream.shutdown_write();
                conn.state = State::Lingering;
                conn.deadline = Some(Instant::now() + LINGER);
                // What the client sent meanwhile will bring no new edge.
                let _ = self.pump(index);
            }
            State::Head if conn.pending_input().is_empty() && conn.eof => {
                self.close(index);
            }
            _ => {}
        }
    }

    fn close(&mut self, index: usize) {
        if let Some(conn) = self.conns.remove(index) {
            // No EPOLL_CTL_DEL: closing the socket (dropping `conn`) takes
            // it out of the epoll set, a system call less per connection.
            // Should a child the app forked still hold the socket, its
            // registration outlives the close; the events it may bring
            // carry this connection's token, whose slot generation no
            // longer matches, and are dropped.
            if let State::Busy(f) = &conn.state {
                f.abandon();
            }
            if matches!(conn.state, State::Body(_)) && !conn.parked {
                // Its place among the bodies being read is free.
                self.admit_bodies();
            }
            if conn.reused {
                self.reused_in_flight -= 1;
            }
            if self.conns.len() < self.plan.max_conns {
                self.conn_limit = false;
                self.resume_accepting();
            }
        }
    }

    /// Close connections whose deadline passed.
    fn sweep(&mut self, now: Instant) {
        for i in 0..self.conns.slots() {
            let expired = self
                .conns
                .get(i)
                .is_some_and(|c| c.deadline.is_some_and(|d| now >= d));
            if expired {
                if self.conns.get(i).is_some_and(Conn::owes_request) {
                    self.count(Counter::SlowClient);
                }
                self.close(i);
            }
        }
    }

    fn count(&self, c: Counter) {
        if let Some(t) = self.tally {
            t.count(c);
        }
    }

    /// Give waiting bodies a place to be read in, oldest head first.
    ///
    /// Request bodies are received before Python sees them, so that a slow
    /// upload never holds a thread; but a body received long before a
    /// thread can take it only costs memory (every kept-alive client's
    /// next upload, all at once). So a body is read only for a thread that
    /// will take it: as many at a time as there are threads, counting the
    /// requests with a body already with Python. The rest wait in the
    /// kernel, and their clients feel TCP back-pressure. Reading one body
    /// ahead of the threads bought no req/s on contrib/bench's 1 MiB echo
    /// (8 clients, 1 or 2 sync workers, alternated runs: 1.2-1.8k req/s
    /// either way) and cost 2 MiB of peak RSS per worker (21.5 against
    /// 19.5 MiB; two ahead, 24.5). The kernel holds the first part of a
    /// waiting body anyway (its receive window); the rest arrives once it
    /// is read. A body still arriving after [`PLACE`] leaves its place to
    /// the next one and goes on reading whatever arrives: a slow uploader
    /// never stalls the others for longer.
    fn admit_bodies(&mut self) {
        // Nothing waits: nothing to admit (and no clock read on every End).
        // `reading` is pruned the next time something does.
        if self.parked.is_empty() {
            return;
        }
        let now = Instant::now();
        let conns = &self.conns;
        self.reading.retain(|&tok| {
            conns.find(tok).and_then(|i| conns.get(i)).is_some_and(|c| {
                matches!(c.state, State::Body(_)) && c.place_until.is_some_and(|t| t > now)
            })
        });
        // Tokens of connections closed while parked leave the queue when
        // they reach its front; do not let them pile up meanwhile.
        if self.parked.len() > 2 * self.conns.len() + 16 {
            let conns = &self.conns;
            self.parked.retain(|&tok| {
                conns
                    .find(tok)
                    .and_then(|i| conns.get(i))
                    .is_some_and(|c| c.parked)
            });
        }
        // Counted on requests that carry a body: requests without one are
        // never held back, and must not hold bodies back either. None while
        // every thread has one: the End of a running one makes room.
        let places = self.plan.threads.saturating_sub(self.body_flights.len());
        let body_timeout = self.plan.body_timeout;
        while self.reading.len() < places {
            let Some(tok) = self.parked.pop_front() else {
                return;
            };
            let Some(conn) = self.slot(tok).and_then(|i| self.conns.get_mut(i)) else {
                continue;
            };
            if !std::mem::take(&mut conn.parked) {
                continue;
            }
            conn.deadline = Some(now + body_timeout);
            conn.place_until = Some(now + PLACE);
            // The client waiting for leave to send its body gets it now.
            if let State::Body(b) = &conn.state {
                if b.0.expect_continue && conn.rpos == conn.rbuf.len() {
                    conn.queue(http::CONTINUE_100.to_vec(), false);
                }
            }
            // Bytes may already wait in the kernel or in `rbuf`, with no
            // new edge to announce them.
            conn.readable = true;
            self.reading.push(tok);
            self.revisit.push(tok);
        }
    }

    /// While bodies wait for a place: when the first place held lapses.
    fn next_place_lapse(&self) -> Option<Instant> {
        if self.parked.is_empty() {
            return None;
        }
        self.reading
            .iter()
            .filter_map(|&tok| self.conns.find(tok).and_then(|i| self.conns.get(i)))
            .filter_map(|c| c.place_until)
            .min()
    }

    /// Requests handed to Python threads and not finished changed.
    fn set_in_flight(&mut self, n: usize) {
        self.in_flight = n;
        if let Some(t) = self.tally {
            t.set_in_flight(n);
        }
    }
}
