//! One client connection, from the greeting to the hand-off to the transfer: module selection,
//! access checks, `max connections`, authentication, chroot and privilege drop, and the
//! client's arguments. Every message the client can see is stock rsync's.

use std::fs::File;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::access::{self, HostName};
use crate::args::{self, ClientArgs};
use crate::auth;
use crate::config::{Config, Module, P};
use crate::exec::{self, PreExec};
use crate::greeting;
use crate::io::{Deadline, DeadlineReader, Reader, LONG_LINE, SHORT_LINE};
use crate::lock;
use crate::log::{sys_error, Logger};
use crate::privs;
use crate::reject::{self, Fatal};
use crate::secrets::{self, Grant};

/// Stock's bound on each handshake phase when no shorter `timeout` is configured.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// Settings from the daemon's command line.
#[derive(Debug, Clone, Default)]
pub struct DaemonOptions {
    /// The rsyncd.conf to read (re-read for every connection).
    pub config: PathBuf,
    /// `--dparam name=value` overrides.
    pub dparams: Vec<String>,
    /// `--log-file` (overrides `log file`).
    pub log_file: Option<String>,
    /// `--log-file-format`.
    pub log_file_format: Option<String>,
    /// `--bwlimit` in KiB/s, for the transfer.
    pub bwlimit: Option<String>,
    /// `--protocol`: the newest protocol the daemon offers (default: ours).
    pub protocol: Option<u32>,
    /// `--temp-dir`: the temp dir of a transfer whose module and client name none.
    pub temp_dir: Option<String>,
    /// Converts secluded (`-s`) arguments from UTF-8, as they come, to a module's `charset`
    /// (given first); unconvertible bytes pass as they are. Without it they stay as sent.
    pub convert_args: Option<ArgConverter>,
}

/// Converts an argument's bytes to the charset named first.
pub type ArgConverter = fn(&str, &[u8]) -> Vec<u8>;

/// How the client reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A TCP connection accepted by our listener (or by inetd).
    Socket,
    /// Standard input/output of `rsync --server --daemon` started by a remote shell.
    RemoteShell,
}

/// The connection as the transfer gets it, positioned right after the client's arguments.
pub struct Session {
    /// Bytes from the client (anything read ahead during the handshake comes first).
    pub input: Box<dyn Read + Send>,
    /// Bytes to the client.
    pub output: Box<dyn Write + Send>,
    /// The socket, for timeouts and socket options (`None` over a remote shell).
    pub socket_fd: Option<RawFd>,
    /// The module's configuration.
    pub module: Module,
    /// The module root, opened before privileges were dropped: resolve every path beneath it
    /// (see [`crate::beneath`]).
    pub root: OwnedFd,
    /// The module root as a path in our (possibly chrooted) view of the filesystem.
    pub module_dir: PathBuf,
    /// Whether we are chrooted into the module.
    pub chrooted: bool,
    /// The parsed arguments.
    pub args: ClientArgs,
    /// The negotiated protocol version.
    pub protocol: u32,
    /// The authenticated user ("" for anonymous access).
    pub auth_user: String,
    /// Effective `read only` (after `auth users` `:ro` / `:rw`).
    pub read_only: bool,
    /// The client's address.
    pub peer_addr: String,
    /// The client's name (or `UNKNOWN` / `UNDETERMINED`).
    pub peer_host: String,
    /// The module's `timeout` (`None`: none).
    pub timeout: Option<Duration>,
    /// `munge symlinks` as resolved for this session.
    pub munge_symlinks: bool,
    /// `numeric ids` as resolved for this session.
    pub numeric_ids: bool,
    /// The daemon log.
    pub log: Logger,
    /// The daemon's command-line settings.
    pub options: DaemonOptions,
    /// The running `name converter` (its standard input and output), if the module has one.
    pub name_converter: Option<(File, std::io::BufReader<File>)>,
}

/// What runs the transfer once the daemon has accepted a client: the seam to the wire crate.
pub trait TransferHandler {
    /// Runs the transfer; returns the rsync exit code of the session.
    fn run(&self, session: Session) -> i32;
}

impl<F: Fn(Session) -> i32> TransferHandler for F {
    fn run(&self, session: Session) -> i32 {
        self(session)
    }
}

/// The handler used until the transfer engine is plugged in: it ends the session the way stock
/// ends one it cannot serve (an error message and exit code 4 on the client).
pub struct NoTransfer;

impl TransferHandler for NoTransfer {
    fn run(&self, mut s: Session) -> i32 {
        let fatal = Fatal {
            messages: vec!["ERROR: rtsync daemon: file transfer is not available yet\n".into()],
            code: 4,
            location: "daemon",
            options_parsed: true,
            delay: Duration::ZERO,
            abrupt_as_sender: false,
        };
        let _ = reject::send_fatal(&mut s.input, &mut s.output, &s.args, s.protocol, &fatal);
        4
    }
}

