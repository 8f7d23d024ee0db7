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
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Sorts one directory's contents into rsync's order.
pub(super) fn sort_siblings(items: &mut [Item]) {
    items.sort_by(|a, b| {
        compare_siblings(
            a.entry.basename(),
            a.entry.is_dir(),
            b.entry.basename(),
            b.entry.is_dir(),
        )
    });
}

/// Merges items with the same name, which come from several sources (`a/ b/ dest/`): the
/// first is kept, except that a directory wins over a non-directory (it may have contents);
/// the paths of further same-named directories are returned with the kept item so that their
/// contents are merged too. The order of the kept items is preserved.
pub(super) fn merge_duplicates(items: Vec<Item>) -> Vec<(Item, Vec<PathBuf>)> {
    let mut kept: Vec<(Item, Vec<PathBuf>)> = Vec::with_capacity(items.len());
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    for item in items {
        match index.get(&item.entry.name) {
            None => {
                index.insert(item.entry.name.clone(), kept.len());
                kept.push((item, Vec::new()));
            }
            Some(&k) => {
                let (first, alternates) = &mut kept[k];
                if !first.entry.is_dir() && item.entry.is_dir() {
                    *first = item;
                } else if first.entry.is_dir() && item.entry.is_dir() && item.path != first.path {
                    first.descend |= item.descend;
                    alternates.push(item.path);
                }
            }
        }
    }
    kept
}

/// `-m`: drops the directories with nothing but (pruned) directories below them, after the
/// sender's filter rules, as rsync prunes its file list.
pub(super) fn prune_empty_dirs(
    scanner: &mut Scanner<'_, Filters>,
    children: Vec<Item>,
) -> Vec<Item> {
    children
        .into_iter()
        .filter(|c| !c.entry.is_dir() || !c.descend || has_content(scanner, c))
        .collect()
}

/// Whether a directory holds a non-directory somewhere below it.
fn has_content(scanner: &mut Scanner<'_, Filters>, dir: &Item) -> bool {
    let Some(children) = scanner.enter(dir) else {
        // Unreadable: kept, so that the walk reports it.
        scanner.take_problems();
        return true;
    };
    // Problems are reported when the directory is walked for real.
    scanner.take_problems();
    let found = children.iter().any(|c| !c.entry.is_dir())
        || children
            .iter()
            .any(|c| c.descend && has_content(scanner, c));
    scanner.leave();
    found
}

