//! The client front door: parse the source/destination arguments, connect (daemon or remote
//! shell), negotiate, and run the transfer.
//!
//! ```no_run
//! use rtsync_engine::Options;
//! use rtsync_wire::client::{self, ClientEnv};
//! let args: Vec<std::ffi::OsString> =
//!     ["-a", "rsync://127.0.0.1:8730/mod/", "dest/"].iter().map(Into::into).collect();
//! let opts = Options::parse(&args).unwrap();
//! let code = match client::run(&opts, &ClientEnv::from_process()) {
//!     Ok(outcome) => outcome.exit_code(),
//!     Err(e) => { eprintln!("rsync: {e}"); e.exit_code() }
//! };
//! ```

use rtsync_engine::files_from::ListUse;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use rtsync_engine::Options;

use crate::connect::{self, Connection, DaemonAddress};
use crate::daemon_client::{self, Credentials, DaemonReply};
use crate::error::{exit, Error, Result};
use crate::flist::{FlistDecoder, FlistOptions};
use crate::local::Dest;
use crate::log::ItemLog;
use crate::mux::{MuxReader, MuxWriter, PrintMessages};
use crate::negotiate::{self, Compression, NegotiateConfig, Negotiated, MAX_PROTOCOL};
use crate::pull::{self, PullOptions, PullStats};
use crate::server_args::server_args;
use rtsync_engine::report::Reporter;

/// What the client reads from its environment (injectable for tests).
#[derive(Debug, Clone, Default)]
pub struct ClientEnv {
    /// `RSYNC_PASSWORD`.
    pub password: Option<String>,
    /// `RSYNC_CONNECT_PROG`.
    pub connect_prog: Option<String>,
    /// `RSYNC_PROXY`.
    pub proxy: Option<String>,
    /// `RSYNC_RSH`, used when `-e` is absent.
    pub rsh: Option<String>,
    /// `USER` / `LOGNAME`.
    pub user: Option<String>,
    /// `--write-batch`: where the stream the receiver reads is recorded.
    pub batch: Option<crate::batch::Recorder>,
    /// The "remote shell" is this program started as a local server (a local transfer that
    /// goes over the protocol, as `--write-batch` needs).
    pub local_server: bool,
}

impl ClientEnv {
    pub fn from_process() -> ClientEnv {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        ClientEnv {
            password: var("RSYNC_PASSWORD"),
            connect_prog: var("RSYNC_CONNECT_PROG"),
            proxy: var("RSYNC_PROXY"),
            rsh: var("RSYNC_RSH"),
            user: var("USER").or_else(|| var("LOGNAME")),
            batch: None,
            local_server: false,
        }
    }
}

/// A parsed remote argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// `host::module/path` or `rsync://[user@]host[:port]/module/path`.
    Daemon {
        user: Option<String>,
        host: String,
        port: Option<u16>,
        /// `module/path` as sent to the daemon.
        path: String,
    },
    /// `[user@]host:path` through a remote shell.
    Shell {
        user: Option<String>,
        host: String,
        path: String,
    },
}

/// Recognises rsync's remote argument forms; `None` for a local path.
pub fn parse_remote(arg: &str) -> Option<Remote> {
    let split_user = |s: &str| -> (Option<String>, String) {
        match s.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_string()), h.to_string()),
            None => (None, s.to_string()),
        }
    };
    if let Some(rest) = arg.strip_prefix("rsync://") {
        let (hostpart, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (user, hostport) = split_user(hostpart);
        let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
            let (h, tail) = h.split_once(']').unwrap_or((h, ""));
            (
                h.to_string(),
                tail.strip_prefix(':').and_then(|p| p.parse().ok()),
            )
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().ok()),
                None => (hostport.clone(), None),
            }
        };
        return Some(Remote::Daemon {
            user,
            host,
            port,
            path: path.to_string(),
        });
    }
    let colon = arg.find(':')?;
    if arg[..colon].contains('/') {
        return None;
    }
    let (user, host) = split_user(&arg[..colon]);
    if let Some(path) = arg[colon + 1..].strip_prefix(':') {
        return Some(Remote::Daemon {
            user,
            host,
            port: None,
            path: path.to_string(),
        });
    }
    Some(Remote::Shell {
        user,
        host,
        path: arg[colon + 1..].to_string(),
    })
}

impl Remote {
    /// The host as written, with its `user@` (what stock compares a remote `--files-from`
    /// list's host with).
    pub fn host_spec(&self) -> String {
        let (Remote::Daemon { user, host, .. } | Remote::Shell { user, host, .. }) = self;
        match user {
            Some(u) => format!("{u}@{host}"),
            None => host.clone(),
        }
    }
}

/// A remote `--files-from` list must be on the host the transfer talks to (`:LIST`, with no
/// host, always is), as stock's start_client checks.
fn check_files_from_host(opts: &Options, transfer: &Remote, at: &'static str) -> Result<()> {
    let Some(list) = opts.files_from.as_ref() else {
        return Ok(());
    };
    match parse_remote(&crate::argtext::os_text(list)) {
        Some(r) if !r.host_spec().is_empty() && r.host_spec() != transfer.host_spec() => {
            Err(Error::BareUsage {
                message: "--files-from hostname is not the same as the transfer hostname".into(),
                at,
            })
        }
        _ => Ok(()),
    }
}

/// The result of a transfer that ran to its end.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub stats: PullStats,
    /// The exit status of the remote shell's rsync, when there is one: a sender that found
    /// nothing to send exits 23 without saying so on the wire.
    pub remote_status: Option<i32>,
    /// Set when the run only listed modules.
    pub listed_modules: bool,
    /// A pull received a non-empty list: stock's client then forks, and the closing line of
    /// its generator says `[generator=…]` rather than `[Receiver=…]`.
    pub generated: bool,
}

