//! The asgi worker class: the same event loop as sync and gthread (it owns
//! every socket, parses, receives bodies, writes), with one asyncio loop on
//! the process's main thread in place of the pool of Python threads.
//!
//! Requests reach the asyncio loop through the job queue and an eventfd
//! (`pool::AsyncSide`); responses come back through the same sink and
//! completions as WSGI's, in its non-blocking form. Lifespan startup runs
//! before the event loop starts accepting (the master hears the worker has
//! booted only then), shutdown after the event loop has drained.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use pyo3::Python;

use super::pool::{AsyncSide, Completions, Job, JobQueue, Sink};
use super::{Class, Worker, WorkerSpec};
use crate::asgi::{self, Incoming, Note};
use crate::config::Settings;
use crate::exit;
use crate::heartbeat::Heartbeat;
use crate::http::RequestHead;
use crate::metrics::{Counter, Method, Tally};
use crate::wsgi::{self, App, Outcome, SharedSink};

pub struct Asgi;

impl Class for Asgi {
    fn name(&self) -> &'static str {
        "asgi"
    }

    /// One loop: the heartbeat's one "thread" is the asyncio loop, whose
    /// turns it records.
    fn python_threads(&self, _: &Settings) -> usize {
        1
    }

    fn run(&self, spec: WorkerSpec<'_>) -> ! {
        let code = match super::boot(&spec) {
            Ok((mut worker, app, _, _)) => {
                crate::hooks::post_worker_init();
                serve(&spec, &mut worker, &app)
            }
            Err(code) => code,
        };
        super::leave(&spec, code)
    }
}

fn serve(spec: &WorkerSpec<'_>, worker: &mut Worker<'_>, app: &App) -> i32 {
    let side = worker
        .async_side
        .clone()
        .expect("an asgi worker has an async side");
    let feed = Feed {
        jobs: Arc::clone(&worker.jobs),
        side,
        completions: Arc::clone(&worker.completions),
        heartbeat: Arc::clone(spec.heartbeat),
        tally: spec.tally.cloned(),
        logging: crate::logging::access_enabled(),
    };
    let opts = crate::config::asgi_options(spec.settings);
    let driver = match asgi::Driver::start(app, Box::new(feed), opts) {
        Ok(d) => d,
        Err(msg) => {
            tracing::error!("{msg}");
            spec.heartbeat.set_error(&msg);
            return exit::WORKER_BOOT_ERROR;
        }
    };
    let jobs = Arc::clone(&worker.jobs);
    let (heartbeat, boot_pipe) = (spec.heartbeat, spec.boot_pipe);
    let code = std::thread::scope(|scope| {
        let server = super::start(scope, "event-loop".to_owned(), || {
            heartbeat.set_booted();
            let _ = nix::unistd::write(boot_pipe, &[1]);
            let code = super::crash_on_panic("the event loop", || worker.serve());
            // The driver's serve returns once it sees the queue closed.
            jobs.close();
            code
        });
        if let Err(e) = super::crash_on_panic("the asyncio loop", || driver.serve()) {
            // The event loop cannot be joined without its consumer.
            tracing::error!("Worker crashed: the asyncio loop failed: {e}");
            crate::sys::process::exit_now(1);
        }
        server.join().unwrap_or(1)
    });
    driver.shutdown();
    code
}

/// Where the asyncio loop takes requests from.
struct Feed {
    jobs: Arc<JobQueue>,
    side: Arc<AsyncSide>,
    completions: Arc<Completions>,
    heartbeat: Arc<Heartbeat>,
    tally: Option<Arc<Tally>>,
    logging: bool,
}

