//! statsd metrics with gunicorn's names and types, so dashboards built for
//! gunicorn read corral unchanged: `gunicorn.requests` and
//! `gunicorn.request.status.NNN` (counters) and `gunicorn.request.duration`
//! (a timer, in milliseconds) for every request, `gunicorn.workers` (a
//! gauge) when the number of workers changes, and `gunicorn.log.critical`,
//! `.error` and `.warning` (counters) for every such log line — with
//! `--statsd-prefix` in front and `--dogstatsd-tags` after, as gunicorn
//! writes them.
//!
//! Sending never holds a request up: the socket is non-blocking and
//! connected once, a failed send is dropped (statsd is UDP: a lost metric
//! is the protocol's normal), and lines are gathered into datagrams of at
//! most [`DATAGRAM`] bytes, several metrics each, rather than one system
//! call per metric (gunicorn sends one datagram per metric; statsd servers
//! read newline-separated metrics in one datagram). What is gathered goes
//! out when the datagram is full, and otherwise at the latest when the
//! owner of the process's loop calls [`flush`] (the master every loop, a
//! worker every half second).

use std::io;
use std::net::{ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The largest datagram sent: fits the smallest common path MTU with its
/// headers, as statsd clients conventionally do.
pub const DATAGRAM: usize = 1432;

/// Where metrics go (`--statsd-host`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Udp { host: String, port: u16 },
    Unix(PathBuf),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Udp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Target::Udp { host, port } => write!(f, "{host}:{port}"),
            Target::Unix(p) => write!(f, "unix://{}", p.display()),
        }
    }
}

impl Target {
    /// gunicorn's `statsd_host`: `HOST:PORT`, `HOST` (port 8125),
    /// `[IPV6]:PORT`, `unix:PATH` or `unix://PATH`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if let Some(rest) = raw.strip_prefix("unix:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err("expected unix:PATH".into());
            }
            return Ok(Target::Unix(PathBuf::from(path)));
        }
        let (host, port) = if let Some(rest) = raw.strip_prefix('[') {
            let (h, after) = rest
                .split_once(']')
                .ok_or("expected [IPV6]:PORT".to_string())?;
            (h, after.strip_prefix(':'))
        } else {
            match raw.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (raw, None),
            }
        };
        if host.is_empty() {
            return Err("expected HOST:PORT or unix:PATH".into());
        }
        let port = match port {
            None => 8125,
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| format!("{p:?} is not a port number"))?,
        };
        Ok(Target::Udp {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

/// What [`init`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub target: Target,
    /// `--statsd-prefix`, as given.
    pub prefix: String,
    /// `--dogstatsd-tags`, as given (`env:prod,app:x`).
    pub tags: String,
}

enum Socket {
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

struct Sink {
    socket: Socket,
    prefix: String,
    /// `|#tags`, or empty.
    tags: String,
    buf: Vec<u8>,
}

static ON: AtomicBool = AtomicBool::new(false);
static SINK: Mutex<Option<Sink>> = Mutex::new(None);

/// gunicorn's prefix rule: a prefix ends with exactly one dot (`app`,
/// `app.` and `app..` all mean `app.`); a one-character prefix is left as
/// it is, as gunicorn's pattern leaves it.
fn normalize_prefix(p: &str) -> String {
    let trimmed = p.trim_end_matches('.');
    if p.chars().count() < 2 || trimmed.is_empty() {
        return p.to_owned();
    }
    format!("{trimmed}.")
}

/// Connect to the statsd server (once, in the master: the workers it forks
/// share the socket), or turn metrics off with `None`.
pub fn init(cfg: Option<&Config>) -> io::Result<()> {
    let mut sink = SINK.lock().unwrap_or_else(|e| e.into_inner());
    let Some(cfg) = cfg else {
        *sink = None;
        ON.store(false, Ordering::Release);
        return Ok(());
    };
    let socket = match &cfg.target {
        Target::Unix(path) => {
            let s = UnixDatagram::unbound()?;
            s.connect(path)?;
            s.set_nonblocking(true)?;
            Socket::Unix(s)
        }
        Target::Udp { host, port } => {
            // A name resolves to IPv4 first, as gunicorn's AF_INET socket
            // does (`localhost` is often ::1 first, and statsd servers
            // commonly listen on IPv4 only); `[::1]` asks for IPv6.
            let addrs: Vec<_> = (host.as_str(), *port).to_socket_addrs()?.collect();
            let addr = addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or(addrs.first())
                .copied()
                .ok_or_else(|| io::Error::other(format!("{host} has no address")))?;
            let any = if addr.is_ipv6() {
                "[::]:0"
            } else {
                "0.0.0.0:0"
            };
            let s = UdpSocket::bind(any)?;
            s.connect(addr)?;
            s.set_nonblocking(true)?;
            Socket::Udp(s)
        }
    };
    let tags = if cfg.tags.is_empty() {
        String::new()
    } else {
        format!("|#{}", cfg.tags)
    };
    *sink = Some(Sink {
        socket,
        prefix: normalize_prefix(&cfg.prefix),
        tags,
        buf: Vec::with_capacity(DATAGRAM),
    });
    ON.store(true, Ordering::Release);
    Ok(())
}

pub fn enabled() -> bool {
    ON.load(Ordering::Acquire)
}

/// In a forked worker: forget what the master had gathered (the master
/// sends it), keep the socket.
pub fn after_fork() {
    if enabled() {
        if let Some(s) = SINK.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            s.buf.clear();
        }
    }
}

impl Sink {
    fn line(&mut self, name: &str, value: std::fmt::Arguments<'_>, kind: &str) {
        let line = format!("{}{name}:{value}|{kind}{}", self.prefix, self.tags);
        if !self.buf.is_empty() && self.buf.len() + 1 + line.len() > DATAGRAM {
            self.send();
        }
        if !self.buf.is_empty() {
            self.buf.push(b'\n');
        }
        self.buf.extend_from_slice(line.as_bytes());
    }

    fn send(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        // Dropped when the server is away or the buffer full: never wait.
        let _ = match &self.socket {
            Socket::Udp(s) => s.send(&self.buf),
            Socket::Unix(s) => s.send(&self.buf),
        };
        self.buf.clear();
    }
}

fn with(f: impl FnOnce(&mut Sink)) {
    if !enabled() {
        return;
    }
    if let Some(s) = SINK.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        f(s);
    }
}

