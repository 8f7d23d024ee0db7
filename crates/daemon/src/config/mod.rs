//! rsyncd.conf: parsing and typed access, with rsyncd.conf(5) syntax and semantics.
//!
//! The file is a global section followed by `[module]` sections. Lines are `name = value`
//! (names compare case- and space-insensitively), `#`/`;` comments, a trailing `\` continues a
//! line, and `&include PATH` / `&merge PATH` pull in other files (or every `*.conf` / `*.inc` file
//! of a directory). Settings made in the global section are the defaults of every module that
//! follows. Like stock rsync, unknown parameters and malformed values are reported and ignored;
//! only structural errors (a bad section header, an unreadable file) fail the load.
//!
//! ```
//! let cfg = rtsync_daemon::config::Config::parse_str(
//!     "uid = nobody\n[pub]\n  path = /srv/pub\n  comment = public files\n",
//!     "rsyncd.conf",
//! ).unwrap();
//! let m = cfg.module("pub").unwrap();
//! assert_eq!(m.path(), "/srv/pub");
//! assert_eq!(m.uid(), "nobody");
//! assert!(m.read_only());
//! ```

mod params;
mod parse;

use std::path::{Path, PathBuf};

pub use params::{lookup, name_eq, Kind, ParamDef, Scope, DEFAULT_DONT_COMPRESS, P, PARAMS};

/// A problem in the configuration that stops it from loading.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file (the config itself or an `&include`d one) could not be read.
    #[error("unable to open config file \"{path}\": {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A structural syntax error.
    #[error("{file}:{line}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// `&include` nested too deeply (a loop).
    #[error("{file}:{line}: &include/&merge nested too deeply")]
    TooDeep {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
    },
}

/// Something reported but ignored while loading, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The file.
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// What was wrong, in stock rsync's words where it has them.
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (in {}, line {})", self.message, self.file, self.line)
    }
}

/// The value of one parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Text (unset is `None`).
    Str(Option<String>),
    /// Integer.
    Int(i64),
    /// Boolean.
    Bool(bool),
    /// Boolean or unset.
    Bool3(Option<bool>),
    /// Syslog facility number.
    Facility(i32),
}

/// A full set of parameter values (globals and module settings alike).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    values: Vec<Value>,
}

impl Default for Params {
    fn default() -> Self {
        let values = PARAMS
            .iter()
            .map(|d| {
                parse::typed_value(d.kind, d.default.unwrap_or(""))
                    .unwrap_or(Value::Str(None))
                    .or_unset(d)
            })
            .collect();
        Params { values }
    }
}

impl Value {
    fn or_unset(self, def: &ParamDef) -> Value {
        match (&self, def.default) {
            (Value::Str(_), None) => Value::Str(None),
            (Value::Bool3(_), None) => Value::Bool3(None),
            _ => self,
        }
    }
}

impl Params {
    /// The raw value of a parameter.
    pub fn get(&self, p: P) -> &Value {
        &self.values[p as usize]
    }

    pub(crate) fn set(&mut self, p: P, v: Value) {
        self.values[p as usize] = v;
    }

    /// A text parameter with `%VAR%` references expanded from the environment ("" when unset).
    pub fn string(&self, p: P) -> String {
        match self.get(p) {
            Value::Str(Some(s)) => expand_vars(s),
            _ => String::new(),
        }
    }

    /// A command parameter run by a shell, `%VAR%` expanded with [`expand_vars_shell`].
    pub fn shell_string(&self, p: P) -> Result<String, String> {
        match self.get(p) {
            Value::Str(Some(s)) => expand_vars_shell(s),
            _ => Ok(String::new()),
        }
    }

    /// An integer parameter.
    pub fn int(&self, p: P) -> i64 {
        match self.get(p) {
            Value::Int(i) => *i,
            Value::Facility(i) => i64::from(*i),
            _ => 0,
        }
    }

    /// A boolean parameter (an unset three-state one reads as false).
    pub fn bool(&self, p: P) -> bool {
        match self.get(p) {
            Value::Bool(b) => *b,
            Value::Bool3(b) => b.unwrap_or(false),
            _ => false,
        }
    }

