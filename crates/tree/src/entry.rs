//! The file-list model shared by the local engine and the wire protocol.

use std::cmp::Ordering;

/// What kind of filesystem object an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    Regular,
    Directory,
    Symlink,
    BlockDevice,
    CharDevice,
    Fifo,
    Socket,
}

impl FileKind {
    /// The kind encoded in a `st_mode`.
    pub fn from_mode(mode: u32) -> Option<FileKind> {
        Some(match mode & libc::S_IFMT {
            libc::S_IFREG => FileKind::Regular,
            libc::S_IFDIR => FileKind::Directory,
            libc::S_IFLNK => FileKind::Symlink,
            libc::S_IFBLK => FileKind::BlockDevice,
            libc::S_IFCHR => FileKind::CharDevice,
            libc::S_IFIFO => FileKind::Fifo,
            libc::S_IFSOCK => FileKind::Socket,
            _ => return None,
        })
    }

    /// Devices, fifos and sockets: what `-D` (`--devices --specials`) transfers.
    pub fn is_device_or_special(self) -> bool {
        matches!(
            self,
            FileKind::BlockDevice | FileKind::CharDevice | FileKind::Fifo | FileKind::Socket
        )
    }
}

/// One entry of a file list: a path relative to the transfer root plus its metadata.
///
/// Names are raw bytes (Linux paths need not be UTF-8) without a leading `/`; the transfer root
/// itself is `.`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Path relative to the transfer root, `/`-separated, never empty (`.` is the root).
    pub name: Vec<u8>,
    pub kind: FileKind,
    /// Full `st_mode` (type and permission bits).
    pub mode: u32,
    pub size: u64,
    pub mtime: i64,
    /// Nanoseconds of the mtime, 0..1e9.
    pub mtime_nsec: u32,
    /// Access time in whole seconds (`-U`/`--atimes`; rsync carries no nanoseconds for it).
    pub atime: i64,
    pub uid: u32,
    pub gid: u32,
    /// Device number for block/char devices (`makedev` form).
    pub rdev: u64,
    /// Target of a symlink, as stored (not resolved).
    pub link_target: Option<Vec<u8>>,
    /// `(st_dev, st_ino)` when the entry has more than one link and `-H` is on: entries sharing a
    /// key form a hard-link group.
    pub hardlink_key: Option<(u64, u64)>,
    /// Whole-file checksum, filled for `--checksum` transfers.
    pub checksum: Option<Vec<u8>>,
    /// Set on directories named on the command line (rsync's XMIT_TOP_DIR): `--delete` works
    /// inside them.
    pub top_dir: bool,
    /// `-X`: the extended attributes listed for it (sender: read; receiver: as received).
    pub xattrs: Option<crate::xattr::XattrList>,
    /// `-A`: the entry's ACLs (not for symlinks). On a sender as read from disk; on a
    /// receiver as received (condensed, see [`crate::acl`]).
    pub acl: Option<std::sync::Arc<crate::acl::EntryAcl>>,
}

impl FileEntry {
    pub fn is_dir(&self) -> bool {
        self.kind == FileKind::Directory
    }

    /// A `--delete-missing-args` entry: a source that does not exist, listed with mode 0 so
    /// that the receiver deletes what it has under the name. (Its kind says `Regular`, as
    /// stock counts it; nothing is ever read or written for it.)
    pub fn missing(name: Vec<u8>) -> FileEntry {
        FileEntry {
            name,
            kind: FileKind::Regular,
            mode: 0,
            size: 0,
            mtime: 0,
            mtime_nsec: 0,
            atime: 0,
            uid: 0,
            gid: 0,
            rdev: 0,
            link_target: None,
            hardlink_key: None,
            checksum: None,
            top_dir: false,
            xattrs: None,
            acl: None,
        }
    }

    /// Whether this is a `--delete-missing-args` entry (see [`FileEntry::missing`]).
    pub fn is_missing(&self) -> bool {
        self.mode == 0
    }

    /// The permission bits (and setuid/setgid/sticky).
    pub fn perms(&self) -> u32 {
        self.mode & 0o7777
    }

    /// The final path component.
    pub fn basename(&self) -> &[u8] {
        match self.name.iter().rposition(|&b| b == b'/') {
            Some(i) => &self.name[i + 1..],
            None => &self.name,
        }
    }

