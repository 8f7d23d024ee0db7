//! `--info=progress2` (one line for the whole transfer) compared byte for byte with stock's,
//! rates and times masked: in local copies, and with rtsync's client pushing to and pulling
//! from stock's `--server` (through a fake ssh) and stock's daemon. Byte counts, percentages,
//! `xfr#`, `to-chk`, the padding of shorter tails, and where `\r` and `\n` go must match,
//! as must the lines of `--info=name`, `-v` and `-i` around them.
//!
//! Where stock's output depends on timing (the ends of file lists under incremental
//! recursion reach the client-side sender or receiver as its generator gets to them) only
//! what does not is compared: each file's closing line, how many lines in all, and the last.

mod daemon_util;
mod interop_util;
mod roles;

use std::path::Path;
use std::process::Command;

use daemon_util::{rtsync_bin, Daemon, Kind};
use interop_util::{fake_ssh, set_mtime, stock_rsync, write_file};

/// A directory with two small files (one file list).
fn flat(base: &Path) {
    let src = base.join("src");
    std::fs::create_dir_all(&src).unwrap();
    write_file(&src.join("a"), b"a\n");
    write_file(&src.join("b"), b"bb\n");
    settle(base, &["src/a", "src/b", "src"]);
}

/// Nested directories, a symlink (its length counts in the total, never as transferred),
/// an empty file, and enough files that the tails get shorter (`to-chk=10/12` then
/// `to-chk=9/12`: padded).
fn nested(base: &Path) {
    let src = base.join("src");
    for d in ["d/e", "f"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
    }
    let mut names = vec!["src/d/e", "src/d", "src/f", "src"];
    let files: Vec<String> = (0..9).map(|i| format!("src/f{i}")).collect();
    for (i, f) in files.iter().enumerate() {
        write_file(&base.join(f), &vec![b'x'; 100 * i + 1]);
    }
    write_file(&src.join("d/x"), &vec![b'y'; 5000]);
    write_file(&src.join("d/e/y"), b"y\n");
    write_file(&src.join("f/empty"), b"");
    std::os::unix::fs::symlink("f0", src.join("link")).unwrap();
    names.extend(["src/d/x", "src/d/e/y", "src/f/empty"]);
    let mut all: Vec<&str> = files.iter().map(String::as_str).collect();
    all.extend(names);
    settle(base, &all);
}

/// Fixed times (children before their directories).
fn settle(base: &Path, paths: &[&str]) {
    for p in paths {
        set_mtime(&base.join(p), 1_600_000_000, 0);
    }
}

/// Where the transfer goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Way {
    Local,
    PushShell,
    PullShell,
    PushDaemon,
    PullDaemon,
}

const WAYS: [Way; 5] = [
    Way::Local,
    Way::PushShell,
    Way::PullShell,
    Way::PushDaemon,
    Way::PullDaemon,
];

/// Runs `opts` from `src/` to `dst/` in a fresh copy of `prepare`'s tree (twice, when
/// `again`: the second run's output is returned), by rtsync's client (`ours`) or stock's,
/// against stock's server or daemon. Returns stdout as it came, and stderr.
fn run(
    ours: bool,
    prepare: &dyn Fn(&Path),
    way: Way,
    opts: &[&str],
    again: bool,
) -> (String, String) {
    let work = tempfile::tempdir().unwrap();
    let base = work.path();
    prepare(base);
    let b = base.display().to_string();
    let mut args: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
    let mut daemon = None;
    match way {
        Way::Local => {}
        Way::PushShell | Way::PullShell => {
            args.push("-e".into());
            args.push(fake_ssh(base).display().to_string());
            args.push(format!("--rsync-path={}", stock_rsync().display()));
        }
        Way::PushDaemon | Way::PullDaemon => {
            let dir = base.join("daemon");
            std::fs::create_dir_all(&dir).unwrap();
            let conf = roles::matrix::daemon_conf("");
            daemon = Some(Daemon::start(Kind::Stock, &dir, &conf));
        }
    }
    let remote = |p: &str| match &daemon {
        Some(d) => d.url(&format!("m/{p}")),
        None => format!("host:{b}/{p}"),
    };
    match way {
        Way::Local => args.extend([format!("{b}/src/"), format!("{b}/dst/")]),
        Way::PushShell | Way::PushDaemon => args.extend([format!("{b}/src/"), remote("dst/")]),
        Way::PullShell | Way::PullDaemon => args.extend([remote("src/"), format!("{b}/dst/")]),
    }
    let runs = if again { 2 } else { 1 };
    let mut last = (String::new(), String::new());
    for _ in 0..runs {
        let mut cmd = Command::new("timeout");
        cmd.args(["--kill-after=5", "120"]);
        if ours {
            cmd.arg(rtsync_bin()).arg("rsync");
        } else {
            cmd.arg(stock_rsync());
        }
        let out = cmd.args(&args).current_dir(base).output().unwrap();
        assert!(
            out.status.code().is_some_and(|c| c == 0 || c == 23),
            "ours: {ours}, {way:?} {opts:?}: {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        last = (
            String::from_utf8_lossy(&out.stdout).replace(&b, "BASE"),
            String::from_utf8_lossy(&out.stderr).replace(&b, "BASE"),
        );
    }
    last
}

