//! "Loses nothing": replaying the watcher's events on a model of the tree, starting from the
//! tree as it was, must give the tree as it is — after fast, unsynchronised random operations
//! (creates, renames within / out of / into the tree, deep mkdir, rm -rf, directory renames).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rtsync_watch::{EventKind, WatchOptions, Watcher};

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

fn remove_under(model: &mut BTreeSet<PathBuf>, p: &Path) {
    model.retain(|x| !x.starts_with(p));
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

fn random_ops(root: &Path, outside: &Path, rng: &mut Rng, count: usize) {
    for k in 0..count {
        let now: Vec<PathBuf> = walk(root).into_iter().collect();
        let dirs: Vec<&PathBuf> = now.iter().filter(|p| root.join(p).is_dir()).collect();
        let mut places = vec![PathBuf::new()];
        places.extend(dirs.iter().map(|p| (*p).clone()));
        let at = root.join(&places[rng.below(places.len())]);
        let any = (!now.is_empty()).then(|| root.join(&now[rng.below(now.len())]));
        let _ = match rng.below(9) {
            0 => fs::write(at.join(format!("f{k}")), b"x"),
            1 => fs::create_dir_all(at.join(format!("d{k}/e{k}/g{k}"))),
            2 => fs::create_dir(at.join(format!("d{k}")))
                .and_then(|_| fs::write(at.join(format!("d{k}/inside")), b"x")),
            3 => match &any {
                Some(p) => fs::rename(p, at.join(format!("m{k}"))),
                None => Ok(()),
            },
            4 => match &any {
                Some(p) => fs::rename(p, outside.join(format!("o{k}"))),
                None => Ok(()),
            },
            5 => {
                let src = outside.join(format!("in{k}"));
                fs::create_dir_all(src.join("sub"))
                    .and_then(|_| fs::write(src.join("sub/f"), b"x"))
                    .and_then(|_| fs::rename(&src, at.join(format!("in{k}"))))
            }
            6 => match &any {
                Some(p) if p.is_dir() => fs::remove_dir_all(p),
                Some(p) => fs::remove_file(p),
                None => Ok(()),
            },
            7 => fs::write(at.join(format!(".t{k}")), b"x")
                .and_then(|_| fs::rename(at.join(format!(".t{k}")), at.join(format!("s{k}")))),
            _ => fs::write(at.join(format!("f{k}")), b"y"),
        };
    }
}

fn replay(w: &mut Watcher, root: &Path, model: &mut BTreeSet<PathBuf>) {
    while let Some(ev) = w.next_event(Some(Duration::from_millis(500))).unwrap() {
        apply(model, root, ev);
    }
}

fn apply(model: &mut BTreeSet<PathBuf>, root: &Path, ev: rtsync_watch::Event) {
    {
        match ev.kind {
            EventKind::Create => {
                model.insert(ev.path);
            }
            EventKind::Delete => remove_under(model, &ev.path),
            EventKind::Move { from } => {
                let moved: Vec<PathBuf> = model
                    .iter()
                    .filter(|p| p.starts_with(&from))
                    .cloned()
                    .collect();
                remove_under(model, &from);
                // Whatever was at the destination is replaced.
                remove_under(model, &ev.path);
                for p in moved {
                    model.insert(ev.path.join(p.strip_prefix(&from).unwrap()));
                }
            }
            EventKind::RescanNeeded => *model = walk(root),
            _ => {}
        }
    }
}

#[test]
fn replayed_events_rebuild_the_tree() {
    for seed in 1..=6u64 {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("t");
        let outside = d.path().join("outside");
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(root.join("a/b/f"), b"x").unwrap();
        let mut w = Watcher::new(&root, WatchOptions::default()).unwrap();
        let mut model = walk(&root);
        let mut rng = Rng(seed);
        // Operations run in bursts while the watcher is not reading, then it catches up.
        for _ in 0..4 {
            random_ops(&root, &outside, &mut rng, 15);
            replay(&mut w, &root, &mut model);
        }
        assert_eq!(model, walk(&root), "seed {seed}");
    }
}

#[test]
fn replayed_events_rebuild_the_tree_while_it_changes() {
    for seed in 11..=14u64 {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("t");
        let outside = d.path().join("outside");
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        let mut w = Watcher::new(&root, WatchOptions::default()).unwrap();
        let mut model = walk(&root);
        let worker = {
            let (root, outside) = (root.clone(), outside.clone());
            std::thread::spawn(move || random_ops(&root, &outside, &mut Rng(seed), 60))
        };
        while !worker.is_finished() {
            if let Some(ev) = w.next_event(Some(Duration::from_millis(5))).unwrap() {
                apply(&mut model, &root, ev);
            }
        }
        worker.join().unwrap();
        replay(&mut w, &root, &mut model);
        assert_eq!(model, walk(&root), "seed {seed}");
    }
}
