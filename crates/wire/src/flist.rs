//! The file-list codec (protocol ≥ 30, without incremental recursion), both directions.
//!
//! Decoding validates every name (no absolute names, no `..`, `.` or empty components, no NUL,
//! bounded lengths, a non-directory `.` refused) before anything reaches the filesystem — the
//! CVE-2024-12087 class of bugs — and never uses bytes it did not read (12085). The received
//! list is sorted into rsync's order, which is the order the wire indices refer to.

use std::collections::HashMap;
use std::io::Read;

use rtsync_tree::{compare_names, FileEntry, FileKind};

use crate::error::{Error, Result};
use crate::varint::{put_i32, put_u16, put_varint, put_varlong, ReadWire};

/// Per-entry transmission flags.
pub mod xmit {
    pub const TOP_DIR: u32 = 1 << 0;
    pub const SAME_MODE: u32 = 1 << 1;
    pub const EXTENDED_FLAGS: u32 = 1 << 2;
    pub const SAME_UID: u32 = 1 << 3;
    pub const SAME_GID: u32 = 1 << 4;
    pub const SAME_NAME: u32 = 1 << 5;
    pub const LONG_NAME: u32 = 1 << 6;
    pub const SAME_TIME: u32 = 1 << 7;
    pub const SAME_RDEV_MAJOR: u32 = 1 << 8;
    pub const NO_CONTENT_DIR: u32 = 1 << 8;
    pub const HLINKED: u32 = 1 << 9;
    pub const USER_NAME_FOLLOWS: u32 = 1 << 10;
    pub const GROUP_NAME_FOLLOWS: u32 = 1 << 11;
    pub const HLINK_FIRST: u32 = 1 << 12;
    pub const IO_ERROR_ENDLIST: u32 = 1 << 12;
    pub const MOD_NSEC: u32 = 1 << 13;
    pub const SAME_ATIME: u32 = 1 << 14;
    pub const CRTIME_EQ_MTIME: u32 = 1 << 17;
}

/// The io_error bit for a general error (stock's IOERR_GENERAL).
pub const IOERR_GENERAL: i32 = 1;

/// Longest path rsync handles (MAXPATHLEN).
pub const MAX_PATH: usize = 4096;
/// Largest number of entries we accept in one list (guards memory against a hostile peer).
pub const MAX_ENTRIES: usize = 50_000_000;

/// Which attributes travel in the list; both sides derive it from the same options.
#[derive(Debug, Clone, Default)]
pub struct FlistOptions {
    pub protocol: u32,
    /// `-R`: received names may start with `/` (taken as below the destination).
    pub relative: bool,
    /// CF_VARINT_FLIST_FLAGS.
    pub varint_flags: bool,
    /// The io-error end marker is allowed (protocol ≥ 31 or CF_SAFE_FLIST).
    pub safe_flist: bool,
    /// CF_ID0_NAMES.
    pub id0_names: bool,
    pub preserve_uid: bool,
    pub preserve_gid: bool,
    pub preserve_links: bool,
    pub preserve_devices: bool,
    pub preserve_specials: bool,
    pub preserve_hard_links: bool,
    /// `-c`: a whole-file checksum of this length follows each regular file.
    pub checksum_len: Option<usize>,
    pub numeric_ids: bool,
    /// Incremental recursion (CF_INC_RECURSE): owner and group names travel inline, the first
    /// time each id is sent, instead of in lists after the file list.
    pub inc_recurse: bool,
    /// `--delete-missing-args`: an entry with mode 0 is a missing source (see
    /// [`FileEntry::is_missing`]), the one mode without a file type that is accepted.
    pub missing_entries: bool,
    /// `-U`: non-directories carry their access time.
    pub preserve_atimes: bool,
    /// `-X`: an attribute list follows every entry.
    pub xattrs: Option<rtsync_tree::xattr::XattrRules>,
    /// `-A`: ACLs follow each non-symlink entry (see [`crate::acls`]); the id lists are sent
    /// even without `-o`/`-g`, for the named entries.
    pub preserve_acls: bool,
    /// `-R --no-implied-dirs` on the receiving side: directories the sender flagged as
    /// implied parents (XMIT_TOP_DIR | XMIT_NO_CONTENT_DIR) are left inactive, as stock's
    /// generator passes them by (missing parents are made plainly when needed).
    pub skip_implied: bool,
    /// `--iconv`: names are converted to and from UTF-8 on the wire, and indices count
    /// entries in the order sent (see [`crate::iconv`]).
    pub iconv: Option<crate::iconv::Iconv>,
    /// With `iconv`, symlink targets are converted too (CF_SYMLINK_ICONV).
    pub symlink_iconv: bool,
}

impl FlistOptions {
    /// Indices count entries in the order sent, not sorted (stock's need_unsorted_flist).
    pub fn unsorted(&self) -> bool {
        self.iconv.is_some()
    }

    fn id_lists(&self) -> (bool, bool) {
        (
            (self.preserve_uid || self.preserve_acls) && !self.numeric_ids,
            (self.preserve_gid || self.preserve_acls) && !self.numeric_ids,
        )
    }
}

