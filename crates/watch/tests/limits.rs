//! Kernel limits: queue overflow and the watch limit. Each test lowers a sysctl for a moment
//! and restores it, also when it fails; they run one at a time.

use std::fs;
use std::sync::Mutex;
use std::time::Duration;

use rtsync_watch::{EventKind, WatchError, WatchOptions, Watcher};

static SERIAL: Mutex<()> = Mutex::new(());

/// Sets a sysctl and puts the old value back when dropped.
struct Sysctl {
    path: String,
    old: String,
}

impl Sysctl {
    fn set(name: &str, value: u64) -> Sysctl {
        let path = format!("/proc/sys/fs/inotify/{name}");
        let old = fs::read_to_string(&path).expect("read sysctl (tests run as root)");
        fs::write(&path, value.to_string()).expect("write sysctl (tests run as root)");
        Sysctl { path, old }
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        fs::write(&self.path, self.old.trim()).expect("restore sysctl");
    }
}

#[test]
fn overflow_is_a_rescan_and_the_watch_map_is_repaired() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = tempfile::tempdir().unwrap();
    fs::create_dir(d.path().join("old")).unwrap();
    let mut w = {
        // The queue size is fixed when the instance is created.
        let _limit = Sysctl::set("max_queued_events", 8);
        Watcher::new(d.path(), WatchOptions::default()).unwrap()
    };
    for i in 0..40 {
        fs::write(d.path().join(format!("f{i}")), b"x").unwrap();
    }
    // Directories created while events are being lost must still end up watched.
    fs::create_dir_all(d.path().join("lost/inner")).unwrap();
    let mut kinds = Vec::new();
    while let Some(ev) = w.next_event(Some(Duration::from_millis(300))).unwrap() {
        kinds.push(ev.kind);
    }
    assert!(kinds.contains(&EventKind::RescanNeeded), "{kinds:?}");
    assert_eq!(w.watch_count(), 4, "root, old, lost, lost/inner");
    fs::write(d.path().join("lost/inner/after"), b"x").unwrap();
    let ev = w.next_event(Some(Duration::from_secs(5))).unwrap().unwrap();
    assert_eq!(ev.kind, EventKind::Create);
    assert_eq!(ev.path, std::path::Path::new("lost/inner/after"));
}

#[test]
fn running_out_of_watches_names_the_sysctl_and_its_value() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = tempfile::tempdir().unwrap();
    for i in 0..20 {
        fs::create_dir(d.path().join(format!("d{i}"))).unwrap();
    }
    let err = {
        let _limit = Sysctl::set("max_user_watches", 3);
        Watcher::new(d.path(), WatchOptions::default()).unwrap_err()
    };
    match &err {
        WatchError::WatchLimit { current, .. } => assert_eq!(*current, 3),
        other => panic!("expected WatchLimit, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("fs.inotify.max_user_watches"), "{msg}");
    assert!(msg.contains("currently 3"), "{msg}");
}

#[test]
fn after_an_overflow_a_rescan_rebuilds_the_tree() {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};
    fn walk(root: &Path) -> BTreeSet<PathBuf> {
        let mut out = BTreeSet::new();
        let mut stack = vec![PathBuf::new()];
        while let Some(rel) = stack.pop() {
            for e in fs::read_dir(root.join(&rel)).unwrap().flatten() {
                let p = rel.join(e.file_name());
                if e.file_type().unwrap().is_dir() {
                    stack.push(p.clone());
                }
                out.insert(p);
            }
        }
        out
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = tempfile::tempdir().unwrap();
    fs::create_dir_all(d.path().join("a/b")).unwrap();
    let mut w = {
        let _limit = Sysctl::set("max_queued_events", 16);
        Watcher::new(d.path(), WatchOptions::default()).unwrap()
    };
    let mut model = walk(d.path());
    for i in 0..30 {
        fs::create_dir_all(d.path().join(format!("a/n{i}/deep"))).unwrap();
        fs::write(d.path().join(format!("a/n{i}/deep/f")), b"x").unwrap();
        if i % 3 == 0 {
            fs::rename(
                d.path().join(format!("a/n{i}")),
                d.path().join(format!("r{i}")),
            )
            .unwrap();
        }
    }
    fs::remove_dir_all(d.path().join("a/b")).unwrap();
    let mut rescans = 0;
    while let Some(ev) = w.next_event(Some(Duration::from_millis(300))).unwrap() {
        match ev.kind {
            EventKind::Create => {
                model.insert(ev.path);
            }
            EventKind::Delete => model.retain(|p| !p.starts_with(&ev.path)),
            EventKind::Move { from } => {
                let moved: Vec<PathBuf> = model
                    .iter()
                    .filter(|p| p.starts_with(&from))
                    .cloned()
                    .collect();
                model.retain(|p| !p.starts_with(&from));
                for p in moved {
                    model.insert(ev.path.join(p.strip_prefix(&from).unwrap()));
                }
            }
            EventKind::RescanNeeded => {
                rescans += 1;
                model = walk(d.path());
            }
            _ => {}
        }
    }
    assert!(rescans > 0);
    assert_eq!(model, walk(d.path()));
    // Every directory is watched again: one more change deep down is seen.
    fs::write(d.path().join("r27/deep/late"), b"x").unwrap();
    let ev = w.next_event(Some(Duration::from_secs(5))).unwrap().unwrap();
    assert_eq!(ev.path, Path::new("r27/deep/late"));
}
