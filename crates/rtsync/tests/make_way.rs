//! A directory standing where a non-directory goes, against stock rsync: its contents go
//! (each deletion logged) only with `--delete` or `--force`; an empty one simply goes;
//! otherwise `could not make way for new KIND: NAME`, the item is skipped and the run ends
//! with code 23 — never a silent removal of what the directory holds; a file skipped for
//! its size (`--max-size`, `--min-size`) touches nothing. Local copies and every pairing
//! through a remote shell and a daemon.

mod daemon_util;
mod interop_util;
mod roles;

use std::os::unix::fs::symlink;
use std::path::Path;

use interop_util::{assert_same_tree_in, past_times, run_local, write_file};
use roles::matrix::{compare, every_pairing, Case, Via, PAIRS};

/// A file, a symlink and a file under a directory in the source; in the destination, a
/// full directory where the file goes, an empty one where the link goes, and a full one
/// (nested) where the deeper file goes.
fn prepare(base: &Path) {
    let (src, dst) = (base.join("src"), base.join("dst"));
    std::fs::create_dir_all(src.join("d")).unwrap();
    write_file(&src.join("x"), b"new file\n");
    symlink("x", src.join("y")).unwrap();
    write_file(&src.join("d/z"), b"deeper\n");
    // (And an empty directory where a file goes: it simply goes, --existing or not.)
    write_file(&src.join("w"), b"file over an empty directory\n");
    for d in ["x/sub", "y", "d/z/keep", "w"] {
        std::fs::create_dir_all(dst.join(d)).unwrap();
    }
    write_file(&dst.join("x/a"), b"old\n");
    write_file(&dst.join("x/sub/b"), b"older\n");
    write_file(&dst.join("d/z/keep/c"), b"kept?\n");
    // Names a receiving side's error line escapes (a server, and a local copy's child,
    // escape every non-ASCII byte; a client keeps the locale's characters).
    for name in ["\u{e9}t\u{e9}", "a\\#123b"] {
        write_file(&src.join(name), b"new\n");
        std::fs::create_dir_all(dst.join(name)).unwrap();
        write_file(&dst.join(name).join("inner"), b"old\n");
    }
    past_times(&src);
    past_times(&dst);
}

const OPTION_SETS: &[&[&str]] = &[
    &["-ai"],
    &["-ai", "--delete"],
    &["-ai", "--force"],
    &["-ai", "-n", "--delete"],
    &["-ai", "-n"],
    &["-ai", "-b", "--suffix=.old"],
    &["-ai", "--existing"],
    // A file skipped for its size leaves what is in its way alone (our receiving side
    // deleted the directory's contents first), and says so at --info=skip.
    &["-ai", "--delete", "--max-size=5"],
    &["-ai", "--force", "--min-size=8", "--info=skip"],
    &["-ai", "--delete", "--max-size=8", "--info=skip"],
];

