//! The server side (`rsync --server [--sender] …`): what a stock client runs on the remote
//! end through `-e`/`--rsync-path`, and what the daemon runs after its greeting.
//!
//! ```no_run
//! // In the binary: `rtsync rsync --server ...` with stdin/stdout as the connection.
//! let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
//! let code = rtsync_wire::server::run(&args, std::io::stdin(), std::io::stdout());
//! std::process::exit(code);
//! ```

use rtsync_engine::files_from::ListUse;
use std::ffi::OsString;
use std::io::{BufReader, Read, Write};
use std::path::PathBuf;

use rtsync_engine::Options;

use crate::client::{flist_options, supported_compressions};
use crate::connect::Closer;
use crate::error::{Error, Result};
use crate::flist::{Content, FlistDecoder, FlistEncoder, FlistOptions};
use crate::local::Dest;
use crate::mux::{MsgTag, MuxReader, MuxWriter};
use crate::negotiate::{self, NegotiateConfig, Negotiated, MAX_PROTOCOL};
use crate::pull::{self, PullOptions};
use crate::push::{self, PushOptions};
use rtsync_engine::report::{LogFn, TransferLog};

/// How the connection reached us.
#[derive(Debug, Clone, Default)]
pub struct ServerSession {
    /// The protocol already agreed in a daemon greeting; `None` over a remote shell (the
    /// versions are exchanged first).
    pub daemon_protocol: Option<u32>,
    /// A daemon module's root: the paths after `.` are taken relative to it (leading `/`
    /// and `..` cannot leave it). `None`: paths are used as given (remote shell).
    pub root: Option<PathBuf>,
    /// The module refuses uploads (`read only`).
    pub read_only: bool,
    /// The module refuses downloads (`write only`).
    pub write_only: bool,
    /// rsyncd.conf's `munge symlinks`: received symlink targets get [`rtsync_tree::munge::MUNGE_PREFIX`] (so they
    /// cannot lead anywhere inside the module), and it is taken off targets sent back.
    pub munge_symlinks: bool,
    /// A daemon module's own filter rules: what they exclude is neither listed nor sent.
    pub module_filter: Option<rtsync_filter::FilterSet>,
    /// rsyncd.conf's `incoming chmod` (a receiving session) or `outgoing chmod` (a sending
    /// one): applied to the modes of the file list's entries, as `--chmod` rules.
    pub chmod: Vec<String>,
    /// The connection's socket, if any: shut down when one side of a receiving session
    /// fails, so the other cannot wait on a hostile client forever.
    pub socket_fd: Option<std::os::fd::RawFd>,
    /// Symlinks in the module may be followed anywhere (the module is a chroot's root, or
    /// `insecure links = yes`). Otherwise they are followed only beneath the root and only
    /// when owned by root or us (see [`rtsync_tree::Confine`]).
    pub unconfined: bool,
    /// The module's name, for messages (`(in NAME)`).
    pub module_name: Option<String>,
    /// Where a daemon logs: a session's fatal error goes there as well as to the client.
    pub log: Option<LogSink>,
    /// A module whose root is not `/` in our view (no chroot into it): received symlink
    /// targets are sanitized unless munged, as stock's `sanitize_paths`.
    pub sanitize_paths: bool,
    /// rsyncd.conf's `numeric ids` (or its chroot default): a receiving session ignores the
    /// user and group names the client sends and keeps the numbers (maps still apply); a
    /// sending one sends no names (the client maps by number).
    pub numeric_ids: bool,
    /// rsyncd.conf's `max verbosity` (`None` outside a daemon): the client's `-v`/`--info`
    /// levels are limited to it on our side, as stock's limit_output_verbosity.
    pub max_verbosity: Option<i64>,
    /// The daemon's own `--bwlimit` in KiB/s (0: none): the session is held to it, or to
    /// the client's `--bwlimit` when that is lower.
    pub daemon_bwlimit: u64,
    /// rsyncd.conf's `open noatime`, when the module sets it: overrides the client's
    /// `--open-noatime` (stock's lp_open_noatime).
    pub open_noatime: Option<bool>,
    /// A daemon module's `fake super`: this side runs as with `--fake-super` (and `-XX`
    /// counts as `-X`); without it a client's `--fake-super` counts as `--super`.
    pub fake_super: bool,
    /// A daemon module's `charset`: with the client's `--iconv`, names are converted to and
    /// from it (the value the client sends is not used, as stock's daemon ignores it);
    /// without one the daemon refused `--iconv` already.
    pub charset: Option<String>,
    /// A daemon module's transfer log: its `log format` (when `transfer logging = yes`, or
    /// the daemon's `--log-file-format`) and what its `%h %a %m %u %P` say. Lines go to
    /// [`ServerSession::log`].
    pub transfer_log: Option<(String, rtsync_engine::report::DaemonFacts)>,
    /// rsyncd.conf's `ignore errors`: as if the client gave `--ignore-errors`.
    pub ignore_errors: bool,
    /// rsyncd.conf's `temp dir`: where a receiving session writes its temp files unless
    /// the client names a `--temp-dir`; found beneath the module as a client's would be
    /// (stock 3.5.0 takes an absolute one inside the module too).
    pub temp_dir: Option<String>,
    /// rsyncd.conf's `ignore nonreadable`: a sending session leaves out what it may not
    /// read (see [`crate::filters::SkipUnreadable`]).
    pub ignore_nonreadable: bool,
}

/// A daemon's log, as a function taking one message.
#[derive(Clone)]
pub struct LogSink(pub std::sync::Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for LogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogSink")
    }
}

/// Messages a client puts on the wire to us (a sender never needs to; stock's receiver
/// passes them to its generator, which logs them). Never written to stdout, which may be the
/// connection itself: a daemon logs them, a remote-shell server writes them to stderr.
struct PeerMessages {
    log: Option<LogSink>,
}

impl crate::mux::MessageHandler for PeerMessages {
    fn message(&mut self, tag: MsgTag, text: &[u8]) {
        if matches!(tag, MsgTag::Log | MsgTag::Deleted) {
            return;
        }
        match &self.log {
            Some(log) => {
                for line in String::from_utf8_lossy(text).lines() {
                    (log.0)(line);
                }
            }
            None => {
                let _ = std::io::stderr().lock().write_all(text);
            }
        }
    }
}

/// A destination path as a receiving server names it to its client: relative to the module
/// in a daemon, as given otherwise.
fn module_relative(path: &str, module_root: Option<&std::path::Path>) -> String {
    match module_root {
        Some(r) => path
            .strip_prefix(&*crate::argtext::os_text(r.as_os_str()))
            .unwrap_or(path)
            .trim_start_matches('/')
            .to_string(),
        None => path.to_string(),
    }
}

/// Cleans a received symlink target as stock does in a module served without chroot (and
/// without `munge symlinks`): a leading `/` and `.` components go, `..` components collapse
/// and may climb at most `depth` levels (the link's own depth in the module) at the start.
/// An empty result is `.`.
pub fn sanitize_link_target(target: &[u8], mut depth: usize) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(target.len());
    // `out[..fixed]` holds the leading `../` components that were allowed.
    let mut fixed = 0;
    let mut comps = target.split(|&b| b == b'/').peekable();
    while let Some(c) = comps.next() {
        let last = comps.peek().is_none();
        match c {
            b"" | b"." => continue,
            b".." if out.len() == fixed && depth > 0 => {
                depth -= 1;
                out.extend_from_slice(b"..");
                if !last || target.ends_with(b"/") {
                    out.push(b'/');
                }
                fixed = out.len();
            }
            b".." => {
                // Back up one component (never into the allowed leading `..`s).
                if out.len() > fixed {
                    out.pop(); // the slash after the component
                    while out.len() > fixed && out.last() != Some(&b'/') {
                        out.pop();
                    }
                }
            }
            _ => {
                out.extend_from_slice(c);
                if !last || target.ends_with(b"/") {
                    out.push(b'/');
                }
            }
        }
    }
    if out.is_empty() {
        out.push(b'.');
    }
    out
}

