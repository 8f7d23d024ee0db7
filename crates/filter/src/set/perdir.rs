//! Per-directory merge state: entering and leaving directories, and the
//! transfer root's parent directories.

use super::load::clean_abs;
use super::{bits, bytes_to_path, Ctx, Entry, FileSource, FilterError, FilterSet, Frame, Mode};
use crate::rule::Side;

/// Stock's MAXPATHLEN check on a per-directory file's full path (as `source` names it):
/// `Some(how messages show it)` when too long, the path itself withheld when a rule read
/// from a file named it.
fn overlong(source: &dyn FileSource, rel: &[u8], from_file: bool) -> Option<String> {
    let full = source.display(&bytes_to_path(rel))?;
    (full.len() >= crate::MAX_PATTERN_LEN).then(|| {
        if from_file {
            "<rule from a file read earlier>".to_string()
        } else {
            full
        }
    })
}

impl FilterSet {
    /// Enters directory `dir` (relative to the transfer root, `""` for the
    /// root itself): reads its dir-merge files through `source` and makes
    /// their rules active for checks of this directory's entries.
    ///
    /// Pair each successful call with [`FilterSet::leave_dir`]. On error
    /// (a bad rule in a merge file: stock rsync stops the transfer) the
    /// directory is not entered and the state is as before the call.
    pub fn enter_dir(
        &mut self,
        dir: &[u8],
        source: &mut dyn FileSource,
    ) -> Result<(), FilterError> {
        self.level += 1;
        let level = self.level;
        let dir = dir.strip_suffix(b"/").unwrap_or(dir);
        let mut ctx = Ctx::new(source, Some(dir.to_vec()));
        let mode = Mode {
            anchored_to_dir: true,
            ..Mode::default()
        };
        let mut first_error = None;
        // Slots added while reading (nested dir-merge rules) are read for
        // this same directory too: the loop re-checks the length.
        let mut i = 0;
        while i < self.slots.len() {
            let slot = &self.slots[i];
            let flags = slot.flags;
            let mut stop = flags & bits::NO_INHERIT != 0;
            let mut entries = Vec::new();
            if slot.active && slot.level == level && flags & bits::NO_INHERIT == 0 {
                // A dir-merge rule met in this directory's files whose
                // name has a path: its parents from there down come first.
                let named = self.slots[i].named.clone();
                let joined = if dir.is_empty() || named.first() == Some(&b'/') {
                    named.to_vec()
                } else {
                    [dir, b"/", &named[..]].concat()
                };
                let parents = if named.contains(&b'/') {
                    match overlong(&*ctx.source, &joined, self.slots[i].from_file) {
                        Some(shown) => {
                            self.warnings.0.push(FilterError::NameOverflow { shown });
                            Vec::new()
                        }
                        None => self.nested_parent_dirs(&named, dir),
                    }
                } else {
                    Vec::new()
                };
                let name = self.slots[i].name.clone();
                for parent in parents {
                    let mut parent_entries = Vec::new();
                    // Above the transfer root the directories are absolute (`/` itself
                    // included), and so are the anchors of their rules.
                    let outside = parent.first() == Some(&b'/');
                    let file = if parent.is_empty() {
                        name.to_vec()
                    } else if parent == b"/" {
                        [b"/", &name[..]].concat()
                    } else {
                        [&parent[..], b"/", &name[..]].concat()
                    };
                    let ctx_dir = if parent == b"/" { Vec::new() } else { parent };
                    let mut parent_ctx = Ctx::new(&mut *ctx.source, Some(ctx_dir));
                    parent_ctx.deferred = self.slots[i].from_file;
                    let parent_mode = Mode {
                        dir_absolute: outside,
                        ..mode
                    };
                    if let Err(e) = self.load_file(
                        &mut parent_entries,
                        &mut false,
                        &bytes_to_path(&file),
                        flags,
                        parent_mode,
                        "dir-merge",
                        &mut parent_ctx,
                    ) {
                        first_error.get_or_insert(e);
                    }
                    self.slots[i].frames.push(Frame {
                        level,
                        entries: parent_entries,
                        stop: false,
                    });
                }
            }
            let slot = &self.slots[i];
            if slot.active {
                let mut file = dir.to_vec();
                if !file.is_empty() {
                    file.push(b'/');
                }
                file.extend_from_slice(&slot.name);
                let path = bytes_to_path(&file);
                ctx.deferred = self.slots[i].from_file;
                if let Some(shown) = overlong(&*ctx.source, &file, ctx.deferred) {
                    self.warnings.0.push(FilterError::LongNamedDir { shown });
                } else if let Err(e) = self.load_file(
                    &mut entries,
                    &mut stop,
                    &path,
                    flags,
                    mode,
                    "dir-merge",
                    &mut ctx,
                ) {
                    first_error.get_or_insert(e);
                }
            }
            self.slots[i].frames.push(Frame {
                level,
                entries,
                stop,
            });
            i += 1;
        }
        match first_error {
            Some(e) => {
                // Leave no half-entered directory behind.
                self.leave_dir();
                Err(e)
            }
            None => Ok(()),
        }
    }

