//! The interop matrix: {rtsync client, stock client} × {a daemon, the other side as
//! `--server` through a remote shell} × {push, pull} × seven option sets. Each case runs
//! against a destination that already holds a stale copy (changed, missing and extra
//! entries, so the delta path and deletions are exercised), and is compared with the same
//! operation done entirely by stock rsync 3.x: the resulting trees and the exit codes must
//! be identical. Where rtsync is the client its peer is stock (`rsync --daemon`, stock
//! `rsync --server`); where stock is the client its peer is rtsync (`rtsync daemon`,
//! `rtsync rsync --server` through `--rsync-path`). Auth failures are compared the same
//! way, `@ERROR` lines included.

mod daemon_util;
mod interop_util;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use daemon_util::{Daemon, Kind};
use interop_util::{assert_same_tree, fake_ssh, sample_tree, stale_dest};

/// The option sets of the matrix (each applied to every cell).
const OPTION_SETS: [&[&str]; 7] = [
    &["-a"],
    &["-az"],
    &["-aHz", "--delete"],
    &["-a", "-c"],
    &["-a", "--checksum-choice=md5"],
    &["-az", "--compress-choice=zstd"],
    &["-a", "--protocol=30"],
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Stock,
    Ours,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    Daemon,
    Shell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Push,
    Pull,
}

fn rtsync() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rtsync"))
}

/// A client command line of `side` (stock `rsync` or `rtsync rsync`).
fn client(side: Side) -> Command {
    match side {
        Side::Stock => Command::new(daemon_util::stock_rsync()),
        Side::Ours => {
            let mut c = Command::new(rtsync());
            c.arg("rsync");
            c
        }
    }
}

/// One daemon of each kind serving `root` (read-write, symlinks kept as sent).
struct Daemons {
    stock: Daemon,
    ours: Daemon,
    _dirs: [tempfile::TempDir; 2],
}

fn daemons(root: &Path) -> Daemons {
    let conf = format!(
        "use chroot = no\nmunge symlinks = no\nuid = root\ngid = root\n[m]\npath = {}\nread only = no\n",
        root.display()
    );
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    Daemons {
        stock: Daemon::start(Kind::Stock, a.path(), &conf),
        ours: Daemon::start(Kind::Rtsync, b.path(), &conf),
        _dirs: [a, b],
    }
}

/// Runs one transfer: `client_side` talks to a `peer_side` peer of kind `peer`, moving the
/// tree `src` (beneath `root`) to `dst` (beneath `root`) in direction `way`.
#[allow(clippy::too_many_arguments)]
fn transfer(
    client_side: Side,
    peer_side: Side,
    peer: Peer,
    way: Way,
    opts: &[&str],
    root: &Path,
    src: &str,
    dst: &str,
    ds: &Daemons,
    ssh: &Path,
) -> Output {
    let mut c = client(client_side);
    c.args(opts);
    let remote = |rel: &str| match peer {
        Peer::Daemon => {
            let d = if peer_side == Side::Stock {
                &ds.stock
            } else {
                &ds.ours
            };
            d.url(&format!("m/{rel}/"))
        }
        Peer::Shell => format!("localhost:{}/", root.join(rel).display()),
    };
    if peer == Peer::Shell {
        c.arg("-e").arg(ssh);
        if peer_side == Side::Ours {
            c.arg(format!("--rsync-path={} rsync", rtsync().display()));
        } else {
            c.arg(format!(
                "--rsync-path={}",
                daemon_util::stock_rsync().display()
            ));
        }
    }
    match way {
        Way::Push => c
            .arg(format!("{}/", root.join(src).display()))
            .arg(remote(dst)),
        Way::Pull => c
            .arg(remote(src))
            .arg(format!("{}/", root.join(dst).display())),
    };
    c.output().unwrap()
}