/// Keeps a module session's paths inside its root without relying on chroot: a sender's
/// source may pass through in-module symlinks, but not through one that leads out (stock's
/// `change_dir ... failed: Too many levels of symbolic links`: the source is dropped); a
/// receiver's destination is resolved to the real directory it names, or refused. Symlinks
/// met below the sources are the scanner's and the content opens' business.
fn confine_args(
    opts: &mut Options,
    confine: &rtsync_tree::Confine,
    module: &str,
) -> std::result::Result<Vec<String>, String> {
    let mut messages = Vec::new();
    let base = confine
        .base()
        .to_string_lossy()
        .trim_end_matches('/')
        .to_string();
    let shown = |p: &str| -> String {
        let rel = p.strip_prefix(&base).unwrap_or(p);
        rel.trim_start_matches('/').to_string()
    };
    if opts.sender {
        let mut kept = vec![opts.args[0].clone()];
        for a in opts.args.iter().skip(1) {
            let text = crate::argtext::os_text(a);
            let trimmed = text.trim_end_matches('/');
            // With -R only the part before a `/./` marker is a directory to enter (the rest
            // is the name sent, and the listing reports what of it is missing).
            let dir = if opts.relative {
                text.split_once("/./").map_or("", |(d, _)| d)
            } else if text.ends_with('/') {
                trimmed
            } else {
                trimmed.rsplit_once('/').map_or("", |(d, _)| d)
            };
            if !dir.is_empty() {
                if let Err(e) = confine.resolve(&crate::argtext::path(dir), true) {
                    messages.push(format!(
                        "rsync: [sender] change_dir \"{}\" (in {module}) failed: {} ({})\n",
                        shown(dir),
                        crate::client::strerror(&e),
                        e.raw_os_error().unwrap_or(0)
                    ));
                    continue;
                }
            }
            kept.push(a.clone());
        }
        opts.args = kept;
    } else if let Some(dest) = opts.args.get_mut(1) {
        let text = crate::argtext::os_text(dest);
        let trailing = text.ends_with('/');
        match confine.resolve(&crate::argtext::path(&text), true) {
            Ok(real) => {
                let mut real = real.into_os_string();
                if trailing {
                    real.push("/");
                }
                *dest = real;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(format!(
                    "rsync: [Receiver] change_dir#3 \"{}\" (in {module}) failed: {} ({})",
                    shown(&text),
                    crate::client::strerror(&e),
                    e.raw_os_error().unwrap_or(0)
                ))
            }
        }
    }
    Ok(messages)
}

/// Stock's check of a receiving module's destination against the module's rules, by name
/// (as a file and as a directory; a symlink on the way is not looked at).
fn excluded_destination(
    opts: &Options,
    filter: &rtsync_filter::FilterSet,
    root: Option<&std::path::Path>,
) -> Option<String> {
    let dest = crate::argtext::os_text(opts.args.get(1)?);
    let root = root.map(|r| {
        crate::argtext::os_text(r.as_os_str())
            .trim_end_matches('/')
            .to_string()
    });
    let rel = match &root {
        Some(r) => dest.strip_prefix(r.as_str()).unwrap_or(&dest),
        None => &dest,
    };
    let mut parts: Vec<&str> = Vec::new();
    for c in rel.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let name = parts.join("/");
    if name.is_empty() {
        return None;
    }
    (filter.is_excluded(name.as_bytes(), false) || filter.is_excluded(name.as_bytes(), true))
        .then(|| format!("ERROR: daemon has excluded destination \"{name}\""))
}

/// Stock's check of the directories a client names for a receiving module (`--backup-dir`,
/// `--temp-dir`, an absolute `--partial-dir`) against the module's rules: by name, `..`
/// collapsed, as directories. One the rules exclude rejects the options.
fn option_dir_excluded(opts: &Options, filter: &rtsync_filter::FilterSet) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let partial = opts
        .partial_dir
        .as_ref()
        .filter(|p| p.as_bytes().starts_with(b"/"));
    [opts.backup_dir.as_ref(), opts.temp_dir.as_ref(), partial]
        .into_iter()
        .flatten()
        .any(|dir| dir_is_excluded(filter, &crate::argtext::os_text(dir.as_os_str())))
}

/// Whether the module's rules hide the directory `dir` a client names (by name, `..`
/// collapsed, a leading `/` meaning the module's root).
pub fn dir_is_excluded(filter: &rtsync_filter::FilterSet, dir: &str) -> bool {
    let mut parts: Vec<&str> = Vec::new();
    for c in dir.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let name = parts.join("/");
    !name.is_empty() && filter.is_excluded(name.as_bytes(), true)
}

/// The names a source with wildcards matches, sorted (itself when it has none or they match
/// nothing), as stock's daemon sender expands them with glob(3). Matches never hold `..`
/// or leave the directory the pattern is written in except through its own components.
fn glob_source(arg: &OsString) -> Vec<OsString> {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let bytes = arg.as_bytes();
    if !bytes.iter().any(|c| matches!(c, b'*' | b'?' | b'[')) {
        return vec![arg.clone()];
    }
    let Ok(pattern) = std::ffi::CString::new(bytes) else {
        return vec![arg.clone()];
    };
    // SAFETY: glob_t is plain data that glob fills and globfree releases.
    let mut g: libc::glob_t = unsafe { std::mem::zeroed() };
    let mut out = Vec::new();
    // SAFETY: a valid NUL-terminated pattern and glob_t.
    let rc = unsafe { libc::glob(pattern.as_ptr(), 0, None, &mut g) };
    if rc == 0 {
        for k in 0..g.gl_pathc {
            // SAFETY: glob returned gl_pathc valid C strings.
            let p = unsafe { std::ffi::CStr::from_ptr(*g.gl_pathv.add(k)) };
            let mut v = p.to_bytes().to_vec();
            if bytes.ends_with(b"/") && !v.ends_with(b"/") {
                v.push(b'/');
            }
            out.push(OsString::from_vec(v));
        }
    }
    // SAFETY: releases what glob allocated (also after a failure).
    unsafe { libc::globfree(&mut g) };
    if out.is_empty() {
        out.push(arg.clone());
    }
    out
}

/// Resolves a client path beneath `root` the way rsync's daemon sanitizes it: absolute
/// paths become relative, `..` never climbs above the root, a trailing `/` is kept.
pub fn path_beneath(root: &std::path::Path, p: &str) -> String {
    beneath(root, p, false)
}

/// [`path_beneath`], keeping a `.` inside the path (`dir/./name`), which marks where `-R`'s
/// relative name starts (as stock's sanitizing keeps such dot dirs with `-R`).
fn beneath(root: &std::path::Path, p: &str, keep_dots: bool) -> String {
    let trailing = p.is_empty() || p.ends_with('/') || p == "." || p.ends_with("/.");
    let mut stack: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "." if keep_dots && stack.last().is_some_and(|l| *l != ".") => stack.push("."),
            "" | "." => {}
            ".." => {
                stack.pop();
            }
            c => stack.push(c),
        }
    }
    let mut out = crate::argtext::os_text(root.as_os_str())
        .trim_end_matches('/')
        .to_string();
    for c in stack {
        out.push('/');
        out.push_str(c);
    }
    if trailing || out.is_empty() {
        out.push('/');
    }
    out
}

/// Runs the server role over `input`/`output` with rsync's server arguments (`--server`
/// first). Returns rsync's exit code; fatal errors are also reported to the client as
/// MSG_ERROR when the stream is multiplexed.
pub fn run<R: Read + Send, W: Write + Send>(args: &[OsString], input: R, output: W) -> i32 {
    run_session(args, input, output, ServerSession::default())
}

