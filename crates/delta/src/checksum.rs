//! Strong checksums: rsync's block sums (seeded) and whole-file sums (unseeded).
//!
//! Semantics, as stock rsync 3.x computes them at protocol ≥ 30:
//!
//! | kind | block sum | whole-file sum |
//! |---|---|---|
//! | `md5` | seed (4 bytes LE) hashed *before* the data with proper seed order (`CF_CHKSUM_SEED_FIX`), *after* it otherwise | plain MD5 |
//! | `md4` | seed hashed *after* the data (rsync's built-in MD4; OpenSSL 3 has no MD4 by default) | plain MD4 |
//! | `sha1` | seed hashed before the data (OpenSSL path) | plain SHA-1 |
//! | `xxh64`, `xxh3`, `xxh128` | seed (sign-extended to 64 bits) as the hash seed | seed 0 |
//! | `none` | not used (rsync forces whole-file transfers) | one zero byte |
//!
//! A zero seed is never hashed in. Multi-word digests are little-endian (`SIVAL64`).

use std::fmt;
use std::str::FromStr;

use md4::Md4;
use md5::{Digest as _, Md5};
use sha1::Sha1;
use xxhash_rust::xxh3::{xxh3_128_with_seed, xxh3_64_with_seed, Xxh3};
use xxhash_rust::xxh64::{xxh64, Xxh64};

use crate::Error;

/// Longest digest any [`ChecksumKind`] produces (SHA-1).
pub const MAX_DIGEST_LEN: usize = 20;

/// The transfer checksums rsync negotiates, in its order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumKind {
    /// XXH3, 128-bit.
    Xxh128,
    /// XXH3, 64-bit.
    Xxh3,
    /// XXH64.
    Xxh64,
    /// MD5.
    Md5,
    /// MD4 (protocol ≥ 30 semantics).
    Md4,
    /// SHA-1.
    Sha1,
    /// No checksum at all.
    None,
}

impl ChecksumKind {
    /// Every kind, in rsync's default preference order.
    pub const ALL: [ChecksumKind; 7] = [
        ChecksumKind::Xxh128,
        ChecksumKind::Xxh3,
        ChecksumKind::Xxh64,
        ChecksumKind::Md5,
        ChecksumKind::Md4,
        ChecksumKind::Sha1,
        ChecksumKind::None,
    ];

    /// The name rsync prints and negotiates.
    pub fn name(self) -> &'static str {
        match self {
            ChecksumKind::Xxh128 => "xxh128",
            ChecksumKind::Xxh3 => "xxh3",
            ChecksumKind::Xxh64 => "xxh64",
            ChecksumKind::Md5 => "md5",
            ChecksumKind::Md4 => "md4",
            ChecksumKind::Sha1 => "sha1",
            ChecksumKind::None => "none",
        }
    }

    /// Parse an rsync checksum name (case-insensitive; `xxhash` is an alias of `xxh64`).
    pub fn from_name(name: &str) -> Option<Self> {
        let n = name.to_ascii_lowercase();
        Some(match n.as_str() {
            "xxh128" => ChecksumKind::Xxh128,
            "xxh3" => ChecksumKind::Xxh3,
            "xxh64" | "xxhash" => ChecksumKind::Xxh64,
            "md5" => ChecksumKind::Md5,
            "md4" => ChecksumKind::Md4,
            "sha1" => ChecksumKind::Sha1,
            "none" => ChecksumKind::None,
            _ => return None,
        })
    }

    /// The space-separated list stock rsync advertises: `"xxh128 xxh3 xxh64 md5 md4 sha1 none"`.
    pub fn default_list() -> String {
        Self::ALL.map(Self::name).join(" ")
    }

    /// Digest length in bytes (`csum_len_for_type`); `none` counts as one byte.
    pub fn digest_len(self) -> usize {
        match self {
            ChecksumKind::Xxh64 | ChecksumKind::Xxh3 => 8,
            ChecksumKind::Xxh128 | ChecksumKind::Md5 | ChecksumKind::Md4 => 16,
            ChecksumKind::Sha1 => 20,
            ChecksumKind::None => 1,
        }
    }

    /// Where the seed goes in block sums for this kind, given whether the peers agreed on
    /// proper seed order (`CF_CHKSUM_SEED_FIX`).
    pub fn seed_order(self, proper_seed_order: bool) -> SeedOrder {
        match self {
            ChecksumKind::Md5 if !proper_seed_order => SeedOrder::After,
            ChecksumKind::Md4 => SeedOrder::After,
            _ => SeedOrder::Before,
        }
    }
}

