//! POSIX ACLs (`-A`): the model rsync transmits and the Linux side, read and written through
//! the `system.posix_acl_access` / `system.posix_acl_default` extended attributes (no libacl).
//!
//! The kernel's xattr form is a little-endian `u32` version (2) followed by 8-byte entries
//! `tag: u16, perm: u16, id: u32`, sorted by tag and, for named entries, by id.
//!
//! [`Acl`] is rsync's view of one ACL: the four "object" entries (each possibly absent) and the
//! named user/group entries. What travels is condensed (the bits the mode carries are left
//! out, [`Acl::strip_perms`]); a receiver fills the mask back in ([`Acl::fill_mask`]).

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const XATTR_ACCESS: &[u8] = b"system.posix_acl_access\0";
const XATTR_DEFAULT: &[u8] = b"system.posix_acl_default\0";
const ACL_VERSION: u32 = 2;
const TAG_USER_OBJ: u16 = 0x01;
const TAG_USER: u16 = 0x02;
const TAG_GROUP_OBJ: u16 = 0x04;
const TAG_GROUP: u16 = 0x08;
const TAG_MASK: u16 = 0x10;
const TAG_OTHER: u16 = 0x20;
const UNDEFINED_ID: u32 = u32::MAX;
/// Largest ACL blob we read (the kernel caps an xattr value at 64 KiB).
const MAX_BLOB: usize = 65536;

/// A named entry: a user (`user`) or group id with its `rwx` bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AclName {
    pub id: u32,
    pub perm: u8,
    pub user: bool,
}

/// One ACL as rsync sees it; `None` marks an absent object entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Acl {
    pub user_obj: Option<u8>,
    pub group_obj: Option<u8>,
    pub mask: Option<u8>,
    pub other: Option<u8>,
    /// Named users, then named groups, each in the order read.
    pub names: Vec<AclName>,
}

/// The ACLs of one file-list entry: its access ACL and, for a directory, its default ACL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct EntryAcl {
    pub access: Acl,
    pub default: Option<Acl>,
}

impl EntryAcl {
    /// What an item without extended ACLs reads as: the mode's classes (and, for a
    /// directory, no default ACL).
    pub fn plain(mode: u32) -> EntryAcl {
        EntryAcl {
            access: Acl::from_mode(mode),
            default: (mode & libc::S_IFMT == libc::S_IFDIR).then(Acl::default),
        }
    }
}

impl Acl {
    /// The ACL a file without an extended ACL has: just the mode's three classes.
    pub fn from_mode(mode: u32) -> Acl {
        Acl {
            user_obj: Some(((mode >> 6) & 7) as u8),
            group_obj: Some(((mode >> 3) & 7) as u8),
            mask: None,
            other: Some((mode & 7) as u8),
            names: Vec::new(),
        }
    }

    /// Whether nothing is set (an absent default ACL).
    pub fn is_empty(&self) -> bool {
        *self == Acl::default()
    }

    /// Leaves out what the mode `mode` already says (rsync's sender does this to an access
    /// ACL before sending it).
    pub fn strip_perms(&mut self, mode: u32) {
        self.user_obj = None;
        if self.mask.is_none() {
            self.group_obj = None;
        } else {
            let group = ((mode >> 3) & 7) as u8;
            if self.group_obj == Some(group) {
                self.group_obj = None;
            }
            if !self.names.is_empty() && self.mask == Some(group) {
                self.mask = None;
            }
        }
        self.other = None;
    }

    /// A received ACL with named entries always gets a mask: for an access ACL the mode's
    /// group bits, for a default ACL the union of the named entries and the owning group.
    pub fn fill_mask(&mut self, access_mode: Option<u32>) {
        if self.names.is_empty() || self.mask.is_some() {
            return;
        }
        self.mask = Some(match access_mode {
            Some(mode) => ((mode >> 3) & 7) as u8,
            None => self.names.iter().fold(0, |m, n| m | n.perm) | self.group_obj.unwrap_or(0) & 7,
        });
    }

