//! Validators: each turns one raw value (as typed on the command line, found
//! in `*_CMD_ARGS`, or converted from a config-file entry) into its typed
//! form, or explains in a short phrase what was expected. The phrase is
//! completed into a full sentence naming the flag by the caller, so these
//! functions never mention flags themselves.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use super::{AllowIp, BindSpec, LogLevel, WorkerClass};

/// Port used when a bind address names only a host, as gunicorn does.
pub const DEFAULT_PORT: u16 = 8000;

/// Python's `int()` accepts surrounding blanks, a leading `+` and `_`
/// digit separators; people paste such values from config files.
fn digits(raw: &str) -> Option<String> {
    let t = raw.trim();
    let t = t.strip_prefix('+').unwrap_or(t);
    if t.is_empty() || t.starts_with('_') || t.ends_with('_') || t.contains("__") {
        return None;
    }
    if !t.chars().all(|c| c.is_ascii_digit() || c == '_') {
        return None;
    }
    Some(t.replace('_', ""))
}

/// An integer `>= 0`.
pub fn non_negative(raw: &str) -> Result<u64, String> {
    digits(raw)
        .and_then(|d| d.parse::<u64>().ok())
        .ok_or_else(|| "expected a non-negative integer".to_string())
}

/// An integer `>= 1` (worker and thread counts).
pub fn positive(raw: &str) -> Result<u64, String> {
    match digits(raw).and_then(|d| d.parse::<u64>().ok()) {
        Some(n) if n >= 1 => Ok(n),
        _ => Err("expected a positive integer".to_string()),
    }
}

/// A count that must also fit the type the consumer stores it in.
pub fn bounded<T: TryFrom<u64>>(n: u64) -> Result<T, String> {
    T::try_from(n).map_err(|_| "value is too large".to_string())
}

/// gunicorn's `auto_int` rules for the umask: `0o22`, `0x12`, `0b10010`,
/// `18`, and -- the spelling everyone actually types -- `022`, where a
/// leading zero followed by a digit means octal.
pub fn umask(raw: &str) -> Result<u32, String> {
    let n = auto_int(raw, "0o022, 022, 0x12 or 18")?;
    if n > 0o777 {
        return Err("a umask must be between 0 and 0o777".to_string());
    }
    Ok(n)
}

/// A file mode for a socket corral creates (`--control-socket-mode`), read
/// like a umask.
pub fn file_mode(raw: &str) -> Result<u32, String> {
    let n = auto_int(raw, "0o600, 0600, 0x180 or 384")?;
    if n > 0o7777 {
        return Err("a file mode must be between 0 and 0o7777".to_string());
    }
    Ok(n)
}

/// An integer as gunicorn's `auto_int` reads it: `0o`, `0x` and `0b`
/// prefixes, and a leading zero for octal.
fn auto_int(raw: &str, examples: &str) -> Result<u32, String> {
    let what = format!("expected an integer such as {examples}");
    let t = raw.trim().replace('_', "");
    let lower = t.to_ascii_lowercase();
    let (radix, body) = if let Some(rest) = lower.strip_prefix("0o") {
        (8, rest)
    } else if let Some(rest) = lower.strip_prefix("0x") {
        (16, rest)
    } else if let Some(rest) = lower.strip_prefix("0b") {
        (2, rest)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if body.is_empty() {
        return Err(what);
    }
    u32::from_str_radix(body, radix).map_err(|_| what)
}

/// `--proxy-protocol`, as gunicorn reads it: `off` (`false`, `0`,
/// `none`), `v1`, `v2`, `auto` (`true`, `1`).
pub fn proxy_mode(raw: &str) -> Result<crate::http::ProxyMode, String> {
    use crate::http::ProxyMode;
    Ok(match raw.trim().to_ascii_lowercase().as_str() {
        "off" | "false" | "0" | "none" => ProxyMode::Off,
        "v1" => ProxyMode::V1,
        "v2" => ProxyMode::V2,
        "auto" | "true" | "1" => ProxyMode::Auto,
        _ => return Err("expected off, v1, v2 or auto".into()),
    })
}

/// `--reload-engine`: gunicorn's names.
pub fn reload_engine(raw: &str) -> Result<super::ReloadEngine, String> {
    use super::ReloadEngine;
    Ok(match raw.trim().to_ascii_lowercase().as_str() {
        "auto" => ReloadEngine::Auto,
        "inotify" => ReloadEngine::Inotify,
        "poll" => ReloadEngine::Poll,
        _ => return Err("expected auto, inotify or poll".into()),
    })
}

/// `--asgi-lifespan`.
pub fn asgi_lifespan(raw: &str) -> Result<crate::asgi::Lifespan, String> {
    use crate::asgi::Lifespan;
    Ok(match raw.trim().to_ascii_lowercase().as_str() {
        "auto" => Lifespan::Auto,
        "on" => Lifespan::On,
        "off" => Lifespan::Off,
        _ => return Err("expected auto, on or off".into()),
    })
}

/// `--asgi-loop`.
pub fn asgi_loop(raw: &str) -> Result<crate::asgi::LoopKind, String> {
    use crate::asgi::LoopKind;
    Ok(match raw.trim().to_ascii_lowercase().as_str() {
        "auto" => LoopKind::Auto,
        "asyncio" => LoopKind::Asyncio,
        "uvloop" => LoopKind::Uvloop,
        _ => return Err("expected auto, asyncio or uvloop".into()),
    })
}

/// Booleans as a config file or an environment string may spell them.
pub fn boolean(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".to_string()),
    }
}

