//! Comparing and applying permissions, ownership and times.

use super::{full_path, md_mtime, os_error, same_mtime, LocalTransfer};
use crate::chmod::apply_chmod;
use crate::itemize::Itemize;
use crate::report::exit;
use rtsync_tree::fsops;
use rtsync_tree::FileKind;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

impl LocalTransfer<'_> {
    /// The permission bits entry `i` should end up with, given what is there now (if anything).
    pub(super) fn wanted_perms(&self, i: usize, existing: Option<&Metadata>) -> u32 {
        let e = &self.entries[i];
        let source = apply_chmod(&self.opts.chmod, e.perms(), e.is_dir());
        if self.opts.perms {
            return source;
        }
        match existing {
            Some(md) if FileKind::from_mode(md.mode()) == Some(e.kind) => md.mode() & 0o7777,
            _ => {
                let mut p = source & !self.umask & 0o777;
                if self.opts.executability && e.kind == FileKind::Regular {
                    p = (p & !0o111) | (source & 0o111);
                }
                p
            }
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

    /// Fills the time/perms/owner/group columns for an existing item.
    pub(super) fn compare_attrs(&self, i: usize, md: &Metadata, it: &mut Itemize, _dir: bool) {
        let e = &self.entries[i];
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
            && md.mode() & 0o7777 != self.wanted_perms(i, Some(md))
        {
            it.perms = true;
        }
        if self.opts.owner && self.is_root && md.uid() != e.uid {
            it.owner = true;
        }
        if self.opts.group && md.gid() != e.gid {
            it.group = true;
        }
    }

    /// Sets owner and group where asked for and different.
    pub(super) fn apply_owner(&mut self, i: usize, path: &Path, md: Option<&Metadata>) {
        let e = &self.entries[i];
        let uid = if self.opts.owner && self.is_root && md.is_none_or(|m| m.uid() != e.uid) {
            e.uid
        } else {
            u32::MAX
        };
        let gid = if self.opts.group && md.is_none_or(|m| m.gid() != e.gid) {
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
        if kind != FileKind::Symlink {
            let perms = self.wanted_perms(i, md);
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
        if self.wants_times(kind)
            && md.is_none_or(|m| !same_mtime(self.opts.modify_window, md_mtime(m), mtime))
        {
            if let Err(err) = fsops::set_mtime(path, mtime.0, mtime.1) {
                self.report.error(&format!(
                    "rsync: [generator] failed to set times on \"{}\": {}",
                    full_path(path),
                    os_error(&err)
                ));
                self.note(exit::PARTIAL);
            }
        }
    }

    /// Directory permissions and times, once everything inside is written.
    pub(super) fn fix_directories(&mut self) {
        if self.wants_times(FileKind::Directory) && !self.opts.dry_run {
            for i in std::mem::take(&mut self.retouch) {
                let e = &self.entries[i];
                let _ = fsops::set_mtime(&self.dest_path(&e.name), e.mtime, e.mtime_nsec);
            }
        }
        let dirs = std::mem::take(&mut self.dir_fixups);
        for &(i, created) in dirs.iter().rev() {
            let path = self.dest_path(&self.entries[i].name);
            let md = std::fs::symlink_metadata(&path).ok();
            if md.as_ref().is_some_and(|m| m.is_dir()) {
                if created {
                    // A new directory gets the source's permissions (masked without -p).
                    let perms = self.wanted_perms(i, None);
                    if md.as_ref().is_some_and(|m| m.mode() & 0o7777 != perms) {
                        if let Err(err) = fsops::set_perms(&path, perms) {
                            self.report.error(&format!(
                                "rsync: [generator] chmod \"{}\" failed: {}",
                                full_path(&path),
                                os_error(&err)
                            ));
                            self.note(exit::PARTIAL);
                        }
                    }
                }
                self.apply_mode_and_time(i, &path, md.as_ref());
            }
        }
    }
}
