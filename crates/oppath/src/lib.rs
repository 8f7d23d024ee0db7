//! Opening paths safely against symlink plants and races.
//!
//! Two rules, one per kind of path:
//!
//! - **Operator paths** (the destination directory, `--backup-dir`, `--partial-dir`,
//!   `--temp-dir`, `--*-dest`, `--files-from`, `--exclude-from`, merge files, `--log-file`,
//!   `--write-batch`, password files): a symlink at any component — parent or leaf — is
//!   followed only when it is owned by root or by our effective uid; another user's symlink
//!   is refused with `ELOOP` (print [`REFUSAL`] then the caller's usual error). The walk holds
//!   a directory descriptor per component, so a component swapped for a symlink after it was
//!   checked is not followed either. `--insecure-links` ([`set_insecure_links`]) restores
//!   plain following. Functions: [`open`], [`open_at`], [`open_dir`], [`open_parent`],
//!   [`create_dir_all`], [`check`].
//! - **Transfer paths** beneath a root (the sender's scan, names from the file list):
//!   [`open_beneath`] follows no symlink at all and never leaves the root.
//!
//! ```no_run
//! use std::path::Path;
//! // --backup-dir: the directory a backup goes into, created if missing.
//! let dir = rtsync_oppath::create_dir_all(rtsync_oppath::Base::Cwd, Path::new("/b/sub"), 0o777);
//! if let Err(e) = &dir {
//!     if rtsync_oppath::is_refusal(e) {
//!         eprintln!("{}", rtsync_oppath::REFUSAL);
//!     }
//! }
//! ```

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// What stock rsync prints when an operator path runs into another user's symlink.
pub const REFUSAL: &str = "refusing to follow a symlink owned by an untrusted user; use \
     --insecure-links locally or \"insecure links = yes\" in a daemon module ONLY if every \
     path component is trusted";

static INSECURE: AtomicBool = AtomicBool::new(false);

/// `--insecure-links` (locally) or a module's `insecure links = yes`: operator paths follow
/// every symlink again. Process-wide; set once before the transfer.
pub fn set_insecure_links(on: bool) {
    INSECURE.store(on, Ordering::Relaxed);
}

/// Whether [`set_insecure_links`] turned the ownership rule off.
pub fn insecure_links() -> bool {
    INSECURE.load(Ordering::Relaxed)
}

static CONFINE_ROOT: std::sync::Mutex<Option<Vec<Vec<u8>>>> = std::sync::Mutex::new(None);

/// A daemon module's root (a physical path): from now on an operator path of this process
/// (merge files, `--files-from`, ...) may follow a trusted symlink only while what it
/// resolves to stays beneath `root`, as stock's secure resolver confines them to the module.
/// `None` lifts it. `--insecure-links` / `insecure links = yes` overrides it.
pub fn set_confine_root(root: Option<&Path>) {
    let comps = root.map(|r| comps_of(r.as_os_str().as_bytes()));
    if let Ok(mut g) = CONFINE_ROOT.lock() {
        *g = comps;
    }
}

fn confine_root() -> Option<Vec<Vec<u8>>> {
    CONFINE_ROOT.lock().ok().and_then(|g| g.clone())
}

fn comps_of(p: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for c in p.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            c => out.push(c.to_vec()),
        }
    }
    out
}

/// The absolute path of where a walk stands, kept to check it against the confinement root.
#[derive(Clone)]
struct Tracker {
    root: Vec<Vec<u8>>,
    at: Vec<Vec<u8>>,
}

impl Tracker {
    fn start(
        base: Base<'_>,
        path: &[u8],
        root: Option<Vec<Vec<u8>>>,
    ) -> io::Result<Option<Tracker>> {
        let Some(root) = root.filter(|_| !insecure_links()) else {
            return Ok(None);
        };
        let at = if path.first() == Some(&b'/') {
            Vec::new()
        } else {
            let here = match base {
                Base::Cwd => std::env::current_dir()?,
                Base::Dir(fd) => fd_path(fd)?,
            };
            comps_of(here.as_os_str().as_bytes())
        };
        let t = Tracker { root, at };
        t.check()?;
        Ok(Some(t))
    }