impl fmt::Display for ChecksumKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ChecksumKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::from_name(s).ok_or_else(|| Error::UnknownChecksum(s.to_owned()))
    }
}

/// Whether the 4-byte seed is hashed before or after the block data (MD4/MD5/SHA-1 only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedOrder {
    /// Seed first, then data.
    Before,
    /// Data first, then seed.
    After,
}

/// A digest of up to [`MAX_DIGEST_LEN`] bytes, stored inline.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Digest {
    bytes: [u8; MAX_DIGEST_LEN],
    len: u8,
}

impl Digest {
    fn new(src: &[u8]) -> Self {
        let mut bytes = [0; MAX_DIGEST_LEN];
        bytes[..src.len()].copy_from_slice(src);
        Digest {
            bytes,
            len: src.len() as u8,
        }
    }

    /// The digest bytes, as sent on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl AsRef<[u8]> for Digest {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Computes rsync block sums ("checksum2") for one transfer: kind, seed and seed order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHasher {
    kind: ChecksumKind,
    seed: i32,
    order: SeedOrder,
}

impl BlockHasher {
    /// A hasher with the seed placed as stock rsync does with proper seed order (protocol ≥ 30).
    pub fn new(kind: ChecksumKind, seed: i32) -> Self {
        Self::with_order(kind, seed, kind.seed_order(true))
    }

    /// A hasher with an explicit seed order (for MD5 without `CF_CHKSUM_SEED_FIX`).
    pub fn with_order(kind: ChecksumKind, seed: i32, order: SeedOrder) -> Self {
        BlockHasher { kind, seed, order }
    }

    /// The checksum kind.
    pub fn kind(&self) -> ChecksumKind {
        self.kind
    }

    /// The checksum seed.
    pub fn seed(&self) -> i32 {
        self.seed
    }

    /// Full-length block sum of `data`.
    pub fn sum(&self, data: &[u8]) -> Digest {
        let seed = self.seed.to_le_bytes();
        let xseed = self.seed as i64 as u64;
        match self.kind {
            ChecksumKind::Xxh64 => Digest::new(&xxh64(data, xseed).to_le_bytes()),
            ChecksumKind::Xxh3 => Digest::new(&xxh3_64_with_seed(data, xseed).to_le_bytes()),
            ChecksumKind::Xxh128 => Digest::new(&xxh3_128_with_seed(data, xseed).to_le_bytes()),
            ChecksumKind::Md5 => self.seeded::<Md5>(data, &seed),
            ChecksumKind::Md4 => self.seeded::<Md4>(data, &seed),
            ChecksumKind::Sha1 => self.seeded::<Sha1>(data, &seed),
            ChecksumKind::None => Digest::new(&[0]),
        }
    }

    fn seeded<D: md5::Digest>(&self, data: &[u8], seed: &[u8; 4]) -> Digest {
        let mut h = D::new();
        let with_seed = self.seed != 0;
        if with_seed && self.order == SeedOrder::Before {
            h.update(seed);
        }
        h.update(data);
        if with_seed && self.order == SeedOrder::After {
            h.update(seed);
        }
        Digest::new(&h.finalize())
    }
}

/// Streaming whole-file checksum, as rsync's `sum_init`/`sum_update`/`sum_end` at protocol ≥ 30.
#[derive(Clone)]
pub struct FileHasher {
    state: FileState,
}

#[derive(Clone)]
enum FileState {
    Xxh64(Box<Xxh64>),
    Xxh3(Box<Xxh3>),
    Xxh128(Box<Xxh3>),
    Md5(Md5),
    Md4(Md4),
    Sha1(Sha1),
    None,
}

impl FileHasher {
    /// Start a whole-file sum of `kind` (never seeded at protocol ≥ 30).
    pub fn new(kind: ChecksumKind) -> Self {
        let state = match kind {
            ChecksumKind::Xxh64 => FileState::Xxh64(Box::new(Xxh64::new(0))),
            ChecksumKind::Xxh3 => FileState::Xxh3(Box::new(Xxh3::new())),
            ChecksumKind::Xxh128 => FileState::Xxh128(Box::new(Xxh3::new())),
            ChecksumKind::Md5 => FileState::Md5(Md5::new()),
            ChecksumKind::Md4 => FileState::Md4(Md4::new()),
            ChecksumKind::Sha1 => FileState::Sha1(Sha1::new()),
            ChecksumKind::None => FileState::None,
        };
        FileHasher { state }
    }

