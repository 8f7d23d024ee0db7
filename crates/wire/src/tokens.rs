//! The token stream between sender and receiver: literal data runs, references to basis
//! blocks, and the end marker. Plain form: an int32 per token (`n > 0`: n literal bytes
//! follow; `n < 0`: block `-(n+1)`; `0`: end). Compressed forms come from `rtsync-delta`.

use std::io::Read;

use crate::error::{Error, Result};
use crate::negotiate::Compression;
use crate::sums::CHUNK_SIZE;
use crate::varint::{put_i32, ReadWire};

/// One decoded token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Literal(Vec<u8>),
    Block(i32),
    End,
}

/// Decodes tokens, handing out literal runs in pieces of at most [`CHUNK_SIZE`] bytes.
pub struct TokenReader {
    compression: Option<Compression>,
    /// Literal bytes still to read from the current run.
    residue: usize,
}

impl TokenReader {
    pub fn new(compression: Option<Compression>) -> TokenReader {
        TokenReader {
            compression,
            residue: 0,
        }
    }

    pub fn next<R: Read + ?Sized>(&mut self, r: &mut R) -> Result<Token> {
        if let Some(c) = self.compression {
            return Err(Error::Unsupported(format!(
                "{} token compression is not implemented yet",
                c.name()
            )));
        }
        if self.residue == 0 {
            let n = r.read_i32()?;
            if n == 0 {
                return Ok(Token::End);
            }
            if n < 0 {
                return Ok(Token::Block(-(n + 1)));
            }
            self.residue = n as usize;
        }
        let take = self.residue.min(CHUNK_SIZE);
        let mut data = vec![0u8; take];
        r.read_all(&mut data)?;
        self.residue -= take;
        Ok(Token::Literal(data))
    }

    /// Tells a compressing decoder about matched data (zlib keeps it in its dictionary).
    pub fn see_block(&mut self, _data: &[u8]) {}
}

/// Encodes plain tokens.
#[derive(Debug, Default)]
pub struct TokenWriter;

impl TokenWriter {
    /// Appends literal data, split into runs of at most [`CHUNK_SIZE`] (stock ≥ 3.4 refuses
    /// longer ones).
    pub fn literal(&mut self, out: &mut Vec<u8>, data: &[u8]) {
        for chunk in data.chunks(CHUNK_SIZE) {
            put_i32(out, chunk.len() as i32);
            out.extend_from_slice(chunk);
        }
    }

    pub fn block(&mut self, out: &mut Vec<u8>, k: i32) {
        put_i32(out, -(k + 1));
    }

    pub fn end(&mut self, out: &mut Vec<u8>) {
        put_i32(out, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_roundtrip() {
        let mut w = TokenWriter;
        let mut out = Vec::new();
        w.literal(&mut out, &vec![7u8; 70_000]);
        w.block(&mut out, 0);
        w.block(&mut out, 41);
        w.end(&mut out);
        let mut r = TokenReader::new(None);
        let mut input = &out[..];
        let mut lit = 0;
        let mut toks = Vec::new();
        loop {
            match r.next(&mut input).unwrap() {
                Token::Literal(d) => {
                    assert!(d.len() <= CHUNK_SIZE);
                    lit += d.len();
                }
                Token::End => break,
                t => toks.push(t),
            }
        }
        assert_eq!(lit, 70_000);
        assert_eq!(toks, vec![Token::Block(0), Token::Block(41)]);
    }

    #[test]
    fn huge_literal_claim_is_read_lazily_and_fails_on_eof() {
        let mut out = Vec::new();
        put_i32(&mut out, i32::MAX);
        out.extend_from_slice(b"abc");
        let mut r = TokenReader::new(None);
        assert!(r.next(&mut &out[..]).is_err());
    }
}
