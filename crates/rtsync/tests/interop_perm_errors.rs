//! Per-file failures of a receiver running as an unprivileged user, in every pairing (stock
//! or rtsync as client, the other end as `--server` through a remote shell or as a daemon
//! whose module runs as that user), pushing and pulling, compared with stock on both ends:
//! the trees left, the exit code (23: the transfer goes on past each failure) and the
//! messages (stock's wording and `[role]` tag, relayed to the client by a server, ` (in m)`
//! from a daemon; the random mkstemp suffix normalized). The trees are made as root; only
//! the rsync commands drop privileges.

mod daemon_util;
mod interop_util;
mod roles;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use std::process::Command;

use daemon_util::{rtsync_bin, stock_rsync};
use interop_util::{set_mtime, snapshot};
use roles::matrix::{every_pairing, temp_names, without_counts, Case};

/// The user the client (and a daemon's module) runs as.
const USER: &str = "nobody";

/// The module runs as the unprivileged user too.
const MODULE: &str = "uid = nobody\ngid = nogroup";

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// `dst/` (root's, writable by all) holds directories of root's the user cannot write
/// into: `ro/` and `ro2/` (0555); the sources have a file in each, and `ro/` a new
/// subdirectory.
fn read_only_dirs(base: &Path) {
    chmod(base, 0o755);
    let (src, dst) = (base.join("src"), base.join("dst"));
    for d in ["ro/sub", "ro2"] {
        fs::create_dir_all(src.join(d)).unwrap();
    }
    fs::write(src.join("ro/f"), "hi\n").unwrap();
    fs::write(src.join("ro/sub/deep"), "deep\n").unwrap();
    fs::write(src.join("ro2/g"), "x\n").unwrap();
    fs::write(src.join("top"), "top\n").unwrap();
    for f in ["ro/f", "ro/sub/deep", "ro2/g", "top"] {
        set_mtime(&src.join(f), 1_500_000_000, 0);
    }
    for d in ["ro", "ro2"] {
        fs::create_dir_all(dst.join(d)).unwrap();
    }
    // Old times the user cannot put back, on the destination's directories and sources.
    for p in [src.join("ro"), src.join("ro2"), src.join("ro/sub")] {
        set_mtime(&p, 1_500_000_000, 0);
    }
    for p in [dst.join("ro"), dst.join("ro2"), dst.clone()] {
        set_mtime(&p, 1_400_000_000, 0);
    }
    chmod(&dst.join("ro"), 0o555);
    chmod(&dst.join("ro2"), 0o555);
    chmod(&dst, 0o777);
    chmod(&src, 0o755);
    set_mtime(&src, 1_500_000_000, 0);
}

/// `-rtO`: nothing of a directory is preserved, so the destination's root is left alone; each
/// read-only directory is made writable first (`failed to modify permissions`), each file
/// in it fails at its temp file and the new subdirectory at its mkdir (its contents
/// skipped); the rest arrives.
#[test]
fn no_dir_attrs_into_read_only_dirs() {
    every_pairing(
        &read_only_dirs,
        Case::new(&["-rtO"], &[""])
            .module(MODULE)
            .as_user(USER)
            .no_dir_times()
            .sorted(),
    );
}

/// `-a`: the root's and each directory's permissions (and times) fail as stock reports
/// them, per attribute.
#[test]
fn archive_into_read_only_dirs() {
    every_pairing(
        &read_only_dirs,
        Case::new(&["-a"], &[""])
            .module(MODULE)
            .as_user(USER)
            .no_dir_times()
            .sorted(),
    );
}

/// `--delete` where the user may not delete: stock's `delete_file: unlink(NAME) failed`,
/// and the directory holding it stays (`cannot delete non-empty directory`).
#[test]
fn deletions_that_fail() {
    let prepare = |base: &Path| {
        read_only_dirs(base);
        let dst = base.join("dst");
        chmod(&dst.join("ro"), 0o755);
        fs::create_dir_all(dst.join("gone/inner")).unwrap();
        fs::write(dst.join("ro/extra"), "extra\n").unwrap();
        fs::write(dst.join("gone/inner/x"), "x\n").unwrap();
        set_mtime(&dst.join("ro/extra"), 1_400_000_000, 0);
        set_mtime(&dst.join("gone/inner/x"), 1_400_000_000, 0);
        chmod(&dst.join("gone/inner"), 0o555);
        chmod(&dst.join("ro"), 0o555);
    };
    every_pairing(
        &prepare,
        Case::new(&["-rtO", "--delete"], &[""])
            .module(MODULE)
            .as_user(USER)
            .no_dir_times()
            .sorted(),
    );
}

