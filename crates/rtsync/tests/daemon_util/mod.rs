//! Helpers for the daemon tests: start stock `rsync --daemon` and `rtsync daemon` on free
//! loopback ports with the same rsyncd.conf, drive them with the stock client, compare.

#![allow(dead_code)]

// (The same file interop_util has: test crates use either helper or both.)
#[allow(clippy::duplicate_mod)]
#[path = "../interop_util/listen.rs"]
mod listen;
#[allow(clippy::duplicate_mod)]
#[path = "../interop_util/script.rs"]
pub mod script;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The stock rsync every test compares against (a missing one fails the test).
pub fn stock_rsync() -> PathBuf {
    let p = PathBuf::from(
        std::env::var("RTSYNC_STOCK_RSYNC").unwrap_or_else(|_| "/usr/bin/rsync".into()),
    );
    assert!(
        p.exists(),
        "stock rsync not found at {} (install rsync 3.x)",
        p.display()
    );
    p
}

/// Our binary.
pub fn rtsync_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rtsync"))
}

/// Which daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `rsync --daemon`.
    Stock,
    /// `rtsync daemon`.
    Rtsync,
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running daemon, killed when dropped.
pub struct Daemon {
    pub kind: Kind,
    pub port: u16,
    pub dir: PathBuf,
    pub conf: PathBuf,
    child: Child,
}

/// Writes `conf` (with `{dir}` replaced by `dir`) and returns its path.
pub fn write_conf(dir: &Path, conf: &str) -> PathBuf {
    let path = dir.join("rsyncd.conf");
    std::fs::write(&path, conf.replace("{dir}", &dir.display().to_string())).unwrap();
    path
}

impl Daemon {
    /// Starts a daemon of `kind` in its own directory `dir` with `conf` (`{dir}` substituted).
    pub fn start(kind: Kind, dir: &Path, conf: &str) -> Daemon {
        Self::start_with(kind, dir, conf, &[])
    }