/// The output with each progress line's rate and time (`  0.00kB/s    0:00:00`) masked, the
/// byte counts of the summary (implementations send different amounts) dropped, and every
/// `\r` shown as `<CR>` (so a difference is readable).
fn masked(out: &str) -> String {
    let mut text = String::new();
    for line in out.split_inclusive('\n') {
        if line.starts_with("sent ") {
            text.push_str("sent ...\n");
            continue;
        }
        if let Some(at) = line.find("  speedup is ") {
            text.push_str(&line[..at]);
            text.push('\n');
            continue;
        }
        text.push_str(line);
    }
    // RATE is `%7.2f` and a unit (`kB/s`, `MB/s`, `GB/s`); TIME `%4u:%02u:%02u` or
    // `  ??:??:??`: fixed widths either side of `B/s `.
    let bytes = text.as_bytes();
    let mut masked = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(off) = text[i..].find("B/s ") {
        let at = i + off;
        let (start, end) = (at.saturating_sub(8), at + 4 + 10);
        if start < i || end > bytes.len() {
            masked.push_str(&text[i..at + 4]);
            i = at + 4;
            continue;
        }
        masked.push_str(&text[i..start]);
        masked.push_str("[  RATE  ] [  TIME  ]");
        i = end;
    }
    masked.push_str(&text[i..]);
    masked.replace('\r', "<CR>")
}

/// What of a run under incremental recursion does not depend on timing: each transferred
/// file's closing line (the first line with its `xfr#`), the number of progress lines, the
/// other lines (names, items, the summary) in their order, and how the output ends.
type Steady = (Vec<String>, usize, Vec<String>, bool);

fn steady(out: &str) -> Steady {
    let text = masked(out);
    let mut closing = Vec::new();
    let mut others = Vec::new();
    let mut highest = 0;
    let mut lines = 0;
    for piece in text.split("<CR>").flat_map(|s| s.split('\n')) {
        if !piece.contains("[  RATE  ]") {
            others.push(piece.to_string());
            continue;
        }
        lines += 1;
        let n = piece
            .split("(xfr#")
            .nth(1)
            .and_then(|t| t.split(',').next())
            .and_then(|n| n.parse::<u64>().ok());
        match n {
            Some(n) if n > highest => {
                highest = n;
                closing.push(piece.to_string());
            }
            Some(_) => {}
            // A line shown while a file goes on.
            None => closing.push(piece.to_string()),
        }
    }
    others.retain(|o| !o.is_empty());
    (closing, lines, others, text.ends_with('\n'))
}

/// Compares ours with stock's, exactly or (`steady`) in what does not depend on timing.
fn compare(prepare: &dyn Fn(&Path), way: Way, opts: &[&str], again: bool, exact: bool) {
    let (got, got_err) = run(true, prepare, way, opts, again);
    let (want, want_err) = run(false, prepare, way, opts, again);
    assert_eq!(got_err, want_err, "stderr: {way:?} {opts:?}");
    let quiet = |o: &str| !o.starts_with("--") && o.starts_with('-') && o.contains('q');
    let wants_progress =
        !opts.iter().any(|o| quiet(o)) && !opts.last().is_some_and(|o| o.ends_with("progress0"));
    assert_eq!(
        want.contains("xfr#"),
        wants_progress,
        "stock's progress: {way:?} {opts:?}:\n{want:?}"
    );
    if exact {
        assert_eq!(masked(&got), masked(&want), "{way:?} {opts:?}");
    } else {
        assert_eq!(steady(&got), steady(&want), "{way:?} {opts:?}");
    }
}

