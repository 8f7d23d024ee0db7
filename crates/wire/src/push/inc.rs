//! Incremental recursion on the sending side (CF_INC_RECURSE).
//!
//! The list goes out one directory at a time while files are already being transferred:
//! first the command-line level (with the contents of a `dir/` source), then, interleaved
//! with file data between two files, one sub-list per directory in depth-first order of the
//! sorted tree, each announced as `NDX_FLIST_OFFSET - dir_ndx` and ended like a whole list;
//! `NDX_FLIST_EOF` after the last. Protocol facts (numbering, order, when a list is retired):
//!
//! * Every directory entry of every list gets the next *dir_ndx*, lists in the order sent and
//!   entries in sorted order within a list (the top `.` included).
//! * List *k* numbers its sorted entries from `ndx_start`: 1 for the first list, then the
//!   previous start plus its length plus one. `ndx_start - 1` names the list's own directory
//!   (the generator itemizes directories through it).
//! * The generator sends `NDX_DONE` each time it has finished the oldest list; the sender
//!   forgets that list and echoes `NDX_DONE`, unless it was the last one held, in which case
//!   the `NDX_DONE` ends the phase as without incremental recursion.
//! * The sender keeps some files listed ahead of the list the generator is working on
//!   (stock: 1000, up to 10000 while it would otherwise wait), so the generator never runs
//!   dry and the sender holds only a window of the tree.
//! * Owner and group names travel inline (see [`crate::flist::FlistOptions::inc_recurse`]).
//! * Hard links (`-H`): a follower names its group's first entry by that entry's index; the
//!   entry is abbreviated only when the first is in the same list (the receiver may have
//!   forgotten an earlier list's entries).
//!
//! The same lists serve a pushing client and a sending server (a stock client pulling with
//! `i` in its capabilities): [`Problems`] says whether scan problems are printed here or sent
//! to the peer, and [`IncConfig::adjust`] lets a daemon module change entries (munged
//! symlinks, `outgoing chmod`) before they go out.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rtsync_engine::Options;
use rtsync_tree::{
    compare_names, FileEntry, FileKind, Item, ScanFilter, ScanOptions, ScanProblem, Scanner,
};

use crate::error::Result;
use crate::flist::{FlistEncoder, FlistOptions};
use crate::mux::MsgTag;
use crate::ndx::{NdxWriter, NDX_FLIST_EOF, NDX_FLIST_OFFSET};
use crate::negotiate::Negotiated;

/// Files kept listed ahead of the generator.
pub const MIN_LOOKAHEAD: usize = 1000;
/// ... and while nothing else is to be done.
pub const MAX_LOOKAHEAD: usize = 10_000;

/// What the transfer phase needs of one sent entry (a list's own directory).
#[derive(Debug, Clone)]
struct Sent {
    kind: FileKind,
    name: Box<[u8]>,
    path: PathBuf,
    target: Option<Box<[u8]>>,
}

impl Sent {
    fn of(item: &Item) -> Sent {
        Sent {
            kind: item.entry.kind,
            name: item.entry.name.clone().into_boxed_slice(),
            path: item.path.clone(),
            target: item.entry.link_target.clone().map(Vec::into_boxed_slice),
        }
    }
}

/// One list the generator has not finished yet, packed: each entry is its kind code, its
/// name and, for a symlink, its target, NUL-terminated (a regular file's size follows its
/// name), in one arena. An entry of a
/// directory's list is read from the directory's path joined with the name's last
/// component; the first list keeps its paths as given.
#[derive(Debug)]
struct Flist {
    ndx_start: usize,
    /// How many lists were sent before this one.
    num: usize,
    /// The directory whose contents this is (the top `.` for the first list, if any).
    parent: Option<Sent>,
    arena: Vec<u8>,
    offsets: Vec<u32>,
    /// The first list's source paths (others derive theirs from `parent`).
    paths: Vec<PathBuf>,
    explicit_paths: bool,
    /// Each entry's size, mtime and its nanoseconds (kept for `--remove-source-files`).
    stats: Vec<(u64, i64, u32)>,
    keep_stat: bool,
    /// Each regular file's `-c` checksum by its place in the list, kept for `%C`.
    sums: std::collections::HashMap<usize, Vec<u8>>,
    keep_sums: bool,
}

