//! `--fake-super`: the privileged attributes a receiver may not set for real (owner, group,
//! device numbers, special permission bits, the file type of devices, specials and
//! symlinks, ACLs) kept in `user.rsync.%*` extended attributes instead, and read back by a
//! sender that has the option too.
//!
//! - `user.rsync.%stat` holds `"MODE MAJOR,MINOR UID:GID"` (mode in octal, the rest in
//!   decimal) whenever the real file differs from what it stands for; it is removed once the
//!   real file says the same by itself.
//! - Devices, fifos and sockets are empty regular files; symlinks are regular files holding
//!   their target (Linux has no user xattrs on symlinks). The real file always keeps its
//!   owner's access (`0600`, directories `0700`) and never gets set-id or sticky bits.
//! - ACLs are kept as `user.rsync.%aacl` / `user.rsync.%dacl` (see [`acl_to_blob`]).
//!
//! A `%stat` value read from a file is untrusted: it is parsed strictly
//! ([`parse_stat`]), and a value that does not parse is reported by the caller.

use crate::acl::{Acl, AclName, EntryAcl};
use crate::xattr;
use std::fs::Metadata;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Where the faked stat is kept.
pub const STAT_ATTR: &[u8] = b"user.rsync.%stat";
/// A faked access ACL.
pub const ACCESS_ACL_ATTR: &[u8] = b"user.rsync.%aacl";
/// A faked default ACL.
pub const DEFAULT_ACL_ATTR: &[u8] = b"user.rsync.%dacl";
/// Stock reads at most this much of a `%stat` value (a longer one is an error).
const MAX_STAT_LEN: usize = 255;

/// What a `%stat` attribute says about its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FakeStat {
    /// Type and permission bits.
    pub mode: u32,
    pub major: u32,
    pub minor: u32,
    pub uid: u32,
    pub gid: u32,
}

impl FakeStat {
    pub fn rdev(&self) -> u64 {
        libc::makedev(self.major, self.minor)
    }

    /// The attribute's value, as stock writes it.
    pub fn format(&self) -> String {
        format!(
            "{:o} {},{} {}:{}",
            self.mode, self.major, self.minor, self.uid, self.gid
        )
    }
}

/// A `%stat` value that does not say what it should.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupt(pub Vec<u8>);

/// Skips what C's `isspace` calls white space.
fn skip_space(s: &[u8]) -> &[u8] {
    let n = s
        .iter()
        .take_while(|c| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
        .count();
    &s[n..]
}

/// One number as `scanf` reads it (leading white space, an optional sign, digits of
/// `radix`); the value wraps to 32 bits as C's conversion to `int` does, but a number that
/// does not even fit 64 bits is refused.
fn number(s: &[u8], radix: u32) -> Option<(u32, &[u8])> {
    let s = skip_space(s);
    let (neg, s) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let digits = s
        .iter()
        .take_while(|c| (**c as char).is_digit(radix))
        .count();
    if digits == 0 {
        return None;
    }
    let mut v: i64 = 0;
    for &c in &s[..digits] {
        let d = i64::from((c as char).to_digit(radix)?);
        v = v.checked_mul(i64::from(radix))?.checked_add(d)?;
    }
    if neg {
        v = -v;
    }
    Some((v as u32, &s[digits..]))
}

fn literal(s: &[u8], c: u8) -> Option<&[u8]> {
    s.strip_prefix(&[c][..])
}

/// Parses a `%stat` value the way stock reads it (`"%o %d,%d %d:%d"`): the five numbers
/// must all be there; anything after them is ignored.
pub fn parse_stat(v: &[u8]) -> Result<FakeStat, Corrupt> {
    let bad = || Corrupt(v.to_vec());
    let parsed = (|| {
        let (mode, s) = number(v, 8)?;
        // A space in the format matches any white space, none included.
        let (major, s) = number(skip_space(s), 10)?;
        let (minor, s) = number(literal(s, b',')?, 10)?;
        let (uid, s) = number(skip_space(s), 10)?;
        let (gid, _) = number(literal(s, b':')?, 10)?;
        Some(FakeStat {
            mode,
            major,
            minor,
            uid,
            gid,
        })
    })();
    parsed.ok_or_else(bad)
}

/// Whether stock would look for a `%stat` on an item of this (real) mode: devices and
/// specials never carry one.
fn may_carry(mode: u32) -> bool {
    !matches!(
        mode & libc::S_IFMT,
        libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO | libc::S_IFSOCK
    )
}

/// Reads `path`'s `%stat` (the item is `md`, as lstat found it). `Ok(None)` when it has
/// none; a symlink, which cannot carry one here, reads as owned by root when the system
/// refuses the question (as stock's).
pub fn read_stat(path: &Path, md: &Metadata) -> io::Result<Option<Result<FakeStat, Corrupt>>> {
    if !may_carry(md.mode()) {
        return Ok(None);
    }
    match xattr::get(path, STAT_ATTR) {
        Ok(Some(v)) => {
            if v.len() > MAX_STAT_LEN {
                return Err(io::Error::from_raw_os_error(libc::ERANGE));
            }
            Ok(Some(parse_stat(&v)))
        }
        Ok(None) => Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) && md.file_type().is_symlink() => {
            Ok(Some(Ok(FakeStat {
                mode: md.mode(),
                major: libc::major(md.rdev()),
                minor: libc::minor(md.rdev()),
                uid: 0,
                gid: 0,
            })))
        }
        Err(e) => Err(e),
    }
}

