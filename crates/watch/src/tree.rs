//! The watch-descriptor ↔ path map.
//!
//! Each watched directory is a node that knows its parent's descriptor and its own name, not its
//! full path. A rename is then one re-link, and every descriptor below the moved directory gets
//! its new path for free: paths are computed by walking up, never stored.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::sys::Wd;

/// A fast hasher for keys that are small integers or already hashed (descriptors, name
/// hashes); names themselves are hashed with the keyed `RandomState`.
#[derive(Default)]
struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }

    fn write_i32(&mut self, v: i32) {
        self.write_u64(u64::from(v as u32));
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

type IntMap<K, V> = HashMap<K, V, BuildHasherDefault<IntHasher>>;

/// Parent value of the root node.
const NO_PARENT: Wd = -1;

/// One watched directory: 24 bytes plus its name, since trees of millions of directories
/// are the point.
#[derive(Debug)]
struct Node {
    /// Descriptor of the directory containing this one; [`NO_PARENT`] for the root.
    parent: Wd,
    /// Name inside the parent (empty for the root).
    name: Box<[u8]>,
}

/// Watched directories of one tree, keyed by descriptor, with paths relative to the root.
///
/// Children are found through one map keyed by (parent, hash of the name), which costs a
/// fraction of a per-directory child table; the rare hash collision goes to a side map keyed
/// by the full name.
#[derive(Debug, Default)]
pub struct WatchTree {
    nodes: IntMap<Wd, Node>,
    kids: IntMap<(Wd, u64), Wd>,
    collided: HashMap<(Wd, Box<[u8]>), Wd>,
    hasher: RandomState,
    root: Option<Wd>,
}

impl WatchTree {
    fn key(&self, parent: Wd, name: &[u8]) -> (Wd, u64) {
        (parent, self.hasher.hash_one(name))
    }

    /// Records the root directory's descriptor.
    pub fn set_root(&mut self, wd: Wd) {
        self.nodes.insert(
            wd,
            Node {
                parent: NO_PARENT,
                name: Box::default(),
            },
        );
        self.root = Some(wd);
    }

    /// The root's descriptor.
    pub fn root(&self) -> Option<Wd> {
        self.root
    }

    /// Number of watched directories.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether nothing is watched.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The directory containing `wd`, if `wd` is watched and not the root.
    pub fn parent(&self, wd: Wd) -> Option<Wd> {
        self.nodes
            .get(&wd)
            .map(|n| n.parent)
            .filter(|&p| p != NO_PARENT)
    }

    /// Whether `wd` is one of ours.
    pub fn contains(&self, wd: Wd) -> bool {
        self.nodes.contains_key(&wd)
    }

    /// The watched subdirectory `name` of `parent`.
    pub fn child(&self, parent: Wd, name: &OsStr) -> Option<Wd> {
        let name = name.as_bytes();
        let wd = *self.kids.get(&self.key(parent, name))?;
        if self.nodes.get(&wd).is_some_and(|n| &*n.name == name) {
            return Some(wd);
        }
        self.collided.get(&(parent, Box::from(name))).copied()
    }

    fn index(&mut self, parent: Wd, name: &[u8], wd: Wd) {
        let key = self.key(parent, name);
        match self.kids.get(&key) {
            Some(&other)
                if other != wd && self.nodes.get(&other).is_some_and(|n| &*n.name != name) =>
            {
                self.collided.insert((parent, Box::from(name)), wd);
            }
            _ => {
                self.kids.insert(key, wd);
            }
        }
    }

    fn unindex(&mut self, parent: Wd, name: &[u8], wd: Wd) {
        let key = self.key(parent, name);
        if self.kids.get(&key) == Some(&wd) {
            self.kids.remove(&key);
            // Promote a collided sibling with the same hash, if any.
            let promote = self
                .collided
                .iter()
                .find(|((p, n), _)| *p == parent && self.hasher.hash_one(&**n) == key.1)
                .map(|(k, &v)| (k.clone(), v));
            if let Some((k, v)) = promote {
                self.collided.remove(&k);
                self.kids.insert(key, v);
            }
        } else if self.collided.get(&(parent, Box::from(name))) == Some(&wd) {
            self.collided.remove(&(parent, Box::from(name)));
        }
    }

    /// Links `wd` as subdirectory `name` of `parent`, moving it if it was linked elsewhere.
    /// Another directory still filed under that name (replaced, or moved away and not yet known
    /// to be gone) is dropped with its subtree; their descriptors are returned so that the
    /// caller can remove the kernel watches.
    pub fn link(&mut self, wd: Wd, parent: Wd, name: &OsStr) -> Vec<Wd> {
        if Some(wd) == self.root || !self.nodes.contains_key(&parent) {
            return Vec::new();
        }
        let mut stale = Vec::new();
        let bytes = name.as_bytes();
        let key = self.key(parent, bytes);
        // The common case, a directory seen for the first time: one hash, two inserts.
        if !self.kids.contains_key(&key) && !self.nodes.contains_key(&wd) {
            self.nodes.insert(
                wd,
                Node {
                    parent,
                    name: Box::from(bytes),
                },
            );
            self.kids.insert(key, wd);
            return stale;
        }
        if let Some(old) = self.child(parent, name) {
            if old != wd {
                stale = self.remove_subtree(old);
            }
        }
        if let Some(node) = self.nodes.remove(&wd) {
            self.unindex(node.parent, &node.name, wd);
        }
        let name = name.as_bytes();
        self.nodes.insert(
            wd,
            Node {
                parent,
                name: Box::from(name),
            },
        );
        self.index(parent, name, wd);
        stale
    }

    /// Moves the watched directory `from_parent/from_name` to `to_parent/to_name`; returns its
    /// descriptor if it was watched.
    pub fn rename(
        &mut self,
        from_parent: Wd,
        from_name: &OsStr,
        to_parent: Wd,
        to_name: &OsStr,
    ) -> Option<Wd> {
        let wd = self.child(from_parent, from_name)?;
        let _ = self.link(wd, to_parent, to_name);
        Some(wd)
    }

    /// Forgets `wd` and everything below it; returns the forgotten descriptors. Costs a pass
    /// over the whole map, which is fine for what calls it (a directory moved out of the tree).
    pub fn remove_subtree(&mut self, wd: Wd) -> Vec<Wd> {
        let gone: Vec<Wd> = self
            .nodes
            .keys()
            .copied()
            .filter(|&w| self.is_within(w, wd))
            .collect();
        for &w in &gone {
            self.remove_one(w);
        }
        gone
    }

    /// Whether `wd` is `ancestor` or below it.
    fn is_within(&self, mut wd: Wd, ancestor: Wd) -> bool {
        for _ in 0..=self.nodes.len() {
            if wd == ancestor {
                return true;
            }
            match self.nodes.get(&wd) {
                Some(n) if n.parent != NO_PARENT => wd = n.parent,
                _ => return false,
            }
        }
        false
    }

    /// Forgets only `wd` (its kernel watch is gone). Watched children, if any are left, become
    /// unreachable: their paths are unknown until their own removal is reported.
    pub fn remove_one(&mut self, wd: Wd) {
        if let Some(node) = self.nodes.remove(&wd) {
            self.unindex(node.parent, &node.name, wd);
        }
        if Some(wd) == self.root {
            self.root = None;
        }
    }

    /// Path of `wd` relative to the root (empty for the root); `None` if unknown or detached.
    pub fn path(&self, wd: Wd) -> Option<PathBuf> {
        let mut names: Vec<&[u8]> = Vec::new();
        let mut at = wd;
        // The bound guards against a cycle, which would be a bug, never a hang.
        for _ in 0..=self.nodes.len() {
            let node = self.nodes.get(&at)?;
            if node.parent == NO_PARENT {
                if Some(at) != self.root {
                    return None;
                }
                let mut p = PathBuf::new();
                p.extend(names.iter().rev().map(|n| OsStr::from_bytes(n)));
                return Some(p);
            }
            names.push(&node.name);
            at = node.parent;
        }
        None
    }

    /// All descriptors, in no particular order.
    pub fn wds(&self) -> Vec<Wd> {
        self.nodes.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_carry_the_subtree() {
        let mut t = WatchTree::default();
        t.set_root(1);
        t.link(2, 1, OsStr::new("a"));
        t.link(3, 2, OsStr::new("b"));
        t.link(4, 3, OsStr::new("c"));
        // A directory replaced under the same name takes its subtree with it.
        t.link(9, 1, OsStr::new("x"));
        t.link(10, 9, OsStr::new("y"));
        let mut stale = t.link(11, 1, OsStr::new("x"));
        stale.sort();
        assert_eq!(stale, vec![9, 10]);
        t.remove_one(11);
        assert_eq!(t.path(4), Some(PathBuf::from("a/b/c")));
        assert_eq!(t.rename(1, OsStr::new("a"), 1, OsStr::new("z")), Some(2));
        assert_eq!(t.path(4), Some(PathBuf::from("z/b/c")));
        assert_eq!(t.path(1), Some(PathBuf::new()));
        // Move b up to the root under a new name.
        t.rename(2, OsStr::new("b"), 1, OsStr::new("top"));
        assert_eq!(t.path(4), Some(PathBuf::from("top/c")));
        assert_eq!(t.child(2, OsStr::new("b")), None);
        let mut gone = t.remove_subtree(3);
        gone.sort();
        assert_eq!(gone, vec![3, 4]);
        assert_eq!(t.len(), 2);
        assert_eq!(t.path(4), None);
    }
}
