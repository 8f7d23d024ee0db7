//! `--delay-updates` on the receiving side of the wire, in every pairing with stock (shell
//! and daemon, pushing and pulling): finished files wait in `.~tmp~` (or the
//! `--partial-dir`) and are renamed into place once the sender is done, hard-link followers
//! are linked only then, a stale staged copy of a file already current goes, something
//! else named like the staging dir is replaced (and removed with it), and the client keeps
//! the staging dir out of the transfer (neither sent nor deleted). Also the receiving
//! side's other way of finishing files from elsewhere: the `--link-dest`, `--copy-dest`
//! and `--compare-dest` basis directories, itemized as stock's generator does.

mod daemon_util;
mod interop_util;
mod roles;

use std::path::Path;

use interop_util::{set_mtime, write_file};
use roles::matrix::{every_pairing, Case};

/// A source with a changed, an unchanged and a new file, a hard-linked pair and a staging
/// dir of its own; a destination with stale staged copies, an extra file, and a symlink
/// where a staging dir will be made.
fn prepare(base: &Path) {
    let (src, dst) = (base.join("src"), base.join("dst"));
    for d in [
        src.join("sub"),
        src.join(".~tmp~"),
        dst.join("sub"),
        dst.join(".~tmp~"),
        dst.join("keep"),
    ] {
        std::fs::create_dir_all(d).unwrap();
    }
    write_file(&src.join("changed"), b"the new content of a changed file\n");
    write_file(&dst.join("changed"), b"old\n");
    write_file(&src.join("same"), b"same\n");
    write_file(&dst.join("same"), b"same\n");
    write_file(&src.join("sub/new"), b"a new file\n");
    write_file(&src.join("sub/h1"), b"hard-linked data\n");
    std::fs::hard_link(src.join("sub/h1"), src.join("sub/h2")).unwrap();
    write_file(&src.join(".~tmp~/junk"), b"the source's own staging dir\n");
    // A stale staged copy of a file that is current, and one of a changed file.
    write_file(&dst.join(".~tmp~/same"), b"stale\n");
    write_file(&dst.join(".~tmp~/changed"), b"stale partial\n");
    write_file(&dst.join("extra"), b"not in the source\n");
    write_file(&dst.join("keep/inside"), b"behind a symlink\n");
    std::os::unix::fs::symlink("../keep", dst.join("sub/.~tmp~")).unwrap();
    for (i, p) in [
        "src/changed",
        "src/same",
        "src/sub/new",
        "src/sub/h1",
        "src/.~tmp~/junk",
        "src/.~tmp~",
        "src/sub",
        "src",
        "dst/changed",
        "dst/same",
        "dst/.~tmp~/same",
        "dst/.~tmp~/changed",
        "dst/.~tmp~",
        "dst/extra",
        "dst/keep/inside",
        "dst/keep",
        "dst/sub/.~tmp~",
        "dst/sub",
        "dst",
    ]
    .iter()
    .enumerate()
    {
        let t = if *p == "dst/same" {
            1_600_000_100
        } else {
            1_600_000_000 + i as i64 * 100
        };
        set_mtime(&base.join(p), t, 0);
    }
}

#[test]
fn delay_updates_in_every_pairing() {
    every_pairing(&prepare, Case::new(&["-ai", "--delay-updates"], &[""]));
}

#[test]
fn delay_updates_link_hard_links_after_the_renames() {
    every_pairing(&prepare, Case::new(&["-aiH", "--delay-updates"], &[""]));
}

#[test]
fn delay_updates_with_deletions_after_or_during() {
    for opts in [
        &["-ai", "--delay-updates", "--delete-after"][..],
        &["-ai", "--delay-updates", "--delete-delay"],
        &["-aiH", "--delay-updates", "--delete"],
    ] {
        every_pairing(&prepare, Case::new(opts, &[""]).no_dir_times().sorted());
    }
}

#[test]
fn delay_updates_into_a_partial_dir_with_backups() {
    every_pairing(
        &prepare,
        Case::new(
            &["-ai", "--delay-updates", "--partial-dir=.pd", "--backup"],
            &[""],
        )
        // (--backup leaves directory times alone.)
        .no_dir_times(),
    );
}

#[test]
fn delay_updates_remove_source_files_once_in_place() {
    every_pairing(
        &prepare,
        Case::new(&["-ai", "--delay-updates", "--remove-source-files"], &[""]).sorted(),
    );
}

