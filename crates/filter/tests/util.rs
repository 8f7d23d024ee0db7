//! Shared helpers: tricky trees, running stock rsync, and walkers that apply
//! our rules the way rsync's sender and receiver do.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use rtsync_filter::{Check, FileSource, FilterOption, FilterSet, FsSource, Side};

/// Path of stock rsync; panics (never skips) when it is missing.
pub fn stock_rsync() -> PathBuf {
    let candidates = ["/usr/bin/rsync", "/usr/local/bin/rsync", "/bin/rsync"];
    for c in candidates {
        if Path::new(c).exists() {
            return PathBuf::from(c);
        }
    }
    panic!("stock rsync is required for differential tests but was not found (install rsync)");
}

/// Creates files (`name`) and directories (`name/`) under `root`.
pub fn make_tree(root: &Path, entries: &[&str]) {
    std::fs::create_dir_all(root).unwrap();
    for entry in entries {
        let path = root.join(entry.trim_end_matches('/'));
        if entry.ends_with('/') {
            std::fs::create_dir_all(&path).unwrap();
        } else {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, b"x").unwrap();
        }
    }
}

/// Writes a file with given contents (rule files).
pub fn write_file(root: &Path, name: &str, contents: &str) {
    let path = root.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

/// A tree full of names that trip pattern matchers.
pub const TRICKY: &[&str] = &[
    "a",
    "b.o",
    "B.O",
    "c.txt",
    "core",
    "x~",
    "#tmp",
    ".#lock",
    ",v",
    "_$x",
    "dollar$",
    "old.bak",
    "lib.so",
    "with space",
    "star*name",
    "q?mark",
    "br[ack]et",
    "back\\slash",
    "-dash",
    ".hidden",
    "é-utf8",
    "foo/",
    "foo/foo",
    "foo/bar",
    "foo/bar.o",
    "foo/sub/",
    "foo/sub/foo",
    "foo/sub/deep.txt",
    "foo/sub/x.o",
    "bar/",
    "bar/foo/",
    "bar/foo/baz",
    "bar/foo/qux.o",
    "bar/keep.txt",
    "bar/x.log",
    "src/",
    "src/main.c",
    "src/main.o",
    "src/lib/",
    "src/lib/util.c",
    "src/lib/util.o",
    "src/lib/tags",
    "src/CVS/",
    "src/CVS/Entries",
    "src/.git/",
    "src/.git/HEAD",
    "src/.svn",
    "dir/",
    "dir/a/",
    "dir/a/b/",
    "dir/a/b/c/",
    "dir/a/b/c/file",
    "dir/a/b/file.o",
    "dir/a/file",
    "dir/z",
    "empty/",
    "a1/",
    "a1/x",
    "a2",
    "Abc",
    "abc",
    "tmp/",
    "tmp/cache/",
    "tmp/cache/x",
    "tmp/keep",
];

/// Runs stock rsync in dry-run mode from `src/` to a fresh destination and
/// returns the names it would transfer (directories end in `/`).
pub fn stock_selected(work: &Path, args: &[String]) -> Result<BTreeSet<String>, String> {
    let out = Command::new(stock_rsync())
        .current_dir(work)
        .args(["-a", "--dry-run", "--out-format=%n"])
        .args(args)
        .args(["src-root/", "never-created/"])
        .env_remove("CVSIGNORE")
        .env("HOME", work.join("home"))
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(lines(&out.stdout).collect())
}

/// Runs stock rsync with `--delete` (dry run) into an existing destination
/// and returns the names it would delete.
pub fn stock_deleted(work: &Path, args: &[String]) -> Result<BTreeSet<String>, String> {
    let out = Command::new(stock_rsync())
        .current_dir(work)
        .args(["-a", "--dry-run", "--delete", "--out-format=%i %n"])
        .args(args)
        .args(["src-root/", "dst-root/"])
        .env_remove("CVSIGNORE")
        .env("HOME", work.join("home"))
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(lines(&out.stdout)
        .filter_map(|l| {
            l.strip_prefix("*deleting")
                .map(|n| n.trim_start().to_string())
        })
        .collect())
}

fn lines(out: &[u8]) -> impl Iterator<Item = String> + '_ {
    out.split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| String::from_utf8_lossy(l).into_owned())
}

