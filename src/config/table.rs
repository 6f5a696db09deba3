//! The settings table: the single description of every setting corral
//! accepts. The command-line parser, `--help`, `*_CMD_ARGS`, validation,
//! the Python config-file mapping (by `name`) and `docs/configuration.md`
//! are all driven from [`SETTINGS`], so none of them can drift apart. The
//! [`Settings`] struct is declared by the same entries (each field beside
//! its row), so adding a setting is one entry in this file.

use std::path::Path;

use super::effective::{int, ips, opt_str, path, Shown};
use super::{accounts, value as v, AllowIp, BindSpec, LogLevel, WorkerClass};
use std::path::PathBuf;
use std::time::Duration;

/// How a setting takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A switch: present on the command line means `true`; a config file
    /// may give `true`/`false`.
    Flag,
    /// One value; when given several times the last one wins.
    Value,
    /// Repeatable; every occurrence adds to a list, and a list from a
    /// higher-precedence source replaces the whole lower one.
    Append,
    /// The positional argument (the application).
    Positional,
    /// A value that may be left out: alone, the flag means this value
    /// (`--proxy-protocol` is `--proxy-protocol auto`, as in gunicorn).
    OptionalValue(&'static str),
}

/// What a Python config file may give for a setting (`None` always means
/// "keep the default").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileValue {
    Bool,
    Int,
    Str,
    /// A list (or one string): every item is one occurrence.
    List,
    /// A list of strings, or one comma-separated string.
    CommaList,
    /// A dict of strings, passed on as `key=value,...`.
    Dict,
    /// A dict of JSON values, passed on as JSON text.
    Json,
    /// A string, or `True`/`False`.
    StrOrBool,
}

/// Where a setting appears in `--help` and in the reference, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    ConfigFile,
    Application,
    ServerSocket,
    WorkerProcesses,
    Security,
    ServerMechanics,
    Logging,
    ProcessNaming,
}

impl Section {
    pub const ALL: [Section; 8] = [
        Section::ConfigFile,
        Section::Application,
        Section::ServerSocket,
        Section::WorkerProcesses,
        Section::Security,
        Section::ServerMechanics,
        Section::Logging,
        Section::ProcessNaming,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Section::ConfigFile => "Config file",
            Section::Application => "Application",
            Section::ServerSocket => "Server socket",
            Section::WorkerProcesses => "Worker processes",
            Section::Security => "Request limits",
            Section::ServerMechanics => "Server mechanics",
            Section::Logging => "Logging",
            Section::ProcessNaming => "Process naming",
        }
    }
}

/// A setting's value when no source gives one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Default {
    /// Unset (the field stays `None`, empty or `false`).
    Unset,
    /// This text, validated like any user-supplied value.
    Text(&'static str),
    /// `template` with `{}` replaced by the environment variable `var` when
    /// it is set and non-empty, else `fallback` (the `$PORT`,
    /// `$WEB_CONCURRENCY` and `$FORWARDED_ALLOW_IPS` conventions).
    FromEnv {
        var: &'static str,
        template: &'static str,
        fallback: &'static str,
    },
}

/// Apply one validated raw value to the settings, or say what was expected.
pub type Apply = fn(&mut Settings, &str) -> Result<(), String>;

/// One row of the table.
#[derive(Debug)]
pub struct Setting {
    /// The name used in a Python config file (`workers = 4`), as gunicorn.
    pub name: &'static str,
    /// Command-line spellings, short first; the last is the canonical one
    /// used in messages. Empty for the positional.
    pub flags: &'static [&'static str],
    pub kind: Kind,
    pub file_value: FileValue,
    /// Placeholder for the value in `--help` (`INT`, `ADDRESS`).
    pub meta: &'static str,
    pub default: Default,
    pub section: Section,
    /// One line for `--help`.
    pub summary: &'static str,
    /// Further paragraphs for the reference document (may be empty).
    pub details: &'static str,
    /// The effective value, typed (`--print-config`, `server.cfg.NAME`).
    pub show: fn(&Settings) -> Shown,
    pub apply: Apply,
}

impl Setting {
    /// The spelling used in error messages: the long flag, or the name for
    /// settings that have none.
    pub fn display_name(&self) -> &'static str {
        match self.kind {
            Kind::Positional => "APP",
            _ => self.flags.last().copied().unwrap_or(self.name),
        }
    }
}

/// The setting called `name` in a config file (`bind`, `workers`, ...).
pub fn by_name(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// The setting spelled exactly `flag` on the command line.
pub fn by_flag(flag: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.flags.contains(&flag))
}

fn count(raw: &str) -> Result<usize, String> {
    v::bounded(v::non_negative(raw)?)
}

fn seconds(raw: &str) -> Result<std::time::Duration, String> {
    Ok(std::time::Duration::from_secs(v::non_negative(raw)?))
}

