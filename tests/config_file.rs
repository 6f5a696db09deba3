//! Config files and server hooks, end to end: the real binary, a gunicorn
//! config file, real signals and real HTTP. Readiness comes from the
//! master's `READY=1` on a `NOTIFY_SOCKET` we own, and progress after
//! signals from the hook log itself (polled against a deadline).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

#[path = "support/client.rs"]
mod client;
#[path = "support/harness.rs"]
mod harness;
#[path = "support/installed.rs"]
mod installed;
#[path = "support/notify.rs"]
mod notify;

use client::{fetch, loopback, Conn};
use harness::{
    free_port, poll, run, temp_dir, Corral, Finished, Server, SETTINGS_ENV, START_TIMEOUT,
};

const DEADLINE: Duration = Duration::from_secs(20);

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/config_file")
}

/// Run corral to completion (for --print-config, --check-config, errors).
fn corral(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Finished {
    let mut cmd = Command::new(installed::corral());
    cmd.args(args).current_dir(dir);
    for var in SETTINGS_ENV.iter().chain(&["NOTIFY_SOCKET"]) {
        cmd.env_remove(var);
    }
    cmd.env("PYTHONPATH", fixtures());
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(cmd, START_TIMEOUT)
}

/// The `name = value` line --print-config shows for `name`.
fn printed(o: &Finished, name: &str) -> String {
    assert!(o.status.success(), "{}", o.stderr);
    o.stdout
        .lines()
        .find(|l| l.split(" = ").next().map(str::trim) == Some(name))
        .map(|l| l.split_once(" = ").unwrap().1.to_string())
        .unwrap_or_else(|| panic!("{name} not printed:\n{}", o.stdout))
}

/// corral with config file `conf`, run in `dir` with the fixtures on the
/// Python path; waits for READY=1.
fn serve(dir: &Path, conf: impl AsRef<Path>, env: &[(&str, &str)]) -> Server {
    let mut c = Corral::from_config(conf.as_ref())
        .current_dir(dir)
        .env("PYTHONPATH", fixtures().display().to_string());
    for (k, v) in env {
        c = c.env(k, *v);
    }
    let mut server = c.spawn();
    server.wait_ready_within(DEADLINE);
    server
}

/// An answer to a plain request: `HTTP/1.1 200 OK`.
fn assert_ok(resp: &client::Response) {
    assert_eq!(
        (resp.version.as_str(), resp.status, resp.reason.as_str()),
        ("HTTP/1.1", 200, "OK"),
        "{resp:?}"
    );
}

fn lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Poll the hook log until `pred` holds (the hooks are what we wait for).
fn wait_log(log: &Path, what: &str, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
    poll(DEADLINE, || {
        let l = lines(log);
        pred(&l).then_some(l)
    })
    .unwrap_or_else(|| panic!("timed out waiting for {what}:\n{}", lines(log).join("\n")))
}

fn count(l: &[String], prefix: &str) -> usize {
    l.iter().filter(|x| x.starts_with(prefix)).count()
}

fn pos(l: &[String], line: &str) -> usize {
    l.iter()
        .position(|x| x == line)
        .unwrap_or_else(|| panic!("{line:?} not in hook log:\n{}", l.join("\n")))
}

#[test]
fn gunicorn_config_runs_unchanged_with_every_hook() {
    let tmp = temp_dir("cf-hooks");
    let dir = tmp.path();
    let log = dir.join("hooks.log");
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let conf = fixtures().join("gunicorn.conf.py");
    let env = [
        ("HOOK_LOG", log.to_str().unwrap()),
        ("TEST_BIND", bind.as_str()),
    ];
    let mut server = serve(dir, &conf, &env);

    let l = lines(&log);
    assert_eq!(l[0], "on_starting 2 2 True");
    assert_eq!(l[1], "when_ready 2 gthread");
    assert!(pos(&l, "pre_fork 0 None") < pos(&l, "post_fork 0 True True"));
    assert!(pos(&l, "pre_fork 1 None") < pos(&l, "post_fork 1 True True"));
    assert_eq!(count(&l, "post_worker_init True from-raw-env"), 2);

    // A request: raw_env reached the app, secure_scheme_headers applied.
    let mut conn = Conn::tcp(port);
    let resp = conn.request(
        "GET",
        "/hi?x=1",
        &[
            ("Host", "t"),
            ("X-Test", "yes"),
            ("X-Forwarded-Proto", "https"),
            ("Connection", "close"),
        ],
        b"",
    );
    assert_ok(&resp);
    assert!(
        resp.text().ends_with("hello from-raw-env https\n"),
        "{resp:?}"
    );
    conn.expect_eof().expect("closed after Connection: close");
    let l = wait_log(&log, "post_request", |l| count(l, "post_request") == 1);
    let pre = pos(&l, "pre_request GET /hi x=1 (1, 1) yes");
    let post = pos(&l, "post_request /hi /hi https 200 '200 OK' 25");
    assert!(pre < post);

    // TTIN: one more worker, announced to nworkers_changed.
    server.signal(libc::SIGTTIN);
    let l = wait_log(&log, "third worker", |l| count(l, "post_worker_init") == 3);
    assert!(pos(&l, "nworkers_changed 3 2") < pos(&l, "pre_fork 2 None"));

    // HUP: the file is read again; TTIN's count goes back to the file's 2.
    server.signal(libc::SIGHUP);
    server.wait_ready_within(DEADLINE);
    let l = wait_log(&log, "old generation gone", |l| count(l, "child_exit") == 3);
    let reload = pos(&l, "on_reload 2");
    assert!(reload < pos(&l, "nworkers_changed 2 3"));
    assert!(reload < pos(&l, "pre_fork 3 None"));
    assert_eq!(count(&l, "worker_exit True"), 3);

    // TERM: every worker exits through its hook, on_exit comes last.
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait_code(DEADLINE), 0);
    let l = lines(&log);
    assert_eq!(l.last().map(String::as_str), Some("on_exit"));
    assert_eq!(count(&l, "worker_exit True"), 5);
    assert_eq!(count(&l, "child_exit True"), 5);
    assert_eq!(count(&l, "worker_int"), 0);
}

