//! `--fake-super` compared with stock rsync: a receiver with it records what it may not set
//! (owner, group, device numbers, special permission bits, the type of devices, specials
//! and symlinks, ACLs) in `user.rsync.%stat` / `%aacl` / `%dacl` instead, a sender with it
//! reads them back. Locally (both sides, `-M--fake-super` for the receiver only,
//! `--fake-super -M--super` for the sender only, `--super`/`--no-super` after it) and in
//! every pairing (rtsync's client against stock's server and daemon, stock's client against
//! rtsync's, rtsync on both ends; shell and daemon, push and pull, a daemon module with
//! `fake super = yes`). The trees are compared with their extended attributes, and the
//! output and exit codes too. Needs root (the source's owners, devices made for real).

mod daemon_util;
mod interop_util;
mod roles;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use interop_util::{assert_same_tree_in, run_local, set_mtime, set_xattr, snapshot, write_file};
use roles::matrix::{self, Case, Via, PAIRS};

const STAT: &str = "user.rsync.%stat";

fn chmod(p: &Path, m: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

fn mkfifo(p: &Path) {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o640) }, 0);
}

/// A source as a `--fake-super` receiver leaves one: owners, a set-uid bit, a device, a fifo
/// and a symlink recorded in `%stat` (the stand-ins regular files), a foreign-namespace
/// attribute stored under `user.rsync.`; real items beside them (a fifo, a symlink, a
/// plain file with a `user.` attribute). A destination with stale records of its own.
fn prepare(base: &Path) {
    let (src, dst) = (base.join("src"), base.join("dst"));
    std::fs::create_dir_all(src.join("dir")).unwrap();
    std::fs::create_dir_all(dst.join("dir")).unwrap();
    let files: [(&str, &[u8]); 8] = [
        ("owned", b"owned by 5000\n"),
        ("setuid", b"#!/bin/sh\n"),
        ("chardev", b""),
        ("fakefifo", b""),
        ("fakelink", b"owned"),
        ("plain", b"plain\n"),
        ("dir/inner", b"inner\n"),
        ("foreign", b"foreign\n"),
    ];
    for (i, (name, data)) in files.iter().enumerate() {
        let p = write_file(&src.join(name), data);
        chmod(&p, 0o644);
        set_mtime(&p, 1_600_000_000 + i as i64, 0);
    }
    set_xattr(&src.join("owned"), STAT, b"100640 0,0 5000:5002");
    set_xattr(&src.join("setuid"), STAT, b"104755 0,0 0:0");
    set_xattr(&src.join("chardev"), STAT, b"20644 41,67 0:0");
    set_xattr(&src.join("fakefifo"), STAT, b"10600 0,0 7:8");
    set_xattr(&src.join("fakelink"), STAT, b"120777 0,0 0:0");
    set_xattr(&src.join("dir"), STAT, b"40750 0,0 5001:5003");
    set_xattr(&src.join("plain"), "user.note", b"kept");
    set_xattr(&src.join("foreign"), "user.rsync.trusted.t", b"was trusted");
    mkfifo(&src.join("realfifo"));
    set_mtime(&src.join("realfifo"), 1_600_000_100, 0);
    std::os::unix::fs::symlink("plain", src.join("reallink")).unwrap();
    set_mtime(&src.join("reallink"), 1_600_000_200, 0);
    // What an earlier fake-super run left, now stale: another owner, another device.
    let p = write_file(&dst.join("owned"), b"owned by 5000\n");
    set_mtime(&p, 1_600_000_000, 0);
    set_xattr(&p, STAT, b"100640 0,0 1:1");
    let p = write_file(&dst.join("chardev"), b"");
    set_mtime(&p, 1_600_000_002, 0);
    set_xattr(&p, STAT, b"20644 42,68 0:0");
    for d in [src.clone(), src.join("dir"), dst.clone(), dst.join("dir")] {
        set_mtime(&d, 1_600_000_500, 0);
    }
}

/// A kernel ACL xattr value from (tag, perm, id) entries.
fn acl_blob(entries: &[(u16, u16, u32)]) -> Vec<u8> {
    let mut blob = 2u32.to_le_bytes().to_vec();
    for &(tag, perm, id) in entries {
        blob.extend_from_slice(&tag.to_le_bytes());
        blob.extend_from_slice(&perm.to_le_bytes());
        blob.extend_from_slice(&id.to_le_bytes());
    }
    blob
}

