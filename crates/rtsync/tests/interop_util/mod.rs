//! Helpers for interop tests against stock rsync: a stock daemon on loopback, a fake remote
//! shell, sample trees, and tree comparison.

#![allow(dead_code)]

pub mod inproc;
pub mod listen;
pub mod script;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The stock rsync binary. Tests fail loudly when it is missing.
pub fn stock_rsync() -> PathBuf {
    let p =
        PathBuf::from(std::env::var_os("STOCK_RSYNC").unwrap_or_else(|| "/usr/bin/rsync".into()));
    assert!(
        p.exists(),
        "stock rsync not found at {} (set STOCK_RSYNC): interop tests need it",
        p.display()
    );
    p
}

/// A stock `rsync --daemon` on 127.0.0.1 with a temporary config; killed on drop.
pub struct StockDaemon {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
}

/// One module of the daemon's config.
pub struct Module<'a> {
    pub name: &'a str,
    pub path: &'a Path,
    /// Extra `key = value` lines.
    pub extra: &'a str,
}

impl StockDaemon {
    pub fn start(modules: &[Module<'_>]) -> StockDaemon {
        let mut dir = tempfile::tempdir().unwrap();
        let mut conf = String::from("use chroot = no\nreverse lookup = no\n");
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            conf.push_str("uid = root\ngid = root\n");
        }
        conf.push_str(&format!("pid file = {}/rsyncd.pid\n", dir.path().display()));
        conf.push_str(&format!("log file = {}/rsyncd.log\n", dir.path().display()));
        for m in modules {
            conf.push_str(&format!(
                "[{}]\npath = {}\nread only = false\n{}\n",
                m.name,
                m.path.display(),
                m.extra
            ));
        }
        let conf_path = dir.path().join("rsyncd.conf");
        fs::write(&conf_path, conf).unwrap();
        for _attempt in 0..20 {
            let port = free_port();
            let child = Command::new(stock_rsync())
                .arg("--daemon")
                .arg("--no-detach")
                .arg(format!("--config={}", conf_path.display()))
                .arg(format!("--port={port}"))
                .arg("--address=127.0.0.1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start stock rsync daemon");
            let mut d = StockDaemon { port, dir, child };
            if d.wait_ready() {
                return d;
            }
            let _ = d.child.kill();
            let _ = d.child.wait();
            dir = d.into_dir();
        }
        panic!("stock rsync daemon did not start");
    }

    fn into_dir(mut self) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                // Read the greeting so the daemon's child exits cleanly.
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut b = [0u8; 8];
                let _ = s.read(&mut b);
                // (Another test's daemon may hold the port: then ours is tried anew.)
                return listen::listens(self.child.id(), self.port);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// A daemon with a `src` module and a `dest` module (with `dest_extra` lines).
    pub fn src_and_dest(src: &Path, dest: &Path, dest_extra: &str) -> StockDaemon {
        StockDaemon::start(&[
            Module {
                name: "src",
                path: src,
                extra: "",
            },
            Module {
                name: "dest",
                path: dest,
                extra: dest_extra,
            },
        ])
    }

    /// A daemon with two writable modules, `ours` and `stock`, for side-by-side pushes.
    pub fn ours_and_stock(ours: &Path, stock: &Path) -> StockDaemon {
        StockDaemon::start(&[
            Module {
                name: "ours",
                path: ours,
                extra: "",
            },
            Module {
                name: "stock",
                path: stock,
                extra: "",
            },
        ])
    }

    /// `rsync://127.0.0.1:PORT/rest`.
    pub fn url(&self, rest: &str) -> String {
        format!("rsync://127.0.0.1:{}/{rest}", self.port)
    }
}

impl Drop for StockDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A script standing in for ssh: drops the host argument and runs the command locally.
pub fn fake_ssh(dir: &Path) -> PathBuf {
    let p = dir.join("fake-ssh");
    script::write_script(
        &p,
        "#!/bin/sh\n# usage: fake-ssh [-l user] host command...\n# Like ssh: the words are joined and run by a shell.\nif [ \"$1\" = -l ]; then shift 2; fi\nshift\nexec sh -c \"$*\"\n",
    );
    p
}

