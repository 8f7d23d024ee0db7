//! `zstd`: one compression stream for the whole session, flushed at the end of each literal run.

use zstd::stream::raw::{Decoder, Encoder, InBuffer, Operation, OutBuffer};

use super::compressed::{push_frames, MAX_DATA_COUNT};
use crate::{Error, Result};

/// Output buffer size for decompression (as rsync: two `ZSTD_DStreamOutSize()`).
const OUT_SIZE: usize = 2 * (128 * 1024 + 3);
/// Largest output accepted from one frame.
const MAX_FRAME_OUTPUT: usize = 64 << 20;

fn zerr(e: std::io::Error) -> Error {
    Error::Compress(e.to_string())
}

/// Sender side.
pub(crate) struct ZstdEnc {
    z: Encoder<'static>,
    buf: Vec<u8>,
}

impl ZstdEnc {
    pub(crate) fn new(level: i32) -> Result<Self> {
        Ok(ZstdEnc {
            z: Encoder::new(level).map_err(zerr)?,
            buf: vec![0; MAX_DATA_COUNT],
        })
    }

    pub(crate) fn compress(&mut self, data: &[u8], frames: &mut Vec<u8>) -> Result<()> {
        let mut input = InBuffer::around(data);
        while input.pos < data.len() {
            let mut out = OutBuffer::around(&mut self.buf[..]);
            self.z.run(&mut input, &mut out).map_err(zerr)?;
            let n = out.pos();
            push_frames(frames, &self.buf[..n]);
        }
        Ok(())
    }

    pub(crate) fn flush(&mut self, frames: &mut Vec<u8>) -> Result<()> {
        loop {
            let mut out = OutBuffer::around(&mut self.buf[..]);
            let left = self.z.flush(&mut out).map_err(zerr)?;
            let n = out.pos();
            push_frames(frames, &self.buf[..n]);
            if left == 0 {
                return Ok(());
            }
        }
    }
}

/// Receiver side.
pub(crate) struct ZstdDec {
    z: Decoder<'static>,
    input: Vec<u8>,
    pos: usize,
    out: Vec<u8>,
    frame_output: usize,
}

impl ZstdDec {
    pub(crate) fn new() -> Result<Self> {
        Ok(ZstdDec {
            z: Decoder::new().map_err(zerr)?,
            input: Vec::with_capacity(MAX_DATA_COUNT),
            pos: 0,
            out: vec![0; OUT_SIZE],
            frame_output: 0,
        })
    }

    pub(crate) fn start_chunk(&mut self, chunk: &[u8]) {
        self.input.clear();
        self.input.extend_from_slice(chunk);
        self.pos = 0;
        self.frame_output = 0;
    }

    pub(crate) fn produce(&mut self) -> Result<usize> {
        loop {
            let mut input = InBuffer::around(&self.input[self.pos..]);
            let mut out = OutBuffer::around(&mut self.out[..]);
            self.z
                .run(&mut input, &mut out)
                .map_err(|e| Error::Decompress(e.to_string()))?;
            let used = input.pos;
            let made = out.pos();
            self.pos += used;
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
}
