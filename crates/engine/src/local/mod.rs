//! Local transfers (`rtsync rsync SRC… DEST` between local paths): one process, no protocol.
//!
//! The generator walks the sorted file list and decides per entry, exactly as rsync's generator
//! does (quick check, itemize flags, deletions); the receiver part writes each file into a temp
//! file next to its destination and renames it into place.

mod altdest;
mod attrs;
mod delete;
mod hlink;
mod lists;
mod lookahead;
mod transfer;
mod walk;

use crate::filters::Filters;
use crate::itemize::Itemize;
use crate::options::{DeleteMode, Options};
use crate::report::{exit, kind_slot, ItemFacts, Reporter, Stats};
use rtsync_tree::{FileEntry, FileKind, Item, ScanOptions, ScanProblem};
use std::ffi::OsStr;
use std::fs::Metadata;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `strerror` text plus the errno in parentheses, as rsync prints OS errors.
pub fn os_error(e: &io::Error) -> String {
    let code = e.raw_os_error().unwrap_or(0);
    // SAFETY: strerror returns a pointer to a static NUL-terminated string.
    let text = unsafe { std::ffi::CStr::from_ptr(libc::strerror(code)) };
    format!("{} ({code})", text.to_string_lossy())
}

/// An absolute form of a path for messages (rsync prints full paths).
pub fn full_path(p: &Path) -> String {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut out: Vec<&[u8]> = Vec::new();
    for comp in abs.as_os_str().as_bytes().split(|&c| c == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    let mut s = String::from("/");
    s.push_str(&crate::report::lossless_text(&out.join(&b'/')));
    s
}

/// What one walk over the sources does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    Transfer,
    /// Transfer, deleting extraneous files in each directory first (`--delete-during`).
    TransferAndDelete,
    /// Only delete (`--delete-before` / `--delete-after`).
    DeleteOnly,
}

/// The state of one local transfer.
pub struct LocalTransfer<'a> {
    opts: &'a Options,
    /// `--append-verify` re-sent the file just written (it is itemized a second time).
    redone: bool,
    /// `--append-verify`'s failed file: its time, for the redo pass's item line.
    redo_mtime: Option<(i64, u32)>,
    /// The file just written was not read to its size (it changed while it was sent).
    source_changed: bool,
    /// Files to send again once the others are done (entry, source path, device).
    redo_sources: Vec<(FileEntry, PathBuf, u64)>,
    /// Those files are being sent again.
    redoing: bool,
    report: Reporter,
    stats: Stats,
    /// The entries of the directories on the current path (an arena used as a stack: a
    /// directory's entries are dropped once its subtree is done).
    entries: Vec<FileEntry>,
    /// Where each entry is read from.
    paths: Vec<PathBuf>,
    /// What the last file written would have cost on the wire (`%b`, `%c`).
    wire_bytes: transfer::WireBytes,
    /// The filesystem each entry is on (for `-x`).
    devs: Vec<u64>,
    /// Each entry's position in the file list, for `--progress`.
    ordinals: Vec<u64>,
    /// Entries listed so far.
    listed: u64,
    /// Without incremental recursion: entries handled so far. Stock's single list puts
    /// each directory's contents right after it, so an entry's position is its place in
    /// the walk, not among its siblings.
    visited: u64,
    /// `--progress`: the entries stock's sender would have listed by now.
    lookahead: Option<lookahead::Lookahead>,
    /// `--info=progress2`: the file lists stock's sender would have sent, for the lines it
    /// shows at each list's end.
    lists: lists::Lists,
    /// The sender's `total: matches=…` line went out.
    matches_reported: bool,
    /// For a directory entry, same-named directories of other sources whose contents merge in.
    alternates: Vec<Vec<PathBuf>>,
    /// The names of the top-level items (with `-R`, whole paths), which `--delete` spares.
    top_names: std::collections::HashSet<Vec<u8>>,
    /// The destination directory, or the destination file for a single-file copy.
    dest_root: PathBuf,
    /// A single file copied to a new name.
    single_file_dest: bool,
    /// The destination directory was created by this run (its `.` entry is new).
    dest_created: bool,
    /// Worst problem so far, as an rsync exit code.
    exit_code: i32,
    /// `-H` groups.
    links: hlink::HardLinks,
    /// The `-H` group member being handled.
    current_link: Option<hlink::Current>,
    /// Directories whose times and permissions are set after their contents.
    dir_fixups: Vec<attrs::DirFixup>,
    /// Skipped directories whose destination still gets their mtime (path, sec, nsec).
    retouch: Vec<(PathBuf, i64, u32)>,
    deletions: u64,
    /// Deletions refused by `--max-delete`.
    skipped_deletions: u64,
    umask: u32,
    /// The receiving side may do what root does (stock's `am_root` is not 0).
    is_root: bool,
    /// The receiving side's `am_root` (-1: `--fake-super`).
    am_root: i8,
    /// The directory just handled could not be made: its contents are skipped.
    mkdir_failed: bool,
    /// `-n`: a directory that would replace what is in its way (stock's dry_missing_dir):
    /// what is below it is not there (not even where a file is).
    dry_missing: Option<Vec<u8>>,
    /// The receiver's side of a file failed (no temp file, no backup): what it says, once
    /// the file's line is out.
    receive_failed: Option<Vec<String>>,
    /// What the last failed `--backup` said (its caller decides when it is printed).
    backup_messages: Vec<String>,
    /// `--usermap`/`--groupmap`/`--chown`.
    maps: crate::idmap::LocalMaps,
    /// `-A`: the maps for the ids of named ACL entries (whoever receives).
    acl_maps: crate::idmap::LocalMaps,
    /// The command-line sources (after `--files-from`).
    sources: Vec<PathBuf>,
    /// The rules `--delete` consults, with per-directory files read from the destination.
    receiver_rules: Filters,
    /// `--debug=filter`: the sender's and the generator's traces of deciding rules.
    traces: [Option<crate::filters::FilterTrace>; 2],
    /// `--compare-dest`/`--copy-dest`/`--link-dest` directories, resolved.
    basis_dirs: Vec<PathBuf>,
    /// The basis directories held open: their files are reached through these descriptors
    /// (`/proc/self/fd/N/NAME`), so a directory swapped for a symlink later is not followed.
    basis_fds: Vec<std::os::fd::OwnedFd>,
    /// The file being written is a copy from a basis directory (never a delta).
    alt_whole_file: bool,
    /// `--bwlimit`: file data is copied no faster than this.
    bw: Option<crate::bwlimit::BwLimit>,
    /// A basis-directory file to use as the delta basis of the file being written.
    alt_basis: Option<PathBuf>,
    /// A failure that ends the transfer at once (exit code, stock's source location).
    fatal: Option<(i32, &'static str)>,
    /// Why the last `--backup` could not be made (none when it was refused by the ownership
    /// rule, which reports itself).
    backup_error: Option<std::io::Error>,
    /// `--delay-updates`: finished files waiting in their partial directory (staged, final).
    delayed: Vec<(PathBuf, PathBuf)>,
    /// The sender met an I/O error listing (stock's IOERR_GENERAL): `--delete` stops,
    /// unless `--ignore-errors`; the flag says whether that was said yet.
    io_error: bool,
    io_warned: bool,
    /// `-M--munge-links`: the receiving side munges the symlinks it makes.
    munge_received: bool,
}

