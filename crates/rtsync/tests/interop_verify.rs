//! A file that fails the whole-file verification after its delta: what the receiver keeps
//! with `--partial` (and `--partial-dir`, `--delay-updates`), what it says, and the retry —
//! our client's receiver compared with stock's on the same basis and source.
//!
//! The failure is made deterministic with a basis block that collides with a source block in
//! both the rolling sum and the 2-byte strong sum prefix used in the first pass (a fixed
//! `--checksum-seed`): the sender matches the source block to it, the receiver copies the
//! wrong bytes, and the whole-file sum differs.

mod interop_util;

use interop_util::*;
use rtsync_delta::{BlockHasher, ChecksumKind};
use std::path::Path;

const SEED: i32 = 7777;
const BLOCK: usize = 700;

/// Stock's rolling checksum of a block (signed bytes).
fn rolling(data: &[u8]) -> u32 {
    let (mut s1, mut s2) = (0u32, 0u32);
    for &b in data {
        s1 = s1.wrapping_add(b as i8 as i32 as u32);
        s2 = s2.wrapping_add(s1);
    }
    (s1 & 0xffff) | (s2 << 16)
}

/// A block other than `a` with the same rolling sum and the same first two bytes of its
/// seeded xxh128 block sum (the negotiated default).
fn colliding(a: &[u8]) -> Vec<u8> {
    let h = BlockHasher::new(ChecksumKind::Xxh128, SEED);
    let want = h.sum(a);
    // +1, -2, +1 on three neighbouring bytes keeps both halves of the rolling sum.
    let bump = |v: &mut Vec<u8>, i: usize| {
        v[i] += 1;
        v[i + 1] -= 2;
        v[i + 2] += 1;
    };
    for i in 0..a.len() - 2 {
        for j in (i + 3)..a.len() - 2 {
            let mut v = a.to_vec();
            bump(&mut v, i);
            bump(&mut v, j);
            if h.sum(&v).as_bytes()[..2] == want.as_bytes()[..2] {
                assert_eq!(rolling(&v), rolling(a));
                return v;
            }
        }
    }
    panic!("no collision found");
}

/// Text bytes well inside the signed-char range, so the bumps never cross it.
fn text(len: usize, seed: u32) -> Vec<u8> {
    pattern(len, seed).iter().map(|b| b'c' + b % 20).collect()
}

/// Source `f` = A + B; the destination's `f` = A' + B + a tail (A' colliding with A), older.
fn setup(src: &Path, dst: &Path) {
    let a = text(BLOCK, 1);
    let b = text(BLOCK, 2);
    let a2 = colliding(&a);
    std::fs::create_dir_all(src).unwrap();
    std::fs::create_dir_all(dst).unwrap();
    std::fs::write(src.join("f"), [&a[..], &b[..]].concat()).unwrap();
    // A longer destination: what the receiver builds (and stock keeps with --partial)
    // differs from it in size, which the retry's item line shows.
    std::fs::write(dst.join("f"), [&a2[..], &b[..], b"tail\n"].concat()).unwrap();
    std::fs::write(src.join("g"), b"other file\n").unwrap();
    set_mtime(&src.join("f"), 1_600_000_000, 0);
    set_mtime(&dst.join("f"), 1_500_000_000, 0);
    set_mtime(&src.join("g"), 1_600_000_000, 0);
    // (The roots too: `./` is itemized only when their times differ.)
    set_mtime(src, 1_600_000_000, 0);
    set_mtime(dst, 1_500_000_000, 0);
}

fn shown(out: &std::process::Output) -> (String, String, Option<i32>) {
    let stdout = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("sent ") && !l.starts_with("total size is "))
        .collect::<Vec<_>>()
        .join("\n");
    (
        stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

#[test]
fn failed_verification_with_partial_matches_stock() {
    let seed = format!("--checksum-seed={SEED}");
    for extra in [
        &["--partial"][..],
        &["--partial", "-v"],
        &["--partial", "--backup"],
        &["--partial-dir=.pd"],
        &["--partial-dir=.pd", "-v", "--backup"],
        &["--delay-updates"],
        &[],
    ] {
        let work = tempfile::tempdir().unwrap();
        let ssh = fake_ssh(work.path());
        let mut results = Vec::new();
        for ours in [false, true] {
            let src = work.path().join(if ours { "src-o" } else { "src-s" });
            let dst = work.path().join(if ours { "dst-o" } else { "dst-s" });
            setup(&src, &dst);
            let mut args: Vec<String> = vec![
                "-ai".into(),
                seed.clone(),
                "-e".into(),
                ssh.display().to_string(),
                format!("--rsync-path={}", remote_rsync_path(false)),
            ];
            args.extend(extra.iter().map(|s| s.to_string()));
            args.push(format!("localhost:{}/", src.display()));
            args.push(format!("{}/", dst.display()));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = if ours {
                rtsync(&args)
            } else {
                run_stock(&args)
            };
            let s = shown(&out);
            let fix = |t: &str| t.replace("-o/", "-X/").replace("-s/", "-X/");
            results.push(((fix(&s.0), fix(&s.1), s.2), dst));
        }
        let (want, got) = (&results[0], &results[1]);
        assert!(
            want.0 .0.contains("failed verification") || want.0 .1.contains("failed verification"),
            "{extra:?}: the case should fail verification: {:?}",
            want.0
        );
        assert_eq!(got.0, want.0, "{extra:?}");
        assert_same_tree(&got.1, &want.1, false);
    }
}
