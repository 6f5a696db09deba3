//! gunicorn's settings that are not rows of [`super::table::SETTINGS`]:
//! the server hooks (Python callables, only settable from a config file)
//! and the settings corral deliberately does not implement.
//!
//! Every gunicorn setting name (23 through 27) is therefore known: a config
//! file or command line that uses an unimplemented one gets a message that
//! names it and says why, instead of the setting being ignored. A value that
//! asks for exactly what corral does anyway (`daemon = False`,
//! `sendfile = True`) is accepted, so the templates people copy
//! keep loading.

/// Where a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookSide {
    Master,
    Worker,
}

/// gunicorn's server hooks, in the order of [`HOOKS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    OnStarting,
    OnReload,
    WhenReady,
    PreFork,
    PostFork,
    PostWorkerInit,
    WorkerInt,
    WorkerAbort,
    PreExec,
    PreRequest,
    PostRequest,
    ChildExit,
    WorkerExit,
    NworkersChanged,
    OnExit,
}

impl Hook {
    /// Every hook, in the order of [`HOOKS`].
    pub const ALL: [Hook; 15] = [
        Hook::OnStarting,
        Hook::OnReload,
        Hook::WhenReady,
        Hook::PreFork,
        Hook::PostFork,
        Hook::PostWorkerInit,
        Hook::WorkerInt,
        Hook::WorkerAbort,
        Hook::PreExec,
        Hook::PreRequest,
        Hook::PostRequest,
        Hook::ChildExit,
        Hook::WorkerExit,
        Hook::NworkersChanged,
        Hook::OnExit,
    ];

    pub fn spec(self) -> &'static HookSpec {
        &HOOKS[self as usize]
    }

    /// The name a config file defines it under.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    pub fn named(name: &str) -> Option<Hook> {
        Hook::ALL.into_iter().find(|h| h.name() == name)
    }
}

/// One server hook, called with gunicorn's arguments at gunicorn's moment.
#[derive(Debug)]
pub struct HookSpec {
    pub name: &'static str,
    /// The Python signature as documented, e.g. `(server, worker)`.
    pub signature: &'static str,
    /// How many positional arguments the callable receives.
    pub arity: usize,
    pub side: HookSide,
    pub when: &'static str,
}

pub static HOOKS: &[HookSpec] = &[
    HookSpec {
        name: "on_starting",
        signature: "(server)",
        arity: 1,
        side: HookSide::Master,
        when: "Once, before the master opens its sockets. Raising stops start-up (exit 1).",
    },
    HookSpec {
        name: "on_reload",
        signature: "(server)",
        arity: 1,
        side: HookSide::Master,
        when: "On SIGHUP, after the configuration was re-read, before new workers start.",
    },
    HookSpec {
        name: "when_ready",
        signature: "(server)",
        arity: 1,
        side: HookSide::Master,
        when: "Once the sockets are open, before the first worker is forked. Raising stops \
               start-up (exit 1).",
    },
    HookSpec {
        name: "pre_fork",
        signature: "(server, worker)",
        arity: 2,
        side: HookSide::Master,
        when: "In the master just before a worker is forked (`worker.pid` is still `None`).",
    },
    HookSpec {
        name: "post_fork",
        signature: "(server, worker)",
        arity: 2,
        side: HookSide::Worker,
        when: "In the new worker right after the fork.",
    },
    HookSpec {
        name: "post_worker_init",
        signature: "(worker)",
        arity: 1,
        side: HookSide::Worker,
        when: "In the worker once the application is loaded, before it serves.",
    },
    HookSpec {
        name: "worker_int",
        signature: "(worker)",
        arity: 1,
        side: HookSide::Worker,
        when: "In the worker when it receives SIGINT or SIGQUIT (quick shutdown).",
    },
    HookSpec {
        name: "worker_abort",
        signature: "(worker)",
        arity: 1,
        side: HookSide::Worker,
        when: "In the worker when it receives SIGABRT (the master's timeout).",
    },
    HookSpec {
        name: "pre_exec",
        signature: "(server)",
        arity: 1,
        side: HookSide::Master,
        when: "On SIGUSR2, in the master just before the new master is started.",
    },
    HookSpec {
        name: "pre_request",
        signature: "(worker, req)",
        arity: 2,
        side: HookSide::Worker,
        when: "On the Python thread serving a request, before the application is called.",
    },
    HookSpec {
        name: "post_request",
        signature: "(worker, req, environ, resp)",
        arity: 4,
        side: HookSide::Worker,
        when: "On the Python thread serving a request, after the response was produced.",
    },
    HookSpec {
        name: "child_exit",
        signature: "(server, worker)",
        arity: 2,
        side: HookSide::Master,
        when: "In the master after a worker process was reaped.",
    },
    HookSpec {
        name: "worker_exit",
        signature: "(server, worker)",
        arity: 2,
        side: HookSide::Worker,
        when: "In the worker just before it exits.",
    },
    HookSpec {
        name: "nworkers_changed",
        signature: "(server, new_value, old_value)",
        arity: 3,
        side: HookSide::Master,
        when: "In the master when the target number of workers changed (TTIN, TTOU, reload).",
    },
    HookSpec {
        name: "on_exit",
        signature: "(server)",
        arity: 1,
        side: HookSide::Master,
        when: "In the master just before it exits.",
    },
];

