//! Differential testing of `rtsync rsync` against stock rsync on local transfers.
//!
//! Both tools run in the same work directory on the same source tree, each into a fresh copy of
//! the same destination state, with the same relative arguments; their exit codes, output and
//! resulting trees must be identical.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::ffi::{CString, OsStr};
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const RTSYNC: &str = env!("CARGO_BIN_EXE_rtsync");

/// The stock rsync binary; its absence fails the test run loudly.
pub fn stock_rsync() -> &'static str {
    let ok = Command::new("rsync")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "stock rsync is required for differential tests: install it (apt-get install rsync)"
    );
    "rsync"
}

/// Sets a path's mtime with nanoseconds, without following symlinks.
pub fn set_mtime(path: &Path, sec: i64, nsec: i64) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: sec,
            tv_nsec: nsec,
        },
    ];
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(r, 0, "utimensat {}", path.display());
}

pub fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

pub fn chown(path: &Path, uid: u32, gid: u32) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::lchown(c.as_ptr(), uid, gid) }, 0);
}

pub fn mknod(path: &Path, mode: u32, dev: u64) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    let r = unsafe { libc::mknod(c.as_ptr(), mode, dev) };
    assert_eq!(r, 0, "mknod {}", path.display());
}

pub fn write(path: &Path, data: &[u8]) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap();
    }
    fs::write(path, data).unwrap();
}

/// Deterministic pseudo-random bytes.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The corpus: every kind of thing rsync must get right.
pub fn build_corpus(root: &Path) {
    fs::create_dir_all(root).unwrap();
    let names: &[&[u8]] = &[
        b"plain.txt",
        b"with space.txt",
        b"new\nline",
        "ünïcødé-名前.txt".as_bytes(),
        b"-leading-dash",
        b"--double-dash",
        b"tab\there",
        b"back\\slash",
        b"star*q?",
    ];
    for (i, n) in names.iter().enumerate() {
        write(
            &root.join(OsStr::from_bytes(n)),
            &noise(100 + i * 37, i as u64),
        );
    }
    let mut deep = root.join("deep");
    for c in ["a", "b", "c", "d", "e", "f", "g", "h"] {
        deep = deep.join(c);
    }
    write(&deep.join("bottom.txt"), b"deep down\n");
    fs::create_dir_all(root.join("empty")).unwrap();
    fs::create_dir_all(root.join("empty2/inner")).unwrap();
    symlink("plain.txt", root.join("link-rel")).unwrap();
    symlink("does/not/exist", root.join("dangling")).unwrap();
    symlink("../../../outside", root.join("deep/a/escaping")).unwrap();
    symlink("/etc/hostname", root.join("absolute-link")).unwrap();
    symlink("deep/a", root.join("dirlink")).unwrap();
    write(&root.join("hl1"), b"hard link group one\n");
    fs::create_dir_all(root.join("sub")).unwrap();
    fs::hard_link(root.join("hl1"), root.join("hl2")).unwrap();
    fs::hard_link(root.join("hl1"), root.join("sub/hl3")).unwrap();
    write(&root.join("sub/g2a"), b"group two\n");
    fs::hard_link(root.join("sub/g2a"), root.join("g2b")).unwrap();
    // A sparse file: data, a 3 MiB hole, data.
    {
        let mut f = fs::File::create(root.join("sparse.bin")).unwrap();
        f.write_all(&noise(5000, 7)).unwrap();
        use std::io::{Seek, SeekFrom};
        f.seek(SeekFrom::Start(3 << 20)).unwrap();
        f.write_all(&noise(5000, 8)).unwrap();
    }
    write(&root.join("big.bin"), &noise(5 << 20, 99));
    for i in 0..300 {
        write(
            &root.join(format!("many/f{i:04}")),
            format!("small file {i}\n").as_bytes(),
        );
    }
    // Odd modes.
    write(&root.join("modes/0600"), b"x");
    chmod(&root.join("modes/0600"), 0o600);
    write(&root.join("modes/0444"), b"x");
    chmod(&root.join("modes/0444"), 0o444);
    write(&root.join("modes/4755"), b"x");
    chmod(&root.join("modes/4755"), 0o4755);
    write(&root.join("modes/0000"), b"x");
    chmod(&root.join("modes/0000"), 0o000);
    fs::create_dir_all(root.join("modes/sticky")).unwrap();
    chmod(&root.join("modes/sticky"), 0o1777);
    fs::create_dir_all(root.join("modes/setgid")).unwrap();
    chmod(&root.join("modes/setgid"), 0o2775);
    fs::create_dir_all(root.join("modes/readonly-dir")).unwrap();
    write(&root.join("modes/readonly-dir/inside"), b"y");
    chmod(&root.join("modes/readonly-dir"), 0o555);
    // Ownership (tests run as root).
    write(&root.join("owned"), b"owned by someone else\n");
    chown(&root.join("owned"), 1234, 5678);
    // Specials and devices.
    mknod(&root.join("fifo"), libc::S_IFIFO | 0o644, 0);
    mknod(
        &root.join("null-dev"),
        libc::S_IFCHR | 0o600,
        libc::makedev(1, 3),
    );
    // Filter material: per-directory rule files and a CVS-ignored name.
    write(&root.join(".rsync-filter"), b"- *.bin\n");
    write(&root.join("sub/.rsync-filter"), b"- g2a\n+ hl3\n");
    write(&root.join("many/.rsync-filter"), b"- f02*\n");
    write(&root.join("object.o"), b"\x7fELF");
    settle_times(root);
    // Times: nanoseconds, far future, early.
    set_mtime(&root.join("plain.txt"), 1_600_000_000, 123_456_789);
    set_mtime(&root.join("with space.txt"), 4_102_444_800, 999_999_999);
    set_mtime(&root.join("-leading-dash"), 86_400, 0);
    set_mtime(&root.join("link-rel"), 1_500_000_000, 5);
    set_mtime(&root.join("deep/a"), 1_400_000_000, 42);
}