/// One file list (no incremental recursion, or nothing below the top): the same lines
/// wherever stock runs.
#[test]
fn one_list_matches_stock_exactly() {
    for way in WAYS {
        for opts in [
            &["-a", "--info=progress2"][..],
            &["-a", "--no-inc-recursive", "--info=progress2"],
        ] {
            compare(&flat, way, opts, false, true);
            // Nothing left to transfer: the list ends alone.
            compare(&flat, way, opts, true, true);
        }
        compare(
            &nested,
            way,
            &["-a", "--no-inc-recursive", "--info=progress2"],
            false,
            true,
        );
    }
}

/// Names and item lines around the open line: what prints next starts with the newline it
/// is owed. `--info=progress2` itself names nothing; `--progress` does (below a user's
/// `--info=progress2`, which wins), and so do `-v` and `--info=name`.
#[test]
fn names_items_and_levels_match_stock() {
    for way in WAYS {
        for opts in [
            &["-av", "--info=progress2"][..],
            &["-ai", "--info=progress2"],
            &["-a", "--progress", "--info=progress2"],
            &["-a", "--info=progress2", "--progress"],
            &["-a", "--info=progress2,name0"],
            &["-a", "--out-format=%n %b", "--info=progress2"],
            &["-aq", "--info=progress2"],
            &["-a", "--info=progress2", "--info=progress0"],
            &["-a", "--info=progress0", "--info=progress2"],
            &["-an", "--info=progress2"],
        ] {
            compare(&flat, way, opts, false, true);
        }
        if matches!(way, Way::Local | Way::PullShell | Way::PullDaemon) {
            // (Pushing, stock's client also passes `--info=name`/`name0` to the receiving
            // server, which then says `created directory` or not; rtsync's client does not
            // pass it yet.)
            for opts in [
                &["-a", "--info=name", "--info=progress2"][..],
                &["-av", "--info=name0", "--info=progress2"],
            ] {
                compare(&flat, way, opts, false, true);
            }
        }
    }
}

/// Nested lists under incremental recursion, in every way: per file the same closing line,
/// as many lines in all, and the same end.
#[test]
fn nested_lists_match_stock_where_timing_does_not_decide() {
    for way in WAYS {
        for opts in [
            &["-a", "--info=progress2"][..],
            &["-av", "--info=progress2"],
            &["-ai", "--info=progress2"],
        ] {
            compare(&nested, way, opts, false, false);
        }
        compare(&nested, way, &["-a", "--info=progress2"], true, false);
    }
}

/// `--progress` alone keeps a line per file.
#[test]
fn level_one_is_unchanged() {
    for way in [Way::Local, Way::PushShell, Way::PullShell] {
        compare(&flat, way, &["-a", "--progress"], false, true);
        compare(&flat, way, &["-a", "--info=progress1"], false, true);
    }
}

/// A file slow enough (`--bwlimit`) that lines are shown while it goes: those have stock's
/// shape (the bytes so far of the whole transfer rising, `  ` after the time) and the
/// closing lines match stock's.
#[test]
fn lines_shown_while_a_file_goes_on() {
    let big = |base: &Path| {
        std::fs::create_dir_all(base.join("src")).unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        write_file(&base.join("src/big"), &data);
        write_file(&base.join("src/small"), b"small\n");
        settle(base, &["src/big", "src/small", "src"]);
    };
    for way in [Way::Local, Way::PushShell, Way::PullShell] {
        let opts = ["-a", "--bwlimit=1000", "--info=progress2"];
        let (got, _) = run(true, &big, way, &opts, false);
        let (want, _) = run(false, &big, way, &opts, false);
        let text = masked(&got);
        let segments: Vec<&str> = text.split("<CR>").skip(1).collect();
        let ticking: Vec<&&str> = segments.iter().filter(|s| s.ends_with("]  ")).collect();
        assert!(ticking.len() >= 2, "{way:?}: no lines while going: {text}");
        let mut last = 0;
        for seg in &ticking {
            let done: u64 = seg
                .split_whitespace()
                .next()
                .unwrap()
                .replace(',', "")
                .parse()
                .unwrap();
            assert!(done >= last, "{way:?}: {text}");
            last = done;
            assert!(seg.contains("% [  RATE  ] [  TIME  ]"), "{way:?}: {seg}");
        }
        let closing = |t: &str| -> Vec<String> {
            masked(t)
                .split("<CR>")
                .filter(|s| s.contains("(xfr#"))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(closing(&got), closing(&want), "{way:?}");
    }
}
