//! The `daemon` front door: `rtsync daemon [OPTIONS]`, and `rsync --daemon [OPTIONS]` through
//! the rsync personality. Parses stock rsync's daemon options and runs the listener, the inetd
//! mode (standard input is a socket) or the remote-shell mode (`--server --daemon .`).

use std::ffi::OsString;
use std::path::PathBuf;

use rtsync_daemon::server::{self, Family, ListenOptions};
use rtsync_daemon::{DaemonOptions, NoTransfer, Session, TransferHandler};

/// Stock's default config file for a system daemon.
const SYSTEM_CONFIG: &str = "/etc/rsyncd.conf";
/// The config a non-root `--server --daemon` reads by default.
const USER_CONFIG: &str = "rsyncd.conf";

/// What the command line asked for.
#[derive(Debug, Default)]
struct Cli {
    daemon: DaemonOptions,
    listen: ListenOptions,
    config: Option<PathBuf>,
    server: bool,
    help: bool,
    verbose: u32,
}

const HELP: &str = "\
Usage: rtsync daemon [OPTION]...   (or: rsync --daemon [OPTION]...)
--daemon                 run as an rsync daemon
--address=ADDRESS        bind to the specified address
--bwlimit=RATE           limit socket I/O bandwidth
--config=FILE            specify alternate rsyncd.conf file
--dparam=OVERRIDE, -M    override global daemon config parameter
--no-detach              do not detach from the parent
--port=PORT              listen on alternate port number
--log-file=FILE          override the \"log file\" setting
--log-file-format=FMT    override the \"log format\" setting
--sockopts=OPTIONS       specify custom TCP options
--verbose, -v            increase verbosity
--ipv4, -4               prefer IPv4
--ipv6, -6               prefer IPv6
--help, -h               show this help (when used with --daemon)
";

fn usage_error(opt: &str) -> i32 {
    eprintln!("rsync: {opt}: unknown option (in daemon mode)");
    eprintln!("(Type \"rsync --daemon --help\" for assistance with daemon mode.)");
    eprintln!("rsync error: syntax or usage error (code 1) at options.c(1596) [client=3.5.0]");
    1
}

/// Parses the daemon's options (`args` without the program name and `--daemon`).
fn parse(args: &[String]) -> Result<Cli, i32> {
    let mut cli = Cli::default();
    let mut i = 0;
    let value = |i: &mut usize, inline: Option<&str>, name: &str| -> Result<String, i32> {
        if let Some(v) = inline {
            return Ok(v.to_string());
        }
        *i += 1;
        args.get(*i).cloned().ok_or_else(|| {
            eprintln!("rsync: --{name}: missing argument");
            1
        })
    };
    while i < args.len() {
        let arg = args[i].as_str();
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v)),
            _ => (arg, None),
        };
        match name {
            "--daemon" => {}
            "--server" => cli.server = true,
            "." if cli.server => {}
            "--address" => cli.listen.address = Some(value(&mut i, inline, "address")?),
            "--bwlimit" => {
                let v = value(&mut i, inline, "bwlimit")?;
                // An integer (KiB/s), as stock's daemon-mode option table takes it.
                if v.trim().parse::<i32>().is_err() {
                    eprintln!("rsync: --bwlimit={v}: invalid numeric value (in daemon mode)");
                    eprintln!("(Type \"rsync --daemon --help\" for assistance with daemon mode.)");
                    eprintln!(
                        "rsync error: syntax or usage error (code 1) at options.c(1596) [client=3.5.0]"
                    );
                    return Err(1);
                }
                cli.daemon.bwlimit = Some(v.trim().to_string());
            }
            "--config" => cli.config = Some(PathBuf::from(value(&mut i, inline, "config")?)),
            "--dparam" | "-M" => cli.daemon.dparams.push(value(&mut i, inline, "dparam")?),
            "--no-detach" => cli.listen.no_detach = true,
            "--detach" => cli.listen.no_detach = false,
            "--port" => {
                let v = value(&mut i, inline, "port")?;
                cli.listen.port = Some(v.parse().map_err(|_| usage_error(arg))?);
            }
            "--log-file" => cli.daemon.log_file = Some(value(&mut i, inline, "log-file")?),
            "--log-file-format" => {
                cli.daemon.log_file_format = Some(value(&mut i, inline, "log-file-format")?)
            }
            "--protocol" => {
                let v = value(&mut i, inline, "protocol")?;
                cli.daemon.protocol = Some(v.trim().parse().map_err(|_| usage_error(arg))?);
            }
            "--temp-dir" | "-T" => cli.daemon.temp_dir = Some(value(&mut i, inline, "temp-dir")?),
            "--no-verbose" | "--no-v" => cli.verbose = 0,
            "--sockopts" => cli.listen.sockopts = Some(value(&mut i, inline, "sockopts")?),
            "--verbose" | "-v" => cli.verbose += 1,
            "--ipv4" | "-4" => cli.listen.family = Some(Family::V4),
            "--ipv6" | "-6" => cli.listen.family = Some(Family::V6),
            "--help" | "-h" => cli.help = true,
            _ if arg.starts_with("-M") && arg.len() > 2 => {
                cli.daemon.dparams.push(arg[2..].to_string())
            }
            _ if arg.starts_with("-T") && arg.len() > 2 => {
                cli.daemon.temp_dir = Some(arg[2..].to_string())
            }
            _ if arg.starts_with('-') && !arg.starts_with("--") && arg.len() > 2 => {
                // A bundle of short flags such as -v4.
                for c in arg[1..].chars() {
                    match c {
                        'v' => cli.verbose += 1,
                        '4' => cli.listen.family = Some(Family::V4),
                        '6' => cli.listen.family = Some(Family::V6),
                        'h' => cli.help = true,
                        _ => return Err(usage_error(&format!("-{c}"))),
                    }
                }
            }
            _ => return Err(usage_error(arg)),
        }
        i += 1;
    }
    for d in &cli.daemon.dparams {
        let Some((n, _)) = d.split_once('=') else {
            eprintln!("Malformed --dparam value: {d}");
            return Err(1);
        };
        if rtsync_daemon::config::lookup(n).is_none() {
            eprintln!("Unknown parameter \"{n}\"");
            return Err(1);
        }
    }
    Ok(cli)
}

