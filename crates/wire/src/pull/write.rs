//! The receiver's side of one file: where its data goes (a temp file, the file itself with
//! `--inplace`, a `--temp-dir`), how tokens become data, and what is kept when the transfer
//! fails (`--partial`) or replaces something (`--backup`).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::mpsc;

use rtsync_tree::fsops::TempFile;
use rtsync_tree::FileEntry;

use super::keep::{self, Output};
use super::{say, Ctx, Event, PullStats, Request};
use crate::checksum::FileHasher;
use crate::error::{Error, Result};
use crate::local;
use crate::mux::{MsgTag, MuxReader};
use crate::varint::ReadWire;

/// What became of a file received in full.
pub(super) enum Received {
    /// In place.
    Placed,
    /// `--delay-updates`: waiting at this path in its partial dir, to be renamed into place
    /// at the end of the transfer.
    Staged(PathBuf),
    /// The checksum did not match (the data was discarded, or with `--partial` kept).
    BadSum,
    /// Verified, but thrown away (`--delay-updates` could not make its partial dir), for
    /// this reason (an error message).
    Dropped(String),
    /// Not in place: something here failed (reported already, the data read and dropped);
    /// `logged` when stock still logs the item (the data was written, only the rename
    /// failed).
    Failed { logged: bool },
}

