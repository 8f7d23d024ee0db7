//! `--compare-dest`, `--copy-dest` and `--link-dest`: looking for an item missing from the
//! destination in up to 20 other directories, as rsync's generator does.
//!
//! For each directory in turn the candidate is graded: 1 = same type, 2 = passes the quick
//! check (a regular file's size and mtime, a symlink's target, a device's number), 3 = its
//! attributes match too. The best grade wins (the first directory at 3 stops the search). A
//! grade-3 match is hard-linked (`--link-dest`), left out (`--compare-dest`) or copied
//! (`--copy-dest`); a grade-2 file is copied; a grade-1 file is the basis of the transfer.

use super::LocalTransfer;
use crate::itemize::Itemize;
use crate::options::AltDest;
use rtsync_tree::FileKind;
use std::ffi::OsStr;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The best candidate found in the basis directories.
pub(super) struct AltMatch {
    pub path: PathBuf,
    pub md: Metadata,
    /// 1, 2 or 3 (see the module documentation).
    pub level: u8,
}

/// What happened to a regular file given a basis-directory match.
pub(super) enum AltOutcome {
    /// Nothing usable: transfer as usual.
    None,
    /// Handled completely (linked, copied, or left out).
    Done,
    /// Transfer, with this file as the basis (itemized against its attributes).
    Basis(Box<AltMatch>),
}

