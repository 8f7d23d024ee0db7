//! Typed errors of the delta engine.

use std::io;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An underlying reader or writer failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// A `--block-size` override outside rsync's limits.
    #[error("invalid block size {size} (allowed 1..={max})")]
    InvalidBlockSize {
        /// The requested size.
        size: u64,
        /// The largest size the protocol allows.
        max: u32,
    },
    /// The file is too large to describe with an `int32` block count.
    #[error("file of {0} bytes needs more than 2^31-1 blocks")]
    TooManyBlocks(u64),
    /// A sum header received from a peer is out of bounds.
    #[error("invalid sum header: {0}")]
    InvalidSumHead(&'static str),
    /// A token referred to a block that the signature does not have.
    #[error("block index {index} out of range (count {count})")]
    BlockOutOfRange {
        /// The index received.
        index: u64,
        /// Number of blocks in the signature.
        count: u32,
    },
    /// The basis file ended before a referenced block.
    #[error("basis file too short for block {index}")]
    BasisTooShort {
        /// The block that could not be read in full.
        index: u32,
    },
    /// A malformed token stream.
    #[error("invalid token stream: {0}")]
    InvalidToken(&'static str),
    /// A compressed chunk failed to decompress or expanded beyond the allowed bound.
    #[error("decompression failed: {0}")]
    Decompress(String),
    /// The compressor reported an error.
    #[error("compression failed: {0}")]
    Compress(String),
    /// A checksum name that rsync does not know.
    #[error("unknown checksum name {0:?}")]
    UnknownChecksum(String),
    /// A compression name that rsync does not know.
    #[error("unknown compression name {0:?}")]
    UnknownCompression(String),
    /// The whole-file checksum of the rebuilt file did not match the sender's.
    #[error("whole-file checksum mismatch")]
    ChecksumMismatch,
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
