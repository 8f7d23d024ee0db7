//! The hand-off to the transfer: the handler runs chrooted (when configured) as the module's
//! uid/gid, with the module root open and the client's arguments parsed. Runs as root.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::Path;

use rtsync_daemon::session::{serve, Conn, DaemonOptions, Mode, Session};

/// What the test handler reports back over the connection.
fn report(mut s: Session) -> i32 {
    // SAFETY: plain id queries.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let readable = rtsync_daemon::beneath::open(s.root.as_fd(), "m.txt", libc::O_RDONLY, 0).is_ok();
    let escapes =
        rtsync_daemon::beneath::open(s.root.as_fd(), "../outside", libc::O_RDONLY, 0).is_ok();
    let line = format!(
        "uid={uid} gid={gid} chrooted={} dir={} readable={readable} escapes={escapes} sender={} paths={:?} proto={} user={}\n",
        s.chrooted,
        s.module_dir.display(),
        s.args.sender,
        s.args.paths,
        s.protocol,
        s.auth_user
    );
    let _ = s.output.write_all(line.as_bytes());
    let _ = s.output.flush();
    0
}

/// Serves one connection in a forked child (chroot and setuid must not touch the test process).
fn serve_once(conf: &Path) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let opts = DaemonOptions {
        config: conf.to_path_buf(),
        log_file: Some(conf.with_file_name("log").display().to_string()),
        ..Default::default()
    };
    // SAFETY: the child only serves one connection and leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let code = match listener.accept() {
            Ok((stream, addr)) => {
                let reader = stream.try_clone().unwrap();
                let conn = Conn {
                    input: Box::new(reader),
                    output: Box::new(stream),
                    socket_fd: None,
                    peer: addr.ip().to_string(),
                };
                serve(conn, &opts, Mode::Socket, &report)
            }
            Err(_) => 1,
        };
        // SAFETY: leaving the forked child.
        unsafe { libc::_exit(code) };
    }
    port
}

fn talk(port: u16, module: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    s.write_all(format!("@RSYNCD: 31.0\n{module}\n").as_bytes())
        .unwrap();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap() == 0
            || line.starts_with("@RSYNCD: OK")
            || line.starts_with("@ERROR")
        {
            break;
        }
    }
    if line.starts_with("@ERROR") {
        return line;
    }
    s.write_all(format!("--server\0--sender\0-r\0.\0{module}/sub\0\0").as_bytes())
        .unwrap();
    let mut rest = String::new();
    r.read_to_string(&mut rest).unwrap();
    rest
}

fn setup(chroot: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("mod");
    std::fs::create_dir(&module).unwrap();
    std::fs::write(module.join("m.txt"), "x").unwrap();
    std::fs::write(dir.path().join("outside"), "secret").unwrap();
    // SAFETY: chown on paths we created.
    unsafe {
        let c = std::ffi::CString::new(module.display().to_string()).unwrap();
        libc::chown(c.as_ptr(), 65534, 65534);
    }
    let conf = dir.path().join("rsyncd.conf");
    std::fs::write(
        &conf,
        format!(
            "[mod]\n  path = {}\n  use chroot = {chroot}\n  uid = nobody\n  gid = 65534\n",
            module.display()
        ),
    )
    .unwrap();
    (dir, conf)
}

#[test]
fn handler_runs_dropped_and_confined() {
    // SAFETY: getuid has no preconditions.
    assert_eq!(
        unsafe { libc::getuid() },
        0,
        "this test needs root, as the daemon tests do"
    );
    for (chroot, dir_is_root) in [("yes", true), ("no", false)] {
        let (dir, conf) = setup(chroot);
        let port = serve_once(&conf);
        let got = talk(port, "mod");
        assert!(got.starts_with("uid=65534 gid=65534 "), "{chroot}: {got}");
        assert!(got.contains(&format!("chrooted={dir_is_root}")), "{got}");
        if dir_is_root {
            assert!(got.contains("dir=/ "), "{got}");
        } else {
            assert!(
                got.contains(&format!("dir={} ", dir.path().join("mod").display())),
                "{got}"
            );
        }
        assert!(got.contains("readable=true escapes=false"), "{got}");
        assert!(
            got.contains("sender=true paths=[\"/sub\"] proto=31 user="),
            "{got}"
        );
    }
}

#[test]
fn chroot_failure_is_reported_like_stock() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("rsyncd.conf");
    std::fs::write(
        &conf,
        "[gone]\n  path = /nonexistent/module\n  use chroot = yes\n",
    )
    .unwrap();
    let port = serve_once(&conf);
    assert_eq!(talk(port, "gone"), "@ERROR: chroot failed\n");
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert!(
        log.contains("chroot(\"/nonexistent/module\") failed"),
        "{log}"
    );
}
