//! The receiving side's filesystem work: where each entry goes, refusing to write through
//! symlinks planted in the destination, creating directories/symlinks/specials, applying
//! metadata, deleting extraneous files, and mapping user/group names to local ids.

use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rtsync_tree::fsops;
use rtsync_tree::{FileEntry, FileKind};

use crate::error::{Error, Result};

/// Where received entries are written.
#[derive(Debug, Clone)]
pub enum Dest {
    /// Entries are created beneath this directory (`.` is the directory itself).
    Dir(PathBuf),
    /// A single file received under this exact name.
    Solo(PathBuf),
    /// A directory destination with `--keep-dirlinks` in a daemon module: a symlink to a
    /// directory on the way is followed, but only beneath the module root (see
    /// [`rtsync_tree::Confine`]).
    Linked(PathBuf, rtsync_tree::Confine),
}

impl Dest {
    /// Decides like rsync's `get_local_name`: one non-directory entry copied onto a path that
    /// is not an existing directory is written to that path; otherwise the path is a
    /// directory, created if missing.
    pub fn choose(dest: &Path, entries: &[FileEntry]) -> Result<Dest> {
        Dest::choose_opt(dest, entries, true)
    }

    /// [`Dest::choose`]; a missing destination directory is created only when `create`
    /// (`--only-write-batch` and `-n` change nothing).
    pub fn choose_opt(dest: &Path, entries: &[FileEntry], create: bool) -> Result<Dest> {
        let is_dir = fs::metadata(dest).map(|m| m.is_dir()).unwrap_or(false);
        // A trailing slash always names a directory.
        let slash = {
            use std::os::unix::ffi::OsStrExt;
            dest.as_os_str().as_bytes().ends_with(b"/")
        };
        if entries.len() == 1 && !entries[0].is_dir() && !is_dir && !slash {
            return Ok(Dest::Solo(dest.to_path_buf()));
        }
        if !is_dir && create {
            match fs::create_dir(dest) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    // Stock's receiver names the directory without its trailing slash.
                    let shown = dest.to_string_lossy();
                    let shown = match shown.trim_end_matches('/') {
                        "" => "/",
                        s => s,
                    };
                    return Err(Error::Located {
                        error: Box::new(Error::file(
                            format!("[Receiver] mkdir \"{shown}\" failed"),
                            e,
                        )),
                        at: "main.c(808)",
                    });
                }
            }
        }
        Ok(Dest::Dir(dest.to_path_buf()))
    }

    /// The local path of an entry (names are validated already: relative, no `..`).
    /// The directory entries are created in (a solo file's directory).
    pub fn root(&self) -> PathBuf {
        match self {
            Dest::Dir(root) | Dest::Linked(root, _) => root.clone(),
            Dest::Solo(p) => p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf(),
        }
    }

    pub fn path_of(&self, name: &[u8]) -> PathBuf {
        // (A path past PATH_MAX is reached through a directory of it held open.)
        rtsync_tree::fsops::reachable(self.lexical_path_of(name))
    }

    fn lexical_path_of(&self, name: &[u8]) -> PathBuf {
        match self {
            Dest::Solo(p) => p.clone(),
            Dest::Dir(root) if name == b"." => root.clone(),
            Dest::Dir(root) => root.join(OsStr::from_bytes(name)),
            Dest::Linked(root, _) if name == b"." => root.clone(),
            Dest::Linked(root, confine) => {
                let lexical = root.join(OsStr::from_bytes(name));
                match (lexical.parent(), lexical.file_name()) {
                    (Some(dir), Some(base)) => confine
                        .resolve(dir, true)
                        .map_or(lexical.clone(), |d| d.join(base)),
                    _ => lexical,
                }
            }
        }
    }

    /// The local path of a directory entry: with `--keep-dirlinks` an existing symlink to a
    /// directory (inside the module) stands for it.
    pub fn dir_path_of(&self, name: &[u8]) -> PathBuf {
        let path = self.path_of(name);
        if let Dest::Linked(_, confine) = self {
            if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
                if let Ok(real) = confine.resolve(&path, true) {
                    if fs::symlink_metadata(&real).is_ok_and(|m| m.is_dir()) {
                        return real;
                    }
                }
            }
        }
        path
    }

    /// `--keep-dirlinks` outside a daemon module: a directory destination that keeps (and
    /// follows) symlinks to directories.
    pub fn keep_dirlinks_unconfined(self) -> Dest {
        // Outside a daemon module a directory symlink may lead anywhere, as with stock `-K`;
        // only symlinks owned by root or by us are followed.
        match self {
            Dest::Dir(root) => {
                let root = std::path::absolute(&root).unwrap_or(root);
                let confine = rtsync_tree::Confine::new(PathBuf::from("/")).at_fs_root(true);
                Dest::Linked(root, confine)
            }
            other => other,
        }
    }

    /// Turns a directory destination into one that keeps (and follows) symlinks to
    /// directories beneath `confine`'s root (`--keep-dirlinks` in a daemon module).
    pub fn keep_dirlinks(self, confine: rtsync_tree::Confine) -> Dest {
        match self {
            Dest::Dir(root) => Dest::Linked(root, confine),
            other => other,
        }
    }

    /// `-R --no-implied-dirs`: a directory destination whose symlinks to directories are
    /// followed while they stay beneath `confine`'s root (or beneath the destination itself
    /// without one), as stock's receiver reaches a listed name's parents then.
    pub fn through_parents(self, confine: Option<&rtsync_tree::Confine>) -> Dest {
        match self {
            Dest::Dir(root) => {
                let confine = confine
                    .cloned()
                    .unwrap_or_else(|| rtsync_tree::Confine::new(root.clone()));
                Dest::Linked(root, confine)
            }
            other => other,
        }
    }

    /// Makes the missing parents of `name` (mode 0777 less the umask) beneath the root,
    /// following only symlinks that stay inside; failures show when the parent is used.
    pub fn make_parents(&self, name: &[u8]) {
        let Dest::Linked(root, confine) = self else {
            return;
        };
        let lexical = root.join(OsStr::from_bytes(name));
        if let Some(parent) = lexical.parent().filter(|p| *p != root.as_path()) {
            let _ = confine.create_dir_all(parent, 0o777);
        }
    }

    /// Checks that every directory between the root and `name` is a real directory, not a
    /// symlink (a hostile sender could list `a -> /etc` and then `a/passwd`).
    pub fn check_parents(&self, name: &[u8]) -> Result<()> {
        let root = match self {
            Dest::Dir(root) => root,
            Dest::Solo(_) => return Ok(()),
            Dest::Linked(root, confine) => {
                let lexical = root.join(OsStr::from_bytes(name));
                let parent = lexical.parent().unwrap_or(root);
                return match confine.resolve(parent, true) {
                    Ok(real) if fs::symlink_metadata(&real).is_ok_and(|m| m.is_dir()) => Ok(()),
                    Ok(real) if fs::symlink_metadata(&real).is_ok_and(|m| !m.is_symlink()) => {
                        Err(not_a_directory(name))
                    }
                    Ok(_) => Err(Error::UnsafePath(format!(
                        "{} (a parent is not a directory)",
                        String::from_utf8_lossy(name)
                    ))),
                    Err(e) => Err(Error::file(
                        format!("cannot reach parent of {}", String::from_utf8_lossy(name)),
                        e,
                    )),
                };
            }
        };
        let comps: Vec<&[u8]> = name.split(|&b| b == b'/').collect();
        let mut p = root.clone();
        for comp in &comps[..comps.len().saturating_sub(1)] {
            p.push(OsStr::from_bytes(comp));
            match fs::symlink_metadata(&p) {
                Ok(m) if m.file_type().is_dir() => {}
                Ok(m) if !m.file_type().is_symlink() => return Err(not_a_directory(name)),
                // A symlink to a file: a stat through it fails the same way (one to a
                // directory is never followed).
                Ok(_) if fs::metadata(&p).is_ok_and(|m| !m.is_dir()) => {
                    return Err(not_a_directory(name))
                }
                Ok(_) => {
                    return Err(Error::UnsafePath(format!(
                        "{} (a parent is not a directory)",
                        String::from_utf8_lossy(name)
                    )))
                }
                Err(e) => {
                    return Err(Error::file(
                        format!("cannot reach parent of {}", String::from_utf8_lossy(name)),
                        e,
                    ))
                }
            }
        }
        Ok(())
    }
}

