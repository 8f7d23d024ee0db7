//! `--compare-dest`, `--copy-dest` and `--link-dest` on the receiving side: an item missing
//! from the destination is looked for in the basis directories (graded as rsync's generator
//! does: 1 same type, 2 passes the quick check, 3 attributes match too).

use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rtsync_engine::AltDest;
use rtsync_tree::{FileEntry, FileKind};

use super::{is_current, Ctx};
use crate::local;
use crate::log::{itemize, Preserve};

pub(super) struct AltMatch {
    pub path: PathBuf,
    pub md: fs::Metadata,
    pub level: u8,
    /// In a daemon module, the candidate's directory held open: `path` is
    /// `/proc/self/fd/N/LEAF` through it, valid while this lives.
    pub pin: Option<Pin>,
}

/// A directory held open for the paths through it.
pub(super) type Pin = Arc<OwnedFd>;

/// The one place a basis candidate is looked up: `lstat` of DIR/NAME. In a daemon module
/// (unless `insecure links`), NAME's directory is opened beneath the basis directory held
/// open since the options were resolved (see `PullOptions::resolve_basis_dirs`) and the
/// candidate is named through it: a directory on the way swapped for a symlink out of the
/// module, then or later, is never followed; the leaf is only ever opened `O_NOFOLLOW`.
fn candidate(ctx: &Ctx<'_>, j: usize, name: &[u8]) -> Option<(PathBuf, fs::Metadata, Option<Pin>)> {
    if ctx.opts.basis_root.is_none() {
        let path = ctx.opts.basis_dirs[j].join(std::ffi::OsStr::from_bytes(name));
        let md = fs::symlink_metadata(&path).ok()?;
        return Some((path, md, None));
    }
    let base = ctx.opts.basis_pins.get(j)?.as_ref()?;
    let (parent, leaf) = match name.iter().rposition(|&c| c == b'/') {
        Some(i) => (&name[..i], &name[i + 1..]),
        None => (&b""[..], name),
    };
    let pin = if parent.is_empty() {
        base.clone()
    } else {
        let rel = Path::new(std::ffi::OsStr::from_bytes(parent));
        Arc::new(rtsync_oppath::open_dir_in_tree(base.as_fd(), rel).ok()?)
    };
    let path = PathBuf::from(format!("/proc/self/fd/{}", pin.as_raw_fd()))
        .join(std::ffi::OsStr::from_bytes(leaf));
    let md = fs::symlink_metadata(&path).ok()?;
    Some((path, md, Some(pin)))
}

fn preserve(ctx: &Ctx<'_>) -> Preserve {
    super::entry::preserve(ctx.opts)
}

/// `--link-dest`: whether a basis directory holds `name` as the very inode `leader` (the
/// group's leader as linked in place): stock's hard_link_check then links the member
/// without a line of its own, as an unchanged item.
pub(super) fn holds_leader(ctx: &Ctx<'_>, name: &[u8], leader: &fs::Metadata) -> bool {
    if ctx.opts.alt_dest != Some(AltDest::Link) {
        return false;
    }
    (0..ctx.opts.basis_dirs.len()).any(|j| {
        candidate(ctx, j, name)
            .is_some_and(|(_, md, _)| md.dev() == leader.dev() && md.ino() == leader.ino())
    })
}

/// Grades the candidates for `e`; the best one wins.
pub(super) fn find(ctx: &Ctx<'_>, e: &FileEntry) -> Option<AltMatch> {
    ctx.opts.alt_dest?;
    let mut best: Option<AltMatch> = None;
    for j in 0..ctx.opts.basis_dirs.len() {
        let Some((path, md, pin)) = candidate(ctx, j, &e.name) else {
            continue;
        };
        if FileKind::from_mode(md.mode()) != Some(e.kind) {
            continue;
        }
        let quick = match e.kind {
            FileKind::Regular => is_current(ctx, e, &md, &path),
            FileKind::Symlink => fs::read_link(&path).is_ok_and(|t| {
                t.as_os_str().as_bytes() == e.link_target.as_deref().unwrap_or_default()
            }),
            FileKind::BlockDevice | FileKind::CharDevice => md.rdev() == e.rdev,
            _ => true,
        };
        let mut level = 1;
        if quick {
            level = 2;
            let it = itemize(e, Some(&md), b'.', preserve(ctx));
            let time = it.time.is_some()
                && !(e.kind == FileKind::Directory && ctx.opts.attrs.omit_dir_times);
            if !time && !it.perms && !it.owner && !it.group {
                level = 3;
            }
        }
        if best.as_ref().is_none_or(|b| level > b.level) {
            best = Some(AltMatch {
                path,
                md,
                level,
                pin,
            });
        }
        if level == 3 {
            break;
        }
    }
    best
}

/// What became of a regular file.
pub(super) enum FileOutcome {
    None,
    /// Linked, copied or left out: the item line to show (if any).
    Done(Option<crate::log::Line>),
    /// Fetch it with this basis.
    Basis(AltMatch),
}