impl Flist {
    fn len(&self) -> usize {
        self.offsets.len()
    }

    fn push(&mut self, item: &Item) -> Result<()> {
        let at = u32::try_from(self.arena.len())
            .map_err(|_| crate::error::Error::Unsupported("directory too large".into()))?;
        self.offsets.push(at);
        self.arena.push(super::streamed::kind_code(item.entry.kind));
        self.arena.extend_from_slice(&item.entry.name);
        self.arena.push(0);
        super::streamed::push_size(&mut self.arena, &item.entry);
        if item.entry.kind == FileKind::Symlink {
            self.arena
                .extend_from_slice(item.entry.link_target.as_deref().unwrap_or_default());
            self.arena.push(0);
        }
        if self.explicit_paths {
            self.paths.push(item.path.clone());
        }
        if self.keep_stat {
            let e = &item.entry;
            self.stats.push((e.size, e.mtime, e.mtime_nsec));
        }
        if let Some(sum) = item.entry.checksum.as_ref().filter(|_| self.keep_sums) {
            self.sums.insert(self.offsets.len() - 1, sum.clone());
        }
        Ok(())
    }

    fn str_at(&self, at: usize) -> &[u8] {
        let tail = &self.arena[at..];
        &tail[..tail.iter().position(|&b| b == 0).unwrap_or(tail.len())]
    }

    fn kind(&self, i: usize) -> FileKind {
        super::streamed::code_kind(self.arena[self.offsets[i] as usize])
    }

    fn name(&self, i: usize) -> &[u8] {
        self.str_at(self.offsets[i] as usize + 1)
    }

    fn target(&self, i: usize) -> Option<&[u8]> {
        let at = self.offsets[i] as usize;
        (self.kind(i) == FileKind::Symlink).then(|| self.str_at(at + 1 + self.name(i).len() + 1))
    }

    fn size(&self, i: usize) -> Option<u64> {
        let at = self.offsets[i] as usize;
        (self.kind(i) == FileKind::Regular)
            .then(|| super::streamed::size_at(&self.arena, at + 1 + self.name(i).len()))
    }

    fn path(&self, i: usize) -> Cow<'_, Path> {
        match &self.parent {
            Some(dir) if !self.explicit_paths => {
                let name = self.name(i);
                let base = name.rsplit(|&b| b == b'/').next().unwrap_or(name);
                Cow::Owned(dir.path.join(std::ffi::OsStr::from_bytes(base)))
            }
            _ => Cow::Borrowed(&self.paths[i]),
        }
    }
}

/// A sender message's paths relative to the module, as stock's `full_fname` shows them from
/// the directory it stat'ed in: `"/DIR/NAME"` for a source inside a directory, `"NAME"` for
/// one at the module's top.
pub(crate) fn module_relative(text: &str, prefix: &str) -> String {
    let text = text.replace(prefix, "");
    // A directory it could not enter shows as named, relative to the module.
    if let Some(rest) = text.strip_prefix("rsync: [sender] change_dir \"/") {
        return format!("rsync: [sender] change_dir \"{rest}");
    }
    let Some(open) = text.find("\"/") else {
        return text;
    };
    let name = &text[open + 2..];
    match name.find('"') {
        Some(close) if !name[..close].contains('/') => {
            format!("{}\"{}", &text[..open], name)
        }
        _ => text,
    }
}

/// A `-R` sender message's path (module prefix already removed), as stock's `full_fname`
/// shows it: relative to the directory before a source's `/./` marker, which it entered
/// (`"/DIR/NAME"`), or to the module's root when no source named one (`"NAME"`).
pub(crate) fn relative_shown(text: &str, sources: &[String]) -> String {
    let Some(open) = text.find("\"/") else {
        return text.to_string();
    };
    let name = &text[open + 2..];
    let entered = sources.iter().any(|s| {
        let s = s.strip_prefix("./").unwrap_or(s);
        s.split_once("/./")
            .is_some_and(|(dir, _)| name.starts_with(&format!("{dir}/")))
    });
    if entered {
        text.to_string()
    } else {
        format!("{}\"{name}", &text[..open])
    }
}