    /// Inside the root, or still on the way down to it (an ancestor of it).
    fn check(&self) -> io::Result<()> {
        let n = self.at.len().min(self.root.len());
        if self.at[..n] == self.root[..n] {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(libc::ELOOP))
        }
    }

    fn step(&mut self, comp: &[u8]) -> io::Result<()> {
        if comp == b".." {
            self.at.pop();
        } else if comp != b"." {
            self.at.push(comp.to_vec());
        }
        self.check()
    }

    fn restart(&mut self) {
        self.at.clear();
    }
}

/// Whether an error is the ownership refusal (or a symlink met with `O_NOFOLLOW`): `ELOOP`.
pub fn is_refusal(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

/// Whether a symlink owned by `uid` may be followed in an operator path.
pub fn trusted_owner(uid: u32) -> bool {
    // SAFETY: geteuid has no preconditions.
    uid == 0 || uid == unsafe { libc::geteuid() }
}

/// Where a relative path starts.
#[derive(Clone, Copy, Debug)]
pub enum Base<'a> {
    /// The working directory.
    Cwd,
    /// An open directory.
    Dir(BorrowedFd<'a>),
}

impl Base<'_> {
    fn raw(&self) -> RawFd {
        match self {
            Base::Cwd => libc::AT_FDCWD,
            Base::Dir(fd) => fd.as_raw_fd(),
        }
    }
}

/// Opens an operator path relative to the working directory (see the crate docs).
pub fn open(path: &Path, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    open_at(Base::Cwd, path, flags, mode)
}

/// Opens an operator path relative to `base`; `flags` as for `open(2)` (`O_CLOEXEC` is
/// added, `O_NOFOLLOW` is implied for the last component once its symlinks are resolved).
pub fn open_at(base: Base<'_>, path: &Path, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    walk(base, path.as_os_str().as_bytes(), flags, mode, false)
}

/// Opens an operator path that must be a directory.
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    open(path, libc::O_RDONLY | libc::O_DIRECTORY, 0)
}

/// Opens the directory `path` under the operator rule, creating missing components (each
/// with `mode`, less the umask) as `mkdir -p` does.
pub fn create_dir_all(base: Base<'_>, path: &Path, mode: u32) -> io::Result<OwnedFd> {
    walk(
        base,
        path.as_os_str().as_bytes(),
        libc::O_RDONLY | libc::O_DIRECTORY,
        mode,
        true,
    )
}

