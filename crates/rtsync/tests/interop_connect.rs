//! Our client reaching a daemon, compared with stock's client doing the same against the same
//! stock daemon: what `-vv`/`-vvv` report about the connection (`opening tcp connection`,
//! `Connected to`, `sending daemon args:`, `RSYNC_CONNECT_PROG`'s lines, the remote shell's
//! command line), for pulls, pushes (`rsync://` and `host::`) and module listings.

mod interop_util;

use interop_util::*;
use std::path::Path;
use std::process::{Command, Output};

/// Stdout, stderr and exit code, with the closing byte counts and the speedup (which depend
/// on the byte counts) taken out.
fn shown(out: &Output) -> (String, String, Option<i32>) {
    let stdout = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("sent "))
        .map(|l| match l.split_once("  speedup is ") {
            Some((head, _)) => head.to_string(),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    (
        stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

fn small_tree(root: &Path) {
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("a.txt"), b"alpha\n").unwrap();
    std::fs::write(root.join("sub/b.bin"), pattern(5000, 3)).unwrap();
    for (i, p) in ["a.txt", "sub/b.bin", "sub", ""].iter().enumerate() {
        set_mtime(&root.join(p), 1_600_000_000 - i as i64 * 100, 0);
    }
}

/// Runs `args` with stock's client and with ours, each after `reset` (which clears what the
/// previous run wrote), and compares what they print.
fn compare(label: &str, args: &[&str], envs: &[(&str, &str)], reset: &dyn Fn()) {
    let run = |ours: bool| {
        reset();
        let mut cmd = if ours {
            let mut c = Command::new(env!("CARGO_BIN_EXE_rtsync"));
            c.arg("rsync");
            c
        } else {
            Command::new(stock_rsync())
        };
        cmd.args(args).env_remove("RSYNC_CONNECT_PROG");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let want = shown(&run(false));
    let got = shown(&run(true));
    assert_eq!(got, want, "{label}: {args:?}");
    assert!(
        want.0.contains("daemon args:") || want.0.contains("connection using:"),
        "{label}: the case should show the connection: {want:?}"
    );
}

#[test]
fn connection_steps_at_vv_and_vvv_match_stock() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let up = work.path().join("up");
    let dst = work.path().join("dst");
    small_tree(&src);
    std::fs::create_dir(&up).unwrap();
    let d = StockDaemon::start(&[
        Module {
            name: "m",
            path: &src,
            extra: "",
        },
        Module {
            name: "up",
            path: &up,
            extra: "",
        },
    ]);
    let reset = || {
        let _ = std::fs::remove_dir_all(&dst);
        let _ = std::fs::remove_dir_all(&up);
        std::fs::create_dir(&up).unwrap();
    };
    let port = d.port.to_string();
    let port_opt = format!("--port={port}");
    let src_slash = format!("{}/", src.display());
    let dst_s = dst.display().to_string();
    let conf = d.dir.path().join("rsyncd.conf");
    let prog = format!(
        "{} --daemon --config={}",
        stock_rsync().display(),
        conf.display()
    );
    let ssh = fake_ssh(work.path());
    let ssh_s = ssh.display().to_string();
    let daemon_path = format!("{} --config={}", stock_rsync().display(), conf.display());
    /// A label, the arguments, the environment.
    type Case<'a> = (&'a str, Vec<String>, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        (
            "pull",
            vec!["-avv".into(), d.url("m/"), dst_s.clone()],
            vec![],
        ),
        (
            "pull --debug=connect2",
            vec![
                "-rvv".into(),
                "--debug=connect2".into(),
                d.url("m/sub"),
                dst_s.clone(),
            ],
            vec![],
        ),
        (
            "push",
            vec!["-avv".into(), src_slash.clone(), d.url("up/new/")],
            vec![],
        ),
        (
            "host:: push",
            vec![
                "-avv".into(),
                src_slash.clone(),
                "127.0.0.1::up/".into(),
                port_opt.clone(),
            ],
            vec![],
        ),
        ("module list", vec!["-vvv".into(), d.url("")], vec![]),
        ("module list -vv", vec!["-vv".into(), d.url("")], vec![]),
        ("listing", vec!["-vv".into(), d.url("m/")], vec![]),
        (
            "host:: listing",
            vec!["-vv".into(), "127.0.0.1::m/sub/".into(), port_opt.clone()],
            vec![],
        ),
        (
            "connect prog pull",
            vec!["-avv".into(), "rsync://somehost/m/".into(), dst_s.clone()],
            vec![("RSYNC_CONNECT_PROG", prog.as_str())],
        ),
        (
            "connect prog push",
            vec![
                "-rvv".into(),
                "--debug=connect2".into(),
                src_slash.clone(),
                "somehost::up/".into(),
            ],
            vec![("RSYNC_CONNECT_PROG", prog.as_str())],
        ),
        (
            "daemon over a remote shell",
            vec![
                "-avv".into(),
                "-e".into(),
                ssh_s.clone(),
                format!("--rsync-path={daemon_path}"),
                "localhost::m/".into(),
                dst_s.clone(),
            ],
            vec![],
        ),
    ];
    for (label, args, envs) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        compare(label, &args, envs, &reset);
    }
}

/// A listing that cannot reach its daemon names the receiving side in its messages, as
/// stock's client does.
#[test]
fn listing_connect_failure_matches_stock() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // (Nothing listens there once the probe is dropped.)
    for args in [
        vec![format!("rsync://127.0.0.1:{port}/")],
        vec!["-vv".into(), format!("rsync://127.0.0.1:{port}/m/")],
    ] {
        let run = |ours: bool| {
            let mut cmd = if ours {
                let mut c = Command::new(env!("CARGO_BIN_EXE_rtsync"));
                c.arg("rsync");
                c
            } else {
                Command::new(stock_rsync())
            };
            cmd.args(&args).env_remove("RSYNC_CONNECT_PROG");
            shown(&cmd.output().unwrap())
        };
        let want = run(false);
        assert_ne!(want.2, Some(0), "{want:?}");
        assert_eq!(run(true), want, "{args:?}");
    }
}