/// `text` with ` (in MODULE)` after its first quoted name.
pub(crate) fn in_module(text: &str, module: &str) -> String {
    let Some(open) = text.find('"') else {
        return text.to_string();
    };
    let Some(close) = text[open + 1..].find('"').map(|i| open + 1 + i) else {
        return text.to_string();
    };
    format!("{} (in {module}){}", &text[..=close], &text[close + 1..])
}

/// An entry for a list, with what `-R` keeps for the entry's own list.
struct Member {
    item: Item,
    /// `-R`: the base directory of the source it comes from (what precedes `/./`).
    base: Vec<u8>,
    /// `-R`: an implied parent directory.
    implied: bool,
    /// `-R`: what lies below this implied directory, per source (next component first).
    below: Vec<Vec<Item>>,
}

impl Member {
    fn plain(item: Item, base: &[u8]) -> Member {
        Member {
            item,
            base: base.to_vec(),
            implied: false,
            below: Vec::new(),
        }
    }

    /// Whether the directory has a list of its own: its contents (the top `.` of a `dir/`
    /// source has them in the first list), or names below it (`-R`).
    fn lists_own(&self) -> bool {
        (self.item.descend && self.item.entry.name != b".") || !self.below.is_empty()
    }
}

/// Places `-R` sources in one list as stock does: each chain is an implied directory or a
/// source, followed by what lies below it. An implied directory is listed anew unless it
/// is the one listed last (same name, same base), which then takes the rest of the chain
/// too; so sources that are not consecutive list their parent twice (`a/1 b/2 a/3`).
fn place(chains: Vec<Vec<Item>>, base: &[u8], out: &mut Vec<Member>, last: &mut Option<usize>) {
    for mut chain in chains {
        if chain.is_empty() {
            continue;
        }
        let rest = chain.split_off(1);
        let Some(head) = chain.pop() else { continue };
        if !head.entry.is_dir() || head.entry.top_dir {
            // A source of its own.
            out.push(Member::plain(head, base));
            continue;
        }
        if let Some(m) = last
            .and_then(|i| out.get_mut(i))
            .filter(|m| m.base == base && m.item.entry.name == head.entry.name)
        {
            if !rest.is_empty() {
                m.below.push(rest);
            }
            continue;
        }
        *last = Some(out.len());
        out.push(Member {
            item: head,
            base: base.to_vec(),
            implied: true,
            below: if rest.is_empty() {
                Vec::new()
            } else {
                vec![rest]
            },
        });
    }
}

/// A directory whose list is still to be sent: with `-R`, same-named directories listed
/// together get one list, announced by the first (stock's duplicate directories).
struct Pending {
    dir_ndx: i32,
    members: Vec<Member>,
}

/// A level of the depth-first walk: how many directories were entered for it (none for the
/// command line) and its subdirectories still to be listed, in sorted order.
struct Frame {
    entered: usize,
    pending: VecDeque<Pending>,
}

/// Whether a push can ask for incremental recursion: [`lists_supported`], without the
/// options that make the receiver need the whole list first.
pub fn possible(opts: &Options, sources: &[String]) -> bool {
    opts.incremental_recursion() && lists_supported(opts, sources)
}

/// Whether [`IncList`] can send `sources` the way stock would under incremental recursion:
/// recursive, no `--files-from` (stock sends its names in one list), and a top level that
/// is one `dir/` source or sources of distinct names (merged source directories are sent
/// differently), or `-R` sources as [`relative_lists_supported`] allows.
pub fn lists_supported(opts: &Options, sources: &[String]) -> bool {
    if !opts.recursive || opts.files_from.is_some() || sources.is_empty() {
        return false;
    }
    if opts.relative {
        return relative_lists_supported(sources);
    }
    if sources.iter().any(|s| is_dot(s)) {
        return sources.len() == 1;
    }
    let mut names: Vec<&str> = sources
        .iter()
        .map(|s| s.rsplit('/').next().unwrap_or(s))
        .collect();
    names.sort_unstable();
    names.windows(2).all(|w| w[0] != w[1]) && !names.contains(&"..")
}

/// A source naming a directory's contents (`dir/`, `.`): the first list holds them.
fn is_dot(s: &str) -> bool {
    s.is_empty() || s.ends_with('/') || s == "." || s.ends_with("/.")
}