/// A received file list, in rsync's sorted order: `entries[ndx]` is what index `ndx` means.
#[derive(Debug, Clone, Default)]
pub struct FileList {
    pub entries: Vec<FileEntry>,
    /// False for duplicates that rsync's cleaning pass removes (their index stays reserved).
    pub active: Vec<bool>,
    /// False for directories sent only as implied parents (XMIT_NO_CONTENT_DIR): `--delete`
    /// leaves their other contents alone. (Kept beside `FileEntry`, which has no such field.)
    pub content_dir: Vec<bool>,
    /// True where an entry is inactive only as an implied parent under `-R
    /// --no-implied-dirs` ([`FlistOptions::skip_implied`]): with incremental recursion its
    /// sub-list still comes (empty when read: `None` below).
    pub skipped_implied: Vec<bool>,
    /// The sender's io_error flags from the end marker.
    pub io_error: i32,
    /// uid → user name, as the sender listed them.
    pub user_names: Vec<(u32, Vec<u8>)>,
    /// gid → group name.
    pub group_names: Vec<(u32, Vec<u8>)>,
    /// With `--iconv` (unsorted indices): `sent[i]` is the position in which `entries[i]`
    /// was received, which is what the peer's index for it counts; empty otherwise.
    pub sent: Vec<u32>,
    /// `--iconv`: received names that did not convert (left out; each an error here).
    pub unconverted: u64,
}

/// The state that makes entries depend on the previous one.
#[derive(Debug, Clone, Default)]
struct Prev {
    name: Vec<u8>,
    mode: u32,
    mtime: i64,
    atime: i64,
    uid: u32,
    gid: u32,
    rdev_major: u32,
}

impl FileList {
    /// `-m` on the receiving side, as rsync cleans its received list: a directory below the
    /// transfer root that holds (at any depth) no non-directory entry is dropped, unless it or
    /// a directory below it is excluded on this side (`kept`), which keeps its chain.
    pub fn prune_empty_dirs(&mut self, kept: impl Fn(&[u8]) -> bool) {
        let parents = |name: &[u8]| -> Vec<Vec<u8>> {
            let mut out = Vec::new();
            let mut n = name;
            while let Some(p) = n.iter().rposition(|&b| b == b'/') {
                n = &n[..p];
                out.push(n.to_vec());
            }
            out
        };
        let mut keep: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
        for (i, e) in self.entries.iter().enumerate() {
            if !self.active.get(i).copied().unwrap_or(true) {
                continue;
            }
            if !e.is_dir() || kept(&e.name) {
                if e.is_dir() {
                    keep.insert(e.name.clone());
                }
                keep.extend(parents(&e.name));
            }
        }
        for (i, e) in self.entries.iter().enumerate() {
            if e.is_dir() && e.name != b"." && !keep.contains(&e.name) {
                if let Some(a) = self.active.get_mut(i) {
                    *a = false;
                }
            }
        }
    }
}

/// Checks a received name (see the module docs). `.` is allowed only as a directory.
pub fn validate_name(name: &[u8], is_dir: bool) -> Result<()> {
    let show = || String::from_utf8_lossy(name).into_owned();
    if name.is_empty() || name.len() >= MAX_PATH || name.contains(&0) {
        return Err(Error::UnsafePath(show()));
    }
    if name == b"." {
        return if is_dir {
            Ok(())
        } else {
            Err(Error::Protocol(format!(
                "rejecting non-directory transfer-root entry: {}",
                show()
            )))
        };
    }
    if name[0] == b'/' {
        return Err(Error::UnsafePath(show()));
    }
    for comp in name.split(|&b| b == b'/') {
        if comp.is_empty() || comp == b"." || comp == b".." {
            return Err(Error::UnsafePath(show()));
        }
    }
    Ok(())
}

/// Decodes a file list from the sender.
pub struct FlistDecoder {
    opts: FlistOptions,
    prev: Prev,
    /// Names sent inline with incremental recursion (uid/gid → name).
    inline_users: Vec<(u32, Vec<u8>)>,
    inline_groups: Vec<(u32, Vec<u8>)>,
    /// Incremental recursion: where the list being read starts in the global numbering,
    /// and the hard-link leaders of earlier lists by global index.
    ndx_start: usize,
    leaders: std::collections::HashMap<usize, FileEntry>,
    xattrs: crate::xattrs::XattrReceiver,
    acls: crate::acls::AclReceiver,
    /// `--iconv`: why the entry being read could not be converted (it is left out).
    unconverted: Option<String>,
}

impl FlistDecoder {
    pub fn new(opts: FlistOptions) -> FlistDecoder {
        FlistDecoder {
            opts,
            prev: Prev::default(),
            inline_users: Vec::new(),
            inline_groups: Vec::new(),
            ndx_start: 0,
            leaders: std::collections::HashMap::new(),
            xattrs: Default::default(),
            acls: Default::default(),
            unconverted: None,
        }
    }

    /// Whether indices count entries in the order sent (`--iconv`).
    pub fn unsorted(&self) -> bool {
        self.opts.unsorted()
    }

    /// Incremental recursion: the next list's entries are numbered from `ndx_start`.
    pub fn set_ndx_start(&mut self, ndx_start: usize) {
        self.ndx_start = ndx_start;
    }