    /// Reads dir-merge files in the transfer root's parent directories, as
    /// rsync does for a dir-merge name with a path that names a parent of
    /// the transfer root (`-F`'s `/.rsync-filter` names `/`, so every
    /// directory from `/` down to the root's parent is searched).
    ///
    /// Call once, before the first [`FilterSet::enter_dir`], with the
    /// absolute path of the transfer root; `source` is given absolute
    /// paths. Also sets the absolute root (see [`FilterSet::set_abs_root`]),
    /// which the anchored rules of those files need.
    pub fn load_parent_dirs(
        &mut self,
        abs_root: &[u8],
        source: &mut dyn FileSource,
    ) -> Result<(), FilterError> {
        self.load_parent_dirs_of(abs_root, abs_root, source)
    }

    /// [`FilterSet::load_parent_dirs`] when the first directory entered is not the transfer
    /// root itself (`rsync src dest`: the root is `src`'s parent, and the scan, as stock's,
    /// covers the parents of `src`, the root included). `abs_dir` is that directory's
    /// absolute path.
    pub fn load_parent_dirs_of(
        &mut self,
        abs_root: &[u8],
        abs_dir: &[u8],
        source: &mut dyn FileSource,
    ) -> Result<(), FilterError> {
        self.set_abs_root(&clean_abs(abs_root));
        let root = clean_abs(abs_dir);
        let mode = Mode {
            anchored_to_dir: true,
            dir_absolute: true,
            ..Mode::default()
        };
        let mut i = 0;
        while i < self.slots.len() {
            let slot = &self.slots[i];
            let named = self.slot_rule_pattern(i);
            i += 1;
            let Some(named) = named.filter(|n| n.contains(&b'/')) else {
                continue;
            };
            if !slot.active || slot.level != 0 || slot.flags & bits::NO_INHERIT != 0 {
                continue;
            }
            let (flags, name) = (slot.flags, slot.name.clone());
            let full = if named.first() == Some(&b'/') {
                clean_abs(&named)
            } else {
                clean_abs(&[&root[..], b"/", &named].concat())
            };
            let start = full[..full.iter().rposition(|&c| c == b'/').unwrap_or(0)].to_vec();
            // Only a proper ancestor of the root is scanned.
            if !(root.starts_with(&start) && root.get(start.len()) == Some(&b'/')) {
                continue;
            }
            let mut dir = start;
            while dir.len() < root.len() {
                let path = bytes_to_path(&[&dir[..], b"/", &name[..]].concat());
                let mut entries = Vec::new();
                let mut ctx = Ctx::new(&mut *source, Some(dir.clone()));
                ctx.deferred = self.slots[i - 1].from_file;
                self.load_file(
                    &mut entries,
                    &mut false,
                    &path,
                    flags,
                    mode,
                    "dir-merge",
                    &mut ctx,
                )?;
                self.slots[i - 1].frames.push(Frame {
                    level: 0,
                    entries,
                    stop: false,
                });
                let next = root[dir.len() + 1..].iter().position(|&c| c == b'/');
                dir = match next {
                    Some(n) => root[..dir.len() + 1 + n].to_vec(),
                    None => root.clone(),
                };
            }
        }
        Ok(())
    }

    /// The pattern of the top-level dir-merge rule owning slot `index`.
    fn slot_rule_pattern(&self, index: usize) -> Option<Vec<u8>> {
        self.entries.iter().find_map(|e| match e {
            Entry::DirMerge(rule, slot) if *slot == index => Some(rule.pattern().to_vec()),
            _ => None,
        })
    }

    /// Leaves the directory entered last, dropping its dir-merge rules.
    pub fn leave_dir(&mut self) {
        let level = self.level;
        if level == 0 {
            return;
        }
        while self.slots.last().is_some_and(|s| s.level == level) {
            self.slots.pop();
        }
        for slot in &mut self.slots {
            if slot.frames.last().is_some_and(|f| f.level == level) {
                slot.frames.pop();
            }
        }
        self.level -= 1;
    }

    /// The file names of the active per-directory merge rules (for a
    /// watcher: a change to such a file changes the rules).
    pub fn dir_merge_names(&self) -> impl Iterator<Item = &[u8]> {
        self.slots.iter().filter(|s| s.active).map(|s| &*s.name)
    }

    /// How many directories are entered.
    pub fn depth(&self) -> usize {
        self.level
    }

    /// Would `path` be part of the transfer for `side`, as a full walk
    /// decides it: no ancestor directory excluded (an excluded directory is
    /// not descended into) and `path` itself not excluded, with the
    /// dir-merge files of the root and of every ancestor read through
    /// `source`. For checking single changed paths (a watcher) without a
    /// walk; call it with no directory entered. Rereads the merge files on
    /// each call.
    pub fn is_transferred(
        &mut self,
        path: &[u8],
        is_dir: bool,
        side: Side,
        source: &mut dyn FileSource,
    ) -> Result<bool, FilterError> {
        let path = path.strip_prefix(b"/").unwrap_or(path);
        let path = path.strip_suffix(b"/").unwrap_or(path);
        let start = self.level;
        let result = self.walk_to(path, is_dir, side, source);
        while self.level > start {
            self.leave_dir();
        }
        result
    }

