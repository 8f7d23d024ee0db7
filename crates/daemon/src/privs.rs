//! Users, groups, chroot and dropping privileges for a module session.

use std::ffi::CString;
use std::io;

/// The user a root daemon runs modules as when `uid` is unset.
pub const NOBODY_USER: &str = "nobody";

/// The group a root daemon uses when `gid` is unset: `nobody` if that group exists, else
/// `nogroup` (as stock's build picks).
pub fn nobody_group() -> &'static str {
    if group_to_gid("nobody").is_some() {
        "nobody"
    } else {
        "nogroup"
    }
}

/// A user name or number to a uid.
pub fn user_to_uid(name: &str) -> Option<libc::uid_t> {
    if let Ok(n) = name.parse::<libc::uid_t>() {
        return Some(n);
    }
    let c = CString::new(name).ok()?;
    // SAFETY: getpwnam returns null or a pointer to a valid record we read at once.
    let pw = unsafe { libc::getpwnam(c.as_ptr()) };
    // SAFETY: checked non-null.
    (!pw.is_null()).then(|| unsafe { (*pw).pw_uid })
}

/// A group name or number to a gid.
pub fn group_to_gid(name: &str) -> Option<libc::gid_t> {
    if let Ok(n) = name.parse::<libc::gid_t>() {
        return Some(n);
    }
    let c = CString::new(name).ok()?;
    // SAFETY: as user_to_uid.
    let gr = unsafe { libc::getgrnam(c.as_ptr()) };
    // SAFETY: checked non-null.
    (!gr.is_null()).then(|| unsafe { (*gr).gr_gid })
}

/// All groups of a uid (its primary group first), for `gid = *`.
pub fn all_groups(uid: libc::uid_t) -> Option<Vec<libc::gid_t>> {
    // SAFETY: as user_to_uid.
    let pw = unsafe { libc::getpwuid(uid) };
    if pw.is_null() {
        return None;
    }
    // SAFETY: pw is valid; copy the fields now.
    let (name, gid) = unsafe {
        (
            std::ffi::CStr::from_ptr((*pw).pw_name).to_owned(),
            (*pw).pw_gid,
        )
    };
    let mut n: libc::c_int = 64;
    let mut gids: Vec<libc::gid_t> = vec![0; 64];
    loop {
        // SAFETY: gids has room for n entries.
        let rc = unsafe { libc::getgrouplist(name.as_ptr(), gid, gids.as_mut_ptr(), &mut n) };
        if rc >= 0 {
            gids.truncate(n as usize);
            return Some(gids);
        }
        if n as usize <= gids.len() || n > 65536 {
            return None;
        }
        gids.resize(n as usize, 0);
    }
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// chroot(2).
pub fn chroot(path: &str) -> io::Result<()> {
    let c = CString::new(path).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: a valid NUL-terminated path.
    check(unsafe { libc::chroot(c.as_ptr()) })
}

/// setgid(2) then setgroups(2).
pub fn set_groups(gids: &[libc::gid_t]) -> Result<(), (&'static str, io::Error)> {
    let Some(first) = gids.first() else {
        return Ok(());
    };
    // SAFETY: plain syscalls with valid arguments.
    check(unsafe { libc::setgid(*first) }).map_err(|e| ("setgid", e))?;
    // SAFETY: gids is a valid array of the given length.
    check(unsafe { libc::setgroups(gids.len(), gids.as_ptr()) }).map_err(|e| ("setgroups", e))
}

/// setuid(2) and seteuid(2), then a check that root cannot be regained.
pub fn set_uid(uid: libc::uid_t) -> io::Result<()> {
    // SAFETY: plain syscalls.
    check(unsafe { libc::setuid(uid) })?;
    // SAFETY: as above.
    check(unsafe { libc::seteuid(uid) })?;
    // SAFETY: as above.
    if uid != 0 && unsafe { libc::setuid(0) } == 0 {
        return Err(io::Error::other("privileges could be regained"));
    }
    Ok(())
}

/// Whether we run as root.
pub fn am_root() -> bool {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() == 0 }
}

/// Refuses a path that passes through a symlink owned by anyone but root or us (an operator
/// path such as the config, secrets, motd, lock or log file: a planted symlink must not
/// redirect what the daemon reads or creates). Every component is checked.
pub fn check_trusted_path(path: &std::path::Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let mut prefix = std::path::PathBuf::new();
    for comp in path.components() {
        prefix.push(comp);
        match std::fs::symlink_metadata(&prefix) {
            Ok(m) if m.file_type().is_symlink() && m.uid() != 0 && m.uid() != euid => {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "refusing symlink {} owned by uid {}",
                        prefix.display(),
                        m.uid()
                    ),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_symlinks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real");
        std::fs::write(&target, "x").unwrap();
        let own = dir.path().join("own");
        std::os::unix::fs::symlink(&target, &own).unwrap();
        assert!(check_trusted_path(&own).is_ok());
        assert!(check_trusted_path(&target).is_ok());
        let foreign = dir.path().join("foreign");
        std::os::unix::fs::symlink(&target, &foreign).unwrap();
        let c = std::ffi::CString::new(foreign.display().to_string()).unwrap();
        // SAFETY: changing the owner of the link we just made.
        if unsafe { libc::lchown(c.as_ptr(), 65534, 65534) } == 0 {
            assert!(check_trusted_path(&foreign).is_err());
            assert!(check_trusted_path(&foreign.join("sub")).is_err());
        }
    }
}