    /// Reads entries up to the end marker, then the id lists; validates and sorts.
    pub fn read_list<R: Read + ?Sized>(&mut self, r: &mut R) -> Result<FileList> {
        let mut entries: Vec<(FileEntry, bool, bool)> = Vec::new();
        let mut io_error = 0;
        let mut io_error_local = 0;
        let mut unconverted = Vec::new();
        loop {
            let flags = if self.opts.varint_flags {
                let f = r.read_varint()?;
                if f == 0 {
                    io_error = r.read_varint()?;
                    break;
                }
                f as u32
            } else {
                let mut f = u32::from(r.read_u8()?);
                if f == 0 {
                    break;
                }
                if f & xmit::EXTENDED_FLAGS != 0 {
                    f |= u32::from(r.read_u8()?) << 8;
                }
                if f == xmit::EXTENDED_FLAGS | xmit::IO_ERROR_ENDLIST {
                    if !self.opts.safe_flist {
                        return Err(Error::Protocol(format!("Invalid flist flag: {f:x}")));
                    }
                    io_error = r.read_varint()?;
                    break;
                }
                f
            };
            if entries.len() >= MAX_ENTRIES {
                return Err(Error::Protocol("file list too long".into()));
            }
            let mut e = self.read_entry(r, flags, &entries)?;
            if let Some(msg) = self.unconverted.take() {
                // (Stock's FERROR_UTF8 / FERROR_XFER: the entry is left out.)
                eprintln!("{msg}");
                io_error_local |= crate::flist::IOERR_GENERAL;
                unconverted.push(entries.len());
            }
            if self.opts.preserve_acls && crate::acls::carries_acl(e.kind) {
                let (users, groups) = (&mut self.inline_users, &mut self.inline_groups);
                let mut named = |(user, id, name): crate::acls::InlineName| {
                    if user { &mut *users } else { &mut *groups }.push((id, name));
                };
                e.acl = Some(self.acls.read(r, e.mode, &mut named)?);
            }
            if let Some(rules) = &self.opts.xattrs {
                e.xattrs = Some(self.xattrs.read(r, rules)?);
            }
            let content = !(e.is_dir() && flags & xmit::NO_CONTENT_DIR != 0);
            let implied = e.is_dir()
                && self.opts.protocol >= 30
                && flags & (xmit::TOP_DIR | xmit::NO_CONTENT_DIR)
                    == xmit::TOP_DIR | xmit::NO_CONTENT_DIR;
            entries.push((e, content, implied));
        }
        let (want_uids, want_gids) = self.opts.id_lists();
        let inc = self.opts.inc_recurse;
        let user_names = if want_uids && !inc {
            read_id_list(r, self.opts.id0_names)?
        } else {
            self.inline_users.clone()
        };
        let group_names = if want_gids && !inc {
            read_id_list(r, self.opts.id0_names)?
        } else {
            self.inline_groups.clone()
        };
        if inc && self.opts.preserve_hard_links {
            // Later lists name their leaders by global index, counted in the order received.
            for (i, (e, _, _)) in entries.iter().enumerate() {
                if e.hardlink_key.is_some() {
                    self.leaders.insert(self.ndx_start + i, e.clone());
                }
            }
        }
        let implied: Vec<Vec<u8>> = entries
            .iter()
            .filter(|(_, _, implied)| *implied && self.opts.skip_implied)
            .map(|(e, _, _)| e.name.clone())
            .collect();
        let (entries, content_dir): (Vec<FileEntry>, Vec<bool>) =
            entries.into_iter().map(|(e, c, _)| (e, c)).unzip();
        let (entries, mut active, content_dir, order) = sort_and_clean(entries, content_dir);
        for (i, &at) in order.iter().enumerate() {
            if unconverted.contains(&(at as usize)) {
                active[i] = false;
            }
        }
        let sent = if self.opts.unsorted() {
            order
        } else {
            Vec::new()
        };
        io_error |= io_error_local;
        let mut skipped_implied = Vec::new();
        if !implied.is_empty() {
            let implied: std::collections::HashSet<&[u8]> =
                implied.iter().map(|n| &n[..]).collect();
            let same = |i: usize, j: Option<usize>| {
                j.and_then(|j| entries.get(j))
                    .is_some_and(|o| o.name == entries[i].name)
            };
            for i in 0..entries.len() {
                // (A name sent twice, once as a directory of its own, is not only implied;
                // duplicates sort next to each other.)
                let twice = same(i, i.checked_sub(1)) || same(i, Some(i + 1));
                if entries[i].is_dir() && implied.contains(&entries[i].name[..]) && !twice {
                    active[i] = false;
                    skipped_implied.resize(entries.len(), false);
                    skipped_implied[i] = true;
                }
            }
        }
        Ok(FileList {
            entries,
            active,
            content_dir,
            skipped_implied,
            io_error,
            user_names,
            group_names,
            sent,
            unconverted: unconverted.len() as u64,
        })
    }

