//! Transports: a TCP connection to a daemon (with `--port`, `--address`, `--contimeout`,
//! `RSYNC_CONNECT_PROG`), or a remote shell running `rsync --server`.
//!
//! Every socket gets TCP_NODELAY; writers above us coalesce, so small packets are not a cost.

use std::io::{self, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::error::{Error, Result};

/// rsync's default daemon port.
pub const RSYNC_PORT: u16 = 873;

/// An open byte stream to the peer, split into its two directions.
pub struct Connection {
    pub reader: BufReader<Box<dyn Read + Send>>,
    pub writer: Box<dyn Write + Send>,
    /// Closes both directions (to unblock a thread stuck reading when the other fails).
    pub closer: Closer,
}

/// How to tear a connection down from another thread.
pub enum Closer {
    Tcp(TcpStream),
    Child(std::sync::Arc<std::sync::Mutex<Child>>),
    /// A connect program on a socket: the socket is shut down and the program killed (a
    /// daemon it started may have forked away from it and still hold the other end).
    SocketChild(TcpStream, std::sync::Arc<std::sync::Mutex<Child>>),
    /// A socket known by its descriptor (the daemon's accepted connection).
    Fd(std::os::fd::RawFd),
    None,
}

impl Closer {
    /// Shuts the connection down; reads on the other side return EOF or an error.
    pub fn close(&self) {
        match self {
            Closer::Tcp(s) => {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
            Closer::Child(c) => {
                if let Ok(mut c) = c.lock() {
                    let _ = c.kill();
                }
            }
            Closer::SocketChild(s, c) => {
                let _ = s.shutdown(std::net::Shutdown::Both);
                if let Ok(mut c) = c.lock() {
                    let _ = c.kill();
                }
            }
            Closer::Fd(fd) => {
                // Only the reading side: that unblocks the thread waiting for the peer, and
                // the error that ended the session can still be sent to it.
                // SAFETY: shutdown(2) on a descriptor the caller keeps open; errors ignored.
                unsafe { libc::shutdown(*fd, libc::SHUT_RD) };
            }
            Closer::None => {}
        }
    }

    /// A remote-shell child's exit code if it exits within `limit` (None for a socket, or a
    /// child still running or killed by a signal).
    pub fn wait_briefly(&self, limit: std::time::Duration) -> Option<i32> {
        let (Closer::Child(c) | Closer::SocketChild(_, c)) = self else {
            return None;
        };
        let until = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = c.lock().ok()?.try_wait().ok()? {
                return status.code();
            }
            if std::time::Instant::now() >= until {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Waits for a remote-shell child, returning its exit code.
    pub fn wait(&self) -> Option<i32> {
        match self {
            Closer::Child(c) | Closer::SocketChild(_, c) => c.lock().ok()?.wait().ok()?.code(),
            _ => None,
        }
    }
}

/// Parameters for reaching a daemon.
#[derive(Debug, Clone, Default)]
pub struct DaemonAddress {
    pub host: String,
    pub port: Option<u16>,
    /// `--address`: local address to bind.
    pub bind: Option<String>,
    /// `--contimeout` in seconds (0 = none).
    pub contimeout: u64,
    /// `RSYNC_CONNECT_PROG`: a command whose stdin/stdout replace the socket (`%H` = host).
    pub connect_prog: Option<String>,
    /// `--timeout` in seconds (0 = none): a read or write that waits longer fails (exit 30).
    pub io_timeout: u64,
    /// `RSYNC_PROXY` (`[USER:PASS@]HOST:PORT`): reach the daemon through an HTTP proxy's
    /// CONNECT method.
    pub proxy: Option<String>,
    /// `--debug=connect` level (`-vv` gives 1, `-vvv` 2): the steps of connecting are
    /// reported on stdout as stock's client reports them.
    pub debug_connect: u32,
    /// `--debug=cmd` level (`-vv` gives 1): the `RSYNC_CONNECT_PROG` command is shown.
    pub debug_cmd: u32,
}

/// Prints one line of the client's informational output (stock's FINFO: stdout).
pub(crate) fn info_line(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Stock's `print_child_argv`: the prefix, each word (in double quotes when it holds
/// anything besides letters, digits and `,.-_=+@/`), then the word count.
pub fn child_argv_line<S: AsRef<str>>(prefix: &str, words: &[S]) -> String {
    let mut line = format!("{prefix} ");
    for w in words {
        let w = w.as_ref();
        let plain = w
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ",.-_=+@/".contains(c));
        if plain {
            line.push_str(&format!("{w} "));
        } else {
            line.push_str(&format!("\"{w}\" "));
        }
    }
    line.push_str(&format!(" ({} args)", words.len()));
    line
}

/// Connects to a daemon.
pub fn connect_daemon(addr: &DaemonAddress) -> Result<Connection> {
    let port = addr.port.unwrap_or(RSYNC_PORT);
    let target_host = addr.host.trim_start_matches('[').trim_end_matches(']');
    if let Some(prog) = &addr.connect_prog {
        let cmd = connect_prog_command(prog, &addr.host)?;
        if addr.debug_connect >= 1 {
            info_line(&format!(
                "Using RSYNC_CONNECT_PROG instead of opening tcp connection to {target_host} port {port}"
            ));
        }
        if addr.debug_cmd >= 1 {
            info_line(&format!("Running socket program: \"{cmd}\""));
        }
        return spawn_on_socket(Command::new("sh").arg("-c").arg(cmd));
    }
    if addr.debug_connect >= 1 {
        info_line(&format!(
            "opening tcp connection to {target_host} port {port}"
        ));
    }
    let proxy = match addr.proxy.as_deref().filter(|p| !p.is_empty()) {
        Some(spec) => Some(Proxy::parse(spec)?),
        None => None,
    };
    if let (Some(p), true) = (&proxy, addr.debug_connect >= 1) {
        info_line(&format!(
            "connection via http proxy {} port {}",
            p.host, p.port
        ));
    }
    let (host, port) = match &proxy {
        Some(p) => (p.host.as_str(), p.port),
        None => (target_host, port),
    };
    let targets: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| Error::Socket(format!("getaddrinfo: {host} {port}: {e}")))?
        .collect();
    let mut last_err = None;
    let mut last_ip = None;
    let mut last_proxy_err = None;
    for target in targets {
        last_ip = Some(target.ip());
        match connect_one(target, addr.bind.as_deref(), addr.contimeout) {
            Ok(mut stream) => {
                if let Some(p) = &proxy {
                    let target_port = addr.port.unwrap_or(RSYNC_PORT);
                    if let Err(e) = p.connect_through(&mut stream, target_host, target_port) {
                        last_proxy_err = Some(e);
                        continue;
                    }
                }
                if addr.debug_connect >= 2 {
                    info_line(&format!("Connected to {host} ({})", target.ip()));
                }
                if addr.io_timeout > 0 {
                    let t = Some(Duration::from_secs(addr.io_timeout));
                    let _ = stream.set_read_timeout(t);
                    let _ = stream.set_write_timeout(t);
                }
                return tcp_connection(stream);
            }
            Err(e) => last_err = Some(e),
        }
    }
    if let Some(e) = last_proxy_err {
        return Err(e);
    }
    Err(match last_err {
        Some(e) if e.kind() == io::ErrorKind::TimedOut && addr.contimeout > 0 => {
            Error::ConnectTimeout(format!("{host} ({port})"))
        }
        Some(e) => Error::Socket(
            format!(
                "failed to connect to {host} ({}): {}",
                last_ip.map_or_else(|| host.to_string(), |ip| ip.to_string()),
                crate::client::strerror(&e),
            ) + &e
                .raw_os_error()
                .map_or_else(String::new, |n| format!(" ({n})")),
        ),
        None => Error::Socket(format!("failed to connect to {host}: no addresses")),
    })
}

/// An HTTP proxy from `RSYNC_PROXY`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Proxy {
    host: String,
    port: u16,
    /// `user:pass` for Basic authorization.
    credentials: Option<String>,
}

/// Longest CONNECT request, and longest response or header line, accepted (stock's buffer).
const PROXY_BUF: usize = 1024;

impl Proxy {
    /// Parses `[USER:PASS@]HOST:PORT` with stock's messages.
    fn parse(spec: &str) -> Result<Proxy> {
        let (credentials, hostport) = match spec.rsplit_once('@') {
            Some((cred, rest)) => {
                if !cred.contains(':') {
                    return Err(Error::Socket(
                        "invalid proxy specification: should be USER:PASS@HOST:PORT".into(),
                    ));
                }
                (Some(cred.to_string()), rest)
            }
            None => (None, spec),
        };
        let Some((host, port)) = hostport.split_once(':') else {
            return Err(Error::Socket(
                "invalid proxy specification: should be HOST:PORT".into(),
            ));
        };
        let port = port.parse().map_err(|_| {
            Error::Socket(format!(
                "getaddrinfo: {host} {port}: Servname not supported for ai_socktype"
            ))
        })?;
        Ok(Proxy {
            host: host.to_string(),
            port,
            credentials,
        })
    }

    /// Asks the proxy to CONNECT to `host:port` and reads its answer: a `2xx` status line,
    /// then headers up to an empty line, each line bounded.
    fn connect_through<S: Read + Write>(&self, s: &mut S, host: &str, port: u16) -> Result<()> {
        let fail = |m: &str| Err(Error::Socket(m.to_string()));
        if host.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return fail("invalid control character in proxy CONNECT host");
        }
        let auth = match &self.credentials {
            Some(c) => {
                if (c.len() * 8).div_ceil(6) >= PROXY_BUF - 3 {
                    return fail("authentication information is too long");
                }
                format!("\r\nProxy-Authorization: Basic {}", base64(c.as_bytes()))
            }
            None => String::new(),
        };
        let request = format!("CONNECT {host}:{port} HTTP/1.0{auth}\r\n\r\n");
        if request.len() >= PROXY_BUF {
            return fail("proxy CONNECT request too long");
        }
        s.write_all(request.as_bytes())
            .and_then(|_| s.flush())
            .map_err(|e| Error::Socket(format!("failed to write to proxy: {e}")))?;
        let status = match read_proxy_line(s)? {
            Some(l) => l,
            None => return fail("proxy response line too long"),
        };
        let after_version = status
            .strip_prefix("HTTP/")
            .map(|r| r.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.'))
            .map(|r| r.trim_start_matches(' '));
        if !after_version.is_some_and(|r| r.starts_with('2')) {
            return Err(Error::Socket(format!(
                "bad response from proxy -- {status}"
            )));
        }
        loop {
            match read_proxy_line(s)? {
                None => return fail("proxy response header line too long"),
                Some(l) if l.is_empty() => return Ok(()),
                Some(_) => {}
            }
        }
    }
}

/// One line from the proxy without its `\r\n`; `None` when it is longer than stock's buffer.
fn read_proxy_line<S: Read>(s: &mut S) -> Result<Option<String>> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b) {
            Ok(1) if b[0] == b'\n' => break,
            Ok(1) => {
                if line.len() >= PROXY_BUF - 2 {
                    return Ok(None);
                }
                line.push(b[0]);
            }
            Ok(_) => {
                return Err(Error::Socket(
                    "failed to read from proxy: unexpected end of file".into(),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Socket(format!("failed to read from proxy: {e}"))),
        }
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Some(String::from_utf8_lossy(&line).into_owned()))
}

/// Standard base64 with padding.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn connect_one(target: SocketAddr, bind: Option<&str>, contimeout: u64) -> io::Result<TcpStream> {
    match bind {
        None if contimeout > 0 => {
            TcpStream::connect_timeout(&target, Duration::from_secs(contimeout))
        }
        None => TcpStream::connect(target),
        Some(local) => connect_bound(target, local, contimeout),
    }
}

