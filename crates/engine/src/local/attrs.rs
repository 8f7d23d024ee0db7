//! Comparing and applying permissions, ownership and times.

use super::{full_path, md_mtime, os_error, same_mtime, LocalTransfer};
use crate::chmod::apply_chmod;
use crate::itemize::Itemize;
use crate::report::exit;
use rtsync_tree::fsops;
use rtsync_tree::xattr;
use rtsync_tree::{FileEntry, FileKind};
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

impl LocalTransfer<'_> {
    /// The permission bits entry `i` should end up with, given what is there now (if anything).
    pub(super) fn wanted_perms(&self, i: usize, existing: Option<&Metadata>) -> u32 {
        self.wanted_perms_for(&self.entries[i], existing)
    }

    /// [`Self::wanted_perms`] for an entry held elsewhere.
    pub(super) fn wanted_perms_for(&self, e: &FileEntry, existing: Option<&Metadata>) -> u32 {
        let source = apply_chmod(&self.opts.chmod, e.perms(), e.is_dir(), self.umask);
        if self.opts.perms {
            return source;
        }
        // (A device written into with --write-devices is the existing file.)
        let written_device = |md: &Metadata| {
            self.opts.write_devices
                && e.kind == FileKind::Regular
                && matches!(
                    FileKind::from_mode(md.mode()),
                    Some(FileKind::CharDevice | FileKind::BlockDevice)
                )
        };
        let existing = existing.map(|md| {
            (
                self.seen(&self.dest_path(&e.name), md).mode,
                written_device(md),
            )
        });
        match existing {
            Some((mode, device)) if FileKind::from_mode(mode) == Some(e.kind) || device => {
                let mut p = mode & 0o7777;
                // -E on an existing file: execute off if the source has none, else granted
                // to whoever may read, unless it is executable already (rsync's dest_mode).
                if self.opts.executability && e.kind == FileKind::Regular {
                    if source & 0o111 == 0 {
                        p &= !0o111;
                    } else if p & 0o111 == 0 {
                        p |= (p & 0o444) >> 2;
                    }
                }
                p
            }
            _ => {
                // The destination directory's default ACL, if any, stands in for the umask.
                let dir = self.dest_path(&e.name);
                let dir = dir.parent().unwrap_or(Path::new("."));
                let dflt = rtsync_tree::acl::default_perms_for_dir(dir, self.umask);
                let mut p = source & dflt & 0o777;
                if self.opts.executability && e.kind == FileKind::Regular {
                    p = (p & !0o111) | (source & 0o111);
                }
                p
            }
        }
    }

    /// An existing item replaced in place (a symlink's new target, a device's new number, a
    /// hard link over a file) whose time is not preserved: rsync reports its time as set,
    /// `T` without `-t` (`t` when only `--omit-link-times`/`-O` leave this one out).
    pub(super) fn mark_untimed_change(&self, kind: FileKind, it: &mut Itemize) {
        if !self.wants_times(kind) {
            it.time = Some(if self.opts.times { b't' } else { b'T' });
        }
    }

    fn wants_times(&self, kind: FileKind) -> bool {
        self.opts.times
            && match kind {
                FileKind::Directory => !self.opts.omit_dir_times,
                FileKind::Symlink => !self.opts.omit_link_times,
                _ => true,
            }
    }

    /// `-U` applies to this kind (not directories; not symlinks under `--omit-link-times`).
    fn wants_atime(&self, kind: FileKind) -> bool {
        self.opts.atimes > 0
            && match kind {
                FileKind::Directory => false,
                FileKind::Symlink => !self.opts.omit_link_times,
                _ => true,
            }
    }

    /// Fills the time/perms/owner/group columns for an existing item.
    pub(super) fn compare_attrs(&self, i: usize, md: &Metadata, it: &mut Itemize, _dir: bool) {
        self.compare_entry_attrs(&self.entries[i], md, it);
    }

    /// [`Self::compare_attrs`] for an entry held elsewhere.
    pub(super) fn compare_entry_attrs(&self, e: &FileEntry, md: &Metadata, it: &mut Itemize) {
        self.compare_entry_attrs_at(e, &self.dest_path(&e.name), md, it);
    }

    /// [`Self::compare_entry_attrs`] for the item at `path` (a basis directory's).
    pub(super) fn compare_entry_attrs_at(
        &self,
        e: &FileEntry,
        path: &std::path::Path,
        md: &Metadata,
        it: &mut Itemize,
    ) {
        let seen = self.seen(path, md);
        if self.wants_times(e.kind)
            && !same_mtime(
                self.opts.modify_window,
                md_mtime(md),
                (e.mtime, e.mtime_nsec),
            )
        {
            it.time = Some(b't');
        }
        if e.kind != FileKind::Symlink
            && self.opts.perms
            && seen.mode & 0o7777 != self.wanted_perms_for(e, Some(md))
        {
            it.perms = true;
        }
        if !self.opts.perms
            && self.opts.executability
            && e.kind == FileKind::Regular
            && (seen.mode & 0o111 != 0) != (e.perms() & 0o111 != 0)
        {
            it.perms = true;
        }
        if self.opts.owner && self.is_root && seen.uid != e.uid {
            it.owner = true;
        }
        if self.acl_differs(e, md) {
            it.acl = true;
        }
        if self.opts.group && seen.gid != e.gid && crate::idmap::may_give_group(e.gid, self.is_root)
        {
            it.group = true;
        }
        if self.opts.atimes > 0
            && !matches!(e.kind, FileKind::Directory | FileKind::Symlink)
            && md.atime() != e.atime
        {
            it.atime = true;
        }
        if let Some(rules) = self.recv_xattr_rules() {
            it.xattr = xattr_diff(&rules, e, &self.dest_path(&e.name));
        }
    }

    /// `-A`: whether the destination item's ACLs differ from the source entry's, judged as
    /// a receiver judges what the sender sent.
    fn acl_differs(&self, e: &FileEntry, md: &Metadata) -> bool {
        let Some(acl) = e.acl.as_deref().filter(|_| self.opts.acls) else {
            return false;
        };
        if e.kind == FileKind::Symlink || md.file_type().is_symlink() {
            return false;
        }
        let path = self.dest_path(&e.name);
        let have = self.dest_acl(&path, md);
        let want = rtsync_tree::acl::as_received(acl, e.mode);
        let mode = (e.mode & libc::S_IFMT) | self.wanted_perms_for(e, Some(md));
        rtsync_tree::acl::differs(&have, &want, mode)
    }

    /// The ACLs a destination item has (`--fake-super`: as stored in its xattrs).
    fn dest_acl(&self, path: &Path, md: &Metadata) -> rtsync_tree::acl::EntryAcl {
        if self.fake() {
            return rtsync_tree::fake::read_acl(path, self.seen(path, md).mode);
        }
        rtsync_tree::acl::read_here(path, md.mode())
            .unwrap_or_else(|_| rtsync_tree::acl::EntryAcl::plain(md.mode()))
    }

    /// rsync sets an up-to-date file's attributes before itemizing it: when `-A` rewrites
    /// its access ACL, that already gives it the new permission bits, so `p` is judged
    /// against the mode it has then.
    pub(super) fn settle_acl_perms(&self, i: usize, md: &Metadata, it: &mut Itemize) {
        let e = &self.entries[i];
        let Some(acl) = e
            .acl
            .as_deref()
            .filter(|_| self.opts.acls && it.acl && !self.opts.dry_run)
        else {
            return;
        };
        if self.fake() {
            // (The real mode is not what the ACL changes.)
            return;
        }
        let path = self.dest_path(&e.name);
        let have = self.dest_acl(&path, md);
        let want = rtsync_tree::acl::as_received(acl, e.mode);
        let perms = self.wanted_perms_for(e, Some(md));
        let mode = (e.mode & libc::S_IFMT) | perms;
        if let Some(after) = rtsync_tree::acl::mode_after_access(&have, &want, mode, md.mode()) {
            it.perms = after & 0o7777 != perms;
        }
    }

    /// `-A`: gives `path` the entry's ACLs (before its permissions are set, as rsync does).
    pub(super) fn apply_acl(&mut self, e: &FileEntry, path: &Path, perms: u32) {
        let Some(acl) = e.acl.as_deref().filter(|_| self.opts.acls) else {
            return;
        };
        if e.kind == FileKind::Symlink || self.opts.dry_run {
            return;
        }
        let Ok(md) = std::fs::symlink_metadata(path) else {
            return;
        };
        if md.file_type().is_symlink() {
            return;
        }
        let want = rtsync_tree::acl::as_received(acl, e.mode);
        let mode = (e.mode & libc::S_IFMT) | perms;
        if self.fake() {
            if let Err(err) = rtsync_tree::fake::store_acl(path, &want, mode) {
                self.report.error(&format!(
                    "rsync: [receiver] set_xattr_acl: lsetxattr(\"{}\") failed: {}",
                    full_path(path),
                    os_error(&err)
                ));
                self.note(exit::PARTIAL);
            }
            return;
        }
        if let Err((what, err)) = rtsync_tree::acl::apply(path, &want, mode, md.mode()) {
            self.report.error(&format!(
                "rsync: [receiver] set_acl: acl_set_file_at({}, {}): {}",
                path.display(),
                rtsync_tree::acl::failure_name(what),
                os_error(&err)
            ));
            self.note(exit::PARTIAL);
        }
    }

    /// Sets owner and group where asked for and different.
    pub(super) fn apply_owner(&mut self, i: usize, path: &Path, md: Option<&Metadata>) {
        if let Some(rules) = self.recv_xattr_rules() {
            let e = &self.entries[i];
            let want = xattr::received(e.xattrs.as_deref().map_or(&[][..], |v| v), &rules);
            let errors =
                xattr::apply_beneath(&self.dest_root, path, &want, None, &rules, |_| [0; 16]);
            for err in errors {
                self.report
                    .error(&err.render(&format!("\"{}\"", full_path(path)), os_error));
                self.note(exit::PARTIAL);
            }
        }
        if self.fake() {
            // Recorded in `%stat` with the permissions.
            return;
        }
        let e = &self.entries[i];
        let uid = if self.opts.owner && self.is_root && md.is_none_or(|m| m.uid() != e.uid) {
            e.uid
        } else {
            u32::MAX
        };
        let gid = if self.opts.group
            && md.is_none_or(|m| m.gid() != e.gid)
            && crate::idmap::may_give_group(e.gid, self.is_root)
        {
            e.gid
        } else {
            u32::MAX
        };
        if uid == u32::MAX && gid == u32::MAX {
            return;
        }
        if let Err(err) = fsops::set_owner(path, uid, gid) {
            if self.is_root || uid != u32::MAX {
                self.report.error(&format!(
                    "rsync: [generator] chown \"{}\" failed: {}",
                    full_path(path),
                    os_error(&err)
                ));
                self.note(exit::PARTIAL);
            }
        }
    }

    /// Permissions and mtime of an item that already exists in place.
    pub(super) fn apply_mode_and_time(&mut self, i: usize, path: &Path, md: Option<&Metadata>) {
        let e = &self.entries[i];
        let kind = e.kind;
        let mtime = (e.mtime, e.mtime_nsec);
        let source_atime = e.atime;
        if self.fake() {
            let perms = if kind == FileKind::Symlink {
                e.perms()
            } else {
                self.wanted_perms(i, md)
            };
            let e = self.entries[i].clone();
            if kind != FileKind::Symlink {
                self.apply_acl(&e, path, perms);
            }
            self.store_fake_stat(&e, path, perms);
        } else if kind != FileKind::Symlink {
            let perms = self.wanted_perms(i, md);
            self.apply_acl(&self.entries[i].clone(), path, perms);
            if md.is_none_or(|m| m.mode() & 0o7777 != perms) {
                if let Err(err) = fsops::set_perms(path, perms) {
                    self.report.error(&format!(
                        "rsync: [generator] chmod \"{}\" failed: {}",
                        full_path(path),
                        os_error(&err)
                    ));
                    self.note(exit::PARTIAL);
                }
            }
        }
        let mtime = (self.wants_times(kind)
            && md.is_none_or(|m| !same_mtime(self.opts.modify_window, md_mtime(m), mtime)))
        .then_some(mtime);
        let atime = (self.wants_atime(kind) && md.is_none_or(|m| m.atime() != source_atime))
            .then_some(source_atime);
        if mtime.is_some() || atime.is_some() {
            if let Err(err) = fsops::set_times(path, mtime, atime) {
                self.report.error(&format!(
                    "rsync: [generator] failed to set times on \"{}\": {}",
                    full_path(path),
                    os_error(&err)
                ));
                self.note(exit::PARTIAL);
            }
        }
    }

    /// A directory's times and permissions at its turn, as stock's generator sets them
    /// (only what differs; the first failure reported and the rest left); then, for a user
    /// other than root, made writable and searchable for us while its contents are written
    /// (`failed to modify permissions` if it cannot be). They are put back, silently, once
    /// the contents are in place ([`Self::fix_directories`]).
    /// Returns the permissions set (what the end puts back), if it got that far.
    pub(super) fn set_dir_attrs_now(
        &mut self,
        i: usize,
        path: &Path,
        created: bool,
    ) -> Option<u32> {
        let md = std::fs::symlink_metadata(path).ok()?;
        if !md.is_dir() {
            // (A kept symlink to a directory: the end takes care of it.)
            return None;
        }
        let e = &self.entries[i];
        let mut shown = full_path(path);
        if e.name == b"." {
            shown.push_str(if shown == "/" { "." } else { "/." });
        }
        let mut perms = self.wanted_perms_for(e, (!created).then_some(&md));
        if created && !self.opts.perms {
            perms |= md.mode() & 0o2000;
        }
        let mtime = (e.mtime, e.mtime_nsec);
        let failed = if self.wants_times(FileKind::Directory)
            && !same_mtime(self.opts.modify_window, md_mtime(&md), mtime)
        {
            fsops::set_mtime(path, mtime.0, mtime.1)
                .err()
                .map(|err| ("failed to set times on", err))
        } else {
            None
        };
        if failed.is_none() {
            self.apply_acl(&e.clone(), path, perms);
        }
        if self.fake() {
            if failed.is_none() {
                self.store_fake_stat(&self.entries[i].clone(), path, perms);
            }
            return Some(perms);
        }
        let failed = failed.or_else(|| {
            (md.mode() & 0o7777 != perms)
                .then(|| fsops::set_perms(path, perms).err())
                .flatten()
                .map(|err| ("failed to set permissions on", err))
        });
        if let Some((what, err)) = failed {
            self.report.error(&format!(
                "rsync: [generator] {what} \"{shown}\": {}",
                os_error(&err)
            ));
            self.note(exit::PARTIAL);
        }
        if !self.is_root && perms & 0o700 != 0o700 {
            if let Err(err) = fsops::set_perms(path, perms | 0o700) {
                self.report.error(&format!(
                    "rsync: [generator] failed to modify permissions on \"{shown}\": {}",
                    os_error(&err)
                ));
                self.note(exit::PARTIAL);
            }
        }
        Some(perms)
    }

    /// Remembers a directory whose permissions and times are set once its contents are in
    /// place (at the end, as rsync does: hard links made late can still touch it).
    pub(super) fn defer_dir_fixup(&mut self, i: usize, created: bool, perms: Option<u32>) {
        self.dir_fixups.push(DirFixup {
            path: self.dest_path(&self.entries[i].name),
            entry: self.entries[i].clone(),
            created,
            perms,
        });
    }

    /// Directory permissions and times, once everything inside is written.
    pub(super) fn fix_directories(&mut self) {
        if self.wants_times(FileKind::Directory) && !self.opts.dry_run {
            for (path, mtime, nsec) in std::mem::take(&mut self.retouch) {
                let _ = fsops::set_mtime(&path, mtime, nsec);
            }
        }
        let dirs = std::mem::take(&mut self.dir_fixups);
        for fix in dirs.iter().rev() {
            let mut md = std::fs::symlink_metadata(&fix.path).ok();
            if self.opts.keep_dirlinks && md.as_ref().is_some_and(|m| m.file_type().is_symlink()) {
                // -K: the kept symlink's directory gets the permissions, the link the time.
                md = std::fs::metadata(&fix.path).ok();
            }
            let Some(md) = md.filter(|m| m.is_dir()) else {
                continue;
            };
            let md = match std::fs::symlink_metadata(&fix.path) {
                Ok(l) if l.file_type().is_symlink() => {
                    let perms = self.wanted_perms_for(&fix.entry, Some(&md));
                    if md.mode() & 0o7777 != perms {
                        let _ = fsops::set_perms(&fix.path, perms);
                    }
                    l
                }
                _ => md,
            };
            // A new directory gets the source's permissions (masked without -p); an existing
            // one keeps its own unless -p.
            let mut perms = self.wanted_perms_for(&fix.entry, (!fix.created).then_some(&md));
            if let Some(p) = fix.perms {
                // Decided when it was handled (it may have been made writable since).
                perms = p;
            } else if fix.created && !self.opts.perms {
                // The setgid bit a new directory inherits from its parent stays, as with
                // rsync (which leaves a new directory's mode to mkdir without -p).
                perms |= md.mode() & 0o2000;
            }
            // (Failures were reported when the directory was handled: silent now, as
            // stock's touch_up_dirs.)
            if self.fake() {
                let _ = rtsync_tree::fake::store_stat(
                    &fix.path,
                    libc::S_IFDIR | perms,
                    0,
                    self.fake_owner(&fix.entry, &md).0,
                    self.fake_owner(&fix.entry, &md).1,
                );
            } else if md.mode() & 0o7777 != perms {
                let _ = fsops::set_perms(&fix.path, perms);
            }
            let e = &fix.entry;
            if self.wants_times(FileKind::Directory)
                && !same_mtime(
                    self.opts.modify_window,
                    md_mtime(&md),
                    (e.mtime, e.mtime_nsec),
                )
            {
                let _ = fsops::set_mtime(&fix.path, e.mtime, e.mtime_nsec);
            }
        }
    }
}

