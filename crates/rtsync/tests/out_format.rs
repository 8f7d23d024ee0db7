//! `--out-format` and `--log-file-format` escapes, and which items and deletions they show,
//! against stock rsync: locally, and over a remote shell in both directions.

mod interop_util;
mod local_util;

use interop_util::{fake_ssh, sample_tree, stale_dest};
use local_util::{assert_same_tree, line_diff, normalize, Workspace, FILE_TIMES};
use std::fs;
use std::path::Path;
use std::process::Command;

/// Every escape rsync knows outside a daemon, with widths, left-justification and digit
/// groups, plus an unknown escape and the daemon-only ones (left as written or empty).
/// Runs `args` through stock rsync and rtsync in a fresh workspace and compares output lines,
/// exit codes and trees. Lines are compared as a sorted set: a user format hides which lines
/// are deletions, and stock's generator prints those while its sender prints items, in an order
/// that is not stable between runs.
fn differential(args: &[&str], with_old_dest: bool, cmp: local_util::Compare) {
    let ws = Workspace::new(with_old_dest);
    let stock = ws.run(true, args, cmp);
    let ours = ws.run(false, args, cmp);
    let sorted = |out: &str| {
        let mut lines: Vec<String> = normalize(out).lines().map(str::to_string).collect();
        lines.sort();
        lines.join("\n")
    };
    let (a, b) = (sorted(&stock.stdout), sorted(&ours.stdout));
    assert!(
        a == b,
        "{args:?}: stdout differs (- stock, + ours):\n{}",
        line_diff(&a, &b)
    );
    assert_eq!(stock.stderr, ours.stderr, "{args:?}: stderr differs");
    assert_eq!(stock.code, ours.code, "{args:?}: exit codes differ");
    assert_same_tree(&format!("{args:?}"), &stock.tree, &ours.tree);
}

const EVERY_ESCAPE: &str =
    "%o|%f|%n|%l|%i|%L|%M|%B|%U|%G|%10n|%-10l|%'l|%''l|%%|%x|%5L|%u|%m|%h|%a|%P|%-4o|";

#[test]
fn every_escape_on_a_fresh_copy() {
    let fmt = format!("--out-format={EVERY_ESCAPE}%b|%c|%C");
    differential(&["-aH", &fmt, "src/", "dst/"], false, FILE_TIMES);
}

#[test]
fn every_escape_on_an_update_with_deletions() {
    let fmt = format!("--out-format={EVERY_ESCAPE}");
    differential(&["-aH", "--delete", &fmt, "src/", "dst/"], true, FILE_TIMES);
}

#[test]
fn transfer_bytes_and_checksums_of_deltas() {
    // %b and %c count what the sender writes and reads for a file; %C is its checksum.
    for args in [
        &[
            "-a",
            "--no-whole-file",
            "--out-format=%n %l %b %c %C",
            "src/",
            "dst/",
        ][..],
        &["-a", "--out-format=%n %b %c %C", "src", "dst/"][..],
        &["-ac", "--out-format=%n %C", "src/", "dst/"][..],
        &[
            "-a",
            "--checksum-choice=md5",
            "--out-format=%n %C",
            "src/",
            "dst/",
        ][..],
        &[
            "-a",
            "--checksum-choice=xxh64",
            "--out-format=%n %C|",
            "src/",
            "dst/",
        ][..],
    ] {
        differential(args, true, FILE_TIMES);
    }
}

#[test]
fn a_format_without_i_selects_items_as_verbose_does() {
    // `-i` followed by a format without %i lists only what -v would, and deletions read
    // `deleting NAME` even without -v; with %o they take the format.
    for args in [
        &["-ai", "--out-format=%n%L", "--delete", "src/", "dst/"][..],
        &["-a", "--out-format=%n", "--delete", "src/", "dst/"][..],
        &["-a", "--out-format=%o:%n", "--delete", "src/", "dst/"][..],
        &["-aii", "--out-format=%i %n", "src/", "dst/"][..],
        &["-aq", "--out-format=%n", "--delete", "src/", "dst/"][..],
    ] {
        differential(args, true, FILE_TIMES);
    }
}

/// The `--log-file` lines of one run without their time and pid.
fn log_lines(path: &Path) -> Vec<String> {
    let mut lines = fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.splitn(4, ' ').nth(3).unwrap_or("").to_string())
        // Byte counts of the closing line depend on the implementation's framing.
        .map(|l| match l.strip_prefix("sent ") {
            Some(_) => format!("sent … total size {}", l.rsplit(' ').next().unwrap_or("")),
            None => l,
        })
        .filter(|l| !l.starts_with("total size is"))
        .collect::<Vec<_>>();
    // Deletions and items come from two processes of stock's: compare them as a set.
    lines.sort();
    lines
}

#[test]
fn log_file_lines_match_stock() {
    let ws = Workspace::new(true);
    for (i, extra) in [
        &["--log-file-format=%o %f %l %b %i %L"][..],
        &["-v"][..],
        &[][..],
        &["--log-file-format=%i %n%L %M %B", "-i"][..],
    ]
    .iter()
    .enumerate()
    {
        let mut logs = Vec::new();
        for stock in [true, false] {
            let log = ws.path().join(format!("log-{i}-{stock}"));
            let log_arg = format!("--log-file={}", log.display());
            let mut args = vec!["-aH", "--delete", &log_arg];
            args.extend_from_slice(extra);
            args.extend_from_slice(&["src/", "dst/"]);
            let run = ws.run(stock, &args, FILE_TIMES);
            assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
            logs.push(log_lines(&log));
        }
        assert!(
            logs[0] == logs[1],
            "{extra:?}: log files differ (- stock, + ours):\n{}",
            line_diff(&logs[0].join("\n"), &logs[1].join("\n"))
        );
    }
}

