//! The sum header that precedes block checksums, item flags, and the plain token stream.

use std::io::Read;

use crate::error::{Error, Result};
use crate::varint::{put_i32, ReadWire};

/// Largest block length at protocol ≥ 30 (MAX_BLOCK_SIZE).
pub const MAX_BLOCK_SIZE: i32 = 1 << 17;
/// Largest literal run a sender emits per token (CHUNK_SIZE).
pub const CHUNK_SIZE: usize = 32 * 1024;
/// Upper bound on the block count we accept (memory guard; 2 TiB at the largest blocks).
pub const MAX_BLOCK_COUNT: i32 = 1 << 24;

/// What may follow item flags on the wire: the basis type (`BASIS_TYPE_FOLLOWS`) and the
/// extra name (`XNAME_FOLLOWS`).
pub fn read_item_extras<R: ReadWire + ?Sized>(
    r: &mut R,
    iflags: u16,
) -> Result<(Option<u8>, Option<Vec<u8>>)> {
    let basis_type = if iflags & item::BASIS_TYPE_FOLLOWS != 0 {
        Some(r.read_u8()?)
    } else {
        None
    };
    let xname = if iflags & item::XNAME_FOLLOWS != 0 {
        Some(r.read_vstring(4096)?)
    } else {
        None
    };
    Ok((basis_type, xname))
}

/// Item flags sent with a file index (rsync's ITEM_*).
pub mod item {
    pub const REPORT_ATIME: u16 = 1 << 0;
    pub const REPORT_CHANGE: u16 = 1 << 1;
    pub const REPORT_SIZE: u16 = 1 << 2;
    pub const REPORT_TIME: u16 = 1 << 3;
    pub const REPORT_PERMS: u16 = 1 << 4;
    pub const REPORT_OWNER: u16 = 1 << 5;
    pub const REPORT_GROUP: u16 = 1 << 6;
    pub const REPORT_ACL: u16 = 1 << 7;
    pub const REPORT_XATTR: u16 = 1 << 8;
    pub const BASIS_TYPE_FOLLOWS: u16 = 1 << 11;
    pub const XNAME_FOLLOWS: u16 = 1 << 12;
    pub const IS_NEW: u16 = 1 << 13;
    pub const LOCAL_CHANGE: u16 = 1 << 14;
    pub const TRANSFER: u16 = 1 << 15;
}

/// `count` blocks of `blength` bytes (the last `remainder` bytes long if non-zero), each with a
/// rolling sum and `s2length` bytes of strong sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SumHead {
    pub count: i32,
    pub blength: i32,
    pub s2length: i32,
    pub remainder: i32,
}

impl SumHead {
    /// Reads and validates a header (CVE-2024-12084 lived here): every field is bounded.
    pub fn read<R: Read + ?Sized>(r: &mut R, max_s2length: usize) -> Result<SumHead> {
        let h = SumHead {
            count: r.read_i32()?,
            blength: r.read_i32()?,
            s2length: r.read_i32()?,
            remainder: r.read_i32()?,
        };
        h.validate(max_s2length)?;
        Ok(h)
    }

    pub fn validate(&self, max_s2length: usize) -> Result<()> {
        let bad = |what: &str, v: i32| Err(Error::Protocol(format!("Invalid {what} {v}")));
        if !(0..=MAX_BLOCK_COUNT).contains(&self.count) {
            return bad("checksum count", self.count);
        }
        if !(0..=MAX_BLOCK_SIZE).contains(&self.blength) {
            return bad("block length", self.blength);
        }
        if self.count > 0 && self.blength == 0 {
            return Err(Error::Protocol("Invalid zero block length".into()));
        }
        if self.s2length < 0 || self.s2length as usize > max_s2length {
            return bad("checksum length", self.s2length);
        }
        if self.remainder < 0 || self.remainder > self.blength {
            return bad("remainder length", self.remainder);
        }
        Ok(())
    }

    pub fn put(&self, out: &mut Vec<u8>) {
        for v in [self.count, self.blength, self.s2length, self.remainder] {
            put_i32(out, v);
        }
    }

    /// The length of the basis this header describes: with `--append`, where the sender's
    /// data starts (a header from the peer can claim anything; never negative).
    pub fn file_len(&self) -> u64 {
        let mut len = i64::from(self.count) * i64::from(self.blength);
        if self.remainder != 0 {
            len -= i64::from(self.blength - self.remainder);
        }
        len.max(0) as u64
    }

    /// Length of block `k`.
    pub fn block_len(&self, k: i32) -> i32 {
        if k == self.count - 1 && self.remainder != 0 {
            self.remainder
        } else {
            self.blength
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_validation_table() {
        let h = |count, blength, s2length, remainder| SumHead {
            count,
            blength,
            s2length,
            remainder,
        };
        let cases = [
            (h(0, 0, 0, 0), true),
            (h(10, 700, 2, 100), true),
            (h(1, MAX_BLOCK_SIZE, 16, 0), true),
            (h(-1, 700, 2, 0), false),
            (h(1, MAX_BLOCK_SIZE + 1, 2, 0), false),
            (h(1, 700, 17, 0), false),
            (h(1, 700, -1, 0), false),
            (h(1, 700, 2, 701), false),
            (h(1, 0, 2, 0), false),
            (h(MAX_BLOCK_COUNT + 1, 700, 2, 0), false),
        ];
        for (head, ok) in cases {
            let mut bytes = Vec::new();
            head.put(&mut bytes);
            let got = SumHead::read(&mut &bytes[..], 16);
            assert_eq!(got.is_ok(), ok, "{head:?}");
            if let Err(e) = got {
                assert_eq!(e.exit_code(), 2);
            }
        }
        // A zero block length with blocks is named as stock names it, whatever follows.
        let mut bytes = Vec::new();
        h(3, 0, 99, 5).put(&mut bytes);
        let e = SumHead::read(&mut &bytes[..], 16).unwrap_err();
        assert!(e.to_string().contains("Invalid zero block length"), "{e}");
    }
}
