//! Throughput of signature, match and patch on a large file with a few changes.
//!
//! `cargo run --release -p rtsync-delta --example delta_bench -- [MiB] [changed KiB] [kind]`
//! (defaults: 1024 MiB, 1024 KiB changed, xxh128). Files go in `$TMPDIR`. Prints MB/s per
//! phase; `bench/delta/run.sh` compares the total with stock rsync on the same files.

use std::fs::File;
use std::io::{BufWriter, Cursor, Write};
use std::time::Instant;

use rtsync_delta::{
    BlockHasher, ChecksumKind, Compression, Matcher, Patcher, Signature, SumParams, TokenDecoder,
    TokenEncoder,
};

fn fill(buf: &mut [u8], mut x: u64) {
    for chunk in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let mib: u64 = args.get(1).map_or(Ok(1024), |s| s.parse())?;
    let changed_kib: u64 = args.get(2).map_or(Ok(1024), |s| s.parse())?;
    let kind: ChecksumKind = args.get(3).map_or("xxh128", |s| s.as_str()).parse()?;
    let comp: Compression = args.get(4).map_or("none", |s| s.as_str()).parse()?;
    let dir =
        std::env::var("BENCH_DIR").unwrap_or_else(|_| std::env::temp_dir().display().to_string());
    let basis_path = format!("{dir}/delta_bench.basis");
    let new_path = format!("{dir}/delta_bench.new");
    let len = mib << 20;

    // Basis: pseudo-random. New: the same with `changed_kib` rewritten in 16 places.
    let pieces = 16u64;
    let piece = (changed_kib << 10) / pieces;
    {
        let mut b = BufWriter::with_capacity(1 << 20, File::create(&basis_path)?);
        let mut n = BufWriter::with_capacity(1 << 20, File::create(&new_path)?);
        let mut buf = vec![0u8; 1 << 20];
        for i in 0..mib {
            fill(&mut buf, i + 1);
            b.write_all(&buf)?;
            let at = i << 20;
            for p in 0..pieces {
                let off = p * (len / pieces) + 4096;
                if off + piece > at && off < at + (1 << 20) {
                    let s = off.max(at) - at;
                    let e = ((off + piece).min(at + (1 << 20)) - at) as usize;
                    fill(&mut buf[s as usize..e], !(i + p));
                }
            }
            n.write_all(&buf)?;
        }
    }

    let hasher = BlockHasher::new(kind, 0x5eed);
    let params = SumParams::new(31, kind.digest_len());
    let mb = len as f64 / 1e6;

    let t = Instant::now();
    let sig = Signature::generate(File::open(&basis_path)?, len, &params, &hasher)?;
    let sig_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut delta = Vec::new();
    let mut enc = TokenEncoder::new(comp, None, 31)?;
    let stats = Matcher::new(&sig, hasher)
        .stream(File::open(&new_path)?, |tok| enc.write(&mut delta, tok))?;
    enc.finish_file(&mut delta)?;
    let match_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut dec = TokenDecoder::new(comp, 31)?;
    let mut patcher = Patcher::new(File::open(&basis_path)?, *sig.head(), kind);
    let mut out =
        BufWriter::with_capacity(1 << 20, File::create(format!("{dir}/delta_bench.out"))?);
    patcher.apply_stream(&mut dec, &mut Cursor::new(&delta), &mut out)?;
    out.flush()?;
    patcher.verify(stats.checksum.as_bytes())?;
    let patch_s = t.elapsed().as_secs_f64();

    println!(
        "file {mib} MiB, {changed_kib} KiB changed, {kind}, {comp}: blocks {} x {} B, literal {} B, delta {} B",
        sig.count(),
        sig.block_len(),
        stats.literal_bytes,
        delta.len()
    );
    println!("signature {:>8.0} MB/s  ({sig_s:.2} s)", mb / sig_s);
    println!("match     {:>8.0} MB/s  ({match_s:.2} s)", mb / match_s);
    println!("patch     {:>8.0} MB/s  ({patch_s:.2} s)", mb / patch_s);
    println!("total     {:.2} s", sig_s + match_s + patch_s);
    Ok(())
}
