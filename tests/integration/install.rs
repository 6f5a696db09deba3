//! corral as users install it: a wheel pip put into the app's virtualenv,
//! started from an environment as bare as systemd's (`PATH=/usr/bin:/bin`,
//! nothing else). The master and its workers must run on that virtualenv's
//! interpreter, with its packages only, on every CPython this machine has;
//! the sync worker calls the app on the main thread; and a USR2 re-exec
//! runs whatever build is installed at that moment.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::client::{get, try_get};
use crate::harness::{run, signal, venv, Corral, EVENT_TIMEOUT};

fn canonical(p: impl AsRef<Path>) -> PathBuf {
    std::fs::canonicalize(p.as_ref())
        .unwrap_or_else(|e| panic!("canonicalize {}: {e}", p.as_ref().display()))
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
        .iter()
        .map(|s| s.as_str().unwrap_or_default().to_owned())
        .collect()
}

/// What the probe reports must be the virtualenv's interpreter and nothing
/// of the base installation's packages.
fn assert_runs_on(info: &Value, venv: &Path) {
    let venv = canonical(venv);
    let prefix = canonical(info["prefix"].as_str().expect("prefix"));
    assert_eq!(prefix, venv, "sys.prefix is not the virtualenv: {info}");
    let exe = info["executable"].as_str().expect("executable");
    assert!(
        Path::new(exe).starts_with(venv.join("bin")) || canonical(exe).starts_with(&venv),
        "sys.executable {exe} is not the virtualenv's python: {info}"
    );
    let [major, minor] = [info["version"][0].as_u64(), info["version"][1].as_u64()];
    let site = venv.join(format!(
        "lib/python{}.{}/site-packages",
        major.unwrap(),
        minor.unwrap()
    ));
    let path = strings(info, "path");
    assert!(
        path.iter().any(|p| Path::new(p) == site),
        "{} is not on sys.path {path:?}",
        site.display()
    );
    let base = info["base_prefix"].as_str().expect("base_prefix");
    let leaked: Vec<&String> = path
        .iter()
        .filter(|p| {
            p.starts_with(base) && (p.contains("site-packages") || p.contains("dist-packages"))
        })
        .collect();
    assert!(
        leaked.is_empty(),
        "the base interpreter's packages are on sys.path: {leaked:?} (sys.path {path:?})"
    );
    assert_eq!(
        info["corral_core"].as_str(),
        Some(env!("CARGO_PKG_VERSION")),
        "a worker imported another corral build: {info}"
    );
}

fn assert_from_venv(info: &Value, key: &str, venv: &Path) {
    let file = info[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing: {info}"));
    assert!(
        canonical(file).starts_with(canonical(venv)),
        "{key} was imported from {file}, outside the virtualenv {}",
        venv.display()
    );
}

fn serve_bare(venv: &Path, args: &[&str], app: &str) -> crate::harness::Server {
    Corral::app(app)
        .installed_in(venv)
        .bare_env()
        .args(args.iter().copied())
        .start()
}

fn check_virtualenv(venv: &Path) {
    for class in [
        &["-k", "sync"][..],
        &["-k", "gthread", "--threads", "2"][..],
    ] {
        let srv = serve_bare(venv, class, "probe_flask:app");
        let r = get(srv.port, "/probe");
        assert_eq!(r.status, 200, "{}", r.text());
        let info = r.json();
        assert_runs_on(&info, venv);
        assert_from_venv(&info, "flask", venv);
        assert_from_venv(&info, "werkzeug", venv);
        if class[1] == "sync" {
            // gunicorn's sync worker runs the app on the main thread, and
            // apps rely on it (signal handlers, alarm-based timeouts).
            assert_eq!(
                info["main_thread"], true,
                "sync view off the main thread: {info}"
            );
            let started = Instant::now();
            let r = get(srv.port, "/signal");
            assert_eq!(r.text(), "interrupted", "SIGALRM did not reach the view");
            assert!(
                started.elapsed() < Duration::from_secs(8),
                "{:?}",
                started.elapsed()
            );
        }
    }
    let srv = serve_bare(venv, &[], "djangoapp.wsgi:application");
    let r = get(srv.port, "/probe/");
    assert_eq!(r.status, 200, "{}", r.text());
    let info = r.json();
    assert_runs_on(&info, venv);
    assert_from_venv(&info, "django", venv);
    // An ASGI app as systemd would start it: FastAPI on the asgi worker,
    // with the virtualenv's uvloop picked by --asgi-loop auto.
    let srv = serve_bare(venv, &["-k", "asgi"], "fastapi_app:app");
    let r = get(srv.port, "/items/7?q=bare");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["item_id"], 7);
    let srv = serve_bare(venv, &["-k", "asgi"], "asgi_raw:app");
    assert_eq!(get(srv.port, "/loop").json()["loop"], "uvloop");
}

