//! Block size and strong-sum length, chosen exactly as rsync 3.x's generator does.

use crate::{Error, Result};

/// rsync's default (and minimum automatic) block length.
pub const BLOCK_SIZE: u32 = 700;
/// Largest block length from protocol 30 on.
pub const MAX_BLOCK_SIZE: u32 = 1 << 17;
/// Largest block length before protocol 30.
pub const OLD_MAX_BLOCK_SIZE: u32 = 1 << 29;
/// Full strong-sum length (`SUM_LENGTH`).
pub const SUM_LENGTH: usize = 16;
/// Initial strong-sum length in the first pass (`SHORT_SUM_LENGTH`).
pub const SHORT_SUM_LENGTH: usize = 2;
/// Bias in the s2length formula (`BLOCKSUM_BIAS`).
const BLOCKSUM_BIAS: i64 = 10;
/// rsync's `CHUNK_SIZE`: the longest literal run a token may carry (stock 3.4+ rejects more).
pub const CHUNK_SIZE: usize = 32 * 1024;

/// The largest block length allowed at `protocol`.
pub fn max_block_size(protocol: u32) -> u32 {
    if protocol < 30 {
        OLD_MAX_BLOCK_SIZE
    } else {
        MAX_BLOCK_SIZE
    }
}

/// Inputs of the size choice that do not depend on the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SumParams {
    /// Negotiated protocol version.
    pub protocol: u32,
    /// rsync's `csum_length`: [`SHORT_SUM_LENGTH`] normally, [`SUM_LENGTH`] for the redo phase.
    pub csum_length: usize,
    /// Digest length of the negotiated transfer checksum (`xfer_sum_len`).
    pub digest_len: usize,
    /// A `--block-size` override, if any.
    pub block_size: Option<u32>,
}

impl SumParams {
    /// First-pass parameters for `protocol` and a checksum with `digest_len`-byte digests.
    pub fn new(protocol: u32, digest_len: usize) -> Self {
        SumParams {
            protocol,
            csum_length: SHORT_SUM_LENGTH,
            digest_len,
            block_size: None,
        }
    }
}

/// The sum header that precedes a signature on the wire (rsync's `sum_struct` head).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SumHead {
    /// Number of blocks.
    pub count: u32,
    /// Length of every block but possibly the last.
    pub block_len: u32,
    /// Bytes of strong sum sent per block (s2length).
    pub strong_len: u32,
    /// Length of the last block when shorter than `block_len`, else 0.
    pub remainder: u32,
}

impl SumHead {
    /// The header rsync's generator would send for a basis of `file_len` bytes.
    pub fn for_file(file_len: u64, params: &SumParams) -> Result<Self> {
        let max_blength = max_block_size(params.protocol);
        let blength = match params.block_size {
            Some(b) if b == 0 || b > max_blength => {
                return Err(Error::InvalidBlockSize {
                    size: b as u64,
                    max: max_blength,
                })
            }
            Some(b) => b,
            None => auto_block_len(file_len, max_blength),
        };
        let max_s2 = SUM_LENGTH.min(params.digest_len) as i64;
        let csum_length = params.csum_length as i64;
        let s2length = if params.protocol < 27 {
            csum_length
        } else if params.csum_length == SUM_LENGTH {
            max_s2
        } else {
            let mut b = BLOCKSUM_BIAS + 2 * floor_log2(file_len) as i64;
            let mut c = blength;
            while {
                c >>= 1;
                c != 0
            } && b != 0
            {
                b -= 1;
            }
            // C division truncates toward zero; so does Rust's.
            let s2 = (b + 1 - 32 + 7) / 8;
            s2.max(csum_length).min(max_s2)
        };
        let remainder = (file_len % blength as u64) as u32;
        let count = file_len / blength as u64 + u64::from(remainder != 0);
        if count > i32::MAX as u64 {
            return Err(Error::TooManyBlocks(file_len));
        }
        Ok(SumHead {
            count: count as u32,
            block_len: blength,
            strong_len: s2length.max(0) as u32,
            remainder,
        })
    }

    /// Validate a header received from a peer, as rsync's `read_sum_head` does.
    ///
    /// Takes raw `int32` wire values so negative numbers are rejected rather than wrapped.
    pub fn from_wire(
        count: i32,
        block_len: i32,
        strong_len: i32,
        remainder: i32,
        protocol: u32,
        digest_len: usize,
    ) -> Result<Self> {
        if count < 0 {
            return Err(Error::InvalidSumHead("negative block count"));
        }
        if block_len < 0 || block_len as u32 > max_block_size(protocol) {
            return Err(Error::InvalidSumHead("block length out of range"));
        }
        if count > 0 && block_len == 0 {
            return Err(Error::InvalidSumHead("zero block length"));
        }
        if strong_len < 0 || strong_len as usize > digest_len {
            return Err(Error::InvalidSumHead("strong sum length out of range"));
        }
        if remainder < 0 || remainder > block_len {
            return Err(Error::InvalidSumHead("remainder out of range"));
        }
        Ok(SumHead {
            count: count as u32,
            block_len: block_len as u32,
            strong_len: strong_len as u32,
            remainder: remainder as u32,
        })
    }