/// Reads the arguments a `-s` (`--secluded-args`) client sends before the protocol starts
/// (stock's send_protected_args): NUL-terminated, argument 0 first (`rsync`), an empty one
/// closing the list. Read a byte at a time: what follows is the client's protocol version,
/// which is not ours to take. Bounded (at most 64 KiB an argument, 1 MiB in all).
pub fn read_secluded_args<R: Read>(input: &mut R) -> Result<Vec<OsString>> {
    use std::os::unix::ffi::OsStringExt;
    const ARG_MAX: usize = 64 * 1024;
    const TOTAL_MAX: usize = 1024 * 1024;
    let (mut args, mut arg, mut total) = (Vec::new(), Vec::new(), 0usize);
    let mut byte = [0u8; 1];
    loop {
        match input.read(&mut byte) {
            Ok(0) => {
                return Err(Error::UnexpectedEof {
                    context: "reading arguments",
                })
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("reading arguments", e)),
        }
        total += 1;
        if byte[0] == 0 {
            if arg.is_empty() {
                return Ok(args);
            }
            args.push(OsString::from_vec(std::mem::take(&mut arg)));
        } else {
            arg.push(byte[0]);
        }
        if arg.len() > ARG_MAX || total > TOTAL_MAX {
            return Err(Error::Protocol("secluded arguments too long".into()));
        }
    }
}

/// [`run`] for a connection whose protocol was set by a daemon greeting.
pub fn run_session<R: Read + Send, W: Write + Send>(
    args: &[OsString],
    input: R,
    output: W,
    mut session: ServerSession,
) -> i32 {
    let mut opts = match Options::parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("rsync: {e}");
            return crate::error::exit::SYNTAX;
        }
    };
    opts.bwlimit =
        rtsync_engine::bwlimit::BwLimit::daemon_cap(opts.bwlimit, session.daemon_bwlimit);
    if session.daemon_protocol.is_none() {
        // Over a remote shell the option is ours to follow; a daemon's module decides
        // (`munge symlinks`) whatever the client asks.
        if opts.munge_links && rtsync_tree::munge::munge_dir_exists() {
            eprintln!("{}", rtsync_tree::munge::MUNGE_DIR_UNSAFE);
            return crate::error::exit::UNSUPPORTED;
        }
        session.munge_symlinks = opts.munge_links;
    } else {
        // The client mustn't control this: a module's sender unmunges as it munges.
        opts.munge_links = session.munge_symlinks;
    }
    if let Some(noatime) = session.open_noatime {
        opts.open_noatime = noatime;
    }
    if session.daemon_protocol.is_some() {
        if session.fake_super {
            opts.fake_super = true;
            opts.super_user = None;
            opts.xattrs = opts.xattrs.min(1);
        } else if opts.fake_super {
            opts.fake_super = false;
            opts.super_user = Some(true);
        }
    }
    if session.daemon_protocol.is_some() {
        opts.iconv = opts.iconv.take().and(session.charset.clone());
        opts.ignore_errors |= session.ignore_errors;
        if opts.temp_dir.is_none() {
            opts.temp_dir = session.temp_dir.clone().map(Into::into);
        }
    }
    if let Err(e) = crate::client::transfer_iconv(&opts) {
        eprintln!("{}", e.client_message());
        return e.exit_code();
    }
    match serve(&opts, input, output, session) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rsync: {e}");
            e.exit_code()
        }
    }
}