    /// A three-state boolean parameter.
    pub fn bool3(&self, p: P) -> Option<bool> {
        match self.get(p) {
            Value::Bool3(b) => *b,
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

/// Session variables (`RSYNC_MODULE_NAME`, `RSYNC_USER_NAME`, …) visible to `%VAR%` expansion
/// and to the exec hooks. Kept here rather than in the process environment, whose lock a
/// forked process must not take.
static SESSION_VARS: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// Sets a session variable (see [`session_vars`]).
pub fn set_session_var(name: &str, value: &str) {
    if let Ok(mut vars) = SESSION_VARS.lock() {
        vars.retain(|(n, _)| n != name);
        vars.push((name.to_string(), value.to_string()));
    }
}

/// The session variables set so far.
pub fn session_vars() -> Vec<(String, String)> {
    SESSION_VARS.lock().map(|v| v.clone()).unwrap_or_default()
}

fn lookup_var(name: &str) -> Option<String> {
    if let Some((_, v)) = session_vars().into_iter().find(|(n, _)| n == name) {
        return Some(v);
    }
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
}

/// Replaces `%NAME%` (NAME starting with an upper-case letter) by the session variable or
/// environment variable of that name; anything unknown or malformed stays as written, as
/// rsyncd.conf(5) describes.
pub fn expand_vars(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find('%') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let upper_next = after.bytes().next().is_some_and(|c| c.is_ascii_uppercase());
        if upper_next {
            if let Some(end) = after.find('%') {
                if let Some(val) = lookup_var(&after[..end]) {
                    out.push_str(&val);
                    rest = &after[end + 1..];
                    continue;
                }
            }
        }
        out.push('%');
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Characters a shell could act on, in any quoting context and in a second shell that
/// re-parses the word: a `%RSYNC_*%` value holding one is never put into a hook command.
fn shell_unsafe(value: &str) -> bool {
    value
        .bytes()
        .any(|c| b"'\"`$\\;&|<>()*?[]# !~{}".contains(&c) || c < 0x20 || c == 0x7f)
}

/// `%VAR%` expansion for the exec hooks, as stock's: a `%RSYNC_*%` value is quoted for the
/// shell quoting context it lands in (a word in single quotes outside quotes and inside
/// double quotes, as is inside single quotes), and one holding a shell metacharacter is
/// refused: `Err` carries the log line. Other variables expand as [`expand_vars`] does.
pub fn expand_vars_shell(s: &str) -> Result<String, String> {
    #[derive(PartialEq)]
    enum Quote {
        None,
        Single,
        Double,
    }
    if !s.contains('%') {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut quote = Quote::None;
    let mut escaped = false;
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if c == '%'
            && rest[1..]
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_uppercase())
        {
            if let Some(end) = rest[1..].find('%') {
                let name = &rest[1..1 + end];
                if let Some(val) = lookup_var(name) {
                    if name.starts_with("RSYNC_") {
                        if shell_unsafe(&val) {
                            return Err(format!(
                                "refusing to run shell hook: %{name}% holds a shell metacharacter"
                            ));
                        }
                        if quote == Quote::Single {
                            out.push_str(&val);
                        } else {
                            out.push('\'');
                            out.push_str(&val);
                            out.push('\'');
                        }
                    } else {
                        out.push_str(&val);
                    }
                    rest = &rest[end + 2..];
                    continue;
                }
            }
        }
        match quote {
            Quote::Single => {
                if c == '\'' {
                    quote = Quote::None;
                }
            }
            _ if escaped => escaped = false,
            _ if c == '\\' => escaped = true,
            Quote::Double => {
                if c == '"' {
                    quote = Quote::None;
                }
            }
            Quote::None => {
                if c == '\'' {
                    quote = Quote::Single;
                } else if c == '"' {
                    quote = Quote::Double;
                }
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    Ok(out)
}

/// An integer read the way rsyncd.conf reads numbers (C `atoi`).
pub fn parse_int(s: &str) -> i64 {
    parse::atoi(s)
}

/// One `[module]` of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// The name as first written in its section header.
    pub name: String,
    /// Its settings (global defaults overlaid by the section's own).
    pub params: Params,
}

macro_rules! string_getters {
    ($($fn:ident => $p:ident),* $(,)?) => {$(
        #[doc = concat!("`", stringify!($fn), "` (\"\" when unset).")]
        pub fn $fn(&self) -> String { self.params.string(P::$p) }
    )*};
}
macro_rules! bool_getters {
    ($($fn:ident => $p:ident),* $(,)?) => {$(
        #[doc = concat!("`", stringify!($fn), "`.")]
        pub fn $fn(&self) -> bool { self.params.bool(P::$p) }
    )*};
}
macro_rules! bool3_getters {
    ($($fn:ident => $p:ident),* $(,)?) => {$(
        #[doc = concat!("`", stringify!($fn), "` (`None`: unset).")]
        pub fn $fn(&self) -> Option<bool> { self.params.bool3(P::$p) }
    )*};
}

impl Module {
    string_getters! {
        auth_digest => AuthDigest, auth_users => AuthUsers, charset => Charset,
        comment => Comment, dont_compress => DontCompress,
        exclude => Exclude, exclude_from => ExcludeFrom, filter => Filter, gid => Gid,
        hosts_allow => HostsAllow, hosts_deny => HostsDeny, include => Include,
        include_from => IncludeFrom, incoming_chmod => IncomingChmod, lock_file => LockFile,
        log_file => LogFile, log_format => LogFormat, outgoing_chmod => OutgoingChmod,
        refuse_options => RefuseOptions, secrets_file => SecretsFile, syslog_tag => SyslogTag,
        uid => Uid, path => Path, temp_dir => TempDir, name_converter => NameConverter,
    }
    bool_getters! {
        fake_super => FakeSuper, forward_lookup => ForwardLookup, ignore_errors => IgnoreErrors,
        ignore_nonreadable => IgnoreNonreadable, insecure_links => InsecureLinks, list => List,
        read_only => ReadOnly, reverse_lookup => ReverseLookup, strict_modes => StrictModes,
        transfer_logging => TransferLogging, write_only => WriteOnly,
    }
    bool3_getters! {
        munge_symlinks => MungeSymlinks, numeric_ids => NumericIds,
        open_noatime => OpenNoatime, use_chroot => UseChroot,
    }

    /// `early exec`, expanded for the shell (see [`expand_vars_shell`]).
    pub fn early_exec(&self) -> Result<String, String> {
        self.params.shell_string(P::EarlyExec)
    }
    /// `pre-xfer exec`, expanded for the shell (see [`expand_vars_shell`]).
    pub fn pre_xfer_exec(&self) -> Result<String, String> {
        self.params.shell_string(P::PreXferExec)
    }
    /// `post-xfer exec`, expanded for the shell (see [`expand_vars_shell`]).
    pub fn post_xfer_exec(&self) -> Result<String, String> {
        self.params.shell_string(P::PostXferExec)
    }

    /// `max connections` (0: unlimited).
    pub fn max_connections(&self) -> i64 {
        self.params.int(P::MaxConnections)
    }
    /// `max verbosity`.
    pub fn max_verbosity(&self) -> i64 {
        self.params.int(P::MaxVerbosity)
    }
    /// `timeout` in seconds (0: none).
    pub fn timeout(&self) -> i64 {
        self.params.int(P::Timeout)
    }
    /// `syslog facility` as a syslog(3) facility number.
    pub fn syslog_facility(&self) -> i32 {
        self.params.int(P::SyslogFacility) as i32
    }
}

/// A loaded rsyncd.conf.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The global section: daemon-wide settings and the module defaults.
    pub globals: Params,
    /// The modules in file order.
    pub modules: Vec<Module>,
    /// What was reported and ignored while loading.
    pub warnings: Vec<Warning>,
}

impl Config {
    /// Loads a config file; `dparams` are `--dparam` overrides (`name=value`), applied at the end
    /// of the global section as stock does.
    pub fn load(path: &Path, dparams: &[String]) -> Result<Config, ConfigError> {
        parse::Parser::new(dparams).run_file(path)
    }

    /// Parses config text (`name` is used in messages and as the base of relative includes).
    pub fn parse_str(text: &str, name: &str) -> Result<Config, ConfigError> {
        parse::Parser::new(&[]).run_text(text.as_bytes(), name)
    }

    /// Finds a module by its exact name, as clients address it.
    pub fn module(&self, name: &str) -> Option<&Module> {
        self.modules.iter().rev().find(|m| m.name == name)
    }

    /// A global text parameter ("" when unset).
    pub fn global_string(&self, p: P) -> String {
        self.globals.string(p)
    }

    /// The global section's values as a module: the settings used before a module is chosen.
    pub fn global_module(&self) -> Module {
        Module {
            name: String::new(),
            params: self.globals.clone(),
        }
    }

    /// `motd file`.
    pub fn motd_file(&self) -> String {
        self.globals.string(P::MotdFile)
    }
    /// `pid file`.
    pub fn pid_file(&self) -> String {
        self.globals.string(P::PidFile)
    }
    /// `port` (0: not set).
    pub fn port(&self) -> i64 {
        self.globals.int(P::RsyncPort)
    }
    /// `address`.
    pub fn address(&self) -> String {
        self.globals.string(P::BindAddress)
    }
    /// `socket options`.
    pub fn socket_options(&self) -> String {
        self.globals.string(P::SocketOptions)
    }
    /// `listen backlog`.
    pub fn listen_backlog(&self) -> i64 {
        self.globals.int(P::ListenBacklog)
    }
}

#[cfg(test)]
mod tests;
