//! Start-up: from the command line to the settings the master runs with,
//! at start and again on SIGHUP. It reads the command line and
//! `*_CMD_ARGS`, runs the config file (through `hooks`) when there is one,
//! resolves the settings, installs the file's hooks, applies `raw_env` to
//! the process environment, and answers `--check-config` and
//! `--print-config`, which exit instead of serving.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use crate::config::{self, Command, ConfigError, Parsed, Settings};
use crate::{hooks, wsgi};

/// The directory the first configuration was read from: a relative config
/// path keeps meaning the same file after `--chdir`, on SIGHUP.
static BASE_DIR: OnceLock<PathBuf> = OnceLock::new();
/// What `raw_env` overwrote: `(KEY, previous value)`, restored before the
/// next configuration's `raw_env` is applied.
static RAW_ENV_SAVED: Mutex<Vec<(String, Option<String>)>> = Mutex::new(Vec::new());

/// The config file to read: `-c`, else `./corral.conf.py`, else
/// `./gunicorn.conf.py` if one exists.
fn config_spec(layers: &[config::Layer]) -> Option<String> {
    let base = BASE_DIR.get_or_init(|| std::env::current_dir().unwrap_or_else(|_| "/".into()));
    match config::config_file_named(layers) {
        Some(spec) => {
            if let Some(module) = spec.strip_prefix("python:") {
                return Some(format!("python:{module}"));
            }
            let path = spec.strip_prefix("file:").unwrap_or(&spec);
            Some(base.join(path).to_string_lossy().into_owned())
        }
        None => ["corral.conf.py", "gunicorn.conf.py"]
            .iter()
            .map(|n| base.join(n))
            .find(|p| p.is_file())
            .map(|p| p.to_string_lossy().into_owned()),
    }
}

/// The interpreter options the command line alone gives: only its
/// `--pythonpath` can matter for importing a `python:` config module; the
/// final value is added after resolving.
fn early_interpreter_options(layers: &[config::Layer]) -> wsgi::InterpreterOptions {
    let pythonpath = layers
        .iter()
        .find_map(|l| l.get("pythonpath"))
        .map(|p| {
            p.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    wsgi::InterpreterOptions { pythonpath }
}

/// Read the whole configuration: command line, `CORRAL_CMD_ARGS` /
/// `GUNICORN_CMD_ARGS`, the config file, defaults. On success the file's
/// hooks become the active ones and `raw_env` is applied to the process
/// environment (after undoing the previous configuration's); on error
/// nothing changes.
pub fn load(
    args: &[OsString],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Command, ConfigError> {
    let mut layers = match config::command_line(args, env)? {
        Parsed::Help(t) => return Ok(Command::Help(t)),
        Parsed::Version(t) => return Ok(Command::Version(t)),
        Parsed::Layers(l) => l,
    };
    let mut file_hooks = Vec::new();
    let spec = config_spec(&layers);
    if let Some(spec) = &spec {
        wsgi::init_interpreter(&early_interpreter_options(&layers)).map_err(ConfigError)?;
        let file = hooks::read_file(spec)?;
        layers.push(file.layer);
        file_hooks = file.hooks;
    }
    let mut settings = config::finish(&layers, env)?;
    if spec.is_some() && settings.config.is_none() {
        // Show which file was read (the default one, found by looking).
        settings.config = spec.clone();
    }
    if settings.logconfig_dict.is_some() || spec.is_some() {
        // A config file started Python in the master (before `--chdir`):
        // make imports see what a worker's interpreter would.
        wsgi::init_interpreter(&early_interpreter_options(&layers)).map_err(ConfigError)?;
        let mut front: Vec<String> = Vec::new();
        if let Some(dir) = &settings.chdir {
            let base = BASE_DIR.get().cloned().unwrap_or_default();
            front.push(base.join(dir).to_string_lossy().into_owned());
        }
        front.extend(settings.pythonpath.iter().cloned());
        wsgi::configure_python(&front, settings.logconfig_dict.as_deref())
            .map_err(|e| ConfigError(format!("logconfig_dict: {e}")))?;
    }
    hooks::install(file_hooks);
    apply_raw_env(&settings);
    Ok(Command::Run(Box::new(settings)))
}

/// Set the environment variables `raw_env` names, after restoring what the
/// previous configuration's `raw_env` replaced (so a variable dropped from
/// the file on SIGHUP goes away, as in gunicorn).
pub fn apply_raw_env(settings: &Settings) {
    let mut saved = RAW_ENV_SAVED.lock().unwrap_or_else(|e| e.into_inner());
    let mut touched: Vec<String> = Vec::new();
    // The master is single-threaded here: nothing reads the environment
    // concurrently.
    for (k, old) in saved.drain(..).rev() {
        match old {
            Some(v) => std::env::set_var(&k, v),
            None => std::env::remove_var(&k),
        }
        touched.push(k);
    }
    for (k, v) in &settings.raw_env {
        saved.push((k.clone(), std::env::var(k).ok()));
        std::env::set_var(k, v);
        touched.push(k.clone());
    }
    // Python copied the environment into os.environ at start-up.
    let keys: Vec<&str> = touched.iter().map(String::as_str).collect();
    wsgi::sync_environ(&keys);
}

/// `--check-config` and `--print-config`: `Some(exit code)` when one of
/// them was asked for and corral must exit instead of serving.
pub fn early_exit(settings: &Settings) -> Option<i32> {
    if settings.print_config {
        print!("{}", settings.print_text());
        return Some(crate::exit::OK);
    }
    if settings.check_config {
        let app = settings.app.as_deref().unwrap_or_default();
        let loaded = wsgi::init_interpreter(&config::interpreter_options(settings))
            .map_err(|e| e.to_string())
            .and_then(|()| {
                wsgi::load_app(app)
                    .map(drop)
                    .map_err(|e| match e.traceback {
                        Some(tb) => format!("{}\n{}", e.summary, tb.trim_end()),
                        None => e.summary,
                    })
            });
        return Some(match loaded {
            Ok(()) => {
                println!(
                    "Configuration OK: {}",
                    settings.config.as_deref().unwrap_or("no config file")
                );
                crate::exit::OK
            }
            Err(e) => {
                eprintln!("error: {e}");
                crate::exit::FAILURE
            }
        });
    }
    None
}