/// [`prepare`] with ACLs: a named user on a file, a default ACL on a directory (real
/// ones), and ACLs a fake-super receiver stored before (in `%aacl`/`%dacl`).
fn prepare_acls(base: &Path) {
    prepare(base);
    let src = base.join("src");
    let none = u32::MAX;
    set_xattr(
        &src.join("plain"),
        "system.posix_acl_access",
        &acl_blob(&[
            (1, 6, none),
            (2, 7, 1234),
            (4, 4, none),
            (0x10, 7, none),
            (0x20, 4, none),
        ]),
    );
    set_xattr(
        &src.join("dir"),
        "system.posix_acl_default",
        &acl_blob(&[(1, 7, none), (4, 5, none), (0x20, 0, none)]),
    );
    // owner -, group 5, mask 7, other -, user 1000 rwx.
    let mut aacl = Vec::new();
    for v in [0x80u32, 5, 7, 0x80, 1000, 7 | 1 << 31] {
        aacl.extend_from_slice(&v.to_le_bytes());
    }
    set_xattr(&src.join("owned"), "user.rsync.%aacl", &aacl);
    set_mtime(&src.join("dir"), 1_600_000_500, 0);
}

const LOCAL_ACLS: &[&[&str]] = &[
    &["-aAXi", "--fake-super"],
    &["-aAi", "-M--fake-super"],
    &["-aAi", "--fake-super", "-M--super"],
];

/// The options of the local cases, `-D` and `-X` included where they matter.
const LOCAL: &[&[&str]] = &[
    &["-aHi", "--fake-super"],
    &["-aiX", "--fake-super"],
    &["-aiX", "-M--fake-super"],
    &["-ai", "--fake-super", "-M--super"],
    &["-ai", "--fake-super", "--no-super"],
    &["-ai", "--fake-super", "--super"],
    &["-ai", "--super", "--fake-super"],
    // (Not without -o/-g: stock then records ids read from the wrong place, whatever
    // they happen to be.)
    &["-ai", "--fake-super", "--chmod=a=,u+s"],
    &["-aiXn", "--fake-super"],
];

fn local(base: &Path, ours: bool, opts: &[&str]) -> (String, Option<i32>) {
    let args: Vec<&str> = opts.iter().copied().chain(["src/", "dst/"]).collect();
    run_local(ours, base, &args)
}

fn same_trees(ours: &Path, stock: &Path, what: &str) {
    for d in ["src", "dst"] {
        assert_same_tree_in(
            &ours.join(d),
            &stock.join(d),
            true,
            &format!("{d} differs: {what}"),
        );
    }
}

fn need_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "these tests need root");
}

/// Each option set copies a tree made by `prepare` twice (the first copy, then again over
/// it), through rtsync and through stock: same output, exit code and trees.
fn compare_local(prepare: fn(&Path), table: &[&[&str]]) {
    need_root();
    for opts in table {
        let ours = tempfile::tempdir().unwrap();
        let stock = tempfile::tempdir().unwrap();
        prepare(ours.path());
        prepare(stock.path());
        for pass in ["first", "again"] {
            let got = local(ours.path(), true, opts);
            let want = local(stock.path(), false, opts);
            assert_eq!(got, want, "local {opts:?} ({pass})");
            same_trees(
                ours.path(),
                stock.path(),
                &format!("local {opts:?} ({pass})"),
            );
        }
    }
}

#[test]
fn fake_super_local() {
    compare_local(prepare, LOCAL);
}

#[test]
fn fake_super_local_acls() {
    compare_local(prepare_acls, LOCAL_ACLS);
}

#[test]
fn fake_super_acls_over_a_shell() {
    need_root();
    for push in [true, false] {
        for opts in [
            &["-aAi", "-M--fake-super"][..],
            &["-aAi", "--fake-super"][..],
        ] {
            for (client, server) in PAIRS {
                let case = Case::new(opts, &[""]);
                matrix::compare(&prepare_acls, (client, server, Via::Shell, push), case);
            }
        }
    }
}

