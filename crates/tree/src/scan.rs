//! Building a file list from local source arguments, with rsync's source-path semantics:
//! `dir/` sends the directory's contents (its entry is `.`), `dir` sends the directory itself,
//! `-R` keeps the path as given (after a `/./` marker, if any) and adds the implied parents.

use crate::entry::{FileEntry, FileKind};
use std::ffi::OsStr;
use std::fs::Metadata;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Which sources to include and how to treat links and directories.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    pub recursive: bool,
    /// `-d`: send directories named (without recursing).
    pub dirs: bool,
    pub links: bool,
    pub copy_links: bool,
    pub copy_unsafe_links: bool,
    pub copy_dirlinks: bool,
    /// 1 for `-x` (do not descend into other filesystems), 2 for `-xx` (do not even list their
    /// mount points).
    pub one_file_system: u32,
    pub relative: bool,
    pub implied_dirs: bool,
    pub hard_links: bool,
    /// What a command-line source that does not exist means: an error (0, stock's default),
    /// nothing (1, `--ignore-missing-args`), or a missing entry (2, `--delete-missing-args`:
    /// listed with mode 0, see [`FileEntry::is_missing`]) that tells the receiver to delete it.
    pub missing_args: u8,
    /// Stock would send this list incrementally. It then files a `-R` source under its
    /// first implied parent, so a missing parent is reported once per source (the first
    /// one only) and a `--delete-missing-args` entry below it is not listed at all;
    /// otherwise every missing parent is reported once and the entry is listed (the
    /// receiver warns that its parent is absent, and deletes it).
    pub incremental: bool,
    /// `-X`: list each entry's extended attributes (as a sender does).
    pub xattrs: Option<crate::xattr::XattrRules>,
    /// `-A`: read each entry's ACLs (not a symlink's).
    pub acls: bool,
    /// `--fake-super` on this (sending) side: an entry's `user.rsync.%stat` gives its
    /// mode, device number and owner, and its ACLs come from `user.rsync.%aacl`/`%dacl`
    /// (see [`crate::fake`]).
    pub fake_super: bool,
    /// `--copy-devices`: a device is listed as a regular file of its contents (the size
    /// seeking to its end finds, the time of the scan).
    pub copy_devices: bool,
    /// `--munge-links` on this sending side: symlink targets are listed without the
    /// munging prefix (see [`crate::munge`]).
    pub unmunge_links: bool,
    /// Say which unsafe symlinks `--copy-unsafe-links` follows (stock's `--info=symsafe`):
    /// [`ScanProblem::CopyingUnsafe`].
    pub note_unsafe_copies: bool,
    /// `--iconv` on this sending side: whether an entry's name (and symlink target) can be
    /// sent; the message when not ([`ScanProblem::Unconvertible`], the entry is left out).
    pub name_check: Option<NameCheck>,
}

/// A check of each entry before it is listed (see [`ScanOptions::name_check`]).
#[derive(Clone)]
pub struct NameCheck(pub std::sync::Arc<NameCheckFn>);

/// The function of a [`NameCheck`]: the message for an entry that cannot be listed.
pub type NameCheckFn = dyn Fn(&FileEntry) -> Option<String> + Send + Sync;

impl std::fmt::Debug for NameCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NameCheck")
    }
}

/// How many bytes a device holds: where seeking to its end lands (0 for most character
/// devices, or when it cannot be opened).
pub fn device_size(path: &Path) -> u64 {
    use std::io::Seek;
    std::fs::File::open(path)
        .and_then(|mut f| f.seek(io::SeekFrom::End(0)))
        .unwrap_or(0)
}

/// Decides which names are left out of the file list; the filter crate's rule lists implement it.
pub trait ScanFilter {
    /// Entering directory `name` (file-list name, `.` for the root) found at `path`.
    fn enter_dir(&mut self, name: &[u8], path: &Path) -> io::Result<()>;
    /// Leaving the directory entered last.
    fn leave_dir(&mut self);
    /// Whether `name` (file-list name) is excluded.
    fn excluded(&self, name: &[u8], is_dir: bool) -> bool;
    /// Informational lines about the decisions made since the last call (see
    /// [`ScanProblem::Note`]).
    fn take_notes(&mut self) -> Vec<String> {
        Vec::new()
    }
}

/// A filter that excludes nothing.
pub struct NoFilter;

impl ScanFilter for NoFilter {
    fn enter_dir(&mut self, _: &[u8], _: &Path) -> io::Result<()> {
        Ok(())
    }
    fn leave_dir(&mut self) {}
    fn excluded(&self, _: &[u8], _: bool) -> bool {
        false
    }
}