/// Runs a local transfer; returns rsync's exit code.
pub fn run(opts: &Options, sources: &[PathBuf], dest: &Path) -> i32 {
    let start = Instant::now();
    let scan_opts = ScanOptions {
        recursive: opts.recursive,
        dirs: opts.dirs,
        links: opts.links,
        copy_links: opts.copy_links,
        copy_unsafe_links: opts.copy_unsafe_links,
        copy_dirlinks: opts.copy_dirlinks,
        one_file_system: opts.one_file_system,
        relative: opts.relative,
        implied_dirs: opts.implied_dirs,
        hard_links: opts.hard_links,
        missing_args: opts.missing_args(),
        xattrs: opts.xattr_rules(),
        incremental: opts.incremental_recursion(),
        acls: opts.acls,
        fake_super: opts.am_root() < 0,
        copy_devices: opts.copy_devices,
        unmunge_links: opts.munge_links,
        note_unsafe_copies: opts.info_level("symsafe") > 0,
        name_check: None,
    };
    let mut report = Reporter::new(opts);
    {
        use std::os::unix::ffi::OsStrExt;
        let srcs: Vec<&[u8]> = sources.iter().map(|p| p.as_os_str().as_bytes()).collect();
        report.set_rooted_sources(opts.relative, &srcs);
    }
    report.defer_items_per_list();
    report.receiving_side_errors();
    rtsync_tree::fsops::interrupt::signal_cleanup_install(&format!(
        "rsync error: received SIGINT, SIGTERM, or SIGHUP (code 20) at rsync.c(874) [sender={}]\n",
        crate::RSYNC_VERSION
    ));
    if opts.debug_level("nstr") >= 1 {
        for line in crate::report::nstr_lines(opts) {
            report.info(&line);
        }
    }
    report.log_only("building file list");
    // `--progress` without incremental recursion counts the list as it is built.
    let flist_progress = opts.progress
        && !opts.quiet
        && !opts.incremental_recursion()
        && (opts.recursive || opts.dirs);
    if opts.incremental_recursion() {
        report.list_notice("sending incremental file list");
    } else if !flist_progress && (opts.recursive || opts.dirs) {
        // (Without directories to transfer stock's sender says nothing of its list.)
        // (`done` once the sources are listed: their problems come between.)
        report.list_start("building file list ... ");
    }
    // Relative to the destination directory, as the receiver sees it.
    let dest_dir = match std::fs::metadata(dest) {
        Ok(m) if !m.is_dir() => dest.parent().unwrap_or(Path::new("")).to_path_buf(),
        _ => dest.to_path_buf(),
    };
    // Stock's receiver looks at both before anything is transferred: one that is there but
    // not a directory, or a temp dir that is not there, ends the run (code 1).
    let unusable = unusable_option_dir(
        opts.backup_dir
            .as_deref()
            .filter(|_| opts.backup)
            .map(Path::new),
        opts.temp_dir.as_deref().map(Path::new),
        |p| std::fs::metadata(dest_dir.join(p)),
        |p| crate::report::lossless_text(p.as_os_str().as_bytes()).into_owned(),
    );
    if let Some((text, code, at)) = unusable {
        report.error(&text);
        report.error(&crate::report::error_line(code, at, "Receiver"));
        return code;
    }
    if let (Some(dir), true) = (&opts.backup_dir, opts.info_backup() && !opts.quiet) {
        let exists = std::fs::metadata(dest_dir.join(dir)).is_ok_and(|m| m.is_dir());
        let new = if exists { "" } else { "(new) " };
        report.info_after_list(&format!("{new}backup_dir is {}", Path::new(dir).display()));
    }
    let mut filters = match Filters::from_options(opts) {
        Ok(f) => f,
        Err(rtsync_filter::FilterError::Io { path, source })
            if rtsync_oppath::is_refusal(&source) =>
        {
            report.error(rtsync_oppath::REFUSAL);
            let what = if opts
                .filters
                .iter()
                .any(|f| matches!(f, rtsync_filter::FilterOption::IncludeFrom(p) if *p == path))
            {
                "include"
            } else {
                "exclude"
            };
            report.error(&format!(
                "rsync: [client] failed to open {what} file {}: {}",
                path.display(),
                os_error(&source)
            ));
            report.error(&crate::report::error_line(
                exit::FILE_IO,
                "exclude.c(1719)",
                "client",
            ));
            return exit::FILE_IO;
        }
        Err(e) => {
            // Stock's words and the place its exit names, by what went wrong.
            let (prefix, place) = crate::filters::error_place(&e);
            let code = e.rsync_exit_code();
            report.error(&format!("{prefix}{e}"));
            report.error(&crate::report::error_line(code, place, "client"));
            return code;
        }
    };
    filters.local_copy = true;
    let listed;
    let sources = match &opts.files_from {
        Some(list) => {
            let names = match crate::files_from::read_list(
                Path::new(list),
                opts.from0,
                crate::files_from::ListUse::Read,
            ) {
                Ok(n) => n,
                Err(e) => {
                    if rtsync_oppath::is_refusal(&e) {
                        report.error(rtsync_oppath::REFUSAL);
                    }
                    let text = os_error(&e);
                    let text = text.rsplit_once(" (").map_or(&text[..], |(t, _)| t);
                    report.error(&format!(
                        "rsync: failed to open files-from file {}: {text}",
                        Path::new(list).display(),
                    ));
                    report.error(&crate::report::error_line(
                        exit::SYNTAX,
                        "main.c(1886)",
                        "client",
                    ));
                    return exit::SYNTAX;
                }
            };
            listed = crate::files_from::sources(&sources[0], &names);
            &listed[..]
        }
        None => sources,
    };
    let mut t = LocalTransfer {
        redone: false,
        redo_mtime: None,
        source_changed: false,
        redo_sources: Vec::new(),
        redoing: false,
        opts,
        report,
        stats: Stats::default(),
        entries: Vec::new(),
        paths: Vec::new(),
        wire_bytes: Default::default(),
        devs: Vec::new(),
        ordinals: Vec::new(),
        listed: 0,
        visited: 0,
        lookahead: None,
        lists: Default::default(),
        matches_reported: false,
        alternates: Vec::new(),
        top_names: Default::default(),
        dest_root: dest.to_path_buf(),
        single_file_dest: false,
        dest_created: false,
        exit_code: exit::OK,
        links: hlink::HardLinks::default(),
        current_link: None,
        dir_fixups: Vec::new(),
        retouch: Vec::new(),
        deletions: 0,
        skipped_deletions: 0,
        umask: current_umask(),
        is_root: opts.receiver_am_root() != 0,
        am_root: opts.receiver_am_root(),
        mkdir_failed: false,
        dry_missing: None,
        receive_failed: None,
        maps: Default::default(),
        acl_maps: Default::default(),
        sources: sources.to_vec(),
        receiver_rules: Filters::none(),
        traces: [
            crate::filters::FilterTrace::for_role(opts, "sender"),
            crate::filters::FilterTrace::for_role(opts, "generator"),
        ],
        basis_dirs: Vec::new(),
        basis_fds: Vec::new(),
        alt_whole_file: false,
        bw: crate::bwlimit::BwLimit::new(opts.bwlimit),
        alt_basis: None,
        fatal: None,
        backup_error: None,
        backup_messages: Vec::new(),
        delayed: Vec::new(),
        io_error: false,
        io_warned: false,
        munge_received: opts.receiver_munges_links(),
    };
    let is_root = t.is_root;
    let mut warnings = Vec::new();
    t.maps = crate::idmap::LocalMaps::new(t.opts, is_root, |w| warnings.push(w));
    for w in warnings {
        t.report.error(&w);
    }
    if opts.acls && (opts.usermap.is_some() || opts.groupmap.is_some()) {
        let mut o = opts.clone();
        o.owner = true;
        o.group = true;
        t.acl_maps = crate::idmap::LocalMaps::new(&o, true, |_| {});
    }
    if opts.hard_links {
        let mut prepass_filters = filters.clone();
        t.find_link_groups(sources, &scan_opts, &mut prepass_filters);
    }
    // (A dry run shows no file's progress, but progress2's list ends still count.)
    let progress = opts.progress_level();
    if (progress > 0 && !opts.dry_run) || progress > 1 || flist_progress {
        let mut la =
            lookahead::Lookahead::new(&scan_opts, &filters, sources, !opts.incremental_recursion());
        if flist_progress {
            la.advance(0, opts.prune_empty_dirs);
            t.report
                .write_raw(crate::report::flist_progress(la.listed).as_bytes());
        }
        t.lookahead = Some(la);
    }
    let code = t.walk(&scan_opts, &mut filters, dest);
    if let Some(code) = code {
        t.report.flush();
        return code;
    }
    if let Some((code, at)) = t.fatal {
        t.report.flush();
        t.report
            .error(&crate::report::error_line(code, at, "receiver"));
        return code;
    }
    let flist_time = 0.0;
    t.finish(flist_time, start)
}