/// A parent of `name` is a file (or another non-directory, not a symlink): what stock's
/// generator meets as `failed to stat NAME: Not a directory`, a per-file error.
fn not_a_directory(name: &[u8]) -> Error {
    Error::file(
        String::from_utf8_lossy(name).into_owned(),
        std::io::Error::from_raw_os_error(libc::ENOTDIR),
    )
}

/// Whether `err` (from [`Dest::check_parents`]) is a parent that is not a directory.
pub fn is_not_a_directory(err: &Error) -> bool {
    matches!(err, Error::File { source, .. } if source.raw_os_error() == Some(libc::ENOTDIR))
}

/// Which metadata to apply.
#[derive(Debug, Clone, Copy, Default)]
pub struct AttrOptions {
    pub perms: bool,
    pub executability: bool,
    pub times: bool,
    /// `--modify-window`: how far apart two times may be and count as the same
    /// (negative: equal to the nanosecond).
    pub modify_window: i64,
    pub owner: bool,
    pub group: bool,
    pub omit_dir_times: bool,
    pub omit_link_times: bool,
    /// `-U`: access times of non-directories are set too.
    pub atimes: bool,
    pub am_root: bool,
    /// `--fake-super`: owner, group, device numbers and special bits are recorded in
    /// `user.rsync.%stat` instead of being set (see [`rtsync_tree::fake`]).
    pub fake_super: bool,
    /// The process umask, for new files without `-p`.
    pub umask: u32,
    /// `-A`: entries carry ACLs to apply.
    pub acls: bool,
}