/// A connection's two directions plus the socket for timeouts.
pub struct Conn {
    /// Client → daemon.
    pub input: Box<dyn Read + Send>,
    /// Daemon → client.
    pub output: Box<dyn Write + Send>,
    /// The socket, when there is one.
    pub socket_fd: Option<RawFd>,
    /// The client's address ("0.0.0.0" when unknown).
    pub peer: String,
}

/// Serves one connection to the end; returns the exit code for the serving process.
pub fn serve(conn: Conn, opts: &DaemonOptions, mode: Mode, handler: &dyn TransferHandler) -> i32 {
    let config = match Config::load(&opts.config, &opts.dparams) {
        Ok(c) => c,
        Err(e) => {
            let log = Logger::open(
                opts.log_file.as_deref().unwrap_or(""),
                "rsyncd",
                libc::LOG_DAEMON,
            );
            log.log(&e.to_string());
            return 1;
        }
    };
    let globals = config.global_module();
    let log_path = opts.log_file.clone().unwrap_or_else(|| globals.log_file());
    let log = Logger::open(&log_path, &globals.syslog_tag(), globals.syslog_facility());
    for w in &config.warnings {
        log.log(&w.to_string());
    }
    let deadline = Deadline::default();
    let idle: Arc<Mutex<Option<Duration>>> = Arc::default();
    let input: Box<dyn Read + Send> = Box::new(DeadlineReader {
        inner: conn.input,
        fd: conn.socket_fd,
        deadline: deadline.clone(),
        idle: idle.clone(),
    });
    let mut s = Handshake {
        reader: Reader::new(input),
        output: conn.output,
        socket_fd: conn.socket_fd,
        addr: conn.peer,
        host: HostName::Undetermined,
        log,
        mode,
        protocol: 0,
        peer_digests: None,
        early_input: Vec::new(),
        pre_exec: None,
        name_conv: None,
        deadline,
        idle,
    };
    // A session stopped before the transfer was already reported to the client and the log.
    s.run(&config, opts, handler).unwrap_or_default()
}

/// The session ended before the transfer (already reported to the client and the log).
struct Stop;

struct Handshake {
    reader: Reader<Box<dyn Read + Send>>,
    output: Box<dyn Write + Send>,
    socket_fd: Option<RawFd>,
    addr: String,
    host: HostName,
    log: Logger,
    mode: Mode,
    protocol: u32,
    peer_digests: Option<String>,
    /// `#early_input=` bytes from the client, for `early exec` / `pre-xfer exec` stdin.
    early_input: Vec<u8>,
    /// The `pre-xfer exec` helper waiting for the request.
    pre_exec: Option<PreExec>,
    /// The `name converter` waiting for the request.
    name_conv: Option<PreExec>,
    /// The absolute bound of the current handshake phase.
    deadline: Deadline,
    /// The idle read timeout of the socket.
    idle: Arc<Mutex<Option<Duration>>>,
}

fn set_env(name: &str, value: &str) {
    crate::config::set_session_var(name, value);
}

impl Handshake {
    fn send(&mut self, text: &str) -> Result<(), Stop> {
        self.output.write_all(text.as_bytes()).map_err(|_| Stop)?;
        self.output.flush().map_err(|_| Stop)
    }

    /// Sends `@ERROR: message` and ends the session.
    fn error<T>(&mut self, message: &str) -> Result<T, Stop> {
        let _ = self.send(&format!("@ERROR: {message}\n"));
        Err(Stop)
    }

    /// Starts a handshake phase bounded by `t` as a whole (`None`: unbounded).
    fn set_timeout(&self, t: Option<Duration>) {
        self.deadline.set(t);
    }

    /// The idle read timeout once the handshake is over.
    fn set_idle_timeout(&self, t: Option<Duration>) {
        if let Ok(mut g) = self.idle.lock() {
            *g = t;
        }
        if let Some(fd) = self.socket_fd {
            set_read_timeout(fd, t);
        }
    }

    fn handshake_timeout(&self, module_timeout: i64) -> Option<Duration> {
        if self.mode == Mode::RemoteShell {
            return None;
        }
        Some(match u64::try_from(module_timeout) {
            Ok(t) if t > 0 && t < HANDSHAKE_TIMEOUT.as_secs() => Duration::from_secs(t),
            _ => HANDSHAKE_TIMEOUT,
        })
    }

