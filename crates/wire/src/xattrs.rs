//! `-X` on the wire (protocol ≥ 30): the attribute list after each file-list entry, and the
//! request/response pair that fetches abbreviated values.
//!
//! After every entry (hard-link followers too): `varint ndx+1` naming a list sent before (in
//! the order sent, counting from 0), or `0` and a literal list: `varint count`, then per
//! attribute `varint name_len` (with the NUL), `varint value_len`, the name with its NUL, and
//! the value itself when at most 32 bytes, else its unseeded md5 (16 bytes).
//!
//! A generator that lacks an abbreviated value asks for it after an item's flags (when they
//! carry ITEM_REPORT_XATTR): `varint` deltas of the attributes' 1-based positions, then `0`.
//! The sender answers, after the same item's flags in its echo to the receiver, with
//! `varint delta, varint len, value` per asked attribute, then `0`.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use md5::{Digest, Md5};
use rtsync_tree::xattr::{self, Xattr, XattrList, XattrRules, XattrValue, MAX_FULL_DATUM};

use crate::error::{Error, Result};
use crate::varint::{put_varint, ReadWire};

/// Most attributes per file we accept.
pub const MAX_COUNT: i32 = 65_536;
/// Longest name (with its NUL).
pub const MAX_NAME: i32 = 4096;
/// Largest single value (Linux allows 64 KiB; other systems more).
pub const MAX_VALUE: i32 = 128 << 20;
/// Largest total of one file's names and values.
const MAX_LIST_BYTES: usize = 512 << 20;

/// A value's length, refused before anything is allocated when over the per-value cap.
fn read_value_len<R: Read + ?Sized>(r: &mut R) -> Result<usize> {
    let len = r.read_varint_in(0, i32::MAX, "xattr datum_len")?;
    if len > MAX_VALUE {
        return Err(Error::Protocol(
            "xattr datum_len exceeds per-value limit".into(),
        ));
    }
    Ok(len as usize)
}

/// The digest of a long value.
pub fn digest(v: &[u8]) -> [u8; 16] {
    Md5::digest(v).into()
}

fn wire_value(v: &XattrValue) -> Vec<u8> {
    match v {
        XattrValue::Full(d) if d.len() > MAX_FULL_DATUM => digest(d).to_vec(),
        XattrValue::Full(d) => d.clone(),
        XattrValue::Abbrev { digest, .. } => digest.to_vec(),
    }
}

fn value_len(v: &XattrValue) -> u64 {
    match v {
        XattrValue::Full(d) => d.len() as u64,
        XattrValue::Abbrev { len, .. } => *len,
    }
}

/// One attribute as it travels: name, value length, value or digest.
type WireXattr = (Vec<u8>, u64, Vec<u8>);

/// Values fetched for an item: (position as sent, value).
pub type Fetched = Vec<(u32, Vec<u8>)>;

/// A sender's state: the lists sent so far (an identical one is named by index).
#[derive(Debug, Default)]
pub struct XattrSender {
    sent: HashMap<Vec<WireXattr>, i32>,
}

impl XattrSender {
    /// Appends `list` (the sender's, sorted) in wire form.
    pub fn put(&mut self, out: &mut Vec<u8>, list: &[Xattr], rules: &XattrRules) {
        let key: Vec<WireXattr> = list
            .iter()
            .map(|x| {
                (
                    rules.wire_name(&x.name).to_vec(),
                    value_len(&x.value),
                    wire_value(&x.value),
                )
            })
            .collect();
        if let Some(&ndx) = self.sent.get(&key) {
            put_varint(out, ndx + 1);
            return;
        }
        put_varint(out, 0);
        put_varint(out, key.len() as i32);
        for (name, len, value) in &key {
            put_varint(out, name.len() as i32 + 1);
            put_varint(out, *len as i32);
            out.extend_from_slice(name);
            out.push(0);
            out.extend_from_slice(value);
        }
        let ndx = self.sent.len() as i32;
        self.sent.insert(key, ndx);
    }
}