/// Runs `rsync ARGS` from `dir` with stock or our client.
fn client(stock: bool, dir: &Path, args: &[String]) -> (i32, String, String) {
    let mut cmd = if stock {
        Command::new(interop_util::stock_rsync())
    } else {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rtsync"));
        c.arg("rsync");
        c
    };
    let out = cmd.args(args).current_dir(dir).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// [`sample_tree`] in `src/`, [`stale_dest`] in `dst/` under `w`: the stand-in ssh, and the
/// source and destination arguments of a push (`push`) or a pull over it.
fn remote_scene(w: &Path, push: bool) -> (std::path::PathBuf, String, String) {
    sample_tree(&w.join("src"));
    stale_dest(&w.join("dst"));
    let here = w.display().to_string();
    let (src, dst) = if push {
        ("src/".to_string(), format!("localhost:{here}/dst/"))
    } else {
        (format!("localhost:{here}/src/"), "dst/".to_string())
    };
    (fake_ssh(w), src, dst)
}

#[test]
fn formats_over_a_remote_shell_match_stock_clients() {
    // Pushing, our client is the sender (`send`, `%f` its own path) and prints the deletions
    // the far side reports; pulling, it is the receiver (`recv`) and deletes itself.
    let fmts = [
        "%o|%f|%n|%l|%i|%L|%M|%B|%U|%G|%10n|%-10l|%'l|%5L|",
        "%o %n",
        "%n%L",
    ];
    for push in [true, false] {
        for fmt in fmts {
            let mut outs = Vec::new();
            for stock in [true, false] {
                let w = tempfile::tempdir().unwrap();
                let (ssh, src, dst) = remote_scene(w.path(), push);
                let args: Vec<String> = [
                    "-a",
                    "--delete",
                    "-e",
                    &ssh.display().to_string(),
                    &format!("--out-format={fmt}"),
                    &src,
                    &dst,
                ]
                .iter()
                .map(|s| s.to_string())
                .collect();
                let (code, out, err) = client(stock, w.path(), &args);
                assert_eq!(code, 0, "{args:?}: {err}");
                let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
                // Deletions travel out of band and may overtake item lines: compare as sets
                // of lines in their own order.
                lines.sort();
                outs.push(lines);
            }
            assert!(
                outs[0] == outs[1],
                "push={push} {fmt:?}: output differs (- stock, + ours):\n{}",
                line_diff(&outs[0].join("\n"), &outs[1].join("\n"))
            );
        }
    }
}

/// `%C` over a remote shell, with our client or our server at either end: a transferred
/// file's checksum (a receiving client's from the sender's sum), with `-c` every regular
/// file's list checksum (unchanged ones too), blanks as wide as the checksum shown (on
/// deletions too), and `--checksum-choice=XFER,FILE` summing the list with FILE. Ours printed
/// blanks on a receiving client and for unchanged files, and read a FILE sum list at the
/// transfer checksum's length (a desynchronized stream).
#[test]
fn checksums_in_formats_over_the_wire_match_stock() {
    let choices: [&[&str]; 6] = [
        &[],
        &["-c"],
        &["-c", "--checksum-choice=xxh64,md5"],
        &["--checksum-choice=xxh3"],
        &["-c", "--checksum-choice=md4"],
        &["-c", "--protocol=30"],
    ];
    for push in [true, false] {
        for choice in choices {
            let mut outs = Vec::new();
            // Stock at both ends; our client; our server.
            for (ours_client, ours_server) in [(false, false), (true, false), (false, true)] {
                let w = tempfile::tempdir().unwrap();
                let (ssh, src, dst) = remote_scene(w.path(), push);
                let mut args: Vec<String> = ["-a", "-ii", "--delete", "--out-format=%o %i %n %C|"]
                    .iter()
                    .chain(choice)
                    .map(|s| s.to_string())
                    .collect();
                args.extend([
                    "-e".to_string(),
                    ssh.display().to_string(),
                    format!(
                        "--rsync-path={}",
                        interop_util::remote_rsync_path(ours_server)
                    ),
                    src,
                    dst,
                ]);
                let (code, out, err) = client(!ours_client, w.path(), &args);
                assert_eq!(code, 0, "{args:?}: {err}");
                let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
                // (Deletions travel out of band: compared as sets of lines.)
                lines.sort();
                let tree = local_util::snapshot(&w.path().join("dst"), FILE_TIMES);
                outs.push((lines, tree, ours_client, ours_server));
            }
            let (want, want_tree, ..) = &outs[0];
            assert!(
                want.iter()
                    .any(|l| l.contains("sub/medium.bin ") && !l.ends_with(" |")),
                "push={push} {choice:?}: {want:?}"
            );
            for (got, tree, client, server) in &outs[1..] {
                assert!(
                    got == want,
                    "push={push} {choice:?} our client {client} our server {server}: \
                     output differs (- stock, + ours):\n{}",
                    line_diff(&want.join("\n"), &got.join("\n"))
                );
                assert_same_tree(
                    &format!("push={push} {choice:?} our client {client} our server {server}"),
                    want_tree,
                    tree,
                );
            }
        }
    }
}
