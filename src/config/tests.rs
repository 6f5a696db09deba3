//! Tests of `parse`: flag forms, defaults, precedence and error lines.

use std::collections::HashMap;
use std::ffi::OsString;
use std::time::Duration;

use super::*;

fn run_env(args: &[&str], env: &[(&str, &str)]) -> Result<Settings, String> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    match parse(&args, &|k| env.get(k).cloned()) {
        Ok(Command::Run(s)) => Ok(*s),
        Ok(other) => panic!("expected Run, got {other:?}"),
        Err(e) => Err(e.to_string()),
    }
}

fn run(args: &[&str]) -> Settings {
    run_env(args, &[]).unwrap()
}

fn err(args: &[&str]) -> String {
    run_env(args, &[]).unwrap_err()
}

fn tcp(s: &str) -> BindSpec {
    value::bind(s).unwrap()
}

#[test]
fn defaults_match_gunicorn() {
    let s = run(&["app:application"]);
    assert_eq!(s.app.as_deref(), Some("app:application"));
    assert_eq!(s.bind, vec![tcp("127.0.0.1:8000")]);
    assert_eq!(s.backlog, 2048);
    assert_eq!(s.workers, 1);
    assert_eq!(s.worker_class, WorkerClass::Sync);
    assert_eq!(s.threads, 1);
    assert_eq!(s.timeout, Duration::from_secs(30));
    assert_eq!(s.graceful_timeout, Duration::from_secs(30));
    assert_eq!(s.keepalive, Duration::from_secs(2));
    assert_eq!((s.max_requests, s.max_requests_jitter), (0, 0));
    assert_eq!(s.limit_request_line, 4094);
    assert_eq!(s.limit_request_fields, 100);
    assert_eq!(s.limit_request_field_size, 8190);
    assert!(!s.preload_app && !s.reuse_port && !s.log_journald);
    assert_eq!(s.chdir, None);
    assert!(s.pythonpath.is_empty() && s.raw_env.is_empty());
    assert_eq!((s.proc_name, s.pidfile), (None, None));
    assert_eq!(s.accesslog, None);
    assert_eq!(s.access_log_format, crate::logging::DEFAULT_ACCESS_FORMAT);
    assert_eq!(s.errorlog, "-");
    assert_eq!(s.loglevel, LogLevel::Info);
    assert_eq!(
        s.forwarded_allow_ips,
        vec![
            AllowIp::Net("127.0.0.1".parse().unwrap(), 32),
            AllowIp::Net("::1".parse().unwrap(), 128)
        ]
    );
    assert_eq!((s.user, s.group, s.umask), (None, None, 0));
    assert_eq!(s.worker_tmp_dir, None);
}

