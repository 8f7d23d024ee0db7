//! `-A` / `--acls`: the ACLs rtsync gives what it receives (access ACLs with named users and
//! groups, masks, default ACLs of directories; extended ACLs removed where the sender has
//! none), its item lines (`.f.......a.`) and exit codes are stock's, locally and in every
//! pairing (rtsync's client against stock's daemon and server, stock's client against
//! rtsync's, rtsync on both ends; shell and daemon, push and pull). ACLs are set and read as
//! the kernel's `system.posix_acl_*` xattrs, so no setfacl is needed. Needs root.

mod daemon_util;
mod interop_util;
mod roles;

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use interop_util::{run_stock, set_atime, set_mtime, set_xattr, snapshot, write_file};
use roles::matrix::{self, Case, Side, Via, PAIRS};

const ACCESS: &str = "system.posix_acl_access";
const DEFAULT: &str = "system.posix_acl_default";
const USER_OBJ: u16 = 1;
const USER: u16 = 2;
const GROUP_OBJ: u16 = 4;
const GROUP: u16 = 8;
const MASK: u16 = 0x10;
const OTHER: u16 = 0x20;

/// Sets an ACL from (tag, perm, id) entries (kernel order: by tag, then id).
fn set_acl(path: &Path, which: &str, entries: &[(u16, u16, u32)]) {
    let mut blob = 2u32.to_le_bytes().to_vec();
    for &(tag, perm, id) in entries {
        blob.extend_from_slice(&tag.to_le_bytes());
        blob.extend_from_slice(&perm.to_le_bytes());
        blob.extend_from_slice(&id.to_le_bytes());
    }
    let p = CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = CString::new(which).unwrap();
    // SAFETY: valid C strings and a buffer of the length given.
    let r = unsafe { libc::lsetxattr(p.as_ptr(), n.as_ptr(), blob.as_ptr().cast(), blob.len(), 0) };
    assert_eq!(r, 0, "setxattr {which} on {}", path.display());
}

/// An ACL's raw xattr value, if it has one.
fn get_acl(path: &Path, which: &str) -> Option<Vec<u8>> {
    let p = CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = CString::new(which).unwrap();
    let mut buf = vec![0u8; 4096];
    // SAFETY: valid C strings and a buffer of the length given.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (r >= 0).then(|| {
        buf.truncate(r as usize);
        buf
    })
}

/// An item's access and default ACL xattrs.
type AclPair = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Every non-symlink's access and default ACL under `root`, by relative path.
fn acls(root: &Path) -> BTreeMap<String, AclPair> {
    let mut out = BTreeMap::new();
    for (rel, node) in snapshot(root, false) {
        if node.kind == "symlink" {
            continue;
        }
        let p = root.join(&rel);
        out.insert(rel, (get_acl(&p, ACCESS), get_acl(&p, DEFAULT)));
    }
    out.insert(".".into(), (get_acl(root, ACCESS), get_acl(root, DEFAULT)));
    out
}

