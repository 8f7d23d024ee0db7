//! `-A`: the ACLs that follow each non-symlink entry of the file list (protocol ≥ 30).
//!
//! Per entry: the access ACL and, for a directory, the default ACL. Each is a varint index
//! into the list of ACLs sent so far (of its kind) plus one, or 0 followed by the ACL:
//! a flags byte (user-obj 0x01, group-obj 0x02, mask 0x04, other 0x08, names 0x10), the
//! present object entries as varints, then the named entries: a varint count and, per entry,
//! the varint id and a varint `perms << 2 | name-follows 0x01 | is-user 0x02`, the name
//! (a length byte and its bytes) following only with incremental recursion, the first
//! time the id is named. An access ACL goes without what the mode says
//! ([`Acl::strip_perms`]); a receiver completes it.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use rtsync_tree::acl::{Acl, AclName, EntryAcl};
use rtsync_tree::{FileEntry, FileKind};

use crate::error::{Error, Result};
use crate::varint::{put_varint, ReadWire};

const XMIT_USER_OBJ: u8 = 1 << 0;
const XMIT_GROUP_OBJ: u8 = 1 << 1;
const XMIT_MASK_OBJ: u8 = 1 << 2;
const XMIT_OTHER_OBJ: u8 = 1 << 3;
const XMIT_NAME_LIST: u8 = 1 << 4;
const NAME_FOLLOWS: u32 = 1;
const NAME_IS_USER: u32 = 2;
/// Most named entries one received ACL may have (stock's bound).
pub const MAX_NAMES: i32 = 65536;
/// Most ACLs of one kind a peer may define (a guard on memory).
const MAX_LIST: usize = 10_000_000;

/// Whether an entry of this kind carries ACLs.
pub fn carries_acl(kind: FileKind) -> bool {
    kind != FileKind::Symlink
}

/// How a sender names the ids of named entries: `name(user, id)` gives the name to send
/// inline (incremental recursion, first time), or `None`.
pub type Namer<'a> = dyn FnMut(bool, u32) -> Option<Vec<u8>> + 'a;

/// The sending side's lists of ACLs already sent.
#[derive(Debug, Default)]
pub struct AclSender {
    access: HashMap<Acl, usize>,
    default: HashMap<Acl, usize>,
}

impl AclSender {
    /// Appends entry `e`'s ACLs (the mode's classes when it has none).
    pub fn put(&mut self, out: &mut Vec<u8>, e: &FileEntry, namer: &mut Namer<'_>) {
        let plain;
        let acl = match e.acl.as_deref() {
            Some(a) => a,
            None => {
                plain = EntryAcl::plain(e.mode);
                &plain
            }
        };
        let mut access = acl.access.clone();
        access.strip_perms(e.mode);
        put_one(out, &access, &mut self.access, namer);
        if e.is_dir() {
            let def = acl.default.clone().unwrap_or_default();
            put_one(out, &def, &mut self.default, namer);
        }
    }
}

fn put_one(out: &mut Vec<u8>, acl: &Acl, sent: &mut HashMap<Acl, usize>, namer: &mut Namer<'_>) {
    if let Some(&i) = sent.get(acl) {
        put_varint(out, i as i32 + 1);
        return;
    }
    put_varint(out, 0);
    sent.insert(acl.clone(), sent.len());
    let mut flags = 0;
    for (v, bit) in [
        (acl.user_obj, XMIT_USER_OBJ),
        (acl.group_obj, XMIT_GROUP_OBJ),
        (acl.mask, XMIT_MASK_OBJ),
        (acl.other, XMIT_OTHER_OBJ),
    ] {
        if v.is_some() {
            flags |= bit;
        }
    }
    if !acl.names.is_empty() {
        flags |= XMIT_NAME_LIST;
    }
    out.push(flags);
    for v in [acl.user_obj, acl.group_obj, acl.mask, acl.other]
        .into_iter()
        .flatten()
    {
        put_varint(out, i32::from(v));
    }
    if acl.names.is_empty() {
        return;
    }
    put_varint(out, acl.names.len() as i32);
    for n in &acl.names {
        put_varint(out, n.id as i32);
        let mut bits = u32::from(n.perm) << 2;
        if n.user {
            bits |= NAME_IS_USER;
        }
        match namer(n.user, n.id) {
            Some(name) => {
                let name = &name[..name.len().min(255)];
                put_varint(out, (bits | NAME_FOLLOWS) as i32);
                out.push(name.len() as u8);
                out.extend_from_slice(name);
            }
            None => put_varint(out, bits as i32),
        }
    }
}

