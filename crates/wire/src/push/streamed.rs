//! The file list of a client push, sent while the tree is walked.
//!
//! Without incremental recursion the whole list still goes in one piece, but it need not be
//! built first: like stock's sender, we encode each entry in scan order as the walk finds it
//! and keep only what the transfer phase needs — each entry's kind, name and symlink target,
//! packed into one arena. Source paths are not stored: an entry's path is its command-line
//! root's path joined with the rest of its name (the few that differ are kept aside).
//!
//! The receiver sorts the list with rsync's comparator and indexes the sorted order. rsync's
//! sort is a stable merge sort, so [`StreamedList::sort`] breaks ties by sent order and the
//! two sides agree on every index — duplicates included, which the receiver clears while
//! keeping their indices, exactly as it does for stock's sender.
//!
//! ```text
//! arena:   [kind]name\0size[kind]name\0target\0[kind]name\0 …
//!          (a regular file's size follows its name: 8 bytes, little-endian)
//! offsets: where each entry starts (sent order while walking, sorted order after `sort`)
//! ```

use std::borrow::Cow;
use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rtsync_tree::{compare_names, FileEntry, FileKind};

use crate::error::{Error, Result};

/// A command-line root: every entry from `start` on (until the next root) lies beneath it.
#[derive(Debug)]
struct Root {
    /// Arena offset of the root's own entry.
    start: u32,
    /// The root's file-list name (`.` for a `dir/` source).
    name: Vec<u8>,
    /// Where the root is read from.
    path: PathBuf,
}

/// What the transfer phase needs of a sent list, in the receiver's index order once sorted.
#[derive(Debug, Default)]
pub struct StreamedList {
    arena: Vec<u8>,
    offsets: Vec<u32>,
    roots: Vec<Root>,
    /// Entries whose source path is not their root's path joined with their name.
    odd_paths: HashMap<u32, PathBuf>,
    /// Entries per kind (indexed by [`kind_code`]).
    pub kind_counts: [u64; 7],
    /// Total size of the regular files and symlinks (for the statistics).
    pub total_size: u64,
    /// Keep each entry's size and mtime (`--remove-source-files` checks them again).
    pub keep_stat: bool,
    /// Size, mtime and its nanoseconds by arena offset, when `keep_stat`.
    stats: HashMap<u32, (u64, i64, u32)>,
    /// Keep each regular file's `-c` checksum (for `%C`).
    pub keep_sums: bool,
    /// The checksums by arena offset, when `keep_sums`.
    sums: HashMap<u32, Vec<u8>>,
}

/// Stores a regular file's size after its name (`--append` needs the listed length).
pub(crate) fn push_size(arena: &mut Vec<u8>, e: &FileEntry) {
    if e.kind == FileKind::Regular {
        arena.extend_from_slice(&e.size.to_le_bytes());
    }
}

