//! `-H`: hard-link groups handled as rsync's generator handles them.
//!
//! Members of a group are chained in file-list order. A member whose destination is missing is
//! left for a later member, so the *last* member is the one transferred; a member that is already
//! up to date becomes the group's leader at once. When a leader is done, every earlier member
//! in its chain is hard-linked to it (`hf… NAME => LEADER`); later members link to the leader
//! as they are reached.

use super::{full_path, os_error, LocalTransfer};
use crate::itemize::Itemize;
use crate::report::exit;
use std::os::unix::fs::MetadataExt;

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
    /// In place, linked to `leader`.
    Done { leader: usize },
}

/// Per-entry hard-link bookkeeping (indexed by entry).
#[derive(Default)]
pub(super) struct HardLinks {
    /// The member before this one in its chain.
    pub prev: Vec<Option<usize>>,
    /// Whether the entry started out first in its group.
    pub first: Vec<bool>,
    pub last: Vec<bool>,
    pub state: Vec<LinkState>,
    /// Members written this run whose groups are completed at the end.
    pub to_finish: Vec<usize>,
}

impl LocalTransfer<'_> {
    /// Chains the members of every hard-link group in file-list order.
    pub(super) fn prepare_hard_links(&mut self) {
        let n = self.entries.len();
        let mut hl = HardLinks {
            prev: vec![None; n],
            first: vec![false; n],
            last: vec![false; n],
            state: vec![LinkState::Open; n],
            to_finish: Vec::new(),
        };
        let mut tail: std::collections::HashMap<(u64, u64), usize> = Default::default();
        for &i in &self.order {
            let e = &self.entries[i];
            let Some(key) = e
                .hardlink_key
                .filter(|_| e.kind == rtsync_tree::FileKind::Regular)
            else {
                continue;
            };
            match tail.insert(key, i) {
                Some(p) => hl.prev[i] = Some(p),
                None => hl.first[i] = true,
            }
        }
        for (_, &last) in tail.iter() {
            hl.last[last] = true;
        }
        // A "group" of one is an ordinary file.
        for i in 0..n {
            if hl.first[i] && hl.last[i] {
                hl.first[i] = false;
                hl.last[i] = false;
            }
        }
        self.links = hl;
    }

    /// Whether entry `i` belongs to a hard-link group of two or more.
    pub(super) fn is_linked(&self, i: usize) -> bool {
        self.opts.hard_links
            && i < self.links.prev.len()
            && (self.links.first[i] || self.links.prev[i].is_some())
    }

    /// rsync's hard_link_check for a member that is not first: link it to a finished leader, chain
    /// it behind a member in progress, or return `false` to handle it as an ordinary file.
    pub(super) fn hard_link_check(&mut self, i: usize) -> bool {
        let Some(p) = self.links.prev[i] else {
            return false;
        };
        match self.links.state[p] {
            LinkState::Done { leader } => {
                self.links.prev[i] = Some(leader);
                self.links.state[i] = LinkState::Done { leader };
                self.link_member(i, leader);
                true
            }
            LinkState::Sent | LinkState::Waiting => {
                self.links.prev[i] = self.links.prev[p];
                self.links.prev[p] = Some(i);
                self.links.state[i] = LinkState::Waiting;
                true
            }
            LinkState::Open => false,
        }
    }

    /// Whether a member with a missing destination should wait for a later member.
    pub(super) fn defer_missing_member(&self, i: usize) -> bool {
        self.is_linked(i) && !self.links.last[i]
    }

    /// Entry `leader` is in place: link every earlier member of its chain to it.
    pub(super) fn finish_hard_link(&mut self, leader: usize) {
        self.links.state[leader] = LinkState::Done { leader };
        let mut next = self.links.prev[leader];
        self.links.prev[leader] = None;
        while let Some(member) = next {
            next = self.links.prev[member];
            self.links.prev[member] = Some(leader);
            self.links.state[member] = LinkState::Done { leader };
            self.link_member(member, leader);
        }
    }

    /// Completes the groups whose leaders were written during the run.
    pub(super) fn finish_written_links(&mut self) {
        for leader in std::mem::take(&mut self.links.to_finish) {
            self.finish_hard_link(leader);
        }
    }

    /// Makes `member` a hard link to `leader`'s destination unless it already is one.
    fn link_member(&mut self, member: usize, leader: usize) {
        let dest = self.dest_path(&self.entries[member].name);
        let leader_dest = self.dest_path(&self.entries[leader].name);
        let existing = std::fs::symlink_metadata(&dest).ok();
        let leader_md = std::fs::symlink_metadata(&leader_dest).ok();
        if let (Some(m), Some(l)) = (&existing, &leader_md) {
            if m.dev() == l.dev() && m.ino() == l.ino() {
                return;
            }
        }
        let mut it = Itemize::new(b'h', b'f');
        match &existing {
            Some(md) if md.is_file() => {
                it.size = md.size() != self.entries[member].size;
                let mut attrs = Itemize::default();
                self.compare_attrs(member, md, &mut attrs, false);
                it.time = attrs.time;
                it.perms = attrs.perms;
                it.owner = attrs.owner;
                it.group = attrs.group;
            }
            _ => it.is_new = true,
        }
        if !self.opts.dry_run {
            if existing.is_some() && !self.remove_in_the_way(&dest, member) {
                return;
            }
            if let Err(e) = std::fs::hard_link(&leader_dest, &dest) {
                self.report.error(&format!(
                    "rsync: [generator] link \"{}\" => {} failed: {}",
                    full_path(&dest),
                    String::from_utf8_lossy(&self.entries[leader].name),
                    os_error(&e)
                ));
                self.note(exit::PARTIAL);
                return;
            }
        }
        if it.is_new {
            self.stats.created[0] += 1;
        }
        let mut suffix = b" => ".to_vec();
        suffix.extend_from_slice(&self.entries[leader].name);
        let name = self.entries[member].name.clone();
        self.report.item(&it, &name, &suffix);
        self.remove_source(member);
    }
}