/// Runs stock rsync with `args`.
pub fn run_stock(args: &[&str]) -> Output {
    Command::new(stock_rsync()).args(args).output().unwrap()
}

/// Builds a sample tree: nested dirs, files of various sizes, a symlink, a hard link, odd names.
pub fn sample_tree(root: &Path) {
    fs::create_dir_all(root.join("sub/deeper")).unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    fs::write(root.join("small.txt"), b"hello world\n").unwrap();
    fs::write(root.join("sub/medium.bin"), pattern(100_000, 7)).unwrap();
    fs::write(root.join("sub/deeper/large.bin"), pattern(1_500_000, 13)).unwrap();
    fs::write(root.join("sub/zero"), b"").unwrap();
    fs::write(root.join("name with spaces"), b"spaces\n").unwrap();
    fs::write(root.join("h1"), b"hard link data\n").unwrap();
    fs::hard_link(root.join("h1"), root.join("sub/h2")).unwrap();
    std::os::unix::fs::symlink("small.txt", root.join("link")).unwrap();
    std::os::unix::fs::symlink("../nowhere", root.join("sub/dangling")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", root.join("sub/absolute")).unwrap();
    std::os::unix::fs::symlink("../../../escape", root.join("sub/deeper/climbing")).unwrap();
    let fifo =
        std::ffi::CString::new(root.join("sub/fifo").as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid path; a fifo exercises -D's special files.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o640) }, 0);
    fs::set_permissions(
        root.join("sub/medium.bin"),
        fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    fs::set_permissions(root.join("small.txt"), fs::Permissions::from_mode(0o755)).unwrap();
    let t = 1_600_000_000;
    for (i, p) in [
        "small.txt",
        "name with spaces",
        "sub/medium.bin",
        "sub/deeper/large.bin",
        "h1",
        "sub/zero",
    ]
    .iter()
    .enumerate()
    {
        set_mtime(&root.join(p), t + i as i64 * 1000, 123_456_789);
    }
    // Fixed times on links and directories too (deepest first): an mtime in the current
    // second would be left alone by stock's seconds-only comparison, making results racy.
    for (i, p) in [
        "link",
        "sub/dangling",
        "sub/absolute",
        "sub/deeper/climbing",
        "sub/fifo",
        "sub/deeper",
        "sub",
        "empty",
        "",
    ]
    .iter()
    .enumerate()
    {
        set_mtime(&root.join(p), t - 5000 - i as i64 * 100, 500_000_000);
    }
}

/// A destination that differs from [`sample_tree`]'s source: changed content (so the delta
/// path with block matching is used), a truncated file, a missing file, extra entries (for
/// `--delete`), older times.
pub fn stale_dest(d: &Path) {
    sample_tree(d);
    let mut big = pattern(1_500_000, 13);
    big[700_000..700_100].copy_from_slice(&[0u8; 100]);
    big.truncate(1_400_000);
    fs::write(d.join("sub/deeper/large.bin"), big).unwrap();
    fs::write(d.join("sub/medium.bin"), pattern(100_000, 8)).unwrap();
    fs::remove_file(d.join("name with spaces")).unwrap();
    fs::write(d.join("extra-file"), b"delete me").unwrap();
    fs::create_dir_all(d.join("extra-dir/inner")).unwrap();
    fs::write(d.join("extra-dir/inner/x"), b"x").unwrap();
    for p in [
        "extra-dir/inner/x",
        "extra-dir/inner",
        "extra-dir",
        "extra-file",
        "sub/medium.bin",
        "sub/deeper/large.bin",
    ] {
        set_mtime(&d.join(p), 1_400_000_000, 0);
    }
}

/// Deterministic pseudo-random content.
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 8) as u8
        })
        .collect()
}

/// Sets both times of `p` (not following a symlink) to `secs`.`nsec`.
pub fn set_mtime(p: &Path, secs: i64, nsec: u32) {
    set_times(p, Some((secs, nsec)), Some((secs, nsec)));
}

