//! A remote-shell server's errors and warnings, as stock's: written to the server's own
//! stderr (which the shell joins to the client's), escaped there (8-bit bytes and control
//! characters as `\#ooo` unless `-8`), not sent over the wire for the client to print;
//! `--stderr=client`/`--no-msgs2stderr` sends them over the wire instead, and the client
//! forwards those options (and `-q`) as stock's does.

mod interop_util;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use interop_util::{fake_ssh, remote_rsync_path, stock_rsync};

/// A source whose unsafe symlinks (one with a UTF-8 name, one with a control character)
/// point nowhere: `--copy-unsafe-links` makes the sender say so.
fn prepare(base: &Path) {
    let src = base.join("src");
    std::fs::create_dir_all(&src).unwrap();
    symlink("../../nowhere", src.join("é8")).unwrap();
    symlink("../../nowhere", src.join("tab\there")).unwrap();
    symlink("../../nowhere", src.join("bell\x07")).unwrap();
    std::fs::write(src.join("file"), b"data\n").unwrap();
}

/// Runs a client (`ours` or stock) pulling (or pushing) through the fake shell to a server
/// (`ours_server` or stock); returns stdout, stderr and the exit code, with the base
/// directory written as BASE.
fn run(ours: bool, ours_server: bool, pull: bool, opts: &[&str]) -> (String, String, Option<i32>) {
    let t = tempfile::tempdir().unwrap();
    prepare(t.path());
    let ssh = fake_ssh(t.path());
    let base = t.path().display().to_string();
    let mut c = if ours {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rtsync"));
        c.arg("rsync");
        c
    } else {
        Command::new(stock_rsync())
    };
    c.args(opts)
        .arg("-e")
        .arg(&ssh)
        .arg(format!("--rsync-path={}", remote_rsync_path(ours_server)));
    if pull {
        c.arg(format!("h:{base}/src/")).arg(format!("{base}/dst/"));
    } else {
        c.arg(format!("{base}/src/")).arg(format!("h:{base}/dst/"));
    }
    let out = c.output().unwrap();
    // (Byte counts aside: stock's exchange after an I/O error differs by a few bytes.)
    let text = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .replace(&base, "BASE")
            .lines()
            .filter(|l| !l.starts_with("sent "))
            // (... and the speedup they make.)
            .map(|l| match l.find("  speedup is ") {
                Some(at) => format!("{}\n", &l[..at]),
                None => format!("{l}\n"),
            })
            .collect::<String>()
    };
    let mut err: Vec<String> = text(&out.stderr).lines().map(String::from).collect();
    err.sort();
    (text(&out.stdout), err.join("\n"), out.status.code())
}

#[test]
fn a_shell_servers_errors_are_escaped_on_its_stderr() {
    for opts in [
        &["-a", "--copy-unsafe-links"][..],
        &["-a", "-8", "--copy-unsafe-links"],
        &["-a", "--stderr=client", "--copy-unsafe-links"],
        &["-a", "--no-msgs2stderr", "--copy-unsafe-links"],
        &["-a", "--stderr=all", "--copy-unsafe-links"],
        &["-av", "--copy-unsafe-links"],
        &["-av", "--stderr=all", "--copy-unsafe-links"],
        &["-aq", "--copy-unsafe-links"],
    ] {
        let want = run(false, false, true, opts);
        assert_eq!(want.2, Some(23), "stock {opts:?}: {want:?}");
        // Each end as ours, against stock at the other.
        for (client, server) in [(false, true), (true, false), (true, true)] {
            let got = run(client, server, true, opts);
            assert_eq!(
                got, want,
                "pull {opts:?}, client ours: {client}, server ours: {server}"
            );
        }
    }
    let stock = run(false, false, true, &["-a", "--copy-unsafe-links"]).1;
    assert!(stock.contains("\\#303\\#2518"), "{stock}");
}

/// A pushing client's `--stderr=bad` is refused before anything starts, as stock's.
#[test]
fn a_bad_stderr_mode_is_a_usage_error() {
    let want = run(false, false, false, &["-a", "--stderr=bad"]);
    let got = run(true, true, false, &["-a", "--stderr=bad"]);
    assert_eq!(got, want);
    assert_eq!(want.2, Some(1));
}