/// Any non-empty string.
pub fn non_empty(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        Err("expected a non-empty value".to_string())
    } else {
        Ok(raw.to_string())
    }
}

pub fn path(raw: &str) -> Result<PathBuf, String> {
    non_empty(raw).map(PathBuf::from)
}

pub fn log_level(raw: &str) -> Result<LogLevel, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "debug" => Ok(LogLevel::Debug),
        "info" => Ok(LogLevel::Info),
        // `warn` is what Python's logging module calls it in places.
        "warning" | "warn" => Ok(LogLevel::Warning),
        "error" => Ok(LogLevel::Error),
        "critical" => Ok(LogLevel::Critical),
        _ => Err("expected one of debug, info, warning, error, critical".to_string()),
    }
}

/// gunicorn's worker classes by every spelling its users have in their
/// units and config files: the short name, the `egg:gunicorn#` entry point
/// and the dotted class path.
pub fn worker_class(raw: &str) -> Result<WorkerClass, String> {
    let t = raw.trim();
    let short = t
        .strip_prefix("egg:gunicorn#")
        .or_else(|| t.strip_prefix("gunicorn.workers."))
        .unwrap_or(t);
    match short {
        "sync" | "sync.SyncWorker" => Ok(WorkerClass::Sync),
        "gthread" | "gthread.ThreadWorker" => Ok(WorkerClass::Gthread),
        // gunicorn's own ASGI worker, and uvicorn's classes that
        // `gunicorn -k` users name: the same ASGI 3.0 contract.
        "asgi"
        | "gasgi.ASGIWorker"
        | "uvicorn.workers.UvicornWorker"
        | "uvicorn.workers.UvicornH11Worker"
        | "uvicorn_worker.UvicornWorker" => Ok(WorkerClass::Asgi),
        _ => {
            let family = short
                .split(['.', ':'])
                .next()
                .unwrap_or(short)
                .to_ascii_lowercase();
            const ASYNC: [&str; 7] = [
                "gevent",
                "geventlet",
                "ggevent",
                "eventlet",
                "tornado",
                "gtornado",
                "gaiohttp",
            ];
            if ASYNC.iter().any(|a| family.starts_with(a)) {
                Err(
                    "this worker class is not supported by corral (sync, gthread and asgi are): \
                     for a WSGI app use gthread, for an async app asgi"
                        .to_string(),
                )
            } else {
                Err("expected sync, gthread or asgi".to_string())
            }
        }
    }
}

/// `KEY=VALUE` for `--env`.
pub fn env_pair(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err("expected KEY=VALUE".to_string()),
    }
}

