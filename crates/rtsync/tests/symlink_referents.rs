//! `-L`/`--copy-unsafe-links` and symlinks whose referent cannot be looked at: a loop and a
//! file where a directory should be are stock's `readlink_stat("NAME") failed: ERROR` (a
//! dangling one stays `symlink has no referent`), exit 23 and no deletions, in every
//! pairing and locally, against stock.

mod daemon_util;
mod interop_util;
mod roles;

use interop_util::*;
use roles::matrix::{self, Case};
use std::path::Path;

fn prepare(base: &Path) {
    let (src, dst) = (base.join("src"), base.join("dst"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&dst).unwrap();
    std::fs::write(src.join("f"), b"x\n").unwrap();
    std::fs::write(dst.join("extra"), b"x\n").unwrap();
    for (name, target) in [
        ("notdir", "f/x"),
        ("loop1", "loop2"),
        ("loop2", "loop1"),
        ("dangling", "nothere"),
        ("up", "../outside-loop"),
    ] {
        std::os::unix::fs::symlink(target, src.join(name)).unwrap();
    }
    std::os::unix::fs::symlink("outside-loop", base.join("outside-loop")).unwrap();
    past_times(&src);
    past_times(&dst);
}

#[test]
fn unreadable_referents_are_reported_as_stock_does_in_every_pairing() {
    for opts in [
        &["-aL", "--delete"][..],
        &["-a", "--copy-unsafe-links", "--delete"],
    ] {
        matrix::every_pairing(&prepare, Case::new(opts, &[""]).no_dir_times());
    }
}

#[test]
fn unreadable_referents_are_reported_as_stock_does_locally() {
    let mut runs = Vec::new();
    for stock in [true, false] {
        let work = tempfile::tempdir().unwrap();
        prepare(work.path());
        let out = rsync_command(stock)
            .args(["-aL", "--delete", "src/", "dst/"])
            .current_dir(work.path())
            .output()
            .unwrap();
        let err =
            String::from_utf8_lossy(&out.stderr).replace(&work.path().display().to_string(), "W");
        runs.push((err, out.status.code(), work));
    }
    assert!(
        runs[0].0.contains(
            "readlink_stat(\"W/src/loop1\") failed: Too many levels of symbolic links (40)"
        ),
        "{}",
        runs[0].0
    );
    assert_eq!(runs[1].0, runs[0].0);
    assert_eq!(runs[1].1, runs[0].1);
    assert_same_tree(
        &runs[1].2.path().join("dst"),
        &runs[0].2.path().join("dst"),
        false,
    );
}
