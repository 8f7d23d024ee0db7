//! Item lines (`-v`, `-i`, `--out-format`) printed in file-list order even though the
//! generator and the receiver finish items in their own order, as stock's output reads.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;

use rtsync_engine::itemize::Itemize;
use rtsync_engine::report::{ItemFacts, Reporter, TransferLog};
use rtsync_tree::{FileEntry, FileKind};

/// One output line.
#[derive(Debug, Clone)]
pub enum Line {
    /// An item: its itemize data, name, suffix (`/`, ` -> target`, ` => leader`) and what a
    /// user's `--out-format` may ask of it.
    Item(Itemize, Vec<u8>, Vec<u8>, Option<Box<ItemFacts>>),
    /// `deleting NAME`, and the mode of what was deleted.
    Deleting(Vec<u8>, u32),
    /// A message line on stdout (e.g. `skipping non-regular file "x"`).
    Info(String),
    /// A hard-link follower already linked to its leader: an unchanged item, shown as
    /// [`Reporter::unchanged_link`] decides.
    Linked(Itemize, Vec<u8>, Vec<u8>, Option<Box<ItemFacts>>),
}

#[derive(Debug, Clone)]
enum Slot {
    /// Not decided yet.
    Unset,
    /// Waiting for the receiver; lines known so far (deletions) come first.
    Pending(Vec<Line>),
    Ready(Vec<Line>),
}

struct State {
    reporter: Option<Reporter>,
    /// A server's transfer log (`transfer logging`, `--log-file`): offered every line too.
    transfer_log: Option<TransferLog>,
    /// The slots from index `base` on; earlier ones are printed and gone, so only a window
    /// of a long (incrementally received) list is held.
    slots: std::collections::VecDeque<Slot>,
    base: usize,
    /// Lines printed after every entry (`--delete-after` deletions).
    trailer: Vec<Line>,
    /// Lines of the redo phase that came before every entry's own was printed.
    late: Vec<Line>,
    /// Lines printed right after an entry's own (hard links made to it), by index.
    after: std::collections::HashMap<usize, Vec<Line>>,
}

impl State {
    /// The slot of `ndx`, added (undecided, with any before it) if the list grew; `None` for
    /// one already printed.
    fn slot(&mut self, ndx: usize) -> Option<&mut Slot> {
        let i = ndx.checked_sub(self.base)?;
        if i >= self.slots.len() {
            self.slots.resize(i + 1, Slot::Unset);
        }
        self.slots.get_mut(i)
    }
}

/// The ordered log of one transfer. With no reporter, it records nothing.
pub struct ItemLog {
    state: Mutex<State>,
    /// `--progress` lines are shown (a receiving client's).
    progress: bool,
}

impl ItemLog {
    pub fn new(reporter: Option<Reporter>, entries: usize) -> ItemLog {
        let slots = if reporter.is_some() {
            std::iter::repeat_n(Slot::Unset, entries).collect()
        } else {
            Default::default()
        };
        ItemLog {
            progress: reporter.as_ref().is_some_and(Reporter::shows_progress),
            state: Mutex::new(State {
                reporter,
                transfer_log: None,
                slots,
                base: 0,
                trailer: Vec::new(),
                late: Vec::new(),
                after: Default::default(),
            }),
        }
    }

    /// A server's transfer log, offered each line as it comes out (in list order).
    pub fn with_transfer_log(self, log: Option<TransferLog>) -> ItemLog {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .transfer_log = log;
        self
    }

