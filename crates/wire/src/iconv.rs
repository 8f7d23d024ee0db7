//! `--iconv`: file names (and symlink targets) travel in UTF-8 and each side converts them
//! from and to its own character set, as stock rsync does.
//!
//! Facts (stock 3.5's rsync.c setup_iconv, flist.c, compat.c, options.c):
//!
//! * `--iconv=LOCAL,REMOTE` on the client; the server is given `--iconv=REMOTE`. A charset
//!   of `.` (or empty) is the locale's (`nl_langinfo(CODESET)`); `-` on a client means none.
//!   A local copy's receiving half uses REMOTE, its sending half LOCAL.
//! * The sender converts LOCAL → UTF-8 (`ic_send`); the receiver UTF-8 → LOCAL (`ic_recv`).
//!   A name that does not convert is left out with `cannot convert filename`, an io error.
//! * Symlink targets are converted as well when the server set CF_SYMLINK_ICONV (it does
//!   for a client whose capability letters include `s`).
//! * With `--iconv` both sides number a file list's entries in the order they were sent
//!   (need_unsorted_flist): the converted names may not sort as the sender's did.
//!
//! ```
//! use rtsync_wire::iconv::Converter;
//! let mut to_latin1 = Converter::open("ISO-8859-1", "UTF-8").unwrap();
//! assert_eq!(to_latin1.convert("é".as_bytes()).unwrap(), [0xE9]);
//! assert!(to_latin1.convert("€".as_bytes()).is_err());
//! ```

use std::ffi::CString;
use std::io;
use std::sync::{Arc, Mutex};

/// The charset stock rsync uses on the wire.
pub const WIRE_CHARSET: &str = "UTF-8";

/// One iconv conversion descriptor (glibc's iconv, which knows stock's charset names).
pub struct Converter {
    cd: libc::iconv_t,
    to: String,
    from: String,
}

// SAFETY: an iconv descriptor may move between threads; it is only used through `&mut`.
unsafe impl Send for Converter {}

impl std::fmt::Debug for Converter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Converter({} -> {})", self.from, self.to)
    }
}

impl Converter {
    /// Opens a conversion from `from` to `to`; the error is stock's message.
    pub fn open(to: &str, from: &str) -> Result<Converter, String> {
        let failed = || format!("iconv_open(\"{to}\", \"{from}\") failed");
        let (cto, cfrom) = match (CString::new(to), CString::new(from)) {
            (Ok(t), Ok(f)) => (t, f),
            _ => return Err(failed()),
        };
        // SAFETY: both arguments are NUL-terminated strings that outlive the call.
        let cd = unsafe { libc::iconv_open(cto.as_ptr(), cfrom.as_ptr()) };
        if cd as isize == -1 {
            return Err(failed());
        }
        Ok(Converter {
            cd,
            to: to.to_owned(),
            from: from.to_owned(),
        })
    }

    /// Converts all of `input`, failing on a sequence that is invalid or has no equivalent.
    pub fn convert(&mut self, input: &[u8]) -> io::Result<Vec<u8>> {
        self.run(input, false)
    }

    /// Converts `input`, copying what does not convert through unchanged (stock's
    /// ICB_INCLUDE_BAD, for messages).
    pub fn convert_lossy(&mut self, input: &[u8]) -> Vec<u8> {
        self.run(input, true).unwrap_or_else(|_| input.to_vec())
    }