fn mode(p: &Path, m: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

/// The source: files with named users (uid 1 has a name, 4321 none) and groups, a mask with
/// no names, a group entry differing from the mask, none at all; a directory with a default
/// ACL, one with an access ACL, a fifo with an ACL, a symlink. Then a destination made by
/// stock (`-aA`) before the source's ACLs changed, with ACLs of its own added.
fn prepare(base: &Path) {
    let (src, dst) = (base.join("src"), base.join("dst"));
    for d in [src.join("d/sub"), src.join("e")] {
        std::fs::create_dir_all(d).unwrap();
    }
    for (i, f) in ["plain", "named", "maskonly", "grp", "d/inner", "e/x"]
        .iter()
        .enumerate()
    {
        let p = write_file(&src.join(f), format!("data {i}\n").as_bytes());
        set_mtime(&p, 1_600_000_000 + i as i64, 0);
    }
    mode(&src.join("plain"), 0o644);
    mode(&src.join("named"), 0o664);
    set_acl(
        &src.join("named"),
        ACCESS,
        &[
            (USER_OBJ, 6, u32::MAX),
            (USER, 6, 1),
            (GROUP_OBJ, 4, u32::MAX),
            (GROUP, 4, 4321),
            (MASK, 6, u32::MAX),
            (OTHER, 4, u32::MAX),
        ],
    );
    set_acl(
        &src.join("maskonly"),
        ACCESS,
        &[
            (USER_OBJ, 6, u32::MAX),
            (GROUP_OBJ, 6, u32::MAX),
            (MASK, 4, u32::MAX),
            (OTHER, 0, u32::MAX),
        ],
    );
    std::os::unix::fs::symlink("named", src.join("link")).unwrap();
    set_mtime(&src.join("link"), 1_600_000_200, 0);
    let fifo = CString::new(src.join("fifo").as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o640) }, 0);
    set_acl(
        &src.join("fifo"),
        ACCESS,
        &[
            (USER_OBJ, 6, u32::MAX),
            (USER, 4, 0),
            (GROUP_OBJ, 4, u32::MAX),
            (MASK, 4, u32::MAX),
            (OTHER, 0, u32::MAX),
        ],
    );
    set_mtime(&src.join("fifo"), 1_600_000_300, 0);
    mode(&src.join("e"), 0o775);
    set_acl(
        &src.join("e"),
        ACCESS,
        &[
            (USER_OBJ, 7, u32::MAX),
            (GROUP_OBJ, 5, u32::MAX),
            (GROUP, 7, 2),
            (MASK, 7, u32::MAX),
            (OTHER, 5, u32::MAX),
        ],
    );
    set_acl(
        &src.join("grp"),
        ACCESS,
        &[
            (USER_OBJ, 6, u32::MAX),
            (USER, 6, 4321),
            (GROUP_OBJ, 4, u32::MAX),
            (MASK, 6, u32::MAX),
            (OTHER, 4, u32::MAX),
        ],
    );
    // The destination as stock made it from the source's first state.
    let from = format!("{}/", src.display());
    let to = format!("{}/", dst.display());
    let out = run_stock(&["-aA", &from, &to]);
    assert!(out.status.success(), "{out:?}");
    // The source changes: ACLs only.
    set_acl(
        &src.join("named"),
        ACCESS,
        &[
            (USER_OBJ, 6, u32::MAX),
            (USER, 4, 1),
            (USER, 6, 4321),
            (GROUP_OBJ, 4, u32::MAX),
            (GROUP, 6, 4321),
            (MASK, 6, u32::MAX),
            (OTHER, 4, u32::MAX),
        ],
    );
    set_acl(
        &src.join("d"),
        DEFAULT,
        &[
            (USER_OBJ, 7, u32::MAX),
            (USER, 7, 1),
            (GROUP_OBJ, 5, u32::MAX),
            (MASK, 7, u32::MAX),
            (OTHER, 5, u32::MAX),
        ],
    );
    let sub = src.join("d/sub");
    set_acl(
        &sub,
        DEFAULT,
        &[
            (USER_OBJ, 7, u32::MAX),
            (GROUP_OBJ, 5, u32::MAX),
            (OTHER, 0, u32::MAX),
        ],
    );
    // A new file in a directory whose default ACL it would inherit.
    let p = write_file(&src.join("e/new"), b"new\n");
    set_mtime(&p, 1_600_000_100, 0);
    // The destination's own ACLs: an extended one where the source has none, a default
    // ACL the source's directory lacks.
    set_acl(
        &dst.join("plain"),
        ACCESS,
        &[
            (USER_OBJ, 6, u32::MAX),
            (USER, 7, 3),
            (GROUP_OBJ, 4, u32::MAX),
            (MASK, 7, u32::MAX),
            (OTHER, 4, u32::MAX),
        ],
    );
    set_acl(
        &dst.join("e"),
        DEFAULT,
        &[
            (USER_OBJ, 7, u32::MAX),
            (USER, 5, 1),
            (GROUP_OBJ, 5, u32::MAX),
            (MASK, 5, u32::MAX),
            (OTHER, 0, u32::MAX),
        ],
    );
    // Times of the directories as in the source (their lines then show the ACLs only).
    for d in ["", "d", "d/sub", "e"] {
        set_mtime(&src.join(d), 1_600_000_500, 0);
        set_mtime(&dst.join(d), 1_600_000_500, 0);
    }
}

const CASES: &[&[&str]] = &[
    &["-aAi"],
    &["-aAi", "--no-inc-recursive"],
    &["-aAi", "--numeric-ids"],
    &["-rlDtAi", "--delete"],
];

fn check_acls(ours: &Path, stock: &Path, what: &str) {
    let (a, b) = (acls(&ours.join("dst")), acls(&stock.join("dst")));
    assert_eq!(a, b, "ACLs differ: {what}");
    let (a, b) = (
        snapshot(&ours.join("dst"), true),
        snapshot(&stock.join("dst"), true),
    );
    assert_eq!(a, b, "trees differ: {what}");
}

/// [`prepare`] with extended attributes (short and abbreviated values, stale ones in `dst/`)
/// and old access times beside the ACLs: `-AXU` together, in stock's list order.
fn prepare_with_xattrs(base: &Path) {
    prepare(base);
    let (src, dst) = (base.join("src"), base.join("dst"));
    set_xattr(&src.join("named"), "user.short", b"s");
    set_xattr(&src.join("named"), "user.long", &[b'L'; 100]);
    set_xattr(&dst.join("named"), "user.long", &[b'l'; 100]);
    set_xattr(
        &src.join("d"),
        "user.dir",
        b"on a directory with a default ACL",
    );
    set_xattr(&src.join("d/inner"), "user.inner", &[b'i'; 64]);
    for f in ["plain", "named", "d/inner"] {
        set_atime(&src.join(f), 1_500_000_000);
    }
}

