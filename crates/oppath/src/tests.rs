use super::*;
use std::os::fd::AsFd;
use std::os::unix::fs::symlink;

/// An unprivileged uid to give planted symlinks to (tests run as root; as another user the
/// chown fails and the foreign cases cannot be built, which the tests then say).
const ATTACKER: u32 = 65534;

fn plant(target: &Path, at: &Path) {
    symlink(target, at).unwrap();
    std::os::unix::fs::lchown(at, Some(ATTACKER), Some(ATTACKER))
        .expect("lchown to another uid needs root (the test suite runs as root)");
}

fn read_fd(fd: OwnedFd) -> String {
    let mut s = String::new();
    use std::io::Read;
    std::fs::File::from(fd).read_to_string(&mut s).unwrap();
    s
}

struct Tree {
    _t: tempfile::TempDir,
    base: PathBuf,
}

fn tree() -> Tree {
    let t = tempfile::tempdir().unwrap();
    let base = t.path().to_path_buf();
    std::fs::create_dir_all(base.join("outside/sub")).unwrap();
    std::fs::write(base.join("outside/victim"), "secret").unwrap();
    std::fs::create_dir_all(base.join("real")).unwrap();
    std::fs::write(base.join("real/f"), "mine").unwrap();
    std::fs::create_dir(base.join("plant")).unwrap();
    Tree { _t: t, base }
}

#[test]
fn own_symlinks_are_followed_at_leaf_and_parent() {
    let t = tree();
    let b = &t.base;
    symlink(b.join("real"), b.join("plant/dirlink")).unwrap();
    symlink("../real/f", b.join("plant/filelink")).unwrap();
    let f = open(&b.join("plant/dirlink/f"), libc::O_RDONLY, 0).unwrap();
    assert_eq!(read_fd(f), "mine");
    let f = open(&b.join("plant/filelink"), libc::O_RDONLY, 0).unwrap();
    assert_eq!(read_fd(f), "mine");
    let d = open_dir(&b.join("plant/dirlink")).unwrap();
    assert_eq!(fd_path(d.as_fd()).unwrap(), b.join("real"));
}

#[test]
fn foreign_symlinks_are_refused_at_leaf_and_parent() {
    let t = tree();
    let b = &t.base;
    plant(&b.join("outside"), &b.join("plant/opd"));
    plant(&b.join("outside/victim"), &b.join("plant/osl"));
    for p in [
        "plant/opd/victim",
        "plant/osl",
        "plant/opd",
        "plant/opd/sub",
    ] {
        let abs = b.join(p);
        let e = open(&abs, libc::O_RDONLY, 0).unwrap_err();
        assert!(is_refusal(&e), "{p}: {e}");
        // Relative to an open directory, and through the other entry points.
        let base = std::fs::File::open(b).unwrap();
        let e = open_at(Base::Dir(base.as_fd()), Path::new(p), libc::O_RDONLY, 0).unwrap_err();
        assert!(is_refusal(&e), "{p} relative: {e}");
        assert!(is_refusal(&check(&abs).unwrap_err()), "{p}");
        assert!(is_refusal(
            &create_dir_all(Base::Cwd, &abs.join("new"), 0o755).unwrap_err()
        ));
    }
    assert!(!b.join("outside/sub/new").exists());
    assert!(!b.join("outside/new").exists());
    // A missing leaf behind a foreign parent is refused, not reported missing.
    assert!(is_refusal(&check(&b.join("plant/opd/none")).unwrap_err()));
    let e = open(
        &b.join("plant/opd/created"),
        libc::O_WRONLY | libc::O_CREAT,
        0o600,
    )
    .unwrap_err();
    assert!(is_refusal(&e));
    assert!(!b.join("outside/created").exists());
}

#[test]
fn a_foreign_symlink_reached_through_a_trusted_one_is_refused() {
    let t = tree();
    let b = &t.base;
    plant(&b.join("outside"), &b.join("real/theirs"));
    symlink(b.join("real"), b.join("plant/mine")).unwrap();
    let e = open(&b.join("plant/mine/theirs/victim"), libc::O_RDONLY, 0).unwrap_err();
    assert!(is_refusal(&e));
    // ... and a relative target is resolved from the symlink's directory.
    symlink("../outside", b.join("real/up")).unwrap();
    let f = open(&b.join("plant/mine/up/victim"), libc::O_RDONLY, 0).unwrap();
    assert_eq!(read_fd(f), "secret");
}

