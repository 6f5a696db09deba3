//! The one entry point users run: `corral._corral.run`, which the `corral`
//! console script (and `python -m corral`) calls on the interpreter of the
//! virtualenv corral is installed in. It parses the command line, sets up
//! logging, hands over to the master, and turns every error into one line
//! and an exit status that the script passes to `sys.exit`.
//!
//! The master then runs inside that interpreter with the GIL released: it is
//! single-threaded either way, and a thread a config file started keeps
//! running while the master waits for signals.

use std::ffi::OsString;
use std::path::PathBuf;

use pyo3::prelude::*;

use crate::config::Command;
use crate::master::Relaunch;
use crate::sys::process::ProcTitle;

#[pymodule]
#[pyo3(name = "_corral")]
fn corral_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

/// Run corral with `args` (the command line after the program name).
/// `executable` and `relaunch` are the interpreter and the full command
/// line a USR2 re-exec runs. Returns the exit status.
#[pyfunction]
fn run(py: Python<'_>, args: Vec<OsString>, executable: PathBuf, relaunch: Vec<OsString>) -> i32 {
    // The process title is written over the argv area the kernel set up;
    // Python keeps its own copies of the arguments, so nothing reads it.
    let title = ProcTitle::locate();
    crate::wsgi::mark_python_host();
    let relaunch = Relaunch {
        program: executable,
        argv: relaunch,
    };
    py.detach(move || main(args, relaunch, title))
}

/// `corral reload PID`: HUP the master PID and wait until its new workers
/// serve (exit 0), or until it says the new code failed (exit 1).
fn reload_client(args: &[OsString]) -> i32 {
    let pid = match args {
        [pid] => pid
            .to_str()
            .and_then(|p| p.parse::<i32>().ok())
            .filter(|p| *p > 0),
        _ => None,
    };
    let Some(pid) = pid else {
        eprintln!("usage: corral reload PID (the master's pid, e.g. $MAINPID)");
        return crate::exit::FAILURE;
    };
    crate::signals::request_reload(pid, std::time::Duration::from_secs(600))
}

fn main(args: Vec<OsString>, relaunch: Relaunch, title: Option<ProcTitle>) -> i32 {
    // Clients, not servers; Ctrl-C must stop them, so before any signal is
    // blocked. `corral ctl ...` talks to a master's control socket;
    // `corral reload PID` reloads a master and waits until it is done
    // (`ExecReload=`).
    match args.first().and_then(|a| a.to_str()) {
        Some("ctl") => return crate::control::main(&args[1..]),
        Some("reload") => return reload_client(&args[1..]),
        _ => {}
    }
    // First, so every thread the config file or a preloaded app starts
    // inherits the mask (see `block_master_signals`). They stay blocked to
    // the end: a signal arriving while the master stops is not left to kill
    // it with a status other than the one it returns.
    if let Err(e) = crate::signals::block_master_signals() {
        eprintln!("error: cannot block signals: {e}");
        return crate::exit::FAILURE;
    }
    crate::wsgi::import_before_fork();
    let env = |k: &str| std::env::var(k).ok();
    let settings = match crate::startup::load(&args, &env) {
        Ok(Command::Run(s)) => s,
        Ok(Command::Help(text)) => {
            print!("{text}");
            return crate::exit::OK;
        }
        Ok(Command::Version(text)) => {
            println!("{text}");
            return crate::exit::OK;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return crate::exit::FAILURE;
        }
    };
    let start_dir = std::env::current_dir().unwrap_or_else(|_| "/".into());
    // Before `--check-config` too: it imports the app the way a worker
    // would, from the directory the app lives in.
    if let Some(dir) = &settings.chdir {
        if let Err(e) = std::env::set_current_dir(dir) {
            eprintln!("error: --chdir {}: {e}", dir.display());
            return crate::exit::FAILURE;
        }
    }
    if let Some(code) = crate::startup::early_exit(&settings) {
        return code;
    }
    if let Err(e) = crate::wsgi::init_interpreter(&crate::config::interpreter_options(&settings)) {
        eprintln!("error: {e}");
        return crate::exit::FAILURE;
    }
    if let Err(e) = crate::logging::init(&crate::config::log_config(&settings)) {
        eprintln!("error: cannot open log file: {e}");
        return crate::exit::FAILURE;
    }
    if let Err(e) = crate::hooks::on_starting(&settings, settings.workers) {
        tracing::error!("{e}");
        return crate::exit::FAILURE;
    }
    let mut argv = vec![OsString::from("corral")];
    argv.extend(args);
    crate::master::run(*settings, argv, relaunch, start_dir, title)
}
