//! The daemon log: a `log file` with stock's line format (`YYYY/MM/DD HH:MM:SS [pid] message`)
//! or syslog with the configured facility and tag.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Mutex;

/// Where log lines go.
#[derive(Debug)]
enum Sink {
    File(Mutex<File>),
    Syslog,
    Stderr,
}

/// The daemon's logger (one per process; forked children inherit it).
#[derive(Debug)]
pub struct Logger {
    sink: Sink,
    /// The `log file` it writes to ("" for syslog), so a module with another can reopen.
    pub path: String,
}

impl Logger {
    /// A log file (appended, created 0644 like stock under its umask), or syslog when `path` is
    /// empty. A file that cannot be opened falls back to syslog, as stock does.
    pub fn open(path: &str, syslog_tag: &str, facility: i32) -> Logger {
        if !path.is_empty() {
            let file =
                crate::privs::check_trusted_path(std::path::Path::new(path)).and_then(|_| {
                    OpenOptions::new()
                        .append(true)
                        .create(true)
                        .mode(0o644)
                        .custom_flags(libc::O_CLOEXEC)
                        .open(path)
                });
            match file {
                Ok(f) => {
                    return Logger {
                        sink: Sink::File(Mutex::new(f)),
                        path: path.to_string(),
                    }
                }
                Err(e) => {
                    let l = Logger::syslog(syslog_tag, facility);
                    l.log(&format!("failed to open log-file {path}: {e}"));
                    return l;
                }
            }
        }
        Logger::syslog(syslog_tag, facility)
    }

    fn syslog(tag: &str, facility: i32) -> Logger {
        let tag = CString::new(tag).unwrap_or_else(|_| c"rsyncd".to_owned());
        // openlog keeps the pointer: leak the one string per process that needs it.
        let tag: &'static std::ffi::CStr = Box::leak(tag.into_boxed_c_str());
        // SAFETY: tag lives for the rest of the process.
        unsafe { libc::openlog(tag.as_ptr(), libc::LOG_PID | libc::LOG_NDELAY, facility) };
        Logger {
            sink: Sink::Syslog,
            path: String::new(),
        }
    }

    /// The log file's descriptor, if logging to a file (kept open across fork-and-close).
    pub fn fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        match &self.sink {
            Sink::File(f) => f.lock().ok().map(|f| f.as_raw_fd()),
            _ => None,
        }
    }

    /// A logger that writes to standard error (tests and foreground debugging).
    pub fn stderr() -> Logger {
        Logger {
            sink: Sink::Stderr,
            path: String::new(),
        }
    }

    /// Logs one message (a trailing newline is added; control characters are escaped so a
    /// client-chosen name cannot forge log lines).
    pub fn log(&self, message: &str) {
        let clean = escape_controls(message.trim_end_matches('\n'));
        match &self.sink {
            Sink::File(f) => {
                let line = format!("{} [{}] {}\n", timestamp(), std::process::id(), clean);
                if let Ok(mut f) = f.lock() {
                    let _ = f.write_all(line.as_bytes());
                }
            }
            Sink::Syslog => {
                if let Ok(c) = CString::new(clean) {
                    // SAFETY: a constant format string and one NUL-terminated argument.
                    unsafe { libc::syslog(libc::LOG_INFO, c"%s".as_ptr(), c.as_ptr()) };
                }
            }
            Sink::Stderr => {
                eprintln!("{} [{}] {}", timestamp(), std::process::id(), clean);
            }
        }
    }
}

/// An OS error as stock's `rsyserr` shows it: `strerror (errno)`.
pub fn sys_error(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => {
            // SAFETY: strerror returns a valid NUL-terminated string for any errno.
            let text = unsafe { std::ffi::CStr::from_ptr(libc::strerror(n)) };
            format!("{} ({n})", text.to_string_lossy())
        }
        None => e.to_string(),
    }
}

fn escape_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if (c as u32) < 0x20 || c == '\x7f' {
            out.push_str(&format!("\\#{:03o}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Local time as `YYYY/MM/DD HH:MM:SS`.
pub fn timestamp() -> String {
    // SAFETY: time(NULL) and localtime_r on a zeroed tm are always valid.
    unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&t, &mut tm);
        format!(
            "{:04}/{:02}/{:02} {:02}:{:02}:{:02}",
            tm.tm_year + 1900,
            tm.tm_mon + 1,
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_lines_have_stock_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let l = Logger::open(path.to_str().unwrap(), "rsyncd", libc::LOG_DAEMON);
        l.log("connect from localhost (127.0.0.1)\n");
        l.log("evil\nname");
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let pid = format!(" [{}] ", std::process::id());
        for (line, msg) in lines
            .iter()
            .zip(["connect from localhost (127.0.0.1)", "evil\\#012name"])
        {
            let (stamp, rest) = line.split_at(19);
            assert!(
                stamp.as_bytes()[4] == b'/' && stamp.as_bytes()[13] == b':',
                "{line}"
            );
            assert_eq!(rest, format!("{pid}{msg}").trim_end(), "{line}");
        }
    }
}
