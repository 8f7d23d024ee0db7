//! `--usermap`, `--groupmap` and `--chown`: how a receiver turns the sender's user and group
//! ids (and names) into its own.
//!
//! A map is a comma-separated list of `FROM:TO` items, tried in order: FROM is a number, a
//! range `LOW-HIGH`, a name, a wildcard pattern (`*`, `?`, `[`), or empty (an id without a
//! name); TO is a local name or a number. `--chown=USER:GROUP` is `--usermap=*:USER` and
//! `--groupmap=*:GROUP`. An id no item matches keeps the usual treatment: its name (when the
//! sender gave one and the id is not 0) is looked up locally, else the number is kept.

use rtsync_filter::wildmatch::wildmatch;

/// What the FROM side of an item matches.
#[derive(Debug, Clone, PartialEq, Eq)]
enum From {
    /// An id, or the ids `low..=high`.
    Ids(u32, u32),
    /// A name exactly (empty: ids without a name).
    Name(Vec<u8>),
    /// A wildcard pattern over names (an id without a name counts as the empty name).
    Wild(Vec<u8>),
}

/// A parsed `--usermap` or `--groupmap`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NameMap {
    items: Vec<(From, u32)>,
}

/// Whether a map is of users or of groups (for messages and lookups).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    User,
    Group,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Group => "group",
        }
    }
}

/// A map the receiver cannot use (rsync exits with a syntax error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MapError(pub String);

fn id_number(text: &str) -> Result<u32, MapError> {
    text.parse::<u32>()
        .ok()
        .filter(|_| text.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| MapError(format!("Invalid ID number: {text}")))
}

impl NameMap {
    /// Parses `spec`, resolving each TO with `lookup` (a local name to its id). An unknown TO
    /// name is reported through `warn` and its item dropped, as rsync does.
    pub fn parse(
        spec: &str,
        kind: Kind,
        lookup: impl Fn(&[u8]) -> Option<u32>,
        mut warn: impl FnMut(String),
    ) -> Result<NameMap, MapError> {
        let w = kind.word();
        let mut items = Vec::new();
        for item in spec.split(',') {
            let Some((from, to)) = item.split_once(':') else {
                return Err(MapError(format!("No colon found in --{w}map: {item}")));
            };
            if to.is_empty() {
                return Err(MapError(format!(
                    "No name found after colon --{w}map: {item}"
                )));
            }
            let from = if from.starts_with(|c: char| c.is_ascii_digit()) {
                let bad = || MapError(format!("Invalid number in --{w}map: {from}"));
                if !from.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
                    return Err(bad());
                }
                match from.split_once('-') {
                    Some((_, hi)) if hi.is_empty() || hi.contains('-') => return Err(bad()),
                    Some((lo, hi)) => From::Ids(id_number(lo)?, id_number(hi)?),
                    None => {
                        let id = id_number(from)?;
                        From::Ids(id, id)
                    }
                }
            } else if from.contains(['*', '[', '?']) {
                From::Wild(from.as_bytes().to_vec())
            } else {
                From::Name(from.as_bytes().to_vec())
            };
            let target = if to.bytes().all(|b| b.is_ascii_digit()) {
                Some(id_number(to)?)
            } else {
                lookup(to.as_bytes())
            };
            match target {
                Some(id) => items.push((from, id)),
                None => warn(format!("Unknown --{w}map name on receiver: {to}")),
            }
        }
        Ok(NameMap { items })
    }

    /// `--chown`'s half: every id to `to`.
    pub fn everything(
        to: &str,
        kind: Kind,
        lookup: impl Fn(&[u8]) -> Option<u32>,
        warn: impl FnMut(String),
    ) -> Result<NameMap, MapError> {
        NameMap::parse(&format!("*:{to}"), kind, lookup, warn)
    }

    /// The local id the first matching item gives `id` (named `name` by the sender).
    pub fn lookup(&self, id: u32, name: Option<&[u8]>) -> Option<u32> {
        let name = name.unwrap_or_default();
        self.items.iter().find_map(|(from, to)| {
            let hit = match from {
                // A numeric item with a range (or a plain id) matches by number.
                From::Ids(lo, hi) => (*lo..=*hi).contains(&id),
                From::Name(n) => n == name,
                From::Wild(p) => wildmatch(p, name),
            };
            hit.then_some(*to)
        })
    }
}

