//! What the generator does for one file-list entry: create directories, symlinks and special
//! files, decide whether a regular file needs a transfer (and with which basis), and work out
//! the item line rsync prints for it.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use rtsync_tree::{FileEntry, FileKind};

use super::{
    block_sums, delete_extraneous, find_extraneous, is_current, say, Ctx, Deferred, GenResult,
};
use crate::error::Result;
use crate::local;
use crate::log::{itemize, itemize_as, line, Line, Preserve};
use crate::mux::MsgTag;
use crate::sums::SumHead;
use rtsync_tree::fake::Seen;

/// The generator's decision for an entry.
pub(super) enum Step {
    /// Handled locally; these lines describe it.
    Done(Vec<Line>),
    /// A directory whose attributes are fixed after its contents are in place (the entry
    /// with the permissions it ends up with).
    FixDir(Vec<Line>, FileEntry),
    /// Ask the sender for the file.
    Request {
        head: SumHead,
        sums: Vec<u8>,
        basis: Option<PathBuf>,
        existing_mode: Option<u32>,
        item: Option<Line>,
        /// `--append`: only the data past the existing file's length is asked for.
        append: bool,
        /// Lines printed before the file's own (what was deleted to make way for it).
        before: Vec<Line>,
        /// Holds open the directory a basis-dir `basis` is named through.
        pin: Option<super::alt::Pin>,
    },
}

/// The attributes item lines report.
pub(super) fn preserve(o: &super::PullOptions) -> Preserve {
    Preserve {
        times: o.attrs.times,
        modify_window: o.attrs.modify_window,
        perms: o.attrs.perms,
        owner: o.attrs.owner && o.attrs.am_root,
        group: o.attrs.group,
        atimes: o.attrs.atimes,
    }
}