    fn with(&self, f: impl FnOnce(&mut State)) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.reporter.is_some() || st.transfer_log.is_some() {
            f(&mut st);
            advance(&mut st);
        }
    }

    /// The final lines of entry `ndx`.
    pub fn ready(&self, ndx: usize, lines: Vec<Line>) {
        self.with(|st| {
            if let Some(s) = st.slot(ndx) {
                *s = Slot::Ready(lines);
            }
        });
    }

    /// Entry `ndx` is being transferred; `lines` (deletions) print before its own line,
    /// after any given for it already.
    pub fn pending(&self, ndx: usize, lines: Vec<Line>) {
        self.with(|st| {
            if let Some(s) = st.slot(ndx) {
                *s = match std::mem::replace(s, Slot::Unset) {
                    Slot::Pending(mut before) => {
                        before.extend(lines);
                        Slot::Pending(before)
                    }
                    _ => Slot::Pending(lines),
                };
            }
        });
    }

    /// The receiver finished entry `ndx` (with its line, or none if it failed).
    pub fn complete(&self, ndx: usize, line: Option<Line>) {
        self.with(|st| {
            if let Some(s) = st.slot(ndx) {
                let mut lines = match std::mem::replace(s, Slot::Unset) {
                    Slot::Pending(l) | Slot::Ready(l) => l,
                    Slot::Unset => Vec::new(),
                };
                lines.extend(line);
                *s = Slot::Ready(lines);
            }
        });
    }

    /// `--progress` lines are shown: a transferred file's item line goes out with them
    /// ([`ItemLog::transfer_end`]), not through its slot.
    pub fn shows_progress(&self) -> bool {
        self.progress
    }

    /// `--progress`: the data of entry `ndx` starts arriving. What is ready before it is
    /// printed first; then what heads its progress (its item line, or its name).
    pub fn transfer_begin(&self, ndx: usize, line: Option<&Line>) {
        if !self.progress {
            return;
        }
        self.with(|st| {
            if let Some(Slot::Unset) = st.slot(ndx) {
                *st.slot(ndx).expect("just seen") = Slot::Pending(Vec::new());
            }
            advance(st);
            if let (Some(r), Some(Line::Item(it, name, _, facts))) = (st.reporter.as_mut(), line) {
                r.transfer_begin(it, name, &facts.as_deref().cloned().unwrap_or_default());
            }
        });
    }

    /// `--info=progress2`: a file of `len` bytes starts its transfer while the lists hold
    /// `total_size` (see [`Reporter::transfer_counted`]).
    pub fn transfer_counted(&self, len: u64, total_size: u64) {
        if !self.progress {
            return;
        }
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = st.reporter.as_mut() {
            r.transfer_counted(len, total_size);
        }
    }

    /// `--info=progress2`: the receiver read an `NDX_DONE` (see [`Reporter::list_done`]).
    pub fn list_done(&self, counts: rtsync_engine::report::Progress) {
        if !self.progress {
            return;
        }
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = st.reporter.as_mut() {
            r.list_done(counts);
        }
    }

    /// `--progress`: the file's data reached offset `ofs` of `size` (a receiver reports
    /// before each token it reads).
    pub fn transfer_tick(&self, ofs: u64, size: u64) {
        if !self.progress {
            return;
        }
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = st.reporter.as_mut() {
            r.transfer_tick(ofs, size);
        }
    }

    /// `--progress`: the file's data is all here: its closing progress line, then its item
    /// line (unless that headed the progress). `line` is then not for its slot.
    pub fn transfer_end(
        &self,
        size: u64,
        counts: rtsync_engine::report::Progress,
        line: Option<Line>,
    ) {
        if !self.progress {
            return;
        }
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = st.reporter.as_mut() {
            r.progress(size, counts);
            print_lines(&mut st, line.into_iter().collect());
        }
    }

    /// Lines printed before every entry (`--delete-before` deletions).
    pub fn header(&self, lines: Vec<Line>) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        print_lines(&mut st, lines);
    }

    /// Lines printed right after entry `ndx`'s own (now, if that is printed already).
    pub fn after(&self, ndx: usize, lines: Vec<Line>) {
        self.with(|st| {
            if ndx < st.base {
                print_lines(st, lines);
            } else {
                st.after.entry(ndx).or_default().extend(lines);
            }
        });
    }

    /// A line of the redo phase (a file fetched again after failing verification): after
    /// every entry's own line.
    pub fn late(&self, line: Line) {
        self.with(|st| {
            if st.slots.is_empty() {
                print_lines(st, vec![line]);
            } else {
                st.late.push(line);
            }
        });
    }

    /// Lines printed after every entry (`--delete-after` deletions).
    pub fn trailer(&self, lines: Vec<Line>) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.trailer.extend(lines);
    }

    /// Prints whatever is left and hands the reporter back (for the summary).
    pub fn finish(&self) -> Option<Reporter> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        for s in st.slots.iter_mut() {
            if let Slot::Pending(l) = s {
                *s = Slot::Ready(std::mem::take(l));
            } else if let Slot::Unset = s {
                *s = Slot::Ready(Vec::new());
            }
        }
        advance(&mut st);
        let mut rest: Vec<(usize, Vec<Line>)> = st.after.drain().collect();
        rest.sort_by_key(|(ndx, _)| *ndx);
        let mut trailer: Vec<Line> = rest.into_iter().flat_map(|(_, l)| l).collect();
        trailer.append(&mut st.late);
        trailer.append(&mut st.trailer);
        print_lines(&mut st, trailer);
        let mut r = st.reporter.take();
        if let Some(r) = r.as_mut() {
            r.flush();
        }
        r
    }
}

