//! Settings: the command line and the environment (and, through the same
//! table, a Python config file) resolved into one validated [`Settings`]
//! value.
//!
//! Every setting is one row of [`table::SETTINGS`]; the parser, the
//! validators, `--help` and `docs/configuration.md` all read that table.
//! Values arrive as raw strings grouped in [`Layer`]s, one per source, and
//! [`resolve`] picks, per setting, the highest-precedence layer that names it:
//! command line > `CORRAL_CMD_ARGS` > `GUNICORN_CMD_ARGS` > config file >
//! defaults (some of which come from `$PORT`, `$WEB_CONCURRENCY` and
//! `$FORWARDED_ALLOW_IPS`). A repeatable setting (`--bind`, `--env`) from a
//! higher layer replaces the lower layer's whole list, as in gunicorn.
//!
//! The only system access is reading `/etc/passwd` and `/etc/group` for
//! `--user`/`--group` names and resolving `--bind` hostnames; environment
//! variables come through the caller's lookup function so tests stay pure.

mod accounts;
mod argv;
/// Command-line words as a shell splits them (also the control socket's
/// commands).
pub use argv::shell_split;
mod docs;
mod effective;
pub mod gunicorn;
mod plan;
pub mod table;
mod value;

pub use effective::{python_literal, Shown};

