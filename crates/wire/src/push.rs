//! The client as sender: send the file list, then answer the receiver's generator — read each
//! request's sum header and block sums, match the file against them, send tokens and the
//! whole-file checksum. Only files from the list we sent are ever opened (CVE-2024-12086):
//! an index is the only thing the peer chooses.
//!
//! Message flow at protocol 31 (generator → us, us → receiver):
//! ```text
//! gen: [ndx iflags sumhead sums]* DONE [redo]* DONE DONE [DEL_STATS] DONE        DONE
//! us:  [ndx iflags sumhead tokens sum]* DONE [redo data]* DONE     DONE     DONE
//! ```

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use rtsync_delta::{MatchToken, Signature, TokenEncoder};
use rtsync_engine::itemize::Itemize;
use rtsync_engine::report::{ItemFacts, Reporter};
use rtsync_tree::{FileEntry, FileKind};

use crate::blocksum::block_hasher;
use crate::error::{Error, Result};
use crate::mux::{MsgTag, MuxReader, MuxWriter};
use crate::ndx::{NdxReader, NdxWriter, NDX_DEL_STATS, NDX_DONE};
use crate::negotiate::Negotiated;
use crate::sums::{item, SumHead};
use crate::varint::ReadWire;

pub mod inc;
pub mod streamed;
pub mod walk;
mod whole;

/// What the transfer phase needs of the list we sent, by the receiver's index.
pub trait SendSource {
    /// Number of entries.
    fn count(&self) -> usize;
    fn kind(&self, ndx: usize) -> FileKind;
    /// The file-list name.
    fn name(&self, ndx: usize) -> &[u8];
    /// A symlink's target (for item lines).
    fn link_target(&self, ndx: usize) -> Option<&[u8]>;
    /// Where the entry is read from.
    fn source_path(&self, ndx: usize) -> Cow<'_, Path>;
    /// `-c`: the checksum the entry was listed with, when kept for `%C`
    /// ([`keeps_list_sums`]).
    fn list_sum(&self, _ndx: usize) -> Option<&[u8]> {
        None
    }
    /// What `--out-format` may say of the entry: `%f`, the sender's path, and with `stat` what
    /// the source's inode says now (a compact list keeps no sizes or times).
    fn facts(&self, ndx: usize, stat: bool) -> ItemFacts {
        let path = self.source_path(ndx);
        let mut facts = ItemFacts {
            path: Some(rtsync_engine::report::sender_path(
                path.as_os_str().as_encoded_bytes(),
                self.name(ndx),
            )),
            list_sum: self.list_sum(ndx).map(<[u8]>::to_vec),
            ..ItemFacts::default()
        };
        if let Some(md) = stat
            .then(|| std::fs::symlink_metadata(&path).ok())
            .flatten()
        {
            use std::os::unix::fs::MetadataExt;
            facts.mode = md.mode();
            facts.size = md.size();
            facts.mtime = md.mtime();
            facts.uid = Some(md.uid());
            facts.gid = Some(md.gid());
        }
        facts
    }
    /// A regular file's size as listed (`--append` skips a file that shrank since).
    fn size(&self, _ndx: usize) -> Option<u64> {
        None
    }
    /// Whether `ndx` names an entry still held.
    fn valid(&self, ndx: i32) -> bool {
        ndx >= 0 && (ndx as usize) < self.count()
    }
    /// Incremental recursion: whether another list should be sent before the next request
    /// is read (`idle`: none is waiting in our buffer).
    fn want_more(&self, _idle: bool) -> bool {
        false
    }
    /// Incremental recursion: appends the next list (or the end of the lists) to `out`.
    fn send_next(&mut self, _out: &mut Vec<u8>, _ndxw: &mut NdxWriter) -> Result<()> {
        Ok(())
    }
    /// Incremental recursion: the generator asked for `ndx`.
    fn note_request(&mut self, _ndx: usize) {}
    /// Incremental recursion: the generator finished its oldest list (`NDX_DONE`); true
    /// when that `NDX_DONE` only retires a list (echoed, same phase).
    fn retire(&mut self) -> bool {
        false
    }
    /// What the list said of entry `ndx`: size, mtime and its nanoseconds (for
    /// `--remove-source-files`' check that the file is still the one sent). `None` when the
    /// list did not keep it.
    fn listed_stat(&self, _ndx: usize) -> Option<(u64, i64, u32)> {
        None
    }
    /// Messages for the peer that listing produced (a sending server's scan problems).
    fn take_messages(&mut self) -> Vec<(MsgTag, String)> {
        Vec::new()
    }
    /// Total size of the regular files and symlinks listed, when the list counts it as it
    /// goes (the statistics otherwise use [`PushOptions::total_size`]).
    fn total_size(&self) -> Option<u64> {
        None
    }
    /// `--progress`: entry `ndx`'s position among the entries listed so far (not counting
    /// the gaps between lists' indexes), how many that is, and whether every list is sent.
    fn progress_at(&self, ndx: usize) -> (u64, u64, bool) {
        (ndx as u64, self.count() as u64, true)
    }
    /// `--info=progress2`: the position of the last entry of the list the generator last
    /// asked about (stock's `cur_flist`, which moves on when that list is retired), the
    /// entries listed and whether every list is sent; `None` once every list is retired.
    fn list_end(&self) -> Option<(u64, u64, bool)> {
        let n = self.count() as u64;
        Some((n.saturating_sub(1), n, true))
    }
}