    fn read_entry<R: Read + ?Sized>(
        &mut self,
        r: &mut R,
        flags: u32,
        so_far: &[(FileEntry, bool, bool)],
    ) -> Result<FileEntry> {
        let l1 = if flags & xmit::SAME_NAME != 0 {
            usize::from(r.read_u8()?)
        } else {
            0
        };
        let l2 = if flags & xmit::LONG_NAME != 0 {
            let v = r.read_varint()?;
            usize::try_from(v).map_err(|_| Error::Protocol(format!("bad name length {v}")))?
        } else {
            usize::from(r.read_u8()?)
        };
        if l1 > self.prev.name.len() || l1 + l2 >= MAX_PATH {
            return Err(Error::Protocol(format!(
                "overflow: xflags=0x{flags:x} l1={l1} l2={l2}"
            )));
        }
        let mut name = self.prev.name[..l1].to_vec();
        let start = name.len();
        name.resize(l1 + l2, 0);
        r.read_all(&mut name[start..])?;
        self.prev.name.clone_from(&name);
        if let Some(ic) = &self.opts.iconv {
            match ic.from_wire(&name) {
                Ok(local) => name = local,
                Err(err) => {
                    self.unconverted = Some(crate::iconv::cannot_convert(
                        "receiver", "filename", &name, &err,
                    ));
                }
            }
        }
        if self.opts.relative && name.first() == Some(&b'/') {
            // `-R` from an absolute source: stock's sender names it from `/`, and its
            // receiver takes such names (only with -R) below the destination.
            let slashes = name.iter().take_while(|&&c| c == b'/').count();
            name.drain(..slashes);
            if name.is_empty() {
                name = b".".to_vec();
            }
        }
        let ndx = so_far.len();

        let start = if self.opts.inc_recurse {
            self.ndx_start
        } else {
            0
        };
        let mut inherited_key = None;
        if self.opts.preserve_hard_links
            && flags & xmit::HLINKED != 0
            && flags & xmit::HLINK_FIRST == 0
        {
            let first = r.read_varint()?;
            let out_of_range =
                || Error::Protocol(format!("hard-link reference out of range: {first} ({ndx})"));
            let first = usize::try_from(first).map_err(|_| out_of_range())?;
            if first < start {
                // A leader in an earlier list (incremental recursion): the attributes
                // follow in full; the link group is the leader's, which must have been
                // declared (stock's wording).
                let key = self
                    .leaders
                    .get(&first)
                    .and_then(|l| l.hardlink_key)
                    .ok_or_else(|| {
                        Error::Protocol(format!(
                            "hard-link gnum {first} precedes flist start {start}"
                        ))
                    })?;
                inherited_key = Some(key);
            } else {
                // In this list, in the order received: the attributes are the leader's.
                let local = first - start;
                let leader = so_far
                    .get(local)
                    .filter(|_| local < ndx)
                    .map(|l| &l.0)
                    .ok_or_else(out_of_range)?;
                let mut e = leader.clone();
                e.name = name;
                e.top_dir = false;
                e.checksum = leader.checksum.clone();
                e.hardlink_key = leader.hardlink_key;
                validate_name(&e.name, e.is_dir())?;
                self.prev.mode = leader.mode;
                self.prev.mtime = leader.mtime;
                if self.opts.preserve_atimes && !e.is_dir() {
                    self.prev.atime = leader.atime;
                }
                self.prev.uid = leader.uid;
                self.prev.gid = leader.gid;
                return Ok(e);
            }
        }

        let mut size = r.read_varlong(3)?;
        if flags & xmit::SAME_TIME == 0 {
            self.prev.mtime = r.read_varlong(4)?;
        }
        let nsec = if flags & xmit::MOD_NSEC != 0 {
            r.read_varint_in(0, 999_999_999, "modtime_nsec")? as u32
        } else {
            0
        };
        if flags & xmit::SAME_MODE == 0 {
            self.prev.mode = r.read_i32()? as u32;
        }
        let mode = self.prev.mode;
        let missing = mode == 0 && self.opts.missing_entries;
        let kind = FileKind::from_mode(mode).or(missing.then_some(FileKind::Regular));
        let kind = kind.ok_or_else(|| {
            Error::Protocol(format!(
                "invalid file mode 0{mode:o} for {}",
                String::from_utf8_lossy(&name)
            ))
        })?;
        let timed_access = self.opts.preserve_atimes && kind != FileKind::Directory;
        if timed_access && flags & xmit::SAME_ATIME == 0 {
            self.prev.atime = r.read_varlong(4)?;
        }
        let atime = if timed_access { self.prev.atime } else { 0 };
        if self.opts.preserve_uid && flags & xmit::SAME_UID == 0 {
            self.prev.uid = r.read_varint()? as u32;
            if flags & xmit::USER_NAME_FOLLOWS != 0 {
                let len = usize::from(r.read_u8()?);
                let mut n = vec![0; len];
                r.read_all(&mut n)?;
                if !self.opts.numeric_ids {
                    crate::local::received_name(true, &n);
                }
                self.inline_users.push((self.prev.uid, n));
            }
        }
        if self.opts.preserve_gid && flags & xmit::SAME_GID == 0 {
            self.prev.gid = r.read_varint()? as u32;
            if flags & xmit::GROUP_NAME_FOLLOWS != 0 {
                let len = usize::from(r.read_u8()?);
                let mut n = vec![0; len];
                r.read_all(&mut n)?;
                if !self.opts.numeric_ids {
                    crate::local::received_name(false, &n);
                }
                self.inline_groups.push((self.prev.gid, n));
            }
        }
        let is_device = matches!(kind, FileKind::BlockDevice | FileKind::CharDevice);
        let is_special = matches!(kind, FileKind::Fifo | FileKind::Socket);
        let mut rdev = 0u64;
        if (self.opts.preserve_devices && is_device)
            || (self.opts.preserve_specials && is_special && self.opts.protocol < 31)
        {
            if flags & xmit::SAME_RDEV_MAJOR == 0 {
                self.prev.rdev_major = r.read_varint()? as u32;
            }
            let minor = r.read_varint()? as u32;
            if is_device {
                rdev = libc::makedev(self.prev.rdev_major, minor);
            }
            size = 0;
        } else if is_device {
            size = 0;
        }
        let link_target = if kind == FileKind::Symlink {
            if self.opts.preserve_links {
                let len = r.read_varint()?;
                let len = usize::try_from(len)
                    .ok()
                    .filter(|&l| l < MAX_PATH)
                    .ok_or_else(|| Error::Protocol(format!("overflow: linkname_len={len}")))?;
                let mut t = vec![0; len];
                r.read_all(&mut t)?;
                if t.contains(&0) {
                    return Err(Error::Protocol("symlink target contains NUL".into()));
                }
                match &self.opts.iconv {
                    Some(ic) if self.opts.symlink_iconv => match ic.from_wire(&t) {
                        Ok(local) => Some(local),
                        Err(err) => {
                            if self.unconverted.is_none() {
                                self.unconverted = Some(crate::iconv::cannot_convert(
                                    "receiver",
                                    "symlink data for",
                                    &name,
                                    &err,
                                ));
                            }
                            Some(t)
                        }
                    },
                    _ => Some(t),
                }
            } else {
                Some(Vec::new())
            }
        } else {
            None
        };
        let checksum = match self.opts.checksum_len {
            Some(len) if kind == FileKind::Regular && !missing => {
                let mut sum = vec![0; len];
                r.read_all(&mut sum)?;
                Some(sum)
            }
            _ => None,
        };
        if size < 0 {
            return Err(Error::Protocol(
                "Offset underflow: file-length is negative".into(),
            ));
        }
        validate_name(&name, kind == FileKind::Directory)?;
        let hardlink_key = (self.opts.preserve_hard_links
            && flags & xmit::HLINKED != 0
            && kind != FileKind::Directory)
            .then_some((u64::MAX, (start + ndx) as u64));
        let hardlink_key = inherited_key.or(hardlink_key);
        Ok(FileEntry {
            name,
            kind,
            mode,
            size: size as u64,
            mtime: self.prev.mtime,
            mtime_nsec: nsec,
            atime,
            uid: self.prev.uid,
            gid: self.prev.gid,
            rdev,
            link_target,
            hardlink_key,
            checksum,
            top_dir: kind == FileKind::Directory
                && flags & xmit::TOP_DIR != 0
                && flags & xmit::NO_CONTENT_DIR == 0,
            xattrs: None,
            acl: None,
        })
    }
}

