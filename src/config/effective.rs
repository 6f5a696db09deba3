//! The effective value of every setting, as typed values: what
//! `--print-config` prints and what hook code reads as `server.cfg.NAME`.
//! The values are shown the way a gunicorn config file would spell them
//! (`bind = ['127.0.0.1:8000']`, `timeout = 30`), so hooks written for
//! gunicorn read the types they expect.

use super::{AllowIp, BindSpec, LogLevel, Settings, WorkerClass, SETTINGS};

/// A setting's value, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Shown {
    None,
    Bool(bool),
    Int(i64),
    Str(String),
    List(Vec<String>),
    /// A dict of strings (`secure_scheme_headers`).
    Dict(Vec<(String, String)>),
    /// A dict given as JSON text (`logconfig_dict`).
    Json(String),
}

fn opt_str(v: &Option<impl ToString>) -> Shown {
    v.as_ref()
        .map_or(Shown::None, |v| Shown::Str(v.to_string()))
}

fn path(v: &Option<std::path::PathBuf>) -> Shown {
    v.as_ref()
        .map_or(Shown::None, |p| Shown::Str(p.display().to_string()))
}

fn int(n: impl TryInto<i64>) -> Shown {
    Shown::Int(n.try_into().unwrap_or(i64::MAX))
}

fn ips(list: &[AllowIp]) -> Shown {
    Shown::List(
        list.iter()
            .map(|a| match a {
                AllowIp::Any => "*".to_string(),
                AllowIp::Unix => "unix".to_string(),
                AllowIp::Net(ip, p) if (ip.is_ipv4() && *p == 32) || *p == 128 => ip.to_string(),
                AllowIp::Net(ip, p) => format!("{ip}/{p}"),
            })
            .collect(),
    )
}