impl SendSource for SendList {
    fn count(&self) -> usize {
        self.entries.len()
    }
    fn kind(&self, ndx: usize) -> FileKind {
        self.entries[ndx].kind
    }
    fn name(&self, ndx: usize) -> &[u8] {
        &self.entries[ndx].name
    }
    fn link_target(&self, ndx: usize) -> Option<&[u8]> {
        self.entries[ndx].link_target.as_deref()
    }
    fn source_path(&self, ndx: usize) -> Cow<'_, Path> {
        Cow::Borrowed(&self.paths[ndx])
    }
    fn facts(&self, ndx: usize, _stat: bool) -> ItemFacts {
        ItemFacts::sent_from(
            &self.entries[ndx],
            self.paths[ndx].as_os_str().as_encoded_bytes(),
        )
    }
    fn listed_stat(&self, ndx: usize) -> Option<(u64, i64, u32)> {
        let e = &self.entries[ndx];
        Some((e.size, e.mtime, e.mtime_nsec))
    }
    fn size(&self, ndx: usize) -> Option<u64> {
        let e = &self.entries[ndx];
        (e.kind == FileKind::Regular).then_some(e.size)
    }
}

impl SendSource for streamed::StreamedList {
    fn count(&self) -> usize {
        self.count()
    }
    fn kind(&self, ndx: usize) -> FileKind {
        self.kind(ndx)
    }
    fn name(&self, ndx: usize) -> &[u8] {
        self.name(ndx)
    }
    fn link_target(&self, ndx: usize) -> Option<&[u8]> {
        self.link_target(ndx)
    }
    fn source_path(&self, ndx: usize) -> Cow<'_, Path> {
        self.source_path(ndx)
    }
    fn listed_stat(&self, ndx: usize) -> Option<(u64, i64, u32)> {
        self.listed_stat(ndx)
    }
    fn size(&self, ndx: usize) -> Option<u64> {
        self.size(ndx)
    }
    fn list_sum(&self, ndx: usize) -> Option<&[u8]> {
        self.list_sum(ndx)
    }
}

/// Whether a compact list keeps each file's `-c` checksum: only for a format showing `%C`
/// (stock's sender shows the listed sum there).
pub(crate) fn keeps_list_sums(opts: &rtsync_engine::Options) -> bool {
    opts.checksum
        && [&opts.out_format, &opts.log_file_format].iter().any(|f| {
            f.as_deref()
                .is_some_and(|f| rtsync_engine::report::format_has(f, b'C'))
        })
}

/// The list we sent, in the order the receiver indexes it (sorted), with where to read each
/// entry from.
#[derive(Debug, Clone, Default)]
pub struct SendList {
    pub entries: Vec<FileEntry>,
    pub paths: Vec<PathBuf>,
    /// Directories sent only as implied parents of `-R` paths (no content: `--delete` on the
    /// receiver must not touch their other entries).
    pub implied: Vec<bool>,
    /// Directories whose contents are not in the list (no recursion, and not named as
    /// `dir/`): sent as stock sends them, so that a deleting receiver leaves them alone.
    pub no_content: Vec<bool>,
    /// Problems met while scanning, as (message tag, stock's text with newline).
    pub messages: Vec<(crate::mux::MsgTag, String)>,
}

impl SendList {
    /// Marks implied directories: with `-R`, a directory that was not named itself and does
    /// not lie inside a named directory being recursed into.
    pub fn mark_implied(&mut self, relative: bool, recursive: bool) {
        self.implied = vec![false; self.entries.len()];
        if !relative {
            return;
        }
        let tops: Vec<&[u8]> = self
            .entries
            .iter()
            .filter(|e| e.is_dir() && e.top_dir)
            .map(|e| &e.name[..])
            .collect();
        for (i, e) in self.entries.iter().enumerate() {
            if !e.is_dir() || e.top_dir || e.name == b"." {
                continue;
            }
            let inside_top = recursive
                && tops.iter().any(|t| {
                    *t == b"." || (e.name.starts_with(t) && e.name.get(t.len()) == Some(&b'/'))
                });
            self.implied[i] = !inside_top;
        }
    }
}

/// Counters of a push.
#[derive(Debug, Clone, Default)]
pub struct PushStats {
    /// Files the receiver asked for, counted as stock's sender counts them: before it opens
    /// each (one it then cannot read counts too).
    pub files_sent: u64,
    /// Their listed sizes (stock's total_transferred_size).
    pub transferred_size: u64,
    pub literal_bytes: u64,
    pub matched_bytes: u64,
    /// Files that could not be read (exit code 23).
    pub errors: u64,
    /// Deletions the receiver reported (NDX_DEL_STATS), total.
    pub deleted: u64,
    /// The last NDX_DEL_STATS values (files, dirs, symlinks, devices, specials).
    pub deleted_stats: Option<[i32; 5]>,
    /// Items the receiver created (its `ITEM_IS_NEW`), per kind (reg, dir, link, dev,
    /// special), as stock's sender counts them for `--stats`.
    pub created: [u64; 5],
    /// The matcher's counters (`--debug=deltasum`): block matches, hash hits, false alarms.
    pub matches: u64,
    pub hash_hits: u64,
    pub false_alarms: u64,
    /// Bytes read and written when the last phase was over, before the goodbye: what stock's
    /// sending client reports as `received` and `sent`.
    pub totals: Option<(u64, u64)>,
    /// What the lists held (stock's `total_size`), as a server tells its client.
    pub total_size: u64,
}

/// The receiver's basis is the destination file itself (stock's `FNAMECMP_FNAME`; also what
/// no basis type in the item flags means).
pub(crate) const FNAMECMP_FNAME: u8 = 0x80;
/// The receiver's basis is a partial file in `--partial-dir`.
const FNAMECMP_PARTIAL_DIR: u8 = 0x81;

