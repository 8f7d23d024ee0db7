//! Bounded reading of the daemon's text handshake, and handing what was read ahead to the
//! transfer.

use std::io::{self, Read, Write};

/// The longest handshake line stock reads (`line[1024]`, greeting and module name).
pub const SHORT_LINE: usize = 1023;
/// The longest auth response and argument line (stock's BIGPATHBUFLEN less the terminator).
pub const LONG_LINE: usize = 4096 + 1024 - 1;

/// Why a handshake line could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// The peer closed the connection.
    #[error("connection closed")]
    Eof,
    /// A NUL byte where text was expected.
    #[error("unexpected NUL byte")]
    Nul,
    /// More than the allowed length without a newline.
    #[error("line too long")]
    TooLong,
    /// A read error (including a timeout).
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// A reader with a small read-ahead buffer, so the handshake does not cost a syscall per byte;
/// whatever it read ahead is passed on with [`Reader::into_inner`].
pub struct Reader<R> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
}

impl<R: Read> Reader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        Reader {
            inner,
            buf: Vec::new(),
            pos: 0,
        }
    }

    fn fill(&mut self) -> io::Result<bool> {
        if self.pos < self.buf.len() {
            return Ok(true);
        }
        self.buf.resize(4096, 0);
        self.pos = 0;
        loop {
            match self.inner.read(&mut self.buf) {
                Ok(n) => {
                    self.buf.truncate(n);
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.clear();
                    return Err(e);
                }
            }
        }
    }

    fn byte(&mut self) -> io::Result<Option<u8>> {
        if !self.fill()? {
            return Ok(None);
        }
        let b = self.buf[self.pos];
        self.pos += 1;
        Ok(Some(b))
    }

    /// Reads a `\n`-terminated line of at most `max` bytes (`\r` dropped), as stock's
    /// `read_line_old`: a NUL, EOF or an over-long line is an error.
    pub fn read_line(&mut self, max: usize) -> Result<String, LineError> {
        let mut line = Vec::new();
        loop {
            match self.byte()? {
                None => return Err(LineError::Eof),
                Some(0) => return Err(LineError::Nul),
                Some(b'\n') => break,
                Some(b'\r') => {}
                Some(c) => {
                    if line.len() >= max {
                        return Err(LineError::TooLong);
                    }
                    line.push(c);
                }
            }
        }
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    /// Reads a line ended by `end` (NUL for arguments); longer lines are truncated to `max`
    /// bytes as stock's `read_line` does. `None` at EOF.
    pub fn read_terminated(&mut self, end: u8, max: usize) -> io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        loop {
            match self.byte()? {
                None => return Ok(None),
                Some(c) if c == end => return Ok(Some(line)),
                Some(c) => {
                    if line.len() < max {
                        line.push(c);
                    }
                }
            }
        }
    }

    /// Reads exactly `n` bytes.
    pub fn read_exact_bytes(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut out = vec![0; n];
        self.read_exact(&mut out)?;
        Ok(out)
    }

    /// The underlying reader with the read-ahead bytes in front of it.
    pub fn into_inner(self) -> Prefixed<R> {
        Prefixed {
            prefix: self.buf[self.pos..].to_vec(),
            pos: 0,
            inner: self.inner,
        }
    }

    /// The underlying reader, for settings such as timeouts.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }
}

impl<R: Read> Read for Reader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if !self.fill()? {
            return Ok(0);
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A reader that first yields bytes already read ahead, then its inner reader.
pub struct Prefixed<R> {
    prefix: Vec<u8>,
    pos: usize,
    inner: R,
}

impl<R> Prefixed<R> {
    /// The inner reader (the read-ahead bytes stay in front).
    pub fn get_ref(&self) -> &R {
        &self.inner
    }
}

impl<R: Read> Read for Prefixed<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.prefix.len() {
            let n = out.len().min(self.prefix.len() - self.pos);
            out[..n].copy_from_slice(&self.prefix[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        self.inner.read(out)
    }
}

/// Writes a whole text line at once (one segment on the wire).
pub fn write_text(out: &mut dyn Write, text: &str) -> io::Result<()> {
    out.write_all(text.as_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded_and_strict() {
        let cases: &[(&[u8], usize, Result<&str, &str>)] = &[
            (b"hello\n", 10, Ok("hello")),
            (b"he\r\nllo\n", 10, Ok("he")),
            (b"hello", 10, Err("eof")),
            (b"he\0llo\n", 10, Err("nul")),
            (b"0123456789x\n", 10, Err("long")),
            (b"0123456789\n", 10, Ok("0123456789")),
        ];
        for (input, max, want) in cases {
            let got = Reader::new(*input).read_line(*max);
            match (got, want) {
                (Ok(s), Ok(w)) => assert_eq!(s, *w),
                (Err(LineError::Eof), Err("eof")) => {}
                (Err(LineError::Nul), Err("nul")) => {}
                (Err(LineError::TooLong), Err("long")) => {}
                (g, w) => panic!("{input:?}: got {g:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn read_ahead_is_handed_on() {
        let mut r = Reader::new(&b"line\nrest\0of it"[..]);
        assert_eq!(r.read_line(100).unwrap(), "line");
        assert_eq!(r.read_terminated(0, 2).unwrap().unwrap(), b"re");
        let mut rest = String::new();
        r.into_inner().read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "of it");
    }
}

/// An absolute deadline shared between the session and the reader it governs (stock bounds
/// each handshake phase as a whole, so a client trickling one byte at a time cannot hold a
/// `max connections` slot forever).
#[derive(Debug, Clone, Default)]
pub struct Deadline(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl Deadline {
    /// Sets the deadline `after` from now (`None` clears it).
    pub fn set(&self, after: Option<std::time::Duration>) {
        let at = after.map_or(0, |d| {
            now_millis().saturating_add(d.as_millis() as u64).max(1)
        });
        self.0.store(at, std::sync::atomic::Ordering::SeqCst);
    }

    /// Time left (`None`: no deadline; zero: expired).
    pub fn remaining(&self) -> Option<std::time::Duration> {
        match self.0.load(std::sync::atomic::Ordering::SeqCst) {
            0 => None,
            at => Some(std::time::Duration::from_millis(
                at.saturating_sub(now_millis()),
            )),
        }
    }
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A socket reader that honours a [`Deadline`] (via SO_RCVTIMEO on the socket) on top of
/// whatever idle timeout is set.
pub struct DeadlineReader<R> {
    /// The reader.
    pub inner: R,
    /// The socket whose receive timeout is adjusted (`None`: the deadline is only checked).
    pub fd: Option<std::os::fd::RawFd>,
    /// The deadline.
    pub deadline: Deadline,
    /// The idle timeout to restore when no deadline is set.
    pub idle: std::sync::Arc<std::sync::Mutex<Option<std::time::Duration>>>,
}

impl<R: Read> Read for DeadlineReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let idle = self.idle.lock().map(|g| *g).unwrap_or(None);
        let limit = match (self.deadline.remaining(), idle) {
            (Some(left), _) if left.is_zero() => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "daemon handshake timeout",
                ));
            }
            (Some(left), Some(i)) => Some(left.min(i)),
            (Some(left), None) => Some(left),
            (None, i) => i,
        };
        if let Some(fd) = self.fd {
            crate::session::set_read_timeout(fd, limit);
        }
        match self.inner.read(out) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                Err(io::Error::new(io::ErrorKind::TimedOut, "timeout"))
            }
            other => other,
        }
    }
}
