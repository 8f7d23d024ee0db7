//! rsync's delta algorithm, wire-compatible with stock rsync 3.x (protocol 30–32): rolling
//! checksum, block-size choice, strong checksums, signatures, matching (sender), patching
//! (receiver) and the token stream codecs, plain and compressed (`zlib`, `zlibx`, `zstd`,
//! `lz4`). Pure computation over `Read`/`Write`; no files, sockets or global state.
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
pub use matcher::{diff_to_vec, MatchStats, MatchToken, Matcher, OwnedToken};
pub use patch::Patcher;
pub use rolling::{checksum1, Rolling};
pub use signature::Signature;
pub use sizes::{
    max_block_size, SumHead, SumParams, BLOCK_SIZE, CHUNK_SIZE, MAX_BLOCK_SIZE, OLD_MAX_BLOCK_SIZE,
    SHORT_SUM_LENGTH, SUM_LENGTH,
};
pub use token::{Compression, Token, TokenDecoder, TokenEncoder, MAX_DATA_COUNT};