/// `sources` without the `dir/` ones that are not directories here: they only add an
/// error, and the rest is listed as if they were not given (for [`lists_supported`] on
/// the side that reads them).
pub fn readable_sources(sources: &[String]) -> Vec<String> {
    sources
        .iter()
        .filter(|s| {
            !is_dot(s) || std::fs::metadata(crate::argtext::path(s)).is_ok_and(|m| m.is_dir())
        })
        .cloned()
        .collect()
}

/// Whether [`IncList`] lists `-R` sources as stock would: not the base directory itself
/// (`-R .`) beside other sources, and no `..` (stock refuses it).
fn relative_lists_supported(sources: &[String]) -> bool {
    sources.iter().all(|s| {
        let (_, rel) = rtsync_tree::scan::relative_parts(s.as_bytes());
        if rel.is_empty() {
            return sources.len() == 1;
        }
        !rel.split(|&c| c == b'/').any(|c| c == b"..")
    })
}

/// Where scan problems go.
pub enum Problems {
    /// Printed here, as a pushing client's sender does (stock's wording).
    Print,
    /// Queued for the peer as messages (a sending server), with `strip` (a daemon module's
    /// root and `/`) taken out of their text, and ` (in MODULE)` after the name in errors
    /// and warnings, as stock names files in a module.
    Send {
        strip: Option<String>,
        module: Option<String>,
    },
}

/// What [`IncList::start`] needs besides the sources.
pub struct IncConfig<'a> {
    pub opts: &'a Options,
    pub sopts: &'a ScanOptions,
    pub neg: &'a Negotiated,
    pub fopts: FlistOptions,
    pub problems: Problems,
    /// Symlinks may be followed only beneath this root (a daemon module).
    pub confine: Option<rtsync_tree::Confine>,
    /// io_error bits of problems reported before the list (dropped sources).
    pub io_error: i32,
    /// Changes an entry (read from the path given) before it is sent.
    pub adjust: Option<Adjust<'a>>,
}

/// A change made to each entry before it is sent.
pub type Adjust<'a> = Box<dyn FnMut(&mut FileEntry, &Path) + 'a>;

/// The sending side's lists under incremental recursion.
pub struct IncList<'a, F: ScanFilter> {
    opts: &'a Options,
    neg: &'a Negotiated,
    scanner: Scanner<'a, F>,
    enc: FlistEncoder,
    frames: Vec<Frame>,
    next_dir_ndx: i32,
    flists: VecDeque<Flist>,
    next_ndx_start: usize,
    /// Index in `flists` of the list the generator is working on.
    current: usize,
    /// Entries in the lists after `current`.
    ahead: usize,
    eof: bool,
    io_error: i32,
    /// Bits reported before the first list (they go into its end marker).
    early_io_error: i32,
    problems: Problems,
    /// Messages for the peer not yet sent ([`Problems::Send`]).
    messages: Vec<(MsgTag, String)>,
    adjust: Option<Adjust<'a>>,
    /// Total size of the regular files and symlinks listed (statistics).
    pub total_size: u64,
    /// Entries listed per kind (indexed like [`super::streamed::code_kind`]).
    pub kind_counts: [u64; 7],
    /// Lists sent, and the entries in them (`--progress`).
    lists_sent: usize,
    listed: u64,
    /// The sources as given (`-R` messages show paths relative to them).
    sources: Vec<String>,
    /// Transfer errors met while listing (each makes the exit code 23, as stock's
    /// got_xfer_error; a missing name is one without an io_error bit).
    pub xfer_errors: u64,
}