impl LocalTransfer<'_> {
    /// Resolves the basis directories against the destination directory and warns about those
    /// that are missing or not directories (as rsync does once the destination is known).
    pub(super) fn check_basis_dirs(&mut self) {
        let Some(kind) = self.opts.alt_dest else {
            return;
        };
        let cwd = std::env::current_dir().unwrap_or_default();
        let mut dest_dir = self.dest_dir();
        if dest_dir.as_os_str().is_empty() {
            dest_dir = PathBuf::from(".");
        }
        let curr = clean_join(&cwd, &dest_dir);
        let mut resolved = Vec::new();
        for dir in &self.opts.basis_dirs {
            let mut bytes = dir.as_bytes();
            if bytes.len() > 1 && bytes.ends_with(b"/") {
                bytes = &bytes[..bytes.len() - 1];
            }
            let path = if bytes.starts_with(b"/") {
                PathBuf::from(OsStr::from_bytes(bytes))
            } else if self.opts.dry_run && self.dest_created && bytes.starts_with(b"../") {
                // A dry run could not create the destination: one leading `../` is taken
                // as relative to where it would have been.
                clean_join(
                    curr.parent().unwrap_or(Path::new("/")),
                    Path::new(OsStr::from_bytes(&bytes[3..])),
                )
            } else {
                let mut p = curr.as_os_str().as_bytes().to_vec();
                if !p.ends_with(b"/") {
                    p.push(b'/');
                }
                p.extend_from_slice(bytes);
                PathBuf::from(OsStr::from_bytes(&p))
            };
            // An operator path: another user's symlink on the way is refused (an empty
            // path marks the directory; each lookup in it says so, as stock does); a trusted
            // one is resolved now, once.
            let mut pinned = None;
            let mut unusable = false;
            let path = match rtsync_oppath::open_dir(&path) {
                Err(e) if rtsync_oppath::is_refusal(&e) => {
                    resolved.push(PathBuf::new());
                    continue;
                }
                Ok(fd) => {
                    use std::os::fd::{AsFd, AsRawFd};
                    let real = rtsync_oppath::fd_path(fd.as_fd()).unwrap_or(path);
                    let magic = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
                    if magic.is_dir() {
                        pinned = Some(magic);
                        self.basis_fds.push(fd);
                    }
                    real
                }
                // Not opened (missing, not a directory, ...): said below, and never looked in
                // by name later, when it could be something else.
                Err(_) => {
                    unusable = true;
                    path
                }
            };
            match std::fs::metadata(&path) {
                Err(_) => self.report.error(&format!(
                    "{} arg does not exist: {}",
                    kind.option(),
                    path.display()
                )),
                Ok(md) if !md.is_dir() => self.report.error(&format!(
                    "{} arg is not a dir: {}",
                    kind.option(),
                    path.display()
                )),
                Ok(_) => {}
            }
            // Looked up and read through the descriptor held open, not the name.
            resolved.push(match pinned {
                Some(p) => p,
                None if unusable => PathBuf::from(UNUSABLE_BASIS),
                None => path,
            });
        }
        self.basis_dirs = resolved;
    }

    /// The one place a basis-directory candidate is looked up (`lstat` of DIR/NAME).
    pub(super) fn alt_lstat(&self, j: usize, name: &[u8]) -> Option<(PathBuf, Metadata)> {
        if self.basis_dirs[j].as_os_str().is_empty() {
            eprintln!("{}", rtsync_oppath::REFUSAL);
            return None;
        }
        let path = self.basis_dirs[j].join(OsStr::from_bytes(name));
        let md = std::fs::symlink_metadata(&path).ok()?;
        Some((path, md))
    }

    /// Grades the candidates for entry `i` and returns the best.
    fn find_alt(&mut self, i: usize) -> Option<AltMatch> {
        let kind = self.entries[i].kind;
        let name = self.entries[i].name.clone();
        let mut best: Option<AltMatch> = None;
        for j in 0..self.basis_dirs.len() {
            let Some((path, md)) = self.alt_lstat(j, &name) else {
                continue;
            };
            // (`--fake-super`: a device or special is a stand-in with its `%stat`.)
            if FileKind::from_mode(self.seen(&path, &md).mode) != Some(kind) {
                continue;
            }
            let mut level = 1;
            if self.alt_quick_check(i, &path, &md) {
                level = 2;
                if self.alt_unchanged_attrs(i, &path, &md) && !self.alt_xattrs_differ(i, &path) {
                    level = 3;
                }
            }
            if best.as_ref().is_none_or(|b| level > b.level) {
                best = Some(AltMatch { path, md, level });
            }
            if level == 3 {
                break;
            }
        }
        best
    }

    /// A hard-link group member missing from the destination: its basis-directory match, if
    /// any (`--link-dest`: the leader's own inode; otherwise a file passing the quick check),
    /// and whether it is a `--link-dest` match.
    pub(super) fn alt_match_for_member(
        &self,
        e: &rtsync_tree::FileEntry,
        leader: Option<&Metadata>,
    ) -> Option<(Metadata, bool)> {
        let kind = self.opts.alt_dest?;
        let mut found = None;
        for j in 0..self.basis_dirs.len() {
            let Some((_, md)) = self.alt_lstat(j, &e.name) else {
                continue;
            };
            if kind == AltDest::Link {
                if leader.is_some_and(|l| l.dev() == md.dev() && l.ino() == md.ino()) {
                    return Some((md, true));
                }
                continue;
            }
            let quick = md.is_file()
                && md.size() == e.size
                && (self.opts.size_only
                    || super::same_mtime(
                        self.opts.modify_window,
                        super::md_mtime(&md),
                        (e.mtime, e.mtime_nsec),
                    ));
            if !quick {
                continue;
            }
            let mut it = Itemize::default();
            self.compare_entry_attrs(e, &md, &mut it);
            let unchanged = it.time.is_none() && !it.perms && !it.owner && !it.group;
            found = Some((md, false));
            if unchanged {
                break;
            }
        }
        found
    }

    fn alt_quick_check(&mut self, i: usize, path: &Path, md: &Metadata) -> bool {
        let e = &self.entries[i];
        match e.kind {
            FileKind::Regular => self.quick_check_at(i, path, md),
            FileKind::Directory => true,
            FileKind::Symlink => std::fs::read_link(path).is_ok_and(|t| {
                t.as_os_str().as_bytes() == e.link_target.as_deref().unwrap_or_default()
            }),
            FileKind::BlockDevice | FileKind::CharDevice => self.seen(path, md).rdev == e.rdev,
            FileKind::Fifo | FileKind::Socket => true,
        }
    }

    /// `-X`: a candidate whose attributes differ is not linked or left as it is.
    fn alt_xattrs_differ(&self, i: usize, path: &Path) -> bool {
        self.recv_xattr_rules()
            .is_some_and(|r| super::attrs::xattr_diff(&r, &self.entries[i], path))
    }

    fn alt_unchanged_attrs(&self, i: usize, path: &Path, md: &Metadata) -> bool {
        let mut it = Itemize::default();
        self.compare_entry_attrs_at(&self.entries[i], path, md, &mut it);
        it.time.is_none() && !it.perms && !it.owner && !it.group
    }

    /// Whether an item line that only says "local change" (nothing significant) is shown:
    /// with `-ii`, or `-vv`.
    fn shows_quiet_items(&self) -> bool {
        self.opts.itemize > 1 || self.opts.verbose > 1
    }

    /// A regular file: `existing` is the destination's own regular file, if any.
    pub(super) fn alt_dest_file(&mut self, i: usize, dest: &Path, existing: bool) -> AltOutcome {
        let Some(kind) = self.opts.alt_dest else {
            return AltOutcome::None;
        };
        if self.basis_dirs.is_empty() || (existing && kind == AltDest::Copy) {
            return AltOutcome::None;
        }
        let Some(m) = self.find_alt(i) else {
            return AltOutcome::None;
        };
        let name = self.entries[i].name.clone();
        if m.level == 3 && kind != AltDest::Copy {
            if existing {
                let cur = std::fs::symlink_metadata(dest).ok();
                if kind == AltDest::Link
                    && cur.is_some_and(|c| c.dev() == m.md.dev() && c.ino() == m.md.ino())
                {
                    return AltOutcome::None;
                }
                if !self.opts.dry_run {
                    if let Err(e) = std::fs::remove_file(dest) {
                        if e.kind() != std::io::ErrorKind::NotFound {
                            return AltOutcome::None;
                        }
                    }
                }
            }
            if kind == AltDest::Link {
                let linked = self.opts.dry_run || std::fs::hard_link(&m.path, dest).is_ok();
                if linked {
                    if self.shows_quiet_items() && self.opts.itemize > 0 {
                        let mut it = Itemize::new(b'h', b'f');
                        self.compare_attrs(i, &m.md, &mut it, false);
                        self.show(i, &it, &name, b"");
                    }
                    self.alt_uptodate(&name);
                    self.member_up_to_date();
                    self.remove_source(i);
                    return AltOutcome::Done;
                }
                // Not linkable (another filesystem...): copy it instead.
            } else {
                if self.opts.itemize > 1 || (self.opts.itemize > 0 && self.opts.verbose > 1) {
                    let mut it = Itemize::new(b'.', b'f');
                    self.compare_attrs(i, &m.md, &mut it, false);
                    self.show(i, &it, &name, b"");
                }
                self.alt_uptodate(&name);
                // Nothing is written: later members of its hard-link group stand alone.
                self.remove_source(i);
                return AltOutcome::Done;
            }
        } else if existing {
            return AltOutcome::None;
        } else if m.level < 2 {
            return AltOutcome::Basis(Box::new(m));
        }
        // Copy the candidate into place (--copy-dest, or a match whose attributes differ).
        if !self.opts.dry_run && !self.copy_alt_file(i, dest, &m.path) {
            return AltOutcome::None;
        }
        let mut it = Itemize::new(b'c', b'f');
        self.compare_attrs(i, &m.md, &mut it, false);
        self.mark_untimed_change(FileKind::Regular, &mut it);
        let significant = it.time.is_some() || it.perms || it.owner || it.group;
        let show = if self.opts.itemize > 0 {
            significant || self.shows_quiet_items()
        } else {
            m.level == 2
        };
        if show {
            self.show(i, &it, &name, b"");
        }
        if m.level == 3 {
            self.alt_uptodate(&name);
        }
        self.member_up_to_date();
        self.remove_source(i);
        AltOutcome::Done
    }

    /// Copies a basis-directory file to `dest` with entry `i`'s attributes.
    fn copy_alt_file(&mut self, i: usize, dest: &Path, from: &Path) -> bool {
        let real = std::mem::replace(&mut self.paths[i], from.to_path_buf());
        let literal = self.stats.literal;
        let whole = self.alt_whole_file;
        self.alt_whole_file = true;
        let result = self.write_file(i, dest, None);
        self.alt_whole_file = whole;
        self.stats.literal = literal;
        self.paths[i] = real;
        for text in self.receive_failed.take().unwrap_or_default() {
            self.report.error(&text);
        }
        match result {
            Ok(()) => true,
            Err(code) => {
                self.note(code);
                false
            }
        }
    }

    /// A symlink, device or special file missing from the destination.
    pub(super) fn alt_dest_other(&mut self, i: usize, dest: &Path) -> AltOther {
        let Some(kind) = self.opts.alt_dest else {
            return AltOther::None;
        };
        if self.basis_dirs.is_empty() {
            return AltOther::None;
        }
        let Some(m) = self.find_alt(i) else {
            return AltOther::None;
        };
        if m.level < 3 {
            return AltOther::Basis(m.md);
        }
        let e = &self.entries[i];
        let (name, letter) = (e.name.clone(), item_letter(e.kind));
        let mut suffix = Vec::new();
        if let Some(t) = &e.link_target {
            suffix.extend_from_slice(b" -> ");
            suffix.extend_from_slice(t);
        }
        let mut linked = false;
        if kind == AltDest::Link {
            linked = self.opts.dry_run || std::fs::hard_link(&m.path, dest).is_ok();
        }
        if self.opts.itemize > 0 && self.shows_quiet_items() {
            let update = match kind {
                AltDest::Compare => b'.',
                _ if linked => b'h',
                _ => b'c',
            };
            let it = Itemize::new(update, letter);
            self.show(i, &it, &name, &suffix);
        }
        self.alt_uptodate(&name);
        if linked {
            // In place: later members of its hard-link group link to it.
            self.member_up_to_date();
        }
        if linked || kind == AltDest::Compare {
            self.remove_source(i);
            return AltOther::Done;
        }
        AltOther::Create
    }

    /// A directory missing from the destination: the item to report for it when a basis
    /// directory has one (`None`: it is reported as new).
    pub(super) fn alt_dest_dir(&mut self, i: usize) -> Option<Itemize> {
        self.opts.alt_dest?;
        if self.basis_dirs.is_empty() {
            return None;
        }
        let m = self.find_alt(i)?;
        let mut it = Itemize::new(b'c', b'd');
        self.compare_attrs(i, &m.md, &mut it, true);
        Some(it)
    }

    /// `-vv` without `%i`: an entry found unchanged in a basis directory (linked, copied or
    /// left to the basis) is named `NAME is uptodate`, as stock's generator reports it.
    pub(super) fn alt_uptodate(&mut self, name: &[u8]) {
        if !self.report.itemizes() {
            self.report.uptodate(name);
        }
    }

    /// Whether a directory item found in a basis directory is shown.
    pub(super) fn alt_item_shown(&self, it: &Itemize) -> bool {
        let significant = it.time.is_some() || it.perms || it.owner || it.group;
        significant || self.shows_quiet_items()
    }
}

