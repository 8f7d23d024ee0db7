//! `--copy-devices` and `--write-devices` against stock rsync, locally and over a remote shell
//! in both directions with either implementation at either end: the same trees, output and
//! exit codes. (Character devices only: null 1,3 and zero 5 hold nothing to seek over, so
//! a copied device is an empty file, and data written into null goes nowhere.)

mod interop_util;

use interop_util::*;
use std::fs;
use std::path::Path;

fn mknod_char(path: &Path, minor: u32) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid C string.
    let r = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o640, libc::makedev(1, minor)) };
    assert_eq!(r, 0, "mknod {}", path.display());
}

/// A source with two character devices and two files, and a destination where `g` is a
/// device (the null device) in the way of a file.
fn setup(w: &Path) {
    let (src, dest) = (w.join("src"), w.join("dest"));
    let _ = fs::remove_dir_all(&src);
    let _ = fs::remove_dir_all(&dest);
    fs::create_dir_all(&src).unwrap();
    fs::create_dir_all(&dest).unwrap();
    mknod_char(&src.join("null"), 3);
    mknod_char(&src.join("zero"), 5);
    write_file(&src.join("f"), b"hi\n");
    write_file(&src.join("g"), b"hello\n");
    mknod_char(&dest.join("g"), 3);
    for name in ["f", "g", "null", "zero"] {
        set_mtime(&src.join(name), 1_600_000_000, 0);
    }
    set_mtime(&dest.join("g"), 1_500_000_000, 0);
}

/// The destination's snapshot; the times of files made from devices are the time of the
/// run (stock's too), so they are left out.
fn tree(w: &Path, copied: bool) -> std::collections::BTreeMap<String, Node> {
    let mut t = snapshot(&w.join("dest"), false);
    if copied {
        for name in ["null", "zero"] {
            if let Some(n) = t.get_mut(name) {
                assert_eq!(n.kind, "file", "{name} copied as a file");
                n.mtime = None;
            }
        }
    }
    t
}

enum Via {
    Local,
    Push { client: bool, server: bool },
    Pull { client: bool, server: bool },
}

fn run(w: &Path, args: &[&str], via: &Via) -> (String, Option<i32>) {
    let ssh = fake_ssh(w);
    let e = format!("-e{}", ssh.display());
    let (src, dest) = (
        format!("{}/src/", w.display()),
        format!("{}/dest/", w.display()),
    );
    let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let ours = match via {
        Via::Local => {
            a.extend([src, dest]);
            None
        }
        Via::Push { client, server } => {
            a.extend([
                e,
                format!("--rsync-path={}", remote_rsync_path(*server)),
                src,
                format!("h:{dest}"),
            ]);
            Some(*client)
        }
        Via::Pull { client, server } => {
            a.extend([
                e,
                format!("--rsync-path={}", remote_rsync_path(*server)),
                format!("h:{src}"),
                dest,
            ]);
            Some(*client)
        }
    };
    let argv: Vec<&str> = a.iter().map(String::as_str).collect();
    run_local(ours.unwrap_or(false), w, &argv)
}

