//! Resolving paths beneath a daemon module root the way rsync 3.5's secure resolver does:
//! a symlink met on the way is followed only when it is owned by root or by us, and only
//! while the resolved path stays inside the root. `..` may climb inside the module but not
//! above it; an absolute target leaves the module (unless the root is the filesystem root,
//! as in a chroot). A refusal is reported as `ELOOP`, stock's errno for it.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::create_dir(dir.path().join("real")).unwrap();
//! std::os::unix::fs::symlink("real", dir.path().join("link")).unwrap();
//! std::os::unix::fs::symlink("../..", dir.path().join("up")).unwrap();
//! let c = rtsync_tree::Confine::new(dir.path().to_path_buf());
//! assert_eq!(c.resolve(std::path::Path::new("link"), true).unwrap(), dir.path().join("real"));
//! assert!(c.resolve(std::path::Path::new("up"), true).is_err());
//! ```

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// How many symlinks one resolution may follow (stock's bound).
const MAX_LINKS: usize = 40;

/// A module root that followed symlinks may not leave.
#[derive(Debug, Clone)]
pub struct Confine {
    /// The root as the paths given to [`Confine::resolve`] start: usually `.` (the daemon's
    /// working directory is the module root) or the module's path.
    base: PathBuf,
    /// The root is `/` (a chroot): absolute symlink targets stay inside.
    at_fs_root: bool,
    /// Symlinks owned by this uid (or root) are followed.
    trusted_uid: u32,
}

fn refused() -> io::Error {
    io::Error::from_raw_os_error(libc::ELOOP)
}

impl Confine {
    /// Paths are resolved relative to `base`, which is the module root.
    pub fn new(base: PathBuf) -> Self {
        // SAFETY: geteuid has no preconditions.
        let trusted_uid = unsafe { libc::geteuid() };
        // (`dir/` names the same root as `dir`: the paths given start with it either way.)
        let mut bytes = base.as_os_str().as_bytes();
        while bytes.len() > 1 && bytes.ends_with(b"/") {
            bytes = &bytes[..bytes.len() - 1];
        }
        let base = PathBuf::from(OsStr::from_bytes(bytes));
        Confine {
            base,
            at_fs_root: false,
            trusted_uid,
        }
    }

    /// The module root is the filesystem root (chroot): absolute targets are inside.
    pub fn at_fs_root(mut self, yes: bool) -> Self {
        self.at_fs_root = yes;
        self
    }

    /// The module root as paths start.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// Resolves `path` (relative to the root; a leading `/` or the root itself as prefix is
    /// taken off) to the physical path of what it names, following symlinks on the way
    /// (and the last component too when `follow_last`) under the rules above.
    pub fn resolve(&self, path: &Path, follow_last: bool) -> io::Result<PathBuf> {
        self.walk(path, follow_last, None)
    }

    /// Resolves the directory `path` as [`Confine::resolve`] does, creating each missing
    /// component (with `mode`, less the umask) as `mkdir -p` would: for the directories an
    /// operator path names (`--backup-dir`, `--partial-dir`), which may not exist yet.
    pub fn create_dir_all(&self, path: &Path, mode: u32) -> io::Result<PathBuf> {
        let real = self.walk(path, true, Some(mode))?;
        if std::fs::symlink_metadata(&real)?.is_dir() {
            Ok(real)
        } else {
            Err(io::Error::from_raw_os_error(libc::ENOTDIR))
        }
    }

    fn walk(&self, path: &Path, follow_last: bool, create: Option<u32>) -> io::Result<PathBuf> {
        let bytes = path.as_os_str().as_bytes();
        let base = self.base.as_os_str().as_bytes();
        let rel = match bytes.strip_prefix(base) {
            Some(r) if base != b"." && (r.is_empty() || r.starts_with(b"/")) => r,
            _ => bytes,
        };
        let mut todo: Vec<Vec<u8>> = components(rel).into_iter().rev().collect();
        let mut stack: Vec<Vec<u8>> = Vec::new();
        let mut links = 0;
        while let Some(comp) = todo.pop() {
            match comp.as_slice() {
                b"." => continue,
                b".." => {
                    if stack.pop().is_none() && !self.at_fs_root {
                        return Err(refused());
                    }
                    continue;
                }
                _ => {}
            }
            let here = self.join(&stack, Some(&comp));
            let md = match std::fs::symlink_metadata(&here) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound && create.is_some() => {
                    use std::os::unix::fs::DirBuilderExt;
                    let made = std::fs::DirBuilder::new()
                        .mode(create.unwrap_or(0o777))
                        .create(&here);
                    match made {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                        Err(e) => return Err(e),
                    }
                    // Look again at what is there now (never trust the name blindly).
                    todo.push(comp);
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && todo.is_empty() => {
                    // A leaf that does not exist (yet) names a place inside.
                    stack.push(comp);
                    break;
                }
                Err(e) => return Err(e),
            };
            let last = todo.is_empty();
            if md.file_type().is_symlink() && (!last || follow_last) {
                if md.uid() != 0 && md.uid() != self.trusted_uid && !rtsync_oppath::insecure_links()
                {
                    return Err(refused());
                }
                links += 1;
                if links > MAX_LINKS {
                    return Err(refused());
                }
                let target = std::fs::read_link(&here)?;
                let t = target.as_os_str().as_bytes();
                if t.starts_with(b"/") {
                    if !self.at_fs_root {
                        return Err(refused());
                    }
                    stack.clear();
                }
                todo.extend(components(t).into_iter().rev());
                continue;
            }
            if !last && !md.is_dir() {
                return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
            }
            stack.push(comp);
        }
        Ok(self.join(&stack, None))
    }