impl<'a, F: ScanFilter> IncList<'a, F> {
    /// Scans the command-line level and appends the first list to `out`.
    pub fn start(
        cfg: IncConfig<'a>,
        sources: &[PathBuf],
        filter: &'a mut F,
        out: &mut Vec<u8>,
    ) -> Result<IncList<'a, F>> {
        let mut list = IncList {
            opts: cfg.opts,
            neg: cfg.neg,
            scanner: Scanner::new(cfg.sopts, filter).confined(cfg.confine),
            enc: FlistEncoder::new(cfg.fopts),
            frames: Vec::new(),
            next_dir_ndx: 0,
            flists: VecDeque::new(),
            next_ndx_start: 1,
            current: 0,
            ahead: 0,
            eof: false,
            io_error: 0,
            early_io_error: cfg.io_error,
            problems: cfg.problems,
            messages: Vec::new(),
            adjust: cfg.adjust,
            total_size: 0,
            kind_counts: [0; 7],
            lists_sent: 0,
            listed: 0,
            sources: sources
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect(),
            xfer_errors: 0,
        };
        let mut members = Vec::new();
        let mut dot_entered = false;
        // `-R`: each source with its implied parents, placed as stock does.
        let mut last_implied = None;
        for source in sources {
            let (base, tops) = if list.opts.relative {
                let (base, _) = rtsync_tree::scan::relative_parts(source.as_os_str().as_bytes());
                (base.to_vec(), list.scanner.top_chain(source))
            } else {
                (Vec::new(), list.scanner.top(std::slice::from_ref(source)))
            };
            let mut chain = Vec::new();
            for top in tops {
                if top.entry.name == b"." && top.descend {
                    // A `dir/` source: its contents belong to the first list.
                    let children = list.scanner.enter(&top);
                    dot_entered = children.is_some();
                    members.push(Member::plain(top, &base));
                    members.extend(
                        children
                            .unwrap_or_default()
                            .into_iter()
                            .map(|c| Member::plain(c, &base)),
                    );
                } else if !list.opts.relative {
                    members.push(Member::plain(top, &base));
                } else if top.entry.name == b"." {
                    // `.` of a `./NAME` source: implied, once, in the first list.
                    members.push(Member {
                        implied: true,
                        ..Member::plain(top, &base)
                    });
                } else {
                    chain.push(top);
                }
            }
            place(vec![chain], &base, &mut members, &mut last_implied);
        }
        let (dot, tops): (Vec<Pending>, Vec<Pending>) = list
            .send_list(members, None, None, out)?
            .into_iter()
            .partition(|p| {
                let m = &p.members[0];
                !m.item.entry.top_dir && !m.implied
            });
        list.frames.push(Frame {
            entered: 0,
            pending: tops.into(),
        });
        if dot_entered {
            list.frames.push(Frame {
                entered: 1,
                pending: dot.into(),
            });
        }
        // The generator starts on the first list.
        list.ahead = 0;
        Ok(list)
    }

    /// The io_error bits of the problems met so far.
    pub fn io_error(&self) -> i32 {
        self.io_error | self.early_io_error
    }

    /// Prints or queues `problems`; returns their io_error bits.
    fn report(&mut self, problems: &[ScanProblem]) -> i32 {
        let (messages, bits) = crate::push_client::problem_messages(problems);
        self.xfer_errors += crate::push_client::xfer_errors(&messages);
        match &self.problems {
            Problems::Print => {
                for (tag, text) in &messages {
                    crate::mux::MessageHandler::message(
                        &mut crate::mux::PrintMessages,
                        *tag,
                        text.as_bytes(),
                    );
                }
            }
            Problems::Send { strip, module } => {
                self.messages
                    .extend(messages.into_iter().map(|(tag, text)| {
                        let mut text = match strip {
                            Some(s) if self.opts.relative => {
                                relative_shown(&text.replace(s.as_str(), ""), &self.sources)
                            }
                            Some(s) => module_relative(&text, s),
                            None => text,
                        };
                        if let (Some(m), MsgTag::ErrorXfer | MsgTag::Warning) = (module, tag) {
                            text = in_module(&text, m);
                        }
                        (tag, text)
                    }));
            }
        }
        bits
    }

    /// Sorts `items`, appends them as one list (a sub-list of `dir` when given) and returns
    /// the directories whose own lists are still to come, in sorted order.
    fn send_list(
        &mut self,
        mut items: Vec<Member>,
        dir: Option<(i32, &mut NdxWriter)>,
        parent: Option<Sent>,
        out: &mut Vec<u8>,
    ) -> Result<Vec<Pending>> {
        // (Stable: same-named `-R` directories stay in the order listed.)
        items.sort_by(|a, b| {
            compare_names(
                &a.item.entry.name,
                a.item.entry.is_dir(),
                &b.item.entry.name,
                b.item.entry.is_dir(),
            )
        });
        if let Some((dir_ndx, ndxw)) = dir {
            ndxw.put(out, NDX_FLIST_OFFSET - dir_ndx);
        }
        let ndx_start = self.next_ndx_start;
        let first = parent.is_none();
        let mut list = Flist {
            ndx_start,
            num: self.lists_sent,
            parent,
            arena: Vec::new(),
            offsets: Vec::with_capacity(items.len()),
            paths: Vec::new(),
            // (`-R` lists mix names from several sources.)
            explicit_paths: first || self.opts.relative,
            stats: Vec::new(),
            keep_stat: self.opts.remove_source_files,
            sums: std::collections::HashMap::new(),
            keep_sums: super::keeps_list_sums(self.opts),
        };
        let mut pending: Vec<Pending> = Vec::new();
        let mut last_dir: Option<Vec<u8>> = None;
        self.enc.set_list_start(ndx_start);
        for (i, mut member) in items.into_iter().enumerate() {
            let item = &mut member.item;
            crate::client::apply_chmod(self.opts, std::slice::from_mut(&mut item.entry));
            if let Some(adjust) = self.adjust.as_mut() {
                adjust(&mut item.entry, &item.path);
            }
            if self.opts.checksum && item.entry.kind == FileKind::Regular {
                item.entry.checksum = crate::push_client::file_sum(&item.path, self.neg).ok();
            }
            if member.implied {
                self.enc.put_entry_as(
                    out,
                    &item.entry,
                    ndx_start + i,
                    crate::flist::Content::Implied,
                )?;
            } else {
                self.enc
                    .put_entry_inc(out, &item.entry, ndx_start + i, item.descend)?;
            }
            let code = super::streamed::kind_code(item.entry.kind);
            self.kind_counts[usize::from(code)] += 1;
            if matches!(item.entry.kind, FileKind::Regular | FileKind::Symlink) {
                self.total_size += item.entry.size;
            }
            if first && item.entry.name == b"." && list.parent.is_none() {
                // The first list's `ndx_start - 1` names its top `.`.
                list.parent = Some(Sent::of(item));
            }
            list.push(item)?;
            if item.entry.is_dir() {
                let dir_ndx = self.next_dir_ndx;
                self.next_dir_ndx += 1;
                // A directory named as the one before (`-R` only) shares its list.
                let same = last_dir.as_deref() == Some(&item.entry.name[..]);
                match pending.last_mut() {
                    Some(group) if same => group.members.push(member),
                    _ => {
                        last_dir = Some(item.entry.name.clone());
                        pending.push(Pending {
                            dir_ndx,
                            members: vec![member],
                        });
                    }
                }
            }
        }
        pending.retain(|g| g.members.iter().any(Member::lists_own));
        let problems = self.scanner.take_problems();
        let mut bits = self.report(&problems);
        if first {
            bits |= self.early_io_error;
        }
        let changed = bits & !self.io_error != 0;
        self.io_error |= bits;
        // `--ignore-errors`: the receiver is not told (it deletes all the same).
        let told = changed && !self.opts.ignore_errors;
        self.enc.put_end(out, if told { self.io_error } else { 0 });
        self.next_ndx_start = ndx_start + list.len() + 1;
        self.lists_sent += 1;
        self.listed += list.len() as u64;
        self.ahead += list.len();
        self.flists.push_back(list);
        Ok(pending)
    }

    /// Whether another list should go out now (`idle`: nothing from the peer is waiting).
    pub fn want_more(&self, idle: bool) -> bool {
        let target = if idle { MAX_LOOKAHEAD } else { MIN_LOOKAHEAD };
        !self.eof && self.ahead < target
    }

    /// Appends the next directory's list to `out`, or `NDX_FLIST_EOF` when all are sent.
    pub fn send_next(&mut self, out: &mut Vec<u8>, ndxw: &mut NdxWriter) -> Result<()> {
        while let Some(frame) = self.frames.last_mut() {
            let Some(next) = frame.pending.pop_front() else {
                for _ in 0..self.frames.pop().map_or(0, |f| f.entered) {
                    self.scanner.leave();
                }
                continue;
            };
            let parent = Sent::of(&next.members[0].item);
            let mut children = Vec::new();
            let mut entered = 0;
            let mut last_implied = None;
            let mut prev: Option<(Vec<u8>, bool)> = None;
            for m in next.members {
                // A same-named directory from the same base was read already.
                let read = prev.as_ref().is_some_and(|(b, c)| *c && *b == m.base);
                let content = m.item.descend && !read;
                if content {
                    if let Some(found) = self.scanner.enter(&m.item) {
                        entered += 1;
                        children.extend(found.into_iter().map(|c| Member::plain(c, &m.base)));
                    }
                }
                // `-R`: the names below an implied directory.
                place(m.below, &m.base, &mut children, &mut last_implied);
                prev = Some((m.base, content));
            }
            let pending =
                self.send_list(children, Some((next.dir_ndx, ndxw)), Some(parent), out)?;
            if entered > 0 || !pending.is_empty() {
                self.frames.push(Frame {
                    entered,
                    pending: pending.into(),
                });
            }
            return Ok(());
        }
        ndxw.put(out, NDX_FLIST_EOF);
        self.eof = true;
        Ok(())
    }

    /// The generator asked for `ndx`: it works on that list now.
    pub fn note_request(&mut self, ndx: usize) {
        let k = self.list_of(ndx).unwrap_or(self.current);
        while self.current < k {
            self.current += 1;
            self.ahead = self.ahead.saturating_sub(self.flists[self.current].len());
        }
    }

    /// The generator finished the oldest list. True when lists remain (the `NDX_DONE` is
    /// echoed and the phase goes on).
    pub fn retire(&mut self) -> bool {
        if self.flists.pop_front().is_none() {
            return false;
        }
        if self.current == 0 {
            if let Some(next) = self.flists.front() {
                self.ahead = self.ahead.saturating_sub(next.len());
            }
        } else {
            self.current -= 1;
        }
        !self.flists.is_empty()
    }

    /// Index in `flists` of the list that `ndx` belongs to (`ndx_start - 1` included).
    fn list_of(&self, ndx: usize) -> Option<usize> {
        let k = self
            .flists
            .partition_point(|f| f.ndx_start - 1 <= ndx)
            .checked_sub(1)?;
        let f = &self.flists[k];
        (ndx < f.ndx_start + f.len()).then_some(k)
    }

    /// The list holding `ndx`, and the entry's position in it (`None`: the list's own
    /// directory).
    fn locate(&self, ndx: usize) -> Option<(&Flist, Option<usize>)> {
        let f = &self.flists[self.list_of(ndx)?];
        if ndx + 1 == f.ndx_start {
            f.parent.as_ref().map(|_| (f, None))
        } else {
            Some((f, Some(ndx - f.ndx_start)))
        }
    }

    fn get(&self, ndx: usize) -> (&Flist, Option<usize>) {
        self.locate(ndx).expect("index checked by valid()")
    }
}

