//! What the receiver keeps besides the new file: `--backup` copies of what it replaces or
//! deletes, and `--partial` files left by an interrupted transfer. Also the output side of
//! a file being received (a temp file, or the file itself with `--inplace`), with holes for
//! `--sparse`.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::local::Dest;

/// Settings of `--backup`, `--backup-dir` and `--suffix`.
#[derive(Debug, Clone, Default)]
pub struct BackupOptions {
    /// `--backup-dir`, already resolved against the destination (a server confines it there).
    pub dir: Option<PathBuf>,
    /// `--suffix` (rsync's default: `~` without a backup dir, nothing with one).
    pub suffix: OsString,
    /// A daemon module's root: the backup dir (and what is made beneath it) is reached
    /// following only trusted symlinks that stay inside it.
    pub confine: Option<rtsync_tree::Confine>,
}

impl BackupOptions {
    /// Where the backup of the entry `name` goes.
    pub fn path_for(&self, dest: &Dest, name: &[u8]) -> PathBuf {
        let mut file = dest
            .path_of(name)
            .file_name()
            .unwrap_or_default()
            .to_os_string();
        file.push(&self.suffix);
        match (&self.dir, dest) {
            (Some(bd), Dest::Dir(_) | Dest::Linked(..)) => {
                let mut p = bd.join(OsStr::from_bytes(name));
                p.set_file_name(file);
                p
            }
            (Some(bd), Dest::Solo(_)) => bd.join(file),
            (None, _) => dest.path_of(name).with_file_name(file),
        }
    }

    /// Whether `name` is itself a backup (`--delete` does not back up backups without a
    /// backup dir).
    pub fn is_backup_name(&self, name: &[u8]) -> bool {
        self.dir.is_none() && name.ends_with(self.suffix.as_bytes())
    }

    /// Moves `path` (the entry `name`) to its backup name. Returns false when there was
    /// nothing to back up.
    pub fn move_aside(&self, dest: &Dest, name: &[u8], path: &Path) -> io::Result<bool> {
        if fs::symlink_metadata(path).is_err() {
            return Ok(false);
        }
        let to = self.make_parent(&self.path_for(dest, name))?;
        if fs::symlink_metadata(&to).is_ok_and(|m| m.is_dir()) {
            if self.dir.is_some() {
                // An operator path: removed beneath the directory the ownership rule let us
                // enter, never through a parent swapped for a symlink meanwhile.
                let (dir, leaf) = rtsync_oppath::open_parent(rtsync_oppath::Base::Cwd, &to, false)?;
                rtsync_oppath::remove_tree_at(std::os::fd::AsFd::as_fd(&dir), &leaf)?;
            } else {
                fs::remove_dir_all(&to)?;
            }
        }
        match fs::rename(path, &to) {
            // Another filesystem: a copy, as stock's robust_rename falls back to.
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                rtsync_tree::fsops::move_by_copy(path, &to)?
            }
            r => r?,
        }
        Ok(true)
    }

    /// Copies `path` to its backup name (for `--inplace`, which overwrites the original)
    /// and returns where the copy is.
    pub fn copy_aside(&self, dest: &Dest, name: &[u8], path: &Path) -> io::Result<PathBuf> {
        let to = self.make_parent(&self.path_for(dest, name))?;
        let _ = fs::remove_file(&to);
        fs::copy(path, &to)?;
        let m = fs::metadata(path)?;
        let mtime = filetime_of(&m);
        rtsync_tree::fsops::set_mtime(&to, mtime.0, mtime.1)?;
        Ok(to)
    }

    /// Creates the directory the backup `to` goes into (with a backup dir) and returns where
    /// the backup is then written: in a daemon module, beneath the directory as resolved
    /// inside the module (a symlink leading out of it, or another user's, is refused).
    fn make_parent(&self, to: &Path) -> io::Result<PathBuf> {
        let (Some(p), Some(file)) = (to.parent(), to.file_name()) else {
            return Ok(to.to_path_buf());
        };
        if self.dir.is_none() || p.as_os_str().is_empty() {
            return Ok(to.to_path_buf());
        }
        match &self.confine {
            Some(c) => Ok(c.create_dir_all(p, 0o777)?.join(file)),
            None => fs::create_dir_all(p).map(|_| to.to_path_buf()),
        }
    }
}

fn filetime_of(m: &fs::Metadata) -> (i64, u32) {
    use std::os::unix::fs::MetadataExt;
    (m.mtime(), m.mtime_nsec() as u32)
}