/// A gunicorn setting corral does not implement.
#[derive(Debug)]
pub struct Unsupported {
    pub name: &'static str,
    /// gunicorn's command-line spellings, so the command line gets the same
    /// explanation as a config file.
    pub flags: &'static [&'static str],
    /// Values (as a config file's Python value prints, lower-cased: `false`,
    /// `none`, `1000`) that ask for what corral does anyway.
    pub harmless: &'static [&'static str],
    pub why: &'static str,
}

const TLS: &str = "corral does not terminate TLS; put a TLS proxy (nginx, haproxy, caddy) in front";
const DAEMON: &str = "under systemd (or any supervisor) the server must stay in the foreground";
const SYSLOG: &str = "log to stderr (the journal) or use --log-journald";
const PASTE: &str = "Paste Deploy applications must be wrapped in a WSGI module";
const HTTP2: &str = "corral speaks HTTP/1.x; terminate HTTP/2 in the proxy in front";
const DIRTY: &str = "gunicorn's dirty arbiters have no counterpart in corral";
const PYLOG: &str = "corral's logging is native; use --log-level, --error-logfile, \
                     --access-logfile, --access-logformat or --log-journald";

macro_rules! unsupported {
    ($($name:literal [$($flag:literal),*] [$($ok:literal),*] $why:expr;)*) => {
        &[$(Unsupported { name: $name, flags: &[$($flag),*], harmless: &[$($ok),*], why: $why }),*]
    };
}

