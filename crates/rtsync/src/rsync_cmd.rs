//! The `rsync` front door: rsync's command line, messages and exit codes.

use rtsync_engine::report::{error_line, exit};
use rtsync_engine::{Options, RSYNC_VERSION};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

mod batch;
mod help_words;
mod listing;

const PROTOCOL_VERSION: u32 = 32;

/// Prints the closing `rsync error:` line of a client-side failure.
fn client_error(code: i32, location: &str) {
    eprintln!("{}", error_line(code, location, "client"));
}

fn version_text() -> String {
    let (caps, opts) = capabilities();
    let word = |(name, value): &(&str, &str)| -> String {
        let name = name.replace('_', "-");
        match *value {
            "true" => name,
            "false" => format!("no {name}"),
            v if v.starts_with('"') => format!("{} {name}", v.trim_matches('"')),
            bits => format!(
                "{bits}-bit {}",
                name.trim_end_matches("-bits")
                    .replace("long-int", "long int")
            ),
        }
    };
    let plural = |w: String| match w.as_str() {
        "64-bit file" | "64-bit inum" | "64-bit timestamp" | "64-bit long int" => format!("{w}s"),
        _ => w,
    };
    format!(
        "rsync  version {RSYNC_VERSION}  protocol version {PROTOCOL_VERSION}\n\
         (rtsync {} — an rsync-compatible implementation in Rust)\n\
         Capabilities:\n{}\n\
         Optimizations:\n{}\n\
         Checksum list:\n    xxh128 xxh3 xxh64 (xxhash) md5 md4 sha1 none\n\
         Compress list:\n    zstd lz4 zlibx zlib none\n\
         Daemon auth list:\n    sha512 sha256 sha1 md5 md4\n",
        env!("CARGO_PKG_VERSION"),
        wrap(caps.iter().map(|c| plural(word(c))).collect()),
        wrap(opts.iter().map(word).collect()),
    )
}

/// `--stop-at`/`--stop-after`: at that time the run ends as stock's does when its I/O loop
/// notices the limit (`stopping at requested limit`, code 30), whatever it is doing; the
/// file being written locally is cleaned up as on a signal.
fn stop_at_watchdog(at: i64, opts: &Options) {
    use std::os::unix::ffi::OsStrExt;
    let args = &opts.args;
    let remote = |a: &std::ffi::OsString| is_remote(a.as_bytes());
    let pulling = args.len() > 1
        && !remote(&args[args.len() - 1])
        && args[..args.len() - 1].iter().any(remote);
    let role = match (opts.server, opts.sender, pulling) {
        (true, true, _) | (false, _, false) => "sender",
        _ => "receiver",
    };
    let message = format!(
        "stopping at requested limit\n{}\n",
        error_line(exit::TIMEOUT, "io.c(927)", role)
    );
    std::thread::spawn(move || loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if now >= at {
            rtsync_tree::fsops::interrupt::stop_now(&message, exit::TIMEOUT);
        }
        std::thread::sleep(std::time::Duration::from_millis(
            ((at - now) as u64).saturating_mul(1000).min(1000),
        ));
    });
}

/// Whether the rolling checksum runs its AVX2 variant on this machine.
fn simd_roll() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A `-VV` name and its JSON value.
type Cap = (&'static str, &'static str);

/// What this implementation can do, in stock's `-VV` names and JSON values (the
/// capabilities, then the optimizations); `--version` says the same in words.
fn capabilities() -> ([Cap; 23], [Cap; 4]) {
    let caps = [
        ("file_bits", "64"),
        ("inum_bits", "64"),
        ("timestamp_bits", "64"),
        ("long_int_bits", "64"),
        ("socketpairs", "true"),
        ("symlinks", "true"),
        ("symtimes", "true"),
        ("hardlinks", "true"),
        // -H links devices and specials too.
        ("hardlink_specials", "true"),
        ("hardlink_symlinks", "true"),
        ("IPv6", "true"),
        ("atimes", "true"),
        ("batchfiles", "true"),
        ("inplace", "true"),
        ("append", "true"),
        ("ACLs", "true"),
        ("ACL_at", "false"),
        ("xattrs", "true"),
        ("secluded_args", "\"optional\""),
        ("iconv", "true"),
        ("prealloc", "true"),
        ("stop_at", "true"),
        ("crtimes", "false"),
    ];
    let opts = [
        ("SIMD_roll", if simd_roll() { "true" } else { "false" }),
        ("asm_roll", "false"),
        ("openssl_crypto", "false"),
        ("asm_MD5", "false"),
    ];
    (caps, opts)
}

