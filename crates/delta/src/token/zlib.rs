//! `zlib` / `zlibx`: raw deflate (window 2^15) with a sync flush at the end of each literal
//! run, the flush's trailing `00 00 ff ff` left off the wire.
//!
//! With `zlib`, matched block data also enters the (de)compressor's history: the receiver
//! feeds it to inflate as stored blocks of at most 0xffff bytes, the sender deflates it with a
//! flush and discards the output. Only the last 32 KiB can ever be referenced, so both sides
//! here keep just that much pending and feed it lazily before the next literal data. Before
//! protocol 31 rsync re-fed the *first* 0xffff bytes of a long block instead of advancing; we
//! reproduce that.

use flate2::{Compress, Decompress, FlushCompress, FlushDecompress, Status};

use super::compressed::{push_frames, MAX_DATA_COUNT};
use crate::{Error, Result};

/// Deflate's window: history beyond this is never referenced.
const WINDOW: usize = 32 * 1024;
/// The sync-flush marker rsync strips from the wire.
const SYNC_TAIL: [u8; 4] = [0, 0, 0xff, 0xff];
/// Deflate cannot expand beyond ~1032:1; more output from one frame is corrupt or hostile.
const MAX_FRAME_OUTPUT: usize = 1032 * MAX_DATA_COUNT + 64 * 1024;
/// Decompressed bytes returned per call.
const OUT_SIZE: usize = 32 * 1024 + 64;

/// Append to `history` the bytes rsync feeds for a matched block, keeping the last [`WINDOW`].
fn add_history(history: &mut Vec<u8>, data: &[u8], protocol: u32) {
    let mut left = data.len();
    let mut at = 0;
    while left > 0 {
        let n = left.min(0xffff);
        history.extend_from_slice(&data[at..at + n]);
        if protocol >= 31 {
            at += n;
        }
        left -= n;
        if history.len() > 2 * WINDOW {
            history.drain(..history.len() - WINDOW);
        }
    }
    if history.len() > WINDOW {
        history.drain(..history.len() - WINDOW);
    }
}

/// Sender side.
pub(crate) struct Deflater {
    z: Compress,
    protocol: u32,
    feed_blocks: bool,
    history: Vec<u8>,
    /// Compressed bytes not yet framed.
    raw: Vec<u8>,
    level: u32,
}

impl Deflater {
    pub(crate) fn new(level: i32, protocol: u32, feed_blocks: bool) -> Self {
        let level = level.clamp(1, 9) as u32;
        Deflater {
            z: Compress::new(flate2::Compression::new(level), false),
            protocol,
            feed_blocks,
            history: Vec::new(),
            raw: Vec::with_capacity(2 * MAX_DATA_COUNT),
            level,
        }
    }

    /// Run deflate over `input` with `flush`, appending output to `self.raw`.
    fn run(&mut self, mut input: &[u8], flush: FlushCompress) -> Result<()> {
        loop {
            self.raw.reserve(64 * 1024);
            let before_in = self.z.total_in();
            let spare = self.raw.capacity() - self.raw.len();
            let before_out = self.raw.len();
            self.z
                .compress_vec(input, &mut self.raw, flush)
                .map_err(|e| Error::Compress(e.to_string()))?;
            let used = (self.z.total_in() - before_in) as usize;
            input = &input[used..];
            let produced = self.raw.len() - before_out;
            if input.is_empty() && produced < spare {
                return Ok(());
            }
        }
    }

    /// Frame whole frames, keeping at least `keep` bytes back.
    fn frame(&mut self, frames: &mut Vec<u8>, keep: usize) {
        let ready = self.raw.len().saturating_sub(keep) / MAX_DATA_COUNT * MAX_DATA_COUNT;
        if ready > 0 {
            push_frames(frames, &self.raw[..ready]);
            self.raw.drain(..ready);
        }
    }

    pub(crate) fn compress(&mut self, data: &[u8], frames: &mut Vec<u8>) -> Result<()> {
        if !self.history.is_empty() {
            // Put matched data into the window; its output is not sent.
            let history = std::mem::take(&mut self.history);
            let mark = self.raw.len();
            self.run(&history, FlushCompress::Sync)?;
            self.raw.truncate(mark);
        }
        self.run(data, FlushCompress::None)?;
        self.frame(frames, 0);
        Ok(())
    }

    pub(crate) fn flush(&mut self, frames: &mut Vec<u8>) -> Result<()> {
        self.run(&[], FlushCompress::Sync)?;
        if !self.raw.ends_with(&SYNC_TAIL) {
            return Err(Error::Compress(
                "sync flush did not end in 00 00 ff ff".into(),
            ));
        }
        self.raw.truncate(self.raw.len() - SYNC_TAIL.len());
        push_frames(frames, &self.raw);
        self.raw.clear();
        Ok(())
    }