/// The receiver's id for the sender's `id` named `name`: the map's, else the local id of the
/// name (ids other than 0 with a name), else the number itself.
pub fn resolve(
    map: Option<&NameMap>,
    id: u32,
    name: Option<&[u8]>,
    local: impl Fn(&[u8]) -> Option<u32>,
) -> u32 {
    if let Some(to) = map.and_then(|m| m.lookup(id, name)) {
        return to;
    }
    match name.filter(|n| !n.is_empty()) {
        Some(n) if id != 0 => local(n).unwrap_or(id),
        _ => id,
    }
}

/// This system's name for a uid (`users`) or gid.
pub fn local_name(users: bool, id: u32) -> Option<Vec<u8>> {
    let mut buf = vec![0 as libc::c_char; 16384];
    // SAFETY: the records and out pointers are valid for each call and buf outlives it; the
    // name points into buf, NUL-terminated.
    unsafe {
        let name = if users {
            let mut pwd: libc::passwd = std::mem::zeroed();
            let mut out = std::ptr::null_mut();
            let rc = libc::getpwuid_r(id, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut out);
            (rc == 0 && !out.is_null()).then_some(pwd.pw_name)?
        } else {
            let mut grp: libc::group = std::mem::zeroed();
            let mut out = std::ptr::null_mut();
            let rc = libc::getgrgid_r(id, &mut grp, buf.as_mut_ptr(), buf.len(), &mut out);
            (rc == 0 && !out.is_null()).then_some(grp.gr_name)?
        };
        Some(std::ffi::CStr::from_ptr(name).to_bytes().to_vec())
    }
}

/// This system's uid (`users`) or gid for a name.
pub fn local_id(users: bool, name: &[u8]) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 16384];
    // SAFETY: as in local_name.
    unsafe {
        if users {
            let mut pwd: libc::passwd = std::mem::zeroed();
            let mut out = std::ptr::null_mut();
            let rc = libc::getpwnam_r(c.as_ptr(), &mut pwd, buf.as_mut_ptr(), buf.len(), &mut out);
            (rc == 0 && !out.is_null()).then_some(pwd.pw_uid)
        } else {
            let mut grp: libc::group = std::mem::zeroed();
            let mut out = std::ptr::null_mut();
            let rc = libc::getgrnam_r(c.as_ptr(), &mut grp, buf.as_mut_ptr(), buf.len(), &mut out);
            (rc == 0 && !out.is_null()).then_some(grp.gr_gid)
        }
    }
}

/// A local transfer's maps: the sender's names are this system's, so only ids a map
/// matches change.
#[derive(Debug, Default)]
pub struct LocalMaps {
    users: Option<NameMap>,
    groups: Option<NameMap>,
    numeric: bool,
    done: std::collections::HashMap<(bool, u32), u32>,
}

impl LocalMaps {
    /// The maps of `o` that apply (owners only for root); unknown target names are passed
    /// to `warn`.
    pub fn new(o: &crate::Options, am_root: bool, mut warn: impl FnMut(String)) -> LocalMaps {
        let mut parse = |spec: &Option<String>, kind: Kind, users: bool| {
            spec.as_deref()
                .and_then(|m| NameMap::parse(m, kind, |n| local_id(users, n), &mut warn).ok())
        };
        LocalMaps {
            users: parse(&o.usermap, Kind::User, true).filter(|_| o.owner && am_root),
            groups: parse(&o.groupmap, Kind::Group, false).filter(|_| o.group),
            numeric: o.numeric_ids,
            done: Default::default(),
        }
    }

