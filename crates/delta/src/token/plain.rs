//! The uncompressed token stream.

use std::io::{Read, Write};

use super::{read_exact, read_i32, Token};
use crate::sizes::CHUNK_SIZE;
use crate::{Error, Result};

pub(super) fn write_literal<W: Write>(w: &mut W, data: &[u8]) -> Result<()> {
    for chunk in data.chunks(CHUNK_SIZE) {
        w.write_all(&(chunk.len() as i32).to_le_bytes())?;
        w.write_all(chunk)?;
    }
    Ok(())
}

pub(super) fn write_block<W: Write>(w: &mut W, index: u32) -> Result<()> {
    let index = i32::try_from(index).map_err(|_| Error::InvalidToken("block index too large"))?;
    w.write_all(&(-(index + 1)).to_le_bytes())?;
    Ok(())
}

pub(super) fn write_end<W: Write>(w: &mut W) -> Result<()> {
    w.write_all(&0i32.to_le_bytes())?;
    Ok(())
}

/// Decoder state: how much of a literal run is still to be read.
#[derive(Debug)]
pub(super) struct Decoder {
    residue: u32,
    buf: Vec<u8>,
    pub(super) limit: Option<u64>,
    seen: u64,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            residue: 0,
            buf: vec![0; CHUNK_SIZE],
            limit: None,
            seen: 0,
        }
    }
}

impl Decoder {
    pub(super) fn next<R: Read>(&mut self, r: &mut R) -> Result<Option<Token<'_>>> {
        if self.residue == 0 {
            let n = read_i32(r)?;
            if n == 0 {
                self.seen = 0;
                return Ok(None);
            }
            if n < 0 {
                // -(k+1) for block k; i32::MIN maps to k = 2^31-1, still representable.
                return Ok(Some(Token::Block((-(n as i64) - 1) as u32)));
            }
            self.residue = n as u32;
            self.seen += n as u64;
            if self.limit.is_some_and(|l| self.seen > l) {
                return Err(Error::InvalidToken("literal data exceeds the limit"));
            }
        }
        let n = (self.residue as usize).min(CHUNK_SIZE);
        read_exact(r, &mut self.buf[..n])?;
        self.residue -= n as u32;
        Ok(Some(Token::Literal(&self.buf[..n])))
    }
}