/// Options of the sending side.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    pub verbose: u32,
    pub compress_level: Option<i32>,
    /// We are the server: send statistics after the last phase and echo deletion stats.
    pub server: bool,
    /// Total size of the regular files and symlinks in the list (for the statistics).
    pub total_size: i64,
    /// `-L`: sources may be reached through symlinks. Otherwise every file is opened with
    /// O_NOFOLLOW, so a symlink swapped in after the scan is not followed.
    pub follow_links: bool,
    /// `--open-noatime`: files are opened with O_NOATIME (reading them leaves their access
    /// times alone).
    pub noatime: bool,
    /// A daemon module root: every file is opened through it, so no symlink (followed or
    /// raced in) leads outside (see [`rtsync_tree::Confine`]).
    pub confine: Option<rtsync_tree::Confine>,
    /// Item lines show the itemize string (`-i` or `%i`): sent files are `<f…`. Without it
    /// they are logged as transfers under the receiver's `>` (only the name is printed).
    pub itemize: bool,
    /// No `-t`: a time the receiver reports as set is shown as `T`, not `t`.
    pub untimed: bool,
    /// `--append` (1) or `--append-verify` (2): a request's sum header gives the receiver's
    /// length, no block sums follow, and only the data past it is sent (the checksum of
    /// `--append-verify` covering the whole file). A file's second request (the redo after a
    /// failed verification) is an ordinary one.
    pub append: u8,
    /// `--inplace`: the receiver updates the basis file in place.
    pub inplace: bool,
    /// `-n`: the receiver's requests carry no sums and we send no data, only the request
    /// back (stock's `!do_xfers`).
    pub dry_run: bool,
    /// A server's file-list build and transfer times in milliseconds (sent with its
    /// statistics; stock's client prints them with `--stats`).
    pub flist_times: (i64, i64),
    /// The connection's byte counters: for the statistics a server sends, and what a
    /// client reports.
    pub counts: Option<ByteCounts>,
    /// `--remove-source-files`: remove each file the receiver reports in place (MSG_SUCCESS)
    /// if it is still the file that was listed.
    pub remove_source: bool,
    /// `--info=remove` (or `-vv`): say `sender removed NAME`.
    pub info_remove: bool,
    /// `--debug=deltasum` (or `-vv`): the closing `total: matches=…` line (a server sends
    /// it to the client).
    pub match_report: bool,
    /// `--stats` with `-vv` (stats3), a client: the sender's heap statistics, printed as
    /// its last phase ends (before the receiving server's own arrive).
    pub heap_report: bool,
    /// `-X`: the receiver may ask for abbreviated attribute values after an item's flags.
    pub xattrs: Option<rtsync_tree::xattr::XattrRules>,
    /// Serving this daemon module (and whether it is chrooted into): a file that cannot be
    /// opened is named as stock's `full_fname` names it, relative to the module and
    /// followed by ` (in MODULE)`.
    pub module: Option<(String, bool)>,
    /// A server's transfer log (a daemon's `transfer logging`, `--log-file`).
    pub transfer_log: Option<rtsync_engine::report::TransferLog>,
}

