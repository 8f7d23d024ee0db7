//! The flag-byte framing shared by rsync's compressed token streams, and the per-algorithm
//! backends behind it.

use std::io::{Read, Write};

use super::{read_exact, read_i32, read_u8, Compression, Token};
use crate::{Error, Result};

/// End of the file's tokens.
const END_FLAG: u8 = 0x00;
/// Absolute block number follows (`int32`).
const TOKEN_LONG: u8 = 0x20;
/// Absolute block number, then a 16-bit run count.
const TOKENRUN_LONG: u8 = 0x21;
/// Compressed data: 6 high bits of the length in the flag, then the low byte.
const DEFLATED_DATA: u8 = 0x40;
/// Block number relative to the end of the previous run (6 bits).
const TOKEN_REL: u8 = 0x80;
/// Relative block number, then a 16-bit run count.
const TOKENRUN_REL: u8 = 0xc0;
/// Largest payload of one `DEFLATED_DATA` frame.
pub const MAX_DATA_COUNT: usize = 16383;
/// Largest block index the compressed stream can carry.
const MAX_TOKEN_INDEX: i64 = 0x7fff_fffe;

/// Append `payload` to `frames` as `DEFLATED_DATA` frames of at most [`MAX_DATA_COUNT`] bytes.
pub(super) fn push_frames(frames: &mut Vec<u8>, payload: &[u8]) {
    for chunk in payload.chunks(MAX_DATA_COUNT) {
        frames.push(DEFLATED_DATA | (chunk.len() >> 8) as u8);
        frames.push(chunk.len() as u8);
        frames.extend_from_slice(chunk);
    }
}

/// One algorithm's side of the encoder: turns literal data into framed bytes.
pub(super) enum EncBackend {
    Zlib(super::zlib::Deflater),
    Zstd(super::zstd::ZstdEnc),
    Lz4,
}

/// One algorithm's side of the decoder.
pub(super) enum DecBackend {
    Zlib(super::zlib::Inflater),
    Zstd(super::zstd::ZstdDec),
    Lz4(super::lz4::Lz4Dec),
}

/// Encoder for the compressed token streams.
pub(super) struct Encoder {
    backend: EncBackend,
    /// Current run of consecutive blocks: (first, last).
    run: Option<(u32, u32)>,
    /// Last block of the previous run (the base of relative numbers).
    last_run_end: u32,
    /// Literal data was compressed and not yet flushed.
    pending: bool,
    frames: Vec<u8>,
}

impl Encoder {
    pub(super) fn new(c: Compression, level: i32, protocol: u32) -> Result<Self> {
        let backend = match c {
            Compression::Zlib => {
                EncBackend::Zlib(super::zlib::Deflater::new(level, protocol, true))
            }
            Compression::Zlibx => {
                EncBackend::Zlib(super::zlib::Deflater::new(level, protocol, false))
            }
            Compression::Zstd => EncBackend::Zstd(super::zstd::ZstdEnc::new(level)?),
            Compression::Lz4 => EncBackend::Lz4,
            Compression::None => unreachable!("plain stream has its own encoder"),
        };
        Ok(Encoder {
            backend,
            run: None,
            last_run_end: 0,
            pending: false,
            frames: Vec::with_capacity(MAX_DATA_COUNT + 2),
        })
    }

    fn write_run(&mut self, (start, last): (u32, u32)) {
        let r = start as i64 - self.last_run_end as i64;
        let n = last - start;
        let f = &mut self.frames;
        if (0..=63).contains(&r) {
            f.push(if n == 0 { TOKEN_REL } else { TOKENRUN_REL } + r as u8);
        } else {
            f.push(if n == 0 { TOKEN_LONG } else { TOKENRUN_LONG });
            f.extend_from_slice(&(start as i32).to_le_bytes());
        }
        if n != 0 {
            f.extend_from_slice(&(n as u16).to_le_bytes());
        }
        self.last_run_end = last;
    }

