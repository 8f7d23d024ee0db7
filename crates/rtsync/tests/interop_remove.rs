//! `--remove-source-files` over the wire, in every role pairing: rtsync's client pushing to
//! and pulling from stock servers and daemons, and the stock client against rtsync's server
//! and daemon, each compared with stock doing the same on an identical tree (what is left of
//! the source, the destination, the output and the exit code).

mod daemon_util;
mod interop_util;
mod roles;

use std::path::Path;
use std::process::Command;

use daemon_util::{Daemon, Kind};
use interop_util::{pattern, set_mtime, snapshot, stock_rsync, write_file};
use roles::matrix::{self, Case};

/// A source with files, a symlink, hard links and an empty directory; a destination where
/// one file is already current and one is stale.
fn prepare(base: &Path) {
    let src = base.join("src");
    std::fs::create_dir_all(src.join("sub/deep")).unwrap();
    std::fs::create_dir_all(src.join("empty")).unwrap();
    let files = [
        ("current.txt", pattern(100, 1)),
        ("stale.bin", pattern(70_000, 2)),
        ("sub/new.txt", pattern(5, 3)),
        ("sub/deep/big.bin", pattern(300_000, 4)),
        ("hard1", pattern(50, 5)),
    ];
    for (i, (name, data)) in files.iter().enumerate() {
        let p = write_file(&src.join(name), data);
        set_mtime(&p, 1_600_000_000 + i as i64, 0);
    }
    std::fs::hard_link(src.join("hard1"), src.join("sub/hard2")).unwrap();
    std::os::unix::fs::symlink("current.txt", src.join("link")).unwrap();
    for (i, d) in ["link", "empty", "sub/deep", "sub", ""].iter().enumerate() {
        set_mtime(&src.join(d), 1_500_000_000 + i as i64, 0);
    }
    let dst = base.join("dst");
    // The directories exist: a dry run then needs none of them created.
    std::fs::create_dir_all(dst.join("sub/deep")).unwrap();
    std::fs::create_dir_all(dst.join("empty")).unwrap();
    std::fs::copy(src.join("current.txt"), dst.join("current.txt")).unwrap();
    for (i, d) in ["sub/deep", "sub", "empty", ""].iter().enumerate() {
        set_mtime(&dst.join(d), 1_400_000_000 + i as i64, 0);
    }
    set_mtime(&dst.join("current.txt"), 1_600_000_000, 0);
    write_file(&dst.join("stale.bin"), &pattern(60_000, 9));
    set_mtime(&dst.join("stale.bin"), 1_400_000_000, 0);
}

/// `opts` in every pairing (roles::matrix), compared with stock on both ends. Removal
/// notices travel apart from item lines: with `--info=remove` the lines are compared as a set.
fn every_pairing(opts: &[&str]) {
    let case = Case::new(opts, &[""]);
    let case = if opts.contains(&"--info=remove") {
        case.sorted()
    } else {
        case
    };
    matrix::every_pairing(&prepare, case);
}

#[test]
fn remove_source_files_in_every_role_like_stock() {
    every_pairing(&["-a", "--remove-source-files"]);
}

#[test]
fn remove_source_files_with_hard_links_like_stock() {
    every_pairing(&["-aH", "--remove-source-files"]);
}

#[test]
fn remove_source_files_itemized_with_removals_shown_like_stock() {
    every_pairing(&["-a", "-i", "--info=remove", "--remove-source-files"]);
}

#[test]
fn remove_source_files_with_dry_run_removes_nothing_like_stock() {
    every_pairing(&["-a", "-n", "--remove-source-files"]);
}

#[test]
fn remove_source_files_without_incremental_recursion_like_stock() {
    every_pairing(&["-a", "--no-inc-recursive", "--remove-source-files"]);
}

/// A pull with `--remove-source-files` from a read-only module is refused, files kept.
#[test]
fn remove_source_files_from_a_read_only_module_is_refused_like_stock() {
    let mut results = Vec::new();
    for kind in [Kind::Rtsync, Kind::Stock] {
        let base = tempfile::tempdir().unwrap();
        prepare(base.path());
        let dir = base.path().join("daemon");
        std::fs::create_dir_all(&dir).unwrap();
        let conf = matrix::daemon_conf("").replace("read only = false", "read only = true");
        let d = Daemon::start(kind, &dir, &conf);
        let out = Command::new(stock_rsync())
            .args(["-a", "--remove-source-files", &d.url("m/src/")])
            .arg(format!("{}/dst/", base.path().display()))
            .output()
            .unwrap();
        let text = format!(
            "stdout:\n{}stderr:\n{}exit: {:?}\n",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            out.status.code()
        );
        results.push((text, snapshot(&base.path().join("src"), false)));
    }
    assert_eq!(results[0].0, results[1].0);
    assert_eq!(results[0].1, results[1].1);
    assert!(results[0].1.contains_key("sub/new.txt"));
}
