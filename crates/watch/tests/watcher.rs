//! The recursive watcher against a real kernel: paths through renames, scans of new
//! directories, move pairing, exclusions, removals.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rtsync_watch::{Event, EventKind, WatchOptions, Watcher};

/// Everything the watcher reports until it has been quiet for a moment.
fn drain(w: &mut Watcher) -> Vec<Event> {
    let mut out = Vec::new();
    while let Some(ev) = w
        .next_event(Some(Duration::from_millis(300)))
        .expect("next_event")
    {
        out.push(ev);
    }
    out
}

fn has(events: &[Event], kind: &EventKind, path: &str) -> bool {
    events
        .iter()
        .any(|e| &e.kind == kind && e.path == Path::new(path))
}

fn tree(spec: &[&str]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for p in spec {
        let full = d.path().join(p);
        if p.ends_with('/') {
            fs::create_dir_all(full).unwrap();
        } else {
            fs::create_dir_all(full.parent().unwrap()).unwrap();
            fs::write(full, b"x").unwrap();
        }
    }
    d
}

#[test]
fn renamed_directory_subtree_gets_new_paths() {
    let d = tree(&["a/b/c/", "a/b/f"]);
    let mut w = Watcher::new(d.path(), WatchOptions::default()).unwrap();
    assert_eq!(w.watch_count(), 4);
    fs::rename(d.path().join("a"), d.path().join("z")).unwrap();
    let evs = drain(&mut w);
    assert_eq!(
        evs,
        vec![Event {
            kind: EventKind::Move {
                from: PathBuf::from("a")
            },
            path: PathBuf::from("z"),
            is_dir: true,
            from_scan: false,
        }]
    );
    // The root's own attributes, and a subdirectory's (reported once, by its parent).
    let mode = |p: &Path, m: u32| {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap()
    };
    mode(d.path(), 0o750);
    mode(&d.path().join("z/b"), 0o750);
    let evs = drain(&mut w);
    assert_eq!(
        evs.iter()
            .map(|e| (e.kind.clone(), e.path.clone()))
            .collect::<Vec<_>>(),
        vec![
            (EventKind::Attrib, "".into()),
            (EventKind::Attrib, "z/b".into())
        ]
    );
    fs::write(d.path().join("z/b/c/new"), b"1").unwrap();
    fs::rename(d.path().join("z/b"), d.path().join("top")).unwrap();
    fs::write(d.path().join("top/c/newer"), b"1").unwrap();
    let evs = drain(&mut w);
    assert!(has(&evs, &EventKind::Create, "z/b/c/new"), "{evs:?}");
    assert!(has(&evs, &EventKind::CloseWrite, "z/b/c/new"), "{evs:?}");
    assert!(
        has(&evs, &EventKind::Move { from: "z/b".into() }, "top"),
        "{evs:?}"
    );
    assert!(has(&evs, &EventKind::Create, "top/c/newer"), "{evs:?}");
    assert_eq!(w.watch_count(), 4);
}

#[test]
fn new_directories_are_scanned_for_what_was_created_before_the_watch() {
    let d = tree(&["x/"]);
    let mut w = Watcher::new(d.path(), WatchOptions::default()).unwrap();
    // The watcher reads nothing until asked, so all of this happens before it can watch `new`.
    fs::create_dir_all(d.path().join("new/a/b")).unwrap();
    fs::write(d.path().join("new/a/b/f"), b"1").unwrap();
    fs::write(d.path().join("new/top"), b"1").unwrap();
    let evs = drain(&mut w);
    assert!(has(&evs, &EventKind::Create, "new"));
    for p in ["new/a", "new/a/b", "new/a/b/f", "new/top"] {
        let e = evs
            .iter()
            .find(|e| e.kind == EventKind::Create && e.path == Path::new(p))
            .unwrap_or_else(|| panic!("{p} not reported: {evs:?}"));
        assert!(e.from_scan);
    }
    // Each path reported once, not once by the scan and again by the kernel.
    let creates = evs.iter().filter(|e| e.kind == EventKind::Create).count();
    assert_eq!(creates, 5, "{evs:?}");
    assert_eq!(w.watch_count(), 5);
    fs::write(d.path().join("new/a/b/later"), b"1").unwrap();
    assert!(has(&drain(&mut w), &EventKind::Create, "new/a/b/later"));
}

