//! Walking the sources and sending the file list as it is found (see [`super::streamed`]).
//!
//! The walk is [`rtsync_tree::scan_sources`]'s, one directory at a time, so the same
//! entries, problems and messages come out in the same order; only nothing is held beyond
//! the directories on the current path and the [`StreamedList`].

use std::collections::{BTreeSet, HashSet};
use std::io::Write;

use rtsync_engine::Options;
use rtsync_tree::{compare_names, FileEntry, FileKind, Item, ScanFilter, ScanProblem, Scanner};

use super::streamed::StreamedList;
use crate::error::{Error, Result};
use crate::flist::{Content, FlistEncoder, FlistOptions};
use crate::mux::MuxWriter;
use crate::negotiate::Negotiated;

/// Bytes of encoded list gathered before they are handed to the writer.
const SEND_CHUNK: usize = 64 * 1024;

/// What [`send_list`] found besides the list.
pub struct Sent {
    pub list: StreamedList,
    pub problems: Vec<ScanProblem>,
}

/// The walk's state: the encoder, what is pending for the wire, and what is kept.
struct Walk<'a, W: Write> {
    opts: &'a Options,
    neg: &'a Negotiated,
    enc: FlistEncoder,
    out: Vec<u8>,
    writer: &'a mut MuxWriter<W>,
    list: StreamedList,
    /// Names of the command-line directories (for `-R`'s implied parents).
    top_dirs: HashSet<Vec<u8>>,
    /// uid/gid → name lists, in order of first use.
    users: Vec<(u32, Vec<u8>)>,
    groups: Vec<(u32, Vec<u8>)>,
    seen_users: BTreeSet<u32>,
    seen_groups: BTreeSet<u32>,
}

/// Walks `sources` and sends the list (after `prefix`, e.g. the filter rules) through
/// `writer`; `end` gives the io_error bits for the end marker from the problems met.
/// Returns the list sorted in the receiver's index order.
#[allow(clippy::too_many_arguments)]
pub fn send_list<F: ScanFilter, W: Write>(
    opts: &Options,
    neg: &Negotiated,
    fopts: FlistOptions,
    sources: &[std::path::PathBuf],
    filter: &mut F,
    writer: &mut MuxWriter<W>,
    prefix: Vec<u8>,
    end: impl FnOnce(&[ScanProblem]) -> i32,
) -> Result<Sent> {
    // (With --iconv the receiver numbers entries in the order sent.)
    let unsorted = fopts.unsorted();
    let sopts = super::super::push_client::scan_options(opts, neg);
    let mut scanner = Scanner::new(&sopts, filter);
    let tops = scanner.top(sources);
    let mut walk = Walk {
        opts,
        neg,
        enc: FlistEncoder::new(fopts),
        out: prefix,
        writer,
        list: StreamedList::default(),
        top_dirs: tops
            .iter()
            .filter(|t| t.entry.is_dir() && t.entry.top_dir)
            .map(|t| t.entry.name.clone())
            .collect(),
        users: Vec::new(),
        groups: Vec::new(),
        seen_users: BTreeSet::new(),
        seen_groups: BTreeSet::new(),
    };
    walk.list.keep_stat = opts.remove_source_files;
    walk.list.keep_sums = super::keeps_list_sums(opts);
    for item in tops {
        walk.list.begin_root(&item.entry.name, &item.path);
        walk.walk(&mut scanner, item)?;
    }
    let problems = scanner.take_problems();
    let io_error = end(&problems);
    // `--ignore-errors`: the receiver is not told (it deletes all the same).
    walk.enc
        .put_end(&mut walk.out, if opts.ignore_errors { 0 } else { io_error });
    walk.enc
        .put_id_lists(&mut walk.out, &walk.users, &walk.groups);
    walk.drain()?;
    walk.writer
        .flush()
        .map_err(|e| Error::io("writing to receiver", e))?;
    let mut list = walk.list;
    if !unsorted {
        list.sort();
    }
    Ok(Sent { list, problems })
}

impl<W: Write> Walk<'_, W> {
    fn walk<F: ScanFilter>(&mut self, scanner: &mut Scanner<'_, F>, item: Item) -> Result<()> {
        let children = if item.descend {
            scanner.enter(&item)
        } else {
            None
        };
        self.add(item)?;
        let Some(children) = children else {
            return Ok(());
        };
        let mut subdirs = Vec::new();
        for child in children {
            if child.descend {
                subdirs.push(child);
            } else {
                self.add(child)?;
            }
        }
        // rsync's sender descends in file-list order, which orders its messages.
        subdirs.sort_by(|a, b| compare_names(&a.entry.name, true, &b.entry.name, true));
        for dir in subdirs {
            self.walk(scanner, dir)?;
        }
        scanner.leave();
        Ok(())
    }

    /// Encodes one entry, remembers it, and sends what has gathered.
    fn add(&mut self, item: Item) -> Result<()> {
        let Item {
            mut entry,
            path,
            descend,
            ..
        } = item;
        crate::client::apply_chmod(self.opts, std::slice::from_mut(&mut entry));
        if self.opts.checksum && entry.kind == FileKind::Regular {
            entry.checksum = super::super::push_client::file_sum(&path, self.neg).ok();
        }
        let content = if self.implied(&entry) {
            Content::Implied
        } else if entry.is_dir() && !descend {
            Content::Without
        } else {
            Content::With
        };
        let ndx = self.list.count();
        self.enc.put_entry_as(&mut self.out, &entry, ndx, content)?;
        self.note_ids(&entry);
        self.list.push(&entry, &path)?;
        if self.out.len() >= SEND_CHUNK {
            self.drain()?;
        }
        Ok(())
    }

    fn drain(&mut self) -> Result<()> {
        self.writer
            .write_all(&self.out)
            .map_err(|e| Error::io("writing to receiver", e))?;
        self.out.clear();
        Ok(())
    }

    /// With `-R`, a directory that was not named itself and does not lie inside a named
    /// directory being recursed into is an implied parent (sent without its contents).
    fn implied(&self, e: &FileEntry) -> bool {
        if !self.opts.relative || !e.is_dir() || e.top_dir || e.name == b"." {
            return false;
        }
        let inside_top = self.opts.recursive
            && (self.top_dirs.contains(&b"."[..])
                || e.name
                    .iter()
                    .enumerate()
                    .any(|(i, &c)| c == b'/' && self.top_dirs.contains(&e.name[..i])));
        !inside_top
    }

    /// Adds the entry's owner and group to the name lists (unless `--numeric-ids`).
    fn note_ids(&mut self, e: &FileEntry) {
        if self.opts.numeric_ids {
            return;
        }
        if self.opts.owner && self.seen_users.insert(e.uid) {
            if let Some(n) = crate::local::user_name(e.uid) {
                self.users.push((e.uid, n));
            }
        }
        if self.opts.group && self.seen_groups.insert(e.gid) {
            if let Some(n) = crate::local::group_name(e.gid) {
                self.groups.push((e.gid, n));
            }
        }
    }
}
