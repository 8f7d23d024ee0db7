//! Client half of the rsync daemon greeting: version lines, module selection, the
//! challenge/response login, and sending the server arguments.

use std::io::{BufRead, Write};

use crate::checksum::{auth_response, AuthDigest};
use crate::error::{Error, Result};
use crate::mux::MessageHandler;
use crate::negotiate::MIN_PROTOCOL;

/// Longest greeting/motd line we accept.
const MAX_LINE: usize = 8192;

/// A parsed `@RSYNCD: <ver>.<sub> [digests]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    pub protocol: u32,
    pub sub: u32,
    /// The digest list (protocol ≥ 32 requires one).
    pub digests: Option<String>,
}

/// Our greeting line.
pub fn format_greeting(protocol: u32) -> String {
    format!("@RSYNCD: {protocol}.0 {}\n", AuthDigest::greeting_list())
}

/// Parses the peer's greeting line (without the newline).
pub fn parse_greeting(line: &str) -> Result<Greeting> {
    let rest = line
        .strip_prefix("@RSYNCD: ")
        .ok_or_else(|| Error::Startup(format!("server sent \"{line}\" rather than greeting")))?;
    let (version, digests) = match rest.split_once(' ') {
        Some((v, d)) => (v, Some(d.trim().to_string())),
        None => (rest, None),
    };
    let (major, sub) = match version.split_once('.') {
        Some((m, s)) => (m, Some(s)),
        None => (version, None),
    };
    let protocol: u32 = major
        .parse()
        .map_err(|_| Error::Startup(format!("server sent \"{line}\" rather than greeting")))?;
    let sub = match sub {
        Some(s) => s
            .parse()
            .map_err(|_| Error::Startup(format!("bad subprotocol in greeting: {line}")))?,
        None if protocol >= 30 => {
            return Err(Error::Startup(format!(
                "the server omitted the subprotocol value: {line}"
            )))
        }
        None => 0,
    };
    if digests.is_none() && protocol > 31 {
        return Err(Error::Startup(format!(
            "the server omitted the digest name list: {line}"
        )));
    }
    Ok(Greeting {
        protocol,
        sub,
        digests,
    })
}

/// The protocol both sides will speak after greetings (stock's rule, our sub being 0).
pub fn agreed_protocol(ours: u32, theirs: &Greeting) -> u32 {
    if ours > theirs.protocol {
        theirs.protocol - u32::from(theirs.sub != 0)
    } else if ours == theirs.protocol && theirs.sub != 0 {
        ours - 1
    } else {
        ours
    }
}

/// Reads one `\n`-terminated line (carriage returns dropped), bounded.
pub fn read_line<R: BufRead>(r: &mut R) -> Result<Option<String>> {
    let mut buf = Vec::new();
    loop {
        let avail = r
            .fill_buf()
            .map_err(|e| Error::io("reading from daemon", e))?;
        if avail.is_empty() {
            if buf.is_empty() {
                return Ok(None);
            }
            break;
        }
        if let Some(pos) = avail.iter().position(|&b| b == b'\n') {
            buf.extend_from_slice(&avail[..pos]);
            r.consume(pos + 1);
            break;
        }
        let n = avail.len();
        buf.extend_from_slice(avail);
        r.consume(n);
        if buf.len() > MAX_LINE {
            return Err(Error::Protocol("daemon line too long".into()));
        }
    }
    buf.retain(|&b| b != b'\r');
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// Where the password comes from, consulted only if the daemon asks for one.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// Login name (stock falls back to $USER, $LOGNAME, then "nobody").
    pub user: Option<String>,
    /// `--password-file` (`-` = stdin).
    pub password_file: Option<std::path::PathBuf>,
    /// `RSYNC_PASSWORD` as read by the caller.
    pub env_password: Option<String>,
    /// `--early-input`: a file whose bytes (up to [`MAX_EARLY_INPUT`]) go to the module's
    /// `early exec` command.
    pub early_input: Option<std::path::PathBuf>,
}

/// The most `--early-input` bytes a daemon accepts (stock's client-side bound).
pub const MAX_EARLY_INPUT: usize = 5120;