/// An item as a `--fake-super` process sees it: the real lstat with `%stat` folded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
}

impl Seen {
    /// The real item.
    pub fn real(md: &Metadata) -> Seen {
        Seen {
            mode: md.mode(),
            uid: md.uid(),
            gid: md.gid(),
            rdev: md.rdev(),
        }
    }

    /// The real item with its `%stat` (if it has a valid one) folded in.
    pub fn of(path: &Path, md: &Metadata) -> Seen {
        match read_stat(path, md) {
            Ok(Some(Ok(f))) => Seen {
                mode: f.mode,
                uid: f.uid,
                gid: f.gid,
                rdev: f.rdev(),
            },
            _ => Seen::real(md),
        }
    }

    pub fn kind(&self) -> Option<crate::FileKind> {
        crate::FileKind::from_mode(self.mode)
    }
}

fn is_device(mode: u32) -> bool {
    matches!(mode & libc::S_IFMT, libc::S_IFCHR | libc::S_IFBLK)
}

/// Records at `path` that it stands for an item of mode `mode` (type and permissions),
/// device number `rdev`, owner `uid` and group `gid` (stock's set_stat_xattr): the real
/// item gets the permission bits with its owner's access added and no special bits, and
/// `%stat` is written when the real item does not say all that (removed when it does).
/// Nothing is written to a symlink (which cannot carry it).
pub fn store_stat(path: &Path, mode: u32, rdev: u64, uid: u32, gid: u32) -> io::Result<()> {
    let md = std::fs::symlink_metadata(path)?;
    let current = match read_stat(path, &md) {
        Ok(Some(Ok(f))) => Some(f),
        _ => None,
    };
    let real_mode = md.mode() & (libc::S_IFMT | 0o7777);
    let fmode = mode & (libc::S_IFMT | 0o7777);
    let rdev = if is_device(fmode) { rdev } else { 0 };
    let owner_bits = if md.is_dir() { 0o700 } else { 0o600 };
    let want_real = (real_mode & libc::S_IFMT) | (fmode & 0o777) | owner_bits;
    let symlink = md.file_type().is_symlink();
    if real_mode != want_real && !symlink {
        crate::fsops::set_perms(path, want_real)?;
    }
    let real_rdev = if is_device(real_mode) { md.rdev() } else { 0 };
    if want_real == fmode && real_rdev == rdev && md.uid() == uid && md.gid() == gid {
        if current.is_some() {
            xattr::remove(path, STAT_ATTR)?;
        }
        return Ok(());
    }
    let wanted = FakeStat {
        mode: fmode,
        major: libc::major(rdev),
        minor: libc::minor(rdev),
        uid,
        gid,
    };
    if current != Some(wanted) {
        match xattr::set(path, STAT_ATTR, wanted.format().as_bytes()) {
            Err(e) if e.raw_os_error() == Some(libc::EPERM) && symlink => {}
            r => r?,
        }
    }
    Ok(())
}

/// Creates the placeholder for a device, fifo or socket: an empty regular file, mode 0600.
pub fn make_placeholder(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map(drop)
}

/// Creates the stand-in for a symlink: a regular file, mode 0600, holding the target.
pub fn make_symlink_file(path: &Path, target: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    f.write_all(target)
}

/// The target a symlink stand-in holds (at most `PATH_MAX` bytes are read, as stock's
/// readlink buffer). `Ok(None)` when `path` is a real symlink.
pub fn read_symlink_file(path: &Path) -> io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => {
            let mut out = Vec::new();
            f.take(libc::PATH_MAX as u64 - 1).read_to_end(&mut out)?;
            Ok(Some(out))
        }
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Ok(None),
        Err(e) => Err(e),
    }
}

