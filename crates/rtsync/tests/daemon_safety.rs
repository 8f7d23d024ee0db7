//! Daemon safety against stock `rsync --daemon`: the paths a client names (`--backup-dir`,
//! `--partial-dir`, `--temp-dir`, basis dirs) never lead out of the module, whatever symlinks
//! the module holds; `insecure links = yes` restores following them, as stock does. Each case
//! runs the stock client against both daemons with the same rsyncd.conf and compares exit
//! codes and the module afterwards; nothing outside the module may change.

mod daemon_util;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use daemon_util::*;

const OLD_TIME: i64 = 1_600_000_000;

fn lchown(p: &Path, uid: u32) {
    let c = std::ffi::CString::new(p.display().to_string()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::lchown(c.as_ptr(), uid, uid) }, 0, "{p:?}");
}

fn set_old(p: &Path) {
    let f = std::fs::File::options().write(true).open(p).unwrap();
    f.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(OLD_TIME as u64))
        .unwrap();
}

/// A tree snapshot with the scratch directory's name taken out and symlink times dropped
/// (they are made fresh for each daemon).
fn view(root: &Path, dir: &Path) -> Vec<String> {
    snapshot(root)
        .into_iter()
        .map(|l| {
            let l = l.replace(&dir.display().to_string(), "{dir}");
            if l.contains(" link -> ") {
                l.split(" mtime=").next().unwrap().to_string()
            } else {
                l
            }
        })
        .collect()
}

/// The module's symlinks: `blink` (absolute, out of the module), `rlink` (relative, out),
/// `ilink` (into the module's `in/`), and `flink` (into `in/` too, but another user's).
fn plant(dir: &Path) {
    for d in ["mod/in", "outside", "src", "srck/blink"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::write(dir.join("outside/f0"), "SECRET OUTSIDE THE MODULE\n").unwrap();
    set_old(&dir.join("outside/f0"));
    symlink(dir.join("outside"), dir.join("mod/blink")).unwrap();
    symlink("../outside", dir.join("mod/rlink")).unwrap();
    symlink("in", dir.join("mod/ilink")).unwrap();
    symlink("in", dir.join("mod/flink")).unwrap();
    lchown(&dir.join("mod/flink"), 65534);
    std::fs::write(dir.join("src/f0"), "NEW CONTENT FROM THE CLIENT\n").unwrap();
    set_old(&dir.join("src/f0"));
    std::fs::File::options()
        .write(true)
        .open(dir.join("src/f0"))
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + Duration::from_secs(OLD_TIME as u64 + 100))
        .unwrap();
    std::fs::write(dir.join("srck/blink/pwned"), "through the dirlink\n").unwrap();
    set_old(&dir.join("srck/blink/pwned"));
}

struct Run {
    code: Option<i32>,
    module: Vec<String>,
    outside: Vec<String>,
}

/// Runs each push (`DIR:` → the scratch dir, `URL:` → the daemon) against a fresh copy of
/// the planted module of each daemon, with `mod/f0` an old file the push replaces.
fn runs(conf: &str, cases: &[&[&str]]) -> Vec<[Run; 2]> {
    let mut out: Vec<Vec<Run>> = cases.iter().map(|_| Vec::new()).collect();
    for kind in [Kind::Stock, Kind::Rtsync] {
        let dir = tempfile::tempdir().unwrap();
        let d = Daemon::start(kind, dir.path(), conf);
        for (i, args) in cases.iter().enumerate() {
            for sub in ["mod", "outside", "src", "srck"] {
                let _ = std::fs::remove_dir_all(dir.path().join(sub));
            }
            plant(dir.path());
            std::fs::write(dir.path().join("mod/f0"), "OLD\n").unwrap();
            set_old(&dir.path().join("mod/f0"));
            let args: Vec<String> = args
                .iter()
                .map(|a| {
                    a.replace("URL:", &d.url(""))
                        .replace("DIR:", &format!("{}/", dir.path().display()))
                })
                .collect();
            let o = client(&args, &[], Duration::from_secs(60));
            out[i].push(Run {
                code: o.code,
                module: view(&dir.path().join("mod"), dir.path()),
                outside: view(&dir.path().join("outside"), dir.path()),
            });
        }
    }
    out.into_iter()
        .map(|v| {
            let [a, b]: [Run; 2] = v.try_into().ok().unwrap();
            [a, b]
        })
        .collect()
}