fn read_id_list<R: Read + ?Sized>(r: &mut R, id0_names: bool) -> Result<Vec<(u32, Vec<u8>)>> {
    let mut out = Vec::new();
    loop {
        let id = r.read_varint()?;
        if id == 0 {
            break;
        }
        if out.len() > 1_000_000 {
            return Err(Error::Protocol("id list too long".into()));
        }
        let len = usize::from(r.read_u8()?);
        let mut name = vec![0; len];
        r.read_all(&mut name)?;
        out.push((id as u32, name));
    }
    if id0_names {
        let len = usize::from(r.read_u8()?);
        let mut name = vec![0; len];
        r.read_all(&mut name)?;
        out.push((0, name));
    }
    Ok(out)
}

/// Sorts into rsync's order; of duplicate names one stays active (a directory if any).
/// Also gives each sorted entry's position as received.
fn sort_and_clean(
    entries: Vec<FileEntry>,
    content_dir: Vec<bool>,
) -> (Vec<FileEntry>, Vec<bool>, Vec<bool>, Vec<u32>) {
    let mut paired: Vec<(FileEntry, bool, u32)> = entries
        .into_iter()
        .zip(content_dir)
        .enumerate()
        .map(|(i, (e, c))| (e, c, i as u32))
        .collect();
    paired.sort_by(|(a, _, _), (b, _, _)| compare_names(&a.name, a.is_dir(), &b.name, b.is_dir()));
    let mut order = Vec::with_capacity(paired.len());
    let (entries, content_dir): (Vec<FileEntry>, Vec<bool>) = paired
        .into_iter()
        .map(|(e, c, i)| {
            order.push(i);
            (e, c)
        })
        .unzip();
    let mut active = vec![true; entries.len()];
    for i in 1..entries.len() {
        if entries[i].name == entries[i - 1].name {
            // Keep the directory (rsync prefers it); otherwise the first one.
            if entries[i].is_dir() && !entries[i - 1].is_dir() {
                active[i - 1] = false;
            } else {
                active[i] = false;
            }
        }
    }
    (entries, active, content_dir, order)
}

