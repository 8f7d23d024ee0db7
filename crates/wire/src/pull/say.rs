//! The receiving side's per-file failures, worded and routed as stock's: `rsync: [ROLE]
//! WHAT "NAME": STRERROR (ERRNO)`, printed by a client, sent to the client (MSG_ERROR_XFER,
//! and logged) by a server; names shown as stock's `full_fname` shows them (the destination
//! directory's full path, or in a daemon module the path beneath the module and
//! ` (in MODULE)`). Also the attribute setting whose failures are reported that way.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::mpsc;

use rtsync_tree::{fsops, FileEntry, FileKind};

use super::{Ctx, Event};
use crate::local::AttrOptions;
use crate::mux::MsgTag;

/// How names appear in messages: what goes before a destination-relative name, and the
/// module suffix.
#[derive(Debug, Clone, Default)]
pub(super) struct Naming {
    /// The destination directory as shown, ending in `/` (empty at a module's top).
    prefix: String,
    /// A daemon module's root (full path) and name.
    module: Option<(String, String)>,
}

impl Naming {
    pub(super) fn new(dest_root: &Path, module: Option<&(std::path::PathBuf, String)>) -> Naming {
        let full = rtsync_engine::local::full_path(dest_root);
        let module =
            module.map(|(root, name)| (rtsync_engine::local::full_path(root), name.clone()));
        let prefix = match &module {
            Some((root, _)) if root != "/" => match full.strip_prefix(root.as_str()) {
                Some("") => String::new(),
                Some(rest) if rest.starts_with('/') => format!("{rest}/"),
                _ => format!("{full}/"),
            },
            _ if full == "/" => full,
            _ => format!("{full}/"),
        };
        Naming { prefix, module }
    }

    /// `"NAME"` (with ` (in MODULE)`) for a name relative to the destination directory.
    pub(super) fn name(&self, name: &[u8]) -> String {
        self.quoted(format!(
            "{}{}",
            self.prefix,
            rtsync_engine::report::lossless_text(name)
        ))
    }

    /// `"PATH"` for a local path (a temp file, a solo destination): made absolute, and
    /// beneath a module shown from the module's top.
    pub(super) fn path(&self, p: &Path) -> String {
        let mut full = rtsync_engine::local::full_path(p);
        if p.as_os_str().as_bytes().ends_with(b"/.") {
            full.push_str(if full == "/" { "." } else { "/." });
        }
        if let Some((root, _)) = self.module.as_ref().filter(|(r, _)| r != "/") {
            if let Some(rest) = full.strip_prefix(root.as_str()) {
                if rest.is_empty() {
                    full = ".".into();
                } else if let Some(r) = rest.strip_prefix('/').filter(|_| self.prefix.is_empty()) {
                    full = r.to_string();
                } else if rest.starts_with('/') {
                    full = rest.to_string();
                }
            }
        }
        self.quoted(full)
    }

    fn quoted(&self, shown: String) -> String {
        match &self.module {
            Some((_, m)) => format!("\"{shown}\" (in {m})"),
            None => format!("\"{shown}\""),
        }
    }
}

/// stock's rsyserr text: `rsync: [ROLE] WHAT: STRERROR (ERRNO)` and a newline.
pub(super) fn syserr(role: &str, what: &str, err: &io::Error) -> String {
    format!("rsync: [{role}] {what}: {}\n", crate::error::os_text(err))
}