/// Every option set and direction for one client and peer kind, each compared with stock
/// doing the same.
fn row(client_side: Side, peer: Peer) {
    let peer_side = match client_side {
        Side::Ours => Side::Stock,
        Side::Stock => Side::Ours,
    };
    let work = tempfile::tempdir().unwrap();
    let root = work.path();
    let ssh = fake_ssh(root);
    std::fs::create_dir(root.join("src")).unwrap();
    sample_tree(&root.join("src"));
    let ds = daemons(root);
    let mut failures = Vec::new();
    for (n, opts) in OPTION_SETS.iter().enumerate() {
        for way in [Way::Push, Way::Pull] {
            let (case, refd) = (format!("case-{n}-{way:?}"), format!("ref-{n}-{way:?}"));
            for d in [&case, &refd] {
                std::fs::create_dir(root.join(d)).unwrap();
                stale_dest(&root.join(d));
            }
            let reference = transfer(
                Side::Stock,
                Side::Stock,
                peer,
                way,
                opts,
                root,
                "src",
                &refd,
                &ds,
                &ssh,
            );
            let got = transfer(
                client_side,
                peer_side,
                peer,
                way,
                opts,
                root,
                "src",
                &case,
                &ds,
                &ssh,
            );
            let label = format!("{client_side:?} client, {peer_side:?} {peer:?}, {way:?} {opts:?}");
            assert!(
                reference.status.success(),
                "{label}: the stock reference failed: {}",
                String::from_utf8_lossy(&reference.stderr)
            );
            if got.status.code() != reference.status.code() {
                failures.push(format!(
                    "{label}: exit {:?}, stock {:?}\n{}",
                    got.status.code(),
                    reference.status.code(),
                    String::from_utf8_lossy(&got.stderr)
                ));
                continue;
            }
            let same = std::panic::catch_unwind(|| {
                assert_same_tree(&root.join(&case), &root.join(&refd), true)
            });
            if let Err(e) = same {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_else(|| "trees differ".into());
                failures.push(format!("{label}: {msg}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn rtsync_client_with_stock_daemon() {
    row(Side::Ours, Peer::Daemon);
}

#[test]
fn rtsync_client_with_stock_server_over_remote_shell() {
    row(Side::Ours, Peer::Shell);
}

#[test]
fn stock_client_with_rtsync_daemon() {
    row(Side::Stock, Peer::Daemon);
}

#[test]
fn stock_client_with_rtsync_server_over_remote_shell() {
    row(Side::Stock, Peer::Shell);
}

/// Stderr lines that name the failure (the location suffixes differ by build).
fn error_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| match l.find(" at ") {
            Some(i) if l.starts_with("rsync error:") => l[..i].to_string(),
            _ => l.to_string(),
        })
        .collect()
}

#[test]
fn auth_failures_match_stock_in_every_direction() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path();
    std::fs::create_dir(root.join("src")).unwrap();
    sample_tree(&root.join("src"));
    let secrets = root.join("secrets");
    std::fs::write(&secrets, "joe:right\n").unwrap();
    std::fs::set_permissions(
        &secrets,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600),
    )
    .unwrap();
    let conf = format!(
        "use chroot = no\nuid = root\ngid = root\n[m]\npath = {}\nread only = no\nauth users = joe\nsecrets file = {}\n",
        root.display(),
        secrets.display()
    );
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let stock_d = Daemon::start(Kind::Stock, a.path(), &conf);
    let our_d = Daemon::start(Kind::Rtsync, b.path(), &conf);
    let run = |side: Side, d: &Daemon, password: &str, way: Way| {
        let mut c = client(side);
        c.arg("-a").env("RSYNC_PASSWORD", password);
        let joe = |rel: String| d.url(&rel).replace("rsync://", "rsync://joe@");
        match way {
            Way::Pull => c
                .arg(joe("m/src/".into()))
                .arg(root.join(format!("out-{side:?}-{password}"))),
            Way::Push => c
                .arg(format!("{}/", root.join("src").display()))
                .arg(joe(format!("m/in-{side:?}-{password}/"))),
        };
        c.output().unwrap()
    };
    for way in [Way::Push, Way::Pull] {
        // Wrong password: same exit code and @ERROR line from every pairing.
        let reference = run(Side::Stock, &stock_d, "wrong", way);
        assert_eq!(reference.status.code(), Some(5));
        let want = error_lines(&reference);
        assert!(
            want.iter()
                .any(|l| l.starts_with("@ERROR: auth failed on module m")),
            "{want:?}"
        );
        for (side, d) in [(Side::Ours, &stock_d), (Side::Stock, &our_d)] {
            let got = run(side, d, "wrong", way);
            assert_eq!(
                got.status.code(),
                reference.status.code(),
                "{side:?} {way:?}"
            );
            assert_eq!(error_lines(&got), want, "{side:?} {way:?}");
        }
        // The right one goes through everywhere.
        for (side, d) in [
            (Side::Stock, &stock_d),
            (Side::Ours, &stock_d),
            (Side::Stock, &our_d),
        ] {
            let got = run(side, d, "right", way);
            assert!(
                got.status.success(),
                "{side:?} {way:?}: {}",
                String::from_utf8_lossy(&got.stderr)
            );
        }
    }
}