/// A minimal config file in `dir`.
fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn precedence_command_line_env_file_defaults() {
    let tmp = temp_dir("cf-prec");
    let dir = tmp.path();
    let conf = write(
        dir,
        "c.py",
        "workers = 3\ntimeout = 40\nwsgi_app = 'app:application'\n",
    );
    let p = |args: &[&str], env: &[(&str, &str)], name: &str| {
        let mut all = vec!["--print-config", "-c", conf.as_str()];
        all.extend_from_slice(args);
        printed(&corral(dir, &all, env), name)
    };
    assert_eq!(p(&[], &[], "workers"), "3");
    assert_eq!(p(&["-w", "5"], &[], "workers"), "5");
    assert_eq!(p(&[], &[("GUNICORN_CMD_ARGS", "-w 4")], "workers"), "4");
    assert_eq!(
        p(
            &[],
            &[("GUNICORN_CMD_ARGS", "-w 4"), ("CORRAL_CMD_ARGS", "-w 6")],
            "workers"
        ),
        "6"
    );
    assert_eq!(
        p(&["-w", "7"], &[("CORRAL_CMD_ARGS", "-w 6")], "workers"),
        "7"
    );
    // WEB_CONCURRENCY and PORT are defaults: the file wins over them...
    assert_eq!(p(&[], &[("WEB_CONCURRENCY", "9")], "workers"), "3");
    // ...and they win over the built-in defaults.
    assert_eq!(p(&[], &[("PORT", "9123")], "bind"), "['0.0.0.0:9123']");
    assert_eq!(p(&[], &[], "timeout"), "40");
    assert_eq!(p(&[], &[], "graceful_timeout"), "30");
}

