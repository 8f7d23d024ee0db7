//! Regular files, symlinks, devices and hard links: deciding and writing.

use super::altdest::AltOther;
use super::{full_path, md_mtime, os_error, same_mtime, LocalTransfer};
use crate::itemize::Itemize;
use crate::report::exit;
use rtsync_tree::fsops::{self, SizedSource, TempFile};
use rtsync_tree::scan::unsafe_symlink;
use rtsync_tree::FileKind;
use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// `--delay-updates`: the per-directory staging directory.
pub(super) const DELAY_DIR: &str = ".~tmp~";

/// A strong whole-file checksum for `--checksum` comparisons.
fn file_checksum(path: &Path) -> io::Result<u128> {
    let mut f = File::open(path)?;
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.digest128())
}

/// Where rsync's sender reports progress while sending a file whole: after each 32 KiB
/// chunk and at the end.
const TICK: u64 = rtsync_delta::CHUNK_SIZE as u64;

/// Copies `src` to `dst`, leaving holes for runs of zeros when `sparse`; `tick` hears the
/// offset reached after each 32 KiB (`--progress`).
fn copy_data(
    src: &mut SizedSource<&mut File>,
    dst: &mut File,
    sparse: bool,
    size: u64,
    tick: Option<&mut dyn FnMut(u64)>,
) -> io::Result<u64> {
    if let Some(tick) = tick {
        return copy_ticking(src, dst, sparse, tick);
    }
    if !sparse {
        // The first piece is read as stock's sender reads it (a file emptied since it was
        // listed shows here); the rest goes in the kernel.
        let mut buf = vec![0u8; 256 * 1024];
        let n = src.read(&mut buf)?;
        dst.write_all(&buf[..n])?;
        return Ok(n as u64 + src.copy_rest(dst)?);
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = src.read(&mut buf)?;
        if n == 0 {
            break;
        }
        for chunk in buf[..n].chunks(4096) {
            if chunk.iter().all(|&b| b == 0) {
                dst.seek(SeekFrom::Current(chunk.len() as i64))?;
            } else {
                dst.write_all(chunk)?;
            }
        }
        total += n as u64;
    }
    dst.set_len(total.max(size.min(total)))?;
    Ok(total)
}

/// Disarms the interrupt handler's temp-file cleanup when dropped.
struct Disarm;

impl Drop for Disarm {
    fn drop(&mut self) {
        fsops::interrupt::signal_cleanup_set(None, None);
    }
}

/// [`copy_data`] a chunk at a time, telling `tick` each chunk's end (and the end of data).
fn copy_ticking(
    src: &mut impl Read,
    dst: &mut File,
    sparse: bool,
    tick: &mut dyn FnMut(u64),
) -> io::Result<u64> {
    let mut buf = vec![0u8; TICK as usize];
    let mut total = 0u64;
    loop {
        let mut n = 0;
        while n < buf.len() {
            let got = src.read(&mut buf[n..])?;
            if got == 0 {
                break;
            }
            n += got;
        }
        if n == 0 {
            break;
        }
        if sparse && buf[..n].iter().all(|&b| b == 0) {
            dst.seek(SeekFrom::Current(n as i64))?;
        } else {
            dst.write_all(&buf[..n])?;
        }
        total += n as u64;
        tick(total);
        if n < buf.len() {
            break;
        }
    }
    if sparse {
        dst.set_len(total)?;
    }
    Ok(total)
}

/// The block checksums of a local delta's basis (`len` bytes read from `basis`).
fn local_signature(
    basis: impl Read,
    len: u64,
    block_size: Option<u32>,
) -> io::Result<rtsync_delta::Signature> {
    use rtsync_delta::{BlockHasher, ChecksumKind, Signature, SumParams};
    let kind = ChecksumKind::Xxh128;
    let mut params = SumParams::new(31, kind.digest_len());
    params.block_size = block_size;
    let basis = io::BufReader::with_capacity(1 << 20, basis);
    Signature::generate(basis, len, &params, &BlockHasher::new(kind, 0))
        .map_err(|e| io::Error::other(e.to_string()))
}

/// Matches `src` against `sig` (`inplace`: only blocks not yet overwritten, as for a basis
/// rebuilt where it is) and hands each token to `apply`; returns the match statistics and
/// what the exchange would have cost on the wire. `hash_hits` counts as stock's sender
/// does (for `--debug=deltasum`'s closing line).
fn local_match(
    sig: &rtsync_delta::Signature,
    src: &mut impl Read,
    (hash_hits, inplace): (bool, bool),
    mut tick: Option<&mut dyn FnMut(u64)>,
    mut apply: impl FnMut(rtsync_delta::Token<'_>) -> rtsync_delta::Result<()>,
) -> io::Result<(rtsync_delta::MatchStats, WireBytes)> {
    use rtsync_delta::{BlockHasher, ChecksumKind, Matcher};
    let mut tokens = 0u64;
    let mut ticks = crate::report::SendTicks::default();
    let stats = Matcher::new(sig, BlockHasher::new(ChecksumKind::Xxh128, 0))
        .inplace(inplace)
        .stock_hash_hits(hash_hits)
        .stream(io::BufReader::with_capacity(1 << 20, src), |token| {
            if let (Some(tick), Some(ofs)) = (tick.as_mut(), ticks.token(&token)) {
                tick(ofs);
            }
            tokens += match token.token() {
                rtsync_delta::Token::Literal(d) => 4 + d.len() as u64,
                rtsync_delta::Token::Block(_) => 4,
            };
            apply(token.token())
        })
        .map_err(|e| io::Error::other(e.to_string()))?;
    if let (Some(tick), Some(ofs)) = (tick.as_mut(), ticks.end()) {
        tick(ofs);
    }
    let head = sig.head();
    let wire = WireBytes {
        written: WireBytes::FILE_OVERHEAD + tokens,
        read: WireBytes::SUM_HEAD + u64::from(head.count) * (4 + u64::from(head.strong_len)),
    };
    Ok((stats, wire))
}

/// Writes `src` into `out` as a delta against `basis` (rsync's algorithm run locally, as with
/// `--no-whole-file`); returns the match statistics and the wire cost (see [`local_match`]).
fn delta_copy(
    src: &mut impl Read,
    basis: &Path,
    out: &mut File,
    block_size: Option<u32>,
    hash_hits: bool,
    tick: Option<&mut dyn FnMut(u64)>,
) -> io::Result<(rtsync_delta::MatchStats, WireBytes)> {
    let basis_file = File::open(basis)?;
    let sig = local_signature(&basis_file, basis_file.metadata()?.len(), block_size)?;
    let kind = rtsync_delta::ChecksumKind::Xxh128;
    let mut patcher = rtsync_delta::Patcher::new(basis_file, *sig.head(), kind);
    let mut writer = io::BufWriter::with_capacity(1 << 20, out);
    let done = local_match(&sig, src, (hash_hits, false), tick, |t| {
        patcher.apply(t, &mut writer).map(|_| ())
    })?;
    writer.flush()?;
    Ok(done)
}

/// [`delta_copy`] for `--inplace --no-whole-file`: `file` (the destination, open for reading
/// and writing) is its own basis and is rebuilt where it is, as stock's receiver does: the
/// matcher only uses blocks not yet overwritten (or already at their place, which are not
/// rewritten); the caller cuts the file to the returned length.
fn delta_copy_inplace(
    src: &mut impl Read,
    file: &File,
    block_size: Option<u32>,
    hash_hits: bool,
    tick: Option<&mut dyn FnMut(u64)>,
) -> io::Result<(rtsync_delta::MatchStats, WireBytes, u64)> {
    let mut reader = file;
    reader.seek(SeekFrom::Start(0))?;
    let sig = local_signature(reader, file.metadata()?.len(), block_size)?;
    let kind = rtsync_delta::ChecksumKind::Xxh128;
    let mut patcher = rtsync_delta::InPlacePatcher::new(file, *sig.head(), kind);
    let (stats, wire) = local_match(&sig, src, (hash_hits, true), tick, |t| {
        patcher.apply(t).map(|_| ())
    })?;
    Ok((stats, wire, patcher.written()))
}

/// What a file's exchange would cost between rsync's sender and generator (`%b`, `%c`):
/// the local engine moves no protocol bytes but reports the numbers stock's local copy would.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct WireBytes {
    pub written: u64,
    pub read: u64,
}