/// Connects from a chosen local address (`--address`).
fn connect_bound(target: SocketAddr, local: &str, contimeout: u64) -> io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    let ip: IpAddr = local
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "bad --address"))?;
    let local = SocketAddr::new(ip, 0);
    let family = if local.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket(2) call; the fd is owned by the TcpStream below.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh socket we own.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    let (storage, len) = sockaddr(&local);
    // SAFETY: storage holds a valid sockaddr of `len` bytes.
    if unsafe { libc::bind(fd, (&storage as *const libc::sockaddr_storage).cast(), len) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let (storage, len) = sockaddr(&target);
    // Blocking connect; --contimeout with --address falls back to the kernel's timeout.
    let _ = contimeout;
    // SAFETY: as above.
    if unsafe { libc::connect(fd, (&storage as *const libc::sockaddr_storage).cast(), len) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(stream)
}

fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            (
                storage,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            (
                storage,
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    }
}

/// Wraps a connected socket.
pub fn tcp_connection(stream: TcpStream) -> Result<Connection> {
    stream
        .set_nodelay(true)
        .map_err(|e| Error::Socket(format!("setsockopt TCP_NODELAY: {e}")))?;
    let clone = |s: &TcpStream| {
        s.try_clone()
            .map_err(|e| Error::Socket(format!("dup socket: {e}")))
    };
    let reader = QuickAck(clone(&stream)?);
    let closer = clone(&stream)?;
    Ok(Connection {
        reader: BufReader::with_capacity(64 * 1024, Box::new(reader)),
        writer: Box::new(stream),
        closer: Closer::Tcp(closer),
    })
}

/// A socket reader that asks for immediate ACKs before every read.
///
/// A stock peer leaves Nagle on: after one small segment it holds the next until our ACK
/// arrives, and Linux delays that ACK by up to 40 ms when we have nothing to send. Seen on
/// loopback as two ~42 ms stalls per small transfer (seed after the negotiation strings,
/// statistics after the last phase). TCP_QUICKACK is not sticky, so it is set per read.
pub struct QuickAck(pub TcpStream);

impl Read for QuickAck {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        set_quickack(&self.0);
        let n = self.0.read(buf)?;
        set_quickack(&self.0);
        Ok(n)
    }
}