/// What [`LocalTransfer::alt_dest_other`] decided.
pub(super) enum AltOther {
    /// No candidate: create as usual.
    None,
    /// Handled (hard-linked or left out).
    Done,
    /// Create it, without reporting it again.
    Create,
    /// Create it, itemized against this candidate's attributes.
    Basis(Metadata),
}

/// What a basis directory that could not be opened is looked in as: every name beneath
/// `/dev/null` fails (`ENOTDIR`), as lookups in a missing directory do.
const UNUSABLE_BASIS: &str = "/dev/null";

/// A path beneath a basis directory held open (`/proc/self/fd/N/...`), named as the
/// directory's own path for messages.
pub(super) fn unpinned(p: &Path) -> PathBuf {
    let Ok(rest) = p.strip_prefix("/proc/self/fd") else {
        return p.to_path_buf();
    };
    let mut comps = rest.components();
    let Some(fd) = comps.next() else {
        return p.to_path_buf();
    };
    match std::fs::read_link(Path::new("/proc/self/fd").join(fd)) {
        Ok(real) => real.join(comps.as_path()),
        Err(_) => p.to_path_buf(),
    }
}

fn item_letter(kind: FileKind) -> u8 {
    match kind {
        FileKind::Regular => b'f',
        FileKind::Directory => b'd',
        FileKind::Symlink => b'L',
        FileKind::BlockDevice | FileKind::CharDevice => b'D',
        FileKind::Fifo | FileKind::Socket => b'S',
    }
}