impl Settings {
    /// The value of the setting called `name`, or `None` for a name that is
    /// not in the table.
    pub fn shown(&self, name: &str) -> Option<Shown> {
        let s = self;
        Some(match name {
            "config" => opt_str(&s.config),
            "check_config" => Shown::Bool(s.check_config),
            "print_config" => Shown::Bool(s.print_config),
            "wsgi_app" => opt_str(&s.app),
            "bind" => Shown::List(
                s.bind
                    .iter()
                    .map(|b| match b {
                        BindSpec::Tcp(_, shown) => shown.clone(),
                        BindSpec::Unix(p) => format!("unix:{}", p.display()),
                        BindSpec::Fd(n) => format!("fd://{n}"),
                    })
                    .collect(),
            ),
            "backlog" => int(s.backlog),
            "reuse_port" => Shown::Bool(s.reuse_port),
            "workers" => int(s.workers),
            "worker_class" => Shown::Str(
                match s.worker_class {
                    WorkerClass::Sync => "sync",
                    WorkerClass::Gthread => "gthread",
                }
                .into(),
            ),
            "threads" => int(s.threads),
            "max_requests" => int(s.max_requests),
            "max_requests_jitter" => int(s.max_requests_jitter),
            "timeout" => int(s.timeout.as_secs()),
            "graceful_timeout" => int(s.graceful_timeout.as_secs()),
            "keepalive" => int(s.keepalive.as_secs()),
            "worker_connections" => int(s.worker_connections),
            "header_timeout" => int(s.header_timeout.as_secs()),
            "body_timeout" => int(s.body_timeout.as_secs()),
            "queue_timeout" => int(s.queue_timeout.as_secs()),
            "max_worker_memory" => int(s.max_worker_memory),
            "limit_request_line" => int(s.limit_request_line),
            "limit_request_fields" => int(s.limit_request_fields),
            "limit_request_field_size" => int(s.limit_request_field_size),
            "forwarded_allow_ips" => ips(&s.forwarded_allow_ips),
            "secure_scheme_headers" => Shown::Dict(s.secure_scheme_headers.clone()),
            "proxy_allow_ips" => ips(&s.proxy_allow_ips),
            "header_map" => Shown::Str(
                match s.header_map {
                    crate::http::HeaderMap::Drop => "drop",
                    crate::http::HeaderMap::Refuse => "refuse",
                    crate::http::HeaderMap::Dangerous => "dangerous",
                }
                .into(),
            ),
            "permit_obsolete_folding" => Shown::Bool(s.permit_obsolete_folding),
            "strip_header_spaces" => Shown::Bool(s.strip_header_spaces),
            "permit_unconventional_http_method" => Shown::Bool(s.permit_unconventional_http_method),
            "casefold_http_method" => Shown::Bool(s.casefold_http_method),
            "preload_app" => Shown::Bool(s.preload_app),
            "chdir" => path(&s.chdir),
            "pythonpath" => Shown::List(s.pythonpath.clone()),
            "raw_env" => Shown::List(s.raw_env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            "pidfile" => path(&s.pidfile),
            "user" => opt_str(&s.user),
            "group" => opt_str(&s.group),
            "umask" => int(s.umask),
            "worker_tmp_dir" => path(&s.worker_tmp_dir),
            "accesslog" => opt_str(&s.accesslog),
            "access_log_format" => Shown::Str(s.access_log_format.clone()),
            "errorlog" => Shown::Str(s.errorlog.clone()),
            "loglevel" => Shown::Str(
                match s.loglevel {
                    LogLevel::Debug => "debug",
                    LogLevel::Info => "info",
                    LogLevel::Warning => "warning",
                    LogLevel::Error => "error",
                    LogLevel::Critical => "critical",
                }
                .into(),
            ),
            "logconfig_dict" => s
                .logconfig_dict
                .as_ref()
                .map_or(Shown::None, |j| Shown::Json(j.clone())),
            "log_journald" => Shown::Bool(s.log_journald),
            "proc_name" => opt_str(&s.proc_name),
            _ => return None,
        })
    }

    /// Every setting of the table with its value, in table order.
    pub fn effective(&self) -> Vec<(&'static str, Shown)> {
        SETTINGS
            .iter()
            .map(|t| (t.name, self.shown(t.name).unwrap_or(Shown::None)))
            .collect()
    }

    /// `--print-config`: one `name = value` line per setting, sorted by
    /// name, values spelled as in a Python config file.
    pub fn print_text(&self) -> String {
        let mut rows = self.effective();
        rows.sort_by_key(|(n, _)| *n);
        let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        rows.iter()
            .map(|(n, v)| format!("{n:width$} = {}\n", python_literal(v)))
            .collect()
    }
}

fn py_str(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The value as Python source.
pub fn python_literal(v: &Shown) -> String {
    match v {
        Shown::None => "None".into(),
        Shown::Bool(b) => if *b { "True" } else { "False" }.into(),
        Shown::Int(n) => n.to_string(),
        Shown::Str(s) => py_str(s),
        Shown::List(l) => format!(
            "[{}]",
            l.iter().map(|s| py_str(s)).collect::<Vec<_>>().join(", ")
        ),
        Shown::Dict(d) => format!(
            "{{{}}}",
            d.iter()
                .map(|(k, v)| format!("{}: {}", py_str(k), py_str(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Shown::Json(j) => j.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_setting_has_a_value() {
        let s = super::super::resolve(&[], &|_| None).unwrap();
        for t in SETTINGS {
            assert!(s.shown(t.name).is_some(), "{} has no shown value", t.name);
        }
        let text = s.print_text();
        assert!(
            text.contains("workers                           = 1\n"),
            "{text}"
        );
        assert!(text.contains("bind                              = ['127.0.0.1:8000']\n"));
        assert!(
            text.contains("secure_scheme_headers             = {'X-FORWARDED-PROTOCOL': 'ssl', ")
        );
        assert!(text.contains("pidfile                           = None\n"));
    }
}