fn serve<R: Read + Send, W: Write + Send>(
    opts: &Options,
    input: R,
    output: W,
    session: ServerSession,
) -> Result<i32> {
    // What we read and wrote goes into a sender's statistics (the client's `sent`/`received`).
    let input = crate::connect::Counting::new(input);
    let output = crate::connect::Counting::new(output);
    let counts = push::ByteCounts {
        read: input.counter(),
        written: output.counter(),
    };
    let mut output = output;
    let mut input = BufReader::with_capacity(64 * 1024, input);
    let ours = opts.protocol.unwrap_or(MAX_PROTOCOL).min(MAX_PROTOCOL);
    let protocol = match session.daemon_protocol {
        Some(p) => p,
        None => negotiate::exchange_versions(&mut input, &mut output, ours)?,
    };
    let mut opts = opts.clone();
    if let Some(max) = session.max_verbosity {
        // A daemon's `max verbosity` caps the client's `-v` on our side (stock's
        // limit_output_verbosity; the `--info` words are capped where they are used).
        opts.verbose = opts.verbose.min(max.clamp(0, u32::MAX as i64) as u32);
        // And every `--info` word to what that many `-v` give (`--info=name2` is `name1`
        // under the default `max verbosity = 1`).
        let at_max = rtsync_engine::Options {
            verbose: max.clamp(0, u32::MAX as i64) as u32,
            ..Default::default()
        };
        for word in rtsync_engine::options::INFO_WORDS {
            let cap = at_max.info_level(word);
            if opts.info_level(word) > cap {
                opts.info.push(format!("{word}{cap}"));
            }
        }
    }
    if let Some(root) = &session.root {
        for a in opts.args.iter_mut().skip(1) {
            let written = crate::argtext::os_text(a);
            let mut p = beneath(root, &written, opts.relative);
            // A -R name written from the module's top starts there, not at a `./` of ours
            // (which would send the module's root as an implied directory, as a `./` the
            // client wrote does).
            let dot_written = written.trim_start_matches('/').starts_with("./");
            if opts.relative && root.as_os_str() == "." && p.len() > 2 && !dot_written {
                p.drain(..2);
            }
            *a = crate::argtext::os(&p);
        }
        if opts.sender {
            // A daemon expands wildcards in the sources itself (no shell did).
            let mut expanded = vec![opts.args[0].clone()];
            for a in opts.args.iter().skip(1) {
                expanded.extend(glob_source(a));
            }
            opts.args = expanded;
        }
    }
    if session.root.is_none() && opts.secluded_args() && opts.sender {
        // The sources came secluded, past the remote shell: expanded here, as stock's
        // server expands them.
        let mut expanded = vec![opts.args[0].clone()];
        for a in opts.args.iter().skip(1) {
            expanded.extend(glob_source(a));
        }
        opts.args = expanded;
    }
    let caps = opts.rsh.clone().unwrap_or_default();
    let (checksum_choice, file_checksum_choice) = crate::checksum::choices(&opts)?;
    let cfg = NegotiateConfig {
        checksum_choice,
        file_checksum_choice,
        // A --compress-level implies compression (stock's CPRES_AUTO).
        compress: opts.compress || opts.compress_level.is_some(),
        compress_choice: match &opts.compress_choice {
            Some(c) => Some(
                negotiate::Compression::from_name(c)
                    .ok_or_else(|| Error::Startup(format!("unknown compress name: {c}")))?,
            ),
            None => None,
        },
        supported_compressions: supported_compressions(),
        // As stock's set_allow_inc_recurse: a receiver takes the lists incrementally unless
        // an option needs the whole list first.
        offered_inc_recurse: if opts.sender {
            push::inc::lists_supported(&opts, &push::inc::readable_sources(&sender_sources(&opts)))
        } else {
            opts.incremental_recursion()
        },
        batch: false,
    };
    let seed = seed();
    let mut neg = negotiate::server_setup(&mut input, &mut output, protocol, &caps, &cfg, seed)?;
    neg.apply_compress_level(opts.compress_level);
    // Statistics count the multiplexed stream only, as stock's do: not the greeting, the
    // version or the negotiation (bytes already buffered past it are the stream's).
    {
        use std::sync::atomic::Ordering::Relaxed;
        counts.read.store(input.buffer().len() as u64, Relaxed);
        counts.written.store(0, Relaxed);
    }
    let mut reader = MuxReader::new(
        input,
        Box::new(PeerMessages {
            log: session.log.clone(),
        }),
    );
    reader.start_mux();
    let mut writer = MuxWriter::new(output);
    writer
        .start_mux()
        .map_err(|e| Error::io("starting multiplexing", e))?;
    writer.set_bwlimit(opts.bwlimit);
    writer.set_iconv(crate::client::transfer_iconv(&opts)?);
    if session.daemon_protocol.is_none() && opts.stderr_mode != Some(0) {
        // Over a remote shell stock's server says its errors on its own stderr.
        writer.set_messages_to_stderr(opts.stderr_mode == Some(1), opts.eight_bit_output);
    }
    let refusal = if opts.sender && session.write_only {
        Some("ERROR: module is write only")
    } else if !opts.sender && session.read_only {
        Some("ERROR: module is read only")
    } else if opts.sender && session.read_only && opts.remove_source_files {
        Some("ERROR: --remove-source-files cannot be used with a read-only module")
    } else {
        None
    };
    if let Some(msg) = refusal {
        let _ = writer.send_msg(MsgTag::Error, format!("{msg}\n").as_bytes());
        end_with_code(&mut writer, neg.protocol, crate::error::exit::SYNTAX);
        return Ok(crate::error::exit::SYNTAX);
    }
    if let (Some(filter), false) = (&session.module_filter, opts.sender) {
        if let Some(msg) = excluded_destination(&opts, filter, session.root.as_deref()) {
            let _ = writer.send_msg(MsgTag::Error, format!("{msg}\n").as_bytes());
            end_with_code(&mut writer, neg.protocol, crate::error::exit::FILE_SELECT);
            return Ok(crate::error::exit::FILE_SELECT);
        }
    }
    if let (Some(filter), false) = (&session.module_filter, opts.sender) {
        if option_dir_excluded(&opts, filter) {
            let msg = "Your options have been rejected by the server.\n";
            let _ = writer.send_msg(MsgTag::Error, msg.as_bytes());
            end_with_code(&mut writer, neg.protocol, crate::error::exit::SYNTAX);
            return Ok(crate::error::exit::SYNTAX);
        }
    }
    let module = session.module_name.clone().unwrap_or_default();
    let confine = match (&session.root, session.unconfined) {
        (Some(root), false) => Some(rtsync_tree::Confine::new(root.clone())),
        _ => None,
    };
    let confinement = match &confine {
        Some(c) => confine_args(&mut opts, c, &module),
        None => Ok(Vec::new()),
    };
    let arg_messages = match confinement {
        Ok(m) => m,
        Err(msg) => {
            let _ = writer.send_msg(MsgTag::Error, format!("{msg}\n").as_bytes());
            end_with_code(&mut writer, neg.protocol, crate::error::exit::FILE_SELECT);
            return Ok(crate::error::exit::FILE_SELECT);
        }
    };
    let opts = &opts;
    let (log_sink, transfer_log) = server_logs(opts, &session);
    // Stock sanitizes paths in a module whose root is not `/` (no chroot into it).
    let sanitize_links = session.sanitize_paths;
    let tweaks = ListTweaks {
        munge: session.munge_symlinks,
        sanitize_links,
        chmod: &session.chmod,
        filter: session.module_filter.as_ref(),
        confine: confine.as_ref(),
        source_messages: if opts.sender { &arg_messages } else { &[] },
        module: session.module_name.as_deref(),
        numeric_ids: session.numeric_ids,
        max_verbosity: session.max_verbosity,
        log: session.log.as_ref(),
        transfer_log: transfer_log.map(|mut t| {
            t.set_sum_kinds(neg.checksum, neg.file_checksum);
            t
        }),
        total_size: Default::default(),
        ignore_nonreadable: session.ignore_nonreadable,
    };
    // `--copy-as` (given with `-M`): the server's copying runs as that user.
    let result = crate::client::become_copy_as(opts).and_then(|()| {
        if opts.sender {
            // A daemon's sender logs what it tells the client (vanished files, files it
            // cannot open), as stock's does.
            writer.set_message_log(log_sink.clone());
            let sent = serve_sender(
                opts,
                session.root.as_deref(),
                &tweaks,
                session.module_filter.clone(),
                &neg,
                &mut reader,
                &mut writer,
                &counts,
            );
            writer.set_message_log(None);
            sent
        } else {
            serve_receiver(
                opts,
                session.root.as_deref(),
                &tweaks,
                &neg,
                &mut reader,
                &mut writer,
                (session.socket_fd, log_sink.clone().map(LogSink)),
            )
        }
    });
    if let Some(sink) = &log_sink {
        // Stock's log_exit: after a clean run, or whatever happened on a sending side.
        if matches!(result, Ok(0)) || opts.sender {
            use std::sync::atomic::Ordering::Relaxed;
            sink(&format!(
                "sent {} bytes  received {} bytes  total size {}",
                counts.written.load(Relaxed),
                counts.read.load(Relaxed),
                tweaks.total_size.load(Relaxed)
            ));
        }
    }
    if let Err(Error::RemoteExit(code)) = &result {
        // The client ended the session for a reason of its own and said so: as stock's
        // exit_cleanup, answer (an empty MSG_ERROR_EXIT, protocol 31 on) and leave quietly
        // with its code.
        // (Stock's receiving side passes the code on; its sender answers empty.)
        if neg.protocol >= 31 {
            let _ = if opts.sender {
                writer.send_msg(MsgTag::ErrorExit, &[])
            } else {
                writer.send_msg_int(MsgTag::ErrorExit, *code)
            };
            let _ = writer.flush();
        }
        return Ok(*code);
    }
    if let Err(e) = &result {
        if let Some(log) = &session.log {
            (log.0)(&format!("rsync: {e}"));
        }
        // Tell the client why, as stock does, then the exit code. Only there: our stderr
        // reaches the same terminal through a remote shell, where a second copy of the line
        // would interleave with the first.
        // (A message of several lines goes as one message a line: a client escapes a
        // newline inside a message.)
        for line in e.client_message().lines() {
            let _ = writer.send_msg(MsgTag::Error, format!("{line}\n").as_bytes());
        }
        // And stock's closing line, which its server's exit sends the same way.
        let code = e.exit_code();
        let closing = format!(
            "rsync error: {} (code {code}) at {} [{}={}]\n",
            rtsync_engine::report::exit_message(code),
            e.location().unwrap_or("main.c(1394)"),
            e.role()
                .unwrap_or(if opts.sender { "sender" } else { "Receiver" }),
            rtsync_engine::RSYNC_VERSION
        );
        let _ = writer.send_msg(MsgTag::Error, closing.as_bytes());
        if session.module_name.is_some() && e.role() == Some("receiver") {
            // A daemon's generator hears of its receiver's exit and logs its own line,
            // which reaches the client too.
            let generator = format!(
                "rsync error: {} (code {code}) at io.c(1892) [generator={}]\n",
                rtsync_engine::report::exit_message(code),
                rtsync_engine::RSYNC_VERSION
            );
            let _ = writer.send_msg(MsgTag::Error, generator.as_bytes());
        }
        end_with_code(&mut writer, neg.protocol, e.exit_code());
        if let Some(fd) = session.socket_fd {
            if neg.protocol < 31 {
                // Nobody answers below 31: stock's server pauses (msleep) and goes.
                std::thread::sleep(std::time::Duration::from_millis(100));
            } else if !matches!(
                e,
                Error::UnexpectedEof { .. } | Error::Io { .. } | Error::Timeout
            ) {
                wait_for_client_to_leave(&mut reader, fd);
            }
        }
        return Ok(e.exit_code());
    }
    result
}

/// Where a server role logs: the daemon's log, or (outside a daemon) its own `--log-file`,
/// which is told the list phase starts as a daemon's is. And its transfer log, if any.
fn server_logs(opts: &Options, session: &ServerSession) -> (Option<LogFn>, Option<TransferLog>) {
    let op = if opts.sender { "send" } else { "recv" };
    if let Some(sink) = &session.log {
        let tlog = session.transfer_log.as_ref().and_then(|(format, facts)| {
            Some(TransferLog::new(opts, format, op, sink.0.clone())?.in_daemon(facts.clone()))
        });
        return (Some(sink.0.clone()), tlog);
    }
    if session.daemon_protocol.is_some() {
        return (None, None);
    }
    let Some(sink) = rtsync_engine::report::log_file_sink(opts) else {
        return (None, None);
    };
    sink(if opts.sender {
        "building file list"
    } else {
        "receiving file list"
    });
    let format = opts.log_file_format.as_deref().unwrap_or("%i %n%L");
    let tlog = TransferLog::new(opts, format, op, sink.clone());
    (Some(sink), tlog)
}