/// A name read inline: `(user, id, name)`.
pub type InlineName = (bool, u32, Vec<u8>);

/// The receiving side's lists of ACLs defined so far.
#[derive(Debug, Default)]
pub struct AclReceiver {
    access: Vec<Acl>,
    default: Vec<Acl>,
}

impl AclReceiver {
    /// Reads the ACLs of an entry of mode `mode`; names sent inline are handed to `named`.
    pub fn read<R: Read + ?Sized>(
        &mut self,
        r: &mut R,
        mode: u32,
        named: &mut dyn FnMut(InlineName),
    ) -> Result<Arc<EntryAcl>> {
        let access = read_one(r, &mut self.access, Some(mode), named)?;
        let default = if mode & libc::S_IFMT == libc::S_IFDIR {
            Some(read_one(r, &mut self.default, None, named)?)
        } else {
            None
        };
        Ok(Arc::new(EntryAcl { access, default }))
    }
}

fn read_one<R: Read + ?Sized>(
    r: &mut R,
    list: &mut Vec<Acl>,
    access_mode: Option<u32>,
    named: &mut dyn FnMut(InlineName),
) -> Result<Acl> {
    let kind = if access_mode.is_some() {
        "ACL_TYPE_ACCESS"
    } else {
        "ACL_TYPE_DEFAULT"
    };
    let ndx = r.read_varint()?;
    if ndx < 0 || ndx as usize > list.len() {
        return Err(Error::Protocol(format!(
            "recv_acl_index: {kind} ACL index {ndx} > {}",
            list.len()
        )));
    }
    if ndx != 0 {
        return Ok(list[ndx as usize - 1].clone());
    }
    if list.len() >= MAX_LIST {
        return Err(Error::Protocol("too many ACLs".into()));
    }
    let flags = r.read_u8()?;
    let mut acl = Acl::default();
    let perm = |r: &mut R| -> Result<u8> {
        let v = r.read_varint()?;
        if !(0..=7).contains(&v) {
            return Err(Error::Protocol(format!(
                "recv_acl_access: value out of range: {v:x}"
            )));
        }
        Ok(v as u8)
    };
    if flags & XMIT_USER_OBJ != 0 {
        acl.user_obj = Some(perm(r)?);
    }
    if flags & XMIT_GROUP_OBJ != 0 {
        acl.group_obj = Some(perm(r)?);
    }
    if flags & XMIT_MASK_OBJ != 0 {
        acl.mask = Some(perm(r)?);
    }
    if flags & XMIT_OTHER_OBJ != 0 {
        acl.other = Some(perm(r)?);
    }
    if flags & XMIT_NAME_LIST != 0 {
        let count = r.read_varint_in(0, MAX_NAMES, "ACL count")? as usize;
        let mut names = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            let id = r.read_varint()? as u32;
            let bits = r.read_varint()? as u32;
            let p = bits >> 2;
            if p > 7 {
                return Err(Error::Protocol(format!(
                    "recv_acl_access: value out of range: {p:x}"
                )));
            }
            let user = bits & NAME_IS_USER != 0;
            if bits & NAME_FOLLOWS != 0 {
                let len = usize::from(r.read_u8()?);
                let mut name = vec![0; len];
                r.read_all(&mut name)?;
                named((user, id, name));
            }
            names.push(AclName {
                id,
                perm: p as u8,
                user,
            });
        }
        acl.names = names;
    }
    acl.fill_mask(access_mode);
    list.push(acl.clone());
    Ok(acl)
}