#[test]
fn every_setting_takes_a_value() {
    let s = run(&[
        "-b",
        "unix:/run/a.sock",
        "--bind=fd://3",
        "--backlog",
        "64",
        "-w",
        "3",
        "-k",
        "gthread",
        "--threads",
        "4",
        "-t",
        "5",
        "--graceful-timeout",
        "6",
        "--keep-alive",
        "7",
        "--max-requests",
        "8",
        "--max-requests-jitter",
        "9",
        "--limit-request-line",
        "10",
        "--limit-request-fields",
        "11",
        "--limit-request-field_size",
        "12",
        "--preload",
        "--chdir",
        "/srv",
        "--pythonpath",
        "/a, /b",
        "-e",
        "A=1",
        "--env",
        "B=2",
        "-n",
        "web",
        "-p",
        "/run/c.pid",
        "--access-logfile",
        "-",
        "--access-logformat",
        "%(h)s",
        "--log-file",
        "/var/log/c.log",
        "--log-level",
        "DEBUG",
        "--forwarded-allow-ips",
        "*",
        "--reuse-port",
        "-u",
        "root",
        "-g",
        "0",
        "-m",
        "022",
        "--worker-tmp-dir",
        "/dev/shm",
        "--log-journald",
        "pkg.wsgi:app",
    ]);
    assert_eq!(
        s.bind,
        vec![BindSpec::Unix("/run/a.sock".into()), BindSpec::Fd(3)]
    );
    assert_eq!((s.backlog, s.workers, s.threads), (64, 3, 4));
    assert_eq!(s.worker_class, WorkerClass::Gthread);
    assert_eq!(s.timeout, Duration::from_secs(5));
    assert_eq!(s.graceful_timeout, Duration::from_secs(6));
    assert_eq!(s.keepalive, Duration::from_secs(7));
    assert_eq!((s.max_requests, s.max_requests_jitter), (8, 9));
    assert_eq!(
        (
            s.limit_request_line,
            s.limit_request_fields,
            s.limit_request_field_size
        ),
        (10, 11, 12)
    );
    assert!(s.preload_app && s.reuse_port && s.log_journald);
    assert_eq!(s.chdir, Some("/srv".into()));
    assert_eq!(s.pythonpath, vec!["/a", "/b"]);
    assert_eq!(
        s.raw_env,
        vec![("A".into(), "1".into()), ("B".into(), "2".into())]
    );
    assert_eq!(s.proc_name.as_deref(), Some("web"));
    assert_eq!(s.pidfile, Some("/run/c.pid".into()));
    assert_eq!(s.accesslog.as_deref(), Some("-"));
    assert_eq!(s.access_log_format, "%(h)s");
    assert_eq!(s.errorlog, "/var/log/c.log");
    assert_eq!(s.loglevel, LogLevel::Debug);
    assert_eq!(s.forwarded_allow_ips, vec![AllowIp::Any]);
    assert_eq!((s.user, s.group, s.umask), (Some(0), Some(0), 0o22));
    assert_eq!(s.worker_tmp_dir, Some("/dev/shm".into()));
    assert_eq!(s.app.as_deref(), Some("pkg.wsgi:app"));
}

#[test]
fn short_and_long_forms_agree() {
    for args in [
        &["-w4", "a"][..],
        &["-w", "4", "a"],
        &["-w=4", "a"],
        &["--workers", "4", "a"],
        &["--workers=4", "a"],
        &["a", "--workers", "4"],
        &["--workers", "4", "--", "a"],
    ] {
        assert_eq!(run(args).workers, 4, "{args:?}");
    }
    assert_eq!(
        run(&["-w", "2", "-w", "5", "a"]).workers,
        5,
        "last one wins"
    );
    assert_eq!(run(&["--error-logfile", "x", "a"]).errorlog, "x");
    assert_eq!(
        run(&["--keep", "9", "a"]).keepalive,
        Duration::from_secs(9),
        "unique prefix"
    );
    assert!(err(&["--wor", "4", "a"]).starts_with("ambiguous option --wor: could be --workers, "));
    assert_eq!(
        err(&["--", "-weird"]),
        "invalid value '-weird' for APP: expected MODULE, MODULE:VARIABLE or MODULE:FACTORY(ARGS)"
    );
}

#[test]
fn threads_upgrade_sync_to_gthread() {
    assert_eq!(
        run(&["--threads", "2", "a"]).worker_class,
        WorkerClass::Gthread
    );
    assert_eq!(
        run(&["-k", "sync", "--threads", "1", "a"]).worker_class,
        WorkerClass::Sync
    );
    assert_eq!(
        run(&["-k", "gunicorn.workers.sync.SyncWorker", "--threads=8", "a"]).worker_class,
        WorkerClass::Gthread
    );
}

