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

// --- `-vv` lines a server sends its client (MSG_INFO) ---

/// Deterministic pseudo-random bytes.
fn noise(n: usize, mut x: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A file changed in one place (sent as a delta) and a new one.
fn prepare_delta(base: &Path) {
    let (src, dst) = (base.join("src"), base.join("dst"));
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::create_dir_all(&dst).unwrap();
    let data = noise(150_000, 0x9e37_79b9_7f4a_7c15);
    let mut old = data.clone();
    old[70_000..70_040].fill(0);
    write_file(&src.join("f"), &data);
    write_file(&dst.join("f"), &old);
    write_file(&src.join("sub/new"), &noise(5_000, 7));
    // Repeated blocks, and a block with the same weak sum as another but other data (two
    // bytes up, two down where the rolling sum cannot tell): rsync's sender counts a false
    // alarm each time it meets that one first in its hash chain.
    let a = noise(700, 11);
    let mut b = a.clone();
    b[0] = b[0].wrapping_add(1);
    b[1] = b[1].wrapping_sub(1);
    b[2] = b[2].wrapping_sub(1);
    b[3] = b[3].wrapping_add(1);
    assert!(a[0] < 255 && a[1] > 0 && a[2] > 0 && a[3] < 255);
    let x = |seed| noise(700, seed);
    write_file(
        &dst.join("rep"),
        &[a.clone(), x(1), x(2), b.clone(), x(3)].concat(),
    );
    write_file(
        &src.join("rep"),
        &[noise(100, 4), a.clone(), noise(300, 5), a.clone(), a, b].concat(),
    );
    for (i, p) in [
        "src/f",
        "src/sub/new",
        "src/rep",
        "src/sub",
        "src",
        "dst/f",
        "dst/rep",
        "dst",
    ]
    .iter()
    .enumerate()
    {
        set_mtime(&base.join(p), 1_600_000_000 + i as i64 * 100, 0);
    }
}

/// `-vv` in every pairing: the generator's `delta-transmission enabled` and the sender's
/// `total: matches=…` closing line come from whichever side generates or sends, the
/// server's over MSG_INFO.
#[test]
fn very_verbose_lines_of_either_side() {
    let case = Case::new(&["-avv"], &[""]);
    matrix::every_pairing_outputs(&prepare_delta, case, &mut |roles, got, want| {
        // (The command line names each side's binary.)
        let strip = |t: &str| -> String {
            normalized(t)
                .lines()
                .filter(|l| {
                    // (Also left out: a daemon client's connection notices, which name the
                    // port.)
                    !l.starts_with("opening connection using")
                        && !l.starts_with("opening tcp connection")
                        && !l.starts_with("sending daemon args")
                })
                .map(|l| format!("{l}\n"))
                .collect()
        };
        let (got, want) = (strip(&got.output), strip(&want.output));
        if roles.2 == Via::Shell {
            assert!(want.contains("false_alarms=3 "), "{want}");
        }
        assert_eq!(got, want, "{roles:?}");
    });
}

/// A tree where one file is current, one differs only in its permissions and one is new.
fn prepare_unchanged(base: &Path) {
    let (src, dst) = (base.join("src"), base.join("dst"));
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::create_dir_all(dst.join("d")).unwrap();
    for (name, data) in [("same", &b"same\n"[..]), ("d/perm", b"perm\n")] {
        write_file(&src.join(name), data);
        write_file(&dst.join(name), data);
        set_mtime(&src.join(name), 1_600_000_000, 0);
        set_mtime(&dst.join(name), 1_600_000_000, 0);
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dst.join("d/perm"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(src.join("d/perm"), std::fs::Permissions::from_mode(0o644)).unwrap();
    write_file(&src.join("new"), b"new\n");
    for d in ["src/d", "src", "dst/d", "dst"] {
        set_mtime(&base.join(d), 1_500_000_000, 0);
    }
}

/// `-vv` names what needed no transfer once, from whichever side generates: `NAME is
/// uptodate`, or `NAME` when only its attributes changed (a receiving server sends them
/// to the client; a sending client adds none of its own). Compared as sets of lines: the
/// server's notices and the sender's names travel apart.
#[test]
fn very_verbose_names_unchanged_items_once_from_either_side() {
    let case = Case::new(&["-avv"], &[""]);
    matrix::every_pairing_outputs(&prepare_unchanged, case, &mut |roles, got, want| {
        let lines = |t: &str| -> Vec<String> {
            let mut l: Vec<String> = normalized(t)
                .lines()
                .filter(|l| {
                    !l.starts_with("opening ")
                        && !l.starts_with("sending daemon args")
                        && !l.starts_with("total size")
                })
                .map(str::to_string)
                .collect();
            l.sort();
            l
        };
        let (got, want) = (lines(&got.output), lines(&want.output));
        // (A daemon's `max verbosity` of 1 keeps its side quiet at -vv.)
        let (_, _, via, push) = roles;
        if via == Via::Shell || !push {
            assert!(want.iter().any(|l| l == "same is uptodate"), "{want:?}");
        }
        assert_eq!(got, want, "{roles:?}");
    });
}

/// Symlinks whose targets changed, a file to transfer and a directory: the time column of
/// what is remade without its time kept (`--omit-link-times`, no `-t`) is reported as set.
fn prepare_links(base: &Path) {
    let (src, dst) = (base.join("src"), base.join("dst"));
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::create_dir_all(dst.join("d")).unwrap();
    for (name, old, new) in [("l", "old", "new"), ("d/m", "x", "y"), ("same", "t", "t")] {
        std::os::unix::fs::symlink(new, src.join(name)).unwrap();
        std::os::unix::fs::symlink(old, dst.join(name)).unwrap();
        set_mtime(&src.join(name), 1_600_000_100, 0);
        set_mtime(&dst.join(name), 1_600_000_200, 0);
    }
    write_file(&src.join("f"), b"new data\n");
    write_file(&dst.join("f"), b"old\n");
    set_mtime(&src.join("f"), 1_600_000_000, 0);
    for d in ["src/d", "src", "dst/d", "dst"] {
        set_mtime(&base.join(d), 1_500_000_000, 0);
    }
}

/// Item lines of remade symlinks and untimed transfers, in every pairing, as stock's (the
/// output only: the times themselves are the time of the run).
#[test]
fn untimed_items_report_their_time_as_set_like_stock() {
    for opts in [
        &["-ai", "--omit-link-times"][..],
        &["-rli"],
        &["-rli", "-O"],
    ] {
        let case = Case::new(opts, &[""]);
        matrix::every_pairing_outputs(&prepare_links, case, &mut |roles, got, want| {
            assert!(want.output.contains("cLc.T") || want.output.contains("cLc.t"));
            assert_eq!(got.output, want.output, "{opts:?} {roles:?}");
        });
    }
}

/// A local `--no-whole-file` copy's `-vv` matcher totals count hash hits and false alarms as
/// stock's sender does (the same crafted weak-sum twin as above).
#[test]
fn very_verbose_totals_of_a_local_delta_copy() {
    let totals = |stock: bool| -> Vec<String> {
        let work = tempfile::tempdir().unwrap();
        prepare_delta(work.path());
        let mut cmd = if stock {
            std::process::Command::new(interop_util::stock_rsync())
        } else {
            let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_rtsync"));
            c.arg("rsync");
            c
        };
        let out = cmd
            .args(["-avv", "--no-whole-file", "src/", "dst/"])
            .current_dir(work.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "stock: {stock}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("total: "))
            .map(str::to_string)
            .collect()
    };
    let want = totals(true);
    assert!(
        want.iter().any(|l| l.contains("false_alarms=3 ")),
        "{want:?}"
    );
    assert_eq!(totals(false), want);
}
