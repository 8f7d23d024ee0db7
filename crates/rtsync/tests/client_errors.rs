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
    std::fs::create_dir_all(dir.join("drop")).unwrap();
    std::fs::write(dir.join("mod/file"), b"data\n").unwrap();
    std::fs::write(dir.join("secrets"), b"bob:right\n").unwrap();
    std::fs::set_permissions(
        dir.join("secrets"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let conf = format!(
        "pid file = {d}/pid\nuse chroot = no\n[pub]\n  path = {d}/mod\n\
         [drop]\n  path = {d}/drop\n  read only = no\n  uid = root\n  gid = root\n\
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

/// A remote shell that fails: the remote rsync not found (the shell's 127 is the exit code),
/// a shell that says something and exits before the version exchange (code 12, nothing
/// received), pulling and pushing. Same lines and exit code as stock. (Stock reaps the
/// shell without waiting: when it has not exited yet, stock's code is 12 instead of 127.
/// Ours is the shell's.)
#[test]
fn remote_shell_failures_look_like_stock() {
    let dir = tempfile::tempdir().unwrap();
    let shell = dir.path().join("fake-ssh");
    script::write_script(&shell, "#!/bin/sh\nshift\nexec sh -c \"$*\"\n");
    let quitter = dir.path().join("quitter");
    script::write_script(&quitter, "#!/bin/sh\necho 'no entry' >&2\nexit 1\n");
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/f"), b"f\n").unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    let remote = |n: &str| format!("localhost:{}", p(n));
    for (shell, rsync_path) in [(&shell, "/nonexistent/rsync"), (&quitter, "rsync")] {
        for ends in [[remote("src/"), p("out/")], [p("src/"), remote("out/")]] {
            let mut args = vec![
                "-a".to_string(),
                "-e".into(),
                shell.display().to_string(),
                format!("--rsync-path={rsync_path}"),
            ];
            args.extend(ends);
            let s = run(true, &args, dir.path());
            let o = run(false, &args, dir.path());
            let (mut sl, mut ol) = (stderr_lines(&s), stderr_lines(&o));
            let (s_last, o_last) = (sl.pop(), ol.pop());
            // (Under load stock's pushing client may find the pipe closed before it reads
            // and leave out `connection unexpectedly closed`: a race in stock.)
            let closed = |l: &String| l.starts_with("rsync: connection unexpectedly closed");
            if !sl.iter().any(closed) {
                ol.retain(|l| !closed(l));
            }
            assert_eq!(sl, ol, "{args:?}: stderr");
            let role = if args[4].starts_with("localhost:") {
                "Receiver"
            } else {
                "sender"
            };
            let (code, what) = if rsync_path == "rsync" {
                (12, "error in rsync protocol data stream")
            } else {
                (127, "remote command not found")
            };
            assert_eq!(o.status.code(), Some(code), "{args:?}: {o:?}");
            assert_eq!(
                o_last.unwrap(),
                format!("rsync error: {what} (code {code}) at io.c(285) [{role}=3.5.0]")
            );
            assert!(
                s.status.code() == Some(code) || s.status.code() == Some(12),
                "{args:?}: stock {s:?}"
            );
            // (Stock's own closing line is where its race ended: io.c(285) usually, another
            // place under load; it is only checked to be a closing line of the role.)
            assert!(
                s_last
                    .as_ref()
                    .is_some_and(|l| l.starts_with("rsync error: ")
                        && l.ends_with(&format!("[{role}=3.5.0]"))),
                "{args:?}: stock {s_last:?}"
            );
        }
    }
}

/// A remote shell that cannot be executed: stock's forked child says so and exits 14, and
/// its client finds the connection closed. Which of the two codes stock exits with is a
/// race in stock (whether the child is reaped yet), and so is whether its client gets to
/// add a closing line or which; ours is the child's, 14, and the lines are stock's.
#[test]
fn a_remote_shell_that_cannot_run_is_reported_like_stock() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    let missing = p("no-such-ssh");
    for ends in [
        [format!("localhost:{}", p("src/")), p("out/")],
        [p("src/"), format!("localhost:{}", p("out/"))],
    ] {
        let mut args = vec!["-a".to_string(), "-e".into(), missing.clone()];
        args.extend(ends);
        let s = run(true, &args, dir.path());
        let o = run(false, &args, dir.path());
        let (sl, ol) = (stderr_lines(&s), stderr_lines(&o));
        // (Whether stock's parent gets to say its own closing line is part of the race.)
        // (Nor whether its parent reads the closed pipe as a closed connection or ends on
        // an IPC error first.)
        assert!([3, 4].contains(&sl.len()), "{args:?}: {sl:?}");
        assert_eq!(ol.len(), 4, "{args:?}: {ol:?}");
        assert_eq!(sl[..2], ol[..2], "{args:?}");
        assert!(
            sl[2] == ol[2] || sl[2].starts_with("rsync error: error in IPC code (code 14) at io.c"),
            "{args:?}: {sl:?} against {ol:?}"
        );
        assert!(
            [Some(12), Some(14)].contains(&s.status.code()),
            "{args:?}: stock {s:?}"
        );
        assert_eq!(o.status.code(), Some(14), "{args:?}: {o:?}");
        let role = if args[3].starts_with("localhost:") {
            "Receiver"
        } else {
            "sender"
        };
        assert_eq!(
            ol[3],
            format!("rsync error: error in IPC code (code 14) at io.c(285) [{role}=3.5.0]")
        );
    }
}

/// `--files-from` given wrongly: a remote `-`, a list on another host than the transfer's
/// (pulling and pushing), a remote list for a local copy, no destination or two, and options
/// with no names at all. Same exit code and closing line as stock (and the same lines, but
/// for the help text, which is ours).
#[test]
fn files_from_misuse_is_refused_like_stock() {
    let dir = tempfile::tempdir().unwrap();
    let d = stock_daemon(dir.path());
    std::fs::write(dir.path().join("list"), b"file\n").unwrap();
    let url = format!("rsync://127.0.0.1:{}/pub/", d.port);
    let out = dir.path().join("out/").display().to_string();
    let src = dir.path().join("mod/").display().to_string();
    let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    for args in [
        a(&["-a", "--files-from=:-", &url, &out]),
        a(&["-a", "--files-from=otherhost:list", &url, &out]),
        a(&["-a", "--files-from=otherhost:list", &src, &url]),
        a(&["-a", "--files-from=127.0.0.1::pub/list", &src, &out]),
        a(&["-a", "--files-from=:list", &src, &out]),
    ] {
        same(&args, dir.path());
        assert!(!dir.path().join("out").exists(), "{args:?} transferred");
    }
    for args in [
        a(&["-a", "--files-from=list", &src]),
        a(&["-a", "--files-from=list", &src, &out, &out]),
        a(&["-a"]),
        a(&[]),
    ] {
        let s = run(true, &args, dir.path());
        let o = run(false, &args, dir.path());
        assert_eq!(s.status.code(), o.status.code(), "{args:?}: {o:?}");
        assert_eq!(stderr_lines(&s).last(), stderr_lines(&o).last(), "{args:?}");
        assert!(o.stdout.is_empty(), "{args:?}: the help goes to stderr");
        assert!(!dir.path().join("out").exists(), "{args:?} transferred");
    }
}

/// How a `--files-from` list is read: by the sending side (a local copy, a push) a line ends
/// at `\n` or `\r`, is cut at a NUL, and comments and empty lines are skipped; forwarded to
/// a remote sender (a pull) every `\n`, `\r` and NUL ends a name and comments are names.
/// With `--from0`, only NUL separates. Same trees, lines and exit codes as stock in each
/// case, and a list on the daemon's side (`:LIST`) read there.
#[test]
fn files_from_lists_are_read_as_stock_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = stock_daemon(dir.path());
    let m = dir.path().join("mod");
    for f in ["a/f", "a/b/g", "h", "#c", ";x", "zz", "k\rl"] {
        let p = m.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, f.as_bytes()).unwrap();
    }
    let list: &[u8] = b"#c\na/f\r;x\n\na/b/g\0zz\r\nh\nk\rl\n\0h\0#c\0";
    std::fs::write(dir.path().join("list"), list).unwrap();
    std::fs::write(m.join("list"), list).unwrap();
    let url = format!("rsync://127.0.0.1:{}/pub/", d.port);
    let src = format!("{}/", m.display());
    let mut case = 0;
    for from0 in [false, true] {
        for (list, from, local_dest) in [
            ("list", src.as_str(), true),
            ("list", url.as_str(), true),
            ("list", src.as_str(), false),
            (":list", url.as_str(), true),
        ] {
            case += 1;
            let mut outs = Vec::new();
            for stock in [true, false] {
                let dest = dir.path().join(format!("out{case}-{stock}"));
                let push_url = format!("rsync://127.0.0.1:{}/drop/out{case}-{stock}/", d.port);
                let mut args = vec!["-ai".to_string(), format!("--files-from={list}")];
                if from0 {
                    args.push("--from0".into());
                }
                args.push(from.to_string());
                if local_dest {
                    args.push(format!("{}/", dest.display()));
                } else {
                    args.push(push_url);
                }
                let o = run(stock, &args, dir.path());
                let tree = if local_dest {
                    dest
                } else {
                    dir.path().join(format!("drop/out{case}-{stock}"))
                };
                outs.push((args, o, tree));
            }
            let ((args, s, stree), (_, o, otree)) = (&outs[0], &outs[1]);
            assert_eq!(s.status.code(), o.status.code(), "{args:?}: {o:?}");
            assert_eq!(stderr_lines(s), stderr_lines(o), "{args:?}: stderr");
            let text = |o: &Output, stock: bool| {
                String::from_utf8_lossy(&o.stdout).replace(&format!("out{case}-{stock}"), "OUT")
            };
            assert_eq!(text(s, true), text(o, false), "{args:?}: stdout");
            let names = |t: &Path| {
                let mut v: Vec<String> = walk(t);
                v.sort();
                v
            };
            assert_eq!(names(stree), names(otree), "{args:?}: trees");
            assert!(!names(otree).is_empty(), "{args:?}: nothing copied");
        }
    }
}

