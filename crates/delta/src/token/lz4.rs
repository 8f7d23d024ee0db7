//! `lz4`: every data frame is one independent LZ4 block of at most [`MAX_DATA_COUNT`] bytes.

use super::compressed::{push_frames, MAX_DATA_COUNT};
use crate::sizes::CHUNK_SIZE;
use crate::{Error, Result};

/// rsync's receive buffer: `max(LZ4_compressBound(CHUNK_SIZE), MAX_DATA_COUNT + 2)`.
const OUT_SIZE: usize = CHUNK_SIZE + CHUNK_SIZE / 255 + 16;

/// Compress `data` as rsync does: up to [`MAX_DATA_COUNT`] input bytes per block, halving the
/// input while the block would not fit in one frame.
pub(super) fn compress(mut data: &[u8], frames: &mut Vec<u8>) -> Result<()> {
    while !data.is_empty() {
        let mut take = data.len().min(MAX_DATA_COUNT);
        loop {
            let block = lz4_flex::block::compress(&data[..take]);
            if block.len() <= MAX_DATA_COUNT {
                push_frames(frames, &block);
                break;
            }
            take /= 2;
            if take == 0 {
                return Err(Error::Compress("lz4 block does not fit a frame".into()));
            }
        }
        data = &data[take..];
    }
    Ok(())
}

/// Receiver side: one block decoded per frame.
pub(super) struct Lz4Dec {
    out: Vec<u8>,
    ready: usize,
}

impl Default for Lz4Dec {
    fn default() -> Self {
        Lz4Dec {
            out: vec![0; OUT_SIZE],
            ready: 0,
        }
    }
}

impl Lz4Dec {
    pub(super) fn start_chunk(&mut self, chunk: &[u8]) -> Result<()> {
        self.ready = lz4_flex::block::decompress_into(chunk, &mut self.out)
            .map_err(|e| Error::Decompress(e.to_string()))?;
        Ok(())
    }

    pub(super) fn produce(&mut self) -> usize {
        std::mem::take(&mut self.ready)
    }

    pub(super) fn output(&self, n: usize) -> &[u8] {
        &self.out[..n]
    }
}
