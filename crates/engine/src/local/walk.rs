//! The generator's walk: one directory at a time, in rsync's file-list order.
//!
//! Within a directory the non-directories come first, then each subdirectory followed by its
//! contents — the order of rsync's incremental recursion. Only the directories on the current
//! path are held in memory, so a tree of millions of files costs what its largest directories
//! cost.

use super::{LocalTransfer, Pass};
use crate::filters::Filters;
use crate::options::DeleteMode;
use crate::report::kind_slot;
use rtsync_tree::{
    compare_names, compare_siblings, FileKind, Item, ScanFilter, ScanOptions, Scanner,
};
use std::path::Path;

/// Sorts one directory's contents into rsync's order.
fn sort_siblings(items: &mut [Item]) {
    items.sort_by(|a, b| {
        compare_siblings(
            a.entry.basename(),
            a.entry.is_dir(),
            b.entry.basename(),
            b.entry.is_dir(),
        )
    });
}

/// Sorts the top level (names there may have several components with `-R`).
fn sort_items(items: &mut [Item]) {
    items.sort_by(|a, b| {
        compare_names(
            &a.entry.name,
            a.entry.is_dir(),
            &b.entry.name,
            b.entry.is_dir(),
        )
    });
}

impl LocalTransfer<'_> {
    /// Runs every pass the options call for; `Some(code)` when the run stops early.
    pub(super) fn walk(
        &mut self,
        scan_opts: &ScanOptions,
        filters: &mut Filters,
        dest: &Path,
    ) -> Option<i32> {
        let sources = self.sources.clone();
        let passes: &[Pass] = match self.opts.delete {
            DeleteMode::Off => &[Pass::Transfer],
            DeleteMode::During => &[Pass::TransferAndDelete],
            DeleteMode::Before => &[Pass::DeleteOnly, Pass::Transfer],
            DeleteMode::After | DeleteMode::Delay => &[Pass::Transfer, Pass::DeleteOnly],
        };
        let mut first = true;
        for &pass in passes {
            self.receiver_rules = filters.clone();
            let mut rules = filters.clone();
            let mut scanner = Scanner::new(scan_opts, &mut rules);
            let mut top = scanner.top(&sources);
            let problems = scanner.take_problems();
            if first {
                self.report_problems(&problems, &sources);
                sort_items(&mut top);
                if let Err(code) = self.resolve_dest(dest, &top) {
                    return Some(code);
                }
                first = false;
            } else {
                sort_items(&mut top);
            }
            self.walk_items(&mut scanner, top, pass);
            if pass != Pass::DeleteOnly {
                self.finish_written_links();
            }
        }
        self.fix_directories();
        None
    }

    /// Generates a sorted list of sibling items (a directory's contents, or the top level),
    /// descending into directories whose contents are part of the transfer.
    fn walk_items(&mut self, scanner: &mut Scanner<'_, Filters>, items: Vec<Item>, pass: Pass) {
        let base = self.entries.len();
        let transferring = pass != Pass::DeleteOnly;
        let mut descend = Vec::with_capacity(items.len());
        for item in items {
            if transferring {
                let e = &item.entry;
                self.stats.files[kind_slot(e.kind)] += 1;
                if matches!(e.kind, FileKind::Regular | FileKind::Symlink) {
                    self.stats.total_size += e.size;
                }
                self.stats.flist_size += e.name.len() as u64 + 12;
            }
            descend.push(item.descend);
            self.ordinals.push(self.listed);
            if transferring {
                self.listed += 1;
            }
            self.entries.push(item.entry);
            self.paths.push(item.path);
            self.devs.push(item.dev);
        }
        for (k, &into) in descend.iter().enumerate() {
            let i = base + k;
            if self.entries[i].is_dir() {
                if into {
                    self.walk_dir(scanner, i, pass);
                } else if transferring {
                    self.do_dir(i, None);
                }
            } else if transferring {
                self.process(i);
            }
        }
        self.entries.truncate(base);
        self.paths.truncate(base);
        self.devs.truncate(base);
        self.ordinals.truncate(base);
    }

    /// A directory whose contents are part of the transfer: the directory itself (and
    /// deletions inside it), then its contents.
    fn walk_dir(&mut self, scanner: &mut Scanner<'_, Filters>, i: usize, pass: Pass) {
        let item = Item {
            entry: self.entries[i].clone(),
            path: self.paths[i].clone(),
            descend: true,
            dev: self.devs[i],
        };
        let children = scanner.enter(&item);
        let problems = scanner.take_problems();
        let sources = self.sources.clone();
        self.report_problems(&problems, &sources);
        let Some(mut children) = children else {
            if pass != Pass::DeleteOnly {
                self.do_dir(i, None);
            }
            return;
        };
        sort_siblings(&mut children);
        // The receiver's side of per-directory rules comes from the destination's copies.
        let dest_dir = self.dest_path(&item.entry.name);
        self.receiver_rules.enter_at(&item.entry.name, &dest_dir);
        match pass {
            Pass::DeleteOnly => {
                if std::fs::symlink_metadata(self.dest_path(&item.entry.name))
                    .is_ok_and(|m| m.is_dir())
                {
                    self.delete_extraneous(i, &children);
                }
            }
            Pass::Transfer | Pass::TransferAndDelete => {
                self.do_dir(i, Some(&children));
            }
        }
        self.walk_items(scanner, children, pass);
        self.receiver_rules.leave_dir();
        scanner.leave();
    }
}