/// Sets only the access time of `p` (not following a symlink).
pub fn set_atime(p: &Path, secs: i64) {
    set_times(p, Some((secs, 0)), None);
}

/// Sets the access and modification times of `p` given (the others are left).
fn set_times(p: &Path, atime: Option<(i64, u32)>, mtime: Option<(i64, u32)>) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let spec = |t: Option<(i64, u32)>| match t {
        Some((secs, nsec)) => libc::timespec {
            tv_sec: secs,
            tv_nsec: nsec as i64,
        },
        None => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
    };
    let times = [spec(atime), spec(mtime)];
    // SAFETY: valid path and two timespecs.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(rc, 0, "utimensat {}", p.display());
}

/// Gives every entry beneath `root` (and `root`) a distinct time in the past. A receiver
/// re-touches a directory only when its time differs from the sender's in whole seconds, so
/// times within the second of a transfer would make directory times depend on timing, for
/// stock as for us.
pub fn past_times(root: &Path) {
    let mut all = vec![root.to_path_buf()];
    let mut i = 0;
    while i < all.len() {
        if fs::symlink_metadata(&all[i]).unwrap().is_dir() {
            let mut kids: Vec<_> = fs::read_dir(&all[i])
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            kids.sort();
            all.extend(kids);
        }
        i += 1;
    }
    for (n, p) in all.iter().rev().enumerate() {
        set_mtime(
            p,
            1_500_000_000 + n as i64 * 7,
            (n as u32 * 7_654_321) % 1_000_000_000,
        );
    }
}

/// Every entry's (uid, gid), by path relative to `root`.
pub fn owners(root: &Path) -> BTreeMap<String, (u32, u32)> {
    snapshot(root, false)
        .into_iter()
        .map(|(k, n)| (k, n.owner))
        .collect()
}

/// An rsyncd.conf with one writable module `m` at `path` (ids kept when run as root),
/// followed by `extra` module parameters.
pub fn module_conf(path: &Path, extra: &str) -> String {
    // SAFETY: geteuid has no preconditions.
    let ids = if unsafe { libc::geteuid() } == 0 {
        "uid = root\ngid = root\n"
    } else {
        ""
    };
    format!(
        "use chroot = no\nreverse lookup = no\n[m]\npath = {}\nread only = false\n{ids}{extra}",
        path.display()
    )
}

/// The `--rsync-path` that makes a remote shell run our binary (`ours`) or stock rsync.
pub fn remote_rsync_path(ours: bool) -> String {
    if ours {
        format!("{} rsync", env!("CARGO_BIN_EXE_rtsync"))
    } else {
        stock_rsync().display().to_string()
    }
}

/// A command for stock rsync (`stock`) or our binary as rsync.
pub fn rsync_command(stock: bool) -> Command {
    if stock {
        Command::new(stock_rsync())
    } else {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rtsync"));
        c.arg("rsync");
        c
    }
}

/// Runs stock rsync or ours in `cwd` with the locale `locale` (LC_ALL).
pub fn run_in_locale(stock: bool, cwd: &Path, locale: &str, args: &[String]) -> Output {
    rsync_command(stock)
        .current_dir(cwd)
        .env("LC_ALL", locale)
        .args(args)
        .output()
        .unwrap()
}

/// Runs `rtsync rsync ARGS…` (the binary) and collects its output.
pub fn rtsync(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rtsync"))
        .arg("rsync")
        .args(args)
        .output()
        .unwrap()
}

/// What we compare about each entry of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: &'static str,
    pub perms: u32,
    pub size: u64,
    pub mtime: Option<(i64, i64)>,
    pub content: Option<Vec<u8>>,
    pub link: Option<PathBuf>,
    /// Index of the first path sharing this inode (hard links).
    pub ino_group: Option<String>,
    /// (uid, gid): trees built by stock and by us in the same case have the same owners.
    pub owner: (u32, u32),
    /// Extended attributes (name, value), sorted.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