fn print_lines(st: &mut State, lines: Vec<Line>) {
    if let Some(log) = &st.transfer_log {
        for line in &lines {
            match line {
                Line::Item(it, name, suffix, facts) | Line::Linked(it, name, suffix, facts) => log
                    .item(
                        it,
                        name,
                        suffix,
                        &facts.as_deref().cloned().unwrap_or_default(),
                    ),
                Line::Deleting(name, mode) => log.deleted(name, *mode),
                Line::Info(_) => {}
            }
        }
    }
    let Some(r) = st.reporter.as_mut() else {
        return;
    };
    for line in lines {
        match line {
            Line::Item(it, name, suffix, facts) => {
                r.item_with(&it, &name, &suffix, &facts.unwrap_or_default())
            }
            Line::Deleting(name, mode) => r.deleting_mode(&name, mode),
            Line::Info(text) => r.info(&text),
            Line::Linked(it, name, suffix, facts) => {
                r.unchanged_link(&it, &name, &suffix, &facts.unwrap_or_default())
            }
        }
    }
}

fn advance(st: &mut State) {
    while let Some(Slot::Ready(_)) = st.slots.front() {
        let Some(Slot::Ready(mut lines)) = st.slots.pop_front() else {
            break;
        };
        if let Some(more) = st.after.remove(&st.base) {
            lines.extend(more);
        }
        st.base += 1;
        print_lines(st, lines);
    }
    if st.slots.is_empty() {
        if let Some(r) = st.reporter.as_mut() {
            r.flush();
        }
    }
}

/// Which attributes the transfer preserves (for the itemize flags).
#[derive(Debug, Clone, Copy, Default)]
pub struct Preserve {
    pub times: bool,
    /// `--modify-window` for the time comparison.
    pub modify_window: i64,
    pub perms: bool,
    pub owner: bool,
    pub group: bool,
    /// `-U`.
    pub atimes: bool,
}

/// The itemize data of an entry compared with what exists locally.
pub fn itemize(e: &FileEntry, local: Option<&Metadata>, update: u8, p: Preserve) -> Itemize {
    itemize_as(
        e,
        local.map(|m| (m, rtsync_tree::fake::Seen::real(m))),
        update,
        p,
    )
}

/// [`itemize`] against an item whose type, permissions and owner are `seen` (what a
/// `--fake-super` receiver reads in its `%stat`).
pub fn itemize_as(
    e: &FileEntry,
    local: Option<(&Metadata, rtsync_tree::fake::Seen)>,
    update: u8,
    p: Preserve,
) -> Itemize {
    let kind = match e.kind {
        FileKind::Regular => b'f',
        FileKind::Directory => b'd',
        FileKind::Symlink => b'L',
        FileKind::BlockDevice | FileKind::CharDevice => b'D',
        FileKind::Fifo | FileKind::Socket => b'S',
    };
    let mut it = Itemize::new(update, kind);
    let Some((m, seen)) = local else {
        it.is_new = true;
        return it;
    };
    let same_type = seen.mode & libc::S_IFMT == e.mode & libc::S_IFMT;
    if !same_type {
        it.is_new = true;
        return it;
    }
    if e.kind == FileKind::Regular && m.len() != e.size {
        it.size = true;
    }
    // Symlink times count too (Linux sets them); `--omit-link-times` is the caller's.
    // Without -t a transferred or remade item's time is reported as set to now (stock's
    // itemize without keep_time), whatever it was.
    if p.times {
        if !crate::local::same_mtime(p.modify_window, m, e) {
            it.time = Some(b't');
        }
    } else if matches!(update, b'>' | b'c') {
        it.time = Some(b'T');
    }
    if p.perms && e.kind != FileKind::Symlink && seen.mode & 0o7777 != e.mode & 0o7777 {
        it.perms = true;
    }
    if p.owner && seen.uid != e.uid {
        it.owner = true;
    }
    if p.group && seen.gid != e.gid {
        it.group = true;
    }
    if p.atimes && !matches!(e.kind, FileKind::Directory | FileKind::Symlink) {
        it.atime = m.atime() != e.atime;
    }
    it
}

/// The suffix rsync prints after a name.
pub fn suffix(e: &FileEntry) -> Vec<u8> {
    match e.kind {
        FileKind::Directory => b"/".to_vec(),
        FileKind::Symlink => {
            let mut s = b" -> ".to_vec();
            s.extend_from_slice(e.link_target.as_deref().unwrap_or_default());
            s
        }
        _ => Vec::new(),
    }
}

/// An item line for `e`.
pub fn line(e: &FileEntry, it: Itemize) -> Line {
    Line::Item(it, e.name.clone(), suffix(e), Some(Box::new(facts(e))))
}

