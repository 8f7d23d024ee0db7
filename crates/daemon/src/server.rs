//! The listening daemon: sockets, one forked process per connection (each then chroots and
//! drops privileges on its own, so a misbehaving client only ever affects its own process),
//! the pid file, detaching, and the inetd / remote-shell single-connection modes.

use std::ffi::CString;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicPtr, Ordering};

use crate::config::Config;
use crate::log::Logger;
use crate::session::{self, Conn, DaemonOptions, Mode, TransferHandler};

/// rsync's registered port.
pub const DEFAULT_PORT: u16 = 873;

/// Listener settings from the command line (the config supplies what is not given).
#[derive(Debug, Clone, Default)]
pub struct ListenOptions {
    /// `--port`.
    pub port: Option<u16>,
    /// `--address`.
    pub address: Option<String>,
    /// `--no-detach`: stay in the foreground (systemd, tests).
    pub no_detach: bool,
    /// `-4` / `-6`.
    pub family: Option<Family>,
    /// `--sockopts`.
    pub sockopts: Option<String>,
}

/// Address family restriction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration does not load.
    #[error("Failed to parse config file: {0}")]
    Config(String),
    /// No socket could be bound.
    #[error("unable to bind any inbound sockets on port {port}: {source}")]
    Bind {
        /// The port.
        port: u16,
        /// The last error.
        #[source]
        source: io::Error,
    },
    /// The pid file could not be written (or is locked by a running daemon).
    #[error("failed to {what} pid file {path}: {}", crate::log::sys_error(source).rsplit_once(" (").map_or(source.to_string(), |(t, _)| t.to_string()))]
    PidFile {
        /// What failed: "create", "lock", "write".
        what: &'static str,
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// `--address` is not an address.
    #[error("invalid address {0}")]
    Address(String),
    /// fork(2) failed.
    #[error("failed to fork: {0}")]
    Fork(io::Error),
}

/// The pid file path, for removal from the termination signal handler.
static PID_FILE: AtomicPtr<libc::c_char> = AtomicPtr::new(std::ptr::null_mut());

/// The write end of the accept loop's wake-up pipe (-1 until the loop runs): a termination
/// signal then only wakes the loop, which logs stock's closing line and exits.
static TERM_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_terminate(sig: libc::c_int) {
    let w = TERM_PIPE.load(Ordering::SeqCst);
    if w >= 0 {
        let b = sig as u8;
        // SAFETY: write(2) of one byte from the stack is async-signal-safe.
        if unsafe { libc::write(w, std::ptr::addr_of!(b).cast(), 1) } == 1 {
            return;
        }
    }
    remove_pid_file();
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(128 + sig) };
}

/// Removes the pid file (async-signal-safe: called from the signal handler too).
fn remove_pid_file() {
    let p = PID_FILE.load(Ordering::SeqCst);
    if !p.is_null() {
        // SAFETY: p is a leaked NUL-terminated string; unlink and _exit are async-signal-safe.
        unsafe { libc::unlink(p) };
    }
}

/// Creates and locks the pid file; the lock (held for the daemon's life) keeps a second daemon
/// with the same pid file from starting, as stock does.
fn write_pid_file(path: &str) -> Result<(), ServerError> {
    if path.is_empty() {
        return Ok(());
    }
    let err = |what, source| ServerError::PidFile {
        what,
        path: path.to_string(),
        source,
    };
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    crate::privs::check_trusted_path(std::path::Path::new(path)).map_err(|e| err("create", e))?;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o664)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| err("create", e))?;
    // SAFETY: flock is plain data; F_SETLK on our own descriptor.
    let locked = unsafe {
        let mut fl: libc::flock = std::mem::zeroed();
        fl.l_type = libc::F_WRLCK as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        fl.l_len = 4;
        libc::fcntl(f.as_raw_fd(), libc::F_SETLK, &fl) == 0
    };
    if !locked {
        return Err(err("lock", io::Error::last_os_error()));
    }
    f.set_len(0).map_err(|e| err("truncate", e))?;
    writeln!(f, "{}", std::process::id()).map_err(|e| err("write", e))?;
    // Keep the descriptor (and so the lock) for the daemon's life.
    let _ = f.into_raw_fd();
    let c = CString::new(path).map_err(|_| err("create", io::ErrorKind::InvalidInput.into()))?;
    PID_FILE.store(c.into_raw(), Ordering::SeqCst);
    Ok(())
}