/// Ends a failed session's stream: from protocol 31 on with MSG_ERROR_EXIT and the code;
/// below, stock's server process that talks to the client never sends one (its receiver's
/// goes to its generator, which just exits), so its client sees the stream end.
fn end_with_code<W: Write>(writer: &mut MuxWriter<W>, protocol: u32, code: i32) {
    if protocol >= 31 {
        let _ = writer.send_msg_int(MsgTag::ErrorExit, code);
    }
    let _ = writer.flush();
}

/// After telling a daemon client why the session ends, reads (and drops) what it still
/// sends until it goes, as stock's noop_io_until_death: closing a socket with unread data
/// would reset the connection and the client would report that instead of our message.
/// Bounded: a client that does not go within 10 seconds is left.
fn wait_for_client_to_leave<R: Read>(reader: &mut MuxReader<R>, fd: std::os::fd::RawFd) {
    // (Bounded by shutting the read side, the socket's own receive timeout being the
    // daemon reader's to set.)
    crate::pull::drain_until_peer_leaves(reader, &Closer::Fd(fd));
}

/// The paths a sending server lists: its arguments after `.`, or `.` itself.
fn sender_sources(opts: &Options) -> Vec<String> {
    let mut paths: Vec<String> = opts
        .args
        .iter()
        .skip(1)
        .map(|a| crate::argtext::os_text(a))
        .collect();
    if paths.is_empty() {
        paths.push(".".into());
    }
    paths
}

fn seed() -> i32 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i32)
        .unwrap_or(0);
    now ^ ((std::process::id() as i32) << 6)
}

/// What a daemon module changes in the file list it sends or receives.
struct ListTweaks<'a> {
    /// `munge symlinks`.
    munge: bool,
    /// A module served without chroot: received symlink targets are sanitized (unless
    /// munged), so they cannot climb out of the module.
    sanitize_links: bool,
    /// `outgoing chmod` / `incoming chmod` rules.
    chmod: &'a [String],
    /// The module's filter rules (a receiver refuses what they exclude).
    filter: Option<&'a rtsync_filter::FilterSet>,
    /// Where followed symlinks must stay (see [`ServerSession::confine`]).
    confine: Option<&'a rtsync_tree::Confine>,
    /// Messages about sources already dropped (they lead out of the module).
    source_messages: &'a [String],
    /// The daemon module's name (messages name files `(in MODULE)`).
    module: Option<&'a str>,
    /// The module's `numeric ids`: received names are ignored, and none are sent.
    numeric_ids: bool,
    /// The module's `max verbosity`.
    max_verbosity: Option<i64>,
    /// A daemon's log.
    log: Option<&'a LogSink>,
    /// What the role transfers is logged here (a daemon's `transfer logging`, a server's
    /// `--log-file`).
    transfer_log: Option<TransferLog>,
    /// What the role's lists hold (stock's `total_size`), for the closing log line.
    total_size: std::sync::atomic::AtomicU64,
    /// A module's `ignore nonreadable`.
    ignore_nonreadable: bool,
}

impl ListTweaks<'_> {
    /// Whether `--info=remove` (level 1, stock's `-vv` word) survives the module's
    /// `max verbosity`.
    fn info_remove(&self, opts: &Options) -> bool {
        opts.info_remove() && self.max_verbosity.is_none_or(|m| m >= 2)
    }

    /// Whether a `--debug` category of `-vv` (level 1) survives the module's `max
    /// verbosity`.
    fn debug(&self, opts: &Options, category: &str) -> bool {
        opts.debug_level(category) >= 1 && self.max_verbosity.is_none_or(|m| m >= 2)
    }
}

impl ListTweaks<'_> {
    /// Applies the chmod rules to every entry but symlinks, as stock's flist code does.
    fn apply_chmod(&self, entries: &mut [rtsync_tree::FileEntry]) {
        if self.chmod.is_empty() {
            return;
        }
        for e in entries {
            if e.kind == rtsync_tree::FileKind::Symlink || e.is_missing() {
                continue;
            }
            let umask = crate::local::current_umask();
            let perms = rtsync_engine::chmod::apply_chmod(self.chmod, e.mode, e.is_dir(), umask);
            e.mode = (e.mode & libc::S_IFMT) | perms;
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn serve_sender<R: Read + Send, W: Write + Send>(
    opts: &Options,
    root: Option<&std::path::Path>,
    tweaks: &ListTweaks<'_>,
    module_filter: Option<rtsync_filter::FilterSet>,
    neg: &Negotiated,
    reader: &mut MuxReader<BufReader<R>>,
    writer: &mut MuxWriter<W>,
    counts: &push::ByteCounts,
) -> Result<i32> {
    let merge_files = match root {
        // A daemon reads them inside the module only (its root may not resolve: then none).
        Some(r) => match std::fs::canonicalize(r) {
            Ok(root) => crate::filters::MergeFiles::Module {
                root,
                filter: module_filter.clone(),
            },
            Err(_) => crate::filters::MergeFiles::Never,
        },
        None => crate::filters::MergeFiles::Read {
            confine: rtsync_engine::filters::confine_root(opts),
        },
    };
    let filter = crate::filters::SetFilter(
        crate::filters::server_filters(reader, opts, neg, true)?,
        module_filter,
        merge_files,
        tweaks
            .debug(opts, "filter")
            .then(|| rtsync_engine::filters::FilterTrace::for_role(opts, "sender"))
            .flatten(),
        tweaks.log.cloned(),
    );
    let mut filter = crate::filters::SkipUnreadable::new(filter, tweaks.ignore_nonreadable);
    // args: "." then the paths to send (relative to our working directory).
    let mut paths: Vec<String> = opts
        .args
        .iter()
        .skip(1)
        .map(|a| crate::argtext::os_text(a))
        .collect();
    if paths.is_empty() && tweaks.source_messages.is_empty() {
        paths.push(".".into());
    }
    // `--files-from=-`: the client forwards the names after its filter list.
    let names = match opts.files_from.as_deref() {
        Some(f) if f == "-" => {
            let names = read_forwarded_names(reader, neg)?;
            // (With -s and --iconv the client sent them in UTF-8.)
            match crate::client::transfer_iconv(opts)?.filter(|_| opts.secluded_args()) {
                Some(ic) => Some(names.iter().map(|n| ic.message_from_wire(n)).collect()),
                None => Some(names),
            }
        }
        Some(f) => Some(server_files_from(f, opts.from0, ListUse::Read, root)?),
        None => None,
    };
    let list_started = std::time::Instant::now();
    if neg.inc_recurse() {
        let io = (reader, writer, counts);
        return serve_sender_inc(opts, root, tweaks, &mut filter, &paths, neg, io);
    }
    let (mut list, mut io_error) = crate::push_client::build_list(
        opts,
        &paths,
        neg,
        &mut filter,
        names.as_deref(),
        tweaks.confine.cloned(),
    );
    for m in tweaks.source_messages.iter().rev() {
        list.messages.insert(0, (MsgTag::ErrorXfer, m.clone()));
        io_error |= 1; // IOERR_GENERAL
    }
    tweaks.apply_chmod(&mut list.entries);
    // Stock lists a directory with its st_size; the scanner leaves directory sizes at 0.
    for (e, path) in list.entries.iter_mut().zip(&list.paths) {
        if e.is_dir() && e.size == 0 {
            e.size = std::fs::symlink_metadata(path).map_or(0, |m| m.len());
        }
    }
    // (Transfer errors make the exit code 23 even without an io_error bit.)
    let listed_errors = crate::push_client::xfer_errors(&list.messages);
    // With --files-from stock's sender works in the source directory, as if each name
    // followed a `/./` after it: its messages name files from there (`"/DIR/NAME"`).
    let shown_sources: Vec<String> = if opts.files_from.is_some() {
        paths
            .iter()
            .map(|p| format!("{}/./", p.trim_end_matches('/')))
            .collect()
    } else {
        paths.clone()
    };
    for (tag, text) in &list.messages {
        // Module paths are the daemon's business: show names relative to the module.
        let text = match root {
            Some(r) => match module_prefix(r) {
                Some(p) if opts.relative => {
                    push::inc::relative_shown(&text.replace(&p, ""), &shown_sources)
                }
                Some(p) => push::inc::module_relative(text, &p),
                None => text.clone(),
            },
            None => text.clone(),
        };
        let text = match (tweaks.module, tag) {
            // (The sources refused up front name their module already.)
            (Some(m), MsgTag::ErrorXfer | MsgTag::Warning)
                if !text.contains(&format!("(in {m})")) =>
            {
                push::inc::in_module(&text, m)
            }
            _ => text,
        };
        writer
            .send_msg(*tag, text.as_bytes())
            .map_err(|e| Error::io("sending message", e))?;
    }
    let list_built = std::time::Instant::now();
    let mut out = Vec::new();
    let mut enc = FlistEncoder::new(flist_options(opts, neg));
    if tweaks.numeric_ids {
        enc.acl_names_off();
    }
    for (i, e) in list.entries.iter().enumerate() {
        let content = if list.implied.get(i).copied().unwrap_or(false) {
            Content::Implied
        } else if list.no_content.get(i).copied().unwrap_or(false) {
            Content::Without
        } else {
            Content::With
        };
        enc.put_entry_as(&mut out, e, i, content)?;
    }
    // `--ignore-errors`: the receiver is not told (it deletes all the same).
    enc.put_end(&mut out, if opts.ignore_errors { 0 } else { io_error });
    // A module's `numeric ids` sends no names (the lists stay, empty).
    let (users, groups) = if tweaks.numeric_ids {
        Default::default()
    } else {
        crate::push_client::id_names(opts, &list)
    };
    enc.put_id_lists(&mut out, &users, &groups);
    writer
        .write_all(&out)
        .and_then(|_| writer.flush())
        .map_err(|e| Error::io("sending file list", e))?;
    if list.entries.is_empty() {
        return Ok(0);
    }
    let total_size = list
        .entries
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                rtsync_tree::FileKind::Regular | rtsync_tree::FileKind::Symlink
            )
        })
        .map(|e| e.size as i64)
        .sum();
    let popts = PushOptions {
        verbose: 0,
        compress_level: opts.compress_level,
        server: true,
        total_size,
        follow_links: opts.copy_links || opts.copy_unsafe_links,
        noatime: opts.open_noatime,
        confine: tweaks.confine.cloned(),
        itemize: false,
        untimed: !opts.times,
        counts: Some(counts.clone()),
        append: crate::server_args::append_mode(opts),
        inplace: opts.inplace,
        dry_run: opts.dry_run,
        flist_times: (
            flist_ms(list_started, list_built),
            std::time::Instant::now()
                .saturating_duration_since(list_built)
                .as_millis() as i64,
        ),
        remove_source: opts.remove_source_files && !opts.dry_run,
        // A daemon's `max verbosity` (1 unless raised) keeps these quiet.
        info_remove: tweaks.info_remove(opts),
        match_report: tweaks.debug(opts, "deltasum"),
        heap_report: false,
        xattrs: opts.xattr_rules(),
        module: tweaks
            .module
            .map(|m| (m.to_string(), !tweaks.sanitize_links)),
        transfer_log: tweaks.transfer_log.clone(),
    };
    let stats = push::run_push(reader, writer, neg, &mut list, &popts, None)?;
    tweaks
        .total_size
        .store(stats.total_size, std::sync::atomic::Ordering::Relaxed);
    Ok(listing_exit(io_error, stats.errors + listed_errors))
}