    fn lookup(&self, ip: IpAddr) -> HostName {
        let (host, complaint) = access::lookup_host_name(ip);
        if let Some(c) = complaint {
            self.log.log(&c);
        }
        host
    }

    /// Logs a failed handshake read the way stock reports a handshake timeout.
    fn read_failed(&self, e: &crate::io::LineError) -> Stop {
        if let crate::io::LineError::Io(io) = e {
            if io.kind() == std::io::ErrorKind::TimedOut {
                self.log.log("daemon handshake timeout -- exiting");
            }
        }
        Stop
    }

    /// `proxy protocol = yes`: only a direct peer listed in `proxy protocol hosts` may put
    /// a PROXY header in front of the connection, and it must; the client it names then
    /// stands in for the peer. Anything else ends the connection before the greeting.
    fn proxy_header(&mut self, config: &Config) -> Result<(), Stop> {
        let hosts = config.global_string(P::ProxyProtocolHosts);
        if hosts.trim().is_empty() {
            self.log.log(
                "WARNING: \"proxy protocol = yes\" but \"proxy protocol hosts\" is unset: \
                 every connection is refused",
            );
        }
        let mut host = HostName::Undetermined;
        let trusted = !hosts.trim().is_empty()
            && crate::access::allow_access(&hosts, "", &self.addr, &mut host, false);
        if !trusted {
            self.log.log(&format!(
                "proxy protocol rejected: direct peer {} is not in \"proxy protocol hosts\"",
                self.addr
            ));
            return Err(Stop);
        }
        match crate::proxy::read_header(&mut self.reader) {
            Ok(Some(ip)) => self.addr = ip.to_string(),
            Ok(None) => {}
            Err(e) => {
                self.log
                    .log(&format!("proxy protocol rejected from {}: {e}", self.addr));
                return Err(Stop);
            }
        }
        Ok(())
    }

    fn ip(&self) -> Option<IpAddr> {
        self.addr.parse().ok()
    }

    fn run(
        &mut self,
        config: &Config,
        opts: &DaemonOptions,
        handler: &dyn TransferHandler,
    ) -> Result<i32, Stop> {
        let globals = config.global_module();
        self.set_timeout(self.handshake_timeout(globals.timeout()));
        if self.mode == Mode::Socket && config.globals.bool(P::ProxyProtocol) {
            self.proxy_header(config)?;
        }
        let need_reverse =
            globals.reverse_lookup() || config.modules.iter().any(|m| m.reverse_lookup());
        if need_reverse {
            self.host = match self.ip() {
                Some(ip) if !ip.is_unspecified() => self.lookup(ip),
                _ => HostName::Unknown,
            };
        }
        self.daemon_identity(config)?;
        let shown_host = if globals.reverse_lookup() {
            self.host.clone()
        } else {
            HostName::Undetermined
        };
        if !globals.reverse_lookup() {
            self.host = HostName::Undetermined;
        }
        self.log.log(&format!(
            "connect from {} ({})",
            shown_host.as_str(),
            self.addr
        ));

        let ours = opts.protocol.map_or(greeting::PROTOCOL_VERSION, |p| {
            p.min(greeting::PROTOCOL_VERSION)
        });
        let mut hello = greeting::our_greeting(ours);
        let motd = config.motd_file();
        if !motd.is_empty() {
            if let Ok(text) = read_motd(&motd) {
                hello.push_str(&String::from_utf8_lossy(&text));
            }
            hello.push('\n');
        }
        self.send(&hello)?;
        let line = self
            .reader
            .read_line(SHORT_LINE)
            .map_err(|e| self.read_failed(&e))?;
        let peer = match greeting::parse_client_greeting(&line, ours) {
            Ok(p) => p,
            Err(msg) => return self.error(&msg),
        };
        self.protocol = peer.negotiated;
        self.peer_digests = peer.digests;
        if self.protocol < greeting::MIN_PROTOCOL_VERSION {
            self.log.log(&format!(
                "protocol {} from {} ({}) is older than the minimum {}",
                self.protocol,
                self.host.as_str(),
                self.addr,
                greeting::MIN_PROTOCOL_VERSION
            ));
            return self.error("protocol version mismatch -- is your shell clean?");
        }

        let mut line = self
            .reader
            .read_line(SHORT_LINE)
            .map_err(|e| self.read_failed(&e))?;
        if let Some(len) = line.strip_prefix("#early_input=") {
            let len = args_len(len);
            if !(1..=LONG_LINE as i64 + 1).contains(&len) {
                return self.error("invalid early_input length");
            }
            self.early_input = self
                .reader
                .read_exact_bytes(len as usize)
                .map_err(|_| Stop)?;
            line = self
                .reader
                .read_line(SHORT_LINE)
                .map_err(|e| self.read_failed(&e))?;
        }
        if line.is_empty() || line == "#list" {
            self.log.log(&format!(
                "module-list request from {} ({})",
                self.host.as_str(),
                self.addr
            ));
            let mut listing = String::new();
            for m in config.modules.iter().filter(|m| m.list()) {
                listing.push_str(&format!("{:<15}\t{}\n", m.name, m.comment()));
            }
            listing.push_str("@RSYNCD: EXIT\n");
            self.send(&listing)?;
            return Err(Stop);
        }
        if line.starts_with('#') {
            return self.error(&format!("Unknown command '{line}'"));
        }
        let Some(module) = config.module(&line) else {
            self.log.log(&format!(
                "unknown module '{line}' tried from {} ({})",
                self.host.as_str(),
                self.addr
            ));
            return self.error(&format!("Unknown module '{line}'"));
        };
        self.module(module.clone(), opts, handler)
    }