/// Snapshot of a tree, keyed by relative path. Directory mtimes are compared only if asked.
pub fn snapshot(root: &Path, dir_times: bool) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<(u64, u64), String> = BTreeMap::new();
    walk(root, root, dir_times, &mut out, &mut inodes);
    out
}

fn walk(
    root: &Path,
    p: &Path,
    dir_times: bool,
    out: &mut BTreeMap<String, Node>,
    inodes: &mut BTreeMap<(u64, u64), String>,
) {
    let mut names: Vec<_> = fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for path in names {
        let m = fs::symlink_metadata(&path).unwrap();
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_file() {
            "file"
        } else {
            "special"
        };
        let ino_group = (!ft.is_dir() && m.nlink() > 1).then(|| {
            inodes
                .entry((m.dev(), m.ino()))
                .or_insert(rel.clone())
                .clone()
        });
        out.insert(
            rel.clone(),
            Node {
                kind,
                perms: if ft.is_symlink() {
                    0
                } else {
                    m.mode() & 0o7777
                },
                size: if ft.is_dir() { 0 } else { m.len() },
                mtime: (!ft.is_dir() || dir_times).then(|| (m.mtime(), m.mtime_nsec())),
                content: ft.is_file().then(|| fs::read(&path).unwrap()),
                link: ft.is_symlink().then(|| fs::read_link(&path).unwrap()),
                ino_group,
                owner: (m.uid(), m.gid()),
                xattrs: xattrs_of(&path),
            },
        );
        if ft.is_dir() {
            walk(root, &path, dir_times, out, inodes);
        }
    }
}

/// `path`'s extended attributes (not following a symlink), sorted by name.
pub fn xattrs_of(path: &Path) -> Vec<(String, Vec<u8>)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut names = vec![0u8; 65536];
    // SAFETY: valid C string and buffer.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n <= 0 {
        return Vec::new();
    }
    names.truncate(n as usize);
    let mut out: Vec<(String, Vec<u8>)> = names
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(|name| {
            let cn = std::ffi::CString::new(name).unwrap();
            let mut v = vec![0u8; 65536];
            // SAFETY: valid C strings and buffer.
            let len =
                unsafe { libc::lgetxattr(c.as_ptr(), cn.as_ptr(), v.as_mut_ptr().cast(), v.len()) };
            v.truncate(len.max(0) as usize);
            (String::from_utf8_lossy(name).into_owned(), v)
        })
        .collect();
    out.sort();
    out
}