/// The transfer of an accepted module session: the wire crate's server role, confined to the
/// module root (by chroot, or by resolving every path beneath it).
fn transfer(mut session: Session) -> i32 {
    let m = &session.module;
    let has_filters = [
        m.exclude(),
        m.include(),
        m.filter(),
        m.exclude_from(),
        m.include_from(),
    ]
    .iter()
    .any(|v| !v.trim().is_empty());
    let module_filter = if has_filters {
        match module_filter(m) {
            Ok(set) => Some(set),
            Err(e) => {
                eprintln!("rsync: {e}");
                return NoTransfer.run(session);
            }
        }
    } else {
        None
    };
    if let (Some(filter), false) = (&module_filter, session.args.sender) {
        // Stock rejects a --backup-dir or --temp-dir the module's rules hide while it parses
        // the client's options (exit 4, as a refused option).
        let hidden = session.args.options.iter().any(|o| {
            matches!(o.long(), "backup-dir" | "temp-dir")
                && o.value
                    .as_deref()
                    .is_some_and(|v| rtsync_wire::server::dir_is_excluded(filter, v))
        });
        if hidden {
            let msg = "Your options have been rejected by the server.";
            session.log.log(&format!("rsync: {msg}"));
            let fatal = rtsync_daemon::reject::Fatal::refused(msg);
            let _ = rtsync_daemon::reject::send_fatal(
                &mut session.input,
                &mut session.output,
                &session.args,
                session.protocol,
                &fatal,
            );
            return fatal.code;
        }
    }
    // `outgoing chmod` shapes what a pull lists, `incoming chmod` what a push creates.
    let chmod = if session.args.sender {
        m.outgoing_chmod()
    } else {
        m.incoming_chmod()
    };
    let chmod: Vec<String> = (!chmod.trim().is_empty())
        .then(|| chmod.trim().to_string())
        .into_iter()
        .collect();
    let argv = server_argv(&session.args.argv, &session.args.paths);
    // The daemon's `--log-file-format` logs transfers whatever the module says; else
    // `transfer logging = yes` does, in the module's `log format` (stock's rsync_module).
    let transfer_log = session
        .options
        .log_file_format
        .clone()
        .or_else(|| m.transfer_logging().then(|| m.log_format()))
        .map(|format| {
            let facts = rtsync_engine::report::DaemonFacts {
                module: m.name.clone(),
                module_path: rtsync_daemon::config::session_vars()
                    .into_iter()
                    .find_map(|(n, v)| (n == "RSYNC_MODULE_PATH").then_some(v))
                    .unwrap_or_default(),
                user: Some(session.auth_user.clone()),
                host: session.peer_host.clone(),
                addr: session.peer_addr.clone(),
            };
            (format, facts)
        });
    // Stock's log marks the start of the list phase (tools watch the log for it).
    session.log.log(if session.args.sender {
        "building file list"
    } else {
        "receiving file list"
    });
    let temp_dir = temp_dir(&m.temp_dir(), &session.options, &m.name, &session.log);
    // A fatal error of the session is logged as stock logs it, besides going to the client.
    let logger = std::sync::Mutex::new(session.log);
    let log = rtsync_wire::server::LogSink(std::sync::Arc::new(move |m: &str| {
        if let Ok(l) = logger.lock() {
            l.log(m);
        }
    }));
    if let Some((mut to, mut from)) = session.name_converter.take() {
        use std::io::{BufRead, Write};
        let log = log.clone();
        rtsync_wire::local::set_name_converter(Box::new(move |kind, value| {
            // A control character would split the request line: refused (and logged), as
            // stock's namecvt_safe_token.
            if value.iter().any(|&c| c < b' ' || c == 0x7f) {
                (log.0)(&format!(
                    "invalid name-converter token: {}",
                    String::from_utf8_lossy(value)
                ));
                return None;
            }
            let mut q = format!("{kind} ").into_bytes();
            q.extend_from_slice(value);
            q.push(b'\n');
            to.write_all(&q).ok()?;
            let mut line = Vec::new();
            from.read_until(b'\n', &mut line).ok()?;
            while line.last().is_some_and(|c| *c == b'\n' || *c == b'\r') {
                line.pop();
            }
            Some(line)
        }));
    }
    // A chroot into the module is its own confinement; `insecure links = yes` opts out.
    let chroot_is_root = session.chrooted && session.module_dir == std::path::Path::new("/");
    let unconfined = chroot_is_root || m.insecure_links();
    // The module's opt-out also lets operator paths follow any owner's symlinks (a client's
    // own `--insecure-links` is refused before this point).
    rtsync_oppath::set_insecure_links(m.insecure_links());
    if !unconfined {
        // Files the client names or plants (merge files, `--files-from`) are read only from
        // inside the module (our working directory is its root), as stock confines them.
        if let Ok(root) = std::env::current_dir() {
            rtsync_oppath::set_confine_root(Some(&root));
        }
    }
    let input: Box<dyn std::io::Read + Send> = match session.socket_fd {
        // Quick ACKs on the socket spare a peer with Nagle on its ~40 ms stalls.
        Some(fd) => Box::new(rtsync_wire::connect::QuickAckFd::new(session.input, fd)),
        None => session.input,
    };
    rtsync_wire::server::run_session(
        &argv,
        input,
        session.output,
        rtsync_wire::server::ServerSession {
            daemon_protocol: Some(session.protocol),
            // The working directory is the module root (entered before privileges were
            // dropped): paths relative to it work under a parent the module user cannot
            // search.
            root: Some(PathBuf::from(".")),
            read_only: session.read_only,
            write_only: session.module.write_only(),
            socket_fd: session.socket_fd,
            munge_symlinks: session.munge_symlinks,
            module_filter,
            chmod,
            log: Some(log),
            sanitize_paths: session.module_dir != std::path::Path::new("/"),
            unconfined,
            module_name: Some(m.name.clone()),
            numeric_ids: session.numeric_ids,
            max_verbosity: Some(m.max_verbosity()),
            daemon_bwlimit: daemon_bwlimit(&session.options),
            open_noatime: m.open_noatime(),
            fake_super: m.fake_super(),
            charset: Some(m.charset()).filter(|c| !c.is_empty()),
            transfer_log,
            ignore_errors: m.ignore_errors(),
            ignore_nonreadable: m.ignore_nonreadable(),
            temp_dir,
        },
    )
}