/// Declares every setting once: its field in [`Settings`] (type and doc)
/// next to its row in [`SETTINGS`], so the struct and the table cannot
/// drift apart and adding a setting is one entry here.
macro_rules! settings {
    ($( $(#[$doc:meta])* $field:ident : $ty:ty => $row:expr ),* $(,)?) => {
        /// Every setting corral honours, validated. `Default` is only the
        /// blank state (zeros, empty, unset) that [`super::resolve`] starts
        /// from before it applies each setting's given value or default;
        /// use `resolve` to get real settings.
        #[derive(Debug, Clone, Default)]
        pub struct Settings {
            $( $(#[$doc])* pub $field: $ty, )*
        }

        pub static SETTINGS: &[Setting] = &[ $( $row ),* ];
    };
}

settings! {
    /// The config file named by `-c` (as given), if any.
    config: Option<String> => Setting {
        name: "config",
        flags: &["-c", "--config"],
        kind: Kind::Value,
        meta: "CONFIG",
        file_value: FileValue::Str,
        default: Default::Unset,
        section: Section::ConfigFile,
        summary: "A gunicorn-style Python config file: PATH, file:PATH or python:MODULE.",
        details: "The file is executed in the master's Python interpreter; its module-level names are \
                  setting names (`workers = 4`) and server hooks (`def post_fork(server, \
                  worker): ...`). Without this option `./corral.conf.py` is read if it exists, \
                  else `./gunicorn.conf.py`. Names starting with `_`, imported modules, classes \
                  and helper functions are ignored; any other unknown name is an error, and so \
                  is a gunicorn setting corral does not implement (see the end of this page). \
                  Only meaningful on the command line or in `*_CMD_ARGS`. SIGHUP re-reads it.",
        show: |s| opt_str(&s.config),
        apply: |s, raw| {
            s.config = Some(v::non_empty(raw)?);
            Ok(())
        },
    },
    check_config: bool => Setting {
        name: "check_config",
        flags: &["--check-config"],
        kind: Kind::Flag,
        meta: "",
        file_value: FileValue::Bool,
        default: Default::Unset,
        section: Section::ConfigFile,
        summary: "Check the configuration and the application import, then exit (0 or 1).",
        details: "",
        show: |s| Shown::Bool(s.check_config),
        apply: |s, raw| {
            s.check_config = v::boolean(raw)?;
            Ok(())
        },
    },
    print_config: bool => Setting {
        name: "print_config",
        flags: &["--print-config"],
        kind: Kind::Flag,
        meta: "",
        file_value: FileValue::Bool,
        default: Default::Unset,
        section: Section::ConfigFile,
        summary: "Print the effective settings, one `name = value` per line, and exit.",
        details: "",
        show: |s| Shown::Bool(s.print_config),
        apply: |s, raw| {
            s.print_config = v::boolean(raw)?;
            Ok(())
        },
    },
    app: Option<String> => Setting {
        name: "wsgi_app",
        flags: &[],
        kind: Kind::Positional,
        meta: "APP",
        file_value: FileValue::Str,
        default: Default::Unset,
        section: Section::Application,
        summary: "The WSGI application: MODULE:VARIABLE, MODULE or MODULE:FACTORY(ARGS).",
        details: "Given as the one positional argument. `MODULE` alone means the variable \
                  `application` in it; `MODULE:FACTORY(ARGS)` calls the factory with literal \
                  arguments and serves what it returns.",
        show: |s| opt_str(&s.app),
        apply: |s, raw| {
            s.app = Some(v::app(raw)?);
            Ok(())
        },
    },
    bind: Vec<BindSpec> => Setting {
        name: "bind",
        flags: &["-b", "--bind"],
        kind: Kind::Append,
        meta: "ADDRESS",
        file_value: FileValue::List,
        default: Default::FromEnv {
            var: "PORT",
            template: "0.0.0.0:{}",
            fallback: "127.0.0.1:8000",
        },
        section: Section::ServerSocket,
        summary: "The socket to bind; repeat to listen on several.",
        details: "`HOST`, `HOST:PORT`, `[IPV6]:PORT`, `unix:PATH` or `fd://N` (an inherited, \
                  already listening descriptor). A host without a port listens on 8000; a \
                  hostname listens on every address it resolves to. Under systemd socket \
                  activation the inherited sockets are used instead and only `fd://` entries \
                  are kept.",
        show: |s| Shown::List(
            s.bind
                .iter()
                .map(|b| match b {
                    BindSpec::Tcp(_, shown) => shown.clone(),
                    BindSpec::Unix(p) => format!("unix:{}", p.display()),
                    BindSpec::Fd(n) => format!("fd://{n}"),
                })
                .collect(),
        ),
        apply: |s, raw| {
            s.bind.push(v::bind(raw)?);
            Ok(())
        },
    },
    backlog: i32 => Setting {
        name: "backlog",
        flags: &["--backlog"],
        kind: Kind::Value,
        meta: "INT",
        file_value: FileValue::Int,
        default: Default::Text("2048"),
        section: Section::ServerSocket,
        summary: "The maximum number of pending connections.",
        details: "Passed to `listen(2)`; the kernel caps it at `net.core.somaxconn`.",
        show: |s| int(s.backlog),
        apply: |s, raw| {
            s.backlog = v::bounded(v::non_negative(raw)?)?;
            Ok(())
        },
    },
    reuse_port: bool => Setting {
        name: "reuse_port",
        flags: &["--reuse-port"],
        kind: Kind::Flag,
        meta: "",
        file_value: FileValue::Bool,
        default: Default::Unset,
        section: Section::ServerSocket,
        summary: "Set SO_REUSEPORT on listening sockets.",
        details: "",
        show: |s| Shown::Bool(s.reuse_port),
        apply: |s, raw| {
            s.reuse_port = v::boolean(raw)?;
            Ok(())
        },
    },
    workers: usize => Setting {
        name: "workers",
        flags: &["-w", "--workers"],
        kind: Kind::Value,
        meta: "INT",
        file_value: FileValue::Int,
        default: Default::FromEnv {
            var: "WEB_CONCURRENCY",
            template: "{}",
            fallback: "1",
        },
        section: Section::WorkerProcesses,
        summary: "The number of worker processes.",
        details: "A common starting point is two to four per CPU core. Changed at run time \
                  with SIGTTIN and SIGTTOU.",
        show: |s| int(s.workers),
        apply: |s, raw| {
            s.workers = v::bounded(v::positive(raw)?)?;
            Ok(())
        },
    },
    worker_class: WorkerClass => Setting {
        name: "worker_class",
        flags: &["-k", "--worker-class"],
        kind: Kind::Value,
        meta: "STRING",
        file_value: FileValue::Str,
        default: Default::Text("sync"),
        section: Section::WorkerProcesses,
        summary: "The type of worker: sync or gthread (WSGI), or asgi (ASGI 3.0).",
        details: "gunicorn's spellings `egg:gunicorn#sync` and \
                  `gunicorn.workers.sync.SyncWorker` (and the gthread and asgi equivalents) are \
                  accepted, and so are `uvicorn.workers.UvicornWorker`, \
                  `uvicorn.workers.UvicornH11Worker` and `uvicorn_worker.UvicornWorker`, which \
                  are served by asgi. gevent, eventlet and tornado are not supported. As in \
                  gunicorn, `sync` with more than one thread becomes `gthread`.",
        show: |s| Shown::Str(
            match s.worker_class {
                WorkerClass::Sync => "sync",
                WorkerClass::Gthread => "gthread",
                WorkerClass::Asgi => "asgi",
            }
            .into(),
        ),
        apply: |s, raw| {
            s.worker_class = v::worker_class(raw)?;
            Ok(())
        },
    },
    threads: usize => Setting {
        name: "threads",
        flags: &["--threads"],
        kind: Kind::Value,
        meta: "INT",
        file_value: FileValue::Int,
        default: Default::Text("1"),
        section: Section::WorkerProcesses,
        summary: "The number of threads per worker for handling requests.",
        details: "More than one implies the gthread worker class.",
        show: |s| int(s.threads),
        apply: |s, raw| {
            s.threads = v::bounded(v::positive(raw)?)?;
            Ok(())
        },
    },
    max_requests: u64 => Setting {
        name: "max_requests",
        flags: &["--max-requests"],
        kind: Kind::Value,
        meta: "INT",
        file_value: FileValue::Int,
        default: Default::Text("0"),
        section: Section::WorkerProcesses,
        summary: "Restart a worker after this many requests (0 = never).",
        details: "A simple guard against memory leaks in the application. The worker keeps \
                  serving until its replacement does, and one worker is replaced at a time, so \
                  capacity never drops (see docs/lifecycle.md, Recycling).",
        show: |s| int(s.max_requests),
        apply: |s, raw| {
            s.max_requests = v::non_negative(raw)?;
            Ok(())
        },
    },
    max_requests_jitter: u64 => Setting {
        name: "max_requests_jitter",
        flags: &["--max-requests-jitter"],
        kind: Kind::Value,
        meta: "INT",
        file_value: FileValue::Int,
        default: Default::Text("0"),
        section: Section::WorkerProcesses,
        summary: "Add up to this many requests, at random, to each worker's max-requests.",
        details: "Spreads the restarts of workers started together.",
        show: |s| int(s.max_requests_jitter),
        apply: |s, raw| {
            s.max_requests_jitter = v::non_negative(raw)?;
            Ok(())
        },
    },
    /// RSS ceiling per worker in MiB; 0 = none.
    max_worker_memory: u64 => Setting {
        name: "max_worker_memory",
        flags: &["--max-worker-memory"],
        kind: Kind::Value,
        meta: "MIB",
        file_value: FileValue::Int,
        default: Default::Text("0"),
        section: Section::WorkerProcesses,
        summary: "Recycle a worker whose resident memory exceeds this many MiB (0 = no limit).",
        details: "The master checks each worker's RSS every second; a worker over the limit is \
                  replaced, then retired gracefully once its replacement serves, so a leaking \
                  app cannot grow without bound. Not a gunicorn setting (uWSGI's reload-on-rss, \
                  granian's --workers-max-rss).",
        show: |s| int(s.max_worker_memory),
        apply: |s, raw| {
            s.max_worker_memory = v::non_negative(raw)?;
            Ok(())
        },
    },
    timeout: Duration => Setting {
        name: "timeout",
        flags: &["-t", "--timeout"],
        kind: Kind::Value,
        meta: "INT",
        file_value: FileValue::Int,
        default: Default::Text("30"),
        section: Section::WorkerProcesses,
        summary: "Abort a worker whose event loop, or any of whose requests, is stuck this many seconds (0 = never).",
        details: "The stuck request's client gets 504 Gateway Timeout, the worker logs every \
                  Python thread's stack, its other requests finish, and it is replaced. Applies \
                  to every thread of a gthread worker, unlike gunicorn.",
        show: |s| int(s.timeout.as_secs()),
        apply: |s, raw| {
            s.timeout = seconds(raw)?;
            Ok(())
        },
    },
    graceful_timeout: Duration => Setting {
        name: "graceful_timeout",
        flags: &["--graceful-timeout"],
        kind: Kind::Value,
        meta: "INT",
        file_value: FileValue::Int,
        default: Default::Text("30"),
        section: Section::WorkerProcesses,
        summary: "Seconds a worker gets to finish its requests when stopping or restarting.",
        details: "After this the worker is killed. Keep systemd's `TimeoutStopSec` longer.",
        show: |s| int(s.graceful_timeout.as_secs()),
        apply: |s, raw| {
            s.graceful_timeout = seconds(raw)?;
            Ok(())
        },
    },
    keepalive: Duration => Setting {
        name: "keepalive",
        flags: &["--keep-alive"],
        kind: Kind::Value,
        meta: "INT",
        file_value: FileValue::Int,
        default: Default::Text("2"),
        section: Section::WorkerProcesses,
        summary: "Seconds to wait for the next request on a keep-alive connection (0 = no keep-alive).",
        details: "Both worker classes keep connections alive (gunicorn's sync worker does \
                  not): an idle connection costs the event loop a few hundred bytes, never a \
                  Python thread.",
        show: |s| int(s.keepalive.as_secs()),
        apply: |s, raw| {
            s.keepalive = seconds(raw)?;
            Ok(())
        },
    },
    worker_connections: usize => Setting {
        name: "worker_connections",
        flags: &["--worker-connections"],
        kind: Kind::Value,
        meta: "INT",
        file_value: FileValue::Int,
        default: Default::Text("1000"),
        section: Section::WorkerProcesses,
        summary: "Most open client connections per worker.",
        details: "At the limit the worker makes room for a new client by closing an idle \
                  keep-alive connection, or else the connection that has waited longest for \
                  its request head (silent or trickling), so such clients cannot lock \
                  others out.",
        show: |s| int(s.worker_connections),
        apply: |s, raw| {
            s.worker_connections = v::positive(raw)? as usize;
            Ok(())
        },
    },
    header_timeout: Duration => Setting {
        name: "header_timeout",
        flags: &["--header-timeout"],
        kind: Kind::Value,
        meta: "INT",
        file_value: FileValue::Int,
        default: Default::Text("10"),
        section: Section::WorkerProcesses,
        summary: "Seconds a client has to send a complete request head.",
        details: "Counted from the connection's first byte, or from the first byte of the \
                  next request on a keep-alive connection; a client that takes longer is \
                  disconnected (slowloris).",
        show: |s| int(s.header_timeout.as_secs()),
        apply: |s, raw| {
            s.header_timeout = seconds(raw)?.max(std::time::Duration::from_secs(1));
            Ok(())
        },
    },
    body_timeout: Duration => Setting {
        name: "body_timeout",
        flags: &["--body-timeout"],
        kind: Kind::Value,
        meta: "INT",
        file_value: FileValue::Int,
        default: Default::Text("30"),
        section: Section::WorkerProcesses,
        summary: "Seconds a request body may stall between two reads.",
        details: "Bodies are received in full before the app runs; a client that stops \
                  sending for this long is disconnected.",
        show: |s| int(s.body_timeout.as_secs()),
        apply: |s, raw| {
            s.body_timeout = seconds(raw)?.max(std::time::Duration::from_secs(1));
            Ok(())
        },
    },
    queue_timeout: Duration => Setting {
        name: "queue_timeout",
        flags: &["--queue-timeout"],
        kind: Kind::Value,
        meta: "INT",
        file_value: FileValue::Int,
        default: Default::Text("0"),
        section: Section::WorkerProcesses,
        summary: "Answer 503 to a request that waited this many seconds for a Python thread (0 = never).",
        details: "Sheds load instead of queueing without bound: the request gets \
                  `503 Service Unavailable` with `Retry-After`, and the app never sees it. \
                  Off by default because gunicorn queues indefinitely and an app behind a \
                  load balancer that retries elsewhere is the case where shedding helps; \
                  set it to a few seconds there.",
        show: |s| int(s.queue_timeout.as_secs()),
        apply: |s, raw| {
            s.queue_timeout = seconds(raw)?;
            Ok(())
        },
    },
    limit_request_line: usize => Setting {
        name: "limit_request_line",
        flags: &["--limit-request-line"],
        kind: Kind::Value,
        meta: "INT",
        file_value: FileValue::Int,
        default: Default::Text("4094"),
        section: Section::Security,
        summary: "The longest request line accepted, in bytes.",
        details: "0 means the built-in maximum of 8190 bytes, as in gunicorn; so do larger \
                  values. Longer lines are answered with 414.",
        show: |s| int(s.limit_request_line),
        apply: |s, raw| {
            s.limit_request_line = count(raw)?;
            Ok(())
        },
    },
    limit_request_fields: usize => Setting {
        name: "limit_request_fields",
        flags: &["--limit-request-fields"],
        kind: Kind::Value,
        meta: "INT",
        file_value: FileValue::Int,
        default: Default::Text("100"),
        section: Section::Security,
        summary: "The most header fields accepted in a request.",
        details: "More are answered with 431.",
        show: |s| int(s.limit_request_fields),
        apply: |s, raw| {
            s.limit_request_fields = count(raw)?;
            Ok(())
        },
    },
    limit_request_field_size: usize => Setting {
        name: "limit_request_field_size",
        // gunicorn's flag really is spelled with an underscore; the dashed
        // form is what people type when they guess.
        flags: &["--limit-request-field-size", "--limit-request-field_size"],
        kind: Kind::Value,
        file_value: FileValue::Int,
        meta: "INT",
        default: Default::Text("8190"),
        section: Section::Security,
        summary: "The largest header field accepted, in bytes.",
        details: "Larger fields are answered with 431.",
        show: |s| int(s.limit_request_field_size),
        apply: |s, raw| {
            s.limit_request_field_size = count(raw)?;
            Ok(())
        },
    },
    forwarded_allow_ips: Vec<AllowIp> => Setting {
        name: "forwarded_allow_ips",
        flags: &["--forwarded-allow-ips"],
        kind: Kind::Value,
        meta: "STRING",
        file_value: FileValue::CommaList,
        default: Default::FromEnv {
            var: "FORWARDED_ALLOW_IPS",
            template: "{}",
            fallback: "127.0.0.1,::1",
        },
        section: Section::Security,
        summary: "Front-end addresses trusted to set the X-Forwarded-* headers.",
        details: "A comma-separated list of addresses and CIDR networks (`10.0.0.0/8`), `unix` \
                  for peers on a Unix socket, or `*` to trust everyone (only behind a proxy \
                  that overwrites these headers).",
        show: |s| ips(&s.forwarded_allow_ips),
        apply: |s, raw| {
            s.forwarded_allow_ips = v::allow_ips(raw)?;
            Ok(())
        },
    },
    /// `(HEADER, value)` pairs, header names upper-case.
    secure_scheme_headers: Vec<(String, String)> => Setting {
        name: "secure_scheme_headers",
        flags: &[],
        kind: Kind::Value,
        meta: "DICT",
        file_value: FileValue::Dict,
        default: Default::Text(
            "X-FORWARDED-PROTOCOL=ssl,X-FORWARDED-PROTO=https,X-FORWARDED-SSL=on",
        ),
        section: Section::Security,
        summary: "Headers from a trusted front end that mark a request as HTTPS.",
        details: "Config file only, as in gunicorn: a dict such as `{'X-FORWARDED-PROTO': \
                  'https'}`. When a trusted peer (`forwarded_allow_ips`) sends one of these \
                  headers with the given value, `wsgi.url_scheme` is `https`; headers that \
                  contradict each other are answered with 400. An empty dict turns this off.",
        show: |s| Shown::Dict(s.secure_scheme_headers.clone()),
        apply: |s, raw| {
            s.secure_scheme_headers = v::scheme_headers(raw)?;
            Ok(())
        },
    },
    proxy_protocol: crate::http::ProxyMode => Setting {
        name: "proxy_protocol",
        flags: &["--proxy-protocol"],
        kind: Kind::OptionalValue("auto"),
        meta: "MODE",
        file_value: FileValue::StrOrBool,
        default: Default::Text("off"),
        section: Section::Security,
        summary: "Read a PROXY protocol header (HAProxy's) at the start of each connection: \
                  off, v1, v2 or auto.",
        details: "The header says whom the connection is really from: `REMOTE_ADDR` and \
                  `REMOTE_PORT`, the access log and the journal then show that client, and the \
                  environ gets `PROXY_PROTOCOL` (`TCP4`, `TCP6`, `LOCAL`, `UNSPEC`), \
                  `PROXY_ADDR` and `PROXY_PORT`. The header is optional, as in gunicorn: a \
                  connection that starts with HTTP is served with its own peer address. Only \
                  peers in `--proxy-allow-from` may send one. A config file may say `True` \
                  (`auto`) or `False` (`off`).",
        show: |s| Shown::Str(s.proxy_protocol.as_str().to_owned()),
        apply: |s, raw| {
            s.proxy_protocol = v::proxy_mode(raw)?;
            Ok(())
        },
    },
    proxy_allow_ips: Vec<AllowIp> => Setting {
        name: "proxy_allow_ips",
        flags: &["--proxy-allow-from"],
        kind: Kind::Value,
        meta: "STRING",
        file_value: FileValue::CommaList,
        default: Default::Text("127.0.0.1,::1"),
        section: Section::Security,
        summary: "Front-end addresses allowed to use the PROXY protocol.",
        details: "Addresses or networks (`10.0.0.0/8`), comma-separated, or `*` for any. A \
                  PROXY header from any other peer is answered `403 Forbidden`. Connections \
                  on a unix socket are always allowed, as in gunicorn.",
        show: |s| ips(&s.proxy_allow_ips),
        apply: |s, raw| {
            s.proxy_allow_ips = v::allow_ips(raw)?;
            Ok(())
        },
    },
    header_map: crate::http::HeaderMap => Setting {
        name: "header_map",
        flags: &["--header-map"],
        kind: Kind::Value,
        meta: "STRING",
        file_value: FileValue::Str,
        default: Default::Text("drop"),
        section: Section::Security,
        summary: "What to do with request header names containing `_`: drop, refuse or dangerous.",
        details: "`drop` leaves them out of the environ (they could otherwise impersonate a \
                  header spelled with `-`), `refuse` answers 400, `dangerous` passes them on.",
        show: |s| Shown::Str(
            match s.header_map {
                crate::http::HeaderMap::Drop => "drop",
                crate::http::HeaderMap::Refuse => "refuse",
                crate::http::HeaderMap::Dangerous => "dangerous",
            }
            .into(),
        ),
        apply: |s, raw| {
            s.header_map = v::header_map(raw)?;
            Ok(())
        },
    },
    permit_obsolete_folding: bool => Setting {
        name: "permit_obsolete_folding",
        flags: &["--permit-obsolete-folding"],
        kind: Kind::Flag,
        meta: "",
        file_value: FileValue::Bool,
        default: Default::Unset,
        section: Section::Security,
        summary: "Accept obsolete folded header lines instead of answering 400.",
        details: "",
        show: |s| Shown::Bool(s.permit_obsolete_folding),
        apply: |s, raw| {
            s.permit_obsolete_folding = v::boolean(raw)?;
            Ok(())
        },
    },
    strip_header_spaces: bool => Setting {
        name: "strip_header_spaces",
        flags: &["--strip-header-spaces"],
        kind: Kind::Flag,
        meta: "",
        file_value: FileValue::Bool,
        default: Default::Unset,
        section: Section::Security,
        summary: "Strip spaces between a header name and its colon instead of answering 400.",
        details: "Dangerous behind a proxy that reads such headers differently.",
        show: |s| Shown::Bool(s.strip_header_spaces),
        apply: |s, raw| {
            s.strip_header_spaces = v::boolean(raw)?;
            Ok(())
        },
    },
    permit_unconventional_http_method: bool => Setting {
        name: "permit_unconventional_http_method",
        flags: &["--permit-unconventional-http-method"],
        kind: Kind::Flag,
        meta: "",
        file_value: FileValue::Bool,
        default: Default::Unset,
        section: Section::Security,
        summary: "Accept any token as a method, not only 3 to 20 upper-case letters.",
        details: "",
        show: |s| Shown::Bool(s.permit_unconventional_http_method),
        apply: |s, raw| {
            s.permit_unconventional_http_method = v::boolean(raw)?;
            Ok(())
        },
    },
    casefold_http_method: bool => Setting {
        name: "casefold_http_method",
        flags: &["--casefold-http-method"],
        kind: Kind::Flag,
        meta: "",
        file_value: FileValue::Bool,
        default: Default::Unset,
        section: Section::Security,
        summary: "Upper-case lower-case methods instead of answering 400.",
        details: "",
        show: |s| Shown::Bool(s.casefold_http_method),
        apply: |s, raw| {
            s.casefold_http_method = v::boolean(raw)?;
            Ok(())
        },
    },
    preload_app: bool => Setting {
        name: "preload_app",
        flags: &["--preload"],
        kind: Kind::Flag,
        meta: "",
        file_value: FileValue::Bool,
        default: Default::Unset,
        section: Section::ServerMechanics,
        summary: "Load the application in the master before forking workers.",
        details: "Saves memory and start-up time. On SIGHUP the master imports the app's own \
                  modules afresh before forking the new workers (gunicorn keeps the old code); \
                  if the new code fails to import, the old workers keep serving.",
        show: |s| Shown::Bool(s.preload_app),
        apply: |s, raw| {
            s.preload_app = v::boolean(raw)?;
            Ok(())
        },
    },
    chdir: Option<PathBuf> => Setting {
        name: "chdir",
        flags: &["--chdir"],
        kind: Kind::Value,
        meta: "DIR",
        file_value: FileValue::Str,
        default: Default::Unset,
        section: Section::ServerMechanics,
        summary: "Change to this directory before loading the application.",
        details: "",
        show: |s| path(&s.chdir),
        apply: |s, raw| {
            s.chdir = Some(v::path(raw)?);
            Ok(())
        },
    },
    pythonpath: Vec<String> => Setting {
        name: "pythonpath",
        flags: &["--pythonpath"],
        kind: Kind::Value,
        meta: "STRING",
        file_value: FileValue::CommaList,
        default: Default::Unset,
        section: Section::ServerMechanics,
        summary: "Comma-separated directories to add to the Python path.",
        details: "",
        show: |s| Shown::List(s.pythonpath.clone()),
        apply: |s, raw| {
            s.pythonpath = v::comma_list(raw);
            Ok(())
        },
    },
    raw_env: Vec<(String, String)> => Setting {
        name: "raw_env",
        flags: &["-e", "--env"],
        kind: Kind::Append,
        meta: "ENV",
        file_value: FileValue::List,
        default: Default::Unset,
        section: Section::ServerMechanics,
        summary: "Set an environment variable for the application (KEY=VALUE); repeatable.",
        details: "",
        show: |s| Shown::List(s.raw_env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        apply: |s, raw| {
            s.raw_env.push(v::env_pair(raw)?);
            Ok(())
        },
    },
    pidfile: Option<PathBuf> => Setting {
        name: "pidfile",
        flags: &["-p", "--pid"],
        kind: Kind::Value,
        meta: "FILE",
        file_value: FileValue::Str,
        default: Default::Unset,
        section: Section::ServerMechanics,
        summary: "Write the master's PID to this file.",
        details: "Rarely needed under systemd, which tracks the main PID itself.",
        show: |s| path(&s.pidfile),
        apply: |s, raw| {
            s.pidfile = Some(v::path(raw)?);
            Ok(())
        },
    },
    user: Option<u32> => Setting {
        name: "user",
        flags: &["-u", "--user"],
        kind: Kind::Value,
        meta: "USER",
        file_value: FileValue::Str,
        default: Default::Unset,
        section: Section::ServerMechanics,
        summary: "Run workers as this user (name or uid).",
        details: "Names are looked up in `/etc/passwd`.",
        show: |s| opt_str(&s.user),
        apply: |s, raw| {
            s.user = Some(accounts::resolve(raw, Path::new(accounts::PASSWD), "user")?);
            Ok(())
        },
    },
    group: Option<u32> => Setting {
        name: "group",
        flags: &["-g", "--group"],
        kind: Kind::Value,
        meta: "GROUP",
        file_value: FileValue::Str,
        default: Default::Unset,
        section: Section::ServerMechanics,
        summary: "Run workers as this group (name or gid).",
        details: "Names are looked up in `/etc/group`.",
        show: |s| opt_str(&s.group),
        apply: |s, raw| {
            s.group = Some(accounts::resolve(raw, Path::new(accounts::GROUP), "group")?);
            Ok(())
        },
    },
    umask: u32 => Setting {
        name: "umask",
        flags: &["-m", "--umask"],
        kind: Kind::Value,
        meta: "INT",
        file_value: FileValue::Int,
        default: Default::Text("0"),
        section: Section::ServerMechanics,
        summary: "The umask for files the server writes.",
        details: "Read like gunicorn: `0o22`, `022` (leading zero = octal), `0x12` or `18`.",
        show: |s| int(s.umask),
        apply: |s, raw| {
            s.umask = v::umask(raw)?;
            Ok(())
        },
    },
    /// Where the master listens for control commands; `None` means the
    /// default path (see `control::socket_path`).
    control_socket: Option<String> => Setting {
        name: "control_socket",
        flags: &["--control-socket"],
        kind: Kind::Value,
        meta: "PATH",
        file_value: FileValue::Str,
        default: Default::Unset,
        section: Section::ServerMechanics,
        summary: "The Unix socket the master takes control commands on (gunicornc, `corral ctl`).",
        details: "gunicorn 27's control protocol, so gunicorn's own `gunicornc -s PATH` drives \
                  corral. A relative path is taken from the directory corral was started in. \
                  The default is `gunicorn.ctl` in `$RUNTIME_DIRECTORY` (what systemd's \
                  `RuntimeDirectory=` gives a service), else in `$XDG_RUNTIME_DIR`, else in \
                  `~/.gunicorn/` (gunicornc's own default, so it finds the socket without \
                  `-s`). A socket another running server still answers on is left alone: \
                  corral then runs without one and says so.",
        show: |s| opt_str(&s.control_socket),
        apply: |s, raw| {
            s.control_socket = Some(v::non_empty(raw)?);
            Ok(())
        },
    },
    control_socket_mode: u32 => Setting {
        name: "control_socket_mode",
        flags: &["--control-socket-mode"],
        kind: Kind::Value,
        meta: "INT",
        file_value: FileValue::Int,
        default: Default::Text("0o600"),
        section: Section::ServerMechanics,
        summary: "The control socket's file mode.",
        details: "Whoever may write to the socket may stop, reload and scale the server: the \
                  default lets only the owner. Read like `--umask` (`0o660`, `0660`).",
        show: |s| int(s.control_socket_mode),
        apply: |s, raw| {
            s.control_socket_mode = v::file_mode(raw)?;
            Ok(())
        },
    },
    control_socket_disable: bool => Setting {
        name: "control_socket_disable",
        flags: &["--no-control-socket"],
        kind: Kind::Flag,
        meta: "",
        file_value: FileValue::Bool,
        default: Default::Unset,
        section: Section::ServerMechanics,
        summary: "Do not open a control socket.",
        details: "",
        show: |s| Shown::Bool(s.control_socket_disable),
        apply: |s, raw| {
            s.control_socket_disable = v::boolean(raw)?;
            Ok(())
        },
    },
    reload: bool => Setting {
        name: "reload",
        flags: &["--reload"],
        kind: Kind::Flag,
        meta: "",
        file_value: FileValue::Bool,
        default: Default::Unset,
        section: Section::ServerMechanics,
        summary: "Reload the workers when the app's code changes (for development).",
        details: "Each worker watches the files of every module it has imported, and the \
                  `--reload-extra-file`s; when one changes, the master reloads as on SIGHUP: \
                  new workers with the new code, the old ones retired once those serve. New \
                  code that does not import leaves the old workers serving, with the error \
                  logged. With `--preload` the master re-imports the app's modules.",
        show: |s| Shown::Bool(s.reload),
        apply: |s, raw| {
            s.reload = v::boolean(raw)?;
            Ok(())
        },
    },
    reload_engine: crate::config::ReloadEngine => Setting {
        name: "reload_engine",
        flags: &["--reload-engine"],
        kind: Kind::Value,
        meta: "STRING",
        file_value: FileValue::Str,
        default: Default::Text("auto"),
        section: Section::ServerMechanics,
        summary: "How `--reload` notices changes: auto, inotify or poll.",
        details: "`inotify` (and `auto`) is told of a change by the kernel; `poll` looks at \
                  every file's modification time once a second, which also works where inotify \
                  does not (some network and container file systems).",
        show: |s| Shown::Str(s.reload_engine.as_str().to_owned()),
        apply: |s, raw| {
            s.reload_engine = v::reload_engine(raw)?;
            Ok(())
        },
    },
    reload_extra_files: Vec<PathBuf> => Setting {
        name: "reload_extra_files",
        flags: &["--reload-extra-file"],
        kind: Kind::Append,
        meta: "FILES",
        file_value: FileValue::List,
        default: Default::Unset,
        section: Section::ServerMechanics,
        summary: "Also reload when this file changes (templates, configuration); repeatable.",
        details: "Implies nothing by itself: only with `--reload`.",
        show: |s| Shown::List(s.reload_extra_files.iter().map(|p| p.display().to_string()).collect()),
        apply: |s, raw| {
            s.reload_extra_files.push(v::path(raw)?);
            Ok(())
        },
    },
    /// `--statsd-host`: where gunicorn's metrics go.
    statsd_host: Option<crate::statsd::Target> => Setting {
        name: "statsd_host",
        flags: &["--statsd-host"],
        kind: Kind::Value,
        meta: "STATSD_ADDR",
        file_value: FileValue::Str,
        default: Default::Unset,
        section: Section::Logging,
        summary: "Send gunicorn's statsd metrics to HOST:PORT (UDP, port 8125 by default) or unix:PATH.",
        details: "`gunicorn.requests`, `gunicorn.request.status.NNN` and `gunicorn.log.critical|error|warning` \
                  (counters), `gunicorn.request.duration` (a timer, ms) and `gunicorn.workers` (a gauge), \
                  as gunicorn names them. Several metrics share a datagram (at most 1432 bytes), and a \
                  send never waits: see docs/operations.md.",
        show: |s| s.statsd_host.as_ref().map_or(Shown::None, |t| Shown::Str(t.to_string())),
        apply: |s, raw| {
            s.statsd_host = Some(crate::statsd::Target::parse(raw)?);
            Ok(())
        },
    },
    statsd_prefix: String => Setting {
        name: "statsd_prefix",
        flags: &["--statsd-prefix"],
        kind: Kind::Value,
        meta: "PREFIX",
        file_value: FileValue::Str,
        default: Default::Unset,
        section: Section::Logging,
        summary: "Put PREFIX (and one dot) before every metric name.",
        details: "",
        show: |s| Shown::Str(s.statsd_prefix.clone()),
        apply: |s, raw| {
            s.statsd_prefix = raw.to_owned();
            Ok(())
        },
    },
    dogstatsd_tags: String => Setting {
        name: "dogstatsd_tags",
        flags: &["--dogstatsd-tags"],
        kind: Kind::Value,
        meta: "DOGSTATSD_TAGS",
        file_value: FileValue::Str,
        default: Default::Unset,
        section: Section::Logging,
        summary: "Datadog tags added to every metric, comma-separated (`env:prod,app:x`).",
        details: "",
        show: |s| Shown::Str(s.dogstatsd_tags.clone()),
        apply: |s, raw| {
            s.dogstatsd_tags = raw.to_owned();
            Ok(())
        },
    },
    asgi_loop: crate::asgi::LoopKind => Setting {
        name: "asgi_loop",
        flags: &["--asgi-loop"],
        kind: Kind::Value,
        meta: "STRING",
        file_value: FileValue::Str,
        default: Default::Text("auto"),
        section: Section::WorkerProcesses,
        summary: "The asyncio loop of asgi workers: auto (uvloop when installed), asyncio or uvloop.",
        details: "",
        show: |s| Shown::Str(s.asgi_loop.as_str().into()),
        apply: |s, raw| {
            s.asgi_loop = v::asgi_loop(raw)?;
            Ok(())
        },
    },
    asgi_lifespan: crate::asgi::Lifespan => Setting {
        name: "asgi_lifespan",
        flags: &["--asgi-lifespan"],
        kind: Kind::Value,
        meta: "STRING",
        file_value: FileValue::Str,
        default: Default::Text("auto"),
        section: Section::WorkerProcesses,
        summary: "The ASGI lifespan protocol: auto, on or off.",
        details: "Each asgi worker runs lifespan startup before it serves and shutdown after its \
                  last request. `auto`: an app that raises on the lifespan scope has none; an app \
                  that sends `lifespan.startup.failed` stops corral. `on`: any failure to complete \
                  startup stops corral.",
        show: |s| Shown::Str(s.asgi_lifespan.as_str().into()),
        apply: |s, raw| {
            s.asgi_lifespan = v::asgi_lifespan(raw)?;
            Ok(())
        },
    },
    asgi_disconnect_grace_period: Duration => Setting {
        name: "asgi_disconnect_grace_period",
        flags: &["--asgi-disconnect-grace-period"],
        kind: Kind::Value,
        meta: "INT",
        file_value: FileValue::Int,
        default: Default::Text("3"),
        section: Section::WorkerProcesses,
        summary: "Seconds an ASGI request task may run on after its client left, before it is cancelled.",
        details: "The app sees `http.disconnect` at once (and `send` raises `OSError`); this is \
                  its time to clean up.",
        show: |s| int(s.asgi_disconnect_grace_period.as_secs()),
        apply: |s, raw| {
            s.asgi_disconnect_grace_period = seconds(raw)?;
            Ok(())
        },
    },
    websocket_max_message_size: usize => Setting {
        name: "websocket_max_message_size",
        flags: &["--websocket-max-message-size"],
        kind: Kind::Value,
        meta: "INT",
        file_value: FileValue::Int,
        default: Default::Text("16777216"),
        section: Section::WorkerProcesses,
        summary: "The largest WebSocket message, in bytes, an asgi worker accepts (0 = no limit).",
        details: "ASGI hands the app whole messages, so each is held in memory until its last \
                  frame arrives. A larger one (judged from its frame headers, before it is \
                  buffered) closes the connection with code 1009.",
        show: |s| int(s.websocket_max_message_size as u64),
        apply: |s, raw| {
            s.websocket_max_message_size = v::non_negative(raw)? as usize;
            Ok(())
        },
    },
    root_path: String => Setting {
        name: "root_path",
        flags: &["--root-path"],
        kind: Kind::Value,
        meta: "STRING",
        file_value: FileValue::Str,
        default: Default::Unset,
        section: Section::ServerMechanics,
        summary: "The ASGI scope's `root_path`: where the app is mounted behind a proxy (`/api`).",
        details: "",
        show: |s| Shown::Str(s.root_path.clone()),
        apply: |s, raw| {
            s.root_path = raw.to_owned();
            Ok(())
        },
    },
    /// `--metrics-bind`: where the master serves Prometheus metrics.
    metrics_bind: Option<std::net::SocketAddr> => Setting {
        name: "metrics_bind",
        flags: &["--metrics-bind"],
        kind: Kind::Value,
        meta: "ADDRESS",
        file_value: FileValue::Str,
        default: Default::Unset,
        section: Section::Logging,
        summary: "Serve Prometheus metrics at http://HOST:PORT/metrics, from the master.",
        details: "Requests by method and status, latency and queue-wait histograms, requests in \
                  flight, workers by state, restarts by reason, timeouts, 503 sheds and slow-client \
                  evictions, summed over all workers; counters survive a worker's exit. Under \
                  socket activation a socket named `metrics` (`FileDescriptorName=metrics`) is \
                  used instead. Read at start-up and by USR2, not by HUP. See docs/operations.md.",
        show: |s| s.metrics_bind.map_or(Shown::None, |a| Shown::Str(a.to_string())),
        apply: |s, raw| {
            s.metrics_bind = Some(match v::bind(raw)? {
                BindSpec::Tcp(addrs, _) => *addrs.first().ok_or("no address")?,
                _ => return Err("expected HOST:PORT".into()),
            });
            Ok(())
        },
    },
    worker_tmp_dir: Option<PathBuf> => Setting {
        name: "worker_tmp_dir",
        flags: &["--worker-tmp-dir"],
        kind: Kind::Value,
        meta: "DIR",
        file_value: FileValue::Str,
        default: Default::Unset,
        section: Section::ServerMechanics,
        summary: "Directory for the workers' heartbeat files.",
        details: "Defaults to the system temporary directory; `/dev/shm` avoids disk writes.",
        show: |s| path(&s.worker_tmp_dir),
        apply: |s, raw| {
            s.worker_tmp_dir = Some(v::path(raw)?);
            Ok(())
        },
    },
    accesslog: Option<String> => Setting {
        name: "accesslog",
        flags: &["--access-logfile"],
        kind: Kind::Value,
        meta: "FILE",
        file_value: FileValue::Str,
        default: Default::Unset,
        section: Section::Logging,
        summary: "The access log file; '-' for stdout. Off unless given.",
        details: "",
        show: |s| opt_str(&s.accesslog),
        apply: |s, raw| {
            s.accesslog = Some(v::non_empty(raw)?);
            Ok(())
        },
    },
    access_log_format: String => Setting {
        name: "access_log_format",
        flags: &["--access-logformat"],
        kind: Kind::Value,
        meta: "STRING",
        file_value: FileValue::Str,
        default: Default::Text(crate::logging::DEFAULT_ACCESS_FORMAT),
        section: Section::Logging,
        summary: "The access log format.",
        details: "Python `%(ATOM)s` placeholders: `h` remote address, `l` `-`, `u` user name \
                  (from Basic authentication), `t` date, `r` request line, `m` method, `U` \
                  path, `q` query string, `H` protocol, `s` status, `b` and `B` response \
                  body length (`0` when empty, as in gunicorn), `f` referer, `a` user agent, `T` seconds, `M` \
                  milliseconds, `D` microseconds, `L` decimal seconds, `p` process id, \
                  `{header}i` a request header, `{header}o` a response header, `{NAME}e` an \
                  environment variable of the worker process; `%%` is a literal `%`. \
                  Unknown atoms print `-`. Quotes, backslashes and control characters in \
                  values are escaped (`\\\"`, `\\\\`, `\\xHH`) so that a client cannot forge \
                  log lines.",
        show: |s| Shown::Str(s.access_log_format.clone()),
        apply: |s, raw| {
            crate::logging::validate_access_format(raw)?;
            s.access_log_format = raw.to_string();
            Ok(())
        },
    },
    errorlog: String => Setting {
        name: "errorlog",
        flags: &["--error-logfile", "--log-file"],
        kind: Kind::Value,
        meta: "FILE",
        file_value: FileValue::Str,
        default: Default::Text("-"),
        section: Section::Logging,
        summary: "The error log file; '-' for stderr.",
        details: "Reopened on SIGUSR1, for log rotation.",
        show: |s| Shown::Str(s.errorlog.clone()),
        apply: |s, raw| {
            s.errorlog = v::non_empty(raw)?;
            Ok(())
        },
    },
    loglevel: LogLevel => Setting {
        name: "loglevel",
        flags: &["--log-level"],
        kind: Kind::Value,
        meta: "LEVEL",
        file_value: FileValue::Str,
        default: Default::Text("info"),
        section: Section::Logging,
        summary: "The error log level: debug, info, warning, error or critical.",
        details: "",
        show: |s| Shown::Str(
            match s.loglevel {
                LogLevel::Debug => "debug",
                LogLevel::Info => "info",
                LogLevel::Warning => "warning",
                LogLevel::Error => "error",
                LogLevel::Critical => "critical",
            }
            .into(),
        ),
        apply: |s, raw| {
            s.loglevel = v::log_level(raw)?;
            Ok(())
        },
    },
    /// JSON text of a dict for Python's `logging.config.dictConfig`.
    logconfig_dict: Option<String> => Setting {
        name: "logconfig_dict",
        flags: &["--log-config-dict"],
        kind: Kind::Value,
        meta: "JSON",
        file_value: FileValue::Json,
        default: Default::Unset,
        section: Section::Logging,
        summary: "Configure the application's Python logging with logging.config.dictConfig.",
        details: "A dict in a config file, JSON on the command line. It is applied once in the \
                  master, so every worker inherits it; it configures Python loggers (the \
                  application's and libraries'), not corral's own error and access logs.",
        show: |s| s
            .logconfig_dict
            .as_ref()
            .map_or(Shown::None, |j| Shown::Json(j.clone())),
        apply: |s, raw| {
            s.logconfig_dict = Some(v::json_object(raw)?);
            Ok(())
        },
    },
    /// `--log-journald`: send the error log to the journal.
    log_journald: bool => Setting {
        name: "log_journald",
        flags: &["--log-journald"],
        kind: Kind::Flag,
        meta: "",
        file_value: FileValue::Bool,
        default: Default::Unset,
        section: Section::Logging,
        summary: "Send the error log to the systemd journal with structured fields.",
        details: "",
        show: |s| Shown::Bool(s.log_journald),
        apply: |s, raw| {
            s.log_journald = v::boolean(raw)?;
            Ok(())
        },
    },
    proc_name: Option<String> => Setting {
        name: "proc_name",
        flags: &["-n", "--name"],
        kind: Kind::Value,
        meta: "STRING",
        file_value: FileValue::Str,
        default: Default::Unset,
        section: Section::ProcessNaming,
        summary: "The process name shown by ps and top.",
        details: "Defaults to the application's name.",
        show: |s| opt_str(&s.proc_name),
        apply: |s, raw| {
            s.proc_name = Some(v::non_empty(raw)?);
            Ok(())
        },
    },
}