impl<F: ScanFilter> super::SendSource for IncList<'_, F> {
    fn count(&self) -> usize {
        self.flists.back().map_or(0, |f| f.ndx_start + f.len())
    }
    fn valid(&self, ndx: i32) -> bool {
        ndx >= 0 && self.locate(ndx as usize).is_some()
    }
    fn kind(&self, ndx: usize) -> FileKind {
        match self.get(ndx) {
            (f, Some(i)) => f.kind(i),
            (f, None) => f.parent.as_ref().map_or(FileKind::Directory, |p| p.kind),
        }
    }
    fn name(&self, ndx: usize) -> &[u8] {
        match self.get(ndx) {
            (f, Some(i)) => f.name(i),
            (f, None) => f.parent.as_ref().map_or(&b""[..], |p| &p.name),
        }
    }
    fn link_target(&self, ndx: usize) -> Option<&[u8]> {
        match self.get(ndx) {
            (f, Some(i)) => f.target(i),
            (f, None) => f.parent.as_ref().and_then(|p| p.target.as_deref()),
        }
    }
    fn size(&self, ndx: usize) -> Option<u64> {
        match self.get(ndx) {
            (f, Some(i)) => f.size(i),
            (_, None) => None,
        }
    }
    fn source_path(&self, ndx: usize) -> Cow<'_, Path> {
        match self.get(ndx) {
            (f, Some(i)) => f.path(i),
            (f, None) => f
                .parent
                .as_ref()
                .map_or(Cow::Borrowed(Path::new("")), |p| Cow::Borrowed(&p.path)),
        }
    }
    fn listed_stat(&self, ndx: usize) -> Option<(u64, i64, u32)> {
        match self.get(ndx) {
            (f, Some(i)) => f.stats.get(i).copied(),
            (_, None) => None,
        }
    }
    fn list_sum(&self, ndx: usize) -> Option<&[u8]> {
        match self.get(ndx) {
            (f, Some(i)) => f.sums.get(&i).map(Vec::as_slice),
            (_, None) => None,
        }
    }
    fn want_more(&self, idle: bool) -> bool {
        IncList::want_more(self, idle)
    }
    fn send_next(&mut self, out: &mut Vec<u8>, ndxw: &mut NdxWriter) -> Result<()> {
        IncList::send_next(self, out, ndxw)
    }
    fn note_request(&mut self, ndx: usize) {
        IncList::note_request(self, ndx)
    }
    fn retire(&mut self) -> bool {
        IncList::retire(self)
    }
    fn take_messages(&mut self) -> Vec<(MsgTag, String)> {
        std::mem::take(&mut self.messages)
    }
    fn progress_at(&self, ndx: usize) -> (u64, u64, bool) {
        // Stock numbers list k from the start of list k plus k + 1 (a gap per list).
        let num = self.list_of(ndx).map_or(0, |k| self.flists[k].num);
        (
            (ndx as u64).saturating_sub(num as u64 + 1),
            self.listed,
            self.eof,
        )
    }
    fn total_size(&self) -> Option<u64> {
        Some(self.total_size)
    }
    fn list_end(&self) -> Option<(u64, u64, bool)> {
        let f = self.flists.get(self.current)?;
        // (A list's last entry, numbered without the gaps, as in `progress_at`.)
        let last = (f.ndx_start + f.len()) as u64;
        Some((last.saturating_sub(f.num as u64 + 2), self.listed, self.eof))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(args: &str) -> Options {
        let v: Vec<std::ffi::OsString> = args.split_whitespace().map(Into::into).collect();
        Options::parse(&v).unwrap()
    }

    #[test]
    fn asked_for_only_where_the_list_handling_is_the_same() {
        let srcs = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(possible(&opts("-a"), &srcs(&["src/"])));
        assert!(possible(
            &opts("-a --delete"),
            &srcs(&["a", "b/c", "f.txt"])
        ));
        assert!(!possible(&opts("-a"), &srcs(&["a/", "b/"])));
        assert!(!possible(&opts("-a"), &srcs(&["x/a", "y/a"])));
        assert!(!possible(&opts("-a"), &srcs(&["a", "b/"])));
        assert!(possible(&opts("-aH"), &srcs(&["src/"])));
        // -R: stock's lists (parents repeated for sources that are not consecutive), but
        // not `..` nor the base itself beside other sources.
        assert!(possible(&opts("-aR"), &srcs(&["a/1", "b", "a/2", "./c/d"])));
        assert!(!possible(&opts("-aR"), &srcs(&["a/../b"])));
        assert!(!possible(&opts("-aR"), &srcs(&[".", "a"])));
        assert!(possible(&opts("-aR"), &srcs(&["/x/./"])));
        for no in [
            "-a --delete-after",
            "-a --delete-before",
            "-a --no-i-r",
            "-lpt",
        ] {
            assert!(!possible(&opts(no), &srcs(&["src/"])), "{no}");
        }
    }

    #[test]
    fn module_names_follow_the_file_name() {
        assert_eq!(
            in_module(
                "rsync: [sender] link_stat \"x/y\" failed: No such file (2)\n",
                "m"
            ),
            "rsync: [sender] link_stat \"x/y\" (in m) failed: No such file (2)\n"
        );
        assert_eq!(in_module("no name\n", "m"), "no name\n");
    }

    #[test]
    fn the_offer_goes_after_the_dot_of_the_capabilities() {
        let mut args: Vec<String> = ["--server", "-logDtpre.LsfxCIvu", "--delete", "."]
            .iter()
            .map(|s| s.to_string())
            .collect();
        crate::server_args::offer_inc_recurse(&mut args);
        assert_eq!(args[1], "-logDtpre.iLsfxCIvu");
        assert_eq!(args[2], "--delete");
    }
}