fn install_signals() {
    // SAFETY: installing handlers/dispositions for standard signals.
    unsafe {
        libc::signal(
            libc::SIGTERM,
            on_terminate as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGINT,
            on_terminate as *const () as libc::sighandler_t,
        );
        // The config is re-read for every connection, so a reload signal has nothing to do.
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        // Children are reaped by the kernel; each connection process restores the default.
        libc::signal(libc::SIGCHLD, libc::SIG_IGN);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

fn become_daemon() -> Result<(), ServerError> {
    // SAFETY: single-threaded at this point; the parent exits at once.
    match unsafe { libc::fork() } {
        -1 => Err(ServerError::Fork(io::Error::last_os_error())),
        0 => {
            // SAFETY: detaching from the terminal and pointing stdio at /dev/null.
            unsafe {
                libc::setsid();
                let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
                if null >= 0 {
                    for fd in 0..3 {
                        libc::dup2(null, fd);
                    }
                    if null > 2 {
                        libc::close(null);
                    }
                }
            }
            Ok(())
        }
        // SAFETY: the parent leaves without running destructors, as a detaching daemon does.
        _ => unsafe { libc::_exit(0) },
    }
}

fn bind_all(
    config: &Config,
    opts: &ListenOptions,
    port: u16,
) -> Result<Vec<TcpListener>, ServerError> {
    let address = opts
        .address
        .clone()
        .filter(|a| !a.is_empty())
        .or_else(|| Some(config.address()).filter(|a| !a.is_empty()));
    let addrs: Vec<SocketAddr> = match address {
        Some(a) => {
            let ip: IpAddr = a.parse().map_err(|_| ServerError::Address(a.clone()))?;
            vec![SocketAddr::new(ip, port)]
        }
        None => {
            let mut v = Vec::new();
            if opts.family != Some(Family::V4) {
                v.push(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port));
            }
            if opts.family != Some(Family::V6) {
                v.push(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
            }
            v
        }
    };
    let backlog = config.listen_backlog().clamp(1, 4096) as i32;
    let mut listeners = Vec::new();
    let mut last = None;
    for a in addrs {
        match listen_on(a, backlog) {
            Ok(l) => listeners.push(l),
            Err(e) => last = Some(e),
        }
    }
    if listeners.is_empty() {
        return Err(ServerError::Bind {
            port,
            source: last.unwrap_or_else(|| io::ErrorKind::AddrNotAvailable.into()),
        });
    }
    Ok(listeners)
}

fn listen_on(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket calls; the fd is owned by the TcpListener on success.
    unsafe {
        let fd = libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let listener = TcpListener::from_raw_fd(fd);
        let one: libc::c_int = 1;
        let size = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        let p = (&one as *const libc::c_int).cast();
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, p, size);
        if domain == libc::AF_INET6 {
            libc::setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, p, size);
        }
        let (storage, len) = sockaddr(addr);
        if libc::bind(fd, (&storage as *const libc::sockaddr_storage).cast(), len) < 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::listen(fd, backlog) < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(listener)
    }
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: zeroed sockaddr_storage is valid; we write a sockaddr_in/in6 into it.
    let mut s: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: storage is large and aligned enough.
            unsafe { std::ptr::write((&mut s as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above.
            unsafe { std::ptr::write((&mut s as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (s, len as libc::socklen_t)
}

/// Applies `socket options` / `--sockopts` (`SO_KEEPALIVE`, `TCP_NODELAY`, `SO_SNDBUF=n`, …).
pub fn apply_socket_options(fd: RawFd, spec: &str) {
    for opt in spec.split([',', ' ']).filter(|s| !s.is_empty()) {
        let (name, value) = match opt.split_once('=') {
            Some((n, v)) => (n, v.parse::<libc::c_int>().unwrap_or(1)),
            None => (opt, 1),
        };
        let (level, id) = match name.to_ascii_uppercase().as_str() {
            "SO_KEEPALIVE" => (libc::SOL_SOCKET, libc::SO_KEEPALIVE),
            "SO_REUSEADDR" => (libc::SOL_SOCKET, libc::SO_REUSEADDR),
            "SO_SNDBUF" => (libc::SOL_SOCKET, libc::SO_SNDBUF),
            "SO_RCVBUF" => (libc::SOL_SOCKET, libc::SO_RCVBUF),
            "SO_SNDLOWAT" => (libc::SOL_SOCKET, libc::SO_SNDLOWAT),
            "SO_RCVLOWAT" => (libc::SOL_SOCKET, libc::SO_RCVLOWAT),
            "TCP_NODELAY" => (libc::IPPROTO_TCP, libc::TCP_NODELAY),
            "IPTOS_LOWDELAY" | "IPTOS_THROUGHPUT" => continue,
            _ => continue,
        };
        set_int_opt(fd, level, id, value);
    }
}

fn set_int_opt(fd: RawFd, level: libc::c_int, id: libc::c_int, value: libc::c_int) {
    // SAFETY: a valid c_int option value; failure is harmless.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            id,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

fn peer_string(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        ip => ip.to_string(),
    }
}

/// Runs the daemon until it is killed: loads the config (for the port, address and pid file),
/// detaches unless told not to, binds, and serves each connection in its own process.
pub fn run(
    opts: &DaemonOptions,
    listen: &ListenOptions,
    handler: &dyn TransferHandler,
) -> Result<(), ServerError> {
    let config = Config::load(&opts.config, &opts.dparams)
        .map_err(|_| ServerError::Config(opts.config.display().to_string()))?;
    if !listen.no_detach {
        become_daemon()?;
    }
    install_signals();
    write_pid_file(&config.pid_file())?;
    let port = listen
        .port
        .or_else(|| u16::try_from(config.port()).ok().filter(|p| *p != 0))
        .unwrap_or(DEFAULT_PORT);
    let listeners = bind_all(&config, listen, port)?;
    let globals = config.global_module();
    let log = Logger::open(
        opts.log_file.as_deref().unwrap_or(&globals.log_file()),
        &globals.syslog_tag(),
        globals.syslog_facility(),
    );
    log.log(&format!(
        "rsyncd version 3.5.0 (rtsync {}) starting, listening on port {port}",
        env!("CARGO_PKG_VERSION")
    ));
    let sockopts = listen
        .sockopts
        .clone()
        .unwrap_or_else(|| config.socket_options());
    accept_loop(&listeners, opts, &sockopts, handler, &log);
    Ok(())
}

fn accept_loop(
    listeners: &[TcpListener],
    opts: &DaemonOptions,
    sockopts: &str,
    handler: &dyn TransferHandler,
    log: &Logger,
) {
    let mut fds: Vec<libc::pollfd> = listeners
        .iter()
        .map(|l| libc::pollfd {
            fd: l.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // A termination signal wakes the loop through a pipe (polled last).
    let mut pipe = [-1; 2];
    // SAFETY: pipe2 fills a two-element array.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } == 0 {
        fds.push(libc::pollfd {
            fd: pipe[0],
            events: libc::POLLIN,
            revents: 0,
        });
        TERM_PIPE.store(pipe[1], Ordering::SeqCst);
    }
    loop {
        // SAFETY: fds is a valid array of pollfd of the given length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            continue;
        }
        if fds.len() > listeners.len() && fds[listeners.len()].revents & libc::POLLIN != 0 {
            // Stock's listener ends as any rsync process does: its log_exit line, code 0.
            log.log("sent 0 bytes  received 0 bytes  total size 0");
            remove_pid_file();
            std::process::exit(0);
        }
        for (i, pfd) in fds.iter().take(listeners.len()).enumerate() {
            if pfd.revents & libc::POLLIN == 0 {
                continue;
            }
            match listeners[i].accept() {
                Ok((stream, addr)) => {
                    spawn_connection(stream, addr, listeners, opts, sockopts, handler, log)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => log.log(&format!("accept failed: {e}")),
            }
        }
    }
}

fn spawn_connection(
    stream: TcpStream,
    addr: SocketAddr,
    listeners: &[TcpListener],
    opts: &DaemonOptions,
    sockopts: &str,
    handler: &dyn TransferHandler,
    log: &Logger,
) {
    // SAFETY: the daemon is single-threaded, so the child gets a consistent copy of the process.
    match unsafe { libc::fork() } {
        -1 => log.log(&format!("fork failed: {}", io::Error::last_os_error())),
        0 => {
            for l in listeners {
                // SAFETY: closing the child's copies of the listening sockets.
                unsafe { libc::close(l.as_raw_fd()) };
            }
            // The wake-up pipe is the listener's (the child's handlers are reset below).
            let w = TERM_PIPE.swap(-1, Ordering::SeqCst);
            if w >= 0 {
                // SAFETY: closing the child's copy of the pipe's write end.
                unsafe { libc::close(w) };
            }
            // SAFETY: restoring default dispositions for the connection process.
            unsafe {
                libc::signal(libc::SIGCHLD, libc::SIG_DFL);
                libc::signal(libc::SIGTERM, libc::SIG_DFL);
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                libc::signal(libc::SIGHUP, libc::SIG_DFL);
            }
            PID_FILE.store(std::ptr::null_mut(), Ordering::SeqCst);
            let code = serve_stream(stream, addr, opts, sockopts, handler);
            // SAFETY: the connection process ends here without unwinding into the accept loop.
            unsafe { libc::_exit(code) };
        }
        _ => drop(stream),
    }
}

fn serve_stream(
    stream: TcpStream,
    addr: SocketAddr,
    opts: &DaemonOptions,
    sockopts: &str,
    handler: &dyn TransferHandler,
) -> i32 {
    let fd = stream.as_raw_fd();
    let _ = stream.set_nodelay(true);
    set_int_opt(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1);
    apply_socket_options(fd, sockopts);
    let Ok(reader) = stream.try_clone() else {
        return 10;
    };
    let conn = Conn {
        input: Box::new(reader),
        output: Box::new(stream),
        socket_fd: Some(fd),
        peer: peer_string(addr),
    };
    session::serve(conn, opts, Mode::Socket, handler)
}

/// Serves the single connection on standard input, which is a socket (inetd, or a client's
/// `RSYNC_CONNECT_PROG`).
pub fn run_inetd(opts: &DaemonOptions, handler: &dyn TransferHandler) -> i32 {
    // SAFETY: fd 0 is a socket we take over for the rest of the process.
    let stream = unsafe { TcpStream::from_raw_fd(0) };
    let peer = stream
        .peer_addr()
        .map(peer_string)
        .unwrap_or_else(|_| "0.0.0.0".into());
    let fd = stream.into_raw_fd();
    // SAFETY: stdout/stderr are pointed at /dev/null so nothing stray reaches the client.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 1);
            libc::dup2(null, 2);
            libc::close(null);
        }
    }
    // SAFETY: the same socket, once per direction.
    let (r, w) = unsafe {
        (
            TcpStream::from_raw_fd(fd),
            TcpStream::from_raw_fd(libc::dup(fd)),
        )
    };
    let _ = r.set_nodelay(true);
    let conn = Conn {
        input: Box::new(r),
        output: Box::new(w),
        socket_fd: Some(fd),
        peer,
    };
    session::serve(conn, opts, Mode::Socket, handler)
}

/// Serves `rsync --server --daemon .` over standard input/output (a remote shell).
pub fn run_stdio(opts: &DaemonOptions, handler: &dyn TransferHandler) -> i32 {
    let peer = ["REMOTE_HOST", "SSH_CONNECTION", "SSH_CLIENT", "SSH2_CLIENT"]
        .iter()
        .find_map(|v| std::env::var(v).ok())
        .and_then(|v| v.split(' ').next().map(str::to_string))
        .filter(|a| a.parse::<IpAddr>().is_ok())
        .unwrap_or_else(|| "0.0.0.0".into());
    let conn = Conn {
        input: Box::new(std::io::stdin()),
        output: Box::new(std::io::stdout()),
        socket_fd: None,
        peer,
    };
    session::serve(conn, opts, Mode::RemoteShell, handler)
}

/// Whether standard input is a socket (started by inetd or `RSYNC_CONNECT_PROG`).
pub fn stdin_is_socket() -> bool {
    // SAFETY: fstat on fd 0 into a zeroed stat buffer.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(0, &mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFSOCK
    }
}