/// How a directory goes into a list (stock's FLAG_CONTENT_DIR / FLAG_IMPLIED_DIR).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// Its contents are listed too (recursion, `-d dir/`).
    With,
    /// Only the directory itself (`-d` without recursion, a `--files-from` name without
    /// its slash, a mount point under `-x`).
    Without,
    /// An implied parent of a `-R` path.
    Implied,
}

/// Encodes a file list for the receiver.
pub struct FlistEncoder {
    opts: FlistOptions,
    prev: Prev,
    first: bool,
    /// Hard-link groups: key → index of the group's first entry.
    hlink_first: HashMap<(u64, u64), usize>,
    /// Index of the current list's first entry (incremental recursion): a hard-link follower
    /// whose first entry is older is sent in full.
    list_start: usize,
    /// Ids whose names were sent inline (incremental recursion).
    named_uids: std::collections::HashSet<u32>,
    named_gids: std::collections::HashSet<u32>,
    xattrs: crate::xattrs::XattrSender,
    /// `-A`: the ACLs sent so far, and the ids their named entries add to the id lists.
    acls: crate::acls::AclSender,
    acl_users: Vec<(u32, Vec<u8>)>,
    acl_groups: Vec<(u32, Vec<u8>)>,
    /// A daemon module's `numeric ids`: named ACL entries bring no names either.
    acl_names_off: bool,
}

impl FlistEncoder {
    pub fn new(opts: FlistOptions) -> FlistEncoder {
        FlistEncoder {
            opts,
            prev: Prev::default(),
            first: true,
            hlink_first: HashMap::new(),
            list_start: 0,
            named_uids: Default::default(),
            named_gids: Default::default(),
            xattrs: Default::default(),
            acls: Default::default(),
            acl_users: Vec::new(),
            acl_groups: Vec::new(),
            acl_names_off: false,
        }
    }

    /// A daemon module's `numeric ids` (the id lists go, empty): no names for the ids of
    /// named ACL entries.
    pub fn acl_names_off(&mut self) {
        self.acl_names_off = true;
    }

    /// Incremental recursion: the entries that follow belong to the list starting at index
    /// `ndx_start`.
    pub fn set_list_start(&mut self, ndx_start: usize) {
        self.list_start = ndx_start;
    }

    /// [`FlistEncoder::put_entry`] for incremental recursion: a directory whose contents are
    /// not sent in a list of its own is flagged XMIT_NO_CONTENT_DIR (the receiver must not
    /// wait for its list, nor delete in it).
    pub fn put_entry_inc(
        &mut self,
        out: &mut Vec<u8>,
        e: &FileEntry,
        ndx: usize,
        content: bool,
    ) -> Result<()> {
        let dir_flags = if !e.is_dir() {
            0
        } else if !content {
            xmit::NO_CONTENT_DIR
        } else if e.top_dir {
            xmit::TOP_DIR
        } else {
            0
        };
        self.put_entry_with(out, e, ndx, dir_flags)
    }

    /// Appends entry `ndx` (its position in the list as sent).
    pub fn put_entry(&mut self, out: &mut Vec<u8>, e: &FileEntry, ndx: usize) -> Result<()> {
        self.put_entry_as(out, e, ndx, Content::With)
    }

    /// [`FlistEncoder::put_entry`] for a directory sent with or without its contents, as
    /// stock flags it (XMIT_NO_CONTENT_DIR: a receiver deletes nothing in it).
    pub fn put_entry_as(
        &mut self,
        out: &mut Vec<u8>,
        e: &FileEntry,
        ndx: usize,
        content: Content,
    ) -> Result<()> {
        let dir_flags = match content {
            _ if !e.is_dir() => 0,
            Content::Implied if self.opts.protocol >= 30 => xmit::TOP_DIR | xmit::NO_CONTENT_DIR,
            Content::Without if self.opts.protocol >= 30 => xmit::NO_CONTENT_DIR,
            _ if e.top_dir => xmit::TOP_DIR,
            _ => 0,
        };
        self.put_entry_with(out, e, ndx, dir_flags)
    }

    fn put_entry_with(
        &mut self,
        out: &mut Vec<u8>,
        e: &FileEntry,
        ndx: usize,
        dir_flags: u32,
    ) -> Result<()> {
        let converted;
        let e = match &self.opts.iconv {
            Some(ic) => {
                converted = self.to_wire(ic, e)?;
                &converted
            }
            None => e,
        };
        self.put_entry_fields(out, e, ndx, dir_flags)?;
        if self.opts.preserve_acls && crate::acls::carries_acl(e.kind) {
            self.put_acl(out, e);
        }
        if let Some(rules) = &self.opts.xattrs {
            let list = e.xattrs.as_deref().map_or(&[][..], |l| l);
            self.xattrs.put(out, list, rules);
        }
        Ok(())
    }

    /// `--iconv`: the entry with its name (and symlink target) as they go on the wire.
    fn to_wire(&self, ic: &crate::iconv::Iconv, e: &FileEntry) -> Result<FileEntry> {
        let fail = |what: &str, err: std::io::Error| {
            Error::Protocol(crate::iconv::cannot_convert("sender", what, &e.name, &err))
        };
        let mut c = e.clone();
        c.name = ic.to_wire(&e.name).map_err(|err| fail("filename", err))?;
        if self.opts.symlink_iconv {
            if let Some(t) = &e.link_target {
                c.link_target = Some(ic.to_wire(t).map_err(|err| fail("symlink data for", err))?);
            }
        }
        Ok(c)
    }