/// The pyenv-built test virtualenv (the base interpreter lives in /root).
#[test]
fn bare_environment_runs_on_the_virtualenv_pyenv_base() {
    check_virtualenv(&venv());
}

/// A virtualenv of Debian's /usr/bin/python3 under /srv.
#[test]
fn bare_environment_runs_on_the_virtualenv_debian_base() {
    check_virtualenv(&crate::installed::deploy_venv());
}

/// `python -m corral` is the same server as the console script.
#[test]
fn python_dash_m_corral_serves() {
    let mut srv = Corral::app("probe:app")
        .module_of(&venv().join("bin/python"))
        .bare_env()
        .start();
    let info = get(srv.port, "/").json();
    // The whole group, as a supervisor stopping the service would.
    signal(-srv.pid, libc::SIGTERM);
    let status = srv.wait_exit(EVENT_TIMEOUT);
    assert_runs_on(&info, &venv());
    assert!(status.success(), "python -m corral exited {status}");
}

/// Interpreters `tests/run` found, one per real executable.
fn pythons() -> Vec<(PathBuf, (u32, u32))> {
    let list = std::env::var("CORRAL_TEST_PYTHONS")
        .expect("CORRAL_TEST_PYTHONS is not set: run the suite with tests/run");
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for py in list.split_whitespace() {
        let r = run(
            {
                let mut c = Command::new(py);
                c.args([
                    "-c",
                    "import sys; print(sys.executable); print('%d %d' % sys.version_info[:2])",
                ]);
                c
            },
            Duration::from_secs(30),
        );
        let mut lines = r.stdout.lines();
        let exe = canonical(lines.next().expect("sys.executable"));
        let v: Vec<u32> = lines
            .next()
            .expect("version")
            .split(' ')
            .map(|n| n.parse().unwrap())
            .collect();
        if seen.insert(exe.clone()) {
            out.push((exe, (v[0], v[1])));
        }
    }
    out
}

/// The test virtualenv's Python version: the wheel every other test uses.
fn own_version() -> (u32, u32) {
    let mut cmd = Command::new(venv().join("bin/python"));
    cmd.args(["-c", "import sys; print('%d %d' % sys.version_info[:2])"]);
    let out = run(cmd, Duration::from_secs(30));
    let v: Vec<u32> = out
        .stdout
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    (v[0], v[1])
}

fn wheel_for(version: (u32, u32)) -> Option<PathBuf> {
    let dir = std::env::var_os("CORRAL_TEST_WHEELS").expect("CORRAL_TEST_WHEELS is not set");
    let tag = format!("-cp{}{}-", version.0, version.1);
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().contains(&tag))
}

/// A new, empty virtualenv of `python` with `wheel` installed by pip (the
/// test virtualenv's pip, pointed at it with `--python`).
fn venv_with(python: &Path, wheel: &Path, dir: &Path) -> Result<PathBuf, String> {
    let target = dir.join("venv");
    let mut mk = Command::new(python);
    mk.args(["-m", "venv", "--without-pip"]).arg(&target);
    let made = run(mk, Duration::from_secs(120));
    assert!(made.status.success(), "venv: {}", made.stderr);
    let mut pip = Command::new(venv().join("bin/python"));
    pip.args(["-m", "pip", "--python"])
        .arg(target.join("bin/python"))
        .args(["install", "--quiet", "--no-index", "--no-deps"])
        .arg(wheel);
    let done = run(pip, Duration::from_secs(120));
    if done.status.success() {
        Ok(target)
    } else {
        Err(done.stderr)
    }
}

/// One wheel per supported CPython (3.9+), each serving from a virtualenv of
/// its own interpreter; older interpreters are refused by pip with one line.
#[test]
fn a_wheel_per_supported_python() {
    let mine = own_version();
    let own = wheel_for(mine).expect("a wheel for the test virtualenv's Python");
    let mut served = Vec::new();
    for (python, version) in pythons() {
        let dir = tempfile::tempdir().unwrap();
        if version < (3, 7) {
            // Older than any pip that can still install into it.
            continue;
        }
        if version < (3, 9) {
            let err = venv_with(&python, &own, dir.path())
                .expect_err("pip installed a newer Python's wheel into an older Python");
            let line = err.lines().find(|l| l.starts_with("ERROR:")).unwrap_or("");
            assert!(
                line.contains("is not a supported wheel on this platform"),
                "Python {version:?}: {err}"
            );
            continue;
        }
        let wheel = wheel_for(version)
            .unwrap_or_else(|| panic!("no wheel was built for Python {version:?}"));
        let v = venv_with(&python, &wheel, dir.path())
            .unwrap_or_else(|e| panic!("installing {} for {version:?}: {e}", wheel.display()));
        let srv = serve_bare(&v, &[], "probe:app");
        let info = get(srv.port, "/").json();
        assert_eq!(
            (info["version"][0].as_u64(), info["version"][1].as_u64()),
            (Some(version.0 as u64), Some(version.1 as u64)),
            "{info}"
        );
        assert_runs_on(&info, &v);
        assert_eq!(info["main_thread"], true, "{info}");
        served.push(version);
    }
    assert!(
        served.contains(&mine),
        "the test virtualenv's Python {mine:?} did not serve (tried {served:?})"
    );
}