impl Outcome {
    /// rsync's exit code: 23 for partial transfers (errors or sender I/O errors), else 0.
    pub fn exit_code(&self) -> i32 {
        let local = self.local_exit_code();
        match self.remote_status {
            Some(remote) if local == exit::OK && remote != 0 => remote,
            _ => local,
        }
    }

    fn local_exit_code(&self) -> i32 {
        if self.stats.errors > 0 || self.stats.io_error & 1 != 0 {
            exit::PARTIAL
        } else if self.stats.io_error & 2 != 0 {
            exit::VANISHED
        } else if self.stats.io_error & 4 != 0 {
            exit::DEL_LIMIT
        } else {
            exit::OK
        }
    }
}

/// Runs a client transfer described by `opts.args` (sources, then destination).
pub fn run(opts: &Options, env: &ClientEnv) -> Result<Outcome> {
    crate::mux::set_eight_bit_output(opts.eight_bit_output);
    crate::mux::set_message_iconv(transfer_iconv(opts)?);
    let args: Vec<String> = opts
        .args
        .iter()
        .map(|a| crate::argtext::os_text(a))
        .collect();
    let (dest, sources) = args
        .split_last()
        .ok_or_else(|| Error::Startup("no destination given".into()))?;
    // A lone remote source: list instead of copying.
    if sources.is_empty() {
        let all: Vec<Remote> = args.iter().filter_map(|s| parse_remote(s)).collect();
        if all.len() == args.len() {
            let mut lopts = opts.clone();
            lopts.list_only = true;
            if !lopts.recursive {
                lopts.dirs = true;
            }
            return pull_from(&lopts, env, &all, None, !opts.list_only);
        }
    }
    let remote_sources: Vec<Remote> = sources.iter().filter_map(|s| parse_remote(s)).collect();
    if remote_sources.is_empty() && env.local_server {
        // A local transfer through a server we start ourselves (stock's local_child).
        let remote = Remote::Shell {
            user: None,
            host: String::new(),
            path: dest.clone(),
        };
        return crate::push_client::push_to(opts, env, sources, remote);
    }
    if remote_sources.is_empty() {
        return match parse_remote(dest) {
            Some(remote) => {
                check_files_from_host(opts, &remote, "main.c(1503)")?;
                crate::push_client::push_to(opts, env, sources, remote)
            }
            None => Err(Error::Unsupported(
                "local copies are handled by the engine".into(),
            )),
        };
    }
    // As stock's client: the first source decides the direction, the rest must agree.
    if parse_remote(dest).is_some() {
        return Err(Error::BareUsage {
            message: "The source and destination cannot both be remote.".into(),
            at: "main.c(1471)",
        });
    }
    check_files_from_host(opts, &remote_sources[0], "main.c(1479)")?;
    if parse_remote(&sources[0]).is_none() {
        if let Some(odd) = sources.iter().find(|s| parse_remote(s).is_some()) {
            return Err(Error::BareUsage {
                message: format!("Unexpected remote arg: {odd}"),
                at: "main.c(1555)",
            });
        }
    } else if let Some(odd) = sources.iter().find(|s| parse_remote(s).is_none()) {
        return Err(Error::BareUsage {
            message: format!(
                "Unexpected local arg: {odd}\nIf arg is a remote file/dir, prefix it with a colon (:)."
            ),
            at: "main.c(1571)",
        });
    }
    pull_from(
        opts,
        env,
        &remote_sources,
        Some(crate::argtext::path(dest)),
        false,
    )
}

pub(crate) fn negotiate_config(opts: &Options) -> Result<NegotiateConfig> {
    let (checksum_choice, file_checksum_choice) = crate::checksum::choices(opts)?;
    // A --compress-level implies compression (stock's CPRES_AUTO).
    let compress = opts.compress || opts.compress_level.is_some();
    let compress_choice = match &opts.compress_choice {
        Some(c) if compress => Some(
            Compression::from_name(c)
                .ok_or_else(|| Error::Startup(format!("unknown compress name: {c}")))?,
        ),
        _ => None,
    };
    Ok(NegotiateConfig {
        checksum_choice,
        file_checksum_choice,
        compress,
        compress_choice,
        supported_compressions: supported_compressions(),
        offered_inc_recurse: false,
        batch: opts.write_batch.is_some() && !opts.server,
    })
}

/// Token compressions this build can run.
pub fn supported_compressions() -> Vec<Compression> {
    vec![
        Compression::Zstd,
        Compression::Lz4,
        Compression::Zlibx,
        Compression::Zlib,
    ]
}

