//! The receiver's option directories and backups, against stock: `--temp-dir` and
//! `--backup-dir` are looked at before anything is transferred (one that is not a directory,
//! or a temp dir that is not there, ends the run with code 1 and stock's bare line;
//! `--info=backup` says whether the backup dir is new), in every pairing and locally; a
//! backup dir on another filesystem is copied to (owner, mode and mtime kept) by every
//! receiver of ours; a backup that cannot be made stops the transfer with code 11 and
//! leaves the file as it was; and a name that would reach MAXPATHLEN is left out of the
//! sender's list with stock's line.

mod daemon_util;
mod interop_util;
mod roles;

use interop_util::*;
use roles::matrix::{self, Case};
use roles::Role;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// `src/g` changed since `dst/g` was copied; `dst/f` is a plain file (the name the bad
/// option directories point at), `dst/old` an existing directory.
fn prepare(base: &Path) {
    let (src, dst) = (base.join("src"), base.join("dst"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(dst.join("old")).unwrap();
    std::fs::write(src.join("g"), b"new contents\n").unwrap();
    std::fs::write(src.join("h"), b"same\n").unwrap();
    std::fs::write(dst.join("g"), b"old\n").unwrap();
    std::fs::write(dst.join("h"), b"same\n").unwrap();
    std::fs::write(dst.join("f"), b"a file\n").unwrap();
    past_times(base);
    set_mtime(&src.join("g"), 1_700_000_000, 0);
}

#[test]
fn unusable_option_dirs_end_the_run_in_every_pairing() {
    for opts in [
        &["-a", "--temp-dir=missing"][..],
        // (A daemon takes an absolute one inside its module and names it by its full path.)
        &["-a", "--temp-dir=/nonexistent-rtsync-dir/"],
        &["-a", "--temp-dir=f"],
        &["-a", "--temp-dir=f/"],
        &["-a", "-b", "--backup-dir=f"],
        &["-a", "-b", "--backup-dir=f/"],
        // Not used without -b: not looked at either.
        &["-a", "--backup-dir=f"],
        &["-a", "--info=backup", "-b", "--backup-dir=bk"],
        &["-a", "--info=backup", "-b", "--backup-dir=old"],
    ] {
        // (A new backup dir has the time it was made.)
        matrix::every_pairing(&prepare, Case::new(opts, &[""]).no_dir_times());
    }
}

#[test]
fn unusable_option_dirs_end_a_local_copy_as_stock_does() {
    for opts in [
        &["-a", "--temp-dir=/nonexistent-rtsync-dir"][..],
        &["-a", "--temp-dir=/etc/passwd"],
        &["-a", "--temp-dir=/etc/passwd/"],
        &["-a", "-b", "--backup-dir=/etc/passwd"],
        &["-a", "-b", "--backup-dir=/etc/passwd/"],
        &["-a", "-b", "--backup-dir=/etc/passwd/x"],
        &["-a", "-b", "--backup-dir=f", "--temp-dir=missing"],
        &["-a", "--info=backup", "-b", "--backup-dir=bk"],
        &["-a", "--info=backup", "-b", "--backup-dir=old"],
    ] {
        let mut runs = Vec::new();
        for stock in [true, false] {
            let work = tempfile::tempdir().unwrap();
            prepare(work.path());
            let mut args: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
            args.extend(["src/".into(), "dst/".into()]);
            let out = rsync_command(stock)
                .args(&args)
                .current_dir(work.path())
                .output()
                .unwrap();
            runs.push((out, work));
        }
        let (stock, ours) = (&runs[0], &runs[1]);
        assert_eq!(
            String::from_utf8_lossy(&ours.0.stderr),
            String::from_utf8_lossy(&stock.0.stderr),
            "{opts:?}: stderr"
        );
        assert_eq!(
            String::from_utf8_lossy(&ours.0.stdout),
            String::from_utf8_lossy(&stock.0.stdout),
            "{opts:?}: stdout"
        );
        assert_eq!(ours.0.status.code(), stock.0.status.code(), "{opts:?}");
        assert_same_tree_in(
            &ours.1.path().join("dst"),
            &stock.1.path().join("dst"),
            false,
            &format!("{opts:?}"),
        );
    }
}

/// A tmpfs mounted on a temporary directory for a test (`size` as mount's `size=`),
/// unmounted when dropped; `None` where mounting is not allowed.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: Option<&str>) -> Option<Tmpfs> {
        let t = tempfile::tempdir().unwrap();
        let mut cmd = std::process::Command::new("mount");
        cmd.args(["-t", "tmpfs"]);
        if let Some(size) = size {
            cmd.args(["-o", &format!("size={size}")]);
        }
        let ok = cmd
            .arg("rtsync-test")
            .arg(t.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs(t))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

#[test]
fn a_backup_dir_on_another_filesystem_is_copied_to_by_every_receiver() {
    // A filesystem other than the work directories': a tmpfs, or /dev/shm where mounting
    // is not allowed.
    let (_mounted, _shm, other_dir) = match Tmpfs::mount(None) {
        Some(t) => {
            let dir = t.0.path().to_path_buf();
            (Some(t), None, dir)
        }
        None => {
            let shm = tempfile::tempdir_in("/dev/shm").expect("no tmpfs and no /dev/shm");
            let dir = shm.path().to_path_buf();
            (None, Some(shm), dir)
        }
    };
    let work_dev = std::fs::metadata(std::env::temp_dir()).unwrap().dev();
    assert_ne!(
        std::fs::metadata(&other_dir).unwrap().dev(),
        work_dev,
        "the backup dir must be on another filesystem for this test to mean anything"
    );
    let roles = [
        Role::Local,
        Role::OursPullStockShell,
        Role::OursPullStockDaemon,
        Role::StockPushesOurShell,
    ];
    for (n, role) in roles.into_iter().enumerate() {
        let mut trees = Vec::new();
        for stock in [true, false] {
            let work = tempfile::tempdir().unwrap();
            prepare(work.path());
            let (src, dst) = (work.path().join("src"), work.path().join("dst"));
            // The file replaced has an owner, mode and time of its own, as does a symlink.
            std::os::unix::fs::chown(dst.join("g"), Some(5), Some(6)).unwrap();
            std::fs::set_permissions(
                dst.join("g"),
                std::os::unix::fs::PermissionsExt::from_mode(0o640),
            )
            .unwrap();
            set_mtime(&dst.join("g"), 1_500_000_000, 0);
            std::os::unix::fs::symlink("old-target", dst.join("l")).unwrap();
            std::os::unix::fs::symlink("new-target", src.join("l")).unwrap();
            let bdir = other_dir.join(format!("{n}-{stock}"));
            let opt = format!("--backup-dir={}", bdir.display());
            let opts = ["-a", "-b", &opt, "--info=backup"];
            let out = if stock {
                roles::stock_reference(
                    role.pulls() || role == Role::Local,
                    &opts,
                    &src,
                    &dst,
                    work.path(),
                )
            } else {
                role.run(&opts, &src, &dst, work.path())
            };
            assert_eq!(roles::code(&out), 0, "{role:?} stock={stock}");
            assert_eq!(std::fs::read(dst.join("g")).unwrap(), b"new contents\n");
            let kept = bdir.join("g");
            assert_eq!(
                std::fs::read(&kept).unwrap(),
                b"old\n",
                "{role:?} stock={stock}"
            );
            let m = std::fs::metadata(&kept).unwrap();
            assert_eq!(
                (m.uid(), m.gid(), m.mode() & 0o7777),
                (5, 6, 0o640),
                "{role:?}"
            );
            assert_eq!(m.mtime(), 1_500_000_000, "{role:?}");
            assert_eq!(
                std::fs::read_link(bdir.join("l")).unwrap(),
                Path::new("old-target"),
                "{role:?}"
            );
            // (A symlink's time is when it was made: not compared.)
            std::fs::remove_file(bdir.join("l")).unwrap();
            trees.push((bdir, work));
        }
        assert_same_tree_in(&trees[1].0, &trees[0].0, false, &format!("{role:?}"));
    }
}

/// `dst/NAME` with a 255-byte name: its backup name (`NAME~`) is too long for the
/// filesystem.
fn long_name() -> String {
    "n".repeat(255)
}

#[test]
fn a_backup_that_cannot_be_made_stops_the_transfer_and_keeps_the_file() {
    let name = long_name();
    let prepare_long = |base: &Path| {
        let (src, dst) = (base.join("src"), base.join("dst"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&dst).unwrap();
        std::fs::write(src.join(&name), b"new contents\n").unwrap();
        std::fs::write(dst.join(&name), b"old\n").unwrap();
        past_times(base);
        set_mtime(&src.join(&name), 1_700_000_000, 0);
    };
    // Locally: stock's lines and code, and the old file kept.
    let mut runs = Vec::new();
    for stock in [true, false] {
        let work = tempfile::tempdir().unwrap();
        prepare_long(work.path());
        let out = rsync_command(stock)
            .args(["-ai", "-b", "src/", "dst/"])
            .current_dir(work.path())
            .output()
            .unwrap();
        assert_eq!(
            std::fs::read(work.path().join("dst").join(&name)).unwrap(),
            b"old\n",
            "stock={stock}: the file without its backup must stay"
        );
        runs.push((out, work));
    }
    let shown = |o: &std::process::Output, w: &Path| {
        (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).replace(&w.display().to_string(), "W"),
            o.status.code(),
        )
    };
    assert_eq!(
        shown(&runs[1].0, runs[1].1.path()),
        shown(&runs[0].0, runs[0].1.path())
    );
    assert_eq!(runs[0].0.status.code(), Some(11));
    // Over the wire, in every pairing: the same lines, code and trees as stock's.
    let prepare_base = |base: &Path| prepare_long(base);
    matrix::every_pairing(&prepare_base, Case::new(&["-a", "-b"], &[""]));
    // And every receiver of ours keeps the file.
    for role in [
        Role::OursPullStockShell,
        Role::OursPullStockDaemon,
        Role::StockPushesOurShell,
        Role::StockPushesOurDaemon,
    ] {
        let work = tempfile::tempdir().unwrap();
        prepare_long(work.path());
        let (src, dst) = (work.path().join("src"), work.path().join("dst"));
        let out = role.run(&["-a", "-b"], &src, &dst, work.path());
        assert_eq!(out.status.code(), Some(11), "{role:?}: {out:?}");
        assert_eq!(
            std::fs::read(dst.join(&name)).unwrap(),
            b"old\n",
            "{role:?}"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("keep_backup failed"), "{role:?}: {err}");
    }
}

#[test]
fn a_deletion_whose_backup_dir_cannot_be_made_is_skipped_quietly_like_stock() {
    // /proc/sys refuses new directories: stock's backup fails without a word, and the
    // deletion is not done (not an error either).
    let mut runs = Vec::new();
    for stock in [true, false] {
        let work = tempfile::tempdir().unwrap();
        prepare(work.path());
        std::fs::write(work.path().join("dst/extra"), b"x").unwrap();
        let out = rsync_command(stock)
            .args([
                "-ai",
                "--delete",
                "-b",
                "--backup-dir=/proc/sys/rtsync-no-such-dir",
                "--exclude=g",
                "src/",
                "dst/",
            ])
            .current_dir(work.path())
            .output()
            .unwrap();
        assert!(work.path().join("dst/extra").exists(), "stock={stock}");
        runs.push((out, work));
    }
    assert_eq!(
        String::from_utf8_lossy(&runs[1].0.stdout),
        String::from_utf8_lossy(&runs[0].0.stdout)
    );
    assert_eq!(
        String::from_utf8_lossy(&runs[1].0.stderr),
        String::from_utf8_lossy(&runs[0].0.stderr)
    );
    assert_eq!(runs[1].0.status.code(), runs[0].0.status.code());
}

#[test]
fn names_reaching_maxpathlen_are_left_out_of_the_list_like_stock() {
    // 21 directories of 200 bytes: the 21st level's names are 4220 bytes long.
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir(work.path().join("src")).unwrap();
    std::fs::write(work.path().join("src/short"), b"s").unwrap();
    // (Made one level at a time through the parent, as the whole path is too long.)
    let mut at = std::fs::File::open(work.path().join("src")).unwrap();
    for _ in 0..21 {
        at = open_in(&at, &"D".repeat(200), true);
    }
    let mut results = Vec::new();
    for (stock, dest) in [(true, "stock"), (false, "ours")] {
        let out = rsync_command(stock)
            .args(["-a", "src/", &format!("{dest}/")])
            .current_dir(work.path())
            .output()
            .unwrap();
        results.push(out);
    }
    let err = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(err(&results[0]).contains("filename overflows max-path len by 125: "));
    assert_eq!(err(&results[1]), err(&results[0]));
    assert_eq!(results[1].status.code(), results[0].status.code());
    assert_eq!(results[0].status.code(), Some(23));
    assert_eq!(
        deep_names(&work.path().join("ours")),
        deep_names(&work.path().join("stock"))
    );
}

/// How many directory levels a tree has, and its top names (the tree is too deep for path
/// walks).
fn deep_names(root: &Path) -> (usize, Vec<String>) {
    let mut top: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    let mut depth = 0;
    let mut dir = std::fs::File::open(root).unwrap();
    while let Some(next) = try_open_in(&dir, &"D".repeat(200), false) {
        depth += 1;
        dir = next;
    }
    (depth, top)
}

#[test]
fn a_full_destination_stops_the_receiver_and_leaves_no_partial_file() {
    let roles = [
        Role::Local,
        Role::OursPullStockShell,
        Role::OursPullStockDaemon,
        Role::StockPushesOurShell,
        Role::StockPushesOurDaemon,
    ];
    for role in roles {
        let mut seen = Vec::new();
        for stock in [true, false] {
            let work = tempfile::tempdir().unwrap();
            let src = work.path().join("src");
            std::fs::create_dir(&src).unwrap();
            std::fs::write(src.join("a"), b"small\n").unwrap();
            std::fs::write(src.join("big"), pattern(8 << 20, 7)).unwrap();
            let full = Tmpfs::mount(Some("1m"))
                .expect("mounting a tmpfs (as root) is needed for this test");
            let dest = full.0.path().join("d");
            std::fs::create_dir(&dest).unwrap();
            let out = if stock {
                roles::stock_reference(
                    role.pulls() || role == Role::Local,
                    &["-a"],
                    &src,
                    &dest,
                    work.path(),
                )
            } else {
                role.run(&["-a"], &src, &dest, work.path())
            };
            let err =
                String::from_utf8_lossy(&out.stderr).replace(&dest.display().to_string(), "DEST");
            let mut names: Vec<String> = std::fs::read_dir(&dest)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            assert_eq!(out.status.code(), Some(11), "{role:?} stock={stock}: {err}");
            // Nothing half-written is left: no temp file, no short `big`.
            assert_eq!(names, ["a"], "{role:?} stock={stock}");
            seen.push(err);
        }
        // (The reference runs through a shell; a daemon names the file in its module, as
        // stock's daemon does: `"big" (in mod)`.)
        let ours_named = if role == Role::StockPushesOurDaemon {
            "\"big\" (in mod)"
        } else {
            "\"DEST/big\""
        };
        let closing =
            "rsync error: error in file IO (code 11) at receiver.c(657) [receiver=3.5.0]\n";
        let failed = |named: &str| {
            format!("rsync: [receiver] write failed on {named}: No space left on device (28)\n")
        };
        assert!(
            seen[0].contains(&failed("\"DEST/big\"")),
            "stock {role:?}: {}",
            seen[0]
        );
        assert!(seen[0].contains(closing), "stock {role:?}: {}", seen[0]);
        // (Our daemon reads what the client still sends until it goes: the client reads
        // the error instead of a connection reset.)
        assert!(
            seen[1].contains(&failed(ours_named)),
            "ours {role:?}: {}",
            seen[1]
        );
        assert!(seen[1].contains(closing), "ours {role:?}: {}", seen[1]);
    }
}

/// Opens directory `name` beneath `dir`, made first when `create` (a path too long to name
/// whole is walked this way); `None` when it is not there.
fn try_open_in(dir: &std::fs::File, name: &str, create: bool) -> Option<std::fs::File> {
    use std::os::fd::AsRawFd;
    let c = std::ffi::CString::new(name).unwrap();
    if create {
        // SAFETY: a valid directory descriptor and NUL-terminated name.
        assert_eq!(
            unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o755) },
            0
        );
    }
    // SAFETY: as above.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY,
        )
    };
    // SAFETY: a descriptor just opened.
    (fd >= 0).then(|| unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

/// [`try_open_in`] that must succeed.
fn open_in(dir: &std::fs::File, name: &str, create: bool) -> std::fs::File {
    try_open_in(dir, name, create)
        .unwrap_or_else(|| panic!("{name}: {}", std::io::Error::last_os_error()))
}

/// The deepest directory of [`deep_tree`] beneath `root`, open.
fn deepest(root: &Path, create: bool) -> std::fs::File {
    let mut at = std::fs::File::open(root).unwrap();
    for _ in 0..20 {
        at = open_in(&at, &"E".repeat(200), create);
    }
    at
}

#[test]
fn paths_longer_than_path_max_are_sent_and_received_in_every_role() {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    // Names of 4094 bytes (20 directories of 200 and a file of 74): within what the list
    // carries, past PATH_MAX once a destination is put in front.
    let file = "F".repeat(74);
    for role in [
        Role::Local,
        Role::OursPullStockShell,
        Role::OursPushStockShell,
        Role::StockPullsOurShell,
        Role::StockPushesOurShell,
        Role::OursPullStockDaemon,
        Role::StockPushesOurDaemon,
    ] {
        let work = tempfile::tempdir().unwrap();
        let (src, dst) = (work.path().join("src"), work.path().join("dst"));
        std::fs::create_dir(&src).unwrap();
        std::fs::create_dir(&dst).unwrap();
        let bottom = deepest(&src, true);
        // SAFETY: a directory descriptor, a NUL-terminated name, flags and mode.
        let fd = unsafe {
            libc::openat(
                bottom.as_raw_fd(),
                std::ffi::CString::new(file.clone()).unwrap().as_ptr(),
                libc::O_WRONLY | libc::O_CREAT,
                0o644,
            )
        };
        assert!(fd >= 0);
        // SAFETY: a descriptor just opened.
        let mut f: std::fs::File = unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) };
        std::io::Write::write_all(&mut f, b"deep contents\n").unwrap();
        drop(f);
        let out = role.run(&["-a"], &src, &dst, work.path());
        assert_eq!(roles::code(&out), 0, "{role:?}: {out:?}");
        let got = deepest(&dst, false);
        // SAFETY: as above.
        let fd = unsafe {
            libc::openat(
                got.as_raw_fd(),
                std::ffi::CString::new(file.clone()).unwrap().as_ptr(),
                libc::O_RDONLY,
            )
        };
        assert!(fd >= 0, "{role:?}: the deep file was not received");
        // SAFETY: a descriptor just opened.
        let mut f: std::fs::File = unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) };
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        assert_eq!(data, b"deep contents\n", "{role:?}");
    }
}