/// Where `--partial` keeps the data of an interrupted transfer of `final_path`: the file's
/// own name, or the same name in `--partial-dir` (relative to the file's directory unless
/// absolute).
pub fn partial_path(final_path: &Path, partial_dir: Option<&Path>, shared: bool) -> PathBuf {
    match partial_dir {
        None => final_path.to_path_buf(),
        Some(pd) if shared => pd.join(final_path.file_name().unwrap_or_default()),
        Some(pd) => {
            let dir = final_path.parent().unwrap_or(Path::new("")).join(pd);
            dir.join(final_path.file_name().unwrap_or_default())
        }
    }
}

/// The partial file of `final_path` (the entry `name`) as a basis: in a daemon module its
/// directory is resolved inside the module. One that only exists through a symlink leading
/// out of the module ends the session, as stock's daemon refuses such an unconfined basis.
pub fn confined_partial(
    o: &super::PullOptions,
    final_path: &Path,
    partial_dir: &Path,
    name: &[u8],
) -> crate::error::Result<Option<PathBuf>> {
    let lexical = partial_path(final_path, Some(partial_dir), o.partial_dir_shared);
    let (Some(dir), Some(file)) = (lexical.parent(), lexical.file_name()) else {
        return Ok(Some(lexical));
    };
    match o.option_dir(dir, None) {
        Ok(real) => Ok(Some(real.join(file))),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) && fs::metadata(&lexical).is_ok() => {
            Err(crate::error::Error::Protocol(format!(
                "refusing unconfined partial basis for {}",
                String::from_utf8_lossy(name)
            )))
        }
        Err(_) => Ok(None),
    }
}

/// Whether a daemon module's rules exclude the partial dir of the entry `name` (a relative
/// one, beside it) or the partial file in it: stock then keeps no partial file for it, and
/// `--delay-updates` puts it in place directly.
pub fn partial_refused(o: &super::PullOptions, partial_dir: &Path, name: &[u8]) -> bool {
    let Some(rules) = &o.refuse else {
        return false;
    };
    if o.partial_dir_shared {
        return false;
    }
    let mut dir = match name.iter().rposition(|&c| c == b'/') {
        Some(i) => name[..=i].to_vec(),
        None => Vec::new(),
    };
    dir.extend_from_slice(partial_dir.as_os_str().as_bytes());
    let mut file = dir.clone();
    file.push(b'/');
    file.extend_from_slice(&name[name.iter().rposition(|&c| c == b'/').map_or(0, |i| i + 1)..]);
    rules.is_excluded(&dir, true) || rules.is_excluded(&file, false)
}

/// Makes the partial dir of `final_path` ready to take a file, as stock's receiver does:
/// the directory it sits in must exist (reached by the operator-path rule, or in a daemon
/// module inside the module); the partial dir itself is created (0700) when missing, after
/// removing whatever else has its name (a symlink too). Returns where the file goes.
pub fn make_partial_dir(
    o: &super::PullOptions,
    final_path: &Path,
    partial_dir: &Path,
) -> io::Result<PathBuf> {
    let lexical = partial_path(final_path, Some(partial_dir), o.partial_dir_shared);
    let none = || io::Error::from_raw_os_error(libc::EINVAL);
    let dir = lexical.parent().ok_or_else(none)?;
    let file = lexical.file_name().ok_or_else(none)?;
    let leaf = dir.file_name().ok_or_else(none)?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let real_parent = match &o.confine {
        Some(c) => c.resolve(parent, true)?,
        None => {
            let fd = rtsync_oppath::open_dir(parent)?;
            rtsync_oppath::fd_path(std::os::fd::AsFd::as_fd(&fd))?
        }
    };
    let real = real_parent.join(leaf);
    match fs::symlink_metadata(&real) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            fs::remove_file(&real)?;
            make_dir(&real)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => make_dir(&real)?,
        Err(e) => return Err(e),
    }
    Ok(real.join(file))
}

fn make_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().mode(0o700).create(path)
}

/// Removes the partial file of `final_path` (the entry `name`), used up or made pointless
/// by a file already current, and then a relative partial dir if that left it empty.
pub fn drop_partial(o: &super::PullOptions, final_path: &Path, partial_dir: &Path, name: &[u8]) {
    let Ok(Some(p)) = confined_partial(o, final_path, partial_dir, name) else {
        return;
    };
    if fs::symlink_metadata(&p).is_ok_and(|m| m.is_file()) && fs::remove_file(&p).is_ok() {
        remove_partial_dir(o, &p);
    }
}

/// Removes the relative partial dir holding `partial_file` if it is empty now (stock leaves
/// an absolute one).
pub fn remove_partial_dir(o: &super::PullOptions, partial_file: &Path) {
    if o.partial_dir_shared {
        return;
    }
    if let Some(dir) = partial_file.parent() {
        let _ = fs::remove_dir(dir);
    }
}