/// An absent object entry in the stored form.
const NO_ENTRY: u32 = 0x80;
/// Marks a named entry as a user's.
const NAME_IS_USER: u32 = 1 << 31;
/// The most named entries a stored ACL may list (what fits in an xattr value).
const MAX_ACL_NAMES: usize = 8190;

/// An ACL in stock's `--fake-super` form: four little-endian `u32`s (owner, group, mask,
/// other; 0x80 when absent), then `(id, perms)` pairs with bit 31 of perms set for users.
pub fn acl_to_blob(acl: &Acl) -> Vec<u8> {
    let obj = |v: Option<u8>| v.map_or(NO_ENTRY, u32::from);
    let mut out = Vec::with_capacity(16 + 8 * acl.names.len());
    for v in [acl.user_obj, acl.group_obj, acl.mask, acl.other] {
        out.extend_from_slice(&obj(v).to_le_bytes());
    }
    for n in &acl.names {
        out.extend_from_slice(&n.id.to_le_bytes());
        let access = u32::from(n.perm) | if n.user { NAME_IS_USER } else { 0 };
        out.extend_from_slice(&access.to_le_bytes());
    }
    out
}

/// Reads a stored ACL; `None` when the value is malformed. An access ACL's absent owner,
/// group and other entries are taken from `mode` (stock does so for both kinds).
pub fn acl_from_blob(b: &[u8], mode: u32) -> Option<Acl> {
    if b.len() < 16 || !(b.len() - 16).is_multiple_of(8) || (b.len() - 16) / 8 > MAX_ACL_NAMES {
        return None;
    }
    let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let obj = |v: u32, fallback: Option<u32>| -> Option<u8> {
        if v == NO_ENTRY {
            fallback.map(|f| (f & 7) as u8)
        } else {
            Some((v & 7) as u8)
        }
    };
    let mut acl = Acl {
        user_obj: obj(word(0), Some(mode >> 6)),
        group_obj: obj(word(4), Some(mode >> 3)),
        mask: obj(word(8), None),
        other: obj(word(12), Some(mode)),
        names: Vec::new(),
    };
    let mut users = Vec::new();
    let mut groups = Vec::new();
    for i in (16..b.len()).step_by(8) {
        let access = word(i + 4);
        let n = AclName {
            id: word(i),
            perm: (access & 7) as u8,
            user: access & NAME_IS_USER != 0,
        };
        if n.user {
            users.push(n);
        } else {
            groups.push(n);
        }
    }
    users.extend(groups);
    acl.names = users;
    Some(acl)
}

/// A `--fake-super` item's ACLs, from `%aacl`/`%dacl` (`mode` is its faked mode): the mode's
/// classes when it has none stored (or a malformed one), and for a directory an empty
/// default ACL when it has none.
pub fn read_acl(path: &Path, mode: u32) -> EntryAcl {
    let get = |name: &[u8]| xattr::get(path, name).ok().flatten();
    let access = get(ACCESS_ACL_ATTR)
        .and_then(|b| acl_from_blob(&b, mode))
        .unwrap_or_else(|| Acl::from_mode(mode));
    let default = (mode & libc::S_IFMT == libc::S_IFDIR).then(|| {
        get(DEFAULT_ACL_ATTR)
            .and_then(|b| acl_from_blob(&b, mode))
            .unwrap_or_default()
    });
    EntryAcl { access, default }
}