#[test]
fn missing_paths_are_created_and_checked() {
    let t = tree();
    let b = &t.base;
    assert!(!check(&b.join("real/a/b")).unwrap());
    let d = create_dir_all(Base::Cwd, &b.join("real/a/b/"), 0o755).unwrap();
    assert_eq!(fd_path(d.as_fd()).unwrap(), b.join("real/a/b"));
    assert!(check(&b.join("real/a/b")).unwrap());
    // Through our own symlink, creation lands at its target.
    symlink(b.join("real"), b.join("plant/mine")).unwrap();
    create_dir_all(Base::Cwd, &b.join("plant/mine/c"), 0o755).unwrap();
    assert!(b.join("real/c").is_dir());
    // A file in the way.
    let e = create_dir_all(Base::Cwd, &b.join("real/f/x"), 0o755).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR));
}

#[test]
fn open_parent_gives_the_directory_and_the_leaf() {
    let t = tree();
    let b = &t.base;
    let (d, leaf) = open_parent(Base::Cwd, &b.join("real/new/file"), true).unwrap();
    assert_eq!(leaf, "file");
    assert_eq!(fd_path(d.as_fd()).unwrap(), b.join("real/new"));
    let (d, leaf) = open_parent(Base::Cwd, Path::new("/etc/"), false).unwrap();
    assert_eq!(
        (fd_path(d.as_fd()).unwrap(), leaf),
        ("/".into(), "etc".into())
    );
    let (d, leaf) = open_parent(Base::Cwd, Path::new("rel"), false).unwrap();
    assert_eq!(leaf, "rel");
    assert_eq!(
        fd_path(d.as_fd()).unwrap(),
        std::env::current_dir().unwrap()
    );
    assert!(open_parent(Base::Cwd, Path::new("a/.."), false).is_err());
    plant(&b.join("outside"), &b.join("plant/opd"));
    assert!(is_refusal(
        &open_parent(Base::Cwd, &b.join("plant/opd/x"), true).unwrap_err()
    ));
}

#[test]
fn a_component_swapped_after_the_walk_does_not_redirect() {
    // The held descriptor keeps pointing at the directory that was checked.
    let t = tree();
    let b = &t.base;
    std::fs::create_dir(b.join("real/sub")).unwrap();
    let (d, leaf) = open_parent(Base::Cwd, &b.join("real/sub/new"), false).unwrap();
    std::fs::rename(b.join("real/sub"), b.join("real/moved")).unwrap();
    plant(&b.join("outside"), &b.join("real/sub"));
    let f = openat(
        d.as_raw_fd(),
        leaf.as_bytes(),
        libc::O_WRONLY | libc::O_CREAT | libc::O_NOFOLLOW,
        0o600,
    )
    .unwrap();
    drop(f);
    assert!(b.join("real/moved/new").exists());
    assert!(!b.join("outside/new").exists());
}

#[test]
fn symlink_loops_end() {
    let t = tree();
    let b = &t.base;
    symlink("b", b.join("plant/a")).unwrap();
    symlink("a", b.join("plant/b")).unwrap();
    let e = open(&b.join("plant/a"), libc::O_RDONLY, 0).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
}

#[test]
fn dots_and_slashes() {
    let t = tree();
    let b = &t.base;
    let p = format!("{}//real/./../real/f", b.display());
    assert_eq!(
        read_fd(open(Path::new(&p), libc::O_RDONLY, 0).unwrap()),
        "mine"
    );
    let e = open(&b.join("real/"), libc::O_RDONLY, 0).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EISDIR));
    assert!(open(Path::new(""), libc::O_RDONLY, 0).is_err());
}

#[test]
fn beneath_follows_no_symlink_and_stays_inside() {
    let t = tree();
    let b = &t.base;
    std::fs::create_dir(b.join("real/d")).unwrap();
    std::fs::write(b.join("real/d/g"), "g").unwrap();
    symlink("d", b.join("real/own")).unwrap();
    symlink("../outside", b.join("real/out")).unwrap();
    let root = std::fs::File::open(b.join("real")).unwrap();
    let r = root.as_fd();
    assert_eq!(
        read_fd(open_beneath(r, Path::new("d/g"), libc::O_RDONLY, 0).unwrap()),
        "g"
    );
    assert_eq!(
        read_fd(open_beneath(r, Path::new("./d//g"), libc::O_RDONLY, 0).unwrap()),
        "g"
    );
    for bad in [
        "own/g",
        "own",
        "out/victim",
        "../outside/victim",
        "/etc/passwd",
        "d/../../outside/victim",
    ] {
        assert!(
            open_beneath(r, Path::new(bad), libc::O_RDONLY, 0).is_err(),
            "{bad}"
        );
    }
    assert!(open_beneath(r, Path::new(""), libc::O_RDONLY | libc::O_DIRECTORY, 0).is_ok());
}