/// [`QuickAck`] for any reader over a socket whose descriptor is known (the daemon hands the
/// server role a boxed reader plus the socket fd).
pub struct QuickAckFd<R> {
    inner: R,
    fd: std::os::fd::RawFd,
}

impl<R: Read> QuickAckFd<R> {
    /// `fd` must stay open as long as this reader is used (it is only passed to setsockopt).
    pub fn new(inner: R, fd: std::os::fd::RawFd) -> QuickAckFd<R> {
        QuickAckFd { inner, fd }
    }
}

impl<R: Read> Read for QuickAckFd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        set_quickack_fd(self.fd);
        let n = self.inner.read(buf)?;
        set_quickack_fd(self.fd);
        Ok(n)
    }
}

fn set_quickack(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    set_quickack_fd(s.as_raw_fd());
}

fn set_quickack_fd(fd: std::os::fd::RawFd) {
    let one: libc::c_int = 1;
    // SAFETY: a valid socket fd and a c_int option value of the right size. Failure is
    // harmless (only latency), so the result is ignored.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Runs a command whose stdin/stdout are the connection (remote shell, connect program).
pub fn spawn(cmd: &mut Command) -> Result<Connection> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|source| Error::ExecFailed {
            program: cmd.get_program().to_string_lossy().into_owned(),
            source,
        })?;
    let stdin = child.stdin.take().expect("piped");
    let stdout = child.stdout.take().expect("piped");
    Ok(Connection {
        reader: BufReader::with_capacity(64 * 1024, Box::new(stdout)),
        writer: Box::new(stdin),
        closer: Closer::Child(std::sync::Arc::new(std::sync::Mutex::new(child))),
    })
}