    fn join(&self, stack: &[Vec<u8>], extra: Option<&[u8]>) -> PathBuf {
        let mut p = self.base.clone();
        for c in stack.iter().map(|c| c.as_slice()).chain(extra) {
            p.push(OsStr::from_bytes(c));
        }
        p
    }
}

/// Opens `path` for reading the way stock opens files a client names for itself
/// (`--password-file`, `--early-input`): a symlink anywhere on the way is followed only when
/// it is owned by root or by us, so one planted by another user cannot redirect the read.
pub fn open_no_attacker_symlinks(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    let real = Confine::new(PathBuf::from("/"))
        .at_fs_root(true)
        .resolve(&abs, true)?;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(real)
}

fn components(p: &[u8]) -> Vec<Vec<u8>> {
    p.split(|&c| c == b'/')
        .filter(|c| !c.is_empty())
        .map(|c| c.to_vec())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_inside_refuses_outside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("mod");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(root.join("targetdir")).unwrap();
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        std::fs::write(root.join("target.txt"), "t").unwrap();
        std::fs::write(dir.path().join("outside/secret"), "s").unwrap();
        let link = |t: &str, l: &str| std::os::unix::fs::symlink(t, root.join(l)).unwrap();
        link("../target.txt", "sub/in_file");
        link("../targetdir", "sub/in_dir");
        link("../../outside/secret", "sub/esc");
        link("/etc/passwd", "abs");
        link("loop", "loop");
        let c = Confine::new(root.clone());
        let ok = |p: &str, follow: bool| c.resolve(Path::new(p), follow);
        assert_eq!(ok("sub/in_file", true).unwrap(), root.join("target.txt"));
        assert_eq!(ok("sub/in_file", false).unwrap(), root.join("sub/in_file"));
        assert_eq!(ok("sub/in_dir/x", false).unwrap(), root.join("targetdir/x"));
        assert_eq!(
            ok("sub/../target.txt", true).unwrap(),
            root.join("target.txt")
        );
        assert_eq!(
            ok(&format!("{}/sub/in_dir", root.display()), true).unwrap(),
            root.join("targetdir")
        );
        for bad in ["sub/esc", "abs", "loop", "../mod/target.txt", "sub/../../x"] {
            let e = ok(bad, true).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ELOOP), "{bad}");
        }
        // Another user's symlink is never followed, wherever it is.
        if unsafe { libc::geteuid() } == 0 {
            let planted = root.join("planted");
            std::os::unix::fs::symlink("target.txt", &planted).unwrap();
            let c = std::ffi::CString::new(planted.display().to_string()).unwrap();
            // SAFETY: a valid path.
            assert_eq!(unsafe { libc::lchown(c.as_ptr(), 65534, 65534) }, 0);
            let e = ok("planted", true).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
            assert!(open_no_attacker_symlinks(&planted).is_err());
            assert!(open_no_attacker_symlinks(&root.join("sub/in_file")).is_ok());
        }
        // Directories made on the way stay inside too: through a trusted link, not out.
        let made = c
            .create_dir_all(Path::new("sub/in_dir/new/deeper"), 0o700)
            .unwrap();
        assert_eq!(made, root.join("targetdir/new/deeper"));
        assert!(made.is_dir());
        let e = c
            .create_dir_all(Path::new("sub/esc/../made"), 0o700)
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
        link("../outside", "up");
        let e = c.create_dir_all(Path::new("up/made"), 0o700).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
        assert!(!dir.path().join("outside/made").exists());
        // A chroot's root: absolute targets and `..` at the top stay inside.
        let c = Confine::new(root.clone()).at_fs_root(true);
        assert!(c.resolve(Path::new("../target.txt"), true).is_ok());
    }
}