/// Bytes read from and written to the connection so far.
#[derive(Debug, Clone, Default)]
pub struct ByteCounts {
    pub read: std::sync::Arc<std::sync::atomic::AtomicU64>,
    pub written: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// Serves the receiver's requests until the final goodbye.
pub fn run_push<R: Read, W: Write, S: SendSource + ?Sized>(
    r: &mut MuxReader<R>,
    w: &mut MuxWriter<W>,
    neg: &Negotiated,
    list: &mut S,
    opts: &PushOptions,
    reporter: Option<&mut Reporter>,
) -> Result<PushStats> {
    run_push_pacing(r, w, neg, list, opts, reporter, |_| true)
}

/// [`run_push`], told by `input_pending` whether a request can be read without waiting on
/// the peer. When none can, what we have buffered for the receiver is sent first (as
/// stock's I/O loop does): otherwise the receiver idles on data we hold while we wait for
/// the generator, and the two halves of the daemon no longer overlap.
pub fn run_push_pacing<R: Read, W: Write, S: SendSource + ?Sized>(
    r: &mut MuxReader<R>,
    w: &mut MuxWriter<W>,
    neg: &Negotiated,
    list: &mut S,
    opts: &PushOptions,
    mut reporter: Option<&mut Reporter>,
    input_pending: impl Fn(&mut R) -> bool,
) -> Result<PushStats> {
    let mut stats = PushStats::default();
    let mut ndxr = NdxReader::new(neg.protocol);
    let mut ndxw = NdxWriter::new(neg.protocol);
    let mut enc = TokenEncoder::new(
        neg.compression.unwrap_or(rtsync_delta::Compression::None),
        opts.compress_level,
        neg.protocol,
    )?;
    let wio = |e| Error::io("writing to receiver", e);
    let mut phase = 0;
    let mut out = Vec::new();
    let mut whole = whole::WholeFile::default();
    let sum_kind = block_hasher(neg).kind();
    // Files already sent once: a new request for one is a redo, without append semantics.
    let mut sent_once = std::collections::HashSet::new();
    loop {
        let idle = !r.data_pending(&input_pending)?;
        while list.want_more(idle) {
            list.send_next(&mut out, &mut ndxw)?;
            for (tag, text) in list.take_messages() {
                w.send_msg(tag, text.as_bytes()).map_err(wio)?;
            }
            w.write_all(&out).map_err(wio)?;
            out.clear();
        }
        if idle {
            w.flush().map_err(wio)?;
        }
        let ndx = read_ndx(&mut ndxr, r, &mut stats)?;
        remove_sent(r, w, neg, list, opts, &mut stats)?;
        if ndx == NDX_DONE {
            if let (Some(rep), Some((index, listed, complete))) =
                (reporter.as_deref_mut(), list.list_end())
            {
                let total_size = list.total_size().unwrap_or(opts.total_size as u64);
                rep.list_done(rtsync_engine::report::Progress {
                    transferred: stats.files_sent,
                    index,
                    listed,
                    complete,
                    total_size,
                });
            }
            if list.retire() {
                ndxw.put(&mut out, NDX_DONE);
                w.write_all(&out).map_err(wio)?;
                out.clear();
                continue;
            }
            phase += 1;
            if phase > 2 {
                break;
            }
            ndxw.put(&mut out, NDX_DONE);
            w.write_all(&out).and_then(|_| w.flush()).map_err(wio)?;
            out.clear();
            continue;
        }
        if !list.valid(ndx) {
            return Err(Error::Protocol(format!(
                "Invalid file index: {ndx} (-1 - {})",
                list.count() as i64 - 1
            )));
        }
        let ndx = ndx as usize;
        list.note_request(ndx);
        let iflags = r.read_u16()?;
        let (basis_type, xname) = crate::sums::read_item_extras(r, iflags)?;
        let xattr_nums = match &opts.xattrs {
            Some(rules) if iflags & item::REPORT_XATTR != 0 && !opts.dry_run => {
                Some((rules, crate::xattrs::read_request(r)?))
            }
            _ => None,
        };
        if iflags & item::TRANSFER == 0 || opts.dry_run {
            // Itemized by the receiver but not transferred (or `-n`): logged, and echoed
            // to the receiver, which logs it in turn (a stock client receiver prints it).
            if let Some(rep) = reporter.as_deref_mut() {
                log_item(rep, list, ndx, iflags, xname.as_deref(), opts.look());
            }
            if let Some(tlog) = &opts.transfer_log {
                let (it, suffix) = item_of(list, ndx, iflags, xname.as_deref(), opts.logged_look());
                if tlog.logs(&it) {
                    tlog.item(&it, list.name(ndx), &suffix, &list.facts(ndx, true));
                }
            }
            if iflags & item::IS_NEW != 0 && phase == 0 {
                let kind = if iflags & item::TRANSFER != 0 {
                    FileKind::Regular
                } else {
                    list.kind(ndx)
                };
                stats.created[rtsync_engine::report::kind_slot(kind)] += 1;
            }
            if iflags & item::TRANSFER != 0 {
                stats.files_sent += 1;
                stats.transferred_size += list.size(ndx).unwrap_or(0);
                if let Some(rep) = reporter.as_deref_mut() {
                    count_transfer(rep, list, ndx, opts);
                }
            }
            put_ndx_and_attrs(
                &mut out,
                &mut ndxw,
                ndx,
                iflags,
                basis_type,
                xname.as_deref(),
            )?;
            if let Some((rules, nums)) = &xattr_nums {
                xattr_answer(&mut out, &list.source_path(ndx), rules, nums);
            }
            w.write_all(&out).map_err(wio)?;
            out.clear();
            continue;
        }
        if iflags & item::IS_NEW != 0 && phase == 0 {
            stats.created[0] += 1;
        }
        if list.kind(ndx) != FileKind::Regular {
            return Err(Error::Protocol(format!(
                "receiver asked for non-regular file {}",
                String::from_utf8_lossy(list.name(ndx))
            )));
        }
        let head = SumHead::read(r, neg.checksum.digest_len())?;
        let dhead = rtsync_delta::SumHead::from_wire(
            head.count,
            head.blength,
            head.s2length,
            head.remainder,
            neg.protocol,
            neg.checksum.digest_len(),
        )
        .map_err(|e| Error::Protocol(e.to_string()))?;
        let appending = opts.append > 0 && !sent_once.contains(&ndx);
        let path = list.source_path(ndx);
        stats.files_sent += 1;
        stats.transferred_size += list.size(ndx).unwrap_or(0);
        let file = match open_source(&path, opts, opts.confine.as_ref()) {
            Ok(f) => f,
            Err(err) => {
                if !appending {
                    // The generator's sums are still to be read.
                    Signature::read_sums(dhead, &mut *r)?;
                }
                let msg = format!(
                    "rsync: [sender] send_files failed to open {}: {} ({})\n",
                    shown_path(&path, list.name(ndx), opts.module.as_ref()),
                    crate::client::strerror(&err),
                    err.raw_os_error().unwrap_or(0)
                );
                // (As stock's messages, these overtake the data still buffered for the
                // files before: a client hears of the failure first.)
                if opts.server {
                    // The client reports it and exits 23, as with stock's FERROR_XFER.
                    w.send_msg_ahead(MsgTag::ErrorXfer, msg.as_bytes())
                        .map_err(wio)?;
                } else {
                    eprint!("{msg}");
                }
                stats.errors += 1;
                w.send_msg_ahead(MsgTag::NoSend, &(ndx as i32).to_le_bytes())
                    .map_err(wio)?;
                continue;
            }
        };
        if appending {
            let now = file.metadata().map_or(0, |m| m.len());
            if list.size(ndx).is_some_and(|listed| now < listed) {
                let msg = format!("skipped diminished file: {}\n", path.display());
                if opts.server {
                    w.send_msg(MsgTag::Warning, msg.as_bytes()).map_err(wio)?;
                } else {
                    eprint!("{msg}");
                }
                w.send_msg_int(MsgTag::NoSend, ndx as i32).map_err(wio)?;
                continue;
            }
        }
        put_ndx_and_attrs(
            &mut out,
            &mut ndxw,
            ndx,
            iflags,
            basis_type,
            xname.as_deref(),
        )?;
        if let Some((rules, nums)) = &xattr_nums {
            xattr_answer(&mut out, &list.source_path(ndx), rules, nums);
        }
        // `%b`/`%c`: the data bytes written and read for this file, as stock counts them
        // (everything after the request's index and flags were read).
        let mut wire = WireCount {
            read: head_len(&head, if appending { None } else { Some(&dhead) }),
            written: out.len() as u64,
            sum_hex: None,
        };
        w.write_all(&out).map_err(wio)?;
        out.clear();
        w.file_data(true);
        head.put(&mut out);
        wire.written += out.len() as u64;
        w.write_all(&out).map_err(wio)?;
        out.clear();
        // The file is sent as the size it has now, opened, even if it changes while it is
        // read: cut to it if it grows, zero-filled to it if it shrinks (stock's map_ptr).
        // (A device sent with --copy-devices: what seeking to its end finds.)
        let open_size = rtsync_tree::fsops::content_size(&file).ok().flatten();
        let file_len = open_size.unwrap_or(0);
        if let Some(rep) = reporter.as_deref_mut() {
            count_transfer(rep, list, ndx, opts);
            let (it, _) = item_of(list, ndx, iflags, xname.as_deref(), opts.look());
            let facts = list.facts(ndx, rep.wants_entry_facts());
            rep.transfer_begin(&it, list.name(ndx), &facts);
        }
        // `--progress`: reported after each token, as stock's sender does.
        let mut ticks = rtsync_engine::report::SendTicks::default();
        let mut rep_ticks = reporter.as_deref_mut();
        let mut counted = Counting {
            inner: &mut *w,
            count: 0,
        };
        // The tokens of an unchanged leading part go out every few MiB, so that the
        // receiver works alongside the generator (see `stream_arriving` below).
        let mut unflushed = 0usize;
        let mut emit = |t: rtsync_delta::MatchToken<'_>| {
            if let (Some(rep), Some(ofs)) = (rep_ticks.as_deref_mut(), ticks.token(&t)) {
                rep.transfer_tick(ofs, file_len);
            }
            enc.write(&mut counted, t)?;
            if let MatchToken::Block { data, .. } = t {
                unflushed += data.len();
                if unflushed >= 4 << 20 {
                    unflushed = 0;
                    counted.flush()?;
                }
            }
            Ok(())
        };
        let mut sized = None;
        let ms = if appending {
            whole.send_from(file, sum_kind, head.file_len(), opts.append > 1, &mut emit)?
        } else if dhead.count > 0 && dhead.block_len > 0 {
            let src = sized.insert(rtsync_tree::fsops::SizedSource::new(file, open_size));
            // The receiver writes into the basis itself: only blocks it has not yet
            // overwritten may be referenced (stock's `updating_basis_file`).
            let basis = basis_type.unwrap_or(FNAMECMP_FNAME);
            let updating = (opts.inplace && basis == FNAMECMP_FNAME)
                || (basis == FNAMECMP_PARTIAL_DIR
                    && neg.compat_flags & crate::negotiate::cf::INPLACE_PARTIAL_DIR != 0);
            // Matched while the sums still arrive.
            rtsync_delta::stream_arriving_counted(
                dhead,
                block_hasher(neg),
                (updating, opts.match_report),
                &mut *r,
                BufReader::with_capacity(256 << 10, src),
                &mut emit,
            )?
        } else {
            let src = sized.insert(rtsync_tree::fsops::SizedSource::new(file, open_size));
            whole.send(src, sum_kind, &mut emit)?
        };
        let read_error = sized.and_then(|s| s.status());
        if let (Some(rep), Some(ofs)) = (reporter.as_deref_mut(), ticks.end()) {
            rep.transfer_tick(ofs, file_len);
        }
        if opts.append > 0 {
            sent_once.insert(ndx);
        }
        enc.finish_file(&mut counted)?;
        wire.written += counted.count + ms.checksum.as_bytes().len() as u64;
        wire.sum_hex = Some(rtsync_engine::report::sum_hex_as(
            ms.checksum.as_bytes(),
            sum_kind,
        ));
        let mut sum = ms.checksum.as_bytes().to_vec();
        if let Some(errno) = read_error {
            // The data was made up: a checksum that cannot match makes the receiver
            // discard it and ask again (all zeros, or ...01 if the real one is all zeros).
            let zero = sum.iter().all(|&b| b == 0);
            sum.fill(0);
            if zero {
                if let Some(last) = sum.last_mut() {
                    *last = 1;
                }
            }
            let msg = format!(
                "rsync: [sender] read errors mapping \"{}\": {} ({})\n",
                path.display(),
                crate::client::strerror(&std::io::Error::from_raw_os_error(errno)),
                errno
            );
            if opts.server {
                w.send_msg(MsgTag::ErrorXfer, msg.as_bytes()).map_err(wio)?;
            } else {
                eprint!("{msg}");
            }
            stats.errors += 1;
        }
        w.write_all(&sum).map_err(wio)?;
        w.file_data(false);
        stats.literal_bytes += ms.literal_bytes;
        stats.matched_bytes += ms.matched_bytes;
        stats.matches += ms.matches;
        stats.hash_hits += ms.hash_hits;
        stats.false_alarms += ms.false_alarms;
        if let Some(rep) = reporter.as_deref_mut() {
            let (index, listed, complete) = list.progress_at(ndx);
            let counts = rtsync_engine::report::Progress {
                transferred: stats.files_sent,
                index,
                listed,
                complete,
                total_size: list.total_size().unwrap_or(opts.total_size as u64),
            };
            rep.progress(file_len, counts);
            log_item_counted(
                rep,
                list,
                ndx,
                iflags,
                xname.as_deref(),
                opts.look(),
                wire.clone(),
            );
        }
        if let Some(tlog) = &opts.transfer_log {
            let (it, suffix) = item_of(list, ndx, iflags, xname.as_deref(), opts.logged_look());
            let mut facts = list.facts(ndx, true);
            facts.written = wire.written;
            facts.read = wire.read;
            if facts.sum_hex.is_none() {
                facts.sum_hex = wire.sum_hex;
            }
            tlog.item(&it, list.name(ndx), &suffix, &facts);
        }
    }
    if opts.match_report {
        // Stock's sender, once its last phase is over.
        let text = format!(
            "total: matches={}  hash_hits={}  false_alarms={} data={}\n",
            stats.matches, stats.hash_hits, stats.false_alarms, stats.literal_bytes
        );
        if opts.server {
            w.send_msg(MsgTag::Info, text.as_bytes()).map_err(wio)?;
        } else if let Some(rep) = reporter.as_mut() {
            rep.info(text.trim_end());
        } else {
            print!("{text}");
        }
    }
    if let (true, Some(rep)) = (opts.heap_report, reporter.as_mut()) {
        rep.heap_stats(&["sender"]);
    }
    ndxw.put(&mut out, NDX_DONE);
    if opts.server {
        // total_read, total_written, total_size, flist build and transfer times.
        let total_size = list.total_size().map_or(opts.total_size, |t| t as i64);
        stats.total_size = total_size.max(0) as u64;
        let (read, written) = match &opts.counts {
            Some(c) => {
                // Everything before the statistics counts as written.
                w.write_all(&out).and_then(|_| w.flush()).map_err(wio)?;
                out.clear();
                let get = |a: &std::sync::atomic::AtomicU64| {
                    a.load(std::sync::atomic::Ordering::Relaxed) as i64
                };
                (get(&c.read), get(&c.written))
            }
            None => (0, stats.literal_bytes as i64),
        };
        let (build, xfer) = opts.flist_times;
        for v in [read, written, total_size, build, xfer] {
            crate::varint::put_varlong(&mut out, v, 3);
        }
    }
    w.write_all(&out).and_then(|_| w.flush()).map_err(wio)?;
    out.clear();
    if let (false, Some(batch)) = (opts.server, w.tee().cloned()) {
        use std::sync::atomic::Ordering::Relaxed;
        // A batch's reader is a receiving client: it expects the sender's statistics.
        let mut st = Vec::new();
        let (read, written) = opts.counts.as_ref().map_or((0, 0), |c| {
            (c.read.load(Relaxed) as i64, c.written.load(Relaxed) as i64)
        });
        for v in [read, written, opts.total_size, 0, 0] {
            crate::varint::put_varlong(&mut st, v, 3);
        }
        batch.record(&st);
    }
    if let Some(c) = &opts.counts {
        use std::sync::atomic::Ordering::Relaxed;
        stats.totals = Some((c.read.load(Relaxed), c.written.load(Relaxed)));
    }
    // The final goodbye: at protocol ≥ 31 one more round trip.
    let ndx = read_ndx(&mut ndxr, r, &mut stats)?;
    remove_sent(r, w, neg, list, opts, &mut stats)?;
    if opts.server && stats.deleted_stats.is_some() {
        let d = stats.deleted_stats.take().unwrap_or_default();
        ndxw.put(&mut out, NDX_DEL_STATS);
        for v in d {
            crate::varint::put_varint(&mut out, v);
        }
    }
    if ndx != NDX_DONE {
        return Err(Error::Protocol(format!(
            "Invalid packet at end of run ({ndx})"
        )));
    }
    if neg.protocol >= 31 {
        ndxw.put(&mut out, NDX_DONE);
        w.write_all(&out).and_then(|_| w.flush()).map_err(wio)?;
        let ndx = read_ndx(&mut ndxr, r, &mut stats)?;
        remove_sent(r, w, neg, list, opts, &mut stats)?;
        if ndx != NDX_DONE {
            return Err(Error::Protocol(format!(
                "Invalid packet at end of run ({ndx})"
            )));
        }
    }
    Ok(stats)
}

