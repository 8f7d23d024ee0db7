//! Directories a sender lists without their contents (`-d` without recursion, a source
//! named without its slash, a `--files-from` name without one): stock flags them
//! XMIT_NO_CONTENT_DIR and a deleting receiver leaves what they hold alone. Ours sent them
//! as content directories outside incremental recursion (our pushing client, our server
//! and daemon sending), and a stock receiver then deleted everything in them that the
//! list did not name. Compared with stock in every pairing: trees, output, exit codes.

mod daemon_util;
mod interop_util;
mod roles;

use interop_util::*;
use roles::matrix::{self, Case, Via, PAIRS};
use std::path::Path;

/// `src/d1/{f,sub/g}`, `src/d2/h`; the destination has the same directories with other
/// files in them (what a receiver deleting in them would delete); two `--files-from`
/// lists: `d1` alone, and `d1/sub` with `d2/`.
fn prepare(base: &Path) {
    let (src, dst) = (base.join("src"), base.join("dst"));
    for d in [
        src.join("d1/sub"),
        src.join("d2"),
        dst.join("d1/sub"),
        dst.join("d2"),
    ] {
        std::fs::create_dir_all(d).unwrap();
    }
    for (p, text) in [
        ("src/d1/f", "f\n"),
        ("src/d1/sub/g", "g\n"),
        ("src/d2/h", "h\n"),
        ("dst/d1/extra", "x\n"),
        ("dst/d1/sub/extra2", "y\n"),
        ("dst/d2/extra3", "z\n"),
        ("ffa", "d1\n"),
        ("ffc", "d1/sub\nd2/\n"),
    ] {
        std::fs::write(base.join(p), text).unwrap();
    }
    past_times(base);
}

#[test]
fn directories_listed_without_contents_keep_theirs_in_every_pairing() {
    let cases: [(&[&str], &[&str]); 5] = [
        (&["-d", "--delete", "-i"], &[""]),
        (&["-dlt", "--delete", "-i"], &["d1"]),
        (&["-dlt", "--delete", "-i"], &["d1/"]),
        (&["-dR", "--delete", "-i"], &["./d1"]),
        (&["-a", "--delete", "-i"], &["d1", "d2/"]),
    ];
    for (opts, srcs) in cases {
        let case = Case::new(opts, srcs).no_dir_times().sorted();
        matrix::every_pairing(&prepare, case);
    }
    // (`--files-from` through a shell only: stock 3.5.0's daemon, sending from a module
    // subdirectory, calls every listed file vanished.)
    for opts in [
        &["-a", "--delete", "-i", "--files-from=BASE/ffa"][..],
        &["-a", "--delete", "-i", "--files-from=BASE/ffc"],
    ] {
        let case = Case::new(opts, &[""]).no_dir_times().sorted();
        for push in [true, false] {
            for (client, server) in PAIRS {
                matrix::compare(&prepare, (client, server, Via::Shell, push), case);
            }
        }
    }
}

/// What stock leaves, so that the comparison above cannot pass by both deleting: nothing
/// in `d1/` goes when it is listed without its contents.
#[test]
fn stock_keeps_what_such_directories_hold() {
    let work = tempfile::tempdir().unwrap();
    let base = work.path();
    prepare(base);
    let out = std::process::Command::new(stock_rsync())
        .args(["-a", "--delete", "--files-from=ffa", "src/", "dst/"])
        .current_dir(base)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(base.join("dst/d1/extra").exists());
    assert!(base.join("dst/d1/sub/extra2").exists());
}