    /// Maps the ids of an entry's named ACL entries (users by the user map, groups by the
    /// group map).
    pub fn apply_acl(&mut self, acl: &mut std::sync::Arc<rtsync_tree::acl::EntryAcl>) {
        if self.users.is_none() && self.groups.is_none() {
            return;
        }
        let a = std::sync::Arc::make_mut(acl);
        for n in a
            .access
            .names
            .iter_mut()
            .chain(a.default.iter_mut().flat_map(|d| d.names.iter_mut()))
        {
            n.id = self.map_one(n.user, n.id);
        }
    }

    /// Maps an entry's uid and gid.
    pub fn apply(&mut self, uid: &mut u32, gid: &mut u32) {
        *uid = self.map_one(true, *uid);
        *gid = self.map_one(false, *gid);
    }

    fn map_one(&mut self, users: bool, id: u32) -> u32 {
        let map = if users { &self.users } else { &self.groups };
        let Some(map) = map else { return id };
        let numeric = self.numeric;
        *self.done.entry((users, id)).or_insert_with(|| {
            let name = if numeric { None } else { local_name(users, id) };
            resolve(Some(map), id, name.as_deref(), |n| local_id(users, n))
        })
    }
}

/// `--chown=USER:GROUP` split into its halves (`None` for an empty one).
pub fn split_chown(spec: &str) -> (Option<&str>, Option<&str>) {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    (
        Some(user).filter(|u| !u.is_empty()),
        group.filter(|g| !g.is_empty()),
    )
}

/// Whether this process may give files group `gid` (it may act as root, or `gid` is one of
/// its groups): as stock's FLAG_SKIP_GROUP decides, a group it may not give is neither set
/// nor itemized. Our groups are read once.
pub fn may_give_group(gid: u32, am_root: bool) -> bool {
    static GROUPS: std::sync::OnceLock<Vec<u32>> = std::sync::OnceLock::new();
    if am_root {
        return true;
    }
    GROUPS
        .get_or_init(|| {
            // SAFETY: getegid has no preconditions; a null buffer with size 0 asks for the
            // count only, and the second call's buffer holds that many entries.
            unsafe {
                let mut all = vec![libc::getegid()];
                let n = libc::getgroups(0, std::ptr::null_mut());
                if n > 0 {
                    let mut groups = vec![0 as libc::gid_t; n as usize];
                    let got = libc::getgroups(n, groups.as_mut_ptr());
                    if got > 0 {
                        all.extend_from_slice(&groups[..got as usize]);
                    }
                }
                all
            }
        })
        .contains(&gid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(name: &[u8]) -> Option<u32> {
        match name {
            b"alice" => Some(1001),
            b"bob" => Some(1002),
            _ => None,
        }
    }

    fn map(spec: &str) -> NameMap {
        NameMap::parse(spec, Kind::User, local, |w| panic!("{w}")).unwrap()
    }

    #[test]
    fn items_match_in_order() {
        let m = map("0:5,10-20:alice,ali*:7,carol:bob,:9,*:3");
        let cases: &[(u32, Option<&[u8]>, u32)] = &[
            (0, Some(b"root"), 5),
            (15, Some(b"x"), 1001),
            (20, None, 1001),
            (21, Some(b"alibaba"), 7),
            (22, Some(b"carol"), 1002),
            (23, None, 9),
            (24, Some(b"dave"), 3),
        ];
        for &(id, name, want) in cases {
            assert_eq!(m.lookup(id, name), Some(want), "{id} {name:?}");
        }
        // The wildcard also takes nameless ids when nothing earlier does.
        assert_eq!(map("*:3").lookup(4, None), Some(3));
        assert_eq!(map("x:3").lookup(4, None), None);
    }

    #[test]
    fn unmatched_ids_follow_their_names() {
        let m = map("5:alice");
        assert_eq!(resolve(Some(&m), 5, Some(b"zed"), local), 1001);
        assert_eq!(resolve(Some(&m), 6, Some(b"bob"), local), 1002);
        assert_eq!(resolve(Some(&m), 6, Some(b"zed"), local), 6);
        assert_eq!(resolve(None, 0, Some(b"bob"), local), 0);
        assert_eq!(resolve(None, 7, None, local), 7);
    }

    #[test]
    fn bad_maps_are_refused_with_stocks_words() {
        for (spec, want) in [
            ("abc", "No colon found in --usermap: abc"),
            ("abc:", "No name found after colon --usermap: abc:"),
            ("1x:3", "Invalid number in --usermap: 1x"),
            ("1-:3", "Invalid number in --usermap: 1-"),
            ("1-2-3:3", "Invalid number in --usermap: 1-2-3"),
            ("99999999999:3", "Invalid ID number: 99999999999"),
        ] {
            let e = NameMap::parse(spec, Kind::User, local, |_| {}).unwrap_err();
            assert_eq!(e.0, want);
        }
        let mut warned = Vec::new();
        let m = NameMap::parse("1:nobody-here,2:bob", Kind::Group, local, |w| {
            warned.push(w)
        })
        .unwrap();
        assert_eq!(warned, ["Unknown --groupmap name on receiver: nobody-here"]);
        assert_eq!(m.lookup(1, None), None);
        assert_eq!(m.lookup(2, None), Some(1002));
    }

    #[test]
    fn chown_halves() {
        assert_eq!(split_chown("a:b"), (Some("a"), Some("b")));
        assert_eq!(split_chown("a"), (Some("a"), None));
        assert_eq!(split_chown(":b"), (None, Some("b")));
        assert_eq!(split_chown("a:"), (Some("a"), None));
    }
}

/// Why `--copy-as` could not be followed: stock's words, whether they stand alone (an
/// unknown name) or are a system error (`rsync: ` before them), and stock's source
/// location for the closing line. Stock exits with code 1 for each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyAsError {
    pub message: String,
    pub bare: bool,
    pub at: &'static str,
}

