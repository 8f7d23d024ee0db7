//! Regular files, symlinks, devices and hard links: deciding and writing.

use super::{full_path, md_mtime, os_error, same_mtime, LocalTransfer};
use crate::itemize::Itemize;
use crate::report::{exit, Progress};
use rtsync_tree::fsops::{self, TempFile};
use rtsync_tree::scan::unsafe_symlink;
use rtsync_tree::FileKind;
use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

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

/// Copies `src` to `dst`, leaving holes for runs of zeros when `sparse`.
fn copy_data(src: &mut File, dst: &mut File, sparse: bool, size: u64) -> io::Result<u64> {
    if !sparse {
        return io::copy(src, dst);
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

/// Writes `src` into `out` as a delta against `basis` (rsync's algorithm run locally, as with
/// `--no-whole-file`); returns (literal, matched) byte counts.
fn delta_copy(
    src: &mut File,
    basis: &Path,
    out: &mut File,
    block_size: Option<u32>,
) -> io::Result<(u64, u64)> {
    use rtsync_delta::{BlockHasher, ChecksumKind, Matcher, Patcher, Signature, SumParams};
    let to_io = |e: rtsync_delta::Error| io::Error::other(e.to_string());
    let kind = ChecksumKind::Xxh128;
    let hasher = BlockHasher::new(kind, 0);
    let mut params = SumParams::new(31, kind.digest_len());
    params.block_size = block_size;
    let basis_file = File::open(basis)?;
    let basis_len = basis_file.metadata()?.len();
    let sig = Signature::generate(
        io::BufReader::with_capacity(1 << 20, &basis_file),
        basis_len,
        &params,
        &hasher,
    )
    .map_err(to_io)?;
    let mut patcher = Patcher::new(basis_file, *sig.head(), kind);
    let mut writer = io::BufWriter::with_capacity(1 << 20, out);
    let stats = Matcher::new(&sig, hasher)
        .stream(io::BufReader::with_capacity(1 << 20, src), |token| {
            patcher.apply(token.token(), &mut writer).map(|_| ())
        })
        .map_err(to_io)?;
    writer.flush()?;
    Ok((stats.literal_bytes, stats.matched_bytes))
}

impl LocalTransfer<'_> {
    /// rsync's quick check: is the destination file already up to date?
    fn up_to_date(&mut self, i: usize, md: &Metadata) -> bool {
        let e = &self.entries[i];
        if md.size() != e.size {
            return false;
        }
        if self.opts.checksum {
            let src = self.paths[i].clone();
            let dst = self.dest_path(&e.name);
            return matches!((file_checksum(&src), file_checksum(&dst)), (Ok(a), Ok(b)) if a == b);
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

    pub(super) fn do_file(&mut self, i: usize, dest: &Path, existing: Option<Metadata>) {
        let (size, name) = (self.entries[i].size, self.entries[i].name.clone());
        if self.opts.max_size.is_some_and(|m| size > m)
            || self.opts.min_size.is_some_and(|m| size < m)
        {
            return;
        }
        let regular = existing.filter(|m| m.is_file());
        if regular.is_none() && self.defer_missing_member() {
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
                let mut it = Itemize::new(b'.', b'f');
                self.compare_attrs(i, md, &mut it, false);
                if !self.opts.dry_run {
                    self.apply_owner(i, dest, Some(md));
                    self.apply_mode_and_time(i, dest, Some(md));
                }
                self.report.item(&it, &name, b"");
                self.member_up_to_date();
                self.remove_source(i);
                return;
            }
            if self.opts.update && md.mtime() > self.entries[i].mtime {
                if self.opts.info_skip() {
                    let shown = crate::report::escape_name(&name);
                    self.report
                        .info(&format!("{} is newer", String::from_utf8_lossy(&shown)));
                }
                return;
            }
        }
        let mut it = Itemize::new(b'>', b'f');
        match &regular {
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
            }
        }
        let started = std::time::Instant::now();
        if !self.opts.dry_run {
            if let Err(code) = self.write_file(i, dest, regular.as_ref()) {
                self.note(code);
                return;
            }
        }
        let elapsed = started.elapsed();
        if regular.is_none() {
            self.stats.created[0] += 1;
        }
        self.stats.transferred += 1;
        self.stats.transferred_size += size;
        if self.opts.dry_run {
            self.stats.literal += size;
        }
        self.report.item(&it, &name, b"");
        if !self.opts.dry_run {
            let counts = Progress {
                transferred: self.stats.transferred,
                index: self.ordinals.get(i).copied().unwrap_or(0),
                listed: self.listed,
            };
            self.report.progress(size, elapsed, counts);
        }
        self.member_sent();
        self.remove_source(i);
    }

    /// Writes the file's data and attributes, through a temp file unless `--inplace`.
    fn write_file(
        &mut self,
        i: usize,
        dest: &Path,
        existing: Option<&Metadata>,
    ) -> Result<(), i32> {
        let src_path = self.paths[i].clone();
        let mut src = match File::open(&src_path) {
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
        let perms = self.wanted_perms(i, existing);
        let size = self.entries[i].size;
        if self.opts.inplace {
            if existing.is_some() && self.opts.backup && !self.copy_backup(dest) {
                return Err(exit::FILE_IO);
            }
            let result = (|| -> io::Result<u64> {
                let mut out = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(dest)?;
                let n = copy_data(&mut src, &mut out, self.opts.sparse, size)?;
                out.set_len(n)?;
                Ok(n)
            })();
            match result {
                Ok(n) => self.stats.literal += n,
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
        let mut tmp = match TempFile::create_in(&dir, &base) {
            Ok(t) => t,
            Err(e) => {
                self.report.error(&format!(
                    "rsync: [receiver] mkstemp \"{}/.{}.XXXXXX\" failed: {}",
                    full_path(&dir),
                    String::from_utf8_lossy(&base),
                    os_error(&e)
                ));
                return Err(exit::PARTIAL);
            }
        };
        let basis = existing.filter(|m| m.is_file()).map(|_| dest.to_path_buf());
        let copied = match (self.opts.whole_file, basis) {
            (Some(false), Some(basis)) => {
                delta_copy(&mut src, &basis, tmp.file(), self.opts.block_size).map(
                    |(literal, matched)| {
                        self.stats.literal += literal;
                        self.stats.matched += matched;
                    },
                )
            }
            _ => copy_data(&mut src, tmp.file(), self.opts.sparse, size).map(|n| {
                self.stats.literal += n;
            }),
        };
        if let Err(e) = copied {
            if self.opts.partial {
                let keep = self.partial_path(dest);
                let _ = tmp.persist(&keep);
            }
            return Err(self.write_failed(dest, &e));
        }
        // Ownership first: chown clears set-id bits that chmod then puts back.
        let tmp_path = tmp.path().to_path_buf();
        self.apply_owner(i, &tmp_path, None);
        let _ = tmp
            .file()
            .set_permissions(std::fs::Permissions::from_mode(perms));
        if self.opts.times {
            let e = &self.entries[i];
            let _ = fsops::set_mtime(&tmp_path, e.mtime, e.mtime_nsec);
        }
        if existing.is_some() && self.opts.backup && !self.make_backup(dest) {
            return Err(exit::FILE_IO);
        }
        if let Err(e) = tmp.persist(dest) {
            let _ = std::fs::remove_file(&tmp_path);
            self.report.error(&format!(
                "rsync: [receiver] rename \"{}\" -> \"{}\": {}",
                full_path(&tmp_path),
                String::from_utf8_lossy(&self.entries[i].name),
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
            let _ = std::fs::remove_file(stale);
        }
        Ok(())
    }

    fn write_failed(&mut self, dest: &Path, e: &io::Error) -> i32 {
        self.report.error(&format!(
            "rsync: [receiver] write failed on \"{}\": {}",
            full_path(dest),
            os_error(e)
        ));
        exit::FILE_IO
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
        let _ = fsops::set_perms(dest, perms);
        if self.opts.times {
            let e = &self.entries[i];
            let _ = fsops::set_mtime(dest, e.mtime, e.mtime_nsec);
        }
    }

    /// `--backup`: moves the old file aside (`NAME~`, or into `--backup-dir`).
    /// `false` when the backup was refused (the caller then leaves the file alone).
    pub(super) fn make_backup(&mut self, dest: &Path) -> bool {
        self.backup_as(dest, false)
    }

    /// `--backup` with `--inplace`: the old file is copied aside (it is about to be
    /// overwritten where it is), keeping its mode and times.
    fn copy_backup(&mut self, dest: &Path) -> bool {
        self.backup_as(dest, true)
    }

    fn backup_as(&mut self, dest: &Path, copy: bool) -> bool {
        if self.opts.safe_links && self.is_unsafe_dest_symlink(dest) {
            // rsync drops an unsafe symlink rather than keep a backup of it.
            let _ = std::fs::remove_file(dest);
            return true;
        }
        let name = self.backup_name(dest);
        if let Some(link) = self.untrusted_symlink_in_backup_path(&name) {
            self.report.error(
                "refusing to follow a symlink owned by an untrusted user; use --insecure-links \
                 locally or \"insecure links = yes\" in a daemon module ONLY if every path \
                 component is trusted",
            );
            self.report.error(&format!(
                "rsync: [receiver] keep_backup failed: \"{}\" -> \"{}\": untrusted symlink {}",
                full_path(dest),
                name.display(),
                link.display()
            ));
            self.note(exit::FILE_IO);
            return false;
        }
        if let Some(parent) = name.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        // A directory already where the backup goes is replaced, as rsync does (a rename
        // onto it would fail and leave the deleted entry in place).
        let dest_is_dir = std::fs::symlink_metadata(dest).is_ok_and(|m| m.is_dir());
        if !dest_is_dir && std::fs::symlink_metadata(&name).is_ok_and(|m| m.is_dir()) {
            let _ = std::fs::remove_dir_all(&name);
        }
        let moved = if copy {
            let _ = std::fs::remove_file(&name);
            std::fs::copy(dest, &name).is_ok_and(|_| {
                if let Ok(md) = std::fs::metadata(dest) {
                    let _ = fsops::set_mtime(&name, md.mtime(), md.mtime_nsec() as u32);
                }
                true
            })
        } else {
            match std::fs::rename(dest, &name) {
                Ok(()) => true,
                // Another filesystem: copy, as rsync's robust_rename does.
                Err(e) if e.raw_os_error() == Some(libc::EXDEV) => copy_across(dest, &name),
                Err(_) => false,
            }
        };
        if moved && self.opts.info_backup() {
            let dir = self.dest_dir();
            let shown = |p: &Path| p.strip_prefix(&dir).unwrap_or(p).display().to_string();
            self.report
                .info(&format!("backed up {} to {}", shown(dest), shown(&name)));
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

    /// A symlink between the destination directory and a `--backup-dir` backup that belongs to
    /// neither root nor us: rsync refuses to follow it (someone else could aim it anywhere).
    fn untrusted_symlink_in_backup_path(&self, backup: &Path) -> Option<PathBuf> {
        self.opts.backup_dir.as_ref()?;
        let dir = self.dest_dir();
        let rel = backup.strip_prefix(&dir).ok()?;
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        let mut at = dir;
        for comp in rel.parent()?.components() {
            at.push(comp);
            match std::fs::symlink_metadata(&at) {
                Ok(md) if md.file_type().is_symlink() && md.uid() != 0 && md.uid() != euid => {
                    return Some(at);
                }
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
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
                    String::from_utf8_lossy(name),
                    os_error(&e)
                ));
                self.note(exit::PARTIAL);
            }
        }
    }

    pub(super) fn do_symlink(&mut self, i: usize, dest: &Path, existing: Option<Metadata>) {
        let name = self.entries[i].name.clone();
        let target = self.entries[i].link_target.clone().unwrap_or_default();
        if self.opts.safe_links && unsafe_symlink(&target, &name) {
            if self.opts.verbose > 0 {
                self.report.info(&format!(
                    "ignoring unsafe symlink \"{}\" -> \"{}\"",
                    full_path(dest),
                    String::from_utf8_lossy(&target)
                ));
            }
            return;
        }
        let mut suffix = b" -> ".to_vec();
        suffix.extend_from_slice(&target);
        let mut it = Itemize::new(b'c', b'L');
        let current = existing.as_ref().filter(|m| m.file_type().is_symlink());
        if let Some(md) = current {
            let same = std::fs::read_link(dest)
                .map(|t| t.as_os_str().as_bytes() == target.as_slice())
                .unwrap_or(false);
            if same {
                let mut it = Itemize::new(b'.', b'L');
                self.compare_attrs(i, md, &mut it, false);
                if !self.opts.dry_run {
                    self.apply_owner(i, dest, Some(md));
                    self.apply_mode_and_time(i, dest, Some(md));
                }
                self.report.item(&it, &name, &suffix);
                self.remove_source(i);
                return;
            }
            it.checksum = true;
            self.compare_attrs(i, md, &mut it, false);
            self.mark_untimed_change(FileKind::Symlink, &mut it);
        } else {
            if existing.is_some() && !self.remove_in_the_way(dest, i) {
                return;
            }
            it.is_new = true;
            self.stats.created[2] += 1;
        }
        if !self.opts.dry_run {
            if current.is_some() && self.opts.backup && !self.make_backup(dest) {
                return;
            }
            if let Err(e) = self.replace_with(dest, |tmp| {
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), tmp)
            }) {
                self.report.error(&format!(
                    "rsync: [generator] symlink \"{}\" -> \"{}\" failed: {}",
                    full_path(dest),
                    String::from_utf8_lossy(&target),
                    os_error(&e)
                ));
                self.note(exit::PARTIAL);
                return;
            }
            self.apply_owner(i, dest, None);
            self.apply_mode_and_time(i, dest, None);
        }
        self.report.item(&it, &name, &suffix);
        self.remove_source(i);
    }

    /// Creates an item under a temporary name next to `dest` and renames it over `dest`.
    fn replace_with(
        &self,
        dest: &Path,
        create: impl Fn(&Path) -> io::Result<()>,
    ) -> io::Result<()> {
        let base = dest.file_name().unwrap_or_default().as_bytes().to_vec();
        let dir = dest.parent().unwrap_or(Path::new("."));
        for attempt in 0..100u32 {
            let mut n = b".".to_vec();
            n.extend_from_slice(&base[..base.len().min(200)]);
            n.extend_from_slice(format!(".{}.{attempt}", std::process::id()).as_bytes());
            let tmp = dir.join(OsStr::from_bytes(&n));
            match create(&tmp) {
                Ok(()) => {
                    return std::fs::rename(&tmp, dest).inspect_err(|_| {
                        let _ = std::fs::remove_file(&tmp);
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::from(io::ErrorKind::AlreadyExists))
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
        if let Some(md) = &existing {
            let same_type = md.mode() & libc::S_IFMT == mode & libc::S_IFMT;
            let same_dev = letter == b'S' || md.rdev() == rdev;
            if same_type && same_dev {
                let mut it = Itemize::new(b'.', letter);
                self.compare_attrs(i, md, &mut it, false);
                if !self.opts.dry_run {
                    self.apply_owner(i, dest, Some(md));
                    self.apply_mode_and_time(i, dest, Some(md));
                }
                self.report.item(&it, &name, b"");
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
            if !self.remove_in_the_way(dest, i) {
                return;
            }
        } else {
            it.is_new = true;
        }
        if it.is_new {
            self.stats.created[super::kind_slot(kind)] += 1;
        }
        if !self.opts.dry_run {
            let perms = self.wanted_perms(i, None);
            let node_mode = (mode & libc::S_IFMT) | perms;
            if let Err(err) = self.replace_with(dest, |tmp| fsops::make_node(tmp, node_mode, rdev))
            {
                self.report.error(&format!(
                    "rsync: [generator] mknod \"{}\" failed: {}",
                    full_path(dest),
                    os_error(&err)
                ));
                self.note(exit::PARTIAL);
                return;
            }
            self.apply_owner(i, dest, None);
            self.apply_mode_and_time(i, dest, None);
        }
        self.report.item(&it, &name, b"");
        self.remove_source(i);
    }
}

/// Moves `from` to `to` on another filesystem: a regular file is copied, a symlink or special
/// file recreated (reading a FIFO or device would block or copy the wrong thing), then `from`
/// is removed.
fn copy_across(from: &Path, to: &Path) -> bool {
    let Ok(md) = std::fs::symlink_metadata(from) else {
        return false;
    };
    let copied = if md.is_file() {
        std::fs::copy(from, to).is_ok()
    } else if md.file_type().is_symlink() {
        std::fs::read_link(from).is_ok_and(|t| std::os::unix::fs::symlink(t, to).is_ok())
    } else if !md.is_dir() {
        fsops::make_node(to, md.mode(), md.rdev()).is_ok()
    } else {
        false
    };
    copied && std::fs::remove_file(from).is_ok()
}
