//! Logging: the error log (gunicorn's format, to stderr or a file) and the
//! access log (gunicorn's `--access-logformat` atoms). The only module that
//! writes log output; everything else uses `tracing` macros.
//!
//! Conventions for the rest of the crate:
//! - Levels map to gunicorn's: `error!` ERROR, `warn!` WARNING, `info!`
//!   INFO, `debug!` DEBUG; `trace!` is never printed.
//! - CRITICAL (which `tracing` lacks) is an error event carrying the field
//!   `critical = true`: `tracing::error!(critical = true, "WORKER TIMEOUT (pid:{pid})")`.
//!   It prints `[CRITICAL]` and is the only thing `--log-level critical` lets
//!   through.
//! - Other fields are appended as ` key=value` (quoted when they contain
//!   blanks): `info!(pid, "Booting worker")` gives `... Booting worker pid=12`.
//! - Fields spelled in capitals are journal fields (`WORKER_PID`, `SIGNAL`,
//!   `EXIT_STATUS`, and the access record's `REQUEST_METHOD`, `STATUS`, ...):
//!   the journald layer sends them as they are, so `journalctl -u app
//!   WORKER_PID=1234` works; the text log leaves them out (the message
//!   already says it).
//! - Every line is one `write(2)`; the PID in a line is the writing process's,
//!   read at write time, so nothing needs redoing after `fork`.
//!
//! Layout: `sink` (destinations, reopen), `error_log` (the `tracing` layer
//! and line format), `access` (format compiler and renderer), `journal` (the
//! native journald layer, used when stderr is the journal or with
//! `--log-journald`).

mod access;
mod error_log;
mod journal;
mod sink;

use std::net::SocketAddr;
use std::sync::{Arc, Once, RwLock};
use std::time::{Duration, SystemTime};

use tracing_subscriber::layer::SubscriberExt as _;

use access::Format;
pub use error_log::ErrorLayer;
use error_log::{ErrorLog, Target};
use sink::{Dest, Sink};

/// gunicorn's default access-log format.
pub const DEFAULT_ACCESS_FORMAT: &str =
    r#"%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s""#;

/// The error log's threshold (`--log-level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum LogLevel {
    Debug,
    #[default]
    Info,
    Warning,
    Error,
    Critical,
}

/// What the logging module needs from the settings (built by
/// `config::log_config`).
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// `-` for stderr, else a path.
    pub errorlog: String,
    pub level: LogLevel,
    /// `None` = no access log, `-` = stdout, else a path.
    pub accesslog: Option<String>,
    pub access_log_format: String,
    /// Log natively to the journal (`--log-journald`, or stderr is the
    /// journal already).
    pub journald: bool,
}

/// The target of access events handed to the journal.
pub const ACCESS_TARGET: &str = "corral::access";

/// Check an access-log format (used by the config validator, so a bad
/// format is a start-up error naming the flag).
pub fn validate_access_format(format: &str) -> Result<(), String> {
    Format::compile(format).map(|_| ())
}

struct AccessLog {
    format: Format,
    sink: Sink,
}

/// Everything `init` set up; replaced whole by a later `init` (reload).
struct State {
    error: ErrorLog,
    access: Option<AccessLog>,
    journald: bool,
}

static STATE: RwLock<Option<Arc<State>>> = RwLock::new(None);
static INSTALL: Once = Once::new();

fn current() -> Option<Arc<State>> {
    STATE.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Install the global subscriber. Called once by the master before forking;
/// calling it again (on reload) swaps in the new files, level and format.
pub fn init(cfg: &LogConfig) -> std::io::Result<()> {
    let access = match &cfg.accesslog {
        None => None,
        Some(spec) => Some(AccessLog {
            format: Format::compile(&cfg.access_log_format).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("access log format: {e}"),
                )
            })?,
            sink: Sink::open(spec, Dest::Stdout)?,
        }),
    };
    let journald = cfg.journald && journal::available();
    let state = State {
        error: ErrorLog {
            sink: Sink::open(&cfg.errorlog, Dest::Stderr)?,
            level: cfg.level,
            // stderr would only carry the same events a second time.
            muted: journald && cfg.errorlog == "-",
        },
        access,
        journald,
    };
    *STATE.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(state));
    let mut result = Ok(());
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::registry()
            .with(ErrorLayer {
                target: Target::Global,
            })
            .with(journald.then(journal::JournalLayer::new).flatten());
        if let Err(e) = tracing::subscriber::set_global_default(subscriber) {
            result = Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, e));
        }
    });
    // The level may have changed: make callsites ask the layer again.
    tracing::callsite::rebuild_interest_cache();
    result
}

/// Reopen log files (SIGUSR1). Both are tried; the first error is returned.
pub fn reopen() -> std::io::Result<()> {
    let Some(state) = current() else {
        return Ok(());
    };
    let error = state.error.sink.reopen();
    let access = state.access.as_ref().map_or(Ok(()), |a| a.sink.reopen());
    error.and(access)
}

/// Write raw text to the error log (`wsgi.errors`), as one write.
pub fn write_error_stream(text: &[u8]) {
    match current() {
        Some(state) => state.error.sink.write_line(text),
        None => {
            if let Ok(sink) = Sink::open("-", Dest::Stderr) {
                sink.write_line(text);
            }
        }
    }
}

/// One access-log record, written after the response has been handed over.
#[derive(Debug)]
pub struct AccessRecord<'a> {
    pub peer: Option<SocketAddr>,
    pub head: &'a crate::http::RequestHead,
    pub status: &'a str,
    pub response_headers: &'a [(String, String)],
    pub body_bytes: u64,
    pub started: SystemTime,
    pub duration: Duration,
}

/// Whether events go to the journal natively.
pub fn journald_active() -> bool {
    current().is_some_and(|s| s.journald)
}

/// Whether an access log is configured (so callers can skip building records).
pub fn access_enabled() -> bool {
    current().is_some_and(|s| s.access.is_some())
}

/// Write one access-log line.
pub fn access(rec: &AccessRecord<'_>) {
    let Some(state) = current() else { return };
    let Some(log) = &state.access else { return };
    thread_local! {
        // Reused per thread so the hot path does not allocate per request.
        static LINE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    LINE.with(|line| {
        let mut line = line.borrow_mut();
        line.clear();
        log.format.render(rec, &mut line);
        if state.journald {
            journal::access(rec, &line);
            // The journal has the record; stdout is the journal too.
            if log.sink.is_std() {
                return;
            }
        }
        log.sink.write_line(&line);
    });
}

#[cfg(test)]
mod tests;
