//! Extended attributes (`-X`): reading, comparing and writing them through the `l*xattr`
//! calls (symlinks themselves, never their targets), with stock rsync's namespace rules.
//!
//! Names are kept without their trailing NUL. Which names take part depends on the role:
//! - a sender lists every namespace but `system.` (ACLs belong to `-A`), and leaves out
//!   `user.rsync.%*` (rsync's own fake-super records) unless `-XX`;
//! - a receiver that is not root keeps only `user.` names of the sender's list (under
//!   `--fake-super` the others are stored as `user.rsync.NAME`);
//! - a receiver compares with and removes from the destination the names it may set.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

/// Values longer than this travel as a digest (rsync's MAX_FULL_DATUM).
pub const MAX_FULL_DATUM: usize = 32;

const USER: &[u8] = b"user.";
const SYSTEM: &[u8] = b"system.";
/// rsync's private prefix on Linux.
pub const RSYNC_PREFIX: &[u8] = b"user.rsync.";

/// One attribute's value, or (received abbreviated) its length and md5 digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum XattrValue {
    Full(Vec<u8>),
    Abbrev { len: u64, digest: [u8; 16] },
}

/// One attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Xattr {
    /// The name as stored here (no NUL).
    pub name: Vec<u8>,
    pub value: XattrValue,
    /// Its 1-based position in the list as sent (what a request for its value names).
    pub num: u32,
}

/// A file's attributes, sorted by name.
pub type XattrList = Arc<Vec<Xattr>>;

/// Who we are for the namespace rules: stock's `am_root` (1 root, 0 not, -1 `--fake-super`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct XattrRules {
    /// `-X` count (1 or 2).
    pub level: u8,
    pub root: bool,
    pub fake_super: bool,
}

impl XattrRules {
    fn am_root(&self) -> i8 {
        if self.fake_super {
            -1
        } else {
            i8::from(self.root)
        }
    }

    /// A name whose `%` suffix marks rsync's own records (`user.rsync.%stat`, ...).
    fn rsync_private(name: &[u8]) -> Option<&[u8]> {
        let rest = name.strip_prefix(RSYNC_PREFIX)?;
        rest.strip_prefix(b"%")
    }

    fn fake_super_record(&self, name: &[u8]) -> bool {
        self.am_root() < 0
            && Self::rsync_private(name).is_some_and(|s| matches!(s, b"stat" | b"aacl" | b"dacl"))
    }

    /// Whether a sender lists `name`.
    pub fn sender_keeps(&self, name: &[u8]) -> bool {
        if name.starts_with(SYSTEM) {
            return false;
        }
        if Self::rsync_private(name).is_some() && (self.level < 2 || self.fake_super_record(name)) {
            return false;
        }
        true
    }

    /// The name a sender puts on the wire (`--fake-super` unwraps stored foreign namespaces).
    pub fn wire_name<'a>(&self, name: &'a [u8]) -> &'a [u8] {
        if self.am_root() < 0 && Self::rsync_private(name).is_none() {
            if let Some(rest) = name.strip_prefix(RSYNC_PREFIX) {
                return rest;
            }
        }
        name
    }

    /// The name a receiver stores a received `name` under, if it keeps it.
    pub fn receiver_name(&self, name: &[u8]) -> Option<Vec<u8>> {
        let mut stored = name.to_vec();
        if self.am_root() <= 0 && !name.starts_with(USER) {
            if self.am_root() == 0 {
                return None;
            }
            stored = [RSYNC_PREFIX, name].concat();
        }
        if self.level < 2 && Self::rsync_private(&stored).is_some() {
            return None;
        }
        Some(stored)
    }

    /// Whether a receiver compares the destination's `name` with the sender's list.
    fn dest_reads(&self, name: &[u8]) -> bool {
        let user_only = self.am_root() == 0;
        if if user_only {
            !name.starts_with(USER)
        } else {
            name.starts_with(SYSTEM)
        } {
            return false;
        }
        !self.fake_super_record(name)
    }

    /// Whether a receiver removes the destination's `name` when the sender lacks it.
    fn dest_removes(&self, name: &[u8]) -> bool {
        let user_only = self.am_root() <= 0;
        if if user_only {
            !name.starts_with(USER)
        } else {
            name.starts_with(SYSTEM)
        } {
            return false;
        }
        !(self.am_root() < 0 && name == b"user.rsync.%stat")
    }
}