/// `implied_listing`: a listing asked for by naming no destination (not `--list-only`),
/// which stock does not pass on to the server.
fn pull_from(
    opts: &Options,
    env: &ClientEnv,
    sources: &[Remote],
    dest: Option<PathBuf>,
    implied_listing: bool,
) -> Result<Outcome> {
    let our_protocol = opts.protocol.unwrap_or(MAX_PROTOCOL).min(MAX_PROTOCOL);
    if our_protocol < negotiate::MIN_PROTOCOL {
        return Err(Error::Protocol(format!(
            "--protocol must be at least {} on the Client.",
            negotiate::MIN_PROTOCOL
        )));
    }
    let mut sargs = server_args(opts, true);
    if implied_listing {
        sargs.retain(|a| a != "--list-only");
    }
    // As stock's client, ask for incremental recursion unless an option needs the whole
    // list first (a batch records the lists as they come; --only-write-batch asks for one).
    let offer_inc = opts.incremental_recursion() && !opts.only_write_batch;
    if offer_inc {
        crate::server_args::offer_inc_recurse(&mut sargs);
    }
    sargs.push(".".into());
    let implied = requested_names(opts, sources);
    let (mut conn, protocol) = match &sources[0] {
        Remote::Daemon {
            user, host, port, ..
        } => {
            let mut paths = Vec::new();
            let mut module = None;
            for s in sources {
                let Remote::Daemon { path, host: h, .. } = s else {
                    return Err(Error::Startup("mixed remote kinds".into()));
                };
                if h != host {
                    return Err(Error::Startup(
                        "all sources must be on the same host".into(),
                    ));
                }
                if path.starts_with('/') {
                    return Err(Error::Startup(
                        "ERROR: The remote path must start with a module name".into(),
                    ));
                }
                let m = path.split('/').next().unwrap_or_default().to_string();
                module.get_or_insert(m.clone());
                // A bare module name is sent as "module/".
                paths.push(if path.contains('/') {
                    path.clone()
                } else {
                    format!("{path}/")
                });
            }
            let module = module.unwrap_or_default();
            let addr = DaemonAddress {
                host: host.clone(),
                port: port.or(opts.port),
                bind: opts.address.clone(),
                contimeout: opts.contimeout,
                io_timeout: opts.timeout,
                connect_prog: env.connect_prog.clone(),
                proxy: env.proxy.clone(),
                debug_connect: crate::client::client_debug(opts, "connect"),
                debug_cmd: crate::client::client_debug(opts, "cmd"),
            };
            let mut conn = crate::client::open_daemon(opts, env, user.as_deref(), &addr)?;
            let creds = Credentials {
                user: user.clone().or_else(|| env.user.clone()),
                password_file: opts.password_file.as_ref().map(PathBuf::from),
                env_password: env.password.clone(),
                early_input: opts.early_input.as_ref().map(PathBuf::from),
            };
            let mut motd = PrintMessages;
            let (sargs, secluded) = daemon_args(opts, &sargs, paths);
            let reply = daemon_client::daemon_login_with(
                &mut conn.reader,
                &mut conn.writer,
                our_protocol,
                &module,
                &creds,
                &mut motd,
                &mut || announce_daemon_args(opts, &sargs),
            )?;
            let DaemonReply::Ready { protocol } = reply else {
                return Ok(Outcome {
                    listed_modules: true,
                    ..Default::default()
                });
            };
            daemon_client::send_daemon_args(&mut conn.writer, &sargs)?;
            send_secluded(&mut conn.writer, secluded.as_deref())?;
            (conn, protocol)
        }
        Remote::Shell { user, host, .. } => {
            let mut files = Vec::new();
            for s in sources {
                let Remote::Shell { path, .. } = s else {
                    return Err(Error::Startup("mixed remote kinds".into()));
                };
                files.push(if path.is_empty() {
                    ".".into()
                } else {
                    path.clone()
                });
            }
            let command = shell_command(opts, env, &sargs, &files, false);
            open_remote_shell(opts, env, user.as_deref(), host, &command, our_protocol)?
        }
    };
    let mut ncfg = negotiate_config(opts)?;
    ncfg.offered_inc_recurse = offer_inc;
    let mut neg = negotiate::client_setup(&mut conn.reader, &mut conn.writer, protocol, &ncfg)?;
    neg.apply_compress_level(opts.compress_level);
    if let Some(b) = &env.batch {
        b.record_header(&neg);
    }
    transfer_as_receiver(
        opts,
        conn,
        neg,
        dest,
        env.batch.as_ref(),
        None,
        implied.as_ref(),
    )
}

/// What the source arguments of a pull asked for, as stock's implied include list: a sender
/// listing anything else is refused, and a directory listed only as a `-R` parent of a
/// requested path keeps its other contents even with `--delete`. None when the sender is
/// trusted (`--trust-sender`, `--old-args`, or a `--files-from` list naming the files).
fn requested_names(opts: &Options, sources: &[Remote]) -> Option<rtsync_filter::ImpliedIncludes> {
    let trusted_env = opts.old_args.is_none()
        && !opts.secluded_args()
        && std::env::var("RSYNC_OLD_ARGS").is_ok_and(|v| !v.is_empty() && v.trim() != "0");
    if opts.trust_sender
        || opts.old_args.unwrap_or(0) > 0
        || trusted_env
        || opts.files_from.is_some()
    {
        return None;
    }
    let mut implied = rtsync_filter::ImpliedIncludes::new(opts.recursive, opts.dirs, opts.relative);
    for s in sources {
        match s {
            Remote::Daemon { path, .. } => implied.add_arg(&crate::argtext::bytes(path), true),
            Remote::Shell { path, .. } => implied.add_arg(
                &crate::argtext::bytes(if path.is_empty() { "." } else { path }),
                false,
            ),
        }
    }
    Some(implied)
}

/// A `--debug` level as the client uses it for its own informational lines (none with
/// `--quiet`, which silences them in stock).
pub(crate) fn client_debug(opts: &Options, category: &str) -> u32 {
    if opts.quiet {
        0
    } else {
        opts.debug_level(category)
    }
}

/// `-vv` (`--debug=cmd`): the arguments about to be sent to a daemon, as stock shows them.
pub(crate) fn announce_daemon_args(opts: &Options, sargs: &[String]) {
    if client_debug(opts, "cmd") >= 1 {
        connect::info_line(&connect::child_argv_line("sending daemon args:", sargs));
    }
}