#[test]
fn moves_pair_by_cookie_and_unpaired_halves_are_creates_or_deletes() {
    let d = tree(&["t/f", "t/dir/inner", "outside/"]);
    let root = d.path().join("t");
    let mut w = Watcher::new(&root, WatchOptions::default()).unwrap();
    fs::rename(root.join("f"), root.join("dir/g")).unwrap();
    fs::rename(root.join("dir"), d.path().join("outside/dir")).unwrap();
    let evs = drain(&mut w);
    assert!(
        has(&evs, &EventKind::Move { from: "f".into() }, "dir/g"),
        "{evs:?}"
    );
    assert!(has(&evs, &EventKind::Delete, "dir"), "{evs:?}");
    assert_eq!(
        w.watch_count(),
        1,
        "the moved-out subtree is no longer watched"
    );
    // Activity in the moved-out directory is not reported under any path.
    fs::write(d.path().join("outside/dir/after"), b"1").unwrap();
    assert_eq!(drain(&mut w), vec![]);
    // Moving it back in is a create, and its contents are reported by the scan.
    fs::rename(d.path().join("outside/dir"), root.join("back")).unwrap();
    let evs = drain(&mut w);
    assert!(has(&evs, &EventKind::Create, "back"), "{evs:?}");
    assert!(has(&evs, &EventKind::Create, "back/g"), "{evs:?}");
    assert!(has(&evs, &EventKind::Create, "back/after"), "{evs:?}");
    assert_eq!(w.watch_count(), 2);
}

#[test]
fn editor_save_through_a_temp_file_is_a_move_over_the_target() {
    let d = tree(&["doc.txt"]);
    let mut w = Watcher::new(d.path(), WatchOptions::default()).unwrap();
    fs::write(d.path().join(".doc.txt.swp"), b"new").unwrap();
    fs::rename(d.path().join(".doc.txt.swp"), d.path().join("doc.txt")).unwrap();
    let evs = drain(&mut w);
    let kinds: Vec<_> = evs
        .iter()
        .map(|e| (e.kind.clone(), e.path.clone()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (EventKind::Create, ".doc.txt.swp".into()),
            (EventKind::Modify, ".doc.txt.swp".into()),
            (EventKind::CloseWrite, ".doc.txt.swp".into()),
            (
                EventKind::Move {
                    from: ".doc.txt.swp".into()
                },
                "doc.txt".into()
            ),
        ]
    );
}

#[test]
fn excluded_directories_cost_no_watch() {
    let d = tree(&["keep/a/", "skip/a/b/", "skip.log"]);
    let opts = WatchOptions {
        exclude: Some(Box::new(|p: &Path, _is_dir| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("skip"))
        })),
        ..WatchOptions::default()
    };
    let mut w = Watcher::new(d.path(), opts).unwrap();
    assert_eq!(w.watch_count(), 3, "root, keep, keep/a");
    fs::write(d.path().join("skip/a/b/f"), b"1").unwrap();
    fs::write(d.path().join("skip.log"), b"1").unwrap();
    fs::write(d.path().join("keep/a/f"), b"1").unwrap();
    fs::create_dir(d.path().join("skipnew")).unwrap();
    let evs = drain(&mut w);
    assert!(
        evs.iter()
            .all(|e| !e.path.starts_with("skip") && !e.path.to_string_lossy().starts_with("skip")),
        "{evs:?}"
    );
    assert!(has(&evs, &EventKind::Create, "keep/a/f"));
    assert_eq!(w.watch_count(), 3);
}