/// `base/rel` with `.` components and trailing slashes dropped (no `..` folding, no
/// symlink resolution: rsync prints the path it was given).
fn clean_join(base: &Path, rel: &Path) -> PathBuf {
    let joined = if rel.is_absolute() {
        rel.to_path_buf()
    } else {
        base.join(rel)
    };
    let mut out = Vec::new();
    for comp in joined.as_os_str().as_bytes().split(|&c| c == b'/') {
        if comp.is_empty() || comp == b"." {
            continue;
        }
        out.push(b'/');
        out.extend_from_slice(comp);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    PathBuf::from(OsStr::from_bytes(&out))
}

/// rsync's weighted Levenshtein distance between two names (16.16 fixed point), or more than
/// `limit` when the length difference alone exceeds it.
fn fuzzy_distance(s1: &[u8], s2: &[u8], limit: u32) -> u32 {
    const UNIT: u32 = 1 << 16;
    let (mut s1, len2) = (s1, s2.len());
    if (s1.len().abs_diff(len2) as u64) * UNIT as u64 > limit as u64 {
        return 0xFFFF * UNIT + 1;
    }
    if s1.is_empty() || s2.is_empty() {
        if s1.is_empty() {
            s1 = s2;
        }
        let cost: u32 = s1
            .iter()
            .map(|&c| c as i8 as i32 as u32)
            .fold(0, u32::wrapping_add);
        return (s1.len() as u32).wrapping_mul(UNIT).wrapping_add(cost);
    }
    let mut a: Vec<u32> = (0..len2).map(|i| (i as u32 + 1) * UNIT).collect();
    for (i1, &c1) in s1.iter().enumerate() {
        let mut diag = i1 as u32 * UNIT;
        let mut above = (i1 as u32 + 1) * UNIT;
        for (i2, &c2) in s2.iter().enumerate() {
            let left = a[i2];
            let d = c1 as i32 - c2 as i32;
            let cost = match d {
                0 => 0,
                d if d < 0 => (UNIT as i32 - d) as u32,
                d => UNIT + d as u32,
            };
            let diag_inc = diag.wrapping_add(cost);
            let left_inc = left + UNIT + c1 as u32;
            let above_inc = above + UNIT + c2 as u32;
            above = if left < above {
                left_inc.min(diag_inc)
            } else {
                above_inc.min(diag_inc)
            };
            a[i2] = above;
            diag = left;
        }
    }
    a[len2 - 1]
}

/// rsync's idea of a name's significant suffix (`.tar` of `x.tar.bak~`, none for dotfiles).
fn filename_suffix(name: &[u8]) -> &[u8] {
    let mut fn_ = name;
    while let [b'.', rest @ ..] = fn_ {
        fn_ = rest;
    }
    let mut len = fn_.len();
    let had_tilde = len > 1 && fn_[len - 1] == b'~';
    if had_tilde {
        len -= 1;
    }
    let mut suf: &[u8] = b"";
    while len > 1 {
        let Some(dot) = fn_[..len]
            .iter()
            .rposition(|&c| c == b'.')
            .filter(|&d| d > 0)
        else {
            break;
        };
        let s = &fn_[dot..len];
        len = dot;
        let tail = &s[1..];
        if (s.len() == 4 && (tail == b"bak" || tail == b"old"))
            || (s.len() == 5 && tail == b"orig")
            || (s.len() > 2 && had_tilde && s[1] == b'~' && s[2].is_ascii_digit())
        {
            continue;
        }
        suf = s;
        if s.len() == 1 || !tail.iter().all(u8::is_ascii_digit) {
            break;
        }
        // An all-digit suffix is not that significant: look further left.
    }
    suf
}

impl LocalTransfer<'_> {
    /// `--fuzzy`: a file in the destination directory (and, with `-yy`, the basis
    /// directories) that looks like a previous version of entry `i`.
    pub(super) fn find_fuzzy(&mut self, i: usize, dest: &Path) -> Option<PathBuf> {
        let name = self.entries[i].name.clone();
        let base = name.rsplit(|&c| c == b'/').next().unwrap_or(&name).to_vec();
        let (size, mtime) = (self.entries[i].size, self.entries[i].mtime);
        let dir = dest.parent().unwrap_or(Path::new(".")).to_path_buf();
        let rel_dir = &name[..name.len() - base.len()];
        let mut dirs = vec![dir];
        if self.opts.fuzzy > 1 {
            for b in self.basis_dirs.iter().filter(|b| !b.as_os_str().is_empty()) {
                dirs.push(b.join(OsStr::from_bytes(rel_dir)));
            }
        }
        let mut lists: Vec<Vec<(Vec<u8>, u64, i64)>> = Vec::new();
        for d in &dirs {
            let mut files = Vec::new();
            if let Ok(rd) = std::fs::read_dir(d) {
                for ent in rd.flatten() {
                    let Ok(md) = ent.metadata() else { continue };
                    if md.is_file() && md.size() > 0 {
                        files.push((ent.file_name().as_bytes().to_vec(), md.size(), md.mtime()));
                    }
                }
            }
            files.sort();
            lists.push(files);
        }
        let pick = |k: usize, n: &[u8]| dirs[k].join(OsStr::from_bytes(n));
        for (k, files) in lists.iter().enumerate() {
            if let Some((n, ..)) = files.iter().find(|f| f.1 == size && f.2 == mtime) {
                return Some(pick(k, n));
            }
        }
        let suffix = filename_suffix(&base).to_vec();
        let mut lowest = 25u32 << 16;
        let mut best = None;
        for (k, files) in lists.iter().enumerate() {
            for (n, ..) in files {
                let mut dist = fuzzy_distance(n, &base, lowest);
                if dist < 0xFFFF_0000 {
                    let s = filename_suffix(n);
                    dist =
                        dist.wrapping_add(fuzzy_distance(s, &suffix, 0xFFFF_0000).wrapping_mul(10));
                }
                if dist <= lowest {
                    lowest = dist;
                    best = Some(pick(k, n));
                }
            }
        }
        best
    }

    /// `--debug=FUZZY` level.
    pub(super) fn debug_fuzzy(&self) -> u32 {
        let mut level = 0;
        for w in self.opts.debug.iter().flat_map(|d| d.split(',')) {
            let w = w.to_ascii_uppercase();
            let (word, n) = match w.trim_end_matches(|c: char| c.is_ascii_digit()) {
                t if t.len() < w.len() => (t.to_string(), w[t.len()..].parse().unwrap_or(1)),
                t => (t.to_string(), 1),
            };
            if word == "FUZZY" || word == "ALL" {
                level = n;
            } else if word == "NONE" {
                level = 0;
            }
        }
        level
    }
}