fn pairing(via: Via, push: bool) {
    pairing_with(via, push, &prepare, CASES);
    pairing_with(via, push, &prepare_with_xattrs, &[&["-aAXUi"]]);
}

fn pairing_with(via: Via, push: bool, prepare: &dyn Fn(&Path), cases: &[&[&str]]) {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "these tests need root");
    for opts in cases {
        for (client, server) in PAIRS {
            let ours = tempfile::tempdir().unwrap();
            let stock = tempfile::tempdir().unwrap();
            let roles = (client, server, via, push);
            let case = Case::new(opts, &[""]);
            let got = matrix::run(ours.path(), prepare, roles, case);
            let want = matrix::run(
                stock.path(),
                prepare,
                (Side::Stock, Side::Stock, via, push),
                case,
            );
            let what = format!("{roles:?} {opts:?}");
            assert_eq!(got.output, want.output, "output differs: {what}");
            let all = opts.contains(&"-aAXUi");
            let shown = if all { "uax named" } else { "a. named" };
            assert!(
                want.output.contains(shown),
                "the case shows an ACL change: {}",
                want.output
            );
            // (Before the trees are read: reading a file moves its access time.)
            if all {
                for f in ["plain", "named", "d/inner"] {
                    let at = |b: &Path| {
                        let md = std::fs::symlink_metadata(b.join("dst").join(f)).unwrap();
                        std::os::unix::fs::MetadataExt::atime(&md)
                    };
                    assert_eq!(at(stock.path()), 1_500_000_000, "{what}: {f}");
                    assert_eq!(at(ours.path()), at(stock.path()), "{what}: {f}");
                }
            }
            check_acls(ours.path(), stock.path(), &what);
        }
    }
}

#[test]
fn acls_over_a_shell_push() {
    pairing(Via::Shell, true);
}

#[test]
fn acls_over_a_shell_pull() {
    pairing(Via::Shell, false);
}

#[test]
fn acls_to_a_daemon() {
    pairing(Via::Daemon, true);
}

#[test]
fn acls_from_a_daemon() {
    pairing(Via::Daemon, false);
}

/// Runs a local copy `src/` → `dst/` in `base` with stock or rtsync.
fn local(base: &Path, ours: bool, opts: &[&str]) -> (String, Option<i32>) {
    let args: Vec<&str> = opts.iter().copied().chain(["src/", "dst/"]).collect();
    interop_util::run_local(ours, base, &args)
}

#[test]
fn acls_local() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "these tests need root");
    let more: &[&[&str]] = &[
        &["-aAin"],
        &["-aAv"],
        &["-aAi", "--chmod=g-w"],
        &["-aAi", "--usermap=1:2,4321:0", "--groupmap=4321:3"],
        &["-aAi", "--inplace"],
    ];
    for opts in CASES.iter().chain(more) {
        let ours = tempfile::tempdir().unwrap();
        let stock = tempfile::tempdir().unwrap();
        prepare(ours.path());
        prepare(stock.path());
        let got = local(ours.path(), true, opts);
        let want = local(stock.path(), false, opts);
        assert_eq!(got, want, "local {opts:?}");
        check_acls(ours.path(), stock.path(), &format!("local {opts:?}"));
    }
}

/// Without `-p` a new item's permissions are those its directory's default ACL allows, not
/// the umask's (stock's default_perms_for_dir).
#[test]
fn default_acl_stands_in_for_the_umask() {
    for opts in [&["-r"][..], &["-rt", "--no-p"][..]] {
        let run = |ours: bool| {
            let base = tempfile::tempdir().unwrap();
            let (src, dst) = (base.path().join("src"), base.path().join("dst"));
            std::fs::create_dir_all(src.join("dir")).unwrap();
            write_file(&src.join("f"), b"x");
            mode(&src.join("f"), 0o666);
            mode(&src.join("dir"), 0o777);
            std::fs::create_dir(&dst).unwrap();
            set_acl(
                &dst,
                DEFAULT,
                &[
                    (USER_OBJ, 7, u32::MAX),
                    (GROUP_OBJ, 7, u32::MAX),
                    (OTHER, 3, u32::MAX),
                ],
            );
            let out = local(base.path(), ours, opts);
            let perms: Vec<u32> = ["f", "dir"]
                .iter()
                .map(|f| {
                    use std::os::unix::fs::MetadataExt;
                    std::fs::metadata(dst.join(f)).unwrap().mode() & 0o7777
                })
                .collect();
            (out, perms, acls(&dst))
        };
        let (got, want) = (run(true), run(false));
        assert_eq!(want.1, vec![0o662, 0o773], "stock's reference");
        assert_eq!(got, want, "{opts:?}");
    }
}
