//! The watch-descriptor ↔ path map.
//!
//! Each watched directory is a node that knows its parent's descriptor and its own name, not its
//! full path. A rename is then one re-link, and every descriptor below the moved directory gets
//! its new path for free: paths are computed by walking up, never stored.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use crate::sys::Wd;

#[derive(Debug)]
struct Node {
    /// Descriptor of the directory containing this one; `None` for the root.
    parent: Option<Wd>,
    /// Name inside the parent (empty for the root).
    name: OsString,
    /// Watched subdirectories by name.
    kids: HashMap<OsString, Wd>,
}

/// Watched directories of one tree, keyed by descriptor, with paths relative to the root.
#[derive(Debug, Default)]
pub struct WatchTree {
    nodes: HashMap<Wd, Node>,
    root: Option<Wd>,
}

impl WatchTree {
    /// Records the root directory's descriptor.
    pub fn set_root(&mut self, wd: Wd) {
        self.nodes.insert(
            wd,
            Node {
                parent: None,
                name: OsString::new(),
                kids: HashMap::new(),
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

    /// Whether `wd` is one of ours.
    pub fn contains(&self, wd: Wd) -> bool {
        self.nodes.contains_key(&wd)
    }

    /// The watched subdirectory `name` of `parent`.
    pub fn child(&self, parent: Wd, name: &OsStr) -> Option<Wd> {
        self.nodes.get(&parent)?.kids.get(name).copied()
    }

    /// Links `wd` as subdirectory `name` of `parent`, moving it if it was linked elsewhere.
    pub fn link(&mut self, wd: Wd, parent: Wd, name: &OsStr) {
        if Some(wd) == self.root || !self.nodes.contains_key(&parent) {
            return;
        }
        self.unlink(wd);
        // A stale entry under the same name (a directory replaced behind our back) is dropped.
        if let Some(old) = self.child(parent, name) {
            if old != wd {
                self.remove_subtree(old);
            }
        }
        let kids = self.nodes.remove(&wd).map(|n| n.kids).unwrap_or_default();
        self.nodes.insert(
            wd,
            Node {
                parent: Some(parent),
                name: name.to_owned(),
                kids,
            },
        );
        if let Some(p) = self.nodes.get_mut(&parent) {
            p.kids.insert(name.to_owned(), wd);
        }
    }

    /// Detaches `wd` from its parent, keeping its node and subtree.
    fn unlink(&mut self, wd: Wd) {
        let Some(node) = self.nodes.get(&wd) else {
            return;
        };
        let (parent, name) = (node.parent, node.name.clone());
        if let Some(p) = parent.and_then(|p| self.nodes.get_mut(&p)) {
            if p.kids.get(&name) == Some(&wd) {
                p.kids.remove(&name);
            }
        }
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
        self.link(wd, to_parent, to_name);
        Some(wd)
    }

    /// Forgets `wd` and everything below it; returns the forgotten descriptors.
    pub fn remove_subtree(&mut self, wd: Wd) -> Vec<Wd> {
        self.unlink(wd);
        let mut gone = Vec::new();
        let mut stack = vec![wd];
        while let Some(w) = stack.pop() {
            if let Some(node) = self.nodes.remove(&w) {
                stack.extend(node.kids.values().copied());
                gone.push(w);
            }
        }
        if Some(wd) == self.root {
            self.root = None;
        }
        gone
    }

    /// Forgets only `wd` (its kernel watch is gone); its watched children are detached and
    /// stay until their own removal is reported.
    pub fn remove_one(&mut self, wd: Wd) {
        self.unlink(wd);
        if let Some(node) = self.nodes.remove(&wd) {
            for kid in node.kids.values() {
                if let Some(k) = self.nodes.get_mut(kid) {
                    k.parent = None;
                }
            }
        }
        if Some(wd) == self.root {
            self.root = None;
        }
    }

    /// Path of `wd` relative to the root (empty for the root); `None` if unknown or detached.
    pub fn path(&self, wd: Wd) -> Option<PathBuf> {
        let mut names = Vec::new();
        let mut at = wd;
        // The depth bound guards against a cycle, which would be a bug, never a hang.
        for _ in 0..=self.nodes.len() {
            let node = self.nodes.get(&at)?;
            match node.parent {
                None if Some(at) == self.root => {
                    let mut p = PathBuf::new();
                    p.extend(names.iter().rev());
                    return Some(p);
                }
                None => return None,
                Some(parent) => {
                    names.push(node.name.clone());
                    at = parent;
                }
            }
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