/// The process umask, read once (reading it means setting it: two syscalls, and a window
/// where another thread would see the wrong value) and kept, since rtsync never changes it.
pub fn current_umask() -> u32 {
    static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    // SAFETY: umask is always safe; set it back immediately.
    *UMASK.get_or_init(|| unsafe {
        let m = libc::umask(0o022);
        libc::umask(m);
        m as u32
    })
}

impl<'a> LocalTransfer<'a> {
    /// `--progress`: where the file of entry `i` stands in the lists stock's sender would
    /// have sent by now.
    fn progress_counts(&mut self, i: usize) -> crate::report::Progress {
        let index = self.ordinals.get(i).copied().unwrap_or(0);
        self.counts_at(index)
    }

    /// `--progress` counts at position `index` of the whole list.
    fn counts_at(&mut self, index: u64) -> crate::report::Progress {
        let (listed, complete, total_size) = match &mut self.lookahead {
            Some(la) => {
                la.advance(index, self.opts.prune_empty_dirs);
                (
                    la.listed.max(self.listed),
                    la.done,
                    la.total_size.max(self.stats.total_size),
                )
            }
            None => (self.listed, true, self.stats.total_size),
        };
        crate::report::Progress {
            transferred: self.stats.transferred,
            index,
            listed,
            complete,
            total_size,
        }
    }

    fn note(&mut self, code: i32) {
        // A real error outranks "vanished"; the first real error's code is kept.
        if self.exit_code == exit::OK
            || (self.exit_code == exit::VANISHED && code != exit::VANISHED)
        {
            self.exit_code = code;
        }
    }

    fn report_problems(&mut self, problems: &[ScanProblem]) {
        for p in problems {
            match p {
                ScanProblem::Missing { path, error } => {
                    self.report.error(&format!(
                        "rsync: [sender] link_stat \"{}\" failed: {}",
                        full_path(path),
                        os_error(error)
                    ));
                    self.note(exit::PARTIAL);
                    // (A name that is not there does not stop deletions; stock's sender
                    // flags only other failures.)
                    if error.kind() != std::io::ErrorKind::NotFound {
                        self.io_error = true;
                    }
                }
                ScanProblem::ChangeDir { path, error } => {
                    // rsync reports the directory without its trailing slash.
                    let mut shown = full_path(path);
                    while shown.len() > 1 && shown.ends_with('/') {
                        shown.pop();
                    }
                    self.report.error(&format!(
                        "rsync: [sender] change_dir \"{shown}\" failed: {}",
                        os_error(error)
                    ));
                    self.note(exit::PARTIAL);
                    self.io_error = true;
                }
                ScanProblem::ReadDir { error, .. }
                    if error.raw_os_error().is_none()
                        && error.kind() == std::io::ErrorKind::InvalidData =>
                {
                    // The directory's rule files could not be loaded (a bad rule, too deep a
                    // merge chain): the filter error itself, as stock reports it.
                    self.report.error(&format!("[sender] {error}"));
                    self.note(exit::FILE_IO);
                }
                ScanProblem::ReadDir { path, error } => {
                    self.report.error(&format!(
                        "rsync: [sender] opendir \"{}\" failed: {}",
                        full_path(path),
                        os_error(error)
                    ));
                    self.note(exit::PARTIAL);
                    self.io_error = true;
                }
                ScanProblem::Vanished { path } => {
                    self.report
                        .error(&format!("file has vanished: \"{}\"", full_path(path)));
                    self.note(exit::VANISHED);
                }
                ScanProblem::ReadlinkStat { path, error } => {
                    self.report.error(&format!(
                        "rsync: [sender] readlink_stat(\"{}\") failed: {}",
                        full_path(path),
                        os_error(error)
                    ));
                    self.note(exit::PARTIAL);
                    self.io_error = true;
                }
                ScanProblem::NoReferent { path } => {
                    self.report
                        .error(&format!("symlink has no referent: \"{}\"", full_path(path)));
                    self.note(exit::PARTIAL);
                    self.io_error = true;
                }
                ScanProblem::Skipped { name, .. } => {
                    let n = crate::report::lossless_text(name).into_owned();
                    self.report.info(&format!("skipping directory {n}"));
                }
                ScanProblem::CopyingUnsafe { name, target } => {
                    self.report.info(&format!(
                        "copying unsafe symlink \"{}\" -> \"{}\"",
                        crate::report::lossless_text(name),
                        crate::report::lossless_text(target)
                    ));
                }
                ScanProblem::OtherFilesystem { .. } => {}
                ScanProblem::Note { text } => self.report.info(text),
                ScanProblem::TooLong { dir, name, over } => {
                    self.report.error(&too_long_text(dir, name, *over));
                    self.note(exit::PARTIAL);
                    self.io_error = true;
                }
                ScanProblem::Unconvertible { text } => {
                    self.report.error(text);
                    self.note(exit::PARTIAL);
                    self.io_error = true;
                }
            }
        }
    }