pub use docs::{help_text, reference_markdown};
pub use plan::{
    asgi_options, interpreter_options, log_config, python_threads, statsd_config, worker_plan,
    WorkerPlan,
};
// Types of the plans other modules consume, defined where they are used.
pub use crate::logging::LogLevel;
pub use crate::wsgi::AllowIp;
pub use table::{Kind, Section, Setting, SETTINGS};

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindSpec {
    /// `HOST:PORT` or `[V6]:PORT`, resolved to one or more addresses.
    Tcp(Vec<SocketAddr>, String),
    /// `unix:PATH`.
    Unix(PathBuf),
    /// `fd://N`: an already-open listening socket.
    Fd(i32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WorkerClass {
    #[default]
    Sync,
    Gthread,
    /// ASGI 3.0 apps on an asyncio loop (`-k asgi`, and uvicorn's class
    /// names).
    Asgi,
}

pub use table::Settings;

/// `--reload-engine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReloadEngine {
    #[default]
    Auto,
    Inotify,
    Poll,
}

impl ReloadEngine {
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadEngine::Auto => "auto",
            ReloadEngine::Inotify => "inotify",
            ReloadEngine::Poll => "poll",
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    Run(Box<Settings>),
    Help(String),
    Version(String),
}

/// A bad flag, value or combination, as one line for the user. The text has
/// no `error:` prefix; `main` prints it as `error: {err}` and exits 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Environment variables holding extra command-line words, lowest
/// precedence first. gunicorn's is honoured so existing deployments keep
/// working; ours wins over it when both are set.
pub const CMD_ARGS_VARS: [&str; 2] = ["GUNICORN_CMD_ARGS", "CORRAL_CMD_ARGS"];

/// Where a layer of raw values came from; decides precedence and how errors
/// name the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A Python config file (module-level names are setting names).
    ConfigFile(String),
    /// One of [`CMD_ARGS_VARS`].
    EnvArgs(&'static str),
    /// The real command line.
    CommandLine,
}

impl Origin {
    fn rank(&self) -> usize {
        match self {
            Origin::ConfigFile(_) => 0,
            Origin::EnvArgs(var) => 1 + CMD_ARGS_VARS.iter().position(|v| v == var).unwrap_or(0),
            Origin::CommandLine => 1 + CMD_ARGS_VARS.len(),
        }
    }
}

/// Raw values from one source, not yet validated.
#[derive(Debug, Clone)]
pub struct Layer {
    origin: Origin,
    values: Vec<(&'static Setting, String)>,
    /// Config-file line of each setting's assignment, for messages.
    lines: Vec<(&'static str, u32)>,
}

impl Layer {
    pub fn new(origin: Origin) -> Layer {
        Layer {
            origin,
            values: Vec::new(),
            lines: Vec::new(),
        }
    }

    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The last value this layer gives the setting called `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(s, _)| s.name == name)
            .map(|(_, v)| v.as_str())
    }

    /// Like [`Layer::set`], remembering the config-file line the value was
    /// assigned on so that an invalid value is reported as `FILE:LINE`.
    pub fn set_at(
        &mut self,
        name: &str,
        value: impl Into<String>,
        line: u32,
    ) -> Result<(), ConfigError> {
        self.set(name, value)?;
        if let Some(s) = table::by_name(name) {
            self.lines.push((s.name, line));
        }
        Ok(())
    }

    /// Record `value` for the setting called `name` (its config-file name,
    /// e.g. `workers`). A list setting takes one call per element; a switch
    /// takes `true`/`false`. Validation happens in [`resolve`], where the
    /// error can name the source.
    pub fn set(&mut self, name: &str, value: impl Into<String>) -> Result<(), ConfigError> {
        let setting = table::by_name(name).ok_or_else(|| match gunicorn::unsupported(name) {
            Some(u) => ConfigError(format!("{}{}", u.refusal(), self.where_())),
            None => ConfigError(format!("unknown setting '{name}'{}", self.where_())),
        })?;
        self.values.push((setting, value.into()));
        Ok(())
    }

    fn where_(&self) -> String {
        self.where_line(None)
    }

    fn where_line(&self, line: Option<u32>) -> String {
        match &self.origin {
            Origin::ConfigFile(path) => match line {
                Some(n) if n > 0 => format!(" (in {path}:{n})"),
                _ => format!(" (in {path})"),
            },
            Origin::EnvArgs(var) => format!(" (from {var})"),
            Origin::CommandLine => String::new(),
        }
    }

    fn invalid(&self, setting: &Setting, value: &str, why: &str) -> ConfigError {
        let name = match self.origin {
            Origin::ConfigFile(_) => setting.name,
            _ => setting.display_name(),
        };
        let line = self
            .lines
            .iter()
            .rev()
            .find(|(n, _)| *n == setting.name)
            .map(|(_, l)| *l);
        ConfigError(format!(
            "invalid value '{value}' for {name}{}: {why}",
            self.where_line(line)
        ))
    }
}

impl Settings {
    /// Validate and apply one value to the setting called `name`, as a
    /// config-file assignment would (list settings append). For code that
    /// adjusts settings after [`resolve`]; sources with precedence should go
    /// through a [`Layer`] instead.
    pub fn apply(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let setting =
            table::by_name(name).ok_or_else(|| ConfigError(format!("unknown setting '{name}'")))?;
        (setting.apply)(self, value)
            .map_err(|why| ConfigError(format!("invalid value '{value}' for {name}: {why}")))?;
        self.settle();
        Ok(())
    }

    /// Rules that tie settings together, applied after every change.
    fn settle(&mut self) {
        // gunicorn quietly upgrades sync to gthread when threads are asked
        // for; configs written for it rely on that.
        if self.threads > 1 && self.worker_class == WorkerClass::Sync {
            self.worker_class = WorkerClass::Gthread;
        }
    }
}

/// The text a default stands for, and the environment variable it came
/// from (for error messages), given the environment.
fn default_value(
    default: table::Default,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<(String, Option<&'static str>)> {
    match default {
        table::Default::Unset => None,
        table::Default::Text(t) => Some((t.to_string(), None)),
        table::Default::FromEnv {
            var,
            template,
            fallback,
        } => match env(var).filter(|v| !v.trim().is_empty()) {
            Some(v) => Some((template.replace("{}", v.trim()), Some(var))),
            None => Some((fallback.to_string(), None)),
        },
    }
}

/// Combine layers (any order; precedence comes from their [`Origin`]) with
/// the defaults into validated settings. Does not require an application:
/// [`parse`] checks that, since a config check might not.
pub fn resolve(
    layers: &[Layer],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings, ConfigError> {
    let mut ordered: Vec<&Layer> = layers.iter().collect();
    // Highest precedence first; the sort is stable, so equal ranks keep the
    // caller's order.
    ordered.sort_by_key(|l| std::cmp::Reverse(l.origin.rank()));
    let mut settings = Settings::default();
    for setting in SETTINGS {
        let winner = ordered
            .iter()
            .find(|l| l.values.iter().any(|(s, _)| std::ptr::eq(*s, setting)));
        match winner {
            Some(layer) => {
                for (_, raw) in layer
                    .values
                    .iter()
                    .filter(|(s, _)| std::ptr::eq(*s, setting))
                {
                    (setting.apply)(&mut settings, raw)
                        .map_err(|why| layer.invalid(setting, raw, &why))?;
                }
            }
            None => {
                if let Some((raw, var)) = default_value(setting.default, env) {
                    (setting.apply)(&mut settings, &raw).map_err(|why| {
                        let from = var.map(|v| format!(" (from ${v})")).unwrap_or_default();
                        ConfigError(format!(
                            "invalid value '{raw}' for {}{from}: {why}",
                            setting.display_name()
                        ))
                    })?;
                }
            }
        }
    }
    settings.settle();
    Ok(settings)
}

/// The version line, in gunicorn's shape so scripts that grep it cope.
pub fn version_text() -> String {
    format!("corral (version {})", env!("CARGO_PKG_VERSION"))
}

/// The command line and `*_CMD_ARGS` as layers, before any config file.
#[derive(Debug)]
pub enum Parsed {
    Help(String),
    Version(String),
    Layers(Vec<Layer>),
}

/// Read the command line (`args` without the program name) and the
/// [`CMD_ARGS_VARS`] into layers. `env` looks up environment variables.
pub fn command_line(
    args: &[OsString],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Parsed, ConfigError> {
    let words = args
        .iter()
        .map(|a| {
            a.to_str().map(str::to_string).ok_or_else(|| {
                ConfigError(format!(
                    "argument '{}' is not valid UTF-8",
                    a.to_string_lossy()
                ))
            })
        })
        .collect::<Result<Vec<String>, ConfigError>>()?;
    let cli = argv::parse_words(&words);
    if cli.help {
        return Ok(Parsed::Help(help_text()));
    }
    if cli.version {
        return Ok(Parsed::Version(version_text()));
    }
    if let Some(msg) = cli.error {
        return Err(ConfigError(msg));
    }
    let mut layers = vec![Layer {
        origin: Origin::CommandLine,
        values: cli.values,
        lines: Vec::new(),
    }];
    for var in CMD_ARGS_VARS {
        let Some(text) = env(var) else { continue };
        let split = argv::shell_split(&text).map_err(|e| ConfigError(format!("{var}: {e}")))?;
        let parsed = argv::parse_words(&split);
        if parsed.help || parsed.version {
            return Err(ConfigError(format!(
                "{var}: --help and --version belong on the command line"
            )));
        }
        if let Some(msg) = parsed.error {
            return Err(ConfigError(format!("{var}: {msg}")));
        }
        layers.push(Layer {
            origin: Origin::EnvArgs(var),
            values: parsed.values,
            lines: Vec::new(),
        });
    }
    Ok(Parsed::Layers(layers))
}

/// The config file the layers name (`-c`), highest precedence first.
pub fn config_file_named(layers: &[Layer]) -> Option<String> {
    let mut ordered: Vec<&Layer> = layers.iter().collect();
    ordered.sort_by_key(|l| std::cmp::Reverse(l.origin.rank()));
    ordered
        .iter()
        .filter(|l| !matches!(l.origin, Origin::ConfigFile(_)))
        .find_map(|l| l.get("config"))
        .map(str::to_string)
}

/// Resolve all layers and check that an application was given (not needed
/// for `--print-config`).
pub fn finish(
    layers: &[Layer],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings, ConfigError> {
    let settings = resolve(layers, env)?;
    // `corral --reload PID` was the way to reload a running master before
    // --reload took gunicorn's meaning: say what to run instead.
    if settings.reload
        && settings
            .app
            .as_deref()
            .is_some_and(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(ConfigError(format!(
            "--reload reloads the workers when the app's code changes; to reload a running \
             master, run: corral reload {}",
            settings.app.as_deref().unwrap_or_default()
        )));
    }
    if settings.app.is_none() && !settings.print_config {
        return Err(ConfigError(
            "no application given; usage: corral [OPTIONS] APP (see --help)".to_string(),
        ));
    }
    Ok(settings)
}

/// Resolve the command line and environment alone, without reading any
/// config file (the binary goes through `startup::load`, which adds it).
pub fn parse(
    args: &[OsString],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Command, ConfigError> {
    match command_line(args, env)? {
        Parsed::Help(t) => Ok(Command::Help(t)),
        Parsed::Version(t) => Ok(Command::Version(t)),
        Parsed::Layers(layers) => Ok(Command::Run(Box::new(finish(&layers, env)?))),
    }
}

#[cfg(test)]
mod tests;