#[test]
fn environment_defaults() {
    let s = run_env(
        &["a"],
        &[
            ("PORT", "5000"),
            ("WEB_CONCURRENCY", "6"),
            ("FORWARDED_ALLOW_IPS", "10.0.0.0/8"),
        ],
    )
    .unwrap();
    assert_eq!(s.bind, vec![tcp("0.0.0.0:5000")]);
    assert_eq!(s.workers, 6);
    assert_eq!(
        s.forwarded_allow_ips,
        vec![AllowIp::Net("10.0.0.0".parse().unwrap(), 8)]
    );
    // The command line beats all three.
    let s = run_env(
        &[
            "-b",
            "127.0.0.1:1",
            "-w",
            "2",
            "--forwarded-allow-ips",
            "*",
            "a",
        ],
        &[
            ("PORT", "5000"),
            ("WEB_CONCURRENCY", "6"),
            ("FORWARDED_ALLOW_IPS", "10.0.0.0/8"),
        ],
    )
    .unwrap();
    assert_eq!(s.bind, vec![tcp("127.0.0.1:1")]);
    assert_eq!(s.workers, 2);
    assert_eq!(s.forwarded_allow_ips, vec![AllowIp::Any]);
    // Empty means unset.
    assert_eq!(
        run_env(&["a"], &[("WEB_CONCURRENCY", "")]).unwrap().workers,
        1
    );
}

#[test]
fn bad_environment_defaults_name_the_variable() {
    assert_eq!(
        run_env(&["a"], &[("WEB_CONCURRENCY", "lots")]).unwrap_err(),
        "invalid value 'lots' for --workers (from $WEB_CONCURRENCY): expected a positive integer"
    );
    assert_eq!(
        run_env(&["a"], &[("PORT", "http")]).unwrap_err(),
        "invalid value '0.0.0.0:http' for --bind (from $PORT): 'http' is not a port number (0-65535)"
    );
    // A value given explicitly means the bad variable is never consulted.
    assert!(run_env(&["-w", "1", "a"], &[("WEB_CONCURRENCY", "lots")]).is_ok());
}

#[test]
fn cmd_args_variables_rank_below_the_command_line() {
    let env = [
        (
            "GUNICORN_CMD_ARGS",
            "--workers=3 --timeout 9 -b 10.0.0.1:1 --bind 10.0.0.2:2 --preload",
        ),
        ("CORRAL_CMD_ARGS", "--timeout 11 -n 'my app'"),
    ];
    let s = run_env(&["-w", "5", "a"], &env).unwrap();
    assert_eq!(s.workers, 5, "command line wins");
    assert_eq!(
        s.timeout,
        Duration::from_secs(11),
        "CORRAL_CMD_ARGS beats GUNICORN_CMD_ARGS"
    );
    assert_eq!(s.proc_name.as_deref(), Some("my app"));
    assert_eq!(s.bind, vec![tcp("10.0.0.1:1"), tcp("10.0.0.2:2")]);
    assert!(s.preload_app);
    // A list from the command line replaces the lower list entirely.
    let s = run_env(&["-b", "10.0.0.3:3", "a"], &env).unwrap();
    assert_eq!(s.bind, vec![tcp("10.0.0.3:3")]);
    // The application may come from the variable.
    let s = run_env(&[], &[("GUNICORN_CMD_ARGS", "mod:app")]).unwrap();
    assert_eq!(s.app.as_deref(), Some("mod:app"));
    // ... and over $PORT too.
    let s = run_env(&["a"], &[("GUNICORN_CMD_ARGS", "-b :7"), ("PORT", "5")]).unwrap();
    assert_eq!(s.bind, vec![tcp("0.0.0.0:7")]);
}

#[test]
fn cmd_args_errors_name_the_variable() {
    let e = |v: &str| run_env(&["a"], &[("GUNICORN_CMD_ARGS", v)]).unwrap_err();
    assert_eq!(
        e("--workers x"),
        "invalid value 'x' for --workers (from GUNICORN_CMD_ARGS): expected a positive integer"
    );
    assert_eq!(e("--bogus"), "GUNICORN_CMD_ARGS: unknown option --bogus");
    assert_eq!(e("-n 'x"), "GUNICORN_CMD_ARGS: unterminated single quote");
    assert_eq!(
        e("--help"),
        "GUNICORN_CMD_ARGS: --help and --version belong on the command line"
    );
    let e = run_env(&["a"], &[("CORRAL_CMD_ARGS", "-t -1")]).unwrap_err();
    assert_eq!(
        e,
        "invalid value '-1' for --timeout (from CORRAL_CMD_ARGS): expected a non-negative integer"
    );
}

