//! Token stream codecs: the plain stream and rsync's compressed streams (`-z`).
//!
//! Plain: `int32` LE `n > 0` then `n` literal bytes; `-(k+1)` for block `k`; `0` ends a file.
//!
//! Compressed (`zlib`, `zlibx`, `zstd`, `lz4`): a stream of flag bytes —
//! `0x00` end of file; `0x40|hi6, lo8` then that many bytes of compressed literal data;
//! `0x80|r` block `last+r` (`r` ≤ 63), `0xc0|r` the same starting a run, followed by a 16-bit LE
//! count of further consecutive blocks; `0x20` + `int32` absolute block number, `0x21` the same
//! starting a run. `zlib` also feeds matched block data into the (de)compressor's window;
//! `zstd` keeps one stream across all files of a session.

mod compressed;
mod lz4;
mod plain;
mod zlib;
mod zstd;

use std::fmt;
use std::io::{Read, Write};
use std::str::FromStr;

use crate::matcher::MatchToken;
use crate::{Error, Result};

pub use compressed::MAX_DATA_COUNT;

/// One wire token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token<'a> {
    /// Literal bytes of the new file.
    Literal(&'a [u8]),
    /// A copy of basis block `index`.
    Block(u32),
}

/// The `-z` compression algorithms rsync negotiates, in its order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Zstandard, one stream per session.
    Zstd,
    /// LZ4 blocks.
    Lz4,
    /// Raw deflate without matched-data feeding.
    Zlibx,
    /// Raw deflate, matched block data fed into the window (rsync's classic `-z`).
    Zlib,
    /// The plain token stream.
    None,
}

impl Compression {
    /// Every algorithm, in stock rsync's preference order.
    pub const ALL: [Compression; 5] = [
        Compression::Zstd,
        Compression::Lz4,
        Compression::Zlibx,
        Compression::Zlib,
        Compression::None,
    ];

    /// The name rsync negotiates.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Zstd => "zstd",
            Compression::Lz4 => "lz4",
            Compression::Zlibx => "zlibx",
            Compression::Zlib => "zlib",
            Compression::None => "none",
        }
    }

    /// Parse an rsync compression name (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }

    /// `"zstd lz4 zlibx zlib none"`.
    pub fn default_list() -> String {
        Self::ALL.map(Self::name).join(" ")
    }

    /// The level rsync uses when none is given.
    pub fn default_level(self) -> i32 {
        match self {
            Compression::Zlib | Compression::Zlibx => 6,
            Compression::Zstd => 3,
            Compression::Lz4 | Compression::None => 0,
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Compression {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::from_name(s).ok_or_else(|| Error::UnknownCompression(s.to_owned()))
    }
}

/// Streaming token encoder for one direction of a session. Feed each file's tokens, then
/// [`TokenEncoder::finish_file`]; reuse the same encoder for the next file (zstd requires it).
pub struct TokenEncoder {
    inner: EncoderInner,
}

enum EncoderInner {
    Plain,
    Compressed(Box<compressed::Encoder>),
}

impl fmt::Debug for TokenEncoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenEncoder")
    }
}

impl TokenEncoder {
    /// An encoder for `compression` at `level` (`None`: rsync's default) and `protocol`.
    pub fn new(compression: Compression, level: Option<i32>, protocol: u32) -> Result<Self> {
        let level = level.unwrap_or(compression.default_level());
        let inner = match compression {
            Compression::None => EncoderInner::Plain,
            c => EncoderInner::Compressed(Box::new(compressed::Encoder::new(c, level, protocol)?)),
        };
        Ok(TokenEncoder { inner })
    }

    /// Literal data (any length; split as the codec requires).
    pub fn literal<W: Write>(&mut self, w: &mut W, data: &[u8]) -> Result<()> {
        match &mut self.inner {
            EncoderInner::Plain => plain::write_literal(w, data),
            EncoderInner::Compressed(c) => c.literal(w, data),
        }
    }

