//! `max connections`: one 4-byte record lock per slot in the `lock file`, held for the life of
//! the connection's process, so the count is shared by every process of every daemon using the
//! same lock file (and freed by the kernel when a process dies).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// A claimed slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    _file: Option<File>,
    /// Which slot (0-based), for logs and tests.
    pub index: usize,
}

/// Claims one of `max` slots. `Ok(None)`: all slots are taken. `max <= 0`: unlimited.
pub fn claim(lock_file: &Path, max: i64) -> io::Result<Option<Slot>> {
    if max <= 0 {
        return Ok(Some(Slot {
            _file: None,
            index: 0,
        }));
    }
    crate::privs::check_trusted_path(lock_file)?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(lock_file)?;
    let max = usize::try_from(max).unwrap_or(usize::MAX).min(1 << 20);
    for index in 0..max {
        if lock_range(&file, index as i64 * 4, 4)? {
            return Ok(Some(Slot {
                _file: Some(file),
                index,
            }));
        }
    }
    Ok(None)
}

fn lock_range(file: &File, offset: i64, len: i64) -> io::Result<bool> {
    // SAFETY: flock is plain data; all-zero is valid before we fill the fields we use.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = offset;
    fl.l_len = len;
    // SAFETY: valid fd and a valid flock struct.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &fl) };
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_needs_no_file() {
        let slot = claim(Path::new("/nonexistent/dir/lock"), 0).unwrap();
        assert!(slot.is_some());
    }

    #[test]
    fn slots_are_shared_across_processes() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("lock");
        let held = claim(&lock, 2).unwrap().expect("slot");
        assert_eq!(held.index, 0);
        // Record locks are per process: ask a child process whether slots remain.
        // SAFETY: the child only calls async-signal-safe-enough code and _exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let code = match (claim(&lock, 1), claim(&lock, 2)) {
                (Ok(None), Ok(Some(s))) if s.index == 1 => 0,
                _ => 1,
            };
            // SAFETY: leaving the child without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        drop(held);
    }
}
