//! Micro-timings of the building blocks on an in-memory buffer.
use std::time::Instant;

use rtsync_delta::{checksum1, file_checksum, BlockHasher, ChecksumKind};

fn main() {
    let data: Vec<u8> = (0..256u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
        .collect();
    let mb = data.len() as f64 / 1e6;
    let t = Instant::now();
    let mut acc = 0u32;
    for block in data.chunks(32768) {
        acc ^= checksum1(block);
    }
    println!(
        "checksum1   {:>8.0} MB/s ({acc:x})",
        mb / t.elapsed().as_secs_f64()
    );
    for kind in [
        ChecksumKind::Xxh128,
        ChecksumKind::Xxh3,
        ChecksumKind::Xxh64,
        ChecksumKind::Md5,
    ] {
        let h = BlockHasher::new(kind, 7);
        let t = Instant::now();
        let mut n = 0;
        for block in data.chunks(32768) {
            n += h.sum(block).as_bytes()[0] as usize;
        }
        println!(
            "block {kind:<6} {:>8.0} MB/s ({n})",
            mb / t.elapsed().as_secs_f64()
        );
        let t = Instant::now();
        let d = file_checksum(kind, &data);
        println!(
            "file  {kind:<6} {:>8.0} MB/s ({d:?})",
            mb / t.elapsed().as_secs_f64()
        );
    }
}