    fn daemon_identity(&mut self, config: &Config) -> Result<(), Stop> {
        let chroot_dir = config.global_string(P::DaemonChroot);
        if !chroot_dir.is_empty() {
            if let Err(e) = privs::chroot(&chroot_dir).and_then(|_| std::env::set_current_dir("/"))
            {
                self.log
                    .log(&format!("daemon chroot(\"{chroot_dir}\") failed: {e}"));
                return Err(Stop);
            }
        }
        let gid = config.global_string(P::DaemonGid);
        if !gid.is_empty() {
            match privs::group_to_gid(&gid) {
                Some(g) => {
                    if privs::set_groups(&[g]).is_err() {
                        self.log
                            .log(&format!("Unable to set group to daemon gid {g}"));
                        return Err(Stop);
                    }
                }
                None => {
                    self.log.log(&format!("Invalid daemon gid: {gid}"));
                    return Err(Stop);
                }
            }
        }
        let uid = config.global_string(P::DaemonUid);
        if !uid.is_empty() {
            match privs::user_to_uid(&uid) {
                Some(u) => {
                    if privs::set_uid(u).is_err() {
                        self.log
                            .log(&format!("Unable to set user to daemon uid {u}"));
                        return Err(Stop);
                    }
                }
                None => {
                    self.log.log(&format!("Invalid daemon uid: {uid}"));
                    return Err(Stop);
                }
            }
        }
        Ok(())
    }