/// A comma-separated list; blanks around items and empty items are dropped.
pub fn comma_list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `--forwarded-allow-ips`: `*`, addresses, CIDR networks, and `unix` for
/// peers on a Unix socket.
pub fn allow_ips(raw: &str) -> Result<Vec<AllowIp>, String> {
    comma_list(raw).iter().map(|item| allow_ip(item)).collect()
}

fn allow_ip(item: &str) -> Result<AllowIp, String> {
    if item == "*" {
        return Ok(AllowIp::Any);
    }
    if item.eq_ignore_ascii_case("unix") {
        return Ok(AllowIp::Unix);
    }
    let bad =
        || format!("'{item}' is not an IP address or network (expected e.g. 10.0.0.0/8, ::1 or *)");
    let (addr, prefix) = match item.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (item, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| bad())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => return Err(bad()),
        },
    };
    Ok(AllowIp::Net(ip, prefix))
}

/// One `--bind` value. Hostnames are resolved here, once, to every address
/// they name (`localhost` is usually both 127.0.0.1 and ::1), so that the
/// master binds what the user saw validated.
pub fn bind(raw: &str) -> Result<BindSpec, String> {
    let t = raw.trim();
    if let Some(p) = t
        .strip_prefix("unix://")
        .or_else(|| t.strip_prefix("unix:"))
    {
        if p.is_empty() {
            return Err("expected a socket path after unix:".to_string());
        }
        return Ok(BindSpec::Unix(PathBuf::from(p)));
    }
    if let Some(n) = t.strip_prefix("fd://") {
        return match n.parse::<i32>() {
            Ok(fd) if fd >= 0 => Ok(BindSpec::Fd(fd)),
            _ => Err("expected a file descriptor number after fd://".to_string()),
        };
    }
    let t = t.strip_prefix("tcp://").unwrap_or(t);
    let (host, port) = split_host_port(t)?;
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => {
            let mut found: Vec<SocketAddr> = (host, port)
                .to_socket_addrs()
                .map_err(|e| format!("cannot resolve host '{host}': {e}"))?
                .collect();
            // getaddrinfo repeats an address once per socket type.
            let mut seen = Vec::new();
            found.retain(|a| {
                let new = !seen.contains(a);
                seen.push(*a);
                new
            });
            if found.is_empty() {
                return Err(format!("host '{host}' has no addresses"));
            }
            found
        }
    };
    let shown = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Ok(BindSpec::Tcp(addrs, shown))
}

fn split_host_port(t: &str) -> Result<(&str, u16), String> {
    let port_of = |p: &str| -> Result<u16, String> {
        p.parse::<u16>()
            .map_err(|_| format!("'{p}' is not a port number (0-65535)"))
    };
    if let Some(rest) = t.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| "missing ']' after an IPv6 address".to_string())?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("'{host}' is not an IPv6 address"));
        }
        return match after {
            "" => Ok((host, DEFAULT_PORT)),
            _ => match after.strip_prefix(':') {
                Some(p) => Ok((host, port_of(p)?)),
                None => Err("expected ':PORT' after ']'".to_string()),
            },
        };
    }
    match t.matches(':').count() {
        0 => Ok((t, DEFAULT_PORT)),
        1 => {
            let (h, p) = t.split_once(':').unwrap_or((t, ""));
            Ok((h, port_of(p)?))
        }
        _ => Err("IPv6 addresses must be written in brackets, e.g. [::1]:8000".to_string()),
    }
}

/// An application reference: `module`, `module:name` or
/// `module:factory(args)`. Only the shape is checked; importing is the
/// worker's business.
pub fn app(raw: &str) -> Result<String, String> {
    let t = raw.trim();
    let module = t.split(':').next().unwrap_or("");
    let ok_module = !module.is_empty()
        && module
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_alphanumeric() || c == '_'));
    if !ok_module {
        return Err("expected MODULE, MODULE:VARIABLE or MODULE:FACTORY(ARGS)".to_string());
    }
    if let Some((_, obj)) = t.split_once(':') {
        if obj.is_empty() {
            return Err("expected a variable or factory name after ':'".to_string());
        }
    }
    Ok(t.to_string())
}