#[test]
fn delay_updates_refuses_inplace_and_append() {
    // As stock's option parser: a usage error before anything is transferred.
    let dir = tempfile::tempdir().unwrap();
    for opts in [
        &["--inplace", "--delay-updates"][..],
        &["--append", "--delay-updates"],
        &["--inplace", "--partial-dir=x", "--delay-updates"],
    ] {
        let run = |bin: &mut std::process::Command| {
            bin.args(opts)
                .arg(dir.path().join("a"))
                .arg(dir.path().join("b"))
                .output()
                .unwrap()
        };
        let ours = run(std::process::Command::new(daemon_util::rtsync_bin()).arg("rsync"));
        let stock = run(&mut std::process::Command::new(daemon_util::stock_rsync()));
        assert_eq!(ours.status.code(), stock.status.code(), "{opts:?}");
        let first = |o: &std::process::Output| {
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .next()
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(first(&ours), first(&stock), "{opts:?}");
    }
}

/// A basis directory `ref/` beside `dst/`: the source's files as they are (a hard link or
/// nothing to do), one missing; `dst/` holds an up-to-date copy of one of them. A file linked to its identical
/// basis copy is no significant change: shown by `-ii`, not by `-i` (our receiving client
/// printed `hf NAME` for it; a stock client of our server saw nothing with `-ii`).
#[test]
fn basis_dirs_itemized_like_stock_in_every_pairing() {
    let prepare = |base: &Path| {
        let (src, r) = (base.join("src"), base.join("ref"));
        for d in [src.join("sub"), r.join("sub"), base.join("dst")] {
            std::fs::create_dir_all(d).unwrap();
        }
        for (name, text) in [
            ("same", "same\n"),
            ("sub/deep", "deep\n"),
            ("changed", "new\n"),
        ] {
            write_file(&src.join(name), text.as_bytes());
        }
        write_file(&src.join("new"), b"only here\n");
        for (name, text) in [
            ("same", "same\n"),
            ("sub/deep", "deep\n"),
            ("changed", "old\n"),
        ] {
            write_file(&r.join(name), text.as_bytes());
        }
        for p in ["same", "sub/deep", "changed", "new"] {
            set_mtime(&src.join(p), 1_500_000_000, 0);
            if r.join(p).exists() {
                set_mtime(&r.join(p), 1_500_000_000, 0);
            }
        }
        // An up-to-date copy already in the destination: replaced by a link to the basis
        // (--link-dest) or removed (--compare-dest), as stock looks in the basis first.
        write_file(&base.join("dst/same"), b"same\n");
        set_mtime(&base.join("dst/same"), 1_500_000_000, 0);
        for d in [src.join("sub"), src.clone(), r.join("sub")] {
            set_mtime(&d, 1_500_000_000, 0);
        }
    };
    for dest in [
        "--link-dest=../ref",
        "--copy-dest=../ref",
        "--compare-dest=../ref",
    ] {
        for verbosity in ["-ai", "-aii"] {
            every_pairing(
                &prepare,
                Case::new(&[verbosity, dest], &[""]).no_dir_times(),
            );
        }
    }
}

/// A device, a fifo and a symlink found in a basis directory: hard-linked (`--link-dest`),
/// left to the basis (`--compare-dest`) or made again (`--copy-dest`), each with stock's
/// line (`hD`, `.S` … with `-ii`; `NAME is uptodate`, `sub/ is uptodate` with name2). A
/// daemon munges the symlink's target, so its basis twin matches only in kind: made anew,
/// itemized against the twin (`cLc…`).
#[test]
fn basis_dir_links_devices_specials_and_symlinks_like_stock() {
    let prepare = |base: &Path| {
        for side in ["src", "ref"] {
            let d = base.join(side);
            std::fs::create_dir_all(d.join("sub")).unwrap();
            write_file(&d.join("sub/f"), b"f\n");
            std::os::unix::fs::symlink("sub/f", d.join("l")).unwrap();
            for (name, mode, dev) in [
                ("c", libc::S_IFCHR | 0o644, libc::makedev(1, 3)),
                ("p", libc::S_IFIFO | 0o644, 0),
            ] {
                let p = std::ffi::CString::new(d.join(name).to_str().unwrap()).unwrap();
                // SAFETY: mknod on a NUL-terminated path.
                assert_eq!(unsafe { libc::mknod(p.as_ptr(), mode, dev) }, 0);
            }
            for p in ["sub/f", "c", "p", "sub", ""] {
                set_mtime(&d.join(p), 1_500_000_000, 0);
            }
            let l = std::ffi::CString::new(d.join("l").to_str().unwrap()).unwrap();
            let times = [libc::timespec {
                tv_sec: 1_500_000_000,
                tv_nsec: 0,
            }; 2];
            // SAFETY: a NUL-terminated path and two timespecs.
            let r = unsafe {
                libc::utimensat(
                    libc::AT_FDCWD,
                    l.as_ptr(),
                    times.as_ptr(),
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            };
            assert_eq!(r, 0);
        }
        std::fs::create_dir_all(base.join("dst")).unwrap();
    };
    for dest in [
        "--link-dest=../ref",
        "--compare-dest=../ref",
        "--copy-dest=../ref",
    ] {
        for opts in [&["-aii", dest][..], &["-a", "--info=name2", dest]] {
            every_pairing(&prepare, Case::new(opts, &[""]).no_dir_times().sorted());
        }
    }
}