    fn module(
        &mut self,
        module: Module,
        opts: &DaemonOptions,
        handler: &dyn TransferHandler,
    ) -> Result<i32, Stop> {
        let name = module.name.clone();
        set_env("RSYNC_MODULE_NAME", &name);
        if self.host == HostName::Undetermined && module.reverse_lookup() {
            if let Some(ip) = self.ip() {
                self.host = self.lookup(ip);
            }
        }
        set_env("RSYNC_HOST_NAME", self.host.as_str());
        set_env("RSYNC_HOST_ADDR", &self.addr);
        // Re-read the module's values now that the RSYNC_* variables are set.
        let mut host = self.host.clone();
        let allowed = access::allow_access(
            &module.hosts_allow(),
            &module.hosts_deny(),
            &self.addr,
            &mut host,
            module.forward_lookup(),
        );
        self.host = host;
        let (h, a) = (self.host.as_str().to_string(), self.addr.clone());
        if !allowed {
            self.log
                .log(&format!("rsync denied on module {name} from {h} ({a})"));
            return if module.list() {
                self.error(&format!("access denied to {name} from {h} ({a})"))
            } else {
                self.error(&format!("Unknown module '{name}'"))
            };
        }
        if self.mode == Mode::Socket {
            self.log.log(&format!(
                "rsync allowed access on module {name} from {h} ({a})"
            ));
        }
        let lock_file = module.lock_file();
        let max = module.max_connections();
        let _slot = match lock::claim(Path::new(&lock_file), max) {
            Ok(Some(slot)) => slot,
            Ok(None) => {
                self.log.log(&format!("max connections ({max}) reached"));
                return self.error(&format!(
                    "max connections ({max}) reached -- try again later"
                ));
            }
            Err(e) => {
                self.log
                    .log(&format!("failed to open lock file {lock_file}: {e}"));
                return self.error("failed to open lock file");
            }
        };
        self.set_timeout(self.handshake_timeout(module.timeout()));
        let mut read_only = module.read_only();
        let auth_user = match self.authenticate(&module, &mut read_only) {
            Some(u) => u,
            None => return self.error(&format!("auth failed on module {name}")),
        };
        set_env("RSYNC_USER_NAME", &auth_user);
        // Local setup and operator hooks do not count against the client's time.
        self.set_timeout(None);
        let prepared = self.prepare_root(&module)?;
        self.set_timeout(self.handshake_timeout(module.timeout()));
        self.send("@RSYNCD: OK\n")?;

        let mut raw = args::read_raw(&mut self.reader).map_err(|e| {
            self.log
                .log(&format!("reading arguments for module {name}: {e}"));
            Stop
        })?;
        args::unescape_options(&mut raw);
        let mut parsed = args::interpret(raw.clone(), &name);
        if parsed.has_short('s') || parsed.has("secluded-args") || parsed.has("protect-args") {
            // The rest of the arguments follow, unescaped, after an argument 0 (`rsync`);
            // they add to the ones already read (stock parses both in turn).
            let mut rest = args::read_raw(&mut self.reader).map_err(|_| Stop)?;
            // Sent in UTF-8 by a client using --iconv: a module with a `charset` takes them
            // in its own, as stock's daemon reads them.
            let charset = module.charset();
            if let (Some(convert), false) = (opts.convert_args, charset.is_empty()) {
                for a in rest.iter_mut().skip(1) {
                    *a = args::arg_text(&convert(&charset, &args::arg_bytes(a)));
                }
            }
            raw.extend(rest.into_iter().skip(1));
            parsed = args::interpret(raw, &name);
        }
        let request_from = if auth_user.is_empty() {
            format!("{h} ({a})")
        } else {
            format!("{auth_user}@{h} ({a})")
        };
        if !parsed.request.is_empty() {
            let dir = if parsed.sender { "on" } else { "to" };
            self.log.log(&format!(
                "rsync {dir} {} from {request_from}",
                parsed.request
            ));
        }
        let module_timeout = u64::try_from(module.timeout())
            .ok()
            .filter(|t| *t > 0)
            .map(Duration::from_secs);
        self.set_timeout(None);
        self.set_idle_timeout(Some(module_timeout.unwrap_or(HANDSHAKE_TIMEOUT)));

        let refused = args::refused_set(&module.refuse_options(), !module.charset().is_empty());
        let pre_exec_error = self.pre_exec.take().and_then(|mut p| {
            let mut argv = vec!["rsyncd".to_string()];
            argv.extend(parsed.argv.iter().cloned());
            p.send(&parsed.request, &argv, &[]);
            p.finish("pre-xfer exec")
        });
        let name_converter = self.name_conv.take().and_then(|p| {
            let mut argv = vec!["rsyncd".to_string()];
            argv.extend(parsed.argv.iter().cloned());
            p.converse(&parsed.request, &argv)
        });
        let refusal = args::refusal(&parsed, &refused);
        let fatal = if let Some(text) = pre_exec_error {
            Some(Fatal {
                messages: text.lines().map(|l| format!("{l}\n")).collect(),
                options_parsed: refusal.is_none(),
                ..Fatal::refused("")
            })
        } else if let Some(msg) = refusal {
            // Stock's error goes to the daemon log as well as to the client.
            self.log.log(&format!("rsync: {msg}"));
            Some(Fatal::refused(&msg))
        } else if parsed.sender && module.write_only() {
            Some(Fatal::write_only())
        } else if !parsed.sender && read_only {
            Some(Fatal::read_only())
        } else if parsed.sender && read_only && parsed.has("remove-source-files") {
            Some(Fatal::remove_from_read_only("source"))
        } else if parsed.sender && read_only && parsed.has("remove-sent-files") {
            Some(Fatal::remove_from_read_only("sent"))
        } else {
            None
        };
        if let Some(fatal) = fatal {
            let _ = reject::send_fatal(
                &mut self.reader,
                &mut self.output,
                &parsed,
                self.protocol,
                &fatal,
            );
            return Ok(fatal.code);
        }
        self.set_idle_timeout(module_timeout);
        let Handshake {
            reader,
            output,
            socket_fd,
            log,
            ..
        } = std::mem::replace(self, Handshake::placeholder());
        let session = Session {
            input: Box::new(reader.into_inner()),
            output,
            socket_fd,
            module,
            root: prepared.root,
            module_dir: prepared.module_dir,
            chrooted: prepared.chrooted,
            args: parsed,
            protocol: prepared.protocol,
            auth_user,
            read_only,
            peer_addr: a,
            peer_host: h,
            timeout: module_timeout,
            munge_symlinks: prepared.munge_symlinks,
            numeric_ids: prepared.numeric_ids,
            log,
            options: opts.clone(),
            name_converter,
        };
        Ok(handler.run(session))
    }