    /// Whether an access ACL read from disk (`self`, complete) matches a received, condensed
    /// one in what the mode does not carry, for a file that will have mode `mode`.
    pub fn equal_enough(&self, condensed: &Acl, mode: u32) -> bool {
        if self.mask.is_some() != condensed.mask.is_some() {
            return false;
        }
        if self.mask.is_some() {
            let want = condensed.group_obj.unwrap_or(((mode >> 3) & 7) as u8);
            if self.group_obj != Some(want) {
                return false;
            }
        }
        self.names == condensed.names
    }
}

fn cpath(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

/// Errors that mean "this filesystem has no ACLs": treated as no extended ACL.
fn no_acl_support(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOTSUP) | Some(libc::ENOSYS) | Some(libc::ENODATA)
    )
}

fn get_blob(path: &Path, name: &[u8], follow: bool) -> io::Result<Option<Vec<u8>>> {
    let c = cpath(path)?;
    let mut buf = vec![0u8; 1024];
    let get = if follow {
        libc::getxattr
    } else {
        libc::lgetxattr
    };
    loop {
        // SAFETY: valid C strings, a buffer of the length given.
        let n = unsafe {
            get(
                c.as_ptr(),
                name.as_ptr().cast(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(Some(buf));
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ERANGE) && buf.len() < MAX_BLOB {
            buf.resize(MAX_BLOB, 0);
            continue;
        }
        if no_acl_support(&e) {
            return Ok(None);
        }
        return Err(e);
    }
}

/// Parses the kernel's xattr form; entries of unknown tags are ignored, as rsync does.
pub fn parse_blob(blob: &[u8]) -> io::Result<Acl> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed POSIX ACL xattr");
    if blob.len() < 4 || !(blob.len() - 4).is_multiple_of(8) {
        return Err(bad());
    }
    if u32::from_le_bytes(blob[..4].try_into().unwrap()) != ACL_VERSION {
        return Err(bad());
    }
    let mut acl = Acl::default();
    let mut users = Vec::new();
    let mut groups = Vec::new();
    for e in blob[4..].chunks_exact(8) {
        let tag = u16::from_le_bytes([e[0], e[1]]);
        let perm = (u16::from_le_bytes([e[2], e[3]]) & 7) as u8;
        let id = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
        match tag {
            TAG_USER_OBJ => {
                acl.user_obj.get_or_insert(perm);
            }
            TAG_GROUP_OBJ => {
                acl.group_obj.get_or_insert(perm);
            }
            TAG_MASK => {
                acl.mask.get_or_insert(perm);
            }
            TAG_OTHER => {
                acl.other.get_or_insert(perm);
            }
            TAG_USER => users.push(AclName {
                id,
                perm,
                user: true,
            }),
            TAG_GROUP => groups.push(AclName {
                id,
                perm,
                user: false,
            }),
            _ => {}
        }
    }
    users.extend(groups);
    acl.names = users;
    Ok(acl)
}

/// The kernel's xattr form of a complete ACL (absent object entries count as no bits; the
/// mask only when present), sorted as the kernel wants it.
pub fn to_blob(acl: &Acl) -> Vec<u8> {
    let mut ents: Vec<(u16, u32, u8)> = Vec::with_capacity(acl.names.len() + 4);
    ents.push((TAG_USER_OBJ, UNDEFINED_ID, acl.user_obj.unwrap_or(0)));
    ents.push((TAG_GROUP_OBJ, UNDEFINED_ID, acl.group_obj.unwrap_or(0)));
    if let Some(m) = acl.mask {
        ents.push((TAG_MASK, UNDEFINED_ID, m));
    }
    ents.push((TAG_OTHER, UNDEFINED_ID, acl.other.unwrap_or(0)));
    for n in &acl.names {
        ents.push((if n.user { TAG_USER } else { TAG_GROUP }, n.id, n.perm));
    }
    ents.sort_by_key(|&(tag, id, _)| (tag, id));
    let mut out = Vec::with_capacity(4 + 8 * ents.len());
    out.extend_from_slice(&ACL_VERSION.to_le_bytes());
    for (tag, id, perm) in ents {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&u16::from(perm & 7).to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
    }
    out
}

/// Reads a path's access ACL (the mode's three classes when it has no extended one) and, for
/// a directory, its default ACL (empty when it has none). Symlinks have none; a symlink at
/// `path` is followed (a sender's `-L`).
pub fn read(path: &Path, mode: u32) -> io::Result<EntryAcl> {
    read_opt(path, mode, true)
}

fn read_opt(path: &Path, mode: u32, follow: bool) -> io::Result<EntryAcl> {
    let access = match get_blob(path, XATTR_ACCESS, follow)? {
        Some(b) => parse_blob(&b)?,
        None => Acl::from_mode(mode),
    };
    let default = if mode & libc::S_IFMT == libc::S_IFDIR {
        Some(match get_blob(path, XATTR_DEFAULT, follow)? {
            Some(b) => parse_blob(&b)?,
            None => Acl::default(),
        })
    } else {
        None
    };
    Ok(EntryAcl { access, default })
}

fn set_blob(path: &Path, name: &[u8], blob: &[u8]) -> io::Result<()> {
    let c = cpath(path)?;
    // SAFETY: valid C strings, a buffer of the length given.
    let r = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            name.as_ptr().cast(),
            blob.as_ptr().cast(),
            blob.len(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn remove_blob(path: &Path, name: &[u8]) -> io::Result<()> {
    let c = cpath(path)?;
    // SAFETY: valid C strings.
    let r = unsafe { libc::lremovexattr(c.as_ptr(), name.as_ptr().cast()) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if no_acl_support(&e) {
            return Ok(());
        }
        return Err(e);
    }
    Ok(())
}

/// What applying a received ACL found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclFailure {
    /// Setting the access ACL failed.
    Access,
    /// Setting (or removing) the default ACL failed.
    Default,
}

/// [`read`] for a receiver's own item: a symlink is not followed.
pub fn read_here(path: &Path, mode: u32) -> io::Result<EntryAcl> {
    read_opt(path, mode, false)
}

/// Whether the ACLs on disk (`have`, as [`read`] returns them) differ from the received
/// `want` for an item that will have mode `mode`.
pub fn differs(have: &EntryAcl, want: &EntryAcl, mode: u32) -> bool {
    differs_access(have, want, mode) || differs_default(have, want, mode)
}

fn differs_access(have: &EntryAcl, want: &EntryAcl, mode: u32) -> bool {
    !have.access.equal_enough(&want.access, mode)
}

fn differs_default(have: &EntryAcl, want: &EntryAcl, mode: u32) -> bool {
    mode & libc::S_IFMT == libc::S_IFDIR
        && want.default.is_some()
        && have.default.as_ref() != want.default.as_ref()
}

/// The mode bits an access ACL is written with for an item getting mode `mode` that has
/// `old_mode`: group and other stay closed while set-id bits go off (or, for a directory,
/// the sticky bit comes on) until the chmod that follows.
fn access_mode(mode: u32, old_mode: u32) -> u32 {
    let mut m = mode;
    if mode & libc::S_IFMT == libc::S_IFDIR {
        if m & 0o1000 != 0 && old_mode & 0o1000 == 0 {
            m &= !0o077;
        }
    } else if (old_mode & 0o4000 != 0 && m & 0o4000 == 0)
        || (old_mode & 0o2000 != 0 && m & 0o2000 == 0)
    {
        m &= !0o077;
    }
    m
}

/// When setting the ACLs would rewrite the access ACL, the mode the item has right after
/// (its old special bits, the new permission bits): rsync judges an up-to-date file's `p`
/// against that.
pub fn mode_after_access(
    have: &EntryAcl,
    want: &EntryAcl,
    mode: u32,
    old_mode: u32,
) -> Option<u32> {
    differs_access(have, want, mode)
        .then(|| (old_mode & !0o777) | (access_mode(mode, old_mode) & 0o777))
}

/// Applies a received ACL to `path` (rsync's set_acl): the access ACL when its extended part
/// differs, completed from `mode` (the mode the item will get; `old_mode` is what it has now),
/// and for a directory the default ACL when different (removed when the sender had none).
/// Returns whether anything changed, or which part failed with its error. The caller
/// chmods afterwards when the mode still differs.
pub fn apply(
    path: &Path,
    want: &EntryAcl,
    mode: u32,
    old_mode: u32,
) -> Result<bool, (AclFailure, io::Error)> {
    let have = read_opt(path, old_mode, false).map_err(|e| (AclFailure::Access, e))?;
    let mut changed = false;
    if differs_access(&have, want, mode) {
        changed = true;
        let m = access_mode(mode, old_mode);
        let mut full = want.access.clone();
        full.user_obj = Some(((m >> 6) & 7) as u8);
        if full.group_obj.is_none() {
            full.group_obj = Some(((m >> 3) & 7) as u8);
        }
        if full.mask.is_some() {
            full.mask = Some(((m >> 3) & 7) as u8);
        }
        full.other = Some((m & 7) as u8);
        set_blob(path, XATTR_ACCESS, &to_blob(&full)).map_err(|e| (AclFailure::Access, e))?;
    }
    if differs_default(&have, want, mode) {
        changed = true;
        let def = want.default.as_ref().expect("checked");
        let r = if def.user_obj.is_none() {
            remove_blob(path, XATTR_DEFAULT)
        } else {
            set_blob(path, XATTR_DEFAULT, &to_blob(def))
        };
        r.map_err(|e| (AclFailure::Default, e))?;
    }
    Ok(changed)
}

/// The permission bits a new item created in `dir` may have when permissions are not
/// preserved (rsync's default_perms_for_dir): those of the directory's default ACL when it
/// has one, else all less the umask.
pub fn default_perms_for_dir(dir: &Path, umask: u32) -> u32 {
    let fallback = 0o777 & !umask;
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    match get_blob(dir, XATTR_DEFAULT, true) {
        Ok(Some(b)) => match parse_blob(&b) {
            Ok(Acl {
                user_obj: Some(u),
                group_obj,
                mask,
                other,
                ..
            }) => {
                let g = mask.or(group_obj).unwrap_or(0);
                (u32::from(u) << 6) | (u32::from(g) << 3) | u32::from(other.unwrap_or(0))
            }
            _ => fallback,
        },
        _ => fallback,
    }
}

/// The names rsync's error messages give the two kinds.
pub fn failure_name(f: AclFailure) -> &'static str {
    match f {
        AclFailure::Access => "ACL_TYPE_ACCESS",
        AclFailure::Default => "ACL_TYPE_DEFAULT",
    }
}

/// Condenses an ACL read on the sending side into what a receiver holds after the wire:
/// the access ACL stripped against the mode and its mask filled back, the default ACL as is
/// (mask filled). The local engine uses this to judge and apply like a transfer does.
pub fn as_received(read: &EntryAcl, mode: u32) -> EntryAcl {
    let mut access = read.access.clone();
    access.strip_perms(mode);
    access.fill_mask(Some(mode));
    let default = read.default.clone().map(|mut d| {
        d.fill_mask(None);
        d
    });
    EntryAcl { access, default }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_round_trip() {
        let blob = hex(
            "0200000001000600ffffffff02000600e803000004000400ffffffff10000600ffffffff20000400ffffffff",
        );
        let acl = parse_blob(&blob).unwrap();
        assert_eq!(acl.user_obj, Some(6));
        assert_eq!(acl.group_obj, Some(4));
        assert_eq!(acl.mask, Some(6));
        assert_eq!(acl.other, Some(4));
        assert_eq!(
            acl.names,
            vec![AclName {
                id: 1000,
                perm: 6,
                user: true
            }]
        );
        assert_eq!(to_blob(&acl), blob);
        assert!(parse_blob(&blob[..7]).is_err());
    }

    #[test]
    fn strip_and_compare() {
        let mut acl = parse_blob(&hex(
            "0200000001000600ffffffff02000600e803000004000400ffffffff10000600ffffffff20000400ffffffff",
        ))
        .unwrap();
        let full = acl.clone();
        acl.strip_perms(0o100664);
        assert_eq!(acl.user_obj, None);
        // The owning group (r) differs from the mask the mode shows (rw): it stays.
        assert_eq!(acl.group_obj, Some(4));
        assert_eq!(acl.mask, None);
        assert_eq!(acl.other, None);
        acl.fill_mask(Some(0o100664));
        assert!(full.equal_enough(&acl, 0o100664));
        let mut plain = Acl::from_mode(0o100644);
        plain.strip_perms(0o100644);
        assert!(!full.equal_enough(&plain, 0o100644));
        assert!(Acl::from_mode(0o100600).equal_enough(&plain, 0o100644));
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