/// A corral installed for one Python and started by another says so in one
/// line instead of a traceback.
#[test]
fn another_pythons_build_is_one_clear_line() {
    let mine = own_version();
    let other = pythons()
        .into_iter()
        .find(|(_, v)| *v >= (3, 9) && *v != mine);
    let Some((python, version)) = other else {
        // tests/run provides pyenv's interpreters where they exist; a
        // machine with one Python cannot show this mismatch.
        eprintln!("SKIPPED: no CPython 3.9+ other than {mine:?} on this machine");
        return;
    };
    let site = venv().join(format!("lib/python{}.{}/site-packages", mine.0, mine.1));
    let mut cmd = Command::new(&python);
    cmd.args(["-m", "corral", "--version"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("PYTHONPATH", &site);
    let out = run(cmd, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(
        lines[0].starts_with(&format!(
            "error: corral's compiled core cannot be loaded by Python {}.{}",
            version.0, version.1
        )) && lines[0].contains(&format!("cpython-{}{}", mine.0, mine.1)),
        "{}",
        lines[0]
    );
}

/// `pip install` a newer build under a running master, USR2, retire the old
/// master: the new master and its workers run the new code, and a client
/// hammering the server throughout sees no failure.
#[test]
fn usr2_runs_the_build_installed_now() {
    let upgrade = PathBuf::from(
        std::env::var_os("CORRAL_TEST_UPGRADE_WHEEL").expect("CORRAL_TEST_UPGRADE_WHEEL"),
    );
    let dir = tempfile::tempdir().unwrap();
    let python = canonical(venv().join("bin/python"));
    let v = venv_with(&python, &wheel_for(own_version()).unwrap(), dir.path()).unwrap();
    let srv = serve_bare(
        &v,
        &["-w", "2", "-k", "gthread", "--threads", "2"],
        "probe:app",
    );
    let before = get(srv.port, "/").json();
    assert_eq!(before["corral_core"], env!("CARGO_PKG_VERSION"));

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let port = srv.port;
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            std::thread::spawn(move || {
                let mut errors = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match try_get(port, "/") {
                        Ok(r) if r.status == 200 => ok.fetch_add(1, Ordering::Relaxed),
                        other => {
                            errors.push(format!("{:?}", other.map(|r| r.status)));
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
                errors
            })
        })
        .collect();

    let mut pip = Command::new(venv().join("bin/python"));
    pip.args(["-m", "pip", "--python"])
        .arg(v.join("bin/python"))
        .args([
            "install",
            "--quiet",
            "--no-index",
            "--no-deps",
            "--force-reinstall",
        ])
        .arg(&upgrade);
    let done = run(pip, Duration::from_secs(120));
    assert!(done.status.success(), "{}", done.stderr);
    srv.signal(libc::SIGUSR2);
    let new_master = srv
        .stderr
        .wait_for(EVENT_TIMEOUT, |log| {
            log.lines().find_map(|l| {
                l.split("New master (pid:")
                    .nth(1)?
                    .split(')')
                    .next()?
                    .parse::<i32>()
                    .ok()
                    .filter(|_| l.contains("is serving"))
            })
        })
        .unwrap_or_else(|| panic!("the new master never served:\n{}", srv.stderr.text()));
    // gunicorn's flow without systemd: the operator retires the old master.
    srv.signal(libc::SIGTERM);
    srv.stderr
        .wait_for(EVENT_TIMEOUT, |log| {
            log.contains("Shutting down: Master").then_some(())
        })
        .expect("the old master did not stop");
    let deadline = Instant::now() + EVENT_TIMEOUT;
    let after = loop {
        let info = get(port, "/").json();
        if info["corral_core"] != env!("CARGO_PKG_VERSION") || Instant::now() > deadline {
            break info;
        }
    };
    stop.store(true, Ordering::Relaxed);
    let errors: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    let upgraded = format!("{}+upgrade", env!("CARGO_PKG_VERSION"));
    assert_eq!(after["corral_core"], upgraded.as_str(), "{after}");
    assert_eq!(after["corral"], upgraded.as_str(), "{after}");
    assert!(srv
        .stderr
        .text()
        .contains(&format!("Starting corral {upgraded}")));
    assert!(
        errors.is_empty(),
        "{} of {} requests failed across the upgrade: {errors:?}",
        failed.load(Ordering::Relaxed),
        ok.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed)
    );
    assert!(
        ok.load(Ordering::Relaxed) > 50,
        "too little load to mean anything"
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(new_master),
        nix::sys::signal::Signal::SIGTERM,
    );
}