    /// Length of block `index` (the last one may be the remainder).
    #[inline]
    pub fn block_len_of(&self, index: u32) -> u32 {
        if index + 1 == self.count && self.remainder != 0 {
            self.remainder
        } else {
            self.block_len
        }
    }

    /// Total length of the basis that the header describes.
    pub fn file_len(&self) -> u64 {
        if self.count == 0 {
            return 0;
        }
        (self.count as u64 - 1) * self.block_len as u64 + self.block_len_of(self.count - 1) as u64
    }
}

fn floor_log2(x: u64) -> u32 {
    if x == 0 {
        0
    } else {
        63 - x.leading_zeros()
    }
}

/// rsync's square-root rule: the largest multiple of 8 whose square is ≤ `len`,
/// at least [`BLOCK_SIZE`], capped at `max_blength`.
fn auto_block_len(len: u64, max_blength: u32) -> u32 {
    if len <= (BLOCK_SIZE as u64) * (BLOCK_SIZE as u64) {
        return BLOCK_SIZE;
    }
    // c = 2^floor(log4(len)): the highest bit the root can have.
    let mut c: u64 = 1;
    let mut l = len;
    loop {
        l >>= 2;
        if l == 0 {
            break;
        }
        c <<= 1;
    }
    if c >= max_blength as u64 {
        return max_blength;
    }
    let mut blength: u64 = 0;
    while c >= 8 {
        blength |= c;
        if len < blength * blength {
            blength &= !c;
        }
        c >>= 1;
    }
    (blength as u32).max(BLOCK_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_and_strong_lengths() {
        // (file_len, protocol, digest_len, block_size, expected (count, blen, s2, rem))
        // Cross-checked against `rsync --debug=deltasum2` output of stock 3.5.0.
        type Case = (u64, u32, usize, Option<u32>, (u32, u32, u32, u32));
        let cases: &[Case] = &[
            (0, 31, 16, None, (0, 700, 2, 0)),
            (1, 31, 16, None, (1, 700, 2, 1)),
            (700, 31, 16, None, (1, 700, 2, 0)),
            (490_000, 31, 16, None, (700, 700, 2, 0)),
            (490_001, 31, 16, None, (701, 700, 2, 1)),
            (1_000_000, 31, 16, None, (1000, 1000, 2, 0)),
            (10 << 20, 31, 16, None, (3245, 3232, 2, 1152)),
            (100 << 20, 32, 16, None, (10240, 10240, 3, 0)),
            (1 << 30, 31, 16, None, (32768, 32768, 3, 0)),
            // Beyond what the oracle run covered: from the formula.
            (1 << 40, 31, 16, None, (8388608, 131072, 6, 0)),
            (1 << 40, 29, 16, None, (1048576, 1048576, 5, 0)),
            (1 << 40, 31, 4, None, (8388608, 131072, 4, 0)),
            (1 << 62, 31, 8, None, (0, 0, 0, 0)), // too many blocks, see below
            (5000, 31, 16, Some(1024), (5, 1024, 2, 904)),
        ];
        for &(len, proto, dl, bs, want) in cases {
            let p = SumParams {
                protocol: proto,
                csum_length: SHORT_SUM_LENGTH,
                digest_len: dl,
                block_size: bs,
            };
            match SumHead::for_file(len, &p) {
                Ok(h) => assert_eq!(
                    (h.count, h.block_len, h.strong_len, h.remainder),
                    want,
                    "len {len} proto {proto}"
                ),
                Err(Error::TooManyBlocks(_)) => assert_eq!(want, (0, 0, 0, 0)),
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn full_sum_length_phase() {
        let p = SumParams {
            protocol: 31,
            csum_length: SUM_LENGTH,
            digest_len: 8,
            block_size: None,
        };
        assert_eq!(SumHead::for_file(12345, &p).unwrap().strong_len, 8);
    }

    #[test]
    fn wire_validation() {
        let ok = SumHead::from_wire(3, 700, 2, 5, 31, 16).unwrap();
        assert_eq!(ok.file_len(), 1405);
        let bad = [
            (-1, 700, 2, 0),
            (1, 200_000, 2, 0),
            (1, 0, 2, 0),
            (1, 700, 17, 0),
            (1, 700, -1, 0),
            (1, 700, 2, 701),
            (1, 700, 2, -1),
        ];
        for (c, b, s, r) in bad {
            assert!(
                SumHead::from_wire(c, b, s, r, 31, 16).is_err(),
                "{c} {b} {s} {r}"
            );
        }
        assert!(SumHead::for_file(
            1,
            &SumParams {
                block_size: Some(0),
                ..SumParams::new(31, 16)
            }
        )
        .is_err());
    }
}