    fn walk_to(
        &mut self,
        path: &[u8],
        is_dir: bool,
        side: Side,
        source: &mut dyn FileSource,
    ) -> Result<bool, FilterError> {
        self.enter_dir(b"", source)?;
        if path.is_empty() {
            return Ok(true);
        }
        for (i, _) in path.iter().enumerate().filter(|(_, &c)| c == b'/') {
            let ancestor = &path[..i];
            if self.check(ancestor, true, side).is_excluded() {
                return Ok(false);
            }
            self.enter_dir(ancestor, source)?;
        }
        Ok(!self.check(path, is_dir, side).is_excluded())
    }

    /// The directories (relative to the root, outermost first) between the
    /// directory a nested dir-merge name points into and `dir`, exclusive
    /// of `dir`: empty unless that directory is a proper ancestor of `dir`
    /// inside the transfer.
    fn nested_parent_dirs(&self, named: &[u8], dir: &[u8]) -> Vec<Vec<u8>> {
        if !named.contains(&b'/') {
            return Vec::new();
        }
        if !self.abs_root.is_empty() {
            return self.nested_parent_dirs_abs(named, dir);
        }
        let full = if named.first() == Some(&b'/') {
            if self.abs_root.is_empty() {
                return Vec::new();
            }
            let cleaned = clean_abs(named);
            let root = [b"/", &self.abs_root[..], b"/"].concat();
            match cleaned.strip_prefix(&root[..]) {
                Some(rel) => rel.to_vec(),
                None => return Vec::new(),
            }
        } else {
            let joined = if dir.is_empty() {
                named.to_vec()
            } else {
                [dir, b"/", named].concat()
            };
            match clean_rel(&joined) {
                Some(rel) => rel,
                None => return Vec::new(),
            }
        };
        let start = match full.iter().rposition(|&c| c == b'/') {
            Some(i) => full[..i].to_vec(),
            None => Vec::new(),
        };
        let proper_ancestor = if start.is_empty() {
            !dir.is_empty()
        } else {
            dir.len() > start.len() && dir.starts_with(&start) && dir[start.len()] == b'/'
        };
        if !proper_ancestor {
            return Vec::new();
        }
        let mut out = vec![start.clone()];
        let mut at = start.len();
        loop {
            let from = if at == 0 { 0 } else { at + 1 };
            match dir[from..].iter().position(|&c| c == b'/') {
                Some(n) => {
                    at = from + n;
                    out.push(dir[..at].to_vec());
                }
                None => break,
            }
        }
        out
    }
}

impl FilterSet {
    /// [`FilterSet::nested_parent_dirs`] with the root's absolute path known: a named
    /// directory above the root (`: ../x` in the root's own file) starts the scan there, as
    /// stock's does; those directories are given absolute (`/` for the filesystem's root).
    fn nested_parent_dirs_abs(&self, named: &[u8], dir: &[u8]) -> Vec<Vec<u8>> {
        let root = [b"/", &self.abs_root[..]].concat();
        let full = if named.first() == Some(&b'/') {
            clean_abs(named)
        } else {
            clean_abs(&[&root[..], b"/", dir, b"/", named].concat())
        };
        let start = full[..full.iter().rposition(|&c| c == b'/').unwrap_or(0)].to_vec();
        let mut out = Vec::new();
        let start_rel = if start == root {
            Vec::new()
        } else if let Some(rel) = start
            .strip_prefix(&root[..])
            .and_then(|r| r.strip_prefix(b"/"))
        {
            rel.to_vec()
        } else if start.is_empty() || root.starts_with(&[&start[..], b"/"].concat()) {
            // Above the root: every directory from there down to the root's parent, then
            // the root and its directories above `dir`.
            let mut at = start;
            loop {
                out.push(if at.is_empty() {
                    b"/".to_vec()
                } else {
                    at.clone()
                });
                match root[at.len() + 1..].iter().position(|&c| c == b'/') {
                    Some(n) => at = root[..at.len() + 1 + n].to_vec(),
                    None => break,
                }
            }
            if dir.is_empty() {
                return out;
            }
            Vec::new()
        } else {
            return out;
        };
        let proper_ancestor = if start_rel.is_empty() {
            !dir.is_empty()
        } else {
            dir.len() > start_rel.len()
                && dir.starts_with(&start_rel)
                && dir[start_rel.len()] == b'/'
        };
        if !proper_ancestor {
            return out;
        }
        out.push(start_rel.clone());
        let mut at = start_rel.len();
        loop {
            let from = if at == 0 { 0 } else { at + 1 };
            match dir[from..].iter().position(|&c| c == b'/') {
                Some(n) => {
                    at = from + n;
                    out.push(dir[..at].to_vec());
                }
                None => break,
            }
        }
        out
    }
}

/// Collapses `.` and `..` in a relative path; `None` if it leaves the root.
fn clean_rel(path: &[u8]) -> Option<Vec<u8>> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in path.split(|&c| c == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop()?;
            }
            _ => parts.push(part),
        }
    }
    Some(parts.join(&b'/'))
}
