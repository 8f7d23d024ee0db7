//! Typed errors of the wire protocol, each mapped to rsync's exit code.

use std::io;

/// rsync's exit codes, shared with the engine.
pub use rtsync_engine::report::exit;

/// Everything that can go wrong talking rsync's protocol.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The connection failed or was cut short (EOF inside a frame or a value).
    #[error("connection unexpectedly closed ({context})")]
    UnexpectedEof { context: &'static str },
    /// A socket/pipe error while talking to the peer.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// The peer sent something the protocol does not allow.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The data stream is malformed (bad frame, bad token, oversize value).
    #[error("error in rsync protocol data stream: {0}")]
    Stream(String),
    /// The peer sent a file name that would escape the destination (CVE-2024-12087 class).
    #[error("ABORTING due to unsafe pathname from sender: {0}")]
    UnsafePath(String),
    /// The daemon refused us with an `@ERROR` line (already printed, as stock does).
    #[error("@ERROR: {0}")]
    Daemon(String),
    /// Starting the client failed (bad password file, cannot connect...).
    #[error("{0}")]
    Startup(String),
    /// Could not connect to the daemon.
    #[error("{0}")]
    Socket(String),
    /// Something the peer requested that we do not implement (yet).
    #[error("unsupported: {0}")]
    Unsupported(String),

    /// `--iconv` names a charset iconv does not know (stock's message, code 4).
    #[error("{0}")]
    Iconv(String),
    /// The peer reported a fatal error and exits with this code (MSG_ERROR_EXIT).
    #[error("remote side exited with code {0}")]
    RemoteExit(i32),
    /// A local filesystem operation failed: `CONTEXT: STRERROR (ERRNO)`, as stock's rsyserr.
    #[error("{context}: {}", os_text(source))]
    File {
        context: String,
        #[source]
        source: io::Error,
    },
    /// A usage problem found while starting (bad filter rule, ...): exit code 1.
    #[error("{0}")]
    Usage(String),
    /// A usage problem stock prints as a bare line, without `rsync: ` (exit code 1).
    /// `at` is stock's source location for the closing line.
    #[error("{message}")]
    BareUsage { message: String, at: &'static str },
    /// A line stock prints bare, with the exit code and source location it gives.
    #[error("{message}")]
    Bare {
        message: String,
        code: i32,
        at: &'static str,
    },
    /// The connection was lost mid-transfer (`error`: end of file, or a write into a closed
    /// pipe), with the bytes received until then and a remote shell's exit status.
    #[error("{error}")]
    Lost {
        error: Box<Error>,
        received: u64,
        status: Option<i32>,
        /// A pull that had its file list, with the bytes received until then: stock's
        /// receiver and generator are two processes from there, and both report (the
        /// generator's count stops where they parted).
        generated: Option<u64>,
    },
    /// The remote shell (or connect program) could not be executed: stock's forked child
    /// says so and exits 14, and its client then finds the connection closed (exit 12).
    #[error("Failed to exec {program}: {}", os_text(source))]
    ExecFailed { program: String, source: io::Error },
    /// No data from the peer within `--timeout` seconds.
    #[error("io timeout -- exiting")]
    Timeout,
    /// The password file is unusable (stock exits with 1 and this text).
    #[error("{0}")]
    PasswordFile(String),
    /// A batch file could not be opened (stock's wording, and its exit code).
    #[error("{message}")]
    BatchOpen { message: String, code: i32 },
    /// Connecting timed out (`--contimeout`).
    #[error("timed out connecting to {0}")]
    ConnectTimeout(String),
    /// `error`, with stock's source location for the closing `rsync error:` line.
    #[error("{error}")]
    Located { error: Box<Error>, at: &'static str },
    /// `error` met by the receiving side's file writing, which stock's receiver process
    /// reports itself: its closing line says `[receiver=…]` and where.
    #[error("{error}")]
    InReceiver { error: Box<Error>, at: &'static str },
}

impl Error {
    /// The exit code stock rsync uses for this kind of failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::UnexpectedEof { .. } => exit::STREAM_IO,
            Error::Io { .. } => exit::STREAM_IO,
            Error::Protocol(_) => exit::PROTOCOL,
            Error::Stream(_) => exit::STREAM_IO,
            Error::ExecFailed { .. } => exit::IPC,
            Error::UnsafePath(_) => exit::UNSUPPORTED,
            Error::Daemon(_) => exit::START_CLIENT,
            Error::Startup(_) => exit::START_CLIENT,
            Error::Socket(_) => exit::SOCKET_IO,
            Error::Unsupported(_) | Error::Iconv(_) => exit::UNSUPPORTED,
            Error::RemoteExit(code) => *code,
            Error::File { .. } => exit::FILE_IO,
            Error::ConnectTimeout(_) => exit::CONTIMEOUT,
            Error::PasswordFile(_) => exit::SYNTAX,
            Error::Usage(_) | Error::BareUsage { .. } => exit::SYNTAX,
            Error::Bare { code, .. } => *code,
            Error::Timeout => exit::TIMEOUT,
            Error::BatchOpen { code, .. } => *code,
            Error::Located { error, .. } | Error::InReceiver { error, .. } => error.exit_code(),
            // Stock's client exits with its remote shell's status when that is higher.
            Error::Lost { status, error, .. } => {
                // (A read or write that failed is a socket error for stock; the stream's
                // end, a protocol one.)
                let own = match error.socket_errno() {
                    Some(_) => exit::SOCKET_IO,
                    None => exit::STREAM_IO,
                };
                status.unwrap_or(0).max(own)
            }
        }
    }

    /// The line a client prints for this error, spelled as stock rsync prints it: daemon
    /// refusals (`@ERROR: ...`) and password-file problems stand alone, everything else
    /// gets the `rsync: ` prefix.
    pub fn client_message(&self) -> String {
        match self {
            Error::Daemon(_)
            | Error::PasswordFile(_)
            | Error::Iconv(_)
            | Error::BareUsage { .. }
            | Error::Bare { .. } => self.to_string(),
            Error::Startup(m) if m.starts_with("ERROR:") => m.clone(),
            Error::Located { error, .. } | Error::InReceiver { error, .. } => {
                error.client_message()
            }
            other => format!("rsync: {other}"),
        }
    }

    /// Where stock's closing `rsync error:` line says the error came from, when the exit
    /// code alone does not tell.
    pub fn location(&self) -> Option<&'static str> {
        match self {
            Error::ExecFailed { .. } => Some("io.c(285)"),
            Error::Lost { error, .. } if error.is_broken_pipe() => Some("io.c(949)"),
            Error::Lost { error, .. } if error.socket_errno().is_some() => Some("io.c(907)"),
            Error::Lost { .. } => Some("io.c(285)"),
            Error::BareUsage { at, .. }
            | Error::Bare { at, .. }
            | Error::Located { at, .. }
            | Error::InReceiver { at, .. } => Some(at),
            _ => None,
        }
    }

    /// The process stock's closing line names for this error, when it is not the one the
    /// direction of the transfer gives.
    pub fn role(&self) -> Option<&'static str> {
        match self {
            Error::InReceiver { .. } => Some("receiver"),
            _ => None,
        }
    }

    /// A failure of this side's own filesystem work (writing a file, keeping a backup),
    /// not of the connection or the peer.
    pub fn is_local_file_error(&self) -> bool {
        match self {
            Error::File { .. } | Error::InReceiver { .. } => true,
            Error::Located { error, .. } => error.is_local_file_error(),
            _ => false,
        }
    }

    /// A write into a connection the peer closed.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe)
    }

    /// The connection was cut: end of file where data was due, or a write the peer no
    /// longer reads, or a reset (what [`Error::Lost`] wraps).
    pub fn is_connection_loss(&self) -> bool {
        matches!(self, Error::UnexpectedEof { .. }) || self.socket_errno().is_some()
    }

    /// The errno of a failed read or write on the connection that means the peer is gone
    /// (EPIPE writing, ECONNRESET reading).
    pub fn socket_errno(&self) -> Option<i32> {
        match self {
            Error::Io { source, .. } => source
                .raw_os_error()
                .filter(|e| [libc::EPIPE, libc::ECONNRESET].contains(e)),
            _ => None,
        }
    }

    /// Wraps an I/O error met while reading or writing the peer stream.
    pub fn io(context: impl Into<String>, source: io::Error) -> Error {
        if source.kind() == io::ErrorKind::UnexpectedEof {
            return Error::UnexpectedEof {
                context: "reading from peer",
            };
        }
        if matches!(
            source.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) {
            return Error::Timeout;
        }
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Wraps a local filesystem error with the path it concerns.
    pub fn file(context: impl Into<String>, source: io::Error) -> Error {
        Error::File {
            context: context.into(),
            source,
        }
    }
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl From<rtsync_delta::Error> for Error {
    fn from(e: rtsync_delta::Error) -> Error {
        match e {
            rtsync_delta::Error::Io(io) => crate::mux::from_io(io, "reading tokens"),
            other => Error::Stream(other.to_string()),
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::io("peer stream", e)
    }
}

/// An I/O error as stock rsync prints one: `strerror (errno)` for an OS error, its own text
/// otherwise.
pub fn os_text(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => format!("{} ({code})", crate::client::strerror(e)),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_errors_read_as_stock_rsyserr() {
        let e = Error::file(
            "open \"x\" failed",
            io::Error::from_raw_os_error(libc::ENOENT),
        );
        assert_eq!(
            e.to_string(),
            "open \"x\" failed: No such file or directory (2)"
        );
        let other = Error::file("reading", io::Error::other("short list"));
        assert_eq!(other.to_string(), "reading: short list");
    }
}
