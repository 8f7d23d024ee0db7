//! `--info=progress2`'s list ends. Stock's sender shows the line of the whole transfer again
//! each time it reads an `NDX_DONE`: with incremental recursion the generator sends one per
//! file list it is finished with, without it one per phase. A local copy has no such
//! messages, so this models where stock's generator sends them. It checks after each entry
//! it handles whether the oldest list is finished (no transfer of it still in progress) and
//! then sends its end. The line counts to the end of the list the sender is in: the list of
//! the last entry it was told of (a transfer or an itemized change), or the oldest list not
//! yet finished when that one is gone.
//!
//! When the receiver finishes a file is timing, so stock's order varies from run to run.
//! This model follows its usual order on a small tree: the generator waits for the second
//! list while the sender sends the first list's files, so the first list is finished by the
//! time the generator handles an entry of a later one; after that the generator runs ahead
//! of the receiver, so a later list is finished at once only when it transferred nothing,
//! else when everything is done.

use super::LocalTransfer;

/// The file lists stock's sender would have sent, as the walk goes through them.
#[derive(Debug, Default)]
pub(super) struct Lists {
    /// For each entry on the walk's stack, the list it is in.
    pub entry_list: Vec<usize>,
    /// For each list begun, the position (in the whole list) of its last entry.
    ends: Vec<u64>,
    /// For each list begun, whether a file of it was transferred.
    transfers: Vec<bool>,
    /// Lists whose end went out (`0..done`).
    done: usize,
    /// The list the sender last heard of.
    seen: usize,
    /// The index at which stock's generator next checks whether to flush (every 200).
    next_loopchk: u64,
}

impl Lists {
    /// A new list begins; its number.
    pub fn begin(&mut self) -> usize {
        self.ends.push(0);
        self.transfers.push(false);
        self.ends.len() - 1
    }

    /// Stock's generator has handled the entry of index `ndx`: whether it flushes what it
    /// has buffered (the records its sender prints item lines from) there. Every 200
    /// entries it calls maybe_flush_socket, which flushes once the lists are all in
    /// (`lists_in`): its clock test always passes when no --timeout keeps the clock.
    pub fn loop_check(&mut self, ndx: u64, lists_in: bool) -> bool {
        if ndx < self.next_loopchk {
            return false;
        }
        self.next_loopchk += 200;
        lists_in
    }

    /// How many lists have begun.
    pub fn count(&self) -> usize {
        self.ends.len()
    }

    /// List `n` holds entries up to position `listed - 1` so far.
    pub fn extend(&mut self, n: usize, listed: u64) {
        if self.ends.is_empty() {
            self.ends.push(0);
        }
        self.ends[n] = listed.saturating_sub(1);
    }

    /// The sender hears of an entry of list `n`; `transfer`: a file to send.
    pub fn seen(&mut self, n: usize, transfer: bool) {
        self.seen = self.seen.max(n);
        if transfer {
            if let Some(t) = self.transfers.get_mut(n) {
                *t = true;
            }
        }
    }
}

impl LocalTransfer<'_> {
    /// The generator handled the entry of stock's index `ndx` (its place in the whole
    /// list): the item lines held back are printed where stock's generator flushes (see
    /// [`Lists::loop_check`]). Only without incremental recursion are the lists all in from
    /// the start: with it, stock's generator hears of their end only when it reads from
    /// its receiver, which it does when it waits (see `walk_dir`). A --timeout keeps the
    /// clock, and its keepalive check then does not flush.
    pub(super) fn entry_handled(&mut self, ndx: u64) {
        let lists_in = self.opts.timeout == 0 && !self.opts.incremental_recursion();
        if self.lists.loop_check(ndx, lists_in) {
            self.report.flush_items();
        }
    }

    /// The generator handled an entry of list `n`: the lists before it are finished.
    pub(super) fn lists_finished_before(&mut self, n: usize) {
        self.lists_finish(n, false);
    }

    /// Sends the ends of the lists before `n` that are finished (`all`: every one is).
    fn lists_finish(&mut self, n: usize, all: bool) {
        if self.report.progress_level() < 2 || !self.opts.incremental_recursion() {
            return;
        }
        while self.lists.done < n {
            let k = self.lists.done;
            if !all && k > 0 && self.lists.transfers.get(k) == Some(&true) {
                break;
            }
            let current = self.lists.seen.max(self.lists.done);
            self.lists.done += 1;
            self.list_done_line(current);
        }
    }

    /// The transfer pass is over: the ends of the lists still open (with incremental
    /// recursion; once the last is gone the sender shows no more), or of each phase (three,
    /// all in the one list).
    pub(super) fn lists_finished(&mut self) {
        if self.report.progress_level() < 2 {
            return;
        }
        if self.opts.incremental_recursion() {
            self.lists_finish(self.lists.ends.len(), true);
        } else {
            for _ in 0..3 {
                self.list_done_line(0);
            }
        }
    }

    /// The sender's line at the end of a list while it is in list `current`.
    fn list_done_line(&mut self, current: usize) {
        let end = if self.opts.incremental_recursion() {
            self.lists.ends.get(current).copied().unwrap_or(0)
        } else {
            self.listed.saturating_sub(1)
        };
        let counts = self.counts_at(end);
        self.report.list_done(counts);
    }

    /// The sender hears of entry `i`: an item line, or (`transfer`) a file to send.
    pub(super) fn sender_sees(&mut self, i: usize, transfer: bool) {
        if let Some(&n) = self.lists.entry_list.get(i) {
            self.lists.seen(n, transfer);
        }
    }
}