/// A receiver's state: every list received, by index.
#[derive(Debug, Default)]
pub struct XattrReceiver {
    lists: Vec<XattrList>,
}

impl XattrReceiver {
    /// Reads one entry's list; returns it as this receiver keeps it (names it may not store
    /// dropped, sorted, each with its position as sent).
    pub fn read<R: Read + ?Sized>(&mut self, r: &mut R, rules: &XattrRules) -> Result<XattrList> {
        let ndx = r.read_varint()?;
        if ndx < 0 || ndx as usize > self.lists.len() {
            return Err(Error::Protocol(format!(
                "receive_xattr: xa index {ndx} out of range"
            )));
        }
        if ndx != 0 {
            return Ok(self.lists[ndx as usize - 1].clone());
        }
        let count = r.read_varint_in(0, MAX_COUNT, "xattr count")?;
        let mut total = 0usize;
        let mut list = Vec::new();
        for num in 1..=count as u32 {
            let name_len = r.read_varint_in(1, MAX_NAME, "xattr name length")? as usize;
            let len = read_value_len(r)?;
            total += name_len + len;
            if total > MAX_LIST_BYTES {
                return Err(Error::Protocol("xattr list exceeds per-file limit".into()));
            }
            let mut name = vec![0; name_len];
            r.read_all(&mut name)?;
            if name.pop() != Some(0) || name.contains(&0) {
                return Err(Error::Protocol(
                    "Invalid xattr name received (missing trailing \\0).".into(),
                ));
            }
            let value = if len > MAX_FULL_DATUM {
                let mut d = [0u8; 16];
                r.read_all(&mut d)?;
                XattrValue::Abbrev {
                    len: len as u64,
                    digest: d,
                }
            } else {
                let mut v = vec![0; len];
                r.read_all(&mut v)?;
                XattrValue::Full(v)
            };
            list.push(Xattr { name, value, num });
        }
        let kept = Arc::new(xattr::received(&list, rules));
        self.lists.push(kept.clone());
        Ok(kept)
    }
}

/// The abbreviated values of `want` that `dest` lacks (and whether anything differs):
/// what a generator compares. `dest` is `None` for an item that does not exist yet.
pub fn compare(want: &[Xattr], dest: Option<&Path>, rules: &XattrRules) -> (bool, Vec<u32>) {
    let have = dest
        .map(|p| xattr::read_dest(p, rules).unwrap_or_default())
        .unwrap_or_default();
    xattr::diff(want, &have, digest)
}

/// A generator's request for the values `nums` (ascending positions), ended by `0`.
pub fn put_request(out: &mut Vec<u8>, nums: &[u32]) {
    let mut prior = 0i32;
    for &n in nums {
        put_varint(out, n as i32 - prior);
        prior = n as i32;
    }
    out.push(0);
}

/// A sender reads a request: the positions asked for.
pub fn read_request<R: Read + ?Sized>(r: &mut R) -> Result<Vec<u32>> {
    let mut nums = Vec::new();
    let mut num = 0i32;
    loop {
        let rel = r.read_varint()?;
        if rel == 0 {
            return Ok(nums);
        }
        num = num
            .checked_add(rel)
            .filter(|n| (1..=MAX_COUNT).contains(n))
            .ok_or_else(|| Error::Protocol(format!("could not find xattr #{num}+{rel}")))?;
        if nums.len() >= MAX_COUNT as usize {
            return Err(Error::Protocol("too many xattr requests".into()));
        }
        nums.push(num as u32);
    }
}

