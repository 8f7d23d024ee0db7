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
///   (absolute or relative to the caller's working directory);
/// - for per-directory (`dir-merge`) files and the merges they name:
///   relative to the transfer root (e.g. `sub/dir/.rsync-filter`, or just
///   `.rsync-filter` in the root itself).
pub trait FileSource {
    /// The whole file, or `Ok(None)` when it does not exist. Implementations
    /// should refuse files over [`MAX_RULE_FILE_BYTES`].
    fn read(&mut self, path: &Path) -> io::Result<Option<Vec<u8>>>;
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
        let file = match std::fs::File::open(&full) {
            Ok(f) => f,
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
