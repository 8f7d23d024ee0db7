//! Differential test of rsyncd.conf module filters: a stock daemon (started
//! per connection through a fake remote shell, no network) serves a module
//! with filter parameters; what it sends must equal what our walker selects
//! with [`rtsync_filter::daemon::module_filter`].

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use rtsync_filter::daemon::{module_filter, ModuleFilterParams};
use rtsync_filter::FsSource;

use crate::util::{make_tree, our_selected, stock_rsync, write_file, TRICKY};

/// (parameter lines for the module, our equivalent)
struct DaemonCase {
    conf: &'static str,
    params: fn(&Path) -> ModuleFilterParams,
}

fn bytes(s: &str) -> Option<Vec<u8>> {
    Some(s.as_bytes().to_vec())
}

fn cases() -> Vec<DaemonCase> {
    vec![
        DaemonCase {
            conf: "exclude = *.o foo/",
            params: |_| ModuleFilterParams {
                exclude: bytes("*.o foo/"),
                ..Default::default()
            },
        },
        DaemonCase {
            conf: "exclude = /bar/foo dir/a/ sub/foo",
            params: |_| ModuleFilterParams {
                exclude: bytes("/bar/foo dir/a/ sub/foo"),
                ..Default::default()
            },
        },
        DaemonCase {
            conf: "include = */ *.c\nexclude = *",
            params: |_| ModuleFilterParams {
                include: bytes("*/ *.c"),
                exclude: bytes("*"),
                ..Default::default()
            },
        },
        DaemonCase {
            conf: "filter = - *.txt + src/ - src/*.c",
            params: |_| ModuleFilterParams {
                filter: bytes("- *.txt + src/ - src/*.c"),
                ..Default::default()
            },
        },
        DaemonCase {
            conf: "filter = P foo H core -r x~ -s a",
            params: |_| ModuleFilterParams {
                filter: bytes("P foo H core -r x~ -s a"),
                ..Default::default()
            },
        },
        DaemonCase {
            conf: "filter = . MERGE -_core",
            params: |work| ModuleFilterParams {
                filter: Some(format!(". {} -_core", work.join("merge").display()).into_bytes()),
                ..Default::default()
            },
        },
        DaemonCase {
            conf: "exclude from = EXCL\ninclude from = INCL",
            params: |work| ModuleFilterParams {
                exclude_from: Some(work.join("excl")),
                include_from: Some(work.join("incl")),
                ..Default::default()
            },
        },
    ]
}

const FAKE_DAEMON_SHELL: &str =
    "#!/bin/sh\nexec rsync --server --daemon --config=\"$RSYNCD_CONF\" .\n";

fn stock_daemon_selected(work: &Path, conf: &str) -> BTreeSet<String> {
    let root = work.join("src-root");
    let conf = conf
        .replace("EXCL", &work.join("excl").display().to_string())
        .replace("INCL", &work.join("incl").display().to_string())
        .replace("MERGE", &work.join("merge").display().to_string());
    let text = format!(
        "use chroot = no\nuid = 0\ngid = 0\n[mod]\npath = {}\nread only = yes\n{conf}\n",
        root.display()
    );
    write_file(work, "rsyncd.conf", &text);
    let out = Command::new(stock_rsync())
        .current_dir(work)
        .args(["-a", "--dry-run", "--out-format=%n", "-e"])
        .arg(work.join("fakedaemon"))
        .args(["fake::mod/", "never-created/"])
        .env("RSYNCD_CONF", work.join("rsyncd.conf"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stock daemon transfer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect()
}

#[test]
fn differential_daemon_module_filters() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    make_tree(&work.join("src-root"), TRICKY);
    write_file(work, "excl", "*.o\n# comment\n- core\n+ keep.txt\n*.txt\n");
    write_file(work, "incl", "src/\n- lib/\n");
    write_file(work, "merge", "- *.o\n- /foo/\n+ bar/\n- bar/*\n");
    write_file(work, "fakedaemon", FAKE_DAEMON_SHELL);
    std::fs::set_permissions(
        work.join("fakedaemon"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut failures = Vec::new();
    for case in cases() {
        let stock = stock_daemon_selected(work, case.conf);
        let mut set = module_filter(&(case.params)(work), &mut FsSource::default()).unwrap();
        let ours = our_selected(&mut set, &work.join("src-root")).unwrap();
        if stock != ours {
            let only_stock: Vec<_> = stock.difference(&ours).collect();
            let only_ours: Vec<_> = ours.difference(&stock).collect();
            failures.push(format!(
                "{:?}:\n  only stock: {only_stock:?}\n  only ours: {only_ours:?}",
                case.conf
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A daemon receiving with `--delete`: its module filter protects names.
#[test]
fn differential_daemon_receiver_deletions() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let src = work.join("src-root");
    let module = work.join("module");
    make_tree(&src, &["a", "sub/c", "keep/"]);
    make_tree(
        &module,
        &[
            "x.o",
            "y",
            "sub/z.o",
            "sub/w",
            "old/q.o",
            "old/r",
            "gone/t",
            "keep/k.tmp",
            "keep/m",
            "secret/s",
        ],
    );
    write_file(work, "fakedaemon", FAKE_DAEMON_SHELL);
    std::fs::set_permissions(
        work.join("fakedaemon"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let params: &[(&str, ModuleFilterParams)] = &[
        (
            "exclude = *.o secret/",
            ModuleFilterParams {
                exclude: bytes("*.o secret/"),
                ..Default::default()
            },
        ),
        (
            "filter = P *.tmp -p *.o",
            ModuleFilterParams {
                filter: bytes("P *.tmp -p *.o"),
                ..Default::default()
            },
        ),
    ];
    let mut failures = Vec::new();
    for (conf, ours_params) in params {
        let text = format!(
            "use chroot = no\nuid = 0\ngid = 0\n[mod]\npath = {}\nread only = no\n{conf}\n",
            module.display()
        );
        write_file(work, "rsyncd.conf", &text);
        let out = Command::new(stock_rsync())
            .current_dir(work)
            .args(["-a", "--dry-run", "--delete", "--out-format=%i %n", "-e"])
            .arg(work.join("fakedaemon"))
            .arg(format!("{}/", src.display()))
            .arg("fake::mod/")
            .env("RSYNCD_CONF", work.join("rsyncd.conf"))
            .output()
            .unwrap();
        let stock: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("*deleting").map(|n| n.trim().to_string()))
            .collect();
        assert!(
            stock.contains("y"),
            "stock daemon deleted nothing: {stock:?}"
        );
        let mut sender = rtsync_filter::FilterSet::new();
        let sent = our_selected(&mut sender, &src).unwrap();
        let mut set = module_filter(ours_params, &mut FsSource::default()).unwrap();
        let ours = crate::util::our_deleted(&mut set, &module, &sent);
        if stock != ours {
            failures.push(format!("{conf:?}: stock {stock:?}\n  ours {ours:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
