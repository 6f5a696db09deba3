//! `--help` and `docs/configuration.md`, both rendered from the settings
//! table so that what users read is what the parser does.

use std::fmt::Write as _;

use super::gunicorn::{HookSide, HOOKS, UNSUPPORTED};
use super::table::{Default, Kind, Section, Setting, SETTINGS};
use super::CMD_ARGS_VARS;

const WIDTH: usize = 100;

/// A default as people read it: `1, or $WEB_CONCURRENCY when set`.
fn default_text(setting: &Setting, code: fn(&str) -> String) -> Option<String> {
    match setting.default {
        Default::Unset => None,
        Default::Text(t) => Some(code(t)),
        Default::FromEnv {
            var,
            template,
            fallback,
        } => {
            let from_env = template.replace("{}", &format!("${var}"));
            Some(if template == "{}" {
                format!("{}, or {} if set", code(fallback), code(&from_env))
            } else {
                format!(
                    "{}, or {} if {} is set",
                    code(fallback),
                    code(&from_env),
                    code(&format!("${var}"))
                )
            })
        }
    }
}

fn options_column(setting: &Setting) -> String {
    if setting.kind == Kind::Positional {
        return setting.meta.to_string();
    }
    let short: Vec<&str> = setting
        .flags
        .iter()
        .copied()
        .filter(|f| !f.starts_with("--"))
        .collect();
    let long: Vec<&str> = setting
        .flags
        .iter()
        .copied()
        .filter(|f| f.starts_with("--"))
        .collect();
    let mut col = if short.is_empty() {
        "    ".to_string()
    } else {
        format!("{}, ", short.join(", "))
    };
    col.push_str(&long.join(", "));
    match setting.kind {
        Kind::Flag => {}
        Kind::OptionalValue(_) => {
            col.push_str(" [");
            col.push_str(setting.meta);
            col.push(']');
        }
        _ => {
            col.push(' ');
            col.push_str(setting.meta);
        }
    }
    col
}

/// Wrap `text` to `WIDTH`, indenting continuation lines by `indent`.
fn wrap_into(out: &mut String, first: &str, text: &str, indent: usize) {
    let mut line = first.to_string();
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.len() + 1 + word.len() > WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = " ".repeat(indent);
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// The `--help` text.
pub fn help_text() -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "corral {}: a pre-fork HTTP server for Python WSGI applications\n\nUsage: corral [OPTIONS] APP\n",
        env!("CARGO_PKG_VERSION")
    );
    let col = SETTINGS
        .iter()
        .map(|s| options_column(s).len())
        .max()
        .unwrap_or(0)
        .min(30)
        + 4;
    for section in Section::ALL {
        let _ = writeln!(out, "{}:", section.title());
        // Config-file-only settings have no option to show.
        for s in SETTINGS
            .iter()
            .filter(|s| s.section == section && (s.kind == Kind::Positional || !s.flags.is_empty()))
        {
            let mut text = s.summary.to_string();
            if let Some(d) = default_text(s, |t| t.to_string()) {
                let _ = write!(text, " [{d}]");
            }
            let left = format!("  {}", options_column(s));
            if left.len() + 2 > col {
                out.push_str(&left);
                out.push('\n');
                wrap_into(&mut out, &" ".repeat(col), &text, col);
            } else {
                wrap_into(&mut out, &format!("{left:col$}"), &text, col);
            }
        }
        out.push('\n');
    }
    out.push_str("Other:\n");
    wrap_into(
        &mut out,
        &format!("{:col$}", "  -h, --help"),
        "Show this help and exit.",
        col,
    );
    wrap_into(
        &mut out,
        &format!("{:col$}", "  -v, --version"),
        "Show the version and exit.",
        col,
    );
    out.push('\n');
    wrap_into(
        &mut out,
        "",
        &format!(
            "Options are also read from {} (shell-quoted); the command line wins over them. \
             Full reference: docs/configuration.md.",
            CMD_ARGS_VARS
                .iter()
                .rev()
                .copied()
                .collect::<Vec<_>>()
                .join(" and ")
        ),
        0,
    );
    out
}

