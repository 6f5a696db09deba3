//! Executing a gunicorn-style config file and turning its module-level
//! names into a config-file [`Layer`] (settings) and a set of hook
//! callables. Python does the executing and classifies each name; the
//! mapping onto the settings table, and every error message, are here.

use std::ffi::CString;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::config::gunicorn::{self, Hook, HOOKS};
use crate::config::table::{self, FileValue, Kind};
use crate::config::{ConfigError, Layer, Origin};

/// Hook callables found in a file.
pub type HookFns = Vec<(Hook, Py<PyAny>)>;

/// Runs the file (or imports the module) and returns, per public name,
/// `(name, line, tag, payload, type name)`. Tags: `callable` (payload: the object),
/// `none`, `bool` ('true'/'false'), `scalar` (str), `list` (list of str),
/// `dict` ((json text or None, [(k, v)])), `bad` (type name). Errors come
/// back as one line, `FILE:LINE: what`, in a ValueError.
const LOADER: &str = r#"
import ast, importlib, json, sys, traceback, types

def _lines(tree):
    found = {}
    def visit(body):
        for node in body:
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    for n in ast.walk(t):
                        if isinstance(n, ast.Name):
                            found[n.id] = node.lineno
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found[node.name] = node.lineno
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for a in node.names:
                    found[(a.asname or a.name).split(".")[0]] = node.lineno
            for field in ("body", "orelse", "finalbody", "handlers"):
                inner = getattr(node, field, None)
                if isinstance(inner, list):
                    visit(inner)
    visit(tree.body)
    return found

def _where(exc, filename):
    line = 0
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == filename:
            line = frame.lineno
    return "%s:%d" % (filename, line) if line else filename

def _render(value):
    if value is None:
        return "none", None
    if isinstance(value, bool):
        return "bool", "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return "scalar", str(value)
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
            return "list", [str(v) for v in value]
        return "bad", "list of " + ", ".join(sorted({type(v).__name__ for v in value}))
    if isinstance(value, dict):
        try:
            text = json.dumps(value)
        except (TypeError, ValueError):
            text = None
        return "dict", (text, [(str(k), str(v)) for k, v in value.items()])
    return "bad", type(value).__name__

def load(spec):
    if spec.startswith("python:"):
        name = spec[len("python:"):]
        try:
            module = importlib.import_module(name)
        except SyntaxError as e:
            raise ValueError("%s:%s: syntax error: %s" % (e.filename, e.lineno, e.msg)) from None
        except Exception as e:
            raise ValueError("cannot import config module %s: %s: %s" % (name, type(e).__name__, e)) from None
        namespace = vars(module)
        filename = getattr(module, "__file__", None) or spec
        try:
            with open(filename, "rb") as f:
                lines = _lines(ast.parse(f.read()))
        except Exception:
            lines = {}
    else:
        filename = spec[len("file:"):] if spec.startswith("file:") else spec
        try:
            with open(filename, "rb") as f:
                source = f.read()
        except OSError as e:
            raise ValueError("cannot read config file %s: %s" % (filename, e.strerror or e)) from None
        try:
            code = compile(source, filename, "exec")
            lines = _lines(ast.parse(source))
        except SyntaxError as e:
            raise ValueError("%s:%s: syntax error: %s" % (filename, e.lineno, e.msg)) from None
        namespace = {"__builtins__": __builtins__, "__name__": "__config__", "__file__": filename}
        try:
            exec(code, namespace)
        except SystemExit:
            raise ValueError("%s: the config file called exit()" % filename) from None
        except BaseException as e:
            raise ValueError("%s: %s: %s" % (_where(e, filename), type(e).__name__, e)) from None
    out = []
    for name, value in list(namespace.items()):
        if name.startswith("_") or isinstance(value, (types.ModuleType, type)):
            continue
        line = lines.get(name, 0)
        if callable(value):
            out.append((name, line, "callable", value, "function"))
        else:
            tag, payload = _render(value)
            out.append((name, line, tag, payload, type(value).__name__))
    return filename, out
"#;

/// What a config file gave.
pub struct FileConfig {
    pub layer: Layer,
    pub hooks: HookFns,
}

