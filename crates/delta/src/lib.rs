//! rsync's delta algorithm, wire-compatible with stock rsync 3.x (protocol 30–32): rolling
//! checksum, block-size choice, strong checksums, signatures, matching (sender), patching
//! (receiver) and the token stream codecs, plain and compressed (`zlib`, `zlibx`, `zstd`,
//! `lz4`). Pure computation over `Read`/`Write`; no files, sockets or global state.
//!
//! # Pieces, in the order a transfer uses them
//!
//! | step | who | API |
//! |---|---|---|
//! | choose block length and strong-sum length | generator | [`SumHead::for_file`] with [`SumParams`] |
//! | validate a header from the wire | sender | [`SumHead::from_wire`] |
//! | sum the basis | generator | [`Signature::generate`], [`BlockHasher`], [`checksum1`] |
//! | sums on the wire | both | [`Signature::write_sums`], [`Signature::read_sums`], [`Signature::push`] |
//! | find matches in the new file | sender | [`Matcher::stream`] → [`MatchToken`]s + [`MatchStats::checksum`] |
//! | encode tokens | sender | [`TokenEncoder`] (one per session direction) |
//! | decode tokens | receiver | [`TokenDecoder`] (one per session direction) |
//! | rebuild the file, verify the whole-file sum | receiver | [`Patcher`], [`InPlacePatcher`] |
//!
//! # Compatibility notes (checked against stock rsync 3.5.0 by `tests/stock_rsync.rs`)
//!
//! * Weak sum: signed chars, `(s1 & 0xffff) | (s2 << 16)`.
//! * Block length: `BLOCK_SIZE` (700) up to 700² bytes, else the square root rounded down to a
//!   multiple of 8, capped at 128 KiB (protocol ≥ 30). s2length: `(10 + 2·log2(len) −
//!   log2(blen) − 24) / 8`, at least `csum_length` (2) and at most the digest length.
//! * Block sums are seeded (see [`BlockHasher`]; the seed order of MD4 and MD5 matters);
//!   whole-file sums are not ([`FileHasher`]).
//! * Literal runs are at most 32 KiB ([`CHUNK_SIZE`]), compressed frames at most 16383 bytes.
//! * `zlib` feeds matched blocks into the deflate window; before protocol 31 rsync re-fed the
//!   first 64 KiB of a longer block instead of advancing, and both our encoder and decoder do
//!   the same. `zstd` keeps one stream for the whole session, so keep one encoder/decoder per
//!   direction and reuse it for every file.
//! * Decoders bound what they read: literal data comes out in pieces of at most ~32 KiB (256 KiB
//!   for zstd), a compressed frame may not expand past a fixed limit, block numbers are range
//!   checked, and [`TokenDecoder::set_literal_limit`] can cap a file's literal bytes.
//!
//! # Example
//!
//! ```
//! use std::io::Cursor;
//! use rtsync_delta::{
//!     BlockHasher, ChecksumKind, Compression, Matcher, Patcher, Signature, SumParams,
//!     TokenDecoder, TokenEncoder,
//! };
//!
//! let basis = b"the quick brown fox jumps over the lazy dog\n".repeat(100);
//! let mut new = basis.clone();
//! new.splice(1000..1010, b"CHANGED!".iter().copied());
//!
//! // Receiver (generator): signature of the basis.
//! let kind = ChecksumKind::Xxh128;
//! let hasher = BlockHasher::new(kind, 0x1234_5678);
//! let params = SumParams::new(31, kind.digest_len());
//! let sig = Signature::from_bytes(&basis, &params, &hasher)?;
//!
//! // Sender: match the new file against it and encode the tokens.
//! let mut wire = Vec::new();
//! let mut enc = TokenEncoder::new(Compression::Zlib, None, 31)?;
//! let stats = Matcher::new(&sig, hasher).stream(&new[..], |t| enc.write(&mut wire, t))?;
//! enc.finish_file(&mut wire)?;
//!
//! // Receiver: decode and apply to the basis, then verify the whole-file sum.
//! let mut dec = TokenDecoder::new(Compression::Zlib, 31)?;
//! let mut patcher = Patcher::new(Cursor::new(&basis), *sig.head(), kind);
//! let mut out = Vec::new();
//! patcher.apply_stream(&mut dec, &mut &wire[..], &mut out)?;
//! patcher.verify(stats.checksum.as_bytes())?;
//! assert_eq!(out, new);
//! # Ok::<(), rtsync_delta::Error>(())
//! ```

mod checksum;
mod error;
mod matcher;
mod patch;
mod rolling;
mod signature;
mod sizes;
mod token;

pub use checksum::{
    file_checksum, BlockHasher, ChecksumKind, Digest, FileHasher, SeedOrder, MAX_DIGEST_LEN,
};
pub use error::{Error, Result};
pub use matcher::{
    diff_to_vec, stream_arriving, stream_arriving_counted, MatchStats, MatchToken, Matcher,
    OwnedToken,
};
pub use patch::{InPlacePatcher, Patcher};
pub use rolling::{checksum1, Rolling};
pub use signature::Signature;
pub use sizes::{
    max_block_size, SumHead, SumParams, BLOCK_SIZE, CHUNK_SIZE, MAX_BLOCK_SIZE, OLD_MAX_BLOCK_SIZE,
    SHORT_SUM_LENGTH, SUM_LENGTH,
};
pub use token::{Compression, Token, TokenDecoder, TokenEncoder, MAX_DATA_COUNT};