/// Symlinks that cannot be made (`symlink "NAME" -> "TARGET" failed`).
#[test]
fn symlinks_in_read_only_dirs() {
    let prepare = |base: &Path| {
        read_only_dirs(base);
        std::os::unix::fs::symlink("f", base.join("src/ro/link")).unwrap();
        set_mtime(&base.join("src/ro/link"), 1_500_000_000, 0);
    };
    every_pairing(
        &prepare,
        Case::new(&["-rltO"], &[""])
            .module(MODULE)
            .as_user(USER)
            .no_dir_times()
            .sorted(),
    );
}

/// Symlinks and a fifo that replace something already there (a symlink to elsewhere, a
/// file) are made under a temporary name and renamed over it, as stock's atomic_create does:
/// in a directory the user cannot write to, the message names that temporary (`.NAME.PID`);
/// in a writable one the replacement arrives.
fn replacements(base: &Path) {
    use std::os::unix::fs::symlink;
    read_only_dirs(base);
    let (src, dst) = (base.join("src"), base.join("dst"));
    for d in [&src, &dst] {
        fs::create_dir_all(d.join("rw")).unwrap();
        set_mtime(&d.join("rw"), 1_500_000_000, 0);
    }
    for (new, old) in [("ro/link", "link"), ("ro/was_file", ""), ("rw/link", "")] {
        symlink("f", src.join(new)).unwrap();
        match old {
            "" => fs::write(dst.join(new), "a file\n").unwrap(),
            t => symlink(t, dst.join(new)).unwrap(),
        }
    }
    for f in ["ro/fifo", "rw/fifo"] {
        let c = std::ffi::CString::new(src.join(f).into_os_string().into_encoded_bytes()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        fs::write(dst.join(f), "a file\n").unwrap();
    }
    for f in [
        "ro/link",
        "ro/was_file",
        "ro/fifo",
        "rw/link",
        "rw/fifo",
        "ro",
        "rw",
    ] {
        set_mtime(&src.join(f), 1_500_000_000, 0);
        set_mtime(&dst.join(f), 1_400_000_000, 0);
    }
    chmod(&dst.join("rw"), 0o777);
}

#[test]
fn replacements_in_read_only_dirs() {
    every_pairing(
        &replacements,
        Case::new(&["-rltDO"], &[""])
            .module(MODULE)
            .as_user(USER)
            .no_dir_times()
            .sorted(),
    );
    local_compare(&replacements, &["-rltDOi"]);
}

/// The same local copy (`SRC/ DST/`) by stock and by `rtsync rsync`, as the user: the
/// messages (as a set), the exit code and the trees must agree.
fn local_compare(prepare: &dyn Fn(&Path), opts: &[&str]) {
    let run = |ours: bool| {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        prepare(base);
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid", USER, "--regid", "nogroup", "--clear-groups"]);
        if ours {
            cmd.arg(rtsync_bin()).arg("rsync");
        } else {
            cmd.arg(stock_rsync());
        }
        let b = base.display().to_string();
        let out = cmd
            .args(opts)
            .arg(format!("{b}/src/"))
            .arg(format!("{b}/dst/"))
            .output()
            .unwrap();
        let text = temp_names(
            &format!(
                "{}{}exit: {:?}\n",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                out.status.code()
            )
            .replace(&b, "BASE"),
        );
        // Byte counts and timings aside (stock's are its pipe's).
        let mut lines: Vec<String> = without_counts(&text).lines().map(str::to_string).collect();
        lines.sort();
        (lines, snapshot(&base.join("dst"), false), dir)
    };
    let (ours, ours_tree, _a) = run(true);
    let (stock, stock_tree, _b) = run(false);
    assert_eq!(ours, stock, "output differs: {opts:?}");
    assert_eq!(ours_tree, stock_tree, "dst differs: {opts:?}");
}

/// The local engine reports the same failures the same way.
#[test]
fn local_copy_into_read_only_dirs() {
    for opts in [
        &["-rtO"][..],
        &["-a"],
        &["-rtO", "--delete"],
        &["-ai", "--stats"],
    ] {
        local_compare(&read_only_dirs, opts);
    }
}

/// A destination the user cannot write into at all: the generator asks for the file, then
/// reports the subdirectory it could not make, in one write, and waits for the file. A
/// sender that took the buffered report for a request held the file's data back and both
/// ends waited forever (the rsync suite's chdir-symlink-race, our client to our daemon).
#[test]
fn request_then_report_into_an_unwritable_root() {
    every_pairing(
        &unwritable_root,
        Case::new(&["-rtp", "--size-only"], &[""])
            .module(MODULE)
            .as_user(USER)
            .no_dir_times()
            .sorted(),
    );
    // Itemized and counted as stock does: the directory it could not make still has its
    // line, the file it could not write counts as transferred. In a chrooted module too,
    // where the data of that file is read and dropped without a /dev/null to write to.
    for module in [MODULE, "uid = nobody\ngid = nogroup\nuse chroot = yes"] {
        every_pairing(
            &unwritable_root,
            Case::new(&["-rtpi", "--stats"], &[""])
                .module(module)
                .as_user(USER)
                .no_dir_times()
                .sorted(),
        );
    }
    // And locally, where stock's sender lists what is below the directory not made.
    local_compare(&unwritable_root, &["-rtpi", "--stats"]);
}

/// A source with a file, and a directory holding a file, for a destination the user
/// cannot write into.
fn unwritable_root(base: &Path) {
    chmod(base, 0o755);
    let (src, dst) = (base.join("src"), base.join("dst"));
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::create_dir_all(&dst).unwrap();
    fs::write(src.join("file"), "data\n").unwrap();
    fs::write(src.join("sub/inner"), "inner\n").unwrap();
    for p in [src.join("file"), src.join("sub/inner"), src.join("sub")] {
        set_mtime(&p, 1_500_000_000, 0);
    }
    set_mtime(&dst, 1_400_000_000, 0);
    chmod(&dst, 0o555);
    chmod(&src, 0o755);
}

/// A source file the sender may list but not read (`send_files failed to open`, named as
/// stock names it: in a module relative to it with `(in m)`), alone and in a tree. Alone,
/// the sender has nothing more to send after saying so: a receiver that heard of it only
/// with the next data waited forever, and so did the sender.
#[test]
fn unreadable_sources() {
    let prepare = |base: &Path| {
        chmod(base, 0o755);
        let (src, dst) = (base.join("src"), base.join("dst"));
        fs::create_dir_all(src.join("sub")).unwrap();
        fs::create_dir_all(&dst).unwrap();
        fs::write(src.join("sub/file"), "secret\n").unwrap();
        fs::write(src.join("top"), "top\n").unwrap();
        for p in [src.join("sub/file"), src.join("top"), src.join("sub")] {
            set_mtime(&p, 1_500_000_000, 0);
        }
        chmod(&src.join("sub/file"), 0o000);
        chmod(&dst, 0o777);
        set_mtime(&dst, 1_400_000_000, 0);
    };
    for srcs in [&["sub/file"][..], &["sub/"], &["sub"], &[""]] {
        every_pairing(
            &prepare,
            Case::new(&["-a"], srcs)
                .module(MODULE)
                .as_user(USER)
                .no_dir_times()
                .sorted(),
        );
    }
    // A file the sender could not send is not created: stock's receiver counts a new file
    // when it arrives.
    every_pairing(
        &prepare,
        Case::new(&["-a", "--stats"], &[""])
            .module(MODULE)
            .as_user(USER)
            .no_dir_times()
            .sorted(),
    );
}

/// `-a` by a user into a copy it made before, of files whose group it is not in: the
/// group can be neither given nor changed, so it is not itemized (`g`) nor tried, as
/// stock's FLAG_SKIP_GROUP has it (ours itemized `.f.....g...` on every run).
#[test]
fn local_groups_the_user_cannot_give() {
    use std::os::unix::fs::chown;
    let prepare = |base: &Path| {
        chmod(base, 0o755);
        let (src, dst) = (base.join("src"), base.join("dst"));
        for d in [src.join("sub"), dst.join("sub")] {
            fs::create_dir_all(d).unwrap();
        }
        for f in ["f", "sub/g"] {
            fs::write(src.join(f), "same\n").unwrap();
            fs::write(dst.join(f), "same\n").unwrap();
        }
        let nobody = 65534;
        for p in ["", "sub", "f", "sub/g"] {
            // Ours: the user's; the source's: group root, which the user is not in.
            chown(src.join(p), Some(nobody), Some(0)).unwrap();
            chown(dst.join(p), Some(nobody), Some(65534)).unwrap();
            set_mtime(&src.join(p), 1_500_000_000, 0);
            set_mtime(&dst.join(p), 1_500_000_000, 0);
        }
    };
    for opts in [&["-ai"][..], &["-aii"], &["-ai", "--delete"]] {
        local_compare(&prepare, opts);
    }
}
