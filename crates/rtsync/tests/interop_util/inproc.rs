//! In-process rtsync servers for stock clients: a minimal daemon front (greeting, module,
//! arguments) and a remote-shell relay, both handing the connection to
//! `rtsync_wire::server`. Used until the binary's front doors are wired.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};

use rtsync_wire::server::{self, ServerSession};

fn read_line(s: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while s.read(&mut b).unwrap_or(0) == 1 && b[0] != b'\n' {
        line.push(b[0]);
    }
    String::from_utf8_lossy(&line).into_owned()
}

fn read_args(s: &mut TcpStream) -> Vec<String> {
    let mut args = Vec::new();
    let mut cur = Vec::new();
    let mut b = [0u8; 1];
    while s.read(&mut b).unwrap_or(0) == 1 {
        if b[0] == 0 {
            if cur.is_empty() {
                break;
            }
            args.push(String::from_utf8_lossy(&cur).into_owned());
            cur.clear();
        } else {
            cur.push(b[0]);
        }
    }
    args
}

/// A daemon front serving one module `mod` at `root` with our server; handles `conns`
/// connections then stops. Returns the port.
pub fn rtsync_daemon(root: &Path, conns: usize) -> u16 {
    rtsync_daemon_opts(root, conns, false)
}

/// [`rtsync_daemon`] with a `read only` module.
pub fn rtsync_daemon_opts(root: &Path, conns: usize, read_only: bool) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let root = root.to_path_buf();
    std::thread::spawn(move || {
        for _ in 0..conns {
            let Ok((mut s, _)) = l.accept() else { return };
            s.set_nodelay(true).unwrap();
            s.write_all(b"@RSYNCD: 32.0 sha512 sha256 sha1 md5 md4\n")
                .unwrap();
            let greeting = read_line(&mut s);
            let theirs: u32 = greeting
                .trim_start_matches("@RSYNCD: ")
                .split('.')
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(30);
            let _module = read_line(&mut s);
            s.write_all(b"@RSYNCD: OK\n").unwrap();
            // As the daemon hands them over: options, ".", then paths without the module name.
            let mut after_dot = false;
            let args: Vec<OsString> = read_args(&mut s)
                .into_iter()
                .map(|a| {
                    if after_dot {
                        let rest = a.strip_prefix("mod").unwrap_or(&a);
                        return OsString::from(rest.trim_start_matches('/'));
                    }
                    after_dot = a == ".";
                    OsString::from(a)
                })
                .collect();
            let r = s.try_clone().unwrap();
            let session = ServerSession {
                daemon_protocol: Some(theirs.min(32)),
                root: Some(root.clone()),
                read_only,
                socket_fd: Some(std::os::fd::AsRawFd::as_raw_fd(&s)),
                ..Default::default()
            };
            std::thread::spawn(move || server::run_session(&args, r, s, session));
        }
    });
    port
}

/// A fake ssh for stock clients: relays the command's stdin/stdout to an in-process server
/// listening on loopback (python3 does the relaying). Returns the script path.
pub fn rtsync_shell(dir: &Path, conns: usize) -> PathBuf {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for _ in 0..conns {
            let Ok((mut s, _)) = l.accept() else { return };
            s.set_nodelay(true).unwrap();
            // The relay sends the remote command's arguments first.
            let mut args: Vec<OsString> =
                read_args(&mut s).into_iter().map(OsString::from).collect();
            // Drop "host" and the rsync path: keep from "--server".
            while args.first().is_some_and(|a| a != "--server") {
                args.remove(0);
            }
            let r = s.try_clone().unwrap();
            std::thread::spawn(move || server::run(&args, r, s));
        }
    });
    let relay = dir.join("relay.py");
    std::fs::write(
        &relay,
        format!(
            r#"import os, socket, sys, threading
# The client may hand us non-blocking descriptors (stock rsync's socketpair).
os.set_blocking(0, True)
os.set_blocking(1, True)
s = socket.create_connection(("127.0.0.1", {port}))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
args = sys.argv[1:]
if args and args[0] == "-l":
    args = args[2:]
s.sendall(b"".join(a.encode() + b"\0" for a in args) + b"\0")
def up():
    while True:
        d = os.read(0, 65536)
        if not d:
            s.shutdown(socket.SHUT_WR)
            return
        s.sendall(d)
threading.Thread(target=up, daemon=True).start()
while True:
    d = s.recv(65536)
    if not d:
        break
    while d:
        d = d[os.write(1, d):]
"#
        ),
    )
    .unwrap();
    let sh = dir.join("rtsync-ssh");
    super::script::write_script(
        &sh,
        &format!("#!/bin/sh\nexec python3 {} \"$@\"\n", relay.display()),
    );
    sh
}
