//! What the other modules consume, built from [`Settings`]: each plan type
//! is defined by the module that uses it, and only `config` knows how a
//! setting becomes part of one, so lower modules never name `config`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Settings, WorkerClass};
use crate::{http, logging, statsd, systemd, wsgi};

/// The logging part of the settings. Journald is used when asked for, or
/// when systemd connected stderr to the journal (`JOURNAL_STREAM` names our
/// stderr).
pub fn log_config(s: &Settings) -> logging::LogConfig {
    logging::LogConfig {
        errorlog: s.errorlog.clone(),
        level: s.loglevel,
        accesslog: s.accesslog.clone(),
        access_log_format: s.access_log_format.clone(),
        journald: s.log_journald || systemd::stderr_is_journal(),
    }
}

/// How the embedded interpreter is set up, in the master (`--preload`,
/// the config file) and in each worker.
/// Where metrics go, if anywhere (`--statsd-host`).
/// What an asgi worker's asyncio side runs with.
pub fn asgi_options(s: &Settings) -> crate::asgi::AsgiOptions {
    crate::asgi::AsgiOptions {
        lifespan: s.asgi_lifespan,
        event_loop: s.asgi_loop,
        root_path: s.root_path.clone(),
        timeout: s.timeout,
        graceful_timeout: s.graceful_timeout,
        disconnect_grace: s.asgi_disconnect_grace_period,
        serve: worker_plan(s).serve,
    }
}

pub fn statsd_config(s: &Settings) -> Option<statsd::Config> {
    s.statsd_host.clone().map(|target| statsd::Config {
        target,
        prefix: s.statsd_prefix.clone(),
        tags: s.dogstatsd_tags.clone(),
    })
}

pub fn interpreter_options(s: &Settings) -> wsgi::InterpreterOptions {
    wsgi::InterpreterOptions {
        pythonpath: s.pythonpath.clone(),
    }
}

/// Python threads per worker: 1 for `-k sync`, `--threads` for gthread.
pub fn python_threads(s: &Settings) -> usize {
    match s.worker_class {
        WorkerClass::Sync | WorkerClass::Asgi => 1,
        WorkerClass::Gthread => s.threads.max(1),
    }
}

/// What every worker of a generation runs with.
#[derive(Debug, Clone)]
pub struct WorkerPlan {
    pub threads: usize,
    pub limits: http::Limits,
    /// What the WSGI environ needs from the settings.
    pub serve: wsgi::ServeContext,
    pub keepalive: Duration,
    pub timeout: Duration,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub queue_timeout: Duration,
    /// `--worker-connections`.
    pub max_conns: usize,
    /// Where request bodies too big for memory are spilled. Shared, not
    /// cloned: the event loop takes it for every request it parses.
    pub tmp_dir: std::sync::Arc<Path>,
    /// `--proxy-protocol`, and who may send a PROXY header.
    pub proxy_protocol: http::ProxyMode,
    pub proxy_allow: Vec<wsgi::AllowIp>,
    /// `--reload`: how to watch, and the extra files to watch.
    pub reload: Option<(super::ReloadEngine, Vec<PathBuf>)>,
    /// `--websocket-max-message-size` (0 = no limit).
    pub websocket_max_message: usize,
}

pub fn worker_plan(s: &Settings) -> WorkerPlan {
    let threads = python_threads(s);
    WorkerPlan {
        // An asgi worker takes on requests up to its connection limit: its
        // one loop awaits many at once.
        threads: match s.worker_class {
            WorkerClass::Asgi => s.worker_connections.max(1),
            _ => threads,
        },
        limits: http::Limits {
            request_line: s.limit_request_line,
            fields: s.limit_request_fields,
            field_size: s.limit_request_field_size,
            permit_unconventional_http_method: s.permit_unconventional_http_method,
            casefold_http_method: s.casefold_http_method,
            permit_obsolete_folding: s.permit_obsolete_folding,
            strip_header_spaces: s.strip_header_spaces,
            header_map: s.header_map,
        },
        serve: wsgi::ServeContext {
            multithread: threads > 1,
            multiprocess: s.workers > 1,
            forwarded_allow_ips: s.forwarded_allow_ips.clone(),
            secure_scheme_headers: Some(s.secure_scheme_headers.clone()),
        },
        keepalive: s.keepalive,
        timeout: s.timeout,
        header_timeout: s.header_timeout,
        body_timeout: s.body_timeout,
        queue_timeout: s.queue_timeout,
        max_conns: s.worker_connections,
        tmp_dir: s
            .worker_tmp_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir)
            .into(),
        proxy_protocol: s.proxy_protocol,
        proxy_allow: s.proxy_allow_ips.clone(),
        reload: s
            .reload
            .then(|| (s.reload_engine, s.reload_extra_files.clone())),
        websocket_max_message: s.websocket_max_message_size,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_config_from_defaults() {
        let s = crate::config::resolve(&[], &|_| None).unwrap();
        let c = log_config(&s);
        assert_eq!(c.errorlog, "-");
        assert_eq!(c.level, logging::LogLevel::Info);
        assert_eq!(c.accesslog, None);
        assert_eq!(c.access_log_format, logging::DEFAULT_ACCESS_FORMAT);
    }
}
