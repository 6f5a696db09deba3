//! Settings: the command line and the environment (and, through the same
//! table, a Python config file) resolved into one validated [`Settings`]
//! value. No syscalls happen here beyond reading environment variables handed
//! in by the caller, so everything is unit-testable.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindSpec {
    /// `HOST:PORT` or `[V6]:PORT`, resolved to one or more addresses.
    Tcp(Vec<SocketAddr>, String),
    /// `unix:PATH`.
    Unix(PathBuf),
    /// `fd://N`: an already-open listening socket.
    Fd(i32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerClass {
    Sync,
    Gthread,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

/// A network (CIDR) or `*`, for `--forwarded-allow-ips`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowIp {
    Any,
    Net(std::net::IpAddr, u8),
    /// Unix-socket peers (gunicorn spells this as part of the list too).
    Unix,
}

/// Every setting corral honours, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub app: Option<String>,
    pub bind: Vec<BindSpec>,
    pub backlog: i32,
    pub workers: usize,
    pub worker_class: WorkerClass,
    pub threads: usize,
    pub timeout: Duration,
    pub graceful_timeout: Duration,
    pub keepalive: Duration,
    pub max_requests: u64,
    pub max_requests_jitter: u64,
    pub limit_request_line: usize,
    pub limit_request_fields: usize,
    pub limit_request_field_size: usize,
    pub preload_app: bool,
    pub chdir: Option<PathBuf>,
    pub pythonpath: Vec<String>,
    pub raw_env: Vec<(String, String)>,
    pub proc_name: Option<String>,
    pub pidfile: Option<PathBuf>,
    pub accesslog: Option<String>,
    pub access_log_format: String,
    pub errorlog: String,
    pub loglevel: LogLevel,
    pub forwarded_allow_ips: Vec<AllowIp>,
    pub reuse_port: bool,
    pub user: Option<u32>,
    pub group: Option<u32>,
    pub umask: u32,
    pub worker_tmp_dir: Option<PathBuf>,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    Run(Box<Settings>),
    Help(String),
    Version(String),
}

/// A bad flag, value or combination, as one line for the user.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Resolve the command line. `env` looks up environment variables.
pub fn parse(
    _args: &[OsString],
    _env: &dyn Fn(&str) -> Option<String>,
) -> Result<Command, ConfigError> {
    todo!()
}
