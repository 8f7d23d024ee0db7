//! `--progress` when rtsync's client receives (pulling from a stock daemon or a stock
//! server over a remote shell), compared with stock's client doing the same pull: the list
//! count (`receiving file list ... N files to consider`), each transferred file's first
//! (`0   0%`) and closing (`xfr#N, to-chk=LEFT/LISTED`) progress lines in their place among
//! the item lines. Rates and times are masked, and lines in between (shown once a second)
//! dropped.

mod daemon_util;
mod interop_util;
mod roles;

use std::path::Path;

use interop_util::{set_mtime, write_file};
use roles::matrix::{self, Case, Side, Via};

/// A tree with a large file (several tokens), an empty one, one changed in part (sent as a
/// delta), one already current, and files in nested directories.
fn prepare(base: &Path) {
    let (src, dst) = (base.join("src"), base.join("dst"));
    for d in ["sub/deeper", "other"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
    }
    std::fs::create_dir_all(&dst).unwrap();
    let big: Vec<u8> = (0..400_000u32).map(|i| (i * 7 % 251) as u8).collect();
    write_file(&src.join("big"), &big);
    let mut changed = big.clone();
    changed[200_000..200_100].fill(0);
    write_file(&dst.join("big"), &changed);
    write_file(&src.join("empty"), b"");
    write_file(&src.join("same"), b"same\n");
    write_file(&dst.join("same"), b"same\n");
    write_file(&src.join("sub/a"), b"a\n");
    write_file(&src.join("sub/deeper/b"), b"bb\n");
    write_file(&src.join("other/c"), b"ccc\n");
    for (i, p) in [
        "src/big",
        "src/empty",
        "src/same",
        "src/sub/a",
        "src/sub/deeper/b",
        "src/other/c",
        "src/sub/deeper",
        "src/sub",
        "src/other",
        "src",
        "dst/big",
        "dst",
    ]
    .iter()
    .enumerate()
    {
        let t = if *p == "dst/same" {
            1_600_000_200
        } else {
            1_600_000_000 + i as i64 * 100
        };
        set_mtime(&base.join(p), t, 0);
    }
    set_mtime(&base.join("dst/same"), 1_600_000_200, 0);
}

/// Masks a progress line's rate and time; `None` for a line shown in between (once a
/// second, so depending on the machine's speed).
fn mask(segment: &str) -> Option<String> {
    let words: Vec<&str> = segment.split_whitespace().collect();
    if words.len() < 4 || !words[1].ends_with('%') {
        return Some(segment.to_string());
    }
    let tail = words[4..].join(" ");
    let first = words[0] == "0" && words[1] == "0%" && tail.is_empty();
    if !first && !tail.starts_with("(xfr#") {
        return None;
    }
    Some(format!("{} {} RATE TIME {tail}", words[0], words[1]))
}

/// The output with every progress line masked (see [`mask`]).
fn normalized(output: &str) -> String {
    let mut out = String::new();
    for line in output.split_inclusive('\n') {
        // (The speedup divides by byte counts, which differ between implementations.)
        if let Some(at) = line.find("  speedup is ") {
            out.push_str(&line[..at]);
            out.push('\n');
            continue;
        }
        let mut parts = line.split('\r');
        out.push_str(parts.next().unwrap_or_default());
        for seg in parts {
            if let Some(m) = mask(seg.trim_end_matches('\n')) {
                out.push_str("\\r");
                out.push_str(&m);
            }
        }
        if line.ends_with('\n') && !out.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

fn pull_progress(opts: &[&str]) {
    for via in [Via::Shell, Via::Daemon] {
        let case = Case::new(opts, &[""]);
        let ours = tempfile::tempdir().unwrap();
        let stock = tempfile::tempdir().unwrap();
        let got = matrix::run(
            ours.path(),
            &prepare,
            (Side::Ours, Side::Stock, via, false),
            case,
        );
        let want = matrix::run(
            stock.path(),
            &prepare,
            (Side::Stock, Side::Stock, via, false),
            case,
        );
        let (got, want) = (normalized(&got.output), normalized(&want.output));
        assert!(want.contains("xfr#"), "no progress from stock: {want}");
        assert_eq!(got, want, "{opts:?} via {via:?}");
    }
}

#[test]
fn pull_progress_with_incremental_recursion() {
    pull_progress(&["-a", "--progress"]);
}

#[test]
fn pull_progress_with_the_whole_list_first() {
    pull_progress(&["-ai", "--progress", "--no-inc-recursive"]);
}

#[test]
fn pull_progress_with_names_and_items() {
    pull_progress(&["-av", "--progress"]);
    pull_progress(&["-ai", "--progress", "--delay-updates"]);
}