    /// The directory part (`b""` for entries directly below the root).
    pub fn dirname(&self) -> &[u8] {
        match self.name.iter().rposition(|&b| b == b'/') {
            Some(i) => &self.name[..i],
            None => b"",
        }
    }
}

/// rsync's file-list order (protocol ≥ 29): within one directory the non-directories come first,
/// sorted bytewise, then the subdirectories, each compared as if its name ended in `/`, each
/// followed by its contents. `.` sorts before everything.
pub fn compare_names(a: &[u8], a_is_dir: bool, b: &[u8], b_is_dir: bool) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    if a == b"." {
        return Ordering::Less;
    }
    if b == b"." {
        return Ordering::Greater;
    }
    let mut ai = a.split(|&c| c == b'/').peekable();
    let mut bi = b.split(|&c| c == b'/').peekable();
    loop {
        match (ai.next(), bi.next()) {
            (Some(x), Some(y)) => {
                // A component is a directory if more components follow, or it is the last one of a
                // directory entry.
                let x_dir = ai.peek().is_some() || a_is_dir;
                let y_dir = bi.peek().is_some() || b_is_dir;
                if x == y && x_dir == y_dir {
                    continue;
                }
                return match (x_dir, y_dir) {
                    (false, true) => Ordering::Less,
                    (true, false) => Ordering::Greater,
                    (true, true) => cmp_with_slash(x, y),
                    (false, false) => x.cmp(y),
                };
            }
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (None, None) => return Ordering::Equal,
        }
    }
}

/// Compares two directory names as if each ended in `/`.
fn cmp_with_slash(x: &[u8], y: &[u8]) -> Ordering {
    let n = x.len().min(y.len());
    match x[..n].cmp(&y[..n]) {
        Ordering::Equal => {
            let xc = x.get(n).copied().unwrap_or(b'/');
            let yc = y.get(n).copied().unwrap_or(b'/');
            xc.cmp(&yc)
        }
        other => other,
    }
}

/// [`compare_names`] for entries of one directory, given their final components: cheaper, as
/// the shared directory part is not looked at.
pub fn compare_siblings(a: &[u8], a_is_dir: bool, b: &[u8], b_is_dir: bool) -> Ordering {
    match (a_is_dir, b_is_dir) {
        (false, true) => Ordering::Less,
        (true, false) => Ordering::Greater,
        (true, true) => cmp_with_slash(a, b),
        (false, false) => a.cmp(b),
    }
}

/// Sorts entries into rsync's file-list order.
pub fn sort_entries(entries: &mut [FileEntry]) {
    entries.sort_by(|a, b| compare_names(&a.name, a.is_dir(), &b.name, b.is_dir()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siblings_compare_like_full_names() {
        let names: [(&[u8], bool); 6] = [
            (b"a", true),
            (b"a.d", true),
            (b"a b", false),
            (b"c", false),
            (b"B", false),
            (b"ab", true),
        ];
        for x in names {
            for y in names {
                let mut fx = b"dir/".to_vec();
                fx.extend_from_slice(x.0);
                let mut fy = b"dir/".to_vec();
                fy.extend_from_slice(y.0);
                assert_eq!(
                    compare_siblings(x.0, x.1, y.0, y.1),
                    compare_names(&fx, x.1, &fy, y.1)
                );
            }
        }
    }

    #[test]
    fn files_before_directories_and_dirs_with_implied_slash() {
        let mut names: Vec<(&[u8], bool)> = vec![
            (b"b/c/z", false),
            (b"a", true),
            (b"c", false),
            (b"a.d", true),
            (b"a/x", false),
            (b".", true),
            (b"a/sub", true),
            (b"B", false),
            (b"a/sub/q", false),
            (b"a b", false),
            (b"b", true),
        ];
        names.sort_by(|a, b| compare_names(a.0, a.1, b.0, b.1));
        let got: Vec<&[u8]> = names.iter().map(|n| n.0).collect();
        let want: Vec<&[u8]> = vec![
            b".", b"B", b"a b", b"c", b"a.d", b"a", b"a/x", b"a/sub", b"a/sub/q", b"b", b"b/c/z",
        ];
        assert_eq!(got, want);
    }
}