fn cpath(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn cname(name: &[u8]) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn unsupported(err: &io::Error) -> bool {
    err.raw_os_error() == Some(libc::ENOTSUP)
}

/// The names of `path`'s attributes (an empty list where the filesystem has none).
pub fn list_names(path: &Path) -> io::Result<Vec<Vec<u8>>> {
    let p = cpath(path)?;
    let mut buf: Vec<u8> = vec![0; 1024];
    loop {
        // SAFETY: p is NUL-terminated; buf is valid for buf.len() bytes.
        let n = unsafe { libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            buf.truncate(n as usize);
            break;
        }
        let err = io::Error::last_os_error();
        if unsupported(&err) {
            return Ok(Vec::new());
        }
        if err.raw_os_error() != Some(libc::ERANGE) {
            return Err(err);
        }
        // SAFETY: size query only.
        let need = unsafe { libc::llistxattr(p.as_ptr(), std::ptr::null_mut(), 0) };
        if need < 0 {
            return Err(io::Error::last_os_error());
        }
        buf = vec![0; need as usize + 1024];
    }
    Ok(buf
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(<[u8]>::to_vec)
        .collect())
}

/// One attribute's value; `None` when it does not exist (or attributes are unsupported).
pub fn get(path: &Path, name: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let p = cpath(path)?;
    let n = cname(name)?;
    loop {
        // SAFETY: size query with valid C strings.
        let len = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), std::ptr::null_mut(), 0) };
        if len < 0 {
            let err = io::Error::last_os_error();
            if unsupported(&err) || err.raw_os_error() == Some(libc::ENODATA) {
                return Ok(None);
            }
            return Err(err);
        }
        let mut buf = vec![0u8; len as usize];
        // SAFETY: buf is valid for buf.len() bytes.
        let got =
            unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if got >= 0 {
            buf.truncate(got as usize);
            return Ok(Some(buf));
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ERANGE) {
            return Err(err);
        }
        // Grew in between: ask again.
    }
}