    fn placeholder() -> Handshake {
        Handshake {
            reader: Reader::new(Box::new(std::io::empty())),
            output: Box::new(std::io::sink()),
            socket_fd: None,
            addr: String::new(),
            host: HostName::Undetermined,
            log: Logger::stderr(),
            mode: Mode::Socket,
            protocol: 0,
            peer_digests: None,
            early_input: Vec::new(),
            pre_exec: None,
            name_conv: None,
            deadline: Deadline::default(),
            idle: Arc::default(),
        }
    }

    /// `auth users`: the challenge, the response and the rules. `None`: refused (logged).
    fn authenticate(&mut self, module: &Module, read_only: &mut bool) -> Option<String> {
        let users = module.auth_users();
        if users.trim().is_empty() {
            return Some(String::new());
        }
        let (name, h, a) = (
            module.name.clone(),
            self.host.as_str().to_string(),
            self.addr.clone(),
        );
        let Some(digest) = auth::negotiate(self.peer_digests.as_deref(), self.protocol) else {
            let _ = self.send(&format!(
                "@ERROR: your client does not support one of our daemon-auth checksums: {}\n",
                auth::digest_list()
            ));
            return None;
        };
        let floor = module.auth_digest();
        if !floor.is_empty() {
            match auth::Digest::from_name(&floor) {
                None => {
                    self.log.log(&format!("auth failed on module {name} from {h} ({a}): the configured 'auth digest = {floor}' is not a supported digest on this build"));
                    return None;
                }
                Some(f) if digest.rank() > f.rank() => {
                    self.log.log(&format!("auth failed on module {name} from {h} ({a}): negotiated auth digest {} is weaker than the required 'auth digest = {floor}'", digest.name()));
                    return None;
                }
                Some(_) => {}
            }
        }
        let challenge = auth::generate_challenge(digest, &self.addr);
        self.send(&format!("@RSYNCD: AUTHREQD {challenge}\n"))
            .ok()?;
        let line = self.reader.read_line(LONG_LINE).ok();
        let Some((user, response)) = line.as_deref().and_then(|l| l.split_once(' ')) else {
            self.log.log(&format!(
                "auth failed on module {name} from {h} ({a}): invalid challenge response"
            ));
            return None;
        };
        let rules = secrets::parse_rules(&users);
        let needs_groups = rules.iter().any(|r| r.group);
        let groups = if needs_groups {
            secrets::user_groups(user)
        } else {
            Vec::new()
        };
        let result = match secrets::find_rule(&rules, user, &groups) {
            None => Err("no matching rule".to_string()),
            Some((rule, _)) if rule.grant == Grant::Deny => Err("denied by rule".to_string()),
            Some((rule, group)) => secrets::check_secret(
                &module.secrets_file(),
                module.strict_modes(),
                user,
                group.as_deref(),
                digest,
                &challenge,
                response,
            )
            .map(|_| rule.grant),
        };
        match result {
            Ok(grant) => {
                match grant {
                    Grant::ReadOnly => *read_only = true,
                    Grant::ReadWrite => *read_only = false,
                    _ => {}
                }
                Some(user.to_string())
            }
            Err(why) => {
                if let Some(detail) = why.strip_prefix("ignoring secrets file: ") {
                    self.log.log(detail);
                    self.log.log(&format!("auth failed on module {name} from {h} ({a}) for {user}: ignoring secrets file"));
                } else {
                    self.log.log(&format!(
                        "auth failed on module {name} from {h} ({a}) for {user}: {why}"
                    ));
                }
                None
            }
        }
    }
}

impl Handshake {
    /// Switches to the module's own `log file` (or syslog settings) when it has one, before
    /// chroot makes the path unreachable. (Stock also drops a `--log-file` given on the command
    /// line at this point when the module sets none; we keep logging where we were.)
    fn module_log(&mut self, module: &Module) {
        let path = module.log_file();
        if !path.is_empty() && path != self.log.path {
            self.log = Logger::open(&path, &module.syslog_tag(), module.syslog_facility());
        }
    }