    /// Whether `e` can be sent under `--iconv` (stock leaves out, with a message, an entry
    /// whose name or symlink target does not convert); the message otherwise.
    pub fn convertible(&self, e: &FileEntry) -> std::result::Result<(), String> {
        match &self.opts.iconv {
            Some(ic) => match self.to_wire(ic, e) {
                Ok(_) => Ok(()),
                Err(Error::Protocol(msg)) => Err(msg),
                Err(other) => Err(other.to_string()),
            },
            None => Ok(()),
        }
    }

    /// `-A`: an entry's ACLs. A named entry's id joins the id lists (or, with incremental
    /// recursion, is named inline the first time), as an owner's does.
    fn put_acl(&mut self, out: &mut Vec<u8>, e: &FileEntry) {
        let numeric = self.opts.numeric_ids || self.acl_names_off;
        let inc = self.opts.inc_recurse;
        let (nu, ng) = (&mut self.named_uids, &mut self.named_gids);
        let (au, ag) = (&mut self.acl_users, &mut self.acl_groups);
        let mut namer = |user: bool, id: u32| -> Option<Vec<u8>> {
            if numeric {
                return None;
            }
            let (seen, list) = if user {
                (&mut *nu, &mut *au)
            } else {
                (&mut *ng, &mut *ag)
            };
            if !seen.insert(id) {
                return None;
            }
            let name = if user {
                crate::local::user_name(id)
            } else {
                crate::local::group_name(id)
            };
            if inc {
                return name;
            }
            if let Some(n) = name {
                list.push((id, n));
            }
            None
        };
        self.acls.put(out, e, &mut namer);
    }

    fn put_entry_fields(
        &mut self,
        out: &mut Vec<u8>,
        e: &FileEntry,
        ndx: usize,
        dir_flags: u32,
    ) -> Result<()> {
        let mut flags: u32 = dir_flags;
        if !self.first && e.mode == self.prev.mode {
            flags |= xmit::SAME_MODE;
        }
        self.prev.mode = e.mode;
        let is_device = matches!(e.kind, FileKind::BlockDevice | FileKind::CharDevice);
        let is_special = matches!(e.kind, FileKind::Fifo | FileKind::Socket);
        let send_rdev = (self.opts.preserve_devices && is_device)
            || (self.opts.preserve_specials && is_special && self.opts.protocol < 31);
        let (major, minor) = if is_device {
            (libc::major(e.rdev), libc::minor(e.rdev))
        } else {
            (self.prev.rdev_major, 0)
        };
        if send_rdev {
            if !self.first && major == self.prev.rdev_major {
                flags |= xmit::SAME_RDEV_MAJOR;
            }
            self.prev.rdev_major = major;
        }
        let inline_names = self.opts.inc_recurse && !self.opts.numeric_ids;
        let mut user_name = None;
        let mut group_name = None;
        if !self.opts.preserve_uid || (!self.first && e.uid == self.prev.uid) {
            flags |= xmit::SAME_UID;
        } else {
            self.prev.uid = e.uid;
            if inline_names && self.named_uids.insert(e.uid) {
                user_name = crate::local::user_name(e.uid);
                if user_name.is_some() {
                    flags |= xmit::USER_NAME_FOLLOWS;
                }
            }
        }
        if !self.opts.preserve_gid || (!self.first && e.gid == self.prev.gid) {
            flags |= xmit::SAME_GID;
        } else {
            self.prev.gid = e.gid;
            if inline_names && self.named_gids.insert(e.gid) {
                group_name = crate::local::group_name(e.gid);
                if group_name.is_some() {
                    flags |= xmit::GROUP_NAME_FOLLOWS;
                }
            }
        }
        if !self.first && e.mtime == self.prev.mtime {
            flags |= xmit::SAME_TIME;
        }
        self.prev.mtime = e.mtime;
        if e.mtime_nsec != 0 && self.opts.protocol >= 31 {
            flags |= xmit::MOD_NSEC;
        }
        let timed_access = self.opts.preserve_atimes && !e.is_dir();
        if timed_access {
            if !self.first && e.atime == self.prev.atime {
                flags |= xmit::SAME_ATIME;
            }
            self.prev.atime = e.atime;
        }
        let mut first_hlink = None;
        if self.opts.preserve_hard_links && !e.is_dir() {
            if let Some(key) = e.hardlink_key {
                flags |= xmit::HLINKED;
                match self.hlink_first.get(&key) {
                    Some(&f) => first_hlink = Some(f),
                    None => {
                        self.hlink_first.insert(key, ndx);
                        flags |= xmit::HLINK_FIRST;
                    }
                }
            }
        }
        let l1 = e
            .name
            .iter()
            .zip(&self.prev.name)
            .take(255)
            .take_while(|(a, b)| a == b)
            .count();
        let l2 = e.name.len() - l1;
        if l1 > 0 {
            flags |= xmit::SAME_NAME;
        }
        if l2 > 255 {
            flags |= xmit::LONG_NAME;
        }
        if self.opts.varint_flags {
            put_varint(
                out,
                if flags == 0 {
                    xmit::EXTENDED_FLAGS
                } else {
                    flags
                } as i32,
            );
        } else {
            if flags == 0 && !e.is_dir() {
                flags |= xmit::TOP_DIR;
            }
            if flags & 0xFF00 != 0 || flags == 0 {
                flags |= xmit::EXTENDED_FLAGS;
                put_u16(out, flags as u16);
            } else {
                out.push(flags as u8);
            }
        }
        if flags & xmit::SAME_NAME != 0 {
            out.push(l1 as u8);
        }
        if flags & xmit::LONG_NAME != 0 {
            put_varint(out, l2 as i32);
        } else {
            out.push(l2 as u8);
        }
        out.extend_from_slice(&e.name[l1..]);
        self.prev.name.clone_from(&e.name);
        self.first = false;
        if let Some(f) = first_hlink {
            put_varint(out, f as i32);
            if f >= self.list_start {
                return Ok(());
            }
        }
        put_varlong(out, e.size as i64, 3);
        if flags & xmit::SAME_TIME == 0 {
            put_varlong(out, e.mtime, 4);
        }
        if flags & xmit::MOD_NSEC != 0 {
            put_varint(out, e.mtime_nsec as i32);
        }
        if flags & xmit::SAME_MODE == 0 {
            put_i32(out, e.mode as i32);
        }
        if timed_access && flags & xmit::SAME_ATIME == 0 {
            put_varlong(out, e.atime, 4);
        }
        let put_name = |out: &mut Vec<u8>, name: &[u8]| {
            let name = &name[..name.len().min(255)];
            out.push(name.len() as u8);
            out.extend_from_slice(name);
        };
        if self.opts.preserve_uid && flags & xmit::SAME_UID == 0 {
            put_varint(out, e.uid as i32);
            if let Some(n) = &user_name {
                put_name(out, n);
            }
        }
        if self.opts.preserve_gid && flags & xmit::SAME_GID == 0 {
            put_varint(out, e.gid as i32);
            if let Some(n) = &group_name {
                put_name(out, n);
            }
        }
        if send_rdev {
            if flags & xmit::SAME_RDEV_MAJOR == 0 {
                put_varint(out, major as i32);
            }
            put_varint(out, minor as i32);
        }
        if self.opts.preserve_links && e.kind == FileKind::Symlink {
            let t = e.link_target.as_deref().unwrap_or_default();
            put_varint(out, t.len() as i32);
            out.extend_from_slice(t);
        }
        if let Some(len) = self.opts.checksum_len {
            if e.kind == FileKind::Regular && !e.is_missing() {
                let mut sum = e.checksum.clone().unwrap_or_default();
                sum.resize(len, 0);
                out.extend_from_slice(&sum);
            }
        }
        Ok(())
    }

