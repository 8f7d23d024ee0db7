//! Output, trees and exit codes of every wire role compared with stock doing the same: our
//! client pushing and pulling (remote shell, stock daemon), and stock clients talking to our
//! `--server` (remote shell) and to `rtsync daemon`. Covers `-n` (requests without sums,
//! echoed by the sender), item lines the sender echoes back to a receiving client, and
//! `--stats` counts.

mod daemon_util;
mod interop_util;

use interop_util::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
enum Role {
    /// `rtsync rsync SRC host:DST` over a remote shell.
    PushSsh,
    /// `rtsync rsync host:SRC DST`.
    PullSsh,
    /// Stock client pushing to `rtsync rsync --server`.
    StockPushSsh,
    /// Stock client pulling from `rtsync rsync --server --sender`.
    StockPullSsh,
    /// `rtsync rsync SRC rsync://stock-daemon/...`.
    PushDaemon,
    /// `rtsync rsync rsync://stock-daemon/... DST`.
    PullDaemon,
    /// Stock client pushing to `rtsync daemon`.
    StockPushDaemon,
    /// Stock client pulling from `rtsync daemon`.
    StockPullDaemon,
}

const ROLES: [Role; 8] = [
    Role::PushSsh,
    Role::PullSsh,
    Role::StockPushSsh,
    Role::StockPullSsh,
    Role::PushDaemon,
    Role::PullDaemon,
    Role::StockPushDaemon,
    Role::StockPullDaemon,
];

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `bin args` in `dir`, killing it after a minute (a hang fails the test).
fn run(bin: &Path, args: &[String], dir: &Path) -> Outcome {
    let mut child = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut timed_out = false;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            timed_out = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let o = child.wait_with_output().unwrap();
    assert!(!timed_out, "{} {args:?} hung", bin.display());
    Outcome {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Our binary as `rsync` (a link named rsync makes it behave as the client).
fn rtsync_as_rsync(dir: &Path) -> PathBuf {
    let link = dir.join("rsync");
    if !link.exists() {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_rtsync"), &link).unwrap();
    }
    link
}

/// Lines whose numbers are sizes on the wire or times; the list header depends on
/// incremental recursion, which is not what these tests compare.
fn normalize(text: &str, root: &Path) -> Vec<String> {
    let root = root.display().to_string();
    text.lines()
        .map(|l| l.replace(&root, "ROOT"))
        .map(|l| {
            let noisy = [
                "sent ",
                "total size is ",
                "Total bytes sent",
                "Total bytes received",
                "File list size",
                "File list generation time",
                "File list transfer time",
                "Literal data",
                "Matched data",
                "Total transferred file size",
            ];
            if noisy.iter().any(|p| l.starts_with(p)) {
                // Each run of digits (with separators) becomes one N.
                let mut out = String::new();
                for c in l.chars() {
                    if c.is_ascii_digit() || c == ',' || c == '.' {
                        if !out.ends_with('N') {
                            out.push('N');
                        }
                    } else {
                        out.push(c);
                    }
                }
                out
            } else if [
                "building file list ... done",
                "receiving file list ... done",
                "sending incremental file list",
                "receiving incremental file list",
            ]
            .contains(&l.as_str())
            {
                "LIST HEADER".into()
            } else {
                l
            }
        })
        .collect()
}

/// Source and a stale destination beneath `root`: changed, missing and extra files, a
/// perms-only change, a missing directory with content, a changed directory time.
fn setup(root: &Path) {
    let src = root.join("src");
    let dst = root.join("dst");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&dst).unwrap();
    sample_tree(&src);
    // A hard link into a directory the destination lacks.
    std::fs::hard_link(src.join("h1"), src.join("sub/deeper/h3")).unwrap();
    set_mtime(&src.join("sub/deeper"), 1_599_000_000, 0);
    stale_dest(&dst);
    std::fs::remove_dir_all(dst.join("sub/deeper")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dst.join("small.txt"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    // A symlink that differs (--ignore-existing must leave it alone).
    std::fs::remove_file(dst.join("link")).unwrap();
    std::os::unix::fs::symlink("elsewhere", dst.join("link")).unwrap();
    set_mtime(&dst.join("link"), 1_500_000_000, 0);
    for p in ["sub", ""] {
        set_mtime(&dst.join(p), 1_500_000_000, 0);
    }
}

/// Runs `opts` in `role` with stock on one tree and with rtsync on another; returns both
/// outcomes (stock first) after checking the trees match.
fn compare(role: Role, opts: &[&str]) -> (Outcome, Outcome) {
    compare_with(role, opts, true)
}

/// [`compare`]; with `check_stdout` false only exit codes and trees are compared.
fn compare_with(role: Role, opts: &[&str], check_stdout: bool) -> (Outcome, Outcome) {
    compare_trees(role, opts, check_stdout, true)
}

/// [`compare_with`]; with `dir_times` false directory times are not compared (a backup
/// beside its file changes its directory's time after the transfer set it).
fn compare_trees(
    role: Role,
    opts: &[&str],
    check_stdout: bool,
    dir_times: bool,
) -> (Outcome, Outcome) {
    let work = tempfile::tempdir().unwrap();
    let st = work.path().join("st");
    let rt = work.path().join("rt");
    for r in [&st, &rt] {
        setup(r);
    }
    let ssh = fake_ssh(work.path()).display().to_string();
    let ours = rtsync_as_rsync(work.path());
    let stock = stock_rsync();
    let conf = |root: &Path| {
        let mut c = String::from("use chroot = no\n");
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            c.push_str("uid = root\ngid = root\n");
        }
        c.push_str(&format!(
            "[m]\npath = {}\nread only = false\n",
            root.display()
        ));
        c
    };
    let stock_daemon = StockDaemon::ours_and_stock(&rt, &st);
    let ddir = tempfile::tempdir().unwrap();
    let mut results = Vec::new();
    for (root, is_rt) in [(&st, false), (&rt, true)] {
        let mut args: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
        let src = format!("{}/src/", root.display());
        let dst = format!("{}/dst/", root.display());
        let module = if is_rt { "ours" } else { "stock" };
        let mut client = stock.clone();
        let mut _daemon = None;
        match role {
            Role::PushSsh | Role::PullSsh => {
                if is_rt {
                    client = ours.clone();
                }
                args.extend(["-e".into(), ssh.clone()]);
                if matches!(role, Role::PushSsh) {
                    args.extend([src, format!("localhost:{dst}")]);
                } else {
                    args.extend([format!("localhost:{src}"), dst]);
                }
            }
            Role::StockPushSsh | Role::StockPullSsh => {
                args.extend(["-e".into(), ssh.clone()]);
                if is_rt {
                    args.push(format!(
                        "--rsync-path={} rsync",
                        env!("CARGO_BIN_EXE_rtsync")
                    ));
                }
                if matches!(role, Role::StockPushSsh) {
                    args.extend([src, format!("localhost:{dst}")]);
                } else {
                    args.extend([format!("localhost:{src}"), dst]);
                }
            }
            Role::PushDaemon | Role::PullDaemon => {
                if is_rt {
                    client = ours.clone();
                }
                if matches!(role, Role::PushDaemon) {
                    args.extend([src, stock_daemon.url(&format!("{module}/dst/"))]);
                } else {
                    args.extend([stock_daemon.url(&format!("{module}/src/")), dst]);
                }
            }
            Role::StockPushDaemon | Role::StockPullDaemon => {
                let kind = if is_rt {
                    daemon_util::Kind::Rtsync
                } else {
                    daemon_util::Kind::Stock
                };
                let dir = ddir.path().join(if is_rt { "rt" } else { "st" });
                std::fs::create_dir_all(&dir).unwrap();
                let d = daemon_util::Daemon::start(kind, &dir, &conf(root));
                if matches!(role, Role::StockPushDaemon) {
                    args.extend([src, d.url("m/dst/")]);
                } else {
                    args.extend([d.url("m/src/"), dst]);
                }
                _daemon = Some(d);
            }
        }
        results.push(run(&client, &args, root));
    }
    assert_same_tree(&rt.join("dst"), &st.join("dst"), dir_times);
    // (Directory times in the source change when --remove-source-files empties them.)
    assert_same_tree(&rt.join("src"), &st.join("src"), false);
    let r = results.pop().unwrap();
    let s = results.pop().unwrap();
    let (mut so, mut ro) = (normalize(&s.stdout, &st), normalize(&r.stdout, &rt));
    if !check_stdout {
        so.clear();
        ro.clear();
    }
    assert_eq!(
        (r.code, &ro),
        (s.code, &so),
        "{role:?} {opts:?}: rtsync (left) vs stock (right); stderr: {}",
        r.stderr
    );
    (s, r)
}

#[test]
fn dry_run_matches_stock_in_every_role() {
    for opts in [
        &["-ani"][..],
        &["-ani", "--delete"],
        &["-anv"],
        &["-an", "--stats"],
        &["-ani", "--protocol=30"],
    ] {
        for role in ROLES {
            compare(role, opts);
        }
    }
}

#[test]
fn dry_run_into_a_missing_destination_matches_stock() {
    for role in [Role::PushSsh, Role::StockPushSsh, Role::PullSsh] {
        let work = tempfile::tempdir().unwrap();
        let src = work.path().join("src");
        sample_tree(&src);
        let ssh = fake_ssh(work.path()).display().to_string();
        let ours = rtsync_as_rsync(work.path());
        let mut outs = Vec::new();
        for is_rt in [false, true] {
            let dst = work.path().join(if is_rt { "rt" } else { "st" });
            let mut args: Vec<String> = vec!["-ani".into(), "-e".into(), ssh.clone()];
            let client = match role {
                Role::StockPushSsh => {
                    if is_rt {
                        args.push(format!(
                            "--rsync-path={} rsync",
                            env!("CARGO_BIN_EXE_rtsync")
                        ));
                    }
                    stock_rsync()
                }
                _ if is_rt => ours.clone(),
                _ => stock_rsync(),
            };
            let s = format!("{}/", src.display());
            let d = format!("{}/", dst.display());
            if matches!(role, Role::PullSsh) {
                args.extend([format!("localhost:{s}"), d]);
            } else {
                args.extend([s, format!("localhost:{d}")]);
            }
            let o = run(&client, &args, work.path());
            assert!(!dst.exists(), "{role:?}: -n created {}", dst.display());
            outs.push((o.code, normalize(&o.stdout, &dst), o.stderr));
        }
        assert_eq!(
            (&outs[1].0, &outs[1].1),
            (&outs[0].0, &outs[0].1),
            "{role:?}: {}",
            outs[1].2
        );
    }
}

#[test]
fn item_lines_and_stats_match_stock_in_every_role() {
    for opts in [
        &["-ai", "--delete"][..],
        &["-av"],
        &["-a", "--stats"],
        &["-ai", "--protocol=30"],
        // Nothing recursive: no word of the file list, a directory skipped.
        &["-v"],
    ] {
        for role in ROLES {
            compare(role, opts);
        }
    }
}

#[test]
fn a_stock_client_gets_the_file_list_times_from_our_sender() {
    for role in [Role::StockPullSsh, Role::StockPullDaemon] {
        let (_, r) = compare(role, &["-a", "--stats"]);
        for want in ["File list generation time: ", "File list transfer time: "] {
            assert!(r.stdout.contains(want), "{role:?}: {}", r.stdout);
        }
        assert!(
            !r.stdout.contains("speedup is -") && !r.stdout.contains("sent 0 bytes"),
            "{role:?}: {}",
            r.stdout
        );
    }
}

/// `-vv` (debug del): a deletion pass before or after the transfer names each top
/// directory as stock's generator does (`deleting in NAME`), in every role.
#[test]
fn deletion_passes_name_their_top_directories_as_stock() {
    // (Only the deletion lines are compared, in order: -vv's other lines interleave by
    // timing, for stock too.)
    let deletions = |o: &Outcome| -> Vec<String> {
        o.stdout
            .lines()
            .filter(|l| l.starts_with("deleting"))
            .map(str::to_string)
            .collect()
    };
    for opts in [
        &["-avv", "--delete-after"][..],
        &["-avv", "--delete-before"],
    ] {
        for role in ROLES {
            let (stock, ours) = compare_with(role, opts, false);
            assert_eq!(deletions(&ours), deletions(&stock), "{role:?} {opts:?}");
            // (A daemon's `max verbosity` keeps its receiver's debug lines home.)
            let daemon_receives = matches!(role, Role::PushDaemon | Role::StockPushDaemon);
            assert!(
                daemon_receives
                    || deletions(&stock)
                        .iter()
                        .any(|l| l.starts_with("deleting in ")),
                "{role:?} {opts:?}: {}",
                stock.stdout
            );
        }
    }
}

/// Our client's --stats shows the sender's list generation time as stock's does: its own
/// when it sends, the server's when it receives; a sender counts at least a millisecond.
#[test]
fn our_client_shows_the_senders_file_list_time_as_stock() {
    let generation = |out: &str| -> f64 {
        let line = out
            .lines()
            .find_map(|l| l.strip_prefix("File list generation time: "))
            .unwrap_or_else(|| panic!("no generation time in {out}"));
        line.trim_end_matches(" seconds").parse().unwrap()
    };
    for role in [
        Role::PushSsh,
        Role::PullSsh,
        Role::PushDaemon,
        Role::PullDaemon,
    ] {
        let (s, r) = compare(role, &["-a", "--stats"]);
        assert!(generation(&s.stdout) >= 0.001, "{role:?}: {}", s.stdout);
        assert!(generation(&r.stdout) >= 0.001, "{role:?}: {}", r.stdout);
    }
}

#[test]
fn sender_and_receiver_options_match_stock_in_every_role() {
    for opts in [
        // The sender removes what the receiver reports in place.
        &["-a", "--remove-source-files"][..],
        // Without -l the receiver says it skips symlinks, also without -v.
        &["-rt"],
        // Existing entries of every kind are left alone.
        &["-a", "--ignore-existing"],
        &["-a", "--existing", "-i"],
        // A stock client asks a server for zlib with --old-compress.
        &["-az", "--compress-choice=zlib"],
    ] {
        for role in ROLES {
            compare(role, opts);
        }
    }
}

#[test]
fn dry_run_with_hard_links_into_new_directories_succeeds_like_stock() {
    // Which member of a hard-linked group is sent differs from stock (it sends the last
    // missing one), so only exit codes and trees are compared here.
    for role in ROLES {
        compare_with(role, &["-aHni", "--no-i-r"], false);
    }
}

#[test]
fn backups_are_mentioned_like_stock_in_every_role() {
    // Our receivers (client and server) never said `backed up NAME to BACKUP`, and our
    // client did not pass an explicit `--info=backup` on to a receiving server.
    for opts in [
        &["-ai", "--backup", "--info=backup"][..],
        &["-ai", "--backup", "--delete", "--info=backup"],
        &["-ai", "--backup", "--backup-dir=bk", "--info=backup"],
        &["-ai", "--backup", "--inplace", "--info=backup"],
        &["-avv", "--backup", "--no-i-r"],
    ] {
        for role in ROLES {
            let (s, r) = compare_trees(role, opts, false, false);
            let mentioned = |o: &Outcome| {
                let mut v: Vec<String> = o
                    .stdout
                    .lines()
                    .filter(|l| l.starts_with("backed up "))
                    .map(String::from)
                    .collect();
                v.sort();
                v
            };
            assert_eq!(
                mentioned(&r),
                mentioned(&s),
                "{role:?} {opts:?}: rtsync (left) vs stock (right)"
            );
        }
    }
}