/// Reads the `--early-input` file the way stock does: no symlink another user planted on
/// the way is followed, and a file over [`MAX_EARLY_INPUT`] bytes is an error.
fn read_early_input(path: &std::path::Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let f = rtsync_tree::open_no_attacker_symlinks(path)
        .map_err(|e| Error::file(format!("failed to open {}", path.display()), e))?;
    let mut data = Vec::new();
    f.take(MAX_EARLY_INPUT as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| Error::file(format!("failed to open {}", path.display()), e))?;
    if data.len() > MAX_EARLY_INPUT {
        return Err(Error::Startup(format!(
            "{} is > {MAX_EARLY_INPUT} bytes.",
            path.display()
        )));
    }
    Ok(data)
}

impl Credentials {
    fn user(&self) -> String {
        self.user
            .clone()
            .filter(|u| !u.is_empty())
            .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
            .or_else(|| std::env::var("LOGNAME").ok().filter(|u| !u.is_empty()))
            .unwrap_or_else(|| "nobody".into())
    }

    /// The password: first line of the password file, else RSYNC_PASSWORD, else asked on
    /// the terminal (empty without one).
    pub fn password(&self) -> Result<Vec<u8>> {
        if let Some(path) = &self.password_file {
            return read_password_file(path);
        }
        if let Some(p) = &self.env_password {
            return Ok(p.clone().into_bytes());
        }
        Ok(prompt_password().unwrap_or_default())
    }
}

/// Asks for the password on /dev/tty with echo off, as getpass(3) does for stock.
fn prompt_password() -> Option<Vec<u8>> {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()?;
    let fd = tty.as_raw_fd();
    // SAFETY: termios is plain data; tcgetattr fills it for a valid terminal fd.
    let mut old: libc::termios = unsafe { std::mem::zeroed() };
    let is_tty = unsafe { libc::tcgetattr(fd, &mut old) } == 0;
    if is_tty {
        let mut quiet = old;
        quiet.c_lflag &= !libc::ECHO;
        // SAFETY: valid fd and termios.
        unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &quiet) };
    }
    let _ = tty.write_all(b"Password: ");
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while let Ok(1) = tty.read(&mut b) {
        if b[0] == b'\n' || line.len() > 4096 {
            break;
        }
        line.push(b[0]);
    }
    if is_tty {
        // SAFETY: restores the settings read above.
        unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &old) };
    }
    let _ = tty.write_all(b"\n");
    line.retain(|&c| c != b'\r');
    Some(line)
}

/// Reads a password file as stock does: refuses files other users can read or write
/// (exit 1, stock's message), and root-run clients need root-owned files.
pub fn read_password_file(path: &std::path::Path) -> Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let mut content = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .lock()
            .read_until(b'\n', &mut content)
            .map_err(|e| Error::file("reading password from stdin", e))?;
    } else {
        // An operator path: our own and root's symlinks are followed, nobody else's.
        let mut f = rtsync_oppath::open(path, libc::O_RDONLY, 0)
            .map(std::fs::File::from)
            .map_err(|e| {
                if rtsync_oppath::is_refusal(&e) {
                    eprintln!("{}", rtsync_oppath::REFUSAL);
                }
                Error::PasswordFile(format!(
                    "could not open password file {}: {e}",
                    path.display()
                ))
            })?;
        let meta = f
            .metadata()
            .map_err(|e| Error::PasswordFile(format!("fstat({}): {e}", path.display())))?;
        if meta.mode() & 0o6 != 0 {
            return Err(Error::PasswordFile(
                "ERROR: password file must not be other-accessible".into(),
            ));
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 && meta.uid() != 0 {
            return Err(Error::PasswordFile(
                "ERROR: password file must be owned by root when running as root".into(),
            ));
        }
        Read::by_ref(&mut f)
            .take(511)
            .read_to_end(&mut content)
            .map_err(|e| Error::file(format!("reading {}", path.display()), e))?;
    }
    let line = content
        .split(|&b| b == b'\n' || b == b'\r')
        .next()
        .unwrap_or_default();
    Ok(line.to_vec())
}

