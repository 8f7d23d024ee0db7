//! Opening paths strictly beneath a module root: no `..`, absolute path or symlink can lead
//! outside it, with or without chroot. Uses openat2(2) with `RESOLVE_BENEATH`, falling back to
//! a component-by-component walk with `O_NOFOLLOW` on kernels without it.
//!
//! ```no_run
//! use std::os::fd::AsFd;
//! let root = std::fs::File::open("/srv/module").unwrap();
//! let f = rtsync_daemon::beneath::open(root.as_fd(), "sub/file.txt", libc::O_RDONLY, 0).unwrap();
//! ```

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// The kernel's `struct open_how` (libc's is non-exhaustive).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Opens `path` relative to `root` with `flags` (O_CLOEXEC is added); `mode` for O_CREAT.
/// Symlinks inside the tree are followed only while they stay beneath `root`.
pub fn open(root: BorrowedFd<'_>, path: &str, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    let cpath = CString::new(path).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: if flags & (libc::O_CREAT | libc::O_TMPFILE) != 0 {
            u64::from(mode)
        } else {
            0
        },
        resolve: libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: valid dirfd, NUL-terminated path, and an open_how of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            cpath.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd >= 0 {
        // SAFETY: the kernel returned a new descriptor that we now own.
        return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) });
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ENOSYS) {
        return open_walk(root, path, flags, mode);
    }
    Err(err)
}

/// The fallback: every directory component opened with O_NOFOLLOW, `..` and absolute paths
/// refused, and the last component opened O_NOFOLLOW too.
fn open_walk(root: BorrowedFd<'_>, path: &str, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    let escape = || io::Error::from_raw_os_error(libc::EXDEV);
    if path.starts_with('/') {
        return Err(escape());
    }
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(escape());
    }
    let mut dir: Option<OwnedFd> = None;
    let at = |d: &Option<OwnedFd>| d.as_ref().map_or(root.as_raw_fd(), |f| f.as_raw_fd());
    let Some((last, dirs)) = parts.split_last() else {
        let c = CString::new(".").unwrap_or_default();
        // SAFETY: valid dirfd and path.
        let fd =
            unsafe { libc::openat(root.as_raw_fd(), c.as_ptr(), flags | libc::O_CLOEXEC, mode) };
        return owned(fd);
    };
    for part in dirs {
        let c = CString::new(*part).map_err(|_| escape())?;
        let fl = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: valid dirfd and path.
        let fd = unsafe { libc::openat(at(&dir), c.as_ptr(), fl) };
        dir = Some(owned(fd)?);
    }
    let c = CString::new(*last).map_err(|_| escape())?;
    // SAFETY: valid dirfd and path.
    let fd = unsafe {
        libc::openat(
            at(&dir),
            c.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            mode,
        )
    };
    owned(fd)
}

fn owned(fd: i32) -> io::Result<OwnedFd> {
    if fd < 0 {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: a new descriptor we own.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn nothing_escapes_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/f"), "x").unwrap();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink("../secret", root.join("out")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("sub/f", root.join("in")).unwrap();
        let r = std::fs::File::open(&root).unwrap();
        let cases: &[(&str, bool)] = &[
            ("sub/f", true),
            ("./sub//f", true),
            ("in", true),
            ("sub/../sub/f", true),
            ("../secret", false),
            ("/etc/passwd", false),
            ("out", false),
            ("abs", false),
            ("sub/../../secret", false),
        ];
        for (path, ok) in cases {
            let got = open(r.as_fd(), path, libc::O_RDONLY, 0);
            assert_eq!(got.is_ok(), *ok, "{path}: {got:?}");
        }
        for (path, ok) in [
            ("sub/f", true),
            ("../secret", false),
            ("/etc/passwd", false),
            ("out", false),
        ] {
            assert_eq!(
                open_walk(r.as_fd(), path, libc::O_RDONLY, 0).is_ok(),
                ok,
                "walk {path}"
            );
        }
    }
}
