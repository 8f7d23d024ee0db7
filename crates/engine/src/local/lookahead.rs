//! `--progress` counts like rsync's sender: `to-chk=LEFT/LISTED`, where LISTED is every entry
//! of the file lists sent so far. With incremental recursion stock's sender keeps its lists
//! about a thousand entries ahead of the file being sent, so on a small tree every entry is
//! listed before the first file goes. The local engine lists one directory at a time; this
//! second, counting-only walk runs ahead of it in the same order (the top level, then each
//! directory's contents depth first) with the same rules, and keeps only the directories
//! still to be listed.

use super::walk::{merge_duplicates, prune_empty_dirs, sort_items, sort_siblings};
use crate::filters::Filters;
use rtsync_tree::{FileKind, Item, ScanOptions, Scanner};
use std::path::PathBuf;

/// How far ahead of the file being sent stock's sender keeps its lists.
const LOOKAHEAD: u64 = 1000;

pub(super) struct Lookahead {
    opts: ScanOptions,
    filters: Filters,
    /// Per depth: the directories of that level still to be listed, and whether the level's
    /// own directory was entered (and must be left).
    stack: Vec<(std::vec::IntoIter<Item>, bool)>,
    /// Entries listed.
    pub listed: u64,
    /// Bytes of the regular files and symlinks listed (stock's `stats.total_size`).
    pub total_size: u64,
    /// Every list is out.
    pub done: bool,
    /// No incremental recursion: the whole list is built first.
    whole: bool,
    started: bool,
    sources: Vec<PathBuf>,
}

impl Lookahead {
    pub fn new(opts: &ScanOptions, filters: &Filters, sources: &[PathBuf], whole: bool) -> Self {
        Lookahead {
            opts: opts.clone(),
            filters: filters.clone(),
            stack: Vec::new(),
            listed: 0,
            total_size: 0,
            done: false,
            whole,
            started: false,
            sources: sources.to_vec(),
        }
    }

    /// Lists ahead until `index` is the given distance behind the last entry listed (or
    /// everything, without incremental recursion).
    pub fn advance(&mut self, index: u64, prune: bool) {
        let opts = self.opts.clone();
        let mut scanner = Scanner::new(&opts, &mut self.filters);
        if !self.started {
            self.started = true;
            let mut top = scanner.top(&self.sources);
            sort_items(&mut top);
            let top: Vec<Item> = merge_duplicates(top).into_iter().map(|(i, _)| i).collect();
            count(&mut self.listed, &mut self.total_size, &top);
            let dirs: Vec<Item> = top
                .into_iter()
                .filter(|i| i.entry.is_dir() && i.descend)
                .collect();
            self.stack.push((dirs.into_iter(), false));
        }
        while self.whole || self.listed < index + LOOKAHEAD {
            let Some((pending, _)) = self.stack.last_mut() else {
                self.done = true;
                break;
            };
            match pending.next() {
                Some(dir) => {
                    let Some(mut children) = scanner.enter(&dir) else {
                        continue;
                    };
                    sort_siblings(&mut children);
                    if prune {
                        children = prune_empty_dirs(&mut scanner, children);
                    }
                    let children: Vec<Item> = merge_duplicates(children)
                        .into_iter()
                        .map(|(i, _)| i)
                        .collect();
                    count(&mut self.listed, &mut self.total_size, &children);
                    let dirs: Vec<Item> = children
                        .into_iter()
                        .filter(|i| i.entry.is_dir() && i.descend)
                        .collect();
                    self.stack.push((dirs.into_iter(), true));
                }
                None => {
                    if let Some((_, true)) = self.stack.pop() {
                        scanner.leave();
                    }
                }
            }
        }
        scanner.take_problems();
    }
}

/// Adds `items` to the entries listed and the bytes of their regular files and symlinks.
fn count(listed: &mut u64, total_size: &mut u64, items: &[Item]) {
    *listed += items.len() as u64;
    *total_size += items
        .iter()
        .filter(|i| matches!(i.entry.kind, FileKind::Regular | FileKind::Symlink))
        .map(|i| i.entry.size)
        .sum::<u64>();
}
