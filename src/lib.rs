//! corral: a pre-fork HTTP server for Python WSGI applications, built to live
//! inside systemd.
//!
//! The crate builds the Python extension module `corral._corral` that pip
//! installs (the `corral` console script calls [`entry`]), and the library
//! that integration tests and fuzz targets reach. Each module owns one thing:
//!
//! - `entry`: the command users run, from the command line to an exit code.
//! - [`config`]: command line, environment and config file into one
//!   validated [`config::Settings`] value. No syscalls.
//! - [`master`]: the arbiter, a single-threaded loop that forks and supervises
//!   workers and turns signals into actions.
//! - [`worker`]: the per-worker event loop that owns every socket, and the
//!   pool of Python threads it hands complete requests to.
//! - [`http`]: HTTP/1.x parsing and response framing. Knows nothing of Python.
//! - [`wsgi`]: app loading, environ, `start_response`, `wsgi.input`,
//!   `wsgi.file_wrapper`.
//! - [`hooks`]: the Python config file and gunicorn's server hooks. With
//!   `wsgi`, the only modules that touch pyo3.
//! - [`systemd`]: socket activation and sd_notify.
//! - [`signals`], [`heartbeat`], [`logging`]: one concern each.
//! - [`sys`]: the only home of `unsafe`, fork, exec and raw file descriptors.

#![deny(unsafe_code)]
#![forbid(unsafe_op_in_unsafe_fn)]

pub mod config;
mod entry;
pub mod heartbeat;
pub mod hooks;
pub mod http;
pub mod logging;
pub mod master;
pub mod signals;
#[allow(unsafe_code)]
pub mod sys;
pub mod systemd;
pub mod worker;
pub mod wsgi;

/// Exit codes shared with gunicorn, so supervisors and scripts that know
/// gunicorn read ours the same way.
pub mod exit {
    /// Clean exit.
    pub const OK: i32 = 0;
    /// Configuration error, bind failure, anything fatal at start-up.
    pub const FAILURE: i32 = 1;
    /// A worker failed before it finished booting.
    pub const WORKER_BOOT_ERROR: i32 = 3;
    /// The application could not be imported.
    pub const APP_LOAD_ERROR: i32 = 4;
}