/// `secure_scheme_headers`: `NAME=VALUE` pairs separated by commas (the
/// form a config file's dict is turned into); empty means none.
pub fn scheme_headers(raw: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for item in comma_list(raw) {
        match item.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() && is_token(k.trim()) => {
                out.push((k.trim().to_ascii_uppercase(), v.trim().to_string()))
            }
            _ => {
                return Err(format!(
                    "'{item}' is not HEADER=VALUE (expected a dict of header names to values)"
                ))
            }
        }
    }
    Ok(out)
}

fn is_token(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

pub fn header_map(raw: &str) -> Result<crate::http::HeaderMap, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "drop" => Ok(crate::http::HeaderMap::Drop),
        "refuse" => Ok(crate::http::HeaderMap::Refuse),
        "dangerous" => Ok(crate::http::HeaderMap::Dangerous),
        _ => Err("expected drop, refuse or dangerous".to_string()),
    }
}

/// A JSON object, checked only for its outer shape here; Python's `json`
/// module parses it when it is applied, and reports errors then.
pub fn json_object(raw: &str) -> Result<String, String> {
    let t = raw.trim();
    if t.starts_with('{') && t.ends_with('}') {
        Ok(t.to_string())
    } else {
        Err("expected a JSON object such as {\"version\": 1}".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_follow_python_int() {
        assert_eq!(non_negative("4"), Ok(4));
        assert_eq!(non_negative(" +1_000 "), Ok(1000));
        assert!(non_negative("-1").is_err());
        assert!(non_negative("4.5").is_err());
        assert!(non_negative("").is_err());
        assert!(non_negative("1__0").is_err());
        assert_eq!(
            positive("0"),
            Err("expected a positive integer".to_string())
        );
    }

    #[test]
    fn umask_spellings() {
        assert_eq!(umask("0"), Ok(0));
        assert_eq!(umask("022"), Ok(0o22));
        assert_eq!(umask("0o027"), Ok(0o27));
        assert_eq!(umask("0x12"), Ok(0x12));
        assert_eq!(umask("18"), Ok(18));
        assert_eq!(umask("0b111"), Ok(7));
        assert!(umask("089").is_err());
        assert!(umask("0x").is_err());
        assert!(umask("abc").is_err());
        assert!(umask("0o1000").is_err());
    }

    #[test]
    fn bind_forms() {
        let v4 = bind("10.1.2.3:81").unwrap();
        assert_eq!(
            v4,
            BindSpec::Tcp(vec!["10.1.2.3:81".parse().unwrap()], "10.1.2.3:81".into())
        );
        let host_only = bind("0.0.0.0").unwrap();
        assert_eq!(
            host_only,
            BindSpec::Tcp(vec!["0.0.0.0:8000".parse().unwrap()], "0.0.0.0:8000".into())
        );
        let v6 = bind("[::1]:9000").unwrap();
        assert_eq!(
            v6,
            BindSpec::Tcp(vec!["[::1]:9000".parse().unwrap()], "[::1]:9000".into())
        );
        assert_eq!(
            bind("[::]").unwrap(),
            BindSpec::Tcp(vec!["[::]:8000".parse().unwrap()], "[::]:8000".into())
        );
        assert_eq!(
            bind(":9001").unwrap(),
            BindSpec::Tcp(vec!["0.0.0.0:9001".parse().unwrap()], "0.0.0.0:9001".into())
        );
        assert_eq!(
            bind("tcp://127.0.0.1:5").unwrap(),
            BindSpec::Tcp(vec!["127.0.0.1:5".parse().unwrap()], "127.0.0.1:5".into())
        );
        assert_eq!(
            bind("unix:/run/app.sock").unwrap(),
            BindSpec::Unix("/run/app.sock".into())
        );
        assert_eq!(
            bind("unix:///run/app.sock").unwrap(),
            BindSpec::Unix("/run/app.sock".into())
        );
        assert_eq!(bind("fd://3").unwrap(), BindSpec::Fd(3));
    }

    #[test]
    fn bind_resolves_hostnames_to_every_address() {
        let BindSpec::Tcp(addrs, shown) = bind("localhost:8123").unwrap() else {
            panic!("localhost must be TCP");
        };
        assert_eq!(shown, "localhost:8123");
        assert!(!addrs.is_empty());
        assert!(addrs
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 8123));
        let mut dedup = addrs.clone();
        dedup.dedup();
        assert_eq!(dedup.len(), addrs.len());
    }

    #[test]
    fn bind_errors() {
        assert_eq!(
            bind("h:99999").unwrap_err(),
            "'99999' is not a port number (0-65535)"
        );
        assert_eq!(bind("h:").unwrap_err(), "'' is not a port number (0-65535)");
        assert!(bind("::1:80").unwrap_err().contains("brackets"));
        assert!(bind("[::1").unwrap_err().contains("']'"));
        assert!(bind("[nope]:80").unwrap_err().contains("not an IPv6"));
        assert!(bind("[::1]80").unwrap_err().contains("':PORT'"));
        assert!(bind("unix:").is_err());
        assert!(bind("fd://x").is_err());
        assert!(bind("fd://-1").is_err());
        assert!(bind("no-such-host.invalid:80")
            .unwrap_err()
            .contains("cannot resolve host"));
    }

    #[test]
    fn allow_ip_forms() {
        assert_eq!(allow_ips("*").unwrap(), vec![AllowIp::Any]);
        assert_eq!(
            allow_ips("127.0.0.1, ::1,10.0.0.0/8,unix").unwrap(),
            vec![
                AllowIp::Net("127.0.0.1".parse().unwrap(), 32),
                AllowIp::Net("::1".parse().unwrap(), 128),
                AllowIp::Net("10.0.0.0".parse().unwrap(), 8),
                AllowIp::Unix,
            ]
        );
        assert!(allow_ips("10.0.0.0/33").is_err());
        assert!(allow_ips("example.com")
            .unwrap_err()
            .contains("'example.com'"));
    }

    #[test]
    fn worker_class_spellings() {
        for s in [
            "sync",
            "egg:gunicorn#sync",
            "gunicorn.workers.sync.SyncWorker",
        ] {
            assert_eq!(worker_class(s), Ok(WorkerClass::Sync), "{s}");
        }
        for s in [
            "gthread",
            "egg:gunicorn#gthread",
            "gunicorn.workers.gthread.ThreadWorker",
        ] {
            assert_eq!(worker_class(s), Ok(WorkerClass::Gthread), "{s}");
        }
        for s in [
            "gevent",
            "eventlet",
            "gunicorn.workers.ggevent.GeventWorker",
            "tornado",
        ] {
            assert!(
                worker_class(s)
                    .unwrap_err()
                    .contains("not supported by corral"),
                "{s}"
            );
        }
        assert_eq!(
            worker_class("fast"),
            Err("expected sync, gthread or asgi".to_string())
        );
        for s in [
            "asgi",
            "egg:gunicorn#asgi",
            "gunicorn.workers.gasgi.ASGIWorker",
            "uvicorn.workers.UvicornWorker",
            "uvicorn.workers.UvicornH11Worker",
            "uvicorn_worker.UvicornWorker",
        ] {
            assert_eq!(worker_class(s), Ok(WorkerClass::Asgi), "{s}");
        }
    }

    #[test]
    fn app_shapes() {
        assert!(app("pkg.mod:app").is_ok());
        assert!(app("mod").is_ok());
        assert!(app("mod:create_app('x', debug=True)").is_ok());
        assert!(app(":app").is_err());
        assert!(app("mod:").is_err());
        assert!(app("a..b:app").is_err());
        assert!(app("a/b:app").is_err());
    }

    #[test]
    fn small_validators() {
        assert_eq!(env_pair("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert!(env_pair("nope").is_err());
        assert!(env_pair("=x").is_err());
        assert_eq!(comma_list(" a, ,b "), vec!["a", "b"]);
        assert_eq!(boolean("True"), Ok(true));
        assert_eq!(boolean("off"), Ok(false));
        assert!(boolean("maybe").is_err());
        assert_eq!(log_level("WARN"), Ok(LogLevel::Warning));
        assert!(log_level("trace").is_err());
        assert!(non_empty("").is_err());
    }
}
