//! File-list index ("ndx") encoding of protocol ≥ 30: a byte-saving diff against the previous
//! positive (or negative) index, with `NDX_DONE` as a single zero byte. Each direction keeps
//! its own state, so a connection needs one [`NdxWriter`] and one [`NdxReader`].

use std::io::Read;

use crate::error::{Error, Result};
use crate::varint::{put_i32, ReadWire};

/// End of a phase / of the transfer.
pub const NDX_DONE: i32 = -1;
/// End of the file lists (incremental recursion).
pub const NDX_FLIST_EOF: i32 = -2;
/// Deletion statistics follow.
pub const NDX_DEL_STATS: i32 = -3;
/// Incremental-recursion file lists are announced as `NDX_FLIST_OFFSET - dir_ndx`.
pub const NDX_FLIST_OFFSET: i32 = -101;

/// Encoder state for one direction.
#[derive(Debug, Clone)]
pub struct NdxWriter {
    protocol: u32,
    prev_positive: i32,
    prev_negative: i32,
}

impl NdxWriter {
    pub fn new(protocol: u32) -> NdxWriter {
        NdxWriter {
            protocol,
            prev_positive: -1,
            prev_negative: 1,
        }
    }

    /// Appends the encoding of `ndx`.
    pub fn put(&mut self, out: &mut Vec<u8>, ndx: i32) {
        if self.protocol < 30 {
            put_i32(out, ndx);
            return;
        }
        let (num, diff) = if ndx >= 0 {
            let diff = ndx.wrapping_sub(self.prev_positive);
            self.prev_positive = ndx;
            (ndx, diff)
        } else if ndx == NDX_DONE {
            out.push(0);
            return;
        } else {
            out.push(0xFF);
            let num = ndx.wrapping_neg();
            let diff = num.wrapping_sub(self.prev_negative);
            self.prev_negative = num;
            (num, diff)
        };
        if diff > 0 && diff < 0xFE {
            out.push(diff as u8);
        } else if !(0..=0x7FFF).contains(&diff) {
            out.push(0xFE);
            out.push(((num >> 24) as u8) | 0x80);
            out.push(num as u8);
            out.push((num >> 8) as u8);
            out.push((num >> 16) as u8);
        } else {
            out.push(0xFE);
            out.push((diff >> 8) as u8);
            out.push(diff as u8);
        }
    }
}

/// Decoder state for one direction.
#[derive(Debug, Clone)]
pub struct NdxReader {
    protocol: u32,
    prev_positive: i32,
    prev_negative: i32,
}

impl NdxReader {
    pub fn new(protocol: u32) -> NdxReader {
        NdxReader {
            protocol,
            prev_positive: -1,
            prev_negative: 1,
        }
    }

    /// Reads one index.
    pub fn read<R: Read + ?Sized>(&mut self, r: &mut R) -> Result<i32> {
        if self.protocol < 30 {
            return r.read_i32();
        }
        let mut b = r.read_u8()?;
        let negative = match b {
            0 => return Ok(NDX_DONE),
            0xFF => {
                b = r.read_u8()?;
                true
            }
            _ => false,
        };
        let prev = if negative {
            self.prev_negative
        } else {
            self.prev_positive
        };
        let unum: u32 = if b == 0xFE {
            let mut two = [0u8; 2];
            r.read_all(&mut two)?;
            if two[0] & 0x80 != 0 {
                let mut rest = [0u8; 2];
                r.read_all(&mut rest)?;
                u32::from_le_bytes([two[1], rest[0], rest[1], two[0] & 0x7F])
            } else {
                ((u32::from(two[0]) << 8) | u32::from(two[1])).wrapping_add(prev as u32)
            }
        } else {
            u32::from(b).wrapping_add(prev as u32)
        };
        if unum > i32::MAX as u32 {
            return Err(Error::Protocol(format!("Invalid file index: {unum}")));
        }
        let num = unum as i32;
        if negative {
            self.prev_negative = num;
            Ok(-num)
        } else {
            self.prev_positive = num;
            Ok(num)
        }
    }
}

/// `--iconv` on the receiving side: the peer numbers a list's entries in the order it sent
/// them, we keep each list sorted; this translates between the two (stock's F_NDX).
/// Indices outside every registered list (a list's `ndx_start - 1`) pass unchanged.
#[derive(Debug, Clone, Default)]
pub struct Unsorted(std::sync::Arc<std::sync::RwLock<std::collections::BTreeMap<usize, Order>>>);

/// One list's order: `to_sent[sorted] = sent` and back.
#[derive(Debug)]
struct Order {
    to_sent: Vec<u32>,
    to_sorted: Vec<u32>,
}

impl Unsorted {
    /// Registers the list starting at `start`; `sent[i]` is where its sorted entry `i` was
    /// received.
    pub fn add(&self, start: usize, sent: &[u32]) {
        let order = Order {
            to_sent: sent.to_vec(),
            to_sorted: sorted_positions(sent),
        };
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(start, order);
    }

