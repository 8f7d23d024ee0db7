//! `-X` / `--xattrs` compared with stock rsync: local copies, and over the wire in every role
//! pairing (rtsync's client pushing to and pulling from stock servers and daemons, the stock
//! client against rtsync's server and daemon, rtsync on both ends). The trees are compared
//! with their extended attributes; the output (itemize `x` column) and exit codes too.
//!
//! The tests run as root (the harness's case): `trusted.` names travel, and a symlink carries
//! one (Linux allows no `user.` names on symlinks).

mod daemon_util;
mod interop_util;
mod roles;

use std::path::Path;
use std::process::Command;

use interop_util::{pattern, set_mtime, set_xattr, snapshot, stock_rsync, write_file, xattrs_of};
use roles::matrix::{self, Case};

fn long(seed: u32) -> Vec<u8> {
    pattern(200, seed)
}

/// A source with short and long (abbreviated) values on files, directories and a symlink;
/// a destination where some values are stale, some extra, some long ones already equal.
fn prepare(base: &Path) {
    let src = base.join("src");
    std::fs::create_dir_all(src.join("sub/deep")).unwrap();
    let files = [
        ("same.txt", pattern(100, 1)),
        ("stale.txt", pattern(3000, 2)),
        ("new.txt", pattern(10, 3)),
        ("sub/deep/f", pattern(50, 4)),
        ("plain", pattern(20, 5)),
    ];
    for (i, (name, data)) in files.iter().enumerate() {
        let p = write_file(&src.join(name), data);
        set_mtime(&p, 1_600_000_000 + i as i64, 0);
    }
    std::os::unix::fs::symlink("same.txt", src.join("link")).unwrap();
    set_xattr(&src.join("same.txt"), "user.short", b"one");
    set_xattr(&src.join("same.txt"), "user.long", &long(10));
    set_xattr(&src.join("same.txt"), "trusted.t", b"root only");
    set_xattr(&src.join("stale.txt"), "user.a", b"new a");
    set_xattr(&src.join("stale.txt"), "user.big", &long(11));
    set_xattr(&src.join("stale.txt"), "user.kept", &long(12));
    set_xattr(&src.join("new.txt"), "user.n", &long(13));
    set_xattr(&src.join("new.txt"), "user.empty", b"");
    set_xattr(&src.join("sub"), "user.dir", b"dir value");
    set_xattr(&src.join("sub/deep"), "user.deeplong", &long(14));
    set_xattr(&src.join("sub/deep/f"), "user.f", b"f");
    set_xattr(&src.join("link"), "trusted.l", b"on the link");
    for (i, d) in ["link", "sub/deep", "sub", ""].iter().enumerate() {
        set_mtime(&src.join(d), 1_500_000_000 + i as i64, 0);
    }

    let dst = base.join("dst");
    std::fs::create_dir_all(dst.join("sub/deep")).unwrap();
    for name in ["same.txt", "stale.txt", "plain"] {
        std::fs::copy(src.join(name), dst.join(name)).unwrap();
    }
    // Current data, attributes to fix: `.f........x`.
    set_xattr(&dst.join("same.txt"), "user.short", b"old");
    set_xattr(&dst.join("same.txt"), "user.long", &long(20));
    set_xattr(&dst.join("same.txt"), "user.extra", b"to be removed");
    set_xattr(&dst.join("stale.txt"), "user.big", &long(21));
    set_xattr(&dst.join("stale.txt"), "user.kept", &long(12));
    set_xattr(&dst.join("plain"), "user.gone", &long(22));
    set_xattr(&dst.join("sub"), "user.dir", b"old dir value");
    set_xattr(&dst.join("sub/deep"), "user.deeplong", &long(14));
    for (i, name) in ["same.txt", "stale.txt", "plain"].iter().enumerate() {
        let t = if *name == "stale.txt" {
            1_400_000_000
        } else {
            1_600_000_000 + [0, 1, 4][i]
        };
        set_mtime(&dst.join(name), t, 0);
    }
    // (stale.txt's data differs too: it is transferred, keeping the equal long value.)
    write_file(&dst.join("stale.txt"), &pattern(2000, 9));
    set_mtime(&dst.join("stale.txt"), 1_400_000_000, 0);
    for (i, d) in ["sub/deep", "sub", ""].iter().enumerate() {
        set_mtime(&dst.join(d), 1_500_000_001 + i as i64, 0);
    }
}

/// The same for `-XX`: rsync's own `user.rsync.%` names travel only then.
fn prepare_private(base: &Path) {
    prepare(base);
    set_xattr(
        &base.join("src/plain"),
        "user.rsync.%stat",
        b"100644 0,0 0:0",
    );
    set_xattr(&base.join("src/sub/deep/f"), "user.rsync.%other", &long(30));
}

fn every_pairing(prepare: &dyn Fn(&Path), opts: &[&str]) {
    matrix::every_pairing(prepare, Case::new(opts, &[""]));
}

#[test]
fn xattrs_in_every_role_like_stock() {
    every_pairing(&prepare, &["-aX", "-i"]);
}

#[test]
fn xattrs_verbose_without_itemize_like_stock() {
    every_pairing(&prepare, &["-aXv"]);
}

#[test]
fn double_x_copies_rsync_private_names_like_stock() {
    every_pairing(&prepare_private, &["-aXX", "-i"]);
}

#[test]
fn single_x_leaves_rsync_private_names_like_stock() {
    every_pairing(&prepare_private, &["-aX", "-i"]);
}