pub fn increment(name: &str, n: u64) {
    with(|s| s.line(name, format_args!("{n}"), "c|@1.0"));
}

pub fn gauge(name: &str, value: u64) {
    with(|s| s.line(name, format_args!("{value}"), "g"));
}

/// One request, as gunicorn's access hook reports it.
pub fn request(status: u16, duration: Duration) {
    with(|s| {
        let ms = duration.as_secs_f64() * 1000.0;
        s.line("gunicorn.request.duration", format_args!("{ms:.3}"), "ms");
        s.line("gunicorn.requests", format_args!("1"), "c|@1.0");
        s.line(
            &format!("gunicorn.request.status.{status}"),
            format_args!("1"),
            "c|@1.0",
        );
    });
}

/// Send what has been gathered.
pub fn flush() {
    with(Sink::send);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_read_as_gunicorn_reads_them() {
        let udp = |h: &str, p| Target::Udp {
            host: h.into(),
            port: p,
        };
        assert_eq!(Target::parse("localhost:9125"), Ok(udp("localhost", 9125)));
        assert_eq!(
            Target::parse("Stats.Example"),
            Ok(udp("stats.example", 8125))
        );
        assert_eq!(Target::parse("[::1]:8126"), Ok(udp("::1", 8126)));
        assert_eq!(
            Target::parse("unix:///run/statsd.sock"),
            Ok(Target::Unix("/run/statsd.sock".into()))
        );
        assert_eq!(
            Target::parse("unix:/run/statsd.sock"),
            Ok(Target::Unix("/run/statsd.sock".into()))
        );
        assert!(Target::parse("host:port").is_err());
        assert!(Target::parse("unix:").is_err());
    }

    #[test]
    fn prefixes_end_in_one_dot() {
        assert_eq!(normalize_prefix(""), "");
        assert_eq!(normalize_prefix("app"), "app.");
        assert_eq!(normalize_prefix("app..."), "app.");
        assert_eq!(normalize_prefix("my.app"), "my.app.");
        assert_eq!(normalize_prefix("a"), "a");
    }

    #[test]
    fn lines_gather_into_datagrams() {
        let dir = std::env::temp_dir().join(format!("corral-statsd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        init(Some(&Config {
            target: Target::Unix(path.clone()),
            prefix: "app".into(),
            tags: "env:test".into(),
        }))
        .unwrap();
        request(200, Duration::from_micros(1500));
        gauge("gunicorn.workers", 2);
        flush();
        let mut buf = [0u8; 2048];
        let n = server.recv(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        // (Log lines other tests count meanwhile are left out.)
        assert_eq!(
            text.lines()
                .filter(|l| !l.contains(".log."))
                .collect::<Vec<_>>(),
            [
                "app.gunicorn.request.duration:1.500|ms|#env:test",
                "app.gunicorn.requests:1|c|@1.0|#env:test",
                "app.gunicorn.request.status.200:1|c|@1.0|#env:test",
                "app.gunicorn.workers:2|g|#env:test",
            ]
        );
        // Many lines: several datagrams, none over the limit.
        for _ in 0..200 {
            increment("test.many", 1);
        }
        flush();
        server.set_nonblocking(true).unwrap();
        let mut lines = 0;
        while let Ok(n) = server.recv(&mut buf) {
            assert!(n <= DATAGRAM, "{n}");
            lines += String::from_utf8_lossy(&buf[..n])
                .lines()
                .filter(|l| l.contains("test.many"))
                .count();
        }
        assert_eq!(lines, 200);
        init(None).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