/// Entries joined with ", " and wrapped before 72 columns, 4 spaces in (stock's layout of
/// `--version` and `-VV`).
fn wrap(items: Vec<String>) -> String {
    let mut lines = vec![String::new()];
    for (i, item) in items.iter().enumerate() {
        let piece = if i + 1 < items.len() {
            format!("{item},")
        } else {
            item.clone()
        };
        let line = lines.last_mut().expect("one line");
        if !line.is_empty() && line.len() + 1 + piece.len() > 68 {
            lines.push(piece);
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&piece);
        }
    }
    lines
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `-VV`: the capabilities as JSON, in stock's layout (tests and tools parse it, or look for
/// `"NAME": true`). Every value says what this implementation does.
fn version_json() -> String {
    let (caps, opts) = capabilities();
    let pairs =
        |list: &[(&str, &str)]| wrap(list.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect());
    let names = |list: &str| wrap(list.split(' ').map(|n| format!("\"{n}\"")).collect());
    format!(
        "{{\n  \"program\": \"rsync\",\n  \"version\": \"{RSYNC_VERSION}\",\n  \
         \"protocol\": \"{PROTOCOL_VERSION}.0\",\n  \
         \"implementation\": \"rtsync {}\",\n  \
         \"capabilities\": {{\n{}\n  }},\n  \"optimizations\": {{\n{}\n  }},\n  \
         \"checksum_list\": [\n{}\n  ],\n  \"compress_list\": [\n{}\n  ],\n  \
         \"daemon_auth_list\": [\n{}\n  ],\n  \
         \"caveat\": \"rtsync comes with ABSOLUTELY NO WARRANTY\"\n}}\n",
        env!("CARGO_PKG_VERSION"),
        pairs(&caps),
        pairs(&opts),
        names("xxh128 xxh3 xxh64 md5 md4 sha1 none"),
        names("zstd lz4 zlibx zlib none"),
        names("sha512 sha256 sha1 md5 md4"),
    )
}

fn help_text() -> String {
    format!(
        "{}\nUsage: rsync [OPTION]... SRC [SRC]... DEST\n  \
         or   rsync [OPTION]... SRC [SRC]... [USER@]HOST:DEST\n  \
         or   rsync [OPTION]... SRC [SRC]... [USER@]HOST::DEST\n  \
         or   rsync [OPTION]... SRC [SRC]... rsync://[USER@]HOST[:PORT]/DEST\n  \
         or   rsync [OPTION]... [USER@]HOST:SRC [DEST]\n  \
         or   rsync [OPTION]... [USER@]HOST::SRC [DEST]\n  \
         or   rsync [OPTION]... rsync://[USER@]HOST[:PORT]/SRC [DEST]\n\
         Options are those of rsync(1); see its manual page for their meaning.\n",
        version_text()
    )
}

/// Whether an argument names a remote location (`host:path`, `host::module`, `rsync://`).
pub fn is_remote(arg: &[u8]) -> bool {
    if arg.starts_with(b"rsync://") {
        return true;
    }
    match arg.iter().position(|&c| c == b':') {
        Some(colon) => !arg[..colon].contains(&b'/') && colon > 0,
        None => false,
    }
}

/// A transfer with a daemon or over a remote shell.
fn remote(opts: &Options) -> i32 {
    report_remote(opts, &rtsync_wire::client::ClientEnv::from_process())
}