/// Every path below `root`, relative to it.
fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if p.is_dir() && !p.is_symlink() {
                stack.push(p);
            }
        }
    }
    out
}

/// A daemon that dies mid-transfer (its session process killed while a file is on its way):
/// pulling, stock's receiver and generator each say the connection closed, with their byte
/// counts (masked here: they depend on buffering), exit code 12; pushing, the sender's read
/// finds the end (12) or a reset (10).
#[test]
fn a_daemon_dying_mid_transfer_is_reported_like_stock() {
    for push in [false, true] {
        daemon_dies_mid_transfer(push);
    }
}

fn daemon_dies_mid_transfer(push: bool) {
    let dir = tempfile::tempdir().unwrap();
    let d = stock_daemon(dir.path());
    let data: Vec<u8> = (0..4_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.path().join("mod/big"), data).unwrap();
    let mask = |o: &Output| {
        let mut v: Vec<String> = stderr_lines(o)
            .into_iter()
            .map(|l| match (l.find('('), l.find(" bytes received so far")) {
                (Some(a), Some(b)) if a < b => format!("{}(N{}", &l[..a], &l[b..]),
                _ => l,
            })
            .collect();
        v.sort();
        v
    };
    let mut seen = Vec::new();
    for stock in [true, false] {
        let (from, to, out) = if push {
            (
                format!("{}/", dir.path().join("mod").display()),
                format!("rsync://127.0.0.1:{}/drop/out-{stock}/", d.port),
                dir.path().join(format!("drop/out-{stock}")),
            )
        } else {
            let out = dir.path().join(format!("out-{stock}"));
            (
                format!("rsync://127.0.0.1:{}/pub/", d.port),
                format!("{}/", out.display()),
                out,
            )
        };
        let mut cmd = if stock {
            Command::new("rsync")
        } else {
            let mut c = Command::new(RTSYNC);
            c.arg("rsync");
            c
        };
        let child = cmd
            .args(["-a", "--bwlimit=500", &from, &to])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Once the file is on its way, kill the daemon's session process.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let started = std::fs::read_dir(&out).is_ok_and(|rd| {
                rd.flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with(".big."))
            });
            if started {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "stock {stock}: no transfer started"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // (A receiving session has a child of its own: all of them go.)
        let mut pids = Vec::new();
        let mut parents = vec![d.child.id().to_string()];
        while let Some(parent) = parents.pop() {
            let children = Command::new("pgrep")
                .args(["-P", &parent])
                .output()
                .unwrap();
            for pid in String::from_utf8_lossy(&children.stdout).split_whitespace() {
                pids.push(pid.to_string());
                parents.push(pid.to_string());
            }
        }
        assert!(!pids.is_empty(), "no daemon session to kill");
        Command::new("kill")
            .arg("-KILL")
            .args(&pids)
            .status()
            .unwrap();
        let o = child.wait_with_output().unwrap();
        seen.push((o.status.code(), mask(&o)));
    }
    // (Pushing, a reset or the stream's end: whether the killed daemon left data unread,
    // which each run decides for itself. Each run's report must be the one for its code.)
    assert!(
        [Some(12), Some(10)].contains(&seen[0].0),
        "stock, push {push}: {:?}",
        seen[0]
    );
    if push && seen[0].0 != seen[1].0 {
        for (code, lines) in &seen {
            let text = lines.join("\n");
            let fits = match code {
                Some(12) => text.contains("connection unexpectedly closed (N bytes"),
                Some(10) => text.contains("Broken pipe (32)") || text.contains("reset by peer"),
                _ => false,
            };
            assert!(
                fits && text.contains(&format!("(code {})", code.unwrap_or(0))),
                "push: {code:?} {text}"
            );
        }
    } else {
        assert_eq!(seen[1], seen[0], "ours, then stock's, push {push}");
    }
}
