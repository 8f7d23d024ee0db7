//! `--munge-links` against stock rsync: the side given the option munges the symlinks it
//! receives and unmunges the ones it sends (a local copy's client is its sender; `-M` gives
//! it to the other side), and `--safe-links` judges the munged value. Every pairing through
//! a remote shell and a daemon (whose module decides for itself), and local copies.

mod daemon_util;
mod interop_util;
mod roles;

use std::os::unix::fs::symlink;
use std::path::Path;

use interop_util::{assert_same_tree_in, past_times, run_local, write_file};
use roles::matrix::{every_pairing, Case};

/// A source with a munged link, a bare prefix (too short to unmunge), a relative and an
/// absolute link, and a file; an empty destination.
fn prepare(base: &Path) {
    let (src, dst) = (base.join("src"), base.join("dst"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&dst).unwrap();
    for (name, target) in [
        ("munged", "/rsyncd-munged//etc/passwd"),
        ("bare", "/rsyncd-munged/"),
        ("near", "/rsyncd-mungedx"),
        ("relative", "../x"),
        ("inside", "file"),
        ("absolute", "/etc/hostname"),
    ] {
        symlink(target, src.join(name)).unwrap();
    }
    write_file(&src.join("file"), b"data\n");
    past_times(&src);
}

const OPTION_SETS: &[&[&str]] = &[
    &["-ai", "--munge-links"],
    &["-ai", "-M--munge-links"],
    &["-ai", "--munge-links", "-M--munge-links"],
    &["-ai", "--munge-links", "--safe-links"],
    &["-ai", "-M--munge-links", "--safe-links"],
    &["-ai", "--munge-links", "--no-munge-links"],
];

#[test]
fn munge_links_local() {
    for opts in OPTION_SETS {
        let ours = tempfile::tempdir().unwrap();
        let stock = tempfile::tempdir().unwrap();
        prepare(ours.path());
        prepare(stock.path());
        let args: Vec<&str> = opts.iter().copied().chain(["src/", "dst/"]).collect();
        // Twice: the second run finds every link as the first made it.
        for pass in ["first", "again"] {
            let got = run_local(true, ours.path(), &args);
            let want = run_local(false, stock.path(), &args);
            assert_eq!(got, want, "local {opts:?} ({pass})");
            assert_same_tree_in(
                &ours.path().join("dst"),
                &stock.path().join("dst"),
                true,
                &format!("local {opts:?} ({pass})"),
            );
        }
    }
    // The options take effect: unmunged by the sender, munged by a -M receiver.
    let t = tempfile::tempdir().unwrap();
    prepare(t.path());
    run_local(true, t.path(), &["-a", "--munge-links", "src/", "a/"]);
    run_local(true, t.path(), &["-a", "-M--munge-links", "src/", "b/"]);
    let link = |p: &str| std::fs::read_link(t.path().join(p)).unwrap();
    assert_eq!(link("a/munged"), Path::new("/etc/passwd"));
    assert_eq!(link("a/bare"), Path::new("/rsyncd-munged/"));
    assert_eq!(link("b/relative"), Path::new("/rsyncd-munged/../x"));
}

#[test]
fn munge_links_every_pairing() {
    for opts in OPTION_SETS {
        every_pairing(&prepare, Case::new(opts, &[""]));
    }
}