/// [`remote`] in the environment `env` (a batch recorder, a local server).
fn report_remote(opts: &Options, env: &rtsync_wire::client::ClientEnv) -> i32 {
    // rsync names the local process's role in its closing line: pulling makes it the receiver.
    let sources = &opts.args[..opts.args.len().saturating_sub(1)];
    // The first source decides the direction (a later remote source is a usage error); a
    // lone remote argument is a listing: received.
    let pulling = sources.first().is_some_and(|a| is_remote(a.as_bytes()))
        || (sources.is_empty() && opts.args.iter().any(|a| is_remote(a.as_bytes())));
    let role = if pulling { "Receiver" } else { "sender" };
    let closing = |code: i32, role: &str, at: Option<&str>| {
        let location = at.unwrap_or(match code {
            exit::START_CLIENT => "main.c(1954)",
            exit::SOCKET_IO => "clientserver.c(165)",
            exit::PARTIAL | exit::VANISHED | exit::DEL_LIMIT if pulling => "main.c(1956)",
            _ => "main.c(1394)",
        });
        eprintln!("{}", error_line(code, location, role));
    };
    match rtsync_wire::client::run(opts, env) {
        Ok(outcome) => {
            let code = outcome.exit_code();
            if code != exit::OK {
                closing(
                    code,
                    if outcome.generated { "generator" } else { role },
                    None,
                );
            }
            code
        }
        // The peer said why it stopped and with what code (MSG_ERROR_EXIT): stock's client
        // exits with that code and says nothing more.
        Err(rtsync_wire::Error::RemoteExit(code)) => code,
        Err(e @ rtsync_wire::Error::ExecFailed { .. }) => {
            // Stock's forked child fails to exec and says so, then the client finds the
            // connection closed.
            eprintln!("rsync: [{role}] {e}");
            eprintln!("{}", error_line(exit::IPC, "pipe.c(85)", role));
            eprintln!("rsync: connection unexpectedly closed (0 bytes received so far) [{role}]");
            // (The child's exit code is the one stock's client exits with.)
            closing(exit::IPC, role, e.location());
            exit::IPC
        }
        Err(e @ rtsync_wire::Error::Lost { .. }) => {
            let rtsync_wire::Error::Lost {
                error,
                received,
                generated,
                ..
            } = &e
            else {
                unreachable!("matched above")
            };
            let (received, generated) = (*received, *generated);
            let code = e.exit_code();
            if let Some(errno) = error.socket_errno() {
                let what = if error.is_broken_pipe() {
                    "write"
                } else {
                    "read"
                };
                let text = std::io::Error::from_raw_os_error(errno);
                eprintln!(
                    "rsync: [{role}] {what} error: {} ({errno})",
                    rtsync_wire::client::strerror(&text)
                );
                closing(code, role, e.location());
            } else if let Some(before) = generated {
                // Stock's receiver process says it lost the connection, then its generator
                // (which read the list) ends with the client's exit code.
                for (count, who, code) in [
                    (received, "receiver", exit::STREAM_IO),
                    (before, "generator", code),
                ] {
                    eprintln!(
                        "rsync: connection unexpectedly closed ({count} bytes received so far) [{who}]"
                    );
                    closing(code, who, e.location());
                }
            } else {
                eprintln!(
                    "rsync: connection unexpectedly closed ({received} bytes received so far) [{role}]"
                );
                closing(code, role, e.location());
            }
            code
        }
        Err(e) => {
            let code = e.exit_code();
            let message = e.client_message();
            match message.strip_prefix("rsync: ") {
                Some(rest) if code == exit::SOCKET_IO => eprintln!("rsync: [{role}] {rest}"),
                _ => eprintln!("{message}"),
            }
            closing(code, e.role().unwrap_or(role), e.location());
            code
        }
    }
}

/// A client's checks on `--files-from` (stock's parse_arguments): one source and one
/// destination, and a remote list that names a file (not `-`).
fn files_from_usage(opts: &Options) -> Option<i32> {
    opts.files_from.as_ref()?;
    if opts.args.len() != 2 {
        eprint!("{}", help_text());
        client_error(exit::SYNTAX, "options.c(2621)");
        return Some(exit::SYNTAX);
    }
    if rtsync_wire::remote_files_from(opts).as_deref() == Some("-") {
        eprintln!("rsync: Invalid --files-from remote filename");
        client_error(exit::SYNTAX, "main.c(1886)");
        return Some(exit::SYNTAX);
    }
    None
}