/// `--remove-source-files`: removes the files the receiver reported in place (MSG_SUCCESS),
/// each only if it still has the size and modification time it was listed with. Messages
/// are stock's: a changed file or a failed removal is a transfer error (exit 23), a file
/// already gone only a note.
fn remove_sent<R: Read, W: Write, S: SendSource + ?Sized>(
    r: &mut MuxReader<R>,
    w: &mut MuxWriter<W>,
    neg: &Negotiated,
    list: &S,
    opts: &PushOptions,
    stats: &mut PushStats,
) -> Result<()> {
    if r.oob.success.is_empty() {
        return Ok(());
    }
    let done = std::mem::take(&mut r.oob.success);
    if !opts.remove_source {
        return Ok(());
    }
    for ndx in done {
        if !list.valid(ndx) {
            return Err(Error::Protocol(format!(
                "Invalid file index: {ndx} (-1 - {})",
                list.count() as i64 - 1
            )));
        }
        let ndx = ndx as usize;
        if list.kind(ndx) == FileKind::Directory {
            continue;
        }
        let name = String::from_utf8_lossy(list.name(ndx)).into_owned();
        let (msg, error) = match remove_one(list, ndx, neg.protocol >= 31, opts) {
            Ok(true) if opts.info_remove => (format!("sender removed {name}\n"), false),
            Ok(true) => continue,
            Ok(false) => (
                format!("ERROR: Skipping sender remove for changed file: {name}\n"),
                true,
            ),
            Err((_, e)) if e.kind() == std::io::ErrorKind::NotFound => {
                (format!("sender file already removed: {name}\n"), false)
            }
            Err((op, e)) => (
                format!(
                    "rsync: [sender] sender failed to {op} {name}: {} ({})\n",
                    crate::client::strerror(&e),
                    e.raw_os_error().unwrap_or(0)
                ),
                true,
            ),
        };
        if error {
            stats.errors += 1;
        }
        if opts.server {
            let tag = if error {
                MsgTag::ErrorXfer
            } else {
                MsgTag::Info
            };
            w.send_msg(tag, msg.as_bytes())
                .map_err(|e| Error::io("writing to receiver", e))?;
        } else if error {
            eprint!("{msg}");
        } else {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(msg.as_bytes()).and_then(|_| out.flush());
        }
    }
    Ok(())
}