/// The temp dir standing in for a `--temp-dir` the client does not give: the module's
/// `temp dir`, else the daemon's own `--temp-dir`. A module value too long to hold a temp
/// file's name is logged and leaves none, as stock's rsync_module does.
fn temp_dir(
    module: &str,
    opts: &DaemonOptions,
    name: &str,
    log: &rtsync_daemon::log::Logger,
) -> Option<String> {
    if module.is_empty() {
        return opts.temp_dir.clone();
    }
    if module.len() >= 4096 - 10 {
        log.log(&format!(
            "the 'temp dir' value for {name} is WAY too long -- ignoring."
        ));
        return None;
    }
    Some(module.to_string())
}

/// The daemon's `--bwlimit` in KiB/s (checked when the options were parsed; a negative
/// value is no limit).
fn daemon_bwlimit(o: &DaemonOptions) -> u64 {
    o.bwlimit
        .as_deref()
        .and_then(|v| v.parse::<i64>().ok())
        .map_or(0, |n| n.max(0) as u64)
}

/// A module's `filter`, `include`, `exclude`, `include from` and `exclude from` rules.
fn module_filter(
    m: &rtsync_daemon::config::Module,
) -> Result<rtsync_filter::FilterSet, rtsync_filter::FilterError> {
    let text = |v: String| (!v.trim().is_empty()).then(|| v.into_bytes());
    let path = |v: String| (!v.trim().is_empty()).then(|| std::path::PathBuf::from(v));
    let params = rtsync_filter::daemon::ModuleFilterParams {
        filter: text(m.filter()),
        include_from: path(m.include_from()),
        include: text(m.include()),
        exclude_from: path(m.exclude_from()),
        exclude: text(m.exclude()),
    };
    rtsync_filter::daemon::module_filter(&params, &mut rtsync_filter::FsSource::default())
}