#[test]
fn a_receiver_stopped_by_max_delete_warns_and_exits_as_stock_in_every_pairing() {
    // Our receiving server kept the warning on its stderr (lost through a daemon) and
    // exited 0 where stock's exits 25.
    let prepare_extra = |base: &Path| {
        prepare(base);
        std::fs::write(base.join("dst/extra1"), b"x").unwrap();
        std::fs::write(base.join("dst/extra2"), b"x").unwrap();
        past_times(base);
    };
    for opts in [
        &["-ai", "--max-delete=0", "--delete"][..],
        &["-a", "--max-delete=1", "--delete-after"],
    ] {
        matrix::every_pairing(&prepare_extra, Case::new(opts, &[""]).no_dir_times());
    }
}

#[test]
fn hard_links_whose_link_dest_twin_is_the_leader_are_quiet_like_stock() {
    // `-aH --link-dest=PREV` (a backup rotation): a group's members found in the basis as
    // the very inode the leader was linked from are unchanged items, not `hf+++` lines.
    let prepare_links = |base: &Path| {
        let src = base.join("src");
        std::fs::create_dir_all(src.join("c4/a3")).unwrap();
        std::fs::create_dir_all(base.join("dst")).unwrap();
        std::fs::write(src.join("c4/a3/sub8"), b"data\n").unwrap();
        std::fs::hard_link(src.join("c4/a3/sub8"), src.join("c4/f.txt9")).unwrap();
        std::fs::write(src.join("c4/other"), b"other\n").unwrap();
        past_times(base);
    };
    matrix::every_pairing(
        &prepare_links,
        Case::new(&["-ai", "--hard-links", "--link-dest=../src"], &[""]).no_dir_times(),
    );
}