/// Our reading of the same command-line filter options.
pub fn our_options(work: &Path, args: &[String]) -> (Vec<FilterOption>, bool) {
    let mut opts = Vec::new();
    let mut cvs = false;
    for arg in args {
        if let Some(v) = arg.strip_prefix("--filter=") {
            opts.push(FilterOption::Filter(v.as_bytes().to_vec()));
        } else if let Some(v) = arg.strip_prefix("--exclude=") {
            opts.push(FilterOption::Exclude(v.as_bytes().to_vec()));
        } else if let Some(v) = arg.strip_prefix("--include=") {
            opts.push(FilterOption::Include(v.as_bytes().to_vec()));
        } else if let Some(v) = arg.strip_prefix("--exclude-from=") {
            opts.push(FilterOption::ExcludeFrom(work.join(v)));
        } else if let Some(v) = arg.strip_prefix("--include-from=") {
            opts.push(FilterOption::IncludeFrom(work.join(v)));
        } else if arg == "-F" {
            opts.push(FilterOption::F);
        } else if arg == "-FF" {
            opts.push(FilterOption::F);
            opts.push(FilterOption::F);
        } else if arg == "-C" {
            cvs = true;
        } else if arg == "--delete-excluded" {
            opts.push(FilterOption::DeleteExcluded);
        } else if arg == "--from0" {
            opts.push(FilterOption::From0);
        } else {
            panic!("test harness does not know option {arg}");
        }
    }
    (opts, cvs)
}

/// Builds our filter set for `args` (merge files relative to `work`).
pub fn our_set(work: &Path, args: &[String]) -> Result<FilterSet, String> {
    let (opts, cvs) = our_options(work, args);
    let env = rtsync_filter::CvsEnv {
        home_cvsignore: std::fs::read(work.join("home/.cvsignore")).ok(),
        cvsignore_var: None,
    };
    FilterSet::from_options(&opts, cvs, env, &mut FsSource::new(work)).map_err(|e| e.to_string())
}

fn sorted_entries(dir: &Path) -> Vec<(Vec<u8>, bool)> {
    let mut out: Vec<(Vec<u8>, bool)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let is_dir = e.file_type().unwrap().is_dir();
            (e.file_name().as_bytes().to_vec(), is_dir)
        })
        .collect();
    out.sort();
    out
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        return name.to_vec();
    }
    [dir, b"/", name].concat()
}

fn display(rel: &[u8], is_dir: bool) -> String {
    let mut s = String::from_utf8_lossy(rel).into_owned();
    if is_dir {
        s.push('/');
    }
    s
}

/// Walks `root` the way rsync's sender recursion does: a directory's
/// entries are checked with its dir-merge files loaded; excluded
/// directories are not entered.
pub fn our_selected(set: &mut FilterSet, root: &Path) -> Result<BTreeSet<String>, String> {
    our_selected_with(set, root, &mut FsSource::new(root))
}

/// [`our_selected`] reading per-directory files through `source`.
pub fn our_selected_with(
    set: &mut FilterSet,
    root: &Path,
    source: &mut dyn FileSource,
) -> Result<BTreeSet<String>, String> {
    let mut out = BTreeSet::new();
    out.insert("./".to_string());
    walk_sender(set, root, b"", source, &mut out)?;
    Ok(out)
}

