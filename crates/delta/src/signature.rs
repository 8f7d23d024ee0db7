//! Block signatures of a basis file: one weak and one (truncated) strong sum per block.

use std::io::{self, Read, Write};

use crate::checksum::BlockHasher;
use crate::rolling::checksum1;
use crate::sizes::{SumHead, SumParams};
use crate::{Error, Result};

/// The signature of a basis file, as the generator sends it.
///
/// Sums are stored in two flat arrays (weak sums, and strong sums back to back), not one
/// allocation per block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Signature {
    head: SumHead,
    weak: Vec<u32>,
    strong: Vec<u8>,
}

/// Upper bound on blocks preallocated from an untrusted header.
const PREALLOC_LIMIT: usize = 1 << 16;

impl Signature {
    /// An empty signature for `head`, to be filled with [`Signature::push`] (e.g. while reading
    /// sums from the wire). Preallocation is capped, so a hostile count cannot exhaust memory
    /// before any sum is read.
    pub fn with_head(head: SumHead) -> Self {
        let n = (head.count as usize).min(PREALLOC_LIMIT);
        Signature {
            head,
            weak: Vec::with_capacity(n),
            strong: Vec::with_capacity(n * head.strong_len as usize),
        }
    }

    /// Append the sums of the next block. `strong` must be exactly `strong_len` bytes.
    pub fn push(&mut self, weak: u32, strong: &[u8]) -> Result<()> {
        if self.weak.len() >= self.head.count as usize {
            return Err(Error::InvalidSumHead("more sums than the header's count"));
        }
        if strong.len() != self.head.strong_len as usize {
            return Err(Error::InvalidSumHead("strong sum of the wrong length"));
        }
        self.weak.push(weak);
        self.strong.extend_from_slice(strong);
        Ok(())
    }

    /// True once every block announced by the header has its sums.
    pub fn is_complete(&self) -> bool {
        self.weak.len() == self.head.count as usize
    }

    /// Compute the signature of a basis of `file_len` bytes read from `basis`.
    ///
    /// Fails with `UnexpectedEof` if the basis is shorter than `file_len`.
    pub fn generate<R: Read>(
        mut basis: R,
        file_len: u64,
        params: &SumParams,
        hasher: &BlockHasher,
    ) -> Result<Self> {
        let head = SumHead::for_file(file_len, params)?;
        let mut sig = Signature::with_head(head);
        let strong_len = head.strong_len as usize;
        let block_len = head.block_len as usize;
        // Read many blocks at a time; the buffer is a whole number of blocks.
        let per_read = (1 << 20) / block_len.max(1) + 1;
        let mut buf = vec![0u8; per_read * block_len];
        let mut index = 0u32;
        while index < head.count {
            let blocks = (per_read as u32).min(head.count - index);
            let want: usize = (index..index + blocks)
                .map(|i| head.block_len_of(i) as usize)
                .sum();
            basis.read_exact(&mut buf[..want])?;
            for block in buf[..want].chunks(block_len) {
                let strong = hasher.sum(block);
                sig.weak.push(checksum1(block));
                sig.strong
                    .extend_from_slice(&strong.as_bytes()[..strong_len]);
            }
            index += blocks;
        }
        Ok(sig)
    }

    /// Convenience: signature of an in-memory basis.
    pub fn from_bytes(basis: &[u8], params: &SumParams, hasher: &BlockHasher) -> Result<Self> {
        Self::generate(basis, basis.len() as u64, params, hasher)
    }

    /// The sum header.
    pub fn head(&self) -> &SumHead {
        &self.head
    }

    /// Number of blocks.
    pub fn count(&self) -> u32 {
        self.head.count
    }

    /// Block length.
    pub fn block_len(&self) -> u32 {
        self.head.block_len
    }

    /// Strong-sum bytes kept per block.
    pub fn strong_len(&self) -> u32 {
        self.head.strong_len
    }

    /// Length of the last block if short, else 0.
    pub fn remainder(&self) -> u32 {
        self.head.remainder
    }

    /// Number of blocks whose sums are present (equals `count()` once complete).
    pub fn len(&self) -> usize {
        self.weak.len()
    }

    /// True when no sums are present.
    pub fn is_empty(&self) -> bool {
        self.weak.is_empty()
    }

    /// Weak sums, one per block.
    pub fn weak_sums(&self) -> &[u32] {
        &self.weak
    }

    /// The (truncated) strong sum of block `index`.
    pub fn strong_sum(&self, index: u32) -> &[u8] {
        let n = self.head.strong_len as usize;
        &self.strong[index as usize * n..(index as usize + 1) * n]
    }

    /// Write the sums (not the header) in rsync's wire form: per block an `int32` LE weak sum
    /// followed by `strong_len` strong-sum bytes.
    pub fn write_sums<W: Write>(&self, mut w: W) -> io::Result<()> {
        let mut out = Vec::with_capacity(self.weak.len() * (4 + self.head.strong_len as usize));
        for (i, weak) in self.weak.iter().enumerate() {
            out.extend_from_slice(&weak.to_le_bytes());
            out.extend_from_slice(self.strong_sum(i as u32));
            if out.len() >= 1 << 16 {
                w.write_all(&out)?;
                out.clear();
            }
        }
        w.write_all(&out)
    }

    /// Read `head.count` sums in wire form (the inverse of [`Signature::write_sums`]).
    pub fn read_sums<R: Read>(head: SumHead, mut r: R) -> Result<Self> {
        let mut sig = Signature::with_head(head);
        let mut rec = vec![0u8; 4 + head.strong_len as usize];
        for _ in 0..head.count {
            r.read_exact(&mut rec)?;
            let weak = u32::from_le_bytes([rec[0], rec[1], rec[2], rec[3]]);
            sig.push(weak, &rec[4..])?;
        }
        Ok(sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::ChecksumKind;

    #[test]
    fn generate_and_wire_round_trip() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let hasher = BlockHasher::new(ChecksumKind::Md5, 42);
        let sig = Signature::from_bytes(&data, &SumParams::new(31, 16), &hasher).unwrap();
        assert_eq!(
            (sig.count(), sig.block_len(), sig.remainder()),
            (15, 700, 200)
        );
        assert_eq!(sig.weak_sums()[14], checksum1(&data[9800..]));
        assert_eq!(
            sig.strong_sum(1),
            &hasher.sum(&data[700..1400]).as_bytes()[..2]
        );
        let mut wire = Vec::new();
        sig.write_sums(&mut wire).unwrap();
        assert_eq!(wire.len(), 15 * 6);
        assert_eq!(Signature::read_sums(*sig.head(), &wire[..]).unwrap(), sig);
        assert!(Signature::read_sums(*sig.head(), &wire[..80]).is_err());
    }

    #[test]
    fn short_basis_is_an_error() {
        let hasher = BlockHasher::new(ChecksumKind::Xxh3, 0);
        let r = Signature::generate(&[0u8; 100][..], 1000, &SumParams::new(31, 8), &hasher);
        assert!(matches!(r, Err(Error::Io(_))));
    }

    #[test]
    fn push_is_bounded() {
        let head = SumHead {
            count: 1,
            block_len: 700,
            strong_len: 2,
            remainder: 0,
        };
        let mut sig = Signature::with_head(head);
        assert!(sig.push(1, &[0, 0, 0]).is_err());
        sig.push(1, &[0, 0]).unwrap();
        assert!(sig.is_complete());
        assert!(sig.push(1, &[0, 0]).is_err());
    }
}
