//! The recursive watcher: typed events with paths relative to the root.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::os::fd::AsRawFd;

use crate::dirscan;
use crate::error::WatchError;
use crate::mask;
use crate::sys::{Inotify, RawEvent, Wd};
use crate::tree::WatchTree;

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// An entry appeared (created, or moved in from outside the tree, or found by the scan of
    /// a brand-new directory).
    Create,
    /// File contents were written.
    Modify,
    /// Metadata changed.
    Attrib,
    /// A file opened for writing was closed.
    CloseWrite,
    /// An entry was removed, or moved out of the tree.
    Delete,
    /// An entry was renamed within the tree; `path` is the new name.
    Move {
        /// The old path, relative to the root.
        from: PathBuf,
    },
    /// Something was read.
    Access,
    /// Something was opened.
    Open,
    /// A file opened read-only was closed.
    CloseNoWrite,
    /// Events were lost (queue overflow): whatever is at `path` and below must be rescanned.
    /// The watch map has already been repaired when this is delivered.
    RescanNeeded,
    /// The filesystem holding `path` was unmounted; its watches are gone.
    Unmount,
    /// The watched root itself was deleted or moved away; nothing more will come.
    RootGone,
}

/// One change, as the live engine consumes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// Path relative to the watched root; empty for the root itself.
    pub path: PathBuf,
    /// Whether the subject is a directory.
    pub is_dir: bool,
    /// True when the event was produced by scanning a new directory rather than by the kernel.
    pub from_scan: bool,
}

/// Decides whether a path (relative to the root) is left out; the flag says if it is a directory.
pub type ExcludeFn = Box<dyn Fn(&Path, bool) -> bool + Send>;

/// How to watch.
pub struct WatchOptions {
    /// Kernel events to ask for; the watcher adds what it needs to follow the tree.
    pub mask: u32,
    /// Paths to leave out. An excluded directory gets no watch and is not scanned.
    pub exclude: Option<ExcludeFn>,
    /// How long to wait for the `MOVED_TO` half of a rename before calling it a move out.
    pub move_pair_wait: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            mask: mask::CREATE
                | mask::MODIFY
                | mask::ATTRIB
                | mask::CLOSE_WRITE
                | mask::DELETE
                | mask::MOVE,
            exclude: None,
            move_pair_wait: Duration::from_millis(20),
        }
    }
}

impl fmt::Debug for WatchOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchOptions")
            .field("mask", &format_args!("{:#x}", self.mask))
            .field("exclude", &self.exclude.is_some())
            .field("move_pair_wait", &self.move_pair_wait)
            .finish()
    }
}

/// Half of a rename, waiting for its other half.
#[derive(Debug)]
struct PendingMove {
    cookie: u32,
    path: PathBuf,
    is_dir: bool,
    /// The watch of the directory being moved, if it is one we watch.
    wd: Option<Wd>,
    /// The read batch it came in; it expires when two more have passed without its partner.
    batch: u64,
}

/// A place in the outgoing queue: an event, or the spot a rename's first half holds until it
/// is known to be a move or a move out, so that later events never overtake it.
#[derive(Debug)]
enum Slot {
    Ready(Event),
    Move(u32),
}

/// Watches a directory tree recursively.
///
/// Invariants: every non-excluded directory below the root that existed when its parent was
/// watched has a watch, and [`Watcher::path_of`] gives each descriptor's current path.
pub struct Watcher {
    ino: Inotify,
    root: PathBuf,
    opts: WatchOptions,
    /// The bits passed to `inotify_add_watch`.
    kernel_mask: u32,
    tree: WatchTree,
    ready: VecDeque<Slot>,
    /// First halves of renames, in arrival order.
    pending: Vec<PendingMove>,
    /// Number of read batches so far.
    batches: u64,
    /// Paths reported by a scan whose kernel `CREATE` may still be queued; dropped once the
    /// queue has been read empty.
    scanned: HashSet<PathBuf>,
    /// Errors met while following the tree, handed out by the next `next_event` call.
    errors: VecDeque<WatchError>,
    /// The root's device when its filesystem counts subdirectory links (leaf shortcut).
    leaf_dev: Option<u64>,
    /// Watches whose filesystem was unmounted, with where they were, until their removal.
    unmounted: HashMap<Wd, (Wd, OsString)>,
}

