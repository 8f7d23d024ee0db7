//! The client as receiver: a generator thread that decides what to fetch and sends requests,
//! and the receiver (the calling thread) that reads file data and writes it into place.
//! They run concurrently, as in stock rsync, or the two pipes deadlock.
//!
//! Message flow at protocol 31 (generator → sender, sender → receiver):
//! ```text
//! gen: [ndx iflags sumhead sums]* DONE   (wait phase 1)   [redo]* DONE DONE [DEL_STATS] DONE (wait) DONE
//! snd: [ndx iflags sumhead tokens sum]* DONE  [redo data]* DONE  DONE stats [DEL_STATS] DONE
//! ```
//! At protocol 30 the last round trip (the one before the goodbye) does not exist.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::mpsc;

use rtsync_tree::FileEntry;

use crate::checksum::FileHasher;
use crate::connect::Closer;
use crate::error::{Error, Result};
use crate::flist::FileList;
use crate::local::{self, AttrOptions, Dest, IdMap, QuickCheck};
use crate::log::{ItemLog, Line};

mod alt;
mod entry;
pub mod inc;
mod keep;
mod say;
mod write;
use crate::mux::{MsgTag, MuxReader, MuxWriter};
use crate::ndx::{NdxReader, NdxWriter, NDX_DEL_STATS, NDX_DONE, NDX_FLIST_EOF, NDX_FLIST_OFFSET};
use crate::negotiate::Negotiated;
use crate::sums::{item, SumHead};
use crate::varint::{put_varint, ReadWire};
use entry::{generate_entry, Step};
pub use keep::BackupOptions;
use write::receive_file;

/// `--delay-updates`: the partial dir when none is given (stock's).
pub const DELAY_DIR: &str = ".~tmp~";

/// io_error bit: deletions were stopped by `--max-delete` (exit code 25).
pub const IOERR_DEL_LIMIT: i32 = 4;

/// What the pull should do locally.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// `--timeout`: the generator keeps the clock (its every-200-entries flush is then a
    /// keepalive check that does not flush).
    pub timed: bool,
    pub attrs: AttrOptions,
    pub quick: QuickCheck,
    /// `-c`: compare whole-file checksums instead of size+mtime.
    pub checksum: bool,
    pub links: bool,
    pub devices: bool,
    pub specials: bool,
    /// `--drop-D`: devices and specials in the list are skipped (not created) while the list
    /// keeps its `-D` encoding.
    pub drop_devices: bool,
    pub hard_links: bool,
    pub delete: bool,
    pub dry_run: bool,
    pub numeric_ids: bool,
    /// `-v` count: names are printed at ≥ 1.
    pub verbose: u32,
    /// `--info=skip` (or `-vv`): say why `--update` skipped a file.
    pub info_skip: bool,
    /// `--info=backup` (on with `-vv`): each backup made is mentioned.
    pub info_backup: bool,
    /// `--whole-file`: never send block sums.
    pub whole_file: bool,
    /// `--block-size`.
    pub block_size: Option<u32>,
    /// `--delete-before`: all deletions happen before anything is transferred.
    pub delete_before: bool,
    /// `--delete-after` / `--delete-delay`: deletions happen after the transfer.
    pub delete_after: bool,
    /// The destination directory was created for this transfer (`.` is itemized as new).
    pub dest_created: bool,
    /// `--max-delete`: at most this many deletions (negative counts as 0).
    pub max_delete: Option<i64>,
    /// `--safe-links`: ignore symlinks pointing outside the tree.
    pub safe_links: bool,
    /// `-u`: skip files that are newer on the receiver.
    pub update: bool,
    /// `--existing`: create nothing new.
    pub existing: bool,
    /// `--ignore-existing`: update nothing that exists.
    pub ignore_existing: bool,
    /// `--min-size` / `--max-size` in bytes.
    pub min_size: Option<u64>,
    pub max_size: Option<u64>,
    /// `--list-only` (or a remote source without a destination): print the list, change nothing.
    pub list_only: bool,
    /// Filter rules protecting receiver-side names from `--delete`.
    pub protect: Option<rtsync_filter::FilterSet>,
    /// `--debug=filter`: the rules that protect or risk names are traced here.
    pub protect_trace: Option<rtsync_engine::filters::FilterTrace>,
    /// The sender is a server and sends its statistics at the end (false when we are the
    /// server receiving from a client).
    pub peer_sends_stats: bool,
    /// `--backup`: what is replaced or deleted is kept under a backup name.
    pub backup: Option<BackupOptions>,
    /// `-R --no-implied-dirs`: the parents of a listed name are not applied (see
    /// [`crate::flist::FlistOptions::skip_implied`]); missing ones are made plainly, beneath
    /// the destination (in-tree symlinks followed), as stock's receiver does.
    pub make_parents: bool,
    /// `--inplace`: write into the destination file instead of a temp file.
    pub inplace: bool,
    /// `--write-devices`: a device in the way of a file is written into (in place).
    pub write_devices: bool,
    /// `--append` (1) or `--append-verify` (2): an existing file shorter than the sender's
    /// is only extended (its data trusted, or with 2 checked by the whole-file checksum);
    /// one at least as long is left alone.
    pub append: u8,
    /// A failed verification is reported before the retry (stock: `-v`, `-i`, `%i`).
    pub verify_warnings: bool,
    /// `--usermap` / `--groupmap` / `--chown`, resolved on this side.
    pub usermap: Option<local::NameMap>,
    pub groupmap: Option<local::NameMap>,
    /// `--partial`: keep the data of an interrupted transfer.
    pub partial: bool,
    /// `--partial-dir`: where partial files are kept (and found again as basis files);
    /// `.~tmp~` with `--delay-updates` unless one was given.
    pub partial_dir: Option<PathBuf>,
    /// The partial dir was given as an absolute path: one directory for every file (a
    /// daemon resolves it inside the module, as a path relative to it).
    pub partial_dir_shared: bool,
    /// `--debug=flist` (or `-vv`): the generator starts with `delta-transmission enabled`
    /// (a server sends it to the client).
    pub delta_notice: bool,
    /// `--debug=del` (or `-vv`): a deletion pass before or after the transfer names each
    /// top directory it deletes in (`deleting in NAME`).
    pub debug_del: bool,
    /// `--delay-updates`: finished files wait in their partial dir and are renamed into
    /// place together once the sender has sent everything (redos included).
    pub delay_updates: bool,
    /// `--sparse`: leave holes for runs of zeros.
    pub sparse: bool,
    /// `--preallocate`: reserve each file's size before writing it.
    pub preallocate: bool,
    /// `--fsync`: flush each file received before it goes into place.
    pub fsync: bool,
    /// A receiving server at `-vv` whose client does not itemize: an item needing no
    /// transfer is named to the client (`NAME is uptodate`, or `NAME` when only its
    /// attributes changed), as stock's generator reports through set_file_attrs.
    pub report_attrs: bool,
    /// A receiving server whose client itemizes everything (`-ii`: it asks for `%i%I`):
    /// items without a significant change are sent too, as stock's generator does.
    pub report_all: bool,
    /// `--temp-dir`: where temp files are created.
    pub temp_dir: Option<PathBuf>,
    /// How stock's daemon names the option directories given absolute (the module's full
    /// path in front), keyed by their resolved paths.
    pub dirs_shown: Vec<(PathBuf, String)>,
    /// `--remove-source-files`: tell the sender (MSG_SUCCESS) which files are in place.
    pub remove_source_files: bool,
    /// A daemon module's own filter rules: names they exclude are refused
    /// (`ERROR: daemon refused to receive file "NAME"`), with everything below a refused
    /// directory.
    pub refuse: Option<rtsync_filter::FilterSet>,
    /// `--compare-dest`/`--copy-dest`/`--link-dest` and its directories (resolved by
    /// [`PullOptions::resolve_basis_dirs`]).
    pub alt_dest: Option<rtsync_engine::AltDest>,
    pub basis_dirs: Vec<PathBuf>,
    /// A daemon module's root: basis candidates whose directory leads out of it are ignored.
    pub basis_root: Option<PathBuf>,
    /// In a daemon module, each basis directory held open (opened beneath the module root
    /// when the options were resolved; `None` when that failed): candidates are looked up
    /// beneath it, so a directory on the way swapped for a symlink later leads nowhere.
    pub basis_pins: Vec<Option<std::sync::Arc<std::os::fd::OwnedFd>>>,
    /// A daemon module's confinement: the directories options name (`--backup-dir`,
    /// `--partial-dir`, `--temp-dir`) are reached following only trusted symlinks that stay
    /// inside the module (see [`PullOptions::confine_dirs`]).
    pub confine: Option<rtsync_tree::Confine>,
    /// `--only-write-batch`: nothing changes here, but files are requested (with block sums)
    /// so the sender can record their deltas in the batch.
    pub batch_only: bool,
    /// With `batch_only`, the sender's file data still comes to us (we are the client and
    /// record it); a receiving server gets none.
    pub batch_data_follows: bool,
    /// `--read-batch`: the "sender" is a batch file; only what the generator wants of it
    /// is applied, no block sums are made.
    pub read_batch: bool,
    /// `--delete-missing-args`: a missing entry (mode 0) deletes what is here under its name
    /// (a non-empty directory only with `--delete` or `--force`).
    pub delete_missing: bool,
    pub force: bool,
    /// `--ignore-errors`: delete even after the sender reported an I/O error.
    pub ignore_errors: bool,
    /// A daemon module's root and name: messages name files beneath it, `(in NAME)`.
    pub module: Option<(PathBuf, String)>,
    /// A daemon's log: the messages a receiving session sends its client go there too.
    pub log: Option<crate::server::LogSink>,
    /// `-X`: attribute lists come with the entries; abbreviated values are fetched.
    pub xattrs: Option<rtsync_tree::xattr::XattrRules>,
}

impl PullOptions {
    /// The receiving side's settings from the option model (a client's pull, or a server
    /// receiving a push); callers adjust the few that depend on their role.
    pub fn from_options(
        opts: &rtsync_engine::Options,
        protect: Option<rtsync_filter::FilterSet>,
    ) -> PullOptions {
        let am_root = opts.am_root();
        let batch_only = opts.only_write_batch && opts.write_batch.is_some();
        PullOptions {
            timed: opts.timeout > 0,
            xattrs: opts.xattr_rules(),
            attrs: AttrOptions {
                perms: opts.perms,
                executability: opts.executability,
                times: opts.times,
                modify_window: opts.modify_window,
                owner: opts.owner,
                group: opts.group,
                omit_dir_times: opts.omit_dir_times,
                omit_link_times: opts.omit_link_times,
                atimes: opts.atimes > 0,
                am_root: am_root != 0,
                fake_super: am_root < 0,
                umask: crate::local::current_umask(),
                acls: opts.acls,
            },
            quick: QuickCheck {
                size_only: opts.size_only,
                ignore_times: opts.ignore_times,
                modify_window: opts.modify_window,
            },
            checksum: opts.checksum,
            links: opts.links,
            devices: opts.devices,
            specials: opts.specials,
            drop_devices: opts.drop_devices,
            hard_links: opts.hard_links,
            delete: opts.deleting(),
            delete_before: opts.delete == rtsync_engine::DeleteMode::Before,
            delete_after: matches!(
                opts.delete,
                rtsync_engine::DeleteMode::After | rtsync_engine::DeleteMode::Delay
            ),
            dry_run: opts.dry_run || batch_only,
            numeric_ids: opts.numeric_ids,
            verbose: opts.verbose,
            info_skip: opts.info_skip(),
            info_backup: opts.info_backup(),
            whole_file: opts.whole_file == Some(true),
            block_size: opts.block_size,
            peer_sends_stats: false,
            dest_created: false,
            list_only: false,
            update: opts.update,
            safe_links: opts.safe_links,
            max_delete: opts.max_delete,
            existing: opts.existing,
            ignore_existing: opts.ignore_existing,
            min_size: opts.min_size,
            max_size: opts.max_size,
            protect_trace: protect
                .as_ref()
                .and(rtsync_engine::filters::FilterTrace::for_role(
                    opts,
                    "generator",
                )),
            protect,
            backup: opts.backup.then(|| BackupOptions {
                dir: opts.backup_dir.as_ref().map(PathBuf::from),
                suffix: opts
                    .suffix
                    .clone()
                    .unwrap_or_else(|| if opts.backup_dir.is_some() { "" } else { "~" }.into()),
                confine: None,
            }),
            inplace: opts.inplace,
            write_devices: opts.write_devices,
            append: crate::server_args::append_mode(opts),
            usermap: local::parse_map(opts.usermap.as_deref(), true),
            groupmap: local::parse_map(opts.groupmap.as_deref(), false),
            verify_warnings: opts.verbose > 0
                || opts.itemize > 0
                || opts
                    .out_format
                    .as_deref()
                    .is_some_and(|f| rtsync_engine::report::format_has(f, b'i')),
            // rsync: --inplace implies --partial for refusal purposes only.
            partial: (opts.partial || opts.partial_dir.is_some() || opts.delay_updates)
                && !opts.inplace,
            partial_dir: opts
                .partial_dir
                .as_ref()
                .map(PathBuf::from)
                .or_else(|| opts.delay_updates.then(|| PathBuf::from(DELAY_DIR))),
            partial_dir_shared: opts
                .partial_dir
                .as_ref()
                .is_some_and(|p| p.as_encoded_bytes().starts_with(b"/")),
            delay_updates: opts.delay_updates && !opts.inplace,
            delta_notice: opts.debug_level("flist") >= 1,
            debug_del: opts.debug_level("del") >= 1,
            sparse: opts.sparse,
            preallocate: opts.preallocate,
            fsync: opts.fsync,
            report_attrs: false,
            report_all: false,
            temp_dir: opts.temp_dir.as_ref().map(PathBuf::from),
            dirs_shown: Vec::new(),
            refuse: None,
            remove_source_files: opts.remove_source_files && !opts.dry_run && !batch_only,
            alt_dest: opts.alt_dest,
            basis_dirs: opts.basis_dirs.iter().map(PathBuf::from).collect(),
            basis_root: None,
            basis_pins: Vec::new(),
            confine: None,
            batch_only,
            batch_data_follows: false,
            make_parents: opts.relative && !opts.implied_dirs,
            read_batch: false,
            delete_missing: opts.delete_missing_args,
            force: opts.force,
            ignore_errors: opts.ignore_errors,
            module: None,
            log: None,
        }
    }

    /// Resolves the basis directories against the destination directory `dest_root`; in a
    /// daemon module (`module_root`), `..` and absolute paths stay beneath the module, as
    /// rsync's daemon sanitizes them. Returns rsync's warnings for those missing or not
    /// directories.
    pub fn resolve_basis_dirs(
        &mut self,
        dest_root: &std::path::Path,
        module_root: Option<&std::path::Path>,
    ) -> Vec<String> {
        let Some(kind) = self.alt_dest else {
            return Vec::new();
        };
        let mut warnings = Vec::new();
        let mut resolved = Vec::new();
        let mut pins = Vec::new();
        let root_fd = module_root.and_then(|r| rtsync_oppath::open_dir(r).ok());
        for dir in &self.basis_dirs {
            let text = crate::argtext::os_text(dir.as_os_str());
            let (path, shown) = match module_root {
                Some(root) => {
                    let rel_dest = dest_root.strip_prefix(root).unwrap_or(dest_root);
                    let joined = if text.starts_with('/') {
                        text.to_string()
                    } else {
                        format!("{}/{text}", crate::argtext::os_text(rel_dest.as_os_str()))
                    };
                    let p = crate::server::path_beneath(root, &joined);
                    let p = p.trim_end_matches('/').to_string();
                    let shown = std::path::Path::new(&p)
                        .strip_prefix(root)
                        .map(|r| crate::argtext::os_text(r.as_os_str()))
                        .unwrap_or_else(|_| p.clone());
                    (
                        crate::argtext::path(&p),
                        if shown.is_empty() { ".".into() } else { shown },
                    )
                }
                None => {
                    let t = if text.len() > 1 {
                        text.trim_end_matches('/')
                    } else {
                        &text
                    };
                    let base = std::env::current_dir().unwrap_or_default().join(dest_root);
                    let base = crate::argtext::os_text(base.as_os_str()).replace("/./", "/");
                    let base = base.trim_end_matches("/.").trim_end_matches('/');
                    let p = crate::argtext::path(&format!("{base}/{t}"));
                    let p = if t.starts_with('/') {
                        crate::argtext::path(t)
                    } else {
                        p
                    };
                    let shown = crate::argtext::os_text(p.as_os_str());
                    (p, shown)
                }
            };
            match std::fs::metadata(&path) {
                Err(_) => warnings.push(format!("{} arg does not exist: {shown}", kind.option())),
                Ok(m) if !m.is_dir() => {
                    warnings.push(format!("{} arg is not a dir: {shown}", kind.option()))
                }
                Ok(_) => {}
            }
            if let (Some(root), Some(fd)) = (module_root, &root_fd) {
                use std::os::fd::AsFd;
                let rel = path.strip_prefix(root).unwrap_or(&path);
                pins.push(
                    rtsync_oppath::open_dir_in_tree(fd.as_fd(), rel)
                        .ok()
                        .map(std::sync::Arc::new),
                );
            }
            resolved.push(path);
        }
        self.basis_dirs = resolved;
        self.basis_pins = pins;
        self.basis_root = module_root.map(std::path::Path::to_path_buf);
        warnings
    }