/// Lines sorted: stock's generator says its errors straight to stderr and the rest through
/// its sender, so their order is a race.
fn sorted(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

#[test]
fn make_way_local() {
    for opts in OPTION_SETS {
        let ours = tempfile::tempdir().unwrap();
        let stock = tempfile::tempdir().unwrap();
        prepare(ours.path());
        prepare(stock.path());
        let args: Vec<&str> = opts.iter().copied().chain(["src/", "dst/"]).collect();
        let (got, got_code) = run_local(true, ours.path(), &args);
        let (want, want_code) = run_local(false, stock.path(), &args);
        assert_eq!(sorted(&got), sorted(&want), "local {opts:?}");
        assert_eq!(got_code, want_code, "local {opts:?}");
        assert_same_tree_in(
            &ours.path().join("dst"),
            &stock.path().join("dst"),
            false,
            &format!("local {opts:?}"),
        );
    }
    // Without --delete or --force the directory's contents stay, and the run says so.
    let t = tempfile::tempdir().unwrap();
    prepare(t.path());
    let (text, code) = run_local(true, t.path(), &["-a", "src/", "dst/"]);
    assert_eq!(code, Some(23), "{text}");
    assert!(
        text.contains("could not make way for new regular file: x"),
        "{text}"
    );
    assert!(t.path().join("dst/x/sub/b").is_file());
    assert!(
        t.path().join("dst/y").is_symlink(),
        "an empty directory simply goes"
    );
}

#[test]
fn make_way_every_pairing() {
    for opts in OPTION_SETS {
        every_pairing(&prepare, Case::new(opts, &[""]).no_dir_times().sorted());
    }
}

/// A new file listed before a full directory that a file replaces: stock's receiving
/// generator asks for the new file, then deletes what the directory held; its deletions
/// go out ahead of the request it buffered, so a pushing client prints them before the new
/// file's line. Compared in order, pushing in every pairing. (Pulling, stock's order is
/// a race between its generator's pipe and the sender's echo of each item.)
fn prepare_new_then_replaced(base: &Path) {
    let (src, dst) = (base.join("src"), base.join("dst"));
    std::fs::create_dir_all(&src).unwrap();
    write_file(&src.join("keep"), b"new\n");
    write_file(&src.join("x"), b"a file now\n");
    std::fs::create_dir_all(dst.join("x")).unwrap();
    write_file(&dst.join("x/old"), b"old\n");
    past_times(&src);
    past_times(&dst);
}

#[test]
fn deletions_come_before_buffered_requests() {
    for opts in [&["-ai", "--force"][..], &["-ai", "--delete"]] {
        for via in [Via::Shell, Via::Daemon] {
            for (client, server) in PAIRS {
                let case = Case::new(opts, &[""]).no_dir_times();
                compare(
                    &prepare_new_then_replaced,
                    (client, server, via, true),
                    case,
                );
            }
        }
    }
}

/// The other way round under `--ignore-existing`: a directory listed where the
/// destination has a file or a symlink. Both stay; what the directory holds fails with
/// `failed to stat NAME: Not a directory` (code 23), and stock still sets the directory's
/// time on what stands in its place.
fn prepare_dirs_over_others(base: &Path) {
    let (src, dst) = (base.join("src"), base.join("dst"));
    for d in ["x", "y"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
        write_file(&src.join(d).join("inner"), b"inside\n");
    }
    write_file(&src.join("keep"), b"kept\n");
    std::fs::create_dir_all(&dst).unwrap();
    write_file(&dst.join("x"), b"a file\n");
    // (To a file already there: one the run makes would race stock's generator.)
    symlink("x", dst.join("y")).unwrap();
    past_times(&src);
    past_times(&dst);
}

#[test]
fn ignore_existing_dirs_over_others() {
    let opts: &[&str] = &["-ai", "--ignore-existing"];
    let ours = tempfile::tempdir().unwrap();
    let stock = tempfile::tempdir().unwrap();
    prepare_dirs_over_others(ours.path());
    prepare_dirs_over_others(stock.path());
    let args: Vec<&str> = opts.iter().copied().chain(["src/", "dst/"]).collect();
    let (got, got_code) = run_local(true, ours.path(), &args);
    let (want, want_code) = run_local(false, stock.path(), &args);
    let got = got.replace(&ours.path().display().to_string(), "BASE");
    let want = want.replace(&stock.path().display().to_string(), "BASE");
    assert_eq!(sorted(&got), sorted(&want), "local");
    assert_eq!(got_code, want_code, "local");
    assert!(got.contains("failed to stat"), "{got}");
    assert_same_tree_in(
        &ours.path().join("dst"),
        &stock.path().join("dst"),
        false,
        "local",
    );
    every_pairing(
        &prepare_dirs_over_others,
        Case::new(opts, &[""]).no_dir_times().sorted(),
    );
}

/// With `--backup`, what a directory replaces (a symlink, a file) is kept as a backup,
/// over the wire as locally (stock's delete_item backs up a non-directory it removes).
#[test]
fn backed_up_when_a_directory_replaces_it() {
    let prepare = |base: &Path| {
        let (src, dst) = (base.join("src"), base.join("dst"));
        std::fs::create_dir_all(src.join("d")).unwrap();
        std::fs::create_dir_all(src.join("g")).unwrap();
        std::fs::create_dir_all(&dst).unwrap();
        write_file(&src.join("d/f"), b"x\n");
        symlink("nowhere", dst.join("d")).unwrap();
        write_file(&dst.join("g"), b"a file\n");
        past_times(&src);
        past_times(&dst);
    };
    every_pairing(
        &prepare,
        Case::new(&["-ai", "-b"], &[""]).no_dir_times().sorted(),
    );
    let ours = tempfile::tempdir().unwrap();
    let stock = tempfile::tempdir().unwrap();
    prepare(ours.path());
    prepare(stock.path());
    let (got, _) = run_local(true, ours.path(), &["-ai", "-b", "src/", "dst/"]);
    let (want, _) = run_local(false, stock.path(), &["-ai", "-b", "src/", "dst/"]);
    assert_eq!(sorted(&got), sorted(&want));
    assert!(ours.path().join("dst/d~").is_symlink());
    assert_same_tree_in(
        &ours.path().join("dst"),
        &stock.path().join("dst"),
        false,
        "local -b",
    );
}

/// With `--backup`, what a hard link, a symlink or a fifo replaces is kept as a backup too
/// (stock's atomic_create backs up before it links or makes the node), in every pairing.
#[test]
fn backed_up_when_a_link_or_node_replaces_it() {
    let prepare = |base: &Path| {
        let (src, dst) = (base.join("src"), base.join("dst"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&dst).unwrap();
        write_file(&src.join("a"), b"new\n");
        std::fs::hard_link(src.join("a"), src.join("b")).unwrap();
        symlink("a", src.join("s")).unwrap();
        let fifo = std::ffi::CString::new(src.join("p").to_str().unwrap()).unwrap();
        // SAFETY: mkfifo on a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        for (name, text) in [
            ("a", "old a\n"),
            ("b", "old b\n"),
            ("s", "old s\n"),
            ("p", "old p\n"),
        ] {
            write_file(&dst.join(name), text.as_bytes());
        }
        past_times(&src);
        past_times(&dst);
    };
    every_pairing(
        &prepare,
        Case::new(&["-aHi", "-b"], &[""]).no_dir_times().sorted(),
    );
    let work = tempfile::tempdir().unwrap();
    prepare(work.path());
    let (_, code) = run_local(true, work.path(), &["-aH", "-b", "src/", "dst/"]);
    assert_eq!(code, Some(0));
    for name in ["a~", "b~", "s~", "p~"] {
        assert!(work.path().join("dst").join(name).is_file(), "{name}");
    }
}

/// The other way: a file (`-L` sends a symlink's referent) replacing a symlink or a fifo
/// keeps what it replaces as a backup too, in every pairing (abdiff --fuzz, `-a -L -b`).
#[test]
fn backed_up_when_a_file_replaces_a_link_or_node() {
    let prepare = |base: &Path| {
        let (src, dst) = (base.join("src"), base.join("dst"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&dst).unwrap();
        write_file(&src.join("a"), b"new\n");
        symlink("a", src.join("s")).unwrap();
        write_file(&src.join("p"), b"p\n");
        symlink("a", dst.join("s")).unwrap();
        let fifo = std::ffi::CString::new(dst.join("p").to_str().unwrap()).unwrap();
        // SAFETY: mkfifo on a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        past_times(&src);
        past_times(&dst);
    };
    every_pairing(
        &prepare,
        Case::new(&["-aLi", "-b", "--info=backup"], &[""])
            .no_dir_times()
            .sorted(),
    );
}

/// `--ignore-existing -H`: a group member already at its place stays as it is, not linked
/// to its leader (stock's generator skips it before its hard-link check).
#[test]
fn ignore_existing_keeps_hard_link_members() {
    let prepare = |base: &Path| {
        let (src, dst) = (base.join("src"), base.join("dst"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&dst).unwrap();
        write_file(&src.join("f0"), b"a\n");
        std::fs::hard_link(src.join("f0"), src.join("hl0")).unwrap();
        write_file(&src.join("new0"), b"n\n");
        std::fs::hard_link(src.join("new0"), src.join("new1")).unwrap();
        write_file(&dst.join("f0"), b"old\n");
        write_file(&dst.join("hl0"), b"other\n");
        past_times(&src);
        past_times(&dst);
    };
    every_pairing(
        &prepare,
        Case::new(&["-aiH", "--ignore-existing"], &[""])
            .no_dir_times()
            .sorted(),
    );
}
