//! Sources that are not there, against stock: a missing name, a missing or non-directory
//! parent, a missing `dir/`; locally, pushed to a stock daemon and pulled from one; with
//! the whole list built first (`-v --no-i-r`: stock's open `building file list ... ` line is
//! ended by the error, on stderr) and incrementally; with `--delete` (a missing name does not
//! stop deletions, a parent that cannot be entered does); and the stock client pulling from
//! our daemon. stdout, stderr (byte for byte, but the closing byte counts), exit codes and
//! trees are compared.

mod daemon_util;
mod interop_util;

use interop_util::*;
use std::path::Path;
use std::process::{Command, Output};

fn source(root: &Path) {
    std::fs::create_dir_all(root.join("dir/sub")).unwrap();
    std::fs::write(root.join("dir/f"), b"f\n").unwrap();
    std::fs::write(root.join("dir/sub/g"), b"g\n").unwrap();
    std::fs::write(root.join("plain"), b"plain\n").unwrap();
    past_times(root);
}

/// A destination with extra files inside the directory that will be transferred.
fn stale(d: &Path) {
    std::fs::create_dir_all(d.join("dir/sub")).unwrap();
    std::fs::write(d.join("dir/extra"), b"x").unwrap();
    std::fs::write(d.join("dir/sub/extra"), b"x").unwrap();
    past_times(d);
}

/// stdout and stderr without the closing byte counts, and with `who` taken out.
fn shown(o: &Output, who: &str) -> (String, String) {
    let clean = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .split_inclusive('\n')
            .filter(|l| !l.starts_with("sent ") && !l.starts_with("total size is "))
            .collect::<String>()
            .replace(who, "WHO")
    };
    (clean(&o.stdout), clean(&o.stderr))
}

fn run(stock: bool, cwd: &Path, args: &[String]) -> Output {
    let mut cmd = if stock {
        Command::new(stock_rsync())
    } else {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rtsync"));
        c.arg("rsync");
        c
    };
    cmd.current_dir(cwd).args(args).output().unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Via {
    Local,
    Push,
    Pull,
    /// The stock client pulls from a daemon: stock's, then ours.
    PullFromOurs,
}

/// Runs `opts` with `names` (beneath the source) through stock and through us, `via`, into
/// destinations prepared by `prepare`; compares.
fn compare(via: Via, opts: &[&str], names: &[&str], prepare: fn(&Path)) {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    source(&src);
    let mut results = Vec::new();
    for who in ["stock", "ours"] {
        let dest = work.path().join(who).join("d");
        std::fs::create_dir_all(&dest).unwrap();
        prepare(&dest);
        let kind = match (via, who) {
            (Via::PullFromOurs, "ours") => daemon_util::Kind::Rtsync,
            _ => daemon_util::Kind::Stock,
        };
        let ddir = work.path().join(format!("{who}-daemon"));
        std::fs::create_dir_all(&ddir).unwrap();
        let from = daemon_util::Daemon::start(kind, &ddir, &module_conf(&src, ""));
        let daemon = StockDaemon::src_and_dest(&src, &dest, "");
        let mut args: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
        match via {
            Via::Local | Via::Push => {
                args.extend(names.iter().map(|n| format!("{}/{n}", src.display())));
                args.push(match via {
                    Via::Local => "d/".to_string(),
                    _ => daemon.url("dest/"),
                });
            }
            Via::Pull => {
                args.extend(names.iter().map(|n| daemon.url(&format!("src/{n}"))));
                args.push("d/".to_string());
            }
            Via::PullFromOurs => {
                args.extend(names.iter().map(|n| from.url(&format!("m/{n}"))));
                args.push("d/".to_string());
            }
        }
        let stock_client = who == "stock" || via == Via::PullFromOurs;
        let out = run(stock_client, &work.path().join(who), &args);
        results.push((dest, out));
    }
    let (stock_dest, stock) = &results[0];
    let (our_dest, ours) = &results[1];
    let what = format!("{via:?} {opts:?} {names:?}");
    let (mut o, mut s) = (shown(ours, "ours"), shown(stock, "stock"));
    if opts.iter().any(|o| o.starts_with("--delete")) {
        // Stock's generator deletes while its receiver writes files, apart: the lines
        // interleave by timing. Compared in sorted order.
        for out in [&mut o.0, &mut s.0] {
            let mut lines: Vec<&str> = out.lines().collect();
            lines.sort_unstable();
            *out = lines.join("\n");
        }
    }
    assert_eq!(o, s, "{what}: (stdout, stderr), ours then stock");
    assert_eq!(
        ours.status.code(),
        stock.status.code(),
        "{what}: exit codes"
    );
    assert_same_tree(our_dest, stock_dest, false);
}

const NAME_SETS: [&[&str]; 4] = [
    &["dir", "missing"],
    &["nodir/file", "dir"],
    &["plain/x", "dir"],
    &["nodir/", "plain"],
];

#[test]
fn missing_sources_are_reported_as_stock_reports_them() {
    for via in [Via::Local, Via::Push, Via::Pull, Via::PullFromOurs] {
        for names in NAME_SETS {
            compare(via, &["-av", "--no-i-r"], names, |_| {});
            compare(via, &["-av"], names, |_| {});
        }
    }
}

#[test]
fn a_missing_name_does_not_stop_deletions_a_missing_parent_does() {
    for via in [Via::Local, Via::Push, Via::Pull, Via::PullFromOurs] {
        for names in NAME_SETS {
            compare(via, &["-av", "--delete"], names, stale);
            compare(via, &["-ai", "--delete-after"], names, stale);
        }
    }
}