/// Reads one file's tokens into a temp file (or the file itself with `--inplace`); puts it
/// in place (or with `--delay-updates` in its partial dir) if the checksum matches. An
/// interrupted transfer leaves a `--partial` file, and so does one that fails verification.
/// `retry`: this is the second try of a file that failed verification.
pub(super) fn receive_file<R: Read>(
    ctx: &Ctx<'_>,
    r: &mut MuxReader<R>,
    req: &Request,
    decoder: &mut rtsync_delta::TokenDecoder,
    stats: &mut PullStats,
    ev_tx: &mpsc::Sender<Event>,
    retry: bool,
) -> Result<Received> {
    let fail = |text: String| {
        super::tell(ctx, ev_tx, MsgTag::ErrorXfer, text);
    };
    let o = ctx.opts;
    let e = &req.entry;
    let final_path = ctx.dest.path_of(&e.name);
    ctx.dest.check_parents(&e.name)?;
    let mut basis_path = req.basis.clone();
    if o.inplace {
        if let (Some(b), Some(_)) = (&o.backup, req.existing_mode) {
            // The original is about to be overwritten: back it up first and read matched
            // blocks from the copy.
            let copy = b
                .copy_aside(ctx.dest, &e.name, &final_path)
                .map_err(|err| {
                    Error::file(
                        format!("backup of \"{}\" failed", final_path.display()),
                        err,
                    )
                })?;
            ctx.backed_up(Some(ev_tx), &e.name);
            if basis_path.is_some() {
                basis_path = Some(copy);
            }
        }
    }
    // A basis that cannot be opened is no basis (as stock's receiver takes it).
    let mut basis = basis_path
        .as_deref()
        .and_then(|p| crate::blocksum::open_nofollow(p).ok());
    // Matched blocks can be left where they are only when the basis is the file written.
    let updating_basis = o.inplace && basis_path.as_deref() == Some(final_path.as_path());
    let mut temp = None;
    // Kept until the temp file is in place or gone.
    let mut _armed = None;
    let mut out = if o.inplace {
        use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
        // Something other than a file in the way goes first, as stock's generator deletes
        // it (a FIFO would block the open, a device take the data), unless it is a device
        // to write with `--write-devices`.
        if let Ok(m) = std::fs::symlink_metadata(&final_path) {
            let ft = m.file_type();
            let device = ft.is_block_device() || ft.is_char_device();
            let keep = ft.is_file() || ft.is_dir() || (device && o.write_devices);
            if !keep {
                let _ = std::fs::remove_file(&final_path);
            }
        }
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&final_path);
        let f = match opened {
            Ok(f) => f,
            Err(err) => {
                let what = format!("open {} failed", shown_final(ctx, &e.name, &final_path));
                fail(say::syserr("receiver", &what, &err));
                discard_file(ctx, r, req, decoder, stats)?;
                return Ok(Received::Failed { logged: false });
            }
        };
        Output::new(f, o.sparse, true)
    } else {
        let mut t = match create_temp(ctx, &final_path) {
            Ok(t) => t,
            Err((shown, err)) => {
                fail(say::syserr(
                    "receiver",
                    &format!("mkstemp {shown} failed"),
                    &err,
                ));
                discard_file(ctx, r, req, decoder, stats)?;
                return Ok(Received::Failed { logged: false });
            }
        };
        let f = t
            .file()
            .try_clone()
            .map_err(|err| Error::file("dup temp file", err))?;
        _armed = Some(arm_interrupt(o, t.path(), &final_path));
        temp = Some(t);
        Output::new(f, o.sparse, false)
    };
    if o.preallocate {
        // Beyond what an --inplace file already holds. (A filesystem that cannot reserve
        // the space fails the writes themselves, with their own message.)
        let held = if o.inplace { out.len() } else { 0 };
        if e.size > held {
            let _ = out.preallocate(e.size, o.sparse);
        }
    }
    let werr = |err| {
        let shown = shown_final(ctx, &e.name, &final_path);
        Error::InReceiver {
            error: Box::new(Error::file(
                format!("[receiver] write failed on {shown}"),
                err,
            )),
            at: "receiver.c(657)",
        }
    };
    let received = copy_tokens(
        ctx,
        r,
        req,
        decoder,
        stats,
        basis.as_mut(),
        &mut out,
        updating_basis,
        true,
        false,
    )
    .and_then(|digest| {
        out.finish().map_err(werr)?;
        if o.fsync {
            // Stock's receiver gives up on a file it cannot flush (code 11).
            out.sync().map_err(|err| {
                let shown = shown_final(ctx, &e.name, &final_path);
                Error::file(format!("fsync failed on {shown}"), err)
            })?;
        }
        Ok(digest)
    });
    let digest = match received {
        Ok(d) => d,
        Err(err) => {
            if o.partial && out.pos > 0 {
                if let Some(t) = temp.take() {
                    keep_partial(ctx, e, t, &final_path);
                }
            }
            return Err(err);
        }
    };
    let mut theirs = vec![0u8; ctx.neg.checksum.digest_len()];
    r.read_all(&mut theirs)?;
    stats.sender_sum.clone_from(&theirs);
    if digest != theirs {
        if let (Some(t), true) = (temp.take(), o.partial) {
            keep_unverified(ctx, req, t, &final_path, retry);
        }
        return Ok(Received::BadSum);
    }
    let written = temp.as_ref().map_or(final_path.as_path(), |t| t.path());
    if let Ok(md) = std::fs::symlink_metadata(written) {
        // A failure is reported and the file still goes into place, as stock's
        // finish_transfer does.
        let shown = match &temp {
            Some(t) => ctx.naming.path(t.path()),
            None => shown_final(ctx, &e.name, &final_path),
        };
        let perms = say::dest_perms_in(
            e,
            &o.attrs,
            req.existing_mode,
            final_path.parent().unwrap_or(std::path::Path::new(".")),
        );
        if let Err(text) =
            say::set_attrs(written, &shown, "receiver", e, &o.attrs, &md, perms, true)
        {
            fail(text);
            stats.errors += 1;
        }
    }
    if let (Some(rules), Some(want)) = (&o.xattrs, &e.xattrs) {
        // -X: the list as sent; abbreviated values not fetched are the basis's.
        let basis = basis_path
            .clone()
            .or_else(|| req.existing_mode.map(|_| final_path.clone()));
        let shown = match &temp {
            Some(t) => ctx.naming.path(t.path()),
            None => shown_final(ctx, &e.name, &final_path),
        };
        for err in rtsync_tree::xattr::apply_beneath(
            &ctx.dest.root(),
            written,
            want,
            basis.as_deref(),
            rules,
            crate::xattrs::digest,
        ) {
            fail(
                err.render(&shown, |e| {
                    format!(
                        "{} ({})",
                        crate::client::strerror(e),
                        e.raw_os_error().unwrap_or(0)
                    )
                }) + "\n",
            );
            stats.errors += 1;
        }
    }
    let Some(temp) = temp else {
        return Ok(Received::Placed);
    };
    let temp = match o.partial_dir.as_deref().filter(|_| o.delay_updates) {
        Some(pd) => match stage(ctx, e, temp, &final_path, pd) {
            Ok(done) => return Ok(done),
            // A partial dir the module's rules exclude: the file goes straight into place.
            Err(temp) => temp,
        },
        None => temp,
    };
    // (A retry replaces what the first try kept in place: the original is backed up already.)
    let kept_in_place = retry && o.partial && o.partial_dir.is_none();
    if let (Some(b), Some(_), false) = (&o.backup, req.existing_mode, kept_in_place) {
        if b.move_aside(ctx.dest, &e.name, &final_path)
            .map_err(|err| backup_failed(ctx, b, &e.name, &final_path, err))?
        {
            ctx.backed_up(Some(ev_tx), &e.name);
        }
    }
    let temp_shown = ctx.naming.path(temp.path());
    if let Err(err) = temp.persist(&final_path) {
        // (The temp file is gone with it.)
        let what = format!(
            "rename {temp_shown} -> \"{}\"",
            String::from_utf8_lossy(&e.name)
        );
        fail(say::syserr("receiver", &what, &err));
        return Ok(Received::Failed { logged: true });
    }
    if let Some(pd) = o.partial_dir.as_deref() {
        // The partial file this one may have been made from is used up.
        keep::drop_partial(o, &final_path, pd, &e.name);
    }
    Ok(Received::Placed)
}