fn walk_sender(
    set: &mut FilterSet,
    root: &Path,
    dir: &[u8],
    source: &mut dyn FileSource,
    out: &mut BTreeSet<String>,
) -> Result<(), String> {
    set.enter_dir(dir, source).map_err(|e| e.to_string())?;
    let depth = set.depth();
    let mut subdirs = Vec::new();
    for (name, is_dir) in sorted_entries(&root.join(OsStr::from_bytes(dir))) {
        let rel = join(dir, &name);
        if set.is_excluded(&rel, is_dir) {
            continue;
        }
        out.insert(display(&rel, is_dir));
        if is_dir {
            subdirs.push(rel);
        }
    }
    let mut result = Ok(());
    for sub in subdirs {
        result = walk_sender(set, root, &sub, source, out);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(set.depth(), depth, "enter/leave out of balance");
    set.leave_dir();
    result
}

/// What rsync's receiver would delete in `dst` given the sender's list
/// `sent` (a copy of the tree with extra entries), per our rules.
pub fn our_deleted(set: &mut FilterSet, dst: &Path, sent: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut source = FsSource::new(dst);
    delete_in_dir(set, dst, b"", sent, &mut source, &mut out);
    out
}

fn delete_in_dir(
    set: &mut FilterSet,
    dst: &Path,
    dir: &[u8],
    sent: &BTreeSet<String>,
    source: &mut FsSource,
    out: &mut BTreeSet<String>,
) {
    set.enter_dir(dir, source).unwrap();
    let mut subdirs = Vec::new();
    for (name, is_dir) in sorted_entries(&dst.join(OsStr::from_bytes(dir))) {
        let rel = join(dir, &name);
        let as_file = display(&rel, false);
        let as_dir = display(&rel, true);
        if is_dir && sent.contains(&as_dir) {
            // Protection only stops deletion; a transferred directory is
            // still cleaned inside.
            subdirs.push(rel);
        } else if !sent.contains(&as_file)
            && !sent.contains(&as_dir)
            && !set.is_protected(&rel, is_dir)
        {
            delete_item(set, dst, &rel, is_dir, source, out);
        }
    }
    for sub in subdirs {
        delete_in_dir(set, dst, &sub, sent, source, out);
    }
    set.leave_dir();
}

fn delete_item(
    set: &mut FilterSet,
    dst: &Path,
    rel: &[u8],
    is_dir: bool,
    source: &mut FsSource,
    out: &mut BTreeSet<String>,
) -> bool {
    if !is_dir {
        out.insert(display(rel, false));
        return true;
    }
    set.enter_dir(rel, source).unwrap();
    let mut not_empty = false;
    let how = Check {
        side: Side::Receiver,
        ignore_perishable: true,
        xattr: false,
    };
    for (name, child_is_dir) in sorted_entries(&dst.join(OsStr::from_bytes(rel))) {
        let child = join(rel, &name);
        if set.check_with(&child, child_is_dir, how).is_excluded() {
            not_empty = true;
            continue;
        }
        if !delete_item(set, dst, &child, child_is_dir, source, out) {
            not_empty = true;
        }
    }
    set.leave_dir();
    if !not_empty {
        out.insert(display(rel, true));
    }
    !not_empty
}

/// One differential case: filter options plus extra files (paths relative
/// to the work dir; the source tree is `src-root/`).
pub struct Case {
    pub name: &'static str,
    pub args: &'static [&'static str],
    pub files: &'static [(&'static str, &'static str)],
}

pub const fn case(name: &'static str, args: &'static [&'static str]) -> Case {
    Case {
        name,
        args,
        files: &[],
    }
}

/// Sets up a work dir with the tricky tree and the case's files.
pub fn setup(case: &Case) -> tempfile::TempDir {
    let work = tempfile::tempdir().unwrap();
    make_tree(&work.path().join("src-root"), TRICKY);
    std::fs::create_dir_all(work.path().join("home")).unwrap();
    for (path, contents) in case.files {
        write_file(work.path(), path, contents);
    }
    work
}

pub fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

pub fn our_sender(work: &Path, args: &[String]) -> Result<BTreeSet<String>, String> {
    let mut set = our_set(work, args)?;
    let root = work.join("src-root");
    set.set_abs_root(std::os::unix::ffi::OsStrExt::as_bytes(root.as_os_str()));
    our_selected(&mut set, &root)
}

pub fn report(
    failures: &mut Vec<String>,
    name: &str,
    args: &[String],
    stock: &BTreeSet<String>,
    ours: &BTreeSet<String>,
) {
    if stock != ours {
        let only_stock: Vec<_> = stock.difference(ours).collect();
        let only_ours: Vec<_> = ours.difference(stock).collect();
        failures.push(format!(
            "case {name:?} {args:?}:\n  only stock rsync: {only_stock:?}\n  only ours: {only_ours:?}"
        ));
    }
}