    /// Resolves the directories named by options (`--backup-dir`, `--temp-dir`, an absolute
    /// `--partial-dir`) against the destination `root`; in a daemon module (`module_root`),
    /// they are kept beneath it whatever the client sent: an absolute one starts at the
    /// module's root, a relative one at the destination and cannot climb above it (stock's
    /// `sanitize_path`).
    pub fn resolve_dirs(&mut self, root: &std::path::Path, module_root: Option<&std::path::Path>) {
        let confine = module_root.is_some();
        let resolve = |p: &std::path::Path| -> PathBuf {
            match module_root {
                Some(m) if p.is_absolute() => crate::argtext::path(&crate::server::path_beneath(
                    m,
                    &crate::argtext::os_text(p.as_os_str()),
                )),
                Some(_) => crate::argtext::path(&crate::server::path_beneath(
                    root,
                    &crate::argtext::os_text(p.as_os_str()),
                )),
                None => root.join(p),
            }
        };
        // In a module, an absolute one is named with the module's full path in front.
        let mut shown = Vec::new();
        let mut resolve_named = |p: &std::path::Path| -> PathBuf {
            let r = resolve(p);
            if let (Some(m), true) = (module_root, p.is_absolute()) {
                let full = rtsync_engine::local::full_path(m);
                let text = crate::argtext::os_text(p.as_os_str());
                let joined = format!(
                    "{}/{}",
                    full.trim_end_matches('/'),
                    text.trim_start_matches('/')
                );
                shown.push((r.clone(), joined));
            }
            r
        };
        if let Some(b) = self.backup.as_mut() {
            b.dir = b.dir.as_deref().map(&mut resolve_named);
        }
        self.temp_dir = self.temp_dir.as_deref().map(&mut resolve_named);
        self.dirs_shown = shown;
        if confine {
            // A relative partial dir is per directory; an absolute one must stay inside.
            self.partial_dir = self.partial_dir.as_deref().map(|p| {
                if p.is_absolute() || p.components().any(|c| c.as_os_str() == "..") {
                    resolve(p)
                } else {
                    p.to_path_buf()
                }
            });
        }
    }
}

impl PullOptions {
    /// Confines the directories options name to a daemon module (see [`PullOptions::confine`]).
    pub fn confine_dirs(&mut self, confine: &rtsync_tree::Confine) {
        if let Some(b) = self.backup.as_mut() {
            b.confine = Some(confine.clone());
        }
        self.confine = Some(confine.clone());
    }

    /// Where the directory `dir` an option names really is: itself, or in a daemon module
    /// its resolution inside the module (created first when `create` is a mode).
    pub fn option_dir(
        &self,
        dir: &std::path::Path,
        create: Option<u32>,
    ) -> std::io::Result<PathBuf> {
        match (&self.confine, create) {
            (None, _) => Ok(dir.to_path_buf()),
            (Some(c), Some(mode)) => c.create_dir_all(dir, mode),
            (Some(c), None) => c.resolve(dir, true),
        }
    }

    /// Turns the ids of a received list into ours (see [`local::map_ids`]).
    pub fn map_ids(&self, list: &mut FileList) {
        local::map_ids(
            &mut list.entries,
            &list.user_names,
            &list.group_names,
            self.numeric_ids,
            self.usermap.as_ref(),
            self.groupmap.as_ref(),
            self.attrs.owner,
            self.attrs.group,
            self.attrs.am_root,
        );
    }
}

/// Counters the client reports.
#[derive(Debug, Clone, Default)]
pub struct PullStats {
    pub files_transferred: u64,
    pub literal_bytes: u64,
    pub matched_bytes: u64,
    pub deleted: u64,
    /// Problems that make the exit code 23 (partial transfer).
    pub errors: u64,
    /// The sender's totals: bytes it read, wrote, and the total size of the list.
    pub sender_read: i64,
    pub sender_written: i64,
    /// The totals above came from the sender (stock's client prints them, swapped, as its
    /// own `sent`/`received`).
    pub sender_totals: bool,
    /// The sender's file-list generation and transfer times (milliseconds).
    pub flist_times: (i64, i64),
    pub total_size: i64,
    /// The sender's io_error flags (from the file list and MSG_IO_ERROR).
    pub io_error: i32,
    /// Items created, per kind (reg, dir, link, dev, special).
    pub created: [u64; 5],
    /// New files the generator asked for that the sender could not send (MSG_NO_SEND):
    /// stock's receiver counts a file as created only when it arrives.
    pub unsent_new: u64,
    /// Bytes of the file list as received.
    pub flist_size: u64,
    /// Total size of the files transferred (`-n`: that would have been).
    pub transferred_size: u64,
    /// Incremental recursion: what the lists after the first held.
    pub later_lists: inc::ListTotals,
    /// Deletions per kind (regular, directory, symlink, device, special).
    pub deleted_kinds: [u64; 5],
    /// The checksum the sender sent after the last file's data: `%C` of its item, as
    /// stock's receiver shows it.
    pub sender_sum: Vec<u8>,
}

impl Ctx<'_> {
    /// Our index `ndx` as the sender numbers it.
    fn wire(&self, ndx: usize) -> i32 {
        crate::ndx::to_wire(self.unsorted.as_ref(), ndx as i32)
    }

    fn deleted_kinds(&self) -> [u64; 5] {
        self.deleted_kinds
            .each_ref()
            .map(|n| n.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// A request the generator made, handed to the receiver before it hits the wire.
struct Request {
    ndx: usize,
    /// The item line to print once the file is in place.
    item: Option<Line>,
    head: SumHead,
    basis: Option<PathBuf>,
    existing_mode: Option<u32>,
    /// `--append`: the data starts after the length `head` describes (the basis is the
    /// file itself).
    append: bool,
    /// The entry (its list may be gone when the data comes, with incremental recursion).
    entry: FileEntry,
    /// Holds open the directory a basis-dir `basis` is named through (see `alt::AltMatch`).
    _pin: Option<alt::Pin>,
}

/// What the receiver tells the generator.
enum Event {
    /// The sender ended a phase.
    PhaseDone,
    /// This index failed verification and should be fetched again.
    Redo(usize, Box<FileEntry>),
    /// Incremental recursion: a request is done with (in place or failed for good).
    Completed(usize),
    /// Incremental recursion: the next list, and the end of the lists.
    List(Box<inc::IncList>),
    ListsEnd,
    /// The receiver read the sender's statistics and final goodbye.
    Finished,
    /// This index is in place: a `--remove-source-files` sender may remove it.
    Success(usize),
    /// A message for the client, when we are the server (the generator holds the writer).
    Message(MsgTag, String),
}

/// Everything both threads share read-only.
struct Ctx<'a> {
    neg: &'a Negotiated,
    /// The list (incremental recursion: the first one).
    list: &'a FileList,
    /// Incremental recursion is on; the first list's own directory.
    inc: bool,
    first_parent: Option<(FileEntry, bool)>,
    dest: &'a Dest,
    opts: &'a PullOptions,
    ids: IdMap,
    log: &'a ItemLog,
    /// Deletions done and skipped (over `--max-delete`).
    deletions: std::sync::atomic::AtomicU64,
    skipped_deletions: std::sync::atomic::AtomicU64,
    /// Deletions per kind (regular, directory, symlink, device, special), for the
    /// statistics (NDX_DEL_STATS).
    deleted_kinds: [std::sync::atomic::AtomicU64; 5],
    /// "IO error encountered" was said (once per run).
    io_warned: std::sync::atomic::AtomicBool,
    /// The io_error flags of the incremental lists received so far (the first list's are
    /// in `list`): a later list's error stops the deletions from then on, as stock's.
    later_io_error: std::sync::atomic::AtomicI32,
    /// Deletions that failed (counted as errors).
    delete_errors: std::sync::atomic::AtomicU64,
    /// How messages name files.
    naming: say::Naming,
    /// A server generator's messages for the client, sent with its next write.
    said: std::sync::Mutex<Vec<(MsgTag, String)>>,
    /// `-X`: items handled locally whose abbreviated attribute values the sender will send
    /// (by index: where they go, the wanted list).
    xattr_wait: std::sync::Mutex<HashMap<usize, (PathBuf, rtsync_tree::xattr::XattrList)>>,
    /// `--iconv`: the sender's numbering (entries in the order sent), translated at the wire.
    unsorted: Option<crate::ndx::Unsorted>,
}

/// Everything a receiving session works with besides the connection.
pub struct PullSession<'a> {
    pub neg: &'a Negotiated,
    /// The received file list.
    pub list: &'a FileList,
    pub dest: &'a Dest,
    pub opts: &'a PullOptions,
    /// Tears the connection down if one side fails, so the other does not wait forever.
    pub closer: &'a Closer,
    /// Where item lines go.
    pub log: &'a ItemLog,
}

/// Runs the receiving side of a transfer whose file list has been read (with incremental
/// recursion, its first list, read through `inc`, which reads the others).
pub fn run_pull<R: Read + Send, W: Write + Send>(
    reader: &mut MuxReader<R>,
    writer: &mut MuxWriter<W>,
    session: &PullSession<'_>,
    inc: Option<(inc::IncReader<'_>, Option<(FileEntry, bool)>)>,
) -> Result<PullStats> {
    let PullSession {
        neg,
        list,
        dest,
        opts,
        closer,
        log,
    } = *session;
    let (mut inc, first_parent) = match inc {
        Some((r, p)) => (Some(r), p),
        None => (None, None),
    };
    let ctx = Ctx {
        neg,
        list,
        inc: inc.is_some(),
        first_parent,
        dest,
        opts,
        // The list's ids are ours already (`local::map_ids`).
        ids: IdMap::default(),
        log,
        deletions: Default::default(),
        skipped_deletions: Default::default(),
        deleted_kinds: Default::default(),
        io_warned: Default::default(),
        later_io_error: Default::default(),
        delete_errors: Default::default(),
        naming: say::Naming::new(&dest.root(), opts.module.as_ref()),
        said: Default::default(),
        xattr_wait: Default::default(),
        unsorted: match &inc {
            Some(r) => r.unsorted.clone(),
            None if !list.sent.is_empty() => {
                let u = crate::ndx::Unsorted::default();
                u.add(0, &list.sent);
                Some(u)
            }
            None => None,
        },
    };
    if let Err(e) = check_option_dirs(&ctx) {
        if opts.peer_sends_stats {
            error_exit_handshake(reader, writer, closer, e.exit_code());
        }
        return Err(e);
    }
    // Interrupted (or stopped by --stop-at), the file being written is removed or kept as
    // --partial says, as stock's receiver does.
    rtsync_tree::fsops::interrupt::signal_cleanup_install(&format!(
        "rsync error: received SIGINT, SIGTERM, or SIGHUP (code 20) at rsync.c(713) [receiver={}]\n",
        rtsync_engine::RSYNC_VERSION
    ));
    let (req_tx, req_rx) = mpsc::channel::<Request>();
    let (ev_tx, ev_rx) = mpsc::channel::<Event>();
    // A client whose receiving fails on its own side (a write, a backup) tells the peer
    // the exit code and lets it go, as stock's does: the code, set before the generator is
    // stopped, is what it sends.
    // A daemon's receiver failing on its own side leaves the connection open instead: the
    // client may still be sending, and a socket closed with data unread resets the
    // connection before the client reads why. The session's end tells it and reads until
    // it goes (as stock's noop_io_until_death).
    // (Both are set before the receiver lets go of the generator's requests, so the
    // generator, failing to hand one over, already knows.)
    let local_failure = std::sync::atomic::AtomicI32::new(0);
    let leave_open = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let ctx = &ctx;
        let local_failure = &local_failure;
        let leave_open = &leave_open;
        let gen = s.spawn(move || {
            let r = generate(ctx, writer, req_tx, ev_rx);
            if r.is_err() {
                match local_failure.load(std::sync::atomic::Ordering::SeqCst) {
                    0 if leave_open.load(std::sync::atomic::Ordering::SeqCst) => {}
                    0 => closer.close(),
                    code => {
                        let _ = writer.send_msg_int(MsgTag::ErrorExit, code);
                        let _ = writer.flush();
                    }
                }
            }
            r
        });
        let recv = receive(ctx, reader, &req_rx, &ev_tx, inc.as_mut());
        match &recv {
            Err(e) if opts.peer_sends_stats && e.is_local_file_error() => {
                local_failure.store(e.exit_code(), std::sync::atomic::Ordering::SeqCst);
                drop((req_rx, ev_tx));
                drain_until_peer_leaves(reader, closer);
            }
            Err(e) if matches!(closer, Closer::Fd(_)) && e.is_local_file_error() => {
                leave_open.store(true, std::sync::atomic::Ordering::SeqCst);
                drop((req_rx, ev_tx));
            }
            Err(_) => {
                closer.close();
                drop((req_rx, ev_tx));
            }
            Ok(_) => drop((req_rx, ev_tx)),
        }
        let gen = gen
            .join()
            .unwrap_or_else(|_| Err(Error::Stream("generator panicked".into())));
        match (recv, gen) {
            (Ok(mut stats), Ok(g)) => {
                stats.errors += list.unconverted;
                if let Some(i) = inc {
                    stats.errors += i.totals.unconverted;
                    stats.later_lists = i.totals;
                }
                stats.deleted = g.deleted;
                stats.deleted_kinds = ctx.deleted_kinds();
                stats.created = g.created;
                stats.created[0] = stats.created[0].saturating_sub(stats.unsent_new);
                stats.errors +=
                    g.errors + ctx.delete_errors.load(std::sync::atomic::Ordering::Relaxed);
                stats.io_error |= list.io_error
                    | reader.oob.io_error
                    | ctx
                        .later_io_error
                        .load(std::sync::atomic::Ordering::Relaxed);
                let skipped = ctx
                    .skipped_deletions
                    .load(std::sync::atomic::Ordering::Relaxed);
                if skipped > 0 {
                    // (A server's generator sent the warning to the client already.)
                    if ctx.is_client() {
                        eprintln!(
                            "Deletions stopped due to --max-delete limit ({skipped} skipped)"
                        );
                    }
                    stats.io_error |= IOERR_DEL_LIMIT;
                }
                stats.errors += u64::from(reader.oob.xfer_error);
                Ok(stats)
            }
            // The receiver's error is the more precise one unless it only saw the shutdown
            // (and the generator's is not just that the receiver stopped).
            (Err(e), Err(g)) => Err(
                if !opts.read_batch
                    && matches!(e, Error::UnexpectedEof { .. } | Error::Io { .. })
                    && !is_receiver_ended(&g)
                {
                    g
                } else {
                    e
                },
            ),
            (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
        }
    })
}

const RECEIVER_ENDED: &str = "receiver ended early";

/// The generator's error when the receiver stopped (for its own reason) first.
fn receiver_ended() -> Error {
    Error::Stream(RECEIVER_ENDED.into())
}

fn is_receiver_ended(e: &Error) -> bool {
    matches!(e, Error::Stream(m) if m == RECEIVER_ENDED)
}