const CONF: &str =
    "use chroot = no\nuid = 0\ngid = 0\n[mod]\n  path = {dir}/mod\n  read only = no\n";

#[test]
fn client_named_dirs_stay_inside_the_module_like_stock() {
    let cases: &[&[&str]] = &[
        // Out of the module: refused (stock: keep_backup fails, exit 11).
        &[
            "-a",
            "--backup",
            "--backup-dir=/blink",
            "DIR:src/",
            "URL:mod/",
        ],
        &[
            "-a",
            "--backup",
            "--backup-dir=rlink/sub",
            "DIR:src/",
            "URL:mod/",
        ],
        // Another user's symlink, even one that stays inside.
        &[
            "-a",
            "--backup",
            "--backup-dir=flink",
            "DIR:src/",
            "URL:mod/",
        ],
        // A trusted symlink inside the module is followed.
        &[
            "-a",
            "--backup",
            "--backup-dir=ilink/b",
            "DIR:src/",
            "URL:mod/",
        ],
        &[
            "-a",
            "--backup",
            "--backup-dir=/ilink",
            "DIR:src/",
            "URL:mod/",
        ],
        // The partial file "outside/f0" would be the basis: stock ends with exit 2.
        &["-a", "--partial-dir=/blink", "DIR:src/", "URL:mod/"],
        &["-a", "--partial-dir=/ilink", "DIR:src/", "URL:mod/"],
        &["-a", "--temp-dir=ilink", "DIR:src/", "URL:mod/"],
    ];
    for (args, [stock, ours]) in cases.iter().zip(runs(CONF, cases)) {
        assert_eq!(stock.code, ours.code, "exit code of {args:?}");
        assert!(
            stock.module == ours.module,
            "module after {args:?}: {}",
            diff_lines(&stock.module, &ours.module)
        );
        assert_eq!(stock.outside, ours.outside, "outside after {args:?}");
        assert!(
            ours.outside.len() == 1 && ours.outside[0].starts_with("f0 file len=26 "),
            "{args:?} wrote outside the module: {:?}",
            ours.outside
        );
    }
}

#[test]
fn temp_dir_out_of_the_module_is_refused() {
    // Stock reports the refused temp dir per file (exit 23), we end the session (exit 11):
    // either way the file is not replaced. Stock still leaves its temp file behind through a
    // relative symlink (`rlink`); we write nothing outside the module at all.
    let cases: &[&[&str]] = &[
        &["-a", "--temp-dir=/blink", "DIR:src/", "URL:mod/"],
        &["-a", "--temp-dir=rlink", "DIR:src/", "URL:mod/"],
        &["-a", "--temp-dir=flink", "DIR:src/", "URL:mod/"],
    ];
    for (args, [stock, ours]) in cases.iter().zip(runs(CONF, cases)) {
        assert_ne!(stock.code, Some(0), "stock {args:?}");
        assert_ne!(ours.code, Some(0), "ours {args:?}");
        assert!(
            stock.module == ours.module,
            "module after {args:?}: {}",
            diff_lines(&stock.module, &ours.module)
        );
        assert_eq!(ours.outside.len(), 1, "{args:?}: {:?}", ours.outside);
    }
}

#[test]
fn insecure_links_module_follows_symlinks_like_stock() {
    // `insecure links = yes`: the module's symlinks are followed wherever they lead and
    // whoever owns them, as before rsync 3.4.
    let conf = "use chroot = no\nuid = 0\ngid = 0\n[mod]\n  path = {dir}/mod\n  read only = no\n  \
                insecure links = yes\n";
    let cases: &[&[&str]] = &[
        &[
            "-a",
            "--backup",
            "--backup-dir=/blink",
            "DIR:src/",
            "URL:mod/",
        ],
        &[
            "-a",
            "--backup",
            "--backup-dir=flink",
            "DIR:src/",
            "URL:mod/",
        ],
        &["-rt", "--keep-dirlinks", "DIR:srck/", "URL:mod/"],
    ];
    let results = runs(conf, cases);
    for (args, [stock, ours]) in cases.iter().zip(&results) {
        assert_eq!(stock.code, ours.code, "exit code of {args:?}");
        assert!(
            stock.module == ours.module,
            "module after {args:?}: {}",
            diff_lines(&stock.module, &ours.module)
        );
        assert_eq!(stock.outside, ours.outside, "outside after {args:?}");
    }
    // The backup and the upload went out through the symlink (the opt-out is real).
    assert!(
        results[0][1].outside[0].starts_with("f0 file len=4 "),
        "{:?}",
        results[0][1].outside
    );
    assert!(
        results[2][1]
            .outside
            .iter()
            .any(|l| l.starts_with("pwned ")),
        "{:?}",
        results[2][1].outside
    );
}