/// What `--out-format` may say of `e` on the receiving side (`%f` is the name there).
pub fn facts(e: &FileEntry) -> ItemFacts {
    ItemFacts::of(e)
}

/// A `--list-only` line as rsync prints it: mode string, size, mtime (and atime), name;
/// raw (the name as it is), escaped once where the line is printed.
pub fn list_line(e: &FileEntry, links: bool, atimes: bool) -> String {
    let line = rtsync_engine::report::list_line_as(e, 1, links, atimes, false);
    rtsync_engine::report::lossless_text(&line).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server's transfer log gets transfers and (with `%i`) changed items in list order,
    /// deletions as `deleting NAME` without `%i`/`%o`; nothing else.
    #[test]
    fn transfer_log_gets_lines_in_list_order() {
        let got = std::sync::Arc::new(Mutex::new(Vec::<String>::new()));
        let sink_got = got.clone();
        let sink: rtsync_engine::report::LogFn = std::sync::Arc::new(move |l: &str| {
            sink_got.lock().unwrap().push(l.to_string());
        });
        let opts = rtsync_engine::Options::default();
        for (format, want) in [
            (
                "%i %n%L",
                &["*deleting   old", ">f+++++++++ a", ".d..t...... sub/"][..],
            ),
            ("%n", &["deleting old", "a"][..]),
        ] {
            got.lock().unwrap().clear();
            let tlog = TransferLog::new(&opts, format, "recv", sink.clone());
            let log = ItemLog::new(None, 0).with_transfer_log(tlog);
            let mut sub = Itemize::new(b'.', b'd');
            sub.time = Some(b't');
            let mut new = Itemize::new(b'>', b'f');
            new.is_new = true;
            log.pending(0, vec![Line::Deleting(b"old".to_vec(), 0o100644)]);
            log.ready(
                1,
                vec![Line::Item(sub, b"sub".to_vec(), b"/".to_vec(), None)],
            );
            log.ready(
                2,
                vec![Line::Item(
                    Itemize::new(b'.', b'f'),
                    b"same".to_vec(),
                    Vec::new(),
                    None,
                )],
            );
            assert!(got.lock().unwrap().is_empty(), "entry 0 is still in flight");
            log.complete(0, Some(Line::Item(new, b"a".to_vec(), Vec::new(), None)));
            assert!(log.finish().is_none());
            assert_eq!(*got.lock().unwrap(), want, "{format}");
        }
    }

    /// Lines come out in file-list order even when entries finish out of order.
    #[test]
    fn ordered_output() {
        let log = ItemLog::new(None, 3);
        // Without a reporter nothing is recorded and nothing panics.
        log.pending(0, Vec::new());
        log.ready(2, vec![Line::Info("x".into())]);
        log.complete(0, None);
        assert!(log.finish().is_none());

        let mut st = State {
            reporter: None,
            transfer_log: None,
            slots: vec![Slot::Unset, Slot::Unset, Slot::Unset].into(),
            base: 0,
            trailer: Vec::new(),
            late: Vec::new(),
            after: Default::default(),
        };
        st.slots[1] = Slot::Ready(Vec::new());
        advance(&mut st);
        assert_eq!(st.base, 0, "slot 0 undecided: nothing printed yet");
        st.slots[0] = Slot::Pending(Vec::new());
        advance(&mut st);
        assert_eq!(st.base, 0, "slot 0 still being transferred");
        st.slots[0] = Slot::Ready(Vec::new());
        advance(&mut st);
        assert_eq!(st.base, 2, "slots 0 and 1 flushed in order");
        assert_eq!(st.slots.len(), 1, "printed slots are dropped");
        *st.slot(5).expect("a later slot") = Slot::Ready(Vec::new());
        assert_eq!(st.slots.len(), 4, "the window grows with the list");
        assert!(st.slot(1).is_none(), "printed slots stay printed");
    }

    #[test]
    fn list_line_format() {
        let e = FileEntry {
            name: b"a".to_vec(),
            kind: FileKind::Regular,
            mode: libc::S_IFREG | 0o4755,
            size: 1234567,
            mtime: 0,
            mtime_nsec: 0,
            atime: 0,
            uid: 0,
            gid: 0,
            rdev: 0,
            link_target: None,
            hardlink_key: None,
            checksum: None,
            top_dir: false,
            xattrs: None,
            acl: None,
        };
        let line = list_line(&e, false, false);
        assert!(line.starts_with("-rwsr-xr-x      1,234,567 "), "{line}");
        assert!(line.ends_with(" a"), "{line}");
    }
}