#[test]
fn default_config_file_lookup() {
    let tmp = temp_dir("cf-lookup");
    let dir = tmp.path();
    let o = corral(dir, &["--print-config"], &[]);
    assert_eq!(printed(&o, "config"), "None");
    write(dir, "gunicorn.conf.py", "workers = 4\n");
    assert_eq!(
        printed(&corral(dir, &["--print-config"], &[]), "workers"),
        "4"
    );
    write(dir, "corral.conf.py", "workers = 5\n");
    assert_eq!(
        printed(&corral(dir, &["--print-config"], &[]), "workers"),
        "5"
    );
    // python:MODULE imports a module from the Python path.
    let o = corral(
        dir,
        &["--print-config", "-c", "python:pyconf"],
        &[("PYTHONPATH", dir.to_str().unwrap())],
    );
    assert!(!o.status.success(), "missing module must fail");
    assert!(
        o.stderr
            .contains("cannot import config module pyconf: ModuleNotFoundError"),
        "{}",
        o.stderr
    );
    write(dir, "pyconf.py", "workers = 8\n");
    let o = corral(
        dir,
        &["--print-config", "-c", "python:pyconf"],
        &[("PYTHONPATH", dir.to_str().unwrap())],
    );
    assert_eq!(printed(&o, "workers"), "8");
}

/// Run with a config file holding `text`; returns (exit code, stderr).
fn bad(text: &str) -> (i32, String) {
    let tmp = temp_dir("cf-bad");
    let dir = tmp.path();
    let conf = write(dir, "bad.conf.py", text);
    let o = corral(dir, &["-c", &conf, "app:application"], &[]);
    (
        o.status.code().unwrap_or(-1),
        o.stderr.replace(&conf, "FILE"),
    )
}

#[test]
fn bad_files_give_one_line_with_file_and_line() {
    let cases: &[(&str, &str)] = &[
        ("workers = 2\nbind = [\n", "error: FILE:2: syntax error: '[' was never closed\n"),
        ("workers = 2\n\nworkers = 'four'\n", "error: invalid value 'four' for workers (in FILE:3): expected a positive integer\n"),
        ("timeout = True\n", "error: wrong type for timeout (in FILE:1): expected an int, got bool\n"),
        ("max_worker_memory = [96]\n", "error: wrong type for max_worker_memory (in FILE:1): expected an int, got list\n"),
        ("import os\nwokers = 2\n", "error: unknown setting 'wokers' (in FILE:2); did you mean 'workers'?\n"),
        ("def on_startng(server):\n    pass\n", "error: unknown server hook 'on_startng' (in FILE:1); did you mean 'on_starting'?\n"),
        ("post_fork = 3\n", "error: wrong type for post_fork (in FILE:1): expected a function (server, worker), got int\n"),
        ("import os\ncertfile = '/etc/ssl/c.pem'\n", "error: gunicorn setting 'certfile' is not supported by corral: corral does not terminate TLS; put a TLS proxy (nginx, haproxy, caddy) in front (in FILE:2)\n"),
        ("daemon = True\n", "error: gunicorn setting 'daemon' is not supported by corral: under systemd (or any supervisor) the server must stay in the foreground (in FILE:1)\n"),
        ("worker_class = 'gevent'\n", "error: invalid value 'gevent' for worker_class (in FILE:1): this worker class is not supported by corral (sync, gthread and asgi are): for a WSGI app use gthread, for an async app asgi\n"),
        ("import os\nraise RuntimeError('no ' + os.sep)\n", "error: FILE:2: RuntimeError: no /\n"),
    ];
    for (text, want) in cases {
        let (code, err) = bad(text);
        assert_eq!(code, 1, "{text}");
        assert_eq!(&err, want, "{text}");
    }
}