#[test]
fn pulls_through_module_symlinks_match_stock() {
    // A pull names its sources through the module's symlinks: one leading out (absolute or
    // relative) is refused, one staying inside is followed; a symlink source is sent as the
    // link it is.
    let cases: &[&str] = &[
        "blink/f0",
        "rlink/f0",
        "ilink/link",
        "blink/",
        "ilink/",
        "in/link",
        "ilink",
        "blink",
    ];
    let mut results: Vec<Vec<(Option<i32>, Vec<String>)>> = Vec::new();
    for kind in [Kind::Stock, Kind::Rtsync] {
        let dir = tempfile::tempdir().unwrap();
        plant(dir.path());
        symlink("inside-target", dir.path().join("mod/in/link")).unwrap();
        symlink("OUTSIDE-TARGET", dir.path().join("outside/link")).unwrap();
        let d = Daemon::start(kind, dir.path(), CONF);
        let mut runs = Vec::new();
        for (i, src) in cases.iter().enumerate() {
            let dest = dir.path().join(format!("dest{i}"));
            std::fs::create_dir(&dest).unwrap();
            let args = vec![
                "-rlt".to_string(),
                d.url(&format!("mod/{src}")),
                format!("{}/", dest.display()),
            ];
            let o = client(&args, &[], Duration::from_secs(60));
            runs.push((o.code, view(&dest, dir.path())));
        }
        results.push(runs);
    }
    for (i, src) in cases.iter().enumerate() {
        assert_eq!(results[0][i], results[1][i], "pull of mod/{src}");
        assert!(
            !results[1][i]
                .1
                .iter()
                .any(|l| l.contains("OUTSIDE") || l.starts_with("f0 ")),
            "pull of mod/{src} read outside the module: {:?}",
            results[1][i].1
        );
    }
}

#[test]
fn backups_in_a_sub_destination_match_stock() {
    // An absolute --backup-dir starts at the module's root (not the destination's); a
    // relative one at the destination. Symlinks the push replaces are backed up too.
    let cases: &[&[&str]] = &[
        &[
            "-a",
            "-b",
            "--backup-dir=/bak/",
            "DIR:srcb/",
            "URL:mod/dest/",
        ],
        &["-a", "-b", "--backup-dir=bak", "DIR:srcb/", "URL:mod/dest/"],
        &[
            "-a",
            "-b",
            "--backup-dir=../../bak2",
            "DIR:srcb/",
            "URL:mod/dest/",
        ],
        &["-a", "-b", "DIR:srcb/", "URL:mod/dest/"],
    ];
    let mut results: Vec<Vec<(Option<i32>, Vec<String>)>> = Vec::new();
    for kind in [Kind::Stock, Kind::Rtsync] {
        let dir = tempfile::tempdir().unwrap();
        let d = Daemon::start(kind, dir.path(), CONF);
        let mut runs = Vec::new();
        for args in cases {
            let _ = std::fs::remove_dir_all(dir.path().join("mod"));
            let _ = std::fs::remove_dir_all(dir.path().join("srcb"));
            let (m, s) = (dir.path().join("mod/dest/sub"), dir.path().join("srcb/sub"));
            std::fs::create_dir_all(&m).unwrap();
            std::fs::create_dir_all(&s).unwrap();
            symlink("new-target", s.join("l")).unwrap();
            symlink("old-target", m.join("l")).unwrap();
            symlink("x", s.join("f2l")).unwrap();
            std::fs::write(m.join("f2l"), "a file replaced by a symlink\n").unwrap();
            std::fs::write(s.join("g"), "new g\n").unwrap();
            std::fs::write(m.join("g"), "old\n").unwrap();
            for f in [s.join("g"), m.join("g"), m.join("f2l")] {
                set_old(&f);
            }
            let args: Vec<String> = args
                .iter()
                .map(|a| {
                    a.replace("URL:", &d.url(""))
                        .replace("DIR:", &format!("{}/", dir.path().display()))
                })
                .collect();
            let o = client(&args, &[], Duration::from_secs(60));
            runs.push((o.code, view(&dir.path().join("mod"), dir.path())));
        }
        results.push(runs);
    }
    for (i, args) in cases.iter().enumerate() {
        assert!(
            results[0][i] == results[1][i],
            "{args:?}: exit {:?} vs {:?}\n{}",
            results[0][i].0,
            results[1][i].0,
            diff_lines(&results[0][i].1, &results[1][i].1)
        );
    }
    assert!(
        results[1][0]
            .1
            .iter()
            .any(|l| l.starts_with("bak/sub/l link -> ")),
        "{:?}",
        results[1][0].1
    );
}