impl fmt::Debug for Watcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watcher")
            .field("root", &self.root)
            .field("watches", &self.tree.len())
            .finish()
    }
}

impl Watcher {
    /// Watches `root` and every directory below it that is not excluded.
    pub fn new(root: impl Into<PathBuf>, opts: WatchOptions) -> Result<Self, WatchError> {
        let ino = Inotify::new().map_err(WatchError::from_init)?;
        let kernel_mask = opts.mask
            | mask::CREATE
            | mask::MOVE
            | mask::DELETE
            | mask::DELETE_SELF
            | mask::MOVE_SELF
            | mask::ONLYDIR
            | mask::DONT_FOLLOW;
        let mut w = Watcher {
            ino,
            root: root.into(),
            opts,
            kernel_mask,
            tree: WatchTree::default(),
            ready: VecDeque::new(),
            pending: Vec::new(),
            batches: 0,
            scanned: HashSet::new(),
            errors: VecDeque::new(),
            leaf_dev: None,
            unmounted: HashMap::new(),
        };
        if let Ok(fd) = dirscan::open_dir(None, w.root.as_os_str(), true) {
            if dirscan::counts_subdir_links(fd.as_raw_fd()) {
                w.leaf_dev = dirscan::lstat_at(Some(fd.as_raw_fd()), std::ffi::OsStr::new("."))
                    .ok()
                    .map(|st| st.st_dev);
            }
        }
        let root_wd = w
            .ino
            .add_watch(&w.root, kernel_mask & !mask::DONT_FOLLOW)
            .map_err(|e| WatchError::from_add_watch(w.root.clone(), e))?;
        w.tree.set_root(root_wd);
        w.scan_dir(root_wd, PathBuf::new(), false)?;
        Ok(w)
    }

    /// The watched root as given.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Number of kernel watches held (one per watched directory).
    pub fn watch_count(&self) -> usize {
        self.tree.len()
    }

    /// Current path (relative to the root) of a watch descriptor.
    pub fn path_of(&self, wd: Wd) -> Option<PathBuf> {
        self.tree.path(wd)
    }

    /// The next event, waiting up to `timeout` (`None`: forever). `Ok(None)` means the time ran
    /// out. Errors met while following new directories (such as the watch limit) are returned
    /// once each; the watcher stays usable after them.
    pub fn next_event(&mut self, timeout: Option<Duration>) -> Result<Option<Event>, WatchError> {
        loop {
            if let Some(err) = self.errors.pop_front() {
                return Err(err);
            }
            match self.ready.front() {
                Some(Slot::Ready(_)) => {
                    if let Some(Slot::Ready(ev)) = self.ready.pop_front() {
                        return Ok(Some(ev));
                    }
                }
                // An unresolved rename heads the queue: read on until it is resolved.
                Some(Slot::Move(_)) => {
                    self.pump()?;
                    continue;
                }
                None => {}
            }
            if self.tree.root().is_none() {
                return Ok(None);
            }
            match self.ino.wait(timeout) {
                Ok(true) => {}
                Ok(false) => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(WatchError::Read(e)),
            }
            self.pump()?;
        }
    }

    /// Everything that is ready now, without waiting: for callers that multiplex the watcher's
    /// descriptor ([`Watcher::as_raw_fd`]) with other sources in their own poll loop.
    pub fn poll_events(&mut self) -> Result<Vec<Event>, WatchError> {
        let mut out = Vec::new();
        while let Some(ev) = self.next_event(Some(Duration::ZERO))? {
            out.push(ev);
        }
        Ok(out)
    }

    /// Reads what is queued and turns it into events; returns once something can be handed
    /// out (or nothing more is queued), so a busy tree cannot keep the caller waiting.
    fn pump(&mut self) -> Result<(), WatchError> {
        for _ in 0..64 {
            let batch = self.ino.read_available().map_err(WatchError::Read)?;
            if batch.is_empty() {
                if self.pending.is_empty() {
                    self.scanned.clear();
                    return Ok(());
                }
                // A rename's halves are queued back to back; give the second a moment to land.
                let more = self
                    .ino
                    .wait(Some(self.opts.move_pair_wait))
                    .map_err(WatchError::Read)?;
                if !more {
                    self.expire_moves(u64::MAX);
                }
                continue;
            }
            self.batches += 1;
            for raw in batch {
                self.handle(raw);
            }
            // A partner comes right behind its first half: two batches later it is not coming.
            self.expire_moves(self.batches.saturating_sub(1));
            if matches!(self.ready.front(), Some(Slot::Ready(_))) {
                return Ok(());
            }
        }
        Ok(())
    }