    pub(crate) fn see_block(&mut self, data: &[u8]) {
        if self.feed_blocks {
            add_history(&mut self.history, data, self.protocol);
        }
    }

    pub(crate) fn reset(&mut self) {
        // A fresh compressor per file, as rsync's deflateReset.
        self.z = Compress::new(flate2::Compression::new(self.level), false);
        self.history.clear();
        self.raw.clear();
    }
}

/// Receiver side.
pub(crate) struct Inflater {
    z: Decompress,
    protocol: u32,
    feed_blocks: bool,
    history: Vec<u8>,
    input: Vec<u8>,
    pos: usize,
    out: Vec<u8>,
    frame_output: usize,
}

impl Inflater {
    pub(crate) fn new(protocol: u32, feed_blocks: bool) -> Self {
        Inflater {
            z: Decompress::new(false),
            protocol,
            feed_blocks,
            history: Vec::new(),
            input: Vec::with_capacity(MAX_DATA_COUNT),
            pos: 0,
            out: vec![0; OUT_SIZE],
            frame_output: 0,
        }
    }

    pub(crate) fn feeds_blocks(&self) -> bool {
        self.feed_blocks
    }

    /// Inflate `input` completely, discarding output; it must produce exactly `expect` bytes.
    fn absorb(&mut self, input: &[u8], expect: usize) -> Result<()> {
        let mut input = input;
        let mut produced = 0;
        loop {
            let (i0, o0) = (self.z.total_in(), self.z.total_out());
            let status = self
                .z
                .decompress(input, &mut self.out, FlushDecompress::Sync)
                .map_err(|e| Error::Decompress(e.to_string()))?;
            let used = (self.z.total_in() - i0) as usize;
            let made = (self.z.total_out() - o0) as usize;
            input = &input[used..];
            produced += made;
            if status == Status::StreamEnd {
                return Err(Error::Decompress("unexpected end of deflate stream".into()));
            }
            if input.is_empty() && made < self.out.len() {
                break;
            }
            if used == 0 && made == 0 {
                return Err(Error::Decompress("inflate made no progress".into()));
            }
        }
        if produced != expect {
            return Err(Error::Decompress("decompressor lost sync".into()));
        }
        Ok(())
    }

    pub(crate) fn start_chunk(&mut self, chunk: &[u8]) -> Result<()> {
        if !self.history.is_empty() {
            let history = std::mem::take(&mut self.history);
            let len = history.len();
            let mut stored = Vec::with_capacity(len + 5);
            stored.push(0);
            stored.extend_from_slice(&(len as u16).to_le_bytes());
            stored.extend_from_slice(&(!(len as u16)).to_le_bytes());
            stored.extend_from_slice(&history);
            self.absorb(&stored, len)?;
        }
        self.input.clear();
        self.input.extend_from_slice(chunk);
        self.pos = 0;
        self.frame_output = 0;
        Ok(())
    }

    /// Next piece of output of the current frame; 0 when the frame is used up.
    pub(crate) fn produce(&mut self) -> Result<usize> {
        loop {
            let (i0, o0) = (self.z.total_in(), self.z.total_out());
            let status = self
                .z
                .decompress(
                    &self.input[self.pos..],
                    &mut self.out,
                    FlushDecompress::None,
                )
                .map_err(|e| Error::Decompress(e.to_string()))?;
            let used = (self.z.total_in() - i0) as usize;
            let made = (self.z.total_out() - o0) as usize;
            self.pos += used;
            if status == Status::StreamEnd {
                return Err(Error::Decompress("unexpected end of deflate stream".into()));
            }
            self.frame_output += made;
            if self.frame_output > MAX_FRAME_OUTPUT {
                return Err(Error::Decompress("compressed frame expands too far".into()));
            }
            if made > 0 {
                return Ok(made);
            }
            if used == 0 {
                return Ok(0);
            }
        }
    }

    pub(crate) fn output(&self, n: usize) -> &[u8] {
        &self.out[..n]
    }

    /// A literal run ended: put back the sync marker the sender left off.
    pub(crate) fn end_data(&mut self) -> Result<()> {
        self.absorb(&SYNC_TAIL, 0)
    }

    pub(crate) fn see_block(&mut self, data: &[u8]) {
        if self.feed_blocks {
            add_history(&mut self.history, data, self.protocol);
        }
    }

    pub(crate) fn reset(&mut self) {
        self.z.reset(false);
        self.history.clear();
        self.input.clear();
        self.pos = 0;
    }
}
