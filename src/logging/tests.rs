//! Tests of the line formats: the error log through a real `tracing`
//! subscriber writing to a temp file, and the access log atoms.

use std::time::{Duration, UNIX_EPOCH};

use tracing_subscriber::layer::SubscriberExt as _;

use super::access::Format;
use super::sink::tests::temp_path;
use super::*;
use crate::http::{BodyKind, Header, RequestHead, Version};

/// Run `f` under a subscriber logging at `level` to a temp file; return the lines.
fn capture(level: LogLevel, f: impl FnOnce()) -> Vec<String> {
    let path = temp_path("errorlog");
    let layer = ErrorLayer::standalone(path.to_str().unwrap(), level).unwrap();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, f);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let _ = std::fs::remove_file(&path);
    text.lines().map(str::to_string).collect()
}

/// Split `[date time zone] [pid] [LEVEL] rest`, checking each piece's shape.
fn parse_line(line: &str) -> (String, u32, String, String) {
    let rest = line.strip_prefix('[').expect("starts with [");
    let (stamp, rest) = rest.split_once("] [").expect("timestamp closes");
    let (pid, rest) = rest.split_once("] [").expect("pid closes");
    let (level, message) = rest.split_once("] ").expect("level closes");
    // 2026-11-23 18:09:48 +0000
    let b = stamp.as_bytes();
    assert_eq!(b.len(), 25, "timestamp {stamp:?}");
    for (i, c) in b.iter().enumerate() {
        match i {
            4 | 7 => assert_eq!(*c, b'-'),
            10 | 19 => assert_eq!(*c, b' '),
            13 | 16 => assert_eq!(*c, b':'),
            20 => assert!(*c == b'+' || *c == b'-'),
            _ => assert!(c.is_ascii_digit(), "timestamp {stamp:?}"),
        }
    }
    (
        stamp.to_string(),
        pid.parse().expect("numeric pid"),
        level.to_string(),
        message.to_string(),
    )
}

#[test]
fn error_line_has_gunicorn_shape() {
    let lines = capture(LogLevel::Info, || {
        tracing::info!("Booting worker");
        tracing::info!(pid = 42, path = "/a b", ok = true, "Booted");
    });
    assert_eq!(lines.len(), 2);
    let (stamp, pid, level, msg) = parse_line(&lines[0]);
    assert_eq!(pid, std::process::id());
    assert_eq!(level, "INFO");
    assert_eq!(msg, "Booting worker");
    let now = chrono::Local::now().format("%Y-%m-%d").to_string();
    assert!(stamp.starts_with(&now[..4]), "{stamp} vs {now}");
    let (_, _, _, msg) = parse_line(&lines[1]);
    assert_eq!(msg, r#"Booted pid=42 path="/a b" ok=true"#);
}

#[test]
fn levels_filter_and_map_to_gunicorn_names() {
    let emit = || {
        tracing::trace!("t");
        tracing::debug!("d");
        tracing::info!("i");
        tracing::warn!("w");
        tracing::error!("e");
        tracing::error!(critical = true, "c");
    };
    let levels = |lvl| -> Vec<String> {
        capture(lvl, emit)
            .iter()
            .map(|l| {
                let (_, _, level, msg) = parse_line(l);
                format!("{level}:{msg}")
            })
            .collect()
    };
    assert_eq!(
        levels(LogLevel::Debug),
        ["DEBUG:d", "INFO:i", "WARNING:w", "ERROR:e", "CRITICAL:c"]
    );
    assert_eq!(
        levels(LogLevel::Info),
        ["INFO:i", "WARNING:w", "ERROR:e", "CRITICAL:c"]
    );
    assert_eq!(
        levels(LogLevel::Warning),
        ["WARNING:w", "ERROR:e", "CRITICAL:c"]
    );
    assert_eq!(levels(LogLevel::Error), ["ERROR:e", "CRITICAL:c"]);
    assert_eq!(levels(LogLevel::Critical), ["CRITICAL:c"]);
}

#[test]
fn multi_line_messages_are_one_block() {
    let lines = capture(LogLevel::Info, || {
        tracing::error!("Exception in worker\nTraceback (most recent call last):\n  boom\n");
    });
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].ends_with("[ERROR] Exception in worker"));
    assert_eq!(lines[2], "  boom");
}

fn head(headers: &[(&str, &[u8])]) -> RequestHead {
    RequestHead {
        method: "GET".into(),
        target: "/caf%C3%A9?x=1&y=\"2\"".into(),
        path: "/caf%C3%A9".into(),
        query: "x=1&y=\"2\"".into(),
        version: Version::Http11,
        headers: headers
            .iter()
            .map(|(n, v)| Header {
                name: n.to_string(),
                value: v.to_vec(),
            })
            .collect(),
        body: BodyKind::None,
        keep_alive: true,
        expect_continue: false,
    }
}

fn render(format: &str, rec: &AccessRecord<'_>) -> String {
    let mut out = Vec::new();
    Format::compile(format).unwrap().render(rec, &mut out);
    String::from_utf8(out).unwrap()
}

fn record<'a>(head: &'a RequestHead, resp: &'a [(String, String)], bytes: u64) -> AccessRecord<'a> {
    AccessRecord {
        peer: Some("192.0.2.7:51000".parse().unwrap()),
        head,
        status: "200 OK",
        response_headers: resp,
        body_bytes: bytes,
        started: UNIX_EPOCH + Duration::from_secs(1_795_284_588),
        duration: Duration::from_micros(1_234_567),
    }
}