    /// First halves of renames read before batch `before` left the tree.
    fn expire_moves(&mut self, before: u64) {
        let (old, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.batch < before);
        self.pending = keep;
        for p in old {
            self.moved_out(p);
        }
    }

    /// Removes the kernel watches of directories the map no longer holds.
    fn forget(&mut self, wds: Vec<Wd>) {
        for wd in wds {
            let _ = self.ino.rm_watch(wd);
        }
    }

    /// Puts `event` where the rename with `cookie` holds its place.
    fn resolve(&mut self, cookie: u32, event: Event) {
        match self
            .ready
            .iter_mut()
            .find(|s| matches!(s, Slot::Move(c) if *c == cookie))
        {
            Some(slot) => *slot = Slot::Ready(event),
            None => self.ready.push_back(Slot::Ready(event)),
        }
    }

    fn handle(&mut self, raw: RawEvent) {
        if raw.mask & mask::Q_OVERFLOW != 0 {
            // Partners of pending halves may be among the lost events.
            self.expire_moves(u64::MAX);
            self.resync();
            self.push(EventKind::RescanNeeded, PathBuf::new(), true, false);
            return;
        }
        let Some(dir) = self.tree.path(raw.wd) else {
            return;
        };
        let is_dir = raw.mask & mask::ISDIR != 0;
        if raw.mask & mask::IGNORED != 0 {
            let was_root = Some(raw.wd) == self.tree.root();
            let uncovered = self.unmounted.remove(&raw.wd);
            self.tree.remove_one(raw.wd);
            if was_root {
                self.push(EventKind::RootGone, PathBuf::new(), true, false);
            } else if let Some((parent, name)) = uncovered {
                self.uncovered(parent, name, dir);
            }
            return;
        }
        if raw.mask & mask::UNMOUNT != 0 {
            if let (Some(parent), Some(name)) = (self.tree.parent(raw.wd), dir.file_name()) {
                self.unmounted.insert(raw.wd, (parent, name.to_owned()));
            }
            self.push(EventKind::Unmount, dir, true, false);
            return;
        }
        let Some(name) = raw.name else {
            // Events on a watched directory itself are reported by its parent, except for the
            // root, which has no watched parent.
            if Some(raw.wd) == self.tree.root() {
                if raw.mask & (mask::DELETE_SELF | mask::MOVE_SELF) != 0 {
                    for wd in self.tree.wds() {
                        let _ = self.ino.rm_watch(wd);
                    }
                } else if raw.mask & mask::ATTRIB != 0 && self.opts.mask & mask::ATTRIB != 0 {
                    self.push(EventKind::Attrib, PathBuf::new(), true, false);
                }
            }
            return;
        };
        let path = dir.join(&name);
        if self.excluded(&path, is_dir) {
            return;
        }
        let m = raw.mask;
        if m & mask::MOVED_FROM != 0 {
            self.scanned.remove(&path);
            self.ready.push_back(Slot::Move(raw.cookie));
            let wd = is_dir.then(|| self.tree.child(raw.wd, &name)).flatten();
            self.pending.push(PendingMove {
                wd,
                cookie: raw.cookie,
                path,
                is_dir,
                batch: self.batches,
            });
            return;
        }
        if m & mask::MOVED_TO != 0 {
            match self.pending.iter().position(|p| p.cookie == raw.cookie) {
                Some(i) => {
                    let from = self.pending.remove(i);
                    match from.wd.filter(|&w| self.tree.contains(w)) {
                        Some(w) => {
                            let stale = self.tree.link(w, raw.wd, &name);
                            self.forget(stale);
                        }
                        // It had no watch (it was excluded where it came from): follow it now.
                        None if from.is_dir => {
                            if let Err(e) = self.watch_new_dir(raw.wd, &name, path.clone(), false) {
                                self.errors.push_back(e);
                            }
                        }
                        None => {}
                    }
                    let event = Event {
                        kind: EventKind::Move { from: from.path },
                        path,
                        is_dir,
                        from_scan: false,
                    };
                    self.resolve(from.cookie, event);
                }
                None => self.appeared(raw.wd, &name, path, is_dir),
            }
            return;
        }
        if m & mask::CREATE != 0 {
            if self.scanned.remove(&path) {
                return;
            }
            self.appeared(raw.wd, &name, path, is_dir);
            return;
        }
        if m & mask::DELETE != 0 {
            self.scanned.remove(&path);
            if self.opts.mask & mask::DELETE == 0 {
                if let Some(wd) = is_dir.then(|| self.tree.child(raw.wd, &name)).flatten() {
                    self.tree.remove_one(wd);
                }
                return;
            }
            if is_dir {
                // A directory is empty when it is removed: its subdirectories' watches are
                // already gone, so only its own entry is left to drop.
                if let Some(wd) = self.tree.child(raw.wd, &name) {
                    self.tree.remove_one(wd);
                }
            }
            self.push(EventKind::Delete, path, is_dir, false);
            return;
        }
        let simple = [
            (mask::MODIFY, EventKind::Modify),
            (mask::ATTRIB, EventKind::Attrib),
            (mask::CLOSE_WRITE, EventKind::CloseWrite),
            (mask::ACCESS, EventKind::Access),
            (mask::OPEN, EventKind::Open),
            (mask::CLOSE_NOWRITE, EventKind::CloseNoWrite),
        ];
        for (bit, kind) in simple {
            if m & bit != 0 && self.opts.mask & bit != 0 {
                self.push(kind, path.clone(), is_dir, false);
            }
        }
    }