    /// `post-xfer exec` (a parent process that outlives the session and runs the command with
    /// its exit status), `early exec` and the start of `pre-xfer exec`, as stock orders them.
    fn start_execs(&mut self, module: &Module) -> Result<(), Stop> {
        if std::env::var_os("RSYNC_NO_XFER_EXEC").is_some() {
            return Ok(());
        }
        set_env("RSYNC_PID", &std::process::id().to_string());
        // A value that could turn into shell syntax ends the session (stock exits with
        // code 4 without telling the client why; the log says it).
        let expanded = module
            .early_exec()
            .and_then(|e| Ok((e, module.pre_xfer_exec()?, module.post_xfer_exec()?)));
        let (early, pre, post) = match expanded {
            Ok(cmds) => cmds,
            Err(msg) => {
                self.log.log(&msg);
                return Err(Stop);
            }
        };
        let converter = module.name_converter();
        if !converter.is_empty() {
            match PreExec::start(&converter, true, &crate::config::session_vars()) {
                Ok(p) => self.name_conv = Some(p),
                Err(e) => {
                    self.log.log(&format!(
                        "name-converter exec preparation failed: {}",
                        sys_error(&e)
                    ));
                    return self.error("name-converter exec preparation failed");
                }
            }
        }
        if early.is_empty() && pre.is_empty() && post.is_empty() {
            return Ok(());
        }
        if !post.is_empty() {
            // SAFETY: the connection process is single-threaded.
            match unsafe { libc::fork() } {
                -1 => {
                    self.log.log(&format!(
                        "fork failed: {}",
                        sys_error(&std::io::Error::last_os_error())
                    ));
                    return self.error("fork failed");
                }
                0 => {}
                child => run_post_xfer(child, &post, self.log.fd()),
            }
        }
        if !early.is_empty() {
            let failed = match PreExec::start(&early, false, &crate::config::session_vars()) {
                Ok(mut p) => {
                    let input = std::mem::take(&mut self.early_input);
                    p.send("", &[], &input);
                    p.finish("early exec").is_some()
                }
                Err(_) => true,
            };
            if failed {
                self.log.log("early exec failed");
                return self.error("early exec failed");
            }
        }
        if !pre.is_empty() {
            match PreExec::start(&pre, true, &crate::config::session_vars()) {
                Ok(p) => self.pre_exec = Some(p),
                Err(e) => {
                    self.log.log(&format!(
                        "pre-xfer exec preparation failed: {}",
                        sys_error(&e)
                    ));
                    return self.error("pre-xfer exec preparation failed");
                }
            }
        }
        Ok(())
    }
}

/// The parent side of `post-xfer exec`: lets go of the connection, waits for the session
/// process, runs the command with RSYNC_EXIT_STATUS / RSYNC_RAW_STATUS, and exits.
fn run_post_xfer(child: libc::pid_t, cmd: &str, keep_fd: Option<RawFd>) -> ! {
    // SAFETY: closing our copies of the connection (every descriptor but the log) and waiting.
    unsafe {
        for fd in 3..1024 {
            if Some(fd) != keep_fd {
                libc::close(fd);
            }
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            if null > 2 {
                libc::close(null);
            }
        }
        let mut status = 0;
        if libc::waitpid(child, &mut status, 0) < 0 {
            status = -1;
        }
        let exit = if status >= 0 && libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        };
        let mut env = crate::config::session_vars();
        env.push(("RSYNC_RAW_STATUS".into(), status.to_string()));
        env.push(("RSYNC_EXIT_STATUS".into(), exit.to_string()));
        let rc = exec::shell(cmd, &env);
        libc::_exit(if rc < 0 { -1 } else { exit })
    }
}

/// What `prepare_root` established.
struct Prepared {
    root: OwnedFd,
    module_dir: PathBuf,
    chrooted: bool,
    munge_symlinks: bool,
    numeric_ids: bool,
    protocol: u32,
}

