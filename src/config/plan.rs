//! What the other modules consume, built from [`Settings`]: each plan type
//! is defined by the module that uses it, and only `config` knows how a
//! setting becomes part of one, so lower modules never name `config`.

use super::Settings;
use crate::{logging, systemd, wsgi};

/// The logging part of the settings. Journald is used when asked for, or
/// when systemd connected stderr to the journal (`JOURNAL_STREAM` names our
/// stderr).
pub fn log_config(s: &Settings) -> logging::LogConfig {
    logging::LogConfig {
        errorlog: s.errorlog.clone(),
        level: s.loglevel,
        accesslog: s.accesslog.clone(),
        access_log_format: s.access_log_format.clone(),
        journald: s.log_journald || systemd::stderr_is_journal(),
    }
}

/// How the embedded interpreter is set up, in the master (`--preload`,
/// the config file) and in each worker.
pub fn interpreter_options(s: &Settings) -> wsgi::InterpreterOptions {
    wsgi::InterpreterOptions {
        pythonpath: s.pythonpath.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_config_from_defaults() {
        let s = crate::config::resolve(&[], &|_| None).unwrap();
        let c = log_config(&s);
        assert_eq!(c.errorlog, "-");
        assert_eq!(c.level, logging::LogLevel::Info);
        assert_eq!(c.accesslog, None);
        assert_eq!(c.access_log_format, logging::DEFAULT_ACCESS_FORMAT);
    }
}
