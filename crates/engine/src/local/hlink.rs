//! `-H`: hard-link groups handled as rsync's generator handles them.
//!
//! Members of a group are chained in file-list order. A member whose destination is missing is
//! left for a later member, so the *last* member is the one transferred; a member that is already
//! up to date becomes the group's leader at once. When a leader is done, every earlier member
//! in its chain is hard-linked to it (`hf… NAME => LEADER`); later members link to the leader
//! as they are reached.
//!
//! Groups outlive the directory-at-a-time entry arena, so each keeps its own copies of its
//! members' entries. Which member is last comes from a pre-pass over the sources
//! ([`LocalTransfer::find_link_groups`]) that remembers only multiply-linked files.

use super::{full_path, os_error, LocalTransfer};
use crate::itemize::Itemize;
use crate::report::exit;
use rtsync_tree::{compare_names, fsops, FileEntry, FileKind, ScanFilter, ScanOptions, Scanner};
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// A hard-link group's identity: the source's (device, inode).
pub(super) type GroupKey = (u64, u64);

/// Where one group member stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum LinkState {
    /// Not handled yet, or left for a later member.
    #[default]
    Open,
    /// Its data is being written; earlier members wait for it.
    Sent,
    /// Chained behind a member that is being written.
    Waiting,
    /// In place, linked to member `leader`.
    Done { leader: usize },
}

pub(super) struct Member {
    entry: FileEntry,
    /// Where it is read from (for `--remove-source-files`).
    path: PathBuf,
    /// The member before this one in its chain.
    prev: Option<usize>,
    state: LinkState,
}

pub(super) struct Group {
    /// The name of the group's last member in file-list order.
    last: Vec<u8>,
    members: Vec<Member>,
}

/// All groups of the transfer.
#[derive(Default)]
pub(super) struct HardLinks {
    groups: HashMap<GroupKey, Group>,
    /// Members written this run whose groups are completed at the end.
    to_finish: Vec<(GroupKey, usize)>,
}

/// The member being handled by the generator right now, if it belongs to a group.
#[derive(Clone, Copy)]
pub(super) struct Current {
    key: GroupKey,
    index: usize,
    is_last: bool,
}