/// `--delay-updates`: moves the finished temp file into its partial dir (made as stock's
/// receiver does), where it waits for the end of the transfer. The temp file comes back
/// when the module's rules exclude that name (it is then put in place directly).
fn stage(
    ctx: &Ctx<'_>,
    e: &FileEntry,
    temp: TempFile,
    final_path: &std::path::Path,
    pd: &std::path::Path,
) -> std::result::Result<Received, TempFile> {
    let o = ctx.opts;
    if keep::partial_refused(o, pd, &e.name) {
        return Err(temp);
    }
    let staged = keep::make_partial_dir(o, final_path, pd)
        .ok()
        .and_then(|to| temp.persist(&to).ok().map(|()| to));
    match staged {
        Some(to) => Ok(Received::Staged(to)),
        None => {
            // (A temp file not persisted is removed when dropped.)
            let text = format!(
                "Unable to create partial-dir for {} -- discarding completed file.\n",
                String::from_utf8_lossy(&e.name)
            );
            Ok(Received::Dropped(text))
        }
    }
}

/// Reads one file's data (tokens and checksum) without writing it anywhere: a batch entry
/// the destination does not need, or data recorded by `--only-write-batch`.
pub(super) fn discard_file<R: Read>(
    ctx: &Ctx<'_>,
    r: &mut MuxReader<R>,
    req: &Request,
    decoder: &mut rtsync_delta::TokenDecoder,
    stats: &mut PullStats,
) -> Result<()> {
    let mut basis = req
        .basis
        .as_deref()
        .and_then(|p| crate::blocksum::open_nofollow(p).ok());
    let mut out = Output::discard();
    copy_tokens(
        ctx,
        r,
        req,
        decoder,
        stats,
        basis.as_mut(),
        &mut out,
        false,
        false,
        true,
    )?;
    let mut theirs = vec![0u8; ctx.neg.checksum.digest_len()];
    r.read_all(&mut theirs)?;
    Ok(())
}

/// Disarms the interrupt cleanup when dropped.
struct Armed;

impl Drop for Armed {
    fn drop(&mut self) {
        rtsync_tree::fsops::interrupt::signal_cleanup_set(None, None);
    }
}

/// Names the temp file being written to the interrupt handler, with where `--partial` keeps
/// it (the file's own name, or its partial directory).
fn arm_interrupt(
    o: &crate::pull::PullOptions,
    tmp: &std::path::Path,
    final_path: &std::path::Path,
) -> Armed {
    use rtsync_tree::fsops::interrupt::signal_cleanup_set;
    let tmp = tmp.as_os_str().as_bytes();
    match (o.partial, o.partial_dir.as_deref()) {
        (false, _) => signal_cleanup_set(Some(tmp), None),
        (true, Some(pd)) => {
            let dir = final_path
                .parent()
                .unwrap_or(std::path::Path::new("."))
                .join(pd);
            let keep = dir.join(final_path.file_name().unwrap_or_default());
            signal_cleanup_set(
                Some(tmp),
                Some((
                    keep.as_os_str().as_bytes(),
                    Some(dir.as_os_str().as_bytes()),
                )),
            );
        }
        (true, None) => {
            signal_cleanup_set(Some(tmp), Some((final_path.as_os_str().as_bytes(), None)))
        }
    }
    Armed
}