pub(super) fn generate_entry(
    ctx: &Ctx<'_>,
    ndx: usize,
    e: &FileEntry,
    names: &HashSet<&[u8]>,
    res: &mut GenResult,
    missing: bool,
    content: bool,
) -> Result<Step> {
    let o = ctx.opts;
    if o.delete_missing && e.is_missing() {
        if o.list_only {
            return Ok(Step::Done(vec![Line::Info(
                rtsync_engine::report::missing_list_line(e, o.attrs.atimes),
            )]));
        }
        // Its parent not in the list (`-R`, the parent missing on the sender too): stock
        // complains (once for a run of entries in that directory) and deletes it anyway.
        if let Some(slash) = e.name.iter().rposition(|&c| c == b'/') {
            let parent = &e.name[..slash];
            let prev_parent = ndx
                .checked_sub(1)
                .and_then(|p| ctx.list.entries.get(p))
                .map(|p| dir_of(&p.name));
            if !ctx.inc && !names.contains(parent) && prev_parent != Some(parent) {
                eprintln!(
                    "WARNING: parent dir is absent in the file list: {}",
                    rtsync_engine::report::lossless_text(parent)
                );
            }
        }
        return Ok(Step::Done(super::delete_missing(ctx, e, res)));
    }
    if o.list_only {
        return Ok(Step::Done(vec![Line::Info(crate::log::list_line(
            e,
            o.links,
            o.attrs.atimes,
        ))]));
    }
    let path = if e.is_dir() {
        ctx.dest.dir_path_of(&e.name)
    } else {
        ctx.dest.path_of(&e.name)
    };
    // `-n` below a directory that does not exist yet: nothing there exists either.
    let mut meta = if missing {
        None
    } else {
        fs::symlink_metadata(&path).ok()
    };
    let mut lines = Vec::new();
    // --existing / --ignore-existing apply to every kind (a directory only skips when it is
    // missing, or exists as something else with --ignore-existing).
    let below_non_dir = std::mem::take(&mut res.below_non_dir);
    if o.existing && meta.is_none() && !e.is_dir() && !below_non_dir {
        return Ok(Step::Done(lines));
    }
    if o.ignore_existing && meta.as_ref().is_some_and(|m| !(e.is_dir() && m.is_dir())) {
        let a = &o.attrs;
        if e.is_dir() && a.times && !a.omit_dir_times && !o.dry_run {
            res.retouch.push((path.clone(), e.mtime, e.mtime_nsec));
        }
        return Ok(Step::Done(lines));
    }
    if !generated(o, e.kind) {
        // A kind not preserved: skipped before anything in its way is touched.
        lines.push(Line::Info(format!(
            "skipping non-regular file \"{}\"",
            rtsync_engine::report::lossless_text(&e.name)
        )));
        return Ok(Step::Done(lines));
    }
    let size_skip = (e.kind == FileKind::Regular)
        .then(|| rtsync_engine::report::size_skip((o.min_size, o.max_size), &e.name, e.size))
        .flatten();
    if let Some(line) = size_skip {
        // Outside the sizes asked for: skipped before anything in its way is touched.
        if o.info_skip {
            lines.push(Line::Info(line));
        }
        return Ok(Step::Done(lines));
    }
    // (--existing asks whether something was there before any making way.)
    let was_absent = meta.is_none();
    if !e.is_dir() && meta.as_ref().is_some_and(|m| m.is_dir()) {
        // A directory where a non-directory goes: made way for as stock's generator does
        // (its contents only with --delete or --force), or the item is skipped.
        let (n, clear) = super::make_way(ctx, e, &path, &mut lines);
        res.deleted += n;
        if !clear {
            res.errors += 1;
            return Ok(Step::Done(lines));
        }
        // What takes its place is new (under `-n` too, as stock's generator sees it).
        meta = None;
    }
    // What is there, as this receiver sees it (`--fake-super`: with its `%stat`).
    let seen = meta.as_ref().map(|m| seen_at(o, &path, m));
    let here = meta.as_ref().zip(seen);
    let p = preserve(o);
    match e.kind {
        FileKind::Directory => {
            let existed =
                meta.as_ref().is_some_and(|m| m.is_dir()) && !(o.dest_created && e.name == b".");
            if o.existing && meta.is_none() && !below_non_dir {
                return Ok(Step::Done(lines));
            }
            let alt = if existed {
                None
            } else {
                super::alt::dir(ctx, e)
            };
            let mut it = if existed {
                itemize_as(e, here, b'.', p)
            } else {
                itemize(e, alt.as_ref(), b'c', p)
            };
            if existed {
                note_acl(ctx, &path, e, meta.as_ref(), &mut it, false);
            }
            if o.attrs.omit_dir_times {
                // (`-O`, or implied by `--backup` without a backup dir: a directory's time
                // is neither kept nor reported.)
                it.time = None;
            }
            let mut fixed = e.clone();
            if let (false, Some(b), Some(m)) = (o.dry_run, &o.backup, &meta) {
                // What the directory replaces is kept, as stock's delete_item does for a
                // non-directory when backing up.
                if !m.is_dir() {
                    match b.move_aside(ctx.dest, &e.name, &path) {
                        Ok(true) => ctx.backed_up(None, &e.name),
                        Ok(false) => {}
                        Err(err) => {
                            let what = format!("backup of {} failed", ctx.naming.name(&e.name));
                            ctx.gen_error(say::syserr("generator", &what, &err));
                            res.errors += 1;
                            return Ok(Step::Done(lines));
                        }
                    }
                }
            }
            if !o.dry_run {
                if let Err(err) = local::ensure_dir(&path) {
                    let what = format!("recv_generator: mkdir {} failed", ctx.naming.name(&e.name));
                    ctx.gen_error(say::syserr("generator", &what, &err));
                    ctx.gen_say(
                        MsgTag::Error,
                        "*** Skipping any contents from this failed directory ***\n".into(),
                    );
                    res.errors += 1;
                    res.failed_dir = Some(e.name.clone());
                    // Itemized all the same, as stock's generator does.
                    lines.push(line(e, it));
                    return Ok(Step::Done(lines));
                }
                let kept = seen.filter(|_| existed).map(|s| s.mode);
                let perms = say::dest_perms_in(
                    e,
                    &o.attrs,
                    kept,
                    path.parent().unwrap_or(std::path::Path::new(".")),
                );
                fixed.mode = (e.mode & libc::S_IFMT) | perms;
                res.errors += dir_attrs(ctx, &path, &fixed);
            }
            if o.delete && existed && content {
                if o.delete_after {
                    // With incremental recursion the list is gone by the end: what to
                    // delete is found now.
                    res.deferred_deletes.push(if ctx.inc {
                        let found = find_extraneous(ctx, e, &path, names);
                        lines.extend(super::trace_lines(ctx));
                        Deferred::Found(found)
                    } else {
                        Deferred::Dir(e.clone())
                    });
                } else if !o.delete_before {
                    let (n, dels) = delete_extraneous(ctx, e, &path, names);
                    res.deleted += n;
                    lines.extend(dels);
                }
            }
            // Made like its twin in a basis directory: no significant change for stock's
            // generator.
            lines.push(if alt.is_some() {
                super::alt::quiet_unless_changed(e, it)
            } else {
                line(e, it)
            });
            Ok(if o.dry_run {
                Step::Done(lines)
            } else {
                Step::FixDir(lines, fixed)
            })
        }
        // (Only with -l: see `generated`.)
        FileKind::Symlink => {
            let target = e.link_target.as_deref().unwrap_or_default();
            if o.safe_links && rtsync_tree::scan::unsafe_symlink(target, &e.name) {
                if o.verbose > 0 {
                    lines.push(Line::Info(format!(
                        "ignoring unsafe symlink \"{}\" -> \"{}\"",
                        rtsync_engine::report::lossless_text(&e.name),
                        rtsync_engine::report::lossless_text(target)
                    )));
                }
                return Ok(Step::Done(lines));
            }
            let was_link = seen.is_some_and(|s| s.kind() == Some(FileKind::Symlink));
            let same = was_link
                && if o.attrs.fake_super {
                    // (A real symlink reads as empty here: it is replaced by a stand-in.)
                    rtsync_tree::fake::read_symlink_file(&path)
                        .is_ok_and(|t| t.unwrap_or_default() == target)
                } else {
                    fs::read_link(&path).is_ok_and(|t| {
                        use std::os::unix::ffi::OsStrExt;
                        t.as_os_str().as_bytes() == target
                    })
                };
            if let Some(l) = meta
                .is_none()
                .then(|| super::alt::other(ctx, e, &path))
                .flatten()
            {
                lines.push(l);
                return Ok(Step::Done(lines));
            }
            let twin = meta
                .is_none()
                .then(|| super::alt::copy_twin(ctx, e))
                .flatten();
            let partial = (meta.is_none() && twin.is_none())
                .then(|| super::alt::partial_twin(ctx, e))
                .flatten();
            let mut it = if twin.is_some() {
                itemize(e, twin.as_ref(), b'c', p)
            } else if let Some((md, differs)) = &partial {
                let mut it = itemize(e, Some(md), b'c', p);
                it.checksum = *differs;
                it
            } else if same {
                itemize_as(e, here, b'.', p)
            } else if was_link {
                // Another target: a changed symlink, with its other attributes compared.
                let mut it = itemize_as(e, here, b'c', p);
                it.checksum = true;
                it
            } else {
                itemize(e, None, b'c', p)
            };
            if o.attrs.omit_link_times {
                // Its time is not kept: reported as set when the link is made anew over an
                // old one (stock's itemize), `t` since -t is on.
                it.time = (!same && was_link).then_some(b't');
            }
            if !same && !keep_replaced(ctx, e, &path, meta.as_ref()) {
                res.errors += 1;
                return Ok(Step::Done(lines));
            }
            if !o.dry_run {
                let made = if o.attrs.fake_super {
                    local::ensure_fake_symlink(&path, target)
                } else {
                    local::ensure_symlink(&path, target)
                };
                match made {
                    Ok(_) => res.errors += item_attrs(ctx, &path, e, false),
                    Err(f) => {
                        let what = create_failed(ctx, &e.name, &f, |n| {
                            format!(
                                "symlink {n} -> \"{}\" failed",
                                rtsync_engine::report::lossless_text(target)
                            )
                        });
                        ctx.gen_error(say::syserr("generator", &what, &f.err));
                        res.errors += 1;
                        return Ok(Step::Done(lines));
                    }
                }
            }
            lines.push(match twin {
                Some(_) => super::alt::quiet_unless_changed(e, it),
                None => line(e, it),
            });
            Ok(Step::Done(lines))
        }
        FileKind::Regular => {
            // Selection options (rsync's generator skips these silently).
            // (With --fake-super a regular file may stand for something else.)
            let regular = seen.is_some_and(|s| s.kind() == Some(FileKind::Regular));
            let exists = regular && meta.as_ref().is_some_and(|m| m.file_type().is_file());
            if (o.existing && was_absent)
                || (o.ignore_existing && meta.is_some())
                || o.min_size.is_some_and(|n| e.size < n)
                || o.max_size.is_some_and(|n| e.size > n)
            {
                return Ok(Step::Done(lines));
            }
            // (Stock's test: the sender's time less than --modify-window past ours.)
            if o.update
                && exists
                && meta
                    .as_ref()
                    .is_some_and(|m| e.mtime - m.mtime() < o.attrs.modify_window)
            {
                if o.info_skip {
                    // (Escaped where the line is printed: a client's output, or the
                    // client a server sends it to.)
                    lines.push(Line::Info(format!(
                        "{} is newer",
                        rtsync_engine::report::lossless_text(&e.name)
                    )));
                }
                return Ok(Step::Done(lines));
            }
            // Before the destination's own quick check, as stock's generator: a file found
            // exactly in a --link-dest/--compare-dest directory replaces (or removes) even
            // an up-to-date destination file.
            let mut alt_basis = None;
            if o.alt_dest.is_some() && meta.as_ref().is_none_or(|m| m.file_type().is_file()) {
                match super::alt::regular(ctx, e, &path, meta.as_ref()) {
                    super::alt::FileOutcome::Done(line) => {
                        lines.extend(line);
                        return Ok(Step::Done(lines));
                    }
                    super::alt::FileOutcome::Basis(m) => alt_basis = Some(m),
                    super::alt::FileOutcome::None => {}
                }
            }
            if let Some(m) = meta.as_ref().filter(|_| regular) {
                if is_current(ctx, e, m, &path) {
                    let mut it = itemize_as(e, here, b'.', p);
                    note_acl(ctx, &path, e, Some(m), &mut it, true);
                    if !o.dry_run {
                        if let Some(pd) = o.partial_dir.as_deref() {
                            // A partial file (or a staged `--delay-updates` copy) of a file
                            // already current goes, with its directory once empty.
                            super::keep::drop_partial(o, &path, pd, &e.name);
                        }
                        // (`-c`: its time set to the nanosecond, as stock's generator
                        // does; at protocol 30 the list has none, so they become 0.)
                        res.errors += item_attrs(ctx, &path, e, o.checksum);
                    }
                    lines.push(line(e, it));
                    return Ok(Step::Done(lines));
                }
                if o.append > 0 && m.file_type().is_file() && m.len() >= e.size {
                    // --append never touches a file already as long as the sender's.
                    return Ok(Step::Done(lines));
                }
            }
            // (`--write-devices`: a device in the way is the file written into.)
            let existing = meta
                .as_ref()
                .filter(|m| {
                    use std::os::unix::fs::FileTypeExt;
                    let ft = m.file_type();
                    (ft.is_file() && regular)
                        || (o.write_devices && (ft.is_block_device() || ft.is_char_device()))
                })
                .cloned();
            let mut it = match here.filter(|(m, _)| m.file_type().is_file() && regular) {
                Some(h) => itemize_as(e, Some(h), b'>', p),
                None => itemize(
                    e,
                    existing.as_ref().or(alt_basis.as_ref().map(|m| &m.md)),
                    b'>',
                    p,
                ),
            };
            let existing_mode = seen.filter(|_| existing.is_some()).map(|s| s.mode);
            // A symlink, device or special in the way: backed up first (`--backup`), as
            // stock's generator deletes it with a backup before asking for the file.
            if existing.is_none()
                && meta.as_ref().is_some_and(|m| !m.is_dir())
                && !keep_replaced(ctx, e, &path, meta.as_ref())
            {
                res.errors += 1;
                return Ok(Step::Done(lines));
            }
            if o.checksum && existing.is_some() {
                it.checksum = true;
            }
            note_acl(ctx, &path, e, existing.as_ref(), &mut it, false);
            if o.dry_run && !o.batch_only {
                // `-n`: still requested (the sender logs and echoes it), without sums.
                return Ok(Step::Request {
                    head: SumHead::default(),
                    sums: Vec::new(),
                    basis: None,
                    existing_mode,
                    item: Some(line(e, it)),
                    append: false,
                    before: std::mem::take(&mut lines),
                    pin: None,
                });
            }
            // An earlier interrupted transfer kept in the partial dir is the better basis.
            let partial = match o.partial_dir.as_deref() {
                Some(pd) => super::keep::confined_partial(o, &path, pd, &e.name)?,
                None => None,
            }
            .and_then(|p| Some((fs::symlink_metadata(&p).ok()?, p)))
            .filter(|(m, _)| m.file_type().is_file());
            let mut pin = None;
            let basis_file = match (&partial, &existing) {
                (Some((m, p)), _) => Some((m.len(), p.clone())),
                (None, Some(m)) => Some((m.len(), path.clone())),
                (None, None) => alt_basis.map(|m| {
                    pin = m.pin;
                    (m.md.len(), m.path)
                }),
            };
            let append_len = existing
                .as_ref()
                .filter(|_| o.append > 0)
                .map_or(0, |m| m.len());
            if append_len > 0 {
                // The header alone tells the sender where our data ends.
                if let Ok(head) = crate::blocksum::head_only(append_len, ctx.neg, o.block_size) {
                    return Ok(Step::Request {
                        head,
                        sums: Vec::new(),
                        basis: Some(path.clone()),
                        existing_mode,
                        item: Some(line(e, it)),
                        append: true,
                        before: std::mem::take(&mut lines),
                        pin: None,
                    });
                }
            }
            let (head, sums, basis) = match basis_file {
                // Replaying a batch: its deltas are against this basis; no sums are made.
                Some((_, p)) if o.read_batch => (SumHead::default(), Vec::new(), Some(p)),
                Some((len, p)) if !o.whole_file && len > 0 => match block_sums(ctx, &p, len) {
                    Ok((h, s)) => (h, s, Some(p)),
                    Err(_) => (SumHead::default(), Vec::new(), None),
                },
                _ => (SumHead::default(), Vec::new(), None),
            };
            Ok(Step::Request {
                head,
                sums,
                basis,
                existing_mode,
                item: Some(line(e, it)),
                append: false,
                before: std::mem::take(&mut lines),
                pin,
            })
        }
        FileKind::BlockDevice | FileKind::CharDevice | FileKind::Fifo | FileKind::Socket => {
            if let Some(l) = meta
                .is_none()
                .then(|| super::alt::other(ctx, e, &path))
                .flatten()
            {
                lines.push(l);
                return Ok(Step::Done(lines));
            }
            let twin = meta
                .is_none()
                .then(|| super::alt::copy_twin(ctx, e))
                .flatten();
            let same = seen.is_some_and(|s| {
                s.mode & libc::S_IFMT == e.mode & libc::S_IFMT && s.rdev == e.rdev
            });
            let same_type = seen.is_some_and(|s| s.mode & libc::S_IFMT == e.mode & libc::S_IFMT);
            let partial = (meta.is_none() && twin.is_none())
                .then(|| super::alt::partial_twin(ctx, e))
                .flatten();
            let mut it = if twin.is_some() {
                itemize(e, twin.as_ref(), b'c', p)
            } else if let Some((md, differs)) = &partial {
                let mut it = itemize(e, Some(md), b'c', p);
                it.checksum = *differs;
                it
            } else if same {
                itemize_as(e, here, b'.', p)
            } else if same_type {
                // Another device number: a changed item, its other attributes compared.
                let mut it = itemize_as(e, here, b'c', p);
                it.checksum = true;
                it
            } else {
                itemize(e, None, b'c', p)
            };
            if same {
                note_acl(ctx, &path, e, meta.as_ref(), &mut it, false);
            } else if !keep_replaced(ctx, e, &path, meta.as_ref()) {
                res.errors += 1;
                return Ok(Step::Done(lines));
            }
            if !o.dry_run {
                let made = if o.attrs.fake_super {
                    local::ensure_fake_special(&path, e)
                } else {
                    local::ensure_special(&path, e)
                };
                match made {
                    Ok(_) => res.errors += item_attrs(ctx, &path, e, false),
                    Err(f) => {
                        let what = create_failed(ctx, &e.name, &f, |n| format!("mknod {n} failed"));
                        ctx.gen_error(say::syserr("generator", &what, &f.err));
                        res.errors += 1;
                        return Ok(Step::Done(lines));
                    }
                }
            }
            lines.push(match twin {
                Some(_) => super::alt::quiet_unless_changed(e, it),
                None => line(e, it),
            });
            Ok(Step::Done(lines))
        }
    }
}

