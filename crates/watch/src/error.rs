//! Errors the watcher reports, each carrying what is needed to act on it.

use std::io;
use std::path::PathBuf;

/// Malformed bytes from the inotify descriptor.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The buffer ends inside an event.
    #[error(
        "inotify event at offset {offset} is truncated: need {needed} bytes, have {available}"
    )]
    Truncated {
        /// Where the event starts in the buffer.
        offset: usize,
        /// Bytes the event needs.
        needed: usize,
        /// Bytes left in the buffer.
        available: usize,
    },
    /// A name field longer than the kernel ever produces.
    #[error("inotify event at offset {offset} has an impossible name length {len}")]
    NameTooLong {
        /// Where the event starts in the buffer.
        offset: usize,
        /// The claimed length.
        len: usize,
    },
}

/// What can go wrong while watching.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// `inotify_init1` failed (often `EMFILE`: too many instances).
    #[error("cannot create an inotify instance: {source}{hint}")]
    Init {
        /// The system error.
        source: io::Error,
        /// Advice when the per-user instance limit was hit.
        hint: String,
    },
    /// The per-user watch limit is exhausted (`ENOSPC` from `inotify_add_watch`).
    #[error(
        "cannot watch {path}: the inotify watch limit is reached; raise the sysctl \
         fs.inotify.max_user_watches (currently {current}), e.g. `sysctl fs.inotify.max_user_watches={suggested}`"
    )]
    WatchLimit {
        /// The path that could not be watched.
        path: PathBuf,
        /// The current value of `fs.inotify.max_user_watches` (0 if unreadable).
        current: u64,
        /// A value worth trying: twice the current one.
        suggested: u64,
    },
    /// Any other failure to add a watch.
    #[error("cannot watch {path}: {source}")]
    AddWatch {
        /// The path that could not be watched.
        path: PathBuf,
        /// The system error.
        source: io::Error,
    },
    /// Reading a directory while scanning failed.
    #[error("cannot scan {path}: {source}")]
    Scan {
        /// The directory.
        path: PathBuf,
        /// The system error.
        source: io::Error,
    },
    /// Reading or waiting on the inotify descriptor failed.
    #[error("reading inotify events failed: {0}")]
    Read(#[source] io::Error),
}

impl WatchError {
    /// Builds the error for a failed `inotify_add_watch`, naming the sysctl for `ENOSPC`.
    pub fn from_add_watch(path: PathBuf, source: io::Error) -> Self {
        if source.raw_os_error() == Some(libc::ENOSPC) {
            let current = crate::sys::read_sysctl("fs.inotify.max_user_watches").unwrap_or(0);
            WatchError::WatchLimit {
                path,
                current,
                suggested: current.saturating_mul(2).max(8192),
            }
        } else {
            WatchError::AddWatch { path, source }
        }
    }

    /// Builds the error for a failed `inotify_init1`, naming the sysctl for `EMFILE`.
    pub fn from_init(source: io::Error) -> Self {
        let hint = if source.raw_os_error() == Some(libc::EMFILE) {
            let current = crate::sys::read_sysctl("fs.inotify.max_user_instances").unwrap_or(0);
            format!("; raise the sysctl fs.inotify.max_user_instances (currently {current})")
        } else {
            String::new()
        };
        WatchError::Init { source, hint }
    }
}