    fn drain<W: Write>(&mut self, w: &mut W) -> Result<()> {
        if !self.frames.is_empty() {
            w.write_all(&self.frames)?;
            self.frames.clear();
        }
        Ok(())
    }

    fn flush_data(&mut self) -> Result<()> {
        if self.pending {
            self.pending = false;
            match &mut self.backend {
                EncBackend::Zlib(z) => z.flush(&mut self.frames)?,
                EncBackend::Zstd(z) => z.flush(&mut self.frames)?,
                EncBackend::Lz4 => {}
            }
        }
        Ok(())
    }

    pub(super) fn literal<W: Write>(&mut self, w: &mut W, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        if let Some(run) = self.run.take() {
            self.write_run(run);
        }
        match &mut self.backend {
            EncBackend::Zlib(z) => z.compress(data, &mut self.frames)?,
            EncBackend::Zstd(z) => z.compress(data, &mut self.frames)?,
            EncBackend::Lz4 => super::lz4::compress(data, &mut self.frames)?,
        }
        self.pending = true;
        self.drain(w)
    }

    pub(super) fn block<W: Write>(&mut self, w: &mut W, index: u32, data: &[u8]) -> Result<()> {
        if index as i64 > MAX_TOKEN_INDEX {
            return Err(Error::InvalidToken("block index too large"));
        }
        self.flush_data()?;
        self.run = match self.run {
            Some((start, last)) if index == last.wrapping_add(1) && index - start < 65536 => {
                Some((start, index))
            }
            Some(run) => {
                self.write_run(run);
                Some((index, index))
            }
            None => Some((index, index)),
        };
        if let EncBackend::Zlib(z) = &mut self.backend {
            z.see_block(data);
        }
        self.drain(w)
    }

    pub(super) fn finish_file<W: Write>(&mut self, w: &mut W) -> Result<()> {
        self.flush_data()?;
        if let Some(run) = self.run.take() {
            self.write_run(run);
        }
        self.frames.push(END_FLAG);
        self.last_run_end = 0;
        if let EncBackend::Zlib(z) = &mut self.backend {
            z.reset();
        }
        self.drain(w)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting a flag byte.
    Idle,
    /// Decompressing a data frame.
    Data,
    /// Data frames ended; the next non-data flag closes the literal run.
    AfterData,
    /// Returning the rest of a block run.
    Running,
}

/// Decoder for the compressed token streams.
pub(super) struct Decoder {
    backend: DecBackend,
    state: State,
    /// Last block number returned (relative numbers build on it).
    rx_token: i64,
    /// Blocks of the current run still to return.
    rx_run: u32,
    cbuf: Vec<u8>,
    pub(super) limit: Option<u64>,
    seen: u64,
}

impl Decoder {
    pub(super) fn new(c: Compression, protocol: u32) -> Result<Self> {
        let backend = match c {
            Compression::Zlib => DecBackend::Zlib(super::zlib::Inflater::new(protocol, true)),
            Compression::Zlibx => DecBackend::Zlib(super::zlib::Inflater::new(protocol, false)),
            Compression::Zstd => DecBackend::Zstd(super::zstd::ZstdDec::new()?),
            Compression::Lz4 => DecBackend::Lz4(super::lz4::Lz4Dec::default()),
            Compression::None => unreachable!("plain stream has its own decoder"),
        };
        Ok(Decoder {
            backend,
            state: State::Idle,
            rx_token: 0,
            rx_run: 0,
            cbuf: vec![0; MAX_DATA_COUNT],
            limit: None,
            seen: 0,
        })
    }

    pub(super) fn needs_block_data(&self) -> bool {
        matches!(&self.backend, DecBackend::Zlib(z) if z.feeds_blocks())
    }

    pub(super) fn see_block(&mut self, data: &[u8]) {
        if let DecBackend::Zlib(z) = &mut self.backend {
            z.see_block(data);
        }
    }

    fn produce(&mut self) -> Result<usize> {
        match &mut self.backend {
            DecBackend::Zlib(z) => z.produce(),
            DecBackend::Zstd(z) => z.produce(),
            DecBackend::Lz4(z) => Ok(z.produce()),
        }
    }