/// A sending server under incremental recursion: the lists go out one directory at a
/// time between files ([`push::inc`], shared with a pushing client).
fn serve_sender_inc<R: Read + Send, W: Write + Send, F: rtsync_tree::ScanFilter>(
    opts: &Options,
    root: Option<&std::path::Path>,
    tweaks: &ListTweaks<'_>,
    filter: &mut F,
    paths: &[String],
    neg: &Negotiated,
    (reader, writer, counts): (
        &mut MuxReader<BufReader<R>>,
        &mut MuxWriter<W>,
        &push::ByteCounts,
    ),
) -> Result<i32> {
    let wio = |e| Error::io("sending file list", e);
    let mut early = 0;
    for m in tweaks.source_messages {
        writer
            .send_msg(MsgTag::ErrorXfer, m.as_bytes())
            .map_err(wio)?;
        early |= 1; // IOERR_GENERAL
    }
    let sopts = crate::push_client::scan_options(opts, neg);
    let adjust = move |e: &mut rtsync_tree::FileEntry, path: &std::path::Path| {
        tweaks.apply_chmod(std::slice::from_mut(e));
        // Stock lists a directory with its st_size; the scanner leaves it at 0.
        if e.is_dir() && e.size == 0 {
            e.size = std::fs::symlink_metadata(path).map_or(0, |m| m.len());
        }
    };
    let cfg = push::inc::IncConfig {
        opts,
        sopts: &sopts,
        neg,
        fopts: FlistOptions {
            // A module's `numeric ids`: no names travel inline.
            numeric_ids: opts.numeric_ids || tweaks.numeric_ids,
            ..flist_options(opts, neg)
        },
        // Module paths are the daemon's business: names relative to the module.
        problems: push::inc::Problems::Send {
            strip: root.and_then(module_prefix),
            module: tweaks.module.map(str::to_string),
        },
        confine: tweaks.confine.cloned(),
        io_error: early,
        adjust: Some(Box::new(adjust)),
    };
    let sources: Vec<PathBuf> = paths.iter().map(|p| crate::argtext::path(p)).collect();
    let mut out = Vec::new();
    let list_started = std::time::Instant::now();
    let mut list = push::inc::IncList::start(cfg, &sources, filter, &mut out)?;
    let list_built = std::time::Instant::now();
    for (tag, text) in push::SendSource::take_messages(&mut list) {
        writer.send_msg(tag, text.as_bytes()).map_err(wio)?;
    }
    writer.write_all(&out).map_err(wio)?;
    out.clear();
    if list.kind_counts.iter().sum::<u64>() == 0 {
        // Nothing to send: the end of the lists, and done (as stock's sender).
        let mut ndxw = crate::ndx::NdxWriter::new(neg.protocol);
        list.send_next(&mut out, &mut ndxw)?;
        writer
            .write_all(&out)
            .and_then(|_| writer.flush())
            .map_err(wio)?;
        return Ok(listing_exit(list.io_error(), list.xfer_errors));
    }
    let popts = PushOptions {
        verbose: 0,
        compress_level: opts.compress_level,
        server: true,
        total_size: 0,
        follow_links: opts.copy_links || opts.copy_unsafe_links,
        noatime: opts.open_noatime,
        confine: tweaks.confine.cloned(),
        itemize: false,
        untimed: !opts.times,
        counts: Some(counts.clone()),
        append: crate::server_args::append_mode(opts),
        inplace: opts.inplace,
        dry_run: opts.dry_run,
        // Under incremental recursion only the first list's build counts, as for stock.
        flist_times: (flist_ms(list_started, list_built), 0),
        remove_source: opts.remove_source_files && !opts.dry_run,
        // A daemon's `max verbosity` (1 unless raised) keeps these quiet.
        info_remove: tweaks.info_remove(opts),
        match_report: tweaks.debug(opts, "deltasum"),
        heap_report: false,
        xattrs: opts.xattr_rules(),
        module: tweaks
            .module
            .map(|m| (m.to_string(), !tweaks.sanitize_links)),
        transfer_log: tweaks.transfer_log.clone(),
    };
    let pending = |r: &mut BufReader<R>| !r.buffer().is_empty();
    let stats = push::run_push_pacing(reader, writer, neg, &mut list, &popts, None, pending)?;
    tweaks
        .total_size
        .store(stats.total_size, std::sync::atomic::Ordering::Relaxed);
    Ok(listing_exit(
        list.io_error(),
        stats.errors + list.xfer_errors,
    ))
}