/// Sets an extended attribute on `path` itself (not a symlink's target).
pub fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    // SAFETY: valid C strings and buffer.
    let r = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(
        r,
        0,
        "lsetxattr {} {name}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// Asserts two trees are identical, listing the differences.
pub fn assert_same_tree(ours: &Path, stock: &Path, dir_times: bool) {
    assert_same_tree_in(ours, stock, dir_times, "trees differ");
}

/// [`assert_same_tree`], saying `what` was compared when they differ.
pub fn assert_same_tree_in(ours: &Path, stock: &Path, dir_times: bool, what: &str) {
    let a = snapshot(ours, dir_times);
    let b = snapshot(stock, dir_times);
    let mut diffs = Vec::new();
    for (k, v) in &b {
        match a.get(k) {
            None => diffs.push(format!("missing in ours: {k}")),
            Some(w) if w != v => diffs.push(format!(
                "differs: {k}\n  ours:  {:?}\n  stock: {:?}",
                short(w),
                short(v)
            )),
            _ => {}
        }
    }
    for k in a.keys() {
        if !b.contains_key(k) {
            diffs.push(format!("extra in ours: {k}"));
        }
    }
    assert!(diffs.is_empty(), "{what}:\n{}", diffs.join("\n"));
}

fn short(n: &Node) -> String {
    format!(
        "{} perms={:o} owner={:?} size={} mtime={:?} link={:?} group={:?} content_len={:?} xattrs={:?}",
        n.kind,
        n.perms,
        n.owner,
        n.size,
        n.mtime,
        n.link,
        n.ino_group,
        n.content.as_ref().map(Vec::len),
        n.xattrs
    )
}

/// Parses rsync-style argv into the option model.
pub fn options(args: &[&str]) -> rtsync_engine::Options {
    let v: Vec<OsString> = args.iter().map(OsString::from).collect();
    rtsync_engine::Options::parse(&v).expect("valid options")
}

/// Runs our client library; returns the exit code as rsync would.
pub fn run_ours(args: &[&str]) -> i32 {
    let opts = options(args);
    let env = rtsync_wire::client::ClientEnv::default();
    match rtsync_wire::client::run(&opts, &env) {
        Ok(o) => o.exit_code(),
        Err(e) => {
            eprintln!("rtsync: {e}");
            e.exit_code()
        }
    }
}

/// Writes `data` to a file and returns its path.
pub fn write_file(p: &Path, data: &[u8]) -> PathBuf {
    let mut f = fs::File::create(p).unwrap();
    f.write_all(data).unwrap();
    p.to_path_buf()
}

/// Runs our client library and returns the outcome (panics on a fatal error).
pub fn run_ours_outcome(args: &[&str]) -> rtsync_wire::client::Outcome {
    let opts = options(args);
    rtsync_wire::client::run(&opts, &rtsync_wire::client::ClientEnv::default()).expect("transfer")
}

/// Runs our client with an explicit environment; returns the exit code and the fatal error
/// text (empty on success).
pub fn run_ours_env(args: &[&str], env: &rtsync_wire::client::ClientEnv) -> (i32, String) {
    let opts = options(args);
    match rtsync_wire::client::run(&opts, env) {
        Ok(o) => (o.exit_code(), String::new()),
        Err(e) => (e.exit_code(), e.to_string()),
    }
}

/// A local copy run in `base` by rtsync (`ours`) or stock rsync: stdout without the byte-count
/// lines (a local copy's counts are stock's pipe traffic, not ours to match), stderr, and the
/// exit code.
pub fn run_local(ours: bool, base: &Path, args: &[&str]) -> (String, Option<i32>) {
    let mut cmd = if ours {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rtsync"));
        c.arg("rsync");
        c
    } else {
        Command::new(stock_rsync())
    };
    let out = cmd.args(args).current_dir(base).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("sent ") && !l.starts_with("total size"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        + &String::from_utf8_lossy(&out.stderr);
    (text, out.status.code())
}

/// Every entry by its raw name: kind, size, content, link target, and the first name
/// sharing its inode.
pub fn raw_tree(root: &Path) -> BTreeMap<Vec<u8>, String> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let mut todo = vec![PathBuf::from(root)];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p
                .strip_prefix(root)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec();
            let desc = if m.is_dir() {
                todo.push(p.clone());
                format!("dir {:o}", m.mode() & 0o7777)
            } else if m.file_type().is_symlink() {
                let t = std::fs::read_link(&p).unwrap();
                format!("link {:?}", t.as_os_str().as_bytes())
            } else {
                let first = inodes.entry(m.ino()).or_insert(rel.clone()).clone();
                format!(
                    "file {:o} {:?} first {first:?} mtime {}",
                    m.mode() & 0o7777,
                    std::fs::read(&p).unwrap(),
                    m.mtime()
                )
            };
            out.insert(rel, desc);
        }
    }
    out
}

/// Compares two [`raw_tree`]s, naming what differs.
pub fn assert_same_raw(
    got: &BTreeMap<Vec<u8>, String>,
    want: &BTreeMap<Vec<u8>, String>,
    what: &str,
) {
    let show = |k: &Vec<u8>| String::from_utf8_lossy(k).into_owned();
    let diffs: Vec<String> = want
        .keys()
        .chain(got.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|k| got.get(*k) != want.get(*k))
        .map(|k| {
            format!(
                "{}: ours {:?}, stock {:?}",
                show(k),
                got.get(k),
                want.get(k)
            )
        })
        .collect();
    assert!(
        diffs.is_empty(),
        "{what}: trees differ:\n{}",
        diffs.join("\n")
    );
}