#[test]
fn error_lines() {
    let cases: &[(&[&str], &str)] = &[
        (&["-w", "abc", "a"], "invalid value 'abc' for --workers: expected a positive integer"),
        (&["-w", "0", "a"], "invalid value '0' for --workers: expected a positive integer"),
        (&["--threads", "0", "a"], "invalid value '0' for --threads: expected a positive integer"),
        (&["--backlog", "99999999999", "a"], "invalid value '99999999999' for --backlog: value is too large"),
        (&["--timeout", "1.5", "a"], "invalid value '1.5' for --timeout: expected a non-negative integer"),
        (&["-b", "1.2.3.4:x", "a"], "invalid value '1.2.3.4:x' for --bind: 'x' is not a port number (0-65535)"),
        (&["-k", "gevent", "a"], "invalid value 'gevent' for --worker-class: this worker class is not supported by corral (sync, gthread and asgi are): for a WSGI app use gthread, for an async app asgi"),
        (&["-k", "turbo", "a"], "invalid value 'turbo' for --worker-class: expected sync, gthread or asgi"),
        (&["--log-level", "loud", "a"], "invalid value 'loud' for --log-level: expected one of debug, info, warning, error, critical"),
        (&["-e", "NOEQUALS", "a"], "invalid value 'NOEQUALS' for --env: expected KEY=VALUE"),
        (&["-m", "9z", "a"], "invalid value '9z' for --umask: expected an integer such as 0o022, 022, 0x12 or 18"),
        (&["-u", "no-such-user-corral", "a"], "invalid value 'no-such-user-corral' for --user: no such user in /etc/passwd; give a numeric id instead"),
        (&["-g", "no-such-group-corral", "a"], "invalid value 'no-such-group-corral' for --group: no such group in /etc/group; give a numeric id instead"),
        (&["--forwarded-allow-ips", "x", "a"], "invalid value 'x' for --forwarded-allow-ips: 'x' is not an IP address or network (expected e.g. 10.0.0.0/8, ::1 or *)"),
        (&["--access-logformat", "%(h)s %d", "a"], "invalid value '%(h)s %d' for --access-logformat: lone '%' at offset 6: write %(ATOM)s for a value or %% for a percent sign"),
        (&["--access-logfile", "", "a"], "invalid value '' for --access-logfile: expected a non-empty value"),
        (&["--chdir=", "a"], "invalid value '' for --chdir: expected a non-empty value"),
        (&["bad/app"], "invalid value 'bad/app' for APP: expected MODULE, MODULE:VARIABLE or MODULE:FACTORY(ARGS)"),
        (&["--bogus", "a"], "unknown option --bogus"),
        (&["-x", "a"], "unknown option -x"),
        (&["a", "--workers"], "--workers requires a value (INT)"),
        (&["--reuse-port=1", "a"], "--reuse-port does not take a value"),
        (&["a", "b"], "unexpected extra argument 'b' (only one APP may be given)"),
        (&["--m", "1", "a"], "ambiguous option --m: could be --max-requests, --max-requests-jitter, --max-worker-memory, --metrics-bind"),
        (&[], "no application given; usage: corral [OPTIONS] APP (see --help)"),
        (&["-w", "2"], "no application given; usage: corral [OPTIONS] APP (see --help)"),
    ];
    for (args, want) in cases {
        assert_eq!(&err(args), want, "{args:?}");
        assert!(!want.contains('\n'));
    }
}

#[test]
fn non_utf8_argument_is_an_error() {
    use std::os::unix::ffi::OsStringExt;
    let args = vec![OsString::from_vec(vec![b'a', 0xff])];
    let e = parse(&args, &|_| None).unwrap_err().to_string();
    assert_eq!(e, "argument 'a\u{fffd}' is not valid UTF-8");
}