    fn output(&self, n: usize) -> &[u8] {
        match &self.backend {
            DecBackend::Zlib(z) => z.output(n),
            DecBackend::Zstd(z) => z.output(n),
            DecBackend::Lz4(z) => z.output(n),
        }
    }

    pub(super) fn next<R: Read>(&mut self, r: &mut R) -> Result<Option<Token<'_>>> {
        loop {
            match self.state {
                State::Running => {
                    if self.rx_token >= MAX_TOKEN_INDEX {
                        return Err(Error::InvalidToken("block run past the largest index"));
                    }
                    self.rx_token += 1;
                    self.rx_run -= 1;
                    if self.rx_run == 0 {
                        self.state = State::Idle;
                    }
                    return Ok(Some(Token::Block(self.rx_token as u32)));
                }
                State::Data => {
                    let n = self.produce()?;
                    if n == 0 {
                        self.state = State::AfterData;
                        continue;
                    }
                    self.seen += n as u64;
                    if self.limit.is_some_and(|l| self.seen > l) {
                        return Err(Error::Decompress("literal data exceeds the limit".into()));
                    }
                    return Ok(Some(Token::Literal(self.output(n))));
                }
                State::Idle | State::AfterData => {
                    let flag = read_u8(r)?;
                    if flag & 0xc0 == DEFLATED_DATA {
                        let n = ((flag as usize & 0x3f) << 8) | read_u8(r)? as usize;
                        if n == 0 {
                            return Err(Error::InvalidToken("empty compressed data frame"));
                        }
                        read_exact(r, &mut self.cbuf[..n])?;
                        let chunk = &self.cbuf[..n];
                        match &mut self.backend {
                            DecBackend::Zlib(z) => z.start_chunk(chunk)?,
                            DecBackend::Zstd(z) => z.start_chunk(chunk),
                            DecBackend::Lz4(z) => z.start_chunk(chunk)?,
                        }
                        self.state = State::Data;
                        continue;
                    }
                    if self.state == State::AfterData {
                        if let DecBackend::Zlib(z) = &mut self.backend {
                            z.end_data()?;
                        }
                    }
                    self.state = State::Idle;
                    if flag == END_FLAG {
                        self.end_file();
                        return Ok(None);
                    }
                    let index = self.token_number(flag, r)?;
                    return Ok(Some(Token::Block(index)));
                }
            }
        }
    }

    fn token_number<R: Read>(&mut self, flag: u8, r: &mut R) -> Result<u32> {
        let run = if flag & TOKEN_REL != 0 {
            let incr = (flag & 0x3f) as i64;
            if self.rx_token > MAX_TOKEN_INDEX - incr {
                return Err(Error::InvalidToken("relative block number overflows"));
            }
            self.rx_token += incr;
            flag & 0x40 != 0
        } else if flag == TOKEN_LONG || flag == TOKENRUN_LONG {
            let t = read_i32(r)? as i64;
            if !(0..=MAX_TOKEN_INDEX).contains(&t) {
                return Err(Error::InvalidToken("absolute block number out of range"));
            }
            self.rx_token = t;
            flag == TOKENRUN_LONG
        } else {
            return Err(Error::InvalidToken("unknown flag byte"));
        };
        if run {
            let mut b = [0u8; 2];
            read_exact(r, &mut b)?;
            let n = u16::from_le_bytes(b) as u32;
            if n == 0 || self.rx_token > MAX_TOKEN_INDEX - n as i64 {
                return Err(Error::InvalidToken("invalid block run length"));
            }
            self.rx_run = n;
            self.state = State::Running;
        }
        Ok(self.rx_token as u32)
    }

    fn end_file(&mut self) {
        self.rx_token = 0;
        self.rx_run = 0;
        self.seen = 0;
        if let DecBackend::Zlib(z) = &mut self.backend {
            z.reset();
        }
    }
}