/// What it is for: a user who is not root keeps what only root could set. The tree is
/// handed to `nobody`, who copies it (and copies the copy back) with `--fake-super`.
#[test]
fn fake_super_local_as_a_user() {
    need_root();
    let run = |base: &Path, ours: bool, from: &str, to: &str| {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid", "nobody", "--regid", "nogroup", "--clear-groups"]);
        if ours {
            c.arg(env!("CARGO_BIN_EXE_rtsync")).arg("rsync");
        } else {
            c.arg(interop_util::stock_rsync());
        }
        let out = c
            .args(["-aiX", "--fake-super", from, to])
            .current_dir(base)
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
            out.status.code(),
        )
    };
    let ours = tempfile::tempdir().unwrap();
    let stock = tempfile::tempdir().unwrap();
    for b in [ours.path(), stock.path()] {
        prepare(b);
        let st = std::process::Command::new("chown")
            .args(["-hR", "nobody:nogroup"])
            .arg(b)
            .status()
            .unwrap();
        assert!(st.success());
    }
    for (from, to) in [("src/", "dst/"), ("src/", "dst/"), ("dst/", "back/")] {
        let got = run(ours.path(), true, from, to);
        let want = run(stock.path(), false, from, to);
        assert_eq!(got, want, "{from} -> {to}");
        assert_eq!(want.1, Some(0), "{}", want.0);
        same_trees(ours.path(), stock.path(), &format!("{from} -> {to}"));
    }
    let back = |b: &Path| snapshot(&b.join("back"), true);
    assert_eq!(back(ours.path()), back(stock.path()));
}

/// The cases must show what they are about: stock's own run records devices and owners.
#[test]
fn the_reference_records_what_it_may_not_set() {
    need_root();
    let base = tempfile::tempdir().unwrap();
    prepare(base.path());
    let (out, code) = local(base.path(), false, &["-ai", "--fake-super"]);
    assert_eq!(code, Some(0), "{out}");
    let get = |f: &str| rtsync_tree::xattr::get(&base.path().join("dst").join(f), STAT.as_bytes());
    assert_eq!(get("chardev").unwrap().unwrap(), b"20644 41,67 0:0");
    assert_eq!(get("owned").unwrap().unwrap(), b"100640 0,0 5000:5002");
    assert_eq!(get("realfifo").unwrap().unwrap(), b"10640 0,0 0:0");
    let md = std::fs::symlink_metadata(base.path().join("dst/realfifo")).unwrap();
    assert!(md.is_file(), "a fifo becomes a regular stand-in");
}

/// `-XX` cannot be combined with it; neither side starts.
#[test]
fn fake_super_conflicts_with_xx() {
    let base = tempfile::tempdir().unwrap();
    prepare(base.path());
    let got = local(base.path(), true, &["-aXX", "--fake-super"]);
    let want = local(base.path(), false, &["-aXX", "--fake-super"]);
    assert_eq!(got, want);
    assert_eq!(want.1, Some(1));
}

fn pairing(via: Via, push: bool, cases: &[(&[&str], &str)]) {
    need_root();
    for (opts, module) in cases {
        for (client, server) in PAIRS {
            let roles = (client, server, via, push);
            let case = Case::new(opts, &[""]).module(module);
            matrix::compare(&prepare, roles, case);
        }
    }
}

/// Through a shell, the option applies to the side it is given to: the client's own, or
/// the server's with `-M`.
const SHELL: &[(&[&str], &str)] = &[
    (&["-aiX", "--fake-super"], ""),
    (&["-aiX", "-M--fake-super"], ""),
    (&["-aiX", "--fake-super", "-M--fake-super"], ""),
];

#[test]
fn fake_super_over_a_shell_push() {
    pairing(Via::Shell, true, SHELL);
}

#[test]
fn fake_super_over_a_shell_pull() {
    pairing(Via::Shell, false, SHELL);
}

/// A daemon module's `fake super = yes` makes the daemon's side fake; a client's
/// `--fake-super` is its own side's (the daemon takes it as `--super`).
const DAEMON: &[(&[&str], &str)] = &[
    (&["-aiX"], "fake super = yes"),
    (&["-aiX", "--fake-super"], "fake super = yes"),
    (&["-ai", "--fake-super"], ""),
    (&["-ai", "-M--fake-super"], ""),
];

#[test]
fn fake_super_to_a_daemon() {
    pairing(Via::Daemon, true, DAEMON);
}

#[test]
fn fake_super_from_a_daemon() {
    pairing(Via::Daemon, false, DAEMON);
}