/// Sets one attribute.
pub fn set(path: &Path, name: &[u8], value: &[u8]) -> io::Result<()> {
    let p = cpath(path)?;
    let n = cname(name)?;
    // SAFETY: valid C strings and a buffer of value.len() bytes.
    let r = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Removes one attribute.
pub fn remove(path: &Path, name: &[u8]) -> io::Result<()> {
    let p = cpath(path)?;
    let n = cname(name)?;
    // SAFETY: valid C strings.
    if unsafe { libc::lremovexattr(p.as_ptr(), n.as_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn read_filtered(path: &Path, keep: impl Fn(&[u8]) -> bool) -> io::Result<Vec<Xattr>> {
    let mut out = Vec::new();
    for name in list_names(path)? {
        if !keep(&name) {
            continue;
        }
        if let Some(v) = get(path, &name)? {
            out.push(Xattr {
                name,
                value: XattrValue::Full(v),
                num: 0,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    for (i, x) in out.iter_mut().enumerate() {
        x.num = i as u32 + 1;
    }
    Ok(out)
}

/// What a sender lists for `path` (sorted, numbered).
pub fn read_for_send(path: &Path, rules: &XattrRules) -> io::Result<Vec<Xattr>> {
    read_filtered(path, |n| rules.sender_keeps(n))
}

/// What a receiver compares at `path`.
pub fn read_dest(path: &Path, rules: &XattrRules) -> io::Result<Vec<Xattr>> {
    read_filtered(path, |n| rules.dest_reads(n))
}

/// The sender's list as the receiver keeps it (names it cannot store dropped, full values as
/// they are).
pub fn received(list: &[Xattr], rules: &XattrRules) -> Vec<Xattr> {
    let mut out: Vec<Xattr> = list
        .iter()
        .filter_map(|x| {
            rules.receiver_name(&x.name).map(|name| Xattr {
                name,
                value: x.value.clone(),
                num: x.num,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The md5 digest of a long value, as rsync abbreviates it (protocol ≥ 30).
pub type Digest = fn(&[u8]) -> [u8; 16];

fn value_matches(want: &XattrValue, have: &[u8], digest: Digest) -> bool {
    match want {
        XattrValue::Full(v) => v == have,
        XattrValue::Abbrev { len, digest: d } => *len == have.len() as u64 && digest(have) == *d,
    }
}

/// Whether the destination's attributes differ from the wanted ones; also the `num`s of the
/// abbreviated wanted values the destination does not have (what a generator asks for).
pub fn diff(want: &[Xattr], have: &[Xattr], digest: Digest) -> (bool, Vec<u32>) {
    let mut differ = want.len() != have.len();
    let mut todo = Vec::new();
    for w in want {
        let same = have
            .iter()
            .find(|h| h.name == w.name)
            .is_some_and(|h| match &h.value {
                XattrValue::Full(v) => value_matches(&w.value, v, digest),
                XattrValue::Abbrev { .. } => false,
            });
        if !same {
            differ = true;
            if matches!(w.value, XattrValue::Abbrev { .. }) {
                todo.push(w.num);
            }
        }
    }
    (differ, todo)
}

/// A failure while writing attributes.
#[derive(Debug)]
pub enum XattrError {
    List(io::Error),
    Set(Vec<u8>, io::Error),
    Remove(Vec<u8>, io::Error),
    /// An abbreviated value neither sent nor found in the basis.
    Missing(Vec<u8>),
}

impl XattrError {
    /// Stock's wording; `shown` is the file's name as `full_fname` quotes it, `os` formats an
    /// errno as rsync does (`Message (N)`).
    pub fn render(&self, shown: &str, os: impl Fn(&io::Error) -> String) -> String {
        let n = |n: &[u8]| String::from_utf8_lossy(n).into_owned();
        match self {
            XattrError::List(e) => format!(
                "rsync: [receiver] get_xattr_names: llistxattr({shown},1024) failed: {}",
                os(e)
            ),
            XattrError::Set(name, e) => format!(
                "rsync: [receiver] rsync_xal_set: lsetxattr({shown},\"{}\") failed: {}",
                n(name),
                os(e)
            ),
            XattrError::Remove(name, e) => format!(
                "rsync: [receiver] rsync_xal_set: lremovexattr({shown},\"{}\") failed: {}",
                n(name),
                os(e)
            ),
            XattrError::Missing(name) => {
                format!("Missing abbreviated xattr value, {}, for {shown}", n(name))
            }
        }
    }
}

/// Makes `path`'s attributes the wanted ones: values set where different, abbreviated ones
/// taken from `fetched` (by num) or else from `basis` when its value matches, names the
/// receiver manages and the sender lacks removed. Returns the failures.
pub fn apply(
    path: &Path,
    want: &[Xattr],
    fetched: &[(u32, Vec<u8>)],
    basis: Option<&Path>,
    rules: &XattrRules,
    digest: Digest,
) -> Vec<XattrError> {
    let mut errors = Vec::new();
    let current = match list_names(path) {
        Ok(c) => c,
        Err(e) => {
            errors.push(XattrError::List(e));
            return errors;
        }
    };
    for w in want {
        let value = match &w.value {
            XattrValue::Full(v) => Some(v.clone()),
            XattrValue::Abbrev { .. } => {
                if let Some((_, v)) = fetched.iter().find(|(n, _)| *n == w.num) {
                    Some(v.clone())
                } else {
                    let from = basis.unwrap_or(path);
                    match get(from, &w.name) {
                        Ok(Some(v)) if value_matches(&w.value, &v, digest) => Some(v),
                        _ => None,
                    }
                }
            }
        };
        let Some(value) = value else {
            errors.push(XattrError::Missing(w.name.clone()));
            continue;
        };
        if current.contains(&w.name) && get(path, &w.name).ok().flatten().as_deref() == Some(&value)
        {
            continue;
        }
        if let Err(e) = set(path, &w.name, &value) {
            errors.push(XattrError::Set(w.name.clone(), e));
        }
    }
    for name in current {
        if !rules.dest_removes(&name) || want.iter().any(|w| w.name == name) {
            continue;
        }
        if let Err(e) = remove(path, &name) {
            errors.push(XattrError::Remove(name.clone(), e));
        }
    }
    errors
}

/// A path whose directory is held open: `/proc/self/fd/N/NAME` reaches the entry through the
/// descriptor, so a parent directory swapped for a symlink after it was opened cannot send
/// an attribute write elsewhere (the `l*xattr` calls still never follow `NAME` itself).
pub struct Pinned {
    _dir: std::fs::File,
    path: std::path::PathBuf,
}

impl Pinned {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Opens the directories from `root` (trusted) down to `path`'s parent without following a
/// symlink on the way. `None` when `path` is not below `root` (or is `root`): it is used as
/// it is. An error when a directory on the way is a symlink now (or vanished).
pub fn pin_beneath(root: &Path, path: &Path) -> io::Result<Option<Pinned>> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    let Ok(rel) = path.strip_prefix(root) else {
        return Ok(None);
    };
    if !Path::new("/proc/self/fd").is_dir() {
        // (A chrooted daemon without /proc: the path as it is.)
        return Ok(None);
    }
    let comps: Vec<&std::ffi::OsStr> = rel
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let Some((leaf, dirs)) = comps.split_last() else {
        return Ok(None);
    };
    let mut dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(if root.as_os_str().is_empty() {
            Path::new(".")
        } else {
            root
        })?;
    for d in dirs {
        let c =
            CString::new(d.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        dir = std::fs::File::from(rtsync_oppath::open_subdir(
            std::os::fd::AsFd::as_fd(&dir),
            &c,
        )?);
    }
    let path = Path::new(&format!("/proc/self/fd/{}", dir.as_raw_fd())).join(leaf);
    Ok(Some(Pinned { _dir: dir, path }))
}

/// [`apply`] to `path` below `root`, reached through [`pin_beneath`]; nothing is written
/// when a directory on the way became a symlink (stock refuses rather than follow it).
pub fn apply_beneath(
    root: &Path,
    path: &Path,
    want: &[Xattr],
    basis: Option<&Path>,
    rules: &XattrRules,
    digest: Digest,
) -> Vec<XattrError> {
    match pin_beneath(root, path) {
        Ok(Some(p)) => apply(p.path(), want, &[], basis, rules, digest),
        Ok(None) => apply(path, want, &[], basis, rules, digest),
        Err(_) => Vec::new(),
    }
}

/// [`set`] to `path` below `root`, as [`apply_beneath`] reaches it.
pub fn set_beneath(root: &Path, path: &Path, name: &[u8], value: &[u8]) -> io::Result<()> {
    match pin_beneath(root, path)? {
        Some(p) => set(p.path(), name, value),
        None => set(path, name, value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_rules() {
        let user = XattrRules {
            level: 1,
            root: false,
            fake_super: false,
        };
        assert!(user.sender_keeps(b"trusted.x"));
        assert!(!user.sender_keeps(b"system.posix_acl_access"));
        assert!(!user.sender_keeps(b"user.rsync.%stat"));
        assert_eq!(user.receiver_name(b"trusted.x"), None);
        assert_eq!(user.receiver_name(b"user.a"), Some(b"user.a".to_vec()));
        let xx = XattrRules { level: 2, ..user };
        assert!(xx.sender_keeps(b"user.rsync.%stat"));
        let fake = XattrRules {
            fake_super: true,
            ..xx
        };
        assert!(!fake.sender_keeps(b"user.rsync.%stat"));
        assert_eq!(fake.wire_name(b"user.rsync.trusted.x"), b"trusted.x");
        assert_eq!(
            fake.receiver_name(b"trusted.x"),
            Some(b"user.rsync.trusted.x".to_vec())
        );
        let root = XattrRules {
            level: 1,
            root: true,
            fake_super: false,
        };
        assert_eq!(
            root.receiver_name(b"trusted.x"),
            Some(b"trusted.x".to_vec())
        );
        assert!(!root.dest_removes(b"system.posix_acl_access"));
        assert!(root.dest_removes(b"security.x"));
    }

    #[test]
    fn pinned_paths_refuse_a_symlinked_parent() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(t.path().join("outside")).unwrap();
        std::os::unix::fs::symlink(t.path().join("outside"), root.join("link")).unwrap();
        let p = pin_beneath(&root, &root.join("sub/f")).unwrap().unwrap();
        assert!(p.path().starts_with("/proc/self/fd"));
        assert!(pin_beneath(&root, &root.join("link/f")).is_err());
        assert!(pin_beneath(&root, &root).unwrap().is_none());
        assert!(pin_beneath(&root, &t.path().join("elsewhere"))
            .unwrap()
            .is_none());
    }
}
