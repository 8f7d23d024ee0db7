//! `--copy-as=USER[:GROUP]` against stock rsync: the copying side (both sides of a local
//! copy; the client's side, or with `-M` the server's) runs as that user once the
//! connection is up. What the user may not read or change is reported as stock reports it,
//! what it writes is its own, and an unknown user or group is a usage error.

mod daemon_util;
mod interop_util;
mod roles;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use interop_util::{assert_same_tree_in, past_times, run_local, write_file};
use roles::matrix::{every_pairing, Case};

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A source with a file only root may read, and a destination anyone may write to.
fn prepare(base: &Path) {
    chmod(base, 0o755);
    let (src, dst) = (base.join("src"), base.join("dst"));
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::create_dir_all(&dst).unwrap();
    write_file(&src.join("open"), b"anyone\n");
    chmod(&write_file(&src.join("sub/secret"), b"root only\n"), 0o600);
    past_times(&src);
    chmod(&dst, 0o777);
}

fn need_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "these tests need root");
}

#[test]
fn copy_as_local() {
    need_root();
    for opts in [
        &["-ai", "--copy-as=nobody"][..],
        &["-ai", "--copy-as=nobody:nogroup"],
        &["-ai", "--copy-as=65534"],
        &["-ai", "--copy-as=nosuchuser"],
        &["-ai", "--copy-as=nobody:nosuchgroup"],
    ] {
        let ours = tempfile::tempdir().unwrap();
        let stock = tempfile::tempdir().unwrap();
        prepare(ours.path());
        prepare(stock.path());
        let args: Vec<&str> = opts.iter().copied().chain(["src/", "dst/"]).collect();
        let got = run_local(true, ours.path(), &args);
        let want = run_local(false, stock.path(), &args);
        // Stock's two processes race to say an unknown name first (and its receiver may
        // hear the sender's SIGUSR1 before it says why it stops): the lines sorted and
        // deduplicated, without the receiver's closing line.
        let sorted = |(text, code): (String, Option<i32>)| {
            let mut lines: Vec<String> = text
                .lines()
                .filter(|l| !(l.starts_with("rsync error:") && l.contains("[Receiver=")))
                .map(|l| l.replace(&ours.path().display().to_string(), "BASE"))
                .map(|l| l.replace(&stock.path().display().to_string(), "BASE"))
                .collect();
            lines.sort();
            // ... and either or both may say it before the other stops it.
            lines.dedup();
            (lines, code)
        };
        assert_eq!(sorted(got), sorted(want), "local {opts:?}");
        assert_same_tree_in(
            &ours.path().join("dst"),
            &stock.path().join("dst"),
            true,
            &format!("local {opts:?}"),
        );
    }
    // The copy is the user's.
    let t = tempfile::tempdir().unwrap();
    prepare(t.path());
    run_local(true, t.path(), &["-a", "--copy-as=nobody", "src/", "dst/"]);
    let owner = |p: &str| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(t.path().join(p)).unwrap().uid()
    };
    assert_eq!(owner("dst/open"), 65534);
    assert!(!t.path().join("dst/sub/secret").exists());
}

#[test]
fn copy_as_every_pairing() {
    need_root();
    for opts in [
        &["-ai", "--copy-as=nobody"][..],
        &["-ai", "-M--copy-as=nobody"],
    ] {
        every_pairing(&prepare, Case::new(opts, &[""]).no_dir_times().sorted());
    }
}