/// Opens the directory holding `path`'s last component under the operator rule (creating
/// it, as [`create_dir_all`], when `create`) and returns it with that last name, for the
/// `*at` calls that then act on the leaf (`renameat`, `openat(.. O_NOFOLLOW)`, ...).
pub fn open_parent(base: Base<'_>, path: &Path, create: bool) -> io::Result<(OwnedFd, OsString)> {
    let bytes = path.as_os_str().as_bytes();
    let trimmed = {
        let mut end = bytes.len();
        while end > 1 && bytes[end - 1] == b'/' {
            end -= 1;
        }
        &bytes[..end]
    };
    let (parent, leaf): (&[u8], &[u8]) = match trimmed.iter().rposition(|&c| c == b'/') {
        Some(0) => (b"/", &trimmed[1..]),
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => (b".", trimmed),
    };
    if leaf.is_empty() || leaf == b"." || leaf == b".." {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let fd = walk(
        base,
        parent,
        libc::O_RDONLY | libc::O_DIRECTORY,
        0o777,
        create,
    )?;
    Ok((fd, OsStr::from_bytes(leaf).to_os_string()))
}

/// Removes `leaf` in the directory `dir` and, when it is a directory, everything in it,
/// never leaving `dir`: each level is opened from the one above with `O_NOFOLLOW` and
/// emptied through its descriptor, so a component swapped for a symlink meanwhile is
/// removed as the link it is, not followed.
pub fn remove_tree_at(dir: BorrowedFd<'_>, leaf: &OsStr) -> io::Result<()> {
    let c = cstr(leaf.as_bytes())?;
    let sub = match open_subdir(dir, &c) {
        Ok(sub) => sub,
        // Not a directory (a symlink included): unlinked as it is.
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTDIR) | Some(libc::ELOOP)) => {
            return unlink_at(dir, &c, 0)
        }
        Err(e) => return Err(e),
    };
    // (Listed through the descriptor itself: /proc's link leads to the directory opened.)
    let names: Vec<OsString> = std::fs::read_dir(format!("/proc/self/fd/{}", sub.as_raw_fd()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    for name in names {
        remove_tree_at(sub.as_fd(), &name)?;
    }
    unlink_at(dir, &c, libc::AT_REMOVEDIR)
}

/// Opens the directory `name` in `dir` for reading, without following a symlink there
/// (`ELOOP`) or opening anything but a directory (`ENOTDIR`).
pub fn open_subdir(dir: BorrowedFd<'_>, name: &std::ffi::CStr) -> io::Result<OwnedFd> {
    // SAFETY: `dir` is an open descriptor and `name` a NUL-terminated name.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned here.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn unlink_at(dir: BorrowedFd<'_>, name: &CString, flags: i32) -> io::Result<()> {
    // SAFETY: `dir` is an open descriptor and `name` a NUL-terminated name.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) } < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Checks an operator path that may not exist (yet): `Ok(true)` when it resolves,
/// `Ok(false)` when a component is missing, `Err` (`ELOOP` for the refusal) otherwise.
pub fn check(path: &Path) -> io::Result<bool> {
    match open(path, libc::O_PATH, 0) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The path an open descriptor stands for now (from `/proc/self/fd`).
pub fn fd_path(fd: BorrowedFd<'_>) -> io::Result<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn cstr(b: &[u8]) -> io::Result<CString> {
    CString::new(b).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn owned(fd: i32) -> io::Result<OwnedFd> {
    if fd < 0 {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: a descriptor the kernel just gave us.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

fn openat(dir: RawFd, name: &[u8], flags: i32, mode: u32) -> io::Result<OwnedFd> {
    let c = cstr(name)?;
    // SAFETY: valid descriptor (or AT_FDCWD) and NUL-terminated name.
    owned(unsafe { libc::openat(dir, c.as_ptr(), flags | libc::O_CLOEXEC, mode) })
}

fn lstat_at(dir: RawFd, name: &[u8]) -> io::Result<libc::stat> {
    let c = cstr(name)?;
    // SAFETY: zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid descriptor, NUL-terminated name, writable stat.
    let r = unsafe { libc::fstatat(dir, c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(st)
    }
}

fn readlink_at(dir: RawFd, name: &[u8]) -> io::Result<Vec<u8>> {
    let c = cstr(name)?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: valid descriptor, NUL-terminated name, buffer of the length passed.
    let n = unsafe { libc::readlinkat(dir, c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

const TRAVERSE: i32 = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW;
const MAX_SYMLINKS: u32 = 40;

/// The ownership walk: one component at a time from `base` (or `/`), each directory held
/// open, a symlink followed (its target spliced in front of the rest) only when trusted.
fn walk(base: Base<'_>, path: &[u8], flags: i32, mode: u32, mkdirs: bool) -> io::Result<OwnedFd> {
    walk_in(base, path, flags, mode, mkdirs, confine_root())
}

/// [`walk`] confined beneath `root` (components of a physical absolute path) when given.
fn walk_in(
    base: Base<'_>,
    path: &[u8],
    flags: i32,
    mode: u32,
    mkdirs: bool,
    root: Option<Vec<Vec<u8>>>,
) -> io::Result<OwnedFd> {
    if path.is_empty() {
        return Err(io::Error::from_raw_os_error(libc::ENOENT));
    }
    let trust_all = insecure_links();
    let mut track = Tracker::start(base, path, root)?;
    fn step(t: &mut Option<Tracker>, comp: &[u8]) -> io::Result<()> {
        match t {
            Some(t) => t.step(comp),
            None => Ok(()),
        }
    }
    let mut dir: Option<OwnedFd> = None;
    let at = |d: &Option<OwnedFd>| d.as_ref().map_or(base.raw(), |f| f.as_raw_fd());
    let mut remaining: Vec<u8> = path.to_vec();
    if remaining[0] == b'/' {
        dir = Some(openat(libc::AT_FDCWD, b"/", TRAVERSE, 0)?);
    }
    let mut links = 0;
    let mut relooks = 0;
    loop {
        let start = remaining.iter().position(|&c| c != b'/');
        let Some(start) = start else { break };
        let end = remaining[start..]
            .iter()
            .position(|&c| c == b'/')
            .map_or(remaining.len(), |i| start + i);
        let comp = remaining[start..end].to_vec();
        let is_last = end == remaining.len();
        let rest = remaining[end..].to_vec();
        if comp == b"." {
            remaining = rest;
            continue;
        }
        if comp == b".." {
            step(&mut track, b"..")?;
            dir = Some(openat(at(&dir), b"..", TRAVERSE, 0)?);
            remaining = rest;
            continue;
        }
        let st = match lstat_at(at(&dir), &comp) {
            Ok(st) => st,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                if is_last && flags & libc::O_CREAT != 0 {
                    step(&mut track, &comp)?;
                    return openat(at(&dir), &comp, flags | libc::O_NOFOLLOW, mode);
                }
                if mkdirs {
                    if let Some(t) = &track {
                        // Never make a directory outside the confinement root.
                        t.clone().step(&comp)?;
                    }
                    let c = cstr(&comp)?;
                    // SAFETY: valid descriptor and NUL-terminated name.
                    let r = unsafe { libc::mkdirat(at(&dir), c.as_ptr(), mode) };
                    if r < 0 {
                        let e = io::Error::last_os_error();
                        if e.raw_os_error() != Some(libc::EEXIST) {
                            return Err(e);
                        }
                    }
                    continue; // look at what is there now
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let kind = st.st_mode & libc::S_IFMT;
        if kind == libc::S_IFLNK {
            if !trust_all && !trusted_owner(st.st_uid) {
                return Err(io::Error::from_raw_os_error(libc::ELOOP));
            }
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(io::Error::from_raw_os_error(libc::ELOOP));
            }
            let mut target = readlink_at(at(&dir), &comp)?;
            if target.first() == Some(&b'/') {
                dir = Some(openat(libc::AT_FDCWD, b"/", TRAVERSE, 0)?);
                if let Some(t) = track.as_mut() {
                    t.restart();
                }
            }
            target.extend_from_slice(&rest);
            remaining = target;
            continue;
        }
        // A component swapped for a symlink between the look and the open fails the open
        // (O_NOFOLLOW gives ELOOP, or ENOTDIR with O_DIRECTORY): look again, so the symlink
        // is judged as any other. The kind seen may already be back (swapped twice), so any
        // such failure the look does not explain is looked at again.
        let swapped = |e: &io::Error| match e.raw_os_error() {
            Some(libc::ELOOP) => true,
            Some(libc::ENOTDIR) => kind == libc::S_IFDIR,
            _ => false,
        } && lstat_at(at(&dir), &comp).is_ok();
        // Where the open lands must be inside the confinement before anything is opened.
        if let Some(t) = &track {
            t.clone().step(&comp)?;
        }
        if is_last {
            let opened = openat(at(&dir), &comp, flags | libc::O_NOFOLLOW, mode);
            match opened {
                Err(e) if relooks < MAX_SYMLINKS && swapped(&e) => {
                    relooks += 1;
                    continue;
                }
                r => return r,
            }
        }
        if kind != libc::S_IFDIR {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        match openat(at(&dir), &comp, TRAVERSE, 0) {
            Ok(fd) => {
                step(&mut track, &comp)?;
                dir = Some(fd);
            }
            Err(e) if relooks < MAX_SYMLINKS && swapped(&e) => {
                relooks += 1;
                continue;
            }
            Err(e) => return Err(e),
        }
        remaining = rest;
    }
    // The path named a directory (trailing slash, `.`, `/`).
    if flags & (libc::O_DIRECTORY | libc::O_PATH) != 0 {
        openat(at(&dir), b".", flags, mode)
    } else {
        Err(io::Error::from_raw_os_error(libc::EISDIR))
    }
}

/// The kernel's `struct open_how` (libc's is non-exhaustive).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Opens `rel` strictly beneath `root`: no symlink at any component (leaf included), no
/// `..`, no absolute path. For transfer paths a peer or a racing user could redirect (the
/// sender's scan, file-list names): a parent swapped for a symlink fails with `ELOOP`.
pub fn open_beneath(
    root: BorrowedFd<'_>,
    rel: &Path,
    flags: i32,
    mode: u32,
) -> io::Result<OwnedFd> {
    let bytes = rel.as_os_str().as_bytes();
    let escape = || io::Error::from_raw_os_error(libc::EXDEV);
    if bytes.first() == Some(&b'/') {
        return Err(escape());
    }
    let parts: Vec<&[u8]> = bytes
        .split(|&c| c == b'/')
        .filter(|p| !p.is_empty() && *p != b".")
        .collect();
    if parts.contains(&&b".."[..]) {
        return Err(escape());
    }
    let c = cstr(if bytes.is_empty() { b"." } else { bytes })?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: if flags & libc::O_CREAT != 0 {
            u64::from(mode)
        } else {
            0
        },
        resolve: libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS,
    };
    let err = match openat2(root.as_raw_fd(), &c, &how) {
        Ok(fd) => return Ok(fd),
        Err(e) => e,
    };
    if err.raw_os_error() != Some(libc::ENOSYS) {
        return Err(err);
    }
    // Older kernels: every component with O_NOFOLLOW.
    let Some((last, dirs)) = parts.split_last() else {
        return openat(root.as_raw_fd(), b".", flags, mode);
    };
    let mut dir: Option<OwnedFd> = None;
    for part in dirs {
        let at = dir.as_ref().map_or(root.as_raw_fd(), |f| f.as_raw_fd());
        dir = Some(openat(at, part, TRAVERSE, 0)?);
    }
    let at = dir.as_ref().map_or(root.as_raw_fd(), |f| f.as_raw_fd());
    openat(at, last, flags | libc::O_NOFOLLOW, mode)
}

/// openat2(2) of `path` at `dirfd` as `how` says.
fn openat2(dirfd: RawFd, path: &std::ffi::CStr, how: &OpenHow) -> io::Result<OwnedFd> {
    // SAFETY: valid dirfd, NUL-terminated path, and an open_how of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            path.as_ptr(),
            how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd >= 0 {
        owned(fd as i32)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Opens the directory `rel` beneath `root`, following symlinks only while they stay in the
/// tree (a relative target that does not climb above `root`), as stock's receiver resolves a
/// transfer path's parent before it renames a finished file into it. An absolute or escaping
/// symlink — say a parent swapped for `-> ../outside` during the transfer — fails with
/// `ELOOP`.
pub fn open_dir_in_tree(root: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    let bytes = rel.as_os_str().as_bytes();
    if bytes.first() == Some(&b'/') {
        return Err(io::Error::from_raw_os_error(libc::ELOOP));
    }
    let c = cstr(if bytes.is_empty() { b"." } else { bytes })?;
    let how = OpenHow {
        flags: (libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS,
    };
    let err = match openat2(root.as_raw_fd(), &c, &how) {
        Ok(fd) => return Ok(fd),
        Err(e) => e,
    };
    match err.raw_os_error() {
        Some(libc::EXDEV) => Err(io::Error::from_raw_os_error(libc::ELOOP)),
        // Older kernels: no symlink at all on the way.
        Some(libc::ENOSYS) => open_beneath(root, rel, libc::O_RDONLY | libc::O_DIRECTORY, 0),
        _ => Err(err),
    }
}

#[cfg(test)]
mod tests;