/// Where a file's data is written: a fresh temp file, or the destination itself.
pub struct Output {
    /// `None`: the data is read and dropped (see [`Output::discard`]).
    file: Option<File>,
    /// Bytes of the new file written (or skipped) so far.
    pub pos: u64,
    /// Leave holes for runs of zeros (`--sparse`).
    sparse: bool,
    /// The file already holds old data here (`--inplace`): skipped zeros must be written.
    in_place: bool,
}

impl Output {
    pub fn new(file: File, sparse: bool, in_place: bool) -> Output {
        Output {
            file: Some(file),
            pos: 0,
            sparse,
            in_place,
        }
    }

    /// An output that keeps nothing: a file's data read only to stay in step with the
    /// sender. (No `/dev/null`: a chrooted daemon module has none.)
    pub fn discard() -> Output {
        Output {
            file: None,
            pos: 0,
            sparse: false,
            in_place: false,
        }
    }

    /// Appends `data` at the current position.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let Some(file) = &self.file else {
            self.pos += data.len() as u64;
            return Ok(());
        };
        if self.sparse && !self.in_place {
            let start = data.iter().position(|&b| b != 0).unwrap_or(data.len());
            let end = data.iter().rposition(|&b| b != 0).map_or(start, |i| i + 1);
            if start < end {
                file.write_all_at(&data[start..end], self.pos + start as u64)?;
            }
        } else {
            file.write_all_at(data, self.pos)?;
        }
        self.pos += data.len() as u64;
        Ok(())
    }

    /// The file's length now (what an `--inplace` target holds before writing).
    pub fn len(&self) -> u64 {
        self.file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len())
    }

    /// `--preallocate`: reserves `len` bytes (see [`rtsync_tree::fsops::preallocate`]).
    pub fn preallocate(&self, len: u64, sparse: bool) -> io::Result<()> {
        match &self.file {
            Some(f) => rtsync_tree::fsops::preallocate(f, len, sparse),
            None => Ok(()),
        }
    }

    /// Moves past `len` bytes that already hold the right data (an `--inplace` block
    /// matched at its own offset).
    pub fn skip(&mut self, len: u64) {
        self.pos += len;
    }

    /// Sets the file's length to what was written (holes at the end, or old data beyond the
    /// new end with `--inplace`).
    /// Flushes what was written to the disk (`--fsync`).
    pub fn sync(&self) -> io::Result<()> {
        self.file.as_ref().map_or(Ok(()), File::sync_all)
    }

    pub fn finish(&mut self) -> io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let md = file.metadata()?;
        if !md.is_file() {
            // A device written with `--write-devices` keeps its size.
            return Ok(());
        }
        if self.in_place || md.len() != self.pos {
            file.set_len(self.pos)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_names() {
        let dest = Dest::Dir(PathBuf::from("/d"));
        let tilde = BackupOptions {
            dir: None,
            suffix: "~".into(),
            confine: None,
        };
        assert_eq!(tilde.path_for(&dest, b"a/b"), PathBuf::from("/d/a/b~"));
        assert!(tilde.is_backup_name(b"a/b~"));
        let bd = BackupOptions {
            dir: Some(PathBuf::from("/bak")),
            suffix: "".into(),
            confine: None,
        };
        assert_eq!(bd.path_for(&dest, b"a/b"), PathBuf::from("/bak/a/b"));
        assert!(!bd.is_backup_name(b"a/b~"));
        let solo = Dest::Solo(PathBuf::from("/x/f"));
        assert_eq!(bd.path_for(&solo, b"f"), PathBuf::from("/bak/f"));
    }

    #[test]
    fn sparse_output_leaves_holes() {
        let dir = tempfile::tempdir().unwrap();
        let f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("s"))
            .unwrap();
        let mut out = Output::new(f, true, false);
        out.write(&[0; 8192]).unwrap();
        out.write(b"x").unwrap();
        out.write(&[0; 100]).unwrap();
        out.finish().unwrap();
        let data = fs::read(dir.path().join("s")).unwrap();
        assert_eq!(data.len(), 8293);
        assert_eq!(data[8192], b'x');
        assert!(data.iter().enumerate().all(|(i, &b)| i == 8192 || b == 0));
    }

    #[test]
    fn partial_paths() {
        let f = Path::new("/d/sub/f");
        assert_eq!(partial_path(f, None, false), PathBuf::from("/d/sub/f"));
        assert_eq!(
            partial_path(f, Some(Path::new(".p")), false),
            PathBuf::from("/d/sub/.p/f")
        );
        assert_eq!(
            partial_path(f, Some(Path::new("/tmp/p")), true),
            PathBuf::from("/tmp/p/f")
        );
        // A daemon's absolute partial dir, resolved relative to the module.
        assert_eq!(
            partial_path(f, Some(Path::new("./pd")), true),
            PathBuf::from("./pd/f")
        );
    }
}
