//! corral: a pre-fork HTTP server for Python WSGI applications, built to live
//! inside systemd.
//!
//! The crate builds the Python extension module `corral._corral` that pip
//! installs (the `corral` console script calls [`entry`]), and the library
//! that integration tests and fuzz targets reach. Each module owns one thing:
//!
//! - `entry`: the command users run, from the command line to an exit code.
//! - [`config`]: command line, environment and config file into one
//!   validated [`config::Settings`] value, and the plans other modules
//!   consume (`config/plan.rs`). No syscalls.
//! - [`master`]: the arbiter, a single-threaded loop that forks and supervises
//!   workers and turns signals into actions.
//! - [`worker`]: the per-worker event loop that owns every socket, and the
//!   pool of Python threads it hands complete requests to.
//! - [`http`]: HTTP/1.x parsing and response framing. Knows nothing of Python.
//! - [`wsgi`]: app loading, environ, `start_response`, `wsgi.input`,
//!   `wsgi.file_wrapper`.
//! - [`asgi`]: the ASGI 3.0 scope, `receive`/`send`, and the asyncio
//!   driver of `-k asgi` workers.
//! - [`startup`]: command line and config file into the settings the
//!   master runs with (at start and on SIGHUP), `raw_env`, and the
//!   `--check-config`/`--print-config` exits.
//! - [`hooks`]: running the Python config file, and gunicorn's server
//!   hooks. With `wsgi`, the only modules that touch pyo3.
//! - [`systemd`]: socket activation and sd_notify.
//! - [`control`]: the control socket's path, framing and client (`corral
//!   ctl`); the master answers on it (`master/control.rs`).
//! - [`statsd`]: gunicorn's statsd metrics.
//! - [`metrics`]: Prometheus metrics, counted by workers in shared memory
//!   and served by the master (`master/metrics.rs`).
//! - [`signals`], [`heartbeat`], [`logging`]: one concern each.
//! - [`sys`]: the only home of `unsafe`, fork, exec and raw file descriptors.
//!
//! A module names only modules below it (docs/architecture.md, "Layers"):
//! entry, master, worker, startup, hooks, config, asgi, wsgi, logging, then http, systemd,
//! signals, heartbeat, control, statsd and metrics, then sys.

#![deny(unsafe_code)]
#![forbid(unsafe_op_in_unsafe_fn)]

pub mod asgi;
pub mod config;
pub mod control;
mod entry;
pub mod heartbeat;
pub mod hooks;
pub mod http;
pub mod logging;
pub mod master;
pub mod metrics;
pub mod signals;
pub mod startup;
pub mod statsd;
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

#[cfg(test)]
mod layers {
    /// The layers, highest first: a module may name only modules in lower
    /// layers, or its own (`exit` is for everyone).
    const LAYERS: &[&[&str]] = &[
        &["entry"],
        &["master"],
        &["worker"],
        &["startup"],
        &["hooks"],
        &["config"],
        &["asgi"],
        &["wsgi"],
        &["logging"],
        &[
            "http",
            "systemd",
            "signals",
            "heartbeat",
            "control",
            "statsd",
            "metrics",
        ],
        &["sys"],
    ];

    fn layer(module: &str) -> Option<usize> {
        LAYERS.iter().position(|l| l.contains(&module))
    }

    /// Every `crate::NAME` a source file of `module` mentions.
    fn named_by(module: &str) -> Vec<(String, String)> {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![];
        let dir = src.join(module);
        if dir.is_dir() {
            for e in std::fs::read_dir(&dir).unwrap() {
                files.push(e.unwrap().path());
            }
        } else {
            files.push(src.join(format!("{module}.rs")));
        }
        let mut out = vec![];
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for (i, _) in text.match_indices("crate::") {
                let rest = &text[i + 7..];
                // `crate::{a, b::c}` names each of them.
                let names: Vec<&str> = match rest.strip_prefix('{') {
                    Some(list) => list[..list.find('}').unwrap_or(0)]
                        .split(',')
                        .map(|n| n.trim())
                        .collect(),
                    None => vec![rest],
                };
                for n in names {
                    let name: String = n
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    out.push((f.display().to_string(), name));
                }
            }
        }
        out
    }

    #[test]
    fn modules_name_only_lower_layers() {
        let mut wrong = vec![];
        for module in LAYERS.iter().flat_map(|l| l.iter()) {
            let own = layer(module).unwrap();
            for (file, name) in named_by(module) {
                match layer(&name) {
                    Some(l) if l > own || name == *module => {}
                    None if name == "exit" => {}
                    _ => wrong.push(format!("{file} names crate::{name}")),
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "a module names a higher one:\n{}",
            wrong.join("\n")
        );
    }
}