/// The process umask (read once, before threads start).
pub fn current_umask() -> u32 {
    rtsync_engine::local::current_umask()
}

pub use rtsync_engine::idmap::NameMap;

/// Ids of the received list that still need mapping when attributes are applied (none once
/// [`map_ids`] has run: the default map keeps every id).
#[derive(Debug, Default)]
pub struct IdMap {
    uids: HashMap<u32, u32>,
    gids: HashMap<u32, u32>,
}

impl IdMap {
    pub fn uid(&self, id: u32) -> u32 {
        self.uids.get(&id).copied().unwrap_or(id)
    }

    pub fn gid(&self, id: u32) -> u32 {
        self.gids.get(&id).copied().unwrap_or(id)
    }
}

/// Turns the sender's ids in a received list into ours, as stock's receiver does once the
/// list is in: by `--usermap`/`--groupmap` first, else by the names the sender gave (unless
/// `numeric` ids), else as numbers. Owners are only mapped for a receiver that may set them
/// (`am_root`: root, `--super`, or `--fake-super`, which records them).
#[allow(clippy::too_many_arguments)]
pub fn map_ids(
    entries: &mut [FileEntry],
    users: &[(u32, Vec<u8>)],
    groups: &[(u32, Vec<u8>)],
    numeric: bool,
    usermap: Option<&NameMap>,
    groupmap: Option<&NameMap>,
    owner: bool,
    group: bool,
    am_root: bool,
) {
    let map_one = |list: &[(u32, Vec<u8>)],
                   map: Option<&NameMap>,
                   local: fn(&[u8]) -> Option<u32>,
                   ids: &mut dyn Iterator<Item = &mut u32>| {
        let names: HashMap<u32, &[u8]> = if numeric {
            HashMap::new()
        } else {
            list.iter().map(|(id, n)| (*id, &n[..])).collect()
        };
        let mut done: HashMap<u32, u32> = HashMap::new();
        for id in ids {
            let to = *done.entry(*id).or_insert_with(|| {
                // Without a name for id 0 from the sender, stock takes it to be root's.
                let name = names
                    .get(id)
                    .copied()
                    .or((*id == 0 && !numeric).then_some(&b"root"[..]));
                rtsync_engine::idmap::resolve(map, *id, name, local)
            });
            *id = to;
        }
    };
    if owner && am_root && (!numeric || usermap.is_some()) {
        map_one(
            users,
            usermap,
            lookup_user,
            &mut entries.iter_mut().map(|e| &mut e.uid),
        );
    }
    if group && (!am_root || !numeric || groupmap.is_some()) {
        map_one(
            groups,
            groupmap,
            lookup_group,
            &mut entries.iter_mut().map(|e| &mut e.gid),
        );
    }
    // `-A`: the ids of named ACL entries, whoever receives (stock's match_acl_ids).
    if entries.iter().any(|e| e.acl.is_some())
        && (!numeric || usermap.is_some() || groupmap.is_some())
    {
        let mut uid = acl_id_resolver(users, usermap, lookup_user, numeric);
        let mut gid = acl_id_resolver(groups, groupmap, lookup_group, numeric);
        crate::acls::map_acl_ids(entries, &mut uid, &mut gid);
    }
}