    /// Like [`Daemon::start`] with extra daemon arguments.
    pub fn start_with(kind: Kind, dir: &Path, conf: &str, extra: &[&str]) -> Daemon {
        let conf_path = write_conf(dir, conf);
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = daemon_command(kind);
            cmd.arg("--no-detach")
                .arg(format!("--config={}", conf_path.display()))
                .arg(format!("--port={port}"))
                .arg("--address=127.0.0.1")
                .arg(format!("--log-file={}", dir.join("daemon.log").display()))
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join("daemon.stderr")).unwrap());
            let mut child = cmd.spawn().expect("start daemon");
            if wait_for_port(port, &mut child)
                && still_running(&mut child)
                && listen::listens(child.id(), port)
            {
                return Daemon {
                    kind,
                    port,
                    dir: dir.to_path_buf(),
                    conf: conf_path,
                    child,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("{kind:?} daemon did not start");
    }

    /// `rsync://127.0.0.1:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        format!("rsync://127.0.0.1:{}/{path}", self.port)
    }

    /// Sends SIGTERM and waits (up to 5 s): the exit code, if it exited.
    pub fn terminate(&mut self) -> Option<i32> {
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The log file's messages without the timestamp and pid.
    pub fn log_messages(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default();
        text.lines()
            .filter_map(|l| l.split_once("] ").map(|(_, m)| m.to_string()))
            .collect()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        if self.terminate().is_some() {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The command that starts a daemon of `kind` (options follow).
pub fn daemon_command(kind: Kind) -> Command {
    match kind {
        Kind::Stock => {
            let mut c = Command::new(stock_rsync());
            c.arg("--daemon");
            c
        }
        Kind::Rtsync => {
            let mut c = Command::new(rtsync_bin());
            c.arg("daemon");
            c
        }
    }
}

fn still_running(child: &mut Child) -> bool {
    std::thread::sleep(Duration::from_millis(50));
    matches!(child.try_wait(), Ok(None))
}

fn wait_for_port(port: u16, child: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            // Complete a harmless listing so the daemon is not left with a half-open client.
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut line = String::new();
            let mut r = BufReader::new(s.try_clone().unwrap());
            if r.read_line(&mut line).is_ok() && line.starts_with("@RSYNCD:") {
                let _ = s.write_all(b"@RSYNCD: 32.0 md5\n#list\n");
                let mut rest = Vec::new();
                let _ = r.read_to_end(&mut rest);
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// What a client run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub code: Option<i32>,
}

impl From<Output> for Outcome {
    fn from(o: Output) -> Self {
        Outcome {
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            code: o.status.code(),
        }
    }
}

/// Runs the stock client with `args` (`{url}` replaced by `url`) and `env`.
pub fn client(args: &[String], env: &[(&str, &str)], timeout: Duration) -> Outcome {
    let mut cmd = Command::new(stock_rsync());
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.env_remove("RSYNC_PASSWORD");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run stock rsync client");
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap().into()
}

/// Drops the one line whose presence depends on how fast a closed socket is noticed (a client
/// that still writes after the server has closed reports the reset; stock does this too).
pub fn normalize(o: &Outcome) -> Outcome {
    let stderr = o
        .stderr
        .lines()
        .filter(|l| !l.contains("Connection reset by peer"))
        .map(|l| format!("{l}\n"))
        .collect();
    Outcome {
        stdout: o.stdout.clone(),
        stderr,
        code: o.code,
    }
}

/// A raw protocol client: connects, reads the greeting and motd up to a blank-line-free point.
pub struct RawClient {
    pub reader: BufReader<TcpStream>,
    pub stream: TcpStream,
}

impl RawClient {
    /// Connects and reads the server greeting line.
    pub fn connect(port: u16) -> (RawClient, String) {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut greeting = String::new();
        reader.read_line(&mut greeting).unwrap();
        (RawClient { reader, stream }, greeting)
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads one line ("" at EOF).
    pub fn line(&mut self) -> String {
        let mut l = String::new();
        let _ = self.reader.read_line(&mut l);
        l
    }

    /// Reads lines until one starts with `prefix` (or EOF); returns it.
    pub fn until(&mut self, prefix: &str) -> String {
        loop {
            let l = self.line();
            if l.is_empty() || l.starts_with(prefix) {
                return l;
            }
        }
    }

    /// Reads everything until the server closes.
    pub fn rest(&mut self) -> String {
        let mut s = Vec::new();
        let _ = self.reader.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    }
}

/// A scenario directory shared by both daemons' runs: module dirs and a source tree.
pub fn make_tree(root: &Path) {
    for d in ["mod", "src/sub", "empty"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("src/a.txt"), "alpha\n").unwrap();
    std::fs::write(root.join("src/sub/b.txt"), "beta\n").unwrap();
    std::fs::write(root.join("mod/m.txt"), "in module\n").unwrap();
    std::fs::write(
        root.join("motd"),
        "Welcome to the test daemon\nSecond line\n",
    )
    .unwrap();
}

/// Writes a secrets file with `mode`.
pub fn write_secrets(dir: &Path, text: &str, mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("secrets");
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

/// A comparable description of a tree: one line per entry (relative path, type, mode, size,
/// mtime, owner, content or link target).
pub fn snapshot(root: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let ft = m.file_type();
            let what = if ft.is_symlink() {
                format!("link -> {}", std::fs::read_link(&p).unwrap().display())
            } else if ft.is_dir() {
                stack.push(p.clone());
                "dir".to_string()
            } else {
                let data = std::fs::read(&p).unwrap();
                // FNV-1a: enough to tell contents apart in a test.
                let hash = data.iter().fold(0xcbf29ce484222325u64, |h, b| {
                    (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
                });
                format!("file len={} fnv={hash:016x}", data.len())
            };
            let mtime = if ft.is_dir() { 0 } else { m.mtime() };
            out.push(format!(
                "{rel} {what} mode={:o} uid={} gid={} mtime={mtime}",
                m.mode() & 0o7777,
                m.uid(),
                m.gid()
            ));
        }
    }
    out.sort();
    out
}

/// The lines only in `a` and only in `b`, for readable assertion messages.
pub fn diff_lines(a: &[String], b: &[String]) -> String {
    let only_a: Vec<&String> = a.iter().filter(|l| !b.contains(l)).collect();
    let only_b: Vec<&String> = b.iter().filter(|l| !a.contains(l)).collect();
    format!("only in stock: {only_a:#?}\nonly in rtsync: {only_b:#?}")
}