/// A sender's answer to `nums` for the file at `path` with list `list`: values re-read now.
/// A value that cannot be read is sent empty (with the error returned for logging).
pub fn put_response(out: &mut Vec<u8>, path: &Path, list: &[Xattr], nums: &[u32]) -> Vec<String> {
    let mut errors = Vec::new();
    let mut prior = 0i32;
    for x in list.iter().filter(|x| nums.contains(&x.num)) {
        put_varint(out, x.num as i32 - prior);
        prior = x.num as i32;
        match xattr::get(path, &x.name) {
            Ok(Some(v)) => {
                put_varint(out, v.len() as i32);
                out.extend_from_slice(&v);
            }
            _ => {
                errors.push(format!(
                    "failed to re-read xattr {} for {}",
                    String::from_utf8_lossy(&x.name),
                    path.display()
                ));
                put_varint(out, 0);
            }
        }
    }
    out.push(0);
    errors
}

/// Writes an answer again as read (re-encoding a batch).
pub fn put_fetched(out: &mut Vec<u8>, got: &[(u32, Vec<u8>)]) {
    let mut prior = 0i32;
    for (num, v) in got {
        put_varint(out, *num as i32 - prior);
        prior = *num as i32;
        put_varint(out, v.len() as i32);
        out.extend_from_slice(v);
    }
    out.push(0);
}

/// A receiver reads the sender's answer: (position, value) pairs.
pub fn read_response<R: Read + ?Sized>(r: &mut R) -> Result<Fetched> {
    let mut got = Vec::new();
    let mut num = 0i32;
    let mut total = 0usize;
    loop {
        let rel = r.read_varint()?;
        if rel == 0 {
            return Ok(got);
        }
        num = num
            .checked_add(rel)
            .filter(|n| (1..=MAX_COUNT).contains(n))
            .ok_or_else(|| Error::Protocol(format!("could not find xattr #{num}+{rel}")))?;
        let len = read_value_len(r)?;
        total += len;
        if total > MAX_LIST_BYTES || got.len() >= MAX_COUNT as usize {
            return Err(Error::Protocol("xattr list exceeds per-file limit".into()));
        }
        let mut v = vec![0; len];
        r.read_all(&mut v)?;
        got.push((num as u32, v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> XattrRules {
        XattrRules {
            level: 1,
            root: true,
            fake_super: false,
        }
    }

    #[test]
    fn list_round_trip_and_reuse() {
        let list = vec![
            Xattr {
                name: b"user.a".to_vec(),
                value: XattrValue::Full(b"short".to_vec()),
                num: 1,
            },
            Xattr {
                name: b"user.b".to_vec(),
                value: XattrValue::Full(vec![7; 100]),
                num: 2,
            },
        ];
        let mut s = XattrSender::default();
        let mut out = Vec::new();
        s.put(&mut out, &list, &rules());
        s.put(&mut out, &list, &rules());
        let mut r = XattrReceiver::default();
        let mut rd = &out[..];
        let a = r.read(&mut rd, &rules()).unwrap();
        let b = r.read(&mut rd, &rules()).unwrap();
        assert!(rd.is_empty());
        assert_eq!(a, b);
        assert_eq!(a[0].value, XattrValue::Full(b"short".to_vec()));
        assert_eq!(
            a[1].value,
            XattrValue::Abbrev {
                len: 100,
                digest: digest(&[7; 100])
            }
        );
        let mut req = Vec::new();
        put_request(&mut req, &[2, 5]);
        assert_eq!(read_request(&mut &req[..]).unwrap(), vec![2, 5]);
    }

    #[test]
    fn bounded() {
        // An index beyond the lists received, a huge count, a name without its NUL.
        let mut r = XattrReceiver::default();
        assert!(r.read(&mut &[5u8][..], &rules()).is_err());
        let mut out = Vec::new();
        put_varint(&mut out, 0);
        put_varint(&mut out, 1 << 30);
        assert!(r.read(&mut &out[..], &rules()).is_err());
        let mut out = Vec::new();
        for v in [0, 1, 2, 0] {
            put_varint(&mut out, v);
        }
        out.extend_from_slice(b"ab");
        assert!(r.read(&mut &out[..], &rules()).is_err());
    }
}
