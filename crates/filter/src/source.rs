//! Where rule files come from: a caller-supplied reader, so the same code
//! works on the local filesystem, beneath a safe root, or in tests.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Largest rule file read (merge files, `.rsync-filter`, exclude-from).
pub const MAX_RULE_FILE_BYTES: usize = 16 << 20;

/// Reads rule files.
///
/// Paths handed to [`FileSource::read`] are:
/// - for command-line `merge` / `--exclude-from` files: the name as given
///   (absolute or relative to the caller's working directory; `-` means
///   standard input to stock rsync, except on a server);
/// - for per-directory (`dir-merge`) files and the merges they name:
///   relative to the transfer root (e.g. `sub/dir/.rsync-filter`, or just
///   `.rsync-filter` in the root itself).
pub trait FileSource {
    /// The whole file, or `Ok(None)` when it does not exist. Implementations
    /// should refuse files over [`MAX_RULE_FILE_BYTES`].
    fn read(&mut self, path: &Path) -> io::Result<Option<Vec<u8>>>;

    /// How messages name the file at `path` when its name may be shown (stock names a
    /// per-directory file by its absolute path); `None`: as given.
    fn display(&self, _path: &Path) -> Option<String> {
        None
    }
}

/// Reads from the local filesystem, relative paths resolved under `base`
/// (when set) or the process working directory.
#[derive(Clone, Debug, Default)]
pub struct FsSource {
    /// Directory relative paths are resolved against.
    pub base: Option<PathBuf>,
}

impl FsSource {
    /// A source resolving relative paths against `base`.
    pub fn new(base: impl Into<PathBuf>) -> Self {
        FsSource {
            base: Some(base.into()),
        }
    }
}

impl FileSource for FsSource {
    fn read(&mut self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        let full = match &self.base {
            Some(base) if path.is_relative() => base.join(path),
            _ => path.to_path_buf(),
        };
        // An operator path: no other user's symlink at any component (see rtsync-oppath).
        let file = match rtsync_oppath::open(&full, libc::O_RDONLY, 0) {
            Ok(f) => std::fs::File::from(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut data = Vec::new();
        file.take(MAX_RULE_FILE_BYTES as u64 + 1)
            .read_to_end(&mut data)?;
        if data.len() > MAX_RULE_FILE_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "filter file too large",
            ));
        }
        Ok(Some(data))
    }
}

/// Reads only beneath a root directory, for rule files a peer may name or
/// plant (a server's per-directory files, a client's `merge` rules): every
/// path component is opened relative to the previous one without following
/// symlinks, `..` and absolute paths are refused, and only regular files
/// are read (a planted FIFO cannot block the transfer).
#[derive(Clone, Debug)]
pub struct BeneathSource {
    /// The directory all reads are confined to.
    pub root: PathBuf,
}

impl BeneathSource {
    /// A source confined to `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        BeneathSource { root: root.into() }
    }
}

impl FileSource for BeneathSource {
    fn read(&mut self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        let Some(file) = open_beneath(&self.root, path)? else {
            return Ok(None);
        };
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "filter file is not a regular file",
            ));
        }
        let mut data = Vec::new();
        file.take(MAX_RULE_FILE_BYTES as u64 + 1)
            .read_to_end(&mut data)?;
        if data.len() > MAX_RULE_FILE_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "filter file too large",
            ));
        }
        Ok(Some(data))
    }
}

/// Opens `rel` beneath `root` one component at a time with `O_NOFOLLOW`;
/// `Ok(None)` when something on the way does not exist.
fn open_beneath(root: &Path, rel: &Path) -> io::Result<Option<std::fs::File>> {
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::Component;

    let mut names = Vec::new();
    for component in rel.components() {
        match component {
            Component::Normal(name) => names.push(name),
            Component::CurDir => {}
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "filter file path leaves its root",
                ))
            }
        }
    }
    if names.is_empty() {
        return Ok(None);
    }
    let mut current = match std::fs::File::open(root) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    for (i, name) in names.iter().enumerate() {
        let last = i + 1 == names.len();
        let c_name = std::ffi::CString::new(name.as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
        let flags = libc::O_RDONLY
            | libc::O_NOFOLLOW
            | libc::O_CLOEXEC
            | if last {
                libc::O_NONBLOCK
            } else {
                libc::O_DIRECTORY
            };
        // SAFETY: `current` is an open directory descriptor and `c_name` a
        // NUL-terminated string that outlives the call.
        let fd = unsafe { libc::openat(current.as_raw_fd(), c_name.as_ptr(), flags) };
        if fd < 0 {
            let error = io::Error::last_os_error();
            return match error.raw_os_error() {
                Some(libc::ENOENT) => Ok(None),
                Some(libc::ELOOP) | Some(libc::ENOTDIR) => Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "symlink or non-directory in a filter file's path",
                )),
                _ => Err(error),
            };
        }
        // SAFETY: `fd` was just returned by openat and is owned by nobody else.
        current = unsafe { std::fs::File::from_raw_fd(fd) };
    }
    Ok(Some(current))
}