/// A transfer (and a listing) ignores SIGPIPE, as stock's does: a peer (or reader) that
/// went away is an error it reports with its exit code (12 for the peer), not a signal
/// that kills it. (Help and version keep the default: stock prints them before it
/// ignores the signal.)
fn ignore_sigpipe() {
    // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

pub fn main(args: Vec<OsString>) -> i32 {
    let rest = &args[1.min(args.len())..];
    // `--daemon` (with `--server` too: the far end of `-e SHELL host::`, which may carry
    // daemon options such as `--config` from `--rsync-path`).
    if rest.iter().any(|a| a == "--daemon") {
        return crate::daemon_cmd::main(args);
    }
    let opts = match Options::parse(rest) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("rsync: {}", e.message);
            client_error(exit::SYNTAX, "main.c(1886)");
            return exit::SYNTAX;
        }
    };
    rtsync_oppath::set_insecure_links(opts.insecure_links);
    if let Some(text) = help_words::requested(&opts) {
        print!("{text}");
        return exit::OK;
    }
    if opts.version > 1 {
        print!("{}", version_json());
        return exit::OK;
    }
    if opts.version > 0 {
        if opts.version > 1 {
            print!("{}", version_json());
        } else {
            print!("{}", version_text());
        }
        return exit::OK;
    }
    if opts.help {
        print!("{}", help_text());
        return exit::OK;
    }
    if let Some(at) = opts.stop_at {
        stop_at_watchdog(at, &opts);
    }
    if opts.stderr_mode == Some(1) && !opts.server {
        // `--stderr=all`: every message goes to stderr.
        // SAFETY: dup2 of our own standard descriptors.
        unsafe { libc::dup2(2, 1) };
    }
    if opts.munge_links && !opts.server && rtsync_tree::munge::munge_dir_exists() {
        eprintln!("{}", rtsync_tree::munge::MUNGE_DIR_UNSAFE);
        client_error(exit::UNSUPPORTED, "options.c(2387)");
        return exit::UNSUPPORTED;
    }
    if !opts.server {
        rtsync_engine::filters::caution_trailing_whitespace(&opts);
    }
    if opts.server {
        ignore_sigpipe();
        // The remote end of a remote-shell transfer (or of `--server --daemon`).
        if opts.daemon {
            return crate::daemon_cmd::main(args);
        }
        use std::os::fd::FromRawFd;
        // A client may hand us non-blocking descriptors; the server does blocking I/O.
        for fd in [0, 1] {
            // SAFETY: fcntl on fds 0/1 with valid commands.
            unsafe {
                let flags = libc::fcntl(fd, libc::F_GETFL);
                if flags >= 0 && flags & libc::O_NONBLOCK != 0 {
                    libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
                }
            }
        }
        // SAFETY: fds 0 and 1 are open for the whole process and used only through these
        // handles from here on (std's buffered stdout is never written by the server).
        let (mut input, output) =
            unsafe { (std::fs::File::from_raw_fd(0), std::fs::File::from_raw_fd(1)) };
        if opts.secluded_args() {
            // `-s`: the rest of the arguments come first on the connection (argument 0,
            // `rsync`, is not an option).
            let mut all = rest.to_vec();
            match rtsync_wire::server::read_secluded_args(&mut input) {
                // (With --iconv on the command line they come in UTF-8.)
                Ok(secluded) => match opts.iconv.as_deref().map(|cs| {
                    rtsync_wire::iconv::Iconv::new(rtsync_wire::iconv::side_charset(cs, true))
                }) {
                    Some(Ok(ic)) => all.extend(secluded.into_iter().skip(1).map(|a| {
                        use std::os::unix::ffi::{OsStrExt, OsStringExt};
                        OsString::from_vec(ic.message_from_wire(a.as_bytes()))
                    })),
                    _ => all.extend(secluded.into_iter().skip(1)),
                },
                Err(e) => {
                    eprintln!("rsync: {e}");
                    return e.exit_code();
                }
            }
            return rtsync_wire::server::run(&all, input, output);
        }
        return rtsync_wire::server::run(rest, input, output);
    }
    if opts.read_batch.is_some() || opts.write_batch.is_some() {
        ignore_sigpipe();
    }
    if let Some(code) = batch::run(&opts, &args) {
        return code;
    }
    if opts.args.is_empty() {
        // (usage(FERROR): the help goes to stderr.)
        eprint!("{}", help_text());
        if rest.is_empty() {
            client_error(exit::SYNTAX, "main.c(1871)");
        } else {
            // Options but no names: stock gets past its option parsing, as the receiver.
            eprintln!("{}", error_line(exit::SYNTAX, "main.c(1941)", "Receiver"));
        }
        return exit::SYNTAX;
    }
    if let Some(code) = files_from_usage(&opts) {
        return code;
    }
    if opts.args.iter().any(|a| is_remote(a.as_bytes())) {
        ignore_sigpipe();
        return remote(&opts);
    }
    if rtsync_wire::remote_files_from(&opts).is_some() {
        eprintln!("--files-from cannot be remote when the transfer is local");
        eprintln!("{}", error_line(exit::SYNTAX, "main.c(1510)", "sender"));
        return exit::SYNTAX;
    }
    if opts.iconv.is_some() && opts.args.len() > 1 && !opts.list_only {
        // A local copy with --iconv goes over the protocol, to ourselves as the receiving
        // server (stock's local_child), which converts the names to the second charset.
        ignore_sigpipe();
        let mut env = rtsync_wire::client::ClientEnv::from_process();
        env.local_server = true;
        return report_remote(&opts, &env);
    }
    if let Some(spec) = opts.copy_as.as_deref() {
        // A local copy: both of stock's processes become the user (and both say why not).
        if let Err(e) = rtsync_engine::idmap::become_copy_as(spec) {
            let line = if e.bare {
                e.message
            } else {
                format!("rsync: {}", e.message)
            };
            eprintln!("{line}\n{line}");
            for role in ["Receiver", "sender"] {
                eprintln!("{}", error_line(exit::SYNTAX, e.at, role));
            }
            return exit::SYNTAX;
        }
    }
    let mut paths: Vec<PathBuf> = opts.args.iter().map(PathBuf::from).collect();
    if opts.list_only || paths.len() == 1 {
        // With a destination given, --list-only lists the sources only.
        let sources = if paths.len() > 1 {
            &paths[..paths.len() - 1]
        } else {
            &paths[..]
        };
        ignore_sigpipe();
        return listing::run(&opts, sources);
    }
    let dest = paths.pop().expect("at least two paths");
    ignore_sigpipe();
    rtsync_engine::local::run(&opts, &paths, &dest)
}