/// Maps one id of a named ACL entry as an owner's is mapped (remembering the answers).
fn acl_id_resolver<'a>(
    list: &[(u32, Vec<u8>)],
    map: Option<&'a NameMap>,
    local: fn(&[u8]) -> Option<u32>,
    numeric: bool,
) -> impl FnMut(u32) -> u32 + 'a {
    let names: HashMap<u32, Vec<u8>> = if numeric {
        HashMap::new()
    } else {
        list.iter().map(|(id, n)| (*id, n.clone())).collect()
    };
    let mut done: HashMap<u32, u32> = HashMap::new();
    move |id: u32| {
        *done.entry(id).or_insert_with(|| {
            let name = names
                .get(&id)
                .map(|n| &n[..])
                .or((id == 0 && !numeric).then_some(&b"root"[..]));
            rtsync_engine::idmap::resolve(map, id, name, local)
        })
    }
}

/// Parses the receiver's `--usermap`/`--groupmap` (names resolved here; an unknown one is
/// reported and its item dropped, as stock does).
pub fn parse_map(spec: Option<&str>, users: bool) -> Option<NameMap> {
    let kind = if users {
        rtsync_engine::idmap::Kind::User
    } else {
        rtsync_engine::idmap::Kind::Group
    };
    let lookup = if users { lookup_user } else { lookup_group };
    NameMap::parse(spec?, kind, lookup, |w| eprintln!("{w}")).ok()
}

/// A daemon module's `name converter`: asked `usr NAME`, `grp NAME`, `uid ID`, `gid ID`,
/// it answers with the id or the name ("" when unknown). It is handed every value: one it
/// cannot pass on (a control character would split the request line) it must refuse,
/// answering `None`, as stock's namecvt_safe_token does.
pub type NameConverter = Box<dyn FnMut(&str, &[u8]) -> Option<Vec<u8>> + Send>;

/// The converter and its answers so far (each value is asked once, as stock keeps the ids
/// it has mapped).
type ConverterState = (NameConverter, HashMap<(String, Vec<u8>), Option<Vec<u8>>>);

static NAME_CONVERTER: std::sync::Mutex<Option<ConverterState>> = std::sync::Mutex::new(None);

/// Routes every user/group name and id lookup of this process through `conv` (rsyncd.conf's
/// `name converter`).
pub fn set_name_converter(conv: NameConverter) {
    if let Ok(mut g) = NAME_CONVERTER.lock() {
        *g = Some((conv, HashMap::new()));
    }
}

/// Asks the name converter, if one is set (`Some(None)`: it does not know the value).
fn convert(kind: &str, value: &[u8]) -> Option<Option<Vec<u8>>> {
    let mut g = NAME_CONVERTER.lock().ok()?;
    let (conv, seen) = g.as_mut()?;
    let key = (kind.to_string(), value.to_vec());
    if let Some(answer) = seen.get(&key) {
        return Some(answer.clone());
    }
    let answer = conv(kind, value).filter(|a| !a.is_empty());
    seen.insert(key, answer.clone());
    Some(answer)
}

/// A user (`users`) or group name the sender named in the file list: with a name converter
/// it is mapped as it arrives, as stock's receiver does (later lookups reuse the answer).
pub fn received_name(users: bool, name: &[u8]) {
    let converting = NAME_CONVERTER.lock().is_ok_and(|g| g.is_some());
    if converting {
        let _ = if users {
            lookup_user(name)
        } else {
            lookup_group(name)
        };
    }
}

fn converted_id(answer: Option<Vec<u8>>) -> Option<u32> {
    let a = answer?;
    if !a.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(&a).ok()?.parse().ok()
}

fn lookup_user(name: &[u8]) -> Option<u32> {
    if let Some(answer) = convert("usr", name) {
        return converted_id(answer);
    }
    let c = CString::new(name).ok()?;
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16384];
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; buf outlives it.
    let rc =
        unsafe { libc::getpwnam_r(c.as_ptr(), &mut pwd, buf.as_mut_ptr(), buf.len(), &mut out) };
    (rc == 0 && !out.is_null()).then_some(pwd.pw_uid)
}