/// Whether the generator makes items of `kind` (stock's preserve_links, preserve_devices as
/// root, preserve_specials, less --drop-D); the others are `skipping non-regular file`.
fn generated(o: &super::PullOptions, kind: FileKind) -> bool {
    match kind {
        FileKind::Symlink => o.links,
        FileKind::BlockDevice | FileKind::CharDevice => {
            o.devices && o.attrs.am_root && !o.drop_devices
        }
        FileKind::Fifo | FileKind::Socket => o.specials && !o.drop_devices,
        FileKind::Regular | FileKind::Directory => true,
    }
}

/// A directory's attributes at its turn, as stock's generator sets them (the failure
/// reported); then, for a user other than root, made writable and searchable for us while
/// its contents are written (its own permissions come back at the end). Returns the
/// failures counted.
fn dir_attrs(ctx: &Ctx<'_>, path: &std::path::Path, fixed: &FileEntry) -> u64 {
    let o = &ctx.opts.attrs;
    let Ok(md) = fs::symlink_metadata(path) else {
        return 0;
    };
    let shown = ctx.naming.name(&fixed.name);
    let perms = fixed.perms();
    let mut errors = 0;
    if let Err(text) = say::set_attrs(path, &shown, "generator", fixed, o, &md, perms, false) {
        ctx.gen_error(text);
        errors += 1;
    }
    if !o.am_root && perms & 0o700 != 0o700 {
        if let Err(err) = rtsync_tree::fsops::set_perms(path, perms | 0o700) {
            let what = format!("failed to modify permissions on {shown}");
            ctx.gen_error(say::syserr("generator", &what, &err));
            errors += 1;
        }
    }
    errors
}