/// The client's options up to `.`, then `.` and the module-relative paths (the module root is
/// our working directory).
fn server_argv(argv: &[String], paths: &[String]) -> Vec<OsString> {
    use std::os::unix::ffi::OsStringExt;
    // (Back to the bytes the client sent: a name in another charset is not UTF-8.)
    let raw = |a: &str| OsString::from_vec(rtsync_daemon::args::arg_bytes(a));
    let dot = argv.iter().position(|a| a == ".").unwrap_or(argv.len());
    let mut out: Vec<OsString> = argv[..dot].iter().map(|a| raw(a)).collect();
    out.push(".".into());
    if paths.is_empty() {
        out.push(".".into());
    }
    for p in paths {
        let rel = p.trim_start_matches('/');
        out.push(if rel.is_empty() { ".".into() } else { raw(rel) });
    }
    out
}

/// Secluded arguments as a module with a `charset` takes them: from UTF-8 to that charset
/// (`.`: the locale's), bytes it cannot convert kept as they are (stock's read_args).
fn convert_secluded(charset: &str, arg: &[u8]) -> Vec<u8> {
    match rtsync_wire::iconv::Iconv::new(charset) {
        Ok(ic) => ic.message_from_wire(arg),
        Err(_) => arg.to_vec(),
    }
}

/// Runs the front door with `args[0]` being the tool's name; returns the exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    let args: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut cli = match parse(&args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if cli.help {
        println!("rtsync {} (rsync protocol 32)\n", env!("CARGO_PKG_VERSION"));
        print!("{HELP}");
        return 0;
    }
    let root = rtsync_daemon::privs::am_root();
    cli.daemon.convert_args = Some(convert_secluded);
    cli.daemon.config = cli.config.clone().unwrap_or_else(|| {
        PathBuf::from(if cli.server && !root {
            USER_CONFIG
        } else {
            SYSTEM_CONFIG
        })
    });
    if cli.server {
        return server::run_stdio(&cli.daemon, &transfer);
    }
    if server::stdin_is_socket() {
        return server::run_inetd(&cli.daemon, &transfer);
    }
    match server::run(&cli.daemon, &cli.listen, &transfer) {
        Ok(()) => 0,
        Err(e @ server::ServerError::Config(_)) => {
            eprintln!("{e}");
            1
        }
        Err(e @ server::ServerError::Bind { .. }) => {
            eprintln!("rsync: {e}");
            10
        }
        Err(e) => {
            eprintln!("{e}");
            11
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Result<Cli, i32> {
        parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn parses_stock_daemon_options() {
        let cli = p(&[
            "--daemon",
            "--no-detach",
            "--port=8873",
            "--address",
            "127.0.0.2",
            "--config=/c",
            "-M",
            "read only=no",
            "--dparam=list=no",
            "-v4",
            "--log-file=/l",
        ])
        .unwrap();
        assert!(cli.listen.no_detach);
        assert_eq!(cli.listen.port, Some(8873));
        assert_eq!(cli.listen.address.as_deref(), Some("127.0.0.2"));
        assert_eq!(cli.config, Some(PathBuf::from("/c")));
        assert_eq!(cli.daemon.dparams, ["read only=no", "list=no"]);
        assert_eq!(cli.listen.family, Some(Family::V4));
        assert_eq!(cli.daemon.log_file.as_deref(), Some("/l"));
        assert!(p(&["--server", "--daemon", "."]).unwrap().server);
    }

    #[test]
    fn server_args_are_module_relative() {
        let argv: Vec<String> = ["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", "mod/a"]
            .map(String::from)
            .to_vec();
        let got = server_argv(&argv, &["/a".into(), "/".into(), "//b".into()]);
        let want: Vec<OsString> = [
            "--server",
            "--sender",
            "-logDtpre.iLsfxCIvu",
            ".",
            "a",
            ".",
            "b",
        ]
        .map(OsString::from)
        .to_vec();
        assert_eq!(got, want);
    }

    #[test]
    fn rejects_unknown_options() {
        for bad in [
            &["--bogus"][..],
            &["-x"],
            &["--port=abc"],
            &["--dparam=nosuch=1"],
            &["-M", "noequals"],
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
    }
}