/// The size stored for the regular file whose name (without its NUL) ends at `name_end`.
pub(crate) fn size_at(arena: &[u8], name_end: usize) -> u64 {
    let at = name_end + 1;
    arena
        .get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

pub(crate) fn kind_code(kind: FileKind) -> u8 {
    match kind {
        FileKind::Regular => 0,
        FileKind::Directory => 1,
        FileKind::Symlink => 2,
        FileKind::BlockDevice => 3,
        FileKind::CharDevice => 4,
        FileKind::Fifo => 5,
        FileKind::Socket => 6,
    }
}

/// The kind stored under `code` (the inverse of [`kind_code`]).
pub(crate) fn code_kind(code: u8) -> FileKind {
    match code {
        0 => FileKind::Regular,
        1 => FileKind::Directory,
        2 => FileKind::Symlink,
        3 => FileKind::BlockDevice,
        4 => FileKind::CharDevice,
        5 => FileKind::Fifo,
        _ => FileKind::Socket,
    }
}

/// Whether `path` is exactly what `Path::join(root, rest)` gives, without building it.
fn is_joined(path: &[u8], root: &[u8], rest: &[u8]) -> bool {
    let sep = usize::from(!root.is_empty() && !root.ends_with(b"/"));
    path.len() == root.len() + sep + rest.len()
        && path.starts_with(root)
        && (sep == 0 || path[root.len()] == b'/')
        && path.ends_with(rest)
}

impl StreamedList {
    /// Number of entries.
    pub fn count(&self) -> usize {
        self.offsets.len()
    }

    /// Starts a command-line root; entries pushed until the next call lie beneath it.
    pub fn begin_root(&mut self, name: &[u8], path: &Path) {
        self.roots.push(Root {
            start: self.arena.len() as u32,
            name: name.to_vec(),
            path: path.to_owned(),
        });
    }

    /// Appends an entry read from `path` (after [`StreamedList::begin_root`]).
    pub fn push(&mut self, e: &FileEntry, path: &Path) -> Result<()> {
        let start = self.arena.len();
        let offset = u32::try_from(start)
            .ok()
            .filter(|_| start + e.name.len() + 2 < u32::MAX as usize / 2)
            .ok_or_else(|| Error::Unsupported("the file list is too large".into()))?;
        let derived = self.roots.last().is_some_and(|root| {
            let rest: &[u8] = if e.name == root.name {
                b""
            } else if root.name == b"." {
                &e.name
            } else if e.name.starts_with(&root.name) && e.name.get(root.name.len()) == Some(&b'/') {
                &e.name[root.name.len() + 1..]
            } else {
                return false;
            };
            let root_path = root.path.as_os_str().as_bytes();
            let path = path.as_os_str().as_bytes();
            if rest.is_empty() {
                path == root_path
            } else {
                is_joined(path, root_path, rest)
            }
        });
        if !derived {
            self.odd_paths.insert(offset, path.to_owned());
        }
        let code = kind_code(e.kind);
        self.arena.push(code);
        self.arena.extend_from_slice(&e.name);
        self.arena.push(0);
        push_size(&mut self.arena, e);
        if e.kind == FileKind::Symlink {
            self.arena
                .extend_from_slice(e.link_target.as_deref().unwrap_or_default());
            self.arena.push(0);
        }
        self.offsets.push(offset);
        if self.keep_stat {
            self.stats.insert(offset, (e.size, e.mtime, e.mtime_nsec));
        }
        if let Some(sum) = e.checksum.as_ref().filter(|_| self.keep_sums) {
            self.sums.insert(offset, sum.clone());
        }
        self.kind_counts[usize::from(code)] += 1;
        if matches!(e.kind, FileKind::Regular | FileKind::Symlink) {
            self.total_size += e.size;
        }
        Ok(())
    }

    /// The NUL-terminated string at `at`.
    fn str_at(&self, at: usize) -> &[u8] {
        let tail = &self.arena[at..];
        &tail[..tail.iter().position(|&b| b == 0).unwrap_or(tail.len())]
    }

    fn name_at(&self, offset: u32) -> &[u8] {
        self.str_at(offset as usize + 1)
    }

    fn kind_at(&self, offset: u32) -> FileKind {
        code_kind(self.arena[offset as usize])
    }

    /// Puts the entries in the receiver's index order (rsync's stable sort of the sent list).
    pub fn sort(&mut self) {
        let mut offsets = std::mem::take(&mut self.offsets);
        offsets.sort_unstable_by(|&a, &b| {
            let (ka, kb) = (self.kind_at(a), self.kind_at(b));
            compare_names(
                self.name_at(a),
                ka == FileKind::Directory,
                self.name_at(b),
                kb == FileKind::Directory,
            )
            .then(a.cmp(&b))
        });
        self.offsets = offsets;
    }

    /// The kind of entry `ndx`.
    pub fn kind(&self, ndx: usize) -> FileKind {
        self.kind_at(self.offsets[ndx])
    }

    /// The file-list name of entry `ndx`.
    pub fn name(&self, ndx: usize) -> &[u8] {
        self.name_at(self.offsets[ndx])
    }

    /// The target of symlink `ndx`.
    pub fn link_target(&self, ndx: usize) -> Option<&[u8]> {
        let offset = self.offsets[ndx];
        (self.kind_at(offset) == FileKind::Symlink)
            .then(|| self.str_at(offset as usize + 1 + self.name_at(offset).len() + 1))
    }

    /// The size, mtime and its nanoseconds entry `ndx` was listed with (when kept).
    /// The `-c` checksum entry `ndx` was listed with, when `keep_sums`.
    pub fn list_sum(&self, ndx: usize) -> Option<&[u8]> {
        self.sums.get(&self.offsets[ndx]).map(Vec::as_slice)
    }

    pub fn listed_stat(&self, ndx: usize) -> Option<(u64, i64, u32)> {
        self.stats.get(&self.offsets[ndx]).copied()
    }

    /// The listed size of regular file `ndx`.
    pub fn size(&self, ndx: usize) -> Option<u64> {
        let offset = self.offsets[ndx];
        (self.kind_at(offset) == FileKind::Regular).then(|| {
            size_at(
                &self.arena,
                offset as usize + 1 + self.name_at(offset).len(),
            )
        })
    }

    /// Where entry `ndx` is read from.
    pub fn source_path(&self, ndx: usize) -> Cow<'_, Path> {
        let offset = self.offsets[ndx];
        if let Some(p) = self.odd_paths.get(&offset) {
            return Cow::Borrowed(p);
        }
        let at = self.roots.partition_point(|r| r.start <= offset);
        let root = &self.roots[at.saturating_sub(1)];
        let name = self.name_at(offset);
        if name == root.name {
            return Cow::Borrowed(&root.path);
        }
        let rest = if root.name == b"." {
            name
        } else {
            &name[root.name.len() + 1..]
        };
        Cow::Owned(root.path.join(std::ffi::OsStr::from_bytes(rest)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, kind: FileKind) -> FileEntry {
        FileEntry {
            name: name.as_bytes().to_vec(),
            kind,
            mode: 0o644,
            size: 3,
            mtime: 0,
            mtime_nsec: 0,
            atime: 0,
            uid: 0,
            gid: 0,
            rdev: 0,
            link_target: (kind == FileKind::Symlink).then(|| b"tgt".to_vec()),
            hardlink_key: None,
            checksum: None,
            top_dir: false,
            xattrs: None,
            acl: None,
        }
    }

    #[test]
    fn paths_are_derived_from_roots_and_sorted_like_rsync() {
        let mut l = StreamedList::default();
        l.begin_root(b".", Path::new("src/"));
        for (name, kind, path) in [
            (".", FileKind::Directory, "src/"),
            ("b", FileKind::Regular, "src/b"),
            ("a", FileKind::Directory, "src/a"),
            ("a.txt", FileKind::Symlink, "src/a.txt"),
            ("a/x", FileKind::Regular, "src/a/x"),
        ] {
            l.push(&entry(name, kind), Path::new(path)).unwrap();
        }
        l.begin_root(b"usr/lib", Path::new("/usr/./lib//"));
        l.push(
            &entry("usr/lib", FileKind::Directory),
            Path::new("/usr/./lib//"),
        )
        .unwrap();
        l.push(
            &entry("usr/lib/y", FileKind::Regular),
            Path::new("/usr/./lib//y"),
        )
        .unwrap();
        // Not beneath its root: kept as given.
        l.push(
            &entry("odd", FileKind::Regular),
            Path::new("/elsewhere/odd"),
        )
        .unwrap();
        // A duplicate keeps its sent order behind the first.
        l.push(&entry("b", FileKind::Regular), Path::new("/other/b"))
            .unwrap();
        assert!(l.odd_paths.len() == 2);
        l.sort();
        let got: Vec<(String, String)> = (0..l.count())
            .map(|i| {
                (
                    String::from_utf8_lossy(l.name(i)).into_owned(),
                    l.source_path(i).display().to_string(),
                )
            })
            .collect();
        let want = [
            (".", "src/"),
            ("a.txt", "src/a.txt"),
            ("b", "src/b"),
            ("b", "/other/b"),
            ("odd", "/elsewhere/odd"),
            ("a", "src/a"),
            ("a/x", "src/a/x"),
            ("usr/lib", "/usr/./lib//"),
            ("usr/lib/y", "/usr/./lib//y"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(l.link_target(1), Some(&b"tgt"[..]));
        assert_eq!(l.link_target(2), None);
        assert_eq!(l.kind(5), FileKind::Directory);
        assert_eq!(l.size(2), Some(3));
        assert_eq!(l.size(5), None);
        assert_eq!(l.total_size, 6 * 3);
    }
}