/// How the daemon answered our module request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaemonReply {
    /// `@RSYNCD: OK`: the transfer can start at this protocol.
    Ready { protocol: u32 },
    /// `@RSYNCD: EXIT` (end of a module listing).
    Exit,
}

/// Runs the greeting and the module request. `module` is the module name (empty to list
/// modules). MOTD and listing lines go to `messages` as INFO, as stock prints them;
/// an `@ERROR` line is returned as [`Error::Daemon`] (the caller prints it).
pub fn daemon_login<R: BufRead, W: Write>(
    r: &mut R,
    w: &mut W,
    our_protocol: u32,
    module: &str,
    creds: &Credentials,
    messages: &mut dyn MessageHandler,
) -> Result<DaemonReply> {
    daemon_login_with(r, w, our_protocol, module, creds, messages, &mut || {})
}

/// [`daemon_login`], calling `before_request` once the greetings are exchanged, just before
/// the module is asked for (where stock's client reports the arguments it will send).
pub fn daemon_login_with<R: BufRead, W: Write>(
    r: &mut R,
    w: &mut W,
    our_protocol: u32,
    module: &str,
    creds: &Credentials,
    messages: &mut dyn MessageHandler,
    before_request: &mut dyn FnMut(),
) -> Result<DaemonReply> {
    let io = |e| Error::io("writing to daemon", e);
    w.write_all(format_greeting(our_protocol).as_bytes())
        .and_then(|_| w.flush())
        .map_err(io)?;
    // (A connection cut before the greeting, reset or not, is this one error for stock.)
    let line = match read_line(r) {
        Ok(Some(line)) => line,
        Ok(None) | Err(Error::Io { .. } | Error::UnexpectedEof { .. }) => {
            return Err(Error::Startup("did not see server greeting".into()))
        }
        Err(e) => return Err(e),
    };
    let greeting = parse_greeting(&line)?;
    if greeting.protocol < MIN_PROTOCOL {
        return Err(Error::Protocol(format!(
            "server speaks protocol {}; rtsync needs {MIN_PROTOCOL} or newer",
            greeting.protocol
        )));
    }
    let protocol = agreed_protocol(our_protocol, &greeting);
    if let Some(path) = &creds.early_input {
        let data = read_early_input(path)?;
        if !data.is_empty() {
            w.write_all(format!("#early_input={}\n", data.len()).as_bytes())
                .and_then(|_| w.write_all(&data))
                .map_err(io)?;
        }
    }
    before_request();
    w.write_all(format!("{module}\n").as_bytes())
        .and_then(|_| w.flush())
        .map_err(io)?;
    loop {
        let line =
            read_line(r)?.ok_or_else(|| Error::Startup("didn't get server startup line".into()))?;
        if let Some(challenge) = line.strip_prefix("@RSYNCD: AUTHREQD ") {
            let digest = AuthDigest::negotiate(greeting.digests.as_deref()).ok_or_else(|| {
                Error::Startup(format!(
                    "Failed to negotiate a daemon_auth choice. Server list: {}",
                    greeting.digests.clone().unwrap_or_default()
                ))
            })?;
            let password = creds.password()?;
            let response = auth_response(digest, &password, challenge.as_bytes());
            w.write_all(format!("{} {response}\n", creds.user()).as_bytes())
                .and_then(|_| w.flush())
                .map_err(io)?;
            continue;
        }
        if line == "@RSYNCD: OK" {
            return Ok(DaemonReply::Ready { protocol });
        }
        if line == "@RSYNCD: EXIT" {
            return Ok(DaemonReply::Exit);
        }
        if let Some(rest) = line.strip_prefix("@ERROR") {
            let rest = rest
                .strip_prefix(": ")
                .or(rest.strip_prefix(':'))
                .unwrap_or(rest);
            return Err(Error::Daemon(rest.to_string()));
        }
        let mut text = line.into_bytes();
        text.push(b'\n');
        messages.message(crate::mux::MsgTag::Info, &text);
    }
}

