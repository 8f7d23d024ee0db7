//! A thin, safe layer over the inotify system calls and a bounded decoder for what
//! `read(2)` returns.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::time::Duration;

use crate::error::DecodeError;

/// A watch descriptor as the kernel numbers it.
pub type Wd = i32;

/// Size of the fixed part of `struct inotify_event`.
pub const EVENT_HEADER_LEN: usize = 16;

/// The longest name the kernel puts in one event (NAME_MAX plus padding to 16 bytes).
pub const MAX_NAME_FIELD: usize = 256 + 16;

/// One event exactly as the kernel reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent {
    /// Watch the event belongs to (`-1` for a queue overflow).
    pub wd: Wd,
    /// Event bits (see [`crate::mask`]).
    pub mask: u32,
    /// Ties a `MOVED_FROM` to its `MOVED_TO`; zero otherwise.
    pub cookie: u32,
    /// Name of the entry inside the watched directory, if the event is about one.
    pub name: Option<OsString>,
}

/// Decodes every complete event in `buf`. The kernel never splits an event across reads, so a
/// truncated tail or a name longer than the kernel can produce is an error, not a partial event.
pub fn decode_events(buf: &[u8]) -> Result<Vec<RawEvent>, DecodeError> {
    let mut events = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let rest = &buf[at..];
        if rest.len() < EVENT_HEADER_LEN {
            return Err(DecodeError::Truncated {
                offset: at,
                needed: EVENT_HEADER_LEN,
                available: rest.len(),
            });
        }
        let word = |i: usize| u32::from_ne_bytes([rest[i], rest[i + 1], rest[i + 2], rest[i + 3]]);
        let wd = word(0) as i32;
        let mask = word(4);
        let cookie = word(8);
        let len = word(12) as usize;
        if len > MAX_NAME_FIELD {
            return Err(DecodeError::NameTooLong { offset: at, len });
        }
        let total = EVENT_HEADER_LEN + len;
        if rest.len() < total {
            return Err(DecodeError::Truncated {
                offset: at,
                needed: total,
                available: rest.len(),
            });
        }
        let field = &rest[EVENT_HEADER_LEN..total];
        let name_len = field.iter().position(|&b| b == 0).unwrap_or(field.len());
        let name = (name_len > 0).then(|| OsString::from_vec(field[..name_len].to_vec()));
        events.push(RawEvent {
            wd,
            mask,
            cookie,
            name,
        });
        at += total;
    }
    Ok(events)
}

/// An inotify instance.
#[derive(Debug)]
pub struct Inotify {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl Inotify {
    /// Creates an instance; the descriptor is close-on-exec and non-blocking, reads wait in
    /// [`Inotify::wait`].
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain system call; the result is checked before use.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Inotify {
            // SAFETY: `fd` is a fresh descriptor that nothing else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            buf: vec![0; 64 * 1024],
        })
    }

    /// Adds (or updates) a watch on `path`.
    pub fn add_watch(&self, path: &Path, mask: u32) -> io::Result<Wd> {
        self.add_watch_bytes(path.as_os_str().as_bytes(), mask)
    }

    /// Adds a watch on a path given as bytes (inotify-tools' paths carry trailing slashes).
    pub fn add_watch_bytes(&self, path: &[u8], mask: u32) -> io::Result<Wd> {
        let c = CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
        let wd = unsafe { libc::inotify_add_watch(self.fd.as_raw_fd(), c.as_ptr(), mask) };
        if wd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(wd)
    }

    /// Removes a watch; the kernel then queues an `IGNORED` event for it.
    pub fn rm_watch(&self, wd: Wd) -> io::Result<()> {
        // SAFETY: plain system call on our own descriptor.
        if unsafe { libc::inotify_rm_watch(self.fd.as_raw_fd(), wd) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits until events are readable or `timeout` passes (`None`: forever). Returns whether
    /// events are ready. An interrupting signal returns `ErrorKind::Interrupted`.
    pub fn wait(&self, timeout: Option<Duration>) -> io::Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = match timeout {
            None => -1,
            Some(t) => t.as_millis().min(i32::MAX as u128) as i32,
        };
        // SAFETY: `pfd` is a valid pollfd array of length one.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(rc > 0)
    }

    /// Reads and decodes what is queued now, without waiting; empty when nothing is queued.
    pub fn read_available(&mut self) -> io::Result<Vec<RawEvent>> {
        // SAFETY: the buffer is valid for writes of its whole length.
        let n = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                self.buf.as_mut_ptr().cast(),
                self.buf.len(),
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::WouldBlock {
                return Ok(Vec::new());
            }
            return Err(err);
        }
        decode_events(&self.buf[..n as usize])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

impl AsRawFd for Inotify {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Reads a number from a `/proc/sys` file, e.g. `fs/inotify/max_user_watches`.
pub fn read_sysctl(name: &str) -> Option<u64> {
    let path = format!("/proc/sys/{}", name.replace('.', "/"));
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Joins a directory path and a name as bytes, adding a `/` only when needed.
pub fn join_bytes(dir: &OsStr, name: &OsStr) -> OsString {
    let mut v = dir.as_bytes().to_vec();
    if !v.is_empty() && !v.ends_with(b"/") {
        v.push(b'/');
    }
    v.extend_from_slice(name.as_bytes());
    OsString::from_vec(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(wd: i32, mask: u32, cookie: u32, name: &[u8], pad_to: usize) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&wd.to_ne_bytes());
        v.extend_from_slice(&mask.to_ne_bytes());
        v.extend_from_slice(&cookie.to_ne_bytes());
        v.extend_from_slice(&(pad_to as u32).to_ne_bytes());
        let mut field = name.to_vec();
        field.resize(pad_to, 0);
        v.extend_from_slice(&field);
        v
    }

    #[test]
    fn decodes_events_and_rejects_bad_input() {
        let mut buf = encode(1, crate::mask::CREATE, 0, b"file", 16);
        buf.extend(encode(-1, crate::mask::Q_OVERFLOW, 0, b"", 0));
        let got = decode_events(&buf).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].name.as_deref(), Some(OsStr::new("file")));
        assert_eq!(got[1].wd, -1);
        assert_eq!(got[1].name, None);

        let cases: &[&[u8]] = &[&buf[..10], &buf[..20], &buf[..buf.len() - 1]];
        for bad in cases {
            assert!(
                matches!(decode_events(bad), Err(DecodeError::Truncated { .. })),
                "{} bytes",
                bad.len()
            );
        }
        let huge = encode(1, 0, 0, b"x", 100_000);
        assert!(matches!(
            decode_events(&huge),
            Err(DecodeError::NameTooLong { .. })
        ));
    }
}
