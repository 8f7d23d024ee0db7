//! rsyncd.conf module settings that change a transfer, against stock's daemon with the
//! same stock client commands: `ignore nonreadable` (a sending module leaves out what its
//! user may not read), `ignore errors` (a receiving module deletes despite the client's
//! I/O errors) and `temp dir` (found beneath the module, as stock 3.5.0 finds even an
//! absolute one). Trees, output and exit codes must match.

mod daemon_util;
mod interop_util;

use daemon_util::{Daemon, Kind};
use interop_util::stock_rsync;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const CONF: &str = "\
use chroot = no
pid file = {dir}/pid
[nr]
  path = {dir}/mod
  uid = nobody
  gid = nogroup
  ignore nonreadable = yes
[plain]
  path = {dir}/mod
  read only = no
  uid = root
  gid = root
[ie]
  path = {dir}/mod
  read only = no
  uid = root
  gid = root
  ignore errors = yes
[td]
  path = {dir}/mod
  read only = no
  uid = root
  gid = root
  temp dir = /staging
[tdbad]
  path = {dir}/mod
  read only = no
  uid = root
  gid = root
  temp dir = /nonexistent
";

fn mode(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

/// The module (`d`: what `nr` serves; `up-*`: destinations to push into, with what a
/// deleting push removes) and a source with a directory its reader may not open.
fn prepare(dir: &Path) {
    for d in [
        "mod/d/locked",
        "mod/d/open",
        "mod/staging",
        "src/ok",
        "src/locked",
    ] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    for (p, text) in [
        ("mod/d/secret", "s\n"),
        ("mod/d/fine", "ok\n"),
        ("mod/d/locked/x", "in\n"),
        ("mod/d/open/y", "o\n"),
        ("src/ok/a", "a\n"),
        ("src/locked/b", "b\n"),
    ] {
        std::fs::write(dir.join(p), text).unwrap();
    }
    for up in ["mod/up-plain/stale", "mod/up-ie/stale"] {
        std::fs::create_dir_all(dir.join(up)).unwrap();
        std::fs::write(dir.join(up).join("z"), "z\n").unwrap();
    }
    std::os::unix::fs::symlink("secret", dir.join("mod/d/lnk")).unwrap();
    mode(&dir.join("mod/d/secret"), 0o600);
    mode(&dir.join("mod/d/locked"), 0o700);
    mode(&dir.join("src/locked"), 0o700);
    for d in ["", "mod", "src", "src/ok"] {
        mode(&dir.join(d), 0o755);
    }
}

/// Every entry under `root`, sorted.
fn listing(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Runs the scenario against a daemon of `kind`: what each client run printed and
/// returned, and what the trees hold after.
fn scenario(kind: Kind, dir: &Path) -> Vec<String> {
    prepare(dir);
    let d = Daemon::start(kind, dir, CONF);
    let port = d.port;
    let s = |p: &Path| p.display().to_string();
    let src = format!("{}/", s(&dir.join("src")));
    let ok = format!("{}/", s(&dir.join("src/ok")));
    let runs: Vec<(bool, Vec<String>)> = vec![
        (
            false,
            vec![
                "-a".into(),
                d.url("nr/d/"),
                format!("{}/", s(&dir.join("p"))),
            ],
        ),
        // As nobody, the client cannot open `src/locked`: an I/O error, so the daemon
        // deletes nothing unless its module ignores errors.
        (
            true,
            vec![
                "-r".into(),
                "--delete-after".into(),
                src.clone(),
                d.url("plain/up-plain/"),
            ],
        ),
        (
            true,
            vec![
                "-r".into(),
                "--delete-after".into(),
                src,
                d.url("ie/up-ie/"),
            ],
        ),
        (false, vec!["-r".into(), ok.clone(), d.url("td/up-td/")]),
        (false, vec!["-r".into(), ok, d.url("tdbad/up-tdbad/")]),
    ];
    let mut seen = Vec::new();
    for (as_nobody, args) in runs {
        let mut cmd = if as_nobody {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
                .arg(stock_rsync());
            c
        } else {
            Command::new(stock_rsync())
        };
        let out = cmd.args(&args).output().expect("run the stock client");
        seen.push(format!(
            "{args:?} -> {:?}\n{}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    drop(d);
    for tree in ["p", "mod/up-plain", "mod/up-ie", "mod/up-td", "mod/staging"] {
        seen.push(format!("{tree}: {:?}", listing(&dir.join(tree))));
    }
    let d = s(dir);
    seen.into_iter()
        .map(|l| {
            l.replace(&d, "{dir}")
                .replace(&format!("127.0.0.1:{port}"), "127.0.0.1:PORT")
        })
        .collect()
}

#[test]
fn module_settings_act_as_stocks() {
    let base = tempfile::tempdir().unwrap();
    mode(base.path(), 0o755);
    let (stock_dir, ours_dir) = (base.path().join("stock"), base.path().join("ours"));
    for d in [&stock_dir, &ours_dir] {
        std::fs::create_dir_all(d).unwrap();
    }
    let want = scenario(Kind::Stock, &stock_dir);
    let got = scenario(Kind::Rtsync, &ours_dir);
    // What the settings are about, as stock shows it.
    let expect = [
        (5, r#"p: ["fine", "lnk", "open", "open/y"]"#),
        (
            6,
            r#"mod/up-plain: ["locked", "ok", "ok/a", "stale", "stale/z"]"#,
        ),
        (7, r#"mod/up-ie: ["locked", "ok", "ok/a"]"#),
        (8, r#"mod/up-td: ["a"]"#),
        (9, r#"mod/staging: []"#),
    ];
    for (i, line) in expect {
        assert_eq!(want[i], line, "{want:#?}");
    }
    assert!(
        want[4].contains("The temp-dir does not exist: {dir}/mod/nonexistent"),
        "{}",
        want[4]
    );
    assert_eq!(want, got);
}

/// A destination directory a daemon cannot make is named within its module, as stock's
/// `full_fname` names it (`mkdir "dst" (in m) failed`), to the client and in the log.
#[test]
fn unmakeable_destinations_are_named_within_the_module() {
    let conf = "\
use chroot = no
pid file = {dir}/pid
log file = {dir}/daemon.log
[m]
  path = {dir}/mod
  read only = no
  uid = nobody
  gid = nogroup
";
    let base = tempfile::tempdir().unwrap();
    mode(base.path(), 0o755);
    let mut seen = Vec::new();
    for kind in [Kind::Stock, Kind::Rtsync] {
        let dir = base.path().join(format!("{kind:?}"));
        std::fs::create_dir_all(dir.join("mod")).unwrap();
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(dir.join("src/f"), "f\n").unwrap();
        let d = Daemon::start(kind, &dir, conf);
        let mut out = Vec::new();
        // (The module's root belongs to root: nobody cannot make `dst` in it.)
        for target in ["m/dst/", "m/a/b/"] {
            let o = Command::new(stock_rsync())
                .args([
                    "-a",
                    &format!("{}/", dir.join("src").display()),
                    &d.url(target),
                ])
                .output()
                .unwrap();
            out.push(format!(
                "{target}: {:?} {}",
                o.status.code(),
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        drop(d);
        let log = std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default();
        out.extend(
            log.lines()
                .filter_map(|l| l.split_once("] ").map(|(_, m)| m.to_string()))
                .filter(|m| m.contains("mkdir")),
        );
        seen.push(out);
    }
    assert!(
        seen[0][0]
            .contains("rsync: [Receiver] mkdir \"dst\" (in m) failed: Permission denied (13)"),
        "{:#?}",
        seen[0]
    );
    assert_eq!(seen[0], seen[1]);
}