impl LocalTransfer<'_> {
    /// `--fake-super`: the owner and group `%stat` records for `e` at an item that has `md`
    /// (its own where they are not preserved).
    fn fake_owner(&self, e: &FileEntry, md: &Metadata) -> (u32, u32) {
        (
            if self.opts.owner { e.uid } else { md.uid() },
            if self.opts.group { e.gid } else { md.gid() },
        )
    }

    /// `--fake-super`: records `e`'s type, `perms`, device number and owner at `path`
    /// instead of setting them (stock's set_stat_xattr).
    pub(super) fn store_fake_stat(&mut self, e: &FileEntry, path: &Path, perms: u32) {
        if self.opts.dry_run {
            return;
        }
        let Ok(md) = std::fs::symlink_metadata(path) else {
            return;
        };
        let (uid, gid) = self.fake_owner(e, &md);
        let mode = (e.mode & libc::S_IFMT) | (perms & 0o7777);
        if let Err(err) = rtsync_tree::fake::store_stat(path, mode, e.rdev, uid, gid) {
            self.report.error(&format!(
                "rsync: [receiver] failed to write xattr user.rsync.%stat for \"{}\": {}",
                full_path(path),
                os_error(&err)
            ));
            self.note(exit::PARTIAL);
        }
    }
}

/// A directory to finish at the end of the run.
pub(super) struct DirFixup {
    path: std::path::PathBuf,
    entry: FileEntry,
    /// Made by this run.
    created: bool,
    /// The permissions it was given when handled.
    perms: Option<u32>,
}

/// `-X`: whether the destination's attributes differ from the source's (a source kind that
/// carries none, e.g. a symlink without `-l`, compares as an empty list).
pub(super) fn xattr_diff(rules: &xattr::XattrRules, e: &FileEntry, dest: &Path) -> bool {
    let want = xattr::received(e.xattrs.as_deref().map_or(&[][..], |v| v), rules);
    let have = xattr::read_dest(dest, rules).unwrap_or_default();
    xattr::diff(&want, &have, |_| [0; 16]).0
}
