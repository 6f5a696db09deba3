//! The corral under test is the one users get: the wheel `tests/run` built
//! once with maturin and installed with pip into the test virtualenv, run
//! through that virtualenv's `corral` console script. Every test binary
//! starts the server through [`corral`]; none builds or finds it another way.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

/// The test virtualenv (`CORRAL_TEST_VENV`, made by `tests/run`): corral's
/// wheel plus flask, django, requests and h11. Tests fail, never skip,
/// without it.
pub fn venv() -> PathBuf {
    match std::env::var_os("CORRAL_TEST_VENV") {
        Some(v) if !v.is_empty() => {
            let p = PathBuf::from(v);
            assert!(
                p.join("bin/python").exists(),
                "CORRAL_TEST_VENV={} has no bin/python: run tests/run to create it",
                p.display()
            );
            p
        }
        _ => panic!(
            "CORRAL_TEST_VENV is not set: run the suite with tests/run, which builds \
             corral's wheel, installs it into the test virtualenv and exports it"
        ),
    }
}

/// The installed `corral` command.
pub fn corral() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let bin = venv().join("bin/corral");
        assert!(
            bin.exists(),
            "{} is missing: tests/run installs corral's wheel there",
            bin.display()
        );
        bin.to_string_lossy().into_owned()
    })
}

/// The deployment-style virtualenv `tests/run` makes under /srv
/// (`CORRAL_TEST_DEBIAN_VENV`): Debian's python3, flask, django, corral's
/// wheel, readable by any user — what a unit with `User=` or
/// `DynamicUser=` needs, since /root (pyenv's home) is not.
pub fn deploy_venv() -> PathBuf {
    let v = std::env::var_os("CORRAL_TEST_DEBIAN_VENV")
        .filter(|v| !v.is_empty())
        .expect("CORRAL_TEST_DEBIAN_VENV is not set: run the suite with tests/run");
    PathBuf::from(v)
}
