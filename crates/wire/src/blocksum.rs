//! Block signatures of a basis file, as the generator sends them: rsync's block-size and
//! strong-sum-length choice, the rolling checksum (signed chars) and the seeded strong sums.
//!
//! This is a small stand-in until `rtsync-delta` lands with the shared implementation.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use md4::Md4;
use md5::{Digest as _, Md5};
use sha1::Sha1;

use crate::checksum::ChecksumAlgo;
use crate::negotiate::Negotiated;
use crate::sums::{SumHead, MAX_BLOCK_SIZE};
use crate::varint::put_i32;

/// rsync's default block length for small files.
const BLOCK_SIZE: i64 = 700;
/// Strong-sum length of the first pass.
const SHORT_SUM_LENGTH: i32 = 2;
const SUM_LENGTH: i32 = 16;
const BLOCKSUM_BIAS: i32 = 10;

/// Chooses block length and strong-sum length for a basis of `len` bytes (rsync's
/// `sum_sizes_sqroot`, first pass).
pub fn sum_sizes(len: i64, xfer_sum_len: i32, csum_length: i32) -> SumHead {
    let max_s2length = SUM_LENGTH.min(xfer_sum_len);
    let blength: i32 = if len <= BLOCK_SIZE * BLOCK_SIZE {
        BLOCK_SIZE as i32
    } else {
        let mut c: i64 = 1;
        let mut l = len;
        loop {
            l >>= 2;
            if l == 0 {
                break;
            }
            c <<= 1;
        }
        if c >= i64::from(MAX_BLOCK_SIZE) {
            MAX_BLOCK_SIZE
        } else {
            let mut b: i64 = 0;
            loop {
                b |= c;
                if len < b * b {
                    b &= !c;
                }
                c >>= 1;
                if c < 8 {
                    break;
                }
            }
            b.max(BLOCK_SIZE) as i32
        }
    };
    let s2length = if csum_length == SUM_LENGTH {
        max_s2length
    } else {
        let mut b = BLOCKSUM_BIAS;
        let mut l = len;
        loop {
            l >>= 1;
            if l == 0 {
                break;
            }
            b += 2;
        }
        let mut c = blength;
        loop {
            c >>= 1;
            if c == 0 || b == 0 {
                break;
            }
            b -= 1;
        }
        ((b + 1 - 32 + 7) / 8).max(csum_length).min(max_s2length)
    };
    let remainder = (len % i64::from(blength)) as i32;
    let count = (len / i64::from(blength)) as i32 + i32::from(remainder != 0);
    SumHead {
        count,
        blength,
        s2length,
        remainder,
    }
}

/// The rolling checksum over signed bytes.
pub fn rolling_sum(buf: &[u8]) -> u32 {
    let (mut s1, mut s2) = (0u32, 0u32);
    for &b in buf {
        s1 = s1.wrapping_add(b as i8 as i32 as u32);
        s2 = s2.wrapping_add(s1);
    }
    (s1 & 0xffff).wrapping_add(s2 << 16)
}

/// The seeded strong block sum (rsync's `get_checksum2`), full length.
pub fn strong_sum(algo: ChecksumAlgo, seed: i32, proper_seed_order: bool, buf: &[u8]) -> Vec<u8> {
    let seed_bytes = seed.to_le_bytes();
    let xseed = seed as i64 as u64;
    match algo {
        ChecksumAlgo::Xxh64 => xxhash_rust::xxh64::xxh64(buf, xseed).to_le_bytes().to_vec(),
        ChecksumAlgo::Xxh3 => xxhash_rust::xxh3::xxh3_64_with_seed(buf, xseed)
            .to_le_bytes()
            .to_vec(),
        ChecksumAlgo::Xxh128 => {
            let v = xxhash_rust::xxh3::xxh3_128_with_seed(buf, xseed);
            let mut out = (v as u64).to_le_bytes().to_vec();
            out.extend_from_slice(&((v >> 64) as u64).to_le_bytes());
            out
        }
        ChecksumAlgo::Md5 => {
            let mut h = Md5::new();
            if seed != 0 && proper_seed_order {
                h.update(seed_bytes);
            }
            h.update(buf);
            if seed != 0 && !proper_seed_order {
                h.update(seed_bytes);
            }
            h.finalize().to_vec()
        }
        ChecksumAlgo::Md4 => {
            let mut h = Md4::new();
            h.update(buf);
            if seed != 0 {
                h.update(seed_bytes);
            }
            h.finalize().to_vec()
        }
        ChecksumAlgo::Sha1 => {
            let mut h = Sha1::new();
            if seed != 0 {
                h.update(seed_bytes);
            }
            h.update(buf);
            h.finalize().to_vec()
        }
        ChecksumAlgo::None => vec![0],
    }
}

/// Reads a basis file and returns its sum header and the encoded sums.
pub fn generate(path: &Path, len: u64, neg: &Negotiated) -> io::Result<(SumHead, Vec<u8>)> {
    let head = sum_sizes(
        len as i64,
        neg.checksum.digest_len() as i32,
        SHORT_SUM_LENGTH,
    );
    let mut f = File::open(path)?;
    let mut out = Vec::with_capacity(head.count as usize * (4 + head.s2length as usize));
    let mut block = vec![0u8; head.blength as usize];
    for k in 0..head.count {
        let n = head.block_len(k) as usize;
        f.read_exact(&mut block[..n])?;
        put_i32(&mut out, rolling_sum(&block[..n]) as i32);
        let strong = strong_sum(neg.checksum, neg.seed, neg.proper_seed_order(), &block[..n]);
        out.extend_from_slice(&strong[..head.s2length as usize]);
    }
    Ok((head, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_size_table() {
        // (len, xfer_sum_len) -> (count, blength, s2length, remainder), from rsync's formulas.
        type Case = (i64, i32, (i32, i32, i32, i32));
        let cases: &[Case] = &[
            (1, 16, (1, 700, 2, 1)),
            (700, 16, (1, 700, 2, 0)),
            (490_000, 16, (700, 700, 2, 0)),
            (1_000_000, 16, (1000, 1000, 2, 0)),
            (100_000_000, 16, (10000, 10000, 3, 0)),
            (1 << 40, 8, (8_388_608, 131_072, 6, 0)),
        ];
        for &(len, xl, (count, blength, s2, rem)) in cases {
            let h = sum_sizes(len, xl, SHORT_SUM_LENGTH);
            assert_eq!(
                (h.count, h.blength, h.s2length, h.remainder),
                (count, blength, s2, rem),
                "len {len}"
            );
        }
    }

    #[test]
    fn rolling_sum_uses_signed_bytes() {
        assert_eq!(rolling_sum(b""), 0);
        assert_eq!(rolling_sum(b"a"), 97 + (97 << 16));
        // 0xFF is -1 as a signed char.
        assert_eq!(rolling_sum(&[0xFF]), 0xFFFF + (0xFFFF_FFFFu32 << 16));
    }
}