/// Reaches a daemon: over a socket (or `RSYNC_CONNECT_PROG`), or, when `-e` was given, by
/// starting `rsync --server --daemon .` through that remote shell, as stock does.
pub(crate) fn open_daemon(
    opts: &Options,
    env: &ClientEnv,
    user: Option<&str>,
    addr: &DaemonAddress,
) -> Result<Connection> {
    if opts.rsh.is_some() {
        let sargs = ["--server", "--daemon", "."].map(String::from);
        return spawn_remote_shell(opts, env, user, &addr.host, &sargs);
    }
    connect::connect_daemon(addr)
}

/// Characters the remote shell would act on; backslash-escaped in arguments it passes on.
const SHELL_CHARS: &str = "!#$&;|<>(){}\"'` \t\n\r\\";
/// Glob characters: escaped in option values, left alone in file names (remote globbing).
const WILD_CHARS: &str = "*?[]";

/// Backslash-escapes one server argument for the remote shell, as stock rsync (3.2.4+)
/// does unless `--old-args` asks for the old word-splitting behaviour. A file name keeps its
/// wildcards (and a backslash already protecting one); a leading `-` becomes `./-`, and a
/// leading `~` is escaped when the remote shell would otherwise expand it to a home dir
/// the local side never asked for (`tilde_guard`).
pub(crate) fn shell_escape_arg(
    arg: &str,
    filename: bool,
    old_args: u8,
    tilde_guard: bool,
) -> String {
    let mut out = String::with_capacity(arg.len() + 4);
    if filename && arg.starts_with('-') {
        out.push_str("./");
    }
    let escape = if filename {
        old_args == 0
    } else {
        old_args < 2
    };
    if !escape {
        out.push_str(arg);
        return out;
    }
    if filename && tilde_guard && arg.starts_with('~') {
        out.push('\\');
    }
    let chars: Vec<char> = arg.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let needs = if c == '\\' {
            !filename || !chars.get(i + 1).is_some_and(|n| WILD_CHARS.contains(*n))
        } else {
            SHELL_CHARS.contains(c) || (!filename && WILD_CHARS.contains(c))
        };
        if needs {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// How many `--old-args` apply: the option, else RSYNC_OLD_ARGS.
fn old_args_level(opts: &Options) -> u8 {
    opts.old_args.unwrap_or_else(|| {
        if opts.secluded_args() {
            return 0;
        }
        std::env::var("RSYNC_OLD_ARGS")
            .ok()
            .and_then(|v| v.trim().parse::<u8>().ok())
            .unwrap_or(0)
    })
}

/// The server options (raw from `server_args`) escaped as stock's client escapes option
/// values: the one place for both transports, since a remote shell and a daemon (stock's
/// `read_args`) both take the backslashes off the words before `.`.
pub(crate) fn escape_options(opts: &Options, options: &[String]) -> Vec<String> {
    let old_args = old_args_level(opts);
    options
        .iter()
        .map(|a| shell_escape_arg(a, false, old_args, false))
        .collect()
}

/// The remote end's command: what the remote shell is given, and with `-s` the arguments
/// kept off its command line.
pub(crate) struct ShellCommand {
    pub args: Vec<String>,
    /// `-s` (`--secluded-args`): sent over the connection before the protocol starts.
    pub secluded: Option<Vec<u8>>,
}

/// The server's command for a remote shell: every argument on its command line, escaped
/// (see [`shell_escape_server_args`]); or with `-s` only `--server`, `--sender` and the
/// short-option cluster (with `s` first in it), and the rest, unescaped, in stock's
/// send_protected_args form: `rsync` as argument 0, each one NUL-terminated (an empty one
/// as `.`), and an empty one to close the list.
pub(crate) fn shell_command(
    opts: &Options,
    env: &ClientEnv,
    options: &[String],
    files: &[String],
    local_is_sender: bool,
) -> ShellCommand {
    if !opts.secluded_args() || env.local_server {
        return ShellCommand {
            args: shell_escape_server_args(opts, options, files, local_is_sender),
            secluded: None,
        };
    }
    let (shown, secluded) = seclude(options, files, transfer_iconv(opts).ok().flatten());
    ShellCommand {
        args: shown,
        secluded: Some(secluded),
    }
}

/// The arguments for a daemon: the options escaped as stock's client escapes them, then the
/// module paths; with `-s` only the first ones, the rest to follow secluded (see
/// [`seclude`]; a daemon reads both lists).
pub(crate) fn daemon_args(
    opts: &Options,
    options: &[String],
    paths: Vec<String>,
) -> (Vec<String>, Option<Vec<u8>>) {
    if opts.secluded_args() {
        let (shown, secluded) = seclude(options, &paths, transfer_iconv(opts).ok().flatten());
        return (shown, Some(secluded));
    }
    let mut args = escape_options(opts, options);
    args.extend(paths);
    (args, None)
}

/// Sends what [`seclude`] kept off the command line, if anything.
pub(crate) fn send_secluded<W: Write>(w: &mut W, secluded: Option<&[u8]>) -> Result<()> {
    let Some(bytes) = secluded else {
        return Ok(());
    };
    w.write_all(bytes)
        .and_then(|_| w.flush())
        .map_err(|e| Error::io("sending secluded arguments", e))
}

/// Splits a server's arguments for `-s`: the ones shown (up to the short-option cluster,
/// which gets its `s`) and the rest (then `files`) in stock's send_protected_args form.
///
/// With `--iconv` (which stays shown, after the cluster, so the server can read the rest)
/// the rest go converted to UTF-8, as stock's do.
pub(crate) fn seclude(
    options: &[String],
    files: &[String],
    iconv: Option<crate::iconv::Iconv>,
) -> (Vec<String>, Vec<u8>) {
    let cluster = options
        .iter()
        .position(|a| a.starts_with('-') && !a.starts_with("--"));
    let mut at = cluster.map_or(options.len().min(2), |i| i + 1);
    if options.get(at).is_some_and(|a| a.starts_with("--iconv=")) {
        at += 1;
    }
    let mut shown = options[..at].to_vec();
    match cluster.and_then(|i| shown.get_mut(i)) {
        Some(c) => c.insert(1, 's'),
        None => shown.push("-s".into()),
    }
    let mut wire = Vec::new();
    let rest = options[at..].iter().chain(files).map(String::as_str);
    for a in std::iter::once("rsync").chain(rest) {
        let a = crate::argtext::bytes(if a.is_empty() { "." } else { a });
        match &iconv {
            Some(ic) => wire.extend_from_slice(&ic.message_to_wire(&a)),
            None => wire.extend_from_slice(&a),
        }
        wire.push(0);
    }
    wire.push(0);
    (shown, wire)
}

/// Server arguments as the remote shell must see them: the options escaped as option
/// values, then the remote file names escaped as file names.
pub(crate) fn shell_escape_server_args(
    opts: &Options,
    options: &[String],
    files: &[String],
    local_is_sender: bool,
) -> Vec<String> {
    let old_args = old_args_level(opts);
    let mut out = escape_options(opts, options);
    for f in files {
        // Stock escapes a leading tilde only where the sender's answer is not trusted
        // anyway: pulling, without --old-args or a remote --files-from.
        let tilde_guard = !local_is_sender
            && old_args == 0
            && !opts.files_from.as_ref().is_some_and(|f| {
                let f = f.to_string_lossy();
                f.contains(':') && !f.starts_with('/')
            })
            && ((opts.relative && !f.contains("/./")) || !f.contains('/'));
        out.push(shell_escape_arg(f, true, old_args, tilde_guard));
    }
    out
}

/// Starts `rsh [-l user] host rsync-path <server args>`.
pub(crate) fn spawn_remote_shell(
    opts: &Options,
    env: &ClientEnv,
    user: Option<&str>,
    host: &str,
    sargs: &[String],
) -> Result<Connection> {
    if env.local_server {
        let me = std::env::current_exe()
            .map_err(|e| Error::Startup(format!("cannot find this program: {e}")))?;
        let mut cmd = Command::new(me);
        cmd.arg("rsync")
            .args(sargs.iter().map(|a| crate::argtext::os(a)));
        return connect::spawn(&mut cmd);
    }
    let rsh = opts
        .rsh
        .clone()
        .or_else(|| env.rsh.clone())
        .unwrap_or_else(|| "ssh".into());
    let mut words = connect::split_shell_command(&rsh);
    if words.is_empty() {
        return Err(Error::Startup("empty remote shell command".into()));
    }
    let program = words.remove(0);
    let mut cmd = Command::new(program);
    cmd.args(&words);
    if let Some(u) = user {
        cmd.arg("-l").arg(u);
    }
    cmd.arg(host);
    cmd.arg(opts.rsync_path.clone().unwrap_or_else(|| "rsync".into()));
    cmd.args(sargs.iter().map(|a| crate::argtext::os(a)));
    if client_debug(opts, "cmd") >= 1 {
        let words: Vec<String> = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|w| w.to_string_lossy().into_owned())
            .collect();
        connect::info_line(&connect::child_argv_line(
            "opening connection using:",
            &words,
        ));
    }
    connect::spawn(&mut cmd)
}

pub(crate) fn flist_options(opts: &Options, neg: &Negotiated) -> FlistOptions {
    FlistOptions {
        protocol: neg.protocol,
        relative: opts.relative,
        varint_flags: neg.varint_flist_flags(),
        safe_flist: neg.safe_flist(),
        id0_names: neg.id0_names(),
        preserve_uid: opts.owner,
        preserve_gid: opts.group,
        preserve_links: opts.links,
        preserve_devices: opts.devices,
        preserve_specials: opts.specials,
        preserve_hard_links: opts.hard_links,
        checksum_len: opts.checksum.then(|| neg.file_checksum.digest_len()),
        numeric_ids: opts.numeric_ids,
        inc_recurse: neg.inc_recurse(),
        missing_entries: opts.delete_missing_args,
        preserve_atimes: opts.atimes > 0,
        xattrs: opts.xattr_rules().filter(|_| neg.protocol >= 30),
        preserve_acls: opts.acls,
        skip_implied: opts.relative && !opts.implied_dirs,
        iconv: transfer_iconv(opts).ok().flatten(),
        symlink_iconv: neg.symlink_iconv(),
    }
}

/// `--iconv`: this side's conversions (a server, and a local copy's receiving half, use the
/// charset after the comma); the error is stock's.
pub(crate) fn transfer_iconv(opts: &Options) -> Result<Option<crate::iconv::Iconv>> {
    match &opts.iconv {
        None => Ok(None),
        Some(spec) => crate::iconv::Iconv::new(crate::iconv::side_charset(spec, opts.server))
            .map(Some)
            .map_err(|msg| Error::Located {
                error: Box::new(Error::Iconv(msg)),
                at: "rsync.c(134)",
            }),
    }
}

pub(crate) fn transfer_as_receiver(
    opts: &Options,
    conn: Connection,
    neg: Negotiated,
    dest: Option<PathBuf>,
    batch: Option<&crate::batch::Recorder>,
    prebuilt: Option<crate::flist::FileList>,
    implied: Option<&rtsync_filter::ImpliedIncludes>,
) -> Result<Outcome> {
    let reading_batch = opts.read_batch.is_some();
    let batch_only = opts.only_write_batch && batch.is_some();
    let Connection {
        reader,
        writer,
        closer,
    } = conn;
    let started = std::time::Instant::now();
    let reader = crate::connect::Counting::new(reader);
    let received = reader.counter();
    let writer = crate::connect::Counting::new(writer);
    let sent = writer.counter();
    let session = || -> Result<Outcome> {
        let mut reader = MuxReader::new(reader, Box::new(PrintMessages));
        if !reading_batch {
            reader.start_mux();
        }
        let mut writer = MuxWriter::new(writer);
        writer
            .start_mux()
            .map_err(|e| Error::io("starting multiplexing", e))?;
        writer.set_bwlimit(opts.bwlimit);
        become_copy_as(opts)?;
        let filters = crate::filters::client_filters(opts)?;
        let out = crate::filters::client_list(opts, &neg, &filters, false)?;
        match crate::push_client::local_files_from(opts, ListUse::Forward)? {
            Some(names) => {
                // Forwarded to the sender after the filter list.
                // (With -s and --iconv they go in UTF-8, as stock's filesfrom_convert.)
                let names = match transfer_iconv(opts)?.filter(|_| opts.secluded_args()) {
                    Some(ic) => names.iter().map(|n| ic.message_to_wire(n)).collect(),
                    None => names,
                };
                crate::server::forward_names(&mut writer, out, &names, neg.protocol)
            }
            None => writer.write_all(&out).and_then(|_| writer.flush()),
        }
        .map_err(|e| Error::io("sending filter list", e))?;

        // The batch records what we read from here on (stock's start_write_batch).
        reader.set_tee(batch.cloned());
        let before_list = received.load(std::sync::atomic::Ordering::Relaxed);
        // What every received list goes through: names checked against the request, `--chmod`,
        // owners mapped.
        let implied = implied.filter(|i| !i.is_empty());
        let mut ids = PullOptions::from_options(opts, None);
        ids.numeric_ids = opts.numeric_ids;
        let prepare = move |list: &mut crate::flist::FileList| -> Result<()> {
            if let Some(implied) = implied {
                for (i, e) in list.entries.iter().enumerate() {
                    if e.name != b"." && !implied.allows(&e.name, e.is_dir()) {
                        eprintln!(
                            "ERROR: rejecting unrequested file-list name: {}",
                            String::from_utf8_lossy(&e.name)
                        );
                        return Err(Error::UnsafePath(
                            String::from_utf8_lossy(&e.name).into_owned(),
                        ));
                    }
                    // A -R parent of a requested path is never a content directory, whatever
                    // the sender says: --delete must not sweep its siblings.
                    if e.is_dir() && implied.is_parent_only(&e.name) {
                        if let Some(c) = list.content_dir.get_mut(i) {
                            *c = false;
                        }
                    }
                }
            }
            if opts.munge_links {
                rtsync_tree::munge::munge_entries(&mut list.entries, true);
            }
            apply_chmod(opts, &mut list.entries);
            ids.map_ids(list);
            Ok(())
        };
        let mut reporter = Reporter::new(opts);
        reporter.set_op("recv");
        reporter.set_sum_kinds(neg.checksum, neg.file_checksum);
        // Stock's item lines come back from the sender to its receiver, behind what its
        // generator says itself (deletions, skips, `is uptodate`): held until the lines
        // before them are out, as stock's generator flushes its buffer.
        reporter.defer_items_per_list();
        // Stock peers would use incremental recursion here, and say so before the list comes
        // (what the sender says while it lists follows); the items that follow come in the same
        // order either way.
        let counting = opts.progress && !opts.quiet && (opts.recursive || opts.dirs);
        if opts.incremental_recursion() {
            reporter.list_notice("receiving incremental file list");
            reporter.flush();
        } else if !counting && prebuilt.is_none() && (opts.recursive || opts.dirs || opts.list_only)
        {
            // `done` once the list is in: the sender's messages come between. (Stock says
            // nothing of a list without directories to transfer; --list-only implies -d.)
            reporter.list_start("receiving file list ... ");
        }
        let prebuilt_list = prebuilt.is_some();
        let (mut list, inc) = match prebuilt {
            Some(mut list) => {
                prepare(&mut list)?;
                (list, None)
            }
            None if neg.inc_recurse() => {
                let mut lists = crate::pull::inc::IncReader::new(
                    FlistDecoder::new(flist_options(opts, &neg)),
                    Box::new(prepare),
                );
                let first = lists.read_first(&mut reader)?;
                (first.list, Some((lists, first.parent)))
            }
            None => {
                let mut list =
                    FlistDecoder::new(flist_options(opts, &neg)).read_list(&mut reader)?;
                prepare(&mut list)?;
                (list, None)
            }
        };
        let flist_size = received.load(std::sync::atomic::Ordering::Relaxed) - before_list;
        if opts.prune_empty_dirs {
            list.prune_empty_dirs(|n| filters.set.is_protected(n, true));
        }
        if opts.incremental_recursion() {
            // (Said before the list was read.)
        } else if counting {
            // As stock's receiver with `--progress`: the count every hundred entries, then the
            // total.
            let n = list.entries.len();
            let mut text = String::from("receiving file list ... ");
            for k in (100..=n).step_by(100) {
                text.push_str(&format!(" {k} files...\r"));
            }
            text.push_str(&format!(
                "{n} file{}to consider\n",
                if n == 1 { " " } else { "s " }
            ));
            reporter.write_raw(text.as_bytes());
        } else if prebuilt_list {
            reporter.list_notice("receiving file list ... done");
        } else {
            reporter.list_built();
        }
        if list.entries.is_empty() {
            if let Some(b) = batch {
                b.finish()?;
            }
            finish_report(
                opts,
                reporter,
                &list,
                &sent,
                &received,
                started,
                &PullStats::default(),
            );
            let mut outcome = Outcome::default();
            outcome.stats.io_error = list.io_error | reader.oob.io_error;
            outcome.stats.errors = u64::from(reader.oob.xfer_error);
            outcome.remote_status = closer.wait();
            return Ok(outcome);
        }
        if let (true, false, Some(d)) = (opts.mkpath, opts.list_only, &dest) {
            if std::fs::metadata(d).is_err() {
                // `--mkpath`: the missing directories leading to the destination first.
                let dest_bytes = d.as_os_str().as_encoded_bytes().to_vec();
                let many = list.entries.len() > 1;
                if let Some(path) = rtsync_engine::local::mkpath_target(&dest_bytes, many) {
                    let count = rtsync_engine::local::make_path(path, opts.dry_run || batch_only)
                        .map_err(|(p, e)| {
                        Error::file(format!("mkdir \"{}\" failed", p.display()), e)
                    })?;
                    if count > 0 && reporter.announces_created() {
                        reporter.info(&rtsync_engine::local::mkpath_notice(count, path));
                    }
                }
            }
        }
        let dest_existed = dest.as_ref().is_none_or(|d| d.exists());
        let dest = match &dest {
            Some(d) if !opts.list_only && opts.keep_dirlinks => {
                Dest::choose_opt(d, &list.entries, !batch_only && !opts.dry_run)?
                    .keep_dirlinks_unconfined()
            }
            Some(d) if !opts.list_only && opts.relative && !opts.implied_dirs => {
                Dest::choose_opt(d, &list.entries, !batch_only && !opts.dry_run)?
                    .through_parents(None)
            }
            Some(d) if !opts.list_only => {
                Dest::choose_opt(d, &list.entries, !batch_only && !opts.dry_run)?
            }
            _ => Dest::Dir(PathBuf::from(".")),
        };
        let dest_created = !dest_existed
            && (matches!(dest, Dest::Dir(_))
                || (matches!(dest, Dest::Linked(..)) && !opts.keep_dirlinks))
            && !batch_only;
        if let (true, Dest::Dir(d) | Dest::Linked(d, _)) = (dest_created, &dest) {
            if reporter.announces_created() {
                let shown = crate::argtext::os_text(d.as_os_str());
                let shown = shown.trim_end_matches('/');
                reporter.info(&format!("created directory {shown}"));
            }
        }
        let mut popts = PullOptions {
            peer_sends_stats: true,
            dest_created,
            list_only: opts.list_only,
            batch_data_follows: batch_only,
            read_batch: reading_batch,
            ..PullOptions::from_options(
                opts,
                (!filters.set.is_empty()).then(|| filters.set.clone()),
            )
        };
        popts.resolve_dirs(&dest.root(), None);
        for w in popts.resolve_basis_dirs(&dest.root(), None) {
            eprintln!("{w}");
        }
        // Messages such as `skipping non-regular file` print without -v too.
        let lists = reporter.lists_items() || opts.list_only || !opts.quiet;
        let log = ItemLog::new(lists.then_some(reporter), list.entries.len());
        let session = pull::PullSession {
            neg: &neg,
            list: &list,
            dest: &dest,
            opts: &popts,
            closer: &closer,
            log: &log,
        };
        let list_received = received.load(std::sync::atomic::Ordering::Relaxed);
        let result = pull::run_pull(&mut reader, &mut writer, &session, inc);
        let reporter = log.finish().unwrap_or_else(|| Reporter::new(opts));
        let mut stats = result.map_err(|e| lost(e, &received, &closer, Some(list_received)))?;
        if let Some(b) = batch {
            b.finish()?;
        }
        stats.flist_size = flist_size + stats.later_lists.bytes;
        finish_report(opts, reporter, &list, &sent, &received, started, &stats);
        let remote_status = closer.wait();
        Ok(Outcome {
            stats,
            remote_status,
            listed_modules: false,
            generated: true,
        })
    };
    session().map_err(|e| lost(e, &received, &closer, None))
}

/// A connection lost mid-transfer becomes [`Error::Lost`], with what stock's client says
/// of it: the bytes received so far and the remote shell's exit status (stock takes it
/// when the shell has already exited; we give it a moment). Other errors pass through.
pub(crate) fn lost(
    e: Error,
    received: &std::sync::atomic::AtomicU64,
    closer: &crate::connect::Closer,
    generated: Option<u64>,
) -> Error {
    if !e.is_connection_loss() {
        return e;
    }
    Error::Lost {
        received: received.load(std::sync::atomic::Ordering::Relaxed),
        status: closer.wait_briefly(std::time::Duration::from_millis(300)),
        generated,
        error: Box::new(e),
    }
}

/// `--chmod` is the client's business: applied to the list it receives (or sends).
/// `--copy-as`: this side's copying runs as the user it names (stock: once the
/// connection is up, before the file list).
pub(crate) fn become_copy_as(opts: &Options) -> Result<()> {
    let Some(spec) = opts.copy_as.as_deref() else {
        return Ok(());
    };
    rtsync_engine::idmap::become_copy_as(spec).map_err(|e| {
        if e.bare {
            Error::BareUsage {
                message: e.message,
                at: e.at,
            }
        } else {
            Error::Located {
                error: Box::new(Error::Usage(e.message)),
                at: e.at,
            }
        }
    })
}

pub(crate) fn apply_chmod(opts: &Options, entries: &mut [rtsync_tree::FileEntry]) {
    if opts.chmod.is_empty() {
        return;
    }
    let umask = crate::local::current_umask();
    for e in entries {
        if e.kind != rtsync_tree::FileKind::Symlink && !e.is_missing() {
            let perms =
                rtsync_engine::chmod::apply_chmod(&opts.chmod, e.perms(), e.is_dir(), umask);
            e.mode = (e.mode & !0o7777) | (perms & 0o7777);
        }
    }
}

/// Prints the closing `sent … received …` lines (with `-v`) and `--stats`.
pub(crate) fn finish_report(
    opts: &Options,
    mut reporter: Reporter,
    list: &crate::flist::FileList,
    sent: &std::sync::atomic::AtomicU64,
    received: &std::sync::atomic::AtomicU64,
    started: std::time::Instant,
    xfer: &PullStats,
) {
    use std::sync::atomic::Ordering::Relaxed;
    if opts.quiet || opts.info_stats() == 0 {
        return;
    }
    let mut s = rtsync_engine::report::Stats {
        sent: match xfer.sender_totals {
            true => xfer.sender_read.max(0) as u64,
            false => sent.load(Relaxed),
        },
        received: match xfer.sender_totals {
            true => xfer.sender_written.max(0) as u64,
            false => received.load(Relaxed),
        },
        transferred: xfer.files_transferred,
        literal: xfer.literal_bytes,
        matched: xfer.matched_bytes,
        transferred_size: xfer.transferred_size,
        ..Default::default()
    };
    s.deleted = xfer.deleted_kinds;
    s.created = xfer.created;
    s.flist_size = xfer.flist_size;
    for e in &list.entries {
        // A missing entry (mode 0) is no known kind: stock's receiver counts it a special.
        let kind = if e.is_missing() {
            rtsync_tree::FileKind::Socket
        } else {
            e.kind
        };
        s.files[rtsync_engine::report::kind_slot(kind)] += 1;
        if matches!(
            e.kind,
            rtsync_tree::FileKind::Regular | rtsync_tree::FileKind::Symlink
        ) {
            s.total_size += e.size;
        }
    }
    // (Incremental recursion: the lists after the first are gone.)
    for (n, more) in s.files.iter_mut().zip(xfer.later_lists.files) {
        *n += more;
    }
    s.total_size += xfer.later_lists.total_size;
    if opts.info_stats() >= 3 {
        reporter.heap_stats(&["receiver", "generator"]);
    }
    if opts.info_stats() >= 2 {
        // (The sender's times, as stock's client prints them.)
        let (build, xfer) = xfer.flist_times;
        reporter.stats(&s, build as f64 / 1000.0, xfer as f64 / 1000.0);
    }
    reporter.summary(&s, started.elapsed().as_secs_f64(), opts.dry_run);
    reporter.flush();
}

/// Starts the remote shell's rsync with server arguments `sargs` and exchanges protocol
/// versions with it; returns the connection and the agreed protocol.
pub(crate) fn open_remote_shell(
    opts: &Options,
    env: &ClientEnv,
    user: Option<&str>,
    host: &str,
    command: &ShellCommand,
    our_protocol: u32,
) -> Result<(crate::connect::Connection, u32)> {
    let mut conn = spawn_remote_shell(opts, env, user, host, &command.args)?;
    // Before anything else the server reads the arguments it was not shown.
    send_secluded(&mut conn.writer, command.secluded.as_deref())
        .map_err(|e| shell_failure(e, &conn.closer))?;
    let protocol = negotiate::exchange_versions(&mut conn.reader, &mut conn.writer, our_protocol)
        .map_err(|e| shell_failure(e, &conn.closer))?;
    Ok((conn, protocol))
}

/// When the remote shell dies before the version exchange, say why as stock does: the
/// connection closed with nothing received, and the shell's exit status (127: the remote
/// rsync was not found, 255: ssh itself failed) as the exit code when it is higher.
pub(crate) fn shell_failure(e: Error, closer: &crate::connect::Closer) -> Error {
    if !e.is_connection_loss() && !matches!(e, Error::Io { .. }) {
        return e;
    }
    // (Stock's version is still in its buffer: it only sees the end of the stream.)
    Error::Lost {
        received: 0,
        status: closer.wait(),
        generated: None,
        error: Box::new(Error::UnexpectedEof {
            context: "reading from peer",
        }),
    }
}

/// `strerror` text for an I/O error, as rsync prints it.
pub fn strerror(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            // SAFETY: strerror returns a valid static C string.
            let s = unsafe { std::ffi::CStr::from_ptr(libc::strerror(code)) };
            s.to_string_lossy().into_owned()
        }
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_arg_table() {
        let d = |user: Option<&str>, host: &str, port: Option<u16>, path: &str| {
            Some(Remote::Daemon {
                user: user.map(str::to_string),
                host: host.into(),
                port,
                path: path.into(),
            })
        };
        let s = |user: Option<&str>, host: &str, path: &str| {
            Some(Remote::Shell {
                user: user.map(str::to_string),
                host: host.into(),
                path: path.into(),
            })
        };
        let cases = [
            ("host::mod/path", d(None, "host", None, "mod/path")),
            ("u@host::mod", d(Some("u"), "host", None, "mod")),
            (
                "rsync://127.0.0.1:8730/mod/x/",
                d(None, "127.0.0.1", Some(8730), "mod/x/"),
            ),
            ("rsync://u@[::1]:99/m", d(Some("u"), "::1", Some(99), "m")),
            ("rsync://host", d(None, "host", None, "")),
            ("host:dir/file", s(None, "host", "dir/file")),
            ("me@host:", s(Some("me"), "host", "")),
            ("./a:b", None),
            ("plain/path", None),
        ];
        for (arg, want) in cases {
            assert_eq!(parse_remote(arg), want, "{arg}");
        }
    }
}