/// Removes entry `ndx` if it is unchanged since it was listed (nanoseconds compared when
/// `nsec_sent`, protocol ≥ 31): `Ok(false)` when it changed; an error names the step that
/// failed (stock's words).
fn remove_one<S: SendSource + ?Sized>(
    list: &S,
    ndx: usize,
    nsec_sent: bool,
    opts: &PushOptions,
) -> std::result::Result<bool, (&'static str, std::io::Error)> {
    let path = list.source_path(ndx);
    let path = match &opts.confine {
        // Parents are resolved within the module; the leaf itself is never followed.
        Some(c) => c.resolve(&path, false).map_err(|e| ("re-lstat", e))?,
        None => path.into_owned(),
    };
    let md = if opts.follow_links && opts.confine.is_none() {
        std::fs::metadata(&path)
    } else {
        std::fs::symlink_metadata(&path)
    }
    .map_err(|e| ("re-lstat", e))?;
    if let Some((size, mtime, nsec)) = list.listed_stat(ndx) {
        use std::os::unix::fs::MetadataExt;
        let nsec_differs = nsec_sent && nsec != 0 && md.mtime_nsec() as u32 != nsec;
        if md.len() != size || md.mtime() != mtime || nsec_differs {
            return Ok(false);
        }
    }
    std::fs::remove_file(&path).map_err(|e| ("remove", e))?;
    Ok(true)
}