#[test]
fn confined_walks_stay_beneath_the_root() {
    let t = tree();
    let b = &t.base;
    let root = b.join("real");
    let comps = Some(comps_of(root.as_os_str().as_bytes()));
    let open_in = |p: &Path, mkdirs: bool| {
        let flags = if mkdirs {
            libc::O_RDONLY | libc::O_DIRECTORY
        } else {
            libc::O_RDONLY
        };
        walk_in(
            Base::Cwd,
            p.as_os_str().as_bytes(),
            flags,
            0o700,
            mkdirs,
            comps.clone(),
        )
    };
    // Our own symlinks: followed while they stay inside the root.
    std::fs::create_dir(root.join("in")).unwrap();
    std::fs::write(root.join("in/rules"), "inside").unwrap();
    symlink("in", root.join("ilink")).unwrap();
    symlink("../outside", root.join("rel_out")).unwrap();
    symlink(b.join("outside"), root.join("abs_out")).unwrap();
    symlink("../outside/victim", root.join("file_out")).unwrap();
    let f = open_in(&root.join("ilink/rules"), false).unwrap();
    assert_eq!(read_fd(f), "inside");
    for p in [
        "rel_out/victim",
        "abs_out/victim",
        "file_out",
        "../outside/victim",
    ] {
        let e = open_in(&root.join(p), false).unwrap_err();
        assert!(is_refusal(&e), "{p}: {e}");
    }
    // Nothing is made out of the root either.
    let e = open_in(&root.join("rel_out/made"), true).unwrap_err();
    assert!(is_refusal(&e), "{e}");
    let e = open_in(&root.join("../made"), true).unwrap_err();
    assert!(is_refusal(&e), "{e}");
    assert!(!b.join("outside/made").exists() && !b.join("made").exists());
    assert!(open_in(&root.join("ilink/made/deeper"), true).is_ok());
    assert!(root.join("in/made/deeper").is_dir());
    // Unconfined, the same trusted symlinks lead out.
    assert!(open(&root.join("rel_out/victim"), libc::O_RDONLY, 0).is_ok());
}

#[test]
fn in_tree_directory_symlinks_are_followed_escaping_ones_refused() {
    let t = tree();
    let root = t.base.join("real");
    std::fs::create_dir_all(root.join("d/e")).unwrap();
    symlink("d", root.join("in")).unwrap();
    symlink("../outside", root.join("out")).unwrap();
    symlink(t.base.join("real/d"), root.join("abs")).unwrap();
    let r = std::fs::File::open(&root).unwrap();
    let r = r.as_fd();
    let d = open_dir_in_tree(r, Path::new("in/e")).unwrap();
    assert_eq!(fd_path(d.as_fd()).unwrap(), root.join("d/e"));
    assert!(open_dir_in_tree(r, Path::new("d")).is_ok());
    for bad in ["out", "out/sub", "abs", "..", "d/../..", "/tmp"] {
        let e = open_dir_in_tree(r, Path::new(bad)).unwrap_err();
        assert!(is_refusal(&e), "{bad}: {e}");
    }
}

#[test]
fn remove_tree_at_removes_a_tree_and_not_through_a_swapped_symlink() {
    use std::os::fd::AsFd;
    let t = tempfile::tempdir().unwrap();
    let base = t.path();
    std::fs::create_dir_all(base.join("d/sub/deeper")).unwrap();
    std::fs::write(base.join("d/sub/f"), b"x").unwrap();
    std::fs::create_dir_all(base.join("outside/keep")).unwrap();
    std::os::unix::fs::symlink(base.join("outside"), base.join("d/link")).unwrap();
    let dir = crate::open_dir(base).unwrap();
    // A symlink is removed as the link it is: what it points to stays.
    crate::remove_tree_at(dir.as_fd(), std::ffi::OsStr::new("d")).unwrap();
    assert!(!base.join("d").exists());
    assert!(base.join("outside/keep").is_dir());
    // A missing name is an error, not a silent success.
    assert!(crate::remove_tree_at(dir.as_fd(), std::ffi::OsStr::new("d")).is_err());
}