    fn run(&mut self, input: &[u8], keep_bad: bool) -> io::Result<Vec<u8>> {
        // SAFETY: resetting the shift state with null pointers is iconv's documented use.
        unsafe {
            libc::iconv(
                self.cd,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        let mut out: Vec<u8> = Vec::with_capacity(input.len() * 2 + 16);
        let mut pos = 0;
        while pos < input.len() {
            if out.capacity() - out.len() < 16 {
                out.reserve(input.len() - pos + 16);
            }
            let mut in_ptr = input[pos..].as_ptr() as *mut libc::c_char;
            let mut in_left = input.len() - pos;
            let spare = out.capacity() - out.len();
            // SAFETY: the output pointer addresses `spare` writable bytes of `out`'s buffer.
            let mut out_ptr = unsafe { out.as_mut_ptr().add(out.len()) } as *mut libc::c_char;
            let mut out_left = spare;
            // SAFETY: the pointers and lengths describe live buffers (input read-only).
            let rc = unsafe {
                libc::iconv(
                    self.cd,
                    &mut in_ptr,
                    &mut in_left,
                    &mut out_ptr,
                    &mut out_left,
                )
            };
            let err = io::Error::last_os_error();
            let written = spare - out_left;
            // SAFETY: iconv wrote `written` bytes after the old length.
            unsafe { out.set_len(out.len() + written) };
            pos = input.len() - in_left;
            if rc != usize::MAX {
                continue;
            }
            match err.raw_os_error() {
                Some(libc::E2BIG) => out.reserve(in_left * 2 + 16),
                Some(libc::EILSEQ) | Some(libc::EINVAL) if keep_bad => {
                    out.push(input[pos]);
                    pos += 1;
                }
                _ => return Err(err),
            }
        }
        Ok(out)
    }
}

impl Drop for Converter {
    fn drop(&mut self) {
        // SAFETY: `cd` came from iconv_open and is closed once.
        unsafe { libc::iconv_close(self.cd) };
    }
}

/// Both directions for one side's charset, shared by the codecs of a transfer.
#[derive(Clone, Debug)]
pub struct Iconv {
    /// Local → UTF-8 (names we send).
    send: Arc<Mutex<Converter>>,
    /// UTF-8 → local (names we receive).
    recv: Arc<Mutex<Converter>>,
    /// The local charset, as resolved.
    pub charset: String,
}

impl Iconv {
    /// Sets up conversions for `charset` (`.` or empty: the locale's).
    pub fn new(charset: &str) -> Result<Iconv, String> {
        let charset = if charset.is_empty() || charset == "." {
            rtsync_engine::report::locale_charset()
        } else {
            charset.to_owned()
        };
        let send = Converter::open(WIRE_CHARSET, &charset)?;
        let recv = Converter::open(&charset, WIRE_CHARSET)?;
        Ok(Iconv {
            send: Arc::new(Mutex::new(send)),
            recv: Arc::new(Mutex::new(recv)),
            charset,
        })
    }

    /// A local name (or symlink target) as it goes on the wire.
    pub fn to_wire(&self, local: &[u8]) -> io::Result<Vec<u8>> {
        lock(&self.send).convert(local)
    }

    /// A received name (or symlink target) in the local charset.
    pub fn from_wire(&self, wire: &[u8]) -> io::Result<Vec<u8>> {
        lock(&self.recv).convert(wire)
    }

    /// A message for the peer: local → UTF-8, bytes that do not convert passed through.
    pub fn message_to_wire(&self, local: &[u8]) -> Vec<u8> {
        lock(&self.send).convert_lossy(local)
    }

    /// A message from the peer, for printing here.
    pub fn message_from_wire(&self, wire: &[u8]) -> Vec<u8> {
        lock(&self.recv).convert_lossy(wire)
    }
}

fn lock(m: &Mutex<Converter>) -> std::sync::MutexGuard<'_, Converter> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The charset one side of a transfer uses, from the `--iconv` value: a client takes the part
/// before the comma, a server (and a local copy's receiving half) the part after it.
pub fn side_charset(spec: &str, server: bool) -> &str {
    match spec.split_once(',') {
        Some((local, remote)) => {
            if server {
                remote
            } else {
                local
            }
        }
        None => spec,
    }
}

/// The message for a name that does not convert (stock's wording; `who` is `sender`,
/// `receiver` or `generator`).
pub fn cannot_convert(who: &str, what: &str, name: &[u8], err: &io::Error) -> String {
    let mut e = err.to_string();
    if let Some(at) = e.find(" (os error") {
        e.truncate(at);
    }
    format!(
        "[{who}] cannot convert {what}: {} ({e})",
        rtsync_engine::report::lossless_text(name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_round_trip_and_failures() {
        let ic = Iconv::new("ISO-8859-1").unwrap();
        assert_eq!(ic.to_wire(&[b'a', 0xE9]).unwrap(), "aé".as_bytes());
        assert_eq!(ic.from_wire("aé".as_bytes()).unwrap(), [b'a', 0xE9]);
        assert!(ic.from_wire("a€".as_bytes()).is_err());
        assert_eq!(ic.message_from_wire("a€".as_bytes()), b"a\xe2\x82\xac");
        let utf8 = Iconv::new("UTF-8").unwrap();
        assert!(utf8.to_wire(&[b'a', 0xE9]).is_err(), "invalid UTF-8");
        assert_eq!(utf8.message_to_wire(&[b'a', 0xE9]), [b'a', 0xE9]);
        let long = "ü".repeat(5000);
        assert_eq!(ic.from_wire(long.as_bytes()).unwrap(), vec![0xFC; 5000]);
    }

    #[test]
    fn unknown_charset_is_stocks_message() {
        let err = Iconv::new("NO-SUCH-SET").unwrap_err();
        assert_eq!(err, "iconv_open(\"UTF-8\", \"NO-SUCH-SET\") failed");
    }

    #[test]
    fn sides_take_their_part() {
        assert_eq!(side_charset("utf8,latin1", false), "utf8");
        assert_eq!(side_charset("utf8,latin1", true), "latin1");
        assert_eq!(side_charset("latin1", true), "latin1");
    }
}
