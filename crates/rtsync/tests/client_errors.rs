//! What the `rtsync rsync` client prints and returns when a remote transfer fails, against the
//! stock client in the same situation: the same lines on stdout and stderr, the same exit code.

#[path = "interop_util/script.rs"]
mod script;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const RTSYNC: &str = env!("CARGO_BIN_EXE_rtsync");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A stock `rsync --daemon` on loopback, killed on drop.
struct Daemon {
    child: Child,
    port: u16,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stock_daemon(dir: &Path) -> Daemon {
    std::fs::create_dir_all(dir.join("mod")).unwrap();
    std::fs::write(dir.join("mod/file"), b"data\n").unwrap();
    std::fs::write(dir.join("secrets"), b"bob:right\n").unwrap();
    std::fs::set_permissions(
        dir.join("secrets"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let conf = format!(
        "pid file = {d}/pid\nuse chroot = no\n[pub]\n  path = {d}/mod\n\
         [priv]\n  path = {d}/mod\n  auth users = bob\n  secrets file = {d}/secrets\n",
        d = dir.display()
    );
    std::fs::write(dir.join("rsyncd.conf"), conf).unwrap();
    let port = free_port();
    let child = Command::new("rsync")
        .args(["--daemon", "--no-detach", "--address=127.0.0.1"])
        .arg(format!("--config={}", dir.join("rsyncd.conf").display()))
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("stock rsync is required for these tests (apt-get install rsync)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "stock daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Daemon { child, port }
}

fn run(stock: bool, args: &[String], cwd: &Path) -> Output {
    let mut cmd = if stock {
        Command::new("rsync")
    } else {
        let mut c = Command::new(RTSYNC);
        c.arg("rsync");
        c
    };
    cmd.args(args)
        .current_dir(cwd)
        .env("RSYNC_PASSWORD", "wrong")
        .output()
        .unwrap()
}

/// Stock's own racy line about the daemon closing first is left out (it comes and goes).
fn stderr_lines(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| !l.contains("Connection reset by peer") && !l.contains("Broken pipe"))
        .map(str::to_string)
        .collect()
}

fn same(args: &[String], cwd: &Path) {
    let s = run(true, args, cwd);
    let o = run(false, args, cwd);
    assert_eq!(
        s.status.code(),
        o.status.code(),
        "{args:?}: exit codes\n{s:?}\n{o:?}"
    );
    assert_eq!(stderr_lines(&s), stderr_lines(&o), "{args:?}: stderr");
    assert_eq!(s.stdout, o.stdout, "{args:?}: stdout");
}

#[test]
fn daemon_refusals_and_failures_look_like_stock() {
    let dir = tempfile::tempdir().unwrap();
    let d = stock_daemon(dir.path());
    let url = |p: &str| format!("rsync://127.0.0.1:{}/{p}", d.port);
    let out = dir.path().join("out").display().to_string();
    let unused = free_port();
    for args in [
        vec![url("nomod/"), out.clone()],
        vec![
            format!("rsync://bob@127.0.0.1:{}/priv/", d.port),
            out.clone(),
        ],
        vec![url("pub/nonexistent"), out.clone()],
        vec![format!("rsync://127.0.0.1:{unused}/pub/"), out.clone()],
        vec![
            "mod/file".into(),
            format!("rsync://127.0.0.1:{unused}/pub/"),
        ],
    ] {
        same(&args, dir.path());
    }
}

#[test]
fn pulling_nothing_over_a_remote_shell_is_a_partial_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let shell = dir.path().join("fake-ssh");
    // Stands in for ssh: drops the host name and runs the command here.
    script::write_script(&shell, "#!/bin/sh\nshift\nexec sh -c \"$*\"\n");
    let missing = dir.path().join("missing").display().to_string();
    let args = vec![
        "-e".to_string(),
        shell.display().to_string(),
        format!("localhost:{missing}"),
        dir.path().join("out").display().to_string(),
    ];
    same(&args, dir.path());
}

/// rtsync speaks protocol 30–32: `--protocol=29` is refused before connecting, pushing as
/// pulling (stock's wording for a protocol below its minimum, exit 2), not left to fail in
/// the middle of the stream.
#[test]
fn protocol_below_30_is_refused_up_front_for_pushes_and_pulls() {
    let dir = tempfile::tempdir().unwrap();
    let d = stock_daemon(dir.path());
    let url = format!("rsync://127.0.0.1:{}/pub/", d.port);
    let src = dir.path().join("mod/").display().to_string();
    let out = dir.path().join("out/").display().to_string();
    for args in [
        vec![
            "--protocol=29".into(),
            "-a".into(),
            url.clone(),
            out.clone(),
        ],
        vec![
            "--protocol=29".into(),
            "-a".into(),
            src.clone(),
            url.clone(),
        ],
        vec![
            "--protocol=29".into(),
            "-a".into(),
            "--delete".into(),
            src.clone(),
            "localhost:/nowhere/".into(),
        ],
    ] {
        let o = run(false, &args, dir.path());
        assert_eq!(o.status.code(), Some(2), "{args:?}: {o:?}");
        assert_eq!(
            stderr_lines(&o).first().map(String::as_str),
            Some("rsync: protocol error: --protocol must be at least 30 on the Client."),
            "{args:?}"
        );
    }
    assert!(!dir.path().join("out").exists());
}

/// Remote and local arguments mixed the way stock refuses them: both ends remote, a local
/// source after a remote one, a remote source after a local one. Same lines, exit 1, and
/// nothing is transferred (a remote destination used to be taken for a local path).
#[test]
fn mixed_remote_and_local_arguments_are_refused_like_stock() {
    let dir = tempfile::tempdir().unwrap();
    let shell = dir.path().join("fake-ssh");
    script::write_script(&shell, "#!/bin/sh\nshift\nexec sh -c \"$*\"\n");
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/f"), b"f\n").unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    let remote = |n: &str| format!("localhost:{}", p(n));
    let e = ["-r".to_string(), "-e".into(), shell.display().to_string()];
    for tail in [
        vec![remote("src/"), remote("out/")],
        vec!["--list-only".into(), remote("src/"), remote("out/")],
        vec![remote("src/"), p("src/"), p("out/")],
        vec![p("src/"), remote("src/"), p("out/")],
    ] {
        let args: Vec<String> = e.iter().cloned().chain(tail).collect();
        same(&args, dir.path());
        assert!(!dir.path().join("out").exists(), "{args:?} transferred");
        let stray: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with("localhost"))
            .collect();
        assert!(stray.is_empty(), "{args:?} made {stray:?}");
    }
}