/// Our side in each place: a local copy, our client pushing and pulling (stock's server),
/// stock's client pushing to and pulling from our server.
fn ours_at_either_end() -> [(&'static str, Via); 5] {
    [
        ("local", Via::Local),
        (
            "push",
            Via::Push {
                client: true,
                server: false,
            },
        ),
        (
            "pull",
            Via::Pull {
                client: true,
                server: false,
            },
        ),
        (
            "push to our server",
            Via::Push {
                client: false,
                server: true,
            },
        ),
        (
            "pull from our server",
            Via::Pull {
                client: false,
                server: true,
            },
        ),
    ]
}

/// The same transfer with stock at both ends.
fn stock_twin(via: &Via) -> Via {
    match via {
        Via::Local => Via::Local,
        Via::Push { .. } => Via::Push {
            client: false,
            server: false,
        },
        Via::Pull { .. } => Via::Pull {
            client: false,
            server: false,
        },
    }
}

/// [`run`] with our binary wherever the choice is left to it: a local copy is ours.
fn run_ours(w: &Path, args: &[&str], via: &Via) -> (String, Option<i32>) {
    if let Via::Local = via {
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        a.extend([
            format!("{}/src/", w.display()),
            format!("{}/dest/", w.display()),
        ]);
        let argv: Vec<&str> = a.iter().map(String::as_str).collect();
        run_local(true, w, &argv)
    } else {
        run(w, args, via)
    }
}

fn compare(args: &[&str], copied: bool) {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let pairs = [(false, false), (true, true), (true, false), (false, true)];
    let mut vias: Vec<(String, Via, Via)> = Vec::new();
    vias.push(("local".into(), Via::Local, Via::Local));
    for (client, server) in pairs.iter().skip(1) {
        vias.push((
            format!("push client ours={client} server ours={server}"),
            Via::Push {
                client: false,
                server: false,
            },
            Via::Push {
                client: *client,
                server: *server,
            },
        ));
        vias.push((
            format!("pull client ours={client} server ours={server}"),
            Via::Pull {
                client: false,
                server: false,
            },
            Via::Pull {
                client: *client,
                server: *server,
            },
        ));
    }
    for (what, stock_via, our_via) in vias {
        setup(w);
        let stock = run(w, args, &stock_via);
        let want = tree(w, copied);
        setup(w);
        let ours = run_ours(w, args, &our_via);
        let got = tree(w, copied);
        assert_eq!(stock.1, Some(0), "{what} {args:?}: {}", stock.0);
        assert_eq!(ours, stock, "{what} {args:?}");
        assert!(
            got == want,
            "{what} {args:?}: trees differ\n{got:?}\n{want:?}"
        );
    }
}

#[test]
fn copy_devices_sends_devices_as_files_like_stock() {
    compare(&["-rtv", "--copy-devices"], true);
    compare(&["-av", "--copy-devices"], true);
}

#[test]
fn write_devices_writes_into_devices_like_stock() {
    compare(&["-av", "--write-devices"], false);
    compare(&["-rtv", "--copy-devices", "--write-devices"], true);
}

/// Without `--write-devices`, `--inplace` replaces a device in the way of a file (our
/// receiving server used to write into it).
#[test]
fn inplace_replaces_a_device_like_stock() {
    compare(&["-av", "--inplace"], false);
}

/// `-H` links devices and specials as stock's build does (`hardlink_specials`): a member
/// already a fifo of its own is replaced by the link; locally, and over a remote shell in
/// both directions with either end ours, the same tree (the inode groups included) and
/// item lines.
#[test]
fn hard_linked_devices_and_fifos_are_linked_like_stock() {
    let prepare = |w: &Path| {
        let (src, dest) = (w.join("src"), w.join("dest"));
        let _ = fs::remove_dir_all(&src);
        let _ = fs::remove_dir_all(&dest);
        fs::create_dir_all(&src).unwrap();
        fs::create_dir_all(&dest).unwrap();
        mknod_char(&src.join("c1"), 3);
        fs::hard_link(src.join("c1"), src.join("c2")).unwrap();
        for p in [src.join("p1"), dest.join("p2")] {
            let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
            // SAFETY: mkfifo on a NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        }
        fs::hard_link(src.join("p1"), src.join("p2")).unwrap();
        for name in ["c1", "p1"] {
            set_mtime(&src.join(name), 1_600_000_000, 0);
        }
    };
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let sorted = |s: &str| {
        let mut v: Vec<&str> = s.lines().filter(|l| !l.starts_with("sent ")).collect();
        v.sort_unstable();
        v.join("\n")
    };
    let local = |ours: bool| {
        let a = [
            "-aHi".to_string(),
            format!("{}/src/", w.display()),
            format!("{}/dest/", w.display()),
        ];
        let argv: Vec<&str> = a.iter().map(String::as_str).collect();
        run_local(ours, w, &argv)
    };
    prepare(w);
    let stock = local(false);
    let want = snapshot(&w.join("dest"), false);
    assert!(
        want["c2"].ino_group.is_some() && want["p2"].ino_group.is_some(),
        "{want:?}"
    );
    prepare(w);
    let ours = local(true);
    assert_eq!(
        (sorted(&ours.0), ours.1),
        (sorted(&stock.0), stock.1),
        "local"
    );
    assert_eq!(snapshot(&w.join("dest"), false), want, "local");
    for (client, server) in [(true, false), (false, true), (true, true)] {
        for push in [true, false] {
            let via = |client, server| {
                if push {
                    Via::Push { client, server }
                } else {
                    Via::Pull { client, server }
                }
            };
            prepare(w);
            let stock = run(w, &["-aHi"], &via(false, false));
            prepare(w);
            let ours = run(w, &["-aHi"], &via(client, server));
            let what = format!("push={push} client ours={client} server ours={server}");
            assert_eq!(
                (sorted(&ours.0), ours.1),
                (sorted(&stock.0), stock.1),
                "{what}"
            );
            assert_eq!(snapshot(&w.join("dest"), false), want, "{what}");
        }
    }
}

/// A kind the transfer does not preserve (a symlink without -l, a fifo without -D) is
/// skipped (`skipping non-regular file`) before anything in its way is touched: a non-empty
/// directory of the same name stays, with --delete and --force too, and the run ends with
/// 0. Our receiving side (a pulling client, a server receiving a push) used to delete
/// what was in the way first (`cannot delete non-empty directory`, code 23). Locally and
/// over a remote shell in both directions with either end ours.
#[test]
fn kinds_not_preserved_are_skipped_without_touching_what_is_there() {
    let prepare = |w: &Path| {
        let (src, dest) = (w.join("src"), w.join("dest"));
        let _ = fs::remove_dir_all(&src);
        let _ = fs::remove_dir_all(&dest);
        fs::create_dir_all(&src).unwrap();
        let c = std::ffi::CString::new(src.join("p").to_str().unwrap()).unwrap();
        // SAFETY: mkfifo on a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        std::os::unix::fs::symlink("f", src.join("l")).unwrap();
        write_file(&src.join("f"), b"f\n");
        for name in ["p/in/x", "l/in/y"] {
            fs::create_dir_all(dest.join(name).parent().unwrap()).unwrap();
            write_file(&dest.join(name), b"kept\n");
            set_mtime(&dest.join(name), 1_500_000_000, 0);
        }
        for name in ["f", "p", "l"] {
            set_mtime(&src.join(name), 1_600_000_000, 0);
        }
        for d in [&src, &dest] {
            set_mtime(d, 1_600_000_000, 0);
        }
    };
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let sorted = |s: &str| {
        let mut v: Vec<&str> = s.lines().collect();
        v.sort_unstable();
        v.join("\n")
    };
    let vias = ours_at_either_end();
    for args in [
        &["-rpt", "-i"][..],
        &["-rlpt", "-i", "--delete"],
        &["-a", "--no-D", "-i", "--force"],
        &["-rt", "-v"],
    ] {
        for (what, via) in &vias {
            prepare(w);
            let (want, code) = run(w, args, &stock_twin(via));
            let want_tree = snapshot(&w.join("dest"), false);
            assert_eq!(code, Some(0), "stock {what} {args:?}: {want}");
            assert!(want.contains("skipping non-regular file"), "{want}");
            assert!(w.join("dest/p/in/x").exists(), "stock {what} {args:?}");
            prepare(w);
            let ours = run_ours(w, args, via);
            assert_eq!(ours.1, code, "{what} {args:?}: {}", ours.0);
            assert_eq!(sorted(&ours.0), sorted(&want), "{what} {args:?}");
            let got_tree = snapshot(&w.join("dest"), false);
            assert!(
                got_tree == want_tree,
                "{what} {args:?}: trees differ\n{got_tree:?}\n{want_tree:?}"
            );
        }
    }
}

/// A file where the source has a directory that `--ignore-existing` leaves in place (or that
/// `-n` would replace): below it, stock reports a regular file's stat (`Not a directory`),
/// tries to make a directory, symlink or fifo (and reports that failing, skipping what a
/// failed directory holds), and `--existing` does not skip them (the stat failed otherwise
/// than ENOENT); with `-n`, what a replaced directory would hold is new. Ours said `failed
/// to stat` for every kind, let `--existing` skip them, and under `-n` failed below a file
/// about to be replaced. Locally, and with our side receiving over a remote shell.
#[test]
fn entries_below_a_file_in_a_directorys_place_fail_like_stock() {
    let prepare = |w: &Path| {
        let (src, dest) = (w.join("src"), w.join("dest"));
        let _ = fs::remove_dir_all(&src);
        let _ = fs::remove_dir_all(&dest);
        fs::create_dir_all(src.join("p/sub/deeper")).unwrap();
        fs::create_dir_all(&dest).unwrap();
        write_file(&src.join("p/f"), b"f\n");
        write_file(&src.join("p/sub/g"), b"g\n");
        std::os::unix::fs::symlink("tgt", src.join("p/l")).unwrap();
        let c = std::ffi::CString::new(src.join("p/fifo").to_str().unwrap()).unwrap();
        // SAFETY: mkfifo on a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        write_file(&dest.join("p"), b"a file\n");
        past_times(w);
    };
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let sorted = |s: &str| {
        let mut v: Vec<&str> = s.lines().collect();
        v.sort_unstable();
        v.join("\n")
    };
    for args in [
        &["-a", "-i", "--ignore-existing"][..],
        &["-a", "-i", "--existing", "--ignore-existing"],
        &["-a", "-i", "--ignore-existing", "-n"],
        &["-a", "-i", "--existing", "--ignore-existing", "-n"],
        &["-a", "-i", "-n"],
        &["-a", "-i", "--existing", "-n"],
    ] {
        for (what, our_via) in ours_at_either_end() {
            prepare(w);
            let (want, code) = run(w, args, &stock_twin(&our_via));
            let want_tree = snapshot(&w.join("dest"), false);
            prepare(w);
            let ours = run_ours(w, args, &our_via);
            assert_eq!(
                ours.1, code,
                "{what} {args:?}: {}\n--- stock:\n{want}",
                ours.0
            );
            assert_eq!(sorted(&ours.0), sorted(&want), "{what} {args:?}");
            let got_tree = snapshot(&w.join("dest"), false);
            assert!(got_tree == want_tree, "{what} {args:?}: trees differ");
        }
    }
}
