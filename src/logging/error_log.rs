//! The error log as a `tracing` layer: each event becomes one line in
//! gunicorn's format, `[2026-11-23 18:09:48 +0000] [PID] [LEVEL] message`,
//! with any other fields appended as ` key=value`.

use std::fmt::Write as _;
use std::sync::Arc;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata};
use tracing_subscriber::layer::Context;

use super::sink::Sink;
use super::LogLevel;

/// Where the lines go and which ones pass.
#[derive(Debug)]
pub struct ErrorLog {
    pub sink: Sink,
    pub level: LogLevel,
    /// Lines go to the journal instead (stderr is the journal, and the
    /// journald layer already wrote the event natively).
    pub muted: bool,
}

/// Whether a `tracing` level can pass the configured level at all. TRACE
/// never does: gunicorn has no such level, and `--log-level debug` should
/// be exactly as loud as gunicorn's.
pub fn passes(level: &Level, configured: LogLevel) -> bool {
    let needed = match configured {
        LogLevel::Debug => Level::DEBUG,
        LogLevel::Info => Level::INFO,
        LogLevel::Warning => Level::WARN,
        LogLevel::Error | LogLevel::Critical => Level::ERROR,
    };
    *level != Level::TRACE && *level <= needed
}

/// The `tracing` ceiling matching a configured level.
pub fn ceiling(configured: LogLevel) -> tracing::level_filters::LevelFilter {
    use tracing::level_filters::LevelFilter;
    match configured {
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Warning => LevelFilter::WARN,
        LogLevel::Error | LogLevel::Critical => LevelFilter::ERROR,
    }
}

/// Collects an event's fields: the message, the `critical` marker, and the
/// rest rendered as ` key=value`.
#[derive(Default)]
struct Fields {
    message: String,
    critical: bool,
    extra: String,
}

/// Fields spelled in capitals (`WORKER_PID`, `STATUS`, ...) are journal
/// fields: they exist for structured sinks and would only repeat the message
/// in the text log.
fn journal_only(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

impl Fields {
    fn push_extra(&mut self, name: &str, value: &str) {
        if journal_only(name) {
            return;
        }
        let plain = !value.is_empty()
            && !value
                .chars()
                .any(|c| c.is_whitespace() || c == '"' || c == '=');
        if plain {
            let _ = write!(self.extra, " {name}={value}");
        } else {
            let _ = write!(self.extra, " {name}={value:?}");
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.push_extra(field.name(), value);
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "critical" {
            self.critical = value;
        } else {
            self.push_extra(field.name(), if value { "true" } else { "false" });
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else if !field.name().starts_with("log.") && !journal_only(field.name()) {
            let text = format!("{value:?}");
            self.push_extra(field.name(), &text);
        }
    }
}

/// gunicorn's `gunicorn.log.critical|error|warning` counters, one per line
/// logged at that level.
fn count_for_statsd(event: &Event<'_>) {
    if !crate::statsd::enabled() {
        return;
    }
    let name = match *event.metadata().level() {
        Level::ERROR => {
            let mut fields = Fields::default();
            event.record(&mut fields);
            if fields.critical {
                "gunicorn.log.critical"
            } else {
                "gunicorn.log.error"
            }
        }
        Level::WARN => "gunicorn.log.warning",
        _ => return,
    };
    crate::statsd::increment(name, 1);
}

/// Render one event as a complete line, or `None` if the level filter
/// drops it (CRITICAL needs the `critical` field, known only here).
pub fn format_event(event: &Event<'_>, configured: LogLevel) -> Option<Vec<u8>> {
    let meta = event.metadata();
    if !passes(meta.level(), configured) {
        return None;
    }
    let mut fields = Fields::default();
    event.record(&mut fields);
    let label = match *meta.level() {
        Level::ERROR if fields.critical => "CRITICAL",
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        _ => "DEBUG",
    };
    if configured == LogLevel::Critical && label != "CRITICAL" {
        return None;
    }
    let now = chrono::Local::now();
    // The pid is read per line, not cached: the master forks workers after
    // `init`, and a cached value would be the master's in every worker.
    let mut line = format!(
        "[{}] [{}] [{label}] {}{}",
        now.format("%Y-%m-%d %H:%M:%S %z"),
        std::process::id(),
        fields.message,
        fields.extra
    );
    let trimmed = line.trim_end_matches('\n').len();
    line.truncate(trimmed);
    line.push('\n');
    Some(line.into_bytes())
}

/// Where the layer finds its error log: the global state set by `init`
/// (so a reload can change file and level), or a fixed one (tests).
#[derive(Debug, Clone)]
pub enum Target {
    Global,
    Fixed(Arc<ErrorLog>),
}

/// The `tracing` layer writing the error log.
#[derive(Debug)]
pub struct ErrorLayer {
    pub target: Target,
}

impl ErrorLayer {
    /// A layer with its own destination (`-` = stderr) and level, for a
    /// scoped subscriber: lets tests anywhere in the crate capture the error
    /// log without touching the global one that `init` installs.
    pub fn standalone(errorlog: &str, level: LogLevel) -> std::io::Result<ErrorLayer> {
        Ok(ErrorLayer {
            target: Target::Fixed(Arc::new(ErrorLog {
                sink: Sink::open(errorlog, super::sink::Dest::Stderr)?,
                level,
                muted: false,
            })),
        })
    }

    fn with_log<R>(&self, f: impl FnOnce(&ErrorLog) -> R) -> Option<R> {
        match &self.target {
            Target::Fixed(log) => Some(f(log)),
            Target::Global => super::current().map(|state| f(&state.error)),
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ErrorLayer {
    fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        self.with_log(|log| passes(metadata.level(), log.level))
            .unwrap_or(false)
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        self.with_log(|log| ceiling(log.level))
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() == super::ACCESS_TARGET {
            return;
        }
        count_for_statsd(event);
        self.with_log(|log| {
            if log.muted {
                return;
            }
            if let Some(line) = format_event(event, log.level) {
                log.sink.write_line(&line);
            }
        });
    }
}