impl WireBytes {
    /// The sum header the generator sends: count, block length, strong length, remainder.
    const SUM_HEAD: u64 = 16;
    /// Besides its tokens the sender writes the index (one byte when close to the last),
    /// the item flags, the sum header echoed back, the end token and the 16-byte file sum.
    const FILE_OVERHEAD: u64 = 1 + 2 + Self::SUM_HEAD + 4 + 16;

    /// A file sent whole: literal data in 32 KiB chunks, each behind its length.
    pub fn whole(len: u64) -> WireBytes {
        WireBytes {
            written: Self::FILE_OVERHEAD + len + 4 * len.div_ceil(rtsync_delta::CHUNK_SIZE as u64),
            read: Self::SUM_HEAD,
        }
    }
}

/// What [`append_data`] did.
enum Appended {
    /// The tail was appended: this many bytes.
    Done(u64),
    /// `--append-verify` found the existing data differs from the source's start; nothing
    /// was written.
    Mismatch,
}

/// `--append`: writes the source's bytes past `old_len` onto the end of `dest`, trusting the
/// data already there; with `verify`, first checks that data against the source's start.
fn append_data(src: &mut File, dest: &Path, old_len: u64, verify: bool) -> io::Result<Appended> {
    let mut out = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dest)?;
    if verify {
        let mut a = vec![0u8; 64 * 1024];
        let mut b = vec![0u8; 64 * 1024];
        let mut left = old_len;
        while left > 0 {
            let n = left.min(a.len() as u64) as usize;
            src.read_exact(&mut a[..n])?;
            out.read_exact(&mut b[..n])?;
            if a[..n] != b[..n] {
                return Ok(Appended::Mismatch);
            }
            left -= n as u64;
        }
    }
    src.seek(SeekFrom::Start(old_len))?;
    out.seek(SeekFrom::Start(old_len))?;
    let n = io::copy(src, &mut out)?;
    out.set_len(old_len + n)?;
    Ok(Appended::Done(n))
}