#[test]
fn removals_drop_watches_and_the_root_going_away_ends_the_stream() {
    let d = tree(&["t/a/b/c/f"]);
    let root = d.path().join("t");
    let mut w = Watcher::new(&root, WatchOptions::default()).unwrap();
    assert_eq!(w.watch_count(), 4);
    fs::remove_dir_all(root.join("a")).unwrap();
    let evs = drain(&mut w);
    for p in ["a/b/c/f", "a/b/c", "a/b", "a"] {
        assert!(has(&evs, &EventKind::Delete, p), "{p}: {evs:?}");
    }
    assert_eq!(w.watch_count(), 1);
    fs::remove_dir_all(&root).unwrap();
    let evs = drain(&mut w);
    assert_eq!(
        evs.last().map(|e| &e.kind),
        Some(&EventKind::RootGone),
        "{evs:?}"
    );
    assert_eq!(w.next_event(Some(Duration::from_millis(10))).unwrap(), None);
}

#[test]
fn unmount_is_reported_and_its_watches_dropped() {
    let d = tree(&["keep/", "mnt/"]);
    let mnt = d.path().join("mnt");
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "none"])
        .arg(&mnt)
        .status()
        .expect("mount (tests run as root)");
    assert!(st.success());
    fs::create_dir(mnt.join("inner")).unwrap();
    let mut w = Watcher::new(d.path(), WatchOptions::default()).unwrap();
    assert_eq!(w.watch_count(), 4);
    let st = std::process::Command::new("umount")
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(st.success());
    let evs = drain(&mut w);
    assert!(has(&evs, &EventKind::Unmount, "mnt"), "{evs:?}");
    assert!(has(&evs, &EventKind::Unmount, "mnt/inner"), "{evs:?}");
    // The directory the mount covered is watched again, and a rescan of it is asked for.
    assert!(has(&evs, &EventKind::RescanNeeded, "mnt"), "{evs:?}");
    assert_eq!(w.watch_count(), 3, "root, keep and the uncovered mnt");
    fs::write(mnt.join("under"), b"1").unwrap();
    assert!(has(&drain(&mut w), &EventKind::Create, "mnt/under"));
}

#[test]
fn a_move_out_is_never_overtaken_by_later_events() {
    let d = tree(&["t/dir/f", "outside/"]);
    let root = d.path().join("t");
    let mut w = Watcher::new(&root, WatchOptions::default()).unwrap();
    fs::rename(root.join("dir"), d.path().join("outside/dir")).unwrap();
    fs::create_dir(root.join("dir")).unwrap();
    let evs = drain(&mut w);
    let kinds: Vec<_> = evs
        .iter()
        .map(|e| (e.kind.clone(), e.path.clone()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (EventKind::Delete, "dir".into()),
            (EventKind::Create, "dir".into())
        ]
    );
    assert_eq!(w.watch_count(), 2);
}

#[test]
fn many_renames_pair_up() {
    let names: Vec<String> = (0..300).map(|i| format!("f{i}")).collect();
    let spec: Vec<&str> = names.iter().map(String::as_str).collect();
    let d = tree(&spec);
    let mut w = Watcher::new(d.path(), WatchOptions::default()).unwrap();
    for n in &names {
        fs::rename(d.path().join(n), d.path().join(format!("{n}.moved"))).unwrap();
    }
    let evs = drain(&mut w);
    assert_eq!(evs.len(), names.len(), "{:?}", &evs[..5.min(evs.len())]);
    for (ev, n) in evs.iter().zip(&names) {
        assert_eq!(ev.kind, EventKind::Move { from: n.into() });
        assert_eq!(ev.path, PathBuf::from(format!("{n}.moved")));
    }
}

#[test]
fn a_busy_tree_does_not_starve_the_caller() {
    let d = tree(&["busy/"]);
    let mut w = Watcher::new(d.path(), WatchOptions::default()).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let file = d.path().join("busy/f");
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                fs::write(&file, b"x").unwrap();
            }
        })
    };
    // Each call returns an event although the queue never runs dry.
    for _ in 0..1000 {
        let ev = w.next_event(Some(Duration::from_secs(10))).unwrap();
        assert!(ev.is_some());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
}