/// A problem met while scanning; the scan goes on.
#[derive(Debug)]
pub enum ScanProblem {
    /// A command-line source could not be read (`link_stat … failed`).
    Missing { path: PathBuf, error: io::Error },
    /// The directory a command-line source is named in (its part before the last `/`, or
    /// a `dir/` itself) cannot be entered (`change_dir … failed`).
    ChangeDir { path: PathBuf, error: io::Error },
    /// Reading a directory failed (`opendir … failed`).
    ReadDir { path: PathBuf, error: io::Error },
    /// A file disappeared between readdir and lstat (rsync's exit code 24).
    Vanished { path: PathBuf },
    /// `-L`/`--copy-unsafe-links` met a symlink whose target does not exist.
    NoReferent { path: PathBuf },
    /// `-L`/`--copy-unsafe-links` could not look at a symlink's referent for another reason
    /// than its absence (a loop, a file where a directory should be): stock's
    /// `readlink_stat(NAME) failed`.
    ReadlinkStat { path: PathBuf, error: io::Error },
    /// `--copy-unsafe-links` copies what this unsafe symlink points to (a note, asked for
    /// with [`ScanOptions::note_unsafe_copies`]).
    CopyingUnsafe { name: Vec<u8>, target: Vec<u8> },
    /// A non-regular file or directory skipped for lack of `-l`, `-D`, `-r`/`-d`.
    Skipped { name: Vec<u8>, directory: bool },
    /// Another filesystem's mount point not descended into with `-x`.
    OtherFilesystem { name: Vec<u8> },
    /// An entry whose name does not convert under `--iconv` (stock's `cannot convert
    /// filename`), left out.
    Unconvertible { text: String },
    /// An entry whose name in the list would reach `MAXPATHLEN` (4096) bytes, left out with
    /// stock's `filename overflows max-path len by N: DIR/NAME` (counts as an I/O error).
    TooLong {
        dir: Vec<u8>,
        name: Vec<u8>,
        over: usize,
    },
    /// An informational line from the filter (stock's `--debug=filter` trace of the rule
    /// that decided a name), in the order met.
    Note { text: String },
}

/// The result of a scan, in scan (readdir) order: `paths[i]` is where `entries[i]` is read from.
#[derive(Debug, Default)]
pub struct Scanned {
    pub entries: Vec<FileEntry>,
    pub paths: Vec<PathBuf>,
    /// Per entry: a directory whose contents were listed too (recursion, `-d dir/`);
    /// stock's FLAG_CONTENT_DIR, without which a receiver deletes nothing in it.
    pub descended: Vec<bool>,
    pub problems: Vec<ScanProblem>,
}