/// Expands `%H` (the host, single-quoted) and `%%` in `RSYNC_CONNECT_PROG`; any other `%`
/// stays. A command that names the host is run by a shell, possibly re-parsed by a nested
/// one, so the host must be made of characters that stay data there (as stock rsync).
fn connect_prog_command(prog: &str, host: &str) -> Result<String> {
    if !prog.contains('%') {
        return Ok(prog.to_string());
    }
    let safe_char = |c: char| c.is_ascii_alphanumeric() || "._:-%+~".contains(c);
    if host.is_empty() || host.starts_with(['-', '+', '~', '%']) || !host.chars().all(safe_char) {
        return Err(Error::Socket(
            "unsafe host characters for RSYNC_CONNECT_PROG".into(),
        ));
    }
    let quoted = format!("'{host}'");
    let mut out = String::with_capacity(prog.len() + quoted.len());
    let mut chars = prog.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.peek() {
                Some('%') => {
                    chars.next();
                }
                Some('H') => {
                    chars.next();
                    out.push_str(&quoted);
                    continue;
                }
                _ => {}
            }
        }
        out.push(c);
    }
    Ok(out)
}

/// Runs a connect program whose stdin and stdout are one end of a loopback TCP connection,
/// as stock rsync does: a daemon started as `rsync --daemon` serves its stdin only when it
/// is a socket (inetd mode), and it names the peer from that socket's address (127.0.0.1,
/// which `hosts allow = localhost` admits).
pub fn spawn_on_socket(cmd: &mut Command) -> Result<Connection> {
    let startup = |e: io::Error| Error::Startup(format!("socketpair_tcp failed: {e}"));
    let (ours, theirs) = tcp_pair().map_err(startup)?;
    let theirs_out = theirs.try_clone().map_err(startup)?;
    let child = cmd
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(theirs_out)))
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|source| Error::ExecFailed {
            program: cmd.get_program().to_string_lossy().into_owned(),
            source,
        })?;
    // `cmd` still holds the child's ends; replace them so they are closed now and the
    // child sees end-of-file when we close ours.
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    let socket = ours.try_clone().map_err(startup)?;
    let mut conn = tcp_connection(ours)?;
    conn.closer = Closer::SocketChild(socket, std::sync::Arc::new(std::sync::Mutex::new(child)));
    Ok(conn)
}

