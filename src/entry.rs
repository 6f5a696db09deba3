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

fn main(args: Vec<OsString>, relaunch: Relaunch, title: Option<ProcTitle>) -> i32 {
    // `corral ctl ...`: a client of a running master's control socket, not
    // a server; Ctrl-C must stop it, so before any signal is blocked.
    if args.first().is_some_and(|a| a == "ctl") {
        return crate::control::main(&args[1..]);
    }
    // First, so every thread the config file or a preloaded app starts
    // inherits the mask (see `block_master_signals`). They stay blocked to
    // the end: a signal arriving while the master stops is not left to kill
    // it with a status other than the one it returns.
    if let Err(e) = crate::signals::block_master_signals() {
        eprintln!("error: cannot block signals: {e}");
        return crate::exit::FAILURE;
    }
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
    if let Some(code) = crate::startup::early_exit(&settings) {
        return code;
    }
    if let Some(pid) = settings.reload {
        // A client, not a server: reload a running master and wait.
        let limit = std::time::Duration::from_secs(600);
        return crate::signals::request_reload(pid, limit);
    }
    let start_dir = std::env::current_dir().unwrap_or_else(|_| "/".into());
    if let Some(dir) = &settings.chdir {
        if let Err(e) = std::env::set_current_dir(dir) {
            eprintln!("error: --chdir {}: {e}", dir.display());
            return crate::exit::FAILURE;
        }
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