#[test]
fn unsupported_flags_on_the_command_line_are_named() {
    let tmp = temp_dir("cf-flags");
    let o = corral(tmp.path(), &["--daemon", "app:application"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        o.stderr
            .starts_with("error: --daemon: gunicorn setting 'daemon' is not supported"),
        "{}",
        o.stderr
    );
}

#[test]
fn harmless_values_of_unsupported_settings_load() {
    let tmp = temp_dir("cf-harmless");
    let dir = tmp.path();
    let conf = write(
        dir,
        "c.py",
        "daemon = False\nworker_connections = 1000\nreload = False\nstatsd_host = None\n\
         sendfile = True\nproxy_protocol = False\nworkers = 2\n",
    );
    assert_eq!(
        printed(
            &corral(dir, &["--print-config", "-c", &conf], &[]),
            "workers"
        ),
        "2"
    );
}

#[test]
fn print_config_shows_file_values_in_python_spelling() {
    let tmp = temp_dir("cf-print");
    let dir = tmp.path();
    let conf = write(
        dir,
        "c.py",
        "bind = ['127.0.0.1:9001', 'unix:/tmp/x.sock']\nraw_env = ['A=1']\npreload_app = True\n\
         secure_scheme_headers = {'X-SCHEME': 'https'}\nheader_map = 'refuse'\n\
         pythonpath = ['/a', '/b']\nlogconfig_dict = {'version': 1}\n",
    );
    let o = corral(dir, &["--print-config", "-c", &conf], &[]);
    assert_eq!(
        printed(&o, "bind"),
        "['127.0.0.1:9001', 'unix:/tmp/x.sock']"
    );
    assert_eq!(printed(&o, "raw_env"), "['A=1']");
    assert_eq!(printed(&o, "preload_app"), "True");
    assert_eq!(
        printed(&o, "secure_scheme_headers"),
        "{'X-SCHEME': 'https'}"
    );
    assert_eq!(printed(&o, "header_map"), "'refuse'");
    assert_eq!(printed(&o, "pythonpath"), "['/a', '/b']");
    assert_eq!(printed(&o, "logconfig_dict"), "{\"version\": 1}");
}

#[test]
fn check_config_validates_file_and_app() {
    let tmp = temp_dir("cf-check");
    let dir = tmp.path();
    let good = write(
        dir,
        "good.py",
        "workers = 2\nwsgi_app = 'app:application'\n",
    );
    let o = corral(dir, &["--check-config", "-c", &good], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", o.stderr);
    assert!(o.stdout.starts_with("Configuration OK"));
    let missing = write(dir, "missing.py", "wsgi_app = 'no_such_module:app'\n");
    let o = corral(dir, &["--check-config", "-c", &missing], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stderr.contains("ModuleNotFoundError"), "{}", o.stderr);
    let broken = write(dir, "broken.py", "workers = 0\n");
    let o = corral(
        dir,
        &["--check-config", "-c", &broken, "app:application"],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    // -e reaches os.environ before --check-config imports the app, as in a
    // real start (the app reads its settings module from it at import).
    write(
        dir,
        "needs_env.py",
        "import os\nassert os.environ['CORRAL_CHECK_ENV'] == 'yes'\n\
         def application(environ, start_response):\n    return []\n",
    );
    let o = corral(
        dir,
        &[
            "--check-config",
            "-e",
            "CORRAL_CHECK_ENV=yes",
            "needs_env:application",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", o.stderr);
    assert!(o.stdout.starts_with("Configuration OK"), "{}", o.stdout);
}

#[test]
fn failing_start_up_hook_stops_start_up() {
    let tmp = temp_dir("cf-failhook");
    let dir = tmp.path();
    let port = free_port();
    let conf = write(
        dir,
        "c.py",
        &format!(
            "bind = '127.0.0.1:{port}'\nwsgi_app = 'app:application'\n\
             def when_ready(server):\n    raise RuntimeError('database unreachable')\n"
        ),
    );
    let o = corral(dir, &["-c", &conf], &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = &o.stderr;
    assert!(
        err.contains("Exception in when_ready hook:\nTraceback"),
        "{err}"
    );
    assert!(
        err.contains("the when_ready hook failed: database unreachable"),
        "{err}"
    );
    assert!(!err.contains("Booting worker"), "{err}");
}

#[test]
fn failing_request_hook_does_not_kill_the_worker() {
    let tmp = temp_dir("cf-reqhook");
    let dir = tmp.path();
    let port = free_port();
    let conf = write(
        dir,
        "c.py",
        &format!(
            "bind = '127.0.0.1:{port}'\nwsgi_app = 'app:application'\n\
             def pre_request(worker, req):\n    raise ValueError('boom')\n"
        ),
    );
    let mut server = serve(dir, &conf, &[]);
    for _ in 0..3 {
        let r = fetch(loopback(port), "/", DEADLINE).unwrap_or_else(|e| panic!("GET /: {e}"));
        assert_ok(&r);
    }
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait_code(DEADLINE), 0);
}