/// An older state of the same tree on the receiving side: changed, missing, extra and
/// conflicting entries.
pub fn build_old_dest(root: &Path) {
    build_corpus(root);
    settle_times(root);
    // Same size and time, different content: only -c notices.
    let p = root.join("plain.txt");
    let mut data = fs::read(&p).unwrap();
    data[0] ^= 0xff;
    fs::write(&p, data).unwrap();
    set_mtime(&p, 1_600_000_000, 123_456_789);
    // Different size.
    write(&root.join("with space.txt"), b"short");
    // Different time only.
    set_mtime(&root.join("-leading-dash"), 99_999, 0);
    // A changed middle in a big file (delta transfer material).
    let big = root.join("big.bin");
    let mut data = fs::read(&big).unwrap();
    for b in &mut data[2 << 20..(2 << 20) + 100_000] {
        *b = b.wrapping_add(1);
    }
    fs::write(&big, data).unwrap();
    // Perms and ownership differ.
    chmod(&root.join("modes/0600"), 0o644);
    chown(&root.join("owned"), 0, 0);
    // Missing things.
    fs::remove_file(root.join("many/f0100")).unwrap();
    fs::remove_file(root.join("hl2")).unwrap();
    // Extraneous things.
    write(&root.join("extra.txt"), b"extra\n");
    write(&root.join("extra-dir/x/y"), b"nested extra\n");
    write(&root.join("many/zzz-extra"), b"extra\n");
    // Type conflicts: a directory where a file goes, a file where a directory goes.
    fs::remove_file(root.join("fifo")).unwrap();
    fs::create_dir_all(root.join("fifo")).unwrap();
    fs::remove_dir_all(root.join("empty")).unwrap();
    write(&root.join("empty"), b"was a dir\n");
    // A symlink pointing elsewhere.
    fs::remove_file(root.join("link-rel")).unwrap();
    symlink("with space.txt", root.join("link-rel")).unwrap();
    for p in [
        "extra.txt",
        "extra-dir/x/y",
        "extra-dir/x",
        "extra-dir",
        "many/zzz-extra",
        "fifo",
        "empty",
        "link-rel",
        "with space.txt",
        "big.bin",
        "many",
        ".",
    ] {
        set_mtime(&root.join(p), 1_650_000_000, 1);
    }
}