/// Sorts the top level (names there may have several components with `-R`).
pub(super) fn sort_items(items: &mut [Item]) {
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
            if pass == Pass::DeleteOnly && !first {
                // (--delete-after, --delete-delay: after the sender's last phase.)
                self.report_matches();
            }
            self.receiver_rules = filters.clone();
            self.receiver_rules.trace = self.traces[1].clone();
            let mut rules = filters.clone();
            // The sender lists the tree once, whatever the passes here.
            rules.trace = if first { self.traces[0].clone() } else { None };
            let mut scanner = Scanner::new(scan_opts, &mut rules);
            let mut top = scanner.top(&sources);
            self.flush_traces();
            let problems = scanner.take_problems();
            self.top_names = top.iter().map(|t| t.entry.name.clone()).collect();
            if first {
                self.report_problems(&problems);
                self.report.list_built();
                sort_items(&mut top);
                if let Err(code) = self.resolve_dest(dest, &top) {
                    return Some(code);
                }
                self.check_basis_dirs();
                first = false;
            } else {
                sort_items(&mut top);
            }
            if pass != Pass::DeleteOnly && self.opts.debug_level("flist") >= 1 {
                // The generator's first word as it starts transferring (after a
                // --delete-before pass); a local copy goes whole unless told.
                let delta = self.opts.whole_file == Some(false) || self.opts.append;
                self.report.info(if delta {
                    "delta-transmission enabled"
                } else {
                    "delta-transmission disabled for local transfer or --whole-file"
                });
            }
            self.lists = Default::default();
            self.visited = 0;
            let list = self.lists.begin();
            self.walk_items(&mut scanner, top, pass, list);
            if self.fatal.is_some() {
                return None;
            }
            if pass != Pass::DeleteOnly {
                // The end of the transfers: stock's generator waits for its receiver, and
                // what it held back goes out (before a redo, or the deletions of
                // --delete-after).
                self.report.flush_items();
                self.redo_changed_sources();
                self.lists_finished();
                self.finish_delayed();
                self.finish_written_links();
            }
        }
        self.finish_delayed();
        self.fix_directories();
        self.flush_traces();
        if filters
            .incomplete
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            self.note(crate::report::exit::PARTIAL);
            self.io_error = true;
        }
        None
    }

    /// Prints the filter traces recorded so far (the sender's, then the generator's).
    pub(super) fn flush_traces(&mut self) {
        for trace in self.traces.iter().flatten() {
            for line in trace.take() {
                self.report.info(&line);
            }
        }
    }

    /// Sends again the files whose source changed while they were sent (stock's redo
    /// phase): once, as they are now.
    fn redo_changed_sources(&mut self) {
        let redo = std::mem::take(&mut self.redo_sources);
        if redo.is_empty() {
            return;
        }
        self.report.flush_items();
        self.redoing = true;
        for (entry, path, dev) in redo {
            self.alternates.push(Vec::new());
            self.ordinals.push(self.listed);
            self.lists.entry_list.push(0);
            self.entries.push(entry);
            self.paths.push(path);
            self.devs.push(dev);
            let i = self.entries.len() - 1;
            self.process(i);
            self.entries.truncate(i);
            self.paths.truncate(i);
            self.devs.truncate(i);
            self.ordinals.truncate(i);
            self.lists.entry_list.truncate(i);
            self.alternates.truncate(i);
        }
        self.redoing = false;
    }

    /// Generates a sorted list of sibling items (a directory's contents, or the top level),
    /// descending into directories whose contents are part of the transfer. The items are
    /// in stock's file list `list` (see [`super::lists`]).
    fn walk_items(
        &mut self,
        scanner: &mut Scanner<'_, Filters>,
        items: Vec<Item>,
        pass: Pass,
        list: usize,
    ) {
        let base = self.entries.len();
        let transferring = pass != Pass::DeleteOnly;
        let mut descend = Vec::with_capacity(items.len());
        for (item, alternates) in merge_duplicates(items) {
            self.alternates.push(alternates);
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
            self.lists.entry_list.push(list);
            if transferring {
                self.listed += 1;
            }
            let mut entry = item.entry;
            self.maps.apply(&mut entry.uid, &mut entry.gid);
            if let Some(acl) = entry.acl.as_mut() {
                self.acl_maps.apply_acl(acl);
            }
            self.entries.push(entry);
            self.paths.push(item.path);
            self.devs.push(item.dev);
        }
        if transferring {
            self.lists.extend(list, self.listed);
        }
        let whole_list = !self.opts.incremental_recursion();
        for (k, &into) in descend.iter().enumerate() {
            let i = base + k;
            if self.fatal.is_some() {
                break;
            }
            if whole_list && transferring {
                self.ordinals[i] = self.visited;
                self.visited += 1;
            }
            if self.entries[i].is_dir() {
                if into {
                    self.walk_dir(scanner, i, pass);
                } else if transferring {
                    self.do_dir(i, None);
                    if whole_list {
                        self.entry_handled(self.ordinals[i]);
                    }
                    self.lists_finished_before(list);
                }
            } else if transferring {
                self.process(i);
                if whole_list {
                    self.entry_handled(self.ordinals[i]);
                }
                self.lists_finished_before(list);
            }
        }
        self.entries.truncate(base);
        self.paths.truncate(base);
        self.devs.truncate(base);
        self.ordinals.truncate(base);
        self.lists.entry_list.truncate(base);
        self.alternates.truncate(base);
    }

    /// Items (and what is below them) that are listed but never generated: counted in the
    /// summary as stock's sender lists them, its messages about them said.
    fn count_unvisited(&mut self, scanner: &mut Scanner<'_, Filters>, items: Vec<Item>) {
        for item in items {
            let e = &item.entry;
            self.stats.files[kind_slot(e.kind)] += 1;
            if matches!(e.kind, FileKind::Regular | FileKind::Symlink) {
                self.stats.total_size += e.size;
            }
            self.stats.flist_size += e.name.len() as u64 + 12;
            if e.is_dir() && item.descend {
                let below = scanner.enter(&item);
                let problems = scanner.take_problems();
                self.report_problems(&problems);
                if let Some(below) = below {
                    self.count_unvisited(scanner, below);
                    scanner.leave();
                }
            }
        }
    }

    /// A directory whose contents are part of the transfer: the directory itself (and
    /// deletions inside it), then its contents.
    fn walk_dir(&mut self, scanner: &mut Scanner<'_, Filters>, i: usize, pass: Pass) {
        // Stock's generator sends what it decided for the first list, then waits for the
        // next one: the item lines held back so far are printed. The lists after it have
        // come in meanwhile and it goes through them without waiting, its item records held
        // in its buffer while its messages (`is uptodate`, deletions) go out ahead of them,
        // until it waits at the end of the transfers (see `walk`).
        let own_list = !(self.lists.entry_list[i] == 0 && self.entries[i].name == b".");
        if own_list && self.lists.count() == 1 && self.opts.incremental_recursion() {
            self.report.flush_items();
        }
        let item = Item {
            entry: self.entries[i].clone(),
            path: self.paths[i].clone(),
            descend: true,
            dev: self.devs[i],
        };
        let children = scanner.enter(&item);
        // Same-named directories of other sources: their contents are merged in (entered in
        // turn, so that per-directory rules of each apply below it).
        let mut entered = 1;
        let children = children.map(|mut children| {
            for path in self.alternates[i].clone() {
                let other = Item {
                    entry: item.entry.clone(),
                    path,
                    descend: true,
                    dev: item.dev,
                };
                if let Some(more) = scanner.enter(&other) {
                    children.extend(more);
                    entered += 1;
                }
            }
            children
        });
        self.flush_traces();
        let problems = scanner.take_problems();
        self.report_problems(&problems);
        let Some(mut children) = children else {
            if pass != Pass::DeleteOnly {
                self.do_dir(i, None);
            }
            return;
        };
        sort_siblings(&mut children);
        if self.opts.prune_empty_dirs {
            children = prune_empty_dirs(scanner, children);
        }
        // The receiver's side of per-directory rules comes from the destination's copies.
        let dest_dir = self.dest_path(&item.entry.name);
        self.receiver_rules.enter_at(&item.entry.name, &dest_dir);
        match pass {
            Pass::DeleteOnly => {
                // (Only stock's deletion passes, before and after the transfer, name the
                // top directories: --delete-delay's deletions are found during it.)
                if item.entry.top_dir
                    && self.opts.debug_level("del") >= 1
                    && self.opts.delete != DeleteMode::Delay
                {
                    // (Stock's deletion pass names each top directory, there or not.)
                    let name = crate::report::lossless_text(&item.entry.name).into_owned();
                    self.report.info(&format!("deleting in {name}"));
                }
                if std::fs::symlink_metadata(self.dest_path(&item.entry.name))
                    .is_ok_and(|m| m.is_dir())
                {
                    self.delete_extraneous(i, &children);
                }
            }
            Pass::Transfer | Pass::TransferAndDelete => {
                self.do_dir(i, Some(&children));
                if !self.opts.incremental_recursion() {
                    self.entry_handled(self.ordinals[i]);
                }
                self.lists_finished_before(self.lists.entry_list[i]);
            }
        }
        self.flush_traces();
        if std::mem::take(&mut self.mkdir_failed) {
            // Nothing below a directory that could not be made (stock's skip_dir), but
            // stock's sender lists it all the same: it counts.
            let skipped = std::mem::take(&mut children);
            self.count_unvisited(scanner, skipped);
        }
        // The contents of a `dir/` source's `.` are in the first list; every other
        // directory's contents are a list of their own.
        let list = if self.lists.entry_list[i] == 0 && item.entry.name == b"." {
            0
        } else {
            self.lists.begin()
        };
        self.walk_items(scanner, children, pass, list);
        self.receiver_rules.leave_dir();
        for _ in 0..entered {
            scanner.leave();
        }
    }
}