/// Appends an index with the generator's item flags, basis type and extra name, as they
/// go to the receiver before a file's data (or alone for an item not transferred).
/// `--info=progress2`: entry `ndx`'s transfer starts; stock's sender counts its listed length
/// as transferred from here.
fn count_transfer<S: SendSource + ?Sized>(
    rep: &mut Reporter,
    list: &S,
    ndx: usize,
    opts: &PushOptions,
) {
    let total_size = list.total_size().unwrap_or(opts.total_size as u64);
    rep.transfer_counted(list.size(ndx).unwrap_or(0), total_size);
}

fn put_ndx_and_attrs(
    out: &mut Vec<u8>,
    ndxw: &mut NdxWriter,
    ndx: usize,
    iflags: u16,
    basis_type: Option<u8>,
    xname: Option<&[u8]>,
) -> Result<()> {
    ndxw.put(out, ndx as i32);
    out.extend_from_slice(&iflags.to_le_bytes());
    if let Some(t) = basis_type {
        out.push(t);
    }
    if let Some(x) = xname {
        crate::varint::put_vstring(out, x)?;
    }
    Ok(())
}

/// `-X`: the values the receiver asked for (by position in the list we sent), read now.
fn xattr_answer(
    out: &mut Vec<u8>,
    path: &Path,
    rules: &rtsync_tree::xattr::XattrRules,
    nums: &[u32],
) {
    let list = rtsync_tree::xattr::read_for_send(path, rules).unwrap_or_default();
    let _ = crate::xattrs::put_response(out, path, &list, nums);
}

/// Data bytes of one file's exchange (`%b` written, `%c` read on the sending side).
#[derive(Debug, Clone, Default)]
struct WireCount {
    written: u64,
    read: u64,
    /// `%C`: the file's transfer checksum in hex.
    sum_hex: Option<String>,
}

/// The bytes of a request's sum header and the block sums that follow it (`sums`: their
/// header, when block sums are sent).
fn head_len(head: &SumHead, sums: Option<&rtsync_delta::SumHead>) -> u64 {
    let mut out = Vec::new();
    head.put(&mut out);
    let sums = sums.map_or(0, |h| u64::from(h.count) * (4 + u64::from(h.strong_len)));
    out.len() as u64 + sums
}

/// A writer that counts what passes through it.
struct Counting<'a, W: Write> {
    inner: &'a mut W,
    count: u64,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Prints the line for an item the receiver reported (rsync's sender-side `log_item`).
fn log_item<S: SendSource + ?Sized>(
    rep: &mut Reporter,
    list: &S,
    ndx: usize,
    iflags: u16,
    xname: Option<&[u8]>,
    look: ItemLook,
) {
    if !look.itemize && iflags & item::TRANSFER == 0 {
        // Stock's maybe_log_item without `%i`: only a significant local change, a
        // hard-link name or a changed directory is named (a file made from a
        // `--copy-dest` twin, whose flags say nothing else, is not).
        let significant =
            iflags & !(item::BASIS_TYPE_FOLLOWS | item::XNAME_FOLLOWS | item::LOCAL_CHANGE) != 0;
        let local_change = iflags & item::LOCAL_CHANGE != 0 && significant;
        let named = xname.is_some_and(|x| !x.is_empty());
        let dir = list.kind(ndx) == FileKind::Directory && significant;
        if !(local_change || named || dir) {
            return;
        }
    }
    log_item_counted(rep, list, ndx, iflags, xname, look, WireCount::default());
}

/// [`log_item`] of a file sent, with what its exchange cost (`%b`, `%c`).
fn log_item_counted<S: SendSource + ?Sized>(
    rep: &mut Reporter,
    list: &S,
    ndx: usize,
    iflags: u16,
    xname: Option<&[u8]>,
    look: ItemLook,
    wire: WireCount,
) {
    let (it, suffix) = item_of(list, ndx, iflags, xname, look);
    let mut facts = list.facts(ndx, rep.wants_entry_facts());
    facts.written = wire.written;
    facts.read = wire.read;
    if facts.sum_hex.is_none() {
        facts.sum_hex = wire.sum_hex;
    }
    rep.item_with(&it, list.name(ndx), &suffix, &facts);
    rep.flush();
}

/// How a sender shows the items the receiver reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ItemLook {
    itemize: bool,
    untimed: bool,
}

impl PushOptions {
    fn look(&self) -> ItemLook {
        ItemLook {
            itemize: self.itemize,
            untimed: self.untimed,
        }
    }

    /// How the transfer log shows items: itemized (sent files are `<f`).
    fn logged_look(&self) -> ItemLook {
        ItemLook {
            itemize: true,
            ..self.look()
        }
    }
}