#[test]
fn help_and_version_need_no_app() {
    let p = |args: &[&str]| {
        parse(
            &args.iter().map(OsString::from).collect::<Vec<_>>(),
            &|_| None,
        )
    };
    match p(&["--help"]).unwrap() {
        Command::Help(text) => assert!(text.contains("Usage: corral [OPTIONS] APP")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        p(&["-w", "zero", "-h"]).unwrap(),
        Command::Help(_)
    ));
    match p(&["-v"]).unwrap() {
        Command::Version(v) => {
            assert_eq!(v, format!("corral (version {})", env!("CARGO_PKG_VERSION")))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(p(&["--vers"]).unwrap(), Command::Version(_)));
}

#[test]
fn config_file_layer_maps_names_onto_the_table() {
    let mut file = Layer::new(Origin::ConfigFile("gunicorn.conf.py".into()));
    file.set("workers", "7").unwrap();
    file.set("bind", "10.0.0.9:9").unwrap();
    file.set("preload_app", "True").unwrap();
    file.set("wsgi_app", "site.wsgi").unwrap();
    let mut cli = Layer::new(Origin::CommandLine);
    cli.set("workers", "2").unwrap();
    // Order of the slice does not matter; origin does.
    let s = resolve(&[cli, file], &|_| None).unwrap();
    assert_eq!(s.workers, 2);
    assert_eq!(s.bind, vec![tcp("10.0.0.9:9")]);
    assert!(s.preload_app);
    assert_eq!(s.app.as_deref(), Some("site.wsgi"));

    let mut bad = Layer::new(Origin::ConfigFile("gunicorn.conf.py".into()));
    assert_eq!(
        bad.set("wokers", "1").unwrap_err().to_string(),
        "unknown setting 'wokers' (in gunicorn.conf.py)"
    );
    bad.set("workers", "-3").unwrap();
    assert_eq!(
        resolve(&[bad], &|_| None).unwrap_err().to_string(),
        "invalid value '-3' for workers (in gunicorn.conf.py): expected a positive integer"
    );
}

#[test]
fn settings_apply_validates_and_settles() {
    let mut s = resolve(&[], &|_| None).unwrap();
    s.apply("threads", "3").unwrap();
    assert_eq!(s.worker_class, WorkerClass::Gthread);
    s.apply("raw_env", "K=V").unwrap();
    s.apply("raw_env", "K2=V2").unwrap();
    assert_eq!(s.raw_env.len(), 2);
    assert_eq!(
        s.apply("timeout", "x").unwrap_err().to_string(),
        "invalid value 'x' for timeout: expected a non-negative integer"
    );
    assert_eq!(
        s.apply("nope", "1").unwrap_err().to_string(),
        "unknown setting 'nope'"
    );
}

#[test]
fn every_default_in_the_table_is_valid() {
    // resolve() applies each default through its validator.
    let s = resolve(&[], &|_| None).unwrap();
    assert_eq!(s.app, None);
    for setting in SETTINGS {
        assert!(table::by_name(setting.name).is_some());
        for f in setting.flags {
            assert!(
                std::ptr::eq(table::by_flag(f).unwrap(), setting),
                "flag {f} is taken twice"
            );
        }
    }
}

/// Every setting name of gunicorn 27.0.1 (`gunicorn.config.KNOWN_SETTINGS`,
/// read from an installed gunicorn 27.0.1): each must be a corral setting,
/// a server hook, or a deliberately unsupported setting with a reason, so
/// a gunicorn config file never has a name silently ignored.
const GUNICORN_27_SETTINGS: &[&str] = &[
    "access_log_format",
    "accesslog",
    "asgi_disconnect_grace_period",
    "asgi_lifespan",
    "asgi_loop",
    "backlog",
    "bind",
    "ca_certs",
    "capture_output",
    "casefold_http_method",
    "cert_reqs",
    "certfile",
    "chdir",
    "check_config",
    "child_exit",
    "ciphers",
    "config",
    "control_socket",
    "control_socket_disable",
    "control_socket_mode",
    "daemon",
    "default_proc_name",
    "dirty_apps",
    "dirty_graceful_timeout",
    "dirty_post_fork",
    "dirty_threads",
    "dirty_timeout",
    "dirty_worker_exit",
    "dirty_worker_init",
    "dirty_workers",
    "disable_redirect_access_to_syslog",
    "do_handshake_on_connect",
    "dogstatsd_tags",
    "enable_backlog_metric",
    "enable_stdio_inheritance",
    "errorlog",
    "forwarded_allow_ips",
    "forwarder_headers",
    "graceful_timeout",
    "group",
    "header_map",
    "http2_cleartext",
    "http2_initial_window_size",
    "http2_max_concurrent_streams",
    "http2_max_frame_size",
    "http2_max_header_list_size",
    "http_parser",
    "http_protocols",
    "initgroups",
    "keepalive",
    "keyfile",
    "limit_request_field_size",
    "limit_request_fields",
    "limit_request_line",
    "logconfig",
    "logconfig_dict",
    "logconfig_json",
    "logger_class",
    "loglevel",
    "max_requests",
    "max_requests_jitter",
    "nworkers_changed",
    "on_dirty_starting",
    "on_exit",
    "on_reload",
    "on_starting",
    "paste",
    "permit_obsolete_folding",
    "permit_unconventional_http_method",
    "permit_unconventional_http_version",
    "pidfile",
    "post_fork",
    "post_request",
    "post_worker_init",
    "pre_exec",
    "pre_fork",
    "pre_request",
    "preload_app",
    "print_config",
    "proc_name",
    "protocol",
    "proxy_allow_ips",
    "proxy_protocol",
    "pythonpath",
    "raw_env",
    "raw_paste_global_conf",
    "reload",
    "reload_engine",
    "reload_extra_files",
    "reuse_port",
    "root_path",
    "secure_scheme_headers",
    "sendfile",
    "spew",
    "ssl_context",
    "ssl_version",
    "statsd_host",
    "statsd_prefix",
    "strip_header_spaces",
    "suppress_ragged_eofs",
    "syslog",
    "syslog_addr",
    "syslog_facility",
    "syslog_prefix",
    "threads",
    "timeout",
    "tmp_upload_dir",
    "umask",
    "user",
    "uwsgi_allow_ips",
    "websocket_max_message_size",
    "when_ready",
    "worker_abort",
    "worker_class",
    "worker_connections",
    "worker_exit",
    "worker_int",
    "worker_tmp_dir",
    "workers",
    "wsgi_app",
];

#[test]
fn every_gunicorn_27_setting_is_known_by_name() {
    let unknown: Vec<&str> = GUNICORN_27_SETTINGS
        .iter()
        .copied()
        .filter(|name| {
            !crate::config::SETTINGS.iter().any(|s| s.name == *name)
                && !crate::config::gunicorn::HOOKS
                    .iter()
                    .any(|h| h.name == *name)
                && !crate::config::gunicorn::UNSUPPORTED
                    .iter()
                    .any(|u| u.name == *name)
        })
        .collect();
    assert!(
        unknown.is_empty(),
        "gunicorn settings corral does not know: {unknown:?}"
    );
}

#[test]
fn proxy_protocol_takes_an_optional_mode() {
    use crate::http::ProxyMode;
    assert_eq!(run(&["app:app"]).proxy_protocol, ProxyMode::Off);
    // Alone it means auto, and the app after it stays the app.
    let s = run(&["--proxy-protocol", "app:app"]);
    assert_eq!(
        (s.proxy_protocol, s.app.as_deref()),
        (ProxyMode::Auto, Some("app:app"))
    );
    assert_eq!(
        run(&["--proxy-protocol", "v2", "app:app"]).proxy_protocol,
        ProxyMode::V2
    );
    assert_eq!(
        run(&["--proxy-protocol=v1", "app:app"]).proxy_protocol,
        ProxyMode::V1
    );
    assert_eq!(
        run(&["--proxy-protocol", "--workers", "2", "app:app"]).proxy_protocol,
        ProxyMode::Auto
    );
    assert!(err(&["--proxy-protocol=v3", "app:app"]).contains("expected off, v1, v2 or auto"));
}