/// Creates the temp file for `final_path`, in `--temp-dir` when one was given. On failure,
/// the name it would have had as stock's message shows it (`DIR/.NAME.XXXXXX`), and why.
fn create_temp(
    ctx: &Ctx<'_>,
    final_path: &std::path::Path,
) -> std::result::Result<TempFile, (String, std::io::Error)> {
    use std::os::unix::ffi::OsStrExt;
    let base = final_path.file_name().map(|b| b.as_bytes().to_vec());
    let base = base.as_deref().unwrap_or(b"file");
    let parent = final_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let template = |dir: &std::path::Path| {
        let mut name = b".".to_vec();
        name.extend_from_slice(base);
        name.extend_from_slice(b".XXXXXX");
        ctx.naming
            .path(&dir.join(std::ffi::OsStr::from_bytes(&name)))
    };
    let dir = match &ctx.opts.temp_dir {
        Some(t) => ctx
            .opts
            .option_dir(t, None)
            .map_err(|err| (template(t), err))?,
        None => parent.to_path_buf(),
    };
    TempFile::create_in(&dir, base).map_err(|err| {
        let shown = match &ctx.opts.temp_dir {
            Some(t) => template(t),
            None => template(parent),
        };
        (shown, err)
    })
}

/// How stock names the destination file of entry `name` in a message.
fn shown_final(ctx: &Ctx<'_>, name: &[u8], final_path: &std::path::Path) -> String {
    match ctx.dest {
        crate::local::Dest::Solo(_) => ctx.naming.path(final_path),
        _ => ctx.naming.name(name),
    }
}

/// `--partial`: an interrupted file is kept under its own name with an mtime of 0 (so it
/// stands out and is never taken as current), or in the partial dir as it is.
fn keep_partial(ctx: &Ctx<'_>, e: &FileEntry, temp: TempFile, final_path: &std::path::Path) {
    let o = ctx.opts;
    let to = match o.partial_dir.as_deref() {
        Some(pd) => match keep::make_partial_dir(o, final_path, pd) {
            Ok(to) => to,
            Err(_) => return,
        },
        None => final_path.to_path_buf(),
    };
    let mut attrs = o.attrs;
    attrs.times = false;
    let _ = local::apply_attrs(temp.path(), e, &attrs, &ctx.ids, None, false);
    if o.partial_dir.is_none() {
        let _ = rtsync_tree::fsops::set_mtime(temp.path(), 0, 0);
    }
    let _ = temp.persist(&to);
}

/// `--partial`: data that failed verification is kept as stock's receiver keeps it — in
/// place of the file (after its backup, on the first try) or in the partial dir — with the
/// file's attributes but not its time. The retry then starts from it.
fn keep_unverified(
    ctx: &Ctx<'_>,
    req: &Request,
    temp: TempFile,
    final_path: &std::path::Path,
    retry: bool,
) {
    let o = ctx.opts;
    let e = &req.entry;
    let to = match o.partial_dir.as_deref() {
        Some(pd) => {
            if keep::partial_refused(o, pd, &e.name) {
                return;
            }
            match keep::make_partial_dir(o, final_path, pd) {
                Ok(to) => to,
                Err(_) => return,
            }
        }
        None => {
            if let (Some(b), Some(_), false) = (&o.backup, req.existing_mode, retry) {
                if b.move_aside(ctx.dest, &e.name, final_path).is_err() {
                    return;
                }
            }
            final_path.to_path_buf()
        }
    };
    let mut attrs = o.attrs;
    attrs.times = false;
    let _ = local::apply_attrs(temp.path(), e, &attrs, &ctx.ids, req.existing_mode, false);
    let _ = temp.persist(&to);
}