impl Feed {
    fn incoming(&self, py: Python<'_>, job: Job) -> Incoming {
        let Job {
            id,
            token,
            req,
            info,
            flight,
            started,
            queued,
            ws,
            upload,
        } = job;
        if let Some(t) = &self.tally {
            t.queue_wait(queued.elapsed());
        }
        let sink = Arc::new(Mutex::new(
            Sink::new(
                token,
                info,
                Arc::clone(&flight),
                Arc::clone(&self.completions),
                self.logging,
            )
            .non_blocking(),
        ));
        let shared: SharedSink = sink.clone();
        let hooks = crate::hooks::RequestHooks::begin(py, &req.head, &shared);
        let to_app = hooks.as_ref().map_or_else(|| shared.clone(), |h| h.sink());
        let peer = req.client();
        let reply = Ending {
            sink,
            hooks,
            head: self.logging.then(|| req.head.clone()),
            peer,
            method: Method::of(&req.head.method),
            started,
            clock: Instant::now(),
            tally: self.tally.clone(),
            ended: false,
        };
        Incoming {
            id,
            req,
            sink: to_app,
            reply: Box::new(reply),
            ws,
            upload,
        }
    }
}

impl asgi::Feed for Feed {
    fn fd(&self) -> i32 {
        self.side.fd()
    }

    fn take(&self, py: Python<'_>) -> (Vec<Incoming>, Vec<(u64, Note)>, bool) {
        // Notes first: taking them resets the eventfd, so a job queued
        // after this rings it again.
        let notes = self.side.take_notes();
        let (jobs, closed) = self.jobs.take_all();
        let incoming = jobs.into_iter().map(|j| self.incoming(py, j)).collect();
        (incoming, notes, closed)
    }

    fn beat(&self, busy: bool) {
        self.heartbeat.set_busy(0, busy);
    }
}

/// How a response ends: the access log, statsd, metrics and
/// `post_request`, then the End marker that frees the connection.
struct Ending {
    sink: Arc<Mutex<Sink>>,
    hooks: Option<crate::hooks::RequestHooks>,
    head: Option<RequestHead>,
    peer: Option<SocketAddr>,
    method: Method,
    started: SystemTime,
    clock: Instant,
    tally: Option<Arc<Tally>>,
    /// `end` ran (else the drop ends the response, so the event loop
    /// frees the connection whatever happened on the Python side).
    ended: bool,
}

impl Drop for Ending {
    fn drop(&mut self) {
        if !self.ended {
            self.sink
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .end(Outcome::Aborted);
        }
    }
}

impl asgi::Reply for Ending {
    fn end(&mut self, py: Python<'_>, outcome: Outcome) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let took = self.clock.elapsed();
        if let Some(h) = self.hooks.take() {
            h.finish(py, None);
        }
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        if crate::statsd::enabled() || self.tally.is_some() {
            let status = sink.code();
            crate::statsd::request(status, took);
            if let Some(t) = &self.tally {
                t.request(self.method, status, took);
            }
        }
        if let Some(head) = &self.head {
            crate::logging::access(&crate::logging::AccessRecord {
                peer: self.peer,
                head,
                status: &sink.status,
                response_headers: &sink.headers,
                body_bytes: sink.body_bytes,
                started: self.started,
                duration: took,
            });
        }
        sink.end(outcome);
    }

    fn full(&self) -> bool {
        self.sink
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .flight()
            .full()
    }

    fn gone(&self) -> bool {
        self.sink
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .flight()
            .is_gone()
    }

    fn timed_out(&mut self) {
        if let Some(t) = &self.tally {
            t.count(Counter::Timeout);
        }
    }

    fn raw(&mut self, bytes: Vec<u8>, upgrade: bool) -> Result<(), wsgi::SinkError> {
        self.sink
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .raw(bytes, upgrade)
    }

    fn resume(&self) {
        self.sink.lock().unwrap_or_else(|e| e.into_inner()).resume();
    }

    fn close_after(&mut self) {
        self.sink
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .close_after();
    }

    fn give_back(&mut self, head: RequestHead) {
        self.sink
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .give_back(head);
    }

    fn set_status(&mut self, status: &str) {
        self.sink
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .set_status(status);
    }
}