/// The value as a Python config file spelled it, for messages and for
/// matching an unsupported setting's harmless values.
fn as_text(tag: &str, payload: &Bound<'_, PyAny>) -> String {
    match tag {
        "none" => "none".into(),
        "bool" | "scalar" => payload.extract::<String>().unwrap_or_default(),
        "list" => match payload.extract::<Vec<String>>() {
            Ok(v) if v.is_empty() => "[]".into(),
            Ok(v) => v.join(","),
            Err(_) => String::new(),
        },
        _ => payload.to_string(),
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The known name closest to `name`, when it is plausibly a typo of it.
fn suggestion(name: &str, candidates: impl Iterator<Item = &'static str>) -> Option<&'static str> {
    candidates
        .map(|c| (levenshtein(name, c), c))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, c)| c)
}

/// Settings whose single value may be written as a Python list (gunicorn
/// accepts lists or comma-separated strings for these).
/// Execute `spec` (`PATH`, `file:PATH` or `python:MODULE`). The interpreter
/// must be initialised.
pub fn load(py: Python<'_>, spec: &str) -> Result<FileConfig, ConfigError> {
    let code = CString::new(LOADER).expect("no NUL in constant");
    let globals = PyDict::new(py);
    let result = py.run(&code, Some(&globals), None).and_then(|()| {
        globals
            .get_item("load")?
            .expect("load defined")
            .call1((spec,))
    });
    let result = match result {
        Ok(r) => r,
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyValueError>(py) => {
            return Err(ConfigError(e.value(py).to_string()));
        }
        Err(e) => return Err(ConfigError(format!("config file {spec}: {e}"))),
    };
    let (filename, entries): (String, Bound<'_, PyList>) = result
        .extract()
        .map_err(|e: PyErr| ConfigError(format!("config file {spec}: {e}")))?;
    let mut layer = Layer::new(Origin::ConfigFile(filename.clone()));
    let mut hooks = HookFns::new();
    for entry in entries.iter() {
        let (name, line, tag, payload, type_name): (String, u32, String, Bound<'_, PyAny>, String) =
            entry
                .extract()
                .map_err(|e: PyErr| ConfigError(format!("config file {filename}: {e}")))?;
        let at = if line > 0 {
            format!("{filename}:{line}")
        } else {
            filename.clone()
        };
        let wrong_type = |expected: &str| {
            let got = match tag.as_str() {
                "callable" => "a function".to_string(),
                "bad" => payload.to_string(),
                _ => type_name.clone(),
            };
            ConfigError(format!(
                "wrong type for {name} (in {at}): expected {expected}, got {got}"
            ))
        };
        if let Some(h) = Hook::named(&name) {
            if tag != "callable" {
                return Err(wrong_type(&format!("a function {}", h.spec().signature)));
            }
            hooks.push((h, payload.unbind()));
            continue;
        }
        if let Some(u) = gunicorn::unsupported(&name) {
            if tag != "callable" && u.is_harmless(&as_text(&tag, &payload)) {
                continue;
            }
            return Err(ConfigError(format!("{} (in {at})", u.refusal())));
        }
        let Some(setting) = table::by_name(&name) else {
            if tag == "callable" {
                // Helper functions are normal in config files; only a
                // near-miss of a hook name is surely a mistake.
                if let Some(h) = suggestion(&name, HOOKS.iter().map(|h| h.name)) {
                    return Err(ConfigError(format!(
                        "unknown server hook '{name}' (in {at}); did you mean '{h}'?"
                    )));
                }
                continue;
            }
            let hint = suggestion(
                &name,
                table::SETTINGS
                    .iter()
                    .map(|s| s.name)
                    .chain(HOOKS.iter().map(|h| h.name)),
            )
            .map(|s| format!("; did you mean '{s}'?"))
            .unwrap_or_default();
            return Err(ConfigError(format!(
                "unknown setting '{name}' (in {at}){hint}"
            )));
        };
        if setting.kind == Kind::Positional && tag == "callable" {
            return Err(wrong_type("a string such as 'module:app'"));
        }
        let expected = match setting.file_value {
            FileValue::Bool => "True or False",
            FileValue::Int => "an int",
            FileValue::List | FileValue::CommaList => "a string or a list of strings",
            FileValue::Dict | FileValue::Json => "a dict",
            FileValue::Str => "a string",
            FileValue::StrOrBool => "a string, True or False",
        };
        match tag.as_str() {
            // `pidfile = None`: the setting keeps its default.
            "none" => {}
            "callable" | "bad" => return Err(wrong_type(expected)),
            "bool" if !matches!(setting.file_value, FileValue::Bool | FileValue::StrOrBool) => {
                return Err(wrong_type(expected))
            }
            "bool" | "scalar" => {
                let value: String = payload.extract().unwrap_or_default();
                if matches!(setting.file_value, FileValue::Dict | FileValue::Json) {
                    return Err(wrong_type(expected));
                }
                layer.set_at(&name, value, line)?;
            }
            "list" => {
                let items: Vec<String> = payload.extract().unwrap_or_default();
                match setting.file_value {
                    FileValue::List => {
                        for item in items {
                            layer.set_at(&name, item, line)?;
                        }
                    }
                    FileValue::CommaList => layer.set_at(&name, items.join(","), line)?,
                    _ => return Err(wrong_type(expected)),
                }
            }
            "dict" => {
                let (json, items): (Option<String>, Vec<(String, String)>) =
                    payload.extract().unwrap_or_default();
                match setting.file_value {
                    FileValue::Dict => {
                        let text = items
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(",");
                        layer.set_at(&name, text, line)?;
                    }
                    FileValue::Json => match json {
                        Some(j) => layer.set_at(&name, j, line)?,
                        None => {
                            return Err(ConfigError(format!(
                                "invalid value for {name} (in {at}): the dict must hold only \
                                 strings, numbers, booleans, None, lists and dicts"
                            )))
                        }
                    },
                    _ => return Err(wrong_type(expected)),
                }
            }
            _ => return Err(wrong_type(expected)),
        }
    }
    Ok(FileConfig { layer, hooks })
}

#[cfg(test)]
mod tests {
    #[test]
    fn suggestions_catch_typos_only() {
        let hooks = || super::HOOKS.iter().map(|h| h.name);
        assert_eq!(
            super::suggestion("on_startng", hooks()),
            Some("on_starting")
        );
        assert_eq!(super::suggestion("post_forks", hooks()), Some("post_fork"));
        assert_eq!(super::suggestion("make_app", hooks()), None);
    }
}