/// The reference document, `docs/configuration.md`.
pub fn reference_markdown() -> String {
    let code = |t: &str| format!("`{t}`");
    let mut out = String::new();
    out.push_str(
        "# Configuration reference\n\n\
         <!-- Generated from corral's settings table by `corral::config::reference_markdown()`. \
         Do not edit: run `CORRAL_REGENERATE_DOCS=1 cargo test --lib config::` instead. -->\n\n\
         corral takes gunicorn's command-line flags, with gunicorn's defaults, so a \
         gunicorn command line works after changing one word. Each setting has a name \
         (used in a Python config file, as in gunicorn) and one or more flags.\n\n\
         ## Where settings come from\n\n\
         From highest to lowest precedence:\n\n\
         1. the command line;\n\
         2. `CORRAL_CMD_ARGS`, then `GUNICORN_CMD_ARGS`: extra command-line words, split \
         like a shell would (quotes and backslashes, no expansion);\n\
         3. the config file (`-c FILE`, else `./corral.conf.py`, else `./gunicorn.conf.py`);\n\
         4. the defaults below, some of which read `PORT`, `WEB_CONCURRENCY` or \
         `FORWARDED_ALLOW_IPS`.\n\n\
         For a repeatable setting (`bind`, `raw_env`), the list from the highest source that \
         sets it replaces the lists below it. Long flags may be abbreviated to any unambiguous \
         prefix, values may follow as `--flag value` or `--flag=value`, short flags also take \
         `-w4`, and `--` ends the options. An invalid value stops corral with one line naming \
         the flag and the value, and exit status 1.\n\n\
         `-h`/`--help` prints a summary of the options below; `-v`/`--version` prints the \
         version.\n",
    );
    for section in Section::ALL {
        let _ = write!(out, "\n## {}\n", section.title());
        for s in SETTINGS.iter().filter(|s| s.section == section) {
            let _ = write!(out, "\n### `{}`\n\n", s.name);
            out.push_str("| | |\n|---|---|\n");
            let usage = match s.kind {
                Kind::Positional => "`APP` (the positional argument)".to_string(),
                _ if s.flags.is_empty() => "none (config file only)".to_string(),
                Kind::Flag => s
                    .flags
                    .iter()
                    .map(|f| code(f))
                    .collect::<Vec<_>>()
                    .join(", "),
                Kind::OptionalValue(_) => s
                    .flags
                    .iter()
                    .map(|f| code(&format!("{f} [{}]", s.meta)))
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => s
                    .flags
                    .iter()
                    .map(|f| code(&format!("{f} {}", s.meta)))
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            let _ = writeln!(out, "| Command line | {usage} |");
            let _ = writeln!(out, "| Config file | `{}` |", s.name);
            let kind = match s.kind {
                Kind::Flag => "switch (`true`/`false` in a config file)".to_string(),
                Kind::Value => "single value (the last one given wins)".to_string(),
                Kind::Append => "repeatable (each occurrence adds one)".to_string(),
                Kind::Positional => "single value".to_string(),
                Kind::OptionalValue(bare) => {
                    format!("single value; the flag alone means `{bare}`")
                }
            };
            let _ = writeln!(out, "| Kind | {kind} |");
            let default = match s.kind {
                Kind::Flag => "`false`".to_string(),
                _ => default_text(s, |t| format!("`{t}`")).unwrap_or_else(|| "unset".to_string()),
            };
            let _ = writeln!(out, "| Default | {default} |");
            let _ = write!(out, "\n{}\n", s.summary);
            if !s.details.is_empty() {
                let _ = write!(out, "\n{}\n", s.details);
            }
        }
    }
    out.push_str(
        "\n## Server hooks\n\n\
         Functions of these names in the config file are called as gunicorn calls them. \
         `server` has `cfg` (every setting above as an attribute), `pid`, `num_workers`, \
         `proc_name` and `log`; `worker` has `pid`, `ppid`, `age`, `alive`, `booted`, `cfg` \
         and `log`, and keeps attributes hook code sets on it; `req` has `method`, `uri`, \
         `path`, `query`, `version` (a tuple) and `headers` (`[(NAME, value)]`); `resp` has \
         `status` (`'200 OK'`), `status_code`, `headers` and `sent` (body bytes). `log` has \
         `debug`, `info`, `warning`, `error`, `critical` and `exception`, writing to corral's \
         error log. A hook that raises is logged with its traceback; only `on_starting` and \
         `when_ready` failing stop corral (exit 1).\n\n\
         | Hook | Runs in | When |\n|---|---|---|\n",
    );
    for h in HOOKS {
        let side = match h.side {
            HookSide::Master => "master",
            HookSide::Worker => "worker",
        };
        let _ = writeln!(out, "| `{}{}` | {side} | {} |", h.name, h.signature, h.when);
    }
    out.push_str(
        "\n## gunicorn settings corral does not implement\n\n\
         Setting one of these in a config file, or passing its flag, stops corral with a \
         message naming it, unless the value asks for what corral does anyway (listed as \
         accepted values).\n\n\
         | Setting | Flags | Accepted values | Why |\n|---|---|---|---|\n",
    );
    for u in UNSUPPORTED {
        let flags = u
            .flags
            .iter()
            .map(|f| format!("`{f}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let ok = u
            .harmless
            .iter()
            .map(|v| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(out, "| `{}` | {flags} | {ok} | {} |", u.name, u.why);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/configuration.md` must be exactly what the table generates.
    #[test]
    fn committed_reference_matches_the_table() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md");
        let generated = reference_markdown();
        if std::env::var_os("CORRAL_REGENERATE_DOCS").is_some() {
            std::fs::write(&path, &generated).expect("write docs/configuration.md");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/configuration.md is out of date; run CORRAL_REGENERATE_DOCS=1 cargo test --lib config::"
        );
    }

    #[test]
    fn every_setting_appears_in_help_and_reference() {
        let help = help_text();
        let reference = reference_markdown();
        for s in SETTINGS {
            for f in s.flags {
                assert!(help.contains(f), "{f} missing from --help");
                assert!(reference.contains(f), "{f} missing from the reference");
            }
            assert!(reference.contains(&format!("### `{}`", s.name)));
        }
        let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains("[127.0.0.1:8000, or 0.0.0.0:$PORT if $PORT is set]"));
        assert!(flat.contains("[1, or $WEB_CONCURRENCY if set]"));
        assert!(help.contains("\nServer socket:\n  -b, --bind ADDRESS "));
        assert!(help.contains("\n      --backlog INT "));
        assert!(
            help.lines().all(|l| l.len() <= WIDTH),
            "a help line is too long"
        );
    }

    #[test]
    fn help_sections_follow_the_table_order() {
        let help = help_text();
        let positions: Vec<usize> = Section::ALL
            .iter()
            .map(|s| {
                help.find(&format!("\n{}:\n", s.title()))
                    .expect("section present")
            })
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]));
    }
}