/// The itemize data and name suffix of an item the receiver reported.
fn item_of<S: SendSource + ?Sized>(
    list: &S,
    ndx: usize,
    iflags: u16,
    xname: Option<&[u8]>,
    look: ItemLook,
) -> (Itemize, Vec<u8>) {
    let kind = match list.kind(ndx) {
        FileKind::Regular => b'f',
        FileKind::Directory => b'd',
        FileKind::Symlink => b'L',
        FileKind::BlockDevice | FileKind::CharDevice => b'D',
        FileKind::Fifo | FileKind::Socket => b'S',
    };
    let hlink = iflags & item::LOCAL_CHANGE != 0 && iflags & item::XNAME_FOLLOWS != 0;
    let update = if iflags & item::TRANSFER != 0 {
        if look.itemize {
            b'<'
        } else {
            b'>'
        }
    } else if hlink {
        b'h'
    } else if iflags & item::LOCAL_CHANGE != 0 {
        b'c'
    } else {
        b'.'
    };
    let mut it = Itemize::new(update, kind);
    it.is_new = iflags & item::IS_NEW != 0;
    it.checksum = iflags & item::REPORT_CHANGE != 0;
    it.size = iflags & item::REPORT_SIZE != 0;
    if iflags & item::REPORT_TIME != 0 {
        it.time = Some(if look.untimed { b'T' } else { b't' });
    }
    it.perms = iflags & item::REPORT_PERMS != 0;
    it.owner = iflags & item::REPORT_OWNER != 0;
    it.group = iflags & item::REPORT_GROUP != 0;
    it.atime = iflags & item::REPORT_ATIME != 0;
    it.xattr = iflags & item::REPORT_XATTR != 0;
    it.acl = iflags & item::REPORT_ACL != 0;
    let suffix = match (hlink, xname) {
        // (A basis-dir link names no leader: an empty name.)
        (true, Some(x)) if !x.is_empty() => [&b" => "[..], x].concat(),
        _ => match list.kind(ndx) {
            FileKind::Directory => b"/".to_vec(),
            FileKind::Symlink => [&b" -> "[..], list.link_target(ndx).unwrap_or_default()].concat(),
            _ => Vec::new(),
        },
    };
    (it, suffix)
}

/// Opens a file of the list for reading.
fn open_source(
    path: &std::path::Path,
    opts: &PushOptions,
    confine: Option<&rtsync_tree::Confine>,
) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let follow = opts.follow_links;
    let mut o = std::fs::OpenOptions::new();
    o.read(true);
    let noatime = if opts.noatime { libc::O_NOATIME } else { 0 };
    match confine {
        Some(c) => {
            let real = c.resolve(path, follow)?;
            o.custom_flags(libc::O_NOFOLLOW | noatime)
                .open(rtsync_tree::fsops::reachable(real))
        }
        None => {
            let nofollow = if follow { 0 } else { libc::O_NOFOLLOW };
            o.custom_flags(nofollow | noatime)
                .open(rtsync_tree::fsops::reachable(path.to_path_buf()))
        }
    }
}

/// Reads an index, absorbing deletion statistics.
/// A source file's path as a sender's message shows it: quoted, and in a module relative to
/// it with ` (in MODULE)`. As stock's `full_fname`, a file found from the top of a module
/// served without chroot shows its path as is; one found from a directory below the top,
/// or in a chrooted module, a path starting with `/`.
fn shown_path(path: &Path, name: &[u8], module: Option<&(String, bool)>) -> String {
    let Some((m, chrooted)) = module else {
        // Outside a module, stock's full_fname: from our working directory.
        return format!("\"{}\"", rtsync_engine::local::full_path(path));
    };
    let text = path.to_string_lossy();
    let rel = text.strip_prefix("./").unwrap_or(&text);
    if rel.as_bytes() == name && !chrooted {
        format!("\"{rel}\" (in {m})")
    } else {
        format!("\"/{}\" (in {m})", rel.trim_start_matches('/'))
    }
}

fn read_ndx<R: Read>(
    ndxr: &mut NdxReader,
    r: &mut MuxReader<R>,
    stats: &mut PushStats,
) -> Result<i32> {
    loop {
        let ndx = ndxr.read(r)?;
        if ndx != NDX_DEL_STATS {
            return Ok(ndx);
        }
        let mut d = [0i32; 5];
        for v in &mut d {
            *v = r.read_varint_in(0, i32::MAX, "deleted count")?;
            stats.deleted += *v as u64;
        }
        stats.deleted_stats = Some(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(path: &Path, size: u64, mtime: i64) -> SendList {
        SendList {
            entries: vec![FileEntry {
                name: b"f".to_vec(),
                kind: FileKind::Regular,
                mode: 0o644,
                size,
                mtime,
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
            }],
            paths: vec![path.to_path_buf()],
            ..SendList::default()
        }
    }

    #[test]
    fn a_sent_file_is_removed_only_while_it_is_the_file_listed() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let mtime = std::fs::metadata(&path).unwrap().mtime();
        let opts = PushOptions::default();
        // Grown since it was listed: kept.
        assert!(!remove_one(&listed(&path, 2, mtime), 0, true, &opts).unwrap());
        // Touched since: kept.
        assert!(!remove_one(&listed(&path, 3, mtime - 5), 0, true, &opts).unwrap());
        assert!(path.exists());
        // The same: removed.
        assert!(remove_one(&listed(&path, 3, mtime), 0, true, &opts).unwrap());
        assert!(!path.exists());
        // Gone already: reported as such.
        let (op, err) = remove_one(&listed(&path, 3, mtime), 0, true, &opts).unwrap_err();
        assert_eq!((op, err.kind()), ("re-lstat", std::io::ErrorKind::NotFound));
    }
}