#[test]
fn default_access_format() {
    // "alice:secret" in base64.
    let h = head(&[
        ("Authorization", b"Basic YWxpY2U6c2VjcmV0"),
        ("User-Agent", b"curl/8.5"),
        ("Referer", b"http://x/"),
    ]);
    let line = render(DEFAULT_ACCESS_FORMAT, &record(&h, &[], 512));
    let t: chrono::DateTime<chrono::Local> =
        (UNIX_EPOCH + Duration::from_secs(1_795_284_588)).into();
    let stamp = t.format("[%d/%b/%Y:%H:%M:%S %z]").to_string();
    assert_eq!(
        line,
        format!(
            "192.0.2.7 - alice {stamp} \"GET /caf%C3%A9?x=1&y=\\\"2\\\" HTTP/1.1\" 200 512 \"http://x/\" \"curl/8.5\"\n"
        )
    );
    // 23/Nov/2026-style date: day/month-name/year.
    assert_eq!(&stamp[3..4], "/");
    assert!(stamp[4..7].chars().all(|c| c.is_ascii_alphabetic()));
}

#[test]
fn every_atom() {
    let h = head(&[
        ("X-Req", b"one"),
        ("x-req", b"two"),
        ("Authorization", b"Bearer abc"),
    ]);
    let resp = vec![("Content-Type".to_string(), "text/plain".to_string())];
    std::env::set_var("CORRAL_TEST_ACCESS_VAR", "envval");
    let line = render(
        "%(h)s|%(l)s|%(u)s|%(r)s|%(s)s|%(m)s|%(U)s|%(q)s|%(H)s|%(b)s|%(B)s|%(f)s|%(a)s|%(T)s|%(M)s|%(D)s|%(L)s|%(p)s|%({X-REQ}i)s|%({content-type}o)s|%({missing}o)s|%({CORRAL_TEST_ACCESS_VAR}e)s|%({CORRAL_NO_SUCH_VAR}e)s|%(zz)s|100%%",
        &record(&h, &resp, 0),
    );
    let want = format!(
        "192.0.2.7|-|-|GET /caf%C3%A9?x=1&y=\\\"2\\\" HTTP/1.1|200|GET|/caf\\xc3\\xa9|x=1&y=\\\"2\\\"|HTTP/1.1|0|0|-|-|1|1234|1234567|1.234567|<{}>|two|text/plain|-|envval|-|-|100%\n",
        std::process::id()
    );
    assert_eq!(line, want);
}

#[test]
fn values_are_escaped_against_log_injection() {
    let h = head(&[("User-Agent", b"evil\n127.0.0.1 - - \"forged\\\x7f\xff")]);
    let line = render("%(a)s", &record(&h, &[], 1));
    assert_eq!(line, "evil\\x0a127.0.0.1 - - \\\"forged\\\\\\x7f\\xff\n");
    assert_eq!(line.matches('\n').count(), 1);
}

#[test]
fn no_peer_and_http10() {
    let mut h = head(&[]);
    h.version = Version::Http10;
    let mut rec = record(&h, &[], 3);
    rec.peer = None;
    assert_eq!(render("%(h)s %(H)s %(b)s", &rec), "- HTTP/1.0 3\n");
}

#[test]
fn format_errors() {
    assert!(Format::compile("%(h)s").is_ok());
    assert!(Format::compile("%(h)d %({a(b)c}i)s").is_ok());
    assert_eq!(
        Format::compile("%(h").unwrap_err(),
        "unclosed '%(' at offset 0"
    );
    assert_eq!(
        Format::compile("%(h)x").unwrap_err(),
        "'%(h)' must be followed by 's', as in %(h)s"
    );
    assert!(Format::compile("50%")
        .unwrap_err()
        .starts_with("lone '%' at offset 2"));
    assert!(validate_access_format(DEFAULT_ACCESS_FORMAT).is_ok());
}

/// The global path: `init`, an event, an access line, `write_error_stream`
/// and `reopen`, as the master and workers use them. The only test that
/// installs the global subscriber.
#[test]
fn init_access_and_reopen_through_the_globals() {
    let error_path = temp_path("global-error");
    let access_path = temp_path("global-access");
    init(&LogConfig {
        errorlog: error_path.to_str().unwrap().into(),
        level: LogLevel::Warning,
        accesslog: Some(access_path.to_str().unwrap().into()),
        access_log_format: "%(m)s %(U)s %(s)s".into(),
        journald: false,
    })
    .unwrap();
    assert!(access_enabled());
    tracing::info!("filtered out");
    tracing::warn!(worker = 3, "kept");
    write_error_stream(b"raw app text\n");
    let h = head(&[]);
    access(&record(&h, &[], 0));
    let rotated = access_path.with_extension("1");
    std::fs::rename(&access_path, &rotated).unwrap();
    reopen().unwrap();
    access(&record(&h, &[], 0));

    let errors = std::fs::read_to_string(&error_path).unwrap();
    let old = std::fs::read_to_string(&rotated).unwrap();
    let new = std::fs::read_to_string(&access_path).unwrap();
    for p in [&error_path, &access_path, &rotated] {
        let _ = std::fs::remove_file(p);
    }
    let lines: Vec<&str> = errors.lines().collect();
    assert_eq!(lines.len(), 2, "{errors}");
    assert!(lines[0].ends_with("[WARNING] kept worker=3"), "{errors}");
    assert_eq!(lines[1], "raw app text");
    assert_eq!(old, "GET /caf\\xc3\\xa9 200\n");
    assert_eq!(new, old);
}