    /// An entry created or moved in: report it, and follow a directory (watch, then scan so
    /// that what was created in it before the watch existed is reported too).
    fn appeared(&mut self, parent: Wd, name: &OsStr, path: PathBuf, is_dir: bool) {
        self.push(EventKind::Create, path.clone(), is_dir, false);
        if is_dir {
            if let Err(e) = self.watch_new_dir(parent, name, path, true) {
                self.errors.push_back(e);
            }
        }
    }

    /// A filesystem mounted on `dir` went away, uncovering the directory underneath: watch
    /// that one instead, and ask for a rescan, since what it holds was never reported.
    fn uncovered(&mut self, parent: Wd, name: OsString, dir: PathBuf) {
        if !self.tree.contains(parent) {
            return;
        }
        match self.watch_new_dir(parent, &name, dir.clone(), false) {
            Ok(()) => self.push(EventKind::RescanNeeded, dir, true, false),
            Err(e) => self.errors.push_back(e),
        }
    }

    /// The first half of a rename whose second half never came: the entry left the tree.
    fn moved_out(&mut self, p: PendingMove) {
        if let Some(wd) = p.wd.filter(|&w| self.tree.contains(w)) {
            let gone = self.tree.remove_subtree(wd);
            self.forget(gone);
        }
        let event = Event {
            kind: EventKind::Delete,
            path: p.path,
            is_dir: p.is_dir,
            from_scan: false,
        };
        self.resolve(p.cookie, event);
    }

    fn watch_new_dir(
        &mut self,
        parent: Wd,
        name: &OsStr,
        path: PathBuf,
        report: bool,
    ) -> Result<(), WatchError> {
        let abs = self.root.join(&path);
        let wd = match self.ino.add_watch(&abs, self.kernel_mask) {
            Ok(wd) => wd,
            Err(e) if gone_or_replaced(&e) => return Ok(()),
            Err(e) => return Err(WatchError::from_add_watch(abs, e)),
        };
        let stale = self.tree.link(wd, parent, name);
        self.forget(stale);
        self.scan_dir(wd, path, report)
    }