/// What a daemon takes off the (absolute) paths in a sender's messages: the module's
/// directory, so that they read `/NAME` as stock's do (`None` for a module at `/`).
fn module_prefix(root: &std::path::Path) -> Option<String> {
    let full = rtsync_engine::local::full_path(root);
    (full != "/").then_some(full)
}

/// A sender's exit code: 23 after transfer errors (stock's got_xfer_error), else what its
/// io_error bits say.
fn listing_exit(io_error: i32, errors: u64) -> i32 {
    if errors > 0 {
        23
    } else {
        exit_for_io_error(io_error)
    }
}

/// The exit code of a sender whose only trouble was listing: stock's cleanup turns a
/// vanished file into 24 and any other listing error into 23.
fn exit_for_io_error(io_error: i32) -> i32 {
    if io_error & 1 != 0 {
        23
    } else if io_error & 2 != 0 {
        24
    } else {
        0
    }
}

/// Milliseconds between two instants, at least 1 (stock never reports a zero build time, and
/// its client omits the file-list times when it gets 0).
fn flist_ms(from: std::time::Instant, to: std::time::Instant) -> i64 {
    to.saturating_duration_since(from)
        .as_millis()
        .clamp(1, i64::MAX as u128) as i64
}

/// Reads a `--files-from` list the client named on our side (`--files-from=:LIST`); in a
/// daemon module the path stays beneath the module.
fn server_files_from(
    list: &std::ffi::OsStr,
    from0: bool,
    usage: ListUse,
    root: Option<&std::path::Path>,
) -> Result<Vec<Vec<u8>>> {
    let path = match root {
        Some(r) => crate::argtext::path(&path_beneath(r, &crate::argtext::os_text(list))),
        None => PathBuf::from(list),
    };
    let names = rtsync_engine::files_from::read_list(&path, from0, usage).map_err(|e| {
        Error::Startup(format!(
            "failed to open files-from file {}: {}",
            list.to_string_lossy(),
            crate::client::strerror(&e)
        ))
    })?;
    if names.len() > rtsync_engine::files_from::MAX_NAMES {
        return Err(Error::Protocol("too many files-from names".into()));
    }
    Ok(names)
}

/// Sends `--files-from` names to the other end after `prefix` (what precedes them in the
/// stream, e.g. a pulling client's filter list): each ends in NUL, an empty one ends the
/// list. From protocol 31 on they go framed with `prefix`; below, outside the frames right
/// after it, as stock's start_filesfrom_forwarding. [`read_forwarded_names`] reads them.
pub(crate) fn forward_names<W: Write>(
    writer: &mut MuxWriter<W>,
    mut prefix: Vec<u8>,
    names: &[Vec<u8>],
    protocol: u32,
) -> std::io::Result<()> {
    let mut list = Vec::new();
    for n in names {
        list.extend_from_slice(n);
        list.push(0);
    }
    list.push(0);
    if protocol >= 31 {
        prefix.append(&mut list);
        writer.write_all(&prefix)?;
        return writer.flush();
    }
    writer.write_all(&prefix)?;
    writer.flush()?;
    writer.write_raw(&list)
}

/// Reads the names a client forwards for `--files-from=-`: each ends in NUL, an empty one
/// ends the list. Bounded in count and length.
pub(crate) fn read_forwarded_names<R: Read>(
    r: &mut MuxReader<R>,
    neg: &Negotiated,
) -> Result<Vec<Vec<u8>>> {
    // Protocol 30 sends them outside the frames (stock's send_file_list reads them so).
    let framed = r.is_muxed();
    if neg.protocol < 31 {
        r.set_muxed(false)?;
    }
    let names = read_names(r)?;
    r.set_muxed(framed)?;
    Ok(names)
}

fn read_names<R: Read>(r: &mut MuxReader<R>) -> Result<Vec<Vec<u8>>> {
    use crate::varint::ReadWire;
    let mut names = Vec::new();
    let mut cur = Vec::new();
    loop {
        let b = r.read_u8()?;
        if b != 0 {
            if cur.len() >= crate::flist::MAX_PATH {
                return Err(Error::Protocol("files-from name too long".into()));
            }
            cur.push(b);
            continue;
        }
        if cur.is_empty() {
            return Ok(names);
        }
        if names.len() >= rtsync_engine::files_from::MAX_NAMES {
            return Err(Error::Protocol("too many files-from names".into()));
        }
        names.push(std::mem::take(&mut cur));
    }
}