    /// Block `index`, whose content is `data` (used by `zlib` only; may be empty otherwise).
    pub fn block<W: Write>(&mut self, w: &mut W, index: u32, data: &[u8]) -> Result<()> {
        match &mut self.inner {
            EncoderInner::Plain => plain::write_block(w, index),
            EncoderInner::Compressed(c) => c.block(w, index, data),
        }
    }

    /// A token from the matcher.
    pub fn write<W: Write>(&mut self, w: &mut W, token: MatchToken<'_>) -> Result<()> {
        match token {
            MatchToken::Literal(d) => self.literal(w, d),
            MatchToken::Block { index, data } => self.block(w, index, data),
        }
    }

    /// End the current file's token stream.
    pub fn finish_file<W: Write>(&mut self, w: &mut W) -> Result<()> {
        match &mut self.inner {
            EncoderInner::Plain => plain::write_end(w),
            EncoderInner::Compressed(c) => c.finish_file(w),
        }
    }
}

/// Streaming token decoder for one direction of a session; reuse it across files.
pub struct TokenDecoder {
    inner: DecoderInner,
}

enum DecoderInner {
    Plain(plain::Decoder),
    Compressed(Box<compressed::Decoder>),
}

impl fmt::Debug for TokenDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenDecoder")
    }
}

impl TokenDecoder {
    /// A decoder for `compression` at `protocol`.
    pub fn new(compression: Compression, protocol: u32) -> Result<Self> {
        let inner = match compression {
            Compression::None => DecoderInner::Plain(plain::Decoder::default()),
            c => DecoderInner::Compressed(Box::new(compressed::Decoder::new(c, protocol)?)),
        };
        Ok(TokenDecoder { inner })
    }

    /// The next token of the current file, or `None` at its end. Literal data comes in pieces
    /// of at most [`crate::CHUNK_SIZE`] bytes (plain) or one decompressed buffer (compressed).
    #[allow(clippy::should_implement_trait)]
    pub fn next<R: Read>(&mut self, r: &mut R) -> Result<Option<Token<'_>>> {
        match &mut self.inner {
            DecoderInner::Plain(p) => p.next(r),
            DecoderInner::Compressed(c) => c.next(r),
        }
    }

    /// True if the codec needs each matched block's data via [`TokenDecoder::see_block`].
    pub fn needs_block_data(&self) -> bool {
        match &self.inner {
            DecoderInner::Plain(_) => false,
            DecoderInner::Compressed(c) => c.needs_block_data(),
        }
    }

    /// Give the decoder the data of the block token it just returned (`zlib` only).
    pub fn see_block(&mut self, data: &[u8]) {
        if let DecoderInner::Compressed(c) = &mut self.inner {
            c.see_block(data);
        }
    }

    /// Limit the literal bytes one file may decode to (a guard against decompression bombs
    /// when the expected size is known); `None` for no limit.
    pub fn set_literal_limit(&mut self, limit: Option<u64>) {
        match &mut self.inner {
            DecoderInner::Plain(p) => p.limit = limit,
            DecoderInner::Compressed(c) => c.limit = limit,
        }
    }
}

/// Read exactly `buf.len()` bytes. A short read stays an I/O error of kind UnexpectedEof:
/// the stream ended (the connection closed), which the caller reports as such.
pub(crate) fn read_exact<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<()> {
    r.read_exact(buf).map_err(Error::Io)
}

pub(crate) fn read_i32<R: Read>(r: &mut R) -> Result<i32> {
    let mut b = [0u8; 4];
    read_exact(r, &mut b)?;
    Ok(i32::from_le_bytes(b))
}

pub(crate) fn read_u8<R: Read>(r: &mut R) -> Result<u8> {
    let mut b = [0u8; 1];
    read_exact(r, &mut b)?;
    Ok(b[0])
}

#[cfg(test)]
mod tests;
