//! `--delete`: removing what the destination has and the source does not.

use super::{full_path, os_error, LocalTransfer};
use crate::report::{exit, kind_slot};
use rtsync_tree::Item;
use rtsync_tree::{compare_names, FileKind};
use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn join(dir: &[u8], base: &[u8]) -> Vec<u8> {
    if dir == b"." || dir.is_empty() {
        base.to_vec()
    } else {
        let mut n = dir.to_vec();
        n.push(b'/');
        n.extend_from_slice(base);
        n
    }
}

/// The names in a directory in rsync's order, with whether each is a directory.
fn sorted_listing(path: &Path) -> Vec<(Vec<u8>, bool)> {
    let Ok(reader) = std::fs::read_dir(path) else {
        return Vec::new();
    };
    let mut names: Vec<(Vec<u8>, bool)> = reader
        .filter_map(Result::ok)
        .map(|d| {
            let is_dir = d.file_type().map(|t| t.is_dir()).unwrap_or(false);
            (d.file_name().as_bytes().to_vec(), is_dir)
        })
        .collect();
    names.sort_by(|a, b| compare_names(&a.0, a.1, &b.0, b.1));
    names
}

impl LocalTransfer<'_> {
    /// Deletes what directory entry `i`'s destination holds beyond `children` (its contents
    /// in the source), sparing what the filter rules protect.
    pub(super) fn delete_extraneous(&mut self, i: usize, children: &[Item]) {
        if self.io_error && !self.opts.ignore_errors {
            // The sender could not list everything: what looks extraneous may not be.
            if !self.io_warned {
                self.io_warned = true;
                self.report
                    .info("IO error encountered -- skipping file deletion");
            }
            return;
        }
        let dir_name = self.entries[i].name.clone();
        let dest = self.dest_path(&dir_name);
        let keep: HashSet<&[u8]> = children.iter().map(|c| c.entry.basename()).collect();
        let mut doomed = Vec::new();
        let tracing = self.receiver_rules.trace.is_some();
        for (base, is_dir) in sorted_listing(&dest) {
            if keep.contains(base.as_slice()) {
                if tracing {
                    // Stock's generator checks every name it finds, so traces them all.
                    self.receiver_rules
                        .protects(&join(&dir_name, &base), is_dir);
                }
                continue;
            }
            let rel = join(&dir_name, &base);
            // With -R another source argument may list a file inside this directory.
            if self.top_names.contains(&rel) || self.receiver_rules.protects(&rel, is_dir) {
                continue;
            }
            doomed.push(rel);
        }
        self.flush_traces();
        for rel in doomed.into_iter().rev() {
            let path = self.dest_path(&rel);
            self.delete_item(&rel, &path);
        }
    }

    /// `--delete-missing-args`: entry `i` names a source that does not exist; what the
    /// destination has under its name goes, unless the receiver's rules protect it. A
    /// directory's contents go only with `--delete` or `--force`.
    pub(super) fn delete_missing(&mut self, i: usize) {
        let name = self.entries[i].name.clone();
        // Its parent missing from the list (`-R` with the parent not there either): stock's
        // generator complains and deletes it anyway (with incremental recursion the sender
        // does not list such an entry).
        if let Some(slash) = name.iter().rposition(|&c| c == b'/') {
            let parent = &name[..slash];
            // (Once for a run of entries in that directory.)
            let same_as_previous = i.checked_sub(1).is_some_and(|p| {
                let prev = &self.entries[p].name;
                prev.iter().rposition(|&c| c == b'/').map(|k| &prev[..k]) == Some(parent)
            });
            if !self.opts.incremental_recursion()
                && !self.top_names.contains(parent)
                && !same_as_previous
            {
                self.report.error(&format!(
                    "WARNING: parent dir is absent in the file list: {}",
                    crate::report::lossless_text(parent)
                ));
            }
        }
        if self.receiver_rules.protects(&name, false) {
            return;
        }
        let path = self.dest_path(&name);
        let Ok(md) = std::fs::symlink_metadata(&path) else {
            return;
        };
        // A single file's new name is what the receiver works on.
        let shown = if self.single_file_dest {
            path.file_name()
                .map_or(name.clone(), |n| n.as_bytes().to_vec())
        } else {
            name
        };
        let recurse = self.opts.deleting() || self.opts.force;
        let has_contents = || std::fs::read_dir(&path).is_ok_and(|mut d| d.next().is_some());
        if md.is_dir() && !recurse && has_contents() {
            self.report.info(&format!(
                "cannot delete non-empty directory: {}",
                crate::report::lossless_text(&shown)
            ));
            return;
        }
        self.delete_item(&shown, &path);
    }

    /// Deletes what directory `path` (the item `rel`) holds, each item logged, last first.
    pub(super) fn delete_contents(&mut self, rel: &[u8], path: &Path) {
        for (base, _) in sorted_listing(path).into_iter().rev() {
            let child = join(rel, &base);
            self.delete_item(&child, &path.join(OsStr::from_bytes(&base)));
        }
    }

    fn delete_item(&mut self, rel: &[u8], path: &Path) {
        let Ok(md) = std::fs::symlink_metadata(path) else {
            return;
        };
        if let Some(max) = self.opts.max_delete {
            if self.deletions as i64 >= max {
                self.skipped_deletions += 1;
                return;
            }
        }
        let kind = FileKind::from_mode(md.mode()).unwrap_or(FileKind::Regular);
        if kind == FileKind::Directory {
            self.delete_contents(rel, path);
        }
        if let Some(max) = self.opts.max_delete {
            if self.deletions as i64 >= max {
                self.skipped_deletions += 1;
                return;
            }
        }
        let mut backup_failed = false;
        let result = if self.opts.dry_run {
            Ok(())
        } else if kind == FileKind::Directory {
            std::fs::remove_dir(path)
        } else if self.opts.backup && (self.opts.backup_dir.is_some() || !self.is_backup_file(path))
        {
            backup_failed = true;
            self.back_up_before_removal(path)
        } else {
            std::fs::remove_file(path)
        };
        match result {
            Ok(()) => {
                self.deletions += 1;
                self.stats.deleted[kind_slot(kind)] += 1;
                let mut shown = rel.to_vec();
                if kind == FileKind::Directory {
                    shown.push(b'/');
                }
                self.report.deleting(&shown);
            }
            Err(e) if kind == FileKind::Directory && e.raw_os_error() == Some(libc::ENOTEMPTY) => {
                // Something inside was kept (a backup, a protected file): not an error.
                self.report.info(&format!(
                    "cannot delete non-empty directory: {}",
                    crate::report::lossless_text(rel)
                ));
            }
            // (Stock takes a name that is gone, or a backup directory that could not be
            // made, as nothing to do: no line, no error.)
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                let what = if kind == FileKind::Directory {
                    "rmdir"
                } else if backup_failed {
                    "make_backup"
                } else {
                    "unlink"
                };
                self.report.error(&format!(
                    "rsync: [generator] delete_file: {what}({}) failed: {}",
                    crate::report::lossless_text(rel),
                    os_error(&e)
                ));
                let _ = full_path(path);
                self.note(exit::PARTIAL);
            }
        }
    }
}
