//! The `corral` binary: parse the command line, set up logging, hand over to
//! the master, and turn every error into one line and an exit code.

use std::ffi::OsString;

use corral::config::Command;

fn main() {
    let argv: Vec<OsString> = std::env::args_os().collect();
    // Locate the argv area only after the arguments were read: the process
    // title is written over that same memory.
    let title = corral::sys::process::ProcTitle::locate();
    let env = |k: &str| std::env::var(k).ok();
    let settings = match corral::hooks::load(&argv[1..], &env) {
        Ok(Command::Run(s)) => s,
        Ok(Command::Help(text)) => {
            print!("{text}");
            return;
        }
        Ok(Command::Version(text)) => {
            println!("{text}");
            return;
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(corral::exit::FAILURE);
        }
    };
    if let Some(code) = corral::hooks::early_exit(&settings) {
        std::process::exit(code);
    }
    if settings.app.is_none() {
        eprintln!("error: no application given (usage: corral [OPTIONS] MODULE:VARIABLE)");
        std::process::exit(corral::exit::FAILURE);
    }
    let start_dir = std::env::current_dir().unwrap_or_else(|_| "/".into());
    if let Some(dir) = &settings.chdir {
        if let Err(e) = std::env::set_current_dir(dir) {
            eprintln!("error: --chdir {}: {e}", dir.display());
            std::process::exit(corral::exit::FAILURE);
        }
    }
    if let Err(e) = corral::logging::init(&corral::logging::LogConfig::from_settings(&settings)) {
        eprintln!("error: cannot open log file: {e}");
        std::process::exit(corral::exit::FAILURE);
    }
    if let Err(e) = corral::hooks::on_starting(&settings, settings.workers) {
        tracing::error!("{e}");
        std::process::exit(corral::exit::FAILURE);
    }
    let code = corral::master::run(*settings, argv, start_dir, title);
    std::process::exit(code);
}