    /// Decides whether DEST is a directory to copy into or the new name of a single file, and
    /// creates it when needed (rsync's "created directory").
    fn resolve_dest(&mut self, dest: &Path, top: &[rtsync_tree::Item]) -> Result<(), i32> {
        let dest_bytes = dest.as_os_str().as_bytes();
        let one_file = top.len() == 1 && !top[0].entry.is_dir();
        if self.opts.mkpath && std::fs::metadata(dest).is_err() {
            self.make_dest_path(dest, !one_file && !top.is_empty())?;
        }
        match std::fs::metadata(dest) {
            Ok(md) if md.is_dir() => return self.enter_dest(dest, 1),
            Ok(_) => {
                if one_file {
                    self.single_file_dest = true;
                    return self.enter_dest(self.dest_dir().as_path(), 3);
                }
            }
            Err(_) => {}
        }
        // Nothing to copy is a single file too (stock then works in DEST's parent), unless
        // DEST ends in a slash: that directory is made all the same.
        let single = (one_file || top.is_empty()) && !dest_bytes.ends_with(b"/");
        if single && !(self.opts.dry_run && self.opts.mkpath) {
            // The receiver works in the file's directory: it must exist.
            let parent = dest.parent().filter(|p| !p.as_os_str().is_empty());
            if let Some(parent) = parent {
                if let Err(e) = std::fs::metadata(parent).and_then(|m| {
                    if m.is_dir() {
                        Ok(())
                    } else {
                        Err(io::Error::from_raw_os_error(libc::ENOTDIR))
                    }
                }) {
                    self.report.error(&format!(
                        "rsync: [Receiver] change_dir#3 \"{}\" failed: {}",
                        full_path(parent),
                        os_error(&e)
                    ));
                    self.report.error(&crate::report::error_line(
                        exit::FILE_SELECT,
                        "main.c(855)",
                        "Receiver",
                    ));
                    return Err(exit::FILE_SELECT);
                }
            }
        }
        if single {
            self.single_file_dest = true;
            return self.enter_dest(self.dest_dir().as_path(), 3);
        }
        self.dest_created = true;
        if self.opts.dry_run {
            self.announce_created(dest);
            return Ok(());
        }
        // Created under the operator-path rule: not through another user's symlink.
        let made = if self.opts.mkpath {
            rtsync_oppath::create_dir_all(rtsync_oppath::Base::Cwd, dest, 0o777).map(drop)
        } else {
            rtsync_oppath::open_parent(rtsync_oppath::Base::Cwd, dest, false).and_then(
                |(dir, leaf)| {
                    let c = std::ffi::CString::new(leaf.as_bytes())
                        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
                    // SAFETY: an open directory and a NUL-terminated name.
                    let r = unsafe {
                        libc::mkdirat(std::os::fd::AsRawFd::as_raw_fd(&dir), c.as_ptr(), 0o777)
                    };
                    if r < 0 {
                        Err(io::Error::last_os_error())
                    } else {
                        Ok(())
                    }
                },
            )
        };
        match made {
            Ok(()) => {
                self.announce_created(dest);
                self.enter_dest(dest, 2)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => self.enter_dest(dest, 2),
            Err(e) if rtsync_oppath::is_refusal(&e) => self.refuse_dest(dest, 2, &e),
            Err(e) => {
                self.report.error(&format!(
                    "rsync: [Receiver] mkdir \"{}\" failed: {}",
                    full_path(dest),
                    os_error(&e)
                ));
                self.report.error(&crate::report::error_line(
                    exit::FILE_IO,
                    "main.c(808)",
                    "Receiver",
                ));
                Err(exit::FILE_IO)
            }
        }
    }

    /// `--mkpath`: creates the missing directories leading to DEST (see [`mkpath_target`])
    /// and says how many.
    fn make_dest_path(&mut self, dest: &Path, many: bool) -> Result<(), i32> {
        let Some(path) = mkpath_target(dest.as_os_str().as_bytes(), many) else {
            return Ok(());
        };
        match make_path(path, self.opts.dry_run) {
            Ok(count) => {
                if count > 0 && self.report.lists_items() {
                    self.report.info(&mkpath_notice(count, path));
                }
                Ok(())
            }
            Err((p, e)) => {
                self.report.error(&format!(
                    "rsync: [Receiver] mkdir \"{}\" failed: {}",
                    full_path(&p),
                    os_error(&e)
                ));
                self.report.error(&crate::report::error_line(
                    exit::FILE_IO,
                    "main.c(808)",
                    "Receiver",
                ));
                Err(exit::FILE_IO)
            }
        }
    }

    /// The receiver's `chdir` into the destination (`which` is stock's change_dir#N): the
    /// directory must resolve under the operator-path rule (no other user's symlink).
    fn enter_dest(&mut self, dir: &Path, which: u8) -> Result<(), i32> {
        if self.opts.dry_run && which == 2 {
            return Ok(());
        }
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        match rtsync_oppath::open_dir(dir) {
            Err(e) if rtsync_oppath::is_refusal(&e) => self.refuse_dest(dir, which, &e),
            _ => Ok(()),
        }
    }

    fn refuse_dest(&mut self, dir: &Path, which: u8, e: &io::Error) -> Result<(), i32> {
        let mut shown = if dir.is_absolute() {
            dir.display().to_string()
        } else {
            let cwd = std::env::current_dir().unwrap_or_default();
            format!("{}/{}", cwd.display(), dir.display())
        };
        if which == 2 {
            // The directory it just created, named without the trailing slash.
            while shown.len() > 1 && shown.ends_with('/') {
                shown.pop();
            }
        }
        let at = match which {
            1 => "main.c(768)",
            2 => "main.c(826)",
            _ => "main.c(855)",
        };
        self.report.error(rtsync_oppath::REFUSAL);
        self.report.error(&format!(
            "rsync: [Receiver] change_dir#{which} \"{shown}\" failed: {}",
            os_error(e)
        ));
        self.report.error(&crate::report::error_line(
            exit::FILE_SELECT,
            at,
            "Receiver",
        ));
        Err(exit::FILE_SELECT)
    }

    fn announce_created(&mut self, dest: &Path) {
        if self.report.announces_created() {
            let mut shown = dest.as_os_str().as_bytes().to_vec();
            while shown.len() > 1 && shown.ends_with(b"/") {
                shown.pop();
            }
            self.report.info(&format!(
                "created directory {}",
                crate::report::lossless_text(&shown)
            ));
        }
    }

    /// Where an entry lands.
    /// `-R --no-implied-dirs`: the parents of a listed path are not in the list, so missing
    /// ones are created quietly with default attributes, as rsync's receiver does.
    fn make_missing_parents(&self, dest: &Path) {
        if !self.opts.relative || self.opts.implied_dirs || self.opts.dry_run {
            return;
        }
        let Some(parent) = dest.parent() else {
            return;
        };
        // Through symlinks only while they stay inside the destination, as stock's
        // receiver makes the path: a planted `A -> elsewhere` must not route the new
        // directories out of it (a refusal shows when the file is written).
        let base = self.dest_dir();
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };
        let Ok(rel) = parent.strip_prefix(&base) else {
            return;
        };
        let _ = rtsync_tree::Confine::new(base.clone()).create_dir_all(&base.join(rel), 0o777);
    }