/// Whether a symlink target climbs out of the tree from `name`'s directory (rsync's "unsafe").
pub fn unsafe_symlink(target: &[u8], name: &[u8]) -> bool {
    if target.is_empty() || target[0] == b'/' {
        return true;
    }
    // Like rsync, a `..` anywhere but in the leading run (`a/../b`) or at the very end
    // (`a/..`) is unsafe whatever the depth works out to.
    let mut rest = target;
    while let Some(r) = rest.strip_prefix(b"../") {
        rest = r;
        while let Some(r) = rest.strip_prefix(b"/") {
            rest = r;
        }
    }
    if rest.windows(4).any(|w| w == b"/../") || (target.len() > 3 && target.ends_with(b"/..")) {
        return true;
    }
    let mut depth: i64 = name.iter().filter(|&&c| c == b'/').count() as i64;
    // A name under a `./` root starts at depth 0 with its own directory components counted.
    for comp in target.split(|&c| c == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

/// rsync's path buffer size: a list name must be shorter.
const MAXPATHLEN: usize = 4096;

fn join_name(dir: &[u8], base: &[u8]) -> Vec<u8> {
    if dir.is_empty() || dir == b"." {
        base.to_vec()
    } else {
        let mut n = Vec::with_capacity(dir.len() + 1 + base.len());
        n.extend_from_slice(dir);
        n.push(b'/');
        n.extend_from_slice(base);
        n
    }
}

/// A symlink's target read relative to an open descriptor: its directory and its name, or
/// (an empty name) an `O_PATH` descriptor of the symlink itself. No path is walked again, so
/// a parent swapped for a symlink since the descriptor was opened cannot redirect the read.
fn read_link_at(fd: std::os::fd::BorrowedFd<'_>, name: &[u8]) -> io::Result<Vec<u8>> {
    use std::os::fd::AsRawFd;
    let c = std::ffi::CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: a valid descriptor, a NUL-terminated name, and a buffer of the length passed.
    let n = unsafe {
        libc::readlinkat(
            fd.as_raw_fd(),
            c.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// A command-line source of a confined (daemon) scan, pinned without following anything but
/// a trusted symlink that stays inside the module (the operator-path walk, confined by the
/// daemon): an `O_PATH` descriptor of the entry itself, not followed.
fn pin_source(path: &Path) -> io::Result<std::fs::File> {
    use std::os::fd::{AsRawFd, FromRawFd};
    if path.as_os_str().as_bytes().ends_with(b"/") {
        // `dir/` names what a symlink there leads to, as lstat does with the slash.
        let fd = rtsync_oppath::open(path, libc::O_PATH | libc::O_DIRECTORY, 0)?;
        return Ok(std::fs::File::from(fd));
    }
    let bytes = path.as_os_str().as_bytes();
    let (parent, leaf): (&[u8], &[u8]) = match bytes.iter().rposition(|&c| c == b'/') {
        Some(0) => (b"/", &bytes[1..]),
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (b".", bytes),
    };
    if leaf.is_empty() || leaf == b"." || leaf == b".." {
        let fd = rtsync_oppath::open(path, libc::O_PATH | libc::O_DIRECTORY, 0)?;
        return Ok(std::fs::File::from(fd));
    }
    let dir = rtsync_oppath::open(
        Path::new(OsStr::from_bytes(parent)),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
    )?;
    let c = std::ffi::CString::new(leaf).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: a valid directory descriptor and a NUL-terminated name.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor we just opened.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// Builds an entry from metadata; `None` for a kind the options don't transfer. A symlink's
/// target is `link` when the caller read it safely, else read at `path`.
fn make_entry(
    name: Vec<u8>,
    md: &Metadata,
    path: &Path,
    opts: &ScanOptions,
    link: Option<Vec<u8>>,
) -> FileEntry {
    let real_kind = FileKind::from_mode(md.mode()).unwrap_or(FileKind::Regular);
    let seen = if opts.fake_super {
        faked(path, md)
    } else {
        crate::fake::Seen::real(md)
    };
    let mut kind = FileKind::from_mode(seen.mode).unwrap_or(FileKind::Regular);
    let mut mode = seen.mode;
    let mut mtime = md.mtime();
    let mut device_len = None;
    if opts.copy_devices && matches!(kind, FileKind::CharDevice | FileKind::BlockDevice) {
        // Stock's sender: a regular file with the device's permissions, timed now (a
        // device's own time says nothing of its contents).
        kind = FileKind::Regular;
        mode = libc::S_IFREG | (mode & 0o777);
        mtime = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        device_len = Some(if md.size() == 0 {
            device_size(path)
        } else {
            md.size()
        });
    }
    let link_target = if kind == FileKind::Symlink {
        if real_kind == FileKind::Regular {
            // A --fake-super stand-in holds its target.
            crate::fake::read_symlink_file(path).ok().flatten()
        } else {
            link.or_else(|| {
                std::fs::read_link(path)
                    .ok()
                    .map(|t| t.as_os_str().as_bytes().to_vec())
            })
        }
    } else {
        None
    };
    // rsync lists (and sends) a directory's own st_size.
    let size = match kind {
        FileKind::Regular if device_len.is_some() => device_len.unwrap_or(0),
        FileKind::Regular | FileKind::Directory => md.size(),
        FileKind::Symlink => link_target.as_ref().map_or(0, |t| t.len() as u64),
        _ => 0,
    };
    // `--munge-links` on a sender: the target travels unmunged, its size stays the one on
    // disk (as stock lists it).
    let link_target = match link_target {
        Some(t) if opts.unmunge_links => Some(crate::munge::unmunge(&t).to_vec()),
        t => t,
    };
    let hardlink_key = (opts.hard_links && kind != FileKind::Directory && md.nlink() > 1)
        .then(|| (md.dev(), md.ino()));
    FileEntry {
        name,
        kind,
        mode,
        size,
        mtime,
        mtime_nsec: md.mtime_nsec() as u32,
        atime: md.atime(),
        uid: seen.uid,
        gid: seen.gid,
        rdev: seen.rdev,
        link_target,
        hardlink_key,
        checksum: None,
        top_dir: false,
        xattrs: opts.xattrs.as_ref().and_then(|r| {
            let listed = match kind {
                FileKind::Symlink => opts.links,
                _ => true,
            };
            listed.then(|| {
                std::sync::Arc::new(crate::xattr::read_for_send(path, r).unwrap_or_default())
            })
        }),
        acl: (opts.acls && kind != FileKind::Symlink).then(|| {
            std::sync::Arc::new(if opts.fake_super {
                crate::fake::read_acl(path, seen.mode)
            } else {
                crate::acl::read(path, md.mode())
                    .unwrap_or_else(|_| crate::acl::EntryAcl::plain(md.mode()))
            })
        }),
    }
}

/// A `--fake-super` sender's view of an item: its `%stat` folded in. A value that does not
/// parse is ignored, and so is a type change between a directory and anything else (the
/// scan descends by the real type).
fn faked(path: &Path, md: &Metadata) -> crate::fake::Seen {
    let mut seen = crate::fake::Seen::of(path, md);
    let real_dir = md.is_dir();
    let fake_dir = seen.mode & libc::S_IFMT == libc::S_IFDIR;
    if real_dir != fake_dir || FileKind::from_mode(seen.mode).is_none() {
        seen.mode = (md.mode() & libc::S_IFMT) | (seen.mode & 0o7777);
        seen.rdev = md.rdev();
    }
    seen
}

/// One scanned entry: what it is, where it is read from, and whether its contents are listed.
#[derive(Debug)]
pub struct Item {
    pub entry: FileEntry,
    pub path: PathBuf,
    /// A directory whose contents are part of the transfer (recursion, or `-d dir/`).
    pub descend: bool,
    /// The filesystem it is on (for `-x`).
    pub dev: u64,
}

/// Lists sources one directory at a time, so a transfer holds only the directories on its
/// current path: [`Scanner::top`] gives the command-line level, [`Scanner::enter`] a
/// directory's contents (and its per-directory filter rules, until [`Scanner::leave`]).
pub struct Scanner<'a, F: ScanFilter> {
    opts: &'a ScanOptions,
    filter: &'a mut F,
    problems: Vec<ScanProblem>,
    /// Names already produced at the top level (duplicates and `-R`'s implied dirs).
    top_names: std::collections::HashSet<Vec<u8>>,
    /// A daemon module root that followed symlinks may not leave.
    confine: Option<crate::Confine>,
    /// Followed directory symlinks that lead out of it: listed, but not read.
    refused_dirs: std::collections::HashSet<PathBuf>,
    /// `-R`'s implied parents found missing (reported once each).
    vanished_dirs: std::collections::HashSet<Vec<u8>>,
}

impl<'a, F: ScanFilter> Scanner<'a, F> {
    pub fn new(opts: &'a ScanOptions, filter: &'a mut F) -> Self {
        Scanner {
            opts,
            filter,
            problems: Vec::new(),
            top_names: Default::default(),
            confine: None,
            refused_dirs: Default::default(),
            vanished_dirs: Default::default(),
        }
    }

    /// Follows symlinks (`-L`, `-k`, `--copy-unsafe-links`) only beneath `confine`'s root, as
    /// a daemon module does: one leading out is listed as what it names (as stock does), but
    /// a directory is not read, and the content open is the sender's to refuse.
    pub fn confined(mut self, confine: Option<crate::Confine>) -> Self {
        self.confine = confine;
        self
    }

    /// The filter, for receiver-side checks made while a directory is entered.
    pub fn filter(&self) -> &F {
        self.filter
    }

    /// Problems met since the last call.
    pub fn take_problems(&mut self) -> Vec<ScanProblem> {
        let notes = self.filter.take_notes();
        if notes.is_empty() {
            return std::mem::take(&mut self.problems);
        }
        // (The filter's lines come first: stock prints them as it lists, before what it
        // reports of the directory after.)
        let mut out: Vec<ScanProblem> = notes
            .into_iter()
            .map(|text| ScanProblem::Note { text })
            .collect();
        out.append(&mut self.problems);
        out
    }

    /// A command-line source's lstat, or stat when links are to be followed for this name.
    fn metadata(&mut self, path: &Path, name: &[u8]) -> io::Result<Option<Metadata>> {
        let md = std::fs::symlink_metadata(path)?;
        self.source_metadata(md, path, name)
    }

    /// A named source's metadata from its lstat `md` (taken by path or through a pinned
    /// handle). Under `-L` a source whose link leads nowhere is an error of its own (stock's
    /// `link_stat` stats it), not a symlink without referent.
    fn source_metadata(
        &mut self,
        md: Metadata,
        path: &Path,
        name: &[u8],
    ) -> io::Result<Option<Metadata>> {
        if self.opts.copy_links && md.file_type().is_symlink() {
            std::fs::metadata(path)?;
        }
        self.follow_if_asked(md, path, name)
    }

    /// For a symlink, the metadata of its referent when `-L`/`--copy-unsafe-links`/`-k` say so.
    fn follow_if_asked(
        &mut self,
        md: Metadata,
        path: &Path,
        name: &[u8],
    ) -> io::Result<Option<Metadata>> {
        if !md.file_type().is_symlink() {
            return Ok(Some(md));
        }
        if !(self.opts.copy_links || self.opts.copy_unsafe_links || self.opts.copy_dirlinks) {
            return Ok(Some(md));
        }
        let target = std::fs::read_link(path)?;
        let target = target.as_os_str().as_bytes();
        let copy_unsafe = self.opts.copy_unsafe_links && unsafe_symlink(target, name);
        if copy_unsafe && !self.opts.copy_links && self.opts.note_unsafe_copies {
            self.problems.push(ScanProblem::CopyingUnsafe {
                name: name.to_vec(),
                target: target.to_vec(),
            });
        }
        let follow = self.opts.copy_links || copy_unsafe;
        let follow_dir =
            self.opts.copy_dirlinks && std::fs::metadata(path).map(|m| m.is_dir()).unwrap_or(false);
        if follow || follow_dir {
            let escapes = self
                .confine
                .as_ref()
                .is_some_and(|c| c.resolve(path, true).is_err());
            return match std::fs::metadata(path) {
                Ok(m) => {
                    if escapes && m.is_dir() {
                        self.refused_dirs.insert(path.to_owned());
                    }
                    Ok(Some(m))
                }
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    self.problems.push(ScanProblem::ReadlinkStat {
                        path: path.to_owned(),
                        error: e,
                    });
                    Ok(None)
                }
                Err(_) => {
                    self.problems.push(ScanProblem::NoReferent {
                        path: path.to_owned(),
                    });
                    Ok(None)
                }
            };
        }
        Ok(Some(md))
    }

    /// Makes an item, unless it is a directory that no option transfers.
    fn item(&mut self, entry: FileEntry, path: PathBuf, descend: bool, dev: u64) -> Option<Item> {
        if entry.kind == FileKind::Directory && !(self.opts.recursive || self.opts.dirs) {
            self.problems.push(ScanProblem::Skipped {
                name: entry.name,
                directory: true,
            });
            return None;
        }
        if let Some(check) = &self.opts.name_check {
            if let Some(text) = (check.0)(&entry) {
                self.problems.push(ScanProblem::Unconvertible { text });
                return None;
            }
        }
        Some(Item {
            entry,
            path,
            descend,
            dev,
        })
    }

    /// Enters directory `dir`: loads its per-directory rules and lists its contents in readdir
    /// order. `None` when the directory could not be entered (the problem is recorded);
    /// otherwise [`Scanner::leave`] must follow once the subtree is done.
    pub fn enter(&mut self, dir: &Item) -> Option<Vec<Item>> {
        let (name, path) = (&dir.entry.name, &dir.path);
        if let Err(error) = self.filter.enter_dir(name, path) {
            self.problems.push(ScanProblem::ReadDir {
                path: path.to_owned(),
                error,
            });
            return None;
        }
        // Unless symlinks are followed on purpose, the directory is opened without following
        // a symlink swapped in for it (or a parent) since it was listed, and read through
        // that descriptor.
        let confined = !(self.opts.copy_links
            || self.opts.copy_unsafe_links
            || self.opts.copy_dirlinks
            || rtsync_oppath::insecure_links());
        // The directory as opened: symlink targets are read relative to it.
        let mut dir_fd: Option<std::os::fd::OwnedFd> = None;
        let opened = if self.refused_dirs.contains(path) {
            Err(io::Error::from_raw_os_error(libc::ELOOP))
        } else if confined {
            // With -R the name holds the operator's path (its symlinks are followed).
            let name: &[u8] = if self.opts.relative { b"" } else { name };
            crate::fsops::open_source(path, name, libc::O_RDONLY | libc::O_DIRECTORY).and_then(
                |fd| {
                    use std::os::fd::AsRawFd;
                    let r = match std::fs::read_dir(format!("/proc/self/fd/{}", fd.as_raw_fd())) {
                        // No /proc (a chroot, which confines by itself): the path it is.
                        Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::read_dir(path),
                        r => r,
                    };
                    dir_fd = Some(fd);
                    r
                },
            )
        } else {
            std::fs::read_dir(path)
        };
        let reader = match opened {
            Ok(r) => r,
            Err(error) => {
                self.problems.push(ScanProblem::ReadDir {
                    path: path.to_owned(),
                    error,
                });
                return Some(Vec::new());
            }
        };
        let mut items = Vec::new();
        for found in reader {
            let found = match found {
                Ok(i) => i,
                Err(error) => {
                    self.problems.push(ScanProblem::ReadDir {
                        path: path.to_owned(),
                        error,
                    });
                    break;
                }
            };
            let child_name = join_name(name, found.file_name().as_bytes());
            if child_name.len() >= MAXPATHLEN {
                // Stock's sender leaves the name out of its list (it would not fit its
                // path buffer), and so does every receiver that reads a stock list.
                self.problems.push(ScanProblem::TooLong {
                    dir: name.clone(),
                    name: found.file_name().as_bytes().to_vec(),
                    over: child_name.len() + 1 - MAXPATHLEN,
                });
                continue;
            }
            let child_path = path.join(found.file_name());
            // The entry's own lstat is relative to the open directory (no path walk).
            let md = match found
                .metadata()
                .and_then(|md| self.follow_if_asked(md, &child_path, &child_name))
            {
                Ok(Some(md)) => md,
                Ok(None) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    self.problems
                        .push(ScanProblem::Vanished { path: child_path });
                    continue;
                }
                Err(error) => {
                    self.problems.push(ScanProblem::Missing {
                        path: child_path,
                        error,
                    });
                    continue;
                }
            };
            let is_dir = md.is_dir();
            if self.filter.excluded(&child_name, is_dir) {
                continue;
            }
            let mut descend = is_dir && self.opts.recursive;
            if is_dir && self.opts.one_file_system > 0 && md.dev() != dir.dev {
                if self.opts.one_file_system > 1 {
                    continue;
                }
                descend = false;
                self.problems.push(ScanProblem::OtherFilesystem {
                    name: child_name.clone(),
                });
            }
            let link = match (&dir_fd, md.file_type().is_symlink()) {
                (Some(fd), true) => {
                    use std::os::fd::AsFd;
                    read_link_at(fd.as_fd(), found.file_name().as_bytes()).ok()
                }
                _ => None,
            };
            let entry = make_entry(child_name, &md, &child_path, self.opts, link);
            if let Some(item) = self.item(entry, child_path, descend, md.dev()) {
                items.push(item);
            }
        }
        Some(items)
    }

    /// Leaves the directory entered last.
    pub fn leave(&mut self) {
        self.filter.leave_dir();
    }

    /// The command-line level: one item per source (a `dir/` source is `.`), plus `-R`'s
    /// implied parent directories, in argument order.
    pub fn top(&mut self, sources: &[PathBuf]) -> Vec<Item> {
        let mut items = Vec::new();
        for s in sources {
            self.source(s, &mut items);
        }
        items
    }

    /// One `-R` source with all its implied parents, whatever earlier sources listed (stock's
    /// incremental lists repeat a parent for sources that are not consecutive); `.` (of a
    /// `./NAME` source) comes once.
    pub fn top_chain(&mut self, source: &Path) -> Vec<Item> {
        self.top_names.retain(|n| n == b".");
        let mut items = Vec::new();
        self.source(source, &mut items);
        items
    }

    fn source(&mut self, arg: &Path, items: &mut Vec<Item>) {
        let bytes = arg.as_os_str().as_bytes();
        let trailing_slash = bytes.len() > 1 && bytes.ends_with(b"/");
        let (name, path) = self.source_name(bytes);
        if self.opts.relative {
            self.leading_dot(bytes, &name, items);
        } else if let Some(dir) = source_dir(bytes) {
            // Stock enters the directory a source is named in before it looks at the name.
            let path = PathBuf::from(OsStr::from_bytes(dir));
            let entered = match std::fs::metadata(&path) {
                Ok(md) if md.is_dir() => Ok(()),
                Ok(_) => Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
                Err(e) => Err(e),
            };
            if let Err(error) = entered {
                self.problems.push(ScanProblem::ChangeDir { path, error });
                return;
            }
        }
        // A daemon module's source is pinned first, so its lstat and its link target come
        // from the same entry, reached without a parent swapped for a symlink on the way.
        let mut pinned = None;
        let md = if self.confine.is_some() {
            match pin_source(&path) {
                Ok(f) => {
                    let md = f
                        .metadata()
                        .and_then(|md| self.source_metadata(md, &path, &name));
                    pinned = Some(f);
                    md
                }
                Err(error) => Err(error),
            }
        } else {
            self.metadata(&path, &name)
        };
        // Looked at before the implied parents: a source that is not there adds none (unless
        // it is listed as missing).
        let md = match md {
            Ok(Some(md)) => Some(md),
            Ok(None) => return,
            Err(error) => {
                // `dir/` outside -R names a directory to enter: its absence is always an
                // error (stock's change_dir).
                let absent = error.kind() == io::ErrorKind::NotFound
                    && (self.opts.relative || !trailing_slash);
                match self.opts.missing_args {
                    1 if absent => return,
                    2 if absent => None,
                    _ => {
                        self.problems.push(ScanProblem::Missing { path, error });
                        return;
                    }
                }
            }
        };
        // `dir/` and `.` mean the directory's contents: its entry is `.`.
        let shown_name = |name: Vec<u8>, md: &Metadata| {
            let contents_only = md.is_dir() && (trailing_slash || name == b"." || name.is_empty());
            if (contents_only && !self.opts.relative) || name.is_empty() {
                (b".".to_vec(), contents_only)
            } else {
                (name, contents_only)
            }
        };
        // The sender's rules apply to the named sources too (not to a `.`, nor to a missing
        // one), before any implied parent is listed for them.
        if let Some(md) = &md {
            let (shown, _) = shown_name(name.clone(), md);
            if shown != b"." && self.filter.excluded(&shown, md.is_dir()) {
                return;
            }
        }
        let parents_listed = !self.opts.relative || self.implied_dirs(bytes, &name, items);
        let Some(md) = md else {
            if self.opts.incremental && !parents_listed {
                return;
            }
            let name = if name.is_empty() { b".".to_vec() } else { name };
            if self.top_names.insert(name.clone()) {
                items.push(Item {
                    entry: FileEntry::missing(name),
                    path,
                    descend: false,
                    dev: 0,
                });
            }
            return;
        };
        let link = match &pinned {
            Some(f) if md.file_type().is_symlink() => {
                use std::os::fd::AsFd;
                read_link_at(f.as_fd(), b"").ok()
            }
            _ => None,
        };
        let (name, contents_only) = shown_name(name, &md);
        // A name already listed is dropped, except a directory to recurse into: the walk
        // merges the contents of same-named source directories (`a/ b/ dest/`), as rsync does.
        let first = self.top_names.insert(name.clone());
        let mergeable = md.is_dir() && self.opts.recursive;
        if !first && !mergeable {
            return;
        }
        if !md.is_dir() {
            let entry = make_entry(name, &md, &path, self.opts, link);
            items.extend(self.item(entry, path, false, md.dev()));
            return;
        }
        let mut entry = make_entry(name, &md, &path, self.opts, None);
        entry.top_dir = true;
        // `-d dir/` lists the directory's immediate contents.
        let descend = self.opts.recursive || (self.opts.dirs && contents_only);
        items.extend(self.item(entry, path, descend, md.dev()));
    }

    /// The file-list name and filesystem path of a command-line source.
    fn source_name(&self, bytes: &[u8]) -> (Vec<u8>, PathBuf) {
        let path = PathBuf::from(OsStr::from_bytes(bytes));
        let trimmed = trim_slashes(bytes);
        if self.opts.relative {
            let rel = match find_dot_marker(bytes) {
                Some(i) => &bytes[i..],
                None => bytes,
            };
            return (clean_relative(rel), path);
        }
        let base = match trimmed.iter().rposition(|&c| c == b'/') {
            Some(i) => &trimmed[i + 1..],
            None => trimmed,
        };
        let name = if base == b"." || base == b".." || base.is_empty() {
            b".".to_vec()
        } else {
            base.to_vec()
        };
        (name, path)
    }

    /// With `-R`, a source written `./NAME` (no later `/./` marker) also sends `.` itself,
    /// so the destination root gets the source directory's attributes, as rsync does: once,
    /// before the source is even looked at (it may be missing or excluded).
    fn leading_dot(&mut self, arg: &[u8], name: &[u8], items: &mut Vec<Item>) {
        let leading_dot = arg.starts_with(b"./") && find_dot_marker(arg).is_none();
        if leading_dot && name != b"." && !self.top_names.contains(&b"."[..]) {
            let path = PathBuf::from(".");
            if let Ok(md) = std::fs::metadata(&path) {
                self.top_names.insert(b".".to_vec());
                let entry = make_entry(b".".to_vec(), &md, &path, self.opts, None);
                // (Without -r or -d it is skipped, as any directory.)
                items.extend(self.item(entry, path, false, md.dev()));
            }
        }
    }

    /// With `-R`, every parent of `name` is sent as a directory (rsync's implied dirs); one
    /// that is not there is reported as vanished (as stock does for a missing source's
    /// parent under `--delete-missing-args`). Whether all of them are listed.
    fn implied_dirs(&mut self, arg: &[u8], name: &[u8], items: &mut Vec<Item>) -> bool {
        if !self.opts.implied_dirs {
            return true;
        }
        let mut all_listed = true;
        let base_len = find_dot_marker(arg).unwrap_or(0);
        let mut end = 0;
        while let Some(pos) = name[end..].iter().position(|&c| c == b'/') {
            let dir_name = &name[..end + pos];
            end += pos + 1;
            if self.top_names.contains(dir_name) {
                continue;
            }
            if !self.opts.incremental && self.vanished_dirs.contains(dir_name) {
                all_listed = false;
                continue;
            }
            // The parent's path on disk: the argument's prefix before the relative part plus it.
            let mut p = arg[..base_len].to_vec();
            if !p.is_empty() && !p.ends_with(b"/") {
                p.push(b'/');
            }
            if arg.starts_with(b"/") && base_len == 0 {
                p = b"/".to_vec();
            }
            p.extend_from_slice(dir_name);
            let path = PathBuf::from(OsStr::from_bytes(&p));
            match std::fs::metadata(&path) {
                Ok(md) => {
                    self.top_names.insert(dir_name.to_vec());
                    let entry = make_entry(dir_name.to_vec(), &md, &path, self.opts, None);
                    items.push(Item {
                        entry,
                        path,
                        descend: false,
                        dev: md.dev(),
                    });
                }
                Err(e) => {
                    all_listed = false;
                    if e.kind() == io::ErrorKind::NotFound {
                        self.vanished_dirs.insert(dir_name.to_vec());
                        self.problems.push(ScanProblem::Vanished { path });
                    }
                    if self.opts.incremental {
                        break;
                    }
                }
            }
        }
        all_listed
    }
}

fn trim_trailing(bytes: &[u8]) -> &[u8] {
    let mut end = bytes.len();
    while end > 1 && bytes[end - 1] == b'/' {
        end -= 1;
    }
    &bytes[..end]
}

fn trim_slashes(bytes: &[u8]) -> &[u8] {
    trim_trailing(bytes)
}

/// A `-R` source's base directory (what precedes a `/./` marker; empty without one) and its
/// file-list name (see [`Scanner::top`]; empty for the base itself).
pub fn relative_parts(arg: &[u8]) -> (&[u8], Vec<u8>) {
    match find_dot_marker(arg) {
        Some(i) => (&arg[..i - 3], clean_relative(&arg[i..])),
        None => (&b""[..], clean_relative(arg)),
    }
}

/// The directory a source outside `-R` is named in, as stock enters it: the part before the
/// last `/` (`/` itself for `/NAME`), or the directory of a `dir/` source; `None` for a bare
/// name (the current directory).
fn source_dir(arg: &[u8]) -> Option<&[u8]> {
    // `dir/` is `dir/.`, and `..` is `../.`: their directory is the source itself.
    let last = arg.rsplit(|&c| c == b'/').next().unwrap_or_default();
    if (arg.len() > 1 && arg.ends_with(b"/")) || last == b".." {
        return Some(arg);
    }
    match arg.iter().rposition(|&c| c == b'/')? {
        0 => Some(b"/"),
        i => Some(&arg[..i]),
    }
}

/// Position just after a `/./` marker (or a leading `./`) that starts the relative path.
fn find_dot_marker(bytes: &[u8]) -> Option<usize> {
    bytes.windows(3).position(|w| w == b"/./").map(|i| i + 3)
}

/// A `-R` name: leading `/` and `./` removed, `//` and `/./` collapsed, no trailing `/`.
fn clean_relative(rel: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for comp in rel.split(|&c| c == b'/') {
        match comp {
            b"" | b"." => {}
            other => parts.push(other),
        }
    }
    parts.join(&b'/')
}

/// Scans the command-line sources into one file list, recursively (in scan order; see
/// [`crate::sort_entries`]). Holds the whole tree: transfers use [`Scanner`] instead.
pub fn scan_sources<F: ScanFilter>(
    sources: &[PathBuf],
    opts: &ScanOptions,
    filter: &mut F,
) -> Scanned {
    scan_sources_confined(sources, opts, filter, None)
}

/// [`scan_sources`] with symlinks followed only beneath a module root (see
/// [`Scanner::confined`]).
pub fn scan_sources_confined<F: ScanFilter>(
    sources: &[PathBuf],
    opts: &ScanOptions,
    filter: &mut F,
    confine: Option<crate::Confine>,
) -> Scanned {
    fn walk<F: ScanFilter>(scanner: &mut Scanner<'_, F>, item: Item, out: &mut Scanned) {
        let children = if item.descend {
            scanner.enter(&item)
        } else {
            None
        };
        out.entries.push(item.entry);
        out.paths.push(item.path);
        out.descended.push(item.descend);
        let Some(children) = children else {
            return;
        };
        let mut subdirs = Vec::new();
        for child in children {
            if child.descend {
                subdirs.push(child);
            } else {
                out.entries.push(child.entry);
                out.paths.push(child.path);
                out.descended.push(child.descend);
            }
        }
        // rsync's sender descends in file-list order, which orders its messages.
        subdirs
            .sort_by(|a, b| crate::entry::compare_names(&a.entry.name, true, &b.entry.name, true));
        for dir in subdirs {
            walk(scanner, dir, out);
        }
        scanner.leave();
    }
    let mut scanner = Scanner::new(opts, filter).confined(confine);
    let mut out = Scanned::default();
    for item in scanner.top(sources) {
        walk(&mut scanner, item, &mut out);
    }
    out.problems = scanner.take_problems();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_targets_are_read_where_the_directory_was_opened() {
        use std::os::fd::AsFd;
        use std::os::unix::fs::symlink;
        let t = tempfile::tempdir().unwrap();
        let b = t.path();
        std::fs::create_dir_all(b.join("real")).unwrap();
        std::fs::create_dir_all(b.join("outside")).unwrap();
        symlink("inside-target", b.join("real/link")).unwrap();
        symlink("OUTSIDE", b.join("outside/link")).unwrap();
        let dir = std::fs::File::open(b.join("real")).unwrap();
        let pinned = pin_source(&b.join("real/link")).unwrap();
        // The parent is swapped for a symlink out after it was opened.
        std::fs::rename(b.join("real"), b.join("real.old")).unwrap();
        symlink(b.join("outside"), b.join("real")).unwrap();
        assert_eq!(
            read_link_at(dir.as_fd(), b"link").unwrap(),
            b"inside-target"
        );
        assert_eq!(read_link_at(pinned.as_fd(), b"").unwrap(), b"inside-target");
        assert!(pinned.metadata().unwrap().file_type().is_symlink());
        // Read by path, the swap would have been followed.
        assert_eq!(
            std::fs::read_link(b.join("real/link")).unwrap(),
            Path::new("OUTSIDE")
        );
        // Another user's symlink on the way to a source is not followed.
        if unsafe { libc::geteuid() } == 0 {
            std::os::unix::fs::lchown(b.join("real"), Some(65534), Some(65534)).unwrap();
            let e = pin_source(&b.join("real/link")).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
        }
    }

    #[test]
    fn unsafe_links() {
        assert!(unsafe_symlink(b"/etc/passwd", b"a"));
        assert!(unsafe_symlink(b"../x", b"a"));
        assert!(!unsafe_symlink(b"../x", b"d/a"));
        assert!(unsafe_symlink(b"../../x", b"d/a"));
        // rsync calls any `..` after the leading run unsafe, even one that stays inside.
        assert!(unsafe_symlink(b"x/../y", b"a"));
        assert!(unsafe_symlink(b"x/..", b"d/a"));
        assert!(!unsafe_symlink(b"..//x", b"d/a"));
        assert!(unsafe_symlink(b"x/../../y", b"a"));
        assert!(!unsafe_symlink(b"./x", b"a"));
    }

    #[test]
    fn relative_names() {
        assert_eq!(clean_relative(b"/usr/./lib//x/"), b"usr/lib/x");
        assert_eq!(find_dot_marker(b"/usr/./lib/x"), Some(7));
    }

    #[test]
    fn trailing_slash_sends_contents() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/f"), b"x").unwrap();
        let opts = ScanOptions {
            recursive: true,
            ..Default::default()
        };
        let mut with_slash = src.as_os_str().as_bytes().to_vec();
        with_slash.push(b'/');
        let s = scan_sources(
            &[PathBuf::from(OsStr::from_bytes(&with_slash))],
            &opts,
            &mut NoFilter,
        );
        let names: Vec<&[u8]> = s.entries.iter().map(|e| e.name.as_slice()).collect();
        assert_eq!(names, vec![&b"."[..], b"sub", b"sub/f"]);
        let s = scan_sources(&[src], &opts, &mut NoFilter);
        let names: Vec<&[u8]> = s.entries.iter().map(|e| e.name.as_slice()).collect();
        assert_eq!(names, vec![&b"src"[..], b"src/sub", b"src/sub/f"]);
        assert!(s.entries[0].top_dir);
    }
}
