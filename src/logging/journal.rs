//! Native journald logging through `tracing-journald`: every event becomes a
//! journal entry with its priority, `SYSLOG_IDENTIFIER=corral`, and the
//! capitalised fields the rest of the crate attaches (`WORKER_PID`,
//! `SIGNAL`, `EXIT_STATUS`, and the access record's fields), so operators can
//! filter with `journalctl -u app STATUS=500`.

use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::error_log::passes;
use super::AccessRecord;

/// Whether the journal's socket exists (a unit without journald, or a
/// container, falls back to the text log).
pub fn available() -> bool {
    std::path::Path::new("/run/systemd/journal/socket").exists()
}

/// The journald layer, filtered by the configured level (read from the
/// current state so a reload that changes `--log-level` applies).
pub struct JournalLayer {
    inner: tracing_journald::Layer,
}

impl JournalLayer {
    pub fn new() -> Option<Self> {
        tracing_journald::layer().ok().map(|l| Self {
            // Fields keep their own (capitalised) names: they are meant to be
            // queried as `STATUS=500`, not `F_STATUS=500`.
            inner: l
                .with_syslog_identifier("corral".to_owned())
                .with_field_prefix(None),
        })
    }
}

fn level_passes(meta: &Metadata<'_>) -> bool {
    super::current().is_some_and(|s| s.journald && passes(meta.level(), s.error.level))
}

impl<S> tracing_subscriber::Layer<S> for JournalLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        level_passes(metadata)
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if level_passes(event.metadata()) {
            self.inner.on_event(event, ctx);
        }
    }
}

/// Send an access record to the journal with its fields.
pub fn access(rec: &AccessRecord<'_>, line: &[u8]) {
    let status: u16 = rec
        .status
        .get(..3)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let remote = rec.peer.map(|p| p.ip().to_string()).unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    tracing::info!(
        target: super::ACCESS_TARGET,
        REQUEST_METHOD = %rec.head.method,
        REQUEST_PATH = %rec.head.path,
        STATUS = status,
        DURATION_USEC = rec.duration.as_micros() as u64,
        REMOTE_ADDR = %remote,
        BYTES = rec.body_bytes,
        "{}",
        line.trim_end()
    );
}