/// Gives every item a fixed mtime derived from its path (with nanoseconds), directories after
/// their contents, so that runs never depend on when the corpus was built.
pub fn settle_times(root: &Path) {
    fn visit(path: &Path, rel: &[u8]) {
        let md = fs::symlink_metadata(path).unwrap();
        if md.is_dir() {
            let mut names: Vec<_> = fs::read_dir(path)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            for n in names {
                let mut child = rel.to_vec();
                child.push(b'/');
                child.extend_from_slice(n.as_bytes());
                visit(&path.join(&n), &child);
            }
        }
        let h = hash(rel);
        set_mtime(
            path,
            1_500_000_000 + (h % 100_000_000) as i64,
            ((h >> 32) % 1_000_000_000) as i64,
        );
    }
    visit(root, b".");
}

/// One item of a tree as compared between tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub kind: char,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub content: Option<u64>,
    pub mtime: Option<(i64, i64)>,
    pub link: Option<Vec<u8>>,
    pub rdev: u64,
    /// The first path (sorted) sharing this item's inode, for hard-link groups.
    pub link_group: Option<Vec<u8>>,
}

pub type Snapshot = BTreeMap<Vec<u8>, Item>;

fn hash(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= b as u64;
        h = h.wrapping_mul(0x1000_0000_01b3);
    }
    h
}

/// Which mtimes a comparison looks at: those a run preserved (`-t`, plus symlinks/dirs rules).
#[derive(Clone, Copy)]
pub struct Compare {
    pub times: bool,
    pub dir_times: bool,
    /// The destination root is itself a transferred directory (`src/ dst/`), so its mtime is
    /// set; otherwise it is just created and its mtime is the time of the run.
    pub root_time: bool,
}

pub fn snapshot(root: &Path, cmp: Compare) -> Snapshot {
    let mut out = Snapshot::new();
    let mut inodes: HashMap<(u64, u64), Vec<Vec<u8>>> = HashMap::new();
    fn walk(
        root: &Path,
        rel: &[u8],
        out: &mut Snapshot,
        inodes: &mut HashMap<(u64, u64), Vec<Vec<u8>>>,
        cmp: Compare,
    ) {
        let path = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(OsStr::from_bytes(rel))
        };
        let md = fs::symlink_metadata(&path).unwrap();
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            'd'
        } else if ft.is_symlink() {
            'l'
        } else if ft.is_file() {
            'f'
        } else {
            'x'
        };
        let content = (kind == 'f').then(|| hash(&fs::read(&path).unwrap()));
        let times = match kind {
            'd' if rel.is_empty() => cmp.dir_times && cmp.root_time,
            'd' => cmp.dir_times,
            _ => cmp.times,
        };
        let key = if rel.is_empty() {
            b".".to_vec()
        } else {
            rel.to_vec()
        };
        if (kind == 'f' || kind == 'l') && md.nlink() > 1 {
            inodes
                .entry((md.dev(), md.ino()))
                .or_default()
                .push(key.clone());
        }
        out.insert(
            key,
            Item {
                kind,
                mode: md.mode(),
                uid: md.uid(),
                gid: md.gid(),
                size: if kind == 'd' { 0 } else { md.size() },
                content,
                mtime: times.then(|| (md.mtime(), md.mtime_nsec())),
                link: (kind == 'l').then(|| {
                    fs::read_link(&path)
                        .unwrap()
                        .as_os_str()
                        .as_bytes()
                        .to_vec()
                }),
                rdev: md.rdev(),
                link_group: None,
            },
        );
        if kind == 'd' {
            let mut names: Vec<Vec<u8>> = fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().file_name().as_bytes().to_vec())
                .collect();
            names.sort();
            for n in names {
                let mut child = rel.to_vec();
                if !child.is_empty() {
                    child.push(b'/');
                }
                child.extend_from_slice(&n);
                walk(root, &child, out, inodes, cmp);
            }
        }
    }
    walk(root, b"", &mut out, &mut inodes, cmp);
    for (_, mut group) in inodes {
        group.sort();
        let first = group[0].clone();
        for p in group {
            out.get_mut(&p).unwrap().link_group = Some(first.clone());
        }
    }
    out
}