impl LocalTransfer<'_> {
    /// The pre-pass: which multiply-linked files form groups, and each group's last member.
    pub(super) fn find_link_groups<F: ScanFilter>(
        &mut self,
        sources: &[PathBuf],
        opts: &ScanOptions,
        filter: &mut F,
    ) {
        fn walk<F: ScanFilter>(
            scanner: &mut Scanner<'_, F>,
            items: Vec<rtsync_tree::Item>,
            found: &mut HashMap<GroupKey, (usize, Vec<u8>)>,
        ) {
            for item in items {
                let e = &item.entry;
                if let (false, Some(key)) = (e.kind == FileKind::Directory, e.hardlink_key) {
                    let slot = found.entry(key).or_insert((0, Vec::new()));
                    slot.0 += 1;
                    if slot.1.is_empty() || compare_names(&e.name, false, &slot.1, false).is_gt() {
                        slot.1 = e.name.clone();
                    }
                }
                if item.descend {
                    if let Some(children) = scanner.enter(&item) {
                        walk(scanner, children, found);
                        scanner.leave();
                    }
                }
            }
        }
        let mut scanner = Scanner::new(opts, filter);
        let top = scanner.top(sources);
        let mut found = HashMap::new();
        walk(&mut scanner, top, &mut found);
        // Problems are reported by the transfer pass itself.
        drop(scanner.take_problems());
        self.links.groups = found
            .into_iter()
            .filter(|(_, (count, _))| *count > 1)
            .map(|(key, (_, last))| {
                (
                    key,
                    Group {
                        last,
                        members: Vec::new(),
                    },
                )
            })
            .collect();
    }

    /// Registers entry `i` with its group (if it has one) as the member being handled.
    pub(super) fn join_group(&mut self, i: usize) -> Option<Current> {
        let e = &self.entries[i];
        let key = e.hardlink_key.filter(|_| e.kind != FileKind::Directory)?;
        let group = self.links.groups.get_mut(&key)?;
        let index = group.members.len();
        let path = self.paths[i].clone();
        group.members.push(Member {
            entry: e.clone(),
            path,
            prev: index.checked_sub(1),
            state: LinkState::Open,
        });
        Some(Current {
            key,
            index,
            is_last: group.last == e.name,
        })
    }

    /// rsync's hard_link_check for a member that is not first: link it to a finished leader,
    /// chain it behind a member in progress, or return `false` to handle it as an ordinary file.
    pub(super) fn hard_link_check(&mut self, cur: Current) -> bool {
        let group = self.links.groups.get_mut(&cur.key).expect("joined group");
        let Some(p) = group.members[cur.index].prev else {
            return false;
        };
        match group.members[p].state {
            LinkState::Done { leader } => {
                group.members[cur.index].prev = Some(leader);
                group.members[cur.index].state = LinkState::Done { leader };
                self.link_member(cur.key, cur.index, leader);
                true
            }
            LinkState::Sent | LinkState::Waiting => {
                group.members[cur.index].prev = group.members[p].prev;
                group.members[p].prev = Some(cur.index);
                group.members[cur.index].state = LinkState::Waiting;
                true
            }
            LinkState::Open => false,
        }
    }

    /// Whether a member with a missing destination should wait for a later member.
    pub(super) fn defer_missing_member(&self) -> bool {
        self.current_link.is_some_and(|c| !c.is_last)
    }

    /// The member being handled was written: its group completes at the end of the run.
    pub(super) fn member_sent(&mut self) {
        if let Some(cur) = self.current_link {
            let group = self.links.groups.get_mut(&cur.key).expect("joined group");
            group.members[cur.index].state = LinkState::Sent;
            self.links.to_finish.push((cur.key, cur.index));
        }
    }

    /// The member being handled is up to date: it leads its group now.
    pub(super) fn member_up_to_date(&mut self) {
        if let Some(cur) = self.current_link {
            self.finish_hard_link(cur.key, cur.index);
        }
    }

    /// Member `leader` is in place: link every earlier member of its chain to it.
    fn finish_hard_link(&mut self, key: GroupKey, leader: usize) {
        let group = self.links.groups.get_mut(&key).expect("joined group");
        group.members[leader].state = LinkState::Done { leader };
        let mut next = group.members[leader].prev.take();
        let mut chain = Vec::new();
        while let Some(member) = next {
            next = group.members[member].prev;
            group.members[member].prev = Some(leader);
            group.members[member].state = LinkState::Done { leader };
            chain.push(member);
        }
        for member in chain {
            self.link_member(key, member, leader);
        }
    }

    /// Completes the groups whose leaders were written during the run.
    pub(super) fn finish_written_links(&mut self) {
        for (key, leader) in std::mem::take(&mut self.links.to_finish) {
            self.finish_hard_link(key, leader);
        }
    }

    /// Makes `member` a hard link to `leader`'s destination unless it already is one.
    fn link_member(&mut self, key: GroupKey, member: usize, leader: usize) {
        let group = &self.links.groups[&key];
        let entry = group.members[member].entry.clone();
        let source = group.members[member].path.clone();
        let leader_name = group.members[leader].entry.name.clone();
        let dest = self.dest_path(&entry.name);
        let leader_dest = self.dest_path(&leader_name);
        let existing = std::fs::symlink_metadata(&dest).ok();
        let mut leader_md = std::fs::symlink_metadata(&leader_dest).ok();
        if leader_md.is_none() && self.opts.dry_run {
            // A dry run made no leader: it stands where a basis directory has it.
            leader_md = (0..self.basis_dirs.len())
                .find_map(|j| self.alt_lstat(j, &leader_name).map(|(_, md)| md));
        }
        // (Devices and specials are linked too, as stock's CAN_HARDLINK_SPECIAL build does.)
        let letter = match entry.kind {
            FileKind::Symlink => b'L',
            FileKind::BlockDevice | FileKind::CharDevice => b'D',
            FileKind::Fifo | FileKind::Socket => b'S',
            _ => b'f',
        };
        if let (Some(m), Some(l)) = (&existing, &leader_md) {
            if m.dev() == l.dev() && m.ino() == l.ino() {
                // Already linked: an unchanged `h` item, or `NAME is uptodate` at -vv. (A
                // symlink names its target, as any unlinked symlink item does.)
                if self.report.itemizes() {
                    if self.opts.itemize < 2 && self.opts.verbose < 2 {
                        return;
                    }
                    let mut suffix = Vec::new();
                    if let Some(t) = entry.link_target.as_ref().filter(|_| letter == b'L') {
                        suffix.extend_from_slice(b" -> ");
                        suffix.extend_from_slice(t);
                    }
                    let facts = self.facts_of(&entry, &source);
                    self.report.item_with(
                        &Itemize::new(b'h', letter),
                        &entry.name,
                        &suffix,
                        &facts,
                    );
                } else {
                    self.report.uptodate(&entry.name);
                }
                return;
            }
        }
        let mut it = Itemize::new(b'h', letter);
        let same_kind = |md: &std::fs::Metadata| match entry.kind {
            FileKind::Symlink => md.file_type().is_symlink(),
            FileKind::Regular => md.is_file(),
            _ => md.mode() & libc::S_IFMT == entry.mode & libc::S_IFMT,
        };
        match &existing {
            Some(md) if same_kind(md) => {
                it.size = entry.kind == FileKind::Regular && md.size() != entry.size;
                let mut attrs = Itemize::default();
                self.compare_entry_attrs(&entry, md, &mut attrs);
                it.time = attrs.time;
                self.mark_untimed_change(entry.kind, &mut it);
                it.perms = attrs.perms;
                it.owner = attrs.owner;
                it.group = attrs.group;
                it.atime = attrs.atime;
                it.xattr = attrs.xattr;
            }
            _ => it.is_new = true,
        }
        let mut quiet = false;
        if existing.is_none() {
            // A basis-directory match is not a change (rsync compares against it instead).
            if let Some((md, link)) = self.alt_match_for_member(&entry, leader_md.as_ref()) {
                it = Itemize::new(b'h', letter);
                let mut attrs = Itemize::default();
                self.compare_entry_attrs(&entry, &md, &mut attrs);
                it.time = attrs.time;
                it.perms = attrs.perms;
                it.owner = attrs.owner;
                it.group = attrs.group;
                it.atime = attrs.atime;
                it.xattr = attrs.xattr;
                // A --link-dest match is a change only to `-ii`, or `-i` with `-vv`; without
                // `%i`, `-vv` says `NAME is uptodate`.
                let itemizes = self.report.itemizes();
                quiet = link && (!itemizes || (self.opts.itemize < 2 && self.opts.verbose < 2));
                if quiet && !itemizes {
                    self.report.uptodate(&entry.name);
                }
            }
        }
        if !self.opts.dry_run {
            // A directory in the way is made way for (a backup taken); anything else is
            // replaced by rename, as stock's atomic_create does.
            let dir = existing.as_ref().is_some_and(|m| m.is_dir());
            if (dir || (existing.is_some() && self.opts.backup))
                && !self.remove_path_in_the_way(&dest, &entry.name, entry.kind)
            {
                return;
            }
            let replacing = std::fs::symlink_metadata(&dest).is_ok();
            let linked =
                fsops::create_over(&dest, replacing, |p| std::fs::hard_link(&leader_dest, p));
            if let Err(f) = linked {
                let said = if f.renaming {
                    format!(
                        "rename \"{}\" -> \"{}\" failed",
                        full_path(&f.at),
                        full_path(&dest)
                    )
                } else {
                    format!(
                        "link \"{}\" => {} failed",
                        full_path(&f.at),
                        crate::report::lossless_text(&leader_name)
                    )
                };
                self.report
                    .error(&format!("rsync: [generator] {said}: {}", os_error(&f.err)));
                self.note(exit::PARTIAL);
                return;
            }
        }
        if it.is_new {
            self.stats.created[0] += 1;
        }
        let mut suffix = b" => ".to_vec();
        suffix.extend_from_slice(&leader_name);
        if !quiet {
            let facts = self.facts_of(&entry, &source);
            self.report.item_with(&it, &entry.name, &suffix, &facts);
        }
        self.remove_source_at(&source, &entry.name);
    }
}