#[test]
fn xattrs_dry_run_itemizes_and_changes_nothing_like_stock() {
    every_pairing(&prepare, &["-aXn", "-i"]);
}

#[test]
fn xattrs_with_delete_and_checksum_like_stock() {
    every_pairing(&prepare, &["-aXc", "-i", "--delete"]);
}

/// A local copy by both: output, exit code and the resulting trees (attributes included).
fn local_like_stock(prepare: &dyn Fn(&Path), opts: &[&str]) {
    let run = |stock: bool| {
        let base = tempfile::tempdir().unwrap();
        prepare(base.path());
        let b = base.path().display().to_string();
        let mut cmd = if stock {
            Command::new(stock_rsync())
        } else {
            let mut c = Command::new(env!("CARGO_BIN_EXE_rtsync"));
            c.arg("rsync");
            c
        };
        let out = cmd
            .args(opts)
            .arg(format!("{b}/src/"))
            .arg(format!("{b}/dst/"))
            .output()
            .unwrap();
        let text = format!(
            "stdout:\n{}stderr:\n{}exit: {:?}\n",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            out.status.code()
        )
        .replace(&b, "BASE");
        (text, snapshot(&base.path().join("dst"), true), base)
    };
    let (ours, ours_tree, _a) = run(false);
    let (stock, stock_tree, _b) = run(true);
    assert_eq!(ours, stock, "output differs for {opts:?}");
    assert_eq!(ours_tree, stock_tree, "trees differ for {opts:?}");
}

#[test]
fn local_xattrs_like_stock() {
    local_like_stock(&prepare, &["-aX", "-i"]);
    local_like_stock(&prepare, &["-aXn", "-i"]);
    local_like_stock(&prepare_private, &["-aXX", "-i"]);
    local_like_stock(&prepare_private, &["-aX", "-i"]);
}

#[test]
fn local_xattrs_copied_to_new_tree() {
    // Not vacuous: the source's attributes arrive, abbreviated ones included.
    let base = tempfile::tempdir().unwrap();
    prepare(base.path());
    let b = base.path();
    let out = Command::new(env!("CARGO_BIN_EXE_rtsync"))
        .args(["rsync", "-aX"])
        .arg(b.join("src/"))
        .arg(b.join("new"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for name in [
        "same.txt",
        "stale.txt",
        "new.txt",
        "sub",
        "sub/deep",
        "link",
    ] {
        assert_eq!(
            xattrs_of(&b.join("new").join(name)),
            xattrs_of(&b.join("src").join(name)),
            "{name}"
        );
    }
    assert!(!xattrs_of(&b.join("new/stale.txt")).is_empty());
}

#[test]
fn version_lists_xattrs() {
    let out = Command::new(env!("CARGO_BIN_EXE_rtsync"))
        .args(["rsync", "--version"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(" xattrs,") && !text.contains("no xattrs"),
        "{text}"
    );
}

#[test]
fn fake_super_with_double_x_is_refused_like_stock() {
    let base = tempfile::tempdir().unwrap();
    prepare(base.path());
    let args = ["--fake-super", "-aXX", "src/", "out/"];
    let stock = Command::new(stock_rsync())
        .args(args)
        .current_dir(base.path())
        .output()
        .unwrap();
    let ours = Command::new(env!("CARGO_BIN_EXE_rtsync"))
        .arg("rsync")
        .args(args)
        .current_dir(base.path())
        .output()
        .unwrap();
    assert_eq!(ours.status.code(), stock.status.code());
    let first = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stderr)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(first(&ours), first(&stock));
    assert!(!base.path().join("out").exists());
}

/// A batch written by one implementation and replayed by the other puts the same attributes
/// in place (the stream flags carry `-X`; the sender's answers are in the batch).
#[test]
fn xattrs_batch_files_replay_across_implementations() {
    let ours = |args: &[&str], dir: &Path| {
        Command::new(env!("CARGO_BIN_EXE_rtsync"))
            .arg("rsync")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap()
    };
    let stock = |args: &[&str], dir: &Path| {
        Command::new(stock_rsync())
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap()
    };
    type Run = dyn Fn(&[&str], &Path) -> std::process::Output;
    let pairs: [(&Run, &Run); 2] = [(&stock, &ours), (&ours, &stock)];
    for (writer, reader) in pairs {
        let base = tempfile::tempdir().unwrap();
        prepare(base.path());
        let b = base.path();
        // Not the symlink's attribute: stock's own replay races its generator there (its
        // receiver may set it before the link is made: `stat ... failed`, a third of the
        // time with stock on both ends).
        let link = std::ffi::CString::new(b.join("src/link").display().to_string()).unwrap();
        // SAFETY: NUL-terminated path and attribute name.
        let r = unsafe { libc::lremovexattr(link.as_ptr(), c"trusted.l".as_ptr()) };
        assert_eq!(r, 0, "removing the link's attribute");
        let w = writer(&["-aX", "--write-batch=batch", "src/", "written/"], b);
        assert!(w.status.success(), "{w:?}");
        let r = reader(&["-aX", "--read-batch=batch", "replayed/"], b);
        assert!(r.status.success(), "{r:?}");
        assert_eq!(
            snapshot(&b.join("replayed"), true),
            snapshot(&b.join("written"), true)
        );
        assert!(!xattrs_of(&b.join("replayed/stale.txt")).is_empty());
    }
}