/// Stores a received ACL for a `--fake-super` receiver as stock does: the access ACL as
/// received when its extended part differs from what is stored, and for a directory the
/// default ACL (removed when the sender had none). Returns whether anything changed.
pub fn store_acl(path: &Path, want: &EntryAcl, mode: u32) -> io::Result<bool> {
    let have = read_acl(path, mode);
    let mut changed = false;
    if !have.access.equal_enough(&want.access, mode) {
        xattr::set(path, ACCESS_ACL_ATTR, &acl_to_blob(&want.access))?;
        changed = true;
    }
    if mode & libc::S_IFMT == libc::S_IFDIR {
        if let Some(def) = &want.default {
            if have.default.as_ref() != Some(def) {
                changed = true;
                if def.user_obj.is_none() {
                    match xattr::remove(path, DEFAULT_ACL_ATTR) {
                        Err(e) if e.raw_os_error() != Some(libc::ENODATA) => return Err(e),
                        _ => {}
                    }
                } else {
                    xattr::set(path, DEFAULT_ACL_ATTR, &acl_to_blob(def))?;
                }
            }
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_values_parse_as_stock_reads_them() {
        let f = parse_stat(b"20644 41,67 5000:5002").unwrap();
        assert_eq!(
            f,
            FakeStat {
                mode: 0o20644,
                major: 41,
                minor: 67,
                uid: 5000,
                gid: 5002
            }
        );
        assert_eq!(f.format(), "20644 41,67 5000:5002");
        // White space is free where the format has a space; trailing text is ignored.
        assert!(parse_stat(b"100644  0,0\t1:2 junk").is_ok());
        assert!(parse_stat(b"100644 0,0 1:2\0").is_ok());
        // -1 wraps as in C.
        assert_eq!(parse_stat(b"100644 0,0 -1:0").unwrap().uid, u32::MAX);
        for bad in [
            &b""[..],
            b"100644",
            b"100644 0,0",
            b"100644 0 , 0 1:2",
            b"100644 0,0 1 :2",
            b"100648 0,0 1:2x",
            b"x 0,0 1:2",
            b"100644 0,0 1:",
            b"100644 0,0 99999999999999999999999:1",
        ] {
            // (100648: %o stops at the 8, which then reads as the major number.)
            assert!(
                parse_stat(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn stat_is_recorded_only_where_the_file_differs() {
        use std::os::unix::fs::MetadataExt;
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("f");
        make_placeholder(&f).unwrap();
        let md = std::fs::symlink_metadata(&f).unwrap();
        let (uid, gid) = (md.uid(), md.gid());
        // A device: recorded, the stand-in keeps its owner's access.
        let dev = libc::makedev(8, 1);
        store_stat(&f, libc::S_IFBLK | 0o640, dev, uid, gid).unwrap();
        let md = std::fs::symlink_metadata(&f).unwrap();
        assert_eq!(md.mode() & 0o7777, 0o640);
        assert!(md.is_file());
        let got = read_stat(&f, &md).unwrap().unwrap().unwrap();
        assert_eq!((got.mode, got.rdev()), (libc::S_IFBLK | 0o640, dev));
        assert_eq!(Seen::of(&f, &md).kind(), Some(crate::FileKind::BlockDevice));
        // Special bits never reach the real file.
        store_stat(&f, libc::S_IFREG | 0o4755, 0, uid, gid).unwrap();
        let md = std::fs::symlink_metadata(&f).unwrap();
        assert_eq!(md.mode() & 0o7777, 0o755);
        assert_eq!(Seen::of(&f, &md).mode, libc::S_IFREG | 0o4755);
        // What the real file says by itself: no record.
        store_stat(&f, libc::S_IFREG | 0o644, 0, uid, gid).unwrap();
        let md = std::fs::symlink_metadata(&f).unwrap();
        assert!(read_stat(&f, &md).unwrap().is_none());
        assert_eq!(md.mode() & 0o7777, 0o644);
        // A corrupt record reads as corrupt, and the real stat stands.
        xattr::set(&f, STAT_ATTR, b"not a stat").unwrap();
        assert!(matches!(read_stat(&f, &md), Ok(Some(Err(_)))));
        assert_eq!(Seen::of(&f, &md), Seen::real(&md));
    }

    #[test]
    fn symlink_stand_ins_hold_their_target() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("l");
        make_symlink_file(&f, b"some/target").unwrap();
        assert_eq!(read_symlink_file(&f).unwrap().unwrap(), b"some/target");
        let real = t.path().join("real");
        std::os::unix::fs::symlink("x", &real).unwrap();
        assert_eq!(read_symlink_file(&real).unwrap(), None);
        // Never written through a symlink.
        assert!(make_placeholder(&real).is_err());
    }

    #[test]
    fn acl_blobs_round_trip() {
        let acl = Acl {
            user_obj: None,
            group_obj: Some(5),
            mask: Some(7),
            other: None,
            names: vec![
                AclName {
                    id: 1000,
                    perm: 7,
                    user: true,
                },
                AclName {
                    id: 50,
                    perm: 4,
                    user: false,
                },
            ],
        };
        let b = acl_to_blob(&acl);
        assert_eq!(b.len(), 32);
        let back = acl_from_blob(&b, 0o100640).unwrap();
        assert_eq!(back.user_obj, Some(6));
        assert_eq!(back.other, Some(0));
        assert_eq!(back.names, acl.names);
        assert!(acl_from_blob(&b[..20], 0).is_none());
        assert!(acl_from_blob(&[], 0).is_none());
    }
}
