//! The command line: version, help, and refusing bad input in one line.

use crate::harness::run_corral;

/// Non-empty lines of a stream.
fn lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.trim().is_empty()).collect()
}

#[test]
fn version_prints_the_crate_version() {
    let out = run_corral(&["--version"]);
    assert!(out.status.success(), "--version failed: {}", out.stderr);
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        out.stdout.contains("corral") && out.stdout.contains(version),
        "--version should print `corral {version}`, printed {:?}",
        out.stdout
    );
}

#[test]
fn help_lists_the_gunicorn_flags() {
    let out = run_corral(&["--help"]);
    assert!(out.status.success(), "--help failed: {}", out.stderr);
    for flag in [
        "--bind",
        "--workers",
        "--worker-class",
        "--threads",
        "--keep-alive",
        "--max-requests",
        "--chdir",
        "--timeout",
        "--graceful-timeout",
        "--access-logfile",
        "--preload",
    ] {
        assert!(
            out.stdout.contains(flag),
            "--help does not mention {flag}:\n{}",
            out.stdout
        );
    }
}

#[test]
fn unknown_flag_is_one_error_line() {
    let out = run_corral(&["--no-such-flag", "echo:app"]);
    assert!(
        !out.status.success(),
        "an unknown flag must fail, exit was {}",
        out.status
    );
    let err = lines(&out.stderr);
    assert_eq!(
        err.len(),
        1,
        "expected exactly one error line, got:\n{}",
        out.stderr
    );
    assert!(
        err[0].starts_with("error:") && err[0].contains("--no-such-flag"),
        "the line should be `error: ...` naming the flag: {:?}",
        err[0]
    );
}

#[test]
fn bad_flag_value_is_one_error_line() {
    for args in [
        &["-w", "many", "echo:app"][..],
        &["--threads", "-3", "echo:app"][..],
        &["-k", "eventlet-please", "echo:app"][..],
    ] {
        let out = run_corral(args);
        assert!(
            !out.status.success(),
            "{args:?} must fail, exit was {}",
            out.status
        );
        let err = lines(&out.stderr);
        assert_eq!(
            err.len(),
            1,
            "{args:?}: expected exactly one error line, got:\n{}",
            out.stderr
        );
        assert!(
            err[0].starts_with("error:") && err[0].contains(args[1]),
            "{args:?}: the line should be `error: ...` naming the bad value: {:?}",
            err[0]
        );
    }
}

#[test]
fn missing_app_is_an_error() {
    let out = run_corral(&["-b", "127.0.0.1:0"]);
    assert!(
        !out.status.success(),
        "no APP must fail, exit was {}",
        out.status
    );
    assert!(
        lines(&out.stderr).iter().any(|l| l.starts_with("error:")),
        "expected an `error:` line, got:\n{}",
        out.stderr
    );
}
