//! A hostile token stream against a small basis: out-of-range blocks and short bases are
//! errors, output stays bounded, nothing panics.
#![no_main]

use std::io::{self, Cursor, Write};

use libfuzzer_sys::fuzz_target;
use rtsync_delta::{ChecksumKind, Compression, Patcher, SumHead, TokenDecoder};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let comp = Compression::ALL[sel as usize % Compression::ALL.len()];
    let basis: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
    // Claims one block more than the basis holds.
    let head = SumHead { count: 9, block_len: 600, strong_len: 2, remainder: 200 };
    let mut dec = TokenDecoder::new(comp, 31).unwrap();
    dec.set_literal_limit(Some(1 << 20));
    let mut patcher = Patcher::new(Cursor::new(&basis), head, ChecksumKind::Md5);
    // Block runs legitimately amplify (3 bytes → 65536 blocks), so cap the output.
    let mut out = Capped(0);
    let _ = patcher.apply_stream(&mut dec, &mut &rest[..], &mut out);
});

/// A sink that fails after 16 MiB.
struct Capped(usize);

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        if self.0 > 16 << 20 {
            return Err(io::Error::other("output cap"));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
