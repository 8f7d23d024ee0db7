//! Operator-supplied paths against stock rsync 3.5: a symlink at any component of the
//! destination, `--backup-dir`, `--temp-dir`, `--files-from`, `--exclude-from` or a
//! per-directory merge file is followed only when owned by root or the euid; another user's
//! symlink is refused with stock's messages and exit codes; `--insecure-links` follows it.
//! The suite runs as root, so "another user" is uid 65534 given the symlink with lchown.
//!
//! Each case builds the same scene twice in one directory (so the absolute paths in messages
//! are the same), runs stock, snapshots the whole scene, rebuilds it and runs rtsync.

mod local_util;

use local_util::{
    assert_same_tree, line_diff, snapshot, split_streams, stock_rsync, write, NO_TIMES, RTSYNC,
};
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

const ATTACKER: u32 = 65534;

/// A symlink `at -> target` owned by `ATTACKER` (`foreign`) or by us.
fn link(at: &Path, target: &Path, foreign: bool) {
    symlink(target, at).unwrap();
    if foreign {
        std::os::unix::fs::lchown(at, Some(ATTACKER), Some(ATTACKER)).unwrap();
    }
}

/// The scene every case starts from: `src/` with files that differ from `dest/`'s (so they
/// are transferred and backed up), an empty `outside/`, and `plant/` for symlinks.
fn base_scene(w: &Path) {
    for d in ["src/sub", "dest", "outside", "plant"] {
        std::fs::create_dir_all(w.join(d)).unwrap();
    }
    write(&w.join("src/f0"), b"NEW-CONTENT\n");
    write(&w.join("src/sub/f1"), b"NEW-CONTENT\n");
    write(&w.join("dest/f0"), b"OLD\n");
    write(&w.join("outside/victim"), b"f0\n");
}

/// Runs `args` (with `{W}` replaced by the scene's path) through both tools in a scene made by
/// `scene`, comparing output, exit code and the whole scene afterwards.
fn check(scene: impl Fn(&Path), args: &[&str]) {
    check_except(scene, args, &[]);
}

/// [`check`], leaving out of stock's tree the scene paths `stock_only` that stock creates and
/// we deliberately do not.
fn check_except(scene: impl Fn(&Path), args: &[&str], stock_only: &[&str]) {
    let dir = tempfile::Builder::new()
        .prefix("rtsync-oppath-")
        .tempdir()
        .unwrap();
    let w = dir.path();
    let args: Vec<String> = args
        .iter()
        .map(|a| a.replace("{W}", &w.display().to_string()))
        .collect();
    let run = |stock: bool| {
        for e in std::fs::read_dir(w).unwrap() {
            let p = e.unwrap().path();
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                std::fs::remove_dir_all(&p).unwrap();
            } else {
                std::fs::remove_file(&p).unwrap();
            }
        }
        scene(w);
        let mut cmd = if stock {
            Command::new(stock_rsync())
        } else {
            let mut c = Command::new(RTSYNC);
            c.arg("rsync");
            c
        };
        let out = cmd.args(&args).current_dir(w).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            snapshot(w, NO_TIMES),
        )
    };
    let mut stock = run(true);
    for p in stock_only {
        assert!(stock.3.remove(p.as_bytes()).is_some(), "stock made no {p}");
    }
    let ours = run(false);
    let what = format!("rsync {}", args.join(" "));
    assert!(
        split_streams(&stock.1) == split_streams(&ours.1),
        "{what}: stdout differs:\n{}",
        line_diff(&stock.1, &ours.1)
    );
    assert_eq!(stock.2, ours.2, "{what}: stderr differs");
    assert_eq!(stock.0, ours.0, "{what}: exit codes differ");
    assert_same_tree(&what, &stock.3, &ours.3);
}

#[test]
fn destination_through_a_foreign_symlink_is_refused() {
    for foreign in [true, false] {
        let scene = |w: &Path| {
            base_scene(w);
            link(&w.join("plant/dest"), &w.join("outside"), foreign);
        };
        // change_dir#1 (the destination exists), #2 (created), #3 (a file's parent).
        check(scene, &["-a", "src/", "plant/dest/"]);
        // Stock makes the new directory through the symlink before refusing to enter it; we
        // refuse before making it.
        let leak: &[&str] = if foreign { &["outside/new"] } else { &[] };
        check_except(scene, &["-a", "src/", "{W}/plant/dest/new/"], leak);
        check(scene, &["-a", "src/f0", "plant/dest/renamed"]);
        check(scene, &["-a", "--insecure-links", "src/", "plant/dest/"]);
    }
}