/// Reads (and drops) what the peer still sends until it goes: its answer to our
/// MSG_ERROR_EXIT, or the end of the stream. Bounded: after 10 seconds the connection is
/// closed.
pub(crate) fn drain_until_peer_leaves<R: Read>(reader: &mut MuxReader<R>, closer: &Closer) {
    let (done_tx, done_rx) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        s.spawn(move || {
            if done_rx
                .recv_timeout(std::time::Duration::from_secs(10))
                .is_err()
            {
                closer.close();
            }
        });
        let mut buf = [0u8; 4096];
        while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
        let _ = done_tx.send(());
    });
}

/// A client ending the session for a reason of its own tells the peer the exit code
/// (MSG_ERROR_EXIT, as stock's exit_cleanup does) and waits for it to go, so the peer exits
/// quietly instead of reporting a connection cut short. The wait is bounded.
fn error_exit_handshake<R: Read + Send, W: Write + Send>(
    reader: &mut MuxReader<R>,
    writer: &mut MuxWriter<W>,
    closer: &Closer,
    code: i32,
) {
    if writer.send_msg_int(MsgTag::ErrorExit, code).is_err() || writer.flush().is_err() {
        return;
    }
    drain_until_peer_leaves(reader, closer);
}

/// Stock's receiver looks at `--backup-dir` and `--temp-dir` before anything is
/// transferred: either one that is there but not a directory, or a temp dir that is not
/// there at all, ends the transfer (code 1); `--info=backup` says whether the backup dir
/// is new.
fn check_option_dirs(ctx: &Ctx<'_>) -> Result<()> {
    let o = ctx.opts;
    if o.list_only {
        return Ok(());
    }
    let root = ctx.dest.root();
    // Named as the receiver, working in the destination directory, sees them.
    let shown = |p: &std::path::Path| -> String {
        if let Some((_, named)) = o.dirs_shown.iter().find(|(r, _)| r == p) {
            return named.clone();
        }
        let rel = match p.strip_prefix(&root) {
            Ok(rel) if !rel.as_os_str().is_empty() => rel,
            _ => p,
        };
        let mut text =
            rtsync_engine::report::lossless_text(rel.as_os_str().as_encoded_bytes()).into_owned();
        // (A trailing slash, which the prefix strip drops, is part of the name shown.)
        if p.as_os_str().as_encoded_bytes().ends_with(b"/") && !text.ends_with('/') {
            text.push('/');
        }
        text
    };
    let stat = |p: &std::path::Path| -> std::io::Result<std::fs::Metadata> {
        let m = std::fs::metadata(o.option_dir(p, None)?)?;
        // (A name with a trailing slash looked up in a module is still a directory's.)
        if p.as_os_str().as_encoded_bytes().ends_with(b"/") && !m.is_dir() {
            return Err(std::io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        Ok(m)
    };
    let backup_dir = o.backup.as_ref().and_then(|b| b.dir.as_deref());
    let found =
        rtsync_engine::local::unusable_option_dir(backup_dir, o.temp_dir.as_deref(), stat, shown);
    if let Some((message, code, at)) = found {
        return Err(Error::Bare { message, code, at });
    }
    if let (Some(dir), true) = (backup_dir, o.info_backup) {
        let new = if stat(dir).is_ok() { "" } else { "(new) " };
        ctx.gen_say(MsgTag::Info, format!("{new}backup_dir is {}\n", shown(dir)));
    }
    Ok(())
}

#[derive(Default)]
struct GenResult {
    deleted: u64,
    errors: u64,
    created: [u64; 5],
    /// Directories whose extraneous entries are deleted later (`--delete-after/-delay`).
    deferred_deletes: Vec<Deferred>,
    /// A directory that could not be made: its contents are skipped.
    failed_dir: Option<Vec<u8>>,
    /// The entry at hand lies below something that is not a directory: nothing is there,
    /// but not as `--existing` means (stock's stat_errno is ENOTDIR, not ENOENT), so it is
    /// tried and fails as stock's does.
    below_non_dir: bool,
    /// Listed directories `--ignore-existing` left alone (something else is in their
    /// place): stock's touch_up_dirs still sets their times at the end, on whatever is
    /// there (without following a symlink).
    retouch: Vec<(PathBuf, i64, u32)>,
}

/// A name to delete: list name, path, whether it is a directory.
type Extraneous = (Vec<u8>, PathBuf, bool);

/// Deletions put off until after the transfer.
enum Deferred {
    /// Scanned then, against the whole list.
    Dir(FileEntry),
    /// Found at the directory's turn (incremental recursion: its list is gone by then).
    Found(Vec<Extraneous>),
}

impl GenResult {
    /// Counts new items among `lines` (for `--stats`).
    fn count_created(&mut self, e: &FileEntry, lines: &[Line]) {
        if lines
            .iter()
            .any(|l| matches!(l, Line::Item(it, ..) if it.is_new))
        {
            self.created[rtsync_engine::report::kind_slot(e.kind)] += 1;
        }
    }
}

/// The generator's state while it walks the list (or the lists, one after another).
#[derive(Default)]
struct Walk {
    out: Vec<u8>,
    res: GenResult,
    refused_dir: Option<Vec<u8>>,
    dry_missing: Option<Vec<u8>>,
    skipped_dir: Option<Vec<u8>>,
    dest_exists: bool,
    /// Hard-link groups of other kinds than regular files: the member that leads each (its
    /// index and name).
    hlink_leader: HashMap<(u64, u64), (usize, Vec<u8>)>,
    /// Hard-link groups of regular files, handled with rsync's chain (see [`LinkGroup`]).
    groups: HashMap<(u64, u64), LinkGroup>,
    /// The last member of each group in the lists known so far (its index).
    last_member: HashMap<(u64, u64), usize>,
    /// Group members being transferred, by index: their group and name.
    sent_members: HashMap<usize, ((u64, u64), Vec<u8>)>,
    /// Lines of members linked to a transferred leader: printed at the end of the first
    /// phase, where stock's generator reports them.
    linked_late: Vec<(usize, Vec<Line>)>,
    /// Directories whose attributes are set once their contents are in place.
    dirs_to_fix: Vec<FileEntry>,
    /// Incremental recursion: directories created while their parent's list was handled
    /// (itemized as new when their own list comes).
    created_early: HashSet<Vec<u8>>,
    /// Incremental recursion: indexes requested and not finished yet.
    in_flight: BTreeSet<usize>,
}

impl Walk {
    /// Handles one entry (the body of rsync's recv_generator for our purposes).
    #[allow(clippy::too_many_arguments)]
    fn entry<W: Write>(
        &mut self,
        ctx: &Ctx<'_>,
        w: &mut MuxWriter<W>,
        ndxw: &mut NdxWriter,
        req_tx: &mpsc::Sender<Request>,
        ndx: usize,
        e: &FileEntry,
        content: bool,
        names: &HashSet<&[u8]>,
        created: bool,
    ) -> Result<()> {
        if refused(ctx, w, e, &mut self.refused_dir)? {
            self.res.errors += 1;
            ctx.log.ready(ndx, Vec::new());
            return Ok(());
        }
        let mut link_group = None;
        let mut other_group = None;
        if let Some(key) = e
            .hardlink_key
            .filter(|_| ctx.opts.hard_links && !ctx.opts.list_only)
        {
            if e.kind == rtsync_tree::FileKind::Regular {
                let group = self.groups.entry(key).or_default();
                if let Some(leader) = group.leader.clone() {
                    return self.link_follower(ctx, w, ndxw, (ndx, e.clone(), leader));
                }
                if group.sent.is_some() {
                    self.wait_for_leader(ctx, key, ndx, e);
                    return Ok(());
                }
                link_group = Some(key);
            } else {
                // Symlinks, devices and specials are made at once: a member whose group has
                // a member in place is linked to it now; otherwise it is made itself and,
                // once in place, leads the group (stock's hard_link_check/finish_hard_link).
                if let Some((_, leader)) = self.hlink_leader.get(&key) {
                    let leader = leader.clone();
                    return self.link_follower(ctx, w, ndxw, (ndx, e.clone(), leader));
                }
                other_group = Some(key);
            }
        }
        // `-n`: entries below a directory that would have been created are new as well
        // (stock's dry_missing_dir), and an absent destination holds nothing.
        // --existing: nothing below a directory that is not there.
        if let Some(d) = &self.skipped_dir {
            if is_below(&e.name, d) {
                ctx.log.ready(ndx, Vec::new());
                return Ok(());
            }
            self.skipped_dir = None;
        }
        if ctx.opts.existing
            && e.is_dir()
            && e.name != b"."
            && fs::symlink_metadata(ctx.dest.dir_path_of(&e.name))
                .is_err_and(|err| err.raw_os_error() != Some(libc::ENOTDIR))
        {
            self.skipped_dir = Some(e.name.clone());
        }
        let mut missing = created;
        if ctx.opts.dry_run {
            if let Some(d) = &self.dry_missing {
                if is_below(&e.name, d) {
                    missing = true;
                } else {
                    self.dry_missing = None;
                }
            }
            if !missing && !self.dest_exists {
                missing = true;
            }
        }
        if ctx.opts.make_parents && !ctx.opts.list_only && !ctx.opts.dry_run {
            ctx.dest.make_parents(&e.name);
        }
        if !ctx.opts.list_only && !missing {
            if let Err(err) = ctx.dest.check_parents(&e.name) {
                let not_dir = crate::local::is_not_a_directory(&err);
                // A file where a parent directory should be: stock's generator finds
                // nothing (ENOTDIR) and tries to make a directory, symlink or device, which
                // fails with that; only a regular file's stat is reported. (Nothing made
                // there can leave the destination: the path stops at a file inside it.)
                // `-n` makes nothing, so any other parent trouble is a missing parent.
                let tried = not_dir && e.kind != rtsync_tree::FileKind::Regular;
                if tried || (ctx.opts.dry_run && !not_dir) {
                    missing = true;
                    self.res.below_non_dir = not_dir;
                } else {
                    if not_dir {
                        // As stock's generator, whose stat of the name fails.
                        let shown = ctx.naming.path(&ctx.dest.path_of(&e.name));
                        ctx.gen_error(format!(
                            "rsync: [generator] recv_generator: failed to stat {shown}: Not a directory (20)\n"
                        ));
                    } else {
                        ctx.gen_error(format!("rsync: [generator] {err}\n"));
                    }
                    send_said(ctx, w)?;
                    self.res.errors += 1;
                    ctx.log.ready(ndx, Vec::new());
                    return Ok(());
                }
            }
        }
        // (What `--ignore-existing` leaves in a directory's place stays: its contents are
        // looked for below it, and are not there.)
        if ctx.opts.dry_run
            && e.is_dir()
            && self.dry_missing.is_none()
            && (missing
                || fs::symlink_metadata(ctx.dest.dir_path_of(&e.name))
                    .map_or(true, |m| !m.is_dir() && !ctx.opts.ignore_existing))
        {
            self.dry_missing = Some(e.name.clone());
        }
        if let Some(key) = link_group {
            // Not the last member known and nothing here: a later member is transferred
            // and this one linked to it.
            let last = self.last_member.get(&key).is_none_or(|&l| l <= ndx);
            if !last
                && !ctx.opts.existing
                && (missing || fs::symlink_metadata(ctx.dest.path_of(&e.name)).is_err())
            {
                self.wait_for_leader(ctx, key, ndx, e);
                return Ok(());
            }
        }
        let mut step = generate_entry(ctx, ndx, e, names, &mut self.res, missing, content)?;
        let xattr_request = match &mut step {
            Step::Done(lines) | Step::FixDir(lines, _) => xattr_local(ctx, ndx, e, lines),
            Step::Request { .. } => None,
        };
        if let Some(dir) = self.res.failed_dir.take() {
            // Nothing below a directory that could not be made (stock's skip_dir).
            self.skipped_dir = Some(dir);
        }
        send_said(ctx, w)?;
        if let (Some(key), Step::Done(lines)) = (other_group, &step) {
            let in_place = if ctx.opts.dry_run {
                lines.iter().any(|l| matches!(l, Line::Item(..)))
            } else {
                fs::symlink_metadata(ctx.dest.path_of(&e.name))
                    .is_ok_and(|m| rtsync_tree::FileKind::from_mode(m.mode()) == Some(e.kind))
            };
            if in_place {
                self.hlink_leader.insert(key, (ndx, e.name.clone()));
            }
        }
        if let Some(key) = link_group {
            match &step {
                Step::Request { .. } if !ctx.opts.dry_run || ctx.opts.batch_only => {
                    let group = self.groups.entry(key).or_default();
                    group.sent = Some(ndx);
                    group.deferred = group.waiting.len();
                    self.sent_members.insert(ndx, (key, e.name.clone()));
                }
                // `-n`: as if transferred.
                Step::Request { .. } => {
                    self.leader_done(ctx, w, ndxw, key, (ndx, &e.name), false)?
                }
                Step::Done(lines)
                    if lines.iter().any(|l| matches!(l, Line::Item(..)))
                        || fs::symlink_metadata(ctx.dest.path_of(&e.name))
                            .is_ok_and(|m| m.is_file()) =>
                {
                    self.leader_done(ctx, w, ndxw, key, (ndx, &e.name), false)?;
                }
                _ => {}
            }
        }
        match step {
            Step::Done(lines) => {
                if ctx.opts.remove_source_files && !e.is_dir() {
                    // Stock reports current files and every symlink or special it made or
                    // found in place.
                    let regular = e.kind == rtsync_tree::FileKind::Regular;
                    let current = lines
                        .iter()
                        .any(|l| matches!(l, Line::Item(it, ..) if !regular || it.update == b'.'));
                    if current {
                        send_success(w, ctx.wire(ndx))?;
                    }
                }
                self.res.count_created(e, &lines);
                notify_sender(ctx, w, ndxw, &mut self.out, ndx, &lines)?;
                if let Some(nums) = &xattr_request {
                    crate::xattrs::put_request(&mut self.out, nums);
                }
                ctx.log.ready(ndx, lines);
                if self.out.len() > 1 << 16 {
                    w.write_all(&self.out)
                        .map_err(|e| Error::io("writing to sender", e))?;
                    self.out.clear();
                }
            }
            Step::FixDir(lines, fixed) => {
                self.res.count_created(e, &lines);
                notify_sender(ctx, w, ndxw, &mut self.out, ndx, &lines)?;
                if let Some(nums) = &xattr_request {
                    crate::xattrs::put_request(&mut self.out, nums);
                }
                ctx.log.ready(ndx, lines);
                self.dirs_to_fix.push(fixed);
            }
            Step::Request {
                head,
                sums,
                basis,
                existing_mode,
                item,
                append,
                before,
                pin,
            } => {
                if let Some(line) = &item {
                    self.res.count_created(e, std::slice::from_ref(line));
                }
                if !before.is_empty() {
                    notify_sender(ctx, w, ndxw, &mut self.out, ndx, &before)?;
                    ctx.log.pending(ndx, before);
                }
                if ctx.inc {
                    self.in_flight.insert(ndx);
                }
                request(
                    ctx,
                    w,
                    req_tx,
                    ndxw,
                    &mut self.out,
                    ndx,
                    e,
                    (head, sums, basis, existing_mode, item, append, pin),
                )?;
            }
        }
        Ok(())
    }

    /// A group member waits for its leader (it holds its list until then).
    fn wait_for_leader(&mut self, ctx: &Ctx<'_>, key: (u64, u64), ndx: usize, e: &FileEntry) {
        ctx.log.pending(ndx, Vec::new());
        if ctx.inc {
            self.in_flight.insert(ndx);
        }
        self.groups
            .entry(key)
            .or_default()
            .waiting
            .push((ndx, e.clone()));
    }

    /// Member `name` of group `key` is in place: the waiting members are linked to it, and
    /// later ones will be.
    ///
    /// In the order of stock's finish_hard_link, which walks the group's chain from the
    /// leader: first the members that came while it was in flight, in list order (each was
    /// chained after the one before it), then those deferred to it, last one first (the
    /// list's own chain). Their lines follow the leader's: right after it when it was found
    /// in place (`transferred` false), at the end of the first phase when it was transferred
    /// (where stock's generator hears of it).
    #[allow(clippy::too_many_arguments)]
    fn leader_done<W: Write>(
        &mut self,
        ctx: &Ctx<'_>,
        w: &mut MuxWriter<W>,
        ndxw: &mut NdxWriter,
        key: (u64, u64),
        (leader_ndx, name): (usize, &[u8]),
        transferred: bool,
    ) -> Result<()> {
        let group = self.groups.entry(key).or_default();
        group.leader = Some(name.to_vec());
        let mut waiting = std::mem::take(&mut group.waiting);
        // (Nothing was in flight: every one waiting was deferred to this member.)
        let deferred = match group.sent.take() {
            Some(_) => group.deferred.min(waiting.len()),
            None => waiting.len(),
        };
        group.deferred = 0;
        let came: Vec<_> = waiting.drain(deferred..).collect();
        let mut lines = Vec::new();
        for (ndx, e) in came.into_iter().chain(waiting.into_iter().rev()) {
            self.in_flight.remove(&ndx);
            lines.extend(self.link_follower_lines(ctx, w, ndxw, (ndx, &e, name))?);
            ctx.log.ready(ndx, Vec::new());
        }
        if transferred {
            self.linked_late.push((leader_ndx, lines));
        } else if !lines.is_empty() {
            ctx.log.after(leader_ndx, lines);
        }
        Ok(())
    }

    /// Prints the lines of members linked to transferred leaders, in the leaders' order
    /// (the order stock's receiver reports them done in).
    fn print_linked_late(&mut self, ctx: &Ctx<'_>) {
        let mut groups = std::mem::take(&mut self.linked_late);
        groups.sort_by_key(|(leader, _)| *leader);
        for line in groups.into_iter().flat_map(|(_, lines)| lines) {
            ctx.log.late(line);
        }
    }

    /// A transfer is done with: a group member being transferred now leads its group.
    fn transfer_done<W: Write>(
        &mut self,
        ctx: &Ctx<'_>,
        w: &mut MuxWriter<W>,
        ndxw: &mut NdxWriter,
        ndx: usize,
    ) -> Result<()> {
        if let Some((key, name)) = self.sent_members.remove(&ndx) {
            self.leader_done(ctx, w, ndxw, key, (ndx, &name), true)?;
        }
        Ok(())
    }

    /// Groups whose members all wait and none leads (the member they waited for was
    /// skipped, or will not come soon enough): the last waiting member is handled as the
    /// one to transfer, as rsync's handle_skipped_hlink does.
    #[allow(clippy::too_many_arguments)]
    fn release_groups<W: Write>(
        &mut self,
        ctx: &Ctx<'_>,
        w: &mut MuxWriter<W>,
        ndxw: &mut NdxWriter,
        req_tx: &mpsc::Sender<Request>,
    ) -> Result<()> {
        let stuck: Vec<(u64, u64)> = self
            .groups
            .iter()
            .filter(|(_, g)| g.leader.is_none() && g.sent.is_none() && !g.waiting.is_empty())
            .map(|(k, _)| *k)
            .collect();
        for key in stuck {
            loop {
                let group = self.groups.entry(key).or_default();
                if group.leader.is_some() || group.sent.is_some() {
                    break;
                }
                let Some((ndx, e)) = group.waiting.pop() else {
                    break;
                };
                self.in_flight.remove(&ndx);
                self.last_member.insert(key, ndx);
                let names: HashSet<&[u8]> = HashSet::new();
                self.entry(ctx, w, ndxw, req_tx, ndx, &e, true, &names, false)?;
            }
        }
        Ok(())
    }

    /// Notes the hard-link members of a list the generator knows of (which is last).
    fn know_members(&mut self, list: &FileList, ndx_start: usize) {
        for (i, e) in list.entries.iter().enumerate() {
            if let (Some(key), true) = (e.hardlink_key, list.active[i]) {
                self.last_member.insert(key, ndx_start + i);
            }
        }
    }

    /// Links a hard-link follower to its group's leader (in place by now) and tells the
    /// sender (`hf+++++++++ NAME => LEADER`).
    fn link_follower<W: Write>(
        &mut self,
        ctx: &Ctx<'_>,
        w: &mut MuxWriter<W>,
        ndxw: &mut NdxWriter,
        (ndx, e, leader): (usize, FileEntry, Vec<u8>),
    ) -> Result<()> {
        let lines = self.link_follower_lines(ctx, w, ndxw, (ndx, &e, &leader))?;
        ctx.log.ready(ndx, lines);
        Ok(())
    }

    /// [`Walk::link_follower`] without logging: the follower's line, if it has one.
    fn link_follower_lines<W: Write>(
        &mut self,
        ctx: &Ctx<'_>,
        w: &mut MuxWriter<W>,
        ndxw: &mut NdxWriter,
        (ndx, e, leader): (usize, &FileEntry, &[u8]),
    ) -> Result<Vec<Line>> {
        let from = ctx.dest.path_of(leader);
        let to = ctx.dest.path_of(&e.name);
        // (-n: a parent that would have been created is no error.)
        if !ctx.opts.dry_run && ctx.dest.check_parents(&e.name).is_err() {
            self.res.errors += 1;
            return Ok(Vec::new());
        }
        if ctx.opts.ignore_existing && fs::symlink_metadata(&to).is_ok() {
            // --ignore-existing comes first: a member already there stays as it is, linked
            // or not (stock's generator skips it before its hard-link check).
            return Ok(Vec::new());
        }
        let same = match (fs::symlink_metadata(&from), fs::symlink_metadata(&to)) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        // A member missing here whose --link-dest twin is the leader's inode is linked as an
        // unchanged item (stock's hard_link_check), unless every item is itemized (-ii).
        let twin_of_leader = !same
            && !ctx.opts.report_all
            && fs::symlink_metadata(&to).is_err()
            && fs::symlink_metadata(&from).is_ok_and(|m| alt::holds_leader(ctx, &e.name, &m));
        // What the link replaces is itemized against, when it is of the member's kind.
        let existing = fs::symlink_metadata(&to)
            .ok()
            .filter(|m| rtsync_tree::FileKind::from_mode(m.mode()) == Some(e.kind));
        let letter = crate::log::itemize(e, None, b'h', entry::preserve(ctx.opts)).kind;
        let mut lines = Vec::new();
        if same {
            // Already linked: an unchanged item (a symlink names its target, as stock's
            // log does for an item without a leader's name).
            let suffix = match (&e.link_target, e.kind) {
                (Some(t), rtsync_tree::FileKind::Symlink) => [&b" -> "[..], t].concat(),
                _ => Vec::new(),
            };
            lines.push(Line::Linked(
                rtsync_engine::itemize::Itemize::new(b'h', letter),
                e.name.clone(),
                suffix,
                Some(Box::new(crate::log::facts(e))),
            ));
            if ctx.opts.remove_source_files {
                // In place, so the sender may remove its copy.
                send_success(w, ctx.wire(ndx))?;
            }
        }
        if !same {
            let old = fs::symlink_metadata(&to).ok();
            if !entry::keep_replaced(ctx, e, &to, old.as_ref()) {
                self.res.errors += 1;
                return Ok(lines);
            }
            let linked = if ctx.opts.dry_run {
                Ok(())
            } else {
                // Whatever is there is replaced by rename (stock's atomic_create); a
                // directory in the way was made way for by the generator.
                let replacing = match fs::symlink_metadata(&to) {
                    Ok(m) if m.is_dir() => {
                        let _ = local::remove_any(&to);
                        false
                    }
                    Ok(_) => true,
                    Err(_) => false,
                };
                rtsync_tree::fsops::create_over(&to, replacing, |p| fs::hard_link(&from, p))
            };
            if let Err(f) = linked {
                let what = entry::create_failed(ctx, &e.name, &f, |n| {
                    format!(
                        "link {n} => {} failed",
                        rtsync_engine::report::lossless_text(leader)
                    )
                });
                ctx.gen_error(say::syserr("generator", &what, &f.err));
                send_said(ctx, w)?;
                self.res.errors += 1;
            } else {
                // A file replaced by the link is itemized against what it was.
                let mut it = match existing.as_ref() {
                    Some(m) => crate::log::itemize(e, Some(m), b'h', entry::preserve(ctx.opts)),
                    None => {
                        let mut it = rtsync_engine::itemize::Itemize::new(b'h', letter);
                        it.is_new = true;
                        it
                    }
                };
                it.update = b'h';
                if twin_of_leader {
                    lines.push(Line::Linked(
                        rtsync_engine::itemize::Itemize::new(b'h', letter),
                        e.name.clone(),
                        Vec::new(),
                        Some(Box::new(crate::log::facts(e))),
                    ));
                    if ctx.opts.remove_source_files {
                        send_success(w, ctx.wire(ndx))?;
                    }
                    return Ok(lines);
                }
                let mut suffix = b" => ".to_vec();
                suffix.extend_from_slice(leader);
                lines.push(Line::Item(
                    it,
                    e.name.clone(),
                    suffix,
                    Some(Box::new(crate::log::facts(e))),
                ));
                if ctx.opts.remove_source_files {
                    send_success(w, ctx.wire(ndx))?;
                }
                // The sender logs it as `hf+++++++++ name => leader`.
                let iflags = item::LOCAL_CHANGE | item::XNAME_FOLLOWS | iflags_of(&it);
                ndxw.put(&mut self.out, ctx.wire(ndx));
                self.out.extend_from_slice(&iflags.to_le_bytes());
                crate::varint::put_vstring(&mut self.out, leader)?;
            }
        }
        Ok(lines)
    }

    /// Links the followers of every group whose leader is in place by now (or was sent and
    /// is done with, whatever became of it).
    fn link_remaining<W: Write>(
        &mut self,
        ctx: &Ctx<'_>,
        w: &mut MuxWriter<W>,
        ndxw: &mut NdxWriter,
    ) -> Result<()> {
        let mut sent: Vec<usize> = self.sent_members.keys().copied().collect();
        sent.sort_unstable();
        for ndx in sent {
            self.transfer_done(ctx, w, ndxw, ndx)?;
        }
        Ok(())
    }

    /// Puts back a directory's permissions (made writable for us while its contents were
    /// written) and its time (changed by them) once its contents are in place, silently, as
    /// stock's touch_up_dirs (its attributes were set, failures reported, at its turn).
    /// `e` carries the permissions it ends up with.
    fn fix_dir(&mut self, ctx: &Ctx<'_>, e: &FileEntry) {
        let path = ctx.dest.dir_path_of(&e.name);
        let Ok(md) = fs::symlink_metadata(&path) else {
            return;
        };
        if !md.is_dir() {
            return;
        }
        let a = &ctx.opts.attrs;
        if a.fake_super {
            let _ = say::store_fake(&path, e, a, &md, e.perms());
        } else if md.mode() & 0o7777 != e.perms() {
            let _ = rtsync_tree::fsops::set_perms(&path, e.perms());
        }
        if a.times && !a.omit_dir_times && !crate::local::same_mtime(a.modify_window, &md, e) {
            let _ = rtsync_tree::fsops::set_mtime(&path, e.mtime, e.mtime_nsec);
        }
    }

    /// Sends a request for a file that failed verification, with whole-file sums.
    fn redo(
        &mut self,
        ctx: &Ctx<'_>,
        ndxw: &mut NdxWriter,
        req_tx: &mpsc::Sender<Request>,
        ndx: usize,
        e: FileEntry,
    ) -> Result<()> {
        // Itemized again against what is there now (an in-place update was kept).
        let now = fs::symlink_metadata(ctx.dest.path_of(&e.name))
            .ok()
            .filter(|m| m.file_type().is_file());
        let it = crate::log::itemize(&e, now.as_ref(), b'>', entry::preserve(ctx.opts));
        let iflags = item::TRANSFER | iflags_of(&it);
        let head = SumHead::default();
        req_tx
            .send(Request {
                ndx,
                item: Some(crate::log::line(&e, it)),
                head,
                basis: None,
                existing_mode: now.as_ref().map(|m| m.mode()),
                append: false,
                entry: e,
                _pin: None,
            })
            .map_err(|_| Error::Stream("receiver gone".into()))?;
        ndxw.put(&mut self.out, ctx.wire(ndx));
        self.out.extend_from_slice(&iflags.to_le_bytes());
        head.put(&mut self.out);
        Ok(())
    }
}

/// A hard-link group of regular files, as rsync's generator chains it: members come in list
/// order; one whose destination is missing waits for a later member, unless it is the last
/// known, so the last member is the one transferred; a member already up to date leads at
/// once. When the leader is in place, the waiting members are linked to it
/// (`hf+++++++++ NAME => LEADER`), and later members are linked as they come.
#[derive(Default)]
struct LinkGroup {
    /// The member in place that the others link to.
    leader: Option<Vec<u8>>,
    /// A member being transferred (its index).
    sent: Option<usize>,
    /// Members waiting for the leader: index and entry.
    waiting: Vec<(usize, FileEntry)>,
    /// How many of `waiting` were deferred to a later member before one was sent (the rest
    /// came while it was in flight).
    deferred: usize,
}

/// A list the generator has started (incremental recursion).
struct Started {
    ndx_start: usize,
    len: usize,
    /// Its directory, whose attributes are set when the list is done.
    fix: Option<FileEntry>,
}

fn generate<W: Write>(
    ctx: &Ctx<'_>,
    w: &mut MuxWriter<W>,
    req_tx: mpsc::Sender<Request>,
    ev_rx: mpsc::Receiver<Event>,
) -> Result<GenResult> {
    let wio = |e| Error::io("writing to sender", e);
    let mut ndxw = NdxWriter::new(ctx.neg.protocol);
    let mut g = Walk {
        dest_exists: fs::symlink_metadata(ctx.dest.root()).is_ok_and(|m| m.is_dir()),
        ..Walk::default()
    };
    let entries = &ctx.list.entries;
    let mut redo = Vec::new();
    if ctx.opts.delta_notice {
        // Stock's generator's first word.
        let text = if ctx.opts.whole_file && ctx.opts.append == 0 {
            "delta-transmission disabled for local transfer or --whole-file"
        } else {
            "delta-transmission enabled"
        };
        if ctx.opts.peer_sends_stats {
            ctx.log.header(vec![Line::Info(text.into())]);
        } else {
            send_message(w, MsgTag::Info, &format!("{text}\n"))?;
        }
    }
    if ctx.inc {
        generate_lists(ctx, w, &mut ndxw, &req_tx, &ev_rx, &mut g)?;
    } else {
        let names: HashSet<&[u8]> = entries.iter().map(|e| &e.name[..]).collect();
        if ctx.opts.delete && ctx.opts.delete_before && !ctx.opts.list_only {
            // --delete-before: one pass over the existing content directories first.
            let mut header = Vec::new();
            for (ndx, e) in entries.iter().enumerate() {
                let content = ctx.list.content_dir.get(ndx).copied().unwrap_or(true);
                if !ctx.list.active[ndx] || !e.is_dir() || !content {
                    continue;
                }
                if ctx.opts.debug_del && e.top_dir {
                    let named = [deleting_in(e)];
                    notify_sender(ctx, w, &mut ndxw, &mut g.out, ndx, &named)?;
                    header.extend(named);
                }
                if ctx.dest.check_parents(&e.name).is_err() {
                    continue;
                }
                let path = ctx.dest.dir_path_of(&e.name);
                if !fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                    continue;
                }
                let (n, dels) = delete_extraneous(ctx, e, &path, &names);
                g.res.deleted += n;
                notify_sender(ctx, w, &mut ndxw, &mut g.out, ndx, &dels)?;
                header.extend(dels);
            }
            ctx.log.header(header);
        }
        g.know_members(ctx.list, 0);
        // Stock's generator calls maybe_flush_socket every 200 entries, which (its list
        // whole from the start, and no --timeout keeping the clock) flushes what it holds:
        // the messages said after it go behind those requests.
        let mut next_loopchk = 0;
        for (ndx, e) in entries.iter().enumerate() {
            if !ctx.list.active[ndx] {
                ctx.log.ready(ndx, Vec::new());
                continue;
            }
            let content = ctx.list.content_dir.get(ndx).copied().unwrap_or(true);
            g.entry(ctx, w, &mut ndxw, &req_tx, ndx, e, content, &names, false)?;
            if ndx >= next_loopchk {
                next_loopchk += 200;
                if !ctx.opts.timed && !ctx.is_client() {
                    w.write_all(&g.out).and_then(|_| w.flush()).map_err(wio)?;
                    g.out.clear();
                }
            }
            if ctx.opts.hard_links {
                while let Ok(ev) = ev_rx.try_recv() {
                    match ev {
                        Event::Completed(ndx) => g.transfer_done(ctx, w, &mut ndxw, ndx)?,
                        Event::Redo(ndx, e) => redo.push((ndx, *e)),
                        Event::Success(ndx) => send_success(w, ctx.wire(ndx))?,
                        Event::Message(tag, text) => send_message(w, tag, &text)?,
                        _ => return Err(receiver_ended()),
                    }
                }
            }
        }
        g.release_groups(ctx, w, &mut ndxw, &req_tx)?;
        if ctx.opts.read_batch {
            // Tells the receiver the generator has decided on every entry.
            let _ = req_tx.send(Request {
                ndx: usize::MAX,
                item: None,
                head: SumHead::default(),
                basis: None,
                existing_mode: None,
                append: false,
                entry: no_entry(),
                _pin: None,
            });
        }
        // End of phase 1.
        ndxw.put(&mut g.out, NDX_DONE);
    }
    send_said(ctx, w)?;
    w.write_all(&g.out).and_then(|_| w.flush()).map_err(wio)?;
    g.out.clear();

    // Phase 2: refetch files that failed verification, with full-length sums (here: whole).
    // (With incremental recursion they were refetched before their list was done.)
    loop {
        match ev_rx.recv() {
            Ok(Event::Redo(ndx, e)) => redo.push((ndx, *e)),
            Ok(Event::Success(ndx)) => send_success(w, ctx.wire(ndx))?,
            Ok(Event::Message(tag, text)) => send_message(w, tag, &text)?,
            Ok(Event::PhaseDone) => break,
            Ok(Event::Completed(ndx)) => g.transfer_done(ctx, w, &mut ndxw, ndx)?,
            Ok(Event::List(_)) | Ok(Event::ListsEnd) => {
                return Err(Error::Protocol("file list after the end of lists".into()))
            }
            Ok(Event::Finished) | Err(_) => return Err(receiver_ended()),
        }
    }
    // Every leader is in place now (one that failed verification is redone below; its
    // followers keep the previous content until the next run): link the followers while the
    // sender still accepts item notices. (With `--delay-updates`, once they are renamed into
    // place, below.)
    let delay = ctx.opts.delay_updates;
    if !delay {
        g.link_remaining(ctx, w, &mut ndxw)?;
        g.print_linked_late(ctx);
    }
    for (ndx, e) in redo {
        g.redo(ctx, &mut ndxw, &req_tx, ndx, e)?;
    }
    let mut out = std::mem::take(&mut g.out);
    // The end of the redo phase, then (unless the receiver still has files to put in place)
    // of the phase `--delay-updates` needs.
    ndxw.put(&mut out, NDX_DONE);
    if !delay {
        ndxw.put(&mut out, NDX_DONE);
    }
    // (`-vv` names the top directories even when nothing is to go.)
    let named_tops = ctx.opts.debug_del && !ctx.inc && entries.iter().any(|e| e.top_dir);
    let late_delete = ctx.opts.delete_after && (!g.res.deferred_deletes.is_empty() || named_tops);
    if ctx.neg.protocol >= 31 && !late_delete {
        del_stats(ctx, &mut ndxw, &mut out);
        if !delay {
            ndxw.put(&mut out, NDX_DONE);
        }
    }
    let mut finished = false;
    if delay || late_delete {
        // Wait for the receiver to finish the redo phase (and move the delayed files).
        w.write_all(&out).and_then(|_| w.flush()).map_err(wio)?;
        out.clear();
        loop {
            match ev_rx.recv() {
                Ok(Event::PhaseDone) => break,
                Ok(Event::Finished) => {
                    finished = true;
                    break;
                }
                Ok(Event::Success(ndx)) => send_success(w, ctx.wire(ndx))?,
                Ok(Event::Message(tag, text)) => send_message(w, tag, &text)?,
                Ok(Event::Completed(ndx)) => g.transfer_done(ctx, w, &mut ndxw, ndx)?,
                Ok(_) => {}
                Err(_) => return Err(receiver_ended()),
            }
        }
    }
    if delay {
        g.link_remaining(ctx, w, &mut ndxw)?;
        g.print_linked_late(ctx);
        out.append(&mut g.out);
        ndxw.put(&mut out, NDX_DONE);
        if ctx.neg.protocol >= 31 && !late_delete {
            ndxw.put(&mut out, NDX_DONE);
        }
    }
    if late_delete {
        // --delete-after: once the receiver has finished the redo phase.
        let names: HashSet<&[u8]> = if ctx.inc {
            HashSet::new()
        } else {
            entries.iter().map(|e| &e.name[..]).collect()
        };
        let mut trailer = Vec::new();
        // A deferred deletion, or the name of a top directory (Err).
        let mut run =
            |d: std::result::Result<Deferred, Line>, trailer: &mut Vec<Line>| -> Result<()> {
                let (n, dels) = match d {
                    Ok(Deferred::Dir(e)) => {
                        delete_extraneous(ctx, &e, &ctx.dest.dir_path_of(&e.name), &names)
                    }
                    Ok(Deferred::Found(gone)) => delete_found(ctx, gone),
                    Err(named) => (0, vec![named]),
                };
                g.res.deleted += n;
                notify_sender(ctx, w, &mut ndxw, &mut out, 0, &dels)?;
                trailer.extend(dels);
                Ok(())
            };
        let mut deferred = std::mem::take(&mut g.res.deferred_deletes)
            .into_iter()
            .peekable();
        if named_tops {
            // In list order, each top directory named before its deletions (stock's
            // do_delete_pass).
            for (ndx, e) in entries.iter().enumerate() {
                if ctx.list.active[ndx] && e.top_dir {
                    run(Err(deleting_in(e)), &mut trailer)?;
                }
                while deferred
                    .peek()
                    .is_some_and(|d| matches!(d, Deferred::Dir(x) if x.name == e.name))
                {
                    if let Some(d) = deferred.next() {
                        run(Ok(d), &mut trailer)?;
                    }
                }
            }
        }
        for d in deferred {
            run(Ok(d), &mut trailer)?;
        }
        ctx.log.trailer(trailer);
        if ctx.neg.protocol >= 31 {
            del_stats(ctx, &mut ndxw, &mut out);
            ndxw.put(&mut out, NDX_DONE);
        }
    }
    w.write_all(&out).and_then(|_| w.flush()).map_err(wio)?;
    out.clear();
    while !finished {
        match ev_rx.recv() {
            Ok(Event::Finished) => finished = true,
            Ok(Event::Success(ndx)) => send_success(w, ctx.wire(ndx))?,
            Ok(Event::Message(tag, text)) => send_message(w, tag, &text)?,
            Ok(_) => {}
            Err(_) => return Err(receiver_ended()),
        }
    }
    // Hard links, then directory metadata (after their contents changed), and only then the
    // goodbye: the sender (and a client waiting on it) must not see the end before the tree
    // is final.
    for e in std::mem::take(&mut g.dirs_to_fix).into_iter().rev() {
        g.fix_dir(ctx, &e);
    }
    for (path, mtime, nsec) in std::mem::take(&mut g.res.retouch) {
        let _ = rtsync_tree::fsops::set_mtime(&path, mtime, nsec);
    }
    let skipped = ctx
        .skipped_deletions
        .load(std::sync::atomic::Ordering::Relaxed);
    if skipped > 0 && !ctx.is_client() {
        ctx.gen_say(
            MsgTag::Warning,
            format!("Deletions stopped due to --max-delete limit ({skipped} skipped)\n"),
        );
    }
    // Every message before the goodbye.
    send_said(ctx, w)?;
    ndxw.put(&mut out, NDX_DONE);
    w.write_all(&out).and_then(|_| w.flush()).map_err(wio)?;
    Ok(g.res)
}

/// NDX_DEL_STATS and the deletions per kind, when stock's generator reports them (when
/// deleting or forcing; a missing source's deletions count only then).
fn del_stats(ctx: &Ctx<'_>, ndxw: &mut NdxWriter, out: &mut Vec<u8>) {
    if ctx.opts.delete || ctx.opts.force {
        ndxw.put(out, NDX_DEL_STATS);
        for v in ctx.deleted_kinds() {
            put_varint(out, v.min(i32::MAX as u64) as i32);
        }
    }
}

/// Files listed ahead before the generator starts a list with `-H` (stock:
/// MIN_FILECNT_LOOKAHEAD / 2).
const HLINK_LOOKAHEAD: usize = 500;

/// Incremental recursion: handles the lists as the receiver passes them on, each list's
/// directory first, and tells the sender (`NDX_DONE`) each time the oldest list is done.
fn generate_lists<W: Write>(
    ctx: &Ctx<'_>,
    w: &mut MuxWriter<W>,
    ndxw: &mut NdxWriter,
    req_tx: &mpsc::Sender<Request>,
    ev_rx: &mpsc::Receiver<Event>,
    g: &mut Walk,
) -> Result<()> {
    let mut lists = Intake::default();
    let mut started: VecDeque<Started> = VecDeque::new();
    // The first list is the caller's; the others come from the receiver.
    let mut first = Some(ctx.list);
    g.know_members(ctx.list, 1);
    let mut first_parent = ctx.first_parent.clone();
    let mut first_switch_done = false;
    loop {
        if ctx.opts.hard_links {
            // As stock's generator: with -H, some files are listed ahead before a list is
            // started, so that a group's later members are known (the last is transferred).
            loop {
                let listed: usize = started.iter().map(|l| l.len).sum::<usize>()
                    + lists
                        .waiting
                        .iter()
                        .map(|l| l.list.entries.len())
                        .sum::<usize>()
                    + first.map_or(0, |l| l.entries.len());
                if lists.eof || listed >= HLINK_LOOKAHEAD {
                    break;
                }
                lists.wait(ctx, w, ndxw, req_tx, ev_rx, g)?;
            }
        }
        let owned;
        let (list, ndx_start, parent) = if let Some(l) = first.take() {
            (l, 1, first_parent.take())
        } else if let Some(l) = lists.waiting.pop_front() {
            if !ctx.opts.hard_links && !first_switch_done {
                // Stock's generator reads lists only once it has run out (with -H it reads
                // ahead first), and its output goes out while it waits on the receiver —
                // when the pipe has to be read: at the first list after the top one; the
                // lists that came in the same read are parsed without any I/O. So the top
                // list's requests precede the later directories' deletions; later requests
                // may not (the deletion messages go ahead of data not yet sent).
                w.write_all(&g.out)
                    .map_err(|e| Error::io("writing to sender", e))?;
                g.out.clear();
                w.settle();
            }
            first_switch_done = true;
            owned = l;
            (&owned.list, owned.ndx_start, owned.parent.clone())
        } else if lists.eof {
            break;
        } else {
            // Nothing to do until the next list: no hard-link member may wait for one.
            g.release_groups(ctx, w, ndxw, req_tx)?;
            retire_lists(ctx, ndxw, g, &mut started, false)?;
            lists.wait(ctx, w, ndxw, req_tx, ev_rx, g)?;
            continue;
        };
        started.push_back(Started {
            ndx_start,
            len: list.entries.len(),
            fix: None,
        });
        let names: HashSet<&[u8]> = list.entries.iter().map(|e| &e.name[..]).collect();
        // The list's directory in full: its line, its deletions.
        match parent {
            Some((dir, content)) => {
                let created = g.created_early.remove(&dir.name);
                let fixes = g.dirs_to_fix.len();
                g.entry(
                    ctx,
                    w,
                    ndxw,
                    req_tx,
                    ndx_start - 1,
                    &dir,
                    content,
                    &names,
                    created,
                )?;
                // (--delete-delay: every directory is touched up at the end, after the
                // deletions, as stock does.)
                if g.dirs_to_fix.len() > fixes && !ctx.opts.delete_after {
                    started.back_mut().expect("just started").fix = g.dirs_to_fix.pop();
                }
            }
            None => ctx.log.ready(ndx_start - 1, Vec::new()),
        }
        for (i, e) in list.entries.iter().enumerate() {
            let ndx = ndx_start + i;
            if !list.active[i] {
                ctx.log.ready(ndx, Vec::new());
                continue;
            }
            if e.is_dir() {
                // Handled in full with its own list; made now so that its parent's
                // times can be set when this list is done.
                early_dir(ctx, g, e);
                ctx.log.ready(ndx, Vec::new());
                continue;
            }
            let content = list.content_dir.get(i).copied().unwrap_or(true);
            g.entry(ctx, w, ndxw, req_tx, ndx, e, content, &names, false)?;
            while let Ok(ev) = ev_rx.try_recv() {
                list_event(ctx, w, ndxw, req_tx, g, ev, &mut lists)?;
            }
            retire_lists(ctx, ndxw, g, &mut started, false)?;
        }
        retire_lists(ctx, ndxw, g, &mut started, false)?;
    }
    // Every list is handled: the rest retire as their transfers finish; the last `NDX_DONE`
    // ends phase 1.
    g.release_groups(ctx, w, ndxw, req_tx)?;
    loop {
        retire_lists(ctx, ndxw, g, &mut started, true)?;
        if started.is_empty() {
            return Ok(());
        }
        lists.wait(ctx, w, ndxw, req_tx, ev_rx, g)?;
        if !lists.waiting.is_empty() {
            return Err(Error::Protocol("file list after the end of lists".into()));
        }
    }
}

/// Incremental recursion: the lists the receiver passed on. As stock's generator reads its
/// receiver only when it waits, a list is taken in (its hard-link members known, which
/// decides which member is the last) only when the generator waits for one.
#[derive(Default)]
struct Intake {
    /// Passed on, not taken in yet (`None`: the end of the lists).
    unseen: VecDeque<Option<inc::IncList>>,
    /// Taken in, not started.
    waiting: VecDeque<inc::IncList>,
    eof: bool,
}

impl Intake {
    /// Takes in the next list (or the end), waiting for the receiver if need be; handles
    /// what else it reports meanwhile.
    fn wait<W: Write>(
        &mut self,
        ctx: &Ctx<'_>,
        w: &mut MuxWriter<W>,
        ndxw: &mut NdxWriter,
        req_tx: &mpsc::Sender<Request>,
        ev_rx: &mpsc::Receiver<Event>,
        g: &mut Walk,
    ) -> Result<()> {
        if self.unseen.is_empty() {
            w.write_all(&g.out)
                .and_then(|_| w.flush())
                .map_err(|e| Error::io("writing to sender", e))?;
            g.out.clear();
            let ev = ev_rx.recv().map_err(|_| receiver_ended())?;
            list_event(ctx, w, ndxw, req_tx, g, ev, self)?;
        }
        match self.unseen.pop_front() {
            Some(Some(l)) => {
                g.know_members(&l.list, l.ndx_start);
                self.waiting.push_back(l);
            }
            Some(None) => self.eof = true,
            None => {}
        }
        Ok(())
    }
}

/// Incremental recursion: a directory among a list's entries is created right away (if
/// missing and wanted), silently; its own list itemizes it.
fn early_dir(ctx: &Ctx<'_>, g: &mut Walk, e: &FileEntry) {
    let o = ctx.opts;
    if o.dry_run || o.list_only || o.existing || e.name == b"." {
        return;
    }
    let covered = |d: &Option<Vec<u8>>| d.as_deref().is_some_and(|d| is_below(&e.name, d));
    if covered(&g.refused_dir) || covered(&g.skipped_dir) {
        return;
    }
    if o.refuse
        .as_ref()
        .is_some_and(|rules| rules.is_excluded(&e.name, true))
    {
        return;
    }
    let path = ctx.dest.dir_path_of(&e.name);
    if fs::symlink_metadata(&path).is_ok() || ctx.dest.check_parents(&e.name).is_err() {
        return;
    }
    if fs::create_dir(&path).is_ok() {
        g.created_early.insert(e.name.clone());
    }
}

/// Handles what the receiver reports while lists are being worked on.
fn list_event<W: Write>(
    ctx: &Ctx<'_>,
    w: &mut MuxWriter<W>,
    ndxw: &mut NdxWriter,
    req_tx: &mpsc::Sender<Request>,
    g: &mut Walk,
    ev: Event,
    lists: &mut Intake,
) -> Result<()> {
    match ev {
        Event::List(l) => lists.unseen.push_back(Some(*l)),
        Event::ListsEnd => lists.unseen.push_back(None),
        Event::Completed(ndx) => {
            g.in_flight.remove(&ndx);
            g.transfer_done(ctx, w, ndxw, ndx)?;
        }
        Event::Redo(ndx, e) => g.redo(ctx, ndxw, req_tx, ndx, *e)?,
        Event::Success(ndx) => send_success(w, ctx.wire(ndx))?,
        Event::Message(tag, text) => send_message(w, tag, &text)?,
        Event::PhaseDone | Event::Finished => return Err(receiver_ended()),
    }
    Ok(())
}

/// Incremental recursion: retires the oldest lists that have nothing in flight (never the
/// one being worked on, unless `all` are handled): the sender is told, and their directory
/// gets its attributes.
fn retire_lists(
    ctx: &Ctx<'_>,
    ndxw: &mut NdxWriter,
    g: &mut Walk,
    started: &mut VecDeque<Started>,
    all: bool,
) -> Result<()> {
    while let Some(front) = started.front() {
        if started.len() == 1 && !all {
            break;
        }
        let (lo, end) = (front.ndx_start - 1, front.ndx_start + front.len);
        if g.in_flight.range(lo..end).next().is_some() {
            break;
        }
        ndxw.put(&mut g.out, NDX_DONE);
        let done = started.pop_front().expect("checked");
        if let Some(dir) = done.fix {
            g.fix_dir(ctx, &dir);
        }
    }
    Ok(())
}

type RequestParts = (
    SumHead,
    Vec<u8>,
    Option<PathBuf>,
    Option<u32>,
    Option<Line>,
    bool,
    Option<alt::Pin>,
);

/// Queues a request for the receiver, then asks the sender for the file.
#[allow(clippy::too_many_arguments)]
fn request<W: Write>(
    ctx: &Ctx<'_>,
    w: &mut MuxWriter<W>,
    req_tx: &mpsc::Sender<Request>,
    ndxw: &mut NdxWriter,
    out: &mut Vec<u8>,
    ndx: usize,
    e: &FileEntry,
    (head, sums, basis, existing_mode, mut item, append, pin): RequestParts,
) -> Result<()> {
    let xattr_nums = xattr_transfer(ctx, e, existing_mode.is_some(), &mut item);
    let iflags = match &item {
        Some(Line::Item(it, ..)) => item::TRANSFER | iflags_of(it),
        _ => {
            item::TRANSFER
                | if existing_mode.is_none() {
                    item::IS_NEW
                } else {
                    0
                }
        }
    };
    ctx.log.pending(ndx, Vec::new());
    req_tx
        .send(Request {
            ndx,
            item,
            head,
            basis,
            existing_mode,
            append,
            entry: e.clone(),
            _pin: pin,
        })
        .map_err(|_| Error::Stream("receiver gone".into()))?;
    ndxw.put(out, ctx.wire(ndx));
    let iflags = iflags
        | if xattr_nums.is_some() {
            item::REPORT_XATTR
        } else {
            0
        };
    out.extend_from_slice(&iflags.to_le_bytes());
    // `--only-write-batch` still transfers (into the batch): the request goes out as without `-n`.
    if let Some(nums) = xattr_nums
        .as_ref()
        .filter(|_| !ctx.opts.dry_run || ctx.opts.batch_only)
    {
        crate::xattrs::put_request(out, nums);
    }
    if !ctx.opts.dry_run || ctx.opts.batch_only {
        // `-n` asks for the file with no sums: the sender only echoes the request.
        head.put(out);
        out.extend_from_slice(&sums);
    }
    w.write_all(out)
        .map_err(|e| Error::io("writing to sender", e))?;
    out.clear();
    Ok(())
}

/// Whether a daemon module's rules refuse `e` (or a refused directory holds it); the client
/// is told about the refused name itself, as stock's generator does.
fn refused<W: Write>(
    ctx: &Ctx<'_>,
    w: &mut MuxWriter<W>,
    e: &FileEntry,
    refused_dir: &mut Option<Vec<u8>>,
) -> Result<bool> {
    let Some(rules) = &ctx.opts.refuse else {
        return Ok(false);
    };
    if let Some(dir) = refused_dir {
        if e.name.starts_with(dir) && e.name.get(dir.len()) == Some(&b'/') {
            return Ok(true);
        }
        *refused_dir = None;
    }
    if e.name == b"." || !rules.is_excluded(&e.name, e.is_dir()) {
        return Ok(false);
    }
    let msg = format!(
        "ERROR: daemon refused to receive {} \"{}\"\n",
        if e.is_dir() { "directory" } else { "file" },
        rtsync_engine::report::lossless_text(&e.name)
    );
    w.send_msg(MsgTag::ErrorXfer, msg.as_bytes())
        .map_err(|err| Error::io("writing to sender", err))?;
    if e.is_dir() {
        w.send_msg(
            MsgTag::Error,
            b"*** Skipping any contents from this failed directory ***\n",
        )
        .map_err(|err| Error::io("writing to sender", err))?;
        *refused_dir = Some(e.name.clone());
    }
    Ok(true)
}

/// MSG_SUCCESS: the file at `ndx` is in place (the sender removes it with
/// `--remove-source-files`).
fn send_success<W: Write>(w: &mut MuxWriter<W>, ndx: i32) -> Result<()> {
    w.send_msg_int(MsgTag::Success, ndx)
        .map_err(|e| Error::io("writing to sender", e))
}

/// Sends a message for the client (we are the server).
fn send_message<W: Write>(w: &mut MuxWriter<W>, tag: MsgTag, text: &str) -> Result<()> {
    w.send_msg(tag, text.as_bytes())
        .map_err(|e| Error::io("writing to sender", e))
}

/// A stand-in entry for requests that carry none (the end of a batch's requests): the
/// all-zero entry the tree crate already makes for a missing source.
fn no_entry() -> FileEntry {
    FileEntry::missing(Vec::new())
}

/// `-X` for an item handled locally: whether its attributes differ (its item line then says
/// `x`; one is added when there was none), those that can be set now set, and the positions
/// of the abbreviated values to ask the sender for (`None`: no request goes with it).
fn xattr_local(
    ctx: &Ctx<'_>,
    ndx: usize,
    e: &FileEntry,
    lines: &mut Vec<Line>,
) -> Option<Vec<u32>> {
    let rules = ctx.opts.xattrs.as_ref()?;
    let want = e.xattrs.clone().unwrap_or_default();
    let path = ctx.dest.path_of(&e.name);
    let md = fs::symlink_metadata(&path).ok();
    let ours = |l: &Line| matches!(l, Line::Item(_, name, ..) if *name == e.name);
    if lines.iter().any(|l| matches!(l, Line::Linked(..))) {
        return None;
    }
    let have = lines.iter().any(ours);
    if md.is_none() && !have {
        return None;
    }
    let (differ, todo) = crate::xattrs::compare(&want, md.as_ref().map(|_| path.as_path()), rules);
    if !differ {
        return None;
    }
    if let Some(Line::Item(it, ..)) = lines.iter_mut().find(|l| ours(l)) {
        it.xattr = true;
    } else if let Some(m) = &md {
        let mut it = crate::log::itemize(e, Some(m), b'.', entry::preserve(ctx.opts));
        it.xattr = true;
        lines.push(crate::log::line(e, it));
    }
    if ctx.opts.dry_run {
        // `--only-write-batch` asks for the values (they go into the batch) but sets nothing.
        return ctx.opts.batch_only.then_some(todo);
    }
    if md.is_some() {
        for err in rtsync_tree::xattr::apply_beneath(
            &ctx.dest.root(),
            &path,
            &want,
            None,
            rules,
            crate::xattrs::digest,
        ) {
            if !matches!(err, rtsync_tree::xattr::XattrError::Missing(_)) {
                let text = err.render(&ctx.naming.path(&path), |e| {
                    format!(
                        "{} ({})",
                        crate::client::strerror(e),
                        e.raw_os_error().unwrap_or(0)
                    )
                });
                say_error(ctx, text);
            }
        }
    }
    if !todo.is_empty() {
        if let Ok(mut wait) = ctx.xattr_wait.lock() {
            wait.insert(ndx, (path, want));
        }
    }
    Some(todo)
}

/// `-X` for a file about to be requested: whether its attributes differ from the
/// destination's (the item line then says `x`), and the abbreviated values to ask for.
fn xattr_transfer(
    ctx: &Ctx<'_>,
    e: &FileEntry,
    exists: bool,
    item: &mut Option<Line>,
) -> Option<Vec<u32>> {
    let rules = ctx.opts.xattrs.as_ref()?;
    let want = e.xattrs.clone().unwrap_or_default();
    let path = ctx.dest.path_of(&e.name);
    let (differ, todo) = crate::xattrs::compare(&want, exists.then_some(path.as_path()), rules);
    if !differ {
        return None;
    }
    if let Some(Line::Item(it, ..)) = item {
        it.xattr = true;
    }
    Some(todo)
}

/// A generator's error for the log and, from a server, the client.
fn say_error(ctx: &Ctx<'_>, text: String) {
    if ctx.opts.peer_sends_stats {
        eprintln!("{text}");
    } else if let Ok(mut said) = ctx.said.lock() {
        said.push((MsgTag::ErrorXfer, format!("{text}\n")));
    }
}

/// The sender's answer to our request, read after an item's flags.
fn xattr_answer<R: Read>(
    ctx: &Ctx<'_>,
    r: &mut MuxReader<R>,
    ndx: usize,
    iflags: u16,
) -> Result<Option<crate::xattrs::Fetched>> {
    if ctx.opts.xattrs.is_none()
        || iflags & item::REPORT_XATTR == 0
        || (ctx.opts.dry_run && !ctx.opts.batch_only)
    {
        return Ok(None);
    }
    let got = crate::xattrs::read_response(r)?;
    if iflags & item::TRANSFER == 0 {
        let waiting = ctx.xattr_wait.lock().ok().and_then(|mut w| w.remove(&ndx));
        if let Some((path, list)) = waiting {
            for (num, value) in &got {
                if let Some(x) = list.iter().find(|x| x.num == *num) {
                    if let Err(err) =
                        rtsync_tree::xattr::set_beneath(&ctx.dest.root(), &path, &x.name, value)
                    {
                        let text = rtsync_tree::xattr::XattrError::Set(x.name.clone(), err).render(
                            &ctx.naming.path(&path),
                            |e| {
                                format!(
                                    "{} ({})",
                                    crate::client::strerror(e),
                                    e.raw_os_error().unwrap_or(0)
                                )
                            },
                        );
                        say_error(ctx, text);
                    }
                }
            }
        }
        return Ok(None);
    }
    Ok(Some(got))
}

/// Puts fetched values into an entry's list in place of their digests.
fn xattr_fill(e: &mut FileEntry, got: &[(u32, Vec<u8>)]) {
    if got.is_empty() {
        return;
    }
    if let Some(list) = &e.xattrs {
        let filled: Vec<rtsync_tree::xattr::Xattr> = list
            .iter()
            .map(|x| match got.iter().find(|(n, _)| *n == x.num) {
                Some((_, v)) => rtsync_tree::xattr::Xattr {
                    value: rtsync_tree::xattr::XattrValue::Full(v.clone()),
                    ..x.clone()
                },
                None => x.clone(),
            })
            .collect();
        e.xattrs = Some(std::sync::Arc::new(filled));
    }
}

/// rsync's item flags for an itemize record.
fn iflags_of(it: &rtsync_engine::itemize::Itemize) -> u16 {
    let mut f = 0;
    if it.update == b'c' || it.update == b'h' {
        f |= item::LOCAL_CHANGE;
    }
    if it.is_new {
        f |= item::IS_NEW;
    }
    for (on, bit) in [
        (it.checksum, item::REPORT_CHANGE),
        (it.size, item::REPORT_SIZE),
        (it.time.is_some(), item::REPORT_TIME),
        (it.perms, item::REPORT_PERMS),
        (it.owner, item::REPORT_OWNER),
        (it.group, item::REPORT_GROUP),
        (it.atime, item::REPORT_ATIME),
        (it.xattr, item::REPORT_XATTR),
        (it.acl, item::REPORT_ACL),
    ] {
        if on {
            f |= bit;
        }
    }
    f
}

/// Tells the sender about an item handled locally, as rsync's generator does at protocol
/// ≥ 29 (the sender logs it; a client sender prints it), and, when we are the server,
/// reports deletions to the client (MSG_DELETED). The notice goes into `out`, after what
/// is there (indexes are encoded relative to the previous one, so the order is the
/// encoding's).
fn notify_sender<W: Write>(
    ctx: &Ctx<'_>,
    w: &mut MuxWriter<W>,
    ndxw: &mut NdxWriter,
    out: &mut Vec<u8>,
    ndx: usize,
    lines: &[Line],
) -> Result<()> {
    let wio = |e| Error::io("writing to sender", e);
    for line in lines {
        match line {
            Line::Deleting(name, _) if !ctx.opts.peer_sends_stats => {
                let mut payload = name.clone();
                if payload.last() == Some(&b'/') {
                    payload.pop();
                    payload.push(0);
                }
                w.send_msg_ahead(MsgTag::Deleted, &payload).map_err(wio)?;
            }
            // A receiving server's messages (`skipping non-regular file`) go to the client,
            // as stock's generator prints them.
            Line::Info(text) if !ctx.opts.peer_sends_stats => {
                w.send_msg_ahead(MsgTag::Info, format!("{text}\n").as_bytes())
                    .map_err(wio)?;
            }
            Line::Item(it, name, ..) => {
                let iflags = iflags_of(it);
                if ctx.opts.report_attrs
                    && it.kind != b'd'
                    && !it.is_new
                    && !matches!(it.update, b'>' | b'<' | b'c' | b'h')
                {
                    // (Raw, as stock's server sends it: the client escapes what it prints.)
                    let mut text = name.clone();
                    text.extend_from_slice(if it.has_changes() {
                        b"\n"
                    } else {
                        b" is uptodate\n"
                    });
                    w.send_msg_ahead(MsgTag::Info, &text).map_err(wio)?;
                }
                // Only significant items: something reported or created.
                if iflags & !(item::LOCAL_CHANGE) != 0 || ctx.opts.report_all {
                    ndxw.put(out, ctx.wire(ndx));
                    out.extend_from_slice(&iflags.to_le_bytes());
                }
            }
            // Linked already, or like a basis directory's twin: sent only for `-ii`, as
            // a link without a leader's name (stock's empty xname).
            // -vv without %i: named as up to date, as stock's generator logs it.
            Line::Linked(it, name, ..) if ctx.opts.report_attrs => {
                let mut text = name.clone();
                if it.kind == b'd' {
                    text.push(b'/');
                }
                text.extend_from_slice(b" is uptodate\n");
                w.send_msg_ahead(MsgTag::Info, &text).map_err(wio)?;
            }
            Line::Linked(it, ..) if ctx.opts.report_all => {
                let mut iflags = iflags_of(it);
                if it.update == b'h' {
                    iflags |= item::XNAME_FOLLOWS;
                }
                ndxw.put(out, ctx.wire(ndx));
                out.extend_from_slice(&iflags.to_le_bytes());
                if iflags & item::XNAME_FOLLOWS != 0 {
                    out.push(0);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether an existing file needs no transfer.
fn is_current(ctx: &Ctx<'_>, e: &FileEntry, meta: &fs::Metadata, path: &std::path::Path) -> bool {
    if ctx.opts.checksum {
        if !meta.file_type().is_file() || meta.len() != e.size {
            return false;
        }
        let Some(want) = &e.checksum else {
            return false;
        };
        return file_digest(ctx, path).is_ok_and(|d| &d == want);
    }
    local::up_to_date(meta, e, ctx.opts.quick)
}

fn file_digest(ctx: &Ctx<'_>, path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    let mut f = crate::blocksum::open_nofollow(path)?;
    let mut h = FileHasher::new(ctx.neg.file_checksum);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finish().as_bytes().to_vec())
}

/// Computes the sum header and block sums of a basis file (see `crate::blocksum`).
fn block_sums(
    ctx: &Ctx<'_>,
    path: &std::path::Path,
    len: u64,
) -> std::io::Result<(SumHead, Vec<u8>)> {
    crate::blocksum::generate(path, len, ctx.neg, ctx.opts.block_size)
}

/// Deletes names inside `dir` that the sender's list does not have.
fn delete_extraneous(
    ctx: &Ctx<'_>,
    dir: &FileEntry,
    path: &std::path::Path,
    names: &HashSet<&[u8]>,
) -> (u64, Vec<Line>) {
    let found = find_extraneous(ctx, dir, path, names);
    let mut lines = trace_lines(ctx);
    let (n, deleted) = delete_found(ctx, found);
    lines.extend(deleted);
    (n, lines)
}

/// The filter traces recorded since the last call, as lines to show.
fn trace_lines(ctx: &Ctx<'_>) -> Vec<Line> {
    ctx.opts
        .protect_trace
        .as_ref()
        .map(|t| t.take().into_iter().map(Line::Info).collect())
        .unwrap_or_default()
}

/// Deletes what [`find_extraneous`] found, deepest first (a directory's sorted listing
/// backwards, as rsync walks it).
fn delete_found(ctx: &Ctx<'_>, gone: Vec<Extraneous>) -> (u64, Vec<Line>) {
    let mut lines = Vec::new();
    let io_error = ctx.list.io_error
        | ctx
            .later_io_error
            .load(std::sync::atomic::Ordering::Relaxed);
    if io_error & 1 != 0 && !ctx.opts.ignore_errors {
        // The sender could not list everything: what looks extraneous may not be.
        if !ctx
            .io_warned
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            lines.push(Line::Info(
                "IO error encountered -- skipping file deletion".into(),
            ));
        }
        return (0, lines);
    }
    let mut n = 0;
    for (name, p, is_dir) in gone.into_iter().rev() {
        n += delete_tree(ctx, name, &p, is_dir, &mut lines).0;
    }
    (n, lines)
}

/// The names inside `dir` that the sender's list does not have and no rule protects,
/// sorted.
fn find_extraneous(
    ctx: &Ctx<'_>,
    dir: &FileEntry,
    path: &std::path::Path,
    names: &HashSet<&[u8]>,
) -> Vec<Extraneous> {
    use std::os::unix::ffi::OsStrExt;
    let Ok(rd) = fs::read_dir(path) else {
        return Vec::new();
    };
    use rtsync_filter::Side;
    let trace = ctx.opts.protect_trace.as_ref();
    let mut gone: Vec<Extraneous> = Vec::new();
    // Per-directory rule files (dir-merge) are read from the destination, as the receiving
    // rsync reads them, and protect what they exclude on this side.
    let mut merged = ctx
        .opts
        .protect
        .as_ref()
        .filter(|p| p.has_dir_merge())
        .map(|p| {
            (
                rtsync_filter::PathChecker::new(p.clone()),
                rtsync_filter::BeneathSource::new(ctx.dest.root()),
            )
        });
    for ent in rd.flatten() {
        let child = ent.file_name();
        let child = child.as_bytes();
        let full = if dir.name == b"." {
            child.to_vec()
        } else {
            [&dir.name[..], b"/", child].concat()
        };
        let listed = names.contains(&full[..]);
        // Stock's generator checks (and so traces) every name it finds.
        if listed && trace.is_none() {
            continue;
        }
        let is_dir = ent.file_type().map(|t| t.is_dir()).unwrap_or(false);
        let protected = if let Some((checker, source)) = &mut merged {
            // An unreadable rule file protects rather than deletes.
            let kept = checker
                .is_transferred(&full, is_dir, Side::Receiver, source)
                .unwrap_or(false);
            if let Some(t) = trace {
                let how = rtsync_filter::Check::side(Side::Receiver);
                if let Some(m) = checker.set().check_match(&full, is_dir, how) {
                    t.record(&m, &full, is_dir);
                }
            }
            !kept
        } else if let Some(p) = &ctx.opts.protect {
            rtsync_engine::filters::check_traced(p, &full, is_dir, Side::Receiver, trace)
        } else {
            false
        };
        if listed || protected {
            continue;
        }
        gone.push((full, ent.path(), is_dir));
    }
    gone.sort_by(|a, b| rtsync_tree::compare_names(&a.0, a.2, &b.0, b.2));
    gone
}

/// `--delete-missing-args`: `e` names a source the sender does not have, so what is here
/// under its name goes (unless this side's rules protect it); a non-empty directory only
/// with `--delete` or `--force`, as stock's delete_item without DEL_RECURSE.
fn delete_missing(ctx: &Ctx<'_>, e: &FileEntry, res: &mut GenResult) -> Vec<Line> {
    let mut lines = Vec::new();
    let protected = |p: &rtsync_filter::FilterSet| p.is_protected(&e.name, false);
    if ctx.opts.protect.as_ref().is_some_and(protected) {
        return lines;
    }
    let path = ctx.dest.path_of(&e.name);
    let Ok(md) = fs::symlink_metadata(&path) else {
        return lines;
    };
    let recurse = ctx.opts.delete || ctx.opts.force;
    if md.is_dir() && !recurse && fs::read_dir(&path).is_ok_and(|mut d| d.next().is_some()) {
        lines.push(Line::Info(format!(
            "cannot delete non-empty directory: {}",
            rtsync_engine::report::lossless_text(&e.name)
        )));
        return lines;
    }
    res.deleted += delete_tree(ctx, e.name.clone(), &path, md.is_dir(), &mut lines).0;
    lines
}

/// Deletes `path` (a directory deepest first), logging each name; returns how many went,
/// and whether it went.
fn delete_tree(
    ctx: &Ctx<'_>,
    name: Vec<u8>,
    path: &std::path::Path,
    is_dir: bool,
    lines: &mut Vec<Line>,
) -> (u64, bool) {
    delete_item(ctx, name, path, is_dir, lines, true)
}

/// What is in directory `path` (the item `name`), in the order stock's delete_dir_contents
/// removes it: the sorted list, last first.
fn children(name: &[u8], path: &std::path::Path) -> Vec<(Vec<u8>, PathBuf, bool)> {
    use std::os::unix::ffi::OsStrExt;
    let mut kids: Vec<(Vec<u8>, PathBuf, bool)> = fs::read_dir(path)
        .map(|rd| {
            rd.flatten()
                .map(|ent| {
                    let full = [name, b"/", ent.file_name().as_bytes()].concat();
                    let d = ent.file_type().map(|t| t.is_dir()).unwrap_or(false);
                    (full, ent.path(), d)
                })
                .collect()
        })
        .unwrap_or_default();
    kids.sort_by(|a, b| rtsync_tree::compare_names(&a.0, a.2, &b.0, b.2));
    kids.reverse();
    kids
}

/// A directory at `path` stands where the non-directory `e` goes: stock's delete_item with
/// DEL_MAKE_ROOM. Its contents go (each logged as a deletion) only with `--delete` or
/// `--force`, then the directory itself (not logged: `e` takes its place). Otherwise, or
/// when something in it stays, `could not make way for new KIND: NAME` and `e` is skipped.
/// Returns how many deletions were made and whether the way is clear.
fn make_way(
    ctx: &Ctx<'_>,
    e: &FileEntry,
    path: &std::path::Path,
    lines: &mut Vec<Line>,
) -> (u64, bool) {
    let mut n = 0;
    let mut clear = ctx.opts.delete
        || ctx.opts.force
        || fs::read_dir(path).is_ok_and(|mut d| d.next().is_none());
    if !clear {
        ctx.gen_say(
            MsgTag::Info,
            format!(
                "cannot delete non-empty directory: {}\n",
                rtsync_engine::report::lossless_text(&e.name)
            ),
        );
    }
    if clear {
        for (kname, kpath, kdir) in children(&e.name, path) {
            let (k, gone) = delete_item(ctx, kname, &kpath, kdir, lines, false);
            n += k;
            clear &= gone;
        }
        if !clear {
            lines.push(Line::Info(format!(
                "cannot delete non-empty directory: {}",
                rtsync_engine::report::lossless_text(&e.name)
            )));
        }
    }
    if clear && !ctx.opts.dry_run {
        clear = match fs::remove_dir(path) {
            Ok(()) => true,
            Err(err) => err.kind() == std::io::ErrorKind::NotFound,
        };
    }
    if !clear {
        let kind = match e.kind {
            rtsync_tree::FileKind::Regular => "regular file",
            rtsync_tree::FileKind::Symlink => "symlink",
            rtsync_tree::FileKind::BlockDevice | rtsync_tree::FileKind::CharDevice => "device file",
            _ => "special file",
        };
        ctx.gen_error(format!(
            "could not make way for new {kind}: {}\n",
            rtsync_engine::report::lossless_text(&e.name)
        ));
    }
    (n, clear)
}

/// [`delete_tree`] for the item `name` (`top`: the extraneous item itself, not something
/// inside it). As stock's delete_dir_contents: a directory whose contents did not all go is
/// `cannot delete non-empty directory`; the item itself is then left, one inside it is
/// still tried.
fn delete_item(
    ctx: &Ctx<'_>,
    name: Vec<u8>,
    path: &std::path::Path,
    is_dir: bool,
    lines: &mut Vec<Line>,
    top: bool,
) -> (u64, bool) {
    use std::os::unix::fs::MetadataExt;
    let mut n = 0;
    // `%B` of a deletion line shows the mode of what went.
    let md = fs::symlink_metadata(path).ok();
    let mode = md.as_ref().map_or(0, |m| m.mode());
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if is_dir
        && !ctx.opts.dry_run
        && euid != 0
        && mode & 0o200 == 0
        && md.as_ref().is_some_and(|m| m.uid() == euid)
    {
        // A directory of ours without write permission is made writable so its contents
        // can go, as stock's del_chmod.
        let _ = rtsync_tree::fsops::set_perms(path, (mode | 0o200) & 0o7777);
    }
    if is_dir {
        let mut kept = false;
        for (kname, kpath, kdir) in children(&name, path) {
            let (k, gone) = delete_item(ctx, kname, &kpath, kdir, lines, false);
            n += k;
            kept |= !gone;
        }
        if kept {
            lines.push(Line::Info(format!(
                "cannot delete non-empty directory: {}",
                rtsync_engine::report::lossless_text(&name)
            )));
            if top {
                return (n, false);
            }
        }
    }
    if let Some(limit) = ctx.opts.max_delete {
        use std::sync::atomic::Ordering::Relaxed;
        if ctx.deletions.load(Relaxed) >= limit.max(0) as u64 {
            ctx.skipped_deletions.fetch_add(1, Relaxed);
            return (n, false);
        }
    }
    let (what, done) = if ctx.opts.dry_run {
        ("", Ok(()))
    } else if is_dir {
        ("rmdir", fs::remove_dir(path))
    } else {
        match &ctx.opts.backup {
            // rsync backs up what --delete removes, except backups themselves.
            Some(b) if !b.is_backup_name(&name) => (
                "make_backup",
                b.move_aside(ctx.dest, &name, path).map(|moved| {
                    if moved {
                        ctx.backed_up(None, &name);
                    }
                }),
            ),
            _ => ("unlink", fs::remove_file(path)),
        }
    };
    let ok = match done {
        Ok(()) => true,
        // Gone already: nothing to say.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (n, true),
        Err(e) if is_dir && e.raw_os_error() == Some(libc::ENOTEMPTY) => {
            // Something inside stayed (it could not be deleted, or is protected).
            lines.push(Line::Info(format!(
                "cannot delete non-empty directory: {}",
                rtsync_engine::report::lossless_text(&name)
            )));
            false
        }
        Err(e) => {
            let text = format!(
                "delete_file: {what}({}) failed",
                rtsync_engine::report::lossless_text(&name)
            );
            ctx.gen_error(say::syserr("generator", &text, &e));
            ctx.delete_errors
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            false
        }
    };
    if ok {
        ctx.deletions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let kind = rtsync_tree::FileKind::from_mode(mode).unwrap_or(rtsync_tree::FileKind::Regular);
        ctx.deleted_kinds[rtsync_engine::report::kind_slot(kind)]
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut shown = name;
        if is_dir {
            shown.push(b'/');
        }
        lines.push(Line::Deleting(shown, mode));
        n += 1;
    }
    (n, ok)
}

fn receive<R: Read>(
    ctx: &Ctx<'_>,
    r: &mut MuxReader<R>,
    req_rx: &mpsc::Receiver<Request>,
    ev_tx: &mpsc::Sender<Event>,
    mut inc: Option<&mut inc::IncReader<'_>>,
) -> Result<PullStats> {
    let mut stats = PullStats::default();
    let mut ndxr = NdxReader::new(ctx.neg.protocol);
    let mut pending: HashMap<usize, Request> = HashMap::new();
    let mut phase = 0;
    let mut redone: HashSet<usize> = HashSet::new();
    let mut gen_done = false;
    // `--delay-updates`: files waiting in their partial dir (index, where, entry).
    let mut delayed: Vec<(usize, PathBuf, FileEntry)> = Vec::new();
    // `--progress`: files whose data came (`xfr#`), entries listed, where each list starts
    // (incremental recursion), and whether every list is here.
    let mut xfr = 0u64;
    let mut listed = ctx.list.entries.len() as u64;
    let mut list_starts: Vec<usize> = vec![1];
    let mut all_listed = !ctx.inc;
    // `--info=progress2`: the bytes listed (stock's `total_size`), each list's length, the
    // list the sender last named (stock's `cur_flist`), and the lists retired so far.
    let mut total_size = listed_size(&ctx.list.entries);
    let mut list_lens: Vec<usize> = vec![ctx.list.entries.len()];
    let mut current_list = 0usize;
    let mut retired = 0usize;
    let n = ctx.list.entries.len();
    let mut decoder = rtsync_delta::TokenDecoder::new(
        ctx.neg
            .compression
            .unwrap_or(rtsync_delta::Compression::None),
        ctx.neg.protocol,
    )?;
    // The generator learns when a request is done with (to finish hard-link groups, and
    // with incremental recursion, lists).
    let completed = |ndx: usize| {
        let _ = ev_tx.send(Event::Completed(ndx));
    };
    loop {
        let ndx = if r.await_data()? {
            Some(crate::ndx::from_wire(ctx.unsorted.as_ref(), ndxr.read(r)?))
        } else {
            None
        };
        // Files the sender could not open (MSG_NO_SEND): done with, without a line.
        for gone in std::mem::take(&mut r.oob.no_send) {
            let gone = crate::ndx::from_wire(ctx.unsorted.as_ref(), gone);
            let Ok(gone) = usize::try_from(gone) else {
                continue;
            };
            while let Ok(req) = req_rx.try_recv() {
                pending.insert(req.ndx, req);
            }
            if let Some(req) = pending.remove(&gone) {
                if matches!(&req.item, Some(Line::Item(it, ..)) if it.is_new) {
                    stats.unsent_new += 1;
                }
                ctx.log.complete(gone, None);
                completed(gone);
            }
        }
        let Some(ndx) = ndx else {
            continue;
        };
        if ndx == NDX_DONE && ctx.log.shows_progress() && (!ctx.inc || retired < list_starts.len())
        {
            // As stock's receiver: the line of the whole transfer, counted to the end of the
            // list the sender last named (or the oldest still held).
            let k = current_list.max(retired);
            let index = if ctx.inc {
                (list_starts[k] + list_lens[k]).saturating_sub(k + 2)
            } else {
                n.saturating_sub(1)
            };
            ctx.log.list_done(rtsync_engine::report::Progress {
                transferred: xfr,
                index: index as u64,
                listed,
                complete: all_listed,
                total_size,
            });
        }
        if ndx == NDX_DONE {
            retired += 1;
        }
        if ndx >= 0 && ctx.inc {
            current_list = list_starts
                .partition_point(|&s| s <= ndx as usize + 1)
                .saturating_sub(1);
        }
        if let Some(lists) = inc.as_deref_mut() {
            if ndx == NDX_FLIST_EOF {
                all_listed = true;
                lists.end()?;
                let _ = ev_tx.send(Event::ListsEnd);
                continue;
            }
            if ndx <= NDX_FLIST_OFFSET {
                let list = lists.read_sub(r, ndx)?;
                ctx.later_io_error
                    .fetch_or(list.list.io_error, std::sync::atomic::Ordering::Relaxed);
                listed += list.list.entries.len() as u64;
                total_size += listed_size(&list.list.entries);
                list_starts.push(list.ndx_start);
                list_lens.push(list.list.entries.len());
                let _ = ev_tx.send(Event::List(Box::new(list)));
                continue;
            }
            if ndx == NDX_DONE && lists.retire() {
                // The sender forgot a list the generator finished.
                continue;
            }
        }
        if ndx == NDX_DEL_STATS {
            // A server sender passes the generator's deletion statistics on when it reads
            // them (with `--delay-updates`, before the sender's last phase ends).
            for _ in 0..5 {
                r.read_varint()?;
            }
            continue;
        }
        if ndx == NDX_DONE {
            if phase == 0 && ctx.opts.read_batch {
                // What the generator wanted and the batch did not have.
                while !gen_done {
                    match req_rx.recv() {
                        Ok(req) if req.ndx != usize::MAX => {
                            pending.insert(req.ndx, req);
                        }
                        _ => gen_done = true,
                    }
                }
                let mut missing: Vec<usize> = pending.drain().map(|(k, _)| k).collect();
                missing.sort_unstable();
                for k in missing {
                    eprintln!(
                        "(No batched update for \"{}\")",
                        rtsync_engine::report::lossless_text(&ctx.list.entries[k].name)
                    );
                    stats.errors += 1;
                }
            }
            phase += 1;
            if phase > 2 {
                break;
            }
            if phase == 2 {
                // The sender has sent everything: `--delay-updates` files go into place.
                finish_delayed(ctx, ev_tx, std::mem::take(&mut delayed), &mut stats);
            }
            let _ = ev_tx.send(Event::PhaseDone);
            continue;
        }
        match inc.as_deref() {
            Some(lists) => lists.check(ndx)?,
            None if ndx < 0 || ndx as usize >= n => {
                return Err(Error::Protocol(format!(
                    "Invalid file index: {ndx} (-1 - {})",
                    n as i64 - 1
                )))
            }
            None if !ctx.list.active[ndx as usize] => {
                return Err(Error::Protocol(format!(
                    "refusing transfer of cleared file index {ndx}"
                )))
            }
            None => {}
        }
        let ndx = ndx as usize;
        let iflags = r.read_u16()?;
        let (basis_type, xname) = crate::sums::read_item_extras(r, iflags)?;
        let xattr_values = xattr_answer(ctx, r, ndx, iflags)?;
        if iflags & item::TRANSFER == 0 {
            continue;
        }
        // Our generator keeps its choice of basis to itself and always asks for the
        // destination's own name (a batch replays what stock's generator chose). A sender
        // that names another basis (an alternate directory, a fuzzy match) is forging it:
        // stock's receiver would open what it names.
        if !ctx.opts.read_batch
            && (basis_type.is_some_and(|t| t != crate::push::FNAMECMP_FNAME) || xname.is_some())
        {
            return Err(Error::Protocol(format!(
                "the sender named a basis the generator did not choose (file index {ndx})"
            )));
        }
        if phase == 2 {
            return Err(Error::Protocol("got transfer request in phase 2".into()));
        }
        if ctx.opts.batch_only && !ctx.opts.batch_data_follows {
            // `--only-write-batch` on a receiving server: the data went to the client's batch.
            let req = take_request(&mut pending, req_rx, ndx)?;
            stats.files_transferred += 1;
            ctx.log.complete(ndx, req.item.clone());
            completed(ndx);
            continue;
        }
        let wanted = if ctx.opts.read_batch {
            batch_request(&mut pending, req_rx, ndx, &mut gen_done).or_else(|| {
                // A hard-linked file whose data the batch carries under another name of its
                // group (stock picks the group's last name with incremental recursion): the
                // data goes to the name we asked for, the others are linked to it.
                let key = ctx.list.entries[ndx].hardlink_key?;
                let k = *pending
                    .keys()
                    .find(|&&k| ctx.list.entries[k].hardlink_key == Some(key))?;
                pending.remove(&k)
            })
        } else {
            Some(take_request(&mut pending, req_rx, ndx)?)
        };
        if ctx.opts.dry_run && !ctx.opts.batch_only {
            // `-n`: the sender only echoes the request.
            if let Some(req) = wanted {
                xfr += 1;
                ctx.log.transfer_counted(req.entry.size, total_size);
                stats.files_transferred += 1;
                stats.transferred_size += req.entry.size;
                ctx.log.complete(ndx, req.item.clone());
                completed(ndx);
            }
            continue;
        }
        // `%b` of a receiver: the data read from here to the end of the file.
        let data_mark = r.data_read;
        let head = SumHead::read(r, ctx.neg.checksum.digest_len())?;
        let wanted = wanted.map(|mut req| {
            if let Some(got) = &xattr_values {
                xattr_fill(&mut req.entry, got);
            }
            req
        });
        let Some(mut req) = wanted else {
            // In the batch, but the destination does not need it (already up to date).
            let e = &ctx.list.entries[ndx];
            stats.files_transferred += 1;
            stats.transferred_size += e.size;
            println!(
                "(Skipping batched update for \"{}\")",
                rtsync_engine::report::lossless_text(&e.name)
            );
            let path = ctx.dest.path_of(&e.name);
            let basis = fs::symlink_metadata(&path)
                .is_ok_and(|m| m.is_file())
                .then_some(path);
            let req = Request {
                ndx,
                item: None,
                head,
                basis,
                existing_mode: None,
                append: false,
                entry: e.clone(),
                _pin: None,
            };
            write::discard_file(ctx, r, &req, &mut decoder, &mut stats)?;
            continue;
        };
        // (A hard-link group's data may come under another of its names.)
        let ndx = req.ndx;
        if ctx.opts.read_batch {
            // The batch's deltas were made against the block sums of its own run.
            req.head = head;
        } else if head != req.head {
            return Err(Error::Protocol(format!(
                "sender echoed a different sum header for index {ndx}"
            )));
        }
        if ctx.opts.batch_only {
            // `--only-write-batch` on the client: recorded as it passes, not applied.
            write::discard_file(ctx, r, &req, &mut decoder, &mut stats)?;
            stats.files_transferred += 1;
            ctx.log.complete(ndx, req.item.clone());
            completed(ndx);
            continue;
        }
        ctx.log.transfer_counted(req.entry.size, total_size);
        ctx.log.transfer_begin(ndx, req.item.as_ref());
        // Counted as stock's receiver counts: every file it starts to receive (one it then
        // fails to write, and each try of a redone one, too).
        stats.files_transferred += 1;
        stats.transferred_size += req.entry.size;
        // The retry of a file that failed verification.
        let redoing = if ctx.inc {
            redone.contains(&ndx)
        } else {
            phase != 0
        };
        let got = receive_file(ctx, r, &req, &mut decoder, &mut stats, ev_tx, redoing)?;
        xfr += 1;
        if let Some(Line::Item(_, _, _, Some(facts))) = req.item.as_mut() {
            facts.written = r.data_read - data_mark;
            if facts.sum_hex.is_none() {
                facts.sum_hex = Some(rtsync_engine::report::sum_hex_as(
                    &stats.sender_sum,
                    ctx.neg.checksum,
                ));
            }
        }
        if ctx.log.shows_progress() {
            // As stock's receiver counts: entries listed so far (the gaps between lists'
            // indexes left out).
            let before = if ctx.inc {
                list_starts.partition_point(|&s| s <= ndx)
            } else {
                0
            };
            let counts = rtsync_engine::report::Progress {
                transferred: xfr,
                index: (ndx - before) as u64,
                listed,
                complete: all_listed,
                total_size,
            };
            // The item line goes out with the progress, not through its slot.
            ctx.log
                .transfer_end(req.entry.size, counts, req.item.take());
        }
        let (ok, staged) = match got {
            write::Received::Placed => (true, None),
            write::Received::Staged(at) => (true, Some(at)),
            write::Received::BadSum => (false, None),
            write::Received::Failed { logged } => {
                // Not in place; no line for a file that could not be opened, as stock.
                ctx.log.complete(ndx, req.item.clone().filter(|_| logged));
                stats.errors += 1;
                completed(ndx);
                continue;
            }
            write::Received::Dropped(text) => {
                // Not in place, and not to be tried again.
                ctx.log.complete(ndx, req.item.clone());
                tell(ctx, ev_tx, MsgTag::Error, text);
                completed(ndx);
                continue;
            }
        };
        // Logged whether or not it verified, as stock does; a redo's line comes later.
        if !redoing {
            ctx.log.complete(ndx, req.item.clone());
        } else if let Some(line) = req.item.clone() {
            ctx.log.late(line);
        }
        let e = &req.entry;
        // An in-place update stays in the file (stock's wording).
        let kept = if ctx.opts.inplace {
            "retained"
        } else {
            "discarded"
        };
        if ok {
            if let Some(at) = staged {
                // In place (and done with, for its hard links) only once renamed there.
                delayed.push((ndx, at, req.entry));
                continue;
            }
            if ctx.opts.remove_source_files {
                let _ = ev_tx.send(Event::Success(ndx));
            }
        } else if phase == 0 && !ctx.opts.read_batch && redone.insert(ndx) {
            if ctx.opts.verify_warnings {
                let text = format!(
                    "WARNING: {} failed verification -- update {kept} (will try again).\n",
                    rtsync_engine::report::lossless_text(&e.name)
                );
                tell(ctx, ev_tx, MsgTag::Warning, text);
            }
            let _ = ev_tx.send(Event::Redo(ndx, Box::new(req.entry)));
            continue;
        } else {
            let text = format!(
                "ERROR: {} failed verification -- update {kept}.\n",
                rtsync_engine::report::lossless_text(&e.name)
            );
            tell(ctx, ev_tx, MsgTag::ErrorXfer, text);
            stats.errors += 1;
        }
        completed(ndx);
    }
    // Sender statistics, then (protocol ≥ 31) the goodbye echo, maybe after deletion stats.
    if ctx.opts.peer_sends_stats {
        stats.sender_read = r.read_varlong(3)?;
        stats.sender_written = r.read_varlong(3)?;
        stats.sender_totals = true;
        stats.total_size = r.read_varlong(3)?;
        let build = r.read_varlong(3)?;
        stats.flist_times = (build, r.read_varlong(3)?);
    }
    if ctx.neg.protocol >= 31 {
        loop {
            let ndx = match ndxr.read(r) {
                // A batch may end before the goodbye (stock writes it from either side).
                Err(Error::UnexpectedEof { .. }) if ctx.opts.read_batch => NDX_DONE,
                other => other?,
            };
            match ndx {
                NDX_DONE => break,
                // A batch recorded by a pulling client may carry the sender's late list end.
                crate::ndx::NDX_FLIST_EOF if ctx.opts.read_batch => {}
                NDX_DEL_STATS => {
                    for _ in 0..5 {
                        r.read_varint()?;
                    }
                }
                other => {
                    return Err(Error::Protocol(format!(
                        "Invalid packet at end of run ({other})"
                    )))
                }
            }
        }
    }
    let _ = ev_tx.send(Event::Finished);
    Ok(stats)
}

/// `--delay-updates`: renames the files waiting in their partial dirs into place (after a
/// backup of what they replace), as stock's receiver does once the redo phase is over;
/// then they count as in place (`--remove-source-files`, hard links).
/// Bytes of the regular files and symlinks in `entries` (what stock's `total_size` counts;
/// a symlink's length is its target's).
pub(crate) fn listed_size(entries: &[FileEntry]) -> u64 {
    entries
        .iter()
        .map(|e| match e.kind {
            rtsync_tree::FileKind::Regular => e.size,
            rtsync_tree::FileKind::Symlink => {
                e.link_target.as_ref().map_or(e.size, |t| t.len() as u64)
            }
            _ => 0,
        })
        .sum()
}

fn finish_delayed(
    ctx: &Ctx<'_>,
    ev_tx: &mpsc::Sender<Event>,
    delayed: Vec<(usize, PathBuf, FileEntry)>,
    stats: &mut PullStats,
) {
    let o = ctx.opts;
    for (ndx, staged, e) in delayed {
        let final_path = ctx.dest.path_of(&e.name);
        if let Some(b) = &o.backup {
            let moved = b.move_aside(ctx.dest, &e.name, &final_path);
            if let Ok(true) = moved {
                ctx.backed_up(Some(ev_tx), &e.name);
            }
            if let Err(err) = moved {
                let what = format!("backup of {} failed", ctx.naming.name(&e.name));
                tell(
                    ctx,
                    ev_tx,
                    MsgTag::ErrorXfer,
                    say::syserr("receiver", &what, &err),
                );
                stats.errors += 1;
                continue;
            }
        }
        if let Err(err) = fs::rename(&staged, &final_path) {
            let text = format!(
                "rsync: [receiver] rename failed for \"{}\" (from {}): {} ({})\n",
                rtsync_engine::local::full_path(&final_path),
                rtsync_engine::report::lossless_text(&shown_partial(o, &e.name)),
                crate::client::strerror(&err),
                err.raw_os_error().unwrap_or(0)
            );
            tell(ctx, ev_tx, MsgTag::ErrorXfer, text);
            stats.errors += 1;
            continue;
        }
        if o.remove_source_files {
            let _ = ev_tx.send(Event::Success(ndx));
        }
        let _ = ev_tx.send(Event::Completed(ndx));
        keep::remove_partial_dir(o, &staged);
    }
}

/// The partial-dir name of the entry `name` as stock shows it (its partial_dir_fname).
fn shown_partial(o: &PullOptions, name: &[u8]) -> Vec<u8> {
    let pd = o
        .partial_dir
        .as_deref()
        .unwrap_or(std::path::Path::new(DELAY_DIR));
    let base = name.iter().rposition(|&c| c == b'/').map_or(0, |i| i + 1);
    let mut out = if o.partial_dir_shared {
        Vec::new()
    } else {
        name[..base].to_vec()
    };
    use std::os::unix::ffi::OsStrExt;
    out.extend_from_slice(pd.as_os_str().as_bytes());
    out.push(b'/');
    out.extend_from_slice(&name[base..]);
    out
}

/// `--read-batch`: the generator's request for `ndx`, waiting until it has decided; `None`
/// when it does not want that file (its requests come in list order, then `usize::MAX`).
fn batch_request(
    pending: &mut HashMap<usize, Request>,
    rx: &mpsc::Receiver<Request>,
    ndx: usize,
    gen_done: &mut bool,
) -> Option<Request> {
    loop {
        if let Some(req) = pending.remove(&ndx) {
            return Some(req);
        }
        if *gen_done || pending.keys().any(|&k| k > ndx) {
            return None;
        }
        match rx.recv() {
            Ok(req) if req.ndx != usize::MAX => {
                pending.insert(req.ndx, req);
            }
            _ => *gen_done = true,
        }
    }
}

/// A message of the receiver: printed by a client, sent to the client by a server.
fn tell(ctx: &Ctx<'_>, ev_tx: &mpsc::Sender<Event>, tag: MsgTag, text: String) {
    say::recv_say(ctx, ev_tx, tag, text);
}

/// Finds the generator's request for `ndx`; a sender answering something we did not ask for is
/// a protocol error.
fn take_request(
    pending: &mut HashMap<usize, Request>,
    rx: &mpsc::Receiver<Request>,
    ndx: usize,
) -> Result<Request> {
    loop {
        if let Some(req) = pending.remove(&ndx) {
            return Ok(req);
        }
        // The generator queues a request before writing it, so anything the sender answers
        // is already in the channel.
        match rx.try_recv() {
            Ok(req) => {
                pending.insert(req.ndx, req);
            }
            Err(_) => {
                return Err(Error::Protocol(format!(
                    "sender sent index {ndx}, which was not requested"
                )))
            }
        }
    }
}

/// Whether `name` lies inside directory `dir` (`.` holds everything).
fn is_below(name: &[u8], dir: &[u8]) -> bool {
    dir == b"." || (name.starts_with(dir) && name.get(dir.len()) == Some(&b'/'))
}

/// Sends the client the messages the generator queued (we are the server): ahead of the
/// requests not yet framed, as stock's generator's messages go out before the data it
/// holds in its buffer (until it waits: see `w.settle()` and the flushes at its waits).
fn send_said<W: Write>(ctx: &Ctx<'_>, w: &mut MuxWriter<W>) -> Result<()> {
    for (tag, text) in ctx.take_said() {
        w.send_msg_ahead(tag, text.as_bytes())
            .map_err(|e| Error::io("writing to sender", e))?;
    }
    Ok(())
}

/// `deleting in NAME`: a deletion pass before or after the transfer reaching a top
/// directory, with `--debug=del`.
fn deleting_in(e: &FileEntry) -> Line {
    Line::Info(format!(
        "deleting in {}",
        rtsync_engine::report::lossless_text(&e.name)
    ))
}