    /// Appends the end marker (with the io_error value where the protocol carries one).
    pub fn put_end(&self, out: &mut Vec<u8>, io_error: i32) {
        if self.opts.varint_flags {
            put_varint(out, 0);
            put_varint(out, io_error);
        } else if io_error != 0 && self.opts.safe_flist {
            put_u16(out, (xmit::EXTENDED_FLAGS | xmit::IO_ERROR_ENDLIST) as u16);
            put_varint(out, io_error);
        } else {
            out.push(0);
        }
    }

    /// Appends the uid/gid name lists (when the receiver expects them).
    pub fn put_id_lists(
        &self,
        out: &mut Vec<u8>,
        users: &[(u32, Vec<u8>)],
        groups: &[(u32, Vec<u8>)],
    ) {
        let (want_uids, want_gids) = self.opts.id_lists();
        let put_list = |out: &mut Vec<u8>, list: &[(u32, Vec<u8>)], users: bool| {
            // Id 0's name goes last whether or not the list used it (as stock, which looks
            // it up for the occasion: a list left empty by `numeric ids` still names it).
            let looked_up = if users {
                crate::local::user_name(0)
            } else {
                crate::local::group_name(0)
            };
            let mut zero_name: &[u8] = looked_up.as_deref().unwrap_or_default();
            for (id, name) in list {
                if *id == 0 {
                    zero_name = name;
                    continue;
                }
                if name.is_empty() {
                    continue;
                }
                let name = &name[..name.len().min(255)];
                put_varint(out, *id as i32);
                out.push(name.len() as u8);
                out.extend_from_slice(name);
            }
            put_varint(out, 0);
            if self.opts.id0_names {
                let n = &zero_name[..zero_name.len().min(255)];
                out.push(n.len() as u8);
                out.extend_from_slice(n);
            }
        };
        // `-A`: the ids named entries brought that the owners did not.
        let with_acl = |list: &[(u32, Vec<u8>)], extra: &[(u32, Vec<u8>)]| {
            let mut all = list.to_vec();
            let known: std::collections::HashSet<u32> = list.iter().map(|(id, _)| *id).collect();
            all.extend(extra.iter().filter(|(id, _)| !known.contains(id)).cloned());
            all
        };
        if want_uids {
            put_list(out, &with_acl(users, &self.acl_users), true);
        }
        if want_gids {
            put_list(out, &with_acl(groups, &self.acl_groups), false);
        }
    }
}

#[cfg(test)]
mod tests;