impl Handshake {
    /// uid/gid, path, chroot, the module root fd and the privilege drop, in stock's order.
    fn prepare_root(&mut self, module: &Module) -> Result<Prepared, Stop> {
        let root_user = privs::am_root();
        let uid_name = module.uid();
        let uid_name = if uid_name.is_empty() && root_user {
            privs::NOBODY_USER.to_string()
        } else {
            uid_name
        };
        let uid = if uid_name.is_empty() {
            None
        } else {
            match privs::user_to_uid(&uid_name) {
                Some(u) => Some(u),
                None => {
                    self.log.log(&format!("Invalid uid {uid_name}"));
                    return self.error(&format!("invalid uid {uid_name}"));
                }
            }
        };
        let mut gids = Vec::new();
        let gid_list = secrets::conf_tokens(&module.gid());
        for (k, g) in gid_list.iter().enumerate() {
            if k == 0 && g == "*" {
                // SAFETY: getuid has no preconditions.
                let target = uid.unwrap_or_else(|| unsafe { libc::getuid() });
                match privs::all_groups(target) {
                    Some(all) => gids.extend(all),
                    None => return self.error("getpwuid failed"),
                }
                continue;
            }
            match privs::group_to_gid(g) {
                Some(id) => gids.push(id),
                None => {
                    self.log.log(&format!("Invalid gid {g}"));
                    return self.error(&format!("invalid gid {g}"));
                }
            }
        }
        if gid_list.is_empty() && root_user {
            let g = privs::nobody_group();
            match privs::group_to_gid(g) {
                Some(id) => gids.push(id),
                None => {
                    self.log.log(&format!("Invalid gid {g}"));
                    return self.error(&format!("invalid gid {g}"));
                }
            }
        }

        let path = module.path();
        if path.is_empty() {
            self.log
                .log(&format!("No path specified for module {}", module.name));
            return self.error("no path setting.");
        }
        let inner_split = path.find("/./");
        let use_chroot = match module.use_chroot() {
            Some(v) => v,
            None if inner_split.is_some() => true,
            None => {
                if privs::chroot("/").is_err() {
                    self.log.log("chroot test failed: Operation not permitted. Switching 'use chroot' from unset to false.");
                    false
                } else {
                    true
                }
            }
        };
        let (outer, inner) = match (use_chroot, inner_split) {
            (true, Some(i)) => (normalize(&path[..i]), normalize(&path[i + 2..])),
            (true, None) => (normalize(&path), "/".to_string()),
            (false, _) => (
                normalize(&path.replacen("/./", "/", 1)),
                normalize(&path.replacen("/./", "/", 1)),
            ),
        };
        set_env(
            "RSYNC_MODULE_PATH",
            &if use_chroot && inner != "/" {
                format!("{outer}{inner}")
            } else {
                outer.clone()
            },
        );

        self.module_log(module);
        self.start_execs(module)?;
        if use_chroot {
            if let Err(e) = privs::chroot(&outer) {
                self.log
                    .log(&format!("chroot(\"{outer}\") failed: {}", sys_error(&e)));
                return self.error("chroot failed");
            }
        }
        let dir = if use_chroot {
            inner.clone()
        } else {
            outer.clone()
        };
        // Without chroot, a symlink another user planted on the module path must not move
        // the module root (stock walks it refusing such links).
        let entered = if use_chroot {
            Ok(())
        } else {
            privs::check_trusted_path(Path::new(&dir))
        };
        if let Err(e) = entered.and_then(|_| std::env::set_current_dir(&dir)) {
            self.log
                .log(&format!("chdir {dir} failed: {}", sys_error(&e)));
            return self.error("chdir failed");
        }
        let root: OwnedFd = match File::open(".") {
            Ok(f) => f.into(),
            Err(e) => {
                self.log
                    .log(&format!("chdir {dir} failed: {}", sys_error(&e)));
                return self.error("chdir failed");
            }
        };
        let munge = module
            .munge_symlinks()
            .unwrap_or(!use_chroot || inner != "/");
        if munge && Path::new("/rsyncd-munged").is_dir() {
            self.log
                .log("Symlink munging is unsafe when a /rsyncd-munged directory exists.");
            return self.error("daemon security issue -- contact admin");
        }
        if let Err((what, e)) = privs::set_groups(&gids) {
            self.log.log(&format!("{what} failed: {}", sys_error(&e)));
            return self.error(&format!("{what} failed"));
        }
        if let Some(u) = uid {
            if let Err(e) = privs::set_uid(u) {
                self.log
                    .log(&format!("setuid {u} failed: {}", sys_error(&e)));
                return self.error("setuid failed");
            }
        }
        let numeric_ids = if use_chroot {
            module.numeric_ids() != Some(false) && module.name_converter().is_empty()
        } else {
            module.numeric_ids() == Some(true)
        };
        Ok(Prepared {
            root,
            module_dir: PathBuf::from(dir),
            chrooted: use_chroot,
            munge_symlinks: munge,
            numeric_ids,
            protocol: self.protocol,
        })
    }
}

/// Collapses `//`, `/./` and trailing slashes (not `..`, which stays as configured).
fn normalize(path: &str) -> String {
    let abs = path.starts_with('/');
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let joined = parts.join("/");
    match (abs, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

fn args_len(s: &str) -> i64 {
    crate::config::parse_int(s)
}

fn read_motd(path: &str) -> std::io::Result<Vec<u8>> {
    privs::check_trusted_path(Path::new(path))?;
    let mut buf = Vec::new();
    File::open(path)?.take(1 << 20).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Sets SO_RCVTIMEO on a socket (`None`: block forever).
pub fn set_read_timeout(fd: RawFd, t: Option<Duration>) {
    let tv = match t {
        Some(d) => libc::timeval {
            tv_sec: d.as_secs() as libc::time_t,
            tv_usec: d.subsec_micros() as libc::suseconds_t,
        },
        None => libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
    };
    // SAFETY: a valid timeval of the size given; a bad fd only makes the call fail.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_paths() {
        for (p, want) in [
            ("/a//b/./c/", "/a/b/c"),
            ("/", "/"),
            ("a/b", "a/b"),
            ("/a/../b", "/a/../b"),
            ("", "."),
        ] {
            assert_eq!(normalize(p), want, "{p}");
        }
    }
}
