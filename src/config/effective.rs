//! The effective value of every setting, as typed values: what
//! `--print-config` prints and what hook code reads as `server.cfg.NAME`.
//! The values are shown the way a gunicorn config file would spell them
//! (`bind = ['127.0.0.1:8000']`, `timeout = 30`), so hooks written for
//! gunicorn read the types they expect.

use super::{AllowIp, Settings, SETTINGS};

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

pub(super) fn opt_str(v: &Option<impl ToString>) -> Shown {
    v.as_ref()
        .map_or(Shown::None, |v| Shown::Str(v.to_string()))
}

pub(super) fn path(v: &Option<std::path::PathBuf>) -> Shown {
    v.as_ref()
        .map_or(Shown::None, |p| Shown::Str(p.display().to_string()))
}

pub(super) fn int(n: impl TryInto<i64>) -> Shown {
    Shown::Int(n.try_into().unwrap_or(i64::MAX))
}

pub(super) fn ips(list: &[AllowIp]) -> Shown {
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
        super::table::by_name(name).map(|t| (t.show)(self))
    }

    /// Every setting of the table with its value, in table order.
    pub fn effective(&self) -> Vec<(&'static str, Shown)> {
        SETTINGS.iter().map(|t| (t.name, (t.show)(self))).collect()
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
