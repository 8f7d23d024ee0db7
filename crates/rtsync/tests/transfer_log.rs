//! What a server logs of a transfer: a daemon module's `transfer logging` (in its `log
//! format`), and a server run with `--log-file` through a remote shell (`%i %n%L` unless
//! `--log-file-format` says otherwise). The same stock client commands against stock and
//! against us; the logs must say the same: each item, deletion and the closing `sent …
//! received … total size N` line (byte counts aside: how a stream is framed is each
//! side's own business).

mod daemon_util;
mod interop_util;

use daemon_util::{Daemon, Kind};
use interop_util::{fake_ssh, remote_rsync_path, set_mtime, stock_rsync};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

// (The log file named here too: stock's daemon leaves a `--log-file` for syslog in a
// module whose `log file` setting differs.)
const CONF: &str = "\
use chroot = no
pid file = {dir}/pid
log file = {dir}/daemon.log
[plain]
  path = {dir}/plain
  read only = no
  transfer logging = yes
  uid = root
  gid = root
[fmt]
  path = {dir}/fmt
  read only = no
  transfer logging = yes
  log format = [%i] %o %f|%n%L|%l|%m|%u|%B|%U|%G|%P|%C|%M
  uid = root
  gid = root
[quiet]
  path = {dir}/quiet
  read only = no
  uid = root
  gid = root
[jail]
  path = {dir}/jail
  read only = no
  use chroot = yes
  transfer logging = yes
  log format = %o %h %a %m (%u) %f %'l %i %n%L
  auth users = joe
  secrets file = {dir}/secrets
  uid = root
  gid = root
";

/// The source tree (fixed times): files, a directory, a symlink, two hard-linked names.
fn source(src: &Path) {
    std::fs::create_dir_all(src.join("sub")).unwrap();
    for (p, text) in [
        ("a", "alpha\n"),
        ("keep", "unchanged\n"),
        ("sub/b", "beta beta\n"),
        ("h1", "linked\n"),
    ] {
        std::fs::write(src.join(p), text).unwrap();
    }
    std::fs::hard_link(src.join("h1"), src.join("sub/h2")).unwrap();
    std::os::unix::fs::symlink("a", src.join("lnk")).unwrap();
    for (i, p) in ["a", "keep", "sub/b", "h1", "lnk", "sub", ""]
        .iter()
        .enumerate()
    {
        set_mtime(&src.join(p), 1_600_000_000 + i as i64 * 100, 0);
    }
}

/// A module's destination before the push: what `--delete` removes, and `keep` as the
/// source has it.
fn destination(dst: &Path, src: &Path) {
    std::fs::create_dir_all(dst.join("old")).unwrap();
    std::fs::write(dst.join("old/gone"), "x\n").unwrap();
    std::fs::write(dst.join("gone2"), "y\n").unwrap();
    std::fs::copy(src.join("keep"), dst.join("keep")).unwrap();
    set_mtime(&dst.join("keep"), 1_600_000_100, 0);
}

/// Runs the stock client; panics unless it exits 0.
fn client(args: &[String], env: &[(&str, &str)]) {
    let out = Command::new(stock_rsync())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `sent N bytes  received N bytes  total size N` with the byte counts blanked.
fn masked(line: &str) -> String {
    match line.split_once("total size ") {
        Some((head, size)) if head.starts_with("sent ") => {
            format!("sent _ received _ total size {size}")
        }
        _ => line.to_string(),
    }
}

/// A log's lines by the process that wrote them (in the order processes first appear),
/// each group sorted (a stock receiving daemon's generator and receiver write in their own
/// order), timestamps dropped, byte counts blanked; connection bookkeeping left out.
fn sessions(log: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut order: Vec<String> = Vec::new();
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let Some((head, msg)) = line.split_once("] ") else {
            continue;
        };
        let Some((_, pid)) = head.rsplit_once('[') else {
            continue;
        };
        if ["rsyncd version", "connect from", "rsync allowed access"]
            .iter()
            .any(|p| msg.starts_with(p))
        {
            continue;
        }
        if !groups.contains_key(pid) {
            order.push(pid.to_string());
        }
        groups.entry(pid.to_string()).or_default().push(masked(msg));
    }
    order
        .into_iter()
        .map(|pid| {
            let mut lines = groups.remove(&pid).unwrap_or_default();
            lines.sort();
            lines
        })
        .collect()
}

