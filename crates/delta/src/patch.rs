//! The receiver side: rebuild the new file from a basis and a token stream.

use std::io::{Read, Seek, SeekFrom, Write};

use crate::checksum::{ChecksumKind, Digest, FileHasher};
use crate::sizes::SumHead;
use crate::token::{Token, TokenDecoder};
use crate::{Error, Result};

/// Applies tokens to a basis, writing the new file and summing it as it goes.
#[derive(Debug)]
pub struct Patcher<B> {
    basis: B,
    head: SumHead,
    /// Where the basis reader is now, to skip seeks for consecutive blocks.
    pos: Option<u64>,
    buf: Vec<u8>,
    hash: FileHasherDebug,
    written: u64,
}

/// `FileHasher` wrapped to give `Patcher` a `Debug` impl.
struct FileHasherDebug(FileHasher);

impl std::fmt::Debug for FileHasherDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileHasher")
    }
}

impl<B: Read + Seek> Patcher<B> {
    /// A patcher over `basis`, described by the sum header `head` that the generator sent;
    /// `kind` is the transfer checksum (for the whole-file sum).
    pub fn new(basis: B, head: SumHead, kind: ChecksumKind) -> Self {
        Patcher {
            basis,
            head,
            pos: None,
            buf: Vec::new(),
            hash: FileHasherDebug(FileHasher::new(kind)),
            written: 0,
        }
    }

    /// Apply one token, writing its bytes to `out`. For a block token, returns the block's
    /// data (to hand to [`TokenDecoder::see_block`]); for a literal, returns an empty slice.
    pub fn apply<W: Write>(&mut self, token: Token<'_>, out: &mut W) -> Result<&[u8]> {
        match token {
            Token::Literal(data) => {
                out.write_all(data)?;
                self.hash.0.update(data);
                self.written += data.len() as u64;
                Ok(&[])
            }
            Token::Block(index) => {
                if index >= self.head.count {
                    return Err(Error::BlockOutOfRange {
                        index: index as u64,
                        count: self.head.count,
                    });
                }
                let len = self.head.block_len_of(index) as usize;
                let at = index as u64 * self.head.block_len as u64;
                if self.pos != Some(at) {
                    self.basis.seek(SeekFrom::Start(at))?;
                }
                self.buf.resize(len, 0);
                read_full(&mut self.basis, &mut self.buf).map_err(|e| match e {
                    Error::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        Error::BasisTooShort { index }
                    }
                    e => e,
                })?;
                self.pos = Some(at + len as u64);
                out.write_all(&self.buf)?;
                self.hash.0.update(&self.buf);
                self.written += len as u64;
                Ok(&self.buf)
            }
        }
    }

    /// Decode one file's tokens from `input` with `decoder` and apply them all.
    pub fn apply_stream<R: Read, W: Write>(
        &mut self,
        decoder: &mut TokenDecoder,
        input: &mut R,
        out: &mut W,
    ) -> Result<()> {
        while let Some(token) = decoder.next(input)? {
            let data = self.apply(token, out)?;
            if decoder.needs_block_data() && !data.is_empty() {
                decoder.see_block(data);
            }
        }
        Ok(())
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Finish: the whole-file checksum of what was written, and its length.
    pub fn finish(self) -> (Digest, u64) {
        (self.hash.0.finish(), self.written)
    }

    /// Finish and compare with the sender's whole-file checksum.
    pub fn verify(self, expected: &[u8]) -> Result<u64> {
        let (digest, n) = self.finish();
        if digest.as_bytes() == expected {
            Ok(n)
        } else {
            Err(Error::ChecksumMismatch)
        }
    }
}

fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<()> {
    r.read_exact(buf)?;
    Ok(())
}

/// Rebuilds a file inside its own basis (`--inplace`): the tokens must come from a
/// [`crate::Matcher`] in [`crate::Matcher::inplace`] mode. Blocks already at their offset
/// are skipped rather than rewritten. After the last token the caller truncates the file to
/// [`InPlacePatcher::written`] bytes.
#[derive(Debug)]
pub struct InPlacePatcher<F> {
    file: F,
    head: SumHead,
    /// Write position (bytes of the new file produced so far).
    offset: u64,
    buf: Vec<u8>,
    hash: FileHasherDebug,
}

impl<F: Read + Write + Seek> InPlacePatcher<F> {
    /// Patch `file` (the basis, opened read-write) described by `head`.
    pub fn new(file: F, head: SumHead, kind: ChecksumKind) -> Self {
        InPlacePatcher {
            file,
            head,
            offset: 0,
            buf: Vec::new(),
            hash: FileHasherDebug(FileHasher::new(kind)),
        }
    }

    /// Apply one token; returns the block data for [`TokenDecoder::see_block`] as
    /// [`Patcher::apply`] does.
    pub fn apply(&mut self, token: Token<'_>) -> Result<&[u8]> {
        match token {
            Token::Literal(data) => {
                self.file.seek(SeekFrom::Start(self.offset))?;
                self.file.write_all(data)?;
                self.hash.0.update(data);
                self.offset += data.len() as u64;
                Ok(&[])
            }
            Token::Block(index) => {
                if index >= self.head.count {
                    return Err(Error::BlockOutOfRange {
                        index: index as u64,
                        count: self.head.count,
                    });
                }
                let len = self.head.block_len_of(index) as usize;
                let at = index as u64 * self.head.block_len as u64;
                self.file.seek(SeekFrom::Start(at))?;
                self.buf.resize(len, 0);
                self.file.read_exact(&mut self.buf).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::UnexpectedEof {
                        Error::BasisTooShort { index }
                    } else {
                        Error::Io(e)
                    }
                })?;
                if at != self.offset {
                    self.file.seek(SeekFrom::Start(self.offset))?;
                    self.file.write_all(&self.buf)?;
                }
                self.hash.0.update(&self.buf);
                self.offset += len as u64;
                Ok(&self.buf)
            }
        }
    }

    /// Decode one file's tokens from `input` and apply them all.
    pub fn apply_stream<R: Read>(
        &mut self,
        decoder: &mut TokenDecoder,
        input: &mut R,
    ) -> Result<()> {
        while let Some(token) = decoder.next(input)? {
            let data = self.apply(token)?;
            if decoder.needs_block_data() && !data.is_empty() {
                decoder.see_block(data);
            }
        }
        Ok(())
    }

    /// Length of the new file so far.
    pub fn written(&self) -> u64 {
        self.offset
    }

    /// Finish: the whole-file checksum, the new length, and the file back.
    pub fn finish(self) -> (Digest, u64, F) {
        (self.hash.0.finish(), self.offset, self.file)
    }
}