impl Ctx<'_> {
    /// We are the client (messages are ours to print).
    pub(super) fn is_client(&self) -> bool {
        self.opts.peer_sends_stats
    }

    /// A message of the generator (`text` ends in a newline): printed by a client; a server
    /// queues it for the client (the generator sends it with its next write) and a daemon
    /// logs it.
    pub(super) fn gen_say(&self, tag: MsgTag, text: String) {
        if self.is_client() {
            say_locally(tag, &text);
            return;
        }
        self.log_line(&text);
        self.said
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((tag, text));
    }

    /// `--info=backup`: `backed up NAME to BACKUP`, both as seen from the destination
    /// directory (stock's receiver works there); from the receiver when `ev_tx` is given,
    /// else from the generator.
    pub(super) fn backed_up(&self, ev_tx: Option<&mpsc::Sender<Event>>, name: &[u8]) {
        let Some(b) = self.opts.backup.as_ref().filter(|_| self.opts.info_backup) else {
            return;
        };
        let to = b.path_for(self.dest, name);
        let root = self.dest.root();
        let to = match to.strip_prefix(&root) {
            Ok(rel) if root != Path::new(".") || !to.is_absolute() => rel,
            _ => to.as_path(),
        };
        // (A single file received under another name is named by its local name.)
        let shown = match self.dest {
            crate::local::Dest::Solo(p) => p.file_name().unwrap_or_default().to_string_lossy(),
            _ => rtsync_engine::report::lossless_text(name),
        };
        let text = format!("backed up {shown} to {}\n", to.display());
        match ev_tx {
            Some(tx) => recv_say(self, tx, MsgTag::Info, text),
            None => self.gen_say(MsgTag::Info, text),
        }
    }

    /// A per-file failure of the generator (stock's FERROR_XFER: the exit code becomes 23).
    pub(super) fn gen_error(&self, text: String) {
        self.gen_say(MsgTag::ErrorXfer, text);
    }

    /// A daemon's log gets the messages it sends its client, as stock's does.
    pub(super) fn log_line(&self, text: &str) {
        if let Some(log) = &self.opts.log {
            for line in text.lines() {
                (log.0)(line);
            }
        }
    }

    /// The messages the generator queued, taken for sending.
    pub(super) fn take_said(&self) -> Vec<(MsgTag, String)> {
        std::mem::take(&mut *self.said.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// A message printed where stock's client prints it (errors and warnings on stderr).
fn say_locally(tag: MsgTag, text: &str) {
    use std::io::Write;
    // (Escaped as stock's client writes a message: what the locale cannot show, control
    // characters, and a backslash that would read as an escape.)
    let shown = rtsync_engine::report::printable(text);
    if matches!(tag, MsgTag::Info) {
        let mut out = io::stdout().lock();
        let _ = out.write_all(&shown);
        let _ = out.flush();
    } else {
        let _ = io::stderr().lock().write_all(&shown);
    }
}

/// A message of the receiver: printed by a client, passed to the generator (which sends it
/// to the client) by a server.
pub(super) fn recv_say(ctx: &Ctx<'_>, ev_tx: &mpsc::Sender<Event>, tag: MsgTag, text: String) {
    if ctx.is_client() {
        say_locally(tag, &text);
    } else {
        ctx.log_line(&text);
        let _ = ev_tx.send(Event::Message(tag, text));
    }
}

/// The permission bits an entry gets here (stock's dest_mode): the sender's with `-p`;
/// without, an existing item keeps its own (`-E` adjusting execute bits of a file) and a
/// new one gets the sender's less the umask.
pub(super) fn dest_perms(e: &FileEntry, o: &AttrOptions, existing: Option<u32>) -> u32 {
    if o.perms {
        return e.perms();
    }
    match existing {
        Some(old) => {
            let mut p = old & 0o7777;
            if o.executability && e.kind == FileKind::Regular {
                if e.perms() & 0o111 == 0 {
                    p &= !0o111;
                } else if old & 0o111 == 0 {
                    p |= (p & 0o444) >> 2;
                }
            }
            p
        }
        None => e.perms() & !o.umask & 0o777,
    }
}

/// [`dest_perms`] for an item made in `dir`: a new one gets the sender's bits less those
/// the directory's default ACL (if it has one, else the umask) leaves out.
pub(super) fn dest_perms_in(
    e: &FileEntry,
    o: &AttrOptions,
    existing: Option<u32>,
    dir: &Path,
) -> u32 {
    if o.perms || existing.is_some() {
        return dest_perms(e, o, existing);
    }
    e.perms() & rtsync_tree::acl::default_perms_for_dir(dir, o.umask) & 0o777
}

/// Sets owner, times and permissions of `path` as stock's set_file_attrs does: only what
/// differs from `md` (what is there), in that order, stopping at the first failure, whose
/// message (for `role`, naming the item `shown`) is returned. `perms` are the bits it should
/// end up with; `accurate` compares times to the nanosecond (a file just written).
#[allow(clippy::too_many_arguments)]
pub(super) fn set_attrs(
    path: &Path,
    shown: &str,
    role: &str,
    e: &FileEntry,
    o: &AttrOptions,
    md: &fs::Metadata,
    perms: u32,
    accurate: bool,
) -> Result<(), String> {
    if o.fake_super {
        return set_fake_attrs(path, shown, role, e, o, md, perms, accurate);
    }
    let mut mode = md.mode();
    let change_uid = o.owner && o.am_root && md.uid() != e.uid;
    let change_gid =
        o.group && md.gid() != e.gid && rtsync_engine::idmap::may_give_group(e.gid, o.am_root);
    if change_uid || change_gid {
        let uid = if change_uid { e.uid } else { u32::MAX };
        let gid = if change_gid { e.gid } else { u32::MAX };
        if let Err(err) = fsops::set_owner(path, uid, gid) {
            let what = if change_uid { "chown" } else { "chgrp" };
            return Err(syserr(role, &format!("{what} {shown} failed"), &err));
        }
        if mode & (libc::S_ISUID | libc::S_ISGID) != 0 {
            // A chown clears set-id bits: compare with what is there now.
            mode = fs::symlink_metadata(path).map_or(mode, |m| m.mode());
        }
    }
    set_entry_times(path, shown, role, e, o, md, accurate)?;
    if let Some(acl) = e
        .acl
        .as_deref()
        .filter(|_| o.acls && e.kind != FileKind::Symlink)
    {
        // `-A`: the ACL first (it may set the permission bits too), then the chmod of what
        // still differs.
        let want = (e.mode & libc::S_IFMT) | (perms & 0o7777);
        match rtsync_tree::acl::apply(path, acl, want, mode) {
            Ok(true) => mode = fs::symlink_metadata(path).map_or(mode, |m| m.mode()),
            Ok(false) => {}
            Err((what, err)) => {
                let what = format!(
                    "set_acl: acl_set_file_at({}, {})",
                    shown.trim_matches('"'),
                    rtsync_tree::acl::failure_name(what)
                );
                return Err(syserr(role, &what, &err));
            }
        }
    }
    if e.kind != FileKind::Symlink && mode & 0o7777 != perms & 0o7777 {
        if let Err(err) = fsops::set_perms(path, perms) {
            return Err(syserr(
                role,
                &format!("failed to set permissions on {shown}"),
                &err,
            ));
        }
    }
    Ok(())
}

/// Sets `e`'s modification time (`-t`, unless omitted for its kind or already right) and
/// access time (`-U`: whole seconds, always set on a file just written) on `path`.
fn set_entry_times(
    path: &Path,
    shown: &str,
    role: &str,
    e: &FileEntry,
    o: &AttrOptions,
    md: &fs::Metadata,
    accurate: bool,
) -> Result<(), String> {
    let skip_time = match e.kind {
        FileKind::Directory => o.omit_dir_times,
        FileKind::Symlink => o.omit_link_times,
        _ => false,
    };
    // (A file just written gets its exact time; anything else within --modify-window.)
    let same = if accurate {
        md.mtime() == e.mtime && md.mtime_nsec() as u32 == e.mtime_nsec
    } else {
        crate::local::same_mtime(o.modify_window, md, e)
    };
    let mtime = (o.times && !skip_time && !same).then_some((e.mtime, e.mtime_nsec));
    // `-U`: whole seconds, always set on a file just written.
    let atime = (o.atimes
        && !skip_time
        && e.kind != FileKind::Directory
        && (accurate || md.atime() != e.atime))
        .then_some(e.atime);
    if mtime.is_some() || atime.is_some() {
        if let Err(err) = fsops::set_times(path, mtime, atime) {
            return Err(syserr(
                role,
                &format!("failed to set times on {shown}"),
                &err,
            ));
        }
    }
    Ok(())
}

/// `--fake-super`: what `%stat` records for `e` at an item that has `md` (the type,
/// `perms`, the device number, and the owner and group where preserved, else its own).
pub(super) fn store_fake(
    path: &Path,
    e: &FileEntry,
    o: &AttrOptions,
    md: &fs::Metadata,
    perms: u32,
) -> std::io::Result<()> {
    let uid = if o.owner { e.uid } else { md.uid() };
    let gid = if o.group { e.gid } else { md.gid() };
    let mode = (e.mode & libc::S_IFMT) | (perms & 0o7777);
    rtsync_tree::fake::store_stat(path, mode, e.rdev, uid, gid)
}

/// [`set_attrs`] for a `--fake-super` receiver: times as usual, then the ACLs kept in
/// `%aacl`/`%dacl` and the rest recorded in `%stat` (stock's set_stat_xattr) instead of a
/// chown and chmod.
#[allow(clippy::too_many_arguments)]
fn set_fake_attrs(
    path: &Path,
    shown: &str,
    role: &str,
    e: &FileEntry,
    o: &AttrOptions,
    md: &fs::Metadata,
    perms: u32,
    accurate: bool,
) -> Result<(), String> {
    set_entry_times(path, shown, role, e, o, md, accurate)?;
    let perms = if e.kind == FileKind::Symlink {
        e.perms()
    } else {
        perms
    };
    if let Some(acl) = e
        .acl
        .as_deref()
        .filter(|_| o.acls && e.kind != FileKind::Symlink)
    {
        let want = (e.mode & libc::S_IFMT) | (perms & 0o7777);
        if let Err(err) = rtsync_tree::fake::store_acl(path, acl, want) {
            let what = format!("set_xattr_acl: lsetxattr({})", shown.trim_matches('"'));
            return Err(syserr(role, &what, &err));
        }
    }
    if let Err(err) = store_fake(path, e, o, md, perms) {
        return Err(syserr(
            role,
            &format!("failed to write xattr user.rsync.%stat for {shown}"),
            &err,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_as_stock_full_fname() {
        let plain = Naming::new(Path::new("/tmp/d/"), None);
        assert_eq!(plain.name(b"ro/.f.XXXXXX"), "\"/tmp/d/ro/.f.XXXXXX\"");
        assert_eq!(plain.name(b"."), "\"/tmp/d/.\"");
        let m = (std::path::PathBuf::from("/srv/m"), "mod".to_string());
        let top = Naming::new(Path::new("/srv/m/."), Some(&m));
        assert_eq!(top.name(b"ro"), "\"ro\" (in mod)");
        assert_eq!(top.name(b"."), "\".\" (in mod)");
        let sub = Naming::new(Path::new("/srv/m/sub"), Some(&m));
        assert_eq!(sub.name(b"."), "\"/sub/.\" (in mod)");
        assert_eq!(
            sub.path(Path::new("/srv/m/sub/.x.AbCdEf")),
            "\"/sub/.x.AbCdEf\" (in mod)"
        );
        assert_eq!(top.path(Path::new("/srv/m/a/.x.1")), "\"a/.x.1\" (in mod)");
    }

    #[test]
    fn rsyserr_wording() {
        let e = io::Error::from_raw_os_error(libc::EPERM);
        assert_eq!(
            syserr("generator", "failed to modify permissions on \"x\"", &e),
            "rsync: [generator] failed to modify permissions on \"x\": Operation not permitted (1)\n"
        );
    }
}