    /// Feed more file data.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            FileState::Xxh64(h) => h.update(data),
            FileState::Xxh3(h) | FileState::Xxh128(h) => h.update(data),
            FileState::Md5(h) => h.update(data),
            FileState::Md4(h) => h.update(data),
            FileState::Sha1(h) => h.update(data),
            FileState::None => {}
        }
    }

    /// The digest, as sent after the token stream.
    pub fn finish(self) -> Digest {
        match self.state {
            FileState::Xxh64(h) => Digest::new(&h.digest().to_le_bytes()),
            FileState::Xxh3(h) => Digest::new(&h.digest().to_le_bytes()),
            FileState::Xxh128(h) => Digest::new(&h.digest128().to_le_bytes()),
            FileState::Md5(h) => Digest::new(&h.finalize()),
            FileState::Md4(h) => Digest::new(&h.finalize()),
            FileState::Sha1(h) => Digest::new(&h.finalize()),
            FileState::None => Digest::new(&[0]),
        }
    }
}

/// Whole-file checksum of an in-memory buffer.
pub fn file_checksum(kind: ChecksumKind, data: &[u8]) -> Digest {
    let mut h = FileHasher::new(kind);
    h.update(data);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(d: &[u8]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(
            ChecksumKind::default_list(),
            "xxh128 xxh3 xxh64 md5 md4 sha1 none"
        );
        for k in ChecksumKind::ALL {
            assert_eq!(k.name().parse::<ChecksumKind>().unwrap(), k);
        }
        assert_eq!(ChecksumKind::from_name("XXHASH"), Some(ChecksumKind::Xxh64));
        assert!("crc32".parse::<ChecksumKind>().is_err());
    }

    #[test]
    fn whole_file_known_vectors() {
        // Standard test vectors of each algorithm for "abc" (unseeded).
        let cases = [
            (ChecksumKind::Md5, "900150983cd24fb0d6963f7d28e17f72"),
            (ChecksumKind::Md4, "a448017aaf21d8525fc10ae87aa6729d"),
            (
                ChecksumKind::Sha1,
                "a9993e364706816aba3e25717850c26c9cd0d89d",
            ),
            (ChecksumKind::None, "00"),
        ];
        for (k, want) in cases {
            assert_eq!(hex(file_checksum(k, b"abc").as_bytes()), want, "{k}");
            assert_eq!(file_checksum(k, b"abc").as_bytes().len(), k.digest_len());
        }
        // xxh64("", 0) = ef46db3751d8e999, stored little-endian.
        assert_eq!(
            hex(file_checksum(ChecksumKind::Xxh64, b"").as_bytes()),
            "99e9d85137db46ef"
        );
    }

    #[test]
    fn seeded_block_sums() {
        let data = b"hello world";
        let seed: i32 = 0x01020304;
        // MD5 with proper order = md5(seed_le ++ data); without = md5(data ++ seed_le).
        let mut before = seed.to_le_bytes().to_vec();
        before.extend_from_slice(data);
        let mut after = data.to_vec();
        after.extend_from_slice(&seed.to_le_bytes());
        let md5 = |d: &[u8]| file_checksum(ChecksumKind::Md5, d);
        assert_eq!(
            BlockHasher::new(ChecksumKind::Md5, seed).sum(data),
            md5(&before)
        );
        let legacy =
            BlockHasher::with_order(ChecksumKind::Md5, seed, ChecksumKind::Md5.seed_order(false));
        assert_eq!(legacy.sum(data), md5(&after));
        // MD4 appends the seed.
        assert_eq!(
            BlockHasher::new(ChecksumKind::Md4, seed).sum(data),
            file_checksum(ChecksumKind::Md4, &after)
        );
        // A zero seed is not hashed in.
        for k in [
            ChecksumKind::Md5,
            ChecksumKind::Md4,
            ChecksumKind::Sha1,
            ChecksumKind::Xxh3,
        ] {
            assert_eq!(
                BlockHasher::new(k, 0).sum(data),
                file_checksum(k, data),
                "{k}"
            );
        }
        // xxh uses the sign-extended seed.
        let neg = BlockHasher::new(ChecksumKind::Xxh64, -1).sum(data);
        assert_eq!(neg.as_bytes(), xxh64(data, u64::MAX).to_le_bytes());
    }
}