/// Reads a file's tokens and writes the data; returns the whole-file digest of what was
/// written.
#[allow(clippy::too_many_arguments)]
fn copy_tokens<R: Read>(
    ctx: &Ctx<'_>,
    r: &mut MuxReader<R>,
    req: &Request,
    decoder: &mut rtsync_delta::TokenDecoder,
    stats: &mut PullStats,
    mut basis: Option<&mut File>,
    out: &mut Output,
    updating_basis: bool,
    progress: bool,
    discarding: bool,
) -> Result<Vec<u8>> {
    let final_path = ctx.dest.path_of(&req.entry.name);
    let werr = |err| {
        let shown = shown_final(ctx, &req.entry.name, &final_path);
        Error::InReceiver {
            error: Box::new(Error::file(
                format!("[receiver] write failed on {shown}"),
                err,
            )),
            at: "receiver.c(657)",
        }
    };
    let mut hasher = FileHasher::new(ctx.neg.checksum);
    let mut block = Vec::new();
    if req.append {
        // --append: the file's first bytes stay; --append-verify sums them, as the sender
        // does, so the checksum covers the whole file.
        let keep = req.head.file_len();
        if ctx.opts.append > 1 {
            if let Some(bf) = basis.as_deref_mut() {
                bf.seek(SeekFrom::Start(0))
                    .map_err(|err| Error::file("seek in basis", err))?;
                let mut prefix = bf.take(keep);
                block.resize(64 * 1024, 0);
                loop {
                    let got = prefix
                        .read(&mut block)
                        .map_err(|err| Error::file("read basis", err))?;
                    if got == 0 {
                        break;
                    }
                    hasher.update(&block[..got]);
                }
            }
        }
        out.skip(keep);
    }
    let size = req.entry.size;
    loop {
        let token = decoder.next(r)?;
        if progress && token.is_some() {
            // `--progress`: where the data stands before each token, as stock's receiver.
            ctx.log.transfer_tick(out.pos, size);
        }
        let token = match token {
            None => break,
            Some(rtsync_delta::Token::Literal(data)) => {
                hasher.update(data);
                out.write(data).map_err(werr)?;
                stats.literal_bytes += data.len() as u64;
                continue;
            }
            Some(rtsync_delta::Token::Block(k)) => k,
        };
        let h = req.head;
        if i64::from(token) >= i64::from(h.count) {
            return Err(Error::Protocol(format!(
                "invalid block index {token} (count {})",
                h.count
            )));
        }
        let Some(bf) = basis.as_deref_mut() else {
            if discarding {
                // Data read only to be dropped: a block needs no basis.
                continue;
            }
            return Err(Error::Protocol(
                "block reference without a basis file".into(),
            ));
        };
        let k = token as i32;
        let len = h.block_len(k) as usize;
        let off = u64::from(token) * h.blength as u64;
        bf.seek(SeekFrom::Start(off))
            .map_err(|err| Error::file("seek in basis", err))?;
        block.clear();
        block.resize(len, 0);
        let mut filled = 0;
        while filled < len {
            let got = bf
                .read(&mut block[filled..])
                .map_err(|err| Error::file("read basis", err))?;
            if got == 0 {
                // A basis that shrank underneath us: zeros; the file checksum catches it.
                break;
            }
            filled += got;
        }
        hasher.update(&block);
        if updating_basis && off == out.pos {
            // --inplace: the block is already where it belongs.
            out.skip(len as u64);
        } else {
            out.write(&block).map_err(werr)?;
        }
        if decoder.needs_block_data() {
            decoder.see_block(&block);
        }
        stats.matched_bytes += len as u64;
    }
    Ok(hasher.finish().as_bytes().to_vec())
}

/// A backup that could not be made ends the transfer, as stock's receiver reports it (its
/// copy fallback's failed step: clearing the backup name, or creating it when its
/// directory is missing), then `keep_backup failed: FILE -> BACKUP` with the backup named
/// as the receiver, working in the destination, sees it.
fn backup_failed(
    ctx: &Ctx<'_>,
    b: &super::BackupOptions,
    name: &[u8],
    path: &std::path::Path,
    err: std::io::Error,
) -> Error {
    let to = b.path_for(ctx.dest, name);
    let root = ctx.dest.root();
    let seen = match to.strip_prefix(&root) {
        Ok(rel) if root != std::path::Path::new(".") && !rel.as_os_str().is_empty() => rel,
        _ => to.as_path(),
    };
    let step = if err.raw_os_error() == Some(libc::ENOENT) {
        "open"
    } else {
        "unlink"
    };
    let strerr = crate::error::os_text(&err);
    // Both lines travel as the one error: a server sends them to the client together.
    Error::InReceiver {
        error: Box::new(Error::Bare {
            message: format!(
                "rsync: [receiver] {step} {}: {strerr}\nrsync: [receiver] keep_backup failed: {} -> \"{}\": {strerr}",
                ctx.naming.path(&to),
                ctx.naming.path(path),
                seen.display()
            ),
            code: crate::error::exit::FILE_IO,
            at: "rsync.c(900)",
        }),
        at: "rsync.c(900)",
    }
}