fn lookup_group(name: &[u8]) -> Option<u32> {
    if let Some(answer) = convert("grp", name) {
        return converted_id(answer);
    }
    let c = CString::new(name).ok()?;
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16384];
    let mut out: *mut libc::group = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; buf outlives it.
    let rc =
        unsafe { libc::getgrnam_r(c.as_ptr(), &mut grp, buf.as_mut_ptr(), buf.len(), &mut out) };
    (rc == 0 && !out.is_null()).then_some(grp.gr_gid)
}

/// Applies owner, permissions and times to `path` as the options ask. `existing_mode` is the
/// mode of the file this one replaces (kept when `-p` is off), `None` for a new file.
pub fn apply_attrs(
    path: &Path,
    e: &FileEntry,
    o: &AttrOptions,
    ids: &IdMap,
    existing_mode: Option<u32>,
    accurate_time: bool,
) -> io::Result<()> {
    if o.owner || o.group {
        let uid = if o.owner && o.am_root {
            ids.uid(e.uid)
        } else {
            u32::MAX
        };
        let gid = if o.group { ids.gid(e.gid) } else { u32::MAX };
        if uid != u32::MAX || gid != u32::MAX {
            match fsops::set_owner(path, uid, gid) {
                Ok(()) => {}
                // A non-root receiver may not be in the group: rsync skips it silently.
                Err(err) if err.raw_os_error() == Some(libc::EPERM) && !o.am_root => {}
                Err(err) => return Err(err),
            }
        }
    }
    if e.kind != FileKind::Symlink {
        let perms = if o.perms {
            e.perms()
        } else if let Some(old) = existing_mode {
            old & 0o7777
        } else {
            let mut p = e.perms() & !o.umask & 0o777;
            if o.executability && e.kind == FileKind::Regular && e.perms() & 0o111 != 0 {
                p |= (p & 0o444) >> 2;
            }
            p
        };
        fsops::set_perms(path, perms)?;
    }
    let skip_times = (e.kind == FileKind::Directory && o.omit_dir_times)
        || (e.kind == FileKind::Symlink && o.omit_link_times);
    // Like stock, only a transferred file gets its exact times; for anything else a time
    // within the --modify-window (the same second by default) counts as equal and is left
    // alone.
    let md = if accurate_time {
        None
    } else {
        fs::symlink_metadata(path).ok()
    };
    let mtime = (o.times
        && !skip_times
        && md
            .as_ref()
            .is_none_or(|m| !same_mtime(o.modify_window, m, e)))
    .then_some((e.mtime, e.mtime_nsec));
    let atime = (o.atimes
        && !skip_times
        && e.kind != FileKind::Directory
        && md.as_ref().is_none_or(|m| m.atime() != e.atime))
    .then_some(e.atime);
    if mtime.is_some() || atime.is_some() {
        fsops::set_times(path, mtime, atime)?;
    }
    Ok(())
}

/// Removes whatever is at `path` (a directory recursively).
pub fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Makes sure a directory exists at `path`, replacing a non-directory. Returns whether it
/// was created.
pub fn ensure_dir(path: &Path) -> io::Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => return Ok(false),
        Ok(_) => remove_any(path)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    fs::create_dir(path)?;
    // Writable by us until the final attribute pass.
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))?;
    Ok(true)
}

/// Makes `path` a `--fake-super` symlink stand-in holding `target`; returns false if it
/// already was one.
pub fn ensure_fake_symlink(path: &Path, target: &[u8]) -> std::result::Result<bool, CreateFailed> {
    ensure_node(
        path,
        |m| {
            Ok(
                rtsync_tree::fake::Seen::of(path, m).kind() == Some(FileKind::Symlink)
                    && rtsync_tree::fake::read_symlink_file(path)?.as_deref() == Some(target),
            )
        },
        |p| rtsync_tree::fake::make_symlink_file(p, target),
    )
}

/// Makes `path` a `--fake-super` stand-in for the device or special file `e`; returns false
/// if it already was one.
pub fn ensure_fake_special(path: &Path, e: &FileEntry) -> std::result::Result<bool, CreateFailed> {
    ensure_node(
        path,
        |m| {
            let seen = rtsync_tree::fake::Seen::of(path, m);
            Ok(seen.mode & libc::S_IFMT == e.mode & libc::S_IFMT && seen.rdev == e.rdev)
        },
        rtsync_tree::fake::make_placeholder,
    )
}