/// What one tool did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub tree: Snapshot,
    pub source: Snapshot,
}

/// Drops the lines that legitimately differ: byte counts and rates of the closing summary and
/// timings of `--stats`; `--progress` lines (rates, and counts of a sender running ahead) are
/// reduced to their presence and the completed size.
pub fn normalize(stdout: &str) -> String {
    stdout
        .lines()
        .map(|l| match l.strip_prefix('\r') {
            Some(progress) => {
                let last = progress.rsplit('\r').next().unwrap_or(progress);
                let size = last.split_whitespace().next().unwrap_or("");
                let done = last.contains(" 100% ");
                format!("<progress {size} done={done}>")
            }
            None => l.to_string(),
        })
        .filter(|l| {
            !(l.starts_with("sent ")
                || l.starts_with("total size is")
                || l.starts_with("File list generation time")
                || l.starts_with("File list transfer time")
                || l.starts_with("Total bytes sent")
                || l.starts_with("Total bytes received")
                || l.starts_with("File list size"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn copy_tree(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success(), "cp -a {} {}", from.display(), to.display());
}

/// A prepared work directory: `src/` and a destination template.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    /// The destination state before each run (`None`: no destination yet).
    pub dest_template: Option<PathBuf>,
}

impl Workspace {
    pub fn new(with_old_dest: bool) -> Workspace {
        let dir = tempfile::Builder::new()
            .prefix("rtsync-diff-")
            .tempdir()
            .unwrap();
        build_corpus(&dir.path().join("src"));
        let dest_template = with_old_dest.then(|| {
            let t = dir.path().join("dest-template");
            build_old_dest(&t);
            t
        });
        Workspace { dir, dest_template }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `tool` (stock rsync, or rtsync's rsync) with `args` in the workspace.
    pub fn run(&self, stock: bool, args: &[&str], cmp: Compare) -> Run {
        let w = self.path();
        let dst = w.join("dst");
        let _ = fs::remove_dir_all(&dst);
        let _ = fs::remove_file(&dst);
        if let Some(t) = &self.dest_template {
            copy_tree(t, &dst);
        }
        // The source may be changed by the run (--remove-source-files): work on a copy.
        let pristine = w.join("src.pristine");
        if !pristine.exists() {
            copy_tree(&w.join("src"), &pristine);
        }
        let out = rsync_command(stock)
            .args(args)
            .current_dir(w)
            .output()
            .unwrap();
        let tree = if fs::symlink_metadata(&dst).is_ok() {
            snapshot(&dst, cmp)
        } else {
            Snapshot::new()
        };
        let source = snapshot(&w.join("src"), cmp);
        // Put the source back for the next run.
        fs::remove_dir_all(w.join("src")).unwrap();
        copy_tree(&pristine, &w.join("src"));
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            tree,
            source,
        }
    }
}

/// Asserts that two snapshots are identical, reporting the first differences readably.
pub fn assert_same_tree(what: &str, stock: &Snapshot, ours: &Snapshot) {
    if stock == ours {
        return;
    }
    let mut report = String::new();
    for (k, v) in stock {
        match ours.get(k) {
            None => report.push_str(&format!("only in stock: {}\n", String::from_utf8_lossy(k))),
            Some(o) if o != v => report.push_str(&format!(
                "differs: {}\n  stock: {v:?}\n  ours:  {o:?}\n",
                String::from_utf8_lossy(k)
            )),
            _ => {}
        }
    }
    for k in ours.keys() {
        if !stock.contains_key(k) {
            report.push_str(&format!("only in ours: {}\n", String::from_utf8_lossy(k)));
        }
    }
    panic!("{what}: trees differ\n{report}");
}

/// Runs the same rsync command line through stock rsync and rtsync and compares everything.
pub fn differential(args: &[&str], with_old_dest: bool, cmp: Compare) {
    differential_in(&Workspace::new(with_old_dest), args, cmp);
}

/// [`differential`] in a prepared workspace (for tests that add files such as rule lists).
pub fn differential_in(ws: &Workspace, args: &[&str], cmp: Compare) {
    let stock = ws.run(true, args, cmp);
    let ours = ws.run(false, args, cmp);
    let what = format!("rsync {}", args.join(" "));
    let (a, b) = (normalize(&stock.stdout), normalize(&ours.stdout));
    let same = split_streams(&a) == split_streams(&b);
    assert!(
        same,
        "{what}: stdout differs (- stock, + ours):\n{}\n--- stock stderr:\n{}\n--- our stderr:\n{}",
        line_diff(&a, &b),
        stock.stderr,
        ours.stderr
    );
    assert_eq!(stock.stderr, ours.stderr, "{what}: stderr differs");
    assert_eq!(stock.code, ours.code, "{what}: exit codes differ");
    assert_same_tree(&what, &stock.tree, &ours.tree);
    assert_same_tree(&format!("{what} (source)"), &stock.source, &ours.source);
}

pub const ALL_TIMES: Compare = Compare {
    times: true,
    dir_times: true,
    root_time: true,
};
/// Times compared everywhere but on the destination root (it is not a transferred directory).
pub const NEW_ROOT: Compare = Compare {
    times: true,
    dir_times: true,
    root_time: false,
};
/// Directory times are the time of the run (things were removed or backed up inside them).
pub const FILE_TIMES: Compare = Compare {
    times: true,
    dir_times: false,
    root_time: false,
};
pub const NO_TIMES: Compare = Compare {
    times: false,
    dir_times: false,
    root_time: false,
};

/// rsync's output is two streams merged nondeterministically: item lines travel in its data
/// stream, while messages (deletions, skips) and hard-link completions travel out of band and
/// can overtake them — stock rsync itself orders them differently from run to run. Each stream
/// keeps its own order, so each is compared in order.
pub fn split_streams(out: &str) -> [Vec<&str>; 4] {
    let mut items = Vec::new();
    let mut messages = Vec::new();
    let mut links = Vec::new();
    // Stock makes backups in two processes (the generator for what it deletes or replaces
    // itself, the receiver for transferred files): their relative order is not stable.
    let mut backups = Vec::new();
    for line in out.lines() {
        if line.starts_with("backed up ") {
            backups.push(line);
        } else if line.starts_with("*deleting ")
            || line.starts_with("deleting ")
            || line.starts_with("skipping ")
            || line.starts_with("fuzzy basis selected for ")
        {
            messages.push(line);
        } else if line.starts_with("hf") || line.contains(" => ") {
            links.push(line);
        } else {
            items.push(line);
        }
    }
    backups.sort_unstable();
    [items, messages, links, backups]
}

/// A minimal line diff (LCS) for readable failures: `-` lines only stock printed, `+` ours.
pub fn line_diff(a: &str, b: &str) -> String {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push_str(&format!("+{}\n", b[j]));
            j += 1;
        } else {
            out.push_str(&format!("-{}\n", a[i]));
            i += 1;
        }
    }
    out
}

/// Not a test: builds the corpus and old destination into `$RTSYNC_CORPUS_DIR` for manual runs.
#[test]
#[ignore]
fn build_corpus_for_manual_runs() {
    let dir = PathBuf::from(std::env::var_os("RTSYNC_CORPUS_DIR").expect("RTSYNC_CORPUS_DIR"));
    build_corpus(&dir.join("src"));
    build_old_dest(&dir.join("dest-template"));
}

/// A command running stock rsync (`stock`) or `rtsync rsync`.
pub fn rsync_command(stock: bool) -> Command {
    if stock {
        Command::new(stock_rsync())
    } else {
        let mut c = Command::new(RTSYNC);
        c.arg("rsync");
        c
    }
}