/// Waits until `log` holds `n` closing lines (a daemon may log its last line after the
/// client is gone).
fn wait_for_closings(log: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let got = text.lines().filter(|l| l.contains("] sent ")).count();
        if got >= n || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every module's sessions against one daemon: a deleting push, a pull, a file pushed under
/// a new name, a dry run, and an update of a changed file.
fn daemon_sessions(kind: Kind, dir: &Path) -> Vec<Vec<String>> {
    let src = dir.join("src");
    source(&src);
    let secrets = dir.join("secrets");
    std::fs::write(&secrets, "joe:sesame\n").unwrap();
    std::fs::set_permissions(
        &secrets,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    for m in ["plain", "fmt", "quiet", "jail"] {
        destination(&dir.join(m).join("dst"), &src);
    }
    let d = Daemon::start(kind, dir, CONF);
    let log = dir.join("daemon.log");
    let s = |p: &Path| p.display().to_string();
    let mut closings = 0;
    for m in ["plain", "fmt", "quiet", "jail"] {
        let url = |rest: &str| match m {
            "jail" => format!("rsync://joe@127.0.0.1:{}/{m}/{rest}", d.port),
            _ => d.url(&format!("{m}/{rest}")),
        };
        let env = [("RSYNC_PASSWORD", "sesame")];
        let a = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let runs = [
            a(&["-aH", "--delete", &format!("{}/", s(&src)), &url("dst/")]),
            a(&[
                "-aH",
                &url("dst/"),
                &format!("{}/", s(&dir.join(format!("pulled-{m}")))),
            ]),
            a(&["-a", &s(&src.join("a")), &url("dst/newname")]),
            a(&[
                "-an",
                "--delete",
                &format!("{}/", s(&src)),
                &url("elsewhere/"),
            ]),
        ];
        for args in runs {
            client(&args, &env);
            closings += 1;
            wait_for_closings(&log, closings);
        }
        // An update: `a` grows (a delta against the old one), `keep` stays.
        std::fs::write(src.join("a"), "alpha, longer now\n").unwrap();
        set_mtime(&src.join("a"), 1_600_000_500, 0);
        client(&a(&["-a", &format!("{}/", s(&src)), &url("dst/")]), &env);
        closings += 1;
        wait_for_closings(&log, closings);
        // A pushing client's `-ii` has an itemizing log name unchanged items too.
        client(&a(&["-aii", &format!("{}/", s(&src)), &url("dst/")]), &env);
        closings += 1;
        wait_for_closings(&log, closings);
        std::fs::write(src.join("a"), "alpha\n").unwrap();
        set_mtime(&src.join("a"), 1_600_000_000, 0);
    }
    drop(d);
    // (Stock's listener also logs a `sent 0 bytes …` line when it is killed; ours does not.)
    sessions(&log)
        .into_iter()
        .filter(|g| g[..] != ["sent _ received _ total size 0"])
        .collect()
}

#[test]
fn daemon_transfer_logging_matches_stock() {
    let base = tempfile::tempdir().unwrap();
    let (stock_dir, ours_dir) = (base.path().join("stock"), base.path().join("ours"));
    for d in [&stock_dir, &ours_dir] {
        std::fs::create_dir_all(d).unwrap();
    }
    let want = daemon_sessions(Kind::Stock, &stock_dir);
    let got = daemon_sessions(Kind::Rtsync, &ours_dir);
    // The stock run logs what the test is about (else it would pass on an empty log).
    let all: Vec<&String> = want.iter().flatten().collect();
    for expected in [
        "recv localhost [127.0.0.1] plain () dst/a 6",
        "send localhost [127.0.0.1] plain () dst/sub/b 10",
        "[*deleting  ] del. dst/old/gone|old/gone|0|fmt||rw-r--r--|0|0|",
        "send localhost 127.0.0.1 jail (joe) dst/sub/h2 7 <f+++++++++ sub/h2",
        "[.f         ] recv dst/keep|keep|10|fmt|",
    ] {
        assert!(
            all.iter().any(|l| l.starts_with(expected)),
            "stock did not log {expected:?}: {all:#?}"
        );
    }
    let fix = |sessions: Vec<Vec<String>>, dir: &Path| -> Vec<Vec<String>> {
        let d = dir.display().to_string();
        sessions
            .into_iter()
            .map(|g| g.into_iter().map(|l| l.replace(&d, "{dir}")).collect())
            .collect()
    };
    let (want, got) = (fix(want, &stock_dir), fix(got, &ours_dir));
    assert_eq!(
        want.len(),
        got.len(),
        "sessions: stock {want:#?}\nours {got:#?}"
    );
    for (w, g) in want.iter().zip(&got) {
        assert_eq!(w, g, "a session's log differs from stock's");
    }
}

/// The lines a server given `--log-file` (and `extra`) writes for a deleting push and a
/// pull made through a remote shell by the stock client.
fn shell_sessions(ours: bool, dir: &Path, extra: &str) -> Vec<Vec<String>> {
    let src = dir.join("src");
    source(&src);
    destination(&dir.join("dst"), &src);
    let log = dir.join("server.log");
    let ssh = fake_ssh(dir);
    let rsync_path = format!(
        "{} --log-file={} {extra}",
        remote_rsync_path(ours),
        log.display()
    );
    let s = |p: &Path| p.display().to_string();
    for args in [
        vec![
            "-aH",
            "--delete",
            &format!("{}/", s(&src)),
            &format!("h:{}/", s(&dir.join("dst"))),
        ],
        vec![
            "-aH",
            &format!("h:{}/", s(&src)),
            &format!("{}/", s(&dir.join("pulled"))),
        ],
    ] {
        let mut all: Vec<String> = vec!["-e".into(), s(&ssh), format!("--rsync-path={rsync_path}")];
        all.extend(args.iter().map(|a| a.to_string()));
        client(&all, &[]);
    }
    // (`%f` of a sender outside a daemon is its path without the leading slash.)
    let d = dir.display().to_string();
    let d_rel = d.trim_start_matches('/');
    sessions(&log)
        .into_iter()
        .map(|g| {
            g.into_iter()
                .map(|l| l.replace(&d, "{dir}").replace(d_rel, "{dir}"))
                .collect()
        })
        .collect()
}

#[test]
fn server_log_file_matches_stock() {
    for extra in ["", "--log-file-format=%o:%f:%n%L:%l:%i:%C"] {
        let base = tempfile::tempdir().unwrap();
        let (stock_dir, ours_dir) = (base.path().join("stock"), base.path().join("ours"));
        for d in [&stock_dir, &ours_dir] {
            std::fs::create_dir_all(d).unwrap();
        }
        let want = shell_sessions(false, &stock_dir, extra);
        let got = shell_sessions(true, &ours_dir, extra);
        assert_eq!(want.len(), 2, "stock's log: {want:#?}");
        assert!(
            want.iter().flatten().any(|l| l.contains("sub/b")),
            "stock logged no item: {want:#?}"
        );
        assert_eq!(want, got, "{extra:?}");
    }
}

/// A daemon's sending side logs the errors it tells the client (a file it cannot open),
/// next to what it sent.
#[test]
fn daemon_logs_its_senders_errors_like_stock() {
    use std::os::unix::fs::PermissionsExt;
    let conf = "\
use chroot = no
pid file = {dir}/pid
log file = {dir}/daemon.log
[m]
  path = {dir}/mod
  transfer logging = yes
  uid = nobody
  gid = nogroup
";
    let base = tempfile::tempdir().unwrap();
    let mut logs = Vec::new();
    for kind in [Kind::Stock, Kind::Rtsync] {
        let dir = base.path().join(format!("{kind:?}"));
        std::fs::create_dir_all(dir.join("mod/d")).unwrap();
        std::fs::write(dir.join("mod/d/fine"), "ok\n").unwrap();
        std::fs::write(dir.join("mod/d/secret"), "s\n").unwrap();
        std::fs::set_permissions(dir.join("mod/d/secret"), PermissionsExt::from_mode(0o000))
            .unwrap();
        let d = Daemon::start(kind, &dir, conf);
        let out = Command::new(stock_rsync())
            .args([
                "-a",
                &d.url("m/d/"),
                &format!("{}/", dir.join("pulled").display()),
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(23), "{kind:?}: {out:?}");
        wait_for_closings(&dir.join("daemon.log"), 1);
        drop(d);
        logs.push(
            sessions(&dir.join("daemon.log"))
                .into_iter()
                .filter(|g| g[..] != ["sent _ received _ total size 0"])
                .collect::<Vec<_>>(),
        );
    }
    let want =
        "rsync: [sender] send_files failed to open \"/d/secret\" (in m): Permission denied (13)";
    assert!(
        logs[0].iter().flatten().any(|l| l == want),
        "stock: {:#?}",
        logs[0]
    );
    assert_eq!(logs[0], logs[1]);
}
