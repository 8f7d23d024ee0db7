//! Odd corners of rsync's output against stock: `--info=stats3`'s heap summaries, a reader
//! that stops early.

mod interop_util;

use interop_util::*;
use std::fs;

/// The output with numbers (process ids, byte counts, rates) replaced by `N`.
fn shape(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| !l.starts_with("File list generation time"))
        .map(|l| {
            let mut s = String::new();
            let mut in_num = false;
            for c in l.chars() {
                if c.is_ascii_digit() || (in_num && c == '.') {
                    if !in_num {
                        s.push('N');
                    }
                    in_num = true;
                } else {
                    in_num = false;
                    s.push(c);
                }
            }
            // Column padding depends on the numbers' widths.
            s.split_whitespace().collect::<Vec<_>>().join(" ")
        })
        .collect()
}

/// A local copy's `--info=stats3`: one heap block per role stock's processes play (our one
/// process plays all three), in stock's layout, before the `--stats` block.
#[test]
fn info_stats3_prints_heap_blocks_like_stock() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    fs::create_dir(w.join("src")).unwrap();
    for i in 0..3 {
        fs::write(w.join(format!("src/f{i}")), vec![b'x'; 64 + i]).unwrap();
    }
    let mut shapes = Vec::new();
    for ours in [false, true] {
        let _ = fs::remove_dir_all(w.join("dest"));
        let (out, code) = run_local(ours, w, &["-r", "--info=stats3", "src/", "dest/"]);
        assert_eq!(code, Some(0), "{out}");
        assert_eq!(out.matches("heap statistics").count(), 3, "{out}");
        shapes.push(shape(&out));
    }
    assert_eq!(shapes[1], shapes[0]);
}

/// A receiving server that cannot make the destination: the client shows the server's error
/// and the server's closing line (both sent over the connection), then exits with the
/// server's code, saying nothing of its own; any pairing of stock and ours as stock's.
#[test]
fn a_servers_fatal_error_reaches_the_client_like_stock() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    fs::create_dir(w.join("src")).unwrap();
    fs::write(w.join("src/f"), b"x\n").unwrap();
    let ssh = fake_ssh(w);
    let e = format!("-e{}", ssh.display());
    let dest = format!("h:{}/missing/a/b/", w.display());
    let run = |client: bool, server: bool| {
        let rp = format!("--rsync-path={}", remote_rsync_path(server));
        run_local(client, w, &["-r", &e, &rp, "src/", &dest])
    };
    let want = run(false, false);
    assert_eq!(want.1, Some(11), "{}", want.0);
    assert!(want.0.contains("main.c(808) [Receiver="), "{}", want.0);
    for (client, server) in [(false, true), (true, false), (true, true)] {
        assert_eq!(
            run(client, server),
            want,
            "client ours={client} server ours={server}"
        );
    }
}

/// A reader that stops early (`| head -1`) ends a listing, a copy and a batch-writing copy
/// as it ends stock's: stock ignores SIGPIPE and finishes (exit 0), it is not killed.
#[test]
fn a_reader_that_stops_early_ends_runs_as_stock() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    // Far more output than a pipe holds.
    for d in 0..30 {
        let dir = w.join(format!("src/d{d:02}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..100 {
            fs::write(dir.join(format!("a-rather-long-file-name-{f:03}")), b"x").unwrap();
        }
    }
    let rtsync = env!("CARGO_BIN_EXE_rtsync");
    let stock = stock_rsync().display().to_string();
    for (i, args) in [
        "-r --list-only src/",
        "-av src/ dest-N/",
        "-av --write-batch=batch-N src/ wdest-N/",
    ]
    .iter()
    .enumerate()
    {
        let mut codes = Vec::new();
        for (who, bin) in [
            ("stock", stock.clone()),
            ("ours", format!("{rtsync} rsync")),
        ] {
            let args = args.replace('N', &format!("{who}{i}"));
            let out = std::process::Command::new("bash")
                .current_dir(w)
                .args([
                    "-c",
                    &format!("set -o pipefail; {bin} {args} | head -1 >/dev/null"),
                ])
                .output()
                .unwrap();
            codes.push((
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ));
        }
        assert_eq!(codes[1], codes[0], "{args}: ours, then stock");
        assert_eq!(codes[0].0, Some(0), "{args}: stock finished");
    }
}

/// A local `-vv` deletion pass before or after the transfer names each top directory
/// (`deleting in NAME`) before its deletions, and says `delta-transmission …` only as the
/// transfer starts, as stock's local copy does.
#[test]
fn local_deletion_passes_name_their_top_directories_as_stock() {
    for when in ["--delete-before", "--delete-after"] {
        let mut outs = Vec::new();
        for ours in [false, true] {
            let work = tempfile::tempdir().unwrap();
            let w = work.path();
            for d in ["a/sub", "b"] {
                fs::create_dir_all(w.join("src").join(d)).unwrap();
            }
            fs::write(w.join("src/a/sub/f"), b"f").unwrap();
            fs::write(w.join("src/b/g"), b"g").unwrap();
            fs::create_dir_all(w.join("dest/a/gone")).unwrap();
            fs::create_dir_all(w.join("dest/b")).unwrap();
            fs::write(w.join("dest/b/extra"), b"x").unwrap();
            let (out, code) = run_local(ours, w, &["-avv", when, "src/a", "src/b", "dest/"]);
            assert_eq!(code, Some(0), "{out}");
            let kept: Vec<String> = out
                .lines()
                .filter(|l| l.starts_with("deleting") || l.starts_with("delta-transmission"))
                .map(str::to_string)
                .collect();
            outs.push(kept);
        }
        assert_eq!(outs[1], outs[0], "{when}: ours, then stock");
        assert!(
            outs[0].iter().any(|l| l == "deleting in a"),
            "{when}: {:?}",
            outs[0]
        );
    }
}

/// A local copy's `(new) backup_dir is …` comes after the whole list's `building file list
/// ... done` (stock's receiving side says it once it has the list), with and without
/// incremental recursion.
#[test]
fn local_backup_dir_notice_follows_the_list_line_as_stock() {
    for opts in [&["-avv", "--no-i-r"][..], &["-avv"]] {
        let mut outs = Vec::new();
        for ours in [false, true] {
            let work = tempfile::tempdir().unwrap();
            let w = work.path();
            fs::create_dir_all(w.join("src/d")).unwrap();
            fs::write(w.join("src/d/f"), b"f").unwrap();
            let mut args = opts.to_vec();
            args.extend(["-b", "--backup-dir=bk", "src/", "dest/"]);
            let (out, code) = run_local(ours, w, &args);
            assert_eq!(code, Some(0), "{out}");
            let heads: Vec<String> = out
                .lines()
                .filter(|l| {
                    [
                        "building",
                        "sending",
                        "(new) backup_dir",
                        "delta-transmission",
                    ]
                    .iter()
                    .any(|p| l.starts_with(p))
                })
                .map(str::to_string)
                .collect();
            outs.push(heads);
        }
        assert_eq!(outs[1], outs[0], "{opts:?}: ours, then stock");
        assert!(
            outs[0].iter().any(|l| l.starts_with("(new) backup_dir")),
            "{:?}",
            outs[0]
        );
    }
}