/// The attributes of an item the generator handled (a symlink, a special file, a file
/// already current), set as stock's set_file_attrs (`accurate`: its time compared to the
/// nanosecond); returns the failures counted.
fn item_attrs(ctx: &Ctx<'_>, path: &std::path::Path, e: &FileEntry, accurate: bool) -> u64 {
    let Ok(md) = fs::symlink_metadata(path) else {
        return 0;
    };
    let o = &ctx.opts.attrs;
    let mode = seen_at(ctx.opts, path, &md).mode;
    let perms = say::dest_perms(e, o, Some(mode).filter(|_| !o.perms));
    let shown = ctx.naming.name(&e.name);
    match say::set_attrs(path, &shown, "generator", e, o, &md, perms, accurate) {
        Ok(()) => 0,
        Err(text) => {
            ctx.gen_error(text);
            1
        }
    }
}

/// `-A`: the `a` column for an item that exists: its ACLs differ from the received ones.
/// `settle`: a file already current, whose attributes stock sets before itemizing it, so
/// that an access ACL it rewrites has already given it the new permission bits (`p` is
/// judged against them).
fn note_acl(
    ctx: &Ctx<'_>,
    path: &std::path::Path,
    e: &FileEntry,
    meta: Option<&fs::Metadata>,
    it: &mut rtsync_engine::itemize::Itemize,
    settle: bool,
) {
    let o = ctx.opts;
    let Some(acl) = e
        .acl
        .as_deref()
        .filter(|_| o.attrs.acls && e.kind != FileKind::Symlink)
    else {
        return;
    };
    let Some(m) = meta.filter(|_| !it.is_new) else {
        return;
    };
    let have = if o.attrs.fake_super {
        rtsync_tree::fake::read_acl(path, seen_at(o, path, m).mode)
    } else {
        rtsync_tree::acl::read_here(path, m.mode())
            .unwrap_or_else(|_| rtsync_tree::acl::EntryAcl::plain(m.mode()))
    };
    if !rtsync_tree::acl::differs(&have, acl, e.mode) {
        return;
    }
    it.acl = true;
    if settle && !o.dry_run && o.attrs.perms {
        if let Some(after) = rtsync_tree::acl::mode_after_access(&have, acl, e.mode, m.mode()) {
            it.perms = after & 0o7777 != e.mode & 0o7777;
        }
    }
}