/// A regular file; `existing` is the destination's own regular file.
pub(super) fn regular(
    ctx: &Ctx<'_>,
    e: &FileEntry,
    dest: &Path,
    existing: Option<&fs::Metadata>,
) -> FileOutcome {
    let o = ctx.opts;
    let Some(kind) = o.alt_dest else {
        return FileOutcome::None;
    };
    if existing.is_some() && kind == AltDest::Copy {
        return FileOutcome::None;
    }
    let Some(m) = find(ctx, e) else {
        return FileOutcome::None;
    };
    let p = preserve(ctx);
    if m.level == 3 && kind != AltDest::Copy {
        if let Some(cur) = existing {
            if kind == AltDest::Link && cur.dev() == m.md.dev() && cur.ino() == m.md.ino() {
                return FileOutcome::None;
            }
            if !o.dry_run && fs::remove_file(dest).is_err() {
                return FileOutcome::None;
            }
        }
        if kind == AltDest::Link {
            if o.dry_run || fs::hard_link(&m.path, dest).is_ok() {
                // Linked to an identical file: as stock's generator, an item without a
                // significant change (shown with -ii, `NAME is uptodate` with -vv).
                let it = itemize(e, Some(&m.md), b'h', p);
                return FileOutcome::Done(Some(quiet_unless_changed(e, it)));
            }
        } else {
            let it = itemize(e, Some(&m.md), b'.', p);
            return FileOutcome::Done(Some(crate::log::line(e, it)));
        }
    } else if existing.is_some() {
        return FileOutcome::None;
    } else if m.level < 2 {
        return FileOutcome::Basis(m);
    }
    if !o.dry_run && copy_file(ctx, e, &m.path, dest).is_err() {
        return FileOutcome::None;
    }
    let it = itemize(e, Some(&m.md), b'c', p);
    FileOutcome::Done(Some(quiet_unless_changed(e, it)))
}

/// The line of an item made from its twin in a basis directory: when nothing but the way
/// it was made differs, no significant change for stock's generator (shown by -ii only).
pub(super) fn quiet_unless_changed(
    e: &FileEntry,
    it: rtsync_engine::itemize::Itemize,
) -> crate::log::Line {
    let mut rest = it;
    rest.update = b'.';
    if rest.has_changes() {
        return crate::log::line(e, it);
    }
    crate::log::Line::Linked(
        it,
        e.name.clone(),
        crate::log::suffix(e),
        Some(Box::new(crate::log::facts(e))),
    )
}

/// Copies a basis file into place through a temp file, with `e`'s attributes.
fn copy_file(ctx: &Ctx<'_>, e: &FileEntry, from: &Path, to: &Path) -> io::Result<()> {
    let dir = to.parent().unwrap_or(Path::new("."));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let base = to
        .file_name()
        .map(|n| n.as_bytes().to_vec())
        .unwrap_or_default();
    let mut tmp = rtsync_tree::fsops::TempFile::create_in(dir, &base)?;
    let mut src = crate::blocksum::open_nofollow(from)?;
    io::copy(&mut src, tmp.file())?;
    local::apply_attrs(tmp.path(), e, &ctx.opts.attrs, &ctx.ids, None, true)?;
    tmp.persist(to)
}

/// A directory missing from the destination: whether a basis directory has one.
pub(super) fn dir(ctx: &Ctx<'_>, e: &FileEntry) -> Option<fs::Metadata> {
    find(ctx, e).map(|m| m.md)
}

/// `--copy-dest`: a symlink, device or special file missing from the destination whose
/// twin in a basis directory matches: it is made as usual but, as stock's try_dests_non
/// copies it, its line shows only what differs from the twin (quiet when nothing does).
pub(super) fn copy_twin(ctx: &Ctx<'_>, e: &FileEntry) -> Option<fs::Metadata> {
    if ctx.opts.alt_dest != Some(AltDest::Copy) {
        return None;
    }
    find(ctx, e).filter(|m| m.level >= 3).map(|m| m.md)
}

/// A symlink, device or special file missing from the destination whose twin in a basis
/// directory matches only in part: stock's generator itemizes the new item against it
/// (`cLc…` for another target or device number — the `bool` — or just the attributes).
pub(super) fn partial_twin(ctx: &Ctx<'_>, e: &FileEntry) -> Option<(fs::Metadata, bool)> {
    find(ctx, e)
        .filter(|m| m.level < 3)
        .map(|m| (m.md, m.level == 1))
}

/// A symlink, device or special file missing from the destination: its line when it is
/// done with (hard-linked, or left out by `--compare-dest`), as stock's try_dests_non
/// reports it (`hD`/`.L` … with -ii, `NAME is uptodate` with -vv).
pub(super) fn other(ctx: &Ctx<'_>, e: &FileEntry, dest: &Path) -> Option<crate::log::Line> {
    let kind = ctx.opts.alt_dest?;
    let m = find(ctx, e).filter(|m| m.level >= 3)?;
    let p = preserve(ctx);
    match kind {
        AltDest::Compare => Some(quiet_unless_changed(e, itemize(e, Some(&m.md), b'.', p))),
        AltDest::Link if ctx.opts.dry_run || fs::hard_link(&m.path, dest).is_ok() => {
            Some(quiet_unless_changed(e, itemize(e, Some(&m.md), b'h', p)))
        }
        AltDest::Link | AltDest::Copy => None,
    }
}