/// Turns the sender's ids in the named entries of received ACLs into ours: `uid`/`gid` map
/// one id (by the sender's names, `--usermap`/`--groupmap`, or as the number).
pub fn map_acl_ids(
    entries: &mut [FileEntry],
    uid: &mut dyn FnMut(u32) -> u32,
    gid: &mut dyn FnMut(u32) -> u32,
) {
    let mut done: HashMap<*const EntryAcl, Arc<EntryAcl>> = HashMap::new();
    for e in entries {
        let Some(acl) = e.acl.as_ref() else {
            continue;
        };
        if acl.access.names.is_empty() && acl.default.as_ref().is_none_or(|d| d.names.is_empty()) {
            continue;
        }
        let key = Arc::as_ptr(acl);
        if let Some(m) = done.get(&key) {
            e.acl = Some(m.clone());
            continue;
        }
        let mut m = (**acl).clone();
        for n in m
            .access
            .names
            .iter_mut()
            .chain(m.default.iter_mut().flat_map(|d| d.names.iter_mut()))
        {
            n.id = if n.user { uid(n.id) } else { gid(n.id) };
        }
        let m = Arc::new(m);
        done.insert(key, m.clone());
        e.acl = Some(m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(mode: u32, acl: Option<EntryAcl>) -> FileEntry {
        let mut e = FileEntry::missing(b"x".to_vec());
        e.kind = FileKind::from_mode(mode).unwrap();
        e.mode = mode;
        e.acl = acl.map(Arc::new);
        e
    }

    #[test]
    fn round_trip_with_cache() {
        let mut acl = EntryAcl::plain(0o40775);
        acl.access.names.push(AclName {
            id: 1000,
            perm: 5,
            user: true,
        });
        acl.access.mask = Some(7);
        acl.default = Some(Acl {
            user_obj: Some(7),
            group_obj: Some(5),
            mask: Some(7),
            other: Some(5),
            names: vec![AclName {
                id: 100,
                perm: 7,
                user: false,
            }],
        });
        let e = entry(0o40775, Some(acl));
        let f = entry(0o100644, None);
        let mut tx = AclSender::default();
        let mut out = Vec::new();
        let mut namer = |_: bool, _: u32| None;
        tx.put(&mut out, &e, &mut namer);
        let first = out.len();
        tx.put(&mut out, &e, &mut namer);
        assert_eq!(out.len() - first, 2, "both sent by index");
        tx.put(&mut out, &f, &mut namer);
        let mut rx = AclReceiver::default();
        let mut r = &out[..];
        let mut none = |_: InlineName| panic!("no names inline");
        let a = rx.read(&mut r, 0o40775, &mut none).unwrap();
        let b = rx.read(&mut r, 0o40775, &mut none).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.access.names.len(), 1);
        assert_eq!(a.access.mask, Some(7));
        assert_eq!(a.default.as_ref().unwrap().names[0].id, 100);
        let c = rx.read(&mut r, 0o100644, &mut none).unwrap();
        assert!(c.access.is_empty());
        assert!(r.is_empty());
    }

    #[test]
    fn hostile_input_is_refused() {
        let mut rx = AclReceiver::default();
        let mut none = |_: InlineName| {};
        // An index beyond the list.
        assert!(rx.read(&mut &[5u8][..], 0o100644, &mut none).is_err());
        // A permission value out of range.
        assert!(rx
            .read(&mut &[0u8, XMIT_USER_OBJ, 9][..], 0o100644, &mut none)
            .is_err());
        // A huge name count.
        let mut big = vec![0u8, XMIT_NAME_LIST];
        put_varint(&mut big, 10_000_000);
        assert!(rx.read(&mut &big[..], 0o100644, &mut none).is_err());
    }
}