impl LocalTransfer<'_> {
    /// rsync's quick check: is the destination file already up to date?
    fn up_to_date(&mut self, i: usize, md: &Metadata) -> bool {
        let dst = self.dest_path(&self.entries[i].name);
        self.quick_check_at(i, &dst, md)
    }

    /// The quick check of entry `i` against the file at `dst` (whose metadata is `md`).
    pub(super) fn quick_check_at(&mut self, i: usize, dst: &Path, md: &Metadata) -> bool {
        let e = &self.entries[i];
        if md.size() != e.size {
            return false;
        }
        if self.opts.checksum {
            let src = self.paths[i].clone();
            return matches!((file_checksum(&src), file_checksum(dst)), (Ok(a), Ok(b)) if a == b);
        }
        if self.opts.size_only {
            return true;
        }
        if self.opts.ignore_times {
            return false;
        }
        same_mtime(
            self.opts.modify_window,
            md_mtime(md),
            (e.mtime, e.mtime_nsec),
        )
    }

    /// `--write-devices` and `md` is a device's.
    fn writes_device(&self, md: &Metadata) -> bool {
        self.opts.write_devices
            && (md.file_type().is_block_device() || md.file_type().is_char_device())
    }

    pub(super) fn do_file(&mut self, i: usize, dest: &Path, existing: Option<Metadata>) {
        let (size, name) = (self.entries[i].size, self.entries[i].name.clone());
        if let Some(line) =
            crate::report::size_skip((self.opts.min_size, self.opts.max_size), &name, size)
        {
            if self.opts.info_skip() {
                self.report.info(&line);
            }
            return;
        }
        // (With --fake-super a regular file may stand for something else; with
        // --write-devices a device in the way is written into, as if a file.)
        let regular = existing.filter(|m| {
            (m.is_file() && self.seen(dest, m).kind() == Some(FileKind::Regular))
                || self.writes_device(m)
        });
        let mut alt_basis = None;
        if self.opts.alt_dest.is_some() {
            if regular.is_none()
                && std::fs::symlink_metadata(dest).is_ok()
                && !self.remove_in_the_way(dest, i)
            {
                return;
            }
            match self.alt_dest_file(i, dest, regular.is_some()) {
                super::altdest::AltOutcome::Done => return,
                super::altdest::AltOutcome::Basis(m) => alt_basis = Some(m),
                super::altdest::AltOutcome::None => {}
            }
        }
        let mut fuzzy_basis = None;
        if regular.is_none() && alt_basis.is_none() && self.opts.fuzzy > 0 {
            fuzzy_basis = self.find_fuzzy(i, dest);
            if let (Some(f), true) = (&fuzzy_basis, self.debug_fuzzy() > 0) {
                let dir = self.dest_dir();
                let f = &super::altdest::unpinned(f);
                let shown = f.strip_prefix(&dir).unwrap_or(f).display().to_string();
                self.report.info(&format!(
                    "fuzzy basis selected for {}: {shown}",
                    crate::report::lossless_text(&name)
                ));
            }
        }
        if regular.is_none()
            && alt_basis.is_none()
            && fuzzy_basis.is_none()
            && self.defer_missing_member()
        {
            // A later member of its hard-link group will be written and linked back to.
            return;
        }
        if regular.is_none()
            && std::fs::symlink_metadata(dest).is_ok()
            && !self.remove_in_the_way(dest, i)
        {
            return;
        }
        if let Some(md) = &regular {
            if self.up_to_date(i, md) {
                if self.opts.delay_updates && !self.opts.dry_run {
                    // A stale staged copy of an up-to-date file goes, and its staging
                    // directory with it once empty.
                    let stage_dir = dest.parent().unwrap_or(Path::new(".")).join(DELAY_DIR);
                    let staged = stage_dir.join(dest.file_name().unwrap_or_default());
                    if std::fs::symlink_metadata(&staged).is_ok_and(|m| m.is_file()) {
                        let _ = std::fs::remove_file(&staged);
                        let _ = std::fs::remove_dir(&stage_dir);
                    }
                }
                let mut it = Itemize::new(b'.', b'f');
                self.compare_attrs(i, md, &mut it, false);
                self.settle_acl_perms(i, md, &mut it);
                if !self.opts.dry_run {
                    self.apply_owner(i, dest, Some(md));
                    self.apply_mode_and_time(i, dest, Some(md));
                }
                self.show(i, &it, &name, b"");
                self.member_up_to_date();
                self.remove_source(i);
                return;
            }
            // (Stock's test: the sender's time less than --modify-window past ours.)
            if self.opts.update && self.entries[i].mtime - md.mtime() < self.opts.modify_window {
                if self.opts.info_skip() {
                    // (Escaped as the line goes out, as stock's rwrite does.)
                    self.report
                        .info(&format!("{} is newer", crate::report::lossless_text(&name)));
                }
                return;
            }
            if self.opts.append && md.size() >= size {
                // --append never touches a file that is already as long as the source.
                return;
            }
        }
        let mut it = Itemize::new(b'>', b'f');
        match regular.as_ref().or(alt_basis.as_ref().map(|m| &m.md)) {
            None => it.is_new = true,
            Some(md) => {
                it.checksum = self.opts.checksum;
                it.size = md.size() != size;
                it.time = if self.opts.times {
                    (!same_mtime(
                        self.opts.modify_window,
                        md_mtime(md),
                        (self.entries[i].mtime, self.entries[i].mtime_nsec),
                    ))
                    .then_some(b't')
                } else {
                    Some(b'T')
                };
                let mut attrs = Itemize::default();
                self.compare_attrs(i, md, &mut attrs, false);
                it.perms = attrs.perms;
                it.owner = attrs.owner;
                it.group = attrs.group;
                it.atime = attrs.atime;
                it.xattr = attrs.xattr;
                it.acl = attrs.acl;
            }
        }
        // (Stock's sender counts the file's length as transferred when it starts.)
        self.sender_sees(i, true);
        if self.report.progress_level() > 1 {
            let total_size = self.progress_counts(i).total_size;
            self.report.transfer_counted(size, total_size);
        }
        if !self.opts.dry_run {
            if self.report.shows_progress() {
                let facts = self.facts(i);
                self.report.transfer_begin(&it, &name, &facts);
            }
            self.alt_basis = alt_basis.map(|m| m.path).or(fuzzy_basis);
            let written = self.write_file(i, dest, regular.as_ref());
            self.alt_basis = None;
            if let Err(code) = written {
                self.report.transfer_abort();
                self.note(code);
                if let Some(texts) = self.receive_failed.take() {
                    // Only the receiver failed: stock's sender sent the file, logs it and
                    // counts it (its data as literal).
                    if it.is_new {
                        self.stats.created[0] += 1;
                    }
                    self.stats.transferred += 1;
                    self.stats.transferred_size += size;
                    self.stats.literal += size;
                    let facts = self.facts(i);
                    self.report.item_with(&it, &name, b"", &facts);
                    for text in texts {
                        self.report.error(&text);
                    }
                }
                return;
            }
        }
        if it.is_new {
            self.stats.created[0] += 1;
        }
        self.stats.transferred += 1;
        self.stats.transferred_size += size;
        if self.opts.dry_run {
            self.stats.literal += size;
        }
        let mut facts = self.facts(i);
        if !self.opts.dry_run {
            let wire = std::mem::take(&mut self.wire_bytes);
            facts.written = wire.written;
            facts.read = wire.read;
            if facts.sum_hex.is_none() && self.report.wants(b'C') {
                facts.sum_hex = self.sum_hex_of(&self.paths[i], false);
            }
        }
        if !self.opts.dry_run && self.report.shows_progress() {
            let counts = self.progress_counts(i);
            self.report.progress(size, counts);
        }
        self.report.item_with(&it, &name, b"", &facts);
        if std::mem::take(&mut self.redone) {
            // The redo pass itemizes the file again, now the size it should be, against the
            // retained file, whose time is that of the failed append.
            let mut redo = Itemize::new(b'>', b'f');
            let e = &self.entries[i];
            if let Some(t) = self.redo_mtime.take().filter(|_| self.opts.times) {
                if !same_mtime(self.opts.modify_window, t, (e.mtime, e.mtime_nsec)) {
                    redo.time = Some(b't');
                }
            }
            self.report.item(&redo, &name, b"");
        }
        if std::mem::take(&mut self.source_changed) {
            // Not in place: sent again after the other files (once).
            self.note(exit::PARTIAL);
            if !self.redoing {
                self.redo_sources.push((
                    self.entries[i].clone(),
                    self.paths[i].clone(),
                    self.devs[i],
                ));
            }
            return;
        }
        if self.opts.dry_run {
            // Nothing is written: the group is completed at once, as stock's generator does
            // without transfers.
            self.member_up_to_date();
        } else {
            self.member_sent();
        }
        self.remove_source(i);
    }

    /// Writes the file's data and attributes, through a temp file unless `--inplace`.
    pub(super) fn write_file(
        &mut self,
        i: usize,
        dest: &Path,
        existing: Option<&Metadata>,
    ) -> Result<(), i32> {
        let src_path = self.paths[i].clone();
        let o = self.opts;
        let noatime = if o.open_noatime { libc::O_NOATIME } else { 0 };
        let opened = if o.copy_links || o.copy_unsafe_links || o.copy_dirlinks || o.insecure_links {
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(noatime)
                .open(&src_path)
        } else {
            // Not through a parent swapped for a symlink since the scan. With -R the name
            // holds the path the operator gave, whose symlinks stock follows: only the last
            // component is then held to O_NOFOLLOW.
            let name: &[u8] = if o.relative {
                b""
            } else {
                &self.entries[i].name
            };
            fsops::open_source(&src_path, name, libc::O_RDONLY | noatime).map(File::from)
        };
        let mut src = match opened {
            Ok(f) => f,
            Err(e) => {
                if e.kind() == io::ErrorKind::NotFound {
                    self.report
                        .error(&format!("file has vanished: \"{}\"", full_path(&src_path)));
                    return Err(exit::VANISHED);
                }
                self.report.error(&format!(
                    "rsync: [sender] send_files failed to open \"{}\": {}",
                    full_path(&src_path),
                    os_error(&e)
                ));
                return Err(exit::PARTIAL);
            }
        };
        // What is sent is the file as it is now (stock's sender maps the size it finds
        // when it opens the file).
        // (A device sent with --copy-devices: what seeking to its end finds.)
        let open_size = match fsops::content_size(&src) {
            Ok(size) => size,
            Err(e) => {
                self.report
                    .error(&format!("rsync: [sender] fstat failed: {}", os_error(&e)));
                return Err(exit::FILE_IO);
            }
        };
        let perms = self.wanted_perms(i, existing);
        let size = self.entries[i].size;
        let old_len = existing.filter(|m| m.is_file()).map_or(0, |m| m.size());
        if self.opts.append && old_len > 0 && old_len < size {
            let result = append_data(&mut src, dest, old_len, self.opts.append_verify);
            match result {
                Ok(Appended::Done(n)) => {
                    self.stats.literal += n;
                    self.wire_bytes = WireBytes::whole(n);
                    self.finish_attrs(i, dest, perms);
                    return Ok(());
                }
                Ok(Appended::Mismatch) => {
                    // --append-verify: the old data did not match; the file is sent again
                    // whole (in place), as stock's redo pass does.
                    if self.opts.verbose > 0 || self.opts.itemize > 0 {
                        self.report.error(&format!(
                            "WARNING: {} failed verification -- update retained (will try again).",
                            crate::report::lossless_text(&self.entries[i].name)
                        ));
                    }
                    self.redone = true;
                    self.redo_mtime = std::fs::symlink_metadata(dest).ok().map(|m| md_mtime(&m));
                    if let Err(e) = src.seek(SeekFrom::Start(0)) {
                        return Err(self.write_failed(dest, &e));
                    }
                }
                Err(e) => return Err(self.write_failed(dest, &e)),
            }
        }
        if self.opts.inplace {
            if existing.is_some_and(|m| m.is_file())
                && self.opts.backup
                && !self.make_backup_copy(dest)
            {
                // Left alone; what went wrong was noted already.
                return Err(exit::OK);
            }
            // With --no-whole-file an existing file is its own basis, rebuilt in place.
            let delta = self.opts.whole_file == Some(false)
                && !self.opts.sparse
                && !self.alt_whole_file
                && existing.is_some_and(|m| m.is_file());
            let result = (|| -> io::Result<(u64, Option<i32>)> {
                let mut out = std::fs::OpenOptions::new()
                    .read(delta)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(dest)?;
                let progress = self.report.shows_progress();
                let (report, bw) = (&mut self.report, &mut self.bw);
                let throttled = bw.is_some();
                let mut last = 0;
                let mut tick = |ofs| {
                    if progress {
                        report.transfer_tick(ofs, size);
                    }
                    if let Some(bw) = bw.as_mut() {
                        bw.spend(ofs.saturating_sub(last));
                        last = ofs;
                    }
                };
                let tick: Option<&mut dyn FnMut(u64)> =
                    (progress || throttled).then_some(&mut tick);
                if self.opts.sparse {
                    // Holes are skipped, not written: old data must not show through them
                    // (stock starts a sparse whole-file --inplace copy from no length).
                    out.set_len(0)?;
                }
                if self.opts.preallocate && size > out.metadata()?.len() {
                    let _ = rtsync_tree::fsops::preallocate(&out, size, self.opts.sparse);
                }
                let mut sized = SizedSource::new(&mut src, open_size);
                if delta {
                    let block_size = self.opts.block_size;
                    let hash_hits = self.opts.debug_level("deltasum") >= 1;
                    let (ms, wire, n) =
                        delta_copy_inplace(&mut sized, &out, block_size, hash_hits, tick)?;
                    out.set_len(n)?;
                    self.stats.add_delta(&ms);
                    self.wire_bytes = wire;
                    return Ok((0, sized.status()));
                }
                let n = copy_data(&mut sized, &mut out, self.opts.sparse, size, tick)?;
                if out.metadata()?.is_file() {
                    // (A device written with --write-devices keeps its size.)
                    out.set_len(n)?;
                }
                Ok((n, sized.status()))
            })();
            if result.is_ok() && self.opts.fsync {
                // (Any descriptor of the file flushes it.)
                match File::open(dest) {
                    Ok(f) => self.fsync_written(&f, dest)?,
                    Err(e) => return Err(self.write_failed(dest, &e)),
                }
            }
            match result {
                Ok((n, status)) => {
                    if !delta {
                        self.stats.literal += n;
                        self.wire_bytes = WireBytes::whole(n);
                    }
                    if let Some(errno) = status {
                        // Written in place: what was read stays, without its attributes.
                        self.source_read_failed(i, &src_path, errno, "retained");
                        return Ok(());
                    }
                }
                Err(e) => return Err(self.write_failed(dest, &e)),
            }
            self.finish_attrs(i, dest, perms);
            return Ok(());
        }
        let dir = match &self.opts.temp_dir {
            // A relative --temp-dir is relative to the destination directory too.
            Some(t) => self.dest_dir().join(t),
            None => dest.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let base = dest
            .file_name()
            .map(|n| n.as_bytes().to_vec())
            .unwrap_or_default();
        // The file's directory, held open beneath the destination so a parent swapped for a
        // symlink leading out of the tree during the transfer cannot redirect the write (the
        // temp file, without --temp-dir, and the final rename go through it).
        let pinned = match self.pin_parent(dest) {
            Ok(p) => p,
            Err(e) => return Err(self.mkstemp_failed(&dir, &base, &e)),
        };
        let pinned_dir = pinned.map(|fd| {
            let d = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
            (fd, d)
        });
        let dest_pinned = pinned_dir.as_ref().map_or_else(
            || dest.to_path_buf(),
            |(_, d)| d.join(OsStr::from_bytes(&base)),
        );
        // An operator's --temp-dir is entered under the ownership rule (and then used by its
        // resolved name).
        let mut at = match &pinned_dir {
            Some((_, d)) if self.opts.temp_dir.is_none() => d.clone(),
            _ => dir.clone(),
        };
        if self.opts.temp_dir.is_some() {
            match rtsync_oppath::open_dir(&dir) {
                Ok(fd) => {
                    if let Ok(p) = rtsync_oppath::fd_path(std::os::fd::AsFd::as_fd(&fd)) {
                        at = p;
                    }
                }
                Err(e) if rtsync_oppath::is_refusal(&e) => {
                    self.report.error(rtsync_oppath::REFUSAL);
                    self.report.error(&format!(
                        "rsync: [receiver] mkstemp \"{}/{}.XXXXXX\" failed: {}",
                        full_path(&dir),
                        crate::report::lossless_text(&base),
                        os_error(&e)
                    ));
                    return Err(exit::PARTIAL);
                }
                Err(_) => {}
            }
        }
        let mut tmp = match TempFile::create_in(&at, &base) {
            Ok(t) => t,
            Err(e) => return Err(self.mkstemp_failed(&dir, &base, &e)),
        };
        // Interrupted from here on, the temp file is removed (or, with --partial, kept).
        let _armed = self.arm_interrupt(&tmp, dest, &dest_pinned);
        // An earlier interrupted transfer kept in the partial dir is the better basis (as
        // stock's generator picks it; it goes once the file is in place).
        let partial = self
            .opts
            .partial_dir
            .as_ref()
            .filter(|_| !self.alt_whole_file)
            .map(|pd| {
                dest.parent()
                    .unwrap_or(Path::new("."))
                    .join(pd)
                    .join(OsStr::from_bytes(&base))
            })
            .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file()));
        let basis = partial.or_else(|| {
            existing
                .filter(|m| m.is_file())
                .map(|_| dest.to_path_buf())
                .or_else(|| self.alt_basis.clone())
        });
        let hash_hits = self.opts.debug_level("deltasum") >= 1;
        let progress = self.report.shows_progress();
        let (report, bw) = (&mut self.report, &mut self.bw);
        let throttled = bw.is_some() && !self.alt_whole_file;
        let mut last = 0;
        let mut tick = |ofs| {
            if progress {
                report.transfer_tick(ofs, size);
            }
            if let Some(bw) = bw.as_mut().filter(|_| throttled) {
                bw.spend(ofs.saturating_sub(last));
                last = ofs;
            }
        };
        let tick: Option<&mut dyn FnMut(u64)> = (progress || throttled).then_some(&mut tick);
        let mut sized = SizedSource::new(&mut src, open_size);
        let copied = match (self.opts.whole_file, basis) {
            (Some(false), Some(basis)) if !self.alt_whole_file => {
                let block_size = self.opts.block_size;
                delta_copy(&mut sized, &basis, tmp.file(), block_size, hash_hits, tick).map(
                    |(ms, wire)| {
                        self.stats.add_delta(&ms);
                        self.wire_bytes = wire;
                    },
                )
            }
            _ if self.opts.preallocate => {
                let _ = rtsync_tree::fsops::preallocate(tmp.file(), size, self.opts.sparse);
                copy_data(&mut sized, tmp.file(), self.opts.sparse, size, tick).map(|n| {
                    self.stats.literal += n;
                    self.wire_bytes = WireBytes::whole(n);
                })
            }
            _ => copy_data(&mut sized, tmp.file(), self.opts.sparse, size, tick).map(|n| {
                self.stats.literal += n;
                self.wire_bytes = WireBytes::whole(n);
            }),
        };
        let status = sized.status();
        if let Err(e) = copied {
            if self.opts.partial {
                let keep = self.partial_path(dest);
                let _ = tmp.persist(&keep);
            }
            return Err(self.write_failed(dest, &e));
        }
        self.fsync_written(tmp.file(), dest)?;
        if let Some(errno) = status {
            // Stock's sender then sends a checksum that cannot match, so the receiver
            // discards the file (or, with --partial, keeps it as partial data).
            let kept = if !self.opts.partial {
                "discarded"
            } else if self.opts.partial_dir.is_some() {
                "put into partial-dir"
            } else {
                "retained"
            };
            if self.opts.partial {
                let keep = self.partial_path(dest);
                let _ = tmp.persist(&keep);
            }
            self.source_read_failed(i, &src_path, errno, kept);
            return Ok(());
        }
        // Ownership first: chown clears set-id bits that chmod then puts back.
        let tmp_path = tmp.path().to_path_buf();
        self.apply_owner(i, &tmp_path, None);
        self.apply_acl(&self.entries[i].clone(), &tmp_path, perms);
        let _ = tmp
            .file()
            .set_permissions(std::fs::Permissions::from_mode(perms));
        if self.fake() {
            self.store_fake_stat(&self.entries[i].clone(), &tmp_path, perms);
        }
        self.set_written_times(i, &tmp_path);
        if existing.is_some() && self.opts.backup && !self.make_backup(dest) {
            let _ = std::fs::remove_file(&tmp_path);
            return self.replace_needs_backup();
        }
        if self.opts.delay_updates && !self.alt_whole_file {
            // Staged in the partial directory, moved into place at the end of the transfer.
            let name = crate::report::lossless_text(&self.entries[i].name).into_owned();
            let staged = self
                .delayed_dir(dest)
                .map(|d| d.join(OsStr::from_bytes(&base)));
            match staged {
                Some(staged) if tmp.persist(&staged).is_ok() => {
                    self.delayed.push((staged, dest.to_path_buf()));
                }
                _ => {
                    let _ = std::fs::remove_file(&tmp_path);
                    self.report.error(&format!(
                        "Unable to create partial-dir for {name} -- discarding completed file."
                    ));
                }
            }
            return Ok(());
        }
        if let Err(e) = tmp.persist(&dest_pinned) {
            let _ = std::fs::remove_file(&tmp_path);
            self.report.error(&format!(
                "rsync: [receiver] rename \"{}\" -> \"{}\": {}",
                full_path(&super::altdest::unpinned(&tmp_path)),
                crate::report::lossless_text(&self.entries[i].name),
                os_error(&e)
            ));
            return Err(exit::PARTIAL);
        }
        if let Some(pd) = &self.opts.partial_dir {
            let stale = dest
                .parent()
                .unwrap_or(Path::new("."))
                .join(pd)
                .join(OsStr::from_bytes(&base));
            if std::fs::remove_file(&stale).is_ok() && !Path::new(pd).is_absolute() {
                // The used partial's relative directory goes too once empty, as stock's.
                if let Some(dir) = stale.parent() {
                    let _ = std::fs::remove_dir(dir);
                }
            }
        }
        Ok(())
    }

    /// The source could not be read to the size it had when opened (it shrank, or a read
    /// failed): stock's sender reports the read error and the receiver the failed
    /// verification of the zero-filled data (a warning when the file will be sent again,
    /// an error on the second try). The file is sent again once the others are done.
    fn source_read_failed(&mut self, i: usize, src_path: &Path, errno: i32, kept: &str) {
        self.report.error(&format!(
            "rsync: [sender] read errors mapping \"{}\": {}",
            full_path(src_path),
            os_error(&io::Error::from_raw_os_error(errno))
        ));
        let name = crate::report::lossless_text(&self.entries[i].name).into_owned();
        if self.redoing {
            self.report.error(&format!(
                "ERROR: {name} failed verification -- update {kept}."
            ));
        } else if self.opts.verbose > 0 || self.report.itemizes() {
            self.report.error(&format!(
                "WARNING: {name} failed verification -- update {kept} (will try again)."
            ));
        }
        self.source_changed = true;
    }

    /// Reports that no temp file could be made for `base` in `dir` (stock's mkstemp line);
    /// the exit code to give.
    /// The message waits in `receive_failed`: the sender had sent the file by then, and
    /// says so first.
    fn mkstemp_failed(&mut self, dir: &Path, base: &[u8], e: &io::Error) -> i32 {
        self.receive_failed = Some(vec![format!(
            "rsync: [receiver] mkstemp \"{}/.{}.XXXXXX\" failed: {}",
            full_path(dir),
            crate::report::lossless_text(base),
            os_error(e)
        )]);
        exit::PARTIAL
    }

    /// `--delay-updates`: the partial directory a finished file waits in (`.~tmp~` beside it
    /// by default), created under the operator-path rule; `None` when it cannot be.
    fn delayed_dir(&mut self, dest: &Path) -> Option<PathBuf> {
        let pd = self
            .opts
            .partial_dir
            .clone()
            .unwrap_or_else(|| ".~tmp~".into());
        let dir = if Path::new(&pd).is_absolute() {
            PathBuf::from(&pd)
        } else {
            dest.parent().unwrap_or(Path::new(".")).join(&pd)
        };
        match rtsync_oppath::create_dir_all(rtsync_oppath::Base::Cwd, &dir, 0o700) {
            Ok(fd) => rtsync_oppath::fd_path(std::os::fd::AsFd::as_fd(&fd)).ok(),
            Err(e) => {
                if rtsync_oppath::is_refusal(&e) {
                    // Stock looks twice (the directory, then making it).
                    self.report.error(rtsync_oppath::REFUSAL);
                    self.report.error(rtsync_oppath::REFUSAL);
                }
                None
            }
        }
    }

    /// `--delay-updates`: moves the staged files into place, and removes relative partial
    /// directories left empty.
    pub(super) fn finish_delayed(&mut self) {
        let delayed = std::mem::take(&mut self.delayed);
        let relative = self
            .opts
            .partial_dir
            .as_ref()
            .is_none_or(|p| !Path::new(p).is_absolute());
        let mut dirs: Vec<PathBuf> = Vec::new();
        for (staged, dest) in delayed {
            if let Err(e) = std::fs::rename(&staged, &dest) {
                self.report.error(&format!(
                    "rsync: [receiver] rename \"{}\" -> \"{}\": {}",
                    full_path(&staged),
                    full_path(&dest),
                    os_error(&e)
                ));
                self.note(exit::PARTIAL);
            }
            if let Some(d) = staged.parent() {
                if relative && !dirs.iter().any(|x| x == d) {
                    dirs.push(d.to_path_buf());
                }
            }
        }
        for d in dirs {
            let _ = std::fs::remove_dir(d);
        }
    }

    /// `--fsync`: the file written is flushed to disk before it goes into place; a file that
    /// cannot be ends the transfer as stock's receiver ends it (code 11).
    fn fsync_written(&mut self, file: &File, dest: &Path) -> Result<(), i32> {
        if !self.opts.fsync {
            return Ok(());
        }
        file.sync_all().map_err(|e| {
            self.report.error(&format!(
                "rsync: [receiver] fsync failed on \"{}\": {}",
                full_path(dest),
                os_error(&e)
            ));
            exit::FILE_IO
        })
    }

    fn write_failed(&mut self, dest: &Path, e: &io::Error) -> i32 {
        self.report.error(&format!(
            "rsync: [receiver] write failed on \"{}\": {}",
            full_path(dest),
            os_error(e)
        ));
        // (Stock's receiver stops there.)
        if self.fatal.is_none() {
            self.fatal = Some((exit::FILE_IO, "receiver.c(657)"));
        }
        exit::FILE_IO
    }

    /// Names `tmp` to the interrupt handler, with where `--partial` keeps it (the file's own
    /// name, or its partial directory); disarmed when the returned guard drops.
    fn arm_interrupt(&self, tmp: &TempFile, dest: &Path, dest_pinned: &Path) -> Disarm {
        use fsops::interrupt::signal_cleanup_set;
        let tmp = tmp.path().as_os_str().as_bytes();
        if !self.opts.partial {
            signal_cleanup_set(Some(tmp), None);
            return Disarm;
        }
        match &self.opts.partial_dir {
            Some(pd) => {
                let dir = dest.parent().unwrap_or(Path::new(".")).join(pd);
                let keep = dir.join(dest.file_name().unwrap_or_default());
                signal_cleanup_set(
                    Some(tmp),
                    Some((
                        keep.as_os_str().as_bytes(),
                        Some(dir.as_os_str().as_bytes()),
                    )),
                );
            }
            None => signal_cleanup_set(Some(tmp), Some((dest_pinned.as_os_str().as_bytes(), None))),
        }
        Disarm
    }

    /// Where `--partial` keeps an interrupted file.
    fn partial_path(&self, dest: &Path) -> PathBuf {
        match &self.opts.partial_dir {
            Some(pd) => {
                let dir = dest.parent().unwrap_or(Path::new(".")).join(pd);
                let _ = std::fs::create_dir_all(&dir);
                dir.join(dest.file_name().unwrap_or_default())
            }
            None => dest.to_path_buf(),
        }
    }

    fn finish_attrs(&mut self, i: usize, dest: &Path, perms: u32) {
        self.apply_owner(i, dest, None);
        self.apply_acl(&self.entries[i].clone(), dest, perms);
        if self.fake() {
            self.store_fake_stat(&self.entries[i].clone(), dest, perms);
        } else {
            let _ = fsops::set_perms(dest, perms);
        }
        self.set_written_times(i, dest);
    }

    /// The times of a file just written: exactly the source's (`-t`, `-U`).
    fn set_written_times(&self, i: usize, path: &Path) {
        let e = &self.entries[i];
        let mtime = self.opts.times.then_some((e.mtime, e.mtime_nsec));
        let atime = (self.opts.atimes > 0).then_some(e.atime);
        if mtime.is_some() || atime.is_some() {
            let _ = fsops::set_times(path, mtime, atime);
        }
    }

    /// `--backup`: moves the old file aside (`NAME~`, or into `--backup-dir`).
    /// `false` when the backup was refused (the caller then leaves the file alone).
    pub(super) fn make_backup(&mut self, dest: &Path) -> bool {
        if self.opts.safe_links && self.is_unsafe_dest_symlink(dest) {
            // rsync drops an unsafe symlink rather than keep a backup of it.
            let _ = std::fs::remove_file(dest);
            return true;
        }
        let name = self.backup_name(dest);
        // A directory already where the backup goes is replaced, as rsync does (a rename
        // onto it would fail and leave the deleted entry in place).
        let dest_is_dir = std::fs::symlink_metadata(dest).is_ok_and(|m| m.is_dir());
        if !dest_is_dir && std::fs::symlink_metadata(&name).is_ok_and(|m| m.is_dir()) {
            if self.opts.backup_dir.is_some() {
                // An operator path: removed beneath the directory the ownership rule let us
                // enter, never through a parent swapped for a symlink meanwhile.
                if let Ok((dir, leaf)) =
                    rtsync_oppath::open_parent(rtsync_oppath::Base::Cwd, &name, false)
                {
                    let _ = rtsync_oppath::remove_tree_at(std::os::fd::AsFd::as_fd(&dir), &leaf);
                }
            } else {
                let _ = std::fs::remove_dir_all(&name);
            }
        }
        let moved = if self.opts.backup_dir.is_some() {
            // An operator path: created and entered under the ownership rule, and the rename
            // goes into the directory descriptor that was checked (a parent swapped for a
            // symlink meanwhile does not redirect it).
            match rtsync_oppath::open_parent(rtsync_oppath::Base::Cwd, &name, true) {
                Ok((dir, leaf)) => match rename_into(dest, &dir, &leaf) {
                    Ok(()) => Ok(()),
                    // Another filesystem (or a rename refused): a copy, as stock falls back
                    // to one.
                    Err(_) => fsops::move_by_copy(dest, &name),
                },
                Err(e) if rtsync_oppath::is_refusal(&e) => {
                    self.backup_refused(dest, &name, &e, false);
                    return false;
                }
                Err(e) => {
                    // Stock's backup-directory creation fails without a word of its own.
                    self.backup_error = Some(e);
                    return false;
                }
            }
        } else {
            match std::fs::rename(dest, &name) {
                Ok(()) => Ok(()),
                // Another filesystem: copy, as rsync's robust_rename does.
                Err(_) => fsops::move_by_copy(dest, &name),
            }
        };
        match moved {
            Ok(()) => {
                self.announce_backup(dest, &name);
                true
            }
            Err(e) if e.raw_os_error() == Some(libc::EISDIR) => {
                // A directory that could not be renamed aside: left to the caller, as before.
                true
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && !dest.exists() => {
                // Nothing was there to keep after all.
                true
            }
            Err(e) => {
                // Stock's copy fallback: it clears the backup name first, then creates it.
                let dir = self.dest_dir();
                let shown = name
                    .strip_prefix(&dir)
                    .unwrap_or(&name)
                    .display()
                    .to_string();
                let what = if e.raw_os_error() == Some(libc::ENOENT) {
                    "open"
                } else {
                    "unlink"
                };
                self.backup_messages.push(format!(
                    "rsync: [receiver] {what} \"{}\": {}",
                    full_path(&name),
                    os_error(&e)
                ));
                self.backup_messages.push(format!(
                    "rsync: [receiver] keep_backup failed: \"{}\" -> \"{shown}\": {}",
                    full_path(dest),
                    os_error(&e)
                ));
                self.backup_error = Some(e);
                false
            }
        }
    }

    /// A file about to be replaced could not be backed up: stock's receiver stops there
    /// (code 11) and the file stays as it was.
    pub(super) fn replace_needs_backup(&mut self) -> Result<(), i32> {
        if self.backup_error.take().is_some() && self.fatal.is_none() {
            self.fatal = Some((exit::FILE_IO, "rsync.c(900)"));
            // (Stock's sender had sent the file: its line comes first.)
            self.receive_failed = Some(std::mem::take(&mut self.backup_messages));
        }
        Err(exit::FILE_IO)
    }

    /// `--backup` of something about to be removed (deleted, or made way for): why it could
    /// not be kept, once what the backup said is printed (`backup_failed` callers name the
    /// step `make_backup`, as stock's delete_item does).
    pub(super) fn back_up_before_removal(&mut self, path: &Path) -> io::Result<()> {
        if self.make_backup(path) {
            return Ok(());
        }
        for text in std::mem::take(&mut self.backup_messages) {
            self.report.error(&text);
        }
        Err(self
            .backup_error
            .take()
            .unwrap_or_else(|| io::Error::from(io::ErrorKind::PermissionDenied)))
    }

    /// A backup whose directory runs into another user's symlink, reported as stock does: a
    /// replaced file ends the transfer (code 11), an `--inplace` one is left alone. Stock
    /// says more when the symlink is the backup's own directory.
    fn backup_refused(&mut self, dest: &Path, name: &Path, e: &io::Error, inplace: bool) {
        let own_dir = name
            .parent()
            .and_then(|p| std::fs::symlink_metadata(p).ok())
            .is_some_and(|m| m.file_type().is_symlink());
        let dir = self.dest_dir();
        let shown = name
            .strip_prefix(&dir)
            .unwrap_or(name)
            .display()
            .to_string();
        if inplace {
            self.report.error(rtsync_oppath::REFUSAL);
            if own_dir {
                self.report.error(&format!(
                    "rsync: [generator] unlink \"{}\": {}",
                    full_path(name),
                    os_error(e)
                ));
                self.note(exit::PARTIAL);
            }
            return;
        }
        if own_dir {
            for _ in 0..3 {
                self.report.error(rtsync_oppath::REFUSAL);
            }
            self.report.error(&format!(
                "rsync: [receiver] unlink \"{}\": {}",
                full_path(name),
                os_error(e)
            ));
            self.report.error(&format!(
                "rsync: [receiver] keep_backup failed: \"{}\" -> \"{shown}\": {}",
                full_path(dest),
                os_error(e)
            ));
        } else {
            self.report.error(rtsync_oppath::REFUSAL);
        }
        self.fatal = Some((exit::FILE_IO, "rsync.c(900)"));
    }

    fn announce_backup(&mut self, dest: &Path, name: &Path) {
        if self.opts.info_backup() {
            let dir = self.dest_dir();
            let shown = |p: &Path| p.strip_prefix(&dir).unwrap_or(p).display().to_string();
            self.report
                .info(&format!("backed up {} to {}", shown(dest), shown(name)));
        }
    }

    /// `--backup` with `--inplace`: the file is about to be overwritten where it is, so the
    /// backup is a copy (data, permissions and mtime). `false` when the backup was refused.
    fn make_backup_copy(&mut self, dest: &Path) -> bool {
        let name = self.backup_name(dest);
        let create = self.opts.backup_dir.is_some();
        let (dir, leaf) = match rtsync_oppath::open_parent(rtsync_oppath::Base::Cwd, &name, create)
        {
            Ok(d) => d,
            Err(e) if rtsync_oppath::is_refusal(&e) => {
                self.backup_refused(dest, &name, &e, true);
                return false;
            }
            Err(_) => return true,
        };
        if copy_into(dest, &dir, &leaf).is_ok() {
            self.announce_backup(dest, &name);
        }
        true
    }

    /// Whether `dest` is a symlink pointing out of the destination tree.
    fn is_unsafe_dest_symlink(&self, dest: &Path) -> bool {
        let Ok(target) = std::fs::read_link(dest) else {
            return false;
        };
        let dir = self.dest_dir();
        let name = dest.strip_prefix(&dir).unwrap_or(dest);
        unsafe_symlink(target.as_os_str().as_bytes(), name.as_os_str().as_bytes())
    }

    /// Whether `path` already looks like a backup (ends in the suffix): deleting it removes it
    /// rather than backing it up again (`NAME~~`), as rsync does without `--backup-dir`.
    pub(super) fn is_backup_file(&self, path: &Path) -> bool {
        let suffix = self.opts.suffix.as_deref().unwrap_or(OsStr::new("~"));
        !suffix.is_empty() && path.as_os_str().as_bytes().ends_with(suffix.as_bytes())
    }

    fn backup_name(&self, dest: &Path) -> PathBuf {
        let default_suffix = if self.opts.backup_dir.is_some() {
            ""
        } else {
            "~"
        };
        let suffix = self
            .opts
            .suffix
            .clone()
            .unwrap_or_else(|| default_suffix.into());
        let mut file = dest.file_name().unwrap_or_default().to_os_string();
        file.push(&suffix);
        match &self.opts.backup_dir {
            Some(bd) => {
                let rel = dest.strip_prefix(&self.dest_root).unwrap_or(dest);
                // A relative --backup-dir is relative to the destination directory.
                let mut p = self.dest_dir().join(bd).join(rel);
                p.set_file_name(file);
                p
            }
            None => dest.with_file_name(file),
        }
    }

    pub(super) fn remove_source(&mut self, i: usize) {
        if self.opts.remove_source_files {
            let (path, name) = (self.paths[i].clone(), self.entries[i].name.clone());
            self.remove_source_at(&path, &name);
        }
    }

    /// `--remove-source-files`: the sender removes what it has synchronised.
    pub(super) fn remove_source_at(&mut self, path: &Path, name: &[u8]) {
        if self.opts.remove_source_files && !self.opts.dry_run {
            if let Err(e) = std::fs::remove_file(path) {
                self.report.error(&format!(
                    "rsync: [sender] sender failed to remove {}: {}",
                    crate::report::lossless_text(name),
                    os_error(&e)
                ));
                self.note(exit::PARTIAL);
            }
        }
    }

    pub(super) fn do_symlink(&mut self, i: usize, dest: &Path, existing: Option<Metadata>) {
        let name = self.entries[i].name.clone();
        let listed = self.entries[i].link_target.clone().unwrap_or_default();
        // `-M--munge-links`: the receiver makes (and judges) the munged link; what is shown
        // is the sender's target, as a local copy's client (the sender) prints the items.
        let target = if self.munge_received {
            rtsync_tree::munge::munge(&listed)
        } else {
            listed.clone()
        };
        if self.opts.safe_links && unsafe_symlink(&target, &name) {
            if self.opts.verbose > 0 {
                self.report.info(&format!(
                    "ignoring unsafe symlink \"{}\" -> \"{}\"",
                    full_path(dest),
                    crate::report::lossless_text(&target)
                ));
            }
            return;
        }
        let mut suffix = b" -> ".to_vec();
        suffix.extend_from_slice(&listed);
        let mut it = Itemize::new(b'c', b'L');
        let mut quiet = false;
        let fake = self.fake();
        let current = existing.as_ref().filter(|m| {
            if fake {
                self.seen(dest, m).kind() == Some(FileKind::Symlink)
            } else {
                m.file_type().is_symlink()
            }
        });
        if let Some(md) = current {
            let same = if fake {
                // A real symlink reads as empty to a --fake-super receiver (it is replaced
                // by a stand-in).
                rtsync_tree::fake::read_symlink_file(dest)
                    .is_ok_and(|t| t.unwrap_or_default() == target)
            } else {
                std::fs::read_link(dest)
                    .map(|t| t.as_os_str().as_bytes() == target.as_slice())
                    .unwrap_or(false)
            };
            if same {
                let mut it = Itemize::new(b'.', b'L');
                self.compare_attrs(i, md, &mut it, false);
                if !self.opts.dry_run {
                    self.apply_owner(i, dest, Some(md));
                    self.apply_mode_and_time(i, dest, Some(md));
                }
                self.show(i, &it, &name, &suffix);
                self.member_up_to_date();
                self.remove_source(i);
                return;
            }
            it.checksum = true;
            self.compare_attrs(i, md, &mut it, false);
            self.mark_untimed_change(FileKind::Symlink, &mut it);
        } else {
            if existing.is_some() && !self.make_room_for_node(dest, i) {
                return;
            }
            it.is_new = true;
            if existing.is_none() {
                match self.alt_dest_other(i, dest) {
                    AltOther::Done => return,
                    AltOther::Create => quiet = true,
                    AltOther::Basis(md) => {
                        it.is_new = false;
                        it.checksum = true;
                        self.compare_attrs(i, &md, &mut it, false);
                        self.mark_untimed_change(FileKind::Symlink, &mut it);
                    }
                    AltOther::None => {}
                }
            }
            if it.is_new && !quiet {
                self.stats.created[2] += 1;
            }
        }
        if !self.opts.dry_run {
            if current.is_some() && self.opts.backup && !self.make_backup(dest) {
                let _ = self.replace_needs_backup();
                return;
            }
            let made = self.replace_with(
                dest,
                |tmp| {
                    if fake {
                        rtsync_tree::fake::make_symlink_file(tmp, &target)
                    } else {
                        std::os::unix::fs::symlink(OsStr::from_bytes(&target), tmp)
                    }
                },
                |n| {
                    format!(
                        "symlink {n} -> \"{}\" failed",
                        crate::report::lossless_text(&target)
                    )
                },
            );
            if let Err(said) = made {
                self.report.error(&said);
                self.note(exit::PARTIAL);
                return;
            }
            self.apply_owner(i, dest, None);
            self.apply_mode_and_time(i, dest, None);
        }
        if !quiet {
            self.show(i, &it, &name, &suffix);
        }
        self.member_up_to_date();
        self.remove_source(i);
    }

    /// Creates an item under a temporary name next to `dest` and renames it over `dest`.
    /// Makes a symlink/device/special at `dest` with `create`: directly, or by rename over
    /// what is there (see [`fsops::create_over`]). On failure, stock's message: `what` of
    /// the name that failed (the temporary one when replacing), or the rename.
    fn replace_with(
        &self,
        dest: &Path,
        create: impl Fn(&Path) -> io::Result<()>,
        what: impl Fn(&str) -> String,
    ) -> Result<(), String> {
        let replacing = std::fs::symlink_metadata(dest).is_ok();
        fsops::create_over(dest, replacing, create).map_err(|f| {
            let said = if f.renaming {
                format!(
                    "rename \"{}\" -> \"{}\" failed",
                    full_path(&f.at),
                    full_path(dest)
                )
            } else {
                what(&format!("\"{}\"", full_path(&f.at)))
            };
            format!("rsync: [generator] {said}: {}", os_error(&f.err))
        })
    }

    /// A device or special, linked to its hard-link group's leader when it has one in place
    /// (`-H`), else made.
    pub(super) fn linked_node(&mut self, i: usize, dest: &Path, existing: Option<Metadata>) {
        self.current_link = self.join_group(i);
        if let Some(cur) = self.current_link {
            if self.hard_link_check(cur) {
                self.current_link = None;
                return;
            }
        }
        self.do_node(i, dest, existing);
        self.current_link = None;
    }

    pub(super) fn do_node(&mut self, i: usize, dest: &Path, existing: Option<Metadata>) {
        let e = &self.entries[i];
        let (name, mode, rdev, kind) = (e.name.clone(), e.mode, e.rdev, e.kind);
        let letter = if kind.is_device_or_special()
            && matches!(kind, FileKind::BlockDevice | FileKind::CharDevice)
        {
            b'D'
        } else {
            b'S'
        };
        let mut it = Itemize::new(b'c', letter);
        let mut quiet = false;
        if let Some(md) = &existing {
            let seen = self.seen(dest, md);
            let same_type = seen.mode & libc::S_IFMT == mode & libc::S_IFMT;
            let same_dev = letter == b'S' || seen.rdev == rdev;
            if same_type && same_dev {
                let mut it = Itemize::new(b'.', letter);
                self.compare_attrs(i, md, &mut it, false);
                if !self.opts.dry_run {
                    self.apply_owner(i, dest, Some(md));
                    self.apply_mode_and_time(i, dest, Some(md));
                }
                self.show(i, &it, &name, b"");
                self.member_up_to_date();
                self.remove_source(i);
                return;
            }
            if same_type {
                it.checksum = true;
                self.compare_attrs(i, md, &mut it, false);
                self.mark_untimed_change(kind, &mut it);
            } else {
                it.is_new = true;
            }
            if !self.make_room_for_node(dest, i) {
                return;
            }
        } else {
            it.is_new = true;
            match self.alt_dest_other(i, dest) {
                AltOther::Done => return,
                AltOther::Create => quiet = true,
                AltOther::Basis(md) => {
                    it.is_new = false;
                    it.checksum = true;
                    self.compare_attrs(i, &md, &mut it, false);
                    self.mark_untimed_change(kind, &mut it);
                }
                AltOther::None => {}
            }
        }
        if it.is_new && !quiet {
            self.stats.created[super::kind_slot(kind)] += 1;
        }
        if !self.opts.dry_run {
            let perms = self.wanted_perms(i, None);
            let node_mode = (mode & libc::S_IFMT) | perms;
            let fake = self.fake();
            let made = self.replace_with(
                dest,
                |tmp| {
                    if fake {
                        // An inert stand-in; what it stands for goes into its `%stat`.
                        rtsync_tree::fake::make_placeholder(tmp)
                    } else {
                        fsops::make_node(tmp, node_mode, rdev)
                    }
                },
                |n| format!("mknod {n} failed"),
            );
            if let Err(said) = made {
                self.report.error(&said);
                self.note(exit::PARTIAL);
                return;
            }
            self.apply_owner(i, dest, None);
            self.apply_mode_and_time(i, dest, None);
        }
        if !quiet {
            self.show(i, &it, &name, b"");
        }
        self.member_up_to_date();
        self.remove_source(i);
    }
}

/// `rename(from, dir/leaf)` with the destination side held as a directory descriptor.
fn rename_into(from: &Path, dir: &std::os::fd::OwnedFd, leaf: &OsStr) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let cfrom = std::ffi::CString::new(from.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let cleaf = std::ffi::CString::new(leaf.as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: NUL-terminated names and an open directory descriptor.
    let r = unsafe {
        libc::renameat(
            libc::AT_FDCWD,
            cfrom.as_ptr(),
            dir.as_raw_fd(),
            cleaf.as_ptr(),
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Copies the regular file `from` to `dir/leaf` (never through a symlink there), keeping its
/// permissions and modification time.
fn copy_into(from: &Path, dir: &std::os::fd::OwnedFd, leaf: &OsStr) -> io::Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::fs::OpenOptionsExt;
    let mut src = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(from)?;
    let md = src.metadata()?;
    let cleaf = std::ffi::CString::new(leaf.as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: an open directory descriptor and a NUL-terminated name.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            cleaf.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o600,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor we just opened and now own.
    let mut out = unsafe { File::from_raw_fd(fd) };
    io::copy(&mut src, &mut out)?;
    out.set_permissions(std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
    out.set_modified(md.modified()?)?;
    Ok(())
}