pub static UNSUPPORTED: &[Unsupported] = unsupported! {
    "spew" ["--spew"] ["false"] "line tracing of the server is not available";
    "sendfile" ["--no-sendfile"] ["true", "none"]
        "corral always uses sendfile for wsgi.file_wrapper";
    "daemon" ["-D", "--daemon"] ["false"] DAEMON;
    "initgroups" ["--initgroups"] ["false"]
        "supplementary groups are not changed when dropping privileges";
    "tmp_upload_dir" [] ["none"] "request bodies are buffered by corral itself";
    "forwarder_headers" ["--forwarder-headers"] ["script_name,path_info"]
        "only the X-Forwarded scheme headers (secure_scheme_headers) are honoured";
    "disable_redirect_access_to_syslog" ["--disable-redirect-access-to-syslog"] ["false"] SYSLOG;
    "capture_output" ["--capture-output"] ["false"]
        "stdout and stderr of the application go where corral's own stderr goes (the journal)";
    "logger_class" ["--logger-class"] ["gunicorn.glogging.logger"] PYLOG;
    "logconfig" ["--log-config"] ["none"] PYLOG;
    "logconfig_json" ["--log-config-json"] ["none"] PYLOG;
    "syslog_addr" ["--log-syslog-to"] [] SYSLOG;
    "syslog" ["--log-syslog"] ["false"] SYSLOG;
    "syslog_prefix" ["--log-syslog-prefix"] ["none"] SYSLOG;
    "syslog_facility" ["--log-syslog-facility"] ["user"] SYSLOG;
    "enable_stdio_inheritance" ["-R", "--enable-stdio-inheritance"] ["false"]
        "corral's workers always inherit stdio";
    "default_proc_name" [] [] "set proc_name instead";
    "paste" ["--paste", "--paster"] ["none"] PASTE;
    "raw_paste_global_conf" ["--paste-global"] ["[]"] PASTE;
    "ssl_context" [] [] TLS;
    "keyfile" ["--keyfile"] ["none"] TLS;
    "certfile" ["--certfile"] ["none"] TLS;
    "ssl_version" ["--ssl-version"] [] TLS;
    "cert_reqs" ["--cert-reqs"] ["0"] TLS;
    "ca_certs" ["--ca-certs"] ["none"] TLS;
    "suppress_ragged_eofs" ["--suppress-ragged-eofs"] ["true"] TLS;
    "do_handshake_on_connect" ["--do-handshake-on-connect"] ["false"] TLS;
    "ciphers" ["--ciphers"] ["none"] TLS;
    "permit_unconventional_http_version" ["--permit-unconventional-http-version"] ["false"]
        "only HTTP/1.0 and HTTP/1.1 are served";
    "tolerate_dangerous_framing" ["--tolerate-dangerous-framing"] ["false"]
        "ambiguous request framing is always refused (request smuggling)";
    "protocol" ["--protocol"] ["http"] "only HTTP is served (no uwsgi or fastcgi protocol)";
    "uwsgi_allow_ips" ["--uwsgi-allow-from"] [] "the uwsgi protocol is not implemented";
    "http_protocols" ["--http-protocols"] ["h1"] HTTP2;
    "http2_max_concurrent_streams" ["--http2-max-concurrent-streams"] [] HTTP2;
    "http2_initial_window_size" ["--http2-initial-window-size"] [] HTTP2;
    "http2_max_frame_size" ["--http2-max-frame-size"] [] HTTP2;
    "http2_max_header_list_size" ["--http2-max-header-list-size"] [] HTTP2;
    "http2_cleartext" ["--http2-cleartext"] ["off"] HTTP2;
    "http_parser" ["--http-parser"] ["auto"]
        "corral parses HTTP itself (httparse plus RFC 9112 checks); there is no choice to make";
    "enable_backlog_metric" ["--enable-backlog-metric"] ["false"]
        "the listen backlog is not sampled for statsd";
    "dirty_apps" ["--dirty-app"] ["[]"] DIRTY;
    "dirty_workers" ["--dirty-workers"] ["0"] DIRTY;
    "dirty_timeout" ["--dirty-timeout"] [] DIRTY;
    "dirty_threads" ["--dirty-threads"] [] DIRTY;
    "dirty_graceful_timeout" ["--dirty-graceful-timeout"] [] DIRTY;
    "on_dirty_starting" [] [] DIRTY;
    "dirty_post_fork" [] [] DIRTY;
    "dirty_worker_init" [] [] DIRTY;
    "dirty_worker_exit" [] [] DIRTY;
};

pub fn unsupported(name: &str) -> Option<&'static Unsupported> {
    UNSUPPORTED.iter().find(|u| u.name == name)
}

pub fn unsupported_flag(flag: &str) -> Option<&'static Unsupported> {
    UNSUPPORTED.iter().find(|u| u.flags.contains(&flag))
}

impl Unsupported {
    /// The one-line refusal.
    pub fn refusal(&self) -> String {
        format!(
            "gunicorn setting '{}' is not supported by corral: {}",
            self.name, self.why
        )
    }

    /// Whether `raw` (a config-file value rendered as text) only asks for
    /// corral's own behaviour.
    pub fn is_harmless(&self, raw: &str) -> bool {
        let v = raw.trim().to_ascii_lowercase();
        self.harmless.iter().any(|h| *h == v)
    }
}

#[cfg(test)]
mod hook_order {
    use super::*;

    #[test]
    fn the_enum_follows_the_table() {
        assert_eq!(Hook::ALL.len(), HOOKS.len());
        for (i, h) in Hook::ALL.into_iter().enumerate() {
            assert_eq!(h as usize, i);
            assert_eq!(Hook::named(HOOKS[i].name), Some(h));
        }
    }
}
