//! Command-line syntax: turning words into `(setting, raw value)` pairs.
//! Accepts what gunicorn's argparse accepts -- `--flag value`,
//! `--flag=value`, `-w4`, `-w 4`, `--` and unambiguous prefixes of long
//! flags (`--work 4`) -- so existing unit files keep working. Also the shell
//! splitting used for `CORRAL_CMD_ARGS` / `GUNICORN_CMD_ARGS`.

use super::table::{self, Kind, Setting, SETTINGS};

/// What one list of words asked for.
#[derive(Debug, Default)]
pub struct Words {
    pub values: Vec<(&'static Setting, String)>,
    pub help: bool,
    pub version: bool,
    /// The first problem met. Parsing goes on after it so that `--help`
    /// anywhere still wins, as it does with argparse.
    pub error: Option<String>,
}

const HELP: [&str; 2] = ["-h", "--help"];
const VERSION: [&str; 2] = ["-v", "--version"];

/// What a word starting with `-` names.
#[derive(Debug, Clone, Copy)]
enum Target {
    Setting(&'static Setting),
    Help,
    Version,
}

fn exact(flag: &str) -> Option<Target> {
    if HELP.contains(&flag) {
        Some(Target::Help)
    } else if VERSION.contains(&flag) {
        Some(Target::Version)
    } else {
        table::by_flag(flag).map(Target::Setting)
    }
}

/// Find a flag by exact spelling or, for long flags, by unique prefix.
fn lookup(flag: &str) -> Result<Target, String> {
    if let Some(t) = exact(flag) {
        return Ok(t);
    }
    if let Some(u) = super::gunicorn::unsupported_flag(flag) {
        return Err(format!("{flag}: {}", u.refusal()));
    }
    if !flag.starts_with("--") {
        return Err(format!("unknown option {flag}"));
    }
    let mut candidates: Vec<&'static str> = SETTINGS
        .iter()
        .flat_map(|s| s.flags.iter().copied())
        .chain(HELP)
        .chain(VERSION)
        .filter(|f| f.starts_with("--") && f.starts_with(flag))
        .collect();
    // Two spellings of one setting are not an ambiguity.
    candidates.dedup_by(|a, b| match (table::by_flag(a), table::by_flag(b)) {
        (Some(x), Some(y)) => x.name == y.name,
        _ => false,
    });
    match candidates.as_slice() {
        [] => Err(format!("unknown option {flag}")),
        [one] => exact(one).ok_or_else(|| format!("unknown option {flag}")),
        many => Err(format!(
            "ambiguous option {flag}: could be {}",
            many.join(", ")
        )),
    }
}

/// Parse one list of words (the command line, or a split `*_CMD_ARGS`).
pub fn parse_words(words: &[String]) -> Words {
    let mut out = Words::default();
    let positional = SETTINGS
        .iter()
        .find(|s| s.kind == Kind::Positional)
        .expect("the table has a positional");
    let mut i = 0;
    let mut only_positional = false;
    while i < words.len() {
        let word = &words[i];
        i += 1;
        if only_positional || word == "-" || !word.starts_with('-') {
            if out.values.iter().any(|(s, _)| s.kind == Kind::Positional) {
                out.fail(format!(
                    "unexpected extra argument '{word}' (only one APP may be given)"
                ));
            } else {
                out.values.push((positional, word.clone()));
            }
            continue;
        }
        if word == "--" {
            only_positional = true;
            continue;
        }
        // Split into the flag and a value attached to it, if any.
        let (flag, attached) = if word.starts_with("--") {
            match word.split_once('=') {
                Some((f, v)) => (f, Some(v)),
                None => (word.as_str(), None),
            }
        } else {
            match word.char_indices().nth(2) {
                None => (word.as_str(), None),
                Some((at, _)) => {
                    let rest = &word[at..];
                    (&word[..at], Some(rest.strip_prefix('=').unwrap_or(rest)))
                }
            }
        };
        let setting = match lookup(flag) {
            Ok(Target::Setting(s)) => s,
            Ok(meta) => {
                let name = if matches!(meta, Target::Help) {
                    "--help"
                } else {
                    "--version"
                };
                if attached.is_some() {
                    out.fail(format!("{name} does not take a value"));
                } else if matches!(meta, Target::Help) {
                    out.help = true;
                } else {
                    out.version = true;
                }
                continue;
            }
            Err(msg) => {
                out.fail(msg);
                continue;
            }
        };
        let name = setting.display_name();
        if setting.kind == Kind::Flag {
            match attached {
                Some(_) => out.fail(format!("{name} does not take a value")),
                None => out.values.push((setting, "true".to_string())),
            }
            continue;
        }
        if let Kind::OptionalValue(bare) = setting.kind {
            // The next word is the value only if the setting takes it
            // (`--proxy-protocol v2`), not when it is the app or a flag.
            let takes = |w: &str| {
                !w.starts_with('-') && (setting.apply)(&mut super::Settings::default(), w).is_ok()
            };
            let value = match attached {
                Some(v) => v.to_string(),
                None if i < words.len() && takes(&words[i]) => {
                    i += 1;
                    words[i - 1].clone()
                }
                None => bare.to_string(),
            };
            out.values.push((setting, value));
            continue;
        }
        let value = match attached {
            Some(v) => v.to_string(),
            None if i < words.len() => {
                i += 1;
                words[i - 1].clone()
            }
            None => {
                out.fail(format!("{name} requires a value ({})", setting.meta));
                continue;
            }
        };
        out.values.push((setting, value));
    }
    out
}

impl Words {
    fn fail(&mut self, msg: String) {
        if self.error.is_none() {
            self.error = Some(msg);
        }
    }
}

/// Split a string into words the way a POSIX shell would, without any
/// expansion: blanks separate words, single quotes keep everything
/// literally, double quotes keep blanks and honour `\"`, `\\`, `\$` and
/// `` \` ``, and a backslash outside quotes escapes the next character.
pub fn shell_split(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("unterminated single quote".to_string()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\' | '$' | '`')) => cur.push(e),
                            Some('\n') => {}
                            Some(other) => {
                                cur.push('\\');
                                cur.push(other);
                            }
                            None => return Err("unterminated double quote".to_string()),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("unterminated double quote".to_string()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(c) => {
                    in_word = true;
                    cur.push(c);
                }
                None => return Err("trailing backslash".to_string()),
            },
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    fn pairs(words: &Words) -> Vec<(&'static str, &str)> {
        words
            .values
            .iter()
            .map(|(s, v)| (s.name, v.as_str()))
            .collect()
    }

    #[test]
    fn every_flag_form() {
        let p = parse_words(&w(&[
            "-w4",
            "-w",
            "5",
            "-w=6",
            "--workers",
            "7",
            "--workers=8",
            "--keep",
            "9",
            "-b",
            "[::1]:1",
            "--preload",
            "app:x",
            "--",
            "--not-a-flag",
        ]));
        assert_eq!(
            pairs(&p),
            vec![
                ("workers", "4"),
                ("workers", "5"),
                ("workers", "6"),
                ("workers", "7"),
                ("workers", "8"),
                ("keepalive", "9"),
                ("bind", "[::1]:1"),
                ("preload_app", "true"),
                ("wsgi_app", "app:x"),
            ]
        );
        assert_eq!(
            p.error.as_deref(),
            Some("unexpected extra argument '--not-a-flag' (only one APP may be given)")
        );
    }

    #[test]
    fn both_field_size_spellings() {
        let p = parse_words(&w(&[
            "--limit-request-field_size",
            "1",
            "--limit-request-field-size=2",
        ]));
        assert_eq!(
            pairs(&p),
            vec![
                ("limit_request_field_size", "1"),
                ("limit_request_field_size", "2")
            ]
        );
        assert!(p.error.is_none());
    }

    #[test]
    fn syntax_errors() {
        let err = |args: &[&str]| parse_words(&w(args)).error.unwrap();
        assert_eq!(err(&["--nope"]), "unknown option --nope");
        assert_eq!(err(&["-z"]), "unknown option -z");
        assert_eq!(err(&["--workers"]), "--workers requires a value (INT)");
        assert_eq!(err(&["--preload=yes"]), "--preload does not take a value");
        assert_eq!(err(&["--help=1"]), "--help does not take a value");
        let amb = err(&["--log"]);
        assert!(
            amb.starts_with("ambiguous option --log: could be "),
            "{amb}"
        );
        assert!(
            amb.contains("--log-level") && amb.contains("--log-file"),
            "{amb}"
        );
    }

    #[test]
    fn help_and_version_win_over_errors() {
        let p = parse_words(&w(&["--nope", "--hel"]));
        assert!(p.help);
        let p = parse_words(&w(&["-v"]));
        assert!(p.version);
        // The value of a flag is never taken for a meta flag.
        let p = parse_words(&w(&["-n", "-h"]));
        assert!(!p.help);
        assert_eq!(pairs(&p), vec![("proc_name", "-h")]);
    }

    #[test]
    fn shell_splitting() {
        assert_eq!(
            shell_split("  --bind=0.0.0.0:1  -w 3 ").unwrap(),
            w(&["--bind=0.0.0.0:1", "-w", "3"])
        );
        assert_eq!(
            shell_split(r#"-n 'my app' --access-logformat "%(h)s \"%(r)s\"" a\ b"#).unwrap(),
            w(&[
                "-n",
                "my app",
                "--access-logformat",
                r#"%(h)s "%(r)s""#,
                "a b"
            ])
        );
        assert_eq!(shell_split("''").unwrap(), w(&[""]));
        assert_eq!(shell_split("").unwrap(), Vec::<String>::new());
        assert_eq!(shell_split("'x").unwrap_err(), "unterminated single quote");
        assert_eq!(shell_split("\"x").unwrap_err(), "unterminated double quote");
        assert_eq!(shell_split("x\\").unwrap_err(), "trailing backslash");
    }
}