/// Makes `path` a symlink to `target`; returns false if it already was one.
pub fn ensure_symlink(path: &Path, target: &[u8]) -> std::result::Result<bool, CreateFailed> {
    ensure_node(
        path,
        |m| Ok(m.file_type().is_symlink() && fs::read_link(path)?.as_os_str().as_bytes() == target),
        |p| std::os::unix::fs::symlink(OsStr::from_bytes(target), p),
    )
}

/// Makes `path` a device/fifo/socket like `e`; returns false if it already matched.
pub fn ensure_special(path: &Path, e: &FileEntry) -> std::result::Result<bool, CreateFailed> {
    ensure_node(
        path,
        |m| Ok(m.mode() & libc::S_IFMT == e.mode & libc::S_IFMT && m.rdev() == e.rdev),
        |p| fsops::make_node(p, e.mode, e.rdev),
    )
}

/// Makes a non-regular node at `path` with `create` unless what is there already is it
/// (`already`): a directory in the way is removed first, anything else is replaced by
/// rename (see [`fsops::create_over`]). Returns whether it made one.
fn ensure_node(
    path: &Path,
    already: impl FnOnce(&fs::Metadata) -> io::Result<bool>,
    create: impl Fn(&Path) -> io::Result<()>,
) -> std::result::Result<bool, CreateFailed> {
    let replacing = match fs::symlink_metadata(path) {
        Ok(m) => {
            if already(&m).map_err(|e| failed_at(path, e))? {
                return Ok(false);
            }
            clear_dir_in_the_way(path, &m)?
        }
        Err(_) => false,
    };
    fsops::create_over(path, replacing, create)?;
    Ok(true)
}

pub use fsops::CreateFailed;

fn failed_at(path: &Path, err: io::Error) -> CreateFailed {
    CreateFailed {
        at: path.to_path_buf(),
        renaming: false,
        err,
    }
}

/// What is at `path` before a non-directory is made there: a directory (emptied by the
/// caller's make-way) is removed and the new node goes in directly; anything else is
/// replaced by rename (true), as stock's atomic_create does.
fn clear_dir_in_the_way(path: &Path, m: &fs::Metadata) -> std::result::Result<bool, CreateFailed> {
    if m.is_dir() {
        remove_any(path).map_err(|e| failed_at(path, e))?;
        return Ok(false);
    }
    Ok(true)
}

/// How the generator decides a file is unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuickCheck {
    pub size_only: bool,
    pub ignore_times: bool,
    /// `--modify-window` (see [`AttrOptions::modify_window`]).
    pub modify_window: i64,
}

/// Whether `meta`'s modification time and `e`'s are the same under `--modify-window`
/// `window` (stock's same_mtime without extra accuracy).
pub fn same_mtime(window: i64, meta: &fs::Metadata, e: &FileEntry) -> bool {
    rtsync_engine::local::same_mtime(
        window,
        (meta.mtime(), meta.mtime_nsec() as u32),
        (e.mtime, e.mtime_nsec),
    )
}

/// rsync's quick check: same size, then same mtime (whether or not `-t` is on). With `-c`
/// the caller compares checksums instead of times.
pub fn up_to_date(meta: &fs::Metadata, e: &FileEntry, q: QuickCheck) -> bool {
    if !meta.file_type().is_file() || meta.len() != e.size {
        return false;
    }
    if q.size_only {
        return true;
    }
    !q.ignore_times && same_mtime(q.modify_window, meta, e)
}

/// The user name of a uid, if it has one.
pub fn user_name(uid: u32) -> Option<Vec<u8>> {
    if let Some(answer) = convert("uid", uid.to_string().as_bytes()) {
        return answer;
    }
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16384];
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; buf outlives it.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut out) };
    if rc != 0 || out.is_null() {
        return None;
    }
    // SAFETY: pw_name points into buf, NUL-terminated.
    Some(
        unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) }
            .to_bytes()
            .to_vec(),
    )
}

/// The group name of a gid, if it has one.
pub fn group_name(gid: u32) -> Option<Vec<u8>> {
    if let Some(answer) = convert("gid", gid.to_string().as_bytes()) {
        return answer;
    }
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16384];
    let mut out: *mut libc::group = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; buf outlives it.
    let rc = unsafe { libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr(), buf.len(), &mut out) };
    if rc != 0 || out.is_null() {
        return None;
    }
    // SAFETY: gr_name points into buf, NUL-terminated.
    Some(
        unsafe { std::ffi::CStr::from_ptr(grp.gr_name) }
            .to_bytes()
            .to_vec(),
    )
}