/// Sends the server arguments (`\0`-terminated, then an empty one) at protocol ≥ 30.
pub fn send_daemon_args<W: Write>(w: &mut W, args: &[String]) -> Result<()> {
    let mut out = Vec::new();
    for a in args {
        out.extend_from_slice(&crate::argtext::bytes(a));
        out.push(0);
    }
    out.push(0);
    w.write_all(&out)
        .and_then(|_| w.flush())
        .map_err(|e| Error::io("sending arguments to daemon", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mux::CollectMessages;

    #[test]
    fn password_file_follows_only_trusted_symlinks() {
        use std::os::unix::fs::{lchown, symlink, PermissionsExt};
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("pw"), "secret\n").unwrap();
        std::fs::set_permissions(real.join("pw"), std::fs::Permissions::from_mode(0o600)).unwrap();
        symlink(&real, t.path().join("mine")).unwrap();
        symlink(&real, t.path().join("theirs")).unwrap();
        // The suite runs as root, which can give a symlink to another uid.
        lchown(t.path().join("theirs"), Some(65534), Some(65534)).unwrap();
        assert_eq!(
            read_password_file(&t.path().join("mine/pw")).unwrap(),
            b"secret"
        );
        let err = read_password_file(&t.path().join("theirs/pw")).unwrap_err();
        assert!(err.to_string().contains("Too many levels"), "{err}");
    }

    #[test]
    fn greeting_table() {
        let ok = |p, s, d: Option<&str>| Greeting {
            protocol: p,
            sub: s,
            digests: d.map(str::to_string),
        };
        let cases: Vec<(&str, Option<Greeting>)> = vec![
            (
                "@RSYNCD: 32.0 sha512 sha256 sha1 md5 md4",
                Some(ok(32, 0, Some("sha512 sha256 sha1 md5 md4"))),
            ),
            ("@RSYNCD: 31.0", Some(ok(31, 0, None))),
            ("@RSYNCD: 32.0", None),
            ("@RSYNCD: 31", None),
            ("@RSYNCD: 29", Some(ok(29, 0, None))),
            ("HTTP/1.0 200 OK", None),
        ];
        for (line, want) in cases {
            assert_eq!(parse_greeting(line).ok(), want, "{line}");
        }
    }

    #[test]
    fn protocol_agreement() {
        let g = |p, s| Greeting {
            protocol: p,
            sub: s,
            digests: None,
        };
        assert_eq!(agreed_protocol(32, &g(32, 0)), 32);
        assert_eq!(agreed_protocol(32, &g(31, 0)), 31);
        assert_eq!(agreed_protocol(30, &g(32, 0)), 30);
        assert_eq!(agreed_protocol(32, &g(33, 1)), 32);
        assert_eq!(agreed_protocol(32, &g(32, 1)), 31);
    }

    #[test]
    fn login_with_auth_and_motd() {
        let server = b"@RSYNCD: 32.0 md5 md4\nWelcome\n@RSYNCD: AUTHREQD abcdef\n@RSYNCD: OK\n";
        let mut sent = Vec::new();
        let creds = Credentials {
            user: Some("alice".into()),
            env_password: Some("pw".into()),
            ..Default::default()
        };
        let mut msgs = CollectMessages::default();
        let reply =
            daemon_login(&mut &server[..], &mut sent, 32, "mod", &creds, &mut msgs).unwrap();
        assert_eq!(reply, DaemonReply::Ready { protocol: 32 });
        let sent = String::from_utf8(sent).unwrap();
        let want_resp = auth_response(AuthDigest::Md5, b"pw", b"abcdef");
        assert_eq!(
            sent,
            format!("{}mod\nalice {want_resp}\n", format_greeting(32))
        );
        assert_eq!(msgs.messages.len(), 1);
    }

    #[test]
    fn error_line_is_returned() {
        let server = b"@RSYNCD: 32.0 md5\n@ERROR: Unknown module 'nope'\n";
        let err = daemon_login(
            &mut &server[..],
            &mut Vec::new(),
            32,
            "nope",
            &Credentials::default(),
            &mut CollectMessages::default(),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "@ERROR: Unknown module 'nope'");
        assert_eq!(err.exit_code(), 5);
    }
}
