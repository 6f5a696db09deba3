//! Logging: the error log (gunicorn's format, to stderr or a file) and the
//! access log (gunicorn's `--access-logformat` atoms). The only module that
//! writes log output; everything else uses `tracing` macros.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use crate::config::LogLevel;

/// What the logging module needs from the settings.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// `-` for stderr, else a path.
    pub errorlog: String,
    pub level: LogLevel,
    /// `None` = no access log, `-` = stdout, else a path.
    pub accesslog: Option<String>,
    pub access_log_format: String,
}

/// Install the global subscriber. Called once by the master before forking.
pub fn init(_cfg: &LogConfig) -> std::io::Result<()> {
    todo!()
}

/// Reopen log files (SIGUSR1).
pub fn reopen() -> std::io::Result<()> {
    todo!()
}

/// Write raw text to the error log (`wsgi.errors`).
pub fn write_error_stream(_text: &[u8]) {
    todo!()
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

/// Whether an access log is configured (so callers can skip building records).
pub fn access_enabled() -> bool {
    todo!()
}

/// Write one access-log line.
pub fn access(_rec: &AccessRecord<'_>) {
    todo!()
}