/// An item here as this receiver sees it: with `--fake-super`, its `%stat` folded in.
pub(super) fn seen_at(o: &super::PullOptions, path: &std::path::Path, m: &fs::Metadata) -> Seen {
    if o.attrs.fake_super {
        Seen::of(path, m)
    } else {
        Seen::real(m)
    }
}

/// The directory part of a list name (before its last `/`; empty for none).
/// Stock's message for a node it could not make at `name`: `what` of the name it failed on
/// (the temporary one when it was replacing something, see [`local::ensure_symlink`]), or the
/// rename of that temporary over `name`.
pub(super) fn create_failed(
    ctx: &Ctx<'_>,
    name: &[u8],
    f: &local::CreateFailed,
    what: impl Fn(&str) -> String,
) -> String {
    use std::os::unix::ffi::OsStrExt;
    let own = name.rsplit(|&b| b == b'/').next().unwrap_or(name);
    let at = f.at.file_name().map(|n| n.as_bytes()).unwrap_or(own);
    let shown = if at == own {
        ctx.naming.name(name)
    } else {
        let mut tmp = dir_of(name).to_vec();
        if !tmp.is_empty() {
            tmp.push(b'/');
        }
        tmp.extend_from_slice(at);
        ctx.naming.name(&tmp)
    };
    if f.renaming {
        format!("rename {shown} -> \"{}\" failed", ctx.naming.name(name))
    } else {
        what(&shown)
    }
}

fn dir_of(name: &[u8]) -> &[u8] {
    name.iter()
        .rposition(|&c| c == b'/')
        .map_or(&b""[..], |i| &name[..i])
}

/// `--backup`: what a new symlink, device or hard link replaces (not a directory) is kept,
/// as stock's atomic_create does through make_backup. False when the backup failed (the
/// error is reported; the entry is left alone).
pub(super) fn keep_replaced(
    ctx: &Ctx<'_>,
    e: &FileEntry,
    path: &std::path::Path,
    meta: Option<&fs::Metadata>,
) -> bool {
    let (false, Some(b), Some(m)) = (ctx.opts.dry_run, &ctx.opts.backup, meta) else {
        return true;
    };
    if m.is_dir() {
        return true;
    }
    match b.move_aside(ctx.dest, &e.name, path) {
        Ok(moved) => {
            if moved {
                ctx.backed_up(None, &e.name);
            }
            true
        }
        Err(err) => {
            let what = format!("backup of {} failed", ctx.naming.name(&e.name));
            ctx.gen_error(say::syserr("generator", &what, &err));
            false
        }
    }
}