    /// The destination directory, where rsync's receiver works from: relative `--temp-dir`
    /// and `--backup-dir` paths start there.
    fn dest_dir(&self) -> PathBuf {
        if self.single_file_dest {
            self.dest_root
                .parent()
                .unwrap_or(Path::new(""))
                .to_path_buf()
        } else {
            self.dest_root.clone()
        }
    }

    /// The directory a file inside the destination lands in, held open beneath the
    /// destination directory (in-tree symlinks followed, none leading out: `ELOOP`), as
    /// stock's receiver confines a transfer path. `None` for a file directly in the
    /// destination directory (an operator path), and with `--insecure-links`.
    fn pin_parent(&self, dest: &Path) -> std::io::Result<Option<std::os::fd::OwnedFd>> {
        if self.opts.insecure_links || self.single_file_dest {
            return Ok(None);
        }
        let root = self.dest_dir();
        let Some(parent) = dest.strip_prefix(&root).ok().and_then(Path::parent) else {
            return Ok(None);
        };
        if parent.as_os_str().is_empty() {
            return Ok(None);
        }
        let root = if root.as_os_str().is_empty() {
            Path::new(".")
        } else {
            &root
        };
        let rootfd = std::fs::File::open(root)?;
        rtsync_oppath::open_dir_in_tree(std::os::fd::AsFd::as_fd(&rootfd), parent).map(Some)
    }

    /// `--fake-super` on the receiving side.
    pub(super) fn fake(&self) -> bool {
        self.am_root < 0
    }

    /// A destination item as the receiver sees it (with `--fake-super`, its `%stat` folded
    /// in).
    pub(super) fn seen(&self, path: &Path, md: &Metadata) -> rtsync_tree::fake::Seen {
        if self.fake() {
            rtsync_tree::fake::Seen::of(path, md)
        } else {
            rtsync_tree::fake::Seen::real(md)
        }
    }

    /// `-X`: the namespace rules of the receiving side.
    pub(super) fn recv_xattr_rules(&self) -> Option<rtsync_tree::xattr::XattrRules> {
        self.opts.xattr_rules_as(self.am_root)
    }

    fn dest_path(&self, name: &[u8]) -> PathBuf {
        if self.single_file_dest {
            return self.dest_root.clone();
        }
        if name == b"." {
            self.dest_root.clone()
        } else {
            self.dest_root.join(OsStr::from_bytes(name))
        }
    }

    /// `-n`: whether entry `i` lies below a directory that would have replaced what is in
    /// its way (then nothing is there for it).
    fn below_dry_missing(&mut self, i: usize) -> bool {
        let Some(d) = &self.dry_missing else {
            return false;
        };
        let name = &self.entries[i].name;
        if name.len() > d.len() && name.starts_with(d) && name[d.len()] == b'/' {
            return true;
        }
        self.dry_missing = None;
        false
    }

    /// `--existing` / `--ignore-existing`: whether entry `i` is left alone. `below_file`:
    /// nothing is there because a parent is a file (stock's stat fails with ENOTDIR, not
    /// ENOENT, and `--existing` still tries the item, which then fails).
    fn skipped_by_existence(
        &mut self,
        i: usize,
        existing: Option<&Metadata>,
        below_file: bool,
    ) -> bool {
        let is_dir = self.entries[i].is_dir();
        if self.opts.existing && existing.is_none() && !below_file && self.entries[i].name != b"." {
            return true;
        }
        if self.opts.ignore_existing && existing.is_some_and(|md| !(is_dir && md.is_dir())) {
            if is_dir {
                // rsync still touches the times of every listed directory at the end, even
                // when what stands in its place is not one.
                let e = &self.entries[i];
                self.retouch
                    .push((self.dest_path(&e.name), e.mtime, e.mtime_nsec));
            }
            return true;
        }
        false
    }

