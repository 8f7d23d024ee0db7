//! The rsyncd.conf lexer and loader: the line grammar of rsyncd.conf(5) and the section/default
//! bookkeeping (`&include` saves and restores the global defaults around the included file).

use std::path::{Path, PathBuf};

use super::params::{lookup, name_eq, Kind, Scope, FACILITIES};
use super::{Config, ConfigError, Module, Params, Value, Warning};

/// How deep `&include`/`&merge` may nest before we call it a loop.
const MAX_DEPTH: usize = 32;
/// Bound on one logical line (name or value), so a hostile file cannot exhaust memory.
const MAX_LINE: usize = 1 << 20;

pub(crate) struct Parser {
    /// Current global values (module defaults included).
    vars: Params,
    /// Saved `vars` around `&include`.
    stack: Vec<Params>,
    in_global: bool,
    current: Option<usize>,
    modules: Vec<Module>,
    warnings: Vec<Warning>,
    dparams: Vec<(String, String)>,
    dparams_done: bool,
    depth: usize,
}

/// A byte cursor that counts lines; NUL ends input like EOF, as in stock.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: usize,
    file: &'a str,
}

impl Cursor<'_> {
    fn getc(&mut self) -> Option<u8> {
        let c = *self.bytes.get(self.pos)?;
        if c == 0 {
            return None;
        }
        self.pos += 1;
        if c == b'\n' {
            self.line += 1;
        }
        Some(c)
    }

    /// Skips blanks other than newline; returns the next character.
    fn eat_ws(&mut self) -> Option<u8> {
        loop {
            match self.getc() {
                Some(c) if c != b'\n' && is_space(c) => {}
                other => return other,
            }
        }
    }

    /// Skips to the end of the line.
    fn eat_comment(&mut self) {
        while let Some(c) = self.getc() {
            if c == b'\n' {
                break;
            }
        }
    }

    fn syntax(&self, line: usize, message: String) -> ConfigError {
        ConfigError::Syntax {
            file: self.file.to_string(),
            line,
            message,
        }
    }
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Where a trailing `\` (only blanks after it) sits in `buf`, if any.
fn continuation(buf: &[u8]) -> Option<usize> {
    let pos = buf.iter().rposition(|&c| !is_space(c))?;
    (buf[pos] == b'\\').then_some(pos)
}

fn text(buf: &[u8]) -> String {
    String::from_utf8_lossy(buf).into_owned()
}

/// C `atoi`: optional blanks and sign, then digits; anything else stops (no digits: 0).
pub(crate) fn atoi(s: &str) -> i64 {
    let s = s.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for c in digits.bytes().take_while(u8::is_ascii_digit) {
        n = n.saturating_mul(10).saturating_add(i64::from(c - b'0'));
    }
    let n = if neg { -n } else { n };
    n.clamp(i64::from(i32::MIN), i64::from(i32::MAX))
}

fn parse_bool(v: &str, allow_unset: bool) -> Option<Option<bool>> {
    if ["yes", "true", "1"].iter().any(|t| name_eq(v, t)) {
        Some(Some(true))
    } else if ["no", "false", "0"].iter().any(|t| name_eq(v, t)) {
        Some(Some(false))
    } else if allow_unset && ["unset", "-1"].iter().any(|t| name_eq(v, t)) {
        Some(None)
    } else {
        None
    }
}

/// Reads a value of `kind` from config text; `Err` carries the message for a malformed one.
pub(crate) fn typed_value(kind: Kind, raw: &str) -> Result<Value, String> {
    let bad_bool = || format!("Badly formed boolean in configuration file: \"{raw}\".");
    Ok(match kind {
        Kind::Str => Value::Str(Some(raw.to_string())),
        Kind::Path => {
            let trimmed = raw.trim_end_matches('/');
            let v = if trimmed.is_empty() && !raw.is_empty() {
                "/"
            } else {
                trimmed
            };
            Value::Str(Some(v.to_string()))
        }
        Kind::Int => Value::Int(atoi(&super::expand_vars(raw))),
        Kind::Bool => Value::Bool(
            parse_bool(&super::expand_vars(raw), false)
                .ok_or_else(bad_bool)?
                .unwrap_or(false),
        ),
        Kind::Bool3 => {
            Value::Bool3(parse_bool(&super::expand_vars(raw), true).ok_or_else(bad_bool)?)
        }
        Kind::Facility => {
            let v = super::expand_vars(raw);
            match FACILITIES.iter().find(|(n, _)| n.eq_ignore_ascii_case(&v)) {
                Some((_, f)) => Value::Facility(*f),
                None if atoi(&v) > 0 => Value::Facility(atoi(&v) as i32),
                None => return Err(format!("unknown syslog facility \"{raw}\"")),
            }
        }
    })
}

impl Parser {
    pub(crate) fn new(dparams: &[String]) -> Parser {
        let dparams = dparams
            .iter()
            .filter_map(|d| {
                let (n, v) = d.split_once('=')?;
                Some((n.to_string(), v.trim_start().to_string()))
            })
            .collect();
        Parser {
            vars: Params::default(),
            stack: Vec::new(),
            in_global: true,
            current: None,
            modules: Vec::new(),
            warnings: Vec::new(),
            dparams,
            dparams_done: false,
            depth: 0,
        }
    }

    pub(crate) fn run_file(mut self, path: &Path) -> Result<Config, ConfigError> {
        self.process_file(path)?;
        Ok(self.finish())
    }

    pub(crate) fn run_text(mut self, bytes: &[u8], name: &str) -> Result<Config, ConfigError> {
        self.process(bytes, name)?;
        Ok(self.finish())
    }

    fn finish(mut self) -> Config {
        self.apply_dparams();
        Config {
            globals: self.vars,
            modules: self.modules,
            warnings: self.warnings,
        }
    }

    fn apply_dparams(&mut self) {
        if self.dparams_done {
            return;
        }
        self.dparams_done = true;
        let was = (self.in_global, self.current);
        self.in_global = true;
        for (n, v) in std::mem::take(&mut self.dparams) {
            self.parameter(&n, &v, "--dparam", 0);
        }
        (self.in_global, self.current) = was;
    }

    fn process_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let bytes = crate::privs::check_trusted_path(path)
            .and_then(|_| std::fs::read(path))
            .map_err(|source| ConfigError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        self.process(&bytes, &path.display().to_string())
    }

    fn warn(&mut self, file: &str, line: usize, message: String) {
        self.warnings.push(Warning {
            file: file.to_string(),
            line,
            message,
        });
    }

    fn process(&mut self, bytes: &[u8], file: &str) -> Result<(), ConfigError> {
        let mut cur = Cursor {
            bytes,
            pos: 0,
            line: 1,
            file,
        };
        let mut c = cur.eat_ws();
        while let Some(ch) = c {
            let line = cur.line;
            match ch {
                b'\n' => {}
                b';' | b'#' => {
                    cur.eat_comment();
                }
                b'[' => self.section(&mut cur, line)?,
                b'\\' => {}
                _ => self.statement(&mut cur, ch, line)?,
            }
            c = cur.eat_ws();
        }
        Ok(())
    }

    fn section(&mut self, cur: &mut Cursor, line: usize) -> Result<(), ConfigError> {
        let mut buf = Vec::new();
        let mut end = 0;
        let mut c = cur.eat_ws();
        while let Some(ch) = c {
            if buf.len() > MAX_LINE {
                return Err(cur.syntax(line, "section name too long".into()));
            }
            match ch {
                b']' => {
                    buf.truncate(end);
                    if buf.is_empty() {
                        return Err(cur.syntax(line, "Empty section name in config file.".into()));
                    }
                    let name = text(&buf);
                    self.start_section(&name).map_err(|m| cur.syntax(line, m))?;
                    cur.eat_comment();
                    return Ok(());
                }
                b'\n' => match continuation(&buf) {
                    Some(p) => {
                        buf.truncate(p);
                        end = if p > 0 && buf[p - 1] == b' ' {
                            p - 1
                        } else {
                            p
                        };
                        c = cur.getc();
                    }
                    None => {
                        buf.truncate(end);
                        return Err(cur.syntax(
                            line,
                            format!("Badly formed line in config file: {}", text(&buf)),
                        ));
                    }
                },
                _ if is_space(ch) => {
                    buf.truncate(end);
                    buf.push(b' ');
                    c = cur.eat_ws();
                }
                _ => {
                    buf.push(ch);
                    end = buf.len();
                    c = cur.getc();
                }
            }
        }
        buf.truncate(end);
        Err(cur.syntax(
            line,
            format!("Unexpected EOF in the config file: {}", text(&buf)),
        ))
    }

    /// A `name = value` line or an `&directive value` line, starting with `first`.
    fn statement(&mut self, cur: &mut Cursor, first: u8, line: usize) -> Result<(), ConfigError> {
        let directive = first == b'&';
        let mut buf = Vec::new();
        let mut end = 0;
        let mut c = Some(first);
        // The name.
        loop {
            let Some(ch) = c else {
                self.warn(
                    cur.file,
                    line,
                    format!("Unexpected end-of-file at: {}", text(&buf)),
                );
                return Ok(());
            };
            if buf.len() > MAX_LINE {
                return Err(cur.syntax(line, "parameter name too long".into()));
            }
            match ch {
                b'=' => {
                    if end == 0 {
                        return Err(
                            cur.syntax(line, "Invalid parameter name in config file.".into())
                        );
                    }
                    c = cur.eat_ws();
                    break;
                }
                b'\n' => match continuation(&buf) {
                    Some(p) => {
                        buf.truncate(p);
                        end = if p > 0 && buf[p - 1] == b' ' {
                            p - 1
                        } else {
                            p
                        };
                        c = cur.getc();
                    }
                    None => {
                        buf.truncate(end);
                        let msg =
                            format!("Ignoring badly formed line in config file: {}", text(&buf));
                        self.warn(cur.file, line, msg);
                        return Ok(());
                    }
                },
                b' ' | b'\t' if directive => {
                    c = cur.eat_ws();
                    if c == Some(b'=') {
                        c = cur.eat_ws();
                    }
                    break;
                }
                _ if is_space(ch) => {
                    buf.truncate(end);
                    buf.push(b' ');
                    c = cur.eat_ws();
                }
                _ => {
                    buf.push(ch);
                    end = buf.len();
                    c = cur.getc();
                }
            }
        }
        let name = text(&buf[..end]);
        // The value.
        let mut val = Vec::new();
        let mut vend = 0;
        while let Some(ch) = c {
            if val.len() > MAX_LINE {
                return Err(cur.syntax(line, "parameter value too long".into()));
            }
            match ch {
                b'\r' => c = cur.getc(),
                b'\n' => match continuation(&val) {
                    Some(p) => {
                        val.truncate(p);
                        vend = p;
                        c = cur.getc();
                    }
                    None => c = None,
                },
                _ => {
                    val.push(ch);
                    if !is_space(ch) {
                        vend = val.len();
                    }
                    c = cur.getc();
                }
            }
        }
        let value = text(&val[..vend]);
        if directive {
            self.directive(cur, &name, &value, line)
        } else {
            self.parameter(&name, &value, cur.file, line);
            Ok(())
        }
    }

    fn start_section(&mut self, name: &str) -> Result<(), String> {
        let is_global = name_eq(name, "global");
        if self.in_global && !is_global && self.modules.is_empty() {
            self.apply_dparams();
        }
        self.in_global = is_global;
        if is_global {
            return Ok(());
        }
        if name.contains('/') {
            return Err(format!(
                "Warning: invalid section name in configuration file: {name}"
            ));
        }
        let index = match self.modules.iter().rposition(|m| name_eq(&m.name, name)) {
            Some(i) => i,
            None => {
                self.modules.push(Module {
                    name: name.to_string(),
                    params: self.vars.clone(),
                });
                self.modules.len() - 1
            }
        };
        self.current = Some(index);
        Ok(())
    }

    fn parameter(&mut self, name: &str, value: &str, file: &str, line: usize) {
        let Some(p) = lookup(name) else {
            self.warn(file, line, format!("IGNORING unknown parameter \"{name}\""));
            return;
        };
        let def = p.def();
        let target = if self.in_global {
            &mut self.vars
        } else if def.scope == Scope::Global {
            self.warn(
                file,
                line,
                format!("Global parameter {name} found in module section!"),
            );
            return;
        } else {
            match self.current {
                Some(i) => &mut self.modules[i].params,
                None => &mut self.vars,
            }
        };
        match typed_value(def.kind, value) {
            Ok(v) => target.set(p, v),
            Err(msg) => self.warn(file, line, msg),
        }
    }

    fn directive(
        &mut self,
        cur: &Cursor,
        name: &str,
        value: &str,
        line: usize,
    ) -> Result<(), ConfigError> {
        let manage_globals = if name.eq_ignore_ascii_case("&include") {
            true
        } else if name.eq_ignore_ascii_case("&merge") {
            false
        } else {
            return Err(cur.syntax(line, format!("Unknown directive: {name}.")));
        };
        if self.depth >= MAX_DEPTH {
            return Err(ConfigError::TooDeep {
                file: cur.file.to_string(),
                line,
            });
        }
        let path = PathBuf::from(value);
        let meta = std::fs::metadata(&path).map_err(|e| {
            cur.syntax(line, format!("unable to stat config file \"{value}\": {e}"))
        })?;
        self.depth += 1;
        let result = if meta.is_file() {
            self.included(&[path], manage_globals)
        } else if meta.is_dir() {
            let suffix = if manage_globals { ".conf" } else { ".inc" };
            let mut files: Vec<PathBuf> = std::fs::read_dir(&path)
                .map_err(|e| {
                    cur.syntax(line, format!("unable to open config dir \"{value}\": {e}"))
                })?
                .filter_map(|e| e.ok())
                .filter(|e| {
                    let n = e.file_name();
                    let n = n.to_string_lossy();
                    n.len() > suffix.len() && n.ends_with(suffix)
                })
                .map(|e| e.path())
                .collect();
            files.sort();
            self.included(&files, manage_globals)
        } else {
            Err(cur.syntax(line, format!("not a file or directory: {value}")))
        };
        self.depth -= 1;
        result
    }

    /// Processes included files; with `manage_globals` each starts from the defaults in force at
    /// the `&include` line and changes to them do not outlive it.
    fn included(&mut self, files: &[PathBuf], manage_globals: bool) -> Result<(), ConfigError> {
        if files.is_empty() {
            return Ok(());
        }
        if manage_globals {
            self.stack.push(self.vars.clone());
        }
        for f in files {
            if manage_globals {
                self.in_global = true;
                self.vars = self.stack.last().cloned().unwrap_or_default();
            }
            self.process_file(f)?;
        }
        if manage_globals {
            self.in_global = true;
            if let Some(v) = self.stack.pop() {
                self.vars = v;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atoi_like_c() {
        for (s, n) in [
            ("12", 12),
            ("  -3x", -3),
            ("x", 0),
            ("+7", 7),
            ("", 0),
            ("99999999999", i64::from(i32::MAX)),
        ] {
            assert_eq!(atoi(s), n, "{s:?}");
        }
    }

    #[test]
    fn continuation_finds_trailing_backslash() {
        for (s, want) in [
            (&b"abc\\"[..], Some(3)),
            (b"abc\\  ", Some(3)),
            (b"abc", None),
            (b"", None),
            (b"a\\b", None),
        ] {
            assert_eq!(continuation(s), want, "{s:?}");
        }
    }
}
