//! Filesystem operations of the receiving side: temp files renamed into place, metadata
//! application (permissions, owner, nanosecond times, including on symlinks), special files.

use std::ffi::{CString, OsStr};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

fn cpath(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Opens a scanned source entry read at `path` and listed as `name` without following a
/// symlink swapped into it after the scan: when `path` is a root followed by `name`, `name` is
/// opened strictly beneath that root (no symlink at any component, see
/// `rtsync_oppath::open_beneath`); otherwise (`-R` names, the root itself) the last component is
/// opened `O_NOFOLLOW`. Not for `-L`/`--copy-*links`, where the sender follows symlinks.
pub fn open_source(path: &Path, name: &[u8], flags: i32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::AsFd;
    // An empty path is the working directory (a daemon module's root, for one).
    let path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    let p = path.as_os_str().as_bytes();
    let under_root = !name.is_empty()
        && name != b"."
        && p.len() > name.len()
        && p.ends_with(name)
        && p[p.len() - name.len() - 1] == b'/';
    if under_root {
        let root = Path::new(OsStr::from_bytes(&p[..p.len() - name.len()]));
        let root = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(root)?;
        return rtsync_oppath::open_beneath(
            root.as_fd(),
            Path::new(OsStr::from_bytes(name)),
            flags,
            0,
        );
    }
    let c = cpath(path)?;
    // SAFETY: a NUL-terminated path.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_NOFOLLOW | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor we just opened.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

/// `--preallocate`: reserves `len` bytes for `file` before it is written, keeping its size
/// as it is until data arrives. Not for a `sparse` file: its holes must stay holes (stock
/// reserves everything and punches the zero runs out again; the blocks end up the same).
/// Filesystems that cannot preallocate are not an error.
pub fn preallocate(file: &File, len: u64, sparse: bool) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    if len == 0 || sparse {
        return Ok(());
    }
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    // SAFETY: fallocate on a descriptor we own, with a valid mode and range.
    if unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, 0, len) } == 0 {
        return Ok(());
    }
    match io::Error::last_os_error() {
        e if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(()),
        e => Err(e),
    }
}

/// Sets a path's mtime (with nanoseconds) without following a final symlink; atime is left alone.
pub fn set_mtime(path: &Path, mtime: i64, nsec: u32) -> io::Result<()> {
    set_times(path, Some((mtime, nsec)), None)
}

