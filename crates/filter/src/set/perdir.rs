//! Per-directory merge state: entering and leaving directories, and the
//! transfer root's parent directories.

use super::load::clean_abs;
use super::{bits, bytes_to_path, Ctx, Entry, FileSource, FilterError, FilterSet, Frame, Mode};
use crate::rule::Side;

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
        let mut ctx = Ctx {
            source,
            depth: 0,
            dir: Some(dir.to_vec()),
        };
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
            if slot.active {
                let mut file = dir.to_vec();
                if !file.is_empty() {
                    file.push(b'/');
                }
                file.extend_from_slice(&slot.name);
                let path = bytes_to_path(&file);
                if let Err(e) = self.load_file(
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
        let root = clean_abs(abs_root);
        self.set_abs_root(&root);
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
                let mut ctx = Ctx {
                    source: &mut *source,
                    depth: 0,
                    dir: Some(dir.clone()),
                };
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
}