/// A connected pair of loopback TCP sockets. The listener accepts exactly one connection
/// and checks that it is ours (another local process racing to connect first is refused).
fn tcp_pair() -> io::Result<(TcpStream, TcpStream)> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    let ours = TcpStream::connect(listener.local_addr()?)?;
    let (theirs, peer) = listener.accept()?;
    if peer != ours.local_addr()? {
        return Err(io::Error::other(
            "unexpected connection on the loopback pair",
        ));
    }
    Ok((ours, theirs))
}

/// Counts the bytes that pass through a reader or writer (for rsync's `sent`/`received`).
pub struct Counting<T> {
    inner: T,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<T> Counting<T> {
    pub fn new(inner: T) -> Counting<T> {
        Counting {
            inner,
            count: Default::default(),
        }
    }

    /// A handle that reads the count from anywhere.
    pub fn counter(&self) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
        self.count.clone()
    }

    fn add(&self, n: usize) {
        self.count
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
    }
}

impl<T: Read> Read for Counting<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.add(n);
        Ok(n)
    }
}

impl<T: Write> Write for Counting<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.add(n);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Splits a `-e` command the way rsync does: whitespace separates words, single and double
/// quotes group, backslash escapes inside double quotes and outside quotes.
pub fn split_shell_command(cmd: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut have = false;
    let mut chars = cmd.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('\''), '\'') => quote = None,
            (Some('"'), '"') => quote = None,
            (Some('"'), '\\') | (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                have = true;
            }
            (None, c) if c.is_whitespace() => {
                if have || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    have = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if have || !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_split_table() {
        let cases: &[(&str, &[&str])] = &[
            ("ssh", &["ssh"]),
            ("ssh -p 2222", &["ssh", "-p", "2222"]),
            ("  ssh   -x ", &["ssh", "-x"]),
            ("sh -c 'a b'", &["sh", "-c", "a b"]),
            ("x \"a\\\"b\" ''", &["x", "a\"b", ""]),
        ];
        for &(cmd, want) in cases {
            assert_eq!(split_shell_command(cmd), want, "{cmd}");
        }
    }

    #[test]
    fn connect_prog_is_used_instead_of_a_socket() {
        let addr = DaemonAddress {
            host: "myhost".into(),
            connect_prog: Some("echo hello %H".into()),
            ..Default::default()
        };
        let mut c = connect_daemon(&addr).unwrap();
        let mut s = String::new();
        c.reader.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello myhost\n");
        c.closer.wait();
    }

    #[test]
    fn connect_prog_runs_on_a_loopback_socket() {
        // A daemon started as `rsync --daemon` serves its stdin only if it is a socket.
        let addr = DaemonAddress {
            host: "h".into(),
            connect_prog: Some("test -S /dev/stdin && test -S /dev/stdout && echo socket".into()),
            ..Default::default()
        };
        let mut c = connect_daemon(&addr).unwrap();
        let mut s = String::new();
        c.reader.read_to_string(&mut s).unwrap();
        assert_eq!(s, "socket\n");
        c.closer.wait();
    }

    #[test]
    fn proxy_specs_and_answers_like_stock() {
        let p = Proxy::parse("joe:secret@proxy.example:3128").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("proxy.example", 3128));
        assert_eq!(p.credentials.as_deref(), Some("joe:secret"));
        for (bad, msg) in [
            ("joe@h:1", "USER:PASS@HOST:PORT"),
            ("hostonly", "should be HOST:PORT"),
        ] {
            let e = Proxy::parse(bad).unwrap_err().to_string();
            assert!(e.contains(msg), "{bad}: {e}");
        }
        assert_eq!(base64(b"joe:secret"), "am9lOnNlY3JldA==");
        assert_eq!(base64(b"ab"), "YWI=");
        // A stream that answers with `reply` and records what was written.
        struct Peer(std::io::Cursor<Vec<u8>>, Vec<u8>);
        impl Read for Peer {
            fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
                self.0.read(b)
            }
        }
        impl Write for Peer {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.1.extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let run = |reply: Vec<u8>, host: &str| {
            let mut peer = Peer(std::io::Cursor::new(reply), Vec::new());
            let r = p.connect_through(&mut peer, host, 873);
            (
                r.map_err(|e| e.to_string()),
                String::from_utf8(peer.1).unwrap(),
            )
        };
        let (ok, sent) = run(b"HTTP/1.1 200 OK\r\nVia: x\r\n\r\nrest".to_vec(), "daemon");
        assert!(ok.is_ok());
        assert_eq!(
            sent,
            "CONNECT daemon:873 HTTP/1.0\r\nProxy-Authorization: Basic am9lOnNlY3JldA==\r\n\r\n"
        );
        let long = |prefix: &str| [prefix.as_bytes(), &[b'x'; 2000][..], b"\n"].concat();
        for (reply, want) in [
            (
                b"HTTP/1.0 407 Auth\r\n\r\n".to_vec(),
                "bad response from proxy -- HTTP/1.0 407 Auth",
            ),
            (
                b"SSH-2.0\r\n".to_vec(),
                "bad response from proxy -- SSH-2.0",
            ),
            (long("HTTP/1.0 200 "), "proxy response line too long"),
            (
                [&b"HTTP/1.0 200 OK\r\n"[..], &long("X: ")].concat(),
                "proxy response header line too long",
            ),
        ] {
            let (got, _) = run(reply, "daemon");
            assert!(got.as_ref().unwrap_err().contains(want), "{got:?}");
        }
        let (got, sent) = run(Vec::new(), &"a".repeat(1100));
        assert!(got.unwrap_err().contains("proxy CONNECT request too long"));
        assert!(sent.is_empty());
        let (got, _) = run(Vec::new(), "bad\r\nhost");
        assert!(got.unwrap_err().contains("invalid control character"));
    }

    #[test]
    fn connect_prog_host_is_quoted_and_checked() {
        assert_eq!(
            connect_prog_command("nc %H 873 %% %x %", "a.b-c").unwrap(),
            "nc 'a.b-c' 873 % %x %"
        );
        assert_eq!(connect_prog_command("plain", "x;y").unwrap(), "plain");
        for bad in ["", "-oProxy", "a'b", "a b", "a;b", "$(x)", "~x"] {
            let e = connect_prog_command("ssh %H", bad).unwrap_err();
            assert!(
                e.to_string().contains("unsafe host characters"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn loopback_connect_with_and_without_bind() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        for bind in [None, Some("127.0.0.1".to_string())] {
            let addr = DaemonAddress {
                host: "127.0.0.1".into(),
                port: Some(port),
                bind,
                contimeout: 5,
                ..Default::default()
            };
            let mut c = connect_daemon(&addr).unwrap();
            let (mut s, _) = l.accept().unwrap();
            c.writer.write_all(b"ping").unwrap();
            let mut b = [0u8; 4];
            s.read_exact(&mut b).unwrap();
            assert_eq!(&b, b"ping");
        }
    }
}