/// `--copy-as=USER[:GROUP]`: this process becomes `USER` (a name or a number) with `GROUP`
/// as its only group, or without one given `USER`'s primary group and the groups it is a
/// member of. Done where stock does it: once the connection is up, before the file list.
pub fn become_copy_as(spec: &str) -> Result<(), CopyAsError> {
    let numeric = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().map_or(u32::MAX, |n| n as u32))
    };
    let bare = |message: String, at| CopyAsError {
        message,
        bare: true,
        at,
    };
    let sys = |what: &str, at| CopyAsError {
        message: format!(
            "{what} failed: {}",
            crate::local::os_error(&std::io::Error::last_os_error())
        ),
        bare: false,
        at,
    };
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let uid = numeric(user)
        .or_else(|| {
            (!user.is_empty())
                .then(|| local_id(true, user.as_bytes()))
                .flatten()
        })
        .ok_or_else(|| bare(format!("Invalid copy-as user: {user}"), "main.c(270)"))?;
    let gid = match group {
        Some(g) => numeric(g)
            .or_else(|| {
                (!g.is_empty())
                    .then(|| local_id(false, g.as_bytes()))
                    .flatten()
            })
            .ok_or_else(|| bare(format!("Invalid copy-as group: {g}"), "main.c(276)"))?,
        None => primary_gid(uid).ok_or_else(|| sys("getpwuid", "main.c(282)"))?,
    };
    // SAFETY: plain credential calls with valid arguments; the name is NUL-terminated.
    unsafe {
        if libc::setgid(gid) < 0 {
            return Err(sys("setgid", "main.c(289)"));
        }
        if libc::setgroups(1, &gid) < 0 {
            return Err(sys("setgroups", "main.c(294)"));
        }
        if group.is_none() {
            let name = std::ffi::CString::new(user).unwrap_or_default();
            if libc::initgroups(name.as_ptr(), gid) < 0 {
                return Err(sys("initgroups", "main.c(300)"));
            }
        }
        if libc::setuid(uid) < 0 || libc::seteuid(uid) < 0 {
            return Err(sys("setuid", "main.c(310)"));
        }
    }
    Ok(())
}

/// The primary group of user `uid`.
fn primary_gid(uid: u32) -> Option<u32> {
    let mut buf = vec![0 as libc::c_char; 16384];
    // SAFETY: as in local_name.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut out = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut out);
        (rc == 0 && !out.is_null()).then_some(pwd.pw_gid)
    }
}