    /// Generates a non-directory entry.
    fn process(&mut self, i: usize) {
        if self.entries[i].is_missing() {
            self.delete_missing(i);
            return;
        }
        let dest = self.dest_path(&self.entries[i].name);
        self.make_missing_parents(&dest);
        if let Err(e) = self.pin_parent(&dest) {
            // A parent that is (or became) a symlink leading out of the destination.
            if rtsync_oppath::is_refusal(&e) {
                self.stat_failed(&dest, &e);
                return;
            }
        }
        let mut below_file = false;
        let stat = if self.below_dry_missing(i) {
            Err(io::Error::from_raw_os_error(libc::ENOENT))
        } else {
            std::fs::symlink_metadata(&dest)
        };
        let existing = match stat {
            Ok(md) => Some(md),
            // A parent is a file (the directory was skipped, or could not be made): stock
            // reports a regular file's stat, and tries to make anything else (which fails
            // alike; nothing made there can leave the destination).
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                if self.entries[i].kind == rtsync_tree::FileKind::Regular {
                    self.stat_failed(&dest, &e);
                    return;
                }
                below_file = true;
                None
            }
            Err(_) => None,
        };
        if self.skipped_by_existence(i, existing.as_ref(), below_file) {
            return;
        }
        match self.entries[i].kind {
            FileKind::Directory => unreachable!("directories are generated by the walker"),
            FileKind::Regular => {
                self.current_link = self.join_group(i);
                if let Some(cur) = self.current_link {
                    if self.hard_link_check(cur) {
                        self.current_link = None;
                        return;
                    }
                }
                self.do_file(i, &dest, existing);
                self.current_link = None;
            }
            FileKind::Symlink => {
                if self.opts.links {
                    // Hard-linked symlinks are linked as stock links them on Linux: the
                    // first member is created, later ones are linked to it.
                    self.current_link = self.join_group(i);
                    if let Some(cur) = self.current_link {
                        if self.hard_link_check(cur) {
                            self.current_link = None;
                            return;
                        }
                    }
                    self.do_symlink(i, &dest, existing);
                    self.current_link = None;
                } else {
                    self.skip_nonregular(i)
                }
            }
            FileKind::BlockDevice | FileKind::CharDevice => {
                if self.opts.devices && !self.opts.drop_devices && self.is_root {
                    self.linked_node(i, &dest, existing)
                } else {
                    self.skip_nonregular(i)
                }
            }
            FileKind::Fifo | FileKind::Socket => {
                if self.opts.specials && !self.opts.drop_devices {
                    self.linked_node(i, &dest, existing)
                } else {
                    self.skip_nonregular(i)
                }
            }
        }
    }

    /// Stock's generator could not stat `dest`: the item is skipped, the run ends with 23.
    fn stat_failed(&mut self, dest: &Path, e: &std::io::Error) {
        self.report.error(&format!(
            "rsync: [generator] recv_generator: failed to stat \"{}\": {}",
            full_path(dest),
            os_error(e)
        ));
        self.note(exit::PARTIAL);
    }

    fn skip_nonregular(&mut self, i: usize) {
        let name = crate::report::lossless_text(&self.entries[i].name).into_owned();
        self.report
            .info(&format!("skipping non-regular file \"{name}\""));
    }

    /// Reports entry `i` as an item line (and in the log file).
    pub(super) fn show(&mut self, i: usize, it: &Itemize, name: &[u8], suffix: &[u8]) {
        if it.has_changes() {
            // (Stock's generator tells the sender, which logs it.)
            self.sender_sees(i, false);
        }
        let facts = self.facts(i);
        self.report.item_with(it, name, suffix, &facts);
    }

    /// What `--out-format` may say of entry `i` beyond its name.
    pub(super) fn facts(&self, i: usize) -> ItemFacts {
        self.facts_of(&self.entries[i], &self.paths[i])
    }

    /// What `--out-format` may say of `e`, read from `path`: the list's size, mode, time and
    /// (when preserved) owner; `%f` is the path as the sender names it (`src/.` for the root of
    /// `src/`); `%C` is the file's checksum with `-c`.
    pub(super) fn facts_of(&self, e: &FileEntry, path: &Path) -> ItemFacts {
        let sum_hex = (self.opts.checksum
            && e.kind == rtsync_tree::FileKind::Regular
            && self.report.wants(b'C'))
        .then(|| self.sum_hex_of(path, true))
        .flatten();
        ItemFacts {
            sum_hex,
            ..ItemFacts::sent_from(e, path.as_os_str().as_bytes())
        }
    }

    /// `%C`: the file's checksum in the kind `--checksum-choice` names for transfers (or, with
    /// `file_sum`, for `-c`), xxh128 by default.
    pub(super) fn sum_hex_of(&self, path: &Path, file_sum: bool) -> Option<String> {
        use rtsync_delta::FileHasher;
        let kind = crate::report::sum_kind(self.opts, file_sum);
        // Streamed: the file may be large.
        let mut file = std::fs::File::open(path).ok()?;
        let mut h = FileHasher::new(kind);
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match io::Read::read(&mut file, &mut buf) {
                Ok(0) => break,
                Ok(n) => h.update(&buf[..n]),
                Err(_) => return None,
            }
        }
        let digest = h.finish();
        Some(crate::report::sum_hex_as(digest.as_bytes(), kind))
    }

    fn item_name(&self, i: usize) -> Vec<u8> {
        let e = &self.entries[i];
        let mut n = e.name.clone();
        if e.is_dir() {
            if n == b"." {
                n = b"./".to_vec();
            } else {
                n.push(b'/');
            }
        }
        n
    }

    /// Generates a directory entry; with `children` (its contents in the source, when they are
    /// part of the transfer) `--delete-during` removes what else the destination holds.
    pub(super) fn do_dir(&mut self, i: usize, children: Option<&[Item]>) {
        self.mkdir_failed = false;
        let dest = self.dest_path(&self.entries[i].name);
        self.make_missing_parents(&dest);
        let stat = if self.below_dry_missing(i) {
            Err(io::Error::from_raw_os_error(libc::ENOENT))
        } else {
            std::fs::symlink_metadata(&dest)
        };
        let below_file = stat
            .as_ref()
            .is_err_and(|e| e.raw_os_error() == Some(libc::ENOTDIR));
        let mut existing = stat.ok();
        if self.opts.keep_dirlinks
            && existing
                .as_ref()
                .is_some_and(|m| m.file_type().is_symlink())
        {
            // -K: a symlink to a directory on the receiving side stands for that directory.
            if let Some(md) = std::fs::metadata(&dest).ok().filter(|m| m.is_dir()) {
                existing = Some(md);
            }
        }
        if self.skipped_by_existence(i, existing.as_ref(), below_file) {
            return;
        }
        if self.opts.dry_run
            && self.dry_missing.is_none()
            && existing.as_ref().is_none_or(|m| !m.is_dir())
        {
            // (Made by a real run, in place of what is there: what is below it is new.)
            self.dry_missing = Some(self.entries[i].name.clone());
        }
        // Attributes are compared before deletions touch the directory, but the deletion
        // messages come first, as rsync's out-of-band messages overtake its item lines.
        let item = self.prepare_dir(i, &dest, existing);
        if let (DeleteMode::During, Some(children), Some(_), false) =
            (self.opts.delete, children, &item, self.mkdir_failed)
        {
            self.delete_extraneous(i, children);
        }
        if let Some(it) = item {
            // A directory found in a --link-dest (etc.) directory is a quiet local change.
            let from_alt = it.update == b'c' && !it.is_new;
            let quiet = from_alt && !self.alt_item_shown(&it);
            let significant = it.time.is_some() || it.perms || it.owner || it.group;
            if from_alt && !significant && !self.report.itemizes() {
                // Found unchanged in a basis directory: `-vv` says `DIR/ is uptodate`.
                let name = self.item_name(i);
                self.report.uptodate(&name);
            } else if !quiet {
                let name = self.item_name(i);
                self.show(i, &it, &name, b"");
            }
        }
    }

    /// Creates or checks a directory; `None` when it could not be made.
    fn prepare_dir(
        &mut self,
        i: usize,
        dest: &Path,
        existing: Option<Metadata>,
    ) -> Option<Itemize> {
        let created_root = self.dest_created && self.entries[i].name == b".";
        let existing = match existing {
            _ if created_root => None,
            Some(md) if md.is_dir() => Some(md),
            Some(_) => {
                if !self.remove_in_the_way(dest, i) {
                    return None;
                }
                None
            }
            None => None,
        };
        let Some(md) = existing else {
            let mut it = Itemize::new(b'c', b'd');
            it.is_new = true;
            if let Some(alt) = self.alt_dest_dir(i) {
                it = alt;
            } else {
                self.stats.created[1] += 1;
            }
            if !self.opts.dry_run {
                if !created_root {
                    if let Err(e) = self.make_dir_in_tree(dest) {
                        self.report.error(&format!(
                            "rsync: [generator] recv_generator: mkdir \"{}\" failed: {}",
                            full_path(dest),
                            os_error(&e)
                        ));
                        self.report
                            .error("*** Skipping any contents from this failed directory ***");
                        self.mkdir_failed = true;
                        self.note(exit::PARTIAL);
                        // (Itemized all the same: stock says the item before it tries.)
                        return Some(it);
                    }
                }
                self.apply_owner(i, dest, None);
                // Set now, and again once the contents are in place.
                let perms = self.set_dir_attrs_now(i, dest, true);
                self.defer_dir_fixup(i, true, perms);
            }
            return Some(it);
        };
        let mut it = Itemize::new(b'.', b'd');
        self.compare_attrs(i, &md, &mut it, true);
        if !self.opts.dry_run {
            self.apply_owner(i, dest, Some(&md));
            let perms = self.set_dir_attrs_now(i, dest, false);
            self.defer_dir_fixup(i, false, perms);
        }
        Some(it)
    }

    /// Makes the directory `dest` in its parent held open beneath the destination (a
    /// parent that is a symlink leading out is refused, `ELOOP`, as stock refuses it).
    fn make_dir_in_tree(&self, dest: &Path) -> io::Result<()> {
        let Some(parent) = self.pin_parent(dest)? else {
            return std::fs::create_dir(dest);
        };
        let leaf = dest.file_name().unwrap_or_default();
        let c = std::ffi::CString::new(leaf.as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: an open directory and a NUL-terminated name.
        let r =
            unsafe { libc::mkdirat(std::os::fd::AsRawFd::as_raw_fd(&parent), c.as_ptr(), 0o777) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Removes whatever is at `dest` so that entry `i` can take its place.
    fn remove_in_the_way(&mut self, dest: &Path, i: usize) -> bool {
        let name = self.entries[i].name.clone();
        let kind = self.entries[i].kind;
        self.remove_path_in_the_way(dest, &name, kind)
    }

    /// Makes room for a symlink, device or special file at `dest`: a directory is made way
    /// for and a backup taken as for any entry, but anything else stays until the new node
    /// is renamed over it (stock's atomic_create: the name never goes missing).
    fn make_room_for_node(&mut self, dest: &Path, i: usize) -> bool {
        let dir = std::fs::symlink_metadata(dest).is_ok_and(|m| m.is_dir());
        if !dir && !self.opts.backup {
            return true;
        }
        self.remove_in_the_way(dest, i)
    }

    /// Removes whatever is at `dest` (entry `name`'s place, a `kind`) so it can go there.
    /// A directory's contents go only with `--delete` or `--force` (stock's delete_item with
    /// DEL_MAKE_ROOM); otherwise it stays and the entry is skipped.
    fn remove_path_in_the_way(&mut self, dest: &Path, name: &[u8], kind: FileKind) -> bool {
        let md = match std::fs::symlink_metadata(dest) {
            Ok(m) => m,
            Err(_) => return true,
        };
        if self.opts.dry_run && !md.is_dir() {
            return true;
        }
        let mut backup_failed = false;
        let result = if md.is_dir() {
            let shown = crate::report::lossless_text(name).into_owned();
            if self.opts.deleting() || self.opts.force {
                // Its contents go as deletions (each one logged, as stock's delete_item
                // with DEL_RECURSE), then the directory itself, which the new item replaces.
                self.delete_contents(name, dest);
            }
            let full = std::fs::read_dir(dest).is_ok_and(|mut d| d.next().is_some());
            let stays = if self.opts.dry_run {
                // (What `-n` would have deleted is still there.)
                full && !(self.opts.deleting() || self.opts.force)
            } else {
                std::fs::remove_dir(dest).is_err()
            };
            if stays {
                let what = match kind {
                    FileKind::Regular => "regular file",
                    FileKind::Symlink => "symlink",
                    FileKind::BlockDevice | FileKind::CharDevice => "device file",
                    _ => "special file",
                };
                self.report
                    .error(&format!("could not make way for new {what}: {shown}"));
                // (Stock's local generator says why on stdout, through its sender: after.)
                if full {
                    self.report
                        .info(&format!("cannot delete non-empty directory: {shown}"));
                }
                self.note(exit::PARTIAL);
                return false;
            }
            Ok(())
        } else if self.opts.backup {
            backup_failed = true;
            self.back_up_before_removal(dest)
        } else {
            std::fs::remove_file(dest)
        };
        match result {
            Ok(()) => true,
            // (Gone already, or stock's silent backup-directory failure: room enough.)
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => {
                let name = crate::report::lossless_text(name).into_owned();
                let what = if md.is_dir() {
                    "rmdir"
                } else if backup_failed {
                    "make_backup"
                } else {
                    "unlink"
                };
                self.report.error(&format!(
                    "rsync: [generator] delete_file: {what}({name}) failed: {}",
                    os_error(&e)
                ));
                self.note(exit::PARTIAL);
                false
            }
        }
    }

    /// Stock's local copy is a sender and a receiver talking over a pipe, and its summary
    /// counts that traffic: the file list; per transferred file an index and flags each
    /// way, and (not under `-n`) a sum header each way, the data with a token per chunk,
    /// an end token and the file's checksum; and a fixed overhead (3.5.0 measured: close,
    /// not exact). Its sender reports the file list's size as 0.
    fn estimate_pipe_traffic(&mut self) {
        let s = &mut self.stats;
        let n = s.transferred;
        let (sent_each, received_each) = if self.opts.dry_run { (3, 3) } else { (43, 19) };
        s.sent = s.flist_size + 67 + n * sent_each + s.literal + 4 * (s.literal / 32768);
        s.received = 20 + n * received_each;
        s.flist_size = 0;
    }

    /// The sender's closing numbers (`--debug=deltasum`, `-vv`: `total: matches=…`), once:
    /// stock's sender prints them as its last phase ends, before the deletions of
    /// --delete-after and --delete-delay.
    pub(super) fn report_matches(&mut self) {
        if std::mem::replace(&mut self.matches_reported, true) {
            return;
        }
        if self.opts.dry_run {
            // A dry run's sender sends no data.
            self.stats.literal = 0;
            self.stats.matched = 0;
        }
        if self.opts.debug_level("deltasum") >= 1 {
            let line = self.stats.match_report();
            self.report.info(&line);
        }
        if self.opts.info_stats() >= 3 {
            // (Those two processes of stock's local copy are done by then; its generator,
            // which makes the late deletions, says its own at the end.)
            self.report.heap_stats(&["sender", "server receiver"]);
        }
    }

    fn finish(mut self, flist_time: f64, start: Instant) -> i32 {
        self.report.flush_items();
        self.report_matches();
        self.estimate_pipe_traffic();
        if !(self.opts.deleting() || self.opts.force) {
            // Stock's sender hears of deletions (those of `--delete-missing-args`) only when
            // the receiver deletes or forces.
            self.stats.deleted = Default::default();
        }
        if self.opts.info_stats() >= 3 {
            // (The sender's and the receiver's went out with the closing numbers.)
            self.report.heap_stats(&["server generator"]);
        }
        if self.opts.info_stats() >= 2 && !self.opts.quiet {
            self.report.stats(&self.stats, flist_time, 0.0);
        }
        let summarized = self.opts.info_stats() >= 1 && !self.opts.quiet;
        if summarized {
            self.report.summary(
                &self.stats,
                start.elapsed().as_secs_f64(),
                self.opts.dry_run,
            );
        }
        self.report.flush();
        if self.skipped_deletions > 0 {
            self.report.error(&format!(
                "Deletions stopped due to --max-delete limit ({} skipped)",
                self.skipped_deletions
            ));
            self.note(exit::DEL_LIMIT);
        }
        self.report
            .log_exit(&self.stats, self.exit_code, summarized);
        if self.exit_code != exit::OK {
            let role = "sender";
            let word = if self.exit_code == exit::VANISHED {
                "warning"
            } else {
                "error"
            };
            self.report.error(&format!(
                "rsync {word}: {} (code {}) at main.c(1394) [{role}={}]",
                crate::report::exit_message(self.exit_code),
                self.exit_code,
                crate::RSYNC_VERSION
            ));
        }
        self.exit_code
    }
}

/// Modification time equality under `--modify-window`: whole seconds by default, nanoseconds
/// too when the window is negative.
pub fn same_mtime(window: i64, a: (i64, u32), b: (i64, u32)) -> bool {
    if window < 0 {
        return a == b;
    }
    (a.0 - b.0).abs() <= window
}

pub(crate) fn md_mtime(md: &Metadata) -> (i64, u32) {
    (md.mtime(), md.mtime_nsec() as u32)
}

/// `--mkpath`: the part of DEST whose missing directories are made, as rsync's make_path
/// is called: all of it when several items go into it and it has no trailing slash, else
/// up to its last slash (nothing for a bare name receiving one item).
pub fn mkpath_target(dest: &[u8], many: bool) -> Option<&[u8]> {
    let Some(last_slash) = dest.iter().rposition(|&c| c == b'/') else {
        return many.then_some(dest);
    };
    let trailing = last_slash + 1 == dest.len();
    Some(if many && !trailing {
        dest
    } else {
        &dest[..last_slash]
    })
}

/// Creates the missing directories of `path` (none with `dry_run`, but they are counted);
/// returns how many, or the directory that could not be made and why.
pub fn make_path(path: &[u8], dry_run: bool) -> Result<usize, (PathBuf, io::Error)> {
    let mut count = 0;
    let mut at = Vec::new();
    for (k, comp) in path.split(|&c| c == b'/').enumerate() {
        if k > 0 {
            at.push(b'/');
        }
        at.extend_from_slice(comp);
        if comp.is_empty() || comp == b"." || comp == b".." {
            continue;
        }
        let p = Path::new(OsStr::from_bytes(&at));
        if std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())
            || std::fs::metadata(p).is_ok_and(|m| m.is_dir())
        {
            continue;
        }
        if !dry_run {
            std::fs::create_dir(p).map_err(|e| (p.to_path_buf(), e))?;
        }
        count += 1;
    }
    Ok(count)
}

/// The `-v` line after `--mkpath` made directories.
pub fn mkpath_notice(count: usize, path: &[u8]) -> String {
    let word = if count == 1 {
        "directory"
    } else {
        "directories"
    };
    format!(
        "created {count} {word} for {}",
        crate::report::lossless_text(path)
    )
}

/// Stock's line for a name left out of the list because it reaches `MAXPATHLEN`.
pub fn too_long_text(dir: &[u8], name: &[u8], over: usize) -> String {
    format!(
        "filename overflows max-path len by {over}: {}/{}",
        crate::report::lossless_text(dir),
        crate::report::lossless_text(name)
    )
}

/// Stock's receiver looks at `--backup-dir` and `--temp-dir` before anything is
/// transferred: one that is there but not a directory, a temp dir that is not there, or
/// one that cannot be looked at ends the run. The message, exit code and stock's source
/// location when so. `stat` looks a directory up as the receiver sees it (a relative one
/// from the destination directory), `shown` names it.
pub fn unusable_option_dir(
    backup_dir: Option<&Path>,
    temp_dir: Option<&Path>,
    stat: impl Fn(&Path) -> std::io::Result<std::fs::Metadata>,
    shown: impl Fn(&Path) -> String,
) -> Option<(String, i32, &'static str)> {
    let check = |what: &str, dir: &Path, temp: bool| {
        // (Stock looks at a backup dir without its trailing slash.)
        let mut bytes = dir.as_os_str().as_bytes();
        while !temp && bytes.len() > 1 && bytes.ends_with(b"/") {
            bytes = &bytes[..bytes.len() - 1];
        }
        let dir = Path::new(std::ffi::OsStr::from_bytes(bytes));
        let shown = shown(dir);
        let at =
            |backup: &'static str, temp_dir: &'static str| if temp { temp_dir } else { backup };
        match stat(dir) {
            Ok(m) if !m.is_dir() => Some((
                format!("The {what} is not a directory: {shown}"),
                exit::SYNTAX,
                at("main.c(1032)", "main.c(1052)"),
            )),
            Ok(_) => None,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => temp.then(|| {
                (
                    format!("The {what} does not exist: {shown}"),
                    exit::SYNTAX,
                    "main.c(1056)",
                )
            }),
            Err(e) => {
                let text = os_error(&e);
                let text = text.rsplit_once(" (").map_or(&text[..], |(t, _)| t);
                let what = if temp { "temp-dir " } else { "" };
                Some((
                    format!("Failed to stat {what}{shown}: {text}"),
                    exit::FILE_IO,
                    at("main.c(1036)", "main.c(1059)"),
                ))
            }
        }
    };
    if let Some(found) = backup_dir.and_then(|d| check("backup-dir", d, false)) {
        return Some(found);
    }
    check("temp-dir", temp_dir?, true)
}