#[test]
fn copy_dest_reads_the_basis_it_checked() {
    // A --copy-dest directory swapped (atomically, over and over) for another user's symlink
    // leading out: a copy reads the basis directory that was checked, never the outside file.
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path();
    for d in ["src", "cdroot/cd", "outside"] {
        std::fs::create_dir_all(b.join(d)).unwrap();
    }
    for i in 0..40 {
        for (d, text) in [
            ("src", "SRC\n"),
            ("cdroot/cd", "BAS\n"),
            ("outside", "SECRET\n"),
        ] {
            let f = b.join(d).join(format!("f{i}"));
            std::fs::write(&f, text).unwrap();
            set_old(&f);
        }
    }
    let link = b.join("cdroot/.cdlink");
    symlink(b.join("outside"), &link).unwrap();
    lchown(&link, 65534);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flipper = flipper(&b.join("cdroot/cd"), &link, stop.clone());
    let mut leaked = None;
    for round in 0..60 {
        let dest = b.join(format!("dest{round}"));
        let _ = std::process::Command::new(rtsync_bin())
            .arg("rsync")
            .arg("-rt")
            .arg(format!("--copy-dest={}", b.join("cdroot/cd").display()))
            .arg(format!("{}/", b.join("src").display()))
            .arg(format!("{}/", dest.display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        for i in 0..40 {
            if std::fs::read_to_string(dest.join(format!("f{i}"))).is_ok_and(|t| t == "SECRET\n") {
                leaked = Some((round, i));
            }
        }
        if leaked.is_some() {
            break;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flipper.join().unwrap();
    assert_eq!(leaked, None, "an outside file was copied in as the basis");
}

/// Swaps `a` and `b` (RENAME_EXCHANGE) over and over until `stop` is set.
fn flipper(
    a: &Path,
    b: &Path,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let a = std::ffi::CString::new(a.display().to_string()).unwrap();
    let b = std::ffi::CString::new(b.display().to_string()).unwrap();
    std::thread::spawn(move || {
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            // SAFETY: two valid paths; RENAME_EXCHANGE swaps them atomically.
            unsafe {
                libc::syscall(
                    libc::SYS_renameat2,
                    libc::AT_FDCWD,
                    a.as_ptr(),
                    libc::AT_FDCWD,
                    b.as_ptr(),
                    libc::RENAME_EXCHANGE,
                )
            };
        }
    })
}

/// Pushes to our daemon (no chroot) with a basis-dir `option` while `flip` (a directory in
/// the module on the way to the basis files) is swapped again and again with a symlink out
/// of the module: no destination file may take the outside file's bytes or inode.
fn module_basis_race(option: &str, flip: &str, basis: &str) {
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path();
    let d = Daemon::start(Kind::Rtsync, b, CONF);
    for sub in ["src/sub", "mod/cd/sub", "outside"] {
        std::fs::create_dir_all(b.join(sub)).unwrap();
    }
    let mut outside_inodes = std::collections::HashSet::new();
    for i in 0..30 {
        for (d, text) in [
            ("src/sub", "SRC\n"),
            ("mod/cd/sub", "BAS\n"),
            ("outside", "SECRET\n"),
        ] {
            let f = b.join(d).join(format!("f{i}"));
            std::fs::write(&f, text).unwrap();
            set_old(&f);
            if d == "outside" {
                use std::os::unix::fs::MetadataExt;
                outside_inodes.insert(std::fs::metadata(&f).unwrap().ino());
            }
        }
    }
    let link = b.join("mod").join(format!("{flip}.flink"));
    symlink(b.join("outside"), &link).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flipper = flipper(&b.join("mod").join(flip), &link, stop.clone());
    let mut leaked = None;
    for round in 0..25 {
        let dest = format!("dest{round}");
        let _ = client(
            &[
                "-rt".to_string(),
                format!("{option}={basis}"),
                format!("{}/src/", b.display()),
                d.url(&format!("mod/{dest}/")),
            ],
            &[],
            Duration::from_secs(60),
        );
        for i in 0..30 {
            let f = b.join("mod").join(&dest).join(format!("sub/f{i}"));
            use std::os::unix::fs::MetadataExt;
            let bad_inode = std::fs::metadata(&f).is_ok_and(|m| outside_inodes.contains(&m.ino()));
            if bad_inode || std::fs::read_to_string(&f).is_ok_and(|t| t == "SECRET\n") {
                leaked = Some((round, i));
            }
        }
        if leaked.is_some() {
            break;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flipper.join().unwrap();
    assert_eq!(
        leaked, None,
        "{option}: an outside file was taken in as the basis"
    );
    assert_eq!(
        std::fs::read_to_string(b.join("outside/f0")).unwrap(),
        "SECRET\n"
    );
}

#[test]
fn module_copy_dest_swapped_for_a_symlink_out_is_never_read() {
    module_basis_race("--copy-dest", "cd", "../cd");
}

#[test]
fn module_copy_dest_subdir_swapped_for_a_symlink_out_is_never_read() {
    module_basis_race("--copy-dest", "cd/sub", "../cd");
}

#[test]
fn module_link_dest_subdir_swapped_for_a_symlink_out_is_never_linked() {
    module_basis_race("--link-dest", "cd/sub", "/cd");
}

#[test]
fn client_named_dirs_the_module_excludes_are_rejected_like_stock() {
    // The module's rules hide `secret/`: a --backup-dir, --temp-dir or absolute
    // --partial-dir naming it (`..` collapsed) rejects the options; others still work.
    let conf = "use chroot = no\nuid = 0\ngid = 0\n[mod]\n  path = {dir}/mod\n  read only = no\n  \
                exclude = secret/\n";
    let cases: &[&[&str]] = &[
        &["-a", "--backup-dir=/secret/", "DIR:src/", "URL:mod/"],
        &["-a", "--backup-dir=in/../secret", "DIR:src/", "URL:mod/"],
        &["-a", "--temp-dir=secret", "DIR:src/", "URL:mod/"],
        &["-a", "--partial-dir=/secret", "DIR:src/", "URL:mod/"],
        &["-a", "--backup-dir=/in/", "DIR:src/", "URL:mod/"],
    ];
    let with_secret = |dir: &Path| {
        std::fs::create_dir_all(dir.join("mod/secret")).unwrap();
        std::fs::write(dir.join("mod/secret/f0"), "hidden\n").unwrap();
        set_old(&dir.join("mod/secret/f0"));
    };
    let mut results: Vec<Vec<(Option<i32>, Vec<String>)>> = Vec::new();
    for kind in [Kind::Stock, Kind::Rtsync] {
        let dir = tempfile::tempdir().unwrap();
        let d = Daemon::start(kind, dir.path(), conf);
        let mut runs = Vec::new();
        for args in cases {
            for sub in ["mod", "outside", "src", "srck"] {
                let _ = std::fs::remove_dir_all(dir.path().join(sub));
            }
            plant(dir.path());
            with_secret(dir.path());
            std::fs::write(dir.path().join("mod/f0"), "OLD\n").unwrap();
            set_old(&dir.path().join("mod/f0"));
            let args: Vec<String> = args
                .iter()
                .map(|a| {
                    a.replace("URL:", &d.url(""))
                        .replace("DIR:", &format!("{}/", dir.path().display()))
                })
                .collect();
            let o = client(&args, &[], Duration::from_secs(60));
            runs.push((o.code, view(&dir.path().join("mod"), dir.path())));
        }
        results.push(runs);
    }
    for (i, args) in cases.iter().enumerate() {
        assert!(
            results[0][i] == results[1][i],
            "{args:?}: exit {:?} vs {:?}\n{}",
            results[0][i].0,
            results[1][i].0,
            diff_lines(&results[0][i].1, &results[1][i].1)
        );
    }
    // Rejected while the options are read (4); the partial dir after the file list (1).
    assert_eq!(results[1][0].0, Some(4));
    assert_eq!(results[1][3].0, Some(1));
}