/// An in-memory source (tests, or rules already fetched by the caller).
#[derive(Clone, Debug, Default)]
pub struct MemSource {
    /// Files by path.
    pub files: std::collections::HashMap<PathBuf, Vec<u8>>,
}

impl MemSource {
    /// Adds a file.
    pub fn with(mut self, path: impl Into<PathBuf>, data: impl Into<Vec<u8>>) -> Self {
        self.files.insert(path.into(), data.into());
        self
    }
}

impl FileSource for MemSource {
    fn read(&mut self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        Ok(self.files.get(path).cloned())
    }
}

/// A source that has no files (every read is "not found").
#[derive(Clone, Copy, Debug, Default)]
pub struct NoFiles;

impl FileSource for NoFiles {
    fn read(&mut self, _path: &Path) -> io::Result<Option<Vec<u8>>> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_symlinks_are_refused() {
        let dir = std::env::temp_dir().join(format!("rtsync-filter-src-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("target"), "- x\n").unwrap();
        std::os::unix::fs::symlink("target", dir.join("mine")).unwrap();
        let mut source = FsSource::new(&dir);
        assert_eq!(source.read(Path::new("mine")).unwrap().unwrap(), b"- x\n");
        assert_eq!(source.read(Path::new("absent")).unwrap(), None);
        std::os::unix::fs::symlink("target", dir.join("theirs")).unwrap();
        std::fs::create_dir(dir.join("real")).unwrap();
        std::fs::write(dir.join("real/rules"), "- y\n").unwrap();
        std::os::unix::fs::symlink("real", dir.join("theirdir")).unwrap();
        // The suite runs as root, which can give a symlink away.
        for link in ["theirs", "theirdir"] {
            std::os::unix::fs::lchown(dir.join(link), Some(54321), None).unwrap();
        }
        let err = source.read(Path::new("theirs")).unwrap_err();
        assert!(rtsync_oppath::is_refusal(&err), "{err}");
        // A parent component too, not only the leaf.
        let err = source.read(Path::new("theirdir/rules")).unwrap_err();
        assert!(rtsync_oppath::is_refusal(&err), "{err}");
        assert_eq!(
            source.read(Path::new("real/rules")).unwrap().unwrap(),
            b"- y\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn beneath_source_stays_beneath() {
        let dir =
            std::env::temp_dir().join(format!("rtsync-filter-beneath-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("root/sub")).unwrap();
        std::fs::write(dir.join("root/sub/.f"), "- x\n").unwrap();
        std::fs::write(dir.join("outside"), "secret\n").unwrap();
        std::os::unix::fs::symlink("../outside", dir.join("root/link")).unwrap();
        std::os::unix::fs::symlink("..", dir.join("root/up")).unwrap();
        let mut source = BeneathSource::new(dir.join("root"));
        assert_eq!(source.read(Path::new("sub/.f")).unwrap().unwrap(), b"- x\n");
        assert_eq!(
            source.read(Path::new("./sub/.f")).unwrap().unwrap(),
            b"- x\n"
        );
        assert_eq!(source.read(Path::new("sub/none")).unwrap(), None);
        assert_eq!(source.read(Path::new("nodir/.f")).unwrap(), None);
        for bad in [
            "link",
            "up/outside",
            "../outside",
            "/etc/passwd",
            "sub/../../outside",
        ] {
            assert!(source.read(Path::new(bad)).is_err(), "{bad}");
        }
        assert!(
            source.read(Path::new("sub")).is_err(),
            "a directory is not a rule file"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