/// Sets a path's mtime (with nanoseconds) and/or its atime (whole seconds, as rsync carries
/// it) without following a final symlink; a time not given is left alone.
pub fn set_times(path: &Path, mtime: Option<(i64, u32)>, atime: Option<i64>) -> io::Result<()> {
    let c = cpath(path)?;
    let omit = libc::timespec {
        tv_sec: 0,
        tv_nsec: libc::UTIME_OMIT,
    };
    let times = [
        atime.map_or(omit, |a| libc::timespec {
            tv_sec: a as libc::time_t,
            tv_nsec: 0,
        }),
        mtime.map_or(omit, |(m, nsec)| libc::timespec {
            tv_sec: m as libc::time_t,
            tv_nsec: nsec as libc::c_long,
        }),
    ];
    // SAFETY: `c` is a valid NUL-terminated path and `times` has two entries as required.
    check(unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

/// Changes permission bits (never on a symlink: Linux has no symlink modes).
pub fn set_perms(path: &Path, mode: u32) -> io::Result<()> {
    let c = cpath(path)?;
    // SAFETY: valid C string.
    check(unsafe { libc::chmod(c.as_ptr(), (mode & 0o7777) as libc::mode_t) })
}

/// Changes owner and/or group without following a final symlink; `u32::MAX` leaves one alone.
pub fn set_owner(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    let c = cpath(path)?;
    // SAFETY: valid C string.
    check(unsafe { libc::lchown(c.as_ptr(), uid, gid) })
}

/// Creates a device node, fifo or socket.
pub fn make_node(path: &Path, mode: u32, rdev: u64) -> io::Result<()> {
    let c = cpath(path)?;
    if mode & libc::S_IFMT == libc::S_IFIFO {
        // SAFETY: valid C string.
        return check(unsafe { libc::mkfifo(c.as_ptr(), (mode & 0o7777) as libc::mode_t) });
    }
    // SAFETY: valid C string.
    check(unsafe { libc::mknod(c.as_ptr(), mode as libc::mode_t, rdev as libc::dev_t) })
}

/// Paths at least this long are reached through a held directory (see [`reachable`]).
const LONG_PATH: usize = 3800;

/// A path the kernel accepts for `path`, however long: paths shorter than PATH_MAX are
/// themselves; a longer one becomes `/proc/self/fd/N/REST`, N a directory of it held open
/// (reached one piece at a time and kept for the process's life; one that was removed since
/// is opened again). Where no such directory can be opened the path is returned as it is
/// (and fails with ENAMETOOLONG where it is used, as before).
pub fn reachable(path: PathBuf) -> PathBuf {
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() < LONG_PATH {
        return path;
    }
    // The directory part is cut at the first slash past which the rest fits.
    let room = LONG_PATH - 40;
    let from = bytes.len() - room;
    let Some(cut) = bytes[from..]
        .iter()
        .position(|&c| c == b'/')
        .map(|i| i + from)
    else {
        return path;
    };
    let (dir, rest) = (&bytes[..cut], &bytes[cut + 1..]);
    match held_dir(dir) {
        Some(fd) => {
            let mut p = PathBuf::from(format!("/proc/self/fd/{fd}"));
            p.push(OsStr::from_bytes(rest));
            p
        }
        None => path,
    }
}

/// The descriptor number of directory `dir` (a long path) held open for [`reachable`].
fn held_dir(dir: &[u8]) -> Option<i32> {
    use std::collections::HashMap;
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::sync::{Mutex, OnceLock};
    static HELD: OnceLock<Mutex<HashMap<Vec<u8>, OwnedFd>>> = OnceLock::new();
    let mut held = HELD
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(fd) = held.get(dir) {
        // A directory removed since (no links left) is not the one the name means now.
        let live = nlink_of(fd.as_raw_fd()).is_some_and(|n| n > 0);
        if live {
            return Some(fd.as_raw_fd());
        }
        held.remove(dir);
    }
    drop(held);
    // (The directory's own path may be long too: reached the same way.)
    let via = reachable(PathBuf::from(OsStr::from_bytes(dir)));
    let fd: OwnedFd = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(via)
        .ok()?
        .into();
    let raw = fd.as_raw_fd();
    HELD.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(dir.to_vec(), fd);
    Some(raw)
}

/// The link count of an open descriptor.
fn nlink_of(fd: i32) -> Option<u64> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat on a descriptor we hold, into a stat buffer of the right size.
    if unsafe { libc::fstat(fd, st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: fstat succeeded and filled the buffer.
    Some(unsafe { st.assume_init() }.st_nlink)
}

/// Moves `from` to `to` by copying, for a rename that cannot cross filesystems (a
/// `--backup-dir` elsewhere): a file's data, a symlink's target or a node's device, with
/// owner, permissions, mtime and a `--fake-super` stand-in's attributes as stock's backup
/// copy keeps them; then `from` is removed. A directory is not copied (`EISDIR`).
pub fn move_by_copy(from: &Path, to: &Path) -> io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let md = std::fs::symlink_metadata(from)?;
    let ft = md.file_type();
    if ft.is_dir() {
        return Err(io::Error::from_raw_os_error(libc::EISDIR));
    }
    // A stale entry under the backup name goes first, as stock's copy does.
    match std::fs::remove_file(to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    if ft.is_file() {
        let mut src = File::open(from)?;
        let mut dst = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(to)?;
        io::copy(&mut src, &mut dst)?;
        for name in [
            crate::fake::STAT_ATTR,
            crate::fake::ACCESS_ACL_ATTR,
            crate::fake::DEFAULT_ACL_ATTR,
        ] {
            if let Ok(Some(v)) = crate::xattr::get(from, name) {
                let _ = crate::xattr::set(to, name, &v);
            }
        }
        let _ = set_owner(to, md.uid(), md.gid());
        dst.set_permissions(std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
    } else if ft.is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(from)?, to)?;
        let _ = set_owner(to, md.uid(), md.gid());
    } else {
        make_node(to, md.mode(), md.rdev())?;
        let _ = set_owner(to, md.uid(), md.gid());
        let _ = set_perms(to, md.mode());
    }
    let _ = set_mtime(to, md.mtime(), md.mtime_nsec() as u32);
    std::fs::remove_file(from)
}

/// Why [`create_over`] failed: the path it failed on (the temporary name when it was
/// replacing something), whether that was the final rename, and the error.
#[derive(Debug)]
pub struct CreateFailed {
    pub at: PathBuf,
    pub renaming: bool,
    pub err: io::Error,
}

/// Makes a new non-regular node (symlink, device, fifo, hard link) at `dest` with `create`.
/// When something that is not a directory is already there (`replacing`), the node is made
/// under a temporary name beside it (`.NAME.N`, as stock's atomic_create names it) and renamed
/// over the old one, so the name never goes missing for a reader of the destination; the
/// temporary is removed if the rename fails. Otherwise it is made at `dest` directly.
pub fn create_over(
    dest: &Path,
    replacing: bool,
    create: impl Fn(&Path) -> io::Result<()>,
) -> Result<(), CreateFailed> {
    let failed = |at: &Path, renaming, err| CreateFailed {
        at: at.to_path_buf(),
        renaming,
        err,
    };
    if !replacing {
        return create(dest).map_err(|e| failed(dest, false, e));
    }
    let first = std::process::id();
    for n in first..first + 100 {
        let tmp = unique_name_beside(dest, n);
        match create(&tmp) {
            Ok(()) => {
                return std::fs::rename(&tmp, dest).map_err(|e| {
                    let _ = std::fs::remove_file(&tmp);
                    failed(&tmp, true, e)
                })
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(failed(&tmp, false, e)),
        }
    }
    let tmp = unique_name_beside(dest, first);
    Err(failed(&tmp, false, io::ErrorKind::AlreadyExists.into()))
}

/// `.NAME.N` beside `dest`: a leading dot of NAME is not doubled, a trailing one is dropped,
/// and NAME is cut so the whole stays within NAME_MAX (stock's get_tmpname).
fn unique_name_beside(dest: &Path, n: u32) -> PathBuf {
    let base = dest.file_name().map(OsStr::as_bytes).unwrap_or(b"");
    let base = base.strip_prefix(b".").unwrap_or(base);
    let mut base = &base[..base.len().min(255 - 1 - 7)];
    if let Some(b) = base.strip_suffix(b".") {
        base = b;
    }
    let mut name = Vec::with_capacity(base.len() + 12);
    name.push(b'.');
    name.extend_from_slice(base);
    name.extend_from_slice(format!(".{n}").as_bytes());
    dest.with_file_name(OsStr::from_bytes(&name))
}

/// A file being written next to its final name; removed on drop unless persisted.
///
/// rsync's naming: `.NAME.XXXXXX` in the destination directory (or a `--temp-dir`).
pub struct TempFile {
    path: PathBuf,
    file: Option<File>,
    keep: bool,
}

impl TempFile {
    /// Creates `.{basename}.XXXXXX` exclusively in `dir`, mode 0600.
    pub fn create_in(dir: &Path, basename: &[u8]) -> io::Result<TempFile> {
        // Keep the name within NAME_MAX like rsync does by shortening long basenames.
        let base = if basename.len() > 240 {
            &basename[..240]
        } else {
            basename
        };
        let mut attempt = 0u32;
        loop {
            let mut name = Vec::with_capacity(base.len() + 9);
            name.push(b'.');
            name.extend_from_slice(base);
            name.push(b'.');
            name.extend_from_slice(&random_suffix(attempt));
            let path = dir.join(OsStr::from_bytes(&name));
            match OpenOptions::new()
                .write(true)
                .read(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
            {
                Ok(file) => {
                    return Ok(TempFile {
                        path,
                        file: Some(file),
                        keep: false,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&mut self) -> &mut File {
        self.file
            .as_mut()
            .expect("temp file is open until persisted")
    }

    /// Closes the file and renames it to `dest`; from another filesystem (`--temp-dir`) it
    /// is copied over `dest` and removed, as rsync does.
    pub fn persist(mut self, dest: &Path) -> io::Result<()> {
        drop(self.file.take());
        match std::fs::rename(&self.path, dest) {
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                use std::os::unix::fs::MetadataExt;
                let md = std::fs::metadata(&self.path)?;
                let _ = std::fs::remove_file(dest);
                std::fs::copy(&self.path, dest)?;
                // The attributes were set on the temp file; carry them over (the copy has
                // the permissions already).
                let _ = set_owner(dest, md.uid(), md.gid());
                let _ = set_perms(dest, md.mode() & 0o7777);
                let _ = set_mtime(dest, md.mtime(), md.mtime_nsec() as u32);
                let _ = std::fs::remove_file(&self.path);
            }
            other => other?,
        }
        self.keep = true;
        Ok(())
    }

    /// Closes the file and leaves it where it is (for `--partial`).
    pub fn into_path(mut self) -> PathBuf {
        drop(self.file.take());
        self.keep = true;
        self.path.clone()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            drop(self.file.take());
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn random_suffix(attempt: u32) -> [u8; 6] {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ ((std::process::id() as u64) << 32)
        ^ (attempt as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut out = [0u8; 6];
    for b in &mut out {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        *b = ALPHABET[(seed % ALPHABET.len() as u64) as usize];
    }
    out
}

/// Whether a name looks like one of our (or rsync's) temp files for `basename`.
pub fn is_temp_name_for(name: &[u8], basename: &[u8]) -> bool {
    name.len() == basename.len() + 8
        && name[0] == b'.'
        && &name[1..1 + basename.len()] == basename
        && name[1 + basename.len()] == b'.'
}

/// How many bytes of `file` a sender sends: a regular file's length, or for a device (read
/// with `--copy-devices`) where seeking to its end lands (0 for most character devices;
/// stock's get_device_size), the position then back at the start. `None` for anything else.
pub fn content_size(file: &File) -> io::Result<Option<u64>> {
    use std::io::{Seek, SeekFrom};
    use std::os::unix::fs::FileTypeExt;
    let md = file.metadata()?;
    let ft = md.file_type();
    if ft.is_block_device() || ft.is_char_device() {
        let mut f = file;
        let len = f.seek(SeekFrom::End(0)).unwrap_or(0);
        f.seek(SeekFrom::Start(0))?;
        return Ok(Some(len));
    }
    Ok(md.is_file().then_some(md.len()))
}

/// A source file as stock's sender reads it: exactly the size it had when opened, whatever
/// happens to it meanwhile. A file that grew is read up to that size; one that shrank (or
/// cannot be read) is made up with zeros to it, and the error is kept in
/// [`SizedSource::status`] (`ENODATA` for an early end, as stock's `map_ptr` keeps it).
/// Without a size (not a regular file: a device read with `--copy-devices`) it is read to
/// its end.
pub struct SizedSource<F> {
    file: F,
    left: u64,
    bounded: bool,
    status: Option<i32>,
}

impl<F> SizedSource<F> {
    /// `file`, to be read as `size` bytes (`None`: to its end).
    pub fn new(file: F, size: Option<u64>) -> Self {
        SizedSource {
            file,
            left: size.unwrap_or(u64::MAX),
            bounded: size.is_some(),
            status: None,
        }
    }

    /// The error that cut the data short (an errno), if any: what was read was made up with
    /// zeros from there on.
    pub fn status(&self) -> Option<i32> {
        self.status
    }
}

impl SizedSource<&mut File> {
    /// The rest of the data into `dst` (in the kernel where it can be), zeros for what the
    /// file no longer has; the bytes written.
    pub fn copy_rest(&mut self, dst: &mut File) -> io::Result<u64> {
        use std::io::{Read, Write};
        let mut total = 0;
        if self.status.is_none() && self.left > 0 {
            let n = io::copy(&mut (&mut *self.file).take(self.left), dst)?;
            self.left -= n;
            total += n;
        }
        if self.left > 0 && self.bounded {
            self.status.get_or_insert(libc::ENODATA);
            let zeros = vec![0u8; self.left.min(1 << 20) as usize];
            while self.left > 0 {
                let n = self.left.min(zeros.len() as u64) as usize;
                dst.write_all(&zeros[..n])?;
                self.left -= n as u64;
                total += n as u64;
            }
        }
        Ok(total)
    }
}

impl<F: io::Read> io::Read for SizedSource<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (buf.len() as u64).min(self.left) as usize;
        if want == 0 {
            return Ok(0);
        }
        let mut n = 0;
        if self.status.is_none() {
            n = loop {
                match self.file.read(&mut buf[..want]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.status = Some(e.raw_os_error().unwrap_or(libc::EIO));
                        break 0;
                    }
                }
            };
        }
        if n == 0 {
            if !self.bounded {
                return Ok(0);
            }
            self.status.get_or_insert(libc::ENODATA);
            buf[..want].fill(0);
            n = want;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A symlink replacing a file goes in by rename (the name is never missing) and leaves
    /// no temporary behind; a failed create names the temporary, as stock's message does.
    #[test]
    fn create_over_replaces_by_rename() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join(".cfg.");
        std::fs::write(&p, b"old").unwrap();
        let ino = |p: &Path| std::fs::symlink_metadata(p).unwrap();
        let before = ino(&p);
        create_over(&p, true, |tmp| {
            let name = tmp.file_name().unwrap().as_bytes();
            assert!(name.starts_with(b".cfg.") && !name.starts_with(b"..cfg"));
            assert!(name[5..].iter().all(u8::is_ascii_digit), "{tmp:?}");
            std::os::unix::fs::symlink("target", tmp)
        })
        .unwrap();
        assert_eq!(std::fs::read_link(&p).unwrap(), Path::new("target"));
        assert_ne!(
            std::os::unix::fs::MetadataExt::ino(&before),
            std::os::unix::fs::MetadataExt::ino(&ino(&p))
        );
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1);
        let err =
            create_over(&p, true, |_| Err(io::ErrorKind::PermissionDenied.into())).unwrap_err();
        assert_ne!(err.at, p);
        assert!(!err.renaming);
        let err =
            create_over(&p, false, |_| Err(io::ErrorKind::PermissionDenied.into())).unwrap_err();
        assert_eq!(err.at, p);
    }

    /// A file read as the size it had when opened: one that grew is cut there, one that
    /// shrank is made up with zeros (and says so), by reads and by the kernel copy alike.
    #[test]
    fn sized_source_reads_the_size_seen_at_open() {
        use std::io::Read;
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        std::fs::write(&p, b"0123456789").unwrap();
        let mut f = File::open(&p).unwrap();
        let mut grown = Vec::new();
        let mut s = SizedSource::new(&mut f, Some(4));
        s.read_to_end(&mut grown).unwrap();
        assert_eq!((&grown[..], s.status()), (&b"0123"[..], None));
        let mut f = File::open(&p).unwrap();
        let mut shrunk = Vec::new();
        let mut s = SizedSource::new(&mut f, Some(14));
        s.read_to_end(&mut shrunk).unwrap();
        assert_eq!(&shrunk[..], b"0123456789\0\0\0\0");
        assert_eq!(s.status(), Some(libc::ENODATA));
        let mut f = File::open(&p).unwrap();
        let mut s = SizedSource::new(&mut f, None);
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        assert_eq!((&all[..], s.status()), (&b"0123456789"[..], None));
        for (size, want, status) in [
            (6, &b"012345"[..], None),
            (12, b"0123456789\0\0", Some(libc::ENODATA)),
        ] {
            let mut f = File::open(&p).unwrap();
            let out_path = t.path().join("out");
            let mut out = File::create(&out_path).unwrap();
            let mut s = SizedSource::new(&mut f, Some(size));
            let mut first = [0u8; 3];
            let n = s.read(&mut first).unwrap();
            out.write_all(&first[..n]).unwrap();
            s.copy_rest(&mut out).unwrap();
            assert_eq!(
                (std::fs::read(&out_path).unwrap(), s.status()),
                (want.to_vec(), status)
            );
        }
    }

    #[test]
    fn source_opens_do_not_follow_a_swapped_parent() {
        let t = tempfile::tempdir().unwrap();
        let b = t.path();
        std::fs::create_dir_all(b.join("src/sub")).unwrap();
        std::fs::write(b.join("src/sub/f"), "in").unwrap();
        std::fs::create_dir(b.join("outside")).unwrap();
        std::fs::write(b.join("outside/f"), "secret").unwrap();
        let path = b.join("src/sub/f");
        assert!(open_source(&path, b"sub/f", libc::O_RDONLY).is_ok());
        // The scanned `sub` is swapped for a symlink to outside.
        std::fs::rename(b.join("src/sub"), b.join("src/moved")).unwrap();
        std::os::unix::fs::symlink("../outside", b.join("src/sub")).unwrap();
        let e = open_source(&path, b"sub/f", libc::O_RDONLY).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP), "{e}");
        // Listed as the leaf only (-R, or the root itself): the leaf is not followed.
        let e = open_source(
            &b.join("src/sub"),
            b"src/sub",
            libc::O_RDONLY | libc::O_DIRECTORY,
        );
        assert!(e.is_err());
        assert!(open_source(&b.join("src/moved"), b"src/moved", libc::O_RDONLY).is_ok());
    }

    #[test]
    fn temp_file_is_removed_unless_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = TempFile::create_in(dir.path(), b"name").unwrap();
        t.file().write_all(b"x").unwrap();
        let p = t.path().to_owned();
        let fname = p.file_name().unwrap().as_bytes().to_vec();
        assert!(is_temp_name_for(&fname, b"name"));
        drop(t);
        assert!(!p.exists());
        let mut t = TempFile::create_in(dir.path(), b"name").unwrap();
        t.file().write_all(b"hello").unwrap();
        t.persist(&dir.path().join("name")).unwrap();
        assert_eq!(std::fs::read(dir.path().join("name")).unwrap(), b"hello");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn mtime_with_nanoseconds_on_symlink() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("l");
        std::os::unix::fs::symlink("nowhere", &link).unwrap();
        set_mtime(&link, 4_102_444_800, 123_456_789).unwrap();
        let md = std::fs::symlink_metadata(&link).unwrap();
        assert_eq!((md.mtime(), md.mtime_nsec()), (4_102_444_800, 123_456_789));
    }
}

/// Cleanup of the file being written when rsync is interrupted (SIGINT, SIGTERM, SIGHUP):
/// stock's receiver removes its temp file then (or with `--partial` keeps what arrived under
/// the file's name or in its partial directory), says why it stopped and exits with code 20.
///
/// Single-threaded use: the engine arms it ([`signal_cleanup_install`]), and the temp file
/// in progress is named with [`signal_cleanup_set`]; the handler only uses async-signal-safe
/// calls (`mkdir`, `rename`, `unlink`, `write`, `_exit`) on fixed buffers.
pub mod interrupt {
    use std::cell::UnsafeCell;
    use std::sync::atomic::{AtomicBool, Ordering};

    const MAX: usize = 4096;

    struct Buf(UnsafeCell<[u8; MAX]>);
    // SAFETY: written only by the (single) engine thread while `ARMED` is false; read by the
    // signal handler only while it is true.
    unsafe impl Sync for Buf {}

    static INSTALLED: AtomicBool = AtomicBool::new(false);
    static ARMED: AtomicBool = AtomicBool::new(false);
    static TMP: Buf = Buf(UnsafeCell::new([0; MAX]));
    static KEEP: Buf = Buf(UnsafeCell::new([0; MAX]));
    static KEEP_DIR: Buf = Buf(UnsafeCell::new([0; MAX]));
    static MSG: Buf = Buf(UnsafeCell::new([0; MAX]));

    fn fill(buf: &Buf, bytes: &[u8]) -> bool {
        if bytes.len() >= MAX || bytes.contains(&0) {
            return false;
        }
        // SAFETY: see `Buf`; not armed while written.
        let b = unsafe { &mut *buf.0.get() };
        b[..bytes.len()].copy_from_slice(bytes);
        b[bytes.len()] = 0;
        true
    }

    fn ptr(buf: &Buf) -> *const libc::c_char {
        buf.0.get() as *const libc::c_char
    }

    /// Removes the armed temp file, or keeps it as `--partial` says (async-signal-safe).
    ///
    /// # Safety
    /// Only while armed: the buffers hold NUL-terminated paths.
    unsafe fn put_away() {
        // SAFETY: see the function's contract.
        unsafe {
            if *ptr(&KEEP) != 0 {
                if *ptr(&KEEP_DIR) != 0 {
                    libc::mkdir(ptr(&KEEP_DIR), 0o700);
                }
                if libc::rename(ptr(&TMP), ptr(&KEEP)) != 0 {
                    libc::unlink(ptr(&TMP));
                }
            } else {
                libc::unlink(ptr(&TMP));
            }
        }
    }

    extern "C" fn on_signal(_sig: libc::c_int) {
        // SAFETY: async-signal-safe calls on NUL-terminated fixed buffers.
        unsafe {
            if ARMED.load(Ordering::SeqCst) {
                put_away();
            }
            let msg = ptr(&MSG);
            libc::write(2, msg as *const libc::c_void, libc::strlen(msg));
            libc::_exit(20);
        }
    }

    /// Ends the run now, as a signal would, with `message` (whole lines) and exit `code`:
    /// the temp file being written goes (or is kept as `--partial` says).
    pub fn stop_now(message: &str, code: i32) -> ! {
        let text = std::ffi::CString::new(message.replace('\0', "")).unwrap_or_default();
        // SAFETY: the same calls the signal handler makes, on NUL-terminated buffers.
        unsafe {
            if ARMED.swap(false, Ordering::SeqCst) {
                put_away();
            }
            libc::write(
                2,
                text.as_ptr() as *const libc::c_void,
                text.as_bytes().len(),
            );
            libc::_exit(code);
        }
    }

    /// Catches SIGINT, SIGTERM and SIGHUP for the rest of the run; `message` (a whole line) is
    /// what goes to stderr before the exit with code 20.
    pub fn signal_cleanup_install(message: &str) {
        if INSTALLED.swap(true, Ordering::SeqCst) || !fill(&MSG, message.as_bytes()) {
            return;
        }
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: a zeroed sigaction with a plain handler is valid.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as *const () as usize;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
    }

    /// The temp file now being written (`None`: none), and where `--partial` keeps it when
    /// interrupted (`keep`, with the partial directory to create first, if any).
    pub fn signal_cleanup_set(tmp: Option<&[u8]>, keep: Option<(&[u8], Option<&[u8]>)>) {
        ARMED.store(false, Ordering::SeqCst);
        if !INSTALLED.load(Ordering::SeqCst) {
            return;
        }
        let Some(tmp) = tmp else {
            return;
        };
        let (keep, dir) = keep.map_or((&b""[..], None), |(k, d)| (k, d));
        if fill(&TMP, tmp) && fill(&KEEP, keep) && fill(&KEEP_DIR, dir.unwrap_or(b"")) {
            ARMED.store(true, Ordering::SeqCst);
        }
    }
}