    /// Lists a freshly watched directory, watching its subdirectories; with `report`, every
    /// entry found becomes a `Create` event. Every directory is watched before it is listed,
    /// so nothing created during the scan can fall between the listing and the watch.
    fn scan_dir(&mut self, wd: Wd, path: PathBuf, report: bool) -> Result<(), WatchError> {
        // Without reporting, leaf directories need not even be opened (see `dirscan`).
        let leaf_dev = if report { None } else { self.leaf_dev };
        let mut stack = vec![(wd, path)];
        while let Some((dir_wd, dir)) = stack.pop() {
            let abs = self.root.join(&dir);
            let fd = match dirscan::open_dir(None, abs.as_os_str(), dir.as_os_str().is_empty()) {
                Ok(fd) => fd,
                Err(e) if gone_or_replaced(&e) => continue,
                Err(e) => {
                    return Err(WatchError::Scan {
                        path: abs,
                        source: e,
                    })
                }
            };
            let entries = match dirscan::read_entries(&fd) {
                Ok(e) => e,
                Err(e) if gone_or_replaced(&e) => continue,
                Err(e) => {
                    return Err(WatchError::Scan {
                        path: abs,
                        source: e,
                    })
                }
            };
            for entry in entries {
                let is_dir = match entry.kind {
                    dirscan::Kind::Dir => true,
                    dirscan::Kind::Other => false,
                    dirscan::Kind::Unknown => dirscan::lstat_at(Some(fd.as_raw_fd()), &entry.name)
                        .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR),
                };
                let rel = dir.join(&entry.name);
                if self.excluded(&rel, is_dir) {
                    continue;
                }
                if report {
                    self.scanned.insert(rel.clone());
                    self.push(EventKind::Create, rel.clone(), is_dir, true);
                }
                if !is_dir {
                    continue;
                }
                let child_abs = abs.join(&entry.name);
                match self.ino.add_watch(&child_abs, self.kernel_mask) {
                    Ok(child) => {
                        let stale = self.tree.link(child, dir_wd, &entry.name);
                        self.forget(stale);
                        let leaf = leaf_dev.is_some_and(|dev| {
                            dirscan::is_leaf_dir(fd.as_raw_fd(), &entry.name, dev).is_some()
                        });
                        if !leaf {
                            stack.push((child, rel));
                        }
                    }
                    Err(e) if gone_or_replaced(&e) => {}
                    Err(e) => return Err(WatchError::from_add_watch(child_abs, e)),
                }
            }
        }
        Ok(())
    }

    /// After lost events: walk the tree again, adding missing watches and fixing paths, and drop
    /// watches on directories that are no longer where the map says.
    fn resync(&mut self) {
        let Some(root) = self.tree.root() else {
            return;
        };
        let mut seen: HashMap<Wd, ()> = HashMap::new();
        seen.insert(root, ());
        let mut stack = vec![(root, PathBuf::new())];
        while let Some((dir_wd, dir)) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(self.root.join(&dir)) else {
                continue;
            };
            for entry in entries.flatten() {
                if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    continue;
                }
                let name = entry.file_name();
                let rel = dir.join(&name);
                if self.excluded(&rel, true) {
                    continue;
                }
                match self.ino.add_watch(&self.root.join(&rel), self.kernel_mask) {
                    Ok(wd) => {
                        if self.tree.path(wd).as_deref() != Some(rel.as_path()) {
                            let stale = self.tree.link(wd, dir_wd, &name);
                            self.forget(stale);
                        }
                        seen.insert(wd, ());
                        stack.push((wd, rel));
                    }
                    Err(e) if gone_or_replaced(&e) => {}
                    Err(e) => self.errors.push_back(WatchError::from_add_watch(rel, e)),
                }
            }
        }
        for wd in self.tree.wds() {
            if !seen.contains_key(&wd) {
                self.tree.remove_subtree(wd);
                let _ = self.ino.rm_watch(wd);
            }
        }
    }

    fn excluded(&self, path: &Path, is_dir: bool) -> bool {
        self.opts.exclude.as_ref().is_some_and(|f| f(path, is_dir))
    }

    fn push(&mut self, kind: EventKind, path: PathBuf, is_dir: bool, from_scan: bool) {
        self.ready.push_back(Slot::Ready(Event {
            kind,
            path,
            is_dir,
            from_scan,
        }));
    }
}

impl std::os::fd::AsRawFd for Watcher {
    /// The inotify descriptor: readable when [`Watcher::poll_events`] has something to return.
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.ino.as_raw_fd()
    }
}

/// Errors meaning the directory vanished or is no longer a directory: a race, not a failure.
fn gone_or_replaced(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ELOOP) | Some(libc::EACCES)
    )
}