    fn map(&self, ndx: i32, to_wire: bool) -> i32 {
        let Ok(n) = usize::try_from(ndx) else {
            return ndx;
        };
        let lists = self.0.read().unwrap_or_else(|p| p.into_inner());
        match lists.range(..=n).next_back() {
            Some((&start, order)) if n - start < order.to_sent.len() => {
                let table = if to_wire {
                    &order.to_sent
                } else {
                    &order.to_sorted
                };
                (start + table[n - start] as usize) as i32
            }
            _ => ndx,
        }
    }

    /// Our (sorted) index as the peer numbers it.
    pub fn to_wire(&self, ndx: i32) -> i32 {
        self.map(ndx, true)
    }

    /// The peer's index as ours.
    pub fn from_wire(&self, ndx: i32) -> i32 {
        self.map(ndx, false)
    }
}

/// The inverse of a list's `sent` order ([`crate::flist::FileList::sent`]): for each
/// position as sent, the entry's sorted position.
pub fn sorted_positions(sent: &[u32]) -> Vec<u32> {
    let mut to_sorted = vec![0; sent.len()];
    for (i, &at) in sent.iter().enumerate() {
        if let Some(slot) = to_sorted.get_mut(at as usize) {
            *slot = i as u32;
        }
    }
    to_sorted
}

/// Translates through an optional [`Unsorted`] (identity without `--iconv`).
pub fn to_wire(map: Option<&Unsorted>, ndx: i32) -> i32 {
    map.map_or(ndx, |m| m.to_wire(ndx))
}

/// The inverse of [`to_wire`].
pub fn from_wire(map: Option<&Unsorted>, ndx: i32) -> i32 {
    map.map_or(ndx, |m| m.from_wire(ndx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn unsorted_translates_within_lists_only() {
        let u = Unsorted::default();
        u.add(1, &[2, 0, 1]);
        u.add(5, &[1, 0]);
        assert_eq!(u.to_wire(1), 3);
        assert_eq!(u.to_wire(2), 1);
        assert_eq!(u.from_wire(3), 1);
        assert_eq!(u.to_wire(0), 0);
        assert_eq!(u.to_wire(4), 4, "a list's own directory slot");
        assert_eq!(u.to_wire(5), 6);
        assert_eq!(u.from_wire(6), 5);
        assert_eq!(u.to_wire(7), 7);
        assert_eq!(u.to_wire(-1), -1);
        for n in 0..8 {
            assert_eq!(u.from_wire(u.to_wire(n)), n);
        }
    }

    #[test]
    fn encoding_table() {
        // A sequence, encoded with shared state, and the bytes each produces.
        let seq: &[(i32, &[u8])] = &[
            (0, &[0x01]),
            (1, &[0x01]),
            (5, &[0x04]),
            (5, &[0xFE, 0x00, 0x00]),
            (300, &[0xFE, 0x01, 0x27]),
            (100_000, &[0xFE, 0x80, 0xA0, 0x86, 0x01]),
            (3, &[0xFE, 0x80, 0x03, 0x00, 0x00]),
            (NDX_DONE, &[0x00]),
            (NDX_FLIST_EOF, &[0xFF, 0x01]),
            (NDX_DEL_STATS, &[0xFF, 0x01]),
        ];
        let mut w = NdxWriter::new(31);
        let mut r = NdxReader::new(31);
        for &(ndx, want) in seq {
            let mut out = Vec::new();
            w.put(&mut out, ndx);
            assert_eq!(out, want, "encoding {ndx}");
            assert_eq!(r.read(&mut &out[..]).unwrap(), ndx);
        }
    }

    #[test]
    fn overflowing_index_is_rejected() {
        let mut r = NdxReader::new(31);
        let bytes = [0xFE, 0xFF, 0xFF, 0xFF, 0xFF];
        assert!(r.read(&mut &bytes[..]).is_ok()); // 0x7FFFFFFF is the largest allowed
        let mut r = NdxReader::new(31);
        let bytes = [0xFE, 0x7F, 0xFF];
        r.prev_positive = i32::MAX - 10;
        assert_eq!(r.read(&mut &bytes[..]).unwrap_err().exit_code(), 2);
    }

    proptest! {
        #[test]
        fn roundtrip(seq in proptest::collection::vec(prop_oneof![0i32..100_000, -200i32..-1], 1..50)) {
            let mut w = NdxWriter::new(31);
            let mut out = Vec::new();
            for &n in &seq { w.put(&mut out, n); }
            let mut r = NdxReader::new(31);
            let mut input = &out[..];
            for &n in &seq { prop_assert_eq!(r.read(&mut input).unwrap(), n); }
            prop_assert!(input.is_empty());
        }
    }
}