#[allow(clippy::too_many_arguments)]
fn serve_receiver<R: Read + Send, W: Write + Send>(
    opts: &Options,
    module_root: Option<&std::path::Path>,
    tweaks: &ListTweaks<'_>,
    neg: &Negotiated,
    reader: &mut MuxReader<R>,
    writer: &mut MuxWriter<W>,
    (socket_fd, log_sink): (Option<std::os::fd::RawFd>, Option<LogSink>),
) -> Result<i32> {
    let protect = if opts.deleting() || opts.prune_empty_dirs {
        Some(crate::filters::server_filters(reader, opts, neg, false)?)
    } else {
        None
    };
    if let Some(f) = opts.files_from.as_deref().filter(|f| *f != "-") {
        // `--files-from=:LIST` on a push: we read the list and send the client its names
        let names = server_files_from(f, opts.from0, ListUse::Forward, module_root)?;
        forward_names(writer, Vec::new(), &names, neg.protocol)
            .map_err(|e| Error::io("sending files-from names", e))?;
    }
    let dest = opts
        .args
        .get(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    // What every received list goes through before the generator sees it.
    let numeric_ids = tweaks.numeric_ids;
    let adjust = move |list: &mut crate::flist::FileList| {
        if tweaks.munge {
            rtsync_tree::munge::munge_entries(&mut list.entries, true);
        } else if tweaks.sanitize_links {
            for e in &mut list.entries {
                if let Some(t) = e.link_target.as_mut().filter(|t| !t.is_empty()) {
                    let depth = e.name.iter().filter(|&&b| b == b'/').count();
                    *t = sanitize_link_target(t, depth);
                    e.size = t.len() as u64;
                }
            }
        }
        tweaks.apply_chmod(&mut list.entries);
    };
    let mut ids = PullOptions::from_options(opts, None);
    ids.numeric_ids |= numeric_ids;
    let prepare = move |list: &mut crate::flist::FileList| {
        // (Counted as sent: a munged or sanitized link target keeps its listed length.)
        tweaks.total_size.fetch_add(
            pull::listed_size(&list.entries),
            std::sync::atomic::Ordering::Relaxed,
        );
        adjust(list);
        ids.map_ids(list);
        Ok::<(), Error>(())
    };
    let mut decoder = FlistDecoder::new(flist_options(opts, neg));
    let (mut list, inc) = if neg.inc_recurse() {
        let mut lists = pull::inc::IncReader::new(decoder, Box::new(prepare));
        let first = lists.read_first(reader)?;
        (first.list, Some((lists, first.parent)))
    } else {
        // (An empty list is received as any other: stock's receiver makes the
        // destination directory and ends the transfer with the sender.)
        let mut list = decoder.read_list(reader)?;
        prepare(&mut list)?;
        (list, None)
    };
    let batch_only = opts.only_write_batch && opts.write_batch.is_some();
    if opts.mkpath && !opts.list_only && std::fs::metadata(&dest).is_err() {
        // `--mkpath`: the missing directories leading to the destination first.
        let dest_bytes = dest.as_os_str().as_encoded_bytes().to_vec();
        let many = list.entries.len() > 1;
        if let Some(path) = rtsync_engine::local::mkpath_target(&dest_bytes, many) {
            let count = rtsync_engine::local::make_path(path, opts.dry_run || batch_only)
                .map_err(|(p, e)| Error::file(format!("mkdir \"{}\" failed", p.display()), e))?;
            // (Stock: INFO_GTE(NAME, 1) or a log format with %i, as a client's -i sends.)
            let items = opts.itemize > 0
                || opts
                    .out_format
                    .as_deref()
                    .is_some_and(|f| rtsync_engine::report::format_has(f, b'i'));
            if count > 0 && (opts.info_level("name") > 0 || items) {
                let shown = module_relative(&crate::argtext::text(path), module_root);
                let line = rtsync_engine::local::mkpath_notice(count, shown.as_bytes());
                let _ = writer.send_msg(MsgTag::Info, &crate::argtext::bytes(&format!("{line}\n")));
            }
        }
    }
    let dest_existed = std::fs::symlink_metadata(&dest).is_ok();
    let dest_arg = dest;
    if let (true, Some(p)) = (opts.prune_empty_dirs, &protect) {
        list.prune_empty_dirs(|n| p.is_protected(n, true));
    }
    // `--list-only`: the generator lists the entries and touches nothing, not even the
    // destination (stock's get_local_name returns before making it).
    let mut dest = Dest::choose_opt(
        &dest_arg,
        &list.entries,
        !opts.dry_run && !batch_only && !opts.list_only,
    )
    .map_err(|e| match (e, tweaks.module) {
        // A daemon names the directory it could not make within its module, as stock's
        // full_fname does (`mkdir "dst" (in m) failed`).
        (Error::Located { error, at }, Some(m)) => match *error {
            Error::File { source, .. } => {
                let shown =
                    module_relative(&crate::argtext::os_text(dest_arg.as_os_str()), module_root);
                let shown = match shown.trim_end_matches('/') {
                    "" => ".",
                    s => s,
                };
                Error::Located {
                    error: Box::new(Error::file(
                        format!("[Receiver] mkdir \"{shown}\" (in {m}) failed"),
                        source,
                    )),
                    at,
                }
            }
            other => Error::Located {
                error: Box::new(other),
                at,
            },
        },
        (e, _) => e,
    })?;
    let says_items = opts.verbose > 0
        || opts.itemize > 0
        || opts
            .out_format
            .as_deref()
            .is_some_and(|f| rtsync_engine::report::format_has(f, b'i'));
    if !dest_existed && matches!(dest, Dest::Dir(_)) && says_items && !opts.list_only {
        // As stock's receiver says (to the client), module-relative in a daemon.
        let shown = module_relative(&crate::argtext::os_text(dest_arg.as_os_str()), module_root);
        let shown = if shown.len() > 1 {
            shown.trim_end_matches('/')
        } else {
            &shown
        };
        let _ = writer.send_msg(
            MsgTag::Info,
            &crate::argtext::bytes(&format!("created directory {shown}\n")),
        );
    }
    let dest_is_dir = matches!(dest, Dest::Dir(_));
    if opts.keep_dirlinks {
        dest = match tweaks.confine {
            Some(c) => dest.keep_dirlinks(c.clone()),
            None => dest.keep_dirlinks_unconfined(),
        };
    } else if opts.relative && !opts.implied_dirs && !opts.list_only {
        dest = dest.through_parents(tweaks.confine);
    }
    let mut popts = PullOptions {
        verbose: 0,
        delta_notice: tweaks.debug(opts, "flist"),
        refuse: tweaks.filter.cloned(),
        // `.` is itemized as new in a destination made for this transfer.
        dest_created: !dest_existed && dest_is_dir && !batch_only,
        list_only: opts.list_only,
        report_attrs: opts.info_level("name") > 1
            && !opts
                .out_format
                .as_deref()
                .is_some_and(|f| rtsync_engine::report::format_has(f, b'i')),
        report_all: opts
            .out_format
            .as_deref()
            .is_some_and(|f| rtsync_engine::report::format_has(f, b'I')),
        ..PullOptions::from_options(opts, protect)
    };
    popts.numeric_ids |= numeric_ids;
    if !tweaks.debug(opts, "filter") {
        // A daemon's `max verbosity` keeps the filter trace quiet.
        popts.protect_trace = None;
    }
    // Messages name files as stock's daemon does (beneath the module, `(in NAME)`), and go
    // to its log as well as to the client.
    if let (Some(root), Some(name)) = (module_root, tweaks.module) {
        popts.module = Some((root.to_path_buf(), name.to_string()));
    }
    popts.log = log_sink;
    // In a daemon module, directories named by the client stay inside the destination.
    popts.resolve_dirs(&dest.root(), module_root);
    for w in popts.resolve_basis_dirs(&dest.root(), module_root) {
        let _ = writer.send_msg(MsgTag::Warning, format!("{w}\n").as_bytes());
    }
    match tweaks.confine {
        Some(c) => popts.confine_dirs(c),
        // `insecure links = yes`: basis dirs are followed wherever they lead, as before 3.4.
        None => popts.basis_root = None,
    }

    // A daemon's `%f` names items by where they are in the module.
    let shown_dir = module_root
        .map(|r| module_relative(&crate::argtext::os_text(dest.root().as_os_str()), Some(r)));
    let tlog = tweaks.transfer_log.clone().map(|t| match &shown_dir {
        Some(d) => t.in_dir(d.as_bytes()),
        None => t,
    });
    let log = crate::log::ItemLog::new(None, 0).with_transfer_log(tlog);
    let session = pull::PullSession {
        neg,
        list: &list,
        dest: &dest,
        opts: &popts,
        closer: &socket_fd.map_or(Closer::None, Closer::Fd),
        log: &log,
    };
    let stats = pull::run_pull(reader, writer, &session, inc)?;
    log.finish();
    // (Stock's exit code: a transfer error outranks the --max-delete limit.)
    Ok(if stats.errors > 0 {
        23
    } else if stats.io_error & crate::pull::IOERR_DEL_LIMIT != 0 {
        25
    } else {
        0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_link_targets_are_sanitized_like_stock() {
        for (target, depth, want) in [
            ("/etc/hostname", 1, "etc/hostname"),
            ("../../../escape", 2, "../../escape"),
            ("../../../escape", 0, "escape"),
            ("a/../../b", 1, "../b"),
            ("./x/./y/", 0, "x/y/"),
            ("..", 0, "."),
            ("a/..", 3, "."),
            ("x/../..", 5, ".."),
            ("../", 1, "../"),
            ("a//b", 0, "a/b"),
            ("plain", 0, "plain"),
        ] {
            assert_eq!(
                String::from_utf8(sanitize_link_target(target.as_bytes(), depth)).unwrap(),
                want,
                "{target} at depth {depth}"
            );
        }
    }

    #[test]
    fn paths_stay_beneath_the_root() {
        let root = std::path::Path::new("/srv/mod");
        let cases = [
            ("", "/srv/mod/"),
            (".", "/srv/mod/"),
            ("sub", "/srv/mod/sub"),
            ("sub/", "/srv/mod/sub/"),
            ("/etc/passwd", "/srv/mod/etc/passwd"),
            ("../../etc", "/srv/mod/etc"),
            ("a/../../b/./c", "/srv/mod/b/c"),
        ];
        for (p, want) in cases {
            assert_eq!(path_beneath(root, p), want, "{p}");
        }
    }

    #[test]
    fn parses_server_argument_vectors() {
        let argv = |s: &str| -> Vec<OsString> { s.split(' ').map(OsString::from).collect() };
        let o = Options::parse(&argv("--server --sender -logDtpre.iLsfxCIvu . src/")).unwrap();
        assert!(o.server && o.sender && o.recursive && o.links && o.times);
        assert_eq!(o.rsh.as_deref(), Some(".iLsfxCIvu"));
        assert_eq!(o.args, vec![OsString::from("."), OsString::from("src/")]);
        let o = Options::parse(&argv("--server -lHogDtprze.iLsfxCIvu --delete . dst/")).unwrap();
        assert!(!o.sender && o.hard_links && o.compress && o.deleting());
    }
}