#[test]
fn backup_dir_through_a_foreign_symlink_is_refused() {
    for foreign in [true, false] {
        let scene = |w: &Path| {
            base_scene(w);
            // Stock's generator runs ahead of its receiver and has usually made dest/sub when
            // the refused backup ends the transfer; we stop at once. Leave the race out.
            std::fs::remove_dir_all(w.join("src/sub")).unwrap();
            link(&w.join("plant/osl"), &w.join("outside"), foreign);
            link(&w.join("dest/rel"), &w.join("outside"), foreign);
        };
        for bd in [
            "--backup-dir={W}/plant/osl",
            "--backup-dir={W}/plant/osl/sub",
            "--backup-dir=rel/sub",
        ] {
            check(scene, &["-a", "-b", "--info=backup", bd, "src/", "dest/"]);
            // Stock's --inplace backup into a directory inside the destination stats it with
            // the transfer-path rule (no symlink at all): not modelled, left out.
            if !bd.contains("=rel") {
                check(scene, &["-a", "-b", "--inplace", bd, "src/", "dest/"]);
            }
            check(
                scene,
                &["-a", "-b", "--insecure-links", bd, "src/", "dest/"],
            );
        }
    }
}

#[test]
fn inplace_backups_are_copies() {
    check(
        base_scene,
        &["-a", "--inplace", "-b", "--info=backup", "src/", "dest/"],
    );
    check(
        base_scene,
        &[
            "-a",
            "--inplace",
            "-b",
            "--backup-dir=bk",
            "--info=backup",
            "src/",
            "dest/",
        ],
    );
}

#[test]
fn temp_dir_through_a_foreign_symlink_is_refused() {
    for foreign in [true, false] {
        let scene = |w: &Path| {
            base_scene(w);
            link(&w.join("plant/osl"), &w.join("outside"), foreign);
        };
        check(scene, &["-a", "--temp-dir={W}/plant/osl", "src/", "dest/"]);
        check(
            scene,
            &[
                "-a",
                "--insecure-links",
                "--temp-dir={W}/plant/osl",
                "src/",
                "dest/",
            ],
        );
    }
}

#[test]
fn rule_and_list_files_through_a_foreign_symlink_are_refused() {
    for foreign in [true, false] {
        let scene = |w: &Path| {
            base_scene(w);
            link(&w.join("plant/vic"), &w.join("outside/victim"), foreign);
            link(&w.join("plant/opd"), &w.join("outside"), foreign);
            link(
                &w.join("src/sub/.cvsignore"),
                Path::new("../../outside/victim"),
                foreign,
            );
            write(&w.join("outside/victim"), b"f1\n");
        };
        for list in ["plant/vic", "plant/opd/victim"] {
            check(
                scene,
                &["-a", &format!("--files-from={list}"), "src/", "dest/"],
            );
            check(
                scene,
                &["-a", &format!("--exclude-from={list}"), "src/", "dest/"],
            );
            check(
                scene,
                &["-a", &format!("--include-from={list}"), "src/", "dest/"],
            );
            check(
                scene,
                &[
                    "-a",
                    "--insecure-links",
                    &format!("--exclude-from={list}"),
                    "src/",
                    "dest/",
                ],
            );
        }
        check(scene, &["-aC", "src/", "dest/"]);
    }
}

#[test]
fn delay_updates_stage_in_the_partial_dir() {
    for foreign in [true, false] {
        let scene = |w: &Path| {
            base_scene(w);
            link(&w.join("plant/opd"), &w.join("outside"), foreign);
        };
        check(scene, &["-ai", "--delay-updates", "src/", "dest/"]);
        check(
            scene,
            &[
                "-ai",
                "--delay-updates",
                "--partial-dir=pd",
                "src/",
                "dest/",
            ],
        );
        check(
            scene,
            &[
                "-a",
                "--delay-updates",
                "--partial-dir={W}/plant/opd/sub",
                "src/",
                "dest/",
            ],
        );
    }
}

/// A directory inside the destination that is a symlink leading out of it (kept by `-K`, or
/// swapped in during a transfer) is not written through: stock's receiver resolves a file's
/// parent beneath the destination and fails the file ("failed to stat", ELOOP). In-tree
/// relative symlinks are still followed; absolute ones are refused.
#[test]
fn files_are_not_written_through_a_destination_dirlink_leading_out() {
    let scene = |w: &Path| {
        base_scene(w);
        std::fs::create_dir_all(w.join("src/abs")).unwrap();
        std::fs::create_dir_all(w.join("src/in")).unwrap();
        write(&w.join("src/abs/g"), b"G\n");
        write(&w.join("src/in/h"), b"H\n");
        std::fs::create_dir_all(w.join("dest/real")).unwrap();
        symlink("../outside", w.join("dest/sub")).unwrap();
        symlink(w.join("dest/real"), w.join("dest/abs")).unwrap();
        symlink("real", w.join("dest/in")).unwrap();
    };
    check(scene, &["-aK", "src/", "dest/"]);
    check(scene, &["-aK", "--temp-dir={W}/plant", "src/", "dest/"]);
    check(scene, &["-aK", "--dry-run", "src/", "dest/"]);
    check(scene, &["-aK", "--insecure-links", "src/", "dest/"]);
}
